"""kill -9 of the node in the middle of a volume backup: the backup is never available half
made; the worker runs it again at the next start, and its restore gives the volume's bytes."""

from __future__ import annotations

import os
import sqlite3

import httpx

from tests.cloud import Cloud, GaveUp, wait_for
from tests.test_volume_api import GB, V, volume_file
from tests.test_volume_backup import wait_backup
from tests.test_volume_crash import kill_node, volume

DATA_MB = 200  # incompressible: the worker needs a few seconds for it


def backup_status_in_db(cloud: Cloud, backup_id: str) -> str:
    conn = sqlite3.connect(cloud.data_dir / "state.db")
    try:
        return conn.execute("SELECT status FROM volume_backups WHERE id = ?", [backup_id]).fetchone()[0]
    finally:
        conn.close()


def test_kill_9_during_backup(new_cloud: Cloud):
    cloud = new_cloud
    cloud.init()
    cloud.start()
    admin = cloud.client(cloud.token())
    admin.timeout = httpx.Timeout(60)
    r = admin.post(f"{V}/volumes", json={"volume": {"name": "src", "size": 1}})
    vid = r.json()["volume"]["id"]
    wait_for(lambda: volume(admin, vid)["status"] == "available", 60, "the volume")
    with open(volume_file(cloud, vid), "r+b") as f:
        for _ in range(DATA_MB):
            f.write(os.urandom(1 << 20))
    with open(volume_file(cloud, vid), "rb") as f:
        expected = f.read(GB)
    r = admin.post(f"{V}/backups", json={"backup": {"volume_id": vid, "name": "cut"}})
    assert r.status_code == 202, r.text
    bid = r.json()["backup"]["id"]
    project = admin.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": admin.headers["X-Auth-Token"]})
    account = project.json()["token"]["project"]["id"]

    def some_chunks() -> bool:
        if cloud.proc is not None and cloud.proc.poll() is not None:
            raise GaveUp("the node exited")
        listed = admin.get(f"/object-store/v1/AUTH_{account}/volumebackups", params={"format": "json"})
        return listed.status_code == 200 and len(listed.json()) >= 2

    wait_for(some_chunks, 60, "the worker to have written chunks", every=0.05)
    kill_node(cloud)
    admin.close()
    assert backup_status_in_db(cloud, bid) == "creating", "the backup had finished before the kill"

    cloud.start(timeout=120)
    admin = cloud.client(cloud.token())
    admin.timeout = httpx.Timeout(60)
    done = wait_backup(admin, bid, "available")
    assert done["object_count"] == DATA_MB // 4 + 1
    assert volume(admin, vid)["status"] == "available"
    assert admin.delete(f"{V}/volumes/{vid}").status_code == 202
    r = admin.post(f"{V}/backups/{bid}/restore", json={"restore": {"name": "back"}})
    assert r.status_code == 202, r.text
    new = r.json()["restore"]["volume_id"]
    wait_for(lambda: volume(admin, new)["status"] == "available", 120, "the restored volume")
    with open(volume_file(cloud, new), "rb") as f:
        assert f.read(GB) == expected
    admin.close()

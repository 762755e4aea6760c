"""kill -9 of a real `cloudbox serve` in the middle of volume work (issue 15, acceptance 6):
after the restart nothing is half-made and every volume's status is true.

A node is killed the way a machine dies: SIGKILL to its whole process group, so the
`qemu-img` its worker runs dies with it and a half-written file stays behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cloud import Cloud, GaveUp, wait_for

V = "/volume/v3"
IMAGE_MB = 160  # big enough that converting it into a volume takes the worker a while


def kill_node(cloud: Cloud) -> None:
    """SIGKILL to the node and everything it started (its session: see Cloud.start)."""
    assert cloud.proc is not None
    os.killpg(cloud.proc.pid, signal.SIGKILL)
    cloud.proc.wait()
    cloud.proc = None


def statuses_in_db(cloud: Cloud) -> dict[str, str]:
    """What the database of the dead node says (read straight from its file)."""
    conn = sqlite3.connect(cloud.data_dir / "state.db")
    try:
        return dict(conn.execute("SELECT id, status FROM volumes"))
    finally:
        conn.close()


def upload_raw_image(client: httpx.Client, path: Path, name: str) -> str:
    r = client.post("/image/v2/images", json={"name": name, "disk_format": "raw", "container_format": "bare"})
    assert r.status_code == 201, r.text
    image_id = r.json()["id"]
    with open(path, "rb") as f:
        r = client.put(f"/image/v2/images/{image_id}/file", content=f,
                       headers={"Content-Type": "application/octet-stream"}, timeout=300)
    assert r.status_code == 204, r.text
    return image_id


def volume(client: httpx.Client, volume_id: str) -> dict[str, Any]:
    r = client.get(f"{V}/volumes/{volume_id}")
    assert r.status_code == 200, r.text
    return r.json()["volume"]


def test_kill_9_during_volume_creates(new_cloud: Cloud, tmp_path: Path):
    cloud = new_cloud
    cloud.init()
    cloud.start()
    source = tmp_path / "random.raw"
    with open(source, "wb") as f:
        for _ in range(IMAGE_MB):
            f.write(os.urandom(1 << 20))
    admin = cloud.client(cloud.token())
    admin.timeout = httpx.Timeout(60)
    image_id = upload_raw_image(admin, source, "random")

    folder = cloud.data_dir / "volumes"
    ids = []
    for i in range(8):
        r = admin.post(f"{V}/volumes", json={"volume": {"name": f"crash-{i}", "size": 1, "imageRef": image_id}})
        assert r.status_code == 202, r.text
        ids.append(r.json()["volume"]["id"])
    # One blank volume made before the crash, which must come through untouched.
    r = admin.post(f"{V}/volumes", json={"volume": {"name": "before", "size": 1}})
    before = r.json()["volume"]["id"]

    def writing() -> list[Path]:
        if cloud.proc is not None and cloud.proc.poll() is not None:
            raise GaveUp("the node exited")
        return sorted(folder.glob("*.part")) if folder.is_dir() else []

    half_made = wait_for(writing, 60, "the worker to be writing a volume's file", every=0.005)
    kill_node(cloud)
    admin.close()

    # The crash really cut work short: a half-written file and volumes still creating.
    assert [p for p in half_made if p.exists()], "the worker had finished before the kill"
    at_crash = statuses_in_db(cloud)
    creating = [v for v in ids if at_crash[v] == "creating"]
    assert creating, at_crash
    print(f"at the kill: {len(creating)} of {len(ids)} volumes creating, "
          f"{len(list(folder.glob('*.part')))} files half-written")

    cloud.start(timeout=120)
    admin = cloud.client(cloud.token())

    def all_settled() -> bool:
        shown = [volume(admin, v) for v in [*ids, before]]
        for v in shown:
            if v["status"] not in ("creating", "available"):
                raise GaveUp(f"volume {v['id']} went to {v['status']}: {v}")
        return all(v["status"] == "available" for v in shown)

    wait_for(all_settled, 180, "every volume to be available after the restart", every=0.5)

    # Nothing half-made: no temporary file, one file per volume and nothing else, and every
    # volume holds the whole image (the rest of its 1 GB reads as zeros).
    assert sorted(folder.glob("*.part")) == []
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"volume-{v}.raw" for v in [*ids, before])
    for vid in ids:
        shown = volume(admin, vid)
        assert (shown["size"], shown["bootable"], shown["volume_image_metadata"]["image_id"]) == (1, "true", image_id)
        path = folder / f"volume-{vid}.raw"
        assert path.stat().st_size == 1 << 30
        same = subprocess.run(["qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", str(source), str(path)],
                              capture_output=True, text=True)
        assert same.returncode == 0, f"volume {vid} differs from its image: {same.stdout}{same.stderr}"
    assert volume(admin, before)["bootable"] == "false"
    # The volumes are usable: one is deleted and its file goes.
    assert admin.delete(f"{V}/volumes/{ids[0]}").status_code == 202
    wait_for(lambda: admin.get(f"{V}/volumes/{ids[0]}").status_code == 404, 60, "the volume to be deleted")
    assert not (folder / f"volume-{ids[0]}.raw").exists()
    admin.close()

"""kill -9 of a real `cloudbox serve` in the middle of volume work (issue 15, acceptance 6):
after the restart nothing is half-made and every volume's status is true.

A node is killed the way a machine dies: SIGKILL to its whole process group, so the
`qemu-img` its worker runs dies with it and a half-written file stays behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cloud import Cloud, GaveUp, wait_for
from tests.compute_helpers import boot, upload_image, wait_gone, wait_server
from tests.test_compute_libvirt import real_node, stop_and_clean
from tests.test_compute_volumes_libvirt import disks

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


# --- kill -9 while volumes are being attached to a running guest ----------------------------------------

S = "/compute/v2.1/servers"


def attach_state(cloud: Cloud) -> dict[str, Any]:
    """Volumes, attachments and mappings as the (dead or living) node's database has them."""
    conn = sqlite3.connect(cloud.data_dir / "state.db")
    try:
        return {
            "volumes": dict(conn.execute("SELECT id, status FROM volumes")),
            "attachments": sorted(conn.execute("SELECT volume_id, attach_status FROM volume_attachments")),
            "mappings": sorted(conn.execute("SELECT volume_id, status FROM block_device_mappings "
                                            "WHERE volume_id IS NOT NULL")),
        }
    finally:
        conn.close()


def guest_disks(log: str) -> dict[str, str]:
    """The disks the guest has now, by its console (firmware/README.md "Disks"): name → serial."""
    have: dict[str, str] = {}
    for line in log.replace("\r", "").splitlines():
        words = line.split()
        if line.startswith("CLOUDBOX-GUEST: disks "):
            have = {}
            for entry in words[2:]:
                name, _, rest = entry.partition(":")
                have[name] = rest.partition(":")[2]
        elif line.startswith("CLOUDBOX-GUEST: disk-added "):
            name, _, rest = words[2].partition(":")
            have[name] = rest.partition(":")[2]
        elif line.startswith("CLOUDBOX-GUEST: disk-removed "):
            have.pop(words[2], None)
    return have


@pytest.mark.slow  # real guests
def test_kill_9_during_attach(tmp_path: Path, guest_image: Path):
    cloud = real_node(tmp_path / "data")
    cloud.start(timeout=120)
    try:
        admin = cloud.client(cloud.token())
        image = upload_image(admin, guest_image)
        server = boot(admin, image["id"])
        sid = server["id"]
        wait_server(admin, sid, {"ACTIVE"}, timeout=300)

        def console_log() -> str:
            r = admin.post(f"{S}/{sid}/action", json={"os-getConsoleOutput": {}})
            return r.json()["output"] if r.status_code == 200 else ""

        wait_for(lambda: "CLOUDBOX-GUEST: ready" in console_log(), 400, "the guest to boot")
        ids = []
        for i in range(4):
            r = admin.post(f"{V}/volumes", json={"volume": {"name": f"att-{i}", "size": 1}})
            assert r.status_code == 202, r.text
            ids.append(r.json()["volume"]["id"])
        wait_for(lambda: all(volume(admin, v)["status"] == "available" for v in ids), 60, "the volumes")

        token = cloud.token()

        def attach(volume_id: str) -> None:
            with cloud.client(token) as c:
                try:
                    c.post(f"{S}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": volume_id}},
                           timeout=120)
                except httpx.HTTPError:
                    pass  # the node died under it

        threads = [threading.Thread(target=attach, args=(v,)) for v in ids]
        for t in threads:
            t.start()

        def mid_attach() -> dict[str, Any] | None:
            """One attach done and the next under way: the kill leaves both kinds behind."""
            state = attach_state(cloud)
            done = [m for m in state["mappings"] if m[1] == "attached"]
            busy = [m for m in state["mappings"] if m[1] == "attaching"]
            return state if done and busy else None

        wait_for(mid_attach, 120, "an attach done and another under way", every=0.005)
        cloud.proc.send_signal(signal.SIGKILL)
        cloud.proc.wait()
        cloud.proc = None
        for t in threads:
            t.join()
        at_crash = attach_state(cloud)
        cut = [m[0] for m in at_crash["mappings"] if m[1] == "attaching"]
        plugged = set(disks(cloud, sid))
        print("at the kill:", at_crash, "; cut short with its disk already in the guest:", set(cut) & plugged)
        assert cut and any(m[1] == "attached" for m in at_crash["mappings"]), at_crash

        cloud.start(timeout=120)
        admin = cloud.client(cloud.token())

        def settled() -> dict[str, Any] | None:
            state = attach_state(cloud)
            if any(s not in ("available", "in-use") for s in state["volumes"].values()):
                return None
            if any(m[1] != "attached" for m in state["mappings"]):
                return None
            return state

        final = wait_for(settled, 180, lambda: f"every volume settled: {attach_state(cloud)}", every=0.5)
        in_use = {v for v, s in final["volumes"].items() if s == "in-use"}
        # Each volume's status is true: in-use exactly when it has one attachment, one mapping,
        # a disk in the domain (live and defined) and a disk in the guest; available when none.
        assert final["attachments"] == sorted((v, "attached") for v in in_use), final
        assert final["mappings"] == sorted((v, "attached") for v in in_use), final
        listed = admin.get(f"{S}/{sid}/os-volume_attachments").json()["volumeAttachments"]
        assert sorted(a["volumeId"] for a in listed) == sorted(in_use)
        for vid in ids:
            shown = volume(admin, vid)
            assert [a["server_id"] for a in shown["attachments"]] == ([sid] if vid in in_use else []), shown
        wait_for(lambda: set(disks(cloud, sid)) == in_use, 120,
                 lambda: f"the live domain to have the disks of {in_use}: {disks(cloud, sid)}")
        assert set(disks(cloud, sid, live=False)) == in_use
        serials = {v[:20] for v in in_use}
        wait_for(lambda: set(guest_disks(console_log()).values()) - {""} == serials, 120,
                 lambda: f"the guest to have the disks {serials}: {guest_disks(console_log())}")
        print(f"after the restart: {len(in_use)} of {len(ids)} attached, the others available")

        # Nothing is stuck: every available volume attaches now, every attached one detaches.
        for vid in ids:
            if vid in in_use:
                assert admin.delete(f"{S}/{sid}/os-volume_attachments/{vid}").status_code == 202
            else:
                r = admin.post(f"{S}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vid}})
                assert r.status_code == 200, r.text
        wait_for(lambda: all(volume(admin, v)["status"] == ("available" if v in in_use else "in-use") for v in ids),
                 180, "the swap of attached and available volumes")
        admin.delete(f"{S}/{sid}")
        wait_gone(admin, sid)
    finally:
        stop_and_clean(cloud)

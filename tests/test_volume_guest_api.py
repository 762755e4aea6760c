"""What the guest acceptance (test_volume_tutorial.py) relies on, checked fast without booting a
guest: snapshots of an in-use volume by microversion, and the dir driver copying a volume whose
file a running QEMU holds locked."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx

from cloudbox.volume.driver.dir import DirDriver
from tests.cloud import Cloud, GaveUp, wait_for

V = "/volume/v3"


def at(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"volume {version}"}


def test_snapshot_of_an_in_use_volume_by_microversion(new_cloud: Cloud):
    """Cinder 3.66: an in-use volume is snapshotted without force (openstackclient then stops
    sending it); force false is a 400 from 3.66; before 3.66 an in-use volume needs force."""
    new_cloud.init()
    new_cloud.start()
    admin: httpx.Client = new_cloud.client(new_cloud.token())
    vid = admin.post(f"{V}/volumes", json={"volume": {"size": 1}}).json()["volume"]["id"]
    wait_for(lambda: admin.get(f"{V}/volumes/{vid}").json()["volume"]["status"] == "available", 60, "the volume")
    assert admin.post(f"{V}/volumes/{vid}/action", json={"os-reset_status": {"status": "in-use"}}).status_code == 202

    def snapshot(version: str, **extra: object) -> httpx.Response:
        return admin.post(f"{V}/snapshots", json={"snapshot": {"volume_id": vid, **extra}}, headers=at(version))

    r = snapshot("3.65")
    assert r.status_code == 400 and "force" in r.text, r.text
    r = snapshot("3.66", force=False)
    assert r.status_code == 400 and "3.66" in r.text, r.text
    made = [snapshot("3.65", force=True), snapshot("3.66"), snapshot("3.71", force=True)]
    assert [r.status_code for r in made] == [202, 202, 202], [r.text for r in made]
    listed = admin.get(f"{V}/snapshots").json()["snapshots"]
    assert sorted(s["id"] for s in listed) == sorted(r.json()["snapshot"]["id"] for r in made)
    admin.close()


def test_dir_snapshot_and_clone_of_a_volume_a_running_guest_holds(tmp_path: Path):
    """A running QEMU holds its disk's file locked: the dir driver's copies (snapshot of an in-use
    volume, a clone of it) read it anyway, as a crash-consistent copy (Cinder's in-use snapshot)."""
    driver = DirDriver(tmp_path)
    driver.check()
    vid = str(uuid.uuid4())
    driver.create_blank(vid, 1)
    with open(driver.path(vid), "r+b") as f:
        f.write(b"CLOUDBOX-MARKER held by a guest\n")
    qemu = subprocess.Popen(["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "32", "-display", "none",
                             "-S", "-drive", f"file={driver.path(vid)},if=virtio,format=raw"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def locked() -> bool:
            if qemu.poll() is not None:
                raise GaveUp(f"qemu exited: {qemu.stderr.read().decode() if qemu.stderr else ''}")
            inode = f":{driver.path(vid).stat().st_ino} "  # QEMU's OFD locks on the file, in /proc/locks
            return any(inode in line for line in Path("/proc/locks").read_text().splitlines())

        wait_for(locked, 30, "QEMU to hold the volume's file")
        sid, clone = str(uuid.uuid4()), str(uuid.uuid4())
        driver.snapshot(sid, vid)
        driver.create_from_volume(clone, 1, vid)
    finally:
        qemu.kill()
        qemu.wait()
    snap_file = next((tmp_path / "snapshots").glob(f"snapshot-{sid}.*"))
    for path in (snap_file, driver.path(clone)):
        assert path.read_bytes()[:32] == b"CLOUDBOX-MARKER held by a guest\n"

"""The volume worker (reconcile.py) in-process, with the dir driver: at start it finishes what a
crash left in creating / extending / deleting, puts what cannot be finished in error with the
reason, and removes data of no volume; and the volume commands replay to the same tables."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import trio

from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine, replay
from cloudbox.volume import commands as c
from cloudbox.volume import core, store
from cloudbox.volume.driver import GB
from cloudbox.volume.driver.dir import DirDriver
from cloudbox.volume.reconcile import Worker
from cloudbox.volume.service import VolumeService
from tests.test_durability import _live_log_and_hashes

SETTINGS = SimpleNamespace(quota_volumes=10, quota_gigabytes=1000, quota_snapshots=10, storage_availability_zone="nova")
AT = "2026-12-07T00:00:00.000000"


def row(volume_id: str, **fields: Any) -> dict[str, Any]:
    base = {"id": volume_id, "project_id": "p1", "user_id": "u1", "name": volume_id, "description": None, "size": 1,
            "status": "creating", "host": "host-1", "availability_zone": "nova",
            "volume_type_id": core.DEFAULT_TYPE_ID, "bootable": False, "readonly": False, "multiattach": False,
            "source_volid": None, "snapshot_id": None, "image_id": None, "disk_format": "raw", "pending_size": None,
            "metadata": {}, "image_metadata": {}, "message": "", "migration_status": None, "created_at": AT,
            "updated_at": AT, "launched_at": None}
    return {**base, **fields}


async def test_start_finishes_interrupted_work_and_removes_orphans(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    driver = DirDriver(tmp_path / "store")
    driver.check()
    defaults = core.quota_defaults(10, 1000, 10)
    # State as a crash left it: the commands went in, the disk work did not happen (or half).
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await engine.propose(c.CreateVolume(row("made"), defaults))
        await engine.propose(c.CreateVolume(row("growing", status="available"), defaults))
        await trio.to_thread.run_sync(driver.create_blank, "growing", 1)
        await engine.propose(c.ExtendVolume("growing", 3, defaults, AT))
        await engine.propose(c.CreateVolume(row("going", status="available"), defaults))
        await trio.to_thread.run_sync(driver.create_blank, "going", 1)
        await engine.propose(c.DeleteVolume("going", False, False, AT))
        await engine.propose(c.CreateVolume(row("elsewhere", host="host-2"), defaults))
        (driver.volumes / "volume-orphan.raw").write_bytes(b"left behind")
        (driver.volumes / "volume-made.raw.part").write_bytes(b"half made")
        (driver.snapshots / "snapshot-orphan.qcow2").write_bytes(b"left behind")
        driver.scratch.mkdir(parents=True, exist_ok=True)
        (driver.scratch / "upload-made-image.raw").write_bytes(b"an upload a crash cut short")

        svc = VolumeService(engine, SETTINGS, driver, node_id="node-1", host="host-1")

        def status(volume_id: str) -> Any:
            volume = engine.read_sync(store.get_volume, volume_id)
            return volume and volume["status"]

        await nursery.start(svc.run)
        assert svc.running
        with trio.fail_after(30):
            while status("made") != "available" or status("growing") != "available" or status("going") is not None:
                await trio.sleep(0.05)  # the worker's own commands are awaited through the log
        assert driver.virtual_size("made") == GB
        growing = engine.read_sync(store.get_volume, "growing")
        assert growing["size"] == 3 and growing["pending_size"] is None and driver.virtual_size("growing") == 3 * GB
        assert not (driver.volumes / "volume-going.raw").exists()
        assert status("elsewhere") == "creating"  # another node's volume is that node's work
        assert not (driver.volumes / "volume-orphan.raw").exists()
        assert not (driver.snapshots / "snapshot-orphan.qcow2").exists()
        assert not (driver.volumes / "volume-made.raw.part").exists()
        assert list(driver.scratch.iterdir()) == []
        assert driver.stored() == ({"made", "growing"}, set())
        nursery.cancel_scope.cancel()

    # A volume whose source disk is gone cannot be made: error, with the reason.
    engine2 = StateEngine(tmp_path / "state.db", STORES)
    try:
        async with trio.open_nursery() as nursery:
            engine.close()
            engine2.open()
            await nursery.start(engine2.run)
            await engine2.propose(c.CreateVolume(row("orphaned-clone", source_volid="growing", size=3), defaults))
            await trio.to_thread.run_sync(driver.delete, "growing")  # its data vanished while the node was down
            svc = VolumeService(engine2, SETTINGS, driver, node_id="node-1", host="host-1")
            await nursery.start(svc.run)
            with trio.fail_after(30):
                while engine2.read_sync(store.get_volume, "orphaned-clone")["status"] == "creating":
                    await trio.sleep(0.05)
            failed = engine2.read_sync(store.get_volume, "orphaned-clone")
            assert failed["status"] == "error" and "has no file" in failed["message"]
            vanished = engine2.read_sync(store.get_volume, "growing")
            assert vanished["status"] == "error" and "missing" in vanished["message"]
            assert engine2.read_sync(store.get_volume, "made")["status"] == "available"
            nursery.cancel_scope.cancel()
    finally:
        engine2.close()
    entries, live = _live_log_and_hashes(tmp_path / "state.db")
    assert any('"type":"volume.purge"' in e for e in entries)
    assert replay(entries, tmp_path / "replayed.db", STORES) == live


async def test_a_row_read_before_its_volume_was_made_does_not_make_it_again(tmp_path: Path):
    """A pass reads the volumes to work on, then awaits other work; a run of one of them may end
    meanwhile. Its stale row (still creating) must not start a second create: that deletes the
    file of a volume already handed on (the full suite once booted a server on a vanished file)."""
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    driver = DirDriver(tmp_path / "store")
    driver.check()
    defaults = core.quota_defaults(10, 1000, 10)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            svc = VolumeService(engine, SETTINGS, driver, node_id="node-1", host="host-1")
            stale = await engine.propose(c.CreateVolume(row("made"), defaults))
            worker = Worker(svc)
            await worker._volume(stale)  # the first run: made, available
            assert engine.read_sync(store.get_volume, "made")["status"] == "available"
            (driver.volumes / "volume-made.raw").write_bytes(b"the guest's data")
            await worker._volume(stale)  # the same row again, as a pass that read it earlier holds it
            assert (driver.volumes / "volume-made.raw").read_bytes() == b"the guest's data"
            assert engine.read_sync(store.get_volume, "made")["status"] == "available"
            nursery.cancel_scope.cancel()
    finally:
        engine.close()

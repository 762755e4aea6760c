"""The backup commands in-process: the status table of apply_backups.py, quotas, refusals that
change nothing, and the log replaying into an empty database to the same tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine, replay
from cloudbox.volume import commands as c
from cloudbox.volume import core, store, store_backups
from tests.test_durability import _live_log_and_hashes, refused_without_change
from tests.test_volume_worker import AT, row

DEFAULTS = core.quota_defaults(10, 1000, 10)


def backup(backup_id: str, volume_id: str, **fields: Any) -> dict[str, Any]:
    base = {"id": backup_id, "project_id": "p1", "user_id": "u1", "volume_id": volume_id, "snapshot_id": None,
            "name": backup_id, "description": None, "container": "volumebackups", "status": "creating", "size": 1,
            "object_count": 0, "is_incremental": False, "host": "host-1", "availability_zone": "nova",
            "fail_reason": None, "metadata": {}, "restore_volume_id": None, "data_timestamp": AT,
            "created_at": AT, "updated_at": AT}
    return {**base, **fields}


async def test_backup_commands_refuse_cleanly_and_replay(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)

    def status(volume_id: str) -> str:
        return engine.read_sync(store.get_volume, volume_id)["status"]

    def backup_status(backup_id: str) -> str:
        return engine.read_sync(store_backups.must_backup, backup_id)["status"]

    async def refused(cmd: Any, fragment: str) -> None:
        await refused_without_change(engine, tmp_path / "state.db", cmd, fragment)

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            await engine.propose(c.CreateVolume(row("v1", status="available"), DEFAULTS))
            await refused(c.CreateBackup(backup("b0", "v1", is_incremental=True), False, DEFAULTS), "full backup")
            await refused(c.CreateBackup(backup("b0", "v1", project_id="p2"), False, DEFAULTS), "project")
            await refused(c.CreateBackup(backup("b0", "nope"), False, DEFAULTS), "could not be found")
            await engine.propose(c.CreateBackup(backup("b1", "v1"), False, DEFAULTS))
            assert (status("v1"), backup_status("b1")) == ("backing-up", "creating")
            await refused(c.CreateBackup(backup("b2", "v1"), False, DEFAULTS), "backing-up")
            await refused(c.DeleteBackup("b1", False, AT), "creating")
            await engine.propose(c.BackupTransition("b1", ("creating",), "available", AT, {"object_count": 3}))
            assert (status("v1"), backup_status("b1")) == ("available", "available")
            await engine.propose(c.CreateBackup(backup("b2", "v1", is_incremental=True), False, DEFAULTS))
            assert engine.read_sync(store_backups.must_backup, "b2")["parent_id"] == "b1"
            await engine.propose(c.BackupTransition("b2", ("creating",), "error", AT, {"fail_reason": "x"}))
            assert status("v1") == "available"
            await refused(c.DeleteBackup("b1", False, AT), "incremental backups exist")
            # Quotas: two backups counted; a limit of two refuses a third.
            assert engine.read_sync(store.quota_usage, "p1")["backups"] == 2
            await refused(c.CreateBackup(backup("b3", "v1"), False, {**DEFAULTS, "backups": 2}), "backups")
            # Restores: too small a target, one in use; then a new volume.
            await engine.propose(c.CreateVolume(row("big", size=2, status="available"), DEFAULTS))
            await engine.propose(c.CreateBackup(backup("bb", "big"), False, DEFAULTS))
            await engine.propose(c.BackupTransition("bb", ("creating",), "available", AT, {}))
            await refused(c.RestoreBackup("bb", "v1", None, DEFAULTS, AT), "smaller")
            await engine.propose(c.CreateVolume(row("busy", status="in-use"), DEFAULTS))
            await refused(c.RestoreBackup("b1", "busy", None, DEFAULTS, AT), "in-use")
            await engine.propose(c.RestoreBackup("b1", "v9", row("v9"), DEFAULTS, AT))
            assert (status("v9"), backup_status("b1")) == ("restoring-backup", "restoring")
            await refused(c.RestoreBackup("b1", "v1", None, DEFAULTS, AT), "restoring")
            await engine.propose(c.FinishRestore("b1", "", AT, {"metadata": {"k": "v"}, "bootable": True}))
            restored = engine.read_sync(store.get_volume, "v9")
            assert (restored["status"], restored["metadata"], restored["bootable"]) == ("available", {"k": "v"}, True)
            await engine.propose(c.RestoreBackup("b1", "v1", None, DEFAULTS, AT))
            await engine.propose(c.FinishRestore("b1", "no such chunk", AT))
            assert (status("v1"), backup_status("b1")) == ("error_restoring", "available")
            # Deletes: the child first, then the parent; purge only a deleting backup.
            await refused(c.PurgeBackup("b2"), "not deleting")
            await engine.propose(c.DeleteBackup("b2", False, AT))
            await engine.propose(c.PurgeBackup("b2"))
            await engine.propose(c.DeleteBackup("b1", False, AT))
            await engine.propose(c.PurgeBackup("b1"))
            assert engine.read_sync(store_backups.get_backup, "b1") is None
            nursery.cancel_scope.cancel()
    finally:
        engine.close()
    entries, live = _live_log_and_hashes(tmp_path / "state.db")
    assert any('"type":"volume.backup.restored"' in e for e in entries)
    assert replay(entries, tmp_path / "replayed.db", STORES) == live

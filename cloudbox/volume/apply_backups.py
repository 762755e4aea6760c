"""apply() of the backup commands.

Backup statuses (Cinder's):

| from      | to                 | by                                             |
|-----------|--------------------|------------------------------------------------|
| (none)    | creating           | CreateBackup (an available volume: backing-up) |
| creating  | available / error  | the worker of ``host`` (BackupTransition)      |
| available | restoring          | RestoreBackup (the volume: restoring-backup)   |
| restoring | available          | FinishRestore (the volume: available / error_restoring) |
| available, error | deleting    | DeleteBackup (force: any but deleting)         |
| deleting  | (gone) / error     | the worker: objects removed, PurgeBackup       |

A backup whose incremental children exist cannot be deleted; an incremental backup needs an
available backup of its volume to build on.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict
from cloudbox.state.migrations import Handler
from cloudbox.volume import apply as volumes
from cloudbox.volume import commands as c
from cloudbox.volume import core
from cloudbox.volume import store as s
from cloudbox.volume import store_backups as sb

STATUSES = ("creating", "available", "deleting", "error", "error_deleting", "restoring")


def _update(db: sqlite_utils.Database, backup_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    db["volume_backups"].update(backup_id, s.encode(changes))
    return sb.with_children(db, sb.must_backup(db, backup_id))


def _create(db: sqlite_utils.Database, cmd: c.CreateBackup) -> dict[str, Any]:
    row = dict(cmd.row)
    if sb.get_backup(db, row["id"]) is not None:
        raise Conflict(f"A backup with ID {row['id']} exists already.")
    volume = s.must_volume(db, row["volume_id"])
    if volume["project_id"] != row["project_id"]:
        raise BadRequest(f"Invalid volume: volume {volume['id']} is not in the backup's project.")
    # From a snapshot the volume is not read: it may be in use without force.
    allowed = ("available", "in-use") if cmd.force or row.get("snapshot_id") else ("available",)
    if volume["status"] not in allowed:
        hint = " (an in-use volume needs force)" if volume["status"] == "in-use" else ""
        raise BadRequest(f"Invalid volume: volume {volume['id']} is {volume['status']}, not available{hint}.")
    if row.get("snapshot_id"):
        snapshot = s.must_snapshot(db, row["snapshot_id"])
        if snapshot["volume_id"] != volume["id"] or snapshot["status"] != "available":
            raise BadRequest(f"Invalid snapshot: snapshot {snapshot['id']} is not an available snapshot of "
                             f"volume {volume['id']}.")
    row["parent_id"] = None
    if row["is_incremental"]:
        parent = sb.newest_parent(db, volume["id"])
        if parent is None:
            raise BadRequest(f"Invalid backup: no full backup of volume {volume['id']} is available to base an "
                             "incremental backup on.")
        row["parent_id"] = parent["id"]
    row["size"] = s.must_snapshot(db, row["snapshot_id"])["size"] if row.get("snapshot_id") else volume["size"]
    limits = s.quota_limits(db, row["project_id"], cmd.defaults)
    core.check_quota(limits, s.quota_usage(db, row["project_id"]), {"backups": 1, "backup_gigabytes": row["size"]})
    row["host"] = volume["host"]  # the node that keeps the data reads it
    row["volume_status"] = volume["status"]
    db["volume_backups"].insert(s.encode(row))
    if volume["status"] == "available" and not row.get("snapshot_id"):
        volumes._touch_volume(db, volume["id"], {"status": "backing-up", "updated_at": row["created_at"]})
    return sb.with_children(db, sb.must_backup(db, row["id"]))


def _import(db: sqlite_utils.Database, cmd: c.ImportBackup) -> dict[str, Any]:
    row = dict(cmd.row)
    if sb.get_backup(db, row["id"]) is not None:
        raise BadRequest(f"Invalid backup: backup {row['id']} exists already.")
    if row["parent_id"] and sb.get_backup(db, row["parent_id"]) is None:
        row["parent_id"] = None  # its chunks are named in the manifest: the chain is not needed to restore
    db["volume_backups"].insert(s.encode(row))
    return sb.with_children(db, sb.must_backup(db, row["id"]))


def _give_back_volume(db: sqlite_utils.Database, backup: dict[str, Any], at: str) -> None:
    """A backup that stops creating returns its volume to what it was (if it is still backing up)."""
    volume = s.get_volume(db, backup["volume_id"])
    if volume is not None and volume["status"] == "backing-up":
        volumes._touch_volume(db, volume["id"], {"status": backup["volume_status"] or "available", "updated_at": at})


def _transition(db: sqlite_utils.Database, cmd: c.BackupTransition) -> dict[str, Any]:
    backup = sb.must_backup(db, cmd.id)
    if cmd.expect and backup["status"] not in cmd.expect:
        raise Conflict(f"Backup {cmd.id} is {backup['status']}, not {' or '.join(cmd.expect)}.")
    if cmd.to not in STATUSES:
        raise BadRequest(f"Invalid backup status {cmd.to[:40]!r}; one of {', '.join(STATUSES)}.")
    if backup["status"] == "creating" and cmd.to != "creating":
        _give_back_volume(db, backup, cmd.at)
    return _update(db, cmd.id, {**cmd.changes, "status": cmd.to, "updated_at": cmd.at})


def _update_fields(db: sqlite_utils.Database, cmd: c.UpdateBackup) -> dict[str, Any]:
    sb.must_backup(db, cmd.id)
    return _update(db, cmd.id, {**cmd.changes, "updated_at": cmd.at})


def _delete(db: sqlite_utils.Database, cmd: c.DeleteBackup) -> dict[str, Any]:
    backup = sb.must_backup(db, cmd.id)
    allowed = STATUSES if cmd.force else ("available", "error")
    if backup["status"] not in allowed or backup["status"] == "deleting":
        raise BadRequest(f"Invalid backup: backup {cmd.id} is {backup['status']}; only an available or error "
                         "backup can be deleted (an admin's force delete takes any but deleting).")
    if sb.with_children(db, backup)["has_dependent_backups"]:
        raise BadRequest(f"Invalid backup: incremental backups exist for backup {cmd.id}; delete them first.")
    if backup["status"] == "creating":
        _give_back_volume(db, backup, cmd.at)
    if backup["status"] == "restoring" and backup["restore_volume_id"]:
        target = s.get_volume(db, backup["restore_volume_id"])
        if target is not None and target["status"] == "restoring-backup":
            volumes._touch_volume(db, target["id"], {"status": "error_restoring", "updated_at": cmd.at})
    return _update(db, cmd.id, {"status": "deleting", "restore_volume_id": None, "updated_at": cmd.at})


def _purge(db: sqlite_utils.Database, cmd: c.PurgeBackup) -> None:
    backup = sb.must_backup(db, cmd.id)
    if backup["status"] != "deleting":
        raise Conflict(f"Backup {cmd.id} is {backup['status']}, not deleting.")
    db.execute("DELETE FROM volume_backups WHERE id = ?", [cmd.id])


def _restore(db: sqlite_utils.Database, cmd: c.RestoreBackup) -> dict[str, Any]:
    backup = sb.must_backup(db, cmd.id)
    if backup["status"] != "available":
        raise BadRequest(f"Invalid backup: backup {cmd.id} is {backup['status']}, not available.")
    if cmd.new_volume is not None:
        volumes._create_volume(db, c.CreateVolume(cmd.new_volume, cmd.defaults))
    volume = s.must_volume(db, cmd.volume_id)
    if volume["project_id"] != backup["project_id"] and cmd.new_volume is None:
        raise BadRequest(f"Invalid volume: volume {volume['id']} is not in backup {cmd.id}'s project.")
    if cmd.new_volume is None and volume["status"] != "available":
        raise BadRequest(f"Invalid volume: volume {volume['id']} is {volume['status']}, not available.")
    if volume["size"] < backup["size"]:
        raise BadRequest(f"Invalid volume: volume {volume['id']} ({volume['size']} GB) is smaller than backup "
                         f"{cmd.id} ({backup['size']} GB).")
    volumes._touch_volume(db, volume["id"], {"status": "restoring-backup", "updated_at": cmd.at})
    return _update(db, cmd.id, {"status": "restoring", "restore_volume_id": volume["id"], "updated_at": cmd.at})


def _restored(db: sqlite_utils.Database, cmd: c.FinishRestore) -> dict[str, Any]:
    backup = sb.must_backup(db, cmd.id)
    if backup["status"] != "restoring":
        raise Conflict(f"Backup {cmd.id} is {backup['status']}, not restoring.")
    target = s.get_volume(db, backup["restore_volume_id"] or "")
    if target is not None and target["status"] == "restoring-backup":
        changes: dict[str, Any] = {"status": "error_restoring" if cmd.message else "available",
                                   "message": cmd.message, "updated_at": cmd.at}
        if not cmd.message and target["launched_at"] is None:
            changes["launched_at"] = cmd.at
        if not cmd.message and cmd.volume:  # the source volume's metadata and bootable flag, as Cinder's restore
            kept = cmd.volume
            changes.update(metadata=core.check_metadata({**target["metadata"], **kept.get("metadata", {})}),
                           bootable=bool(kept.get("bootable")),
                           image_metadata={**target["image_metadata"], **kept.get("image_metadata", {})})
        volumes._touch_volume(db, target["id"], changes)
    return _update(db, cmd.id, {"status": "available", "restore_volume_id": None, "updated_at": cmd.at})


HANDLERS: dict[type, Handler] = {
    c.CreateBackup: _create,
    c.ImportBackup: _import,
    c.BackupTransition: _transition,
    c.UpdateBackup: _update_fields,
    c.DeleteBackup: _delete,
    c.PurgeBackup: _purge,
    c.RestoreBackup: _restore,
    c.FinishRestore: _restored,
}

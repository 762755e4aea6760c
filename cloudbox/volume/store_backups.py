"""Queries of volume backups (the table of volume migration 6)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.volume import core
from cloudbox.volume.store import _one, decode, found_row, project_page


def get_backup(db: sqlite_utils.Database, backup_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volume_backups WHERE id = ?", [backup_id])


def must_backup(db: sqlite_utils.Database, backup_id: str) -> dict[str, Any]:
    return found_row(get_backup(db, backup_id), "Backup", backup_id)


def with_children(db: sqlite_utils.Database, backup: dict[str, Any]) -> dict[str, Any]:
    """The backup with whether incremental backups depend on it (Cinder's has_dependent_backups)."""
    children = list(db.query("SELECT 1 FROM volume_backups WHERE parent_id = ? LIMIT 1", [backup["id"]]))
    return {**backup, "has_dependent_backups": bool(children)}


def visible_backup(db: sqlite_utils.Database, viewer: core.Viewer, backup_id: str) -> dict[str, Any]:
    return with_children(db, found_row(get_backup(db, backup_id), "Backup", backup_id, viewer))


def list_backups(db: sqlite_utils.Database, viewer: core.Viewer, marker: str | None,
                 limit: int) -> list[dict[str, Any]]:
    return [with_children(db, b) for b in project_page(db, "volume_backups", "backup", viewer, marker, limit)]


def count_backups(db: sqlite_utils.Database, viewer: core.Viewer) -> int:
    where, params = ("1", []) if viewer.sees_all else ("project_id = ?", [viewer.project_id])
    return list(db.query(f"SELECT count(*) AS n FROM volume_backups WHERE {where}", params))[0]["n"]


def newest_parent(db: sqlite_utils.Database, volume_id: str) -> dict[str, Any] | None:
    """The backup an incremental one of ``volume_id`` builds on: its newest available one."""
    return _one(db, "SELECT * FROM volume_backups WHERE volume_id = ? AND status = 'available'"
                    " ORDER BY data_timestamp DESC, created_at DESC, id DESC LIMIT 1", [volume_id])


def backup_work(db: sqlite_utils.Database, host: str) -> list[dict[str, Any]]:
    """What this node's worker does: backups it makes or deletes (``host``), and restores into
    volumes it keeps."""
    rows = db.query("SELECT * FROM volume_backups WHERE (host = ? AND status IN ('creating', 'deleting'))"
                    " OR (status = 'restoring' AND restore_volume_id IN (SELECT id FROM volumes WHERE host = ?))"
                    " ORDER BY created_at, id", [host, host])
    return [decode(r) for r in rows]


def chain(db: sqlite_utils.Database, backup_id: str) -> list[dict[str, Any]]:
    """The backup and its parents, the backup first."""
    out: list[dict[str, Any]] = []
    row = get_backup(db, backup_id)
    while row is not None and len(out) < 10000:
        out.append(row)
        row = get_backup(db, row["parent_id"]) if row["parent_id"] else None
    return out

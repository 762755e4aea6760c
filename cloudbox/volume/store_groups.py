"""Queries of group types, groups and group snapshots (tables of volume migration 5)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.volume import core
from cloudbox.volume.store import _one, decode, found_row, project_page

GROUP_TYPE_SORT = {"name": "name", "id": "id", "created_at": "created_at"}


def get_type(db: sqlite_utils.Database, type_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volume_group_types WHERE id = ?", [type_id])


def must_type(db: sqlite_utils.Database, type_id: str) -> dict[str, Any]:
    return found_row(get_type(db, type_id), "Group type", type_id)


def find_type(db: sqlite_utils.Database, name_or_id: str, admin: bool) -> dict[str, Any]:
    """A group type by id or name: public ones to anyone, private ones to admins."""
    kind = _one(db, "SELECT * FROM volume_group_types WHERE id = ? OR name = ?", [name_or_id, name_or_id])
    if kind is None or not (kind["is_public"] or admin):
        return found_row(None, "Group type", name_or_id)
    return kind


def list_types(db: sqlite_utils.Database, admin: bool, is_public: bool | None,
               sort: list[tuple[str, str]]) -> list[dict[str, Any]]:
    clauses, params = ["1"], []
    if not admin:
        clauses.append("is_public = 1")
    elif is_public is not None:
        clauses.append("is_public = ?")
        params.append(int(is_public))
    order = ", ".join(f"{GROUP_TYPE_SORT[k]} {d.upper()}" for k, d in sort) or "created_at, id"
    return [decode(r) for r in db.query(f"SELECT * FROM volume_group_types WHERE {' AND '.join(clauses)} "
                                        f"ORDER BY {order}", params)]


def get_group(db: sqlite_utils.Database, group_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volume_groups WHERE id = ?", [group_id])


def must_group(db: sqlite_utils.Database, group_id: str) -> dict[str, Any]:
    return found_row(get_group(db, group_id), "Group", group_id)


def visible_group(db: sqlite_utils.Database, viewer: core.Viewer, group_id: str) -> dict[str, Any]:
    return with_members(db, found_row(get_group(db, group_id), "Group", group_id, viewer))


def list_groups(db: sqlite_utils.Database, viewer: core.Viewer, marker: str | None,
                limit: int) -> list[dict[str, Any]]:
    return [with_members(db, g) for g in project_page(db, "volume_groups", "group", viewer, marker, limit)]


def volumes_of(db: sqlite_utils.Database, group_id: str) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query("SELECT * FROM volumes WHERE group_id = ? ORDER BY created_at, id",
                                        [group_id])]


def with_members(db: sqlite_utils.Database, group: dict[str, Any]) -> dict[str, Any]:
    """The group with its volumes' ids and statuses (its shown status follows a source's copies)."""
    members = volumes_of(db, group["id"])
    return {**group, "volumes": [v["id"] for v in members], "volume_statuses": [v["status"] for v in members]}


def get_group_snapshot(db: sqlite_utils.Database, snapshot_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volume_group_snapshots WHERE id = ?", [snapshot_id])


def must_group_snapshot(db: sqlite_utils.Database, snapshot_id: str) -> dict[str, Any]:
    return found_row(get_group_snapshot(db, snapshot_id), "Group snapshot", snapshot_id)


def snapshots_of(db: sqlite_utils.Database, group_snapshot_id: str) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query("SELECT * FROM volume_snapshots WHERE group_snapshot_id = ? "
                                        "ORDER BY created_at, id", [group_snapshot_id])]


def with_snapshots(db: sqlite_utils.Database, group_snapshot: dict[str, Any]) -> dict[str, Any]:
    return {**group_snapshot, "snapshot_statuses": [x["status"] for x in snapshots_of(db, group_snapshot["id"])]}


def visible_group_snapshot(db: sqlite_utils.Database, viewer: core.Viewer, snapshot_id: str) -> dict[str, Any]:
    found = found_row(get_group_snapshot(db, snapshot_id), "Group snapshot", snapshot_id, viewer)
    return with_snapshots(db, found)


def list_group_snapshots(db: sqlite_utils.Database, viewer: core.Viewer, marker: str | None,
                         limit: int) -> list[dict[str, Any]]:
    rows = project_page(db, "volume_group_snapshots", "group snapshot", viewer, marker, limit)
    return [with_snapshots(db, g) for g in rows]

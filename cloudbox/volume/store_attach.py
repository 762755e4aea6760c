"""Queries of attachments, QoS specs, uploads and backends (tables of volume migration 2)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, NotFound
from cloudbox.volume import core
from cloudbox.volume.store import _one, decode, found_row

ATTACHMENT_SORT = {"id": "id", "created_at": "created_at", "volume_id": "volume_id", "status": "attach_status"}


def attachments_of(db: sqlite_utils.Database, volume_id: str) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query("SELECT * FROM volume_attachments WHERE volume_id = ? ORDER BY created_at, id",
                                        [volume_id])]


def attachments_of_many(db: sqlite_utils.Database, volume_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {v: [] for v in volume_ids}
    if volume_ids:
        marks = ",".join("?" * len(volume_ids))
        for r in db.query(f"SELECT * FROM volume_attachments WHERE volume_id IN ({marks}) ORDER BY created_at, id",
                          volume_ids):
            out[r["volume_id"]].append(decode(r))
    return out


def get_attachment(db: sqlite_utils.Database, attachment_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volume_attachments WHERE id = ?", [attachment_id])


def must_attachment(db: sqlite_utils.Database, attachment_id: str) -> dict[str, Any]:
    return found_row(get_attachment(db, attachment_id), "Volume attachment", attachment_id)


def visible_attachment(db: sqlite_utils.Database, viewer: core.Viewer, attachment_id: str) -> dict[str, Any]:
    return found_row(get_attachment(db, attachment_id), "Volume attachment", attachment_id, viewer)


def list_attachments(db: sqlite_utils.Database, viewer: core.Viewer, filters: dict[str, str], marker: str | None,
                     limit: int) -> list[dict[str, Any]]:
    clauses, params = ["1"], []
    if not viewer.sees_all:
        clauses.append("project_id = ?")
        params.append(viewer.project_id)
    for column, value in filters.items():
        clauses.append(f"{column} = ?")
        params.append(value)
    if marker:
        found = get_attachment(db, marker)
        if found is None:
            raise BadRequest(f"Invalid input received: marker attachment {marker[:40]} could not be found.")
        clauses.append("(created_at > ? OR (created_at = ? AND id > ?))")
        params.extend([found["created_at"], found["created_at"], found["id"]])
    sql = (f"SELECT * FROM volume_attachments WHERE {' AND '.join(clauses)} ORDER BY created_at, id LIMIT ?")
    return [decode(r) for r in db.query(sql, [*params, limit + 1])]


def remote_attachments(db: sqlite_utils.Database, host: str) -> list[dict[str, Any]]:
    """Attachments of this host's volumes by guests on other nodes, reached over NBD (what the
    host's export daemon serves), with the volume's readonly flag."""
    return [{**decode(r), "volume_readonly": bool(r["volume_readonly"])} for r in db.query(
        "SELECT a.*, v.readonly AS volume_readonly FROM volume_attachments a JOIN volumes v ON v.id = a.volume_id"
        " WHERE v.host = ? AND a.attached_host IS NOT NULL AND a.attached_host != ?"
        " AND a.attach_status IN ('attaching', 'attached')"
        " AND json_extract(a.connection_info, '$.driver_volume_type') = 'nbd' ORDER BY a.created_at, a.id",
        [host, host])]


# --- QoS specs ---------------------------------------------------------------------------------
def get_qos(db: sqlite_utils.Database, qos_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volume_qos_specs WHERE id = ?", [qos_id])


def must_qos(db: sqlite_utils.Database, qos_id: str) -> dict[str, Any]:
    found = get_qos(db, qos_id)
    if found is None:
        raise NotFound(f"QoS spec {qos_id} could not be found.")
    return found


def list_qos(db: sqlite_utils.Database, marker: str | None, limit: int) -> list[dict[str, Any]]:
    if marker:
        if not db.execute("SELECT 1 FROM volume_qos_specs WHERE id = ?", [marker]).fetchone():
            raise BadRequest(f"Invalid input received: marker QoS specs {marker[:40]} could not be found.")
        rows = db.query("SELECT * FROM volume_qos_specs WHERE (created_at, id) > "
                        "(SELECT created_at, id FROM volume_qos_specs WHERE id = ?) ORDER BY created_at, id LIMIT ?",
                        [marker, limit + 1])
    else:
        rows = db.query("SELECT * FROM volume_qos_specs ORDER BY created_at, id LIMIT ?", [limit + 1])
    return [decode(r) for r in rows]


def qos_types(db: sqlite_utils.Database, qos_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query("SELECT id, name FROM volume_types WHERE qos_specs_id = ? ORDER BY name, id",
                                      [qos_id])]


def qos_of_type(db: sqlite_utils.Database, type_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT q.* FROM volume_qos_specs q JOIN volume_types t ON t.qos_specs_id = q.id WHERE t.id = ?",
                [type_id])


# --- uploads and backends ----------------------------------------------------------------------
def upload_of(db: sqlite_utils.Database, volume_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volume_uploads WHERE volume_id = ?", [volume_id])


def uploads_on(db: sqlite_utils.Database, host: str) -> list[dict[str, Any]]:
    """The uploads this host's worker runs, with the volume's fields."""
    return [dict(r) for r in db.query(
        "SELECT u.*, v.size, v.project_id, v.status FROM volume_uploads u JOIN volumes v ON v.id = u.volume_id"
        " WHERE v.host = ? AND v.status = 'uploading' ORDER BY u.created_at, u.volume_id", [host])]


def backends(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query("SELECT * FROM volume_backends ORDER BY host")]

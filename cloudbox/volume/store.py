"""Volume tables: migrations, rows, visibility, listing, quota usage; the StoreSpec.

The apply functions live in apply.py (its HANDLERS table).
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from cloudbox.errors import NotFound
from cloudbox.state.db import decode_columns, encode_columns
from cloudbox.state.migrations import StoreSpec
from cloudbox.volume import commands as c
from cloudbox.volume import core

MIGRATIONS = [
    f"""
    CREATE TABLE volumes (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, name TEXT, description TEXT,
        size INTEGER NOT NULL, status TEXT NOT NULL, host TEXT NOT NULL, availability_zone TEXT NOT NULL,
        volume_type_id TEXT NOT NULL, bootable INTEGER NOT NULL DEFAULT 0, readonly INTEGER NOT NULL DEFAULT 0,
        multiattach INTEGER NOT NULL DEFAULT 0, source_volid TEXT, snapshot_id TEXT, image_id TEXT,
        disk_format TEXT NOT NULL DEFAULT 'raw', pending_size INTEGER, metadata TEXT NOT NULL DEFAULT '{{}}',
        image_metadata TEXT NOT NULL DEFAULT '{{}}', message TEXT NOT NULL DEFAULT '',
        migration_status TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, launched_at TEXT);
    CREATE INDEX volumes_project ON volumes (project_id, created_at, id);
    CREATE INDEX volumes_host ON volumes (host, status);
    CREATE TABLE volume_snapshots (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, volume_id TEXT NOT NULL, name TEXT,
        description TEXT, size INTEGER NOT NULL, status TEXT NOT NULL, host TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{{}}', message TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX volume_snapshots_volume ON volume_snapshots (volume_id);
    CREATE INDEX volume_snapshots_project ON volume_snapshots (project_id, created_at, id);
    CREATE TABLE volume_types (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT, is_public INTEGER NOT NULL DEFAULT 1,
        extra_specs TEXT NOT NULL DEFAULT '{{}}', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE volume_type_access (
        type_id TEXT NOT NULL REFERENCES volume_types(id) ON DELETE CASCADE, project_id TEXT NOT NULL,
        PRIMARY KEY (type_id, project_id));
    CREATE TABLE volume_default_types (project_id TEXT PRIMARY KEY, type_id TEXT NOT NULL);
    CREATE TABLE volume_quotas (
        project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit INTEGER NOT NULL,
        PRIMARY KEY (project_id, resource));
    INSERT INTO volume_types (id, name, description, is_public, extra_specs, created_at, updated_at) VALUES
        ('{core.DEFAULT_TYPE_ID}', '{core.DEFAULT_TYPE_NAME}', 'Default Volume Type', 1, '{{}}',
         '2026-12-07T00:00:00.000000', '2026-12-07T00:00:00.000000');
    """,
    # 2: attachments (Cinder's volume_attachment), QoS specs and their types, uploads to images,
    # the volume backends each node registers (Cinder's cinder-volume services).
    """
    CREATE TABLE volume_attachments (
        id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, project_id TEXT NOT NULL, instance_uuid TEXT,
        attached_host TEXT, mountpoint TEXT, attach_mode TEXT NOT NULL DEFAULT 'rw', attach_status TEXT NOT NULL,
        connector TEXT NOT NULL DEFAULT '{}', connection_info TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        attach_time TEXT);
    CREATE INDEX volume_attachments_volume ON volume_attachments (volume_id, created_at, id);
    CREATE INDEX volume_attachments_project ON volume_attachments (project_id, created_at, id);
    CREATE TABLE volume_qos_specs (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, consumer TEXT NOT NULL, specs TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    ALTER TABLE volume_types ADD COLUMN qos_specs_id TEXT;
    CREATE TABLE volume_uploads (
        volume_id TEXT PRIMARY KEY, image_id TEXT NOT NULL, disk_format TEXT NOT NULL,
        restore_status TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE volume_backends (
        host TEXT PRIMARY KEY, node_id TEXT NOT NULL, driver TEXT NOT NULL, availability_zone TEXT NOT NULL,
        registered_at TEXT NOT NULL);
    """,
    # 3: the admin metadata Cinder shows among a volume's metadata (readonly), a snapshot's
    # progress as reported (os-update_snapshot_status), and user messages (why a volume or a
    # snapshot went to error; Cinder 3.3's /messages).
    """
    ALTER TABLE volumes ADD COLUMN admin_metadata TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE volume_snapshots ADD COLUMN progress TEXT;
    CREATE TABLE volume_messages (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, resource_type TEXT NOT NULL, resource_uuid TEXT,
        event_id TEXT NOT NULL, message_level TEXT NOT NULL, user_message TEXT NOT NULL,
        request_id TEXT NOT NULL, created_at TEXT NOT NULL, guaranteed_until TEXT NOT NULL);
    CREATE INDEX volume_messages_project ON volume_messages (project_id, created_at, id);
    """,
    # 4: volume transfers (Cinder's os-volume-transfer / volume-transfers): the key is kept as a
    # salted hash; an accepted or deleted transfer's row goes.
    """
    CREATE TABLE volume_transfers (
        id TEXT PRIMARY KEY, volume_id TEXT NOT NULL UNIQUE, project_id TEXT NOT NULL, name TEXT,
        salt TEXT NOT NULL, key_hash TEXT NOT NULL, no_snapshots INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL);
    CREATE INDEX volume_transfers_project ON volume_transfers (project_id, created_at, id);
    """,
    # 5: generic volume groups (3.13+): group types with their specs, groups of volumes (of the
    # group's volume types), group snapshots (one snapshot of each volume of the group).
    """
    CREATE TABLE volume_group_types (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT, is_public INTEGER NOT NULL DEFAULT 1,
        group_specs TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE volume_groups (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, name TEXT, description TEXT,
        status TEXT NOT NULL, group_type_id TEXT NOT NULL, volume_type_ids TEXT NOT NULL DEFAULT '[]',
        availability_zone TEXT NOT NULL, group_snapshot_id TEXT, source_group_id TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX volume_groups_project ON volume_groups (project_id, created_at, id);
    CREATE TABLE volume_group_snapshots (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, group_id TEXT NOT NULL,
        group_type_id TEXT NOT NULL, name TEXT, description TEXT, status TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX volume_group_snapshots_project ON volume_group_snapshots (project_id, created_at, id);
    ALTER TABLE volumes ADD COLUMN group_id TEXT;
    ALTER TABLE volume_snapshots ADD COLUMN group_snapshot_id TEXT;
    """,
    # 6: volume backups (Cinder's /backups): chunked, compressed objects in the owner's object
    # store; ``host`` is the node that reads the volume, ``restore_volume_id`` the target of a
    # restore in progress, ``volume_status`` what the volume returns to after ``backing-up``.
    """
    CREATE TABLE volume_backups (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, volume_id TEXT NOT NULL, snapshot_id TEXT,
        name TEXT, description TEXT, container TEXT NOT NULL, status TEXT NOT NULL, size INTEGER NOT NULL,
        object_count INTEGER NOT NULL DEFAULT 0, is_incremental INTEGER NOT NULL DEFAULT 0, parent_id TEXT,
        host TEXT NOT NULL, availability_zone TEXT NOT NULL, fail_reason TEXT, metadata TEXT NOT NULL DEFAULT '{}',
        volume_status TEXT, restore_volume_id TEXT, data_timestamp TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX volume_backups_project ON volume_backups (project_id, created_at, id);
    CREATE INDEX volume_backups_volume ON volume_backups (volume_id, created_at, id);
    CREATE INDEX volume_backups_parent ON volume_backups (parent_id);
    """,
]

JSON_COLUMNS = ("metadata", "image_metadata", "admin_metadata", "group_specs", "volume_type_ids", "extra_specs", "connector", "connection_info", "specs")
BOOL_COLUMNS = ("bootable", "readonly", "multiattach", "is_public", "no_snapshots", "is_incremental")
QUOTA_CLASS = "class:default"


def decode(row: dict[str, Any]) -> dict[str, Any]:
    out = decode_columns(row, JSON_COLUMNS, BOOL_COLUMNS)
    assert out is not None
    return out


def encode(changes: dict[str, Any]) -> dict[str, Any]:
    return encode_columns(changes, JSON_COLUMNS, BOOL_COLUMNS)


def _one(db: sqlite_utils.Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    rows = list(db.query(sql, params))
    return decode(rows[0]) if rows else None


def found_row(row: dict[str, Any] | None, what: str, row_id: str,
              viewer: core.Viewer | None = None) -> dict[str, Any]:
    """``row``, if it exists and (with ``viewer``) the viewer may see it; else Cinder's 404."""
    if row is None or (viewer is not None and not (viewer.sees_all or row["project_id"] == viewer.project_id)):
        raise NotFound(f"{what} {row_id} could not be found.")
    return row


# --- volumes ---------------------------------------------------------------------------------
def get_volume(db: sqlite_utils.Database, volume_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volumes WHERE id = ?", [volume_id])


def must_volume(db: sqlite_utils.Database, volume_id: str) -> dict[str, Any]:
    return found_row(get_volume(db, volume_id), "Volume", volume_id)


def visible_volume(db: sqlite_utils.Database, viewer: core.Viewer, volume_id: str) -> dict[str, Any]:
    return found_row(get_volume(db, volume_id), "Volume", volume_id, viewer)


def volume_view(db: sqlite_utils.Database, volume: dict[str, Any]) -> dict[str, Any]:
    """A volume with what its rendering needs: its type's name."""
    kind = get_type(db, volume["volume_type_id"])
    attachments = [decode(r) for r in db.query(
        "SELECT * FROM volume_attachments WHERE volume_id = ? ORDER BY created_at, id", [volume["id"]])]
    return {**volume, "volume_type": kind["name"] if kind else None, "attachments": attachments}


def visible_volume_view(db: sqlite_utils.Database, viewer: core.Viewer, volume_id: str) -> dict[str, Any]:
    return volume_view(db, visible_volume(db, viewer, volume_id))


def _keyset(db: sqlite_utils.Database, table: str, sort_sql: dict[str, str], opts: core.ListOptions,
            marker: str) -> tuple[str, list[Any]]:
    values = list(db.query(
        "SELECT " + ", ".join(f"{sort_sql[k]} AS k{i}" for i, (k, _) in enumerate(opts.sort))
        + f" FROM {table} WHERE id = ?", [marker]))[0]
    after, params = [], []
    for i, (key, direction) in enumerate(opts.sort):
        equal = [f"{sort_sql[k]} = ?" for k, _ in opts.sort[:i]]
        beyond = f"{sort_sql[key]} {'>' if direction == 'asc' else '<'} ?"
        after.append("(" + " AND ".join([*equal, beyond]) + ")")
        params.extend([values[f"k{j}"] for j in range(i)] + [values[f"k{i}"]])
    return "(" + " OR ".join(after) + ")", params


def _where(viewer: core.Viewer, opts: core.ListOptions) -> tuple[list[str], list[Any]]:
    """The WHERE clauses (and parameters) of a list's viewer and filters."""
    clauses: list[str] = ["1"]
    params: list[Any] = []
    if not viewer.sees_all:
        clauses.append("project_id = ?")
        params.append(viewer.project_id)
    for column, value in opts.equals.items():
        if column == "volume_type_id":  # by name or id, as Cinder
            clauses.append("volume_type_id IN (SELECT id FROM volume_types WHERE id = ? OR name = ?)")
            params.extend([value, value])
            continue
        clauses.append(f"{column} = ?")
        params.append(value)
    for column, value in opts.like.items():
        clauses.append(f"instr(coalesce({column}, ''), ?) > 0")
        params.append(value)
    for key, value in opts.metadata.items():
        clauses.append("json_extract(metadata, ?) = ?")
        params.extend([f'$."{key}"', value])
    return clauses, params


def count(db: sqlite_utils.Database, table: str, viewer: core.Viewer, opts: core.ListOptions) -> int:
    """How many rows a list's filters match, whatever its page (Cinder 3.45's with_count)."""
    clauses, params = _where(viewer, opts)
    return list(db.query(f"SELECT count(*) AS n FROM {table} WHERE {' AND '.join(clauses)}", params))[0]["n"]


def _list(db: sqlite_utils.Database, table: str, sort_sql: dict[str, str], viewer: core.Viewer,
          opts: core.ListOptions, marker: str | None, limit: int, what: str) -> list[dict[str, Any]]:
    clauses, params = _where(viewer, opts)
    if marker:
        found = _one(db, f"SELECT * FROM {table} WHERE id = ?", [marker])
        if found is None or not (viewer.sees_all or found["project_id"] == viewer.project_id):
            raise NotFound(f"The list's marker ({what} {marker[:40]}) could not be found.")  # Cinder's 404
        clause, extra = _keyset(db, table, sort_sql, opts, marker)
        clauses.append(clause)
        params.extend(extra)
    order = ", ".join(f"{sort_sql[k]} {d.upper()}" for k, d in opts.sort)
    sql = f"SELECT * FROM {table} WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT ? OFFSET ?"
    return [decode(r) for r in db.query(sql, [*params, limit + 1, opts.offset])]


def list_volumes(db: sqlite_utils.Database, viewer: core.Viewer, opts: core.ListOptions, marker: str | None,
                 limit: int) -> list[dict[str, Any]]:
    rows = _list(db, "volumes", core.VOLUME_SORT, viewer, opts, marker, limit, "volume")
    return [volume_view(db, r) for r in rows]


def volume_summary(db: sqlite_utils.Database, viewer: core.Viewer) -> dict[str, Any]:
    """Cinder 3.12's summary: how many volumes, their GB, and each metadata key's values."""
    where, params = ("1", []) if viewer.sees_all else ("project_id = ?", [viewer.project_id])
    row = list(db.query(f"SELECT count(*) AS n, coalesce(sum(size), 0) AS gb FROM volumes WHERE {where}", params))[0]
    metadata: dict[str, set[str]] = {}
    for r in db.query(f"SELECT metadata FROM volumes WHERE {where} AND metadata != '{{}}'", params):
        for key, value in json.loads(r["metadata"]).items():
            metadata.setdefault(key, set()).add(value)
    return {"total_count": row["n"], "total_size": row["gb"],
            "metadata": {k: sorted(v) for k, v in sorted(metadata.items())}}


def volumes_in(db: sqlite_utils.Database, host: str, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
    """The host's volumes in ``statuses``, but not those whose status an admin set (core.HELD)."""
    marks = ",".join("?" * len(statuses))
    return [decode(r) for r in db.query(f"SELECT * FROM volumes WHERE host = ? AND status IN ({marks})"
                                        " AND message != ? ORDER BY created_at, id", [host, *statuses, core.HELD])]


def snapshots_in(db: sqlite_utils.Database, host: str, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
    """The host's snapshots in ``statuses``, but not those whose status an admin set (core.HELD)."""
    marks = ",".join("?" * len(statuses))
    return [decode(r) for r in db.query(f"SELECT * FROM volume_snapshots WHERE host = ? AND status IN ({marks})"
                                        " AND message != ? ORDER BY created_at, id", [host, *statuses, core.HELD])]


# --- transfers -------------------------------------------------------------------------------------
def get_transfer(db: sqlite_utils.Database, transfer_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volume_transfers WHERE id = ?", [transfer_id])


def visible_transfer(db: sqlite_utils.Database, viewer: core.Viewer, transfer_id: str) -> dict[str, Any]:
    return found_row(get_transfer(db, transfer_id), "Transfer", transfer_id, viewer)


def _project_page(db: sqlite_utils.Database, table: str, what: str, viewer: core.Viewer, marker: str | None,
                  limit: int, *, newest_first: bool) -> list[dict[str, Any]]:
    """A page (``limit`` + 1 rows) of a table owned by projects, in (created_at, id) order, after
    ``marker`` (an unknown or unseen one is Cinder's 404)."""
    clauses, params = ["1"], []
    if not viewer.sees_all:
        clauses.append("project_id = ?")
        params.append(viewer.project_id)
    after, order = ("<", "DESC") if newest_first else (">", "ASC")
    if marker:
        found = _one(db, f"SELECT * FROM {table} WHERE id = ?", [marker])
        if found is None or not (viewer.sees_all or found["project_id"] == viewer.project_id):
            raise NotFound(f"The list's marker ({what} {marker[:40]}) could not be found.")
        clauses.append(f"(created_at {after} ? OR (created_at = ? AND id {after} ?))")
        params.extend([found["created_at"], found["created_at"], found["id"]])
    sql = (f"SELECT * FROM {table} WHERE {' AND '.join(clauses)} ORDER BY created_at {order}, id {order} LIMIT ?")
    return [decode(r) for r in db.query(sql, [*params, limit + 1])]


def project_page(db: sqlite_utils.Database, table: str, what: str, viewer: core.Viewer, marker: str | None,
                 limit: int) -> list[dict[str, Any]]:
    """A page of groups or group snapshots (oldest first)."""
    return _project_page(db, table, what, viewer, marker, limit, newest_first=False)


def list_transfers(db: sqlite_utils.Database, viewer: core.Viewer, marker: str | None,
                   limit: int) -> list[dict[str, Any]]:
    return _project_page(db, "volume_transfers", "transfer", viewer, marker, limit, newest_first=False)


# --- user messages (why something went to error) ---------------------------------------------------
def list_messages(db: sqlite_utils.Database, viewer: core.Viewer, marker: str | None,
                  limit: int) -> list[dict[str, Any]]:
    return _project_page(db, "volume_messages", "message", viewer, marker, limit, newest_first=True)


def get_message(db: sqlite_utils.Database, message_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM volume_messages WHERE id = ?", [message_id]))
    return dict(rows[0]) if rows else None


def visible_message(db: sqlite_utils.Database, viewer: core.Viewer, message_id: str) -> dict[str, Any]:
    return found_row(get_message(db, message_id), "Message", message_id, viewer)


def ids_on(db: sqlite_utils.Database, host: str) -> tuple[set[str], set[str]]:
    """Ids of the volumes and snapshots whose data this host keeps (for the orphan sweep)."""
    volumes = {r["id"] for r in db.query("SELECT id FROM volumes WHERE host = ?", [host])}
    snapshots = {r["id"] for r in db.query("SELECT id FROM volume_snapshots WHERE host = ?", [host])}
    return volumes, snapshots


# --- snapshots -------------------------------------------------------------------------------
def get_snapshot(db: sqlite_utils.Database, snapshot_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volume_snapshots WHERE id = ?", [snapshot_id])


def must_snapshot(db: sqlite_utils.Database, snapshot_id: str) -> dict[str, Any]:
    return found_row(get_snapshot(db, snapshot_id), "Snapshot", snapshot_id)


def visible_snapshot(db: sqlite_utils.Database, viewer: core.Viewer, snapshot_id: str) -> dict[str, Any]:
    return found_row(get_snapshot(db, snapshot_id), "Snapshot", snapshot_id, viewer)


def list_snapshots(db: sqlite_utils.Database, viewer: core.Viewer, opts: core.ListOptions, marker: str | None,
                   limit: int) -> list[dict[str, Any]]:
    return _list(db, "volume_snapshots", core.SNAPSHOT_SORT, viewer, opts, marker, limit, "snapshot")


def snapshots_of(db: sqlite_utils.Database, volume_id: str) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query("SELECT * FROM volume_snapshots WHERE volume_id = ? ORDER BY id",
                                        [volume_id])]


# --- types -----------------------------------------------------------------------------------
def get_type(db: sqlite_utils.Database, type_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM volume_types WHERE id = ?", [type_id])


def type_access(db: sqlite_utils.Database, type_id: str) -> list[str]:
    return [r["project_id"] for r in db.query(
        "SELECT project_id FROM volume_type_access WHERE type_id = ? ORDER BY project_id", [type_id])]


def may_use_type(viewer: core.Viewer, kind: dict[str, Any], access: list[str]) -> bool:
    return viewer.sees_all or kind["is_public"] or viewer.project_id in access


def find_type(db: sqlite_utils.Database, viewer: core.Viewer, name_or_id: str) -> dict[str, Any]:
    """A type the viewer may use, by id or name (NotFound otherwise)."""
    kind = get_type(db, name_or_id) or _one(db, "SELECT * FROM volume_types WHERE name = ?", [name_or_id])
    if kind is None or not may_use_type(viewer, kind, type_access(db, kind["id"])):
        raise NotFound(f"Volume type {name_or_id} could not be found.")
    return kind


def default_type(db: sqlite_utils.Database, project_id: str | None) -> dict[str, Any]:
    """The project's default type, else the cloud's, else __DEFAULT__."""
    for project in (project_id or "", ""):
        row = _one(db, "SELECT t.* FROM volume_default_types d JOIN volume_types t ON t.id = d.type_id"
                       " WHERE d.project_id = ?", [project])
        if row is not None:
            return row
    found = get_type(db, core.DEFAULT_TYPE_ID)
    assert found is not None
    return found


def list_types(db: sqlite_utils.Database, viewer: core.Viewer, is_public: bool | None) -> list[dict[str, Any]]:
    out = []
    for row in db.query("SELECT * FROM volume_types ORDER BY name, id"):
        kind = decode(row)
        if is_public is not None and kind["is_public"] != is_public:
            continue
        if may_use_type(viewer, kind, type_access(db, kind["id"])):
            out.append(kind)
    return out


def default_types(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query("SELECT * FROM volume_default_types ORDER BY project_id")]


# --- quotas ----------------------------------------------------------------------------------
def quota_limits(db: sqlite_utils.Database, project_id: str, defaults: dict[str, int]) -> dict[str, int]:
    """A project's limits: its own, else the default class set by an admin, else the settings';
    per-type limits for every type (-1 unless set)."""
    limits = dict(defaults)
    for name in [t["name"] for t in db.query("SELECT name FROM volume_types ORDER BY name")]:
        for resource in core.PER_TYPE:
            limits[f"{resource}_{name}"] = -1
    for owner in (QUOTA_CLASS, project_id):
        for row in db.query("SELECT resource, hard_limit FROM volume_quotas WHERE project_id = ?", [owner]):
            limits[row["resource"]] = row["hard_limit"]
    return limits


def host_usage(db: sqlite_utils.Database, host: str) -> list[dict[str, Any]]:
    """Per project, then in total: how many volumes and snapshots a node keeps, and their GB."""
    per: dict[str, dict[str, int]] = {}
    for table, count, size in (("volumes", "volume_count", "total_volume_gb"),
                               ("volume_snapshots", "snapshot_count", "total_snapshot_gb")):
        sql = f"SELECT project_id, count(*) AS n, sum(size) AS gb FROM {table} WHERE host = ? GROUP BY project_id"
        for row in db.query(sql, [host]):
            entry = per.setdefault(row["project_id"], {})
            entry[count], entry[size] = row["n"], row["gb"] or 0
    keys = ("volume_count", "total_volume_gb", "snapshot_count", "total_snapshot_gb")
    total = {k: sum(e.get(k, 0) for e in per.values()) for k in keys}
    rows = [{"project": "(total)", **total}, *({"project": p, **{k: e.get(k, 0) for k in keys}}
                                               for p, e in sorted(per.items()))]
    return rows


def quota_usage(db: sqlite_utils.Database, project_id: str) -> dict[str, int]:
    """In use by a project: volumes and their GB (the larger size while extending), snapshots and
    their GB (Cinder counts snapshots in gigabytes), and the same per type."""
    usage = {"volumes": 0, "gigabytes": 0, "snapshots": 0, "backups": 0, "backup_gigabytes": 0, "groups": 0,
             "per_volume_gigabytes": 0}
    sql = ("SELECT t.name AS type, count(*) AS n, sum(max(v.size, coalesce(v.pending_size, 0))) AS gb"
           " FROM volumes v JOIN volume_types t ON t.id = v.volume_type_id WHERE v.project_id = ? GROUP BY t.name")
    for row in db.query(sql, [project_id]):
        usage["volumes"] += row["n"]
        usage["gigabytes"] += row["gb"]
        usage[f"volumes_{row['type']}"] = row["n"]
        usage[f"gigabytes_{row['type']}"] = row["gb"]
    sql = ("SELECT t.name AS type, count(*) AS n, sum(s.size) AS gb FROM volume_snapshots s"
           " JOIN volumes v ON v.id = s.volume_id JOIN volume_types t ON t.id = v.volume_type_id"
           " WHERE s.project_id = ? GROUP BY t.name")
    for row in db.query(sql, [project_id]):
        usage["snapshots"] += row["n"]
        usage["gigabytes"] += row["gb"]
        usage[f"snapshots_{row['type']}"] = row["n"]
        usage[f"gigabytes_{row['type']}"] = usage.get(f"gigabytes_{row['type']}", 0) + row["gb"]
    row = list(db.query("SELECT count(*) AS n, coalesce(sum(size), 0) AS gb FROM volume_backups WHERE project_id = ?",
                        [project_id]))[0]
    usage["backups"], usage["backup_gigabytes"] = row["n"], row["gb"]
    return usage


def has_own_quota(db: sqlite_utils.Database, project_id: str) -> bool:
    return bool(list(db.query("SELECT 1 FROM volume_quotas WHERE project_id = ? LIMIT 1", [project_id])))


STORE = StoreSpec("volume", MIGRATIONS, c, ("cloudbox.volume.apply", "cloudbox.volume.apply_attach",
                                                  "cloudbox.volume.apply_groups", "cloudbox.volume.apply_backups"))

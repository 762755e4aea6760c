"""Object service tables: migrations, rows, listings; the StoreSpec.

Names compare as SQLite BINARY text (UTF-8 bytes), which is Swift's listing order. The apply
functions live in apply.py (its HANDLERS table).
"""

from __future__ import annotations

from typing import Any, Iterable

import sqlite_utils

from cloudbox.object import commands as c
from cloudbox.object import core
from cloudbox.state.db import decode_columns, encode_columns
from cloudbox.state.migrations import StoreSpec

MIGRATIONS = [
    """
    CREATE TABLE object_accounts (
        account TEXT PRIMARY KEY, metadata TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL,
        updated_at REAL NOT NULL);
    CREATE TABLE object_containers (
        account TEXT NOT NULL, name TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
        object_count INTEGER NOT NULL DEFAULT 0, bytes_used INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (account, name));
    CREATE TABLE object_objects (
        account TEXT NOT NULL, container TEXT NOT NULL, name TEXT NOT NULL, data_id TEXT NOT NULL,
        size INTEGER NOT NULL, etag TEXT NOT NULL, content_type TEXT NOT NULL, last_modified REAL NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}', headers TEXT NOT NULL DEFAULT '{}', delete_at INTEGER,
        nodes TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (account, container, name));
    CREATE INDEX object_objects_delete_at ON object_objects (delete_at) WHERE delete_at IS NOT NULL;
    CREATE INDEX object_objects_data ON object_objects (data_id);
    """,
    # 2: the md5 of the file itself (an SLO's or an S3 multipart object's ETag is not), for the auditor.
    """
    ALTER TABLE object_objects ADD COLUMN md5 TEXT NOT NULL DEFAULT '';
    """,
]

JSON_COLUMNS = ("metadata", "headers", "nodes")


def decode(row: dict[str, Any]) -> dict[str, Any]:
    out = decode_columns(row, JSON_COLUMNS, ())
    assert out is not None
    return out


def encode(changes: dict[str, Any]) -> dict[str, Any]:
    return encode_columns(changes, JSON_COLUMNS, ())


def _one(db: sqlite_utils.Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    rows = list(db.query(sql, params))
    return decode(rows[0]) if rows else None


def get_account(db: sqlite_utils.Database, account: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM object_accounts WHERE account = ?", [account])


def get_container(db: sqlite_utils.Database, account: str, name: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM object_containers WHERE account = ? AND name = ?", [account, name])


def get_object(db: sqlite_utils.Database, account: str, container: str, name: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM object_objects WHERE account = ? AND container = ? AND name = ?",
                [account, container, name])


def account_info(db: sqlite_utils.Database, account: str) -> core.AccountInfo:
    row = get_account(db, account)
    totals = list(db.query(
        "SELECT count(*) AS n, coalesce(sum(object_count), 0) AS objects, coalesce(sum(bytes_used), 0) AS bytes"
        " FROM object_containers WHERE account = ?", [account]))[0]
    return core.AccountInfo(account=account, container_count=totals["n"], object_count=totals["objects"],
                            bytes_used=totals["bytes"], metadata=row["metadata"] if row else {},
                            created_at=row["created_at"] if row else 0.0)


def container_info(row: dict[str, Any]) -> core.ContainerInfo:
    return core.ContainerInfo(account=row["account"], name=row["name"], object_count=row["object_count"],
                              bytes_used=row["bytes_used"], created_at=row["created_at"], metadata=row["metadata"])


def object_info(row: dict[str, Any]) -> core.ObjectInfo:
    return core.ObjectInfo(account=row["account"], container=row["container"], name=row["name"], size=row["size"],
                           etag=row["etag"], content_type=row["content_type"], last_modified=row["last_modified"],
                           metadata=row["metadata"], headers=row["headers"], data_id=row["data_id"],
                           nodes=tuple(row.get("nodes", ())))


def container_view(db: sqlite_utils.Database, account: str, name: str) -> core.ContainerInfo | None:
    row = get_container(db, account, name)
    return container_info(row) if row else None


def object_view(db: sqlite_utils.Database, account: str, container: str, name: str) -> core.ObjectInfo | None:
    row = get_object(db, account, container, name)
    return object_info(row) if row else None


def _listing(db: sqlite_utils.Database, table: str, scope: str, scope_params: list[Any],
             opts: core.ListOptions) -> list[dict[str, Any] | core.Subdir]:
    """One page of names under ``scope`` with Swift's prefix / delimiter / marker / end_marker /
    reverse; under a delimiter, each roll-up is one entry and the query skips past its names."""
    out: list[dict[str, Any] | core.Subdir] = []
    # In a reverse listing the marker is the upper bound and end_marker the lower (both exclusive).
    low, high = (opts.end_marker, opts.marker) if opts.reverse else (opts.marker, opts.end_marker)
    low_inclusive = ""
    if opts.prefix:
        low_inclusive = opts.prefix
        upper = opts.prefix + "\U0010ffff"
        high = min(high, upper) if high else upper
    while len(out) < opts.limit:
        conds, params = [scope], list(scope_params)
        if low:
            conds.append("name > ?")
            params.append(low)
        if low_inclusive:
            conds.append("name >= ?")
            params.append(low_inclusive)
        if high:
            conds.append("name < ?")
            params.append(high)
        order = "DESC" if opts.reverse else "ASC"
        want = opts.limit - len(out)
        rows = list(db.query(f"SELECT * FROM {table} WHERE {' AND '.join(conds)} ORDER BY name {order} LIMIT ?",
                             params + [want]))
        if not rows:
            break
        rolled = False
        for row in rows:
            name = row["name"]
            if opts.delimiter:
                index = name.find(opts.delimiter, len(opts.prefix))
                if index >= 0:
                    subdir = name[:index + 1]
                    out.append(core.Subdir(subdir))
                    if opts.reverse:
                        high = subdir
                    else:
                        low = core.after_subdir(subdir)
                    rolled = True
                    break
            out.append(decode(row))
            if opts.reverse:
                high = name
            else:
                low = name
        if not rolled and len(rows) < want:
            break
    return out


def list_containers(db: sqlite_utils.Database, account: str,
                    opts: core.ListOptions) -> list[core.ContainerInfo | core.Subdir]:
    rows = _listing(db, "object_containers", "account = ?", [account], opts)
    return [r if isinstance(r, core.Subdir) else container_info(r) for r in rows]


def list_objects(db: sqlite_utils.Database, account: str, container: str,
                 opts: core.ListOptions) -> list[core.ObjectInfo | core.Subdir]:
    rows = _listing(db, "object_objects", "account = ? AND container = ?", [account, container], opts)
    return [r if isinstance(r, core.Subdir) else object_info(r) for r in rows]


def newest_version(db: sqlite_utils.Database, account: str, container: str, prefix: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM object_objects WHERE account = ? AND container = ? AND name >= ? AND name < ?"
                " ORDER BY name DESC LIMIT 1", [account, container, prefix, prefix + "\U0010ffff"])


def objects_after(db: sqlite_utils.Database, after: tuple[str, str, str], limit: int) -> list[dict[str, Any]]:
    """Every object row in key order, a page at a time (the replicator's walk)."""
    return [decode(r) for r in db.query(
        "SELECT * FROM object_objects WHERE (account, container, name) > (?, ?, ?)"
        " ORDER BY account, container, name LIMIT ?", [*after, limit])]


def referenced(db: sqlite_utils.Database, data_ids: Iterable[str]) -> set[str]:
    """Which of ``data_ids`` a row still names (the sweep keeps those files)."""
    ids = list(data_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        marks = ",".join("?" * len(part))
        found.update(r["data_id"] for r in db.query(
            f"SELECT data_id FROM object_objects WHERE data_id IN ({marks})", part))
    return found


def expired(db: sqlite_utils.Database, now: float, limit: int) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query(
        "SELECT * FROM object_objects WHERE delete_at IS NOT NULL AND delete_at <= ? ORDER BY delete_at LIMIT ?",
        [now, limit])]


STORE = StoreSpec(service="object", migrations=MIGRATIONS, commands=c, appliers=("cloudbox.object.apply",))

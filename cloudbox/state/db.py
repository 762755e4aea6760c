"""Opening the node database, and hashing its replicated tables."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Collection

from cloudbox.errors import SetupError

# Tables that are not replicated state: the log itself, and what this node
# observes (prefix "local_").  Everything else must hash the same on every
# node and after a replay.
LOG_TABLE = "_log"
READER_CACHE_KIB = 512


def keep_private(path: Path | str) -> None:
    """The database holds password hashes and token keys: only its owner may read it.  SQLite gives
    its -wal and -shm files the database file's mode, so making the file 0600 first covers them."""
    path = Path(path)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)
        except FileNotFoundError:
            pass


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    if not readonly:
        keep_private(path)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the proposer is answered, so an
        # acknowledged write survives a crash of the process or of the host.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        if readonly:
            conn.execute("PRAGMA query_only=ON")
            # Readers are pooled, one per concurrent read, and any commit empties their page caches
            # anyway: a small cache each (SQLite's default, 2 MiB, held 2.1 MiB per reader).
            conn.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise SetupError(f"database {path} is unusable: {exc}") from exc
    return conn


def check_integrity(conn: sqlite3.Connection, path: Path | str) -> None:
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise SetupError(f"database {path} is corrupt: {exc}") from exc
    if rows != ["ok"]:
        raise SetupError(f"database {path} is corrupt: {'; '.join(rows[:3])}")


def replicated_tables(conn: sqlite3.Connection) -> list[str]:
    names = [
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    ]
    return [n for n in names if n != LOG_TABLE and not n.startswith(("local_", "sqlite_"))]


def table_hashes(conn: sqlite3.Connection) -> dict[str, str]:
    """sha256 of every replicated table's rows, in a deterministic order."""
    hashes = {}
    for table in replicated_tables(conn):
        columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
        order = ", ".join(str(i) for i in range(1, len(columns) + 1))
        digest = hashlib.sha256(",".join(columns).encode())
        for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}'):
            digest.update(repr(row).encode())
        hashes[table] = digest.hexdigest()
    return hashes


def insert_row(conn: sqlite3.Connection, table: str, row: dict[str, Any], *, replace: bool = False) -> None:
    """Insert one row with plain SQL: about 15x cheaper than sqlite-utils' ``insert``, which looks the
    table up and opens a savepoint for every row.  Values are stored as sqlite-utils stores them
    (lists, tuples and dicts as its JSON text), so either way writes the same bytes."""
    columns = list(row)
    sql = _insert_sql(table, tuple(columns), replace)
    conn.execute(sql, [_stored(row[c]) for c in columns])


@functools.lru_cache(maxsize=512)
def _insert_sql(table: str, columns: tuple[str, ...], replace: bool) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return (f'INSERT{" OR REPLACE" if replace else ""} INTO "{table}" ({names}) '
            f'VALUES ({", ".join("?" for _ in columns)})')


def _stored(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=repr, ensure_ascii=False)  # sqlite-utils' jsonify_if_needed
    return value


def decode_columns(row: dict[str, Any] | None, json_columns: Collection[str],
                   bool_columns: Collection[str]) -> dict[str, Any] | None:
    """A row as the services use it: JSON columns parsed, 0/1 columns as booleans."""
    if row is None:
        return None
    out = dict(row)
    for key in out.keys() & set(json_columns):
        out[key] = json.loads(out[key])
    for key in out.keys() & set(bool_columns):
        out[key] = bool(out[key])
    return out


def encode_columns(changes: dict[str, Any], json_columns: Collection[str],
                   bool_columns: Collection[str]) -> dict[str, Any]:
    """Values as stored: JSON columns as canonical text (sorted keys, no spaces: equal on every
    node), booleans as 0/1. The inverse of ``decode_columns``."""
    out = dict(changes)
    for key in out.keys() & set(json_columns):
        out[key] = json.dumps(out[key], sort_keys=True, separators=(",", ":"))
    for key in out.keys() & set(bool_columns):
        out[key] = int(bool(out[key]))
    return out


def sync(path: Path | str) -> None:
    """Flush a file's bytes, or a directory's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

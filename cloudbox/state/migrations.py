"""Per-service, append-only schema migrations.

Each service's store module lists its migrations as SQL scripts; migration
``i`` (1-based) is applied once and recorded in ``_migrations``.  A landed
migration is never edited: ``tests/test_migrations.py`` pins each one's hash.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable, Sequence

Apply = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class StoreSpec:
    """What the state core needs from a service: its schema and its apply."""

    service: str
    migrations: Sequence[str]
    apply: Apply


def migration_hash(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:16]


def migrate(conn: sqlite3.Connection, stores: Sequence[StoreSpec]) -> list[tuple[str, int]]:
    """Bring every store's schema up to date; returns the (service, version) pairs applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations ("
        " service TEXT NOT NULL, version INTEGER NOT NULL, hash TEXT NOT NULL,"
        " PRIMARY KEY (service, version))"
    )
    applied: list[tuple[str, int]] = []
    for store in stores:
        done = {
            row[0]: row[1]
            for row in conn.execute("SELECT version, hash FROM _migrations WHERE service = ?", (store.service,))
        }
        for version, sql in enumerate(store.migrations, start=1):
            digest = migration_hash(sql)
            if version in done:
                if done[version] != digest:
                    raise RuntimeError(
                        f"migration {store.service} #{version} changed after it was applied"
                    )
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO _migrations (service, version, hash) VALUES (?, ?, ?)",
                    (store.service, version, digest),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            applied.append((store.service, version))
    return applied


def _statements(script: str) -> list[str]:
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements

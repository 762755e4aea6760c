"""Per-service, append-only schema migrations.

Each service's store module lists its migrations as SQL scripts; migration
``i`` (1-based) is applied once and recorded in ``_migrations``.  A landed
migration is never edited: ``tests/test_migrations.py`` pins each one's hash.
"""

from __future__ import annotations

import hashlib
import importlib
import sqlite3
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

from cloudbox.errors import InternalError
from cloudbox.state.commands import REGISTRY, Command

Handler = Callable[[Any, Any], Any]  # apply(db, command) of one command type


@dataclass(frozen=True)
class StoreSpec:
    """What the state core needs from a service: its schema, its commands and how to apply each.

    ``commands`` is the service's commands module: the store module imports it to build this
    spec, so importing a store registers every command type it applies (a log can be decoded
    with nothing else imported).  A service whose commands outgrow one module keeps the rest in
    sibling modules named ``commands_<part>``, imported by the main one.  ``appliers`` names the modules whose ``HANDLERS`` table maps
    each command type to its apply function; they are imported on the first apply, because
    some apply modules import their store.
    """

    service: str
    migrations: Sequence[str]
    commands: ModuleType
    appliers: Sequence[str]

    @cached_property
    def handlers(self) -> Mapping[type[Command], Handler]:
        table: dict[type[Command], Handler] = {}
        for name in self.appliers:
            for kind, handler in importlib.import_module(name).HANDLERS.items():
                if kind in table:
                    raise RuntimeError(f"{kind.TYPE} has two apply functions in {self.service}")
                table[kind] = handler
        return table

    def command_types(self) -> list[type[Command]]:
        """Every command type this store's commands module (and its ``commands_<part>`` siblings) registers."""
        name = self.commands.__name__
        return [cls for cls in REGISTRY.values() if cls.__module__ == name or cls.__module__.startswith(name + "_")]

    def apply(self, db: Any, cmd: Command) -> Any:
        handler = self.handlers.get(type(cmd))
        if handler is None:  # a command reached the wrong store, or a type lost its handler
            raise InternalError(f"the {self.service} store has no apply function for {cmd.TYPE}")
        return handler(db, cmd)


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

"""Orchestration tables: stacks, their resources and events; queries; the StoreSpec.

A stack's ``action``/``status`` pair is Heat's stack_status (CREATE_IN_PROGRESS is action
CREATE, status IN_PROGRESS); the same for each resource. ``runner`` names the node whose engine
drives a stack in progress (a node that starts finds its own and resumes them). The apply
functions live in apply.py (its HANDLERS table).
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.errors import NotFound
from cloudbox.orchestration import commands as c
from cloudbox.orchestration.software_store import MIGRATION as SOFTWARE_MIGRATION
from cloudbox.state.db import decode_columns, encode_columns
from cloudbox.state.migrations import StoreSpec

MIGRATIONS = [
    """
    CREATE TABLE orchestration_stacks (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '', action TEXT NOT NULL, status TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '', template TEXT NOT NULL DEFAULT '{}',
        environment TEXT NOT NULL DEFAULT '{}', files TEXT NOT NULL DEFAULT '{}',
        parameters TEXT NOT NULL DEFAULT '{}', previous TEXT NOT NULL DEFAULT '{}',
        disable_rollback INTEGER NOT NULL DEFAULT 1, timeout_mins INTEGER, tags TEXT NOT NULL DEFAULT '[]',
        parent_id TEXT, runner TEXT NOT NULL DEFAULT '', event_seq INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL, updated_at TEXT);
    CREATE UNIQUE INDEX orchestration_stacks_name ON orchestration_stacks (project_id, name);
    CREATE INDEX orchestration_stacks_runner ON orchestration_stacks (runner, status);
    CREATE TABLE orchestration_resources (
        id TEXT PRIMARY KEY, stack_id TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
        physical_id TEXT NOT NULL DEFAULT '', action TEXT NOT NULL, status TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '', properties TEXT NOT NULL DEFAULT '{}',
        attributes TEXT NOT NULL DEFAULT '{}', data TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL, updated_at TEXT);
    CREATE UNIQUE INDEX orchestration_resources_name ON orchestration_resources (stack_id, name);
    CREATE TABLE orchestration_events (
        id TEXT PRIMARY KEY, stack_id TEXT NOT NULL, seq INTEGER NOT NULL, resource_name TEXT NOT NULL,
        physical_id TEXT NOT NULL DEFAULT '', resource_type TEXT NOT NULL, action TEXT NOT NULL,
        status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);
    CREATE UNIQUE INDEX orchestration_events_seq ON orchestration_events (stack_id, seq);
    """,
    # Stored plans (/cloudbox/v1/orchestration/stacks/{id}/plans): an update's parts, checked and
    # planned now, applied later only while the stack's event_seq is still stack_version.
    """
    CREATE TABLE orchestration_plans (
        id TEXT PRIMARY KEY, stack_id TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
        stack_version INTEGER NOT NULL, changes TEXT NOT NULL DEFAULT '{}', plan TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL);
    CREATE INDEX orchestration_plans_stack ON orchestration_plans (stack_id, created_at);
    """,
    SOFTWARE_MIGRATION,  # Heat's software configs and deployments (software_store.py)
]

JSON_COLUMNS = ("template", "environment", "files", "parameters", "previous", "tags", "properties", "attributes",
                "data", "changes", "plan")
BOOL_COLUMNS = ("disable_rollback",)


def decode(row: dict[str, Any]) -> dict[str, Any]:
    out = decode_columns(row, JSON_COLUMNS, BOOL_COLUMNS)
    assert out is not None
    return out


def encode(changes: dict[str, Any]) -> dict[str, Any]:
    return encode_columns(changes, JSON_COLUMNS, BOOL_COLUMNS)


def _one(db: sqlite_utils.Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    rows = list(db.query(sql, params))
    return decode(rows[0]) if rows else None


def _filter(clauses: list[str], params: list[Any], filters: dict[str, str], status_key: str) -> None:
    """Equality filters; ``status_key`` matches the status alone or Heat's ACTION_STATUS."""
    for column, value in filters.items():
        if column == status_key:
            clauses.append("(status = ? OR action || '_' || status = ?)")
            params.extend([value, value])
        else:
            clauses.append(f"{column} = ?")
            params.append(value)


# --- stacks ------------------------------------------------------------------------------------
def get_stack(db: sqlite_utils.Database, stack_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM orchestration_stacks WHERE id = ?", [stack_id])


def must_stack(db: sqlite_utils.Database, stack_id: str) -> dict[str, Any]:
    row = get_stack(db, stack_id)
    if row is None:
        raise NotFound(f"The Stack ({stack_id}) could not be found.")
    return row


def find_stack(db: sqlite_utils.Database, project_id: str | None, name_or_id: str) -> dict[str, Any] | None:
    """A stack by id (any project: the caller checks who may see it) or by name in ``project_id``."""
    row = get_stack(db, name_or_id)
    if row is None and project_id:
        row = _one(db, "SELECT * FROM orchestration_stacks WHERE project_id = ? AND name = ?", [project_id, name_or_id])
    return row


def list_stacks(db: sqlite_utils.Database, project_id: str | None, filters: dict[str, str], marker: str | None,
                limit: int, sort_key: str, sort_dir: str) -> list[dict[str, Any]]:
    """A page (``limit`` + 1 rows) of stacks of ``project_id`` (all projects when None)."""
    clauses, params = ["parent_id IS NULL"], []
    if project_id is not None:
        clauses.append("project_id = ?")
        params.append(project_id)
    _filter(clauses, params, filters, "status")
    op, order = (">", "ASC") if sort_dir == "asc" else ("<", "DESC")
    if marker:
        found = get_stack(db, marker)
        if found is None:
            raise NotFound(f"The marker {marker[:40]} could not be found.")
        clauses.append(f"({sort_key} {op} ? OR ({sort_key} = ? AND id {op} ?))")
        params.extend([found[sort_key], found[sort_key], found["id"]])
    sql = (f"SELECT * FROM orchestration_stacks WHERE {' AND '.join(clauses)}"
           f" ORDER BY {sort_key} {order}, id {order} LIMIT ?")
    return [decode(r) for r in db.query(sql, [*params, limit + 1])]


def stacks_run_by(db: sqlite_utils.Database, runner: str) -> list[dict[str, Any]]:
    """The stacks in progress that ``runner``'s engine was driving (to resume after a restart)."""
    return [decode(r) for r in db.query(
        "SELECT * FROM orchestration_stacks WHERE runner = ? AND status = 'IN_PROGRESS' ORDER BY created_at, id",
        [runner])]


def stacks_in_progress(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every stack in progress with its runner (a live node takes over those of a node that is down)."""
    return [dict(r) for r in db.query(
        "SELECT id, runner, parent_id FROM orchestration_stacks WHERE status = 'IN_PROGRESS' ORDER BY created_at, id")]


# --- plans -------------------------------------------------------------------------------------
def get_plan(db: sqlite_utils.Database, plan_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM orchestration_plans WHERE id = ?", [plan_id])


def plans_of(db: sqlite_utils.Database, stack_id: str) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query(
        "SELECT * FROM orchestration_plans WHERE stack_id = ? ORDER BY created_at, id", [stack_id])]


# --- resources ---------------------------------------------------------------------------------
def resources_of(db: sqlite_utils.Database, stack_id: str) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query(
        "SELECT * FROM orchestration_resources WHERE stack_id = ? ORDER BY created_at, name", [stack_id])]


def get_resource(db: sqlite_utils.Database, stack_id: str, name: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM orchestration_resources WHERE stack_id = ? AND name = ?", [stack_id, name])


def resource_by_physical_id(db: sqlite_utils.Database, physical_id: str) -> dict[str, Any] | None:
    return _one(db, "SELECT * FROM orchestration_resources WHERE physical_id = ? LIMIT 1", [physical_id])


# --- events ------------------------------------------------------------------------------------
def events_of(db: sqlite_utils.Database, stack_id: str, resource_name: str | None, marker: str | None, limit: int,
              sort_dir: str, filters: dict[str, str]) -> list[dict[str, Any]]:
    """A page (``limit`` + 1 rows) of a stack's events in log order (newest first with desc)."""
    clauses, params = ["stack_id = ?"], [stack_id]
    if resource_name is not None:
        clauses.append("resource_name = ?")
        params.append(resource_name)
    _filter(clauses, params, filters, "resource_status")
    op, order = (">", "ASC") if sort_dir == "asc" else ("<", "DESC")
    if marker:
        found = _one(db, "SELECT * FROM orchestration_events WHERE id = ? AND stack_id = ?", [marker, stack_id])
        if found is None:
            raise NotFound(f"The event {marker[:40]} could not be found.")
        clauses.append(f"seq {op} ?")
        params.append(found["seq"])
    sql = f"SELECT * FROM orchestration_events WHERE {' AND '.join(clauses)} ORDER BY seq {order} LIMIT ?"
    return [dict(r) for r in db.query(sql, [*params, limit + 1])]


def get_event(db: sqlite_utils.Database, stack_id: str, event_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM orchestration_events WHERE stack_id = ? AND id = ?", [stack_id, event_id]))
    return dict(rows[0]) if rows else None


STORE = StoreSpec("orchestration", MIGRATIONS, c,
                  ("cloudbox.orchestration.apply", "cloudbox.orchestration.software_store"))

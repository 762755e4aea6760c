"""Software configs and deployments: the migration (listed by store.py), queries, and apply of
their commands (``HANDLERS``, named in the orchestration StoreSpec's appliers)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.errors import Conflict, NotFound
from cloudbox.orchestration import commands_software as c
from cloudbox.state.db import decode_columns, encode_columns
from cloudbox.state.migrations import Handler

CONFIGS, DEPLOYMENTS = "orchestration_software_configs", "orchestration_software_deployments"

MIGRATION = """
    CREATE TABLE orchestration_software_configs (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        config_group TEXT NOT NULL, config TEXT NOT NULL DEFAULT '""', inputs TEXT NOT NULL DEFAULT '[]',
        outputs TEXT NOT NULL DEFAULT '[]', options TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
    CREATE INDEX orchestration_software_configs_project ON orchestration_software_configs (project_id, created_at);
    CREATE TABLE orchestration_software_deployments (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, server_id TEXT NOT NULL, config_id TEXT NOT NULL,
        input_values TEXT NOT NULL DEFAULT '{}', output_values TEXT NOT NULL DEFAULT '{}', action TEXT NOT NULL,
        status TEXT NOT NULL, status_reason TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT);
    CREATE INDEX orchestration_software_deployments_server ON orchestration_software_deployments (server_id);
    CREATE INDEX orchestration_software_deployments_config ON orchestration_software_deployments (config_id);
    CREATE INDEX orchestration_software_deployments_project
        ON orchestration_software_deployments (project_id, created_at);
    """

JSON_COLUMNS = ("config", "inputs", "outputs", "options", "input_values", "output_values")


def decode(row: dict[str, Any]) -> dict[str, Any]:
    out = decode_columns(row, JSON_COLUMNS, ())
    assert out is not None
    return out


def encode(changes: dict[str, Any]) -> dict[str, Any]:
    return encode_columns(changes, JSON_COLUMNS, ())


def _one(db: sqlite_utils.Database, table: str, row_id: str) -> dict[str, Any] | None:
    rows = list(db.query(f"SELECT * FROM {table} WHERE id = ?", [row_id]))
    return decode(rows[0]) if rows else None


# --- queries -----------------------------------------------------------------------------------
def get_config(db: sqlite_utils.Database, config_id: str) -> dict[str, Any] | None:
    return _one(db, CONFIGS, config_id)


def get_deployment(db: sqlite_utils.Database, deployment_id: str) -> dict[str, Any] | None:
    return _one(db, DEPLOYMENTS, deployment_id)


def _page(db: sqlite_utils.Database, table: str, clauses: list[str], params: list[Any], marker: str | None,
          limit: int) -> list[dict[str, Any]]:
    """A page (``limit`` + 1 rows) in creation order, after ``marker``."""
    if marker:
        found = _one(db, table, marker)
        if found is None or found["project_id"] != params[0]:
            raise NotFound(f"The marker {marker[:40]} could not be found.")
        clauses.append("(created_at > ? OR (created_at = ? AND id > ?))")
        params += [found["created_at"], found["created_at"], found["id"]]
    sql = f"SELECT * FROM {table} WHERE {' AND '.join(clauses)} ORDER BY created_at, id LIMIT ?"
    return [decode(r) for r in db.query(sql, [*params, limit + 1])]


def list_configs(db: sqlite_utils.Database, project_id: str, marker: str | None, limit: int) -> list[dict[str, Any]]:
    return _page(db, CONFIGS, ["project_id = ?"], [project_id], marker, limit)


def list_deployments(db: sqlite_utils.Database, project_id: str, server_id: str | None, marker: str | None,
                     limit: int) -> list[dict[str, Any]]:
    clauses, params = ["project_id = ?"], [project_id]
    if server_id is not None:
        clauses.append("server_id = ?")
        params.append(server_id)
    return _page(db, DEPLOYMENTS, clauses, params, marker, limit)


def server_deployments(db: sqlite_utils.Database, project_id: str | None,
                       server_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """A server's deployments with their configs (of ``project_id``; any project when None), in
    Heat's metadata order: by the config's group, then its name, then when made."""
    clauses, params = ["d.server_id = ?"], [server_id]
    if project_id is not None:
        clauses.append("d.project_id = ?")
        params.append(project_id)
    sql = (f"SELECT d.id AS d_id, c.* FROM {DEPLOYMENTS} d JOIN {CONFIGS} c ON c.id = d.config_id "
           f"WHERE {' AND '.join(clauses)} ORDER BY c.config_group, c.name, d.created_at, d.id")
    out = []
    for raw in db.query(sql, params):
        config = decode({k: v for k, v in raw.items() if k != "d_id"})
        deployment = get_deployment(db, raw["d_id"])
        assert deployment is not None
        out.append((deployment, config))
    return out


# --- apply -------------------------------------------------------------------------------------
def _must_config(db: sqlite_utils.Database, config_id: str, project_id: str) -> dict[str, Any]:
    found = get_config(db, config_id)
    if found is None or found["project_id"] != project_id:
        raise NotFound(f"Software config with id {config_id[:40]} not found")
    return found


def _create_config(db: sqlite_utils.Database, cmd: c.CreateSoftwareConfig) -> dict[str, Any]:
    if get_config(db, cmd.row["id"]) is not None:
        raise Conflict(f"Software config {cmd.row['id']} already exists.")
    db[CONFIGS].insert(encode(dict(cmd.row)))
    found = get_config(db, cmd.row["id"])
    assert found is not None
    return found


def _delete_config(db: sqlite_utils.Database, cmd: c.DeleteSoftwareConfig) -> None:
    if get_config(db, cmd.id) is None:
        raise NotFound(f"Software config with id {cmd.id[:40]} not found")
    users = [r["id"] for r in db.query(f"SELECT id FROM {DEPLOYMENTS} WHERE config_id = ? LIMIT 1", [cmd.id])]
    if users:
        raise Conflict(f"Software config {cmd.id} is used by the deployment {users[0]}: delete it first.")
    db.execute(f"DELETE FROM {CONFIGS} WHERE id = ?", [cmd.id])


def _create_deployment(db: sqlite_utils.Database, cmd: c.CreateSoftwareDeployment) -> dict[str, Any]:
    row = cmd.row
    if get_deployment(db, row["id"]) is not None:
        raise Conflict(f"Software deployment {row['id']} already exists.")
    _must_config(db, row["config_id"], row["project_id"])
    db[DEPLOYMENTS].insert(encode(dict(row)))
    found = get_deployment(db, row["id"])
    assert found is not None
    return found


def _update_deployment(db: sqlite_utils.Database, cmd: c.UpdateSoftwareDeployment) -> dict[str, Any]:
    found = get_deployment(db, cmd.id)
    if found is None:
        raise NotFound(f"Deployment with id {cmd.id[:40]} not found")
    if cmd.changes.get("config_id"):
        _must_config(db, cmd.changes["config_id"], found["project_id"])
    db[DEPLOYMENTS].update(cmd.id, encode({**cmd.changes, "updated_at": cmd.at}))
    updated = get_deployment(db, cmd.id)
    assert updated is not None
    return updated


def _delete_deployment(db: sqlite_utils.Database, cmd: c.DeleteSoftwareDeployment) -> None:
    if get_deployment(db, cmd.id) is None:
        raise NotFound(f"Deployment with id {cmd.id[:40]} not found")
    db.execute(f"DELETE FROM {DEPLOYMENTS} WHERE id = ?", [cmd.id])


HANDLERS: dict[type, Handler] = {
    c.CreateSoftwareConfig: _create_config,
    c.DeleteSoftwareConfig: _delete_config,
    c.CreateSoftwareDeployment: _create_deployment,
    c.UpdateSoftwareDeployment: _update_deployment,
    c.DeleteSoftwareDeployment: _delete_deployment,
}

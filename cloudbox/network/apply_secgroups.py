"""apply() of security groups and their rules, and of each project's ``default`` group."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict
from cloudbox.network import commands as c
from cloudbox.network import core, store
from cloudbox.network.store import bump, get, insert, must_get, rows, update
from cloudbox.state.migrations import Handler


def ensure_default_group(db: sqlite_utils.Database, project_id: str, ids: dict[str, Any] | None, at: str) -> str:
    """The id of the project's ``default`` group, made now (with its four rules) if it has none."""
    found = store.default_group(db, project_id)
    if found is not None:
        return found["id"]
    if not ids or len(ids.get("rule_ids", ())) != 4:
        raise BadRequest(f"Project {project_id} has no default security group.")
    insert(db, "security_groups", {
        "id": ids["id"], "project_id": project_id, "name": "default", "description": "Default security group",
        "stateful": True, "is_default": True, "tags": [], "created_at": at, "updated_at": at, "revision_number": 0,
    })
    for rule in core.default_group_rules(ids["id"], project_id, ids["rule_ids"], at):
        insert(db, "security_group_rules", rule)
    return ids["id"]


def _apply_ensure_default(db: sqlite_utils.Database, cmd: c.EnsureDefaultSecurityGroup) -> dict[str, Any]:
    return must_get(db, "security_groups", ensure_default_group(db, cmd.project_id, cmd.default_sg, cmd.at))


def _apply_create(db: sqlite_utils.Database, cmd: c.CreateSecurityGroup) -> dict[str, Any]:
    row = cmd.row
    ensure_default_group(db, row["project_id"], cmd.default_sg, cmd.at)
    if row["name"] == "default":
        raise Conflict("Default security group already exists.")
    if get(db, "security_groups", row["id"]):
        raise Conflict(f"Security group {row['id']} exists already.")
    store.check_quota(db, row["project_id"], "security_group")
    insert(db, "security_groups", {**row, "is_default": False})
    for rule in core.default_group_rules(row["id"], row["project_id"], cmd.rule_ids, cmd.at, with_ingress=False):
        insert(db, "security_group_rules", rule)
    return must_get(db, "security_groups", row["id"])


def _apply_update(db: sqlite_utils.Database, cmd: c.UpdateSecurityGroup) -> dict[str, Any]:
    group = must_get(db, "security_groups", cmd.id)
    if group["is_default"] and cmd.changes.get("name", "default") != "default":
        raise Conflict("Updating default security group not allowed.")
    if not group["is_default"] and cmd.changes.get("name") == "default":
        raise Conflict("Default security group already exists.")
    return update(db, "security_groups", cmd.id, cmd.changes, cmd.at)


def _apply_delete(db: sqlite_utils.Database, cmd: c.DeleteSecurityGroup) -> None:
    group = must_get(db, "security_groups", cmd.id)
    if group["is_default"] and not cmd.by_admin:
        raise Conflict("Insufficient rights for removing default security group.")
    users = list(db.query("SELECT p.id FROM ports p, json_each(p.security_groups) j WHERE j.value = ? LIMIT 1",
                          [cmd.id]))
    if users:
        raise Conflict(f"Security Group {cmd.id} in use.")
    db.execute("DELETE FROM security_group_rules WHERE remote_group_id = ?", [cmd.id])
    db.execute("DELETE FROM security_groups WHERE id = ?", [cmd.id])  # its rules cascade


def _apply_create_rule(db: sqlite_utils.Database, cmd: c.CreateSecurityGroupRule) -> dict[str, Any]:
    row = cmd.row
    group = must_get(db, "security_groups", row["security_group_id"])
    if row["remote_group_id"] is not None:
        must_get(db, "security_groups", row["remote_group_id"])
    if get(db, "security_group_rules", row["id"]):
        raise Conflict(f"Security group rule {row['id']} exists already.")
    key = core.rule_key(row)
    for existing in rows(db, "SELECT * FROM security_group_rules WHERE security_group_id = ?", [group["id"]]):
        if core.rule_key(existing) == key:
            raise Conflict(f"Security group rule already exists. Rule id is {existing['id']}.")
    store.check_quota(db, row["project_id"], "security_group_rule")
    insert(db, "security_group_rules", row)
    bump(db, "security_groups", group["id"], cmd.at)
    return must_get(db, "security_group_rules", row["id"])


def _apply_delete_rule(db: sqlite_utils.Database, cmd: c.DeleteSecurityGroupRule) -> None:
    rule = must_get(db, "security_group_rules", cmd.id)
    db.execute("DELETE FROM security_group_rules WHERE id = ?", [cmd.id])
    bump(db, "security_groups", rule["security_group_id"], cmd.at)


HANDLERS: dict[type, Handler] = {
    c.EnsureDefaultSecurityGroup: _apply_ensure_default,
    c.CreateSecurityGroup: _apply_create,
    c.UpdateSecurityGroup: _apply_update,
    c.DeleteSecurityGroup: _apply_delete,
    c.CreateSecurityGroupRule: _apply_create_rule,
    c.DeleteSecurityGroupRule: _apply_delete_rule,
}

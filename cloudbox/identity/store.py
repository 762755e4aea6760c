"""Identity tables: migrations, apply(db, command), and the queries of the service."""

from __future__ import annotations

import json
from typing import Any, Iterable

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound
from cloudbox.identity import commands as c
from cloudbox.state.db import decode_columns
from cloudbox.state.migrations import Handler, StoreSpec

MIGRATIONS = [
    """
    CREATE TABLE domains (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',
        enabled INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL);
    CREATE TABLE projects (
        id TEXT PRIMARY KEY, domain_id TEXT NOT NULL REFERENCES domains(id), parent_id TEXT,
        name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', enabled INTEGER NOT NULL DEFAULT 1,
        tags TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, UNIQUE (domain_id, name));
    CREATE TABLE users (
        id TEXT PRIMARY KEY, domain_id TEXT NOT NULL REFERENCES domains(id), name TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1, password_hash TEXT, password_changed_at TEXT,
        default_project_id TEXT, description TEXT NOT NULL DEFAULT '', email TEXT,
        created_at TEXT NOT NULL, UNIQUE (domain_id, name));
    CREATE TABLE groups (
        id TEXT PRIMARY KEY, domain_id TEXT NOT NULL REFERENCES domains(id), name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, UNIQUE (domain_id, name));
    CREATE TABLE group_members (
        group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, user_id));
    CREATE TABLE roles (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, UNIQUE (domain_id, name));
    CREATE TABLE role_implications (
        prior_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        implied_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        PRIMARY KEY (prior_role_id, implied_role_id));
    CREATE TABLE role_assignments (
        actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, target_type TEXT NOT NULL,
        target_id TEXT NOT NULL, role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        inherited INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (actor_type, actor_id, target_type, target_id, role_id, inherited));
    CREATE INDEX role_assignments_target ON role_assignments (target_type, target_id);
    CREATE TABLE app_credentials (
        id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
        secret_hash TEXT NOT NULL, expires_at TEXT, unrestricted INTEGER NOT NULL DEFAULT 0,
        roles TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, UNIQUE (user_id, name));
    CREATE TABLE regions (
        id TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', parent_region_id TEXT,
        created_at TEXT NOT NULL);
    CREATE TABLE services (
        id TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '', enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL);
    CREATE TABLE endpoints (
        id TEXT PRIMARY KEY, service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        interface TEXT NOT NULL, region_id TEXT, url TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL);
    CREATE TABLE revocations (
        seq INTEGER PRIMARY KEY, audit_id TEXT, user_id TEXT, issued_before TEXT NOT NULL,
        expires_at TEXT);
    CREATE INDEX revocations_audit ON revocations (audit_id);
    CREATE INDEX revocations_user ON revocations (user_id);
    CREATE TABLE token_keys (id INTEGER PRIMARY KEY, key TEXT NOT NULL, created_at TEXT NOT NULL);
    """,
    # Keystone's other resources: users' and projects' extra attributes, credentials (EC2 ones
    # among them), policy blobs, endpoint groups, OAuth1 consumers, domain-specific configuration.
    """
    ALTER TABLE users ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE projects ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE credentials (
        id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        project_id TEXT, type TEXT NOT NULL, blob TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX credentials_user ON credentials (user_id, type);
    CREATE INDEX credentials_project ON credentials (project_id);
    CREATE TABLE policies (
        id TEXT PRIMARY KEY, type TEXT NOT NULL, blob TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE endpoint_groups (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
        filters TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
    CREATE TABLE oauth_consumers (
        id TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', secret_hash TEXT NOT NULL,
        created_at TEXT NOT NULL);
    CREATE TABLE domain_configs (
        id TEXT PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,
        config TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
    """,
]

TABLES = {
    "domain": "domains",
    "project": "projects",
    "user": "users",
    "group": "groups",
    "role": "roles",
    "region": "regions",
    "service": "services",
    "endpoint": "endpoints",
    "app_credential": "app_credentials",
    "credential": "credentials",
    "policy": "policies",
    "endpoint_group": "endpoint_groups",
    "consumer": "oauth_consumers",
    "domain_config": "domain_configs",  # one a domain: its id is the domain's
}

JSON_COLUMNS = {"tags", "roles", "extra", "filters", "config"}
BOOL_COLUMNS = {"enabled", "unrestricted", "inherited"}


# --- rows ------------------------------------------------------------------
def _encode(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if key in JSON_COLUMNS and not isinstance(value, str):
            value = json.dumps(value, sort_keys=True)
        elif key in BOOL_COLUMNS and isinstance(value, bool):
            value = int(value)
        out[key] = value
    return out


def decode_row(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return decode_columns(row, JSON_COLUMNS, BOOL_COLUMNS)


def get(db: sqlite_utils.Database, entity: str, id: str) -> dict[str, Any] | None:
    rows = list(db.query(f"SELECT * FROM {TABLES[entity]} WHERE id = ?", [id]))
    return decode_row(rows[0]) if rows else None


def must_get(db: sqlite_utils.Database, entity: str, id: str) -> dict[str, Any]:
    row = get(db, entity, id)
    if row is None:
        raise NotFound(f"Could not find {entity.replace('_', ' ')}: {id}.")
    return row


def find(db: sqlite_utils.Database, entity: str, **where: Any) -> list[dict[str, Any]]:
    clause = " AND ".join(f"{k} = ?" for k in where) or "1"
    sql = f"SELECT * FROM {TABLES[entity]} WHERE {clause} ORDER BY id"
    return [decode_row(r) for r in db.query(sql, list(where.values()))]  # type: ignore[misc]


def page(
    db: sqlite_utils.Database,
    entity: str,
    filters: dict[str, Any],
    *,
    marker: str | None,
    limit: int,
    extra_sql: str = "",
    extra_params: Iterable[Any] = (),
) -> list[dict[str, Any]]:
    """Rows of one entity in id order after ``marker``, at most ``limit`` (+1 to tell if more)."""
    clauses, params = [], []
    for key, value in filters.items():
        if value is None:
            continue
        clauses.append(f"{key} = ?")
        params.append(int(value) if isinstance(value, bool) else value)
    if marker:
        clauses.append("id > ?")
        params.append(marker)
    if extra_sql:
        clauses.append(extra_sql)
        params.extend(extra_params)
    where = " AND ".join(clauses) or "1"
    sql = f"SELECT * FROM {TABLES[entity]} WHERE {where} ORDER BY id LIMIT ?"
    return [decode_row(r) for r in db.query(sql, params + [limit + 1])]  # type: ignore[misc]


# --- role resolution --------------------------------------------------------
def user_group_ids(db: sqlite_utils.Database, user_id: str) -> list[str]:
    return [r["group_id"] for r in db.query("SELECT group_id FROM group_members WHERE user_id = ?", [user_id])]


def _actor_clause(user_id: str, group_ids: list[str]) -> tuple[str, list[Any]]:
    marks = ",".join("?" * len(group_ids))
    clause = "((actor_type = 'user' AND actor_id = ?)"
    params: list[Any] = [user_id]
    if group_ids:
        clause += f" OR (actor_type = 'group' AND actor_id IN ({marks}))"
        params += group_ids
    return clause + ")", params


def ancestors(db: sqlite_utils.Database, project_id: str) -> list[str]:
    """The ids of a project's parent, its parent's parent, and so on up to the domain."""
    out: list[str] = []
    row = get(db, "project", project_id)
    while row is not None and row["parent_id"] and row["parent_id"] not in out:
        out.append(row["parent_id"])
        row = get(db, "project", row["parent_id"])
    return out


def descendants(db: sqlite_utils.Database, project_id: str) -> list[str]:
    """The ids of every project below one (children, their children, ...), in id order."""
    found: list[str] = []
    todo = [project_id]
    while todo:
        children = [r["id"] for r in db.query("SELECT id FROM projects WHERE parent_id = ? ORDER BY id", [todo.pop()])]
        fresh = [c for c in children if c not in found]
        found += fresh
        todo += fresh
    return sorted(found)


def direct_role_ids(db: sqlite_utils.Database, user_id: str, target_type: str, target_id: str) -> set[str]:
    """Role ids a user holds on a target, directly, through groups, or inherited (from the
    project's domain or from a project above it)."""
    actor, params = _actor_clause(user_id, user_group_ids(db, user_id))
    targets = "(target_type = ? AND target_id = ? AND inherited = 0)"
    tparams: list[Any] = [target_type, target_id]
    if target_type == "project":
        project = get(db, "project", target_id)
        if project is not None:
            above = ancestors(db, target_id)
            marks = ",".join("?" * len(above)) or "NULL"
            targets = (f"({targets} OR (target_type = 'domain' AND target_id = ? AND inherited = 1)"
                       f" OR (target_type = 'project' AND target_id IN ({marks}) AND inherited = 1))")
            tparams += [project["domain_id"], *above]
    sql = f"SELECT DISTINCT role_id FROM role_assignments WHERE {actor} AND {targets}"
    return {r["role_id"] for r in db.query(sql, params + tparams)}


def expand_implied(db: sqlite_utils.Database, role_ids: set[str]) -> set[str]:
    implications: dict[str, list[str]] = {}
    for r in db.query("SELECT prior_role_id, implied_role_id FROM role_implications"):
        implications.setdefault(r["prior_role_id"], []).append(r["implied_role_id"])
    seen, todo = set(role_ids), list(role_ids)
    while todo:
        for implied in implications.get(todo.pop(), []):
            if implied not in seen:
                seen.add(implied)
                todo.append(implied)
    return seen


def global_role_ids(db: sqlite_utils.Database, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` that are global roles: a domain's own roles never reach a token or an
    effective assignment themselves (the global roles they imply do)."""
    ids = sorted(ids)
    marks = ",".join("?" * len(ids)) or "NULL"
    return {r["id"] for r in db.query(f"SELECT id FROM roles WHERE domain_id = '' AND id IN ({marks})", ids)}


def roles_by_ids(db: sqlite_utils.Database, ids: Iterable[str]) -> list[dict[str, Any]]:
    ids = sorted(ids)
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    return [dict(r) for r in db.query(f"SELECT id, name, domain_id FROM roles WHERE id IN ({marks}) ORDER BY name", ids)]


def admin_role_ids(db: sqlite_utils.Database) -> set[str]:
    """The roles that make their holder a cloud admin: the global admin role and every role
    that implies it."""
    admins = {r["id"] for r in db.query("SELECT id FROM roles WHERE domain_id = '' AND name = 'admin'")}
    every = [r["id"] for r in db.query("SELECT id FROM roles")]
    return {rid for rid in every if expand_implied(db, {rid}) & admins}


def implies_admin(db: sqlite_utils.Database, role_id: str) -> bool:
    return role_id in admin_role_ids(db)


def holds_cloud_roles(db: sqlite_utils.Database, actor_type: str, actor_id: str) -> bool:
    """Whether a user (directly or through a group) or a group holds the admin role anywhere, or
    any role on the system or on the admin project (which owns the cloud's shared resources, such
    as the external network): such actors can be managed by cloud admins only."""
    if actor_type == "user":
        actor, params = _actor_clause(actor_id, user_group_ids(db, actor_id))
    else:
        actor, params = "(actor_type = 'group' AND actor_id = ?)", [actor_id]
    admin_projects = [r["id"] for r in db.query(
        "SELECT id FROM projects WHERE domain_id = 'default' AND name = 'admin'")]
    admin_roles = sorted(admin_role_ids(db))
    projects = ",".join("?" * len(admin_projects)) or "NULL"
    roles = ",".join("?" * len(admin_roles)) or "NULL"
    rows = db.query(
        f"SELECT 1 FROM role_assignments WHERE {actor} AND (target_type = 'system'"
        f" OR (target_type = 'project' AND target_id IN ({projects})) OR role_id IN ({roles})) LIMIT 1",
        params + admin_projects + admin_roles,
    )
    return bool(list(rows))


def targets_of_user(db: sqlite_utils.Database, user_id: str, target_type: str) -> set[str]:
    """Ids of the projects (or domains) on which a user holds any role."""
    actor, params = _actor_clause(user_id, user_group_ids(db, user_id))
    rows = db.query(
        f"SELECT DISTINCT target_type, target_id, inherited FROM role_assignments WHERE {actor}", params
    )
    found: set[str] = set()
    for r in rows:
        if r["target_type"] == target_type and not r["inherited"]:
            found.add(r["target_id"])
        elif target_type == "project" and r["target_type"] == "domain" and r["inherited"]:
            found.update(p["id"] for p in find(db, "project", domain_id=r["target_id"]))
        elif target_type == "project" and r["target_type"] == "project" and r["inherited"]:
            found.update(descendants(db, r["target_id"]))
    return found


def user_target_rows(db: sqlite_utils.Database, user_id: str, target_type: str,
                     enabled_only: bool = False) -> list[dict[str, Any]]:
    """The projects (or domains) on which a user holds any role, in id order."""
    rows = [get(db, target_type, i) for i in sorted(targets_of_user(db, user_id, target_type))]
    return [r for r in rows if r and (r["enabled"] or not enabled_only)]


def user_groups(db: sqlite_utils.Database, user_id: str) -> list[dict[str, Any]]:
    return [r for r in (get(db, "group", g) for g in user_group_ids(db, user_id)) if r]


def group_users_page(db: sqlite_utils.Database, group_id: str, *, marker: str | None,
                     limit: int) -> list[dict[str, Any]]:
    return page(db, "user", {}, marker=marker, limit=limit,
                extra_sql="id IN (SELECT user_id FROM group_members WHERE group_id = ?)", extra_params=[group_id])


# --- grants and implied roles --------------------------------------------------
def grant_exists(db: sqlite_utils.Database, actor_type: str, actor_id: str, target_type: str, target_id: str,
                 role_id: str, inherited: bool) -> bool:
    return bool(list(db.query(
        "SELECT 1 FROM role_assignments WHERE actor_type = ? AND actor_id = ? AND target_type = ?"
        " AND target_id = ? AND role_id = ? AND inherited = ?",
        [actor_type, actor_id, target_type, target_id, role_id, int(inherited)])))


def granted_roles(db: sqlite_utils.Database, actor_type: str, actor_id: str, target_type: str, target_id: str,
                  inherited: bool) -> list[dict[str, Any]]:
    """The roles granted directly to one actor on one target, by name."""
    return [dict(r) for r in db.query(
        "SELECT r.* FROM roles r JOIN role_assignments a ON a.role_id = r.id WHERE a.actor_type = ?"
        " AND a.actor_id = ? AND a.target_type = ? AND a.target_id = ? AND a.inherited = ? ORDER BY r.name",
        [actor_type, actor_id, target_type, target_id, int(inherited)])]


def assignments(db: sqlite_utils.Database, q: Any) -> list[dict[str, Any]]:
    """Role assignments as stored, filtered by an AssignmentQuery.

    Effective roles come from grants on other targets (inherited from the domain) and other
    roles (implied): with ``q.effective`` scope and role are filtered after expanding
    (``effective_assignments``), not here, and a user's groups count as the user.
    """
    clauses, params = [], []
    if q.project_id is not None and not q.effective:
        clauses.append("target_type = 'project' AND target_id = ?")
        params.append(q.project_id)
    if q.domain_id is not None and not q.effective:
        clauses.append("target_type = 'domain' AND target_id = ?")
        params.append(q.domain_id)
    if q.system and not q.effective:
        clauses.append("target_type = 'system'")
    if q.role_id is not None and not q.effective:
        clauses.append("role_id = ?")
        params.append(q.role_id)
    if q.group_id:
        clauses.append("actor_type = 'group' AND actor_id = ?")
        params.append(q.group_id)
    if q.user_id and not q.effective:
        clauses.append("actor_type = 'user' AND actor_id = ?")
        params.append(q.user_id)
    if q.user_id and q.effective:
        groups = user_group_ids(db, q.user_id)
        marks = ",".join("?" * len(groups)) or "NULL"
        clauses.append(f"((actor_type = 'user' AND actor_id = ?) OR (actor_type = 'group' AND actor_id IN ({marks})))")
        params += [q.user_id, *groups]
    if q.inherited_only:
        clauses.append("inherited = 1")
    where = " AND ".join(clauses) or "1"
    return [dict(r) for r in db.query(
        f"SELECT * FROM role_assignments WHERE {where} ORDER BY actor_type, actor_id, target_type, target_id, role_id",
        params)]


def assignment_in_domain(db: sqlite_utils.Database, row: dict[str, Any], domain_id: str | None) -> bool:
    """Whether an assignment's target is ``domain_id`` or one of its projects."""
    if row["target_type"] == "domain":
        return row["target_id"] == domain_id
    if row["target_type"] == "project":
        project = get(db, "project", row["target_id"])
        return bool(project and project["domain_id"] == domain_id)
    return False


def effective_assignments(db: sqlite_utils.Database, rows: list[dict[str, Any]],
                          user_id: str | None) -> list[dict[str, Any]]:
    """Expand group grants to the user, inherited domain grants to projects, and implied roles."""
    out: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in rows:
        actor = ("user", user_id) if user_id else (row["actor_type"], row["actor_id"])
        if row["inherited"] and row["target_type"] == "domain":
            targets = [("project", p["id"]) for p in find(db, "project", domain_id=row["target_id"])]
        elif row["inherited"]:  # on a project: the projects below it
            targets = [("project", p) for p in descendants(db, row["target_id"])]
        else:
            targets = [(row["target_type"], row["target_id"])]
        for role_id in global_role_ids(db, expand_implied(db, {row["role_id"]})):
            for target_type, target_id in targets:
                key = (actor[1] or "", target_type, target_id, role_id)
                out[key] = {"actor_type": actor[0], "actor_id": actor[1], "target_type": target_type,
                            "target_id": target_id, "role_id": role_id, "inherited": 0}
    return [out[k] for k in sorted(out)]


def assignment_names(db: sqlite_utils.Database, rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The actors, roles and targets that assignments name, and those rows' domains, by (entity, id)."""
    known: dict[tuple[str, str], dict[str, Any]] = {}

    def fetch(entity: str, id: str) -> dict[str, Any] | None:
        if (entity, id) not in known:
            row = get(db, entity, id)
            if row is None:
                return None
            known[(entity, id)] = row
        return known[(entity, id)]

    for r in rows:
        refs = [(r["actor_type"], r["actor_id"]), ("role", r["role_id"])]
        if r["target_type"] != "system":
            refs.append((r["target_type"], r["target_id"]))
        for entity, id in refs:
            item = fetch(entity, id)
            if item and "domain_id" in item and entity != "role":
                fetch("domain", item["domain_id"])
    return known


def implied_roles(db: sqlite_utils.Database, prior_role_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query(
        "SELECT r.* FROM roles r JOIN role_implications i ON i.implied_role_id = r.id"
        " WHERE i.prior_role_id = ? ORDER BY r.name", [prior_role_id])]


def implication_exists(db: sqlite_utils.Database, prior_role_id: str, implied_role_id: str) -> bool:
    return bool(list(db.query(
        "SELECT 1 FROM role_implications WHERE prior_role_id = ? AND implied_role_id = ?",
        [prior_role_id, implied_role_id])))


def role_inferences(db: sqlite_utils.Database) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Every prior role with the roles it implies directly, by prior id, then implied id."""
    rules: dict[str, list[str]] = {}
    for r in db.query("SELECT * FROM role_implications ORDER BY prior_role_id, implied_role_id"):
        rules.setdefault(r["prior_role_id"], []).append(r["implied_role_id"])
    roles = {r["id"]: dict(r) for r in db.query("SELECT * FROM roles")}
    return [(roles[p], [roles[i] for i in implied]) for p, implied in rules.items()]


# --- tokens ------------------------------------------------------------------
def token_keys(db: sqlite_utils.Database) -> list[str]:
    """Token keys, newest (the one that encrypts) first."""
    return [r["key"] for r in db.query("SELECT key FROM token_keys ORDER BY id DESC")]


def token_key_times(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Ids and creation times of the token keys, oldest first."""
    return [dict(r) for r in db.query("SELECT id, created_at FROM token_keys ORDER BY id")]


def is_revoked(db: sqlite_utils.Database, audit_id: str, user_id: str, issued_at: str) -> bool:
    """As Keystone: revoking a token revokes that token (its own audit id), not tokens rescoped
    from it; revoking a user's tokens revokes those issued until then."""
    return bool(list(db.query(
        "SELECT 1 FROM revocations WHERE audit_id = ? OR (user_id = ? AND issued_before >= ?) LIMIT 1",
        [audit_id, user_id, issued_at])))


# --- apply ------------------------------------------------------------------
def _check_unique(db: sqlite_utils.Database, entity: str, row: dict[str, Any], exclude_id: str | None) -> None:
    keys = {
        "domain": ("name",),
        "project": ("domain_id", "name"),
        "user": ("domain_id", "name"),
        "group": ("domain_id", "name"),
        "role": ("domain_id", "name"),
        "app_credential": ("user_id", "name"),
    }.get(entity)
    if not keys:
        return
    where = " AND ".join(f"{k} = ?" for k in keys)
    params = [row.get(k, "") for k in keys]
    if exclude_id:
        where += " AND id != ?"
        params.append(exclude_id)
    if list(db.query(f"SELECT id FROM {TABLES[entity]} WHERE {where}", params)):
        label = entity.replace("_", " ")
        raise Conflict(f"Conflict occurred attempting to store {label} - Duplicate entry: a {label} named {row.get('name')!r} exists.")


def _check_references(db: sqlite_utils.Database, entity: str, row: dict[str, Any]) -> None:
    refs = {
        "project": (("domain_id", "domain"), ("parent_id", "project")),
        "user": (("domain_id", "domain"), ("default_project_id", "project")),
        "group": (("domain_id", "domain"),),
        "endpoint": (("service_id", "service"), ("region_id", "region")),
        "region": (("parent_region_id", "region"),),
        "app_credential": (("user_id", "user"), ("project_id", "project")),
        "credential": (("user_id", "user"), ("project_id", "project")),
        "domain_config": (("id", "domain"),),
    }.get(entity, ())
    for column, target in refs:
        value = row.get(column)
        if value and get(db, target, value) is None:
            if target == "domain":  # as Keystone: a missing domain is not found, whatever names it
                raise NotFound(f"Could not find domain: {value}.")
            raise BadRequest(f"The {target} {value!r} given as {column} does not exist.")
    if entity == "role" and row.get("domain_id"):
        if get(db, "domain", row["domain_id"]) is None:
            raise BadRequest(f"The domain {row['domain_id']!r} given as domain_id does not exist.")


def _check_region_cycle(db: sqlite_utils.Database, region_id: str, parent_id: str) -> None:
    seen: set[str] = set()
    at: str | None = parent_id
    while at and at not in seen:
        if at == region_id:
            raise BadRequest(f"Region {parent_id!r} cannot be the parent of {region_id!r}: that makes a cycle of regions.")
        seen.add(at)
        row = get(db, "region", at)
        at = row["parent_region_id"] if row else None


def _apply_create(db: sqlite_utils.Database, cmd: c.Create) -> dict[str, Any]:
    if cmd.entity not in TABLES:
        raise BadRequest(f"unknown entity {cmd.entity}")
    row = dict(cmd.row)
    if get(db, cmd.entity, row["id"]) is not None:
        raise Conflict(f"Conflict occurred attempting to store {cmd.entity} - Duplicate ID, {row['id']}.")
    _check_references(db, cmd.entity, row)
    _check_unique(db, cmd.entity, row, None)
    db[TABLES[cmd.entity]].insert(_encode(row))
    return must_get(db, cmd.entity, row["id"])


def _apply_update(db: sqlite_utils.Database, cmd: c.Update) -> dict[str, Any]:
    current = must_get(db, cmd.entity, cmd.id)
    merged = {**current, **cmd.changes}
    _check_references(db, cmd.entity, cmd.changes)
    _check_unique(db, cmd.entity, merged, cmd.id)
    if cmd.entity == "domain" and cmd.id == "default" and cmd.changes.get("enabled") is False:
        raise BadRequest("The default domain cannot be disabled.")
    if cmd.entity == "region" and cmd.changes.get("parent_region_id"):
        _check_region_cycle(db, cmd.id, cmd.changes["parent_region_id"])
    if cmd.changes:
        db[TABLES[cmd.entity]].update(cmd.id, _encode(dict(cmd.changes)))
    if cmd.revoke_user_tokens_at and cmd.entity == "user":
        db["revocations"].insert({"user_id": cmd.id, "issued_before": cmd.revoke_user_tokens_at})
    return must_get(db, cmd.entity, cmd.id)


def _delete_assignments(db: sqlite_utils.Database, *, actor: tuple[str, str] | None = None,
                        target: tuple[str, str] | None = None) -> None:
    if actor:
        db.execute("DELETE FROM role_assignments WHERE actor_type = ? AND actor_id = ?", list(actor))
    if target:
        db.execute("DELETE FROM role_assignments WHERE target_type = ? AND target_id = ?", list(target))


def _apply_delete(db: sqlite_utils.Database, cmd: c.Delete) -> None:
    row = must_get(db, cmd.entity, cmd.id)
    if cmd.entity == "domain":
        if cmd.id == "default":
            raise Forbidden("The default domain cannot be deleted.")
        if row["enabled"]:
            raise Forbidden("Cannot delete a domain that is enabled; disable it first.")
        for user in find(db, "user", domain_id=cmd.id):
            _apply_delete(db, c.Delete("user", user["id"], cmd.at))
        for group in find(db, "group", domain_id=cmd.id):
            _apply_delete(db, c.Delete("group", group["id"], cmd.at))
        for project in _leaves_first(find(db, "project", domain_id=cmd.id)):
            _apply_delete(db, c.Delete("project", project["id"], cmd.at))
        for role in find(db, "role", domain_id=cmd.id):
            _apply_delete(db, c.Delete("role", role["id"], cmd.at))
        _delete_assignments(db, target=("domain", cmd.id))
    elif cmd.entity == "project":
        if find(db, "project", parent_id=cmd.id):
            raise Forbidden("Cannot delete a project that has child projects; delete them first.")
        _delete_assignments(db, target=("project", cmd.id))
        db.execute("DELETE FROM app_credentials WHERE project_id = ?", [cmd.id])
        db.execute("DELETE FROM credentials WHERE project_id = ?", [cmd.id])
        db.execute("UPDATE users SET default_project_id = NULL WHERE default_project_id = ?", [cmd.id])
    elif cmd.entity == "user":
        _delete_assignments(db, actor=("user", cmd.id))
        db["revocations"].insert({"user_id": cmd.id, "issued_before": cmd.at})
    elif cmd.entity == "group":
        _delete_assignments(db, actor=("group", cmd.id))
    elif cmd.entity == "region":
        if find(db, "region", parent_region_id=cmd.id) or find(db, "endpoint", region_id=cmd.id):
            raise Forbidden("Cannot delete a region that still has child regions or endpoints.")
    db[TABLES[cmd.entity]].delete(cmd.id)


def _leaves_first(projects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Projects ordered so that every child comes before its parent (deterministic: by depth, then id)."""
    parents = {p["id"]: p["parent_id"] for p in projects}

    def depth(pid: str) -> int:
        n = 0
        while parents.get(pid):
            pid = parents[pid]
            n += 1
        return n

    return sorted(projects, key=lambda p: (-depth(p["id"]), p["id"]))


def _apply_grant(db: sqlite_utils.Database, cmd: c.Grant) -> None:
    must_get(db, "role", cmd.role_id)
    must_get(db, cmd.actor_type, cmd.actor_id)
    if cmd.target_type != "system":
        must_get(db, cmd.target_type, cmd.target_id)
    db["role_assignments"].insert(
        {
            "actor_type": cmd.actor_type, "actor_id": cmd.actor_id, "target_type": cmd.target_type,
            "target_id": cmd.target_id, "role_id": cmd.role_id, "inherited": int(cmd.inherited),
        },
        ignore=True,
    )


def _apply_revoke(db: sqlite_utils.Database, cmd: c.Revoke) -> None:
    cur = db.execute(
        "DELETE FROM role_assignments WHERE actor_type = ? AND actor_id = ? AND target_type = ?"
        " AND target_id = ? AND role_id = ? AND inherited = ?",
        [cmd.actor_type, cmd.actor_id, cmd.target_type, cmd.target_id, cmd.role_id, int(cmd.inherited)],
    )
    if cur.rowcount == 0:
        raise NotFound("Could not find role assignment.")


def _apply_add_group_member(db: sqlite_utils.Database, cmd: c.AddGroupMember) -> Any:
    must_get(db, "group", cmd.group_id)
    must_get(db, "user", cmd.user_id)
    db["group_members"].insert({"group_id": cmd.group_id, "user_id": cmd.user_id}, ignore=True)
    return None


def _apply_remove_group_member(db: sqlite_utils.Database, cmd: c.RemoveGroupMember) -> Any:
    cur = db.execute(
        "DELETE FROM group_members WHERE group_id = ? AND user_id = ?", [cmd.group_id, cmd.user_id]
    )
    if cur.rowcount == 0:
        raise NotFound(f"User {cmd.user_id} is not a member of group {cmd.group_id}.")
    return None


def _apply_imply_role(db: sqlite_utils.Database, cmd: c.ImplyRole) -> Any:
    prior = must_get(db, "role", cmd.prior_role_id)
    implied = must_get(db, "role", cmd.implied_role_id)
    if implied["domain_id"] and not prior["domain_id"]:  # as Keystone: a domain's role is its own
        raise Forbidden("A global role cannot imply a domain-specific role.")
    if cmd.prior_role_id in expand_implied(db, {cmd.implied_role_id}):
        raise BadRequest("That implication would make a cycle of implied roles.")
    db["role_implications"].insert(
        {"prior_role_id": cmd.prior_role_id, "implied_role_id": cmd.implied_role_id}, ignore=True
    )
    return None


def _apply_ensure_role(db: sqlite_utils.Database, cmd: c.EnsureRole) -> Any:
    found = find(db, "role", domain_id="", name=cmd.name)
    if found:
        return found[0]
    db["roles"].insert({"id": cmd.id, "name": cmd.name, "domain_id": "", "description": "",
                        "created_at": cmd.created_at})
    for prior in cmd.implied_by:
        for row in find(db, "role", domain_id="", name=prior):
            db["role_implications"].insert({"prior_role_id": row["id"], "implied_role_id": cmd.id}, ignore=True)
    for implied in cmd.implies:
        for row in find(db, "role", domain_id="", name=implied):
            db["role_implications"].insert({"prior_role_id": cmd.id, "implied_role_id": row["id"]}, ignore=True)
    return must_get(db, "role", cmd.id)


def _apply_unimply_role(db: sqlite_utils.Database, cmd: c.UnimplyRole) -> Any:
    cur = db.execute(
        "DELETE FROM role_implications WHERE prior_role_id = ? AND implied_role_id = ?",
        [cmd.prior_role_id, cmd.implied_role_id],
    )
    if cur.rowcount == 0:
        raise NotFound("Could not find that role inference rule.")
    return None


def _apply_revoke_token(db: sqlite_utils.Database, cmd: c.RevokeToken) -> Any:
    db["revocations"].insert(
        {"audit_id": cmd.audit_id, "issued_before": cmd.at, "expires_at": cmd.expires_at}
    )
    return None


def _apply_rotate_keys(db: sqlite_utils.Database, cmd: c.RotateKeys) -> Any:
    if list(db.query("SELECT 1 FROM token_keys WHERE id = ?", [cmd.key_id])):
        raise Conflict(f"Token key {cmd.key_id} exists already; another rotation won.")
    db["token_keys"].insert({"id": cmd.key_id, "key": cmd.key, "created_at": cmd.created_at})
    for key_id in cmd.drop_key_ids:
        db.execute("DELETE FROM token_keys WHERE id = ?", [key_id])
    if cmd.drop_revocations_before:
        db.execute("DELETE FROM revocations WHERE issued_before < ?", [cmd.drop_revocations_before])
    return None


HANDLERS: dict[type, Handler] = {
    c.Create: _apply_create,
    c.Update: _apply_update,
    c.Delete: _apply_delete,
    c.AddGroupMember: _apply_add_group_member,
    c.RemoveGroupMember: _apply_remove_group_member,
    c.ImplyRole: _apply_imply_role,
    c.UnimplyRole: _apply_unimply_role,
    c.EnsureRole: _apply_ensure_role,
    c.Grant: _apply_grant,
    c.Revoke: _apply_revoke,
    c.RevokeToken: _apply_revoke_token,
    c.RotateKeys: _apply_rotate_keys,
}


STORE = StoreSpec("identity", MIGRATIONS, c, (__name__, "cloudbox.identity.store_extensions"))

"""Metadata definitions in the database: the reads the metadefs service makes, and apply for
its commands (tables made by migration 2 of store.py)."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound
from cloudbox.image import commands as c
from cloudbox.image import metadefs as m
from cloudbox.state.migrations import Handler

SINGULAR = {"objects": "object", "properties": "property", "tags": "tag"}
LIMITS = {"objects": m.MAX_OBJECTS, "properties": m.MAX_PROPERTIES, "tags": m.MAX_TAGS}


# --- reads -----------------------------------------------------------------------------------
def _namespace(row: dict[str, Any]) -> dict[str, Any]:
    ns = dict(row)
    ns["protected"] = bool(ns["protected"])
    return ns


def get_namespace(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM metadef_namespaces WHERE namespace = ?", [name]))
    return _namespace(rows[0]) if rows else None


def _must_get(db: sqlite_utils.Database, name: str) -> dict[str, Any]:
    ns = get_namespace(db, name)
    if ns is None:
        raise NotFound(m.not_found(name))
    return ns


def visible_namespace(db: sqlite_utils.Database, reader: m.Reader, name: str) -> dict[str, Any]:
    """The namespace if ``reader`` may see it; NotFound otherwise (a hidden one does not exist)."""
    ns = get_namespace(db, name)
    if ns is None or not m.may_see(reader, ns):
        raise NotFound(m.not_found(name))
    return ns


def associations(db: sqlite_utils.Database, namespace_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query(
        "SELECT * FROM metadef_associations WHERE namespace_id = ? ORDER BY resource_type", [namespace_id])]


def definitions(db: sqlite_utils.Database, namespace_id: str, kind: str) -> list[dict[str, Any]]:
    rows = db.query("SELECT * FROM metadef_definitions WHERE namespace_id = ? AND kind = ? ORDER BY name",
                    [namespace_id, kind])
    return [_definition(r) for r in rows]


def _definition(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["body"] = json.loads(row["body"]) if row["body"] is not None else None
    return out


def _get_definition(db: sqlite_utils.Database, namespace_id: str, kind: str, name: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM metadef_definitions WHERE namespace_id = ? AND kind = ? AND name = ?",
                         [namespace_id, kind, name]))
    return _definition(rows[0]) if rows else None


def _missing(kind: str, name: str, namespace: str) -> NotFound:
    return NotFound(f"Metadata definition {SINGULAR[kind]} not found for namespace={namespace}, "
                    f"{SINGULAR[kind]}={name}.")


def definition(db: sqlite_utils.Database, reader: m.Reader, namespace: str, kind: str, name: str) -> dict[str, Any]:
    ns = visible_namespace(db, reader, namespace)
    found = _get_definition(db, ns["id"], kind, name)
    if found is None:
        raise _missing(kind, name, namespace)
    return found


def whole_namespace(db: sqlite_utils.Database, reader: m.Reader, name: str) -> dict[str, Any]:
    """A namespace with its associations, properties, objects and tags."""
    ns = visible_namespace(db, reader, name)
    ns["associations"] = associations(db, ns["id"])
    for kind in m.KINDS:
        ns[kind] = definitions(db, ns["id"], kind)
    return ns


def namespace_children(db: sqlite_utils.Database, reader: m.Reader, name: str, kind: str) -> list[dict[str, Any]]:
    ns = visible_namespace(db, reader, name)
    return associations(db, ns["id"]) if kind == "associations" else definitions(db, ns["id"], kind)


def property_prefix(db: sqlite_utils.Database, reader: m.Reader, namespace: str, resource_type: str) -> str | None:
    ns = visible_namespace(db, reader, namespace)
    rows = list(db.query("SELECT prefix FROM metadef_associations WHERE namespace_id = ? AND resource_type = ?",
                         [ns["id"], resource_type]))
    return rows[0]["prefix"] if rows else None


def list_namespaces(db: sqlite_utils.Database, reader: m.Reader, visibility: str | None,
                    resource_types: list[str], sort: tuple[str, str], marker: str | None,
                    limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` + 1 namespaces the reader sees, after ``marker``, each with its associations."""
    clauses, params = ["1"], []
    if not reader.sees_all:
        clauses.append("(visibility = 'public' OR owner = ?)")
        params.append(reader.project_id or "")
    if visibility:
        clauses.append("visibility = ?")
        params.append(visibility)
    if resource_types:
        clauses.append("EXISTS (SELECT 1 FROM metadef_associations a WHERE a.namespace_id = metadef_namespaces.id"
                       f" AND a.resource_type IN ({','.join('?' * len(resource_types))}))")
        params.extend(resource_types)
    key, direction = sort
    column = f"coalesce({key}, '')"  # display_name may be NULL; keyset paging needs a value
    if marker:
        found = get_namespace(db, marker)
        if found is None or not m.may_see(reader, found):
            raise BadRequest(f"Marker namespace {marker} could not be found.")
        beyond = ">" if direction == "asc" else "<"
        clauses.append(f"({column} {beyond} ? OR ({column} = ? AND namespace {beyond} ?))")
        params.extend([found[key] or "", found[key] or "", marker])
    order = "ASC" if direction == "asc" else "DESC"
    rows = db.query(f"SELECT * FROM metadef_namespaces WHERE {' AND '.join(clauses)} "
                    f"ORDER BY {column} {order}, namespace {order} LIMIT ?", [*params, limit + 1])
    out = []
    for row in rows:
        ns = _namespace(row)
        ns["associations"] = associations(db, ns["id"])
        out.append(ns)
    return out


def list_tags(db: sqlite_utils.Database, reader: m.Reader, namespace: str, sort: tuple[str, str],
              marker: str | None, limit: int) -> list[dict[str, Any]]:
    ns = visible_namespace(db, reader, namespace)
    key, direction = sort
    clauses, params = ["namespace_id = ?", "kind = 'tags'"], [ns["id"]]
    if marker:
        found = _get_definition(db, ns["id"], "tags", marker)
        if found is None:
            raise BadRequest(f"Marker tag {marker} could not be found.")
        beyond = ">" if direction == "asc" else "<"
        clauses.append(f"({key} {beyond} ? OR ({key} = ? AND name {beyond} ?))")
        params.extend([found[key], found[key], marker])
    order = "ASC" if direction == "asc" else "DESC"
    return [_definition(r) for r in db.query(
        f"SELECT * FROM metadef_definitions WHERE {' AND '.join(clauses)} ORDER BY {key} {order}, name {order} "
        "LIMIT ?", [*params, limit + 1])]


def resource_types(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query("SELECT * FROM metadef_resource_types ORDER BY name")]


# --- apply -----------------------------------------------------------------------------------
def _ensure_resource_type(db: sqlite_utils.Database, name: str, at: str) -> None:
    """A resource type named by an association comes into being with it, as in Glance."""
    db.execute("INSERT OR IGNORE INTO metadef_resource_types (name, protected, created_at, updated_at) "
               "VALUES (?, 0, ?, ?)", [name, at, at])


def _associate(db: sqlite_utils.Database, ns: dict[str, Any], row: dict[str, Any], at: str) -> None:
    _ensure_resource_type(db, row["resource_type"], at)
    taken = list(db.query("SELECT 1 FROM metadef_associations WHERE namespace_id = ? AND resource_type = ?",
                          [ns["id"], row["resource_type"]]))
    if taken:
        raise Conflict(f"The metadata definition resource-type association of resource-type={row['resource_type']} "
                       f"to namespace={ns['namespace']}, already exists.")
    if len(associations(db, ns["id"])) >= m.MAX_ASSOCIATIONS:
        raise BadRequest(f"A namespace may have at most {m.MAX_ASSOCIATIONS} resource type associations.")
    db["metadef_associations"].insert({"namespace_id": ns["id"], **row, "created_at": at, "updated_at": at})


def _insert_definition(db: sqlite_utils.Database, ns: dict[str, Any], kind: str, name: str, body: Any,
                       at: str) -> None:
    if _get_definition(db, ns["id"], kind, name) is not None:
        raise Conflict(f"A metadata definition {SINGULAR[kind]} with name={name} already exists in "
                       f"namespace={ns['namespace']}.")
    count = list(db.query("SELECT count(*) AS n FROM metadef_definitions WHERE namespace_id = ? AND kind = ?",
                          [ns["id"], kind]))[0]["n"]
    if count >= LIMITS[kind]:
        raise BadRequest(f"A namespace may have at most {LIMITS[kind]} {kind}.")
    db["metadef_definitions"].insert({
        "namespace_id": ns["id"], "kind": kind, "name": name,
        "body": None if body is None else json.dumps(body, sort_keys=True, separators=(",", ":")),
        "created_at": at, "updated_at": at})


def _apply_create(db: sqlite_utils.Database, cmd: c.CreateNamespace) -> dict[str, Any]:
    row = dict(cmd.row)
    if get_namespace(db, row["namespace"]) is not None:
        raise Conflict(f"A metadata definition namespace with name={row['namespace']} already exists.")
    db["metadef_namespaces"].insert({**row, "protected": int(row["protected"])})
    ns = _must_get(db, row["namespace"])
    at = row["created_at"]
    for association in cmd.associations:
        _associate(db, ns, dict(association), at)
    for kind, items in (("properties", cmd.properties), ("objects", cmd.objects)):
        for item in items:
            _insert_definition(db, ns, kind, item["name"], item["body"], at)
    for tag in cmd.tags:
        _insert_definition(db, ns, "tags", tag, None, at)
    return whole_namespace(db, m.Reader(None, sees_all=True), row["namespace"])


def _apply_update(db: sqlite_utils.Database, cmd: c.UpdateNamespace) -> dict[str, Any]:
    ns = _must_get(db, cmd.namespace)
    new_name = cmd.changes.get("namespace", cmd.namespace)
    if new_name != cmd.namespace and get_namespace(db, new_name) is not None:
        raise Conflict(f"A metadata definition namespace with name={new_name} already exists.")
    changes = {**cmd.changes, "updated_at": cmd.at}
    if "protected" in changes:
        changes["protected"] = int(changes["protected"])
    db["metadef_namespaces"].update(ns["id"], changes)
    return whole_namespace(db, m.Reader(None, sees_all=True), new_name)


def _apply_delete(db: sqlite_utils.Database, cmd: c.DeleteNamespace) -> None:
    ns = _must_get(db, cmd.namespace)
    if ns["protected"]:
        raise Forbidden(f"Namespace {cmd.namespace} is protected and cannot be deleted.")
    db.execute("DELETE FROM metadef_namespaces WHERE id = ?", [ns["id"]])


def _apply_clear(db: sqlite_utils.Database, cmd: c.ClearNamespace) -> None:
    ns = _must_get(db, cmd.namespace)
    if ns["protected"]:
        raise Forbidden(f"Namespace {cmd.namespace} is protected: its {cmd.kind} cannot be deleted.")
    db.execute("DELETE FROM metadef_definitions WHERE namespace_id = ? AND kind = ?", [ns["id"], cmd.kind])


def _apply_put(db: sqlite_utils.Database, cmd: c.PutDefinition) -> dict[str, Any]:
    ns = _must_get(db, cmd.namespace)
    name = cmd.row["name"]
    if cmd.name is None:
        _insert_definition(db, ns, cmd.kind, name, cmd.row["body"], cmd.at)
    else:
        if _get_definition(db, ns["id"], cmd.kind, cmd.name) is None:
            raise _missing(cmd.kind, cmd.name, cmd.namespace)
        if name != cmd.name and _get_definition(db, ns["id"], cmd.kind, name) is not None:
            raise Conflict(f"A metadata definition {SINGULAR[cmd.kind]} with name={name} already exists in "
                           f"namespace={cmd.namespace}.")
        body = None if cmd.row["body"] is None else json.dumps(cmd.row["body"], sort_keys=True, separators=(",", ":"))
        db.execute("UPDATE metadef_definitions SET name = ?, body = ?, updated_at = ? "
                   "WHERE namespace_id = ? AND kind = ? AND name = ?",
                   [name, body, cmd.at, ns["id"], cmd.kind, cmd.name])
    found = _get_definition(db, ns["id"], cmd.kind, name)
    assert found is not None
    return found


def _apply_remove(db: sqlite_utils.Database, cmd: c.RemoveDefinition) -> None:
    ns = _must_get(db, cmd.namespace)
    cur = db.execute("DELETE FROM metadef_definitions WHERE namespace_id = ? AND kind = ? AND name = ?",
                     [ns["id"], cmd.kind, cmd.name])
    if cur.rowcount == 0:
        raise _missing(cmd.kind, cmd.name, cmd.namespace)


def _apply_add_tags(db: sqlite_utils.Database, cmd: c.AddMetadefTags) -> list[dict[str, Any]]:
    ns = _must_get(db, cmd.namespace)
    if cmd.replace:
        db.execute("DELETE FROM metadef_definitions WHERE namespace_id = ? AND kind = 'tags'", [ns["id"]])
    for name in cmd.names:
        _insert_definition(db, ns, "tags", name, None, cmd.at)
    return [d for d in definitions(db, ns["id"], "tags") if d["name"] in cmd.names]


def _apply_rename_tag(db: sqlite_utils.Database, cmd: c.RenameMetadefTag) -> dict[str, Any]:
    return _apply_put(db, c.PutDefinition(cmd.namespace, "tags", cmd.name, {"name": cmd.new_name, "body": None},
                                          cmd.at))


def _apply_add_association(db: sqlite_utils.Database, cmd: c.AddAssociation) -> dict[str, Any]:
    ns = _must_get(db, cmd.namespace)
    _associate(db, ns, dict(cmd.row), cmd.at)
    return next(a for a in associations(db, ns["id"]) if a["resource_type"] == cmd.row["resource_type"])


def _apply_remove_association(db: sqlite_utils.Database, cmd: c.RemoveAssociation) -> None:
    ns = _must_get(db, cmd.namespace)
    cur = db.execute("DELETE FROM metadef_associations WHERE namespace_id = ? AND resource_type = ?",
                     [ns["id"], cmd.resource_type])
    if cur.rowcount == 0:
        raise NotFound(f"Metadata definition resource-type-association for resource-type={cmd.resource_type} "
                       f"of namespace={cmd.namespace} was not found.")


HANDLERS: dict[type, Handler] = {
    c.CreateNamespace: _apply_create,
    c.UpdateNamespace: _apply_update,
    c.DeleteNamespace: _apply_delete,
    c.ClearNamespace: _apply_clear,
    c.PutDefinition: _apply_put,
    c.RemoveDefinition: _apply_remove,
    c.AddMetadefTags: _apply_add_tags,
    c.RenameMetadefTag: _apply_rename_tag,
    c.AddAssociation: _apply_add_association,
    c.RemoveAssociation: _apply_remove_association,
}

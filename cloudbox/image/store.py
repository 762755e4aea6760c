"""Image tables: migrations, apply(db, command), and the queries of the service."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from cloudbox.image import commands as c
from cloudbox.image import core
from cloudbox.state.migrations import Handler, StoreSpec

MIGRATIONS = [
    """
    CREATE TABLE images (
        id TEXT PRIMARY KEY, name TEXT, owner TEXT, status TEXT NOT NULL, visibility TEXT NOT NULL,
        protected INTEGER NOT NULL DEFAULT 0, os_hidden INTEGER NOT NULL DEFAULT 0,
        disk_format TEXT, container_format TEXT, min_disk INTEGER NOT NULL DEFAULT 0,
        min_ram INTEGER NOT NULL DEFAULT 0, size INTEGER, virtual_size INTEGER, checksum TEXT,
        os_hash_algo TEXT, os_hash_value TEXT, properties TEXT NOT NULL DEFAULT '{}',
        store_node TEXT, upload_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX images_owner ON images (owner);
    CREATE INDEX images_visibility ON images (visibility);
    CREATE INDEX images_created ON images (created_at, id);
    CREATE TABLE image_tags (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE, tag TEXT NOT NULL,
        PRIMARY KEY (image_id, tag));
    CREATE INDEX image_tags_tag ON image_tags (tag);
    CREATE TABLE image_members (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE, member_id TEXT NOT NULL,
        status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (image_id, member_id));
    CREATE INDEX image_members_member ON image_members (member_id, status);
    """,
    # 2: metadata definitions (apply_metadefs.py); objects, properties and tags of a namespace
    # share one table, told apart by kind.
    """
    CREATE TABLE metadef_namespaces (
        id TEXT PRIMARY KEY, namespace TEXT NOT NULL UNIQUE, display_name TEXT, description TEXT,
        visibility TEXT NOT NULL, protected INTEGER NOT NULL DEFAULT 0, owner TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX metadef_namespaces_created ON metadef_namespaces (created_at, namespace);
    CREATE TABLE metadef_resource_types (
        name TEXT PRIMARY KEY, protected INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    INSERT INTO metadef_resource_types (name, protected, created_at, updated_at) VALUES
        ('OS::Glance::Image', 1, '2026-12-07T00:00:00Z', '2026-12-07T00:00:00Z'),
        ('OS::Cinder::Volume', 1, '2026-12-07T00:00:00Z', '2026-12-07T00:00:00Z'),
        ('OS::Nova::Flavor', 1, '2026-12-07T00:00:00Z', '2026-12-07T00:00:00Z'),
        ('OS::Nova::Aggregate', 1, '2026-12-07T00:00:00Z', '2026-12-07T00:00:00Z'),
        ('OS::Nova::Server', 1, '2026-12-07T00:00:00Z', '2026-12-07T00:00:00Z');
    CREATE TABLE metadef_associations (
        namespace_id TEXT NOT NULL REFERENCES metadef_namespaces(id) ON DELETE CASCADE,
        resource_type TEXT NOT NULL REFERENCES metadef_resource_types(name),
        prefix TEXT, properties_target TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (namespace_id, resource_type));
    CREATE INDEX metadef_associations_type ON metadef_associations (resource_type);
    CREATE TABLE metadef_definitions (
        namespace_id TEXT NOT NULL REFERENCES metadef_namespaces(id) ON DELETE CASCADE,
        kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (namespace_id, kind, name));
    """,
    # 3: tasks (interoperable import, apply_imports.py); input and result are JSON.
    """
    CREATE TABLE image_tasks (
        id TEXT PRIMARY KEY, type TEXT NOT NULL, status TEXT NOT NULL, owner TEXT, user_id TEXT,
        request_id TEXT, image_id TEXT, input TEXT NOT NULL, result TEXT, message TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, expires_at TEXT);
    CREATE INDEX image_tasks_image ON image_tasks (image_id, created_at);
    CREATE INDEX image_tasks_owner ON image_tasks (owner, created_at, id);
    CREATE INDEX image_tasks_expiry ON image_tasks (expires_at);
    """,
]

BOOL_COLUMNS = ("protected", "os_hidden")

# Sort keys as SQL expressions that are never NULL, so that keyset paging compares cleanly.
SORT_SQL = {
    "name": "coalesce(name, '')", "status": "status", "container_format": "coalesce(container_format, '')",
    "disk_format": "coalesce(disk_format, '')", "size": "coalesce(size, -1)", "id": "id",
    "created_at": "created_at", "updated_at": "updated_at", "visibility": "visibility",
    "owner": "coalesce(owner, '')", "min_disk": "min_disk", "min_ram": "min_ram",
    "virtual_size": "coalesce(virtual_size, -1)",
}


# --- rows ------------------------------------------------------------------------------
def _decode(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    image = dict(row)
    image["properties"] = json.loads(image["properties"])
    for key in BOOL_COLUMNS:
        image[key] = bool(image[key])
    image["tags"] = [r["tag"] for r in db.query("SELECT tag FROM image_tags WHERE image_id = ? ORDER BY tag", [row["id"]])]
    return image


def _encode(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    if "properties" in out:
        out["properties"] = json.dumps(out["properties"], sort_keys=True, separators=(",", ":"))
    for key in BOOL_COLUMNS:
        if key in out:
            out[key] = int(out[key])
    return out


def get(db: sqlite_utils.Database, image_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM images WHERE id = ?", [image_id]))
    return _decode(db, rows[0]) if rows else None


def must_get(db: sqlite_utils.Database, image_id: str) -> dict[str, Any]:
    image = get(db, image_id)
    if image is None:
        raise NotFound(f"No image found with ID {image_id}")
    return image


def get_member(db: sqlite_utils.Database, image_id: str, member_id: str | None) -> dict[str, Any] | None:
    if not member_id:
        return None
    rows = list(db.query("SELECT * FROM image_members WHERE image_id = ? AND member_id = ?", [image_id, member_id]))
    return dict(rows[0]) if rows else None


def members(db: sqlite_utils.Database, image_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query("SELECT * FROM image_members WHERE image_id = ? ORDER BY member_id", [image_id])]


def visible(db: sqlite_utils.Database, viewer: core.Viewer, image_id: str) -> dict[str, Any]:
    """The image if ``viewer`` may see it, else NotFound (hidden images do not exist for them)."""
    image = get(db, image_id)
    if image is None or not core.may_see(viewer, image, get_member(db, image_id, viewer.project_id)):
        raise NotFound(f"No image found with ID {image_id}")
    return image


def ids_and_states(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    """Every image's status, data node and upload id, where its data is staged and its import task
    (for the reconciler)."""
    sql = ("SELECT id, status, store_node, upload_id,"
           " json_extract(properties, '$.os_glance_stage_host') AS stage_host,"
           " json_extract(properties, '$.os_glance_import_task') AS import_task FROM images")
    return {r["id"]: dict(r) for r in db.query(sql)}


# --- listing -----------------------------------------------------------------------------
def _visibility_clause(viewer: core.Viewer, opts: core.ListOptions) -> tuple[str, list[Any]]:
    if viewer.sees_all:
        if opts.visibility in (None, "all"):
            return "1", []
        return "visibility = ?", [opts.visibility]
    project = viewer.project_id
    owned = ("owner = ?", [project]) if project else ("0", [])
    if project:
        statuses = core.MEMBER_STATUSES if opts.member_status == "all" else (opts.member_status,)
        marks = ",".join("?" * len(statuses))
        member = (f"EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = images.id AND m.member_id = ?"
                  f" AND m.status IN ({marks}))", [project, *statuses])
    else:
        member = ("0", [])
    shared_with_me = (f"(visibility = 'shared' AND {member[0]})", member[1])
    if opts.visibility is None:
        parts = [owned, ("visibility = 'public'", []), shared_with_me]
    elif opts.visibility == "all":
        parts = [owned, ("visibility IN ('public', 'community')", []), shared_with_me]
    elif opts.visibility in ("public", "community"):
        parts = [(f"visibility = '{opts.visibility}'", [])]
    elif opts.visibility == "private":
        parts = [(f"(visibility = 'private' AND {owned[0]})", owned[1])]
    else:  # shared: mine, and those shared with me
        parts = [(f"(visibility = 'shared' AND ({owned[0]} OR {member[0]}))", owned[1] + member[1])]
    return "(" + " OR ".join(p[0] for p in parts) + ")", [v for p in parts for v in p[1]]


def list_images(db: sqlite_utils.Database, viewer: core.Viewer, opts: core.ListOptions,
                marker: str | None, limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` + 1 images the viewer sees, filtered and sorted, after ``marker``."""
    clause, params = _visibility_clause(viewer, opts)
    clauses = [clause, "os_hidden = ?"]
    params.append(int(opts.os_hidden))
    for column, values in opts.equals.items():
        clauses.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)
    for column, operator, value in opts.compare:
        clauses.append(f"{column} {operator} ?")
        params.append(value)
    if opts.protected is not None:
        clauses.append("protected = ?")
        params.append(int(opts.protected))
    if opts.size_min is not None:
        clauses.append("size >= ?")
        params.append(opts.size_min)
    if opts.size_max is not None:
        clauses.append("size <= ?")
        params.append(opts.size_max)
    for tag in opts.tags:
        clauses.append("EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.tag = ?)")
        params.append(tag)
    for name, value in opts.properties.items():
        clauses.append("json_extract(properties, ?) = ?")  # the path is a parameter, never SQL text
        params.extend([f'$."{name}"', value])
    if marker:
        found = get(db, marker)
        if found is None or not core.may_see(viewer, found, get_member(db, marker, viewer.project_id)):
            raise BadRequest(f"Marker image {marker} could not be found.")
        values = list(db.query(
            "SELECT " + ", ".join(f"{SORT_SQL[k]} AS k{i}" for i, (k, _) in enumerate(opts.sort))
            + " FROM images WHERE id = ?", [marker]))[0]
        after, after_params = [], []
        for i, (key, direction) in enumerate(opts.sort):
            equal = [f"{SORT_SQL[k]} = ?" for k, _ in opts.sort[:i]]
            beyond = f"{SORT_SQL[key]} {'>' if direction == 'asc' else '<'} ?"
            after.append("(" + " AND ".join([*equal, beyond]) + ")")
            after_params.extend([values[f"k{j}"] for j in range(i)] + [values[f"k{i}"]])
        clauses.append("(" + " OR ".join(after) + ")")
        params.extend(after_params)
    order = ", ".join(f"{SORT_SQL[k]} {d.upper()}" for k, d in opts.sort)
    sql = f"SELECT * FROM images WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT ?"
    return [_decode(db, r) for r in db.query(sql, [*params, limit + 1])]


# --- apply ---------------------------------------------------------------------------------
def _touch(db: sqlite_utils.Database, image_id: str, changes: dict[str, Any]) -> None:
    db["images"].update(image_id, _encode(changes))


def _set_tags(db: sqlite_utils.Database, image_id: str, tags: list[str]) -> None:
    db.execute("DELETE FROM image_tags WHERE image_id = ?", [image_id])
    for tag in sorted(set(tags)):
        db["image_tags"].insert({"image_id": image_id, "tag": tag})


def _status_must_be(image: dict[str, Any], *statuses: str, action: str) -> None:
    if image["status"] not in statuses:
        raise BadRequest(f"Cannot {action} image {image['id']} in status '{image['status']}'.")


def _apply_create(db: sqlite_utils.Database, cmd: c.CreateImage) -> dict[str, Any]:
    row = dict(cmd.row)
    if get(db, row["id"]) is not None:
        raise Conflict(f"An image with ID {row['id']} exists already.")
    db["images"].insert(_encode(row))
    _set_tags(db, row["id"], list(cmd.tags))
    return must_get(db, row["id"])


def _apply_update(db: sqlite_utils.Database, cmd: c.UpdateImage) -> dict[str, Any]:
    image = must_get(db, cmd.id)
    changes, properties, tags = core.apply_patch(image, cmd.ops)
    _touch(db, cmd.id, {**changes, "properties": properties, "updated_at": cmd.at})
    _set_tags(db, cmd.id, tags)
    return must_get(db, cmd.id)


def _apply_upload(db: sqlite_utils.Database, cmd: Any) -> dict[str, Any]:
    image = must_get(db, cmd.id)
    if isinstance(cmd, c.BeginUpload):
        if image["status"] != "queued":
            raise Conflict(f"Image status transition from {image['status']} to saving is not allowed: "
                           "data can be uploaded only to a queued image.")
        if not image["disk_format"] or not image["container_format"]:
            raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
        _touch(db, cmd.id, {"status": "saving", "upload_id": cmd.upload_id, "store_node": cmd.node,
                            "updated_at": cmd.at})
        return must_get(db, cmd.id)
    # An abort ends an upload (saving) or a stage (uploading); only an upload finishes here.
    current = ("saving",) if isinstance(cmd, c.FinishUpload) else ("saving", "uploading")
    if image["status"] not in current or image["upload_id"] != cmd.upload_id:
        raise Conflict(f"The upload to image {cmd.id} is no longer current (status {image['status']}).")
    if isinstance(cmd, c.FinishUpload):
        _touch(db, cmd.id, {
            "status": "active", "size": cmd.size, "virtual_size": cmd.virtual_size, "checksum": cmd.checksum,
            "os_hash_algo": cmd.os_hash_algo, "os_hash_value": cmd.os_hash_value, "upload_id": None,
            "updated_at": cmd.at,
        })
    else:
        properties = {k: v for k, v in image["properties"].items() if k != "os_glance_stage_host"}
        _touch(db, cmd.id, {"status": "queued", "upload_id": None, "store_node": None, "properties": properties,
                            "updated_at": cmd.at})
    return must_get(db, cmd.id)


def _apply_member(db: sqlite_utils.Database, cmd: Any) -> dict[str, Any] | None:
    image = must_get(db, cmd.image_id)
    current = get_member(db, cmd.image_id, cmd.member_id)
    if isinstance(cmd, c.AddMember):
        if image["visibility"] != "shared":
            raise Forbidden(f"Image {cmd.image_id} is {image['visibility']}: only shared images have members.")
        if current is not None:
            raise Conflict(f"Project {cmd.member_id} is already a member of image {cmd.image_id}.")
        if len(members(db, cmd.image_id)) >= core.MAX_MEMBERS:
            raise PayloadTooLarge(f"An image may have at most {core.MAX_MEMBERS} members.")
        db["image_members"].insert({"image_id": cmd.image_id, "member_id": cmd.member_id, "status": "pending",
                                    "created_at": cmd.at, "updated_at": cmd.at})
        return get_member(db, cmd.image_id, cmd.member_id)
    if current is None:
        raise NotFound(f"Project {cmd.member_id} is not a member of image {cmd.image_id}.")
    if isinstance(cmd, c.UpdateMember):
        db.execute("UPDATE image_members SET status = ?, updated_at = ? WHERE image_id = ? AND member_id = ?",
                   [cmd.status, cmd.at, cmd.image_id, cmd.member_id])
        return get_member(db, cmd.image_id, cmd.member_id)
    db.execute("DELETE FROM image_members WHERE image_id = ? AND member_id = ?", [cmd.image_id, cmd.member_id])
    return None


def _apply_delete_image(db: sqlite_utils.Database, cmd: c.DeleteImage) -> Any:
    image = must_get(db, cmd.id)
    if image["protected"]:
        raise Forbidden(f"Image {cmd.id} is protected and cannot be deleted.")
    db.execute("DELETE FROM images WHERE id = ?", [cmd.id])
    return image


def _apply_deactivate(db: sqlite_utils.Database, cmd: c.Deactivate) -> Any:
    image = must_get(db, cmd.id)
    _status_must_be(image, "active", "deactivated", action="deactivate")
    _touch(db, cmd.id, {"status": "deactivated", "updated_at": cmd.at})
    return must_get(db, cmd.id)


def _apply_reactivate(db: sqlite_utils.Database, cmd: c.Reactivate) -> Any:
    image = must_get(db, cmd.id)
    _status_must_be(image, "active", "deactivated", action="reactivate")
    _touch(db, cmd.id, {"status": "active", "updated_at": cmd.at})
    return must_get(db, cmd.id)


def _apply_add_tag(db: sqlite_utils.Database, cmd: c.AddTag) -> Any:
    image = must_get(db, cmd.id)
    if cmd.tag not in image["tags"]:
        if len(image["tags"]) >= core.MAX_TAGS:
            raise PayloadTooLarge(f"An image may have at most {core.MAX_TAGS} tags.")
        db["image_tags"].insert({"image_id": cmd.id, "tag": cmd.tag})
    _touch(db, cmd.id, {"updated_at": cmd.at})
    return None


def _apply_remove_tag(db: sqlite_utils.Database, cmd: c.RemoveTag) -> Any:
    must_get(db, cmd.id)
    cur = db.execute("DELETE FROM image_tags WHERE image_id = ? AND tag = ?", [cmd.id, cmd.tag])
    if cur.rowcount == 0:
        raise NotFound(f"Tag {cmd.tag} not found on image {cmd.id}.")
    _touch(db, cmd.id, {"updated_at": cmd.at})
    return None


HANDLERS: dict[type, Handler] = {
    c.CreateImage: _apply_create,
    c.UpdateImage: _apply_update,
    c.DeleteImage: _apply_delete_image,
    c.BeginUpload: _apply_upload,
    c.FinishUpload: _apply_upload,
    c.AbortUpload: _apply_upload,
    c.Deactivate: _apply_deactivate,
    c.Reactivate: _apply_reactivate,
    c.AddTag: _apply_add_tag,
    c.RemoveTag: _apply_remove_tag,
    c.AddMember: _apply_member,
    c.UpdateMember: _apply_member,
    c.RemoveMember: _apply_member,
}


STORE = StoreSpec("image", MIGRATIONS, c,
                  (__name__, "cloudbox.image.apply_metadefs", "cloudbox.image.apply_imports"))

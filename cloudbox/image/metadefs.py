"""Metadata definitions (Glance's /v2/metadefs), pure: who sees what, rows from request bodies,
and the JSON shapes of namespaces, objects, properties, tags and resource types.

A namespace groups definitions of metadata keys (properties), objects (sets of properties) and
tags, and says which resource types (images, flavors, volumes...) they apply to. Everyone reads
public namespaces and those of their own project; only cloud administrators change them (Glance's
default policy since Yoga).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any, Mapping

from cloudbox.errors import BadRequest

# Resource types every cloud has (those Glance's database starts with); more appear when a
# namespace is first associated with a new one.
BUILTIN_RESOURCE_TYPES = ("OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Aggregate",
                          "OS::Nova::Server")
# Bounds that keep one namespace's documents (shown whole) small.
MAX_OBJECTS = MAX_PROPERTIES = MAX_TAGS = MAX_ASSOCIATIONS = 256
NAMESPACE_SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name")
TAG_SORT_KEYS = ("created_at", "updated_at", "name")
SCHEMA = "/v2/schemas/metadefs/"
KINDS = ("objects", "properties", "tags")


@dataclass(frozen=True)
class Reader:
    """Whose namespaces a caller sees: every one, or the public ones and their project's."""

    project_id: str | None
    sees_all: bool = False


def reader_of(ctx: Any) -> Reader:
    project = ctx.project_id if ctx.project_id and ctx.can_read_project(ctx.project_id) else None
    return Reader(project, bool(ctx.is_cloud_reader))


def may_see(reader: Reader, namespace: Mapping[str, Any]) -> bool:
    return reader.sees_all or namespace["visibility"] == "public" or (
        reader.project_id is not None and namespace["owner"] == reader.project_id)


def not_found(namespace: str) -> str:
    return f"Metadata definition namespace={namespace} was not found."


# --- rows from bodies (bodies already checked against metadef_schemas) -----------------------
def namespace_row(body: Mapping[str, Any], *, id: str, owner: str | None, at: str) -> dict[str, Any]:
    """A namespace's row; what the body leaves out takes Glance's defaults (as a PUT does too)."""
    return {
        "id": id, "namespace": body["namespace"], "display_name": body.get("display_name"),
        "description": body.get("description"), "visibility": body.get("visibility") or "private",
        "protected": bool(body.get("protected", False)), "owner": body.get("owner") or owner,
        "created_at": at, "updated_at": at,
    }


def object_row(body: Mapping[str, Any]) -> dict[str, Any]:
    """An object's definition: its name and its document (what the row's ``body`` column holds)."""
    properties = body.get("properties") or {}
    if len(properties) > MAX_PROPERTIES:
        raise BadRequest(f"An object may define at most {MAX_PROPERTIES} properties.")
    missing = sorted(set(body.get("required") or ()) - set(properties))
    if missing:
        raise BadRequest(f"Object {body['name']} requires properties it does not define: {', '.join(missing)}.")
    document = {k: body[k] for k in ("description", "required") if body.get(k) is not None}
    document["properties"] = {name: dict(p) for name, p in properties.items()}
    return {"name": body["name"], "body": document}


def property_row(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A property's definition (its JSON-schema fragment) under ``name``."""
    document = {k: v for k, v in body.items() if k != "name"}
    if "minimum" in document and "maximum" in document and document["minimum"] > document["maximum"]:
        raise BadRequest(f"Property {name}: minimum is above maximum.")
    if "minLength" in document and "maxLength" in document and document["minLength"] > document["maxLength"]:
        raise BadRequest(f"Property {name}: minLength is above maxLength.")
    return {"name": name, "body": document}


def association_row(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"resource_type": body["name"], "prefix": body.get("prefix"),
            "properties_target": body.get("properties_target")}


def check_counts(body: Mapping[str, Any]) -> None:
    """A namespace created whole stays within the bounds its children have one by one."""
    limits = {"objects": MAX_OBJECTS, "properties": MAX_PROPERTIES, "tags": MAX_TAGS,
              "resource_type_associations": MAX_ASSOCIATIONS}
    for key, limit in limits.items():
        if len(body.get(key) or ()) > limit:
            raise BadRequest(f"A namespace may have at most {limit} {key.replace('_', ' ')}.")
    names = [o["name"] for o in body.get("objects") or ()]
    if len(set(names)) != len(names):
        raise BadRequest("The namespace's objects have a name twice.")
    types = [a["name"] for a in body.get("resource_type_associations") or ()]
    if len(set(types)) != len(types):
        raise BadRequest("The namespace names a resource type twice.")


def unique_tags(tags: Any) -> list[str]:
    names = [t["name"] for t in tags]
    if len(set(names)) != len(names):
        raise BadRequest("A tag name appears twice in the request.")
    if len(names) > MAX_TAGS:
        raise BadRequest(f"A namespace may have at most {MAX_TAGS} tags.")
    return names


def strip_prefix(name: str, prefix: str | None) -> str:
    """A property's own name from the name a resource type uses for it (prefix + name)."""
    if prefix and name.startswith(prefix):
        return name[len(prefix):]
    return name


# --- list options ------------------------------------------------------------------------------
def sort_options(query: Any, keys: tuple[str, ...], default_key: str) -> tuple[str, str]:
    key = query.get("sort_key") or default_key
    direction = query.get("sort_dir") or "desc"
    if key not in keys:
        raise BadRequest(f"Invalid sort key: {key!r}; sortable keys are {', '.join(keys)}.")
    if direction not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {direction!r}; use asc or desc.")
    return key, direction


def list_links(path: str, query: Any, next_marker: str | None) -> dict[str, Any]:
    params = [(k, v) for k in query.keys() for v in query.getlist(k) if k != "marker"]
    links: dict[str, Any] = {"first": path + ("?" + urllib.parse.urlencode(params) if params else "")}
    if next_marker:
        links["next"] = path + "?" + urllib.parse.urlencode([*params, ("marker", next_marker)])
    return links


# --- JSON shapes ----------------------------------------------------------------------------
def _present(body: Mapping[str, Any]) -> dict[str, Any]:
    """Glance leaves out the attributes that have no value."""
    return {k: v for k, v in body.items() if v is not None}


def _path(namespace: str) -> str:
    return "/v2/metadefs/namespaces/" + urllib.parse.quote(namespace, safe=":")


def render_association(row: Mapping[str, Any]) -> dict[str, Any]:
    return _present({"name": row["resource_type"], "prefix": row["prefix"],
                     "properties_target": row["properties_target"], "created_at": row["created_at"],
                     "updated_at": row["updated_at"]})


def render_property(row: Mapping[str, Any], prefix: str | None = None) -> dict[str, Any]:
    return {"name": (prefix or "") + row["name"], **row["body"]}


def render_object(namespace: str, row: Mapping[str, Any], prefix: str | None = None) -> dict[str, Any]:
    body = dict(row["body"])
    if prefix:
        body["properties"] = {prefix + k: v for k, v in body.get("properties", {}).items()}
        body["required"] = [prefix + k for k in body.get("required", [])]
    return {"name": row["name"], **body, "created_at": row["created_at"], "updated_at": row["updated_at"],
            "self": f"{_path(namespace)}/objects/{urllib.parse.quote(row['name'], safe=':')}",
            "schema": SCHEMA + "object"}


def render_tag(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "created_at": row["created_at"], "updated_at": row["updated_at"]}


def render_resource_type(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "created_at": row["created_at"], "updated_at": row["updated_at"]}


def render_namespace(ns: Mapping[str, Any], *, whole: bool = False, resource_type: str | None = None) -> dict[str, Any]:
    """A namespace; ``whole`` adds its properties, objects and tags (as a show does), named with the
    prefix of ``resource_type``'s association when one is asked for."""
    body = _present({
        "namespace": ns["namespace"], "display_name": ns["display_name"], "description": ns["description"],
        "visibility": ns["visibility"], "protected": bool(ns["protected"]), "owner": ns["owner"],
        "created_at": ns["created_at"], "updated_at": ns["updated_at"],
    })
    associations = ns.get("associations") or []
    if associations:
        body["resource_type_associations"] = [render_association(a) for a in associations]
    if whole:
        prefix = next((a["prefix"] for a in associations if a["resource_type"] == resource_type), None)
        if ns.get("properties"):
            body["properties"] = {(prefix or "") + p["name"]: p["body"] for p in ns["properties"]}
        if ns.get("objects"):
            body["objects"] = [{k: v for k, v in render_object(ns["namespace"], o, prefix).items()
                                if k not in ("self", "schema")} for o in ns["objects"]]
        if ns.get("tags"):
            body["tags"] = [{"name": t["name"]} for t in ns["tags"]]
    body["self"] = _path(ns["namespace"])
    body["schema"] = SCHEMA + "namespace"
    return body

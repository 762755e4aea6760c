"""Pure image logic: Glance's attributes and rules, JSON patch, access, list options, JSON shapes.

An image's status follows Glance v2:

| from        | event                                   | to          |
|-------------|-----------------------------------------|-------------|
| (none)      | POST /v2/images                         | queued      |
| queued      | upload starts                           | saving      |
| saving      | data stored and its format checked      | active      |
| saving      | upload fails, is refused, node restarts | queued      |
| active      | deactivate                              | deactivated |
| deactivated | reactivate                              | active      |
| any         | delete (refused while protected)        | (gone)      |

Nothing here touches the database, the disk or the clock.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from cloudbox.errors import BadRequest, Conflict, Forbidden, PayloadTooLarge

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = ("queued", "saving", "active", "killed", "deleted", "deactivated", "uploading", "importing",
            "pending_delete")
MEMBER_STATUSES = ("pending", "accepted", "rejected")
STORE_ID = "local"  # the cloud's one image store (imports.STORES describes it)
HASH_ALGO = "sha512"
MAX_TAGS = 128
MAX_PROPERTIES = 128
MAX_MEMBERS = 128
DEFAULT_LIMIT = 25  # Glance's limit_param_default

# Attributes of every image; the rest of an image's keys are its custom properties.
CORE = ("id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo",
        "os_hash_value", "owner", "size", "virtual_size", "min_disk", "min_ram", "disk_format",
        "container_format", "created_at", "updated_at", "tags", "self", "file", "schema")
READ_ONLY = ("id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
             "created_at", "updated_at", "self", "file", "schema")
RESERVED = ("location", "locations", "direct_url", "deleted", "deleted_at", "stores")
RESERVED_PREFIX = "os_glance_"  # the image service's own properties (import progress), as in Glance
MUTABLE = ("name", "visibility", "protected", "os_hidden", "min_disk", "min_ram", "tags", "disk_format",
           "container_format", "owner")
# Columns of ``images`` that a patch may change directly (tags live in their own table).
PATCH_COLUMNS = tuple(a for a in MUTABLE if a != "tags")


# --- values -----------------------------------------------------------------------
def _check_value(attr: str, value: Any) -> Any:
    """A valid value for ``attr`` (a core attribute or a custom property), else BadRequest."""
    def bad(why: str) -> BadRequest:
        return BadRequest(f"Invalid value for '{attr}': {why}.")

    if attr == "name":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise bad("a name is a string of at most 255 characters, or null")
    elif attr == "owner":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise bad("an owner is a project id, or null")
    elif attr == "visibility":
        if value not in VISIBILITIES:
            raise bad(f"one of {', '.join(VISIBILITIES)}")
    elif attr in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise bad("true or false")
    elif attr in ("min_disk", "min_ram"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**53:
            raise bad("a whole number, zero or more")
    elif attr == "disk_format":
        if value is not None and value not in DISK_FORMATS:
            raise bad(f"one of {', '.join(DISK_FORMATS)}")
    elif attr == "container_format":
        if value is not None and value not in CONTAINER_FORMATS:
            raise bad(f"one of {', '.join(CONTAINER_FORMATS)}")
    elif attr == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t) <= 255 for t in value):
            raise bad("a list of strings of 1 to 255 characters")
        value = sorted(set(value))
        if len(value) > MAX_TAGS:
            raise PayloadTooLarge(f"An image may have at most {MAX_TAGS} tags.")
    else:
        check_property_name(attr)
        if not isinstance(value, str) or len(value) > 65535:
            raise bad("a custom property is a string of at most 65535 characters")
    return value


def is_reserved(name: str) -> bool:
    """Glance keeps these for itself: users may neither set nor change them."""
    return name in RESERVED or name.startswith(RESERVED_PREFIX)


def check_property_name(name: str) -> None:
    if not name or len(name) > 255:
        raise BadRequest("A property name has 1 to 255 characters.")
    if name in READ_ONLY:
        raise Forbidden(f"Attribute '{name}' is read-only.")
    if is_reserved(name):
        raise Forbidden(f"Attribute '{name}' is reserved.")


def new_image(body: Mapping[str, Any], *, id: str, owner: str | None, at: str) -> tuple[dict[str, Any], list[str]]:
    """The row and tags of an image made from a create body (already schema-checked)."""
    for key in body:
        if key in READ_ONLY and key != "id":
            raise Forbidden(f"Attribute '{key}' is read-only.")
        if is_reserved(key):
            raise Forbidden(f"Attribute '{key}' is reserved.")
    row: dict[str, Any] = {
        "id": id, "name": None, "owner": owner, "status": "queued", "visibility": "shared",
        "protected": False, "os_hidden": False, "disk_format": None, "container_format": None,
        "min_disk": 0, "min_ram": 0, "size": None, "virtual_size": None, "checksum": None,
        "os_hash_algo": None, "os_hash_value": None, "store_node": None, "upload_id": None,
        "created_at": at, "updated_at": at,
    }
    properties: dict[str, Any] = {}
    tags: list[str] = []
    for key, value in body.items():
        if key == "id":
            continue
        value = _check_value(key, value)
        if key == "tags":
            tags = value
        elif key in MUTABLE:
            row[key] = value
        else:
            properties[key] = value
    if len(properties) > MAX_PROPERTIES:
        raise PayloadTooLarge(f"An image may have at most {MAX_PROPERTIES} custom properties.")
    row["properties"] = properties
    return row, tags


# --- JSON patch -------------------------------------------------------------------
PATCH_MEDIA_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")


def _pointer(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise BadRequest(f"Invalid JSON pointer for this resource: {path!r}.")
    parts = path[1:].split("/")
    if len(parts) != 1:
        raise BadRequest(f"Invalid JSON pointer for this resource: {path!r}; only top-level attributes can change.")
    return parts[0].replace("~1", "/").replace("~0", "~")


PATCH_OPS = ("add", "replace", "remove")


def _operation(item: Any, media_type: str) -> tuple[str, Any]:
    """(op, path) of one operation in either of Glance's patch dialects: v2.1 (RFC 6902,
    {"op": "add", "path": "/x"}) or v2.0 (an older draft, {"add": "/x"})."""
    if not isinstance(item, dict):
        raise BadRequest("Each operation of a JSON patch is an object.")
    if media_type == PATCH_MEDIA_TYPES[1]:
        named = [op for op in PATCH_OPS if op in item]
        if len(named) != 1:
            raise BadRequest("Operation objects must contain exactly one member named \"add\", \"remove\", "
                             "or \"replace\".")
        return named[0], item[named[0]]
    if item.get("op") not in PATCH_OPS:
        raise BadRequest("Each operation needs \"op\": one of add, replace, remove.")
    if "path" not in item:
        raise BadRequest(f"Operation {item['op']} needs a \"path\".")
    return item["op"], item["path"]


def parse_patch(body: Any, media_type: str = PATCH_MEDIA_TYPES[0]) -> tuple[dict[str, Any], ...]:
    """Normalised operations ({"op", "attr", "value"?}) of a Glance JSON-patch body sent as
    ``media_type`` (one of PATCH_MEDIA_TYPES)."""
    if not isinstance(body, list):
        raise BadRequest("A JSON patch is a list of operations.")
    ops = []
    for item in body:
        kind, path = _operation(item, media_type)
        attr = _pointer(path)
        check_property_name(attr)
        op: dict[str, Any] = {"op": kind, "attr": attr}
        if kind == "remove":
            if attr in MUTABLE:
                raise Forbidden(f"Cannot remove '{attr}': it is a core attribute of images.")
        else:
            if "value" not in item:
                raise BadRequest(f"Operation {kind} on '{attr}' needs a value.")
            op["value"] = _check_value(attr, item["value"])
        ops.append(op)
    return tuple(ops)


def patch_needs_admin(ops: Iterable[Mapping[str, Any]]) -> str | None:
    """What in a patch only a cloud admin may do, or None."""
    for op in ops:
        if op["attr"] == "visibility" and op.get("value") == "public":
            return "publicize_image"
        if op["attr"] == "owner":
            return "modify_image owner"
    return None


def apply_patch(image: Mapping[str, Any], ops: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(changed columns, new properties, new tags) after ``ops`` on ``image`` (a decoded row)."""
    changes: dict[str, Any] = {}
    properties = dict(image["properties"])
    tags = list(image["tags"])
    for op in ops:
        attr, kind = op["attr"], op["op"]
        if attr == "tags":
            tags = list(op["value"])
        elif attr in MUTABLE:
            if attr in ("disk_format", "container_format") and image["status"] != "queued" \
                    and op["value"] != image[attr]:
                raise Forbidden(f"Attribute {attr} can be only replaced for a queued image.")
            changes[attr] = op["value"]
        elif kind == "add":
            properties[attr] = op["value"]
        elif attr not in properties:
            raise Conflict(f"Property {attr} does not exist.")
        elif kind == "replace":
            properties[attr] = op["value"]
        else:
            del properties[attr]
    if len(properties) > MAX_PROPERTIES:
        raise PayloadTooLarge(f"An image may have at most {MAX_PROPERTIES} custom properties.")
    return changes, properties, tags


# --- who may do what ----------------------------------------------------------------
@dataclass(frozen=True)
class Viewer:
    """Whose images a caller sees: every image, or those of a project (plus public and shared)."""

    project_id: str | None
    sees_all: bool = False


def viewer_of(ctx: Any) -> Viewer:
    if ctx is None:  # another service acting for a request it already authorised (a server's build)
        return Viewer(None, sees_all=True)
    project = ctx.project_id if ctx.project_id and ctx.can_read_project(ctx.project_id) else None
    return Viewer(project, ctx.is_cloud_reader)


def may_see(viewer: Viewer, image: Mapping[str, Any], member: Mapping[str, Any] | None) -> bool:
    """May show the image: admins, its owner, anyone for public and community, its members if shared."""
    if viewer.sees_all or image["visibility"] in ("public", "community"):
        return True
    if viewer.project_id is None:
        return False
    if image["owner"] == viewer.project_id:
        return True
    return image["visibility"] == "shared" and member is not None


def may_write(ctx: Any, image: Mapping[str, Any]) -> bool:
    if image["owner"] is None:
        return bool(ctx.is_cloud_admin)
    return bool(ctx.can_write_project(image["owner"]))


# --- list options ---------------------------------------------------------------------
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at",
             "visibility", "owner", "min_disk", "min_ram", "virtual_size")
LIST_PARAMS = ("limit", "marker", "sort", "sort_key", "sort_dir", "name", "visibility", "owner", "status",
               "tag", "disk_format", "container_format", "member_status", "size_min", "size_max", "os_hidden",
               "protected", "id", "created_at", "updated_at")
OPERATORS = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True)
class ListOptions:
    visibility: str | None = None
    member_status: str = "accepted"
    os_hidden: bool = False
    protected: bool | None = None
    size_min: int | None = None
    size_max: int | None = None
    equals: dict[str, list[str]] = field(default_factory=dict)  # column -> any of these values
    compare: list[tuple[str, str, str]] = field(default_factory=list)  # (column, sql operator, value)
    tags: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)
    sort: tuple[tuple[str, str], ...] = (("created_at", "desc"), ("id", "desc"))


def _bool_param(name: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"{name} must be true or false, not {raw!r}.")


def _int_param(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {raw[:40]!r}.") from None
    if value < 0:
        raise BadRequest(f"{name} must not be negative.")
    if value >= 2**63:  # sizes are SQLite integers
        raise BadRequest(f"{name} must be less than 2^63.")
    return value


def parse_sort(keys: list[str], dirs: list[str], sort: str | None) -> tuple[tuple[str, str], ...]:
    """Glance's two spellings: sort_key/sort_dir (repeatable) or sort=key[:dir],..."""
    if sort is not None and (keys or dirs):
        raise BadRequest("The sort parameter cannot be combined with sort_key or sort_dir.")
    pairs: list[tuple[str, str]] = []
    if sort is not None:
        for part in sort.split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((key.strip(), direction.strip() or "desc"))
    else:
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise BadRequest("Give one sort_dir, or one for each sort_key.")
        if keys and not dirs:
            dirs = ["desc"]
        pairs = [(k, dirs[0] if len(dirs) == 1 else dirs[i]) for i, k in enumerate(keys)]
        if not keys and dirs:
            pairs = [("created_at", dirs[0])]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key!r}; sortable keys are {', '.join(SORT_KEYS)}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction!r}; use asc or desc.")
    # Glance always ends with created_at and id, so that the order (and the marker) is total.
    seen = {k for k, _ in pairs}
    last = pairs[0][1] if pairs else "desc"
    for key in ("created_at", "id"):
        if key not in seen:
            pairs.append((key, last))
    return tuple(pairs)


def parse_list_options(query: Any) -> ListOptions:
    """ListOptions from a multi-valued query (``getlist``), with Glance's filter spellings."""
    def one(name: str) -> str | None:
        values = query.getlist(name)
        return values[-1] if values else None

    visibility = one("visibility")
    if visibility is not None and visibility not in (*VISIBILITIES, "all"):
        raise BadRequest(f"Invalid visibility filter {visibility!r}; use one of {', '.join(VISIBILITIES)} or all.")
    member_status = one("member_status") or "accepted"
    if member_status not in (*MEMBER_STATUSES, "all"):
        raise BadRequest(f"Invalid member_status filter {member_status!r}.")
    equals: dict[str, list[str]] = {}
    compare: list[tuple[str, str, str]] = []
    for name in ("name", "status", "disk_format", "container_format", "owner", "id"):
        value = one(name)
        if value is None:
            continue
        if value.startswith("in:"):
            equals[name] = [v.strip().strip('"') for v in value[3:].split(",")]
        else:
            equals[name] = [value]
    for name in ("created_at", "updated_at"):
        for value in query.getlist(name):
            op, sep, when = value.partition(":")
            if not sep or op not in OPERATORS:
                raise BadRequest(f"{name} filters look like gt:2024-01-01T00:00:00Z (operators {', '.join(OPERATORS)}).")
            compare.append((name, OPERATORS[op], when))
    properties = {}
    for name in query.keys():
        if name in LIST_PARAMS:
            continue
        if '"' in name or name in CORE or name in RESERVED:
            raise BadRequest(f"Cannot filter images by {name!r}.")
        properties[name] = one(name) or ""
    os_hidden = one("os_hidden")
    protected = one("protected")
    size_min, size_max = one("size_min"), one("size_max")
    return ListOptions(
        visibility=visibility, member_status=member_status,
        os_hidden=_bool_param("os_hidden", os_hidden) if os_hidden is not None else False,
        protected=_bool_param("protected", protected) if protected is not None else None,
        size_min=_int_param("size_min", size_min) if size_min is not None else None,
        size_max=_int_param("size_max", size_max) if size_max is not None else None,
        equals=equals, compare=compare, tags=tuple(query.getlist("tag")), properties=properties,
        sort=parse_sort(query.getlist("sort_key"), query.getlist("sort_dir"), one("sort")),
    )


def parse_limit(raw: str | None, max_limit: int) -> int:
    if raw in (None, ""):
        return min(DEFAULT_LIMIT, max_limit)
    return min(_int_param("limit", raw), max_limit)


# --- Glance JSON shapes ------------------------------------------------------------------
def render_image(image: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = dict(image["properties"])
    body.update({
        "id": image["id"], "name": image["name"], "status": image["status"],
        "visibility": image["visibility"], "protected": image["protected"], "os_hidden": image["os_hidden"],
        "checksum": image["checksum"], "os_hash_algo": image["os_hash_algo"],
        "os_hash_value": image["os_hash_value"], "owner": image["owner"], "size": image["size"],
        "virtual_size": image["virtual_size"], "min_disk": image["min_disk"], "min_ram": image["min_ram"],
        "disk_format": image["disk_format"], "container_format": image["container_format"],
        "created_at": image["created_at"], "updated_at": image["updated_at"], "tags": list(image["tags"]),
        "self": f"/v2/images/{image['id']}", "file": f"/v2/images/{image['id']}/file",
        "schema": "/v2/schemas/image",
    })
    if image["status"] in ("active", "deactivated"):
        body["stores"] = STORE_ID  # where the data is (Glance shows it once it has data)
    return body


def render_member(member: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "image_id": member["image_id"], "member_id": member["member_id"], "status": member["status"],
        "created_at": member["created_at"], "updated_at": member["updated_at"], "schema": "/v2/schemas/member",
    }


def list_links(query: Any, next_marker: str | None) -> dict[str, Any]:
    """Glance's "first" and "next": paths below the API root (clients strip the /v2)."""
    params = [(k, v) for k in query.keys() for v in query.getlist(k) if k != "marker"]
    first = "/v2/images" + ("?" + urllib.parse.urlencode(params) if params else "")
    links: dict[str, Any] = {"first": first, "schema": "/v2/schemas/images"}
    if next_marker:
        links["next"] = "/v2/images?" + urllib.parse.urlencode([*params, ("marker", next_marker)])
    return links


def version_list(root: str) -> dict[str, Any]:
    """Glance's version document; every 2.x is served at ``root``/v2/."""
    href = root.rstrip("/") + "/v2/"
    versions = [{"id": f"v2.{minor}", "status": "CURRENT" if minor == 16 else "SUPPORTED",
                 "links": [{"rel": "self", "href": href}]} for minor in range(16, -1, -1)]
    return {"versions": versions}


UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")

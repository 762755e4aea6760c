"""Nova v2.1 routes of servers: create, list, show, update, delete, metadata and tags."""

from __future__ import annotations

import ipaddress
import secrets
import urllib.parse
from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.clock import iso, parse_iso
from cloudbox.compute import api_records, boot_volumes, core, listing, models, views
from cloudbox.compute.api import Version, forwarded, project_of, route
from cloudbox.compute.models import ServerQuery, ServerRequest
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, NotFound
from cloudbox.identity.core import require

SERVER_FILTERS = ("name", "ip", "ip6", "status", "image", "flavor", "host", "availability_zone", "all_tenants",
                  "project_id", "tenant_id", "changes-since", "tags", "tags-any", "not-tags", "limit", "marker")


def render(call: Call, version: Version, row: dict[str, Any], detail: bool = True, listed: bool = False) -> dict[str, Any]:
    """A server as show, update and rebuild answer it (their server_groups from 2.71), or ``listed``."""
    return views.render_server(row, call.base, version, admin=call.auth.is_cloud_admin, detail=detail,
                               server_groups=not listed)


def ref(value: Any) -> str:
    """An id from an id or a link to it (Nova takes both for flavorRef and imageRef)."""
    return str(value or "").rsplit("/", 1)[-1]


def parse_server_request(body: dict[str, Any], version: Version) -> ServerRequest:
    """The create request in a body that passed models.SERVER_CREATE, checked as Nova checks it."""
    server = body["server"]
    hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
    image_ref = ref(server.get("imageRef"))
    if version >= (2, 37) and "networks" not in server:
        raise BadRequest("Invalid input for field/attribute server. Value: networks is required at "
                         "microversion 2.37 and later.")
    networks = server.get("networks", "auto")
    if networks == []:
        networks = "auto"  # before 2.37 an empty list asks for the project's networks, as no list does
    groups = tuple(g.get("name", "") for g in server.get("security_groups") or [{"name": "default"}])
    if any(not g for g in groups):
        raise BadRequest("Each security group needs a name.")
    group_id = hints.get("group")
    if group_id is not None and not isinstance(group_id, str):
        raise BadRequest("The scheduler hint group must be a server group id.")
    min_count = int(server.get("min_count", 1))
    max_count = int(server.get("max_count", min_count))
    if not 1 <= min_count <= max_count:
        raise BadRequest("min_count must be at least 1 and at most max_count.")
    if max_count > core.MAX_SERVERS_PER_REQUEST:
        raise BadRequest(f"max_count is at most {core.MAX_SERVERS_PER_REQUEST}: one request makes at most that many "
                         f"servers.")
    boot = boot_volumes.parse(server, image_ref, version, max_count)  # its disks: an image, or volumes
    return ServerRequest(
        name=server["name"], flavor_ref=ref(server["flavorRef"]), image_ref=boot.image_ref, networks=networks,
        security_groups=groups, key_name=server.get("key_name"), user_data=core.check_user_data(server.get("user_data")),
        availability_zone=(server.get("availability_zone") or "").split(":", 1)[0] or None,
        metadata=server.get("metadata") or {}, tags=tuple(server.get("tags") or ()), group_id=group_id or None,
        min_count=min_count, max_count=max_count, config_drive=core.truthy(server.get("config_drive")),
        hostname=server.get("hostname"), description=server.get("description"), boot=boot,
        **access_ips(server),
    )


def access_ips(body: dict[str, Any]) -> dict[str, str]:
    """accessIPv4/accessIPv6 of a create or update body, as columns; each must be its kind of address."""
    found = {}
    for field, column, version in (("accessIPv4", "access_ipv4", 4), ("accessIPv6", "access_ipv6", 6)):
        if field not in body:
            continue
        value = body[field] or ""
        try:
            address = ipaddress.ip_address(value) if value else None
            if address is not None and address.version != version:
                raise ValueError(value)
        except ValueError:
            raise BadRequest(f"Invalid input for field/attribute {field}: {value[:40]!r} is not an "
                             f"IPv{version} address.") from None
        found[column] = str(address) if address else ""  # canonical (RFC 5952), as Nova shows it
    return found


# --- create -------------------------------------------------------------------------------
async def create_server(svc: ComputeService, call: Call, version: Version) -> Reply:
    project_id = project_of(call)
    require(call.auth.can_write_project(project_id), "os_compute_api:servers:create")
    request = parse_server_request(call.body, version)
    created = await svc.create_servers(call.auth, project_id, request)
    await api_records.record(svc, call, created, "create")
    first = created[0]
    if core.truthy(call.body["server"].get("return_reservation_id", False)):
        return Reply({"reservation_id": "r-" + first["id"][:8]}, 202)
    result = {
        "id": first["id"], "links": views.link(call.base, "servers", first["id"]),
        "OS-DCF:diskConfig": "MANUAL", "security_groups": [{"name": g} for g in request.security_groups],
        "adminPass": call.body["server"].get("adminPass") or secrets.token_urlsafe(9),
    }
    return Reply({"server": result}, 202, {"Location": f"{call.base}/servers/{first['id']}"})


# --- list and show --------------------------------------------------------------------------
def changes_since(raw: str | None) -> str | None:
    """The changes-since filter in compute's stored form (so times compare as text); else Nova's 400."""
    if not raw:
        return None
    try:
        return iso(parse_iso(raw), micro=True)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters changes-since. Value: {raw[:40]}. "
                         f"It is not a valid date-time.") from None


def parse_server_query(call: Call) -> ServerQuery:
    """The listing's filters, with the project scope the caller may list."""
    ctx, q = call.auth, call.query
    all_projects = bool(ctx.is_cloud_reader and call.flag("all_tenants"))
    # Nova filters by tenant_id (or project_id) only with all_tenants: without it, the caller's
    # own project is listed whatever project the filter names (Nova's lp:#1185290).
    project = (q.get("project_id") or q.get("tenant_id")) if all_projects else None
    if not all_projects:
        project = project_of(call)
        require(ctx.can_read_project(project) or ctx.can_write_project(project), "os_compute_api:servers:index")

    def tags(name: str) -> tuple[str, ...]:
        return tuple(t for t in (q.get(name) or "").split(",") if t)

    return ServerQuery(
        project_id=project or None, marker=call.page()[1], name=q.get("name"), ip=q.get("ip"), ip6=q.get("ip6"),
        status=(q.get("status") or "").upper() or None, image_id=ref(q.get("image")) or None,
        flavor_id=ref(q.get("flavor")) or None, host=q.get("host") if ctx.is_cloud_admin else None,
        availability_zone=q.get("availability_zone") or None, changes_since=changes_since(q.get("changes-since")),
        tags=tags("tags"), tags_any=tags("tags-any"), not_tags=tags("not-tags"),
    )


async def _list(svc: ComputeService, call: Call, version: Version, detail: bool) -> Reply:
    query = parse_server_query(call)
    limit, _marker = call.page()

    def body(rows: list[dict[str, Any]], more: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"servers": [render(call, version, r, detail, listed=True) for r in rows]}
        if more and rows:
            params = {k: v for k, v in call.query.items() if k != "marker"}
            params.update({"limit": str(limit), "marker": rows[-1]["id"]})
            path = "/servers/detail" if detail else "/servers"
            out["servers_links"] = [{"rel": "next", "href": f"{call.base}{path}?{urllib.parse.urlencode(params)}"}]
        return out

    # What the body depends on besides the page's rows: the same key, in the same state, is the same answer.
    key = (version, call.auth.is_cloud_admin, call.base, tuple(call.query.items(multi=True)))
    encoded = await svc.list_servers(query, limit, detail, listing.View(key, body))
    return Reply(encoded, 200, {"Content-Type": "application/json"})


async def list_servers(svc: ComputeService, call: Call, version: Version) -> Any:
    return await _list(svc, call, version, detail=False)


async def list_servers_detail(svc: ComputeService, call: Call, version: Version) -> Any:
    return await _list(svc, call, version, detail=True)


async def show_server(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    return {"server": render(call, version, await svc.show_server(call.auth, server_id))}


async def update_server(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    body = call.body["server"]
    if "description" in body and version < (2, 19):
        raise BadRequest("description needs microversion 2.19 or later.")
    changes = {k: body[k] for k in ("name", "description", "hostname") if k in body}
    changes.update(access_ips(body))
    updated = await svc.update_server(call.auth, server_id, changes)
    return {"server": views.changed_server(render(call, version, updated), version)}


async def delete_server(svc: ComputeService, call: Call, version: Version, server_id: str) -> Reply:
    server = await svc.visible_server(call.auth, server_id, write=True)
    if (reply := await forwarded(svc, call, server, unless_down=True)) is not None:
        return reply
    await svc.delete_server(server)
    await api_records.record(svc, call, [server], "delete")
    return Reply(None, 204)


# --- metadata and tags ------------------------------------------------------------------------
async def get_metadata(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    return {"metadata": (await svc.visible_server(call.auth, server_id))["metadata"]}


async def update_metadata(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    return {"metadata": await svc.edit_metadata(call.auth, server_id, "merge", call.body["metadata"])}


async def replace_metadata(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    return {"metadata": await svc.edit_metadata(call.auth, server_id, "replace", call.body["metadata"])}


async def get_metadata_item(svc: ComputeService, call: Call, version: Version, server_id: str, key: str) -> Any:
    metadata = (await svc.visible_server(call.auth, server_id))["metadata"]
    if key not in metadata:
        raise NotFound("Metadata item was not found")
    return {"meta": {key: metadata[key]}}


async def set_metadata_item(svc: ComputeService, call: Call, version: Version, server_id: str, key: str) -> Any:
    item = call.body["meta"]
    if list(item) != [key]:
        raise BadRequest("Request body and URI mismatch")
    await svc.edit_metadata(call.auth, server_id, "merge", item)
    return {"meta": item}


async def delete_metadata_item(svc: ComputeService, call: Call, version: Version, server_id: str, key: str) -> Reply:
    await svc.edit_metadata(call.auth, server_id, "delete", {key: ""})
    return Reply(None, 204)


def need_tags(version: Version) -> None:
    if version < (2, 26):
        raise NotFound("Server tags need microversion 2.26 or later.")


async def list_tags(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    need_tags(version)
    return {"tags": (await svc.visible_server(call.auth, server_id))["tags"]}


async def replace_tags(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    need_tags(version)
    tags, _changed = await svc.edit_tags(call.auth, server_id, "replace", call.body["tags"])
    return {"tags": tags}


async def delete_tags(svc: ComputeService, call: Call, version: Version, server_id: str) -> Reply:
    need_tags(version)
    await svc.edit_tags(call.auth, server_id, "replace", [])
    return Reply(None, 204)


async def check_tag(svc: ComputeService, call: Call, version: Version, server_id: str, tag: str) -> Reply:
    need_tags(version)
    if tag not in (await svc.visible_server(call.auth, server_id))["tags"]:
        raise NotFound(f"Tag {tag[:60]} could not be found.")
    return Reply(None, 204)


async def add_tag(svc: ComputeService, call: Call, version: Version, server_id: str, tag: str) -> Reply:
    need_tags(version)
    if not tag or len(tag) > 60 or "," in tag or "/" in tag:
        raise BadRequest("A tag is 1 to 60 characters without ',' or '/'.")
    _tags, added = await svc.edit_tags(call.auth, server_id, "add", [tag])
    if not added:
        return Reply(None, 204)
    return Reply(None, 201, {"Location": f"{call.base}/servers/{server_id}/tags/{tag}"})


async def delete_tag(svc: ComputeService, call: Call, version: Version, server_id: str, tag: str) -> Reply:
    need_tags(version)
    await svc.edit_tags(call.auth, server_id, "remove", [tag])
    return Reply(None, 204)


def routes(svc: ComputeService) -> list[Route]:
    return [
        route(svc, "POST", "/servers", create_server, body=models.SERVER_CREATE, status=202),
        route(svc, "GET", "/servers", list_servers, query=SERVER_FILTERS),
        route(svc, "GET", "/servers/detail", list_servers_detail, query=SERVER_FILTERS),
        route(svc, "GET", "/servers/{server_id}", show_server),
        route(svc, "PUT", "/servers/{server_id}", update_server, body=models.SERVER_UPDATE),
        route(svc, "DELETE", "/servers/{server_id}", delete_server, status=204),
        route(svc, "GET", "/servers/{server_id}/metadata", get_metadata),
        route(svc, "POST", "/servers/{server_id}/metadata", update_metadata, body=models.METADATA),
        route(svc, "PUT", "/servers/{server_id}/metadata", replace_metadata, body=models.METADATA),
        route(svc, "GET", "/servers/{server_id}/metadata/{key}", get_metadata_item),
        route(svc, "PUT", "/servers/{server_id}/metadata/{key}", set_metadata_item, body=models.METADATA_ITEM),
        route(svc, "DELETE", "/servers/{server_id}/metadata/{key}", delete_metadata_item, status=204),
        route(svc, "GET", "/servers/{server_id}/tags", list_tags),
        route(svc, "PUT", "/servers/{server_id}/tags", replace_tags, body=models.TAGS),
        route(svc, "DELETE", "/servers/{server_id}/tags", delete_tags, status=204),
        route(svc, "GET", "/servers/{server_id}/tags/{tag}", check_tag, status=204),
        route(svc, "PUT", "/servers/{server_id}/tags/{tag}", add_tag, status=201),
        route(svc, "DELETE", "/servers/{server_id}/tags/{tag}", delete_tag, status=204),
    ]

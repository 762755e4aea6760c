"""Nova v2.1 routes of flavors (with extra specs and access), key pairs, server groups, and the
revert of a project's quota set to the defaults (its other quota routes are in api_hosts.py)."""

from __future__ import annotations

import urllib.parse
from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute import commands_records, core, models, views
from cloudbox.compute.api import Version, project_of, route
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, NotFound
from cloudbox.identity.core import require

MAX_INT = 2**31 - 1  # Nova's database columns are 32-bit
FLAVOR_FILTERS = ("is_public", "minRam", "minDisk", "limit", "marker")


def whole(value: Any, name: str, minimum: int = 0) -> int:
    """A whole number from JSON or a query string, within Nova's 32-bit columns."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(f"{name} must be a whole number, not {str(value)[:40]!r}.") from None
    if not minimum <= number <= MAX_INT:
        raise BadRequest(f"{name} must be between {minimum} and {MAX_INT}.")
    return number


def next_link(call: Call, path: str, limit: int, marker: str) -> list[dict[str, str]]:
    query = {**{k: v for k, v in call.query.items() if k != "marker"}, "limit": str(limit), "marker": marker}
    return [{"rel": "next", "href": f"{call.base}{path}?{urllib.parse.urlencode(query)}"}]


# --- flavors ------------------------------------------------------------------------------
async def _list_flavors(svc: ComputeService, call: Call, version: Version, detail: bool) -> Any:
    limit, marker = call.page()
    # Nova's filter, read for admins only: absent means public, "none" means all, else a strict
    # boolean (else 400); others see public flavors and those shared with their project.
    is_public = call.query.get("is_public")
    if not call.auth.is_cloud_reader:
        visibility = "project"
    elif is_public is None:
        visibility = "public"
    elif is_public.strip().lower() == "none":
        visibility = "all"
    else:
        visibility = "public" if core.strict_bool(is_public, "is_public filter") else "private"
    rows = await svc.resources.list_flavors(
        call.auth, visibility=visibility, min_ram=whole(call.query.get("minRam", 0), "minRam"),
        min_disk=whole(call.query.get("minDisk", 0), "minDisk"), marker=marker, limit=limit)
    page = rows[:limit]
    render = views.render_flavor if detail else views.render_flavor_summary
    body: dict[str, Any] = {"flavors": [render(r, call.base, version) for r in page]}
    if len(rows) > limit and page:
        body["flavors_links"] = next_link(call, "/flavors/detail" if detail else "/flavors", limit, page[-1]["id"])
    return body


async def list_flavors(svc: ComputeService, call: Call, version: Version) -> Any:
    return await _list_flavors(svc, call, version, False)


async def list_flavors_detail(svc: ComputeService, call: Call, version: Version) -> Any:
    return await _list_flavors(svc, call, version, True)


async def show_flavor(svc: ComputeService, call: Call, version: Version, flavor_id: str) -> Any:
    return {"flavor": views.render_flavor(await svc.resources.flavor(call.auth, flavor_id), call.base, version)}


async def create_flavor(svc: ComputeService, call: Call, version: Version) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-manage:create")
    body = call.body["flavor"]
    is_public = core.strict_bool(body.get("os-flavor-access:is_public", True), "os-flavor-access:is_public")
    fields = {
        "id": body.get("id"), "name": body["name"], "vcpus": whole(body["vcpus"], "vcpus", 1),
        "ram": whole(body["ram"], "ram", 1), "disk": whole(body["disk"], "disk"),
        "ephemeral": whole(body.get("OS-FLV-EXT-DATA:ephemeral", 0), "ephemeral"),
        "swap": whole(body.get("swap") or 0, "swap"), "rxtx_factor": body.get("rxtx_factor", 1.0),
        "is_public": is_public, "description": body.get("description") if version >= (2, 55) else None,
    }
    created = await svc.resources.create_flavor(fields)
    return {"flavor": views.render_flavor(created, call.base, version)}


async def update_flavor(svc: ComputeService, call: Call, version: Version, flavor_id: str) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-manage:update")
    if version < (2, 55):
        raise NotFound("Updating a flavor needs microversion 2.55 or later.")
    updated = await svc.resources.describe_flavor(call.auth, flavor_id, call.body["flavor"]["description"])
    return {"flavor": views.render_flavor(updated, call.base, version)}


async def delete_flavor(svc: ComputeService, call: Call, version: Version, flavor_id: str) -> Reply:
    require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-manage:delete")
    await svc.resources.delete_flavor(flavor_id)
    return Reply(None, 202)


async def list_extra_specs(svc: ComputeService, call: Call, version: Version, flavor_id: str) -> Any:
    return {"extra_specs": (await svc.resources.flavor(call.auth, flavor_id))["extra_specs"]}


async def add_extra_specs(svc: ComputeService, call: Call, version: Version, flavor_id: str) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-extra-specs:create")
    await svc.resources.set_extra_specs(call.auth, flavor_id, call.body["extra_specs"])
    return {"extra_specs": call.body["extra_specs"]}


async def show_extra_spec(svc: ComputeService, call: Call, version: Version, flavor_id: str, key: str) -> Any:
    specs = (await svc.resources.flavor(call.auth, flavor_id))["extra_specs"]
    if key not in specs:
        raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key[:80]}.")
    return {key: specs[key]}


async def set_extra_spec(svc: ComputeService, call: Call, version: Version, flavor_id: str, key: str) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-extra-specs:update")
    body = call.body
    if not isinstance(body, dict) or list(body) != [key] or not isinstance(body[key], str):
        raise BadRequest("Request body and URI mismatch")
    await svc.resources.set_extra_specs(call.auth, flavor_id, {key: body[key]})
    return {key: body[key]}


async def delete_extra_spec(svc: ComputeService, call: Call, version: Version, flavor_id: str, key: str) -> Reply:
    require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-extra-specs:delete")
    await svc.resources.delete_extra_spec(call.auth, flavor_id, key)
    return Reply(None, 200)


async def flavor_access(svc: ComputeService, call: Call, version: Version, flavor_id: str) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-access")
    return views.render_flavor_access(await svc.resources.flavor_access(call.auth, flavor_id))


async def flavor_action(svc: ComputeService, call: Call, version: Version, flavor_id: str) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-access:add_tenant_access")
    (action, args), = call.body.items()
    rows = await svc.resources.change_flavor_access(flavor_id, args["tenant"], action == "addTenantAccess")
    return views.render_flavor_access(rows)


# --- key pairs ------------------------------------------------------------------------------
def keypair_user(call: Call, version: Version) -> str:
    """Whose key pairs: the caller's, or (an admin, from 2.10) the user_id asked for."""
    user_id = call.query.get("user_id")
    if user_id and user_id != call.auth.user_id:
        if version < (2, 10):
            raise BadRequest("user_id needs microversion 2.10 or later.")
        require(call.auth.is_cloud_admin, "os_compute_api:os-keypairs:index")
        return user_id
    return call.auth.user_id


async def list_keypairs(svc: ComputeService, call: Call, version: Version) -> Any:
    limit, marker = call.page()
    rows = await svc.resources.list_keypairs(keypair_user(call, version), marker, limit)
    page = rows[:limit]
    body: dict[str, Any] = {"keypairs": [{"keypair": views.render_keypair(r, version, detail=False)} for r in page]}
    if len(rows) > limit and page:
        body["keypairs_links"] = [{"rel": "next", "href": f"{call.base}/os-keypairs?limit={limit}&marker={page[-1]['name']}"}]
    return body


async def create_keypair(svc: ComputeService, call: Call, version: Version) -> Reply:
    body = call.body["keypair"]
    user_id = call.auth.user_id
    if body.get("user_id") and body["user_id"] != user_id:
        require(call.auth.is_cloud_admin and version >= (2, 10), "os_compute_api:os-keypairs:create")
        user_id = body["user_id"]
    if not body.get("public_key") and version >= (2, 92):
        raise BadRequest("public_key is required at microversion 2.92 and later.")
    row, private = await svc.resources.create_keypair(call.auth.project_id, user_id, body["name"],
                                                      body.get("public_key"), body.get("type", "ssh"))
    view = views.render_keypair(row, version, detail=False)
    view["user_id"] = user_id
    if private:
        view["private_key"] = private
    return Reply({"keypair": view}, 201 if version >= (2, 2) else 200)


async def show_keypair(svc: ComputeService, call: Call, version: Version, name: str) -> Any:
    return {"keypair": views.render_keypair(await svc.resources.keypair(keypair_user(call, version), name), version)}


async def delete_keypair(svc: ComputeService, call: Call, version: Version, name: str) -> Reply:
    await svc.resources.delete_keypair(keypair_user(call, version), name)
    return Reply(None, 204 if version >= (2, 2) else 202)


# --- server groups ---------------------------------------------------------------------------
async def list_groups(svc: ComputeService, call: Call, version: Version) -> Any:
    everyone = bool(call.auth.is_cloud_reader and call.flag("all_projects"))
    limit, marker = call.page()
    groups = await svc.resources.list_groups(call.auth, everyone, marker, limit)
    body: dict[str, Any] = {"server_groups": [views.render_group(g, members, version) for g, members in groups[:limit]]}
    if len(groups) > limit and limit:
        last = groups[limit - 1][0]["id"]
        body["server_groups_links"] = [{"rel": "next", "href": f"{call.base}/os-server-groups?limit={limit}&marker={last}"}]
    return body


async def create_group(svc: ComputeService, call: Call, version: Version) -> Any:
    project_id = project_of(call)
    require(call.auth.can_write_project(project_id), "os_compute_api:os-server-groups:create")
    body = call.body["server_group"]
    policy = body.get("policy") or (body.get("policies") or [None])[0]
    if policy is None:
        raise BadRequest("A server group needs a policy.")
    group = await svc.resources.create_group(call.auth, project_id, body["name"], policy)
    return {"server_group": views.render_group(group, [], version)}


async def show_group(svc: ComputeService, call: Call, version: Version, group_id: str) -> Any:
    group, members = await svc.resources.group(call.auth, group_id)
    return {"server_group": views.render_group(group, members, version)}


async def delete_group(svc: ComputeService, call: Call, version: Version, group_id: str) -> Reply:
    group, _members = await svc.resources.group(call.auth, group_id)
    require(call.auth.can_write_project(group["project_id"]), "os_compute_api:os-server-groups:delete")
    await svc.resources.delete_group(group_id)
    return Reply(None, 204)


# --- quota sets ---------------------------------------------------------------------------
async def revert_quota(svc: ComputeService, call: Call, version: Version, project_id: str) -> Reply:
    """Nova's DELETE of a project's quota set: its own limits go, the defaults apply again."""
    require(call.auth.is_cloud_admin, "os_compute_api:os-quota-sets:delete")
    if ":" in project_id or not project_id.strip():
        raise BadRequest(f"{project_id[:80]!r} is not a project id.")
    await svc.engine.propose(commands_records.ResetQuota(project_id))
    return Reply(None, 202)


def routes(svc: ComputeService) -> list[Route]:
    return [
        route(svc, "GET", "/flavors", list_flavors, query=FLAVOR_FILTERS),
        route(svc, "GET", "/flavors/detail", list_flavors_detail, query=FLAVOR_FILTERS),
        route(svc, "POST", "/flavors", create_flavor, body=models.FLAVOR_CREATE),
        route(svc, "GET", "/flavors/{flavor_id}", show_flavor),
        route(svc, "PUT", "/flavors/{flavor_id}", update_flavor, body=models.FLAVOR_UPDATE),
        route(svc, "DELETE", "/flavors/{flavor_id}", delete_flavor, status=202),
        route(svc, "GET", "/flavors/{flavor_id}/os-extra_specs", list_extra_specs),
        route(svc, "POST", "/flavors/{flavor_id}/os-extra_specs", add_extra_specs, body=models.EXTRA_SPECS),
        route(svc, "GET", "/flavors/{flavor_id}/os-extra_specs/{key}", show_extra_spec),
        route(svc, "PUT", "/flavors/{flavor_id}/os-extra_specs/{key}", set_extra_spec, body={"type": "object"}),
        route(svc, "DELETE", "/flavors/{flavor_id}/os-extra_specs/{key}", delete_extra_spec),
        route(svc, "GET", "/flavors/{flavor_id}/os-flavor-access", flavor_access),
        route(svc, "POST", "/flavors/{flavor_id}/action", flavor_action, body=models.FLAVOR_ACTION),
        route(svc, "GET", "/os-keypairs", list_keypairs, query=("user_id", "limit", "marker")),
        route(svc, "POST", "/os-keypairs", create_keypair, body=models.KEYPAIR_CREATE, status=201),
        route(svc, "GET", "/os-keypairs/{name}", show_keypair, query=("user_id",)),
        route(svc, "DELETE", "/os-keypairs/{name}", delete_keypair, query=("user_id",), status=204),
        route(svc, "GET", "/os-server-groups", list_groups, query=("all_projects", "limit", "marker")),
        route(svc, "POST", "/os-server-groups", create_group, body=models.SERVER_GROUP_CREATE),
        route(svc, "GET", "/os-server-groups/{group_id}", show_group),
        route(svc, "DELETE", "/os-server-groups/{group_id}", delete_group, status=204),
        route(svc, "DELETE", "/os-quota-sets/{project_id}", revert_quota, status=202),
    ]

"""Nova v2.1 routes of limits, quota sets, simple tenant usage, availability zones,
hypervisors and services."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cloudbox.api.routes import Call, Route
from cloudbox.clock import parse_iso
from cloudbox.compute import models, store, views
from cloudbox.compute.api import Version, forwarded, route
from cloudbox.compute.api_resources import whole
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, NotFound
from cloudbox.identity.core import require

DAY = 86400


# --- limits, quotas, usage ------------------------------------------------------------------
async def show_limits(svc: ComputeService, call: Call, version: Version) -> Any:
    project_id = call.query.get("tenant_id") or call.auth.project_id
    if project_id != call.auth.project_id:
        require(call.auth.is_cloud_reader, "os_compute_api:limits:other_project")
    limits, usage = await svc.resources.limits(project_id, call.auth.user_id)
    return views.render_limits(limits, usage, version)


def read_quota(call: Call, project_id: str, action: str) -> None:
    if project_id != call.auth.project_id:
        require(call.auth.is_cloud_reader, action)


async def show_quota(svc: ComputeService, call: Call, version: Version, project_id: str) -> Any:
    read_quota(call, project_id, "os_compute_api:os-quota-sets:show")
    limits = await svc.resources.quota_limits(project_id)
    return {"quota_set": views.render_quota_set(project_id, limits, None, store.quota_resources(version))}


async def show_quota_detail(svc: ComputeService, call: Call, version: Version, project_id: str) -> Any:
    read_quota(call, project_id, "os_compute_api:os-quota-sets:detail")
    limits, usage = await svc.resources.quota_usage(project_id)
    return {"quota_set": views.render_quota_set(project_id, limits, usage, store.quota_resources(version))}


async def show_quota_defaults(svc: ComputeService, call: Call, version: Version, project_id: str) -> Any:
    defaults = await svc.resources.class_quota("default")
    return {"quota_set": views.render_quota_set(project_id, defaults, None, store.quota_resources(version))}


def check_quota_names(wanted: dict[str, int], version: Version) -> None:
    """Nova's schema per microversion: the older quotas are refused once they are gone (400)."""
    unknown = sorted(set(wanted) - set(store.quota_resources(version)))
    if unknown:
        raise BadRequest(f"Unknown quota resources at {version[0]}.{version[1]}: {', '.join(unknown)[:200]}.")


def quota_class_name(class_id: str) -> str:
    if not class_id or len(class_id) > 255:
        raise BadRequest("A quota class name has 1 to 255 characters.")
    return class_id


async def show_quota_class(svc: ComputeService, call: Call, version: Version, class_id: str) -> Any:
    require(call.auth.is_cloud_reader, "os_compute_api:os-quota-class-sets:show")
    limits = await svc.resources.class_quota(quota_class_name(class_id))
    return {"quota_class_set": views.render_quota_set(class_id, limits, None, store.quota_resources(version))}


async def update_quota_class(svc: ComputeService, call: Call, version: Version, class_id: str) -> Any:
    """Nova's quota classes: the "default" class sets every project's defaults."""
    require(call.auth.is_cloud_admin, "os_compute_api:os-quota-class-sets:update")
    name = quota_class_name(class_id)
    wanted = {k: whole(v, k, -1) for k, v in call.body["quota_class_set"].items()}
    check_quota_names(wanted, version)
    limits = await svc.resources.set_class_quota(name, wanted)
    return {"quota_class_set": views.render_quota_set(None, limits, None, store.quota_resources(version))}


async def update_quota(svc: ComputeService, call: Call, version: Version, project_id: str) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-quota-sets:update")
    wanted = {k: whole(v, k, -1) for k, v in call.body["quota_set"].items() if k != "force"}
    check_quota_names(wanted, version)
    limits = await svc.resources.set_quota(project_id, wanted)
    return {"quota_set": views.render_quota_set(None, limits, None, store.quota_resources(version))}


def usage_period(call: Call) -> tuple[float, float, float]:
    """(start, end, now) of a usage query: the last day unless the query says otherwise."""
    now = time.time()
    try:
        start = parse_iso(call.query["start"]) if call.query.get("start") else now - DAY
        end = parse_iso(call.query["end"]) if call.query.get("end") else now
    except ValueError:
        raise BadRequest("start and end must be ISO 8601 times.") from None
    if start > end:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    return start, end, now


async def usage_all(svc: ComputeService, call: Call, version: Version) -> Any:
    require(call.auth.is_cloud_reader, "os_compute_api:os-simple-tenant-usage:list")
    start, end, now = usage_period(call)
    return {"tenant_usages": views.render_tenant_usages(await svc.resources.servers_of(None), start, end, now)}


async def usage_project(svc: ComputeService, call: Call, version: Version, project_id: str) -> Any:
    if project_id != call.auth.project_id:
        require(call.auth.is_cloud_reader, "os_compute_api:os-simple-tenant-usage:show")
    start, end, now = usage_period(call)
    usages = views.render_tenant_usages(await svc.resources.servers_of(project_id), start, end, now)
    return {"tenant_usage": usages[0] if usages else {}}


# --- zones, hypervisors, services --------------------------------------------------------------
async def list_zones(svc: ComputeService, call: Call, version: Version) -> Any:
    return views.render_zones(await svc.resources.hosts(), detail=False)


async def list_zones_detail(svc: ComputeService, call: Call, version: Version) -> Any:
    require(call.auth.is_cloud_reader, "os_compute_api:os-availability-zone:detail")
    return views.render_zones(await svc.resources.hosts(), detail=True)


def need_reader(call: Call) -> None:
    require(call.auth.is_cloud_reader, "os_compute_api:os-hypervisors")


async def hypervisors_matching(svc: ComputeService, pattern: str | None) -> list[dict[str, Any]]:
    """The compute hosts whose name contains ``pattern`` (all with None), as Nova searches."""
    return [h for h in await svc.resources.hosts() if pattern is None or pattern in h["name"]]


async def with_servers(svc: ComputeService, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each hypervisor body with the servers it runs (``uuid`` and ``name``), when it runs any."""
    servers = await svc.resources.servers_of(None)
    for body in bodies:
        mine = [{"uuid": s["id"], "name": s["name"]} for s in servers if s["host"] == body["hypervisor_hostname"]]
        if mine:
            body["servers"] = mine
    return bodies


async def list_hypervisors_as(svc: ComputeService, call: Call, version: Version, detail: bool) -> Any:
    """The hypervisor list; from 2.53 filtered by ``hypervisor_hostname_pattern`` and, with
    ``with_servers``, showing each one's servers (before 2.53 those are the path's search and servers)."""
    need_reader(call)
    pattern, servers = None, False
    if version >= (2, 53):
        pattern = call.query.get("hypervisor_hostname_pattern")
        servers = bool(call.flag("with_servers"))
    hosts = await hypervisors_matching(svc, pattern)
    if pattern is not None and not hosts:
        raise NotFound(f"No hypervisor matching '{pattern[:80]}' could be found.")
    bodies = [views.render_hypervisor(h, version, detail) for h in hosts]
    return {"hypervisors": await with_servers(svc, bodies) if servers else bodies}


async def list_hypervisors(svc: ComputeService, call: Call, version: Version) -> Any:
    return await list_hypervisors_as(svc, call, version, False)


async def list_hypervisors_detail(svc: ComputeService, call: Call, version: Version) -> Any:
    return await list_hypervisors_as(svc, call, version, True)


async def find_hypervisor(svc: ComputeService, hypervisor_id_: str) -> dict[str, Any]:
    for h in await svc.resources.hosts():
        name = h["name"]
        if hypervisor_id_ in (views.hypervisor_id(name), str(views.legacy_hypervisor_id(name)), name):
            return h
    raise NotFound(f"Hypervisor with ID '{hypervisor_id_[:80]}' could not be found.")


async def show_hypervisor(svc: ComputeService, call: Call, version: Version, hypervisor_id_: str) -> Any:
    need_reader(call)
    h = await find_hypervisor(svc, hypervisor_id_)
    body = views.render_hypervisor(h, version, True)
    if version >= (2, 53) and bool(call.flag("with_servers")):
        await with_servers(svc, [body])
    return {"hypervisor": body}


def uptime_text() -> str:
    """This host's uptime as the ``uptime`` command prints it (Nova's libvirt driver runs it)."""
    seconds = float(Path("/proc/uptime").read_text().split()[0])
    loads = Path("/proc/loadavg").read_text().split()[:3]
    days, rest = divmod(int(seconds), 86400)
    hours, minutes = divmod(rest // 60, 60)
    since = f"{days} day{'s' if days != 1 else ''}, {hours:2d}:{minutes:02d}" if days else f"{hours:2d}:{minutes:02d}"
    return f" {time.strftime('%H:%M:%S')} up {since},  load average: {', '.join(loads)}"


async def hypervisor_uptime(svc: ComputeService, call: Call, version: Version, hypervisor_id_: str) -> Any:
    """A hypervisor's uptime (until 2.87; from 2.88 ``uptime`` is in the hypervisor itself), asked of
    the node that runs it."""
    if version >= (2, 88):
        raise NotFound("os-hypervisors/{id}/uptime is not served from microversion 2.88: show the hypervisor.")
    need_reader(call)
    h = await find_hypervisor(svc, hypervisor_id_)
    if (reply := await forwarded(svc, call, {"host": h["name"]})) is not None:
        return reply
    body = views.render_hypervisor(h, version, False)
    return {"hypervisor": {**body, "uptime": uptime_text()}}


async def matching_before_253(svc: ComputeService, call: Call, version: Version, pattern: str,
                              what: str) -> list[dict[str, Any]]:
    """The hypervisors a pre-2.53 ``/os-hypervisors/{pattern}/{what}`` names (404: none)."""
    if version >= (2, 53):
        raise NotFound(f"os-hypervisors/{{pattern}}/{what} is not served from microversion 2.53: "
                       f"list with hypervisor_hostname_pattern instead.")
    need_reader(call)
    hosts = await hypervisors_matching(svc, pattern)
    if not hosts:
        raise NotFound(f"No hypervisor matching '{pattern[:80]}' could be found.")
    return [views.render_hypervisor(h, version, False) for h in hosts]


async def search_hypervisors(svc: ComputeService, call: Call, version: Version, pattern: str) -> Any:
    return {"hypervisors": await matching_before_253(svc, call, version, pattern, "search")}


async def hypervisor_servers(svc: ComputeService, call: Call, version: Version, pattern: str) -> Any:
    return {"hypervisors": await with_servers(svc, await matching_before_253(svc, call, version, pattern, "servers"))}


async def hypervisor_statistics(svc: ComputeService, call: Call, version: Version) -> Any:
    need_reader(call)
    return views.render_hypervisor_statistics(await svc.resources.hosts())


async def list_services(svc: ComputeService, call: Call, version: Version) -> Any:
    require(call.auth.is_cloud_reader, "os_compute_api:os-services:list")
    return views.render_services(await svc.resources.hosts(), version, call.query.get("binary"),
                                 call.query.get("host"))


HYPERVISOR_QUERY = ("hypervisor_hostname_pattern", "with_servers", "limit", "marker")
QUOTA_CLASS_UPDATE = {"type": "object", "required": ["quota_class_set"], "properties": {"quota_class_set": {
    "type": "object", "additionalProperties": {"type": ["integer", "string"]}}}}


def routes(svc: ComputeService) -> list[Route]:
    return [
        route(svc, "GET", "/limits", show_limits, query=("tenant_id",)),
        route(svc, "GET", "/os-quota-sets/{project_id}", show_quota),
        route(svc, "PUT", "/os-quota-sets/{project_id}", update_quota, body=models.QUOTA_UPDATE),
        route(svc, "GET", "/os-quota-sets/{project_id}/detail", show_quota_detail),
        route(svc, "GET", "/os-quota-sets/{project_id}/defaults", show_quota_defaults),
        route(svc, "GET", "/os-quota-class-sets/{class_id}", show_quota_class),
        route(svc, "PUT", "/os-quota-class-sets/{class_id}", update_quota_class, body=QUOTA_CLASS_UPDATE),
        route(svc, "GET", "/os-simple-tenant-usage", usage_all, query=("start", "end", "detailed")),
        route(svc, "GET", "/os-simple-tenant-usage/{project_id}", usage_project, query=("start", "end")),
        route(svc, "GET", "/os-availability-zone", list_zones),
        route(svc, "GET", "/os-availability-zone/detail", list_zones_detail),
        route(svc, "GET", "/os-hypervisors", list_hypervisors, query=HYPERVISOR_QUERY),
        route(svc, "GET", "/os-hypervisors/detail", list_hypervisors_detail, query=HYPERVISOR_QUERY),
        route(svc, "GET", "/os-hypervisors/statistics", hypervisor_statistics),
        route(svc, "GET", "/os-hypervisors/{hypervisor_id_}", show_hypervisor, query=("with_servers",)),
        route(svc, "GET", "/os-hypervisors/{hypervisor_id_}/uptime", hypervisor_uptime),
        route(svc, "GET", "/os-hypervisors/{pattern}/search", search_hypervisors),
        route(svc, "GET", "/os-hypervisors/{pattern}/servers", hypervisor_servers),
        route(svc, "GET", "/os-services", list_services, query=("binary", "host")),
    ]

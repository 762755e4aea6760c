"""Nova v2.1 routes of limits, quota sets, simple tenant usage, availability zones,
hypervisors and services."""

from __future__ import annotations

import time
from typing import Any

from cloudbox.api.routes import Call, Route
from cloudbox.clock import parse_iso
from cloudbox.compute import models, store, views
from cloudbox.compute.api import Version, route
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


async def list_hypervisors(svc: ComputeService, call: Call, version: Version) -> Any:
    need_reader(call)
    return {"hypervisors": [views.render_hypervisor(h, version, False) for h in await svc.resources.hosts()]}


async def list_hypervisors_detail(svc: ComputeService, call: Call, version: Version) -> Any:
    need_reader(call)
    return {"hypervisors": [views.render_hypervisor(h, version, True) for h in await svc.resources.hosts()]}


async def show_hypervisor(svc: ComputeService, call: Call, version: Version, hypervisor_id_: str) -> Any:
    need_reader(call)
    for h in await svc.resources.hosts():
        name = h["name"]
        if hypervisor_id_ in (views.hypervisor_id(name), str(views.legacy_hypervisor_id(name)), name):
            return {"hypervisor": views.render_hypervisor(h, version, True)}
    raise NotFound(f"Hypervisor with ID '{hypervisor_id_[:80]}' could not be found.")


async def hypervisor_statistics(svc: ComputeService, call: Call, version: Version) -> Any:
    need_reader(call)
    return views.render_hypervisor_statistics(await svc.resources.hosts())


async def list_services(svc: ComputeService, call: Call, version: Version) -> Any:
    require(call.auth.is_cloud_reader, "os_compute_api:os-services:list")
    return views.render_services(await svc.resources.hosts())


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
        route(svc, "GET", "/os-hypervisors", list_hypervisors),
        route(svc, "GET", "/os-hypervisors/detail", list_hypervisors_detail),
        route(svc, "GET", "/os-hypervisors/statistics", hypervisor_statistics),
        route(svc, "GET", "/os-hypervisors/{hypervisor_id_}", show_hypervisor),
        route(svc, "GET", "/os-services", list_services),
    ]

"""Nova v2.1 host aggregates: groups of compute hosts, optionally an availability zone."""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute import views
from cloudbox.compute.api import Version, route
from cloudbox.compute.service import ComputeService
from cloudbox.identity.core import require

NAME = {"type": "string", "minLength": 1, "maxLength": 255}
ZONE = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
AGGREGATE_CREATE = {"type": "object", "required": ["aggregate"], "additionalProperties": False, "properties": {"aggregate": {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "properties": {"name": NAME, "availability_zone": ZONE}}}}
AGGREGATE_UPDATE = {"type": "object", "required": ["aggregate"], "properties": {"aggregate": {
    "type": "object", "minProperties": 1, "additionalProperties": False,
    "properties": {"name": NAME, "availability_zone": ZONE}}}}
AGGREGATE_ACTION = {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
                    "properties": {
    "add_host": {"type": "object", "required": ["host"], "properties": {"host": NAME}},
    "remove_host": {"type": "object", "required": ["host"], "properties": {"host": NAME}},
    "set_metadata": {"type": "object", "required": ["metadata"], "properties": {"metadata": {
        "type": "object", "additionalProperties": {"type": ["string", "null"], "maxLength": 255}}}},
}}


async def list_aggregates(svc: ComputeService, call: Call, version: Version) -> Any:
    require(call.auth.is_cloud_reader, "os_compute_api:os-aggregates:index")
    return {"aggregates": [views.render_aggregate(a, version) for a in await svc.resources.list_aggregates()]}


async def create_aggregate(svc: ComputeService, call: Call, version: Version) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-aggregates:create")
    body = call.body["aggregate"]
    created = await svc.resources.create_aggregate(body["name"], body.get("availability_zone"))
    body = views.render_aggregate(created, version)
    del body["hosts"], body["metadata"]  # Nova's create answers without them (a new aggregate has none)
    return {"aggregate": body}


async def show_aggregate(svc: ComputeService, call: Call, version: Version, aggregate_id: str) -> Any:
    require(call.auth.is_cloud_reader, "os_compute_api:os-aggregates:show")
    return {"aggregate": views.render_aggregate(await svc.resources.aggregate(aggregate_id), version)}


async def update_aggregate(svc: ComputeService, call: Call, version: Version, aggregate_id: str) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-aggregates:update")
    updated = await svc.resources.update_aggregate(aggregate_id, dict(call.body["aggregate"]))
    return {"aggregate": views.render_aggregate(updated, version)}


async def delete_aggregate(svc: ComputeService, call: Call, version: Version, aggregate_id: str) -> Reply:
    require(call.auth.is_cloud_admin, "os_compute_api:os-aggregates:delete")
    await svc.resources.delete_aggregate(aggregate_id)
    return Reply(None, 200)


async def aggregate_action(svc: ComputeService, call: Call, version: Version, aggregate_id: str) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-aggregates:action")
    (action, args), = call.body.items()
    changes = {"add_host": {"add_host": args.get("host")}, "remove_host": {"remove_host": args.get("host")},
               "set_metadata": {"metadata_merge": args.get("metadata")}}[action]
    updated = await svc.resources.update_aggregate(aggregate_id, changes)
    return {"aggregate": views.render_aggregate(updated, version)}


def routes(svc: ComputeService) -> list[Route]:
    return [
        route(svc, "GET", "/os-aggregates", list_aggregates),
        route(svc, "POST", "/os-aggregates", create_aggregate, body=AGGREGATE_CREATE),
        route(svc, "GET", "/os-aggregates/{aggregate_id}", show_aggregate),
        route(svc, "PUT", "/os-aggregates/{aggregate_id}", update_aggregate, body=AGGREGATE_UPDATE),
        route(svc, "DELETE", "/os-aggregates/{aggregate_id}", delete_aggregate),
        route(svc, "POST", "/os-aggregates/{aggregate_id}/action", aggregate_action, body=AGGREGATE_ACTION,
              summary="Aggregate actions: add_host, remove_host, set_metadata"),
    ]

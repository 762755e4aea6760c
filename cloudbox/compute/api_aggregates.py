"""Nova v2.1 host aggregates: groups of compute hosts, optionally an availability zone."""

from __future__ import annotations

import uuid
from typing import Any, Callable

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute import commands as c
from cloudbox.compute import store
from cloudbox.compute.service import ComputeService, now_iso
from cloudbox.errors import BadRequest, NotFound
from cloudbox.identity.core import require

Version = tuple[int, int]
NAME = {"type": "string", "minLength": 1, "maxLength": 255}
ZONE = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
AGGREGATE_CREATE = {"type": "object", "required": ["aggregate"], "properties": {"aggregate": {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "properties": {"name": NAME, "availability_zone": ZONE}}}}
AGGREGATE_UPDATE = {"type": "object", "required": ["aggregate"], "properties": {"aggregate": {
    "type": "object", "minProperties": 1, "additionalProperties": False,
    "properties": {"name": NAME, "availability_zone": ZONE}}}}
AGGREGATE_ACTION = {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": {
    "add_host": {"type": "object", "required": ["host"], "properties": {"host": NAME}},
    "remove_host": {"type": "object", "required": ["host"], "properties": {"host": NAME}},
    "set_metadata": {"type": "object", "required": ["metadata"], "properties": {"metadata": {
        "type": "object", "additionalProperties": {"type": ["string", "null"], "maxLength": 255}}}},
}}


def render(agg: dict[str, Any], version: Version) -> dict[str, Any]:
    body = {
        "id": agg["id"], "name": agg["name"], "availability_zone": agg["availability_zone"],
        "hosts": agg["hosts"], "metadata": agg["metadata"], "created_at": agg["created_at"],
        "updated_at": agg["updated_at"], "deleted": False, "deleted_at": None,
    }
    if version >= (2, 41):
        body["uuid"] = agg["uuid"]
    return body


def routes(svc: ComputeService, nova: Callable[..., Any]) -> list[Route]:
    engine = svc.engine

    async def _get(aggregate_id: str) -> dict[str, Any]:
        try:
            number = int(aggregate_id)
        except ValueError:
            raise NotFound(f"Aggregate {aggregate_id} could not be found.") from None
        agg = await engine.read(store.one, "SELECT * FROM aggregates WHERE id = ?", [number])
        if agg is None:
            raise NotFound(f"Aggregate {aggregate_id} could not be found.")
        return agg

    def _zone_metadata(zone: str | None) -> dict[str, Any]:
        return {"availability_zone": zone} if zone else {}

    @nova
    async def list_aggregates(call: Call, version: Version) -> Any:
        require(call.auth.is_cloud_reader, "os_compute_api:os-aggregates:index")
        rows = await engine.read(lambda db: [store.decode(r) for r in db.query("SELECT * FROM aggregates ORDER BY id")])
        return {"aggregates": [render(r, version) for r in rows]}

    @nova
    async def create_aggregate(call: Call, version: Version) -> Any:
        require(call.auth.is_cloud_admin, "os_compute_api:os-aggregates:create")
        b = call.body["aggregate"]
        zone = b.get("availability_zone")
        row = {"uuid": str(uuid.uuid4()), "name": b["name"], "availability_zone": zone,
               "metadata": _zone_metadata(zone), "hosts": [], "created_at": now_iso(), "updated_at": None}
        created = await engine.propose(c.CreateAggregate(row))
        return {"aggregate": render(created, version)}

    @nova
    async def show_aggregate(call: Call, version: Version, aggregate_id: str) -> Any:
        require(call.auth.is_cloud_reader, "os_compute_api:os-aggregates:show")
        return {"aggregate": render(await _get(aggregate_id), version)}

    @nova
    async def update_aggregate(call: Call, version: Version, aggregate_id: str) -> Any:
        require(call.auth.is_cloud_admin, "os_compute_api:os-aggregates:update")
        agg = await _get(aggregate_id)
        changes: dict[str, Any] = {k: v for k, v in call.body["aggregate"].items()}
        if "availability_zone" in changes:
            changes["metadata_merge"] = {"availability_zone": changes["availability_zone"]}
        changes["updated_at"] = now_iso()
        updated = await engine.propose(c.UpdateAggregate(agg["id"], changes))
        return {"aggregate": render(updated, version)}

    @nova
    async def delete_aggregate(call: Call, version: Version, aggregate_id: str) -> Reply:
        require(call.auth.is_cloud_admin, "os_compute_api:os-aggregates:delete")
        agg = await _get(aggregate_id)
        await engine.propose(c.DeleteAggregate(agg["id"]))
        return Reply(None, 200)

    @nova
    async def aggregate_action(call: Call, version: Version, aggregate_id: str) -> Any:
        require(call.auth.is_cloud_admin, "os_compute_api:os-aggregates:action")
        agg = await _get(aggregate_id)
        (action, args), = call.body.items()
        if action == "add_host":
            changes: dict[str, Any] = {"add_host": args["host"]}
        elif action == "remove_host":
            changes = {"remove_host": args["host"]}
        elif action == "set_metadata":
            changes = {"metadata_merge": args["metadata"]}
            if "availability_zone" in args["metadata"]:
                changes["availability_zone"] = args["metadata"]["availability_zone"]
        else:
            raise BadRequest(f"There is no such aggregate action: {action}")
        updated = await engine.propose(c.UpdateAggregate(agg["id"], {**changes, "updated_at": now_iso()}))
        return {"aggregate": render(updated, version)}

    return [
        Route("GET", "/os-aggregates", list_aggregates),
        Route("POST", "/os-aggregates", create_aggregate, body=AGGREGATE_CREATE),
        Route("GET", "/os-aggregates/{aggregate_id}", show_aggregate),
        Route("PUT", "/os-aggregates/{aggregate_id}", update_aggregate, body=AGGREGATE_UPDATE),
        Route("DELETE", "/os-aggregates/{aggregate_id}", delete_aggregate),
        Route("POST", "/os-aggregates/{aggregate_id}/action", aggregate_action, body=AGGREGATE_ACTION,
              summary="Aggregate actions: add_host, remove_host, set_metadata"),
    ]

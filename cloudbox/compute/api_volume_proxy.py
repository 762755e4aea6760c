"""Nova's volume proxies: ``os-volumes`` and ``os-snapshots``, in Nova's camelCase shapes.

| route                          | answer | notes                                              |
|--------------------------------|--------|----------------------------------------------------|
| GET    /os-volumes[/detail]    | 200    | limit, offset (both lists show the same fields)    |
| GET    /os-volumes/{id}        | 200    |                                                    |
| POST   /os-volumes             | 200    | size, display_name, display_description, volume_type, metadata, availability_zone, snapshot_id, imageRef |
| DELETE /os-volumes/{id}        | 202    |                                                    |
| GET    /os-snapshots[/detail]  | 200    | limit, offset                                      |
| GET    /os-snapshots/{id}      | 200    |                                                    |
| POST   /os-snapshots           | 200    | volume_id, force, display_name, display_description |
| DELETE /os-snapshots/{id}      | 202    |                                                    |

Removed at 2.36 as Nova removed them (404 from then on).  Each handler calls the volume service's
public methods with the caller's own credentials, so the volume service decides what the caller
may see and change (its 4xx pass through unchanged).
"""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute.api import Version, route
from cloudbox.compute.api_proxies import proxy_only
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, NotFound

SIZE = {"type": ["integer", "string"], "pattern": r"^\s*[0-9]+\s*$", "minimum": 1}
TEXT = {"type": ["string", "null"], "maxLength": 255}
VOLUME_BODY = {"type": "object", "required": ["volume"], "additionalProperties": False, "properties": {
    "volume": {"type": "object", "required": ["size"], "additionalProperties": False, "properties": {
        "size": SIZE, "display_name": TEXT, "display_description": TEXT, "volume_type": TEXT,
        "metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255}},
        "availability_zone": TEXT, "snapshot_id": TEXT, "imageRef": TEXT}}}}
SNAPSHOT_BODY = {"type": "object", "required": ["snapshot"], "additionalProperties": False, "properties": {
    "snapshot": {"type": "object", "required": ["volume_id"], "additionalProperties": False, "properties": {
        "volume_id": {"type": "string"}, "force": {"type": ["boolean", "string"]},
        "display_name": TEXT, "display_description": TEXT}}}}


def _volumes(svc: ComputeService) -> Any:
    """The volume service, or Nova's 404 for a cloud without one."""
    if svc.volume_service is None:
        raise NotFound("The volume service is not served by this cloud.")
    return svc.volume_service


def volume_view(row: dict[str, Any]) -> dict[str, Any]:
    """A volume as Nova's proxy shows it: an unattached volume's attachments are ``[{}]``, as Nova's."""
    attachments = [{"id": row["id"], "volumeId": row["id"], "serverId": a["instance_uuid"],
                    "device": a["mountpoint"] or ""}
                   for a in row.get("attachments", ()) if a["attach_status"] == "attached"]
    return {"id": row["id"], "status": row["status"], "size": row["size"],
            "availabilityZone": row["availability_zone"], "createdAt": row["created_at"],
            "displayName": row["name"], "displayDescription": row["description"],
            "volumeType": row.get("volume_type"), "snapshotId": row["snapshot_id"],
            "metadata": row["metadata"], "attachments": attachments or [{}]}


def snapshot_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "volumeId": row["volume_id"], "status": row["status"], "size": row["size"],
            "createdAt": row["created_at"], "displayName": row["name"], "displayDescription": row["description"]}


def _window(call: Call) -> tuple[int, int]:
    """Nova's limit and offset (the proxy pages by offset; a marker is not taken)."""
    limit, _ = call.page()
    raw = call.query.get("offset")
    try:
        offset = int(raw) if raw not in (None, "") else 0
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters offset: {str(raw)[:40]!r} is not an integer.") from None
    if offset < 0:
        raise BadRequest("Invalid input for query parameters offset: it must be 0 or more.")
    return limit, offset


def _options(offset: int) -> Any:
    from cloudbox.volume import core
    return core.ListOptions(offset=offset)


async def list_volumes(svc: ComputeService, call: Call, version: Version) -> Any:
    proxy_only(version, "os-volumes", "volume")
    limit, offset = _window(call)
    rows = await _volumes(svc).list(call.auth, _options(offset), None, limit, False)
    return {"volumes": [volume_view(r) for r in rows[:limit]]}


async def show_volume(svc: ComputeService, call: Call, version: Version, volume_id: str) -> Any:
    proxy_only(version, "os-volumes", "volume")
    return {"volume": volume_view(await _volumes(svc).get(call.auth, volume_id))}


async def create_volume(svc: ComputeService, call: Call, version: Version) -> Any:
    proxy_only(version, "os-volumes", "volume")
    asked = call.body["volume"]
    if int(asked["size"]) < 1:
        raise BadRequest("Invalid input for field/attribute size: it must be 1 or more.")
    body: dict[str, Any] = {"size": int(asked["size"]), "name": asked.get("display_name"),
                            "description": asked.get("display_description")}
    for key in ("volume_type", "metadata", "availability_zone", "snapshot_id", "imageRef"):
        if asked.get(key) is not None:
            body[key] = asked[key]
    return {"volume": volume_view(await _volumes(svc).create(call.auth, body))}


async def delete_volume(svc: ComputeService, call: Call, version: Version, volume_id: str) -> Any:
    proxy_only(version, "os-volumes", "volume")
    await _volumes(svc).delete(call.auth, volume_id)
    return Reply(None, 202)


async def list_snapshots(svc: ComputeService, call: Call, version: Version) -> Any:
    proxy_only(version, "os-snapshots", "volume")
    limit, offset = _window(call)
    rows = await _volumes(svc).list_snapshots(call.auth, _options(offset), None, limit, False)
    return {"snapshots": [snapshot_view(r) for r in rows[:limit]]}


async def show_snapshot(svc: ComputeService, call: Call, version: Version, snapshot_id: str) -> Any:
    proxy_only(version, "os-snapshots", "volume")
    return {"snapshot": snapshot_view(await _volumes(svc).get_snapshot(call.auth, snapshot_id))}


async def create_snapshot(svc: ComputeService, call: Call, version: Version) -> Any:
    proxy_only(version, "os-snapshots", "volume")
    asked = call.body["snapshot"]
    body = {"volume_id": asked["volume_id"], "force": asked.get("force", False),
            "name": asked.get("display_name"), "description": asked.get("display_description")}
    return {"snapshot": snapshot_view(await _volumes(svc).create_snapshot(call.auth, body))}


async def delete_snapshot(svc: ComputeService, call: Call, version: Version, snapshot_id: str) -> Any:
    proxy_only(version, "os-snapshots", "volume")
    await _volumes(svc).delete_snapshot(call.auth, snapshot_id)
    return Reply(None, 202)


def routes(svc: ComputeService) -> list[Route]:
    page = ("limit", "offset")
    return [
        route(svc, "GET", "/os-volumes", list_volumes, query=page),
        route(svc, "GET", "/os-volumes/detail", list_volumes, query=page),
        route(svc, "POST", "/os-volumes", create_volume, body=VOLUME_BODY),
        route(svc, "GET", "/os-volumes/{volume_id}", show_volume),
        route(svc, "DELETE", "/os-volumes/{volume_id}", delete_volume, status=202),
        route(svc, "GET", "/os-snapshots", list_snapshots, query=page),
        route(svc, "GET", "/os-snapshots/detail", list_snapshots, query=page),
        route(svc, "POST", "/os-snapshots", create_snapshot, body=SNAPSHOT_BODY),
        route(svc, "GET", "/os-snapshots/{snapshot_id}", show_snapshot),
        route(svc, "DELETE", "/os-snapshots/{snapshot_id}", delete_snapshot, status=202),
    ]

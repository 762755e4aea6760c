"""Nova v2.1 routes of a server's volumes: ``/servers/{id}/os-volume_attachments``.

| route                                   | answer | microversions                               |
|-----------------------------------------|--------|---------------------------------------------|
| GET    .../os-volume_attachments        | 200    | limit/offset; tag 2.70, delete_on_termination 2.79, attachment_id and bdm_uuid (no id) 2.89 |
| GET    .../os-volume_attachments/{vol}  | 200    | as above                                    |
| POST   .../os-volume_attachments        | 200    | volumeId, device; shelved servers 2.20; tag 2.49; delete_on_termination 2.79; multiattach volumes 2.60 |
| PUT    .../os-volume_attachments/{vol}  | 202    | a new volumeId is a swap (admins; done in the background: volume_swap.py); from 2.85 the same volumeId updates delete_on_termination |
| DELETE .../os-volume_attachments/{vol}  | 202    | the disk leaves in the background           |

Refusals: 404 unknown server or volume (or not attached), 400 volume not available, already
attached to the server, a multiattach volume before 2.60, the root volume's detach; 409 a server
locked or in a state Nova refuses (building, suspended, a task under way; shelved before 2.20).
The work is in volumes.py; writes run on the server's node (forwarded).
"""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute import api_records
from cloudbox.compute.api import Version, forwarded, route
from cloudbox.compute.service import ComputeService
from cloudbox.compute.volumes import DEVICE
from cloudbox.errors import BadRequest
from cloudbox.identity.core import require

UUID = {"type": "string", "pattern": r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                                     r"[0-9a-fA-F]{12}$"}
DEVICE_FIELD = {"type": ["string", "null"], "pattern": DEVICE.pattern, "maxLength": 255}
TAG = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}
ATTACH_BODY = {"type": "object", "required": ["volumeAttachment"], "additionalProperties": False, "properties": {
    "volumeAttachment": {"type": "object", "required": ["volumeId"], "additionalProperties": False,
                         "properties": {"volumeId": UUID, "device": DEVICE_FIELD, "tag": TAG,
                                        "delete_on_termination": {"type": "boolean"}}}}}
UPDATE_BODY = {"type": "object", "required": ["volumeAttachment"], "additionalProperties": False, "properties": {
    "volumeAttachment": {"type": "object", "required": ["volumeId"], "additionalProperties": False,
                         "properties": {"volumeId": UUID, "device": DEVICE_FIELD, "tag": TAG,
                                        "delete_on_termination": {"type": "boolean"}, "id": {"type": "string"},
                                        "serverId": {"type": "string"}, "bdm_uuid": {"type": "string"}}}}}


def render(bdm: dict[str, Any], version: Version, *, created: bool = False) -> dict[str, Any]:
    """One attachment as Nova shows it at ``version`` (a create's answer keeps ``id``)."""
    body: dict[str, Any] = {"id": bdm["volume_id"], "serverId": bdm["server_id"], "volumeId": bdm["volume_id"],
                            "device": bdm["device_name"]}
    if version >= (2, 70):
        body["tag"] = bdm["tag"]
    if version >= (2, 79):
        body["delete_on_termination"] = bdm["delete_on_termination"]
    if version >= (2, 89) and not created:
        del body["id"]
        body.update(attachment_id=bdm["attachment_id"], bdm_uuid=bdm["id"])
    return body


def _unexpected(name: str) -> BadRequest:
    return BadRequest(f"Invalid input for field/attribute volumeAttachment. Value: {name}. Additional properties "
                      f"are not allowed ('{name}' was unexpected)")


def _offset(call: Call) -> int:
    raw = call.query.get("offset")
    if raw in (None, ""):
        return 0
    try:
        offset = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters offset: {raw[:40]!r} is not an integer.") from None
    if offset < 0:
        raise BadRequest("Invalid input for query parameters offset: it must be 0 or more.")
    return offset


async def list_attachments(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    server = await svc.visible_server(call.auth, server_id)
    limit, _ = call.page()
    offset = _offset(call)
    rows = [b for b in await svc.volumes.of_server(server["id"]) if b["volume_id"]]
    return {"volumeAttachments": [render(b, version) for b in rows[offset:offset + limit]]}


async def show_attachment(svc: ComputeService, call: Call, version: Version, server_id: str,
                          volume_id: str) -> Any:
    server = await svc.visible_server(call.auth, server_id)
    return {"volumeAttachment": render(await svc.volumes.mapping(server, volume_id), version)}


async def attach_volume(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    body = call.body["volumeAttachment"]
    if "tag" in body and version < (2, 49):
        raise _unexpected("tag")
    if "delete_on_termination" in body and version < (2, 79):
        raise _unexpected("delete_on_termination")
    server = await svc.visible_server(call.auth, server_id, write=True)
    answer = await forwarded(svc, call, server)
    if answer is not None:
        return answer
    bdm = await svc.volumes.attach(call.auth, server, body["volumeId"], device=body.get("device"),
                                   tag=body.get("tag"), delete_on_termination=body.get("delete_on_termination", False),
                                   multiattach_ok=version >= (2, 60), shelved_ok=version >= (2, 20))
    await api_records.record(svc, call, [server], "attach_volume")
    return {"volumeAttachment": render(bdm, version, created=True)}


async def update_attachment(svc: ComputeService, call: Call, version: Version, server_id: str,
                            volume_id: str) -> Any:
    body = call.body["volumeAttachment"]
    if version < (2, 85):
        extra = sorted(set(body) - {"volumeId"})
        if extra:
            raise _unexpected(extra[0])
    swap = version < (2, 85) or body["volumeId"] != volume_id
    if swap:  # Nova's swap policy: admins only
        require(call.auth.is_cloud_admin, "os_compute_api:os-volumes-attachments:swap")
    server = await svc.visible_server(call.auth, server_id, write=True)
    answer = await forwarded(svc, call, server)
    if answer is not None:
        return answer
    if version >= (2, 85):
        bdm = await svc.volumes.mapping(server, volume_id)
        current = render(bdm, (2, 89))
        shown = {"id": volume_id, "serverId": server["id"], "device": bdm["device_name"], "tag": bdm["tag"],
                 "bdm_uuid": current["bdm_uuid"]}
        for name, value in shown.items():
            if name in body and body[name] != value:
                raise BadRequest(f"The {name} property of a volume attachment cannot be updated.")
        if "delete_on_termination" in body:
            await svc.volumes.set_delete_on_termination(server, volume_id, body["delete_on_termination"])
    if swap:
        await svc.volumes.swap(call.auth, server, volume_id, body["volumeId"])
    return Reply(None, 202)


async def detach_volume(svc: ComputeService, call: Call, version: Version, server_id: str, volume_id: str) -> Any:
    server = await svc.visible_server(call.auth, server_id, write=True)
    answer = await forwarded(svc, call, server)
    if answer is not None:
        return answer
    await svc.volumes.detach(call.auth, server, volume_id, shelved_ok=version >= (2, 20))
    await api_records.record(svc, call, [server], "detach_volume")
    return Reply(None, 202)


def routes(svc: ComputeService) -> list[Route]:
    base = "/servers/{server_id}/os-volume_attachments"
    return [
        route(svc, "GET", base, list_attachments, query=("limit", "offset"),
              summary="The volumes attached to a server"),
        route(svc, "GET", f"{base}/{{volume_id}}", show_attachment, summary="One volume attached to a server"),
        route(svc, "POST", base, attach_volume, body=ATTACH_BODY,
              summary="Attach a volume to a server (hot-plugged into a running guest)"),
        route(svc, "PUT", f"{base}/{{volume_id}}", update_attachment, body=UPDATE_BODY, status=202,
              summary="Update a volume attachment (delete_on_termination from 2.85; swapping is not supported)"),
        route(svc, "DELETE", f"{base}/{{volume_id}}", detach_volume, status=202,
              summary="Detach a volume from a server"),
    ]

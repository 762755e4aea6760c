"""Nova's server external events (``POST /os-server-external-events``): what a network or volume
service tells compute about a server.  Only a user with the ``service`` role may send them.

cloudbox's own services tell compute directly, so an event changes nothing here but
volume-extended (the tag names the volume: the guest's disk takes its new size): each is checked
(known name for the microversion, a server that exists and has a host) and answered per event
as Nova answers it.
"""

from __future__ import annotations

import logging
from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute import store
from cloudbox.compute.api import Version, route
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, CloudboxError, NotFound
from cloudbox.identity.core import require

# Event names and the microversion that added each.
EVENT_NAMES = {
    "network-changed": (2, 1), "network-vif-plugged": (2, 1), "network-vif-unplugged": (2, 1),
    "network-vif-deleted": (2, 1), "volume-extended": (2, 51), "power-update": (2, 76),
    "accelerator-request-bound": (2, 82), "volume-reimaged": (2, 93),
}
EVENTS_BODY = {"type": "object", "required": ["events"], "additionalProperties": False, "properties": {
    "events": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {
        "type": "object", "required": ["name", "server_uuid"], "additionalProperties": False, "properties": {
            "name": {"type": "string", "enum": sorted(EVENT_NAMES)},
            "server_uuid": {"type": "string", "minLength": 1, "maxLength": 255},
            "status": {"type": "string", "enum": ["failed", "completed", "in-progress"]},
            "tag": {"type": "string", "maxLength": 255}}}}}}
log = logging.getLogger("cloudbox.compute")


async def create_events(svc: ComputeService, call: Call, version: Version) -> Reply:
    require(call.auth.is_service, "os_compute_api:os-server-external-events:create")
    events = call.body["events"]
    for event in events:
        if version < EVENT_NAMES[event["name"]]:
            raise BadRequest(f"Event {event['name']} needs a later microversion than {version[0]}.{version[1]}.")
        if event["name"] == "power-update" and event.get("tag") not in ("POWER_ON", "POWER_OFF"):
            raise BadRequest("A power-update event's tag is POWER_ON or POWER_OFF.")
    servers = await svc.engine.read(lambda db: {e["server_uuid"]: store.get_server(db, e["server_uuid"])
                                                for e in events})
    answers = []
    for event in events:
        server = servers[event["server_uuid"]]
        code = 404 if server is None else 422 if server["host"] is None else 200
        answers.append({**event, "status": event.get("status", "completed") if code == 200 else "failed",
                        "code": code})
    for answer in answers:  # a volume grew: its disk in the guest follows (the tag names the volume)
        if answer["name"] == "volume-extended" and answer["code"] == 200 and answer.get("tag"):
            try:
                await svc.volumes.extended(answer["server_uuid"], answer["tag"])
            except CloudboxError as exc:  # Nova answers the event; its compute logs what failed
                log.warning("volume-extended not applied", extra={"server_id": answer["server_uuid"],
                                                                  "why": exc.message})
    codes = {a["code"] for a in answers}
    if codes == {404}:
        raise NotFound("No instances found for any event.")
    return Reply({"events": answers}, 200 if codes == {200} else 207)


def routes(svc: ComputeService) -> list[Route]:
    return [route(svc, "POST", "/os-server-external-events", create_events, body=EVENTS_BODY,
                  summary="External events from other services (the service role only)")]

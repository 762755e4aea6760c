"""Nova's remote consoles: POST /servers/{id}/remote-consoles (2.6+), the legacy actions
os-getVNCConsole and os-getSerialConsole (to 2.5; ``server_action`` hands them here), and the
admin's GET /os-console-auth-tokens/{token} (2.31+ for these consoles).

A console URL is answered by the node that was asked, whichever node runs the guest: its token
(cloudbox.console.tokens) opens on every node, and the proxy there reaches the guest's node.
"""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute.api import Version, forwarded, route
from cloudbox.compute.service import ComputeService
from cloudbox.console.service import KNOWN_PROTOCOLS, consoles_of
from cloudbox.errors import BadRequest, NotFound, Unauthorized
from cloudbox.identity.core import require

CONSOLE_TYPES = ("novnc", "xvpvnc", "rdp-html5", "spice-html5", "spice-direct", "serial", "webmks")
REMOTE_CONSOLE = {
    "type": "object", "required": ["remote_console"], "additionalProperties": False,
    "properties": {"remote_console": {
        "type": "object", "required": ["protocol", "type"], "additionalProperties": False,
        "properties": {"protocol": {"type": "string", "enum": list(KNOWN_PROTOCOLS)},
                       "type": {"type": "string", "enum": list(CONSOLE_TYPES)}}}},
}
# The legacy actions: their protocol and the console types Nova's schema allowed them.
ACTIONS = {"os-getVNCConsole": ("vnc", ("novnc", "xvpvnc")), "os-getSerialConsole": ("serial", ("serial",))}


async def console_url(svc: ComputeService, call: Call, server_id: str, protocol: str, console_type: Any) -> str:
    server = await svc.visible_server(call.auth, server_id)
    require(call.auth.can_write_project(server["project_id"]), "os_compute_api:os-remote-consoles")
    consoles = consoles_of(svc)
    consoles.check_request(protocol, console_type)
    return consoles.issue(server, protocol, call.request.host_url.rstrip("/"))


async def create_remote_console(svc: ComputeService, call: Call, version: Version, server_id: str) -> Reply:
    """A console of the server: a URL with a one-time token (10 minutes to connect)."""
    if version < (2, 6):
        raise NotFound("The resource could not be found.")
    wanted = call.body["remote_console"]
    protocol, console_type = wanted["protocol"], wanted["type"]
    if protocol == "mks" and version < (2, 8):
        raise BadRequest("Invalid input for field 'protocol': mks needs microversion 2.8 or later.")
    url = await console_url(svc, call, server_id, protocol, console_type)
    return Reply({"remote_console": {"protocol": protocol, "type": console_type, "url": url}})


async def legacy_action(svc: ComputeService, call: Call, version: Version, server_id: str, action: str,
                        args: dict[str, Any]) -> Reply:
    """os-getVNCConsole and os-getSerialConsole, which 2.6 replaced with remote-consoles."""
    if version >= (2, 6):
        raise BadRequest(f"There is no such action: {action} (up to microversion 2.5; use remote-consoles).")
    protocol, types = ACTIONS[action]
    console_type = args.get("type")
    if set(args) - {"type"} or console_type not in types:
        raise BadRequest(f"Invalid input for field 'type': {action} takes a type, one of {', '.join(types)}.")
    url = await console_url(svc, call, server_id, protocol, console_type)
    return Reply({"console": {"type": console_type, "url": url}})


async def show_console_auth_token(svc: ComputeService, call: Call, version: Version, console_token: str) -> Reply:
    """What a console token connects to (admin): the server and its host."""
    require(call.auth.is_cloud_admin, "os_compute_api:os-console-auth-tokens")
    if version < (2, 31):
        # Before 2.31 Nova shows only RDP consoles' tokens, which cloudbox does not serve.
        raise Unauthorized("The requested console type details are not accessible")
    consoles = consoles_of(svc)
    try:
        claims = consoles.claims(console_token)
    except Unauthorized:
        raise NotFound(f"The token '{console_token[:60]}' is invalid or has expired") from None
    # The guest's node alone knows whether the token was used.
    if (reply := await forwarded(svc, call, {"host": claims.host})) is not None:
        return reply
    return Reply({"console": {"instance_uuid": claims.server_id, "host": claims.host, "port": None,
                              "internal_access_path": None}})


def routes(svc: ComputeService) -> list[Route]:
    return [
        route(svc, "POST", "/servers/{server_id}/remote-consoles", create_remote_console, body=REMOTE_CONSOLE,
              summary="A remote console URL (2.6+): protocol vnc (type novnc) or serial (type serial)"),
        route(svc, "GET", "/os-console-auth-tokens/{console_token}", show_console_auth_token,
              summary="The server and host of a console token (admin, 2.31+)"),
    ]

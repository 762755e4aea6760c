"""The console proxy: websocket routes /console/vnc and /console/serial on every node.

A connection is authorised by its token and nothing else.  Refusals are HTTP answers to the
upgrade (401 for a token that is unknown, changed, expired or spent, 404 for a server that is
gone, 409 for one without that console), so nothing reaches a guest before the token checks.
Then bytes flow both ways: noVNC's RFB in binary messages (subprotocol ``binary``), the serial
port as plain bytes (text messages from the browser are sent as UTF-8).  A guest on another
node is reached through that node's peer listener (mutual TLS with this node's certificate),
where the same route checks and spends the token.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import trio
from quart import Response, websocket

from cloudbox.api import errors as api_errors
from cloudbox.console.service import ConsoleService, Target, consoles_of
from cloudbox.console.tokens import PROTOCOLS
from cloudbox.console.wsclient import Rejected, WebSocketClient
from cloudbox.errors import CloudboxError, InternalError, Unavailable

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from cloudbox.compute.service import ComputeService

log = logging.getLogger("cloudbox.console")
CHUNK = 65536


class Far(Protocol):
    async def send(self, data: bytes) -> None: ...
    async def receive(self) -> bytes | None: ...
    async def aclose(self) -> None: ...


class LocalSocket:
    """The guest's console socket on this node."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive(self) -> bytes | None:
        try:
            return await self.stream.receive_some(CHUNK) or None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None

    async def aclose(self) -> None:
        await self.stream.aclose()


class PeerConsole:
    """The same console through the guest's node."""

    def __init__(self, client: WebSocketClient) -> None:
        self.client = client

    async def send(self, data: bytes) -> None:
        await self.client.send(data)

    async def receive(self) -> bytes | None:
        message = await self.client.receive()
        return message.encode() if isinstance(message, str) else message

    async def aclose(self) -> None:
        await self.client.aclose()


def refusal(error: CloudboxError) -> Response:
    """The upgrade refused, with the error body of cloudbox's own API."""
    body, status = api_errors.render(error, "cloudbox")
    return Response(json.dumps(body), status=status, content_type="application/json")


async def open_far(consoles: ConsoleService, target: Target, token: str) -> Far:
    """Connect to what ``target`` names (CloudboxError or Rejected when it cannot be reached)."""
    protocol = target.claims.protocol
    if target.socket_path is not None:
        try:
            return LocalSocket(await trio.open_unix_socket(target.socket_path))
        except OSError as exc:
            raise Unavailable(f"The {protocol} console of {target.claims.server_id} does not answer.") from exc
    assert target.peer_url is not None
    url = target.peer_url.replace("https://", "wss://", 1) + f"/console/{protocol}?token={quote(token, safe='')}"
    try:
        client = await WebSocketClient.connect(url, consoles.compute.cluster.tls(), subprotocols=("binary",))
    except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
        raise Unavailable(f"Compute host {target.claims.host} did not answer.") from exc
    return PeerConsole(client)


async def relay(far: Far) -> None:
    """Bytes both ways until either side closes."""
    async with trio.open_nursery() as nursery:
        async def to_guest() -> None:
            try:
                while True:
                    message = await websocket.receive()
                    if message:  # an empty message comes out of quart as None: nothing to send
                        await far.send(message.encode() if isinstance(message, str) else message)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the guest's side went away
            nursery.cancel_scope.cancel()

        async def to_browser() -> None:
            while (data := await far.receive()) is not None:
                await websocket.send(data)
            nursery.cancel_scope.cancel()

        nursery.start_soon(to_guest)
        nursery.start_soon(to_browser)


def mount(app: QuartTrio, compute: ComputeService) -> None:
    """Add the console routes to the node's app."""
    consoles = consoles_of(compute)

    def handler(protocol: str) -> Any:
        async def console() -> Response | None:
            token = websocket.args.get("token", "")
            try:
                target = await consoles.target(token, protocol)
                far = await open_far(consoles, target, token)
            except CloudboxError as exc:
                return refusal(exc)
            except Rejected as exc:  # the guest's node refused it: say what it said
                return Response(exc.body, status=exc.status, content_type="application/json")
            except Exception:  # the app's error handlers need a request; a websocket has none
                log.exception("console %s: unexpected error", protocol)
                return refusal(InternalError("The console could not be opened."))
            try:
                subprotocol = "binary" if "binary" in websocket.requested_subprotocols else None
                await websocket.accept(subprotocol=subprotocol)
                log.info("console opened", extra={"server_id": target.claims.server_id, "protocol": protocol,
                                                  "via": target.peer_url or "local"})
                await relay(far)
            finally:
                with trio.CancelScope(shield=True):
                    await far.aclose()
            return None

        console.__name__ = f"console_{protocol}"
        console.__doc__ = f"The {protocol} console of a server, as a websocket (token from the compute API)"
        return console

    for protocol in PROTOCOLS:
        app.add_websocket(f"/console/{protocol}", endpoint=f"console_{protocol}", view_func=handler(protocol))

"""Console tokens issued and spent: what the API and the websocket proxy ask of consoles.

Issuing needs no write to the cloud's state (tokens.py seals everything a token says); spending
happens on the node that runs the guest, where every connection to that guest's console ends,
so that node alone remembers which tokens were used (DESIGN.md).
"""

from __future__ import annotations

import secrets
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from cloudbox.console import tokens
from cloudbox.console.tokens import PROTOCOLS, TOKEN_TTL, BadToken, Claims
from cloudbox.errors import BadRequest, Conflict, NotFound, Unauthorized, Unavailable

if TYPE_CHECKING:
    from cloudbox.compute.service import ComputeService

# Nova's console types by protocol (only these two protocols are served).
TYPES = {"vnc": ("novnc",), "serial": ("serial",)}
KNOWN_PROTOCOLS = ("vnc", "spice", "rdp", "serial", "mks")


@dataclass(frozen=True)
class Target:
    """Where a console connection goes: a socket on this node, or the node running the guest."""

    claims: Claims
    socket_path: str | None = None  # a unix socket here
    peer_url: str | None = None  # the guest's node's peer listener (https://address:port)


class ConsoleService:
    def __init__(self, compute: ComputeService) -> None:
        self.compute = compute
        self.host = compute.host
        self.started_at = time.time()
        self._key: bytes | None = None
        self._spent: dict[str, int] = {}  # nonce → when its token expires (then it is forgotten)

    def key(self) -> bytes:
        if self._key is None:
            ca_key = Path(self.compute.instances_dir).parent / "pki" / "ca.key"
            try:
                self._key = tokens.derive_key(ca_key.read_bytes())
            except OSError as exc:
                raise Unavailable(f"Consoles need the cluster CA's key ({ca_key}): {exc.strerror}") from exc
        return self._key

    # --- issuing ------------------------------------------------------------------------------
    def check_request(self, protocol: Any, console_type: Any) -> None:
        """Nova's 400s for a protocol and type it would not serve here."""
        if protocol not in KNOWN_PROTOCOLS:
            raise BadRequest(f"Invalid input for field 'protocol': {str(protocol)[:40]!r} is not one of "
                             f"{', '.join(KNOWN_PROTOCOLS)}.")
        if protocol not in PROTOCOLS:
            raise BadRequest(f"Unavailable console type {protocol}.")
        if console_type not in TYPES[protocol]:
            raise BadRequest(f"Invalid console type {str(console_type)[:40]} for protocol {protocol} "
                             f"(use {' or '.join(TYPES[protocol])}).")

    def issue(self, server: dict[str, Any], protocol: str, node_url: str) -> str:
        """A console URL on ``node_url`` (the node that was asked) with a new one-time token."""
        if server["status"] != "ACTIVE" or not server.get("host"):
            raise Conflict(f"Instance {server['id']} is not ready (it is {server['status']}).")
        now = int(time.time())
        claims = Claims(server["id"], protocol, server["host"], now, now + TOKEN_TTL, secrets.token_hex(16))
        token = tokens.seal(self.key(), claims)
        if protocol == "vnc":
            return f"{node_url}/ui/console/vnc.html?path={quote('console/vnc?token=' + token, safe='')}"
        socket_base = node_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{socket_base}/console/serial?token={token}"

    def claims(self, token: str) -> Claims:
        """The claims of a live token (Unauthorized for an unknown, changed or expired one)."""
        try:
            claims = tokens.open_token(self.key(), token, time.time())
        except BadToken as exc:
            raise Unauthorized(f"The console token is not valid: {exc}.") from None
        if claims.host == self.host and claims.nonce in self._spent:
            raise Unauthorized("The console token is not valid: it was used already.")
        return claims

    # --- spending -----------------------------------------------------------------------------
    async def target(self, token: str, protocol: str) -> Target:
        """Where a console connection with ``token`` goes; on the guest's node this spends the token.

        Every refusal comes before the token is spent, but for the guest's state, which is read after
        (a token is spent by any attempt that got that far)."""
        claims = self.claims(token)
        if claims.protocol != protocol:
            raise Unauthorized(f"The console token is not valid for a {protocol} console.")
        if claims.host != self.host:
            node = await self.compute.cluster.node_of_host(claims.host)
            return Target(claims, peer_url=node["peer_url"])
        if claims.issued_at < int(self.started_at):
            # Issued before this node started: whether it was used then is forgotten.
            raise Unauthorized("The console token is not valid: it was issued before this node restarted.")
        self._spend(claims)
        try:
            server = await self.compute.get(claims.server_id)
        except NotFound:
            raise NotFound(f"Instance {claims.server_id} could not be found.") from None
        if server["host"] != self.host or server["status"] != "ACTIVE":
            raise Conflict(f"Instance {claims.server_id} is not ready (it is {server['status']}).")
        try:
            sockets = await self.compute.driver.console_sockets(claims.server_id)
        except NotFound:
            sockets = {}
        if protocol not in sockets:
            raise Conflict(f"Instance {claims.server_id} has no {protocol} console (a guest defined before "
                           "consoles gets one when it is defined again: rebuild, resize, shelve and unshelve).")
        return Target(claims, socket_path=sockets[protocol])

    def _spend(self, claims: Claims) -> None:
        now = time.time()
        for nonce in [n for n, expires in self._spent.items() if expires <= now]:
            del self._spent[nonce]
        if claims.nonce in self._spent:
            raise Unauthorized("The console token is not valid: it was used already.")
        self._spent[claims.nonce] = claims.expires_at


_services: "weakref.WeakKeyDictionary[Any, ConsoleService]" = weakref.WeakKeyDictionary()


def consoles_of(compute: ComputeService) -> ConsoleService:
    """The console service of a compute service (one per node, made at the first use)."""
    service = _services.get(compute)
    if service is None:
        service = _services[compute] = ConsoleService(compute)
    return service

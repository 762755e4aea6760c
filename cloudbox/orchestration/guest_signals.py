"""A guest's signal through the metadata service: the one path of the API a tenant network reaches.

Guests cannot reach the node's API (the network guards keep them off host addresses), but every
tenant network reaches http://169.254.169.254, served inside its DHCP namespace by the node's
metadata listeners. So a WaitConditionHandle hands its guest the signed URL on that address
(``resources/wait.py``), and the listener passes a POST of it here, in-process:

    POST /orchestration/v1/signal/{stack_id}/{handle_id}?signature=HMAC   body: JSON object or empty

The same path with the same signature is served by the API itself (``api.py``'s public route), so
a URL works on either base. Nothing else of the API is reachable this way: any other path under
/orchestration is 404 here, GET is the metadata service's own (404), and a POST elsewhere stays
the listener's 405. The signature decides, as on the API; the body is bounded more tightly than
the listener's, because each signal becomes a command in the replicated log.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any, Protocol

from cloudbox.api.errors import render
from cloudbox.errors import BadRequest, CloudboxError

log = logging.getLogger("cloudbox.orchestration")

PREFIX = "/orchestration/"
SIGNAL_PREFIX = "/orchestration/v1/signal/"
BODY_MAX = 16384  # bytes: a status, a reason and some data (a host key, an address), not a payload

Answer = tuple[int, str, bytes]


class Signals(Protocol):
    async def signal_by_url(self, stack_id: str, handle_id: str, signature: str, body: Any) -> None: ...


def _error(exc: CloudboxError) -> Answer:
    body, status = render(exc, "heat")
    return status, "application/json", json.dumps(body).encode()


def parse_body(body: bytes) -> dict[str, Any]:
    """The signal's details: a JSON object, or nothing (an empty POST is a SUCCESS, as Heat's)."""
    if not body.strip():
        return {}
    try:
        details = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("A signal's body must be a JSON object, such as {\"status\": \"SUCCESS\"}.") from None
    if not isinstance(details, dict):
        raise BadRequest("A signal's body must be a JSON object, such as {\"status\": \"SUCCESS\"}.")
    return details


async def answer(service: Signals, network_id: str, source_ip: str, path: str, query: str,
                 body: bytes) -> Answer | None:
    """The metadata listener's ``signal`` hook: the answer to a guest's POST of ``path``, or None
    when the path is not under /orchestration (the listener's own answer then)."""
    if not path.startswith(PREFIX):
        return None
    parts = path[len(SIGNAL_PREFIX):].split("/") if path.startswith(SIGNAL_PREFIX) else []
    if len(parts) != 2 or not all(parts):
        return 404, "text/plain", b"404 Not Found"
    if len(body) > BODY_MAX:
        return 413, "text/plain", f"A signal's body is at most {BODY_MAX} bytes.\n".encode()
    signature = urllib.parse.parse_qs(query).get("signature", [""])[0]
    try:
        await service.signal_by_url(parts[0], parts[1], signature, parse_body(body))
    except CloudboxError as exc:
        return _error(exc)
    log.info("signal from a guest", extra={"network_id": network_id, "source_ip": source_ip,
                                          "stack_id": parts[0], "handle_id": parts[1]})
    return 200, "text/plain", b""

"""The one place where errors become HTTP bodies, in the shape each OpenStack API uses."""

from __future__ import annotations

import html
from typing import Any

from cloudbox.errors import CloudboxError

# Nova's fault names, by status.
_NOVA_FAULTS = {
    400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
    405: "badMethod", 409: "conflictingRequest", 413: "overLimit", 415: "badMediaType",
    503: "serviceUnavailable",
}
_NEUTRON_TYPES = {
    400: "BadRequest", 401: "NotAuthorized", 403: "PolicyNotAuthorized", 404: "NotFound",
    405: "MethodNotAllowed", 409: "Conflict", 413: "RequestEntityTooLarge", 503: "ServiceUnavailable",
}


MAX_MESSAGE = 400  # characters; past this a message keeps its start and its end


def render(error: CloudboxError, style: str) -> tuple[dict[str, Any] | str, int]:
    status, message = error.status, short_message(error.message)
    if style == "nova":
        return {_NOVA_FAULTS.get(status, "computeFault"): {"code": status, "message": message}}, status
    if style == "swift":  # Swift answers errors as a short HTML page, not JSON
        return f"<html><h1>{error.title}</h1><p>{html.escape(message)}</p></html>", status
    if style == "neutron":
        kind = _NEUTRON_TYPES.get(status, type(error).__name__)
        return {"NeutronError": {"type": kind, "message": message, "detail": ""}}, status
    # Keystone's shape, which Glance, Cinder, Heat and cloudbox's own API share.
    return {"error": {"code": status, "title": error.title, "message": message}}, status


def short_message(message: str) -> str:
    """A message cut in its middle when long: it names the field first and the fault last, and a
    value a client sent in between (whole, where a message forgot ``errors.quote``) is cut."""
    if len(message) <= MAX_MESSAGE:
        return message
    return message[: MAX_MESSAGE - 100] + " ... " + message[-95:]

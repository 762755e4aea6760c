"""What each route answers, for the OpenAPI document: success bodies by status, error bodies by API style.

The route tables say how a request looks; this package says how the answers look, keyed by
(method, full path), one module per API. ``tests/test_openapi_doc.py`` checks that every
route has an entry here, and ``tests/test_fuzz.py`` that the node answers as written.
"""

from __future__ import annotations

from typing import Any

from cloudbox.api import errors as api_errors
from cloudbox.api.responses import cloudbox, compute, console, events, identity, image, network, object, volume
from cloudbox.api.responses import orchestration, orchestration_plans
from cloudbox.api.responses.shapes import INT, STR, Doc, Raw, Schema, obj
from cloudbox.errors import CloudboxError

DOCS: dict[tuple[str, str], Doc] = {
    **identity.docs(), **compute.docs(), **image.docs(), **network.docs(), **cloudbox.docs(),
    **volume.docs(), **object.docs(), **events.docs(), **console.docs(),
    **orchestration.docs(), **orchestration_plans.docs(),
}


def doc_for(method: str, path: str) -> Doc | None:
    """The entry of a route; ``<prefix>/`` shares the entry of ``<prefix>``."""
    found = DOCS.get((method, path))
    if found is None and len(path) > 1 and path.endswith("/"):
        found = DOCS.get((method, path.rstrip("/")))
    return found


def error_schema(style: str, status: int) -> Schema:
    """The error body of an API style at a status, read off the one renderer (cloudbox.api.errors)."""
    error = type("DocumentedError", (CloudboxError,), {"status": status})("message")
    body, _ = api_errors.render(error, style)
    return _shape_of(body, status)


def _shape_of(value: Any, status: int) -> Schema:
    if isinstance(value, dict):
        return obj({k: (_code(status) if k == "code" else _shape_of(v, status)) for k, v in value.items()})
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return INT
    return STR


def _code(status: int) -> Schema:
    return {"type": "integer", "const": status}


__all__ = ["DOCS", "Doc", "Raw", "doc_for", "error_schema"]

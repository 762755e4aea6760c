"""The OpenAPI 3.1 document of every mounted endpoint, built from the route tables.

Requests come from the route tables (path, query, body schema); answers from
``cloudbox.api.responses`` (success bodies by status) and from the error renderer (the error
body of the route's API style). Error statuses follow from what a route takes:

- 400 when it takes any input (path, query, header or body);
- 401, 403 and 503 unless it is anonymous (reads no token, checks no role, writes nothing);
- 404 when it names something (a path parameter, or ids inside a body);
- 409 when it changes something (POST, PUT, PATCH, DELETE); 413 when it takes a body;
- and the extra statuses its entry lists (415 for media types, 406 for Nova's microversions).

A route without an entry is still documented (its route-table status, no body described);
a test keeps every route described.
"""

from __future__ import annotations

import re
from typing import Any

from cloudbox import __version__
from cloudbox.api.responses import Doc, Raw, doc_for, error_schema
from cloudbox.api.routes import doc_path

_PARAM = re.compile(r"{(\w+)}")

_STATUS_TEXT = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 300: "Multiple Choices",
    400: "Bad request: the body or a parameter is invalid", 401: "No valid token was given",
    403: "The token's roles or scope do not allow this", 404: "No such resource",
    406: "The requested microversion is not supported", 409: "Conflicts with the current state",
    413: "The request body is too large", 415: "The request body's media type is not accepted",
    503: "The service cannot answer now (the state is not writable, a node is down)",
}
_WRITES = ("POST", "PUT", "PATCH", "DELETE")
_FLAG = {"type": "boolean"}  # sent as true/false; the APIs also take 1/0, yes/no
_COUNT = {"type": "integer", "minimum": 0}
_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}  # Nova's columns
_INT64 = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}  # SQLite's integers (sizes, ids)
# The query parameters whose values are not free text, by name (the same in every API that takes them).
_QUERY: dict[str, dict[str, Any]] = {
    "limit": _COUNT, "minRam": _INT32, "minDisk": _INT32, "size_min": _INT64, "size_max": _INT64,
    "sort_dir": {"enum": ["asc", "desc"]}, "interface": {"enum": ["public", "internal", "admin"]},
    "is_public": {"enum": ["true", "false", "none"]},
    "visibility": {"enum": ["public", "private", "shared", "community", "all"]},
    "member_status": {"enum": ["pending", "accepted", "rejected", "all"]},
    **{name: _FLAG for name in ("enabled", "nocatalog", "allow_expired", "effective", "include_names",
                                "include_subtree", "all_projects", "all_tenants", "force", "detailed", "os_hidden",
                                "protected")},
}
# Path parameters that are not free text, by name.
_PATH: dict[str, dict[str, Any]] = {"aggregate_id": _INT64}  # Nova's aggregates have integer ids
_NO_DOC = Doc()
_OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEXT_ERRORS = {"swift": "text/html"}  # API styles whose error bodies are text (cloudbox.api.errors)


def _content(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if isinstance(body, Raw):
        return {"content": {body.media_type: {"schema": {"type": "string", "format": "binary"}}}}
    return {"content": {"application/json": {"schema": body}}}


def _error_statuses(method: str, doc: Doc, *, path_params: bool, has_input: bool, has_body: bool) -> list[int]:
    statuses = set(doc.errors)
    if has_input:
        statuses.add(400)
    if not doc.anonymous:
        statuses.update((401, 403, 503))
    if path_params or has_body:
        statuses.add(404)
    if method in _WRITES:
        statuses.add(409)
    if has_body:
        statuses.add(413)
    return sorted(statuses)


def _operation(
    method: str, path: str, *, operation_id: str, summary: str, style: str, status: int,
    tags: list[str] | None = None, query: tuple[str, ...] = (), body: dict[str, Any] | None = None,
    raw_body: bool = False, token: str = "required", components: dict[str, Any],
) -> dict[str, Any]:
    """One operation; ``token`` is "required", "optional" (a public route that may read one) or "none"."""
    doc = doc_for(method, path) or _NO_DOC
    path_params = _PARAM.findall(path)
    op: dict[str, Any] = {"operationId": operation_id, "summary": summary}
    if tags:
        op["tags"] = tags
    op["parameters"] = (
        [{"name": name, "in": "path", "required": True, "schema": _PATH.get(name, {"type": "string"})}
         for name in path_params]
        + [{"name": name, "in": "query", "required": False, "schema": _QUERY.get(name, {"type": "string"})}
           for name in query]
        + list(doc.headers)
    )
    if token == "required":
        op["security"] = [{"token": []}]
    elif token == "optional" and not doc.anonymous:
        op["security"] = [{"token": []}, {}]
    if body is not None:
        media = doc.request_media or ("application/json",)
        op["requestBody"] = {"required": True, "content": {m: {"schema": body} for m in media}}
    elif raw_body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    responses: dict[str, Any] = {}
    for code, answer in sorted((doc.responses or {status: None}).items()):
        responses[str(code)] = {"description": _STATUS_TEXT.get(code, "Success"), **_content(answer)}
    has_body = body is not None or raw_body
    for code in _error_statuses(method, doc, path_params=bool(path_params), has_body=has_body,
                                has_input=bool(path_params or query or doc.headers or has_body)):
        # A HEAD answer never has a body, errors included.
        error = None if method == "HEAD" else _error_ref(style, code, components)
        content = _content(error) if error is None or style not in _TEXT_ERRORS else {
            "content": {_TEXT_ERRORS[style]: {"schema": error}}}
        responses[str(code)] = {"description": _STATUS_TEXT.get(code, "Error"), **content}
    op["responses"] = responses
    return op


def _error_ref(style: str, status: int, components: dict[str, Any]) -> dict[str, Any]:
    """The error body of an API style at a status, once in components/schemas and referred to."""
    name = f"{style}_error_{status}"
    components.setdefault(name, error_schema(style, status))
    return {"$ref": f"#/components/schemas/{name}"}


def add_plain_routes(doc: dict[str, Any], routes: list[tuple[str, str, str]]) -> None:
    """Add routes mounted outside the route tables (version lists, web UI) as (path, method, summary)."""
    paths = doc["paths"]
    for path, method, summary in routes:
        paths.setdefault(path, {})
        if method.lower() in paths[path]:
            continue
        paths[path][method.lower()] = _operation(
            method, path, operation_id=f"plain.{method.lower()}:{path}", summary=summary, style="cloudbox",
            status=200, token="none", components=doc["components"]["schemas"],
        )
    doc["paths"] = dict(sorted(paths.items()))


def build_openapi(specs: list[Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {}
    for spec in specs:
        used: set[str] = set()
        for route in spec.routes:
            if route.method.lower() not in _OPENAPI_METHODS:  # Swift's COPY: OpenAPI has no such operation
                continue
            full = doc_path(spec.prefix + route.path)
            operation_id = f"{spec.name}.{route.handler.__name__}.{route.method.lower()}"
            if operation_id in used:  # one handler serving several resources (the network API's lists)
                operation_id += ":" + route.path
            used.add(operation_id)
            op = _operation(
                route.method, full, operation_id=operation_id, style=spec.style, status=route.status,
                summary=route.summary or route.handler.__doc__ or route.handler.__name__.replace("_", " "),
                tags=[spec.name], query=route.query, body=route.body, raw_body=route.raw_body,
                token="optional" if route.access == "public" else "required", components=components,
            )
            paths.setdefault(full, {})[route.method.lower()] = op
            if not route.path:  # the service root is also served at "<prefix>/"
                paths.setdefault(full + "/", {})[route.method.lower()] = {**op, "operationId": op["operationId"] + ".slash"}
    paths["/openapi.json"] = {
        "get": _operation("GET", "/openapi.json", operation_id="openapi.get", summary="This document",
                          style="cloudbox", status=200, token="none", components=components),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "cloudbox", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
        },
    }

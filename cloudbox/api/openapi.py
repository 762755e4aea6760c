"""The OpenAPI 3.1 document of every mounted endpoint, built from the route tables."""

from __future__ import annotations

import re
from typing import Any

from cloudbox import __version__

_PARAM = re.compile(r"{(\w+)}")

_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 300: "Multiple Choices"}
_ERRORS = {
    "400": {"description": "Bad request: the body or a parameter is invalid"},
    "401": {"description": "No valid token was given"},
    "403": {"description": "The token's roles or scope do not allow this"},
    "404": {"description": "No such resource"},
    "409": {"description": "Conflicts with the current state"},
    "413": {"description": "The request body is too large"},
}


def add_plain_routes(doc: dict[str, Any], routes: list[tuple[str, str, str]]) -> None:
    """Add routes mounted outside the route tables (version lists, web UI) as (path, method, summary)."""
    paths = doc["paths"]
    for path, method, summary in routes:
        paths.setdefault(path, {}).setdefault(method.lower(), {
            "operationId": f"plain.{method.lower()}:{path}",
            "summary": summary,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _PARAM.findall(path)
            ],
            "responses": {"default": {"description": "See the summary"}},
        })
    doc["paths"] = dict(sorted(paths.items()))


def build_openapi(specs: list[Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        used: set[str] = set()
        for route in spec.routes:
            full = spec.prefix + route.path
            operation_id = f"{spec.name}.{route.handler.__name__}.{route.method.lower()}"
            if operation_id in used:  # one handler serving several resources (the network API's lists)
                operation_id += ":" + route.path
            used.add(operation_id)
            op: dict[str, Any] = {
                "operationId": operation_id,
                "summary": route.summary or route.handler.__doc__ or route.handler.__name__.replace("_", " "),
                "tags": [spec.name],
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in _PARAM.findall(route.path)
                ]
                + [
                    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                    for name in route.query
                ],
                "responses": {
                    str(route.status): {"description": _STATUS_TEXT.get(route.status, "Success")},
                    **_ERRORS,
                },
            }
            if route.access != "public":
                op["security"] = [{"token": []}]
            if route.body is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": route.body}},
                }
            elif route.raw_body:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                }
            paths.setdefault(full, {})[route.method.lower()] = op
            if not route.path:  # the service root is also served at "<prefix>/"
                paths.setdefault(full + "/", {})[route.method.lower()] = {**op, "operationId": op["operationId"] + ".slash"}
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi.get",
            "summary": "This document",
            "responses": {"200": {"description": "OK"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "cloudbox", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}
        },
    }

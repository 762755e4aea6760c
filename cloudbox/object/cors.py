"""Swift's CORS on containers: ``X-Container-Meta-Access-Control-Allow-Origin`` (origins separated
by spaces, or ``*``), ``-Max-Age`` and ``-Expose-Headers``. A browser's preflight (OPTIONS) is
answered from them, and the answers to requests that carry an ``Origin`` the container allows
say so. Pure rules here; ``with_cors`` wraps the container and object routes."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from quart import Response

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import NotFound, Unauthorized

PREFIX = "x-container-meta-access-control-"
METHODS = "HEAD, GET, PUT, POST, COPY, OPTIONS, DELETE"
EXPOSED = ("cache-control", "content-language", "content-type", "expires", "last-modified", "pragma", "etag",
           "x-timestamp", "x-trans-id", "x-openstack-request-id")


def allows(metadata: Mapping[str, str], origin: str) -> bool:
    origins = metadata.get(PREFIX + "allow-origin", "").split()
    return bool(origin) and ("*" in origins or origin in origins)


def answer_headers(metadata: Mapping[str, str], origin: str, headers: Mapping[str, str]) -> dict[str, str]:
    """What an answer to a request from ``origin`` adds (nothing when the container does not allow it)."""
    if not allows(metadata, origin):
        return {}
    exposed = [*EXPOSED, *(k.lower() for k in headers if k.lower().startswith(("x-object-meta-",
                                                                               "x-container-meta-")))]
    exposed += metadata.get(PREFIX + "expose-headers", "").split()
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": ", ".join(exposed)}


def preflight(metadata: Mapping[str, str], origin: str, method: str, requested: str) -> dict[str, str]:
    if not allows(metadata, origin) or method.upper() not in METHODS.split(", "):
        raise Unauthorized("The origin is not allowed by the container's CORS settings.")
    headers = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": METHODS}
    if requested:
        headers["Access-Control-Allow-Headers"] = requested
    if metadata.get(PREFIX + "max-age", "").isdigit():
        headers["Access-Control-Max-Age"] = metadata[PREFIX + "max-age"]
    return headers


def with_cors(svc: Any, routes: list[Route]) -> list[Route]:
    """The routes, each answer to a request with an allowed Origin carrying the CORS headers; and
    the OPTIONS preflight of every path among them."""

    async def container_metadata(account: str, container: str) -> dict[str, str]:
        try:
            return (await svc.head_container(account, container)).metadata
        except NotFound:
            return {}

    def wrap(route: Route) -> Route:
        async def handler(call: Call, **params: str) -> Any:
            result = await route.handler(call, **params)
            origin = call.request.headers.get("Origin")
            if origin and "container" in params:
                metadata = await container_metadata(params["account"], params["container"])
                target = result if isinstance(result, (Reply, Response)) else Reply(result)
                extra = answer_headers(metadata, origin, dict(target.headers))
                target.headers.update(extra)
                return target
            return result

        handler.__name__ = route.handler.__name__
        handler.__doc__ = route.handler.__doc__
        return dataclasses.replace(route, handler=handler)

    async def options(call: Call, account: str, container: str, **rest: str) -> Reply:
        origin = call.request.headers.get("Origin")
        if not origin:  # not a browser's preflight: which methods the path has
            return Reply(None, 200, {"Allow": METHODS, "Content-Length": "0"})
        metadata = await container_metadata(account, container)
        return Reply(None, 200, {**preflight(metadata, origin, call.request.headers.get(
            "Access-Control-Request-Method", ""), call.request.headers.get("Access-Control-Request-Headers", "")),
            "Content-Length": "0"})

    paths = dict.fromkeys(r.path for r in routes if "{container}" in r.path)
    return [wrap(r) for r in routes] + [
        Route("OPTIONS", path, options, access="public", summary="CORS preflight (the container's settings)")
        for path in paths]

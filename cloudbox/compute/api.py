"""Nova v2.1 at /compute/v2.1: microversions, and the one ApiSpec joining every route table.

Each resource's routes are a table in its own module, beside module-level handlers that
parse, authorize, call one method of the compute service and render:

| module            | routes                                                            |
|-------------------|-------------------------------------------------------------------|
| api_servers.py    | servers: create, list, show, update, delete, metadata, tags       |
| api_actions.py    | POST /servers/{id}/action: power, reboot, rebuild, createImage... |
| api_resources.py  | flavors, key pairs, server groups                                 |
| api_hosts.py      | limits, quotas, usage, zones, hypervisors, services               |
| api_aggregates.py | host aggregates                                                   |
| api_proxies.py    | ips, extensions, Nova's security group proxies (network service)  |
| api_floating.py   | Nova's floating IP proxies (network service)                      |
| api_images.py     | Nova's image proxy and image metadata (image service)             |
| api_legacy.py     | os-hosts, os-networks, os-tenant-networks (read-only)             |
| api_records.py    | instance actions, server password, diagnostics, usage audit log   |
| api_volumes.py    | a server's volumes: os-volume_attachments                         |
| api_volume_proxy.py | Nova's os-volumes and os-snapshots proxies (to 2.35)            |
| api_consoles.py   | remote consoles and console auth tokens (cloudbox.console)        |

A handler is ``async def handler(svc, call, version, **path_params)``; ``route`` wraps it
with Nova's microversion negotiation and answer headers.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Mapping

from cloudbox.api import microversions
from cloudbox.api.routes import FORWARDED_BY, ApiSpec, Call, Reply, Route
from cloudbox.compute import views
from cloudbox.compute.service import ComputeService
from cloudbox.errors import Forbidden

Version = tuple[int, int]
Handler = Callable[..., Awaitable[Any]]  # (svc, call, version, **path params) -> Reply or JSON body
VERSION_HEADERS = ("OpenStack-API-Version", "X-OpenStack-Nova-API-Version")


def requested_version(headers: Mapping[str, str]) -> Version:
    named = microversions.from_header(headers, ("compute",))
    return views.parse_version(named if named is not None else headers.get("X-OpenStack-Nova-API-Version"))


def route(svc: ComputeService, method: str, path: str, handler: Handler, **options: Any) -> Route:
    """A route of the compute API: negotiate the microversion, call ``handler(svc, call, version,
    **path_params)``, and say in the answer which version answered."""

    async def endpoint(call: Call, **params: str) -> Reply:
        version = requested_version(call.request.headers)
        result = await handler(svc, call, version, **params)
        reply = result if isinstance(result, Reply) else Reply(result)
        text = f"{version[0]}.{version[1]}"
        reply.headers.update({
            "OpenStack-API-Version": f"compute {text}", "X-OpenStack-Nova-API-Version": text,
            "Vary": ", ".join(VERSION_HEADERS), "x-compute-request-id": call.request_id,
        })
        return reply

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return Route(method, path, endpoint, **options)


def project_of(call: Call) -> str:
    if not call.auth.project_id:
        raise Forbidden("The compute API needs a project-scoped token.")
    return call.auth.project_id


async def forwarded(svc: ComputeService, call: Call, server: dict[str, Any], *,
                    unless_down: bool = False) -> Reply | None:
    """A call on a server of another node is answered by that node (None: answer it here).

    With ``unless_down``, a server whose host is down is answered here too (a delete).
    """
    host = server["host"]
    if host in (None, svc.host) or call.request.headers.get(FORWARDED_BY):
        return None
    if unless_down and await svc.host_is_down(host):
        return None
    status, body, headers = await svc.cluster.forward(host, call.request.method, call.request.full_path,
                                                      call.request.headers, call.body)
    if headers.get("content-type", "").startswith("application/json") and body:
        return Reply(json.loads(body), status, {"Location": headers["location"]} if "location" in headers else {})
    return Reply(body or None, status)


async def show_version(svc: ComputeService, call: Call, version: Version) -> Any:
    return {"version": views.version_document(call.base)}


def build(svc: ComputeService) -> ApiSpec:
    from cloudbox.compute import (api_actions, api_aggregates, api_consoles, api_events, api_floating, api_hosts,
                                  api_images, api_legacy, api_proxies, api_records, api_resources, api_servers,
                                  api_volume_proxy, api_volumes)

    routes = [
        route(svc, "GET", "", show_version, access="public", summary="Compute v2.1 version document"),
        *api_servers.routes(svc),
        *api_actions.routes(svc),
        *api_resources.routes(svc),
        *api_hosts.routes(svc),
        *api_aggregates.routes(svc),
        *api_proxies.routes(svc),
        *api_floating.routes(svc),
        *api_images.routes(svc),
        *api_legacy.routes(svc),
        *api_records.routes(svc),
        *api_events.routes(svc),
        *api_volumes.routes(svc),
        *api_volume_proxy.routes(svc),
        *api_consoles.routes(svc),
    ]
    return ApiSpec("compute", "/compute/v2.1", "nova", routes, catalog=("compute", "nova"))

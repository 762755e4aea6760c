"""Neutron v2.0 routes of routers (interfaces, extra routes) and floating IPs."""

from __future__ import annotations

from typing import Any, Callable

from cloudbox.api.routes import Call, Route
from cloudbox.network import models
from cloudbox.network.service import NetworkService

V2 = "/v2.0"


def routes(svc: NetworkService, crud: Callable[..., list[Route]]) -> list[Route]:
    async def add_interface(call: Call, id: str) -> Any:
        return await svc.add_interface(call.auth, id, call.body)

    async def remove_interface(call: Call, id: str) -> Any:
        return await svc.remove_interface(call.auth, id, call.body)

    async def add_routes(call: Call, id: str) -> Any:
        return {"router": await svc.edit_routes(call.auth, id, call.body["router"]["routes"], add=True)}

    async def remove_routes(call: Call, id: str) -> Any:
        return {"router": await svc.edit_routes(call.auth, id, call.body["router"]["routes"], add=False)}

    router = f"{V2}/routers/{{id}}"
    return [
        *crud("routers", svc.create_router, svc.update_router, svc.delete_router, models.CREATE_ROUTER,
              models.UPDATE_ROUTER),
        Route("PUT", router + "/add_router_interface", add_interface, body=models.ROUTER_INTERFACE,
              summary="Attach a subnet or a port to a router"),
        Route("PUT", router + "/remove_router_interface", remove_interface, body=models.ROUTER_INTERFACE,
              summary="Detach a subnet or a port from a router"),
        Route("PUT", router + "/add_extraroutes", add_routes, body=models.EXTRA_ROUTES,
              summary="Add static routes to a router (atomically)"),
        Route("PUT", router + "/remove_extraroutes", remove_routes, body=models.EXTRA_ROUTES,
              summary="Remove static routes from a router (atomically)"),
        *crud("floatingips", svc.create_floatingip, svc.update_floatingip, svc.delete_floatingip,
              models.CREATE_FLOATINGIP, models.UPDATE_FLOATINGIP),
    ]

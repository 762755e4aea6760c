"""Handlers made alike for every entity that is shown and deleted by id, whichever part of the
identity service (``resources`` or ``extensions``) serves it."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from cloudbox.api.routes import Call, Reply

Handler = Callable[..., Awaitable[Any]]  # async def handler(svc, call, **path_params)
Render = Callable[[dict[str, Any], str], dict[str, Any]]


def shower(entity: str, render: Render, part: str = "resources") -> Handler:
    async def handler(svc: Any, call: Call, **params: str) -> Any:
        row = await getattr(svc, part).show(call.auth, entity, params[f"{entity}_id"])
        return {entity: render(row, call.base)}

    handler.__name__ = f"get_{entity}"
    handler.__doc__ = f"Show one {entity.replace('_', ' ')}"
    return handler


def deleter(entity: str, part: str = "resources") -> Handler:
    async def handler(svc: Any, call: Call, **params: str) -> Reply:
        await getattr(svc, part).delete(call.auth, entity, params[f"{entity}_id"])
        return Reply(None, 204)

    handler.__name__ = f"delete_{entity}"
    handler.__doc__ = f"Delete one {entity.replace('_', ' ')}"
    return handler

"""Glance's interoperable image import at /image/v2: discovery (/info/import, /info/stores),
staging, the import call, and the tasks that report on imports."""

from __future__ import annotations

from typing import Any

from cloudbox.api import streaming
from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import CloudboxError, UnsupportedMediaType
from cloudbox.image import core, imports, models
from cloudbox.image.service_imports import ImportService

# A refused stage is read on (and dropped) up to this much, so that the client sees the refusal.
DRAIN_LIMIT, DRAIN_SECONDS = 64 << 20, 10.0


def declared_size(call: Call) -> int | None:
    """The upload's size as the client announced it (openstacksdk sends X-OpenStack-Image-Size)."""
    for raw in (call.request.headers.get("X-OpenStack-Image-Size"), call.request.content_length):
        try:
            if raw is not None and int(raw) >= 0:
                return int(raw)
        except ValueError:
            continue
    return None


async def receive_data(call: Call, accept: Any) -> None:
    """Hand the streamed body to ``accept(chunks, size)``; a refused body is drained so the
    client reads the refusal, not a reset."""
    mimetype = call.request.mimetype
    try:
        if mimetype and mimetype != "application/octet-stream":
            raise UnsupportedMediaType(f"Image data is sent as application/octet-stream, not {mimetype}.")
        await accept(call.request.body, declared_size(call))
    except CloudboxError:
        await streaming.drain(call.request.body, DRAIN_LIMIT, DRAIN_SECONDS)
        raise


def routes(svc: ImportService) -> list[Route]:
    async def info_import(call: Call) -> Any:
        return imports.info_import()

    async def info_stores(call: Call) -> Any:
        return imports.info_stores()

    async def stage(call: Call, image_id: str) -> Reply:
        await receive_data(call, lambda chunks, size: svc.stage(call.auth, image_id, chunks, size))
        return Reply(None, 204)

    async def import_image(call: Call, image_id: str) -> Reply:
        await svc.start(call.auth, image_id, call.body, call.request_id)
        return Reply(None, 202)

    async def image_tasks(call: Call, image_id: str) -> Any:
        return {"tasks": [imports.render_task(t) for t in await svc.image_tasks(call.auth, image_id)]}

    async def list_tasks(call: Call) -> Any:
        limit = core.parse_limit(call.query.get("limit"), call.max_limit)
        rows = await svc.list_tasks(call.auth, call.query, limit)
        more = len(rows) > limit
        rows = rows[:limit]
        links = core.list_links(call.query, rows[-1]["id"] if more and rows else None)
        links = {k: v.replace("/v2/images", "/v2/tasks", 1) for k, v in links.items() if k != "schema"}
        return {"tasks": [imports.render_task(t, whole=False) for t in rows], **links, "schema": "/v2/schemas/tasks"}

    async def show_task(call: Call, task_id: str) -> Any:
        return imports.render_task(await svc.get_task(call.auth, task_id))

    async def create_task(call: Call) -> Reply:
        await svc.create_task(call.auth, call.body)  # refuses: no task of its kinds can run here
        return Reply(None, 201)

    image = "/images/{image_id}"
    return [
        Route("GET", "/info/import", info_import, summary="Import methods this cloud offers"),
        Route("GET", "/info/stores", info_stores, summary="The cloud's image stores"),
        Route("PUT", image + "/stage", stage, summary="Stage image data for a glance-direct import (streamed)",
              raw_body=True, status=204),
        Route("POST", image + "/import", import_image, summary="Import staged data, or copy an image to stores",
              body=models.IMPORT, status=202),
        Route("GET", image + "/tasks", image_tasks, summary="The import tasks of an image"),
        Route("GET", "/tasks", list_tasks, summary="List tasks",
              query=("limit", "marker", "sort_key", "sort_dir", "type", "status")),
        Route("POST", "/tasks", create_task, summary="Create a task (import from a URL: refused here)",
              body=models.CREATE_TASK, status=201),
        Route("GET", "/tasks/{task_id}", show_task, summary="Show a task"),
    ]

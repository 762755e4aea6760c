"""Interoperable image import (stage, then import) and the tasks that report on it.

The node that staged an image's data keeps it (as the temp file of the stage's upload) and runs
its glance-direct import when the StartImport command commits, whichever node took the request;
copy-image has no data to move (one store) and finishes on the node that took it. The state
machine is in imports.py.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any, AsyncIterable, Mapping

import trio

from cloudbox import clock
from cloudbox.errors import BadRequest, CloudboxError, Conflict, NotFound
from cloudbox.identity.core import AuthContext, require
from cloudbox.image import apply_imports as store
from cloudbox.image import commands as c
from cloudbox.image import imports as i

if TYPE_CHECKING:
    from cloudbox.image.service import ImageService

log = logging.getLogger("cloudbox.image")


class ImportService:
    def __init__(self, images: ImageService) -> None:
        self.images = images
        self.running: set[str] = set()  # ids of the tasks running on this node
        images.engine.add_listener(self._on_commit)

    def _stamps(self) -> tuple[str, str]:
        """Now, and when a task that ends now expires."""
        now = self.images.clock()
        return clock.iso(now), clock.iso(now + i.TASK_TTL_SECONDS)

    # --- staging ----------------------------------------------------------------------------
    async def stage(self, ctx: AuthContext, image_id: str, chunks: AsyncIterable[bytes],
                    expected_size: int | None = None) -> None:
        """queued → uploading: keep the data on this node until the image is imported."""
        images = self.images
        image = await images._writable(ctx, image_id, "stage_image")
        if image["status"] != "queued":
            raise Conflict(f"Image status transition from {image['status']} to uploading is not allowed: data can "
                           "be staged only for a queued image.")
        if expected_size is not None:
            await trio.to_thread.run_sync(images.files.check_room, expected_size)
        upload_id = uuid.uuid4().hex
        images._uploads[upload_id] = image_id  # before the temp file exists (see reconcile)
        try:
            await images.propose(c.BeginStage(image_id, upload_id, images.node_id, images.now_iso()))
            try:
                writer = await images.fill(image_id, upload_id, images.receiver(chunks))
                await trio.to_thread.run_sync(writer.finish)  # flushed to disk before it counts as staged
                await images.propose(c.FinishStage(image_id, upload_id, images.now_iso()))
            except BaseException:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(images.files.remove, images.files.temp_path(image_id, upload_id))
                    try:
                        await images.propose(c.AbortUpload(image_id, upload_id, images.now_iso()))
                    except CloudboxError:
                        pass  # deleted meanwhile
                raise
        finally:
            del images._uploads[upload_id]

    # --- import -------------------------------------------------------------------------------
    async def start(self, ctx: AuthContext, image_id: str, body: Mapping[str, Any], request_id: str) -> None:
        """Accept an import (202): the task runs in the background (see _on_commit)."""
        method, wanted = i.import_request(body)
        if method == "copy-image":
            await self.images.get(ctx, image_id)  # an image the caller cannot see is not found
            require(ctx.is_cloud_admin, "copy_image")
        image = await self.images._writable(ctx, image_id, "import_image")
        task = i.task_row(id=str(uuid.uuid4()), image_id=image_id, body=body,
                          stores=i.import_targets(method, wanted, image), ctx=ctx, request_id=request_id,
                          at=self.images.now_iso())
        await self.images.propose(c.StartImport(task, method, tuple(task["input"]["backend"]), task["created_at"]))

    def _on_commit(self, cmd: Any, result: Any) -> None:
        if not isinstance(cmd, c.StartImport) or self.images.nursery is None:
            return
        runs_here = (result["store_node"] == self.images.node_id if cmd.method == "glance-direct"
                     else self.images.engine.from_here)
        if runs_here:
            self.running.add(cmd.task["id"])
            self.images.spawn(self.run, cmd.task["id"], cmd.method, result)

    async def run(self, task_id: str, method: str, image: dict[str, Any]) -> None:
        """Carry out one import task on this node, and say how it ended."""
        images = self.images
        try:
            await images.propose(c.ProcessTask(task_id, images.now_iso()))
            if method == "copy-image":  # one store, which holds every active image already
                now, expires = self._stamps()
                await images.propose(c.FinishImport(image["id"], task_id, None, None, None, None, None, now, expires))
                return
            staged = images.files.temp_path(image["id"], image["upload_id"])
            upload_id = uuid.uuid4().hex
            images._uploads[upload_id] = image["id"]
            try:
                measured, final = await images.ingest(image["id"], upload_id, image["disk_format"], None, staged)
            finally:
                del images._uploads[upload_id]
            now, expires = self._stamps()
            await images.settle(final, c.FinishImport(image["id"], task_id, **measured, at=now, expires_at=expires))
            log.info("image imported", extra={"image_id": image["id"], "task_id": task_id})
        except BaseException as exc:
            message = exc.message if isinstance(exc, CloudboxError) else "The import failed on the node (see its log)."
            with trio.CancelScope(shield=True):
                if method == "glance-direct":  # the staged data goes with the failed import
                    await trio.to_thread.run_sync(images.files.remove,
                                                  images.files.temp_path(image["id"], image["upload_id"]))
                await self.fail(image["id"], task_id, message)
            if not isinstance(exc, CloudboxError):
                raise
            log.info("image import refused", extra={"image_id": image["id"], "reason": message})
        finally:
            self.running.discard(task_id)

    async def fail(self, image_id: str, task_id: str, message: str) -> None:
        now, expires = self._stamps()
        try:
            await self.images.propose(c.FailImport(image_id, task_id, message, now, expires))
        except CloudboxError:
            pass  # the task ended meanwhile

    # --- tasks ----------------------------------------------------------------------------------
    async def image_tasks(self, ctx: AuthContext, image_id: str) -> list[dict[str, Any]]:
        image = await self.images.get(ctx, image_id)
        # Tasks name users and requests: the image's project (and cloud readers) see them, not its members.
        require(ctx.is_cloud_reader or (image["owner"] is not None and ctx.can_read_project(image["owner"])),
                "get_image_tasks")
        return await self.images.read(store.image_tasks, image_id)

    async def get_task(self, ctx: AuthContext, task_id: str) -> dict[str, Any]:
        task = await self.images.read(store.get_task, task_id)
        if task is None or not (ctx.is_cloud_reader or (task["owner"] and ctx.can_read_project(task["owner"]))):
            raise NotFound(f"Task with the given ID {task_id} was not found.")
        return task

    async def list_tasks(self, ctx: AuthContext, query: Any, limit: int) -> list[dict[str, Any]]:
        filters = {}
        for name, allowed in (("type", ("import", i.TASK_TYPE)), ("status", i.TASK_STATUSES)):
            value = query.get(name)
            if value is not None:
                if value not in allowed:
                    raise BadRequest(f"Invalid {name} filter {value!r}; use one of {', '.join(allowed)}.")
                filters[name] = value
        key, direction = query.get("sort_key") or "created_at", query.get("sort_dir") or "desc"
        if key not in i.TASK_SORT_KEYS or direction not in ("asc", "desc"):
            raise BadRequest(f"Sort tasks by one of {', '.join(i.TASK_SORT_KEYS)}, asc or desc.")
        owner = ctx.project_id if ctx.project_id and ctx.can_read_project(ctx.project_id) else None
        return await self.images.read(store.list_tasks, owner, ctx.is_cloud_reader, filters, (key, direction),
                                      query.get("marker") or None, limit)

    async def create_task(self, ctx: AuthContext, body: Mapping[str, Any]) -> None:
        """Glance's older task API: an "import" task fetches an image from a URL. The cloud's nodes
        reach no outside network, so it is refused, as web-download is."""
        require(ctx.is_cloud_admin, "tasks_api_access")
        if body["type"] != "import":
            raise BadRequest(f"Invalid type value: {body['type']}; the task API makes import tasks only.")
        source = body["input"].get("import_from")
        if not isinstance(source, str) or not source:
            raise BadRequest("An import task needs input.import_from, the URL of the image data.")
        raise BadRequest(f"Importing from {source[:200]} is not enabled on this cloud: its nodes do not reach "
                         "outside networks. Upload the data (PUT /v2/images/{id}/file), or stage it and "
                         "import it with glance-direct.")


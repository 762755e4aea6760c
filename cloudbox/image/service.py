"""The image service: images and their data, and the public async methods other services call.

Compute uses ``image_path`` (the data of an image a caller may boot) and
``create_image_from_file`` (server snapshots).  ``run`` reconciles the image
store with the database at start and then every few minutes.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterable, Awaitable, BinaryIO, Callable, Mapping

import trio

from cloudbox import clock, guard
from cloudbox.errors import BadRequest, CloudboxError, Conflict, Forbidden, NotFound, Unavailable
from cloudbox.identity.core import require
from cloudbox.image import commands as c
from cloudbox.image import core, disk, store
from cloudbox.image.service_imports import ImportService
from cloudbox.image.service_metadefs import MetadefService
from cloudbox.state.engine import StateEngine

log = logging.getLogger("cloudbox.image")
RECONCILE_INTERVAL = 600
WRITE_CHUNK = 1 << 20  # bytes gathered from the request before one write in a worker thread


class ImageService:
    def __init__(self, engine: StateEngine, settings: Any, root: Path, node_id: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.settings = settings
        self.files = disk.ImageFiles(root)
        self.node_id = node_id
        self.clock = clock
        self._uploads: dict[str, str] = {}  # upload id -> image id, for uploads running on this node
        self.cluster: Any = None  # the node's ClusterService: copies of images kept on other nodes
        self._fetches: dict[str, trio.Lock] = {}
        self.running = False
        self.nursery: trio.Nursery | None = None  # background work (imports), while running
        self.metadefs = MetadefService(engine, clock)
        self.imports = ImportService(self)

    # --- plumbing --------------------------------------------------------------------
    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.engine.read(fn, *args)

    async def propose(self, cmd: Any) -> Any:
        return await self.engine.propose(cmd)

    def now_iso(self) -> str:
        return clock.iso(self.clock())  # Glance: whole seconds

    async def _visible(self, ctx: Any, image_id: str) -> dict[str, Any]:
        return await self.read(store.visible, core.viewer_of(ctx), image_id)

    async def _writable(self, ctx: Any, image_id: str, action: str) -> dict[str, Any]:
        image = await self._visible(ctx, image_id)
        require(core.may_write(ctx, image), action)
        return image

    # --- images ------------------------------------------------------------------------
    async def create(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        image_id = body.get("id") or str(uuid.uuid4())
        if not core.UUID.match(image_id):
            raise BadRequest(f"Image id {image_id!r} is not a UUID.")
        owner = ctx.project_id
        if "owner" in body and body["owner"] != owner:
            require(ctx.is_cloud_admin, "add_image with another owner")
            owner = body["owner"]
        if owner is None:
            require(ctx.is_cloud_admin, "add_image without a project")
        else:
            require(ctx.can_write_project(owner), "add_image")
        if body.get("visibility") == "public":
            require(ctx.is_cloud_admin, "publicize_image")
        row, tags = core.new_image({k: v for k, v in body.items() if k != "owner"}, id=str(uuid.UUID(image_id)),
                                   owner=owner, at=self.now_iso())
        return await self.propose(c.CreateImage(row, tuple(tags)))

    async def get(self, ctx: Any, image_id: str) -> dict[str, Any]:
        return await self._visible(ctx, image_id)

    async def list(self, ctx: Any, opts: core.ListOptions, marker: str | None, limit: int) -> list[dict[str, Any]]:
        return await self.read(store.list_images, core.viewer_of(ctx), opts, marker, limit)

    async def update(self, ctx: Any, image_id: str, ops: tuple[dict[str, Any], ...]) -> dict[str, Any]:
        image = await self._writable(ctx, image_id, "modify_image")
        admin_only = core.patch_needs_admin(ops)
        if admin_only:
            require(ctx.is_cloud_admin, admin_only)
        core.apply_patch(image, ops)  # refuse a bad patch before it enters the log
        return await self.propose(c.UpdateImage(image_id, ops, self.now_iso()))

    async def delete(self, ctx: Any, image_id: str) -> None:
        await self._writable(ctx, image_id, "delete_image")
        image = await self.propose(c.DeleteImage(image_id))
        # The row is gone first; a crash before the unlink leaves an orphan the reconciler removes.
        if image["store_node"] == self.node_id:
            await trio.to_thread.run_sync(self.files.remove, self.files.path(image_id))
            if image["status"] == "uploading" and image["upload_id"]:  # staged data
                await trio.to_thread.run_sync(self.files.remove, self.files.temp_path(image_id, image["upload_id"]))

    async def deactivate(self, ctx: Any, image_id: str) -> None:
        await self._writable(ctx, image_id, "deactivate")
        await self.propose(c.Deactivate(image_id, self.now_iso()))

    async def reactivate(self, ctx: Any, image_id: str) -> None:
        await self._writable(ctx, image_id, "reactivate")
        await self.propose(c.Reactivate(image_id, self.now_iso()))

    async def add_tag(self, ctx: Any, image_id: str, tag: str) -> None:
        if not tag or len(tag) > 255:
            raise BadRequest("A tag has 1 to 255 characters.")
        await self._writable(ctx, image_id, "modify_image")
        await self.propose(c.AddTag(image_id, tag, self.now_iso()))

    async def remove_tag(self, ctx: Any, image_id: str, tag: str) -> None:
        await self._writable(ctx, image_id, "modify_image")
        await self.propose(c.RemoveTag(image_id, tag, self.now_iso()))

    # --- data ------------------------------------------------------------------------------
    async def upload(self, ctx: Any, image_id: str, chunks: AsyncIterable[bytes],
                     expected_size: int | None = None) -> dict[str, Any]:
        """Store an image's data from a stream, check its format, and activate the image."""
        image = await self._writable(ctx, image_id, "upload_image")
        if image["status"] != "queued":
            raise Conflict(f"Image status transition from {image['status']} to saving is not allowed: "
                           "data can be uploaded only to a queued image.")
        if expected_size is not None:
            await trio.to_thread.run_sync(self.files.check_room, expected_size)

        return await self._store(image, self.receiver(chunks))

    @staticmethod
    def receiver(chunks: AsyncIterable[bytes]) -> Callable[[disk.Writer], Awaitable[None]]:
        """A fill for ``ingest``: the stream written through in chunks of WRITE_CHUNK (bounded memory)."""

        async def receive(writer: disk.Writer) -> None:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= WRITE_CHUNK:
                    await trio.to_thread.run_sync(writer.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await trio.to_thread.run_sync(writer.write, bytes(buffer))

        return receive

    async def fill(self, image_id: str, upload_id: str, fill: Callable[[disk.Writer], Awaitable[None]] | None,
                   source: Path | None = None) -> disk.Writer:
        """An upload's temp file, written by ``fill`` or moved from ``source``; a writer that has
        hashed it. On failure the temp file is gone."""
        try:
            if fill is not None:
                writer = await trio.to_thread.run_sync(self.files.open_writer, image_id, upload_id)
                try:
                    await fill(writer)
                except BaseException:
                    writer.close()
                    raise
            else:
                writer = await trio.to_thread.run_sync(self.files.import_file, source, image_id, upload_id)
            return writer
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.files.remove, self.files.temp_path(image_id, upload_id))
            raise

    async def ingest(self, image_id: str, upload_id: str, disk_format: str,
                     fill: Callable[[disk.Writer], Awaitable[None]] | None,
                     source: Path | None = None) -> tuple[dict[str, Any], Path]:
        """Fill an upload's temp file, check it is ``disk_format`` and rename it into place: what it
        measured (FinishUpload's fields) and its path. On failure the temp file is gone."""
        temp = self.files.temp_path(image_id, upload_id)
        writer = await self.fill(image_id, upload_id, fill, source)
        try:
            sample, md5, sha512 = await trio.to_thread.run_sync(writer.finish)
            virtual_size = await trio.to_thread.run_sync(disk.inspect, temp, disk_format, sample)
            final = await trio.to_thread.run_sync(self.files.commit, temp, image_id)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.files.remove, temp)
            raise
        return {"size": writer.size, "virtual_size": virtual_size, "checksum": md5, "os_hash_algo": core.HASH_ALGO,
                "os_hash_value": sha512}, final

    async def settle(self, final: Path, cmd: Any) -> Any:
        """Propose the command that makes stored data an image's; if the image is gone (or changed)
        meanwhile, the data belongs to no image and is removed."""
        try:
            with trio.CancelScope(shield=True):
                result = await self.propose(cmd)
        except CloudboxError:
            await trio.to_thread.run_sync(self.files.remove, final)
            raise
        if result is None:  # an import whose image was deleted meanwhile
            await trio.to_thread.run_sync(self.files.remove, final)
        return result

    async def _store(self, image: dict[str, Any], fill: Callable[[disk.Writer], Awaitable[None]] | None,
                     source: Path | None = None) -> dict[str, Any]:
        """queued → saving → active: fill a temp file, check it, rename it into place.

        On any failure (a refused format, a full disk, the client going away) the temp file is
        removed and the image returns to queued.
        """
        image_id, upload_id = image["id"], uuid.uuid4().hex
        self._uploads[upload_id] = image_id  # before the temp file exists (see reconcile)
        try:
            # The image as saving fixed it: its disk_format can no longer change.
            began = await self.propose(c.BeginUpload(image_id, upload_id, self.node_id, self.now_iso()))
            try:
                measured, final = await self.ingest(image_id, upload_id, began["disk_format"], fill, source)
            except BaseException as exc:
                with trio.CancelScope(shield=True):
                    try:
                        await self.propose(c.AbortUpload(image_id, upload_id, self.now_iso()))
                    except CloudboxError:
                        pass  # deleted meanwhile
                if isinstance(exc, CloudboxError):
                    log.info("image upload refused", extra={"image_id": image_id, "reason": exc.message})
                raise
            return await self.settle(final, c.FinishUpload(image_id, upload_id, **measured, at=self.now_iso()))
        finally:
            del self._uploads[upload_id]

    async def open_data(self, ctx: Any, image_id: str) -> tuple[dict[str, Any], BinaryIO | None]:
        """The image and an open file of its data (None when it has none yet)."""
        image = await self._visible(ctx, image_id)
        if image["status"] == "deactivated" and not ctx.is_cloud_admin:
            raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
        if image["status"] not in ("active", "deactivated"):
            return image, None
        path = await self.local_data(image)
        return image, await trio.to_thread.run_sync(self._open, image, path)

    def _open(self, image: dict[str, Any], path: Path) -> BinaryIO:
        try:
            return open(path, "rb")
        except FileNotFoundError as exc:
            raise Unavailable(f"The data of image {image['id']} is missing from this node's image store.") from exc

    async def local_data(self, image: dict[str, Any]) -> Path:
        """The path of an active image's data on this node; data kept by another node is copied
        here first (over the peer port), checked against the image's size and hash."""
        path = self.files.path(image["id"])
        if image["store_node"] == self.node_id or path.exists():
            return path
        if self.cluster is None or not self.cluster.clustered:
            raise Unavailable(f"The data of image {image['id']} is on node {image['store_node']}.")
        async with self._fetches.setdefault(image["id"], trio.Lock()):
            if not path.exists():
                await self._fetch(image, path)
        return path

    async def _fetch(self, image: dict[str, Any], path: Path) -> None:
        import hashlib

        import httpx

        node = await self.cluster.member(image["store_node"])
        fetch_id = "fetch" + uuid.uuid4().hex[:12]
        tmp = self.files.temp_path(image["id"], fetch_id)
        self._uploads[fetch_id] = image["id"]  # reconcile leaves the temp file alone
        started = time.monotonic()
        try:
            digest, size = hashlib.sha512(), 0
            async with self.cluster.peer_client(timeout=60) as client:
                url = f"{node['peer_url']}/cloudbox/v1/cluster/images/{image['id']}/data"
                async with client.stream("GET", url) as resp:
                    if resp.status_code != 200:
                        await resp.aread()
                        raise Unavailable(f"Node {node['name']} did not send image {image['id']}: {resp.status_code}")
                    with open(tmp, "wb") as out:
                        async for chunk in resp.aiter_bytes(1 << 20):
                            digest.update(chunk)
                            size += len(chunk)
                            await trio.to_thread.run_sync(out.write, chunk)
                        await trio.to_thread.run_sync(out.flush)
            if size != image["size"] or (image["os_hash_value"] and digest.hexdigest() != image["os_hash_value"]):
                raise Unavailable(f"The copy of image {image['id']} from node {node['name']} is damaged "
                                  f"({size} of {image['size']} bytes, or its hash differs).")
            tmp.replace(path)
            log.info("image copied from another node", extra={
                "image_id": image["id"], "from_node": node["name"], "bytes": size,
                "ms": round((time.monotonic() - started) * 1000, 1)})
        except httpx.HTTPError as exc:
            raise Unavailable(f"Could not copy image {image['id']} from node {node['name']}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
            self._uploads.pop(fetch_id, None)

    async def peer_data(self, image_id: str) -> tuple[dict[str, Any], BinaryIO]:
        """Another node's request for an image's data (the peer port checked its certificate): the
        image and an open file of the data this node keeps of it, for the caller to send and close."""
        image = await self.read(store.must_get, image_id)
        path = self.files.path(image_id)
        if image["status"] not in ("active", "deactivated") or not path.exists():
            raise NotFound(f"This node has no data of image {image_id}.")
        return image, await trio.to_thread.run_sync(self._open, image, path)

    # --- members -----------------------------------------------------------------------------
    async def members(self, ctx: Any, image_id: str) -> list[dict[str, Any]]:
        image = await self._visible(ctx, image_id)
        if image["visibility"] != "shared":
            raise Forbidden(f"Image {image_id} is {image['visibility']}: only shared images have members.")
        rows = await self.read(store.members, image_id)
        if ctx.is_cloud_reader or (image["owner"] and ctx.can_read_project(image["owner"])):
            return rows
        return [m for m in rows if m["member_id"] == ctx.project_id]  # a member sees itself only

    async def get_member(self, ctx: Any, image_id: str, member_id: str) -> dict[str, Any]:
        for member in await self.members(ctx, image_id):
            if member["member_id"] == member_id:
                return member
        raise NotFound(f"Project {member_id} is not a member of image {image_id}.")

    async def add_member(self, ctx: Any, image_id: str, member_id: str) -> dict[str, Any]:
        await self._writable(ctx, image_id, "add_member")
        return await self.propose(c.AddMember(image_id, member_id, self.now_iso()))

    async def update_member(self, ctx: Any, image_id: str, member_id: str, status: str) -> dict[str, Any]:
        await self.get_member(ctx, image_id, member_id)
        # Only the member project decides whether it accepts an image shared with it.
        require(ctx.project_id == member_id and ctx.can_write_project(member_id) or ctx.is_cloud_admin,
                "modify_member")
        return await self.propose(c.UpdateMember(image_id, member_id, status, self.now_iso()))

    async def remove_member(self, ctx: Any, image_id: str, member_id: str) -> None:
        await self._writable(ctx, image_id, "delete_member")
        await self.propose(c.RemoveMember(image_id, member_id))

    # --- for other services ---------------------------------------------------------------------
    async def active_image(self, image_id: str, ctx: Any) -> dict[str, Any]:
        """An active image ``ctx`` may see (else NotFound or Conflict)."""
        image = await self._visible(ctx, image_id)
        if image["status"] != "active":
            raise Conflict(f"Image {image_id} is {image['status']}, not active.")
        return image

    async def image_path(self, image_id: str, ctx: Any) -> tuple[Path, dict[str, Any]]:
        """The local path of an active image's data, if ``ctx`` may see the image (else NotFound)."""
        image = await self.active_image(image_id, ctx)
        return await self.local_data(image), image

    async def store_file(self, image: dict[str, Any], path: Path) -> dict[str, Any]:
        """Fill a queued image (made with ``create``) from a finished file, moving it into the store.

        Server snapshots use this: the image id is answered at once, the data follows.
        """
        return await self._store(image, None, source=Path(path))

    async def discard(self, image_id: str) -> None:
        """Delete an image whose data could not be made (a failed snapshot)."""
        await self.propose(c.DeleteImage(image_id))

    async def create_image_from_file(self, ctx: Any, name: str, path: Path, disk_format: str,
                                     properties: Mapping[str, str]) -> dict[str, Any]:
        """Make an active private image of the caller's project from a finished file (a snapshot).

        The file is moved into the image store (copied, then removed, across file systems); it
        is checked like an upload.  On failure the image is deleted and the error raised.
        """
        body = {"name": name, "disk_format": disk_format, "container_format": "bare",
                "visibility": "private", **properties}
        image = await self.create(ctx, body)
        try:
            return await self._store(image, None, source=Path(path))
        except BaseException:
            with trio.CancelScope(shield=True):
                try:
                    await self.propose(c.DeleteImage(image["id"]))
                except CloudboxError:
                    pass
            raise

    # --- the image store ----------------------------------------------------------------------------
    async def reconcile(self) -> dict[str, int]:
        """Make the image store match the database; idempotent.

        Removes temp files of uploads not running here (but for staged data awaiting its import),
        and files of images that do not exist or are not active; returns images stuck in saving or
        uploading by an upload or stage of this node that no longer runs to queued, and fails
        imports this node no longer runs.
        """
        await trio.to_thread.run_sync(self.files.ensure)
        names = await trio.to_thread.run_sync(self.files.listing)
        # Order matters: list, then note running uploads, then read the database, then note them
        # again; an upload that ran at any point between is treated as live.
        running_before = dict(self._uploads)
        states = await self.read(store.ids_and_states)
        running = {**running_before, **self._uploads}
        busy_images = set(running.values())
        # Staged data waits for its import as the temp file of the stage's upload.
        staged = {s["upload_id"] for s in states.values() if s["status"] in ("uploading", "importing")
                  and s["store_node"] == self.node_id and s["upload_id"]}
        removed = reset = 0
        for name in names:
            upload_id = disk.upload_of_temp(name)
            if upload_id is not None:
                stale = upload_id not in running and upload_id not in staged
            else:
                state = states.get(name)
                # Active images' data stays, kept here or copied from the node that keeps it.
                stale = name not in busy_images and (
                    state is None or state["status"] not in ("active", "deactivated"))
            if stale and await trio.to_thread.run_sync(self.files.remove, self.files.root / name):
                removed += 1
                log.info("removed an orphan file from the image store", extra={"file": name})
        for image_id, state in states.items():
            here = state["store_node"] == self.node_id
            if here and state["status"] == "importing" and state["import_task"] not in self.imports.running:
                await self.imports.fail(image_id, state["import_task"], "The node stopped during the import; "
                                        "stage the data again.")
                await trio.to_thread.run_sync(self.files.remove, self.files.temp_path(image_id, state["upload_id"]))
                reset += 1
                continue
            # A stage that stopped before its end, or whose data is gone, is no stage.
            interrupted = here and state["status"] == "uploading" and state["upload_id"] not in running and (
                not state["stage_host"] or self.files.temp_path(image_id, state["upload_id"]).name not in names)
            if interrupted or (state["status"] == "saving" and here and state["upload_id"] not in running):
                try:
                    await self.propose(c.AbortUpload(image_id, state["upload_id"], self.now_iso()))
                    reset += 1
                    log.info("an interrupted upload's image is queued again", extra={"image_id": image_id})
                except CloudboxError:
                    pass  # it moved on meanwhile
            elif state["status"] in ("active", "deactivated") and state["store_node"] == self.node_id \
                    and image_id not in names:
                log.error("the data of an active image is missing from the image store",
                          extra={"image_id": image_id})
        return {"removed": removed, "reset": reset}

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run background work (an import) in the service's nursery; its failure is logged."""
        assert self.nursery is not None, "image service not running"
        guard.spawn(self.nursery, fn, *args)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                await self.reconcile()
                self.running = True
                task_status.started()
                while True:
                    await trio.sleep(RECONCILE_INTERVAL)
                    try:
                        await self.reconcile()
                    except Exception:  # noqa: BLE001 - try again at the next turn
                        log.exception("image store reconciliation failed")
        finally:
            self.running = False
            self.nursery = None


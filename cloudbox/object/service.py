"""The object service: the Python interface the Swift API, S3 and backups call (DESIGN.md), and run().

Methods take an account (a project id) and check no roles or ACLs: authorization is the API's.
Bytes go to this node's BlobStore and are fsynced before the command that makes them visible is
proposed; metadata goes through the replicated log, so listings are the same on every node.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from typing import Any, AsyncIterable, AsyncIterator, Callable, Iterable

import trio

from cloudbox.errors import NotFound, Unavailable
from cloudbox.object import commands as c
from cloudbox.object import core, peers, placement, store
from cloudbox.object.disk import BlobStore, read_file
from cloudbox.object.replicator import Replicator
from cloudbox.state.engine import StateEngine

log = logging.getLogger("cloudbox.object")

SWEEP_SECONDS = 3600.0  # between sweeps of unreferenced files
ORPHAN_GRACE = 3600.0  # an unreferenced file younger than this may be an upload in flight
EXPIRER_SECONDS = 10.0  # between passes of the X-Delete-At expirer


class ObjectReader:
    """An opened object: its metadata and its bytes (the file stays readable if the object is
    overwritten or deleted meanwhile). Use as ``async with``; ``chunks`` closes it when done."""

    def __init__(self, info: core.ObjectInfo, file: Any, remote: Callable[[int, int | None], AsyncIterator[bytes]]
                 | None = None) -> None:
        self.info = info
        self._file = file  # None: the bytes are read from another node (``remote``)
        self._remote = remote

    def chunks(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if self._file is None and self._remote is not None:
            return self._remote(start, end)
        return read_file(self._file, start, end)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    async def __aenter__(self) -> "ObjectReader":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class ObjectService:
    def __init__(self, engine: StateEngine, settings: Any, root: Any, *, node_id: str,
                 clock_fn: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.settings = settings
        self.blobs = BlobStore(root)
        self.node_id = node_id
        self.clock = clock_fn
        self.running = False
        self.cluster: Any = None  # set by the node: who is up, peer clients (None: one node)
        self.peer_port: int | None = None  # the node's peer port, where other nodes ask for bytes
        self.replicator = Replicator(self)
        self.peer_pool: Any = None  # while running: the pooled client for peers, made at first use (peers.py)
        self.background: trio.Nursery | None = None  # while running: copies finishing after their PUT's answer

    def now(self) -> float:
        return round(self.clock(), 5)

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.engine.read(fn, *args)

    # --- accounts -------------------------------------------------------------------------------
    async def head_account(self, account: str) -> core.AccountInfo:
        return await self.read(store.account_info, account)

    async def update_account(self, account: str, set: dict[str, str], remove: Iterable[str] = ()) -> core.AccountInfo:
        await self.engine.propose(c.UpdateAccount(account, dict(set), tuple(remove), self.now()))
        return await self.head_account(account)

    async def list_containers(self, account: str, *, prefix: str = "", delimiter: str = "", marker: str = "",
                              end_marker: str = "", limit: int = core.ACCOUNT_LISTING_LIMIT,
                              reverse: bool = False) -> list[core.ContainerInfo | core.Subdir]:
        opts = core.ListOptions(prefix, delimiter, marker, end_marker, limit, reverse)
        return await self.read(store.list_containers, account, opts)

    # --- containers -----------------------------------------------------------------------------
    async def create_container(self, account: str, name: str, metadata: dict[str, str] | None = None,
                               remove: Iterable[str] = ()) -> bool:
        core.check_container_name(name)
        return await self.engine.propose(c.PutContainer(account, name, dict(metadata or {}), tuple(remove),
                                                        self.now()))

    async def head_container(self, account: str, name: str) -> core.ContainerInfo:
        info = await self.read(store.container_view, account, name)
        if info is None:
            raise NotFound(f"Container {name} not found")
        return info

    async def update_container(self, account: str, name: str, set: dict[str, str],
                               remove: Iterable[str] = ()) -> core.ContainerInfo:
        await self.engine.propose(c.UpdateContainer(account, name, dict(set), tuple(remove), self.now()))
        return await self.head_container(account, name)

    async def delete_container(self, account: str, name: str) -> None:
        await self.engine.propose(c.DeleteContainer(account, name, self.now()))

    async def list_objects(self, account: str, container: str, *, prefix: str = "", delimiter: str = "",
                           marker: str = "", end_marker: str = "", limit: int = core.CONTAINER_LISTING_LIMIT,
                           reverse: bool = False) -> list[core.ObjectInfo | core.Subdir]:
        await self.head_container(account, container)
        opts = core.ListOptions(prefix, delimiter, marker, end_marker, limit, reverse)
        return await self.read(store.list_objects, account, container, opts)

    # --- objects --------------------------------------------------------------------------------
    async def put_object(self, account: str, container: str, name: str, body: AsyncIterable[bytes], *,
                         content_type: str = "", metadata: dict[str, str] | None = None,
                         headers: dict[str, str] | None = None, size: int | None = None, etag: str | None = None,
                         etag_override: str | None = None, size_override: int | None = None,
                         archive: str = "", container_checked: bool = False) -> core.ObjectInfo:
        core.check_object_name(name)
        if not container_checked:  # the caller may have read it already (the apply checks it again)
            await self.head_container(account, container)  # refuse before the bytes come in
        data_id = uuid.uuid4().hex
        written, nodes = await self._write(data_id, body, size)
        try:
            if etag is not None and etag.strip('"').lower() != written.md5:
                raise core.Unprocessable("Unprocessable Entity")
            size_shown = written.size if size_override is None else size_override  # an SLO's: its segments'
            return await self._commit(account, container, name, data_id, size_shown, etag_override or written.md5,
                                      content_type, metadata, headers, archive, nodes=nodes, md5=written.md5)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.blobs.unlink(data_id)
            raise

    async def _write(self, data_id: str, body: AsyncIterable[bytes], size: int | None) -> tuple[Any, list[str]]:
        """Bytes to disk: here alone, or in a cluster to the chosen nodes (placement.py), refused
        (503) unless a majority of them has a durable copy. Returns the digest and the good copies."""
        if self.cluster is None or not self.cluster.clustered:
            return await self.blobs.write(data_id, body, size=size, max_size=core.MAX_FILE_SIZE), [self.node_id]
        targets = placement.choose(data_id, await self.cluster.up_nodes())
        written, good = await peers.replicated_write(self, data_id, body, size=size, max_size=core.MAX_FILE_SIZE,
                                                     targets=targets)
        if len(good) < placement.majority(len(targets)):
            await self.blobs.unlink(data_id)
            raise Unavailable(f"Only {len(good)} of {len(targets)} copies of the object were written; "
                              "nothing was stored.")
        return written, good

    async def _commit(self, account: str, container: str, name: str, data_id: str, size: int, etag: str,
                      content_type: str, metadata: dict[str, str] | None,
                      headers: dict[str, str] | None, archive: str = "", *, nodes: list[str],
                      md5: str) -> core.ObjectInfo:
        kept = {k: v for k, v in (headers or {}).items() if v != ""}
        row = {"account": account, "container": container, "name": name, "data_id": data_id, "size": size,
               "etag": etag, "content_type": content_type or "application/octet-stream",
               "last_modified": self.now(), "metadata": dict(metadata or {}), "headers": kept,
               "delete_at": int(kept["x-delete-at"]) if kept.get("x-delete-at") else None,
               "nodes": sorted(nodes), "md5": md5}
        replaced = await self.engine.propose(c.PutObject(row, archive))
        if replaced:
            await self.blobs.unlink(replaced)
        return store.object_info(row)

    async def head_object(self, account: str, container: str, name: str) -> core.ObjectInfo:
        info = await self.read(store.object_view, account, container, name)
        if info is None:
            raise NotFound("The resource could not be found.")
        return info

    async def open_object(self, account: str, container: str, name: str) -> ObjectReader:
        # The row may be replaced between the read and the open: read again until the file opens.
        for _ in range(5):
            info = await self.head_object(account, container, name)
            try:
                return ObjectReader(info, await self.blobs.open(info.data_id))
            except FileNotFoundError:
                if self.cluster is not None and self.cluster.clustered and self.node_id not in info.nodes:
                    return ObjectReader(info, None, functools.partial(peers.fetch, self, info.nodes, info.data_id))
                if self.cluster is not None and self.cluster.clustered:  # this copy is lost: read another
                    others = tuple(n for n in info.nodes if n != self.node_id)
                    return ObjectReader(info, None, functools.partial(peers.fetch, self, others, info.data_id))
        raise NotFound("The resource could not be found.")

    async def reopen(self, reader: ObjectReader) -> ObjectReader:
        """Another reader of the same version (data id) as ``reader`` (several ranges of one GET)."""
        info = reader.info
        try:
            return ObjectReader(info, await self.blobs.open(info.data_id))
        except FileNotFoundError:
            if self.cluster is None or not self.cluster.clustered:
                raise NotFound("The resource could not be found.") from None
            others = tuple(n for n in info.nodes if n != self.node_id)
            return ObjectReader(info, None, functools.partial(peers.fetch, self, others, info.data_id))

    async def update_object(self, account: str, container: str, name: str, metadata: dict[str, str],
                            headers: dict[str, str] | None = None) -> core.ObjectInfo:
        await self.engine.propose(c.UpdateObject(account, container, name, dict(metadata), dict(headers or {}),
                                                 self.now()))
        return await self.head_object(account, container, name)

    async def copy_object(self, account: str, src_container: str, src_name: str, container: str, name: str, *,
                          metadata: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                          content_type: str | None = None, fresh_metadata: bool = False,
                          src_account: str | None = None) -> core.ObjectInfo:
        core.check_object_name(name)
        await self.head_container(account, container)
        async with await self.open_object(src_account or account, src_container, src_name) as source:
            info = source.info
            kept_meta = {} if fresh_metadata else dict(info.metadata)
            kept_meta.update(metadata or {})
            kept_headers = {} if fresh_metadata else {k: v for k, v in info.headers.items() if k != "x-delete-at"}
            kept_headers.update(headers or {})
            data_id = uuid.uuid4().hex
            written, nodes = await self._write(data_id, source.chunks(), None)
        try:
            return await self._commit(account, container, name, data_id, info.size, info.etag,
                                      content_type or info.content_type, kept_meta, kept_headers, nodes=nodes,
                                      md5=written.md5)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.blobs.unlink(data_id)
            raise

    async def delete_object(self, account: str, container: str, name: str, *, data_id: str = "",
                            archive: str = "", restore: bool = False) -> core.ObjectInfo:
        """Delete an object (with ``archive``: versioning, ``restore`` for Swift's stack mode)."""
        info = await self.head_object(account, container, name)
        deleted = await self.engine.propose(c.DeleteObject(account, container, name, data_id, self.now(), archive,
                                                           restore))
        if deleted:
            await self.blobs.unlink(deleted)
        return info

    # --- background -----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.to_thread.run_sync(self.blobs.setup)
        self.running = True
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                self.background = nursery
                nursery.start_soon(self._sweeper)
                nursery.start_soon(self._expirer)
                nursery.start_soon(self.replicator.run)
        finally:
            pool, self.peer_pool, self.running, self.background = self.peer_pool, None, False, None
            if pool is not None:
                with trio.CancelScope(shield=True):
                    await pool.aclose()

    async def _sweeper(self) -> None:
        while True:
            try:
                await self.sweep(ORPHAN_GRACE)
            except Exception:  # the next pass tries again; a sweep never stops the service
                log.exception("object sweep failed")
            await trio.sleep(SWEEP_SECONDS)

    async def sweep(self, grace: float) -> int:
        """Remove cut-short uploads and files no row names (older than ``grace`` seconds)."""
        await trio.to_thread.run_sync(self.blobs.stale_uploads, 86400.0)
        files = await trio.to_thread.run_sync(self.blobs.files)
        cutoff = time.time() - grace
        old = [data_id for data_id, mtime in files if mtime < cutoff]
        kept = await self.read(store.referenced, old)
        removed = 0
        for data_id in old:
            if data_id not in kept:
                await self.blobs.unlink(data_id)
                removed += 1
        return removed

    async def _expirer(self) -> None:
        while True:
            try:
                await self.expire()
            except Exception:
                log.exception("object expirer failed")
            await trio.sleep(EXPIRER_SECONDS)

    async def expire(self) -> int:
        """Delete the objects whose X-Delete-At has passed (each only if still that version)."""
        done = 0
        for row in await self.read(store.expired, self.clock(), 1000):
            try:
                await self.delete_object(row["account"], row["container"], row["name"], data_id=row["data_id"])
                done += 1
            except NotFound:
                pass
        return done

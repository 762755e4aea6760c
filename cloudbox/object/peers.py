"""Object bytes between nodes, over the peer port (mutual TLS with node certificates).

- ``replicated_write``: the body of a PUT streams to every chosen node at once (a bounded
  channel per peer, so the slowest copy sets the pace and memory stays flat); it returns once a
  majority of the copies is fsynced (or every copy answered), a slower copy finishing in the
  service's background nursery, and the caller commits if a majority is good.
- ``fetch``: bytes [start, end) of a copy another node keeps.
- ``peer_spec``: the routes the other nodes call, at /cloudbox/v1/cluster/object-data/{data_id}.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Any, AsyncIterable, AsyncIterator

import trio

from cloudbox.api import streaming
from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.errors import BadRequest, Forbidden, NotFound, Unavailable
from cloudbox.object import core
from cloudbox.object.disk import Written, read_file
from cloudbox.object.placement import majority

log = logging.getLogger("cloudbox.object")

PEER_PREFIX = "/cloudbox/v1/cluster/object-data"
CHANNEL_CHUNKS = 4  # chunks buffered per peer before the upload waits for it
PEER_TIMEOUT = 60.0  # seconds a copy to or from a peer may be silent


@contextlib.asynccontextmanager
async def peer_client(svc: Any) -> AsyncIterator[Any]:
    """The service's pooled client for object bytes (its connections, mutual TLS handshake done,
    are kept between requests: a small object's copies cost a request each, not a connection
    each); a client of its own when the service keeps none (not running)."""
    if svc.running:
        if svc.peer_pool is None:  # closed by the service's run() when it ends
            svc.peer_pool = svc.cluster.peer_client(timeout=PEER_TIMEOUT)
        yield svc.peer_pool
        return
    async with svc.cluster.peer_client(timeout=PEER_TIMEOUT) as client:
        yield client


def _url(node: dict[str, Any], data_id: str) -> str:
    return f"{node['peer_url']}{PEER_PREFIX}/{data_id}"


async def _digest(body: AsyncIterable[bytes]) -> Written:
    """md5 and size of a body this node does not keep (it is not one of the chosen nodes)."""
    digest, size = hashlib.md5(usedforsecurity=False), 0
    async for chunk in body:
        digest.update(chunk)
        size += len(chunk)
    return Written("", size, digest.hexdigest())


@contextlib.asynccontextmanager
async def _copies_nursery(svc: Any) -> AsyncIterator[trio.Nursery]:
    """Where the copies to peers run: the running service's own nursery, so a copy still going
    when a majority is durable finishes after the PUT was answered; else one of our own (waited)."""
    if getattr(svc, "background", None) is not None:
        yield svc.background
        return
    async with trio.open_nursery() as nursery:
        yield nursery


async def replicated_write(svc: Any, data_id: str, body: AsyncIterable[bytes], *, size: int | None,
                           max_size: int, targets: list[str]) -> tuple[Written, list[str]]:
    """Stream ``body`` to the ``targets`` (node ids, maybe this one); returns the local digest
    (or the stream's) and the nodes whose copy is durable and has that md5, as soon as those are
    a majority of ``targets`` (or every copy answered): a slower copy finishes in the background
    (the replicator records it, or makes it again if it fails)."""
    peers = [n for n in targets if n != svc.node_id]
    members = {n["id"]: n for n in await svc.cluster.nodes()}
    sends: dict[str, trio.MemorySendChannel[bytes]] = {}
    receives: dict[str, trio.MemoryReceiveChannel[bytes]] = {}
    results: dict[str, str | None] = {}
    # Each copy says here when it is done (the buffer holds them all: never blocks).
    done_send, done_receive = trio.open_memory_channel[str](len(peers) + 1)
    copies_scope = trio.CancelScope()

    async def push(node_id: str, receive: trio.MemoryReceiveChannel[bytes]) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in receive:
                yield chunk

        try:
            async with receive, peer_client(svc) as client:
                headers = {"Content-Length": str(size)} if size is not None else {}
                response = await client.put(_url(members[node_id], data_id), content=chunks(), headers=headers)
                results[node_id] = response.json().get("md5") if response.status_code == 201 else None
                if response.status_code != 201:
                    log.warning("a peer refused an object copy", extra={"peer": node_id, "status": response.status_code})
        except Exception as exc:  # noqa: BLE001 - a failed copy is counted, the others go on
            log.warning("an object copy to a peer failed", extra={"peer": node_id, "why": str(exc)})
            results[node_id] = None
        finally:
            results.setdefault(node_id, None)
            done_send.send_nowait(node_id)

    async def copies() -> None:
        with copies_scope:
            async with trio.open_nursery() as nursery:
                for node_id, receive in receives.items():
                    nursery.start_soon(push, node_id, receive)

    async def tee() -> AsyncIterator[bytes]:
        async for chunk in body:
            for node_id, send in list(sends.items()):
                try:
                    await send.send(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    sends.pop(node_id)  # that peer failed: the others go on
            yield chunk
        for send in sends.values():
            await send.aclose()

    for node_id in peers:
        if node_id not in members:
            results[node_id] = None
            continue
        sends[node_id], receives[node_id] = trio.open_memory_channel[bytes](CHANNEL_CHUNKS)
    need = majority(len(targets))
    async with _copies_nursery(svc) as nursery:
        nursery.start_soon(copies)
        def good() -> list[str]:
            return [n for n in targets if (n == svc.node_id and written.data_id) or results.get(n) == written.md5]

        try:
            written: Written
            if svc.node_id in targets:
                written = await svc.blobs.write(data_id, tee(), size=size, max_size=max_size)
            else:
                written = await _digest(tee())
                if written.size > max_size or (size is not None and written.size != size):
                    raise BadRequest("The request body does not match its Content-Length.")
            waiting = len(receives)
            while waiting and len(good()) < need:
                await done_receive.receive()
                waiting -= 1
        except BaseException:
            copies_scope.cancel()  # the peers' partial copies are dropped by their handlers
            raise
    return written, good()


async def fetch(svc: Any, node_ids: tuple[str, ...], data_id: str, start: int, end: int | None) -> AsyncIterator[bytes]:
    """Bytes [start, end) of ``data_id`` from the first of ``node_ids`` that is up and answers."""
    up = await svc.cluster.up_nodes()
    members = {n["id"]: n for n in await svc.cluster.nodes()}
    for node_id in node_ids:
        if node_id == svc.node_id or node_id not in up or node_id not in members:
            continue
        params = {"start": str(start)} | ({"end": str(end)} if end is not None else {})
        try:
            async with peer_client(svc) as client:
                async with client.stream("GET", _url(members[node_id], data_id), params=params) as response:
                    if response.status_code != 200:
                        continue
                    async for chunk in response.aiter_bytes(1 << 20):
                        yield chunk
                    return
        except Exception as exc:  # noqa: BLE001 - the next copy is tried
            log.warning("reading an object copy from a peer failed", extra={"peer": node_id, "why": str(exc)})
    raise Unavailable("No node that keeps this object's data is reachable.")


def peer_spec(svc: Any) -> ApiSpec:
    """GET and PUT of a copy's bytes, for the other nodes only (the peer port)."""

    def peer_only(call: Call) -> None:
        server = call.request.scope.get("server") or (None, None)
        if svc.peer_port is None or server[1] != svc.peer_port:
            raise Forbidden("This route serves cluster members only, on the peer port with a node certificate.")

    def checked(data_id: str) -> str:
        try:
            svc.blobs.path(data_id)
        except ValueError:
            raise BadRequest("Not a data id.") from None
        return data_id

    async def data_get(call: Call, data_id: str) -> Any:
        peer_only(call)
        try:
            start = int(call.query.get("start", "0"))
            end = int(call.query["end"]) if "end" in call.query else None
        except ValueError:
            raise BadRequest("start and end are byte offsets") from None
        try:
            file = await svc.blobs.open(checked(data_id))
        except FileNotFoundError:
            raise NotFound("This node keeps no copy of that data.") from None
        from quart import Response

        response = Response(read_file(file, start, end), status=200, content_type="application/octet-stream")
        response.timeout = None
        return response

    async def data_put(call: Call, data_id: str) -> Reply:
        try:
            peer_only(call)
            length = call.request.content_length
            written = await svc.blobs.write(checked(data_id), call.request.body,
                                            size=int(length) if length is not None else None,
                                            max_size=core.MAX_FILE_SIZE)
        except Exception:
            await streaming.drain(call.request.body, 1 << 20, 5.0)
            raise
        return Reply({"md5": written.md5, "size": written.size}, 201)

    return ApiSpec("object-peer", PEER_PREFIX, "cloudbox", [
        Route("GET", "/{data_id}", data_get, access="public", query=("start", "end"),
              summary="Bytes of an object's copy (peer port, node certificate)"),
        Route("PUT", "/{data_id}", data_put, access="public", raw_body=True, status=201,
              summary="Store a copy of an object's bytes (peer port, node certificate)"),
    ])

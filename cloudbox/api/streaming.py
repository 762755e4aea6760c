"""Request bodies that raw-body routes (image uploads) read as a stream.

Quart collects a request body in memory and refuses it past MAX_CONTENT_LENGTH
(our 1 MiB JSON limit).  Its ASGI pump also appends every received chunk to
that buffer without waiting, so a client faster than the handler grows the
buffer without bound.  For a route declared ``raw_body=True`` the request's
body here instead:

- has no size limit (the handler decides what it accepts), and
- holds at most ``HIGH_WATER`` bytes: the pump waits for the handler to take
  data, hypercorn's app queue fills, and hypercorn stops reading the socket,
  so TCP flow control slows the client down.

Every other route keeps quart's behaviour and the JSON limit.
"""

from __future__ import annotations

from typing import Any, Iterable

import trio
from quart_trio.asgi import TrioASGIHTTPConnection
from quart_trio.wrappers.request import TrioBody, TrioRequest
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from cloudbox.api.routes import url_rule

# Bytes buffered before the pump waits for the handler; buffers stay below memory.MMAP_THRESHOLD,
# so glibc reuses them from the heap instead of mapping fresh pages for each.
HIGH_WATER = 2 << 20


class StreamingBody(TrioBody):
    """A TrioBody that, once ``stream()`` is called, is unlimited but bounded in memory."""

    def __init__(self, expected_content_length: int | None, max_content_length: int | None) -> None:
        super().__init__(expected_content_length, max_content_length)
        self.streaming = False
        self._room = trio.Event()
        # While streaming, the pieces as received: handed over as they are (quart's bytearray
        # copies every byte twice, in and out).
        self._chunks: list[bytes] = []
        self._queued = 0

    def stream(self) -> None:
        # Called before any data arrives, so the only possible refusal is the one for a declared
        # Content-Length above the JSON limit, which does not apply here.
        self.streaming = True
        self._max_content_length = None
        self._must_raise = None

    async def wait_room(self) -> None:
        while self.streaming and self._queued >= HIGH_WATER and not self._complete.is_set():
            self._room = trio.Event()
            await self._room.wait()

    def append(self, data: bytes) -> None:
        if not self.streaming:
            super().append(data)
        elif data:
            self._chunks.append(data)
            self._queued += len(data)
            self._has_data.set()

    def _take(self) -> bytes:
        chunks, self._chunks, self._queued = self._chunks, [], 0
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _next(self) -> bytes:
        data = self._chunks.pop(0)  # a few pieces of up to ~1 MiB: popping the head is cheap
        self._queued -= len(data)
        return data

    async def __anext__(self) -> bytes:
        if not self.streaming:
            return await super().__anext__()
        if not self._complete.is_set():
            await self._has_data.wait()
        if not self._chunks:
            raise StopAsyncIteration()
        data = self._next()
        if not self._chunks:
            self._has_data.clear()
        self._room.set()
        return data

    def __await__(self) -> Any:
        if not self.streaming:
            return (yield from super().__await__())
        yield from self._complete.wait().__await__()
        data = self._take()
        self._chunks = [data]
        self._queued = len(data)
        return data

    def clear(self) -> None:
        super().clear()
        self._chunks, self._queued = [], 0


def unread_body(request: Any) -> bool:
    """Whether a streamed request body was left partly unread (the connection cannot be reused)."""
    body = getattr(request, "body", None)
    return isinstance(body, StreamingBody) and body.streaming and not body._complete.is_set()


async def drain(body: Any, limit: int, seconds: float) -> None:
    """Read and drop what is left of a streamed body, up to ``limit`` bytes or ``seconds``.

    A handler that refuses an upload early drains it so that the client, which sends the whole
    body before it reads the reply, gets to read the refusal; past the limit the reply closes
    the connection instead.
    """
    dropped = 0
    with trio.move_on_after(seconds):
        async for chunk in body:
            dropped += len(chunk)
            if dropped > limit:
                break


class StreamingRequest(TrioRequest):
    body_class = StreamingBody


def _connection_class(raw_routes: Map) -> type[TrioASGIHTTPConnection]:
    adapter = raw_routes.bind("localhost")

    class StreamingConnection(TrioASGIHTTPConnection):
        def _create_request_from_scope(self, send: Any) -> Any:
            request = super()._create_request_from_scope(send)
            try:
                adapter.match(request.path, method=request.method)
            except HTTPException:
                return request
            request.body.stream()
            return request

        async def handle_messages(self, nursery: trio.Nursery, request: Any, receive: Any) -> None:  # type: ignore[override]
            # quart's pump, with a wait for room before each append.
            while True:
                message = await receive()
                if message["type"] == "http.request":
                    await request.body.wait_room()
                    request.body.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        request.body.set_complete()
                elif message["type"] == "http.disconnect":
                    break
            nursery.cancel_scope.cancel()

    return StreamingConnection


def enable(app: Any, routes: Iterable[tuple[str, str]]) -> None:
    """Stream the bodies of ``routes`` — (method, full path with {params}) pairs — in ``app``."""
    rules = [Rule(url_rule(path), methods=[method], merge_slashes=False) for method, path in routes]
    app.request_class = StreamingRequest
    app.asgi_http_class = _connection_class(Map(rules))


def file_response(file: Any, content_type: str, headers: dict[str, str], chunk: int = 1 << 20) -> Any:
    """A 200 response that sends an open file in chunks (read in worker threads) and closes it;
    no response timeout, since a large file may take longer than quart's default to send."""
    from quart import Response

    async def chunks() -> Any:
        try:
            while data := await trio.to_thread.run_sync(file.read, chunk):
                yield data
        finally:
            file.close()

    response = Response(chunks(), status=200, content_type=content_type, headers=headers)
    response.timeout = None
    return response

"""hypercorn, guarded: nothing a client sends can end the node.

hypercorn runs each connection as a task in one nursery per listener; an exception
escaping a connection cancels that nursery, the listener's ``serve`` raises, and
with it the node's root nursery. So every connection runs through
``GuardedTCPServer``, which logs a connection's fault and closes that connection
only. Faults we know a client can cause are also fixed where they arise
(``GuardedH2Protocol``), so the guard is the last line, not the usual path:

- DATA on a stream whose response is already sent (a 413 refused before the body
  arrived) raised KeyError (hypercorn issues #197/#329, unfixed in 0.18). Such data
  is dropped with its flow-control credit given back, up to ``LINGER_BYTES`` per
  stream; past that the stream is reset with NO_ERROR, which RFC 9113 §8.1
  allows once the response is out, to stop the upload.
- PRIORITY frames (deprecated by RFC 9113) grew a per-connection tree that raises
  past 1,000 streams; they are ignored.
- A request with no ``:path`` (a plain CONNECT) or a method or path that is not ASCII
  raised in hypercorn; it is answered 400, as HTTP/1.1's parser answers such requests.

A connection the server closes while the client is still sending (the reply to an
oversized body says ``Connection: close``) would otherwise be closed with unread
data, which makes the kernel answer with a reset that destroys the reply before
the client reads it. Such a connection lingers instead: what the client sends is
read and dropped, up to ``LINGER_BYTES`` or ``LINGER_SECONDS``, then it closes.

hypercorn builds its protocol and connection objects from module globals, so
``install()`` points those at the guarded classes; ``serve`` installs them. ``serve`` also
keeps a listener serving: one that fails after it started serves again (see there).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any, Awaitable, Callable

import h2.errors
import h2.events
import h2.exceptions
import h11
import hypercorn.protocol
import hypercorn.trio.run
import trio
from hypercorn.config import Config, Sockets
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol.events import Body
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import STREAM_ID, H11Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.trio.run import worker_serve
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer
from hypercorn.utils import wrap_app

from cloudbox.guard import StartedOnce

try:  # h11's reader of a Content-Length body: the one the body fast path (GuardedH11Protocol) knows
    from h11._readers import ContentLengthReader
except ImportError:  # another h11: every body goes through h11, as before
    ContentLengthReader = None  # type: ignore[assignment,misc]

log = logging.getLogger("cloudbox.http")

LINGER_BYTES = 32 << 20  # a client still sending after the reply: drop at most this much ...
LINGER_SECONDS = 10.0  # ... for at most this long, then close
RESTART_SECONDS = 1.0  # a listener that failed serves again after this long
CLOSE_SECONDS = 5.0  # how long telling the apps of a closed connection may take
READ_BATCH = 1 << 20  # bytes a socket read may take, and a read of TLS records may gather
TLS_RECORD_MAX = (1 << 14) + 256 + 5  # the largest TLS record on the wire (payload, expansion, header)


class GuardedH2Protocol(H2Protocol):
    """hypercorn's HTTP/2 protocol with the faults a client can trigger handled where they arise."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped: dict[int, int] = {}  # bytes dropped per stream whose body arrives after its reply

    async def _handle_events(self, events: list[h2.events.Event]) -> None:
        # One event at a time: handling one can close a stream that a later one names.
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams:
                await self._data_after_response(event)
                continue
            if isinstance(event, h2.events.RequestReceived) and _malformed(event):
                await self._refuse(event.stream_id)
                continue
            if isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                self.dropped.pop(event.stream_id, None)
            await super()._handle_events([event])

    async def _data_after_response(self, event: h2.events.DataReceived) -> None:
        # Drop the data but give its credit back: a client that sends its whole body before it
        # reads (httpx) then gets to the reply, and the connection's other streams do not starve.
        self.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.dropped[event.stream_id] = self.dropped.get(event.stream_id, 0) + event.flow_controlled_length
        if self.dropped[event.stream_id] > LINGER_BYTES and event.stream_id not in self.stream_buffers:
            # Enough: the whole reply has gone out, so stop the upload (RFC 9113 §8.1).
            self._reset(event.stream_id, h2.errors.ErrorCodes.NO_ERROR)
            del self.dropped[event.stream_id]
        await self._flush()

    async def _refuse(self, stream_id: int) -> None:
        """Answer 400 without a stream of hypercorn's (which would fail on such a request)."""
        try:
            self.connection.send_headers(stream_id, [(b":status", b"400"), (b"content-length", b"0")], end_stream=True)
        except h2.exceptions.ProtocolError:
            pass  # the client already reset it
        await self._flush()

    def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
        try:
            self.connection.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:
            pass  # the stream is already closed on both sides

    async def _priority_updated(self, event: h2.events.PriorityUpdated) -> None:
        await self.has_data.set()


class GuardedH11Protocol(H11Protocol):
    """hypercorn's HTTP/1.1 protocol, with the bytes of a body of known length handed to the app
    as they arrive. Through h11 each piece is copied four times (into h11's receive buffer, twice
    out of it, and into bytes by hypercorn): a third of the event loop's CPU in a large upload.
    Only while h11 is in the middle of such a body with nothing of its own buffered (so the
    order of bytes is kept) and no 100-continue pending; h11 still sees the body's end and all
    that follows, and any h11 without the reader's ``_remaining`` count takes h11's path."""

    async def handle(self, event: Event) -> None:
        remaining = self._body_remaining()
        if remaining and isinstance(event, RawData) and event.data:
            data = event.data
            take = min(len(data), remaining)
            self.connection._reader._remaining -= take  # type: ignore[union-attr]
            await self.stream.handle(Body(stream_id=STREAM_ID, data=data if take == len(data) else data[:take]))  # type: ignore[union-attr]
            if take < len(data):  # the next request, pipelined: h11 parses it after the body's end
                event = RawData(data=data[take:])
            elif take == remaining:  # the body's end, which h11 reports on its next event
                await self._handle_events()
                return
            else:
                return
        await super().handle(event)

    def _body_remaining(self) -> int:
        """Bytes of the request body still to come, when they may bypass h11; else 0."""
        connection = self.connection
        reader = getattr(connection, "_reader", None)
        if (ContentLengthReader is None or not isinstance(reader, ContentLengthReader)
                or not isinstance(self.stream, HTTPStream) or connection.their_state is not h11.SEND_BODY
                or connection.they_are_waiting_for_100_continue or connection.trailing_data[0]):
            return 0
        remaining = getattr(reader, "_remaining", None)
        return remaining if type(remaining) is int and remaining > 0 else 0


def _malformed(event: h2.events.RequestReceived) -> bool:
    """A request hypercorn cannot take: no :path (a plain CONNECT), or a method or path that is
    not ASCII (HTTP/1.1's parser answers those 400; hypercorn's HTTP/2 side raised)."""
    pseudo = {name: value for name, value in event.headers or () if name in (b":method", b":path")}
    return len(pseudo) < 2 or not all(value.isascii() for value in pseudo.values())


class GuardedTCPServer(TCPServer):
    """One connection: a fault in it is logged and closes it, and a closing connection lingers."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._reading = trio.CancelScope()  # the whole read loop: cancelled once the peer is gone
        self._receiving = trio.CancelScope()  # one receive: its deadline ends a linger
        self._linger_until: float | None = None
        if isinstance(self.stream, trio.SSLStream):
            self.stream.transport_stream = _LargeReads(self.stream.transport_stream)

    async def run(self) -> None:
        try:
            await super().run()
        except* Exception as group:
            log.error("connection failed and was closed", exc_info=group)

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, RawData):
            async with self.send_lock:
                try:
                    with trio.CancelScope(shield=True):
                        await self.stream.send_all(event.data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    # The peer is gone. The reader may be parked inside the protocol (h11 waits
                    # for a reply that will now never be recycled), so stop it from here; and
                    # tell the protocol, shielded, as this may run in the reader, whose scope
                    # was just cancelled, and an app never told of the close waits forever.
                    self._reading.cancel()
                    with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_SECONDS):
                        await self.protocol.handle(Closed())
        elif isinstance(event, Closed) and self._linger_until is None:
            # The protocol is done, but the client may still be sending: _read_data drops what
            # it sends for a while, so that our reply is not destroyed by a reset.
            self._linger_until = trio.current_time() + LINGER_SECONDS
            self._receiving.deadline = min(self._receiving.deadline, self._linger_until)
            await self.protocol.handle(Closed())
        else:
            await super().protocol_send(event)

    async def _read_data(self) -> None:
        with self._reading:
            await self._read_loop()
        await self.protocol.handle(Closed())
        # Nothing more is read, so the idle timer has nothing left to guard: stop it, or run()
        # keeps the connection (and its socket) until it fires, keep_alive_timeout later.
        await self.idle_task.stop()
        if self._linger_until is not None or self._reading.cancel_called:
            await self._close()

    async def _read_loop(self) -> None:
        dropped = 0
        while True:
            with trio.CancelScope() as self._receiving:
                if self._linger_until is not None:
                    self._receiving.deadline = self._linger_until
                elif self.config.read_timeout:
                    self._receiving.deadline = trio.current_time() + self.config.read_timeout
                try:
                    data = await self._receive()
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    return
            if self._receiving.cancelled_caught or not data:
                return
            if self._linger_until is None:
                await self.protocol.handle(RawData(bytes(data)))
                continue
            dropped += len(data)
            if dropped > LINGER_BYTES:
                return

    async def _receive(self) -> bytes | bytearray:
        """What the client sent: with TLS, every whole record already received, not only the
        first. A TLS read hands back one 16 KiB record and a trip through the scheduler, so an
        upload would otherwise cross the protocol, the app's queue and the handler once per
        16 KiB. The records taken here are complete in trio's buffer of received ciphertext, so
        decrypting them cannot wait; anything the TLS object wants to send in answer stays in
        its outgoing buffer and leaves with the stream's next send or receive."""
        data = await self.stream.receive_some(MAX_RECV)
        incoming = getattr(self.stream, "_incoming", None)  # trio's SSLStream internals, or none
        tls = getattr(self.stream, "_ssl_object", None)
        if incoming is None or tls is None or not data:
            return data
        parts = [data]
        size = len(data)
        while size < READ_BATCH and incoming.pending >= TLS_RECORD_MAX:
            try:
                more = tls.read(READ_BATCH - size)
            except ssl.SSLError:  # the peer's close or a fault: trio's next receive meets it too
                break
            if not more:
                break
            parts.append(more)
            size += len(more)
        return b"".join(parts) if len(parts) > 1 else data


class _LargeReads:
    """A socket stream whose reads of unstated size take up to READ_BATCH bytes (trio's take
    64 KiB), so TLS reads of a fast upload fetch what the kernel holds in one call."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._stream.receive_some(READ_BATCH if max_bytes is None else max_bytes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install() -> None:
    """Make hypercorn build guarded connections and protocols (idempotent)."""
    hypercorn.protocol.H2Protocol = GuardedH2Protocol  # type: ignore[misc]
    hypercorn.protocol.H11Protocol = GuardedH11Protocol  # type: ignore[misc]
    hypercorn.trio.run.TCPServer = GuardedTCPServer  # type: ignore[misc]


async def serve(
    app: Any,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """hypercorn's trio worker with every connection guarded, on sockets bound once.

    A failure before it serves (no certificate, say) is raised: start-up must succeed. A
    failure after that, which no client can cause, is logged and the listener serves again
    on the same sockets after ``RESTART_SECONDS``: it never ends the node's root nursery.
    """
    install()
    sockets = config.create_sockets()
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
        sock.listen(config.backlog)
    started = StartedOnce(task_status)
    try:
        while True:
            try:
                # hypercorn closes the sockets it serves on when it ends: give it duplicates, so
                # that the listening sockets (and the connections waiting in them) outlive it.
                duplicates = Sockets(*([sock.dup() for sock in group] for group in _groups(sockets)))
                await worker_serve(wrap_app(app, config.wsgi_max_body_size, None), config, sockets=duplicates,
                                   shutdown_trigger=shutdown_trigger, task_status=started)
                return
            except Exception:
                if not started.done:
                    raise
                log.exception("the listener on %s failed; it serves again", ", ".join(started.value))
            await trio.sleep(RESTART_SECONDS)
    finally:
        for group in _groups(sockets):
            for sock in group:
                sock.close()


def _groups(sockets: Sockets) -> tuple[list[Any], list[Any], list[Any]]:
    return sockets.secure_sockets, sockets.insecure_sockets, sockets.quic_sockets

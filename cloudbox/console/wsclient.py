"""A small websocket client (wsproto over a trio stream): the console proxy's hop to the node
that runs the guest, over the peer port's mutual TLS.  Tests use it as a browser would."""

from __future__ import annotations

import ssl
from typing import Any
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.utilities import LocalProtocolError
from wsproto.events import (
    AcceptConnection, BytesMessage, CloseConnection, Ping, RejectConnection, RejectData, Request, TextMessage,
)

MAX_MESSAGE = 4 << 20  # a longer message from the far end is refused (a framebuffer update is far smaller)


class Rejected(Exception):
    """The server answered the upgrade with an HTTP status instead of switching protocols."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"websocket refused: {status}")
        self.status = status
        self.body = body


@dataclass
class WebSocketClient:
    stream: trio.abc.Stream
    connection: WSConnection
    subprotocol: str | None = None
    _pending: list[bytes | str] = field(default_factory=list)
    _parts: list[bytes | str] = field(default_factory=list)  # of a message not yet whole
    _size: int = 0
    _closed: bool = False

    @classmethod
    async def connect(cls, url: str, ssl_context: ssl.SSLContext | None = None, *,
                      subprotocols: tuple[str, ...] = (), headers: tuple[tuple[str, str], ...] = (),
                      timeout: float = 10) -> "WebSocketClient":
        """Open ``url`` (ws:// or wss://); Rejected with the status when the server refuses."""
        parts = urlsplit(url)
        secure = parts.scheme in ("wss", "https")
        host = parts.hostname or "localhost"
        port = parts.port or (443 if secure else 80)
        with trio.fail_after(timeout):
            stream: trio.abc.Stream
            if secure:
                stream = await trio.open_ssl_over_tcp_stream(
                    host, port, ssl_context=ssl_context or ssl.create_default_context(), https_compatible=True)
            else:
                stream = await trio.open_tcp_stream(host, port)
            client = cls(stream, WSConnection(ConnectionType.CLIENT))
            try:
                await client._handshake(parts.netloc, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                                        subprotocols, headers)
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
        return client

    async def _handshake(self, host: str, target: str, subprotocols: tuple[str, ...],
                         headers: tuple[tuple[str, str], ...]) -> None:
        await self.stream.send_all(self.connection.send(Request(
            host=host, target=target, subprotocols=list(subprotocols),
            extra_headers=[(k.encode(), v.encode()) for k, v in headers])))
        status, body = 0, b""
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                raise Rejected(status or 502, body)
            self.connection.receive_data(data)
            for event in self.connection.events():
                if isinstance(event, AcceptConnection):
                    self.subprotocol = event.subprotocol
                    return
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise Rejected(status, body)
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise Rejected(status, body)

    async def send(self, data: bytes | str) -> None:
        await self.stream.send_all(self.connection.send(
            BytesMessage(data=data) if isinstance(data, bytes) else TextMessage(data=data)))

    async def receive(self) -> bytes | str | None:
        """The next whole message; None once the connection closed."""
        while True:
            if self._pending:
                return self._pending.pop(0)
            if self._closed:
                return None
            # Events first: what came with the handshake (a server that speaks first) is buffered.
            await self._take_events()
            if self._pending or self._closed:
                continue
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self._closed = True
                continue
            self.connection.receive_data(data)

    async def _take_events(self) -> None:
        for event in self.connection.events():
            if isinstance(event, (BytesMessage, TextMessage)):
                self._parts.append(event.data)
                self._size += len(event.data)
                if self._size > MAX_MESSAGE:
                    raise ValueError("websocket message too large")
                if event.message_finished:
                    empty: Any = b"" if isinstance(self._parts[0], bytes) else ""
                    self._pending.append(empty.join(self._parts))
                    self._parts, self._size = [], 0
            elif isinstance(event, Ping):
                await self.stream.send_all(self.connection.send(event.response()))
            elif isinstance(event, CloseConnection):
                try:
                    await self.stream.send_all(self.connection.send(event.response()))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                self._closed = True

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                with trio.move_on_after(2):
                    await self.stream.send_all(self.connection.send(CloseConnection(code=1000)))
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, LocalProtocolError):
                pass  # already broken: closing is all that is left
        await trio.aclose_forcefully(self.stream)

    async def __aenter__(self) -> "WebSocketClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

"""A client of the live event stream for tests: GET /cloudbox/v1/events over TLS on a plain socket,
read in a thread, its events kept in order.  A socket of our own, so a test can stop reading
(a stalled client) or cut the connection (``close`` interrupts a blocked read)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import urllib.parse
from typing import Any, Callable

from tests.cloud import wait_for


class EventReader:
    def __init__(self, url: str, ca: str, token: str | None, *, accept: str = "text/event-stream",
                 read: bool = True, receive_buffer: int | None = None) -> None:
        """``read=False``: nothing is read after the head until ``start()`` (a stalled client);
        ``receive_buffer`` makes the socket's receive buffer that small (bytes)."""
        parsed = urllib.parse.urlsplit(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 443
        context = ssl.create_default_context(cafile=ca)
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        raw.settimeout(30)
        raw.connect((host, port))
        self.sock = context.wrap_socket(raw, server_hostname=host)
        lines = ["GET /cloudbox/v1/events HTTP/1.1", f"Host: {host}:{port}", f"Accept: {accept}"]
        if token:
            lines.append(f"X-Auth-Token: {token}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.file = self.sock.makefile("rb")
        status_line = self.file.readline().decode()
        self.status = int(status_line.split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline().decode().strip()):
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.events: list[tuple[str, Any]] = []  # (kind, data) in arrival order
        self.comments: list[str] = []
        self.ended = threading.Event()
        self._lock = threading.Lock()
        self._text = ""
        self.body = b""
        if self.status != 200:
            length = int(self.headers.get("content-length", "0"))
            self.body = self.file.read(length) if length else b""
            self.ended.set()
            self.close()
            return
        self.sock.settimeout(None)
        if read:
            self.start()

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    @property
    def error(self) -> dict[str, Any]:
        return json.loads(self.body)["error"]

    def _run(self) -> None:
        chunked = "chunked" in self.headers.get("transfer-encoding", "")
        try:
            while True:
                if chunked:
                    size = int(self.file.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        break
                    data = self.file.read(size)
                    self.file.readline()
                else:
                    data = self.file.read1(65536)
                    if not data:
                        break
                self._feed(data.decode())
        except (OSError, ValueError):
            pass
        finally:
            self.ended.set()

    def _feed(self, text: str) -> None:
        self._text += text
        *blocks, self._text = self._text.split("\n\n")
        with self._lock:
            for block in blocks:
                kind, data = "message", []
                for line in block.split("\n"):
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                    elif line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                if data:
                    self.events.append((kind, json.loads("\n".join(data))))

    def seen(self, kind: str | None = None) -> list[Any]:
        with self._lock:
            return [data for k, data in self.events if kind is None or k == kind]

    def changes(self, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.seen("change") if all(e.get(k) == v for k, v in match.items())]

    def wait(self, condition: Callable[["EventReader"], Any], what: str, timeout: float = 60) -> Any:
        return wait_for(lambda: condition(self), timeout,
                        lambda: f"{what}; events so far: {self.events[-20:]}", every=0.05)

    def wait_change(self, timeout: float = 60, **match: Any) -> dict[str, Any]:
        return self.wait(lambda r: next(iter(r.changes(**match)), None), f"a change {match}", timeout)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> "EventReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

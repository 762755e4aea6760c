"""HTTP listeners for the metadata service, one inside each DHCP namespace.

Guests reach 169.254.169.254:80 through the DHCP port of their network (an
option-121 route that dnsmasq pushes), so the listening socket must live in
that network's namespace ``qdhcp-<network id>``.  A socket stays in the
namespace it was created in, so a short-lived thread enters the namespace
(setns(2)), creates and binds the socket and ends; trio then serves it from
the host namespace like any other socket.  Which network a request came from
is known from the listener it arrived on, and the guest from its source
address, which the bridge's anti-spoofing rules vouch for.

The HTTP layer is deliberately small (h11): one request per connection, a
bounded request head and body, a deadline per connection, GET and HEAD (and
POST of a guest's password, when compute hands over ``first``, and of a stack's
signed signal URL, when the node hands over ``signal``).
Nothing a client sends can end a listener, let alone the process.

Listener life cycle (per namespace):

    binding --(socket bound)--> listening --(sync drops it | namespace gone)--> closed
       |                                                                          ^
       +--(namespace missing | sync drops it)-------------------------------------+

A binding listener retries while the address is not there yet (the data
plane may add 169.254.169.254/32 a moment after calling ``sync``).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Awaitable, Callable

import h11
import trio

from cloudbox.network.hostplan import METADATA_ADDRESS
from cloudbox.network.netns import NETNS_DIR, in_fresh_thread, setns

log = logging.getLogger(__name__)

METADATA_PORT = 80


# answer(network id, source ip, path) -> (status, content type, body)
Answer = Callable[[str, str, str], Awaitable[tuple[int, str, bytes]]]
# first(method, network id, source ip, path, body) -> an answer, or None for the usual one: compute
# answers a guest's password (Nova's POST and GET of /openstack/<version>/password) before the files
FirstAnswer = Callable[[str, str, str, str, bytes], Awaitable[tuple[int, str, bytes] | None]]
# signal(network id, source ip, path, query, body) -> an answer, or None when the path is not its own:
# orchestration takes a guest's POST of a wait condition handle's signed URL, the one API path a guest reaches
SignalAnswer = Callable[[str, str, str, str, bytes], Awaitable[tuple[int, str, bytes] | None]]

# A namespace name is a file name under NETNS_DIR; anything else is refused
# rather than opened.
_NAMESPACE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")
# accept() errors that mean "out of resources for now", not "listener broken"
# (the same set trio's serve_listeners sleeps on).
_ACCEPT_CAPACITY_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


class NamespaceGone(Exception):
    """The namespace does not exist (any more)."""


@dataclass
class ListenerStatus:
    namespace: str
    network_id: str
    state: str  # "binding" or "listening"


@dataclass(eq=False)
class _Listener:
    namespace: str
    network_id: str
    state: str = "binding"
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    listening: trio.Event = field(default_factory=trio.Event)
    closed: trio.Event = field(default_factory=trio.Event)


class MetadataListeners:
    """Keeps one metadata listener in each wanted namespace (see ``sync``)."""

    def __init__(
        self,
        answer: Answer,
        *,
        address: str = METADATA_ADDRESS,
        port: int = METADATA_PORT,
        netns_dir: str = NETNS_DIR,
        connection_timeout: float = 10.0,
        max_request_head: int = 8192,
        max_request_body: int = 65536,
        max_connections: int = 64,
        namespace_check_interval: float = 2.0,
        bind_retry_max: float = 1.0,
    ) -> None:
        self._answer = answer
        self._address = address
        self._port = port
        self._netns_dir = netns_dir
        self._connection_timeout = connection_timeout
        self._max_request_head = max_request_head
        self._max_request_body = max_request_body
        self._max_connections = max_connections
        self._namespace_check_interval = namespace_check_interval
        self._bind_retry_max = bind_retry_max
        self._listeners: dict[str, _Listener] = {}
        self.first: FirstAnswer | None = None  # set by compute: the guest's password
        self.signal: SignalAnswer | None = None  # set by the node: orchestration's signed signal URLs
        self._nursery: trio.Nursery | None = None
        self._sync_lock = trio.Lock()

    # --- public ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Owns the listeners' tasks; ``sync`` works while this runs."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._listeners.clear()

    async def sync(self, wanted: dict[str, str]) -> None:
        """Listen in exactly the namespaces of ``wanted`` ({namespace: network id}).

        Starts the missing listeners (they bind as soon as the address is
        there; see ``wait_listening``) and stops the unwanted ones; when it
        returns, every stopped listener's socket is closed, so the caller may
        delete those namespaces.  Idempotent.
        """
        for namespace in wanted:
            if not _NAMESPACE_NAME.fullmatch(namespace):
                raise ValueError(f"not a network namespace name: {namespace!r}")
        if self._nursery is None:
            raise RuntimeError("MetadataListeners.run() is not running")
        async with self._sync_lock:
            stopping = [
                listener for namespace, listener in self._listeners.items()
                if wanted.get(namespace) != listener.network_id
            ]
            for listener in stopping:
                listener.scope.cancel()
                del self._listeners[listener.namespace]
            for listener in stopping:
                await listener.closed.wait()
            for namespace, network_id in wanted.items():
                if namespace not in self._listeners:
                    listener = _Listener(namespace, network_id)
                    self._listeners[namespace] = listener
                    self._nursery.start_soon(self._run_listener, listener)

    def listeners(self) -> dict[str, ListenerStatus]:
        """The current listeners by namespace, binding or listening (for status and tests)."""
        return {
            namespace: ListenerStatus(namespace, listener.network_id, listener.state)
            for namespace, listener in self._listeners.items()
        }

    async def wait_listening(self, namespace: str) -> None:
        """Return once the listener of ``namespace`` is bound; KeyError if there is none."""
        listener = self._listeners[namespace]
        async with trio.open_nursery() as nursery:
            # a listener that ends before binding (namespace gone) must not hang us
            async def ended() -> None:
                await listener.closed.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(ended)
            await listener.listening.wait()
            nursery.cancel_scope.cancel()
        if not listener.listening.is_set():
            raise KeyError(namespace)

    # --- one listener ------------------------------------------------------------------

    async def _run_listener(self, listener: _Listener) -> None:
        context = {"namespace": listener.namespace, "network_id": listener.network_id}
        try:
            with listener.scope:
                try:
                    sock, identity = await self._bind(listener)
                except NamespaceGone:
                    log.info("metadata listener dropped: namespace missing", extra=context)
                    return
                with sock:
                    listener.state = "listening"
                    listener.listening.set()
                    log.info("metadata listener up", extra={**context, "address": f"{self._address}:{self._port}"})
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._watch_namespace, listener, identity, nursery.cancel_scope)
                        await self._accept_loop(trio.SocketListener(sock), listener, nursery)
        except Exception:
            # a listener's failure is logged and the listener dropped; the next
            # sync starts it again.  The process and the other listeners go on.
            log.exception("metadata listener failed", extra=context)
        finally:
            if self._listeners.get(listener.namespace) is listener:
                del self._listeners[listener.namespace]
            listener.closed.set()
            log.info("metadata listener closed", extra=context)

    async def _bind(self, listener: _Listener) -> tuple[trio.socket.SocketType, tuple[int, int]]:
        path = os.path.join(self._netns_dir, listener.namespace)
        delay = 0.05
        waited_logged = False
        while True:
            try:
                stdlib_sock, identity = await trio.to_thread.run_sync(
                    in_fresh_thread, _bind_in_namespace, path, self._address, self._port
                )
            except OSError as exc:
                if exc.errno not in (errno.EADDRNOTAVAIL, errno.EADDRINUSE):
                    raise
                if not waited_logged:
                    log.info("metadata listener waiting for its address",
                             extra={"namespace": listener.namespace, "network_id": listener.network_id,
                                    "why": os.strerror(exc.errno)})
                    waited_logged = True
                await trio.sleep(delay)
                delay = min(delay * 2, self._bind_retry_max)
                continue
            # no checkpoint between the thread's return and taking ownership,
            # so a cancellation cannot leak the socket
            return trio.socket.from_stdlib_socket(stdlib_sock), identity

    async def _watch_namespace(self, listener: _Listener, identity: tuple[int, int],
                               scope: trio.CancelScope) -> None:
        """Close the listener when its namespace is deleted or replaced.

        Our open socket keeps a deleted namespace (and its veth) alive in the
        kernel, so it must not outlive the namespace's name.
        """
        path = os.path.join(self._netns_dir, listener.namespace)
        while True:
            await trio.sleep(self._namespace_check_interval)
            try:
                st = os.stat(path)
                current = (st.st_dev, st.st_ino)
            except OSError:
                current = None
            if current != identity:
                log.info("metadata listener dropped: namespace gone",
                         extra={"namespace": listener.namespace, "network_id": listener.network_id})
                scope.cancel()
                return

    async def _accept_loop(self, server: trio.SocketListener, listener: _Listener, nursery: trio.Nursery) -> None:
        slots = trio.Semaphore(self._max_connections)
        while True:
            await slots.acquire()
            try:
                stream = await server.accept()
            except OSError as exc:
                slots.release()
                if exc.errno in _ACCEPT_CAPACITY_ERRORS:
                    log.warning("metadata accept out of resources", extra={"namespace": listener.namespace,
                                                                           "why": os.strerror(exc.errno)})
                    await trio.sleep(0.1)
                    continue
                raise
            nursery.start_soon(self._serve_connection, stream, listener.network_id, slots)

    # --- one connection ------------------------------------------------------------------

    async def _serve_connection(self, stream: trio.SocketStream, network_id: str, slots: trio.Semaphore) -> None:
        try:
            try:
                source_ip = str(stream.socket.getpeername()[0])
            except OSError:
                return  # the client is already gone
            with trio.move_on_after(self._connection_timeout) as deadline:
                await self._exchange(stream, network_id, source_ip)
            if not deadline.cancelled_caught:
                await _linger(stream)
        except Exception:
            log.exception("metadata connection failed", extra={"network_id": network_id})
        finally:
            slots.release()
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _exchange(self, stream: trio.SocketStream, network_id: str, source_ip: str) -> None:
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_request_head)
        request: h11.Request | None = None
        body_size = 0
        body = b""
        while True:
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                await self._send(stream, http, exc.error_status_hint, "text/plain", b"bad request", head_only=False)
                self._log(network_id, source_ip, "", "", exc.error_status_hint)
                return
            if event is h11.NEED_DATA:
                # Reading the head in pieces no larger than its limit lets
                # h11 see (and refuse) an oversized head before it completes;
                # one big read could hand it a whole 60 kB head at once.
                try:
                    data = await stream.receive_some(self._max_request_head if request is None else 65536)
                except (trio.BrokenResourceError, OSError):
                    return
                http.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body_size += len(event.data)
                if body_size > self._max_request_body:
                    await self._send(stream, http, 413, "text/plain", b"request too large", head_only=False)
                    self._log(network_id, source_ip, _method(request), "", 413)
                    return
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed before a whole request: nothing to answer
                return
        assert request is not None  # h11 yields Request before EndOfMessage
        method = _method(request)
        head_only = method == "HEAD"
        posts = self.first is not None or self.signal is not None
        if method not in ("GET", "HEAD", "POST") or (method == "POST" and not posts):
            await self._send(stream, http, 405, "text/plain", b"method not allowed", head_only=False,
                             extra_headers=[("Allow", "GET, HEAD, POST" if posts else "GET, HEAD")])
            self._log(network_id, source_ip, method, "", 405)
            return
        path = request_path(request.target)
        if path is None:
            await self._send(stream, http, 400, "text/plain", b"bad request target", head_only=head_only)
            self._log(network_id, source_ip, method, "", 400)
            return
        try:
            first = await self.first(method, network_id, source_ip, path, body) if self.first else None
            if first is None and method == "POST" and self.signal is not None:
                first = await self.signal(network_id, source_ip, path, request_query(request.target), body)
            if first is not None:
                status, content_type, body = first
            elif method == "POST":  # only what ``first`` takes may be posted
                status, content_type, body = 405, "text/plain", b"method not allowed"
            else:
                status, content_type, body = await self._answer(network_id, source_ip, path)
            if not (isinstance(status, int) and 200 <= status <= 599 and isinstance(content_type, str)
                    and isinstance(body, bytes)):
                raise TypeError(f"answer returned {type(status).__name__}, {type(content_type).__name__}, "
                                f"{type(body).__name__}")
        except Exception:
            log.exception("metadata answer failed", extra={"network_id": network_id, "source_ip": source_ip,
                                                           "path": path[:200]})
            status, content_type, body = 500, "text/plain", b"internal error"
        await self._send(stream, http, status, content_type, body, head_only=head_only)
        self._log(network_id, source_ip, method, path, status)

    async def _send(self, stream: trio.SocketStream, http: h11.Connection, status: int, content_type: str,
                    body: bytes, *, head_only: bool, extra_headers: list[tuple[str, str]] | None = None) -> None:
        if http.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return  # too late for an answer; just close
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Connection", "close"),
                   *(extra_headers or [])]
        try:
            reason = HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b""
        try:
            data = http.send(h11.Response(status_code=status, headers=headers, reason=reason)) or b""
            if not head_only:
                data += http.send(h11.Data(data=body)) or b""
            data += http.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            # e.g. a HEAD request h11 already answered without body, or a
            # request head too broken to answer at all
            return
        try:
            await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client left; nothing to do

    @staticmethod
    def _log(network_id: str, source_ip: str, method: str, path: str, status: int) -> None:
        # never the request's body or headers: only what identifies the exchange
        log.info("metadata request", extra={"network_id": network_id, "source_ip": source_ip, "method": method,
                                            "path": path[:200], "status": status})


async def _linger(stream: trio.SocketStream, seconds: float = 1.0, max_bytes: int = 1 << 20) -> None:
    """Half-close, then read what the client still sends, briefly.

    Closing a socket with unread input makes the kernel send a reset, which
    can destroy the answer before the client reads it (an error sent before
    a too-large request was read, say).  A normal client closes on our FIN
    at once; a stubborn one is cut off after ``seconds``.
    """
    try:
        await stream.send_eof()
        with trio.move_on_after(seconds):
            received = 0
            while received < max_bytes:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                received += len(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


def _method(request: h11.Request | None) -> str:
    return request.method.decode("ascii", "replace") if request is not None else ""


def request_path(target: bytes) -> str | None:
    """The decoded path of a request target, or None when it is not one we accept.

    Accepts origin-form ("/a/b?q") and absolute-form ("http://169.254.169.254/a/b");
    the query is dropped (the metadata tree has none).
    """
    try:
        text = target.decode("ascii")
    except UnicodeDecodeError:
        return None
    if text.startswith(("http://", "https://")):
        text = urllib.parse.urlsplit(text).path or "/"
    elif not text.startswith("/"):
        return None
    text = text.split("?", 1)[0].split("#", 1)[0]
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError:
        return None


def request_query(target: bytes) -> str:
    """The raw query of a request target ("" if none): only a signal URL's signature reads it."""
    text = target.decode("ascii", "replace").split("#", 1)[0]
    return text.split("?", 1)[1] if "?" in text else ""


# --- inside the namespace (runs in a thread of its own) ----------------------------------


def _bind_in_namespace(path: str, address: str, port: int) -> tuple[socket.socket, tuple[int, int]]:
    """A listening socket bound to address:port inside the namespace at ``path``.

    Returns the socket and the namespace's identity (device, inode), which
    tells later whether the name still points to the same namespace.
    """
    try:
        namespace_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise NamespaceGone(path) from exc
    try:
        st = os.fstat(namespace_fd)
        home_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                setns(namespace_fd)
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    # the name exists but no namespace is mounted there (being deleted)
                    raise NamespaceGone(path) from exc
                raise
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    # a listener restarted right after closing must not wait for TIME_WAIT
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((address, port))
                    sock.listen(128)
                except BaseException:
                    sock.close()
                    raise
            finally:
                try:
                    setns(home_fd)
                except OSError:
                    pass  # harmless: this thread ends right after
        finally:
            os.close(home_fd)
    finally:
        os.close(namespace_fd)
    return sock, (st.st_dev, st.st_ino)

"""Nothing a client sends can stop a node (issue 12, fault 1 and acceptance 1).

A real node over TLS gets oversized bodies over HTTP/2 and HTTP/1.1 (each must be
answered 413, and the reply must reach a client that sends its whole body before it
reads), then a few thousand malformed inputs: random bytes, broken HTTP/1.1 request
lines and headers, broken and hostile HTTP/2 frames, clients that stop mid-body and
go, oversized headers. Afterwards the node must still be running, serve, and answer
413 and 400 as before. Only loopback traffic; seeded, so a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import struct
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.events import RawData
from hypercorn.protocol.h11 import H11Protocol

from cloudbox.api import serving
from cloudbox.api.serving import LINGER_BYTES
from tests.cloud import Cloud, free_port

TOKENS = "/identity/v3/auth/tokens"
MAX_BODY = 1 << 20  # the default max_body_bytes
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PARALLEL = 16  # malformed connections at once


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A node of this module's own: what the tests send would disturb others' timing."""
    cloud = Cloud(tmp_path_factory.mktemp("robust") / "data", free_port())
    cloud.init()
    cloud.start()
    yield cloud
    cloud.stop()


def alive(node: Cloud) -> None:
    assert node.proc is not None and node.proc.poll() is None, node.log_path.read_text()[-4000:]


def assert_serves(node: Cloud) -> None:
    """The node runs, answers over both protocols, and still refuses bad bodies exactly."""
    alive(node)
    for http2 in (False, True):
        with httpx.Client(base_url=node.url, verify=node.ssl_context(), http2=http2, timeout=20) as client:
            r = client.get("/identity/v3")
            assert r.status_code == 200 and r.http_version == ("HTTP/2" if http2 else "HTTP/1.1"), r.text
            assert r.json()["version"]["id"].startswith("v3.")
            r = client.post(TOKENS, content=b"a" * (MAX_BODY + 1), headers={"Content-Type": "application/json"})
            assert r.status_code == 413, r.text
            r = client.post(TOKENS, content=b'{"auth": ', headers={"Content-Type": "application/json"})
            assert r.status_code == 400, r.text
            assert "not valid JSON" in r.json()["error"]["message"]


def connection_faults(node: Cloud) -> list[str]:
    """Faults the last-resort connection guard had to catch (each one is a bug to fix at its root)."""
    return [line[:300] for line in node.log_path.read_text().splitlines() if "connection failed" in line]


# --- fault 1: oversized bodies ----------------------------------------------------------------
def test_oversized_http2_bodies_are_refused_and_the_node_keeps_serving(node: Cloud) -> None:
    ctx = node.ssl_context()
    for size in (MAX_BODY + 1, 2 * MAX_BODY, 8 * MAX_BODY):
        # A fresh connection each time (curl's way) and several on one connection (a pool's way).
        for _ in range(3):
            with httpx.Client(base_url=node.url, verify=ctx, http2=True, timeout=30) as client:
                r = client.post(TOKENS, content=b"a" * size, headers={"Content-Type": "application/json"})
                assert (r.status_code, r.http_version) == (413, "HTTP/2"), r.text
        with httpx.Client(base_url=node.url, verify=ctx, http2=True, timeout=30) as client:
            for _ in range(3):
                r = client.post(TOKENS, content=b"a" * size, headers={"Content-Type": "application/json"})
                assert (r.status_code, r.http_version) == (413, "HTTP/2"), r.text
            assert client.get("/identity/v3").status_code == 200  # the connection is still good
    assert_serves(node)
    assert connection_faults(node) == []


def test_a_client_reading_while_it_sends_gets_the_413_and_the_upload_is_stopped(node: Cloud) -> None:
    """HTTP/2 with flow control by hand: the reply comes before the body is sent; once the
    client sends past what the node drops, the node resets the stream with NO_ERROR."""
    sock = _tls(node, "h2")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    size = LINGER_BYTES + 10 * MAX_BODY  # more than the node drops after its reply
    conn.send_headers(1, _request_headers("POST", TOKENS, ("content-length", str(size))))
    sock.sendall(conn.data_to_send())
    sent, status, reset = 0, None, None
    sock.settimeout(20)
    while reset is None:
        window = min(conn.local_flow_control_window(1), conn.max_outbound_frame_size, size - sent)
        if window > 0:
            conn.send_data(1, b"a" * window)
            sent += window
            sock.sendall(conn.data_to_send())
            continue
        data = sock.recv(65536)
        assert data, "the node closed the connection"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers)[b":status"]
                assert sent < size
            elif isinstance(event, h2.events.StreamReset):
                reset = event.error_code
        sock.sendall(conn.data_to_send())
    sock.close()
    assert status == b"413" and reset == 0 and LINGER_BYTES < sent < size
    alive(node)


@pytest.mark.parametrize("size", [4 * MAX_BODY, LINGER_BYTES - MAX_BODY])
def test_oversized_http1_bodies_always_get_their_413(node: Cloud, size: int) -> None:
    """Clients that send the whole body before they read (urllib, requests, a raw socket) must
    read the 413: the node drops what they send instead of closing on unread data."""
    ctx = node.ssl_context()
    for _ in range(5):
        request = urllib.request.Request(node.url + TOKENS, data=b"a" * size, method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, context=ctx, timeout=30)
        caught.value.close()  # else the socket stays open until the error is collected
        assert caught.value.code == 413
        assert caught.value.headers["Connection"] == "close"
    for _ in range(5):
        sock = _tls(node, "http/1.1")
        head = f"POST {TOKENS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        sock.sendall(head.encode() + b"a" * size)
        reply = _read_head(sock)
        assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
        sock.close()
    assert_serves(node)


def test_malformed_http2_requests_get_400_as_over_http1(node: Cloud) -> None:
    """Paths that are not ASCII and a CONNECT without :path: HTTP/1.1's parser answers 400; the
    HTTP/2 side raised (connection lost, or a 500 from the framework for the query)."""
    requests = [
        [(":method", "GET"), (":path", b"/identity/v3/projects/\xff"), (":scheme", "https"), (":authority", "x")],
        [(":method", "GET"), (":path", b"/identity/v3?name=\xed\xa0\x80"), (":scheme", "https"), (":authority", "x")],
        [(":method", b"G\xc3\x89T"), (":path", "/identity/v3"), (":scheme", "https"), (":authority", "x")],
        [(":method", "CONNECT"), (":authority", "127.0.0.1:1")],
    ]
    for headers in requests:
        sock = _tls(node, "h2")
        conn = _h2_client()
        conn.send_headers(1, headers, end_stream=True)
        sock.sendall(conn.data_to_send())
        status = None
        while status is None:
            data = sock.recv(65536)
            assert data, f"connection closed for {headers}"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers)[b":status"]
        sock.close()
        assert status == b"400", headers
    for target in (b"/identity/v3/projects/\xff", b"/identity/v3?name=\xed\xa0\x80"):
        sock = _tls(node, "http/1.1")
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_head(sock).startswith(b"HTTP/1.1 400 ")
        sock.close()
    assert_serves(node)
    assert connection_faults(node) == []


# --- acceptance: a few thousand malformed inputs ----------------------------------------------
async def test_malformed_inputs_do_not_stop_the_node(node: Cloud) -> None:
    rng = random.Random(12)
    cases: list[Callable[[], Awaitable[None]]] = []
    for _ in range(450):
        cases.append(lambda r=rng.randbytes(rng.randrange(1, 3000)), p=rng.choice(["h2", "http/1.1"]): _send(node, p, r))
        cases.append(lambda r=rng.randbytes(rng.randrange(1, 600)): _send_plain(node, r))
    for _ in range(900):
        cases.append(lambda r=_broken_http1(rng): _send(node, "http/1.1", r))
    for _ in range(900):
        cases.append(lambda r=_broken_http2(rng): _send(node, "h2", r))
    for _ in range(150):
        cases.append(lambda r=_stopped_mid_body_http1(rng): _send(node, "http/1.1", r))
        cases.append(lambda r=_stopped_mid_body_http2(rng): _send(node, "h2", r))
    for payload in _hostile_http2():
        cases.append(lambda r=payload: _send(node, "h2", r))
    for payload in _oversized_headers():
        cases.append(lambda r=payload[1], p=payload[0]: _send(node, p, r))
    rng.shuffle(cases)
    assert len(cases) >= 3000

    assert node.proc is not None
    sockets_before = _open_files(node.proc.pid)
    limiter = trio.CapacityLimiter(PARALLEL)

    async def run(case: Callable[[], Awaitable[None]]) -> None:
        async with limiter:
            with trio.move_on_after(15):
                await case()

    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            for case in cases:
                nursery.start_soon(run, case)
    await trio.to_thread.run_sync(assert_serves, node)
    assert connection_faults(node) == []
    # Every connection is let go soon after its client went (none waits for a keep-alive timer).
    with trio.fail_after(20):
        while _open_files(node.proc.pid) > sockets_before + 2:
            await trio.sleep(0.2)


# --- the last line: a fault inside one connection -------------------------------------------
async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal ASGI app."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_a_fault_inside_one_connection_closes_only_that_connection(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Whatever hypercorn still gets wrong is logged and ends one connection, not the server."""
    handle = H11Protocol.handle

    async def faulty(self: H11Protocol, event: Any) -> None:
        if isinstance(event, RawData) and b"BOOM" in event.data:
            raise RuntimeError("a fault injected into the protocol")
        await handle(self, event)

    monkeypatch.setattr(H11Protocol, "handle", faulty)
    async with _hello_server() as port:
        assert (await _get(port)).startswith(b"HTTP/1.1 200 ")
        assert await _get(port, b"X-Fault: BOOM\r\n") == b""  # closed, no reply
        assert (await _get(port)).startswith(b"HTTP/1.1 200 ")
    faults = [r for r in caplog.records if r.name == "cloudbox.http" and "connection failed" in r.getMessage()]
    assert len(faults) == 1 and "a fault injected" in caplog.text


async def test_a_listener_that_fails_after_it_started_serves_again(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A fault no client can cause (here: accept raising) is logged; the listener serves again
    on the same socket, and the task that started it never sees the fault."""
    accept = trio.SocketListener.accept
    fail, failed = trio.Event(), trio.Event()

    async def faulty(self: trio.SocketListener) -> trio.SocketStream:
        stream = await accept(self)
        if fail.is_set() and not failed.is_set():
            failed.set()
            await stream.aclose()
            raise RuntimeError("a fault injected into accept")
        return stream

    monkeypatch.setattr(trio.SocketListener, "accept", faulty)
    async with _hello_server() as port:
        assert (await _get(port)).startswith(b"HTTP/1.1 200 ")
        fail.set()
        assert await _get(port) == b""  # the connection the fault struck
        # Connections wait in the backlog until the listener is back.
        for _ in range(3):
            assert (await _get(port)).startswith(b"HTTP/1.1 200 ")
    assert failed.is_set()
    assert "serves again" in caplog.text and "a fault injected into accept" in caplog.text


@asynccontextmanager
async def _hello_server() -> AsyncIterator[int]:
    """``_hello`` served over plain HTTP on a free port by ``serving.serve``; yields the port."""
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serving.serve, _hello, config, shutdown_trigger=shutdown.wait))
        yield int(binds[0].rsplit(":", 1)[1])
        shutdown.set()


async def _get(port: int, headers: bytes = b"") -> bytes:
    """A plain HTTP/1.1 GET, read until the reply's body (b"ok") or the close."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    reply = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some(65536):
            reply += chunk
            if reply.endswith(b"ok"):
                break
    await stream.aclose()
    return reply


# --- what is sent ------------------------------------------------------------------------------
def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _request_headers(method: str, path: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [(":method", method), (":path", path), (":scheme", "https"), (":authority", "127.0.0.1"),
            ("content-type", "application/json"), *extra]


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _h2_client() -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                                               normalize_outbound_headers=False))
    conn.initiate_connection()
    return conn


def _broken_http1(rng: random.Random) -> bytes:
    """A valid request, then broken: bytes flipped, cut, or a known-bad part swapped in."""
    body = b'{"auth": {"identity": {"methods": ["password"]}}}'
    lines = [b"POST " + TOKENS.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", b"Content-Type: application/json",
             b"Content-Length: " + str(len(body)).encode()]
    bad_parts = [
        b"GET /\x00 HTTP/1.1", b"GET / HTTP/9.9", b"G\xffT / HTTP/1.1", b"GET  HTTP/1.1", b"GET / HTTP/1.1 extra",
        b"Content-Length: -1", b"Content-Length: 99999999999999999999", b"Content-Length: 5, 6",
        b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked", b"Host", b": no-name",
        b"X-Bad\x7f: 1", b" folded: header", b"Content-Length: 10\r\nContent-Length: 11", b"Expect: 100-continue",
        b"Connection: upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: !!!", b"PRI * HTTP/2.0",
    ]
    choice = rng.randrange(4)
    if choice == 0:
        lines[rng.randrange(len(lines))] = rng.choice(bad_parts)
    elif choice == 1:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(bad_parts))
    raw = bytearray(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    if choice == 2:
        for _ in range(rng.randrange(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
    elif choice == 3:
        raw = raw[: rng.randrange(1, len(raw))]
    if b"chunked" in raw and rng.random() < 0.5:
        raw += rng.choice([b"zz\r\n", b"5\r\nab\r\n", b"ffffffffffffffffff\r\n", b"0\r\nTrailer\x00: x\r\n\r\n"])
    return bytes(raw)


def _broken_http2(rng: random.Random) -> bytes:
    """The preface, then frames: random ones, or well-formed ones out of place or with bad fields."""
    conn = _h2_client()
    out = bytearray(conn.data_to_send())
    stream = 1
    for _ in range(rng.randrange(1, 8)):
        choice = rng.randrange(8)
        if choice == 0:  # a random frame
            out += _frame(rng.randrange(256), rng.randrange(256), rng.randrange(8), rng.randbytes(rng.randrange(0, 200)))
        elif choice == 1:  # a valid request, maybe cut mid-body
            conn.send_headers(stream, _request_headers("POST", TOKENS, ("content-length", "20")))
            conn.send_data(stream, b'{"auth": 1}' * rng.randrange(0, 3), end_stream=rng.random() < 0.5)
            out += conn.data_to_send()
            stream += 2
        elif choice == 2:  # DATA or HEADERS on a stream never opened, or on stream 0
            out += _frame(rng.choice([0, 1]), rng.randrange(16), rng.choice([0, stream + 2, 2, 2**31 - 1]),
                          rng.randbytes(rng.randrange(0, 64)))
        elif choice == 3:  # a frame whose length disagrees with its kind
            out += _frame(rng.choice([2, 3, 4, 6, 7, 8]), 0, rng.randrange(4), rng.randbytes(rng.randrange(0, 20)))
        elif choice == 4:  # HEADERS with garbage HPACK, padded wrongly or not
            out += _frame(1, rng.choice([4, 5, 8, 0x24, 0x2d]), stream, rng.randbytes(rng.randrange(1, 100)))
            stream += 2
        elif choice == 5:  # WINDOW_UPDATE overflowing or zero
            out += _frame(8, 0, rng.choice([0, 1]), struct.pack(">I", rng.choice([0, 2**31 - 1, 2**32 - 1])))
        elif choice == 6:  # SETTINGS with invalid values
            setting = rng.choice([(2, 7), (4, 2**31), (5, 1), (5, 2**24), (3, 0), (8, 9), (0xFF, 1)])
            out += _frame(4, 0, 0, struct.pack(">HI", *setting))
        else:  # RST_STREAM and GOAWAY, fitting or not
            out += _frame(rng.choice([3, 7]), 0, rng.randrange(4), rng.randbytes(rng.choice([4, 8, 3])))
    return bytes(out)


def _stopped_mid_body_http1(rng: random.Random) -> bytes:
    length = rng.randrange(100, 2 * MAX_BODY)
    head = f"POST {TOKENS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    return head.encode() + b"a" * rng.randrange(0, min(length, 200_000))


def _stopped_mid_body_http2(rng: random.Random) -> bytes:
    conn = _h2_client()
    length = rng.randrange(100, 2 * MAX_BODY)
    conn.send_headers(1, _request_headers("POST", rng.choice([TOKENS, "/image/v2/images"]),
                                          ("content-length", str(length))))
    sent = rng.randrange(0, min(length, 60_000))  # within the initial window, in frames of at most 16 KiB
    return conn.data_to_send() + b"".join(_frame(0, 0, 1, b"a" * n) for n in _chunks(sent, 16_384))


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def _hostile_http2() -> list[bytes]:
    """Frames that hypercorn mishandled at some point: each must close at most its connection."""
    payloads = []
    # PRIORITY for more streams than the priority tree holds (it raised past 1,000).
    conn = _h2_client()
    priority = b"".join(_frame(2, 0, 2 * i + 1, struct.pack(">IB", 0, 15)) for i in range(1100))
    payloads.append(conn.data_to_send() + priority)
    # A plain CONNECT has no :path.
    conn = _h2_client()
    conn.send_headers(1, [(":method", "CONNECT"), (":authority", "127.0.0.1:1")], end_stream=True)
    payloads.append(conn.data_to_send())
    # A request, then data after its reply (the KeyError of fault 1), then more on a reset stream.
    conn = _h2_client()
    conn.send_headers(1, _request_headers("POST", TOKENS, ("content-length", str(10 * MAX_BODY))))
    first = conn.data_to_send()
    payloads.append(first + _frame(0, 0, 1, b"a" * 16_000) * 5 + _frame(3, 0, 1, struct.pack(">I", 8))
                    + _frame(0, 0, 1, b"a" * 100))
    # Many streams opened and reset at once.
    conn = _h2_client()
    for stream in range(1, 400, 2):
        conn.send_headers(stream, _request_headers("GET", "/identity/v3"))
        conn.reset_stream(stream)
    payloads.append(conn.data_to_send())
    # A CONTINUATION flood without END_HEADERS.
    conn = _h2_client()
    payloads.append(conn.data_to_send() + _frame(1, 0, 1, b"\x82") + _frame(9, 0, 1, b"\x00" * 16_000) * 200)
    return payloads


def _oversized_headers() -> list[tuple[str, bytes]]:
    big = "x" * 200_000
    http1 = [f"GET /identity/v3 HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n".encode(),
             f"GET /identity/v3?{big} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
             b"GET /identity/v3 HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(20_000)) + b"\r\n"]
    conn = _h2_client()
    conn.send_headers(1, _request_headers("GET", "/identity/v3", ("x-big", big[:60_000])), end_stream=True)
    return [("http/1.1", p) for p in http1] + [("h2", conn.data_to_send())]


# --- how it is sent ------------------------------------------------------------------------------
def _tls(node: Cloud, alpn: str) -> ssl.SSLSocket:
    ctx = node.ssl_context()
    ctx.set_alpn_protocols([alpn])
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", node.port), timeout=30), server_hostname="127.0.0.1")
    assert sock.selected_alpn_protocol() == alpn
    return sock


def _read_head(sock: ssl.SSLSocket) -> bytes:
    """The status line and headers of a reply (what was read before the node closed, if it did)."""
    reply = b""
    try:
        while b"\r\n\r\n" not in reply and (chunk := sock.recv(65536)):
            reply += chunk
    except (ssl.SSLError, OSError):
        pass
    return reply


async def _send(node: Cloud, alpn: str, payload: bytes) -> None:
    """Send ``payload`` over TLS, read a little of the answer, then go away."""
    ctx = node.ssl_context()
    ctx.set_alpn_protocols([alpn])
    await _send_over(trio.open_ssl_over_tcp_stream("127.0.0.1", node.port, ssl_context=ctx, https_compatible=True),
                     payload)


async def _send_plain(node: Cloud, payload: bytes) -> None:
    """Bytes that are no TLS at all."""
    await _send_over(trio.open_tcp_stream("127.0.0.1", node.port), payload)


async def _send_over(opening: Awaitable[Any], payload: bytes) -> None:
    try:
        stream = await opening
    except (OSError, trio.BrokenResourceError):
        return
    try:
        await stream.send_all(payload)
        with trio.move_on_after(0.5):
            await stream.receive_some(65536)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await _abort(stream)


async def _abort(stream: Any) -> None:
    with trio.move_on_after(1) as scope:
        scope.shield = True
        try:
            await stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


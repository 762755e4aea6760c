"""Request bodies through the guarded HTTP/1.1 protocol (api/serving.GuardedH11Protocol): a body of
known length reaches the app as received, bypassing h11's buffer, and every byte arrives once,
in order, whatever the framing around it (pipelined requests, 100-continue, chunked bodies)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import trio
from hypercorn.config import Config

from cloudbox.api import serving


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers each request with the md5 and length of its body and how many pieces it came in."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    digest, size, pieces = hashlib.md5(), 0, 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        digest.update(message.get("body", b""))
        size += len(message.get("body", b""))
        pieces += 1
        if not message.get("more_body", False):
            break
    body = json.dumps({"md5": digest.hexdigest(), "size": size, "path": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def serving_app(nursery: trio.Nursery) -> tuple[int, trio.Event]:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    stop = trio.Event()
    bound = await nursery.start(lambda task_status: serving.serve(app, config, shutdown_trigger=stop.wait,
                                                                  task_status=task_status))
    return int(bound[0].rsplit(":", 1)[1]), stop


async def read_answers(stream: trio.SocketStream, count: int) -> list[dict[str, Any]]:
    """``count`` JSON answers (each with a Content-Length) from a raw HTTP/1.1 stream."""
    buffer = b""
    answers: list[dict[str, Any]] = []
    while len(answers) < count:
        head, sep, rest = buffer.partition(b"\r\n\r\n")
        if sep:
            if head.startswith(b"HTTP/1.1 100"):
                buffer = rest
                continue
            length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")][0])
            if len(rest) >= length:
                assert head.startswith(b"HTTP/1.1 200"), head
                answers.append(json.loads(rest[:length]))
                buffer = rest[length:]
                continue
        data = await stream.receive_some(65536)
        assert data, "the server closed the connection"
        buffer += data
    return answers


async def test_bodies_arrive_whole_and_in_order() -> None:
    big = os.urandom(3 << 20)
    small = os.urandom(1000)
    async with trio.open_nursery() as nursery:
        port, stop = await serving_app(nursery)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        # a large body in uneven writes, then two pipelined requests in one write: the second's
        # head follows the first's body in the same read
        await stream.send_all(b"PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big) + big[:5000])
        for offset in range(5000, len(big), 700_000):
            await stream.send_all(big[offset:offset + 700_000])
        await stream.send_all(b"PUT /small HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(small) + small
                              + b"PUT /empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        # 100-continue, then a chunked body (h11's own path)
        await stream.send_all(b"PUT /continue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                              b"Content-Length: %d\r\n\r\n" % len(big))
        await stream.send_all(big)
        await stream.send_all(b"PUT /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"%x\r\n" % len(small) + small + b"\r\n0\r\n\r\n")
        answers = await read_answers(stream, 5)
        await stream.aclose()
        stop.set()
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in (("big", big), ("small", small), ("empty", b""))}
    assert answers == [
        {"md5": md5["big"], "size": len(big), "path": "/big"},
        {"md5": md5["small"], "size": len(small), "path": "/small"},
        {"md5": md5["empty"], "size": 0, "path": "/empty"},
        {"md5": md5["big"], "size": len(big), "path": "/continue"},
        {"md5": md5["small"], "size": len(small), "path": "/chunked"},
    ]


async def test_a_body_cut_short_is_not_a_request() -> None:
    async with trio.open_nursery() as nursery:
        port, stop = await serving_app(nursery)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"PUT /short HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 50000)
        await stream.send_eof()
        answer = b""
        while data := await stream.receive_some(65536):
            answer += data
        await stream.aclose()
        stop.set()
    # h11 sees the end of the stream before the body's end: no 200 (the app never finishes its body)
    assert b"HTTP/1.1 200" not in answer

"""Consoles of a real TCG guest (our test guest) through the node's websocket proxy: noVNC's RFB
handshake and a framebuffer update, the serial port's shell both ways while the console log
goes on being written, one-time tokens, and the real `openstack console url show`."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import trio

from cloudbox.console.wsclient import WebSocketClient
from tests.cloud import Cloud, wait_for
from tests.compute_helpers import boot, upload_image, wait_gone, wait_server
from tests.test_compute_libvirt import real_node, stop_and_clean
from tests.test_console_api import V26, V231, refused, remote_console, socket_url, token_of
from tests.test_openstack_cli import openstack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, guest_image: Path):
    node = real_node(tmp_path_factory.mktemp("console") / "data")
    node.start(timeout=120)
    yield node
    with node.client(node.token()) as admin:
        servers = admin.get("/compute/v2.1/servers?all_tenants=1").json().get("servers", [])
        for s in servers:
            admin.delete(f"/compute/v2.1/servers/{s['id']}")
        for s in servers:
            wait_gone(admin, s["id"])
    stop_and_clean(node)


def console_log(node: Cloud, server_id: str) -> str:
    with node.client(node.token()) as admin:
        r = admin.post(f"/compute/v2.1/servers/{server_id}/action", json={"os-getConsoleOutput": {}})
        assert r.status_code == 200, r.text
        return r.json()["output"]


@pytest.fixture(scope="module")
def guest(node: Cloud, guest_image: Path) -> dict:
    with node.client(node.token()) as admin:
        image = upload_image(admin, guest_image, name="guest")
        server = wait_server(admin, boot(admin, image["id"], flavor="1", name="console-guest", networks="none",
                                               config_drive=True)["id"], {"ACTIVE"},
                             timeout=180)
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console_log(node, server["id"]), 240, "the guest to boot")
    return server


class Reader:
    """Bytes from a websocket, read as a stream (RFB messages cross message boundaries)."""

    def __init__(self, client: WebSocketClient) -> None:
        self.client, self.buffer = client, b""

    async def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            message = await self.client.receive()
            assert message is not None, f"closed after {len(self.buffer)} of {count} bytes"
            self.buffer += message if isinstance(message, bytes) else message.encode()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data


async def rfb_session(node: Cloud, url: str) -> tuple[bytes, int, int, bytes]:
    """An RFB 3.8 client through the proxy: the greeting, the screen size and the pixels of a
    first (non-incremental, raw) framebuffer update of the whole screen."""
    with trio.fail_after(60):
        async with await WebSocketClient.connect(socket_url(url), node.ssl_context(), subprotocols=("binary",)) as ws:
            assert ws.subprotocol == "binary"
            read = Reader(ws)
            greeting = await read.exactly(12)
            await ws.send(b"RFB 003.008\n")
            [count] = await read.exactly(1)
            assert count > 0 and 1 in await read.exactly(count)  # security type None (the token was the auth)
            await ws.send(b"\x01")
            assert await read.exactly(4) == b"\0\0\0\0"  # SecurityResult OK
            await ws.send(b"\x01")  # ClientInit: shared
            width, height = struct.unpack(">HH", await read.exactly(4))
            pixel_format = await read.exactly(16)
            bytes_per_pixel = pixel_format[0] // 8
            [name_length] = struct.unpack(">I", await read.exactly(4))
            await read.exactly(name_length)
            await ws.send(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # FramebufferUpdateRequest
            kind, _, rectangles = struct.unpack(">BBH", await read.exactly(4))
            assert kind == 0, f"expected a FramebufferUpdate, got message type {kind}"
            pixels = b""
            for _ in range(rectangles):
                x, y, w, h, encoding = struct.unpack(">HHHHi", await read.exactly(12))
                if encoding == 0:  # raw
                    pixels += await read.exactly(w * h * bytes_per_pixel)
            return greeting, width, height, pixels


async def test_novnc_url_from_the_cli_shows_the_guest_screen_once(node: Cloud, guest: dict):
    shown = json.loads(openstack(node, "console", "url", "show", "--novnc", guest["id"], "-f", "json").stdout)
    assert shown["type"] == "novnc"
    url = shown["url"]
    assert url.startswith(f"{node.url}/ui/console/vnc.html?path=")
    greeting, width, height, pixels = await rfb_session(node, url)
    assert greeting in (b"RFB 003.008\n", b"RFB 003.007\n", b"RFB 003.003\n")
    assert width >= 640 and height >= 400
    assert len(pixels) >= width * height  # the whole screen came
    assert pixels.count(0) < len(pixels)  # and something is drawn on it: the guest's text console
    # The same URL again: its token was spent.
    assert await refused(node, socket_url(url)) == 401
    with node.client(node.token()) as admin:
        r = admin.get(f"/compute/v2.1/os-console-auth-tokens/{token_of(url)}", headers=V231)
        assert r.status_code == 404, r.text  # used: the admin's look says so too


async def test_the_serial_console_is_interactive_and_the_log_goes_on(node: Cloud, guest: dict):
    shown = json.loads(openstack(node, "console", "url", "show", "--serial", guest["id"], "-f", "json").stdout)
    url = shown["url"]
    assert url.startswith(f"wss://127.0.0.1:{node.port}/console/serial?token=")
    seen = ""
    with trio.fail_after(60):
        async with await WebSocketClient.connect(url, node.ssl_context()) as ws:
            await ws.send(b"")  # an empty message is nothing to pass on, not a fault
            await ws.send("\n")
            await ws.send(b"echo CONSOLE-$((6*7))\n")  # the guest's shell works it out: proof it read the line
            while "CONSOLE-42" not in seen:
                message = await ws.receive()
                assert message is not None, f"closed; seen: {seen[-500:]!r}"
                seen += message.decode(errors="replace") if isinstance(message, bytes) else message
    # QEMU wrote the same to the console log, connected or not.
    wait_for(lambda: "CONSOLE-42" in console_log(node, guest["id"]), 30, "the console log to have the answer")
    assert "CLOUDBOX-GUEST: ready" in openstack(node, "console", "log", "show", guest["id"]).stdout
    assert await refused(node, url) == 401  # one connection per token


async def test_a_second_console_of_the_same_kind_with_a_new_token(node: Cloud, guest: dict):
    with node.client(node.token()) as admin:
        r = admin.post(f"/compute/v2.1/servers/{guest['id']}/action", json={"os-getVNCConsole": {"type": "novnc"}})
        assert r.status_code == 200, r.text
        greeting, *_ = await rfb_session(node, r.json()["console"]["url"])
        assert greeting.startswith(b"RFB 003.00")
        r = remote_console(admin, guest["id"], headers=V26)
        assert r.status_code == 200
        greeting, *_ = await rfb_session(node, r.json()["remote_console"]["url"])
        assert greeting.startswith(b"RFB 003.00")


def test_qemu_listens_on_no_tcp_port_for_vnc(node: Cloud, guest: dict):
    from tests.test_compute_libvirt import qemu_pid

    pid = qemu_pid(guest["id"])
    assert pid is not None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    vnc = [cmdline[i + 1] for i, arg in enumerate(cmdline) if arg == b"-vnc"]
    assert vnc and all(b"unix:" in v for v in vnc), vnc

"""A console of a guest on another node: two real nodes (libvirt, TCG) in network namespaces;
the node that was asked answers the URL, and its proxy reaches the guest's node over the peer
port (mutual TLS with node certificates), where the token is checked and spent."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
import trio

from cloudbox.console.wsclient import Rejected, WebSocketClient
from tests.cloud import wait_for
from tests.cluster_net import Node
from tests.compute_helpers import LATEST
from tests.test_cluster_guests import REAL, console, two_real_nodes  # noqa: F401  (the fixture)
from tests.test_console_api import V26, V231, token_of

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces, libvirt and bridges need root"),
]


async def test_a_console_through_the_node_that_does_not_run_the_guest(two_real_nodes: list[Node],
                                                                      guest_image: Path):
    one, two = two_real_nodes
    one.init(*REAL)
    one.serve()
    joined = two.join(one.cluster_add("node2"), *REAL, fake=False)
    assert joined.returncode == 0, joined.stderr
    two.password = one.password
    with one.admin(timeout=120) as c:
        image = c.post("/image/v2/images", json={"name": "guest", "disk_format": "qcow2",
                                                  "container_format": "bare", "visibility": "public"}).json()
        r = c.put(f"/image/v2/images/{image['id']}/file", content=guest_image.read_bytes(),
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        r = c.post("/compute/v2.1/servers", headers=LATEST, json={"server": {
            "name": "far", "flavorRef": "1", "imageRef": image["id"], "networks": "none", "config_drive": True}})
        assert r.status_code == 202, r.text
        server_id = r.json()["server"]["id"]

    def active() -> dict | None:
        with one.admin() as c:
            server = c.get(f"/compute/v2.1/servers/{server_id}", headers=LATEST).json()["server"]
        assert server["status"] != "ERROR", server.get("fault")
        return server if server["status"] == "ACTIVE" else None

    server = wait_for(active, 300, "the server to be ACTIVE")
    runs, other = (one, two) if server["OS-EXT-SRV-ATTR:host"] == one.name else (two, one)
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(other, server_id), 300, "the guest to boot")

    with other.admin() as c:  # asked of the node that does not run the guest
        r = c.post(f"/compute/v2.1/servers/{server_id}/remote-consoles", headers=V26,
                   json={"remote_console": {"protocol": "serial", "type": "serial"}})
        assert r.status_code == 200, r.text
        url = r.json()["remote_console"]["url"]
        assert url.startswith(f"wss://{other.ip}:")
        # The admin's look at the token is answered by the guest's node.
        r = c.get(f"/compute/v2.1/os-console-auth-tokens/{token_of(url)}", headers=V231)
        assert r.status_code == 200 and r.json()["console"]["host"] == runs.name, r.text
    context = ssl.create_default_context(cafile=str(other.ca))
    seen = ""
    with trio.fail_after(60):
        async with await WebSocketClient.connect(url, context) as ws:
            await ws.send(b"\necho FAR-$((6*7))\n")
            while "FAR-42" not in seen:
                message = await ws.receive()
                assert message is not None, seen[-500:]
                seen += message.decode(errors="replace") if isinstance(message, bytes) else message
    # Spent on the guest's node: a second use is refused, through either node.
    for node in (other, runs):
        with pytest.raises(Rejected) as refused:
            await WebSocketClient.connect(url.replace(other.url.split("//")[1], node.url.split("//")[1]),
                                          ssl.create_default_context(cafile=str(node.ca)))
        assert refused.value.status == 401

"""Issue #5 with real guests: two nodes, each a real `cloudbox serve` with libvirt (TCG) and the
linux data plane in its own network namespace, joined into one cloud.  Two guests of one tenant
network, kept apart by an anti-affinity group, boot on different nodes and reach each other over
the VXLAN tunnel between the nodes; the image, uploaded through node 1, is copied to node 2 when
node 2 boots from it; console output and actions on node 2's guest are asked through node 1.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import pytest

from tests.cloud import wait_for
from tests.cluster_net import Node, Underlay
from tests.guest_dirs import guest_dir
from tests.compute_helpers import LATEST

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces, libvirt and bridges need root"),
]

REAL = ("--set", "compute_driver=libvirt", "--set", "network_driver=linux")

SERVE = """#!/bin/sh
mkdir -p /www && echo "hello-from-$(hostname)" > /www/index.html && httpd -p 8080 -h /www && echo "CHECK serving"
"""

# (Debian's busybox wget crashes on -T: timeouts come from `timeout`.)
PROBE = """#!/bin/sh
try() {{ n=$1; shift; i=0; while [ $i -lt $n ]; do "$@" >/dev/null 2>&1 && return 0; i=$((i+1)); sleep 1; done; return 1; }}
if try 90 timeout 5 wget -q -O /tmp/a http://{peer}:8080/; then echo "CHECK peer-http $(cat /tmp/a)"; else echo "CHECK peer-http failed"; fi
if try 10 ping -c 1 -W 2 {peer}; then echo "CHECK peer-ping ok"; else echo "CHECK peer-ping failed"; fi
echo "CHECK done"
"""


def checks(log: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"user-data: CHECK (\S+) ?(.*)", log)}


def console(node: Node, server_id: str) -> str:
    with node.admin(timeout=60) as c:
        r = c.post(f"/compute/v2.1/servers/{server_id}/action", json={"os-getConsoleOutput": {}})
        assert r.status_code == 200, r.text
        return r.json()["output"]


def wait_active(node: Node, server_id: str, timeout: float = 300) -> dict:
    def active() -> dict | None:
        with node.admin() as c:
            server = c.get(f"/compute/v2.1/servers/{server_id}", headers=LATEST).json()["server"]
        assert server["status"] != "ERROR", server.get("fault")
        return server if server["status"] == "ACTIVE" else None

    return wait_for(active, timeout, f"server {server_id} to be ACTIVE")


@pytest.fixture
def two_real_nodes(tmp_path: Path):
    net = Underlay(2, guest_dir(tmp_path, "nodes"))  # where QEMU's user may search (tests/guest_dirs.py)
    net.up()
    nodes = [net.node(1), net.node(2)]
    try:
        yield nodes
    finally:
        for node in nodes:
            if node.pid():
                node.cli("stop", "--data-dir", str(node.data_dir), check=False)
            if (node.data_dir / "node.json").exists():
                node.cli("teardown-host-network", "--data-dir", str(node.data_dir), check=False)
        net.down()


def test_guests_on_two_nodes_reach_each_other(two_real_nodes: list[Node], guest_image: Path):
    one, two = two_real_nodes
    one.init(*REAL)
    one.serve()
    token = one.cluster_add("node2")
    joined = two.join(token, *REAL, fake=False)
    assert joined.returncode == 0, joined.stderr
    two.password = one.password  # one cloud, one admin
    members = {m["name"]: m for m in one.cluster_list()}
    assert set(members) == {"node1", "node2"} and all(m["up"] for m in members.values()), members

    with one.admin(timeout=120) as c:
        image = c.post("/image/v2/images", json={"name": "guest", "disk_format": "qcow2",
                                                  "container_format": "bare", "visibility": "public"}).json()
        r = c.put(f"/image/v2/images/{image['id']}/file", content=guest_image.read_bytes(),
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        net = c.post("/network/v2.0/networks", json={"network": {"name": f"stretch-{uuid.uuid4().hex[:6]}"}}).json()["network"]
        assert net["provider:network_type"] == "vxlan", net
        r = c.post("/network/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "ip_version": 4, "cidr": "192.168.50.0/24"}})
        assert r.status_code == 201, r.text
        group = c.post("/compute/v2.1/os-server-groups", headers={"OpenStack-API-Version": "compute 2.64"},
                       json={"server_group": {"name": "apart", "policy": "anti-affinity"}}).json()["server_group"]

        def boot(name: str, ip: str, user_data: str) -> str:
            import base64

            r = c.post("/compute/v2.1/servers", json={
                "server": {"name": name, "flavorRef": "42", "imageRef": image["id"],
                           "networks": [{"uuid": net["id"], "fixed_ip": ip}],
                           "user_data": base64.b64encode(user_data.encode()).decode()},
                "os:scheduler_hints": {"group": group["id"]}})
            assert r.status_code == 202, r.text
            return r.json()["server"]["id"]

        a = boot("srv-a", "192.168.50.10", SERVE)
        b = boot("srv-b", "192.168.50.20", PROBE.format(peer="192.168.50.10"))

    server_a, server_b = wait_active(one, a), wait_active(one, b)
    hosts = {server_a["OS-EXT-SRV-ATTR:host"], server_b["OS-EXT-SRV-ATTR:host"]}
    assert hosts == {"node1", "node2"}, hosts
    on_two = a if server_a["OS-EXT-SRV-ATTR:host"] == "node2" else b
    # node 2 booted from an image it did not have: it was copied from node 1.
    assert (two.data_dir / "images" / image["id"]).exists()
    assert (one.data_dir / "images" / image["id"]).stat().st_size == (two.data_dir / "images" / image["id"]).stat().st_size

    # The guest on node 2 is read through node 1 (forwarded to node 2's peer port).
    found = wait_for(lambda: (lambda log: log if "CHECK done" in log else None)(console(one, b)), 420,
                     "srv-b to finish its checks")
    got = checks(found)
    assert got.get("peer-http") == "hello-from-srv-a", found[-3000:]
    assert got.get("peer-ping") == "ok", found[-3000:]
    assert "vx-" + net["id"][:11] in two.underlay.exec(2, "ip", "-o", "link", "show", "type", "vxlan").stdout

    # An action on node 2's guest through node 1 is carried out by node 2.
    with one.admin() as c:
        r = c.post(f"/compute/v2.1/servers/{on_two}/action", json={"os-stop": None})
        assert r.status_code == 202, r.text
    wait_for(lambda: (lambda s: s if s["status"] == "SHUTOFF" else None)(
        two.admin().get(f"/compute/v2.1/servers/{on_two}", headers=LATEST).json()["server"]), 120,
        "node 2's guest to stop")
    with one.admin() as c:
        for sid in (a, b):
            assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
    wait_for(lambda: all(one.admin().get(f"/compute/v2.1/servers/{sid}").status_code == 404 for sid in (a, b)),
             120, "both servers to be deleted")
    time.sleep(1)

"""Compute's records with a real guest (real libvirt, real data plane): the guest posts its
password to the metadata service once (a second post is 409, a GET reads it back) and the owner
reads it from os-server-password; server diagnostics come from libvirt's counters of the running guest."""

from __future__ import annotations

import base64
import uuid

import pytest
import trio

from cloudbox.network.metadata_server import MetadataListeners
from tests.cloud import Cloud
from tests.compute_helpers import LATEST, new_project_user, wait_gone, wait_server
from tests.test_compute_libvirt import real_node, stop_and_clean
from tests.test_network_guests import checks, wait_booted
from tests.test_network_metadata import (USER_DATA, Lab, Recorder, guest_fetch, lab,  # noqa: F401 - lab: a fixture
                                         raw_exchange)
from tests.test_openstack_cli import openstack


POSTS = """#!/bin/sh
P=http://169.254.169.254/openstack/latest/password
if wget -q -O /dev/null --post-data='{secret}' $P; then echo "CHECK first-post ok"; else echo "CHECK first-post failed"; fi
if wget -q -O /dev/null --post-data='again' $P 2>/tmp/err; then echo "CHECK second-post ok"; else echo "CHECK second-post $(cat /tmp/err)"; fi
echo "CHECK read-back $(wget -q -O - $P)"
"""


async def test_listeners_ask_compute_first(lab: Lab):
    """Compute's first answer (the password) goes back as it is, with the posted body; None falls
    back to the usual answer, or 405 for a POST."""
    seen: list[tuple[str, str, str, str, bytes]] = []

    async def first(method: str, network_id: str, source_ip: str, path: str,
                    body: bytes) -> tuple[int, str, bytes] | None:
        seen.append((method, network_id, source_ip, path, body))
        if not path.endswith("/password"):
            return None
        return (200, "text/plain", b"") if method == "POST" and len(seen) == 1 else (409, "text/plain", b"again")

    listeners = MetadataListeners(Recorder(lab.network_id, lab.guest_ip))
    listeners.first = first
    lab.add_metadata_address()
    async with trio.open_nursery() as nursery:
        await nursery.start(listeners.run)
        await listeners.sync({lab.dhcp: lab.network_id})
        with trio.fail_after(10):
            await listeners.wait_listening(lab.dhcp)
        request = b"POST /openstack/latest/password HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecret"
        assert (await raw_exchange(lab, request)).startswith(b"HTTP/1.1 200 ")
        assert (await raw_exchange(lab, request)).startswith(b"HTTP/1.1 409 ")
        assert seen[0] == ("POST", lab.network_id, lab.guest_ip, "/openstack/latest/password", b"secret")
        code, body = await guest_fetch(lab, "http://169.254.169.254/openstack/latest/user_data")
        assert (code, body) == (200, USER_DATA)  # not compute's: the usual answer
        answer = await raw_exchange(lab, b"POST /openstack/latest/user_data HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 405 ")
        answer = await raw_exchange(lab, b"PUT /openstack/latest/password HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 405 ") and b"allow: get, head, post" in answer.lower()
        nursery.cancel_scope.cancel()


@pytest.fixture(scope="module")
def node(tmp_path_factory, guest_image):
    node = real_node(tmp_path_factory.mktemp("records") / "data")
    node.start(timeout=120)
    openstack(node, "image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--public",
              "--file", str(guest_image), "cirros")
    yield node
    stop_and_clean(node)


@pytest.mark.slow
def test_guest_password_and_diagnostics(node: Cloud):
    admin = node.client(node.token())
    image = admin.get("/image/v2/images?name=cirros").json()["images"][0]["id"]
    _project, _user, token = new_project_user(node, admin)
    member = node.client(token)
    net = member.post("/network/v2.0/networks", json={"network": {"name": "rec"}}).json()["network"]
    assert member.post("/network/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": "192.168.7.0/24"}}).status_code == 201
    secret = base64.b64encode(uuid.uuid4().bytes).decode()
    r = member.post("/compute/v2.1/servers", headers=LATEST, json={"server": {
        "name": "pw", "imageRef": image, "flavorRef": "42", "networks": [{"uuid": net["id"]}],
        "user_data": base64.b64encode(POSTS.format(secret=secret).encode()).decode()}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    server = wait_server(member, sid, {"ACTIVE"}, timeout=180)
    log = wait_booted(node, sid)
    found = checks(log)
    assert found["first-post"] == "ok", log[-2000:]
    assert "409" in found["second-post"], log[-2000:]
    assert found["read-back"] == secret  # the metadata service's GET answers what was posted
    path = f"/compute/v2.1/servers/{sid}/os-server-password"
    assert member.get(path).json() == {"password": secret}
    assert member.delete(path).status_code == 204
    assert member.get(path).json() == {"password": ""}

    diag = admin.get(f"/compute/v2.1/servers/{sid}/diagnostics", headers={"OpenStack-API-Version": "compute 2.48"})
    assert diag.status_code == 200, diag.text
    d = diag.json()
    assert (d["state"], d["driver"], d["num_cpus"], d["num_nics"]) == ("running", "libvirt", 1, 1)
    assert d["hypervisor"] in ("qemu", "kvm") and d["cpu_details"][0]["time"] > 0
    assert d["memory_details"]["maximum"] == server["flavor"]["ram"]
    mac = member.get(f"/network/v2.0/ports?device_id={sid}").json()["ports"][0]["mac_address"]
    assert d["nic_details"][0]["mac_address"] == mac and d["nic_details"][0]["tx_packets"] > 0
    assert any(disk["read_bytes"] > 0 for disk in d["disk_details"])
    flat = admin.get(f"/compute/v2.1/servers/{sid}/diagnostics", headers={"OpenStack-API-Version": "compute 2.1"}).json()
    assert flat["cpu0_time"] > 0 and flat["memory"] == server["flavor"]["ram"] * 1024 and flat["vda_read"] > 0

    assert member.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
    wait_gone(member, sid, timeout=120)
    for client in (member, admin):
        client.close()

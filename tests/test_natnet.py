"""The per-node NAT network: pure parts, and a real bridge with taps (root, no guests)."""

from __future__ import annotations

import subprocess

import trio

from cloudbox.network.natnet import NatNetwork, Port, allocate_ip, network_data, render_dhcp_hosts, render_nft
from tests.cloud import free_port


def test_allocate_ip_skips_the_gateway_and_taken_addresses():
    assert allocate_ip("10.1.0.0/29", set()) == "10.1.0.2"
    assert allocate_ip("10.1.0.0/29", {"10.1.0.2", "10.1.0.3"}) == "10.1.0.4"
    assert allocate_ip("10.1.0.0/30", {"10.1.0.2"}) is None


def test_rules_isolate_guests_from_the_host_and_each_other():
    rules = render_nft("t", "br0", "10.1.0.0/24")
    assert 'iifname "br0" udp dport 67 accept' in rules
    assert 'iifname "br0" drop' in rules
    assert 'iifname "br0" oifname "br0" drop' in rules
    assert "masquerade" in rules


def test_dhcp_hosts_and_network_data():
    port = Port("0123456789abcdef", "fa:16:3e:00:00:01", "10.1.0.5")
    assert render_dhcp_hosts([port]) == "fa:16:3e:00:00:01,10.1.0.5,tap0123456789a\n"
    data = network_data(port, "10.1.0.0/24")
    assert data["networks"][0]["ip_address"] == "10.1.0.5"
    assert data["networks"][0]["routes"][0]["gateway"] == "10.1.0.1"
    assert data["links"][0]["ethernet_mac_address"] == "fa:16:3e:00:00:01"


def test_bind_sync_and_teardown_on_the_host():
    bridge = f"cbn{free_port()}"
    net = NatNetwork(bridge, "10.98.7.0/24")
    a = Port("aaaaaaaaaaaaaaaa", "fa:16:3e:00:00:0a", "10.98.7.2")
    b = Port("bbbbbbbbbbbbbbbb", "fa:16:3e:00:00:0b", "10.98.7.3")

    async def scenario() -> None:
        await net.sync([a])
        await net.bind(b)
        links = subprocess.run(["bridge", "-d", "link", "show"], capture_output=True, text=True).stdout
        assert a.tap in links and b.tap in links
        for line in links.split("\n\n"):
            if a.tap in line or b.tap in line:
                assert "isolated on" in line
        assert net.hosts_file.read_text().count("fa:16:3e") == 2
        await net.unbind(a)
        assert a.tap not in subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
        await net.sync([b])  # twice the same: nothing changes
        await net.sync([b])
        assert net.hosts_file.read_text() == render_dhcp_hosts([b])

    try:
        trio.run(scenario)
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert net.table in tables
    finally:
        net.teardown()
    assert bridge not in subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert net.table not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout

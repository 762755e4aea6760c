"""What keeps guests where they belong, on the real kernel with real packets: neighbour discovery
spoofing, the host's own and management addresses, and flows cut when the rule that let them in
goes.

As in test_network_dataplane.py a guest is a namespace whose eth0 is the peer of a veth named
like the port's tap, and the outside world is namespaces on the external bridge: traffic goes
only to namespaces these tests make and to loopback.
"""

from __future__ import annotations

import sys
import textwrap
import time
from typing import Callable

from cloudbox.network import render
from tests.test_network_dataplane import Host, host, needs_root, sh  # noqa: F401 - host is a fixture

# One ICMPv6 message to ff02::1 from ``iface`` (the kernel fills in the checksum and the source,
# the link-local address): a neighbour advertisement (override flag) for ``target`` with ``mac``
# as its link-layer address, or a router advertisement (lifetime 1800 s) with ``mac``.
ND_SENDER = textwrap.dedent("""
    import socket, struct, sys
    iface, kind, target, mac = sys.argv[1:5]
    index = socket.if_nametoindex(iface)
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)  # ND is only taken at 255
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    lladdr = bytes.fromhex(mac.replace(":", ""))
    if kind == "na":
        body = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + socket.inet_pton(socket.AF_INET6, target) + bytes([2, 1]) + lladdr
    else:
        body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + bytes([1, 1]) + lladdr
    for _ in range(3):
        s.sendto(body, ("ff02::1", 0, 0, index))
""")


def send_nd(namespace: str, interface: str, kind: str, mac: str, target: str = "::") -> None:
    sh("ip", "netns", "exec", namespace, sys.executable, "-c", ND_SENDER, interface, kind, target, mac)


def wait_for(condition: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def stays(condition: Callable[[], bool], seconds: float = 1.5) -> bool:
    """Whether ``condition`` holds for ``seconds`` (a dropped packet shows as nothing happening)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.05)
    return True


def neighbour_mac(namespace: str, address: str) -> str | None:
    out = sh("ip", "-n", namespace, "-6", "neigh", "show", address, "dev", "eth0").stdout.split()
    return out[out.index("lladdr") + 1] if "lladdr" in out else None


def link_local_ready(namespace: str, interface: str = "eth0") -> bool:
    out = sh("ip", "-n", namespace, "-6", "addr", "show", "dev", interface, "scope", "link").stdout
    return "inet6 fe80" in out and "tentative" not in out


def default_route_via(namespace: str) -> str:
    return sh("ip", "-n", namespace, "-6", "route", "show", "default").stdout


@needs_root
def test_a_guest_can_advertise_neither_a_neighbours_address_nor_itself_as_a_router(host: Host) -> None:
    net, subnet = host.rows.network("10.68.0.0/24")
    ports = [host.rows.port(net, subnet, f"10.68.0.{5 + i}") for i in range(3)]
    plan = host.plan()
    attacker, victim, watcher = (plan.port(p) for p in ports)
    a, b, c = (host.guest(port, f"10.68.0.{5 + i}/24") for i, port in enumerate((attacker, victim, watcher)))
    host.apply()
    dhcp = next(n.dhcp for n in plan.networks if n.dhcp)
    for ns, interface in ((a, "eth0"), (b, "eth0"), (c, "eth0"), (dhcp.namespace, dhcp.interface)):
        wait_for(lambda: link_local_ready(ns, interface), what=f"{ns}'s link-local address")  # DAD done
    victim_lla = render.lla(victim.mac)
    # The watcher learns the victim's link-local address (ND passes; the echo itself needs no rule).
    sh("ip", "netns", "exec", c, "ping", "-6", "-c", "1", "-W", "1", f"{victim_lla}%eth0", check=False)
    wait_for(lambda: neighbour_mac(c, victim_lla) == victim.mac, what="the watcher to learn the victim")

    # The attacker claims the victim's address: dropped at its port, the watcher's entry stays.
    send_nd(a, "eth0", "na", attacker.mac, victim_lla)
    assert stays(lambda: neighbour_mac(c, victim_lla) == victim.mac), neighbour_mac(c, victim_lla)
    # ...and announces itself as a router: the watcher takes no default route from it.
    send_nd(a, "eth0", "ra", attacker.mac)
    assert stays(lambda: default_route_via(c) == ""), default_route_via(c)

    # The same messages from a port without port security (the DHCP namespace) do arrive: the
    # watcher would have believed them.
    send_nd(dhcp.namespace, dhcp.interface, "na", dhcp.mac, victim_lla)
    wait_for(lambda: neighbour_mac(c, victim_lla) == dhcp.mac, what="the unfiltered advertisement")
    send_nd(dhcp.namespace, dhcp.interface, "ra", dhcp.mac)
    wait_for(lambda: "via fe80" in default_route_via(c), what="the unfiltered router advertisement")
    # The attacker's advertisement of its own address still passes.
    sh("ip", "netns", "exec", c, "ping", "-6", "-c", "1", "-W", "1", f"{render.lla(attacker.mac)}%eth0", check=False)
    wait_for(lambda: neighbour_mac(c, render.lla(attacker.mac)) == attacker.mac, what="the attacker's own NA")

"""What keeps guests where they belong, on the real kernel with real packets: neighbour discovery
spoofing, the host's own and management addresses, and flows cut when the rule that let them in
goes.

As in test_network_dataplane.py a guest is a namespace whose eth0 is the peer of a veth named
like the port's tap, and the outside world is namespaces on the external bridge: traffic goes
only to namespaces these tests make and to loopback.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Callable

from types import SimpleNamespace

import pytest
import trio

from cloudbox.errors import SetupError
from cloudbox.network import render
from cloudbox.network.dataplane import DataPlane
from cloudbox.network.driver.fake import FakeNetworkDriver
from cloudbox.network.hostplan import HostNetworks, Management, build_plan
from tests.cloud import wait_for
from tests.test_network_dataplane import (Host, host, needs_root, ping, sh,  # noqa: F401 - host: a fixture
                                          tcp_connects, tcp_listener)
from tests.test_network_reconciler import running_cloud

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
        wait_for(lambda: link_local_ready(ns, interface), 10, f"{ns}'s link-local address", every=0.05)  # DAD done
    victim_lla = render.lla(victim.mac)
    # The watcher learns the victim's link-local address (ND passes; the echo itself needs no rule).
    sh("ip", "netns", "exec", c, "ping", "-6", "-c", "1", "-W", "1", f"{victim_lla}%eth0", check=False)
    wait_for(lambda: neighbour_mac(c, victim_lla) == victim.mac, 10, "the watcher to learn the victim", every=0.05)

    # The attacker claims the victim's address: dropped at its port, the watcher's entry stays.
    send_nd(a, "eth0", "na", attacker.mac, victim_lla)
    assert stays(lambda: neighbour_mac(c, victim_lla) == victim.mac), neighbour_mac(c, victim_lla)
    # ...and announces itself as a router: the watcher takes no default route from it.
    send_nd(a, "eth0", "ra", attacker.mac)
    assert stays(lambda: default_route_via(c) == ""), default_route_via(c)

    # The same messages from a port without port security (the DHCP namespace) do arrive: the
    # watcher would have believed them.
    send_nd(dhcp.namespace, dhcp.interface, "na", dhcp.mac, victim_lla)
    wait_for(lambda: neighbour_mac(c, victim_lla) == dhcp.mac, 10, "the unfiltered advertisement", every=0.05)
    send_nd(dhcp.namespace, dhcp.interface, "ra", dhcp.mac)
    wait_for(lambda: "via fe80" in default_route_via(c), 10, "the unfiltered router advertisement", every=0.05)
    # The attacker's advertisement of its own address still passes.
    sh("ip", "netns", "exec", c, "ping", "-6", "-c", "1", "-W", "1", f"{render.lla(attacker.mac)}%eth0", check=False)
    wait_for(lambda: neighbour_mac(c, render.lla(attacker.mac)) == attacker.mac, 10, "the attacker's own NA", every=0.05)


def management_lan(host: Host) -> tuple[str, str, str, str, str]:
    """A LAN the host reaches through an interface cloudbox did not make, with a machine on it that
    serves TCP 7000 and stands in for the host's cloud's metadata at a 169.254 address the host
    routes to it: (machine's namespace, the LAN, the host's address on it, the machine's address,
    the 169.254 address)."""
    routes = sh("ip", "route").stdout
    third = next(n for n in range(10, 250) if f"10.250.{n}." not in routes)  # a LAN nobody uses here
    lan, host_ip, machine_ip, metadata_ip = f"10.250.{third}.0/24", f"10.250.{third}.1", f"10.250.{third}.2", \
        f"169.254.77.{third}"
    machine = host.namespace("cbxm")
    link = f"cbxm{machine[-8:]}"
    sh("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", machine)
    host.links.append(link)
    sh("ip", "addr", "add", f"{host_ip}/24", "dev", link)
    sh("ip", "link", "set", link, "up")
    sh("ip", "-n", machine, "link", "set", "eth0", "up")
    sh("ip", "-n", machine, "addr", "add", f"{machine_ip}/24", "dev", "eth0")
    sh("ip", "-n", machine, "addr", "add", f"{metadata_ip}/32", "dev", "lo")
    sh("ip", "-n", machine, "route", "add", "default", "via", host_ip)
    sh("ip", "route", "add", f"{metadata_ip}/32", "via", machine_ip, "dev", link)  # goes with the link
    return machine, lan, host_ip, machine_ip, metadata_ip


@needs_root
def test_guests_reach_the_outside_but_not_the_host_nor_its_lans(host: Host) -> None:
    machine, lan, host_lan_ip, machine_ip, metadata_ip = management_lan(host)
    ext = host.rows.network(host.ext_cidr, project="admin", external=True, dhcp=False)
    net, subnet = host.rows.network("10.69.0.0/24")
    port = host.rows.port(net, subnet, "10.69.0.5")
    router = host.rows.router("p1", ext, f"{host.ext_prefix}.10", [(net, subnet)])
    floating = f"{host.ext_prefix}.20"
    host.rows.floating_ip(router, ext, floating, port)
    host.rows.rule(host.rows.default_group("p1"), "ingress", "IPv4", "tcp", 7100, 7100, "0.0.0.0/0")
    guest = host.guest(host.plan().port(port), "10.69.0.5/24", "10.69.0.1")
    observed = trio.run(host.driver.host_networks)
    assert lan in observed.subnets and host_lan_ip in observed.addresses

    def apply(management_cidrs: str) -> None:
        host.apply(build_plan(host.rows.db, host.rows.host, host.node_id, host.ext_bridge, "",
                              management=Management.parse(management_cidrs), host_networks=observed))

    # Only the host's own addresses guarded: the LAN and the 169.254 address are reachable (the
    # path through the host works), the host's address on the LAN is not.
    apply("")
    # The external bridge's range is cloudbox's own (its link carries our ifalias): not a LAN to guard.
    again = trio.run(host.driver.host_networks)
    assert f"{host.ext_prefix}.1" in again.addresses and host.ext_cidr not in again.subnets and lan in again.subnets
    outside = host.external_host(f"{host.ext_prefix}.100")
    for ns in (outside, machine):
        tcp_listener(host, ns, 7000)
    served = tcp_listener(host, guest, 7100)
    assert tcp_connects(guest, machine_ip, 7000) and tcp_connects(guest, metadata_ip, 7000)
    assert not ping(guest, host_lan_ip, wait=1)
    # The default: the host's LANs and 169.254.0.0/16 are out of reach as well...
    apply("auto")
    assert not tcp_connects(guest, machine_ip, 7000)
    assert not tcp_connects(guest, metadata_ip, 7000)
    assert not ping(guest, host_lan_ip, wait=1) and not ping(guest, machine_ip, wait=1)
    # ...while the outside host on the external segment and the gateway (the host) still answer,
    assert tcp_connects(guest, f"{host.ext_prefix}.100", 7000)
    assert ping(guest, f"{host.ext_prefix}.1")
    # and a machine on the LAN still reaches a guest's floating IP and gets the answers: only the
    # flows guests open are dropped.
    sh("ip", "-n", machine, "route", "add", host.ext_cidr, "via", host_lan_ip)
    assert tcp_connects(machine, floating, 7100)
    assert served.stdout.readline().strip() == machine_ip


async def test_the_data_plane_guards_what_the_driver_saw_with_the_setting(tmp_path) -> None:
    driver = FakeNetworkDriver("node-g")
    driver.networks = HostNetworks(("192.0.2.2", "203.0.113.1"), ("192.0.2.0/24",))
    with pytest.raises(SetupError, match="management_cidrs"):
        DataPlane(None, "node-g", "host-g", SimpleNamespace(external_bridge="b", external_interface="",
                                                             management_cidrs="10.0.0.0/8,lan"), driver, None)
    async with running_cloud(tmp_path, driver, "node-g", "host-g", management_cidrs="auto,10.99.0.0/16") as \
            (service, plane, nursery):
        await service.ensure_external_network("203.0.113.0/24", project_id="admin-project")
        await nursery.start(plane.run)
        # The host's address on the external network is its gateway: the guests' next hop, not guarded.
        assert driver.plan.external.guarded == ("10.99.0.0/16", "169.254.0.0/16", "192.0.2.0/24")
        driver.networks = HostNetworks(("192.0.2.2", "198.51.100.7"), ("192.0.2.0/24",))
        await plane.reconcile()  # each pass looks at the host again
        assert "198.51.100.7/32" in driver.plan.external.guarded


ECHO_SERVER = """
    import socket, sys, threading
    def serve(port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen()
        while True:
            c, _ = s.accept()
            threading.Thread(target=lambda c=c: [c.sendall(d) for d in iter(lambda: c.recv(100), b"")], daemon=True).start()
    for port in sys.argv[1:]:
        threading.Thread(target=serve, args=(int(port),), daemon=True).start()
    print("ready", flush=True); sys.stdin.read()
"""
# Holds one connection per port; each line "<port>" on stdin sends a byte on that connection and
# prints "<port> ok" when it comes back, "<port> silent" when it does not within a second.
ECHO_CLIENT = """
    import socket, sys
    conns = {p: socket.create_connection((sys.argv[1], int(p)), timeout=5) for p in sys.argv[2:]}
    for c in conns.values():
        c.settimeout(1)
    print("connected", flush=True)
    for line in sys.stdin:
        port = line.strip()
        conns[port].sendall(b"x")
        try:
            print(port, "ok" if conns[port].recv(1) == b"x" else "closed", flush=True)
        except socket.timeout:
            print(port, "silent", flush=True)
"""


def spawn_with_stdin(host: Host, namespace: str, code: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-c", textwrap.dedent(code), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    host.processes.append(proc)
    return proc


def echo(client: subprocess.Popen, port: int) -> str:
    client.stdin.write(f"{port}\n")
    client.stdin.flush()
    return client.stdout.readline().split()[1]


@needs_root
def test_removing_a_rule_cuts_the_flows_it_let_in_and_only_those(host: Host) -> None:
    net, subnet = host.rows.network("10.70.0.0/24")
    web = host.rows.group("p1", "web")
    host.rows.rule(web, "egress", "IPv4")
    tcp_rule = host.rows.rule(web, "ingress", "IPv4", "tcp", 8080, 8080)
    icmp_rule = host.rows.rule(web, "ingress", "IPv4", "icmp")
    host.rows.rule(web, "ingress", "IPv4", "6", 8081, 8081)  # stays
    server_port = host.rows.port(net, subnet, "10.70.0.5", groups=[web])
    client_port = host.rows.port(net, subnet, "10.70.0.6")
    plan = host.plan()
    server = host.guest(plan.port(server_port), "10.70.0.5/24")
    client = host.guest(plan.port(client_port), "10.70.0.6/24")
    host.apply()
    echoes = spawn_with_stdin(host, server, ECHO_SERVER, "8080", "8081")
    assert echoes.stdout.readline().strip() == "ready"
    conns = spawn_with_stdin(host, client, ECHO_CLIENT, "10.70.0.5", "8080", "8081")
    assert conns.stdout.readline().strip() == "connected", conns.stderr.read()
    # One ICMP flow for the whole test: a ping that keeps its id, saying when an answer is missing.
    pinger = subprocess.Popen(["ip", "netns", "exec", client, "ping", "-O", "-i", "0.2", "-W", "1", "10.70.0.5"],
                              stdout=subprocess.PIPE, text=True)
    host.processes.append(pinger)
    assert echo(conns, 8080) == "ok" and echo(conns, 8081) == "ok"
    wait_for(lambda: "bytes from" in pinger.stdout.readline(), 10, "the first echo reply")

    # The rules for 8080 and ICMP go: their established flows stop at once, the 8081 one goes on.
    host.rows.delete("security_group_rules", tcp_rule)
    host.rows.delete("security_group_rules", icmp_rule)
    host.apply()
    assert echo(conns, 8080) == "silent"
    assert echo(conns, 8081) == "ok"
    misses: list[str] = []

    def unanswered() -> bool:
        line = pinger.stdout.readline()
        misses.append("no answer" in line)
        return misses[-3:] == [True] * 3

    wait_for(unanswered, 10, "the ping to go unanswered", every=0)
    # A pass that changes no rule cuts nothing.
    host.apply()
    assert echo(conns, 8081) == "ok"

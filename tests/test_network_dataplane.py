"""The network data plane on the real kernel: bridges, namespaces, nft, dnsmasq, with real packets.

No VMs: a "guest" is a network namespace whose eth0 is the peer of a veth named like
the port's tap; the driver adopts that link as the tap (it only creates a tuntap when
no link of that name exists).  Every test removes what it made, also on failure, and
checks that the driver left nothing of its node behind.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import trio
import trio.testing

from cloudbox.errors import Conflict
from cloudbox.network.driver.fake import FakeNetworkDriver
from cloudbox.network.driver.real import LinuxNetworkDriver
from cloudbox.network.hostplan import HostPlan, PortPlan
from cloudbox.network.render import table_name
from tests.test_network_render import Rows

needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("dnsmasq") is None,
                                reason="needs root and dnsmasq")


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {done.stdout}{done.stderr}")
    return done


class Host:
    """One test node: its driver, its guests and external hosts, and the clean-up of all of it."""

    def __init__(self, tmp: Path) -> None:
        tag = secrets.token_hex(3)
        self.node_id = f"t{tag}-node"
        self.ext_bridge = f"cbxe{tag}"
        self.ext_prefix = f"172.31.{secrets.randbelow(250) + 1}"  # the external /24 of this test
        # Under /run as in production: dnsmasq, as nobody, cannot read pytest's private tmp dirs.
        self.driver = LinuxNetworkDriver(self.node_id)
        self.run_dir = self.driver.run_dir
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.rows = Rows(host="test-host")
        self.tmp = tmp

    @property
    def ext_cidr(self) -> str:
        return f"{self.ext_prefix}.0/24"

    def plan(self) -> HostPlan:
        return self.rows.plan(self.node_id, self.ext_bridge)

    def apply(self, plan: HostPlan | None = None) -> HostPlan:
        plan = plan or self.plan()
        trio.run(self.driver.apply, plan)
        return plan

    def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{secrets.token_hex(4)}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def guest(self, port: PortPlan, address: str | None = None, gateway: str | None = None) -> str:
        """A namespace plugged in as the port's VM would be (eth0 with the port's MAC)."""
        ns = self.namespace("cbxg")
        sh("ip", "link", "add", port.tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", ns, "link", "set", "eth0", "address", port.mac, "mtu", str(port.mtu), "up")
        if address:
            sh("ip", "-n", ns, "addr", "add", address, "dev", "eth0")
        if gateway:
            sh("ip", "-n", ns, "route", "add", "default", "via", gateway)
        return ns

    def external_host(self, address: str) -> str:
        """A namespace on the external bridge, standing for a machine on the uplink."""
        ns = self.namespace("cbxx")
        link = f"cbxx{secrets.token_hex(4)}"
        sh("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.links.append(link)
        sh("ip", "link", "set", link, "master", self.ext_bridge, "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        return ns

    def spawn(self, ns: str, code: str) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", textwrap.dedent(code)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        try:
            trio.run(self.driver.teardown_all)
        finally:
            for link in self.links:
                sh("ip", "link", "del", link, check=False)
            for ns in self.namespaces:
                sh("ip", "netns", "del", ns, check=False)
            # Belt and braces, should teardown_all have failed: nothing of this node may outlive the test.
            for name in leftover_links(self.node_id):
                sh("ip", "link", "del", name, check=False)
            for family in ("bridge", "inet"):
                sh("nft", "delete", "table", family, table_name(self.node_id), check=False)

    def leftovers(self) -> list[str]:
        found = leftover_links(self.node_id)
        tables = sh("nft", "list", "tables").stdout
        found += [line for line in tables.splitlines() if table_name(self.node_id) in line]
        ids = {n.id for n in self.plan().networks} | {r.id for r in self.plan().routers}
        found += [ns for ns in sh("ip", "netns", "list").stdout.split() if any(i in ns for i in ids)]
        found += [line for line in sh("ps", "-eo", "args").stdout.splitlines()
                  if "dnsmasq" in line and str(self.run_dir) in line]
        if self.run_dir.exists() and any(self.run_dir.rglob("*")):
            found.append(str(self.run_dir))
        return found


def leftover_links(node_id: str) -> list[str]:
    out = sh("ip", "-d", "-o", "link", "show").stdout
    names = []
    for line in out.splitlines():
        if f"alias cloudbox:{node_id}:" in line:
            names.append(line.split(":")[1].strip().split("@")[0])
    return names


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    node = Host(tmp_path)
    try:
        yield node
    finally:
        node.cleanup()
    assert node.leftovers() == []


def ping(ns: str, address: str, count: int = 1, wait: float = 2) -> bool:
    return sh("ip", "netns", "exec", ns, "ping", "-c", str(count), "-W", str(wait), "-i", "0.2", address,
              check=False, timeout=count * 3 + 10).returncode == 0


def tcp_listener(host: Host, ns: str, port: int) -> subprocess.Popen:
    """A TCP server in ``ns`` that prints each peer's address (to see NAT at work)."""
    proc = host.spawn(ns, f"""
        import socket, sys
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", {port})); s.listen(); print("ready", flush=True)
        while True:
            c, peer = s.accept(); print(peer[0], flush=True); c.sendall(b"hi"); c.close()
    """)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def tcp_connects(ns: str, address: str, port: int, timeout: float = 1.5) -> bool:
    code = (f"import socket; s = socket.create_connection(('{address}', {port}), timeout={timeout}); "
            "assert s.recv(2) == b'hi'")
    return sh("ip", "netns", "exec", ns, sys.executable, "-c", code, check=False, timeout=30).returncode == 0


def snapshot(host: Host) -> dict[str, str]:
    """What an apply could change, for 'twice changes nothing': this node's links (and the test's
    own), never those of tests that other people run on the machine at the same time."""
    plan = host.plan()
    names = set(leftover_links(host.node_id)) | set(host.links)

    def ours(text: str) -> str:
        return "\n".join(line for line in text.splitlines() if line.split(":")[1].strip().split("@")[0] in names)

    state = {
        "links": ours(sh("ip", "-d", "-o", "link", "show").stdout),
        "addresses": ours(sh("ip", "-o", "addr", "show").stdout),
        "nft": sh("nft", "list", "table", "bridge", table_name(host.node_id)).stdout
        + sh("nft", "list", "table", "inet", table_name(host.node_id)).stdout,
        "dnsmasq": "".join(sorted(p.read_text() for p in host.run_dir.rglob("dnsmasq.pid"))),
    }
    for ns in plan.dhcp_namespaces() | {r.namespace: r.id for r in plan.routers}:
        state[ns] = sh("ip", "-n", ns, "-d", "-o", "link", "show").stdout + sh("ip", "-n", ns, "-o", "addr").stdout
        state[ns] += sh("ip", "-n", ns, "route").stdout
    # Counters, timers, a bridge's operstate (UNKNOWN until a port carries) and DAD move by
    # themselves; the admin flags <...UP...> and everything else must not.
    def settle(line: str) -> str:
        line = re.sub(r" state \w+ mode ", " mode ", line).replace(" tentative", "")  # IPv6 DAD ends by itself
        return " ".join(w for w in line.split() if not re.fullmatch(r"[0-9.]+", w))
    return {k: sorted(settle(line) for line in v.splitlines()) if k != "dnsmasq" else v for k, v in state.items()}


def assert_same(before: dict, after: dict) -> None:
    for key in before.keys() | after.keys():
        gone = set(before.get(key, [])) - set(after.get(key, []))
        new = set(after.get(key, [])) - set(before.get(key, []))
        assert not gone and not new, f"{key}: before {sorted(gone)}\nafter {sorted(new)}"


# --- the tests ------------------------------------------------------------------------

@needs_root
def test_two_guests_ping_each_other_and_dhcp_gives_the_ports_address(host: Host) -> None:
    net, subnet = host.rows.network("10.61.0.0/24")
    a = host.rows.port(net, subnet, "10.61.0.5")
    b = host.rows.port(net, subnet, "10.61.0.6")
    plan = host.plan()
    guest_a = host.guest(plan.port(a))
    guest_b = host.guest(plan.port(b), "10.61.0.6/24")
    host.apply()

    lease = dhcp_lease(guest_a, host.tmp)
    assert "ip=10.61.0.5 mask=24 router=10.61.0.1" in lease
    assert "routes=169.254.169.254/32 10.61.0.2 0.0.0.0/0 10.61.0.1" in lease and "mtu=1450" in lease

    sh("ip", "-n", guest_a, "addr", "add", "10.61.0.5/24", "dev", "eth0")
    assert ping(guest_a, "10.61.0.6", count=3)
    assert ping(guest_b, "10.61.0.5")
    assert ping(guest_a, "10.61.0.2")  # the DHCP port answers too

    before = snapshot(host)
    host.apply()
    assert_same(before, snapshot(host))  # apply twice changes nothing
    assert ping(guest_b, "10.61.0.5")


@needs_root
def test_router_snat_and_floating_ip(host: Host) -> None:
    ext = host.rows.network(host.ext_cidr, project="admin", external=True, dhcp=False)
    net, subnet = host.rows.network("10.62.0.0/24")
    a = host.rows.port(net, subnet, "10.62.0.5")
    b = host.rows.port(net, subnet, "10.62.0.6")
    gateway = f"{host.ext_prefix}.10"
    floating = f"{host.ext_prefix}.20"
    router = host.rows.router("p1", ext, gateway, [(net, subnet)])
    host.rows.floating_ip(router, ext, floating, a)
    # The host pings the floating IP: ICMP must be let in.
    host.rows.rule(host.rows.default_group("p1"), "ingress", "IPv4", "icmp", remote_ip_prefix="0.0.0.0/0")
    plan = host.plan()
    guest_a = host.guest(plan.port(a), "10.62.0.5/24", "10.62.0.1")
    guest_b = host.guest(plan.port(b), "10.62.0.6/24", "10.62.0.1")
    host.apply()
    outside = host.external_host(f"{host.ext_prefix}.100")
    listener = tcp_listener(host, outside, 7000)

    assert ping(guest_b, "10.62.0.1")  # the router's interface
    assert tcp_connects(guest_b, f"{host.ext_prefix}.100", 7000)
    assert listener.stdout.readline().strip() == gateway  # SNAT to the router's gateway address
    assert tcp_connects(guest_a, f"{host.ext_prefix}.100", 7000)
    assert listener.stdout.readline().strip() == floating  # a guest with a floating IP leaves as it
    # The host reaches the guest by its floating IP (it holds the external gateway address).
    assert sh("ping", "-c", "2", "-W", "2", "-i", "0.2", floating, check=False).returncode == 0
    assert ping(outside, floating)
    assert not ping(outside, "10.62.0.5", wait=1)  # fixed addresses are not routed from outside

    before = snapshot(host)
    host.apply()
    assert_same(before, snapshot(host))


@needs_root
def test_router_static_routes_leave_connected_subnets_reachable(host: Host) -> None:
    """Neutron takes a static route to a subnet the router is on (Tempest sets one, via the subnet's
    DHCP address): it must not replace the connected route, or the subnet is cut off."""
    ext = host.rows.network(host.ext_cidr, project="admin", external=True, dhcp=False)
    net, subnet = host.rows.network("10.66.0.0/28")
    guest_port = host.rows.port(net, subnet, "10.66.0.5")
    router = host.rows.router("p1", ext, f"{host.ext_prefix}.10", [(net, subnet)])
    routes = [{"destination": "10.66.0.0/28", "nexthop": "10.66.0.2"},
              {"destination": "192.0.2.0/24", "nexthop": "10.66.0.5"}]
    host.rows.db.execute("UPDATE routers SET routes = ? WHERE id = ?", (json.dumps(routes), router))
    host.rows.rule(host.rows.default_group("p1"), "ingress", "IPv4", "icmp", remote_ip_prefix="0.0.0.0/0")
    plan = host.plan()
    guest = host.guest(plan.port(guest_port), "10.66.0.5/28", "10.66.0.1")
    host.apply()
    namespace = f"qrouter-{router}"
    table = sh("ip", "-n", namespace, "route", "show").stdout
    assert "10.66.0.0/28 dev qr-" in table and "proto kernel" in table, table
    assert "10.66.0.0/28 via 10.66.0.2 dev" in table and "192.0.2.0/24 via 10.66.0.5" in table, table
    assert ping(guest, "10.66.0.1")  # the connected subnet is still reached directly
    host.rows.db.execute("UPDATE routers SET routes = '[]' WHERE id = ?", (router,))
    host.apply()
    table = sh("ip", "-n", namespace, "route", "show").stdout
    assert "via 10.66.0.2" not in table and "192.0.2.0/24" not in table and "10.66.0.0/28 dev qr-" in table
    assert "default via" in table


@needs_root
def test_same_range_in_two_projects_coexists_isolated(host: Host) -> None:
    guests = {}
    for project in ("p1", "p2"):
        net, subnet = host.rows.network("192.168.0.0/24", project=project)
        ports = [host.rows.port(net, subnet, ip, project=project) for ip in ("192.168.0.5", "192.168.0.6")]
        guests[project] = ports
    plan = host.plan()
    ns = {project: [host.guest(plan.port(p), f"192.168.0.{5 + i}/24") for i, p in enumerate(ports)]
          for project, ports in guests.items()}
    host.apply()
    # The very same flow (addresses, ports) in both networks at once: each has its own conntrack zone.
    servers = {p: tcp_listener(host, ns[p][1], 7100) for p in ns}
    for p in ns:
        assert tcp_connects(ns[p][0], "192.168.0.6", 7100)
        assert servers[p].stdout.readline().strip() == "192.168.0.5"
    # A guest of p1 cannot reach p2's network: its own 192.168.0.6 answers, never p2's.
    sh("ip", "-n", ns["p2"][1], "addr", "add", "192.168.0.77/24", "dev", "eth0")
    assert not ping(ns["p1"][0], "192.168.0.77", wait=1)


@needs_root
def test_security_group_drops_a_port_until_a_rule_opens_it(host: Host) -> None:
    net, subnet = host.rows.network("10.63.0.0/24")
    web = host.rows.group("p1", "web")
    host.rows.rule(web, "egress", "IPv4")
    server = host.rows.port(net, subnet, "10.63.0.5", groups=[web])
    client = host.rows.port(net, subnet, "10.63.0.6")
    plan = host.plan()
    guest_server = host.guest(plan.port(server), "10.63.0.5/24")
    guest_client = host.guest(plan.port(client), "10.63.0.6/24")
    host.apply()
    tcp_listener(host, guest_server, 8080)
    assert not tcp_connects(guest_client, "10.63.0.5", 8080)
    assert not ping(guest_client, "10.63.0.5", wait=1)
    # The server's egress is open, but the client's default group lets in only its members.
    assert not ping(guest_server, "10.63.0.6", wait=1)
    host.rows.rule(web, "ingress", "IPv4", "tcp", 8080, 8080)
    host.apply()
    assert tcp_connects(guest_client, "10.63.0.5", 8080)
    assert not ping(guest_client, "10.63.0.5", wait=1)  # only that port opened


@needs_root
def test_spoofed_source_ip_or_mac_is_dropped(host: Host) -> None:
    net, subnet = host.rows.network("10.64.0.0/24")
    a = host.rows.port(net, subnet, "10.64.0.5", pairs=[{"ip_address": "10.64.0.50"}])
    b = host.rows.port(net, subnet, "10.64.0.6")
    host.rows.rule(host.rows.default_group("p1"), "ingress", "IPv4", "icmp", remote_ip_prefix="0.0.0.0/0")
    plan = host.plan()
    guest_a = host.guest(plan.port(a), "10.64.0.5/24")
    guest_b = host.guest(plan.port(b), "10.64.0.6/24")
    host.apply()
    assert ping(guest_a, "10.64.0.6")
    sh("ip", "-n", guest_a, "addr", "flush", "dev", "eth0")
    sh("ip", "-n", guest_a, "addr", "add", "10.64.0.99/24", "dev", "eth0")
    assert not ping(guest_a, "10.64.0.6", wait=1)  # not its address
    sh("ip", "-n", guest_a, "addr", "flush", "dev", "eth0")
    sh("ip", "-n", guest_a, "addr", "add", "10.64.0.50/24", "dev", "eth0")
    assert ping(guest_a, "10.64.0.6")  # an allowed address pair
    sh("ip", "-n", guest_a, "addr", "flush", "dev", "eth0")
    sh("ip", "-n", guest_a, "addr", "add", "10.64.0.5/24", "dev", "eth0")
    sh("ip", "-n", guest_a, "link", "set", "eth0", "address", "fa:16:3e:66:66:66")
    sh("ip", "-n", guest_b, "neigh", "flush", "all")
    assert not ping(guest_a, "10.64.0.6", wait=1)  # not its MAC
    sh("ip", "-n", guest_a, "link", "set", "eth0", "address", plan.port(a).mac)
    assert ping(guest_a, "10.64.0.6")
    # Other ethertypes (here 0x88b5, "local experimental") do not leave a guest's port; the
    # same frame from the DHCP namespace (no port security there) shows the receiver works.
    dhcp = next(n.dhcp for n in plan.networks if n.dhcp)
    assert not raw_frame_arrives(host, guest_a, "eth0", guest_b)
    assert raw_frame_arrives(host, dhcp.namespace, dhcp.interface, guest_b)


def raw_frame_arrives(host: Host, sender: str, interface: str, receiver: str) -> bool:
    listener = host.spawn(receiver, """
        import socket
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5)); s.bind(("eth0", 0))
        s.settimeout(2); print("ready", flush=True)
        try:
            s.recv(2048); print("got", flush=True)
        except socket.timeout:
            print("none", flush=True)
    """)
    assert listener.stdout.readline().strip() == "ready"
    code = (f"import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('{interface}', 0)); "
            "s.send(b'\\xff' * 6 + b'\\x02\\x00\\x00\\x00\\x00\\x01' + b'\\x88\\xb5' + b'x' * 50)")
    sh("ip", "netns", "exec", sender, sys.executable, "-c", code)
    return listener.stdout.readline().strip() == "got"


@needs_root
def test_reapply_while_traffic_flows_loses_no_packet(host: Host) -> None:
    net, subnet = host.rows.network("10.65.0.0/24")
    a = host.rows.port(net, subnet, "10.65.0.5")
    b = host.rows.port(net, subnet, "10.65.0.6")
    plan = host.plan()
    guest_a = host.guest(plan.port(a), "10.65.0.5/24")
    host.guest(plan.port(b), "10.65.0.6/24")
    host.apply()
    assert ping(guest_a, "10.65.0.6")
    flow = subprocess.Popen(["ip", "netns", "exec", guest_a, "ping", "-q", "-c", "200", "-i", "0.01", "-W", "1",
                             "10.65.0.6"], stdout=subprocess.PIPE, text=True)
    host.processes.append(flow)
    applies = 0
    while flow.poll() is None:
        # Each pass replaces the nft tables (a new rule or port each time) and re-syncs everything else.
        c = host.rows.port(net, subnet, f"10.65.0.{10 + applies}")
        host.rows.rule(host.rows.default_group("p1"), "ingress", "IPv4", "tcp", 1000 + applies, 1000 + applies)
        host.apply()
        host.rows.delete("ports", c)
        applies += 1
    out = flow.stdout.read()
    assert applies >= 3
    assert " 0% packet loss" in out, out


@needs_root
def test_restart_adopts_what_exists(host: Host) -> None:
    ext = host.rows.network(host.ext_cidr, project="admin", external=True, dhcp=False)
    net, subnet = host.rows.network("10.66.0.0/24")
    a = host.rows.port(net, subnet, "10.66.0.5")
    host.rows.router("p1", ext, f"{host.ext_prefix}.10", [(net, subnet)])
    plan = host.plan()
    guest_a = host.guest(plan.port(a), "10.66.0.5/24", "10.66.0.1")
    host.apply()
    before = snapshot(host)
    # A new process: a new driver object that has seen nothing yet.
    host.driver = LinuxNetworkDriver(host.node_id)
    host.apply()
    assert_same(before, snapshot(host))  # same links, same dnsmasq, same rules
    assert ping(guest_a, f"{host.ext_prefix}.10")


@needs_root
def test_removed_objects_are_cleaned_up_and_apply_of_many_ports_is_quick(host: Host) -> None:
    ext = host.rows.network(host.ext_cidr, project="admin", external=True, dhcp=False)
    net, subnet = host.rows.network("10.67.0.0/22")
    ports = [host.rows.port(net, subnet, f"10.67.{1 + i // 200}.{10 + i % 200}") for i in range(100)]
    router = host.rows.router("p1", ext, f"{host.ext_prefix}.10", [(net, subnet)])
    started = time.monotonic()
    host.apply()
    first = time.monotonic() - started
    started = time.monotonic()
    host.apply()
    again = time.monotonic() - started
    print(f"apply of 100 ports: first {first:.2f} s, again {again:.2f} s")
    assert again < 10
    taps = [line for line in sh("ip", "-o", "link", "show").stdout.splitlines() if "tap" + ports[0][:11] in line]
    assert taps
    # Drop half the ports and the router: their taps and the namespace go.
    for port in ports[:50]:
        host.rows.delete("ports", port)
    host.rows.db.execute("DELETE FROM ports WHERE device_id = ?", (router,))
    host.rows.delete("routers", router)
    host.apply()
    links = sh("ip", "-o", "link", "show").stdout
    assert "tap" + ports[0][:11] not in links and "tap" + ports[99][:11] in links
    assert f"qrouter-{router}" not in sh("ip", "netns", "list").stdout


def dhcp_lease(ns: str, tmp: Path) -> str:
    """Ask for a lease with busybox udhcpc; returns what it was offered."""
    script = tmp / "udhcpc.sh"
    lease = tmp / "lease"
    script.write_text('#!/bin/sh\n[ "$1" = bound ] && echo "ip=$ip mask=$mask router=$router '
                      f'routes=$staticroutes mtu=$mtu bootfile=$bootfile tftp=$tftp" > {lease}\nexit 0\n')
    script.chmod(0o755)
    sh("ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "5", "-T", "1",
       "-O", "staticroutes", "-O", "mtu", "-O", "bootfile", "-O", "tftp", "-s", str(script), timeout=60)
    return lease.read_text()


# --- the driver contract, fake and real alike ---------------------------------------------

@pytest.fixture(params=["fake", pytest.param("real", marks=needs_root)])
def any_driver(request: pytest.FixtureRequest) -> Iterator[Any]:
    node_id = f"c{secrets.token_hex(3)}-node"
    driver = FakeNetworkDriver(node_id) if request.param == "fake" else LinuxNetworkDriver(node_id)
    try:
        yield driver
    finally:
        trio.run(driver.teardown_all)
        if request.param == "real":
            assert leftover_links(node_id) == []


def test_driver_contract(any_driver: Any) -> None:
    rows = Rows(host="h")
    net, subnet = rows.network("10.82.0.0/24")
    a = rows.port(net, subnet, "10.82.0.5")
    b = rows.port(net, subnet, "10.82.0.6", security=False)
    plan = rows.plan(any_driver.node_id)

    async def scenario() -> None:
        with pytest.raises(Conflict):  # nothing applied yet: no port can be handed out
            await any_driver.ensure_port(plan.port(a))
        await any_driver.apply(plan)
        await any_driver.apply(plan)  # idempotent
        nic = await any_driver.ensure_port(plan.port(a))
        assert (nic.tap, nic.mac, nic.mtu) == (plan.port(a).tap, plan.port(a).mac, 1450)
        await any_driver.remove_port(plan.port(b).tap)
        if isinstance(any_driver, LinuxNetworkDriver):
            assert plan.port(b).tap not in sh("ip", "-o", "link", "show").stdout
        await any_driver.remove_port("tapnotours")  # not ours / not there: nothing happens
        # ensure_port brings a removed tap back (compute retries a boot).
        await any_driver.ensure_port(plan.port(b))
        await any_driver.apply(plan.without_ports([b]))
        with pytest.raises(Conflict):
            await any_driver.ensure_port(plan.port(b))

    trio.run(scenario)
    if isinstance(any_driver, LinuxNetworkDriver):
        links = sh("ip", "-o", "link", "show").stdout
        assert plan.port(a).tap in links and plan.port(b).tap not in links
        foreign = f"tapf{secrets.token_hex(4)}"  # a tap someone else made is not removed
        sh("ip", "tuntap", "add", "dev", foreign, "mode", "tap")
        try:
            trio.run(any_driver.remove_port, foreign)
            assert foreign in sh("ip", "-o", "link", "show").stdout
        finally:
            sh("ip", "link", "del", foreign, check=False)


@needs_root
def test_external_interface_is_enslaved_and_the_host_takes_no_address(host: Host) -> None:
    uplink = f"cbxu{secrets.token_hex(4)}"
    sh("ip", "link", "add", uplink, "type", "veth", "peer", "name", f"cbxv{uplink[4:]}")  # no dummy module here
    host.links.append(uplink)
    host.rows.network(host.ext_cidr, project="admin", external=True, dhcp=False)
    plan = host.rows.plan(host.node_id, host.ext_bridge, uplink)
    host.apply(plan)
    assert f"master {host.ext_bridge}" in sh("ip", "-o", "link", "show", uplink).stdout
    assert "inet " not in sh("ip", "-o", "addr", "show", "dev", host.ext_bridge).stdout
    assert "masquerade" not in sh("nft", "list", "table", "inet", table_name(host.node_id), check=False).stdout
    # Back to the host-owned mode: the gateway address and the masquerade appear.
    host.apply()
    assert f"inet {host.ext_prefix}.1/24" in sh("ip", "-o", "addr", "show", "dev", host.ext_bridge).stdout
    assert "masquerade" in sh("nft", "list", "table", "inet", table_name(host.node_id)).stdout

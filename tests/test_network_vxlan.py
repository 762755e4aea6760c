"""Two nodes on one machine, each in its own network namespace, joined by VXLAN over a veth.

Each "node" is a namespace with one underlay link (192.0.2.1 and .2, a veth pair between
the two: no packet leaves the namespaces this test makes).  A node's data plane runs as a
separate Python process entered into its namespace with ``nsenter --net`` (only the network
namespace: ``ip netns exec`` would also give it a private mount namespace, and the DHCP
namespaces it makes with ``ip netns add`` would vanish from /run/netns when it exits).  Both
read one SQLite file of network and cluster rows that the test writes, as every node of a
cluster reads its own copy of the replicated tables.

DHCP namespaces are named after the network (``qdhcp-<id>``), and /run/netns is shared by
both test nodes, so when DHCP moves the test applies the losing node first; real nodes are
separate machines.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from cloudbox.network.driver.real import RUN_DIR
from cloudbox.network.hostplan import HostPlan, PortPlan
from tests.test_network_dataplane import dhcp_lease, needs_root, ping, sh
from tests.test_network_render import Rows

ROOT = Path(__file__).resolve().parents[1]
APPLY = """
import sqlite3, sys, trio
from cloudbox.network.driver.real import LinuxNetworkDriver
from cloudbox.network.hostplan import build_plan
path, host, node_id, up, uplink = sys.argv[1:]
driver = LinuxNetworkDriver(node_id)
if path == "teardown":
    trio.run(driver.teardown_all)
else:
    db = sqlite3.connect(path)
    trio.run(driver.apply, build_plan(db, host, node_id, "cbxext0", uplink, up.split(",")))
"""


class Node:
    def __init__(self, tag: str, letter: str, tunnel_ip: str) -> None:
        self.id = f"v{tag}-{letter}"
        self.name = f"node-{letter}"
        self.namespace = f"cbxn-{tag}-{letter}"
        self.tunnel_ip = tunnel_ip


class Pair:
    """Two nodes, their underlay, their guests, one table file; and the clean-up of all of it."""

    def __init__(self, tmp: Path) -> None:
        tag = secrets.token_hex(3)
        self.tmp = tmp
        self.db_path = tmp / "cloud.db"
        self.a = Node(tag, "a", "192.0.2.1")
        self.b = Node(tag, "b", "192.0.2.2")
        self.rows = Rows(host="unused")
        self.uplink = ""  # external_interface of both nodes (see outside())
        self.namespaces: list[str] = []
        for node in (self.a, self.b):
            sh("ip", "netns", "add", node.namespace)
            self.namespaces.append(node.namespace)
            sh("ip", "-n", node.namespace, "link", "set", "lo", "up")
        sh("ip", "link", "add", "cbxul0", "netns", self.a.namespace, "type", "veth",
           "peer", "name", "cbxul0", "netns", self.b.namespace)
        for node in (self.a, self.b):
            sh("ip", "-n", node.namespace, "addr", "add", f"{node.tunnel_ip}/24", "dev", "cbxul0")
            sh("ip", "-n", node.namespace, "link", "set", "cbxul0", "up")
        self.down: set[str] = set()  # ids of the nodes the cluster would call down
        for node in (self.a, self.b):
            self.rows.node(node.id, node.name, node.tunnel_ip)

    def set_up(self, node: Node, up: bool = True) -> None:
        (self.down.discard if up else self.down.add)(node.id)

    def up(self) -> list[str]:
        return [n.id for n in (self.a, self.b) if n.id not in self.down]

    def plan(self, node: Node) -> HostPlan:
        return self.rows.plan(node.id, up=self.up(), host=node.name)

    def apply(self, *nodes: Node) -> None:
        """Each node's data plane pass, in its namespace, from the tables as they are now."""
        self.db_path.unlink(missing_ok=True)
        self.rows.db.commit()
        with sqlite3.connect(self.db_path) as copy:
            self.rows.db.backup(copy)
        for node in nodes:
            self._run(node, str(self.db_path))

    def _run(self, node: Node, path: str) -> None:
        args = ["nsenter", f"--net=/run/netns/{node.namespace}", sys.executable, "-c", APPLY,
                path, node.name, node.id, ",".join(self.up()), self.uplink]
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0, f"{node.name}: {done.stderr[-3000:]}"

    def guest(self, node: Node, port: PortPlan, address: str) -> str:
        """A namespace plugged into ``node`` as the port's VM would be."""
        ns = f"cbxg-{secrets.token_hex(4)}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", node.namespace, "link", "add", port.tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", ns, "link", "set", "eth0", "address", port.mac, "mtu", str(port.mtu), "up")
        sh("ip", "-n", ns, "addr", "add", address, "dev", "eth0")
        return ns

    def outside(self, address: str) -> str:
        """One external segment for both nodes, as a physical LAN would be: a bridge in a
        namespace of its own holding ``address`` (the outside host), and a veth from it into each
        node, which each node's data plane enslaves to its external bridge (external_interface)."""
        ns = f"cbxo-{secrets.token_hex(4)}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "add", "sw0", "type", "bridge")
        sh("ip", "-n", ns, "link", "set", "sw0", "up")
        sh("ip", "-n", ns, "addr", "add", address, "dev", "sw0")
        for node in (self.a, self.b):
            sh("ip", "link", "add", "cbxup0", "netns", node.namespace, "type", "veth",
               "peer", "name", f"to-{node.name[-1]}", "netns", ns)
            sh("ip", "-n", ns, "link", "set", f"to-{node.name[-1]}", "master", "sw0", "up")
            sh("ip", "-n", node.namespace, "link", "set", "cbxup0", "up")
        self.uplink = "cbxup0"
        return ns

    def owner(self, namespace: str) -> str:
        """The node whose mark the namespace's lo carries (a DHCP server's or a router's)."""
        out = sh("ip", "-n", namespace, "-d", "-o", "link", "show", "lo").stdout
        return out.split("alias cloudbox:")[1].split(":")[0]

    def dhcp_namespaces(self) -> set[str]:  # and routers' namespaces
        ids = [r[0] for r in self.rows.db.execute("SELECT id FROM networks UNION SELECT id FROM routers")]
        return {ns for ns in sh("ip", "netns", "list").stdout.split() if any(i in ns for i in ids)}

    def cleanup(self) -> None:
        try:
            for node in (self.a, self.b):
                try:
                    self._run(node, "teardown")
                except AssertionError as exc:
                    print("teardown failed:", exc)
        finally:
            for ns in self.dhcp_namespaces():
                sh("ip", "netns", "del", ns, check=False)
            for ns in self.namespaces:  # the nodes' links (bridges, tunnels, taps) go with them
                sh("ip", "netns", "del", ns, check=False)
            for pid in self.dnsmasq_pids():  # should the teardown have failed: ours, by pid
                os.kill(pid, signal.SIGKILL)
            for node in (self.a, self.b):
                shutil.rmtree(RUN_DIR / node.id, ignore_errors=True)

    def dnsmasq_pids(self) -> list[int]:
        pids = []
        for entry in os.scandir("/proc"):
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    cmdline = f.read().decode(errors="replace")
            except OSError:
                continue
            if entry.name.isdigit() and cmdline.startswith("dnsmasq\0") and any(
                    f"{RUN_DIR / node.id}/" in cmdline for node in (self.a, self.b)):
                pids.append(int(entry.name))
        return pids

    def leftovers(self) -> list[str]:
        found = sorted(self.dhcp_namespaces())
        names = sh("ip", "netns", "list").stdout
        found += [ns for ns in self.namespaces if ns in names]
        found += [f"dnsmasq {pid}" for pid in self.dnsmasq_pids()]
        if any((RUN_DIR / node.id).exists() for node in (self.a, self.b)):
            found.append(str(RUN_DIR))
        return found


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    if shutil.which("nsenter") is None:
        pytest.skip("nsenter is not installed")
    nodes = Pair(tmp_path)
    try:
        yield nodes
    finally:
        nodes.cleanup()
    assert nodes.leftovers() == []


def node_links(node: Node) -> str:
    return sh("ip", "-n", node.namespace, "-d", "-o", "link", "show").stdout


def vxlan_frame_arrives(sender: Node, source: str, vni: int, receiver: str) -> bool:
    """Send a VXLAN packet by hand from ``source`` to node-a carrying a broadcast frame of
    ethertype 0x88b5; whether the guest ``receiver`` gets the frame."""
    listener = subprocess.Popen(["ip", "netns", "exec", receiver, sys.executable, "-c", textwrap.dedent("""
        import socket
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5)); s.bind(("eth0", 0))
        s.settimeout(2); print("ready", flush=True)
        try:
            s.recv(2048); print("got", flush=True)
        except socket.timeout:
            print("none", flush=True)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "ready"
        code = (f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('{source}', 0)); "
                "frame = b'\\xff' * 6 + b'\\x02\\x00\\x00\\x00\\x00\\x09' + b'\\x88\\xb5' + b'x' * 50; "
                f"s.sendto(bytes([8, 0, 0, 0]) + ({vni}).to_bytes(3, 'big') + bytes(1) + frame, ('192.0.2.1', 4789))")
        sh("ip", "netns", "exec", sender.namespace, sys.executable, "-c", code)
        return listener.stdout.readline().strip() == "got"
    finally:
        listener.kill()
        listener.wait()


@needs_root
def test_guests_of_one_network_on_two_nodes_talk_and_other_networks_stay_apart(pair: Pair) -> None:
    rows = pair.rows
    net1, subnet1 = rows.network("10.70.0.0/24", project="p1")
    a1 = rows.port(net1, subnet1, "10.70.0.5", project="p1", host="node-a")
    b1 = rows.port(net1, subnet1, "10.70.0.6", project="p1", host="node-b")
    closed = rows.group("p1", "closed")
    rows.rule(closed, "egress", "IPv4")
    b1_closed = rows.port(net1, subnet1, "10.70.0.8", project="p1", host="node-b", groups=[closed])
    # Another project, the same range and the same addresses, crossed over.
    net2, subnet2 = rows.network("10.70.0.0/24", project="p2", dhcp=False)
    a2 = rows.port(net2, subnet2, "10.70.0.6", project="p2", host="node-a")
    b2 = rows.port(net2, subnet2, "10.70.0.5", project="p2", host="node-b")
    plan_a, plan_b = pair.plan(pair.a), pair.plan(pair.b)
    guest_a1 = pair.guest(pair.a, plan_a.port(a1), "10.70.0.5/24")
    guest_b1 = pair.guest(pair.b, plan_b.port(b1), "10.70.0.6/24")
    guest_closed = pair.guest(pair.b, plan_b.port(b1_closed), "10.70.0.8/24")
    guest_a2 = pair.guest(pair.a, plan_a.port(a2), "10.70.0.6/24")
    guest_b2 = pair.guest(pair.b, plan_b.port(b2), "10.70.0.5/24")
    pair.apply(pair.a, pair.b)

    vx1 = "vx-" + net1[:11]
    vni = next(n.segmentation_id for n in plan_a.networks if n.id == net1)
    for node, other in ((pair.a, pair.b), (pair.b, pair.a)):
        line = next(line for line in node_links(node).splitlines() if f" {vx1}: " in line)
        assert f"vxlan id {vni} " in line
        assert f"local {node.tunnel_ip}" in line and "dstport 4789" in line and "nolearning" in line
        assert "mtu 1450" in line and "master brq" + net1[:11] in line and f"alias cloudbox:{node.id}:vxlan:" in line
        fdb = sh("ip", "netns", "exec", node.namespace, "bridge", "fdb", "show", "dev", vx1).stdout
        assert f"00:00:00:00:00:00 dst {other.tunnel_ip}" in fdb

    # A second pass adopts the tunnel and its FDB as they are (no new link, no entry rewritten).
    def tunnel() -> list[str]:  # index, flags, settings; not the bridge port's timers
        return [line.split("bridge_slave")[0] for line in node_links(pair.a).splitlines() if f" {vx1}: " in line]

    def tunnel_fdb() -> list[str]:  # the VXLAN device's own entries; not what the bridge learns and ages
        out = sh("ip", "netns", "exec", pair.a.namespace, "bridge", "fdb", "show", "dev", vx1).stdout
        return sorted(line for line in out.splitlines() if " self " in line)

    before = tunnel()
    fdb_before = tunnel_fdb()
    pair.apply(pair.a)
    assert tunnel() == before
    assert tunnel_fdb() == fdb_before
    assert f"{plan_b.port(b1).mac} dst 192.0.2.2 self permanent" in fdb_before  # node-b's guest, pinned to node-b

    assert ping(guest_a1, "10.70.0.6", count=3)  # over the tunnel
    assert ping(guest_b1, "10.70.0.5")
    # A full-sized frame fits: 1450 inside, 1500 on the underlay.
    assert sh("ip", "netns", "exec", guest_a1, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1422",
              "10.70.0.6", check=False).returncode == 0
    mac_b1 = plan_b.port(b1).mac
    assert mac_b1 in sh("ip", "-n", guest_a1, "neigh", "show", "10.70.0.6").stdout  # node-b's guest, not a2
    # The other project's guests reach each other the same way, and only each other.
    assert ping(guest_a2, "10.70.0.5")
    assert plan_b.port(b2).mac in sh("ip", "-n", guest_a2, "neigh", "show", "10.70.0.5").stdout
    sh("ip", "-n", guest_b1, "addr", "add", "10.70.0.77/24", "dev", "eth0")
    assert not ping(guest_a2, "10.70.0.77", wait=1)
    assert not ping(guest_b2, "10.70.0.77", wait=1)

    # The destination port's ingress rules hold for a remote sender too.
    assert not ping(guest_a1, "10.70.0.8", wait=1)
    rows.rule(closed, "ingress", "IPv4", "icmp", remote_ip_prefix="0.0.0.0/0")
    pair.apply(pair.b)
    assert ping(guest_a1, "10.70.0.8")
    # And the other way: a1's default group lets in only its members, wherever they run.
    assert not ping(guest_closed, "10.70.0.5", wait=1)

    # One DHCP server per network, on one node; a guest on the other node gets its lease over the tunnel.
    (namespace,) = {f"qdhcp-{net1}"} & pair.dhcp_namespaces()
    server = pair.owner(namespace)
    remote_guest = guest_b1 if server == pair.a.id else guest_a1
    remote_ip = "10.70.0.6" if server == pair.a.id else "10.70.0.5"
    sh("ip", "-n", remote_guest, "addr", "flush", "dev", "eth0")
    assert f"ip={remote_ip} " in dhcp_lease(remote_guest, pair.tmp)
    sh("ip", "-n", remote_guest, "addr", "add", f"{remote_ip}/24", "dev", "eth0")

    # Only the members may send VXLAN to a node: a stranger on the underlay is dropped.
    ruleset = sh("ip", "netns", "exec", pair.a.namespace, "nft", "list", "ruleset").stdout
    assert "ip daddr 192.0.2.1 udp dport 4789 ip saddr != 192.0.2.2 drop" in ruleset
    sh("ip", "-n", pair.b.namespace, "addr", "add", "192.0.2.3/24", "dev", "cbxul0")
    assert vxlan_frame_arrives(pair.b, "192.0.2.2", vni, guest_a1)  # a member's frame does
    assert not vxlan_frame_arrives(pair.b, "192.0.2.3", vni, guest_a1)

    # No longer needed on node-b (no DHCP server of it anywhere): net2's tunnels go with b2's port.
    rows.delete("ports", b2)
    pair.apply(pair.a, pair.b)
    assert "vx-" + net2[:11] not in node_links(pair.b) and "vx-" + net2[:11] not in node_links(pair.a)
    assert ping(guest_a1, "10.70.0.6")


@needs_root
def test_dhcp_moves_when_its_node_goes_stale_and_comes_back(pair: Pair) -> None:
    rows = pair.rows
    net, subnet = rows.network("10.71.0.0/24")
    a = rows.port(net, subnet, "10.71.0.5", host="node-a")
    b = rows.port(net, subnet, "10.71.0.6", host="node-b")
    guest = {pair.a.id: pair.guest(pair.a, pair.plan(pair.a).port(a), "10.71.0.5/24"),
             pair.b.id: pair.guest(pair.b, pair.plan(pair.b).port(b), "10.71.0.6/24")}
    address = {pair.a.id: "10.71.0.5", pair.b.id: "10.71.0.6"}
    pair.apply(pair.a, pair.b)
    namespace = f"qdhcp-{net}"
    first = pair.owner(namespace)
    server, other = (pair.a, pair.b) if first == pair.a.id else (pair.b, pair.a)

    # The server is down: it drops its copy (it counts itself out), the other takes over.
    pair.set_up(server, False)
    pair.apply(server, other)
    assert pair.owner(namespace) == other.id
    assert "vx-" + net[:11] not in node_links(other)  # no other live node: nothing to tunnel to
    assert f"ip={address[other.id]} " in dhcp_lease(guest[other.id], pair.tmp)

    # Back again: rendezvous puts DHCP where it was; the node that held it meanwhile lets it go.
    pair.set_up(server)
    pair.apply(other, server)
    assert pair.owner(namespace) == server.id
    assert f"ip={address[other.id]} " in dhcp_lease(guest[other.id], pair.tmp)  # over the tunnel
    assert ping(guest[other.id], address[server.id])


@contextlib.contextmanager
def arp_seen(ns: str) -> Iterator[list[tuple[int, str, str, str]]]:
    """The ARP frames the bridge sw0 in ``ns`` receives while the block runs, as
    (operation, sender MAC, sender address, target address)."""
    listener = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", textwrap.dedent("""
        import socket, sys
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806)); s.bind(("sw0", 0))
        print("ready", flush=True)
        while True:
            f = s.recv(2048)[14:42]
            print(int.from_bytes(f[6:8], "big"), f[8:14].hex(":"), socket.inet_ntoa(f[14:18]),
                  socket.inet_ntoa(f[24:28]), flush=True)
    """)], stdout=subprocess.PIPE, text=True)
    seen: list[tuple[int, str, str, str]] = []
    try:
        assert listener.stdout.readline().strip() == "ready"
        yield seen
        time.sleep(0.5)
    finally:
        listener.kill()
        out, _ = listener.communicate()
    for line in out.splitlines():
        op, mac, sender, target = line.split()
        seen.append((int(op), mac, sender, target))


@needs_root
def test_a_router_moves_when_its_node_goes_stale_and_keeps_routing(pair: Pair) -> None:
    rows = pair.rows
    outside = pair.outside("172.24.9.1/24")  # the external subnet's gateway: the routers' next hop
    ext = rows.network("172.24.9.0/24", project="admin", external=True, dhcp=False)
    net, subnet = rows.network("10.72.0.0/24")
    port = {pair.a.id: rows.port(net, subnet, "10.72.0.5", host="node-a"),
            pair.b.id: rows.port(net, subnet, "10.72.0.6", host="node-b")}
    router = rows.router("p1", ext, "172.24.9.10", [(net, subnet)])
    rows.rule(rows.default_group("p1"), "ingress", "IPv4", "icmp", remote_ip_prefix="0.0.0.0/0")
    guest = {pair.a.id: pair.guest(pair.a, pair.plan(pair.a).port(port[pair.a.id]), "10.72.0.5/24"),
             pair.b.id: pair.guest(pair.b, pair.plan(pair.b).port(port[pair.b.id]), "10.72.0.6/24")}
    for ns in guest.values():
        sh("ip", "-n", ns, "route", "add", "default", "via", "10.72.0.1")
    pair.apply(pair.a, pair.b)
    namespace = f"qrouter-{router}"
    holder, other = (pair.a, pair.b) if pair.owner(namespace) == pair.a.id else (pair.b, pair.a)
    # The floating IP is the guest's on the node that keeps running: the router is across the
    # tunnel from it now, and beside it once it has moved.
    rows.floating_ip(router, ext, "172.24.9.20", port[other.id])
    pair.apply(pair.a, pair.b)

    def routes(nodes: tuple[Node, ...]) -> None:
        for node in nodes:
            assert ping(guest[node.id], "10.72.0.1"), f"{node.name}'s guest: the router's interface"
            assert ping(guest[node.id], "172.24.9.1"), f"{node.name}'s guest: out through the router (SNAT)"
        # In from outside by the floating IP, at once: none of the outside host's ARP entries has
        # expired, so its frames reach the router only if the segment knows where the router is.
        assert ping(outside, "172.24.9.20"), "outside: in by the floating IP"

    routes((pair.a, pair.b))

    # The router's node goes silent: it lets the router go and the other node starts it (the
    # silent node's own guest is cut off with it: no tunnel goes to a node that is down).  The
    # new router announces its external addresses with gratuitous ARP as it starts.
    pair.set_up(holder, False)
    with arp_seen(outside) as seen:
        pair.apply(holder, other)
    assert pair.owner(namespace) == other.id
    (gateway_mac,) = rows.db.execute("SELECT mac_address FROM ports WHERE device_id = ? AND device_owner = "
                                     "'network:router_gateway'", (router,)).fetchone()
    for address in ("172.24.9.10", "172.24.9.20"):
        for op in (1, 2):  # request and reply, sender and target the announced address
            assert (op, gateway_mac, address, address) in seen, f"no gratuitous ARP {op} for {address}: {seen}"
    routes((other,))

    # Back again: rendezvous returns the router to its first node, and both guests route through it.
    pair.set_up(holder)
    pair.apply(other, holder)
    assert pair.owner(namespace) == holder.id
    routes((pair.a, pair.b))

"""The network data plane's pure parts: host plans from rows, nft rulesets, dnsmasq files.

``Rows`` writes rows shaped as the network tables of DESIGN.md into a throwaway
SQLite database, so ``build_plan`` is exercised without the control plane; the
real-kernel tests (test_network_dataplane.py, test_network_reconciler.py) use it too.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import shutil
import sqlite3
import subprocess
import uuid
from typing import Any, Collection

import pytest

from cloudbox.network import arp, flows, render
from cloudbox.network.hostplan import (HostNetworks, HostPlan, Management, Member, build_plan, conntrack_zone,
                                       guarded_destinations, placement, rendezvous)

SCHEMA = """
CREATE TABLE networks (id TEXT PRIMARY KEY, project_id TEXT, name TEXT, external INTEGER, mtu INTEGER,
  network_type TEXT, segmentation_id INTEGER, port_security_enabled INTEGER, admin_state_up INTEGER);
CREATE TABLE subnets (id TEXT PRIMARY KEY, project_id TEXT, network_id TEXT, ip_version INTEGER, cidr TEXT,
  gateway_ip TEXT, enable_dhcp INTEGER, dns_nameservers TEXT, host_routes TEXT);
CREATE TABLE ports (id TEXT PRIMARY KEY, project_id TEXT, network_id TEXT, mac_address TEXT, admin_state_up INTEGER,
  status TEXT, device_id TEXT, device_owner TEXT, fixed_ips TEXT, security_groups TEXT,
  port_security_enabled INTEGER, allowed_address_pairs TEXT, binding_host_id TEXT);
CREATE TABLE routers (id TEXT PRIMARY KEY, project_id TEXT, external_network_id TEXT, enable_snat INTEGER,
  gw_port_id TEXT, routes TEXT);
CREATE TABLE floatingips (id TEXT PRIMARY KEY, project_id TEXT, floating_network_id TEXT, floating_ip_address TEXT,
  floating_port_id TEXT, port_id TEXT, fixed_ip_address TEXT, router_id TEXT);
CREATE TABLE security_groups (id TEXT PRIMARY KEY, project_id TEXT, name TEXT, stateful INTEGER);
CREATE TABLE security_group_rules (id TEXT PRIMARY KEY, project_id TEXT, security_group_id TEXT, direction TEXT,
  ethertype TEXT, protocol TEXT, port_range_min INTEGER, port_range_max INTEGER, remote_ip_prefix TEXT,
  remote_group_id TEXT);
CREATE TABLE cluster_nodes (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, api_url TEXT NOT NULL,
  tunnel_ip TEXT NOT NULL, etcd_member INTEGER NOT NULL DEFAULT 0, joined_at TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL, capacity TEXT NOT NULL DEFAULT '{}');
"""


class Rows:
    """Network rows as the control plane would write them (a few Neutron rules, no validation)."""

    def __init__(self, host: str = "node-a") -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.executescript(SCHEMA)
        self.host = host
        self._mac = 0x10
        self._segment = 0

    def _insert(self, table: str, **row: Any) -> str:
        row = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}
        self.db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()))
        return row["id"]

    def mac(self) -> str:
        self._mac += 1
        return f"fa:16:3e:00:{self._mac >> 8:02x}:{self._mac & 0xff:02x}"

    def network(self, cidr: str, project: str = "p1", external: bool = False, dhcp: bool = True,
                mtu: int = 1450) -> tuple[str, str]:
        """A network with one IPv4 subnet (gateway .1) and, with DHCP, its DHCP port (.2)."""
        self._segment += 1
        net = self._insert("networks", id=str(uuid.uuid4()), project_id=project, name=cidr, external=int(external),
                           mtu=1500 if external else mtu, network_type="flat" if external else "vxlan",
                           segmentation_id=None if external else self._segment, port_security_enabled=1,
                           admin_state_up=1)
        hosts = ipaddress.ip_network(cidr).hosts()
        gateway = str(next(hosts))
        subnet = self._insert("subnets", id=str(uuid.uuid4()), project_id=project, network_id=net, ip_version=4,
                              cidr=cidr, gateway_ip=gateway, enable_dhcp=int(dhcp), dns_nameservers=[],
                              host_routes=[])
        if dhcp:
            self.port(net, subnet, str(next(hosts)), project=project, owner="network:dhcp", host="", security=False)
        return net, subnet

    def port(self, net: str, subnet: str, ip: str, project: str = "p1", owner: str = "compute:nova",
             host: str | None = None, groups: list[str] | None = None, security: bool = True,
             pairs: list[dict[str, str]] | None = None, device: str = "", mac: str | None = None) -> str:
        return self._insert(
            "ports", id=str(uuid.uuid4()), project_id=project, network_id=net, mac_address=mac or self.mac(),
            admin_state_up=1, status="DOWN", device_id=device, device_owner=owner,
            fixed_ips=[{"subnet_id": subnet, "ip_address": ip}],
            security_groups=(groups if groups is not None else [self.default_group(project)]) if security else [],
            port_security_enabled=int(security), allowed_address_pairs=pairs or [],
            binding_host_id=self.host if host is None else host,
        )

    def default_group(self, project: str) -> str:
        found = self.db.execute("SELECT id FROM security_groups WHERE project_id = ? AND name = 'default'",
                                (project,)).fetchone()
        if found:
            return found[0]
        group = self.group(project, "default")
        for ethertype in ("IPv4", "IPv6"):
            self.rule(group, "egress", ethertype)
            self.rule(group, "ingress", ethertype, remote_group_id=group)
        return group

    def group(self, project: str, name: str) -> str:
        return self._insert("security_groups", id=str(uuid.uuid4()), project_id=project, name=name, stateful=1)

    def rule(self, group: str, direction: str, ethertype: str = "IPv4", protocol: str | None = None,
             port_min: int | None = None, port_max: int | None = None, remote_ip_prefix: str | None = None,
             remote_group_id: str | None = None) -> str:
        return self._insert("security_group_rules", id=str(uuid.uuid4()), project_id="p1", security_group_id=group,
                            direction=direction, ethertype=ethertype, protocol=protocol, port_range_min=port_min,
                            port_range_max=port_max, remote_ip_prefix=remote_ip_prefix,
                            remote_group_id=remote_group_id)

    def router(self, project: str, external: tuple[str, str], gateway_ip: str, interfaces: list[tuple[str, str]],
               snat: bool = True) -> str:
        router = str(uuid.uuid4())
        ext_net, ext_subnet = external
        gw_port = self.port(ext_net, ext_subnet, gateway_ip, project="", owner="network:router_gateway", host="",
                            security=False, device=router)
        self._insert("routers", id=router, project_id=project, external_network_id=ext_net, enable_snat=int(snat),
                     gw_port_id=gw_port, routes=[])
        for net, subnet in interfaces:
            gateway = self.db.execute("SELECT gateway_ip FROM subnets WHERE id = ?", (subnet,)).fetchone()[0]
            self.port(net, subnet, gateway, project=project, owner="network:router_interface", host="",
                      security=False, device=router)
        return router

    def floating_ip(self, router: str, external: tuple[str, str], floating: str, port: str) -> str:
        fixed = json.loads(self.db.execute("SELECT fixed_ips FROM ports WHERE id = ?", (port,)).fetchone()[0])
        fip_port = self.port(external[0], external[1], floating, project="", owner="network:floatingip", host="",
                             security=False)
        return self._insert("floatingips", id=str(uuid.uuid4()), project_id="p1", floating_network_id=external[0],
                            floating_ip_address=floating, floating_port_id=fip_port, port_id=port,
                            fixed_ip_address=fixed[0]["ip_address"], router_id=router)

    def node(self, node_id: str, name: str, tunnel_ip: str) -> str:
        """A cluster member (whether it is up is the cluster's answer, handed to ``plan``)."""
        at = "2023-11-14T22:13:20Z"
        self.db.execute("DELETE FROM cluster_nodes WHERE id = ?", (node_id,))
        return self._insert("cluster_nodes", id=node_id, name=name, api_url=f"https://{tunnel_ip}:8443",
                            tunnel_ip=tunnel_ip, joined_at=at, heartbeat_at=at, capacity="{}")

    def delete(self, table: str, row_id: str) -> None:
        self.db.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))

    def plan(self, node_id: str, external_bridge: str = "cbxext0", external_interface: str = "",
             up: Collection[str] | None = None, host: str | None = None) -> HostPlan:
        return build_plan(self.db, host or self.host, node_id, external_bridge, external_interface, up)


def nft_accepts(ruleset: str) -> None:
    """``nft -c``: the kernel's own parser checks the ruleset without loading it (needs root)."""
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed")
    done = subprocess.run(["nft", "-c", "-f", "-"], input=ruleset, text=True, capture_output=True)
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("nft -c needs root")
    assert done.returncode == 0, done.stderr


@pytest.fixture
def cloud() -> Rows:
    rows = Rows()
    ext = rows.network("172.24.4.0/24", project="admin", external=True, dhcp=False)
    net, subnet = rows.network("10.0.0.0/24")
    a = rows.port(net, subnet, "10.0.0.5")
    b = rows.port(net, subnet, "10.0.0.6")
    router = rows.router("p1", ext, "172.24.4.10", [(net, subnet)])
    rows.floating_ip(router, ext, "172.24.4.20", a)
    rows.__dict__.update(ext=ext, net=net, subnet=subnet, a=a, b=b, router_id=router)
    return rows


def test_plan_places_networks_ports_router_and_external(cloud: Rows) -> None:
    plan = cloud.plan("node1234")
    by_id = {n.id: n for n in plan.networks}
    tenant = by_id[cloud.net]
    assert tenant.bridge == "brq" + cloud.net[:11] and not tenant.external and tenant.mtu == 1450
    assert tenant.ct_zone == tenant.segmentation_id
    assert by_id[cloud.ext[0]].bridge == "cbxext0"
    assert {p.id for p in plan.ports} == {cloud.a, cloud.b}  # not the DHCP/router/floating ports
    a = plan.port(cloud.a)
    assert a.tap == "tap" + cloud.a[:11] and a.addresses == ("10.0.0.5",) and a.bridge == tenant.bridge
    assert a.security_group_ids == (cloud.default_group("p1"),)
    dhcp = tenant.dhcp
    assert dhcp.namespace == f"qdhcp-{cloud.net}" and dhcp.addresses == ("10.0.0.2/24", "169.254.169.254/32")
    assert dhcp.subnets[0].routes == (("169.254.169.254/32", "10.0.0.2"), ("0.0.0.0/0", "10.0.0.1"))
    assert [(h.ip, h.hostname) for h in dhcp.hosts] == [("10.0.0.1", "host-10-0-0-1"), ("10.0.0.5", "host-10-0-0-5"),
                                                        ("10.0.0.6", "host-10-0-0-6")]
    (router,) = plan.routers
    assert router.namespace == f"qrouter-{cloud.router_id}"
    assert router.interfaces[0].addresses == ("10.0.0.1/24",) and router.interfaces[0].ns_name.startswith("qr-")
    assert router.gateway.addresses == ("172.24.4.10/24",) and router.gateway.bridge == "cbxext0"
    assert router.default_gateway == "172.24.4.1"
    assert [(f.floating, f.fixed) for f in router.floating_ips] == [("172.24.4.20", "10.0.0.5")]
    (group,) = plan.security_groups
    assert group.members_v4 == ("10.0.0.5", "10.0.0.6")
    assert plan.external.host_addresses == ("172.24.4.1/24",) and plan.external.masquerade_cidrs == ("172.24.4.0/24",)
    with_uplink = cloud.plan("node1234", "brx", "eth9").external
    assert with_uplink.interface == "eth9" and with_uplink.host_addresses == () and with_uplink.bridge == "brx"


def test_plan_of_an_empty_cloud_and_of_another_host(cloud: Rows) -> None:
    assert build_plan(Rows().db, "h", "n") == HostPlan(node_id="n", host="h")
    other = build_plan(cloud.db, "elsewhere", "n")
    assert other.ports == () and other.security_groups == ()
    assert len(other.routers) == 1  # one node runs every router until the cluster issue


def test_conntrack_zones_are_stable_16_bit() -> None:
    assert conntrack_zone("x", 42) == 42
    big = conntrack_zone("net-a", 70000)
    assert 1 <= big <= 0xFFFF and big == conntrack_zone("net-a", None)


def test_host_ruleset_marks_ports_and_checks_spoofing(cloud: Rows) -> None:
    plan = cloud.plan("node1234")
    text = render.render_host(plan)
    nft_accepts(text)
    index = render.port_indexes(plan)
    a = plan.port(cloud.a)
    i = index[a.id]
    assert text.startswith("table bridge cloudbox_node1234\ndelete table bridge cloudbox_node1234\n")
    assert f'"{a.tap}" : 0x{i << 16:08x}' in text
    assert f"ether saddr {a.mac} ip saddr {{ 10.0.0.5 }} return" in text
    assert f"arp saddr ether {a.mac} arp saddr ip {{ 10.0.0.5 }} return" in text
    assert f"ether saddr {a.mac} ip6 saddr {{ {render.lla(a.mac)} }} return" in text
    zone = next(n.ct_zone for n in plan.networks if n.bridge == a.bridge)
    assert f'ct zone set iifname map {{ "{a.bridge}" : {zone} }}' in text
    assert "udp sport 67 udp dport 68 drop" in text  # no rogue DHCP server
    assert "ip saddr @sg1_v4 accept" in text  # ingress from the default group's members
    assert 'iifname "cbxext0" oifname != "cbxext0" ip saddr { 172.24.4.0/24 } masquerade' in text


def test_rules_render_protocols_ranges_prefixes_and_pairs() -> None:
    rows = Rows()
    net, subnet = rows.network("10.1.0.0/24")
    group = rows.group("p1", "web")
    rows.rule(group, "ingress", "IPv4", "tcp", 80, 443, "192.168.0.0/16")
    rows.rule(group, "ingress", "IPv4", "icmp", 8, 0)
    rows.rule(group, "ingress", "IPv6", "icmp", 128)
    rows.rule(group, "ingress", "IPv4", "112")
    rows.rule(group, "ingress", "IPv4", "udp", 53, 53, "0.0.0.0/0")
    rows.rule(group, "ingress", "IPv4", "tcp", 22, 22, "fd00::/8")  # family mismatch: matches nothing
    rows.rule(group, "egress", "IPv4", "udp", 53)
    port = rows.port(net, subnet, "10.1.0.9", groups=[group],
                     pairs=[{"ip_address": "10.1.0.0/28", "mac_address": "fa:16:3e:aa:bb:cc"},
                            {"ip_address": "10.1.0.10"}])
    plain = rows.port(net, subnet, "10.1.0.11", security=False)
    plan = rows.plan("n")
    text = render.render_host(plan)
    nft_accepts(text)
    assert "meta nfproto ipv4 ip saddr 192.168.0.0/16 meta l4proto 6 th dport 80-443 accept" in text
    assert "meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 accept" in text
    assert "meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 accept" in text
    assert "meta nfproto ipv4 meta l4proto 112 accept" in text
    assert "meta nfproto ipv4 meta l4proto 17 th dport 53 accept" in text
    assert "fd00" not in text.split("chain ingress_")[1]
    assert "meta nfproto ipv4 meta l4proto 17 th dport 53 return" in text
    mac = plan.port(port).mac
    assert f"ether saddr {mac} ip saddr {{ 10.1.0.9, 10.1.0.10 }} return" in text
    # Neighbour advertisements only for the port's own IPv6 addresses (here: the link-local ones
    # of its MAC and of its pair's MAC), as 128-bit numbers; no router advertisements or redirects.
    own = sorted(f"0x{int(ipaddress.IPv6Address(render.lla(m))):032x}" for m in (mac, "fa:16:3e:aa:bb:cc"))
    assert f"icmpv6 type nd-neighbor-advert @th,64,128 != {{ {', '.join(own)} }} drop" in text
    assert "icmpv6 type { nd-router-advert, nd-redirect } drop" in text
    assert "ether saddr fa:16:3e:aa:bb:cc ip saddr { 10.1.0.0/28 } return" in text
    i_plain = render.port_indexes(plan)[plain]
    assert f"chain from_{i_plain} " not in text and f"chain egress_{i_plain} " not in text
    assert f"jump to_{i_plain}" in text  # still marked: the other port's ingress chain needs the out-port


def test_a_protocols_name_and_number_render_the_same_rule() -> None:
    rows = Rows()
    net, subnet = rows.network("10.1.0.0/24")
    group = rows.group("p1", "web")
    port = rows.port(net, subnet, "10.1.0.9", groups=[group])
    chains = []
    for spellings in (("tcp", "icmp", "any"), ("6", "1", "0")):
        rules = [rows.rule(group, "ingress", "IPv4", spellings[0], 22, 22),
                 rows.rule(group, "ingress", "IPv6", spellings[1], 128),
                 rows.rule(group, "egress", "IPv4", spellings[2])]
        plan = rows.plan("n")
        i = render.port_indexes(plan)[port]
        text = render.render_host(plan)
        chains.append(text.split(f"chain egress_{i} ")[1])  # the port's egress and ingress chains
        for rule in rules:
            rows.delete("security_group_rules", rule)
    assert chains[0] == chains[1]
    assert "meta nfproto ipv4 meta l4proto 6 th dport 22 accept" in chains[0]
    assert "meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 accept" in chains[0]  # ICMP on IPv6 is ICMPv6
    assert "meta nfproto ipv4 return" in chains[0]  # "any" and "0": every protocol


def test_empty_plan_only_deletes_the_tables() -> None:
    text = render.render_host(HostPlan(node_id="abc-def-123", host=""))
    assert text == ("table bridge cloudbox_abc_def_\ndelete table bridge cloudbox_abc_def_\n"
                    "table inet cloudbox_abc_def_\ndelete table inet cloudbox_abc_def_\n")
    nft_accepts(text)


def test_router_ruleset(cloud: Rows) -> None:
    (router,) = cloud.plan("n").routers
    text = render.render_router(router)
    nft_accepts(text)
    assert "ip daddr 172.24.4.20 dnat ip to 10.0.0.5" in text
    qg = router.gateway.ns_name
    assert f'oifname "{qg}" ip saddr 10.0.0.5 snat ip to 172.24.4.20' in text
    assert text.index("snat ip to 172.24.4.20") < text.index("snat ip to 172.24.4.10")  # floating IP first
    cloud.db.execute("UPDATE routers SET enable_snat = 0")
    (router,) = cloud.plan("n").routers
    assert "172.24.4.10" not in render.render_router(router)


def test_dnsmasq_files(cloud: Rows) -> None:
    network = next(n for n in cloud.plan("n").networks if n.id == cloud.net)
    config = render.dnsmasq_config(network.id, network.dhcp, network.mtu, "/run/x")
    assert f"interface={network.dhcp.interface}" in config and "port=0" in config
    assert "dhcp-range=set:subnet0,10.0.0.0,static,255.255.255.0,86400s" in config
    assert ("dhcp-option=tag:subnet0,option:classless-static-route,169.254.169.254/32,10.0.0.2,0.0.0.0/0,10.0.0.1"
            in config)
    assert "dhcp-option=tag:subnet0,option:mtu,1450" in config
    hosts = render.dnsmasq_hosts(network.dhcp)
    assert hosts.splitlines()[1].endswith(",10.0.0.5,host-10-0-0-5")


def test_lla_is_eui64() -> None:
    assert render.lla("fa:16:3e:00:00:05") == "fe80::f816:3eff:fe00:5"


# --- several nodes: placement and tunnels ---------------------------------------------------



def test_rendezvous_spreads_and_a_lost_node_moves_only_its_own() -> None:
    nodes = ["n1", "n2", "n3", "n4"]
    resources = [f"r{i}" for i in range(400)]
    owners = {r: rendezvous(r, nodes) for r in resources}
    assert owners == {r: rendezvous(r, list(reversed(nodes))) for r in resources}  # order does not matter
    counts = {n: list(owners.values()).count(n) for n in nodes}
    assert all(60 < c < 140 for c in counts.values()), counts
    without = {r: rendezvous(r, ["n1", "n2", "n4"]) for r in resources}
    assert all(without[r] == owners[r] for r in resources if owners[r] != "n3")  # the others stay put
    assert rendezvous("r", []) is None


def test_placement_is_local_alone_and_spread_with_live_peers() -> None:
    me, other = Member("a", "node-a", "192.0.2.1"), Member("b", "node-b", "192.0.2.2")
    assert not placement([], "a").clustered
    assert not placement([dataclasses.replace(me, up=False)], "a").clustered  # alone, even with a stale row
    assert not placement([me, dataclasses.replace(other, up=False)], "a").clustered  # the peer is down
    both = placement([me, other], "a")
    assert both.candidates == ("a", "b") and both.owner("x") == rendezvous("x", ["a", "b"])
    # Nobody is up (the whole cloud starting): every member counts, so that all agree.
    cold = placement([dataclasses.replace(me, up=False), dataclasses.replace(other, up=False)], "b")
    assert cold.candidates == ("a", "b")
    # This node is down and the peer is up: the peer runs everything.
    lagging = placement([dataclasses.replace(me, up=False), other], "a")
    assert lagging.candidates == ("b",) and not lagging.here("x")


def test_one_node_with_or_without_its_row_plans_as_before(cloud: Rows) -> None:
    before = cloud.plan("node1234")
    cloud.node("node1234", "node-a", "192.0.2.1")
    alone = cloud.plan("node1234", up=frozenset())  # no member known up: still all here
    assert dataclasses.replace(alone, members=()) == before
    cloud.node("gone", "node-z", "192.0.2.9")  # a member that is down takes nothing
    after = cloud.plan("node1234", up={"node1234"})
    assert dataclasses.replace(after, members=()) == before
    assert all(n.vxlan is None for n in after.networks) and after.tunnel_address() is None


def two_nodes(rows: Rows) -> None:
    rows.node("id-a", "node-a", "192.0.2.1")
    rows.node("id-b", "node-b", "192.0.2.2")


def test_two_nodes_share_out_dhcp_and_routers_and_tunnel_where_both_need_a_network() -> None:
    rows = Rows(host="node-a")
    two_nodes(rows)
    ext = rows.network("172.24.4.0/24", project="admin", external=True, dhcp=False)
    nets = [rows.network(f"10.{i}.0.0/24") for i in range(1, 9)]
    ports = {(i, host): rows.port(net, subnet, f"10.{i + 1}.0.{5 + k}", host=host)
             for i, (net, subnet) in enumerate(nets) for k, host in enumerate(("node-a", "node-b"))}
    routers = [rows.router("p1", ext, f"172.24.4.{10 + i}", [nets[i]]) for i in range(6)]
    lonely, lonely_subnet = rows.network("10.99.0.0/24", dhcp=False)  # only node-a has a port on it
    rows.port(lonely, lonely_subnet, "10.99.0.5", host="node-a")
    a = rows.plan("id-a", up={"id-a", "id-b"}, host="node-a")
    b = rows.plan("id-b", up={"id-a", "id-b"}, host="node-b")
    dhcp_a = {n.id for n in a.networks if n.dhcp}
    dhcp_b = {n.id for n in b.networks if n.dhcp}
    assert dhcp_a.isdisjoint(dhcp_b) and dhcp_a | dhcp_b == {net for net, _ in nets}
    assert dhcp_a and dhcp_b  # 8 networks on 2 nodes: both get some (fixed ids would make this certain)
    routers_a, routers_b = {r.id for r in a.routers}, {r.id for r in b.routers}
    assert routers_a.isdisjoint(routers_b) and routers_a | routers_b == set(routers)
    assert {p.id for p in a.ports} == {p for (i, h), p in ports.items() if h == "node-a"} | {
        p.id for p in a.ports if p.network_id == lonely}
    for plan, other_ip in ((a, "192.0.2.2"), (b, "192.0.2.1")):
        by_id = {n.id: n for n in plan.networks}
        for net, _ in nets:  # both nodes have a port on each: each tunnels to the other
            vx = by_id[net].vxlan
            assert vx.name == "vx-" + net[:11] and vx.vni == by_id[net].segmentation_id
            assert vx.local == plan.tunnel_address() and vx.flood == (other_ip,) and vx.port == 4789
        assert by_id[ext[0]].vxlan is None  # the external network is every node's own
        assert plan.tunnel_peers() == (other_ip,)
    assert {n.id: n for n in a.networks}[lonely].vxlan is None and lonely not in {n.id for n in b.networks}
    # The static FDB: node-b's guest port and, where node-b runs it, the DHCP server are pinned there.
    net, _ = nets[0]
    vx = {n.id: n for n in a.networks}[net].vxlan
    mac_b = rows.db.execute("SELECT mac_address FROM ports WHERE id = ?", (ports[(0, "node-b")],)).fetchone()[0]
    assert (mac_b, "192.0.2.2") in vx.macs
    dhcp_mac = rows.db.execute("SELECT mac_address FROM ports WHERE network_id = ? AND device_owner = 'network:dhcp'",
                               (net,)).fetchone()[0]
    assert ((dhcp_mac, "192.0.2.2") in vx.macs) == (net in dhcp_b)
    text = render.render_host(a)
    nft_accepts(text)
    assert f'"{vx.name}" : 0x00000000' in text  # a tunnel is a port with no guest behind it
    assert "ip daddr 192.0.2.1 udp dport 4789 ip saddr != { 192.0.2.2 } drop" in text


def test_a_network_with_only_a_router_elsewhere_is_tunnelled_to_it() -> None:
    rows = Rows(host="node-a")
    two_nodes(rows)
    ext = rows.network("172.24.4.0/24", project="admin", external=True, dhcp=False)
    for i in range(20):  # find a router rendezvous puts on node-b
        net, subnet = rows.network(f"10.{i}.0.0/24", dhcp=False)
        rows.port(net, subnet, f"10.{i}.0.5", host="node-a")
        router = rows.router("p1", ext, f"172.24.4.{10 + i}", [(net, subnet)])
        if rendezvous(router, ["id-a", "id-b"]) == "id-b":
            break
    a = rows.plan("id-a", up={"id-a", "id-b"}, host="node-a")
    b = rows.plan("id-b", up={"id-a", "id-b"}, host="node-b")
    assert [r.id for r in b.routers] == [router] and router not in {r.id for r in a.routers}
    assert {n.id: n for n in b.networks}[net].vxlan.flood == ("192.0.2.1",)  # no guest there, but its router
    assert {n.id: n for n in a.networks}[net].vxlan.flood == ("192.0.2.2",)


def test_a_node_that_is_down_loses_its_dhcp_servers_and_routers() -> None:
    rows = Rows(host="node-a")
    ext = rows.network("172.24.4.0/24", project="admin", external=True, dhcp=False)
    nets = [rows.network(f"10.{i}.0.0/24") for i in range(1, 7)]
    for i, (net, subnet) in enumerate(nets):
        rows.port(net, subnet, f"10.{i + 1}.0.5", host="node-a")
        rows.port(net, subnet, f"10.{i + 1}.0.6", host="node-b")
        rows.router("p1", ext, f"172.24.4.{10 + i}", [(net, subnet)])
    two_nodes(rows)  # node-b is down: not in the cluster's answer
    a = rows.plan("id-a", up={"id-a"}, host="node-a")
    assert all(n.dhcp for n in a.networks if not n.external) and len(a.routers) == 6
    assert all(n.vxlan is None for n in a.networks)  # no other live node: nothing to tunnel to
    b = rows.plan("id-b", up={"id-a"}, host="node-b")  # the same answer on node-b: it counts itself out
    assert b.routers == () and not any(n.dhcp for n in b.networks)
    assert len(b.ports) == 6
    b = rows.plan("id-b", up={"id-a", "id-b"}, host="node-b")  # node-b is back: it gets its share again
    a = rows.plan("id-a", up={"id-a", "id-b"}, host="node-a")
    share = {r.id for r in a.routers + b.routers if rendezvous(r.id, ["id-a", "id-b"]) == "id-b"}
    assert {r.id for r in b.routers} == share and len(a.routers) + len(b.routers) == 6  # exact, not by luck
    assert {n.id for n in b.networks if n.dhcp} == {
        n.id for n in a.networks + b.networks if not n.external and rendezvous(n.id, ["id-a", "id-b"]) == "id-b"}


def test_gratuitous_arp_frames() -> None:
    request = arp.frame("fa:16:3e:00:00:2a", "172.24.4.10", arp.REQUEST)
    reply = arp.frame("fa:16:3e:00:00:2a", "172.24.4.10", arp.REPLY)
    mac, ip = bytes.fromhex("fa163e00002a"), bytes([172, 24, 4, 10])
    for frame, op, target_mac in ((request, 1, b"\x00" * 6), (reply, 2, b"\xff" * 6)):
        assert len(frame) == 42
        assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac and frame[12:14] == b"\x08\x06"
        assert frame[14:22] == bytes([0, 1, 8, 0, 6, 4, 0, op])  # Ethernet/IPv4, operation
        assert frame[22:28] == mac and frame[28:32] == ip  # sender
        assert frame[32:38] == target_mac and frame[38:42] == ip  # target: the same address
    with pytest.raises(ValueError):
        arp.frame("fa:16:3e", "172.24.4.10", arp.REQUEST)


def test_what_guests_may_not_reach() -> None:
    assert Management.parse("auto") == Management((), True)
    assert Management.parse("10.0.0.0/8, 192.168.1.5/24 auto") == Management(("10.0.0.0/8", "192.168.1.0/24"), True)
    assert Management.parse("") == Management((), False)
    with pytest.raises(ValueError, match="neither a CIDR nor 'auto'"):
        Management.parse("10.0.0.0/8,lan")
    host = HostNetworks(addresses=("192.0.2.2", "172.24.4.1", "172.24.4.7", "127.0.0.1", "fe80::1", "2001:db8::2"),
                        subnets=("192.0.2.0/24", "2001:db8::/64"))
    ext, gateways = ["172.24.4.0/24"], ["172.24.4.1"]
    # auto: the host's LANs, 169.254/16 and its own addresses, but not the external gateway (the
    # guests' next hop), nor loopback or link-local IPv6.
    assert guarded_destinations(Management(), host, ext, gateways) == (
        "169.254.0.0/16", "172.24.4.7/32", "192.0.2.0/24", "2001:db8::/64")
    # Without auto only the host's own addresses; a range over the external network is cut around it.
    assert guarded_destinations(Management(("172.24.0.0/21",), False), host, ext, gateways) == (
        "172.24.0.0/22", "172.24.4.7/32", "172.24.5.0/24", "172.24.6.0/23", "192.0.2.2/32", "2001:db8::2/128")
    # A LAN that is the external network itself (an uplink into it) is no management range.
    assert guarded_destinations(Management((), True), HostNetworks((), ("172.24.4.0/24",)), ext, gateways) == (
        "169.254.0.0/16",)


def test_guests_router_gateways_are_marked_and_their_new_flows_to_guarded_places_dropped(cloud: Rows) -> None:
    observed = HostNetworks(("192.0.2.2",), ("192.0.2.0/24",))
    plan = build_plan(cloud.db, "elsewhere", "n", host_networks=observed)  # a router, no port here
    (router,) = plan.routers
    text = render.render_host(plan)
    nft_accepts(text)
    leg = f'"{router.gateway.host_end}" : 0xffff0000'
    bridge, inet = text.split("table inet")[0], text.split("table inet")[-1]
    assert bridge.count(f"meta mark set iifname map {{ {leg} }}") == 2  # forward and input hooks
    assert "elements = { 169.254.0.0/16, 192.0.2.0/24 }" in inet
    rule = ('iifname "cbxext0" meta mark & 0xffff0000 == 0xffff0000 ct state { new, invalid } '
            "ip daddr @guarded_v4 drop")
    forward, incoming = (inet.split(f"chain {name} {{")[1].split("\n  }")[0] for name in ("forward", "input"))
    assert rule in forward and rule in incoming
    assert incoming.index(rule) < incoming.index("ct state established,related accept")
    with_port = render.render_host(build_plan(cloud.db, cloud.host, "n", host_networks=observed))
    nft_accepts(with_port)
    assert leg in with_port and rule in with_port


# --- which tracked flows a plan still allows (flows.py) ----------------------------------------------
def test_flows_the_rules_no_longer_allow_are_found() -> None:
    rows = Rows()
    net, subnet = rows.network("10.1.0.0/24")
    web = rows.group("p1", "web")
    rows.rule(web, "egress", "IPv4", "udp", 53, 53)
    ssh = rows.rule(web, "ingress", "IPv4", "tcp", 22, 22, "192.168.0.0/16")
    rows.rule(web, "ingress", "IPv4", "icmp", 8)
    rows.rule(web, "ingress", "IPv6", "icmp")  # ICMPv6 on an IPv6 rule
    rows.rule(web, "ingress", "IPv4", "6", 80, 80, remote_group_id=rows.default_group("p1"))
    server = rows.port(net, subnet, "10.1.0.9", groups=[web], pairs=[{"ip_address": "10.1.0.128/28"}])
    member = rows.port(net, subnet, "10.1.0.10")  # of default: may reach port 80
    loose = rows.port(net, subnet, "10.1.0.11", security=False)
    plan = rows.plan("n")
    zone = next(n.ct_zone for n in plan.networks if n.id == net)
    everything = {p.id for p in plan.ports}
    assert flows.ports_to_recheck(None, plan) == everything - {loose}  # secured ports: all without a past
    assert flows.ports_to_recheck(plan, plan) == set()

    def flow(src: str, dst: str, protocol: int = 6, dport: int | None = 22, **extra: Any) -> flows.Flow:
        extra.setdefault("sport", 40000 if dport else None)
        return flows.Flow(zone, 6 if ":" in src else 4, protocol, src, dst, dport=dport, **extra)

    allowed = [
        flow("192.168.1.1", "10.1.0.9"),  # ssh from the prefix
        flow("192.168.1.1", "10.1.0.130"),  # to an address pair
        flow("10.1.0.10", "10.1.0.9", dport=80),  # from a member of the remote group
        flow("10.1.0.9", "8.8.8.8", 17, 53),  # egress DNS
        flow("10.1.0.9", "10.1.0.2", 17, 67, sport=68),  # DHCP to the server
        flow("8.8.8.8", "10.1.0.9", 1, None, icmp_type=8, icmp_code=0),
        flow("fe80::1", "fe80::2", 58, None, icmp_type=128, icmp_code=0),  # nobody's address: no port judges
        flow("8.8.8.8", "10.1.0.11", 6, 9999),  # to the port without port security
        dataclasses.replace(flow("8.8.8.8", "10.1.0.9", 6, 9999), zone=zone + 1),  # another network's zone
    ]
    denied = [
        flow("8.8.8.8", "10.1.0.9"),  # ssh from outside the prefix
        flow("10.1.0.11", "10.1.0.9", dport=80),  # not a member
        flow("10.1.0.9", "8.8.8.8", 6, 443),  # egress not allowed
        flow("10.1.0.9", "10.1.0.10", 17, 68, sport=67),  # a DHCP server in a guest
        flow("8.8.8.8", "10.1.0.9", 1, None, icmp_type=0, icmp_code=0),  # only echo requests come in
    ]
    assert flows.to_cut(plan, allowed + denied, everything) == denied
    assert flows.to_cut(plan, denied, everything - {server}) == []  # only the ports asked about judge
    # The ssh rule goes: only its flows need a look (the server's), and they are cut.
    rows.delete("security_group_rules", ssh)
    after = rows.plan("n")
    assert flows.ports_to_recheck(plan, after) == {server}
    assert flows.to_cut(after, allowed, {server}) == allowed[:2]
    # A stateless group has no trusted entries to cut: each packet meets the rules.
    rows.db.execute("UPDATE security_groups SET stateful = 0 WHERE id = ?", (web,))
    assert flows.to_cut(rows.plan("n"), denied, {server}) == []


def test_flows_mirror_the_neighbour_discovery_the_chains_let_through() -> None:
    numbers = {"nd-router-solicit": 133, "nd-router-advert": 134, "nd-neighbor-solicit": 135,
               "nd-neighbor-advert": 136, "mld-listener-query": 130, "mld-listener-report": 131,
               "mld2-listener-report": 143}
    assert flows.ND_OUT == {numbers[n] for n in render.ND_OUT.split(", ")}
    assert flows.ND_IN == {numbers[n] for n in render.ND_IN.split(", ")}

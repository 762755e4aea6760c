"""The network data plane's pure parts: host plans from rows, nft rulesets, dnsmasq files.

``Rows`` writes rows shaped as the network tables of DESIGN.md into a throwaway
SQLite database, so ``build_plan`` is exercised without the control plane; the
real-kernel tests (test_network_dataplane.py) use it too.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import sqlite3
import subprocess
import uuid
from typing import Any

import pytest

from cloudbox.network import render
from cloudbox.network.hostplan import HostPlan, build_plan, conntrack_zone

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

    def delete(self, table: str, row_id: str) -> None:
        self.db.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))

    def plan(self, node_id: str, external_bridge: str = "cbxext0", external_interface: str = "") -> HostPlan:
        return build_plan(self.db, self.host, node_id, external_bridge, external_interface)


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
    assert "ether saddr fa:16:3e:aa:bb:cc ip saddr { 10.1.0.0/28 } return" in text
    i_plain = render.port_indexes(plan)[plain]
    assert f"chain from_{i_plain} " not in text and f"chain egress_{i_plain} " not in text
    assert f"jump to_{i_plain}" in text  # still marked: the other port's ingress chain needs the out-port


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

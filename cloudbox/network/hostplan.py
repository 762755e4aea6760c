"""The desired network state of one node, built from the replicated tables.

Pure: ``build_plan`` takes a database handle and returns frozen dataclasses; it
reads and never writes, and does no host I/O.  ``render.py`` turns a plan into
nftables/dnsmasq text and ``driver/`` makes the host match it.

Names of host objects derive from ids (see DESIGN.md), so two test nodes on one
machine never collide and a restarted node finds what it made:

| object                       | name                     |
|------------------------------|--------------------------|
| tenant network bridge        | ``brq<network id[:11]>`` |
| guest port                   | ``tap<port id[:11]>``    |
| DHCP namespace / interface   | ``qdhcp-<network id>`` / ``ns-<port id[:11]>`` |
| its host end on the bridge   | ``dh-<port id[:11]>``    |
| router namespace             | ``qrouter-<router id>``  |
| router interface / host end  | ``qr-<port[:11]>`` / ``rq-<port[:11]>`` |
| router gateway / host end    | ``qg-<port[:11]>`` / ``rg-<port[:11]>`` |
| VXLAN link of a network      | ``vx-<network id[:11]>`` |

Placement (see DESIGN.md "Several nodes"): a guest port runs on the node named by
its ``binding_host_id``; each network's DHCP server and each router run on one
live member of ``cluster_nodes``, the one with the highest
sha256(resource id + node id) (rendezvous hashing: every node computes the same
answer from the same tables, and a node going down moves only what it ran).
With no other live member (a single node, or no cluster rows) this node runs
every DHCP server and router, and no tunnel is made.  Every external network is
local to every node (each node has its own external bridge).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Collection, Iterable, Mapping

METADATA_ADDRESS = "169.254.169.254"
DEFAULT_MTU = 1500
VXLAN_PORT = 4789  # IANA's; the kernel's default (8472) is Linux's pre-standard one
FLOOD_MAC = "00:00:00:00:00:00"  # the FDB entry a VXLAN link copies broadcast/unknown frames to


def bridge_name(network_id: str) -> str:
    return "brq" + network_id[:11]


def tap_name(port_id: str) -> str:
    return "tap" + port_id[:11]


def dhcp_namespace(network_id: str) -> str:
    return "qdhcp-" + network_id


def router_namespace(router_id: str) -> str:
    return "qrouter-" + router_id


def vxlan_name(network_id: str) -> str:
    return "vx-" + network_id[:11]


def conntrack_zone(network_id: str, segmentation_id: int | None) -> int:
    """A conntrack zone per tenant network, stable across passes so established flows keep their entries.

    Zones are 16 bits; VXLAN ids are handed out lowest-free, so they fit in practice and
    never collide.  Anything else falls back to a hash (a clash only matters for two
    networks with the same addresses *and* the same 5-tuples at once).
    """
    if segmentation_id is not None and 1 <= segmentation_id <= 0xFFFF:
        return segmentation_id
    return 1 + int.from_bytes(hashlib.sha256(network_id.encode()).digest()[:4], "big") % 0xFFFE


@dataclass(frozen=True)
class SubnetPlan:
    id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None
    enable_dhcp: bool
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    ip: str
    hostname: str
    # The port's extra DHCP options (IPv4 ones: name or number, value), sent to this host only
    # under the dnsmasq tag ``tag``.
    tag: str = ""
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DhcpSubnet:
    """What dnsmasq hands out on one subnet (IPv4 only: option 121 and static leases)."""

    id: str
    cidr: str
    gateway_ip: str | None
    dns_nameservers: tuple[str, ...]
    # Option 121 (classless static routes): clients that get it ignore option 3, so
    # the default route is in it too.
    routes: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DhcpPlan:
    port_id: str
    namespace: str
    interface: str  # inside the namespace
    host_end: str  # the veth end plugged into the bridge
    mac: str
    addresses: tuple[str, ...]  # with prefix length; includes 169.254.169.254/32
    subnets: tuple[DhcpSubnet, ...]
    hosts: tuple[DhcpHost, ...]


@dataclass(frozen=True)
class VxlanPlan:
    """The tunnel of one network to the other nodes that need it (a port of the network's bridge).

    No learning: the FDB is static, so a DHCP server or router that moves is found at its new
    node at once (a learned entry would point at the old one until it ages out).  ``flood``
    gets one all-zero entry each (head-end replication of broadcast and unknown unicast);
    ``macs`` pins each known MAC of the network to the node where it lives.
    """

    name: str
    vni: int
    local: str  # this node's tunnel address
    flood: tuple[str, ...]  # tunnel addresses of the other live nodes that need the network
    macs: tuple[tuple[str, str], ...] = ()  # (mac, tunnel address)
    port: int = VXLAN_PORT


@dataclass(frozen=True)
class NetworkPlan:
    id: str
    bridge: str
    mtu: int
    segmentation_id: int | None
    external: bool
    ct_zone: int
    subnets: tuple[SubnetPlan, ...] = ()
    dhcp: DhcpPlan | None = None
    vxlan: VxlanPlan | None = None


@dataclass(frozen=True)
class PortPlan:
    id: str
    network_id: str
    tap: str
    mac: str
    mtu: int
    bridge: str
    addresses: tuple[str, ...]  # fixed IPs, no prefix
    admin_state_up: bool = True
    port_security: bool = True
    allowed_address_pairs: tuple[tuple[str, str], ...] = ()  # (ip or cidr, mac)
    security_group_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouterPort:
    """A router's leg: a veth whose ``ns_name`` end lives in the router namespace."""

    port_id: str
    mac: str
    addresses: tuple[str, ...]  # with prefix length
    bridge: str
    ns_name: str
    host_end: str
    mtu: int


@dataclass(frozen=True)
class FloatingIP:
    floating: str
    fixed: str


@dataclass(frozen=True)
class RouterPlan:
    id: str
    namespace: str
    interfaces: tuple[RouterPort, ...] = ()
    gateway: RouterPort | None = None
    default_gateway: str | None = None  # the external subnet's gateway
    enable_snat: bool = True
    floating_ips: tuple[FloatingIP, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)


@dataclass(frozen=True)
class RulePlan:
    direction: str  # ingress | egress
    ethertype: str  # IPv4 | IPv6
    protocol: str | None = None  # name or number as the API took it; None: any
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


@dataclass(frozen=True)
class SecurityGroupPlan:
    id: str
    stateful: bool = True
    rules: tuple[RulePlan, ...] = ()
    members_v4: tuple[str, ...] = ()  # addresses/prefixes of the member ports
    members_v6: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExternalPlan:
    bridge: str
    interface: str | None  # enslaved uplink; then the host holds no address
    host_addresses: tuple[str, ...] = ()  # with prefix length
    masquerade_cidrs: tuple[str, ...] = ()
    # Destinations guests may not reach through the external network (see guarded_destinations).
    guarded: tuple[str, ...] = ()


# --- what guests may not reach ----------------------------------------------------------------

LINK_LOCAL_V4 = "169.254.0.0/16"  # a host that is itself a cloud guest has its metadata there


@dataclass(frozen=True)
class Management:
    """The setting ``management_cidrs``: ranges no guest may reach beyond the external network.

    ``auto`` (the default) stands for the subnets of the host's own interfaces (those cloudbox did
    not make: its LANs) and 169.254.0.0/16; CIDRs may be given beside it or instead of it.
    """

    cidrs: tuple[str, ...] = ()
    auto: bool = True

    @classmethod
    def parse(cls, text: str) -> "Management":
        """From the setting's text: CIDRs and ``auto``, separated by commas or spaces; ValueError."""
        auto, cidrs = False, []
        for item in str(text).replace(",", " ").split():
            if item == "auto":
                auto = True
                continue
            try:
                cidrs.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"management_cidrs: {item[:60]!r} is neither a CIDR nor 'auto'") from None
        return cls(tuple(cidrs), auto)


@dataclass(frozen=True)
class HostNetworks:
    """What the host's own interfaces hold, as the driver saw them (``driver.host_networks()``)."""

    addresses: tuple[str, ...] = ()  # every address of the host, on any interface (no prefix)
    subnets: tuple[str, ...] = ()  # the subnets of the interfaces cloudbox did not make


def guarded_destinations(management: Management, host: HostNetworks, external_cidrs: Iterable[str],
                         gateways: Iterable[str]) -> tuple[str, ...]:
    """What a guest may not reach through the external network: the host's own addresses, the
    management ranges, and with ``auto`` the host's LANs and 169.254.0.0/16.

    Never the external network itself (its outside hosts, routers and floating IPs live there:
    a range that covers it is cut around it) nor its gateways (the guests' next hop, which the
    host holds unless an uplink is enslaved; the host's input chain keeps it to ICMP and replies).
    Link-local IPv6 and loopback are left out: no router forwards them.
    """
    ranges = [ipaddress.ip_network(c, strict=False) for c in management.cidrs]
    if management.auto:
        ranges += [ipaddress.ip_network(LINK_LOCAL_V4), *(ipaddress.ip_network(s, strict=False) for s in host.subnets)]
    external = [ipaddress.ip_network(c, strict=False) for c in external_cidrs]
    kept: list[Any] = []
    for net in ranges:
        pieces = [net]
        for ext in external:
            pieces = [p for piece in pieces for p in _without(piece, ext)]
        kept += pieces
    skip = {ipaddress.ip_address(g) for g in gateways}
    for text in host.addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if address not in skip and not (address.is_loopback or address.is_link_local and address.version == 6):
            kept.append(ipaddress.ip_network(address))
    out = []
    for version in (4, 6):
        out += [str(n) for n in ipaddress.collapse_addresses(n for n in kept if n.version == version)]
    return tuple(out)


def _without(net: Any, hole: Any) -> list[Any]:
    """``net`` minus ``hole`` (both networks of one family, or not: then ``net`` whole)."""
    if net.version != hole.version or not net.overlaps(hole):
        return [net]
    if net.subnet_of(hole):
        return []
    return list(net.address_exclude(hole))


@dataclass(frozen=True)
class Member:
    """A row of ``cluster_nodes`` as placement sees it."""

    id: str
    name: str
    tunnel_ip: str
    up: bool = True


@dataclass(frozen=True)
class HostPlan:
    node_id: str
    host: str
    networks: tuple[NetworkPlan, ...] = ()
    ports: tuple[PortPlan, ...] = ()
    routers: tuple[RouterPlan, ...] = ()
    security_groups: tuple[SecurityGroupPlan, ...] = ()
    external: ExternalPlan | None = None
    members: tuple[Member, ...] = ()  # the cluster the plan was placed on (the data plane watches it)

    def tunnel_peers(self) -> tuple[str, ...]:
        """Tunnel addresses of the other members: the only senders of VXLAN this node accepts."""
        return tuple(sorted({m.tunnel_ip for m in self.members if m.id != self.node_id and m.tunnel_ip}))

    def tunnel_address(self) -> str | None:
        return next((n.vxlan.local for n in self.networks if n.vxlan is not None), None)

    @cached_property
    def _port_index(self) -> dict[str, PortPlan]:
        return {p.id: p for p in self.ports}

    def port(self, port_id: str) -> PortPlan | None:
        return self._port_index.get(port_id)

    def without_ports(self, port_ids: Iterable[str]) -> "HostPlan":
        drop = set(port_ids)
        if not drop & set(self._port_index):
            return self
        return replace(self, ports=tuple(p for p in self.ports if p.id not in drop))

    def service_port_ids(self) -> tuple[str, ...]:
        """The ports of the DHCP servers and routers this plan runs: they go ACTIVE once applied,
        as Neutron's agents report them (clients wait for a router interface to be ACTIVE)."""
        ids = [n.dhcp.port_id for n in self.networks if n.dhcp is not None]
        for router in self.routers:
            ids.extend(leg.port_id for leg in router.interfaces)
            if router.gateway is not None:
                ids.append(router.gateway.port_id)
        return tuple(sorted(ids))

    def dhcp_namespaces(self) -> dict[str, str]:
        """namespace name -> network id, for the metadata listeners."""
        return {n.dhcp.namespace: n.id for n in self.networks if n.dhcp is not None}


# --- building a plan from the tables ------------------------------------------------

def _json(value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


def _rows(db: Any, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _with_prefix(ip: str, cidr: str) -> str:
    return f"{ip}/{ipaddress.ip_network(cidr, strict=False).prefixlen}"


def _hostname(ip: str) -> str:
    return "host-" + ip.replace(".", "-").replace(":", "-")


def _route_pairs(value: Any, first: str, second: str) -> tuple[tuple[str, str], ...]:
    return tuple((r[first], r[second]) for r in _json(value, []))


# --- the cluster: who is up, who runs what ---------------------------------------------

def cluster_members(db: Any, up: Collection[str] | None = None) -> tuple[Member, ...]:
    """The rows of ``cluster_nodes`` (none when the table is missing); ``up`` holds the ids of the
    members that are up (the cluster service's answer, ``ClusterService.up_nodes``).

    Without ``up`` liveness is unknown and every member counts as up.
    """
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cluster_nodes'").fetchall():
        return ()
    rows = _rows(db, "SELECT id, name, tunnel_ip FROM cluster_nodes ORDER BY id")
    return tuple(Member(id=r["id"], name=r["name"], tunnel_ip=r["tunnel_ip"] or "",
                        up=up is None or r["id"] in up) for r in rows)


def rendezvous(resource_id: str, node_ids: Iterable[str]) -> str | None:
    """The node with the highest sha256(resource id + node id): stable, and spread evenly."""
    return max(node_ids, key=lambda n: (hashlib.sha256((resource_id + n).encode()).digest(), n), default=None)


@dataclass(frozen=True)
class Placement:
    """Where DHCP servers and routers run: this node alone, or spread over the live members."""

    node_id: str
    candidates: tuple[str, ...] = ()  # empty: no other live member, this node runs everything
    # network id -> the node an admin put its DHCP server on ('': none; see dhcp_owner)
    dhcp_pins: Mapping[str, str] = field(default_factory=dict)

    @property
    def clustered(self) -> bool:
        return bool(self.candidates)

    def owner(self, resource_id: str) -> str:
        return rendezvous(resource_id, self.candidates) or self.node_id

    def here(self, resource_id: str) -> bool:
        return self.owner(resource_id) == self.node_id

    def dhcp_owner(self, network_id: str) -> str | None:
        """Where the network's DHCP server runs: where an admin pinned it while that node is live
        (a pinned node that is down fails over as if unpinned), nowhere if an admin removed it
        from its agent, else the rendezvous owner."""
        pin = self.dhcp_pins.get(network_id)
        if pin == "":
            return None
        if pin is not None and (pin in self.candidates or (not self.candidates and pin == self.node_id)):
            return pin
        return self.owner(network_id)

    def dhcp_here(self, network_id: str) -> bool:
        return self.dhcp_owner(network_id) == self.node_id


def placement(members: Iterable[Member], node_id: str, dhcp_pins: Mapping[str, str] | None = None) -> Placement:
    """The candidates are the live members; when none is live (a whole cloud starting, a lone
    node back after a while) every member is, so that all nodes still agree."""
    members = tuple(members)
    live = sorted(m.id for m in members if m.up) or sorted(m.id for m in members)
    if not any(i != node_id for i in live):
        return Placement(node_id, dhcp_pins=dict(dhcp_pins or {}))
    return Placement(node_id, tuple(live), dict(dhcp_pins or {}))


def dhcp_pins(db: Any) -> dict[str, str]:
    """network id -> node id from ``dhcp_network_pins`` (none when the table is missing)."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dhcp_network_pins'").fetchall():
        return {}
    return {r["network_id"]: r["node_id"] for r in _rows(db, "SELECT network_id, node_id FROM dhcp_network_pins")}


def build_plan(db: Any, host: str, node_id: str, external_bridge: str = "cbxext0",
               external_interface: str = "", up: Collection[str] | None = None, *,
               management: Management = Management(), host_networks: HostNetworks = HostNetworks()) -> HostPlan:
    """The desired state of node ``node_id`` (compute host ``host``), from the tables.

    ``db`` is a sqlite-utils Database or a sqlite3 connection (anything with ``execute``);
    ``up`` holds the ids of the cluster members that are up (None: every member);
    ``management`` and ``host_networks`` decide what guests may not reach (``guarded_destinations``).
    """
    networks = {r["id"]: r for r in _rows(db, "SELECT * FROM networks ORDER BY id")}
    subnets = _rows(db, "SELECT * FROM subnets ORDER BY network_id, ip_version, cidr, id")
    ports = _rows(db, "SELECT * FROM ports ORDER BY id")
    routers = _rows(db, "SELECT * FROM routers ORDER BY id")
    floatingips = _rows(db, "SELECT * FROM floatingips WHERE port_id IS NOT NULL ORDER BY floating_ip_address")

    subnets_of: dict[str, list[dict[str, Any]]] = {}
    subnet_by_id: dict[str, dict[str, Any]] = {}
    for s in subnets:
        subnets_of.setdefault(s["network_id"], []).append(s)
        subnet_by_id[s["id"]] = s
    for p in ports:
        p["fixed_ips"] = _json(p["fixed_ips"], [])
        p["security_groups"] = _json(p["security_groups"], [])
        p["allowed_address_pairs"] = _json(p["allowed_address_pairs"], [])
        p["extra_dhcp_opts"] = _json(p.get("extra_dhcp_opts"), [])

    def is_guest(p: dict[str, Any]) -> bool:
        return not (p["device_owner"] or "").startswith("network:")

    members = cluster_members(db, up)
    where = placement(members, node_id, dhcp_pins(db))
    bound = [p for p in ports if p["binding_host_id"] == host and is_guest(p)]
    all_router_ids = {r["id"] for r in routers}
    routers = [r for r in routers if where.here(r["id"])]
    router_ids = {r["id"] for r in routers}
    placed = {p["network_id"] for p in bound}
    placed |= {s["network_id"] for s in subnets if s["enable_dhcp"] and where.dhcp_here(s["network_id"])}
    placed |= {nid for nid, n in networks.items() if n["external"]}
    placed |= {p["network_id"] for p in ports if p["device_owner"] == "network:router_interface"
               and p["device_id"] in router_ids}
    placed &= set(networks)
    tunnels = (_tunnels(members, where, node_id, networks, subnets, ports, all_router_ids, is_guest)
               if where.clustered else {})

    def bridge_of(network_id: str) -> str:
        return external_bridge if networks[network_id]["external"] else bridge_name(network_id)

    def mtu_of(network_id: str) -> int:
        return int(networks[network_id]["mtu"] or DEFAULT_MTU)

    network_plans = []
    for nid in sorted(placed):
        n = networks[nid]
        subnet_plans = tuple(
            SubnetPlan(
                id=s["id"], cidr=s["cidr"], ip_version=int(s["ip_version"]), gateway_ip=s["gateway_ip"],
                enable_dhcp=bool(s["enable_dhcp"]),
                dns_nameservers=tuple(_json(s["dns_nameservers"], [])),
                host_routes=_route_pairs(s["host_routes"], "destination", "nexthop"),
            )
            for s in subnets_of.get(nid, [])
        )
        network_plans.append(NetworkPlan(
            id=nid, bridge=bridge_of(nid), mtu=mtu_of(nid), segmentation_id=n["segmentation_id"],
            external=bool(n["external"]), ct_zone=conntrack_zone(nid, n["segmentation_id"]),
            subnets=subnet_plans, dhcp=_dhcp_plan(nid, subnet_plans, ports) if where.dhcp_here(nid) else None,
            vxlan=tunnels.get(nid),
        ))

    port_plans = tuple(
        PortPlan(
            id=p["id"], network_id=p["network_id"], tap=tap_name(p["id"]), mac=p["mac_address"],
            mtu=mtu_of(p["network_id"]), bridge=bridge_of(p["network_id"]),
            addresses=tuple(ip["ip_address"] for ip in p["fixed_ips"]),
            admin_state_up=bool(p["admin_state_up"]),
            port_security=bool(p["port_security_enabled"]),
            allowed_address_pairs=tuple((a["ip_address"], a.get("mac_address") or p["mac_address"])
                                        for a in p["allowed_address_pairs"]),
            security_group_ids=tuple(p["security_groups"]) if p["port_security_enabled"] else (),
        )
        for p in bound if p["network_id"] in networks
    )

    router_plans = tuple(_router_plan(r, ports, floatingips, subnet_by_id, bridge_of, mtu_of) for r in routers)
    groups = _security_groups(db, port_plans, ports)

    external = None
    external_nets = [n for n in network_plans if n.external]
    if external_nets:
        cidrs = tuple(s.cidr for n in external_nets for s in n.subnets if s.ip_version == 4)
        external = ExternalPlan(
            bridge=external_bridge, interface=external_interface or None,
            host_addresses=() if external_interface else tuple(
                _with_prefix(s.gateway_ip, s.cidr) for n in external_nets for s in n.subnets
                if s.gateway_ip and s.ip_version == 4),
            masquerade_cidrs=() if external_interface else cidrs,
            guarded=guarded_destinations(management, host_networks, [s.cidr for n in external_nets for s in n.subnets],
                                         [s.gateway_ip for n in external_nets for s in n.subnets if s.gateway_ip]),
        )
    return HostPlan(node_id=node_id, host=host, networks=tuple(network_plans), ports=port_plans,
                    routers=router_plans, security_groups=groups, external=external, members=members)


def _tunnels(members: tuple[Member, ...], where: Placement, node_id: str, networks: dict[str, dict[str, Any]],
             subnets: list[dict[str, Any]], ports: list[dict[str, Any]], router_ids: set[str],
             is_guest: Any) -> dict[str, VxlanPlan]:
    """network id -> its VXLAN link here, for each VXLAN network this node shares with another live node.

    A node needs a network when a guest port of it is bound there, or it runs the network's DHCP
    server or a router with an interface on it.  Every node computes the same answer for every
    other node, so floods go only where the network is, not to every node.
    """
    me = next((m for m in members if m.id == node_id), None)
    if me is None or not me.tunnel_ip:
        return {}  # not (yet) a member: nowhere to tunnel from
    live = {m.id: m for m in members if m.id in where.candidates or m.id == node_id}
    by_name = {m.name: m.id for m in live.values()}
    dhcp_networks = {s["network_id"] for s in subnets if s["enable_dhcp"]}
    needs: dict[str, set[str]] = {}  # network id -> nodes
    located: dict[str, dict[str, str]] = {}  # network id -> MAC -> the node where it lives
    for p in ports:
        nid, owner = p["network_id"], p["device_owner"] or ""
        if is_guest(p):
            node = by_name.get(p["binding_host_id"])
            macs = [p["mac_address"]] + [a.get("mac_address") or "" for a in p["allowed_address_pairs"]]
        elif owner == "network:dhcp" and nid in dhcp_networks:
            node, macs = where.dhcp_owner(nid), [p["mac_address"]]
        elif owner == "network:router_interface" and p["device_id"] in router_ids:
            node, macs = where.owner(p["device_id"]), [p["mac_address"]]
        else:
            continue
        if node not in live:
            continue
        needs.setdefault(nid, set()).add(node)
        for mac in macs:
            if mac:
                located.setdefault(nid, {}).setdefault(mac.lower(), node)
    plans = {}
    for nid, nodes in sorted(needs.items()):
        n = networks.get(nid)
        if (n is None or n["external"] or node_id not in nodes or n["segmentation_id"] is None
                or (n.get("network_type") or "vxlan") != "vxlan"):
            continue
        flood = tuple(sorted({live[i].tunnel_ip for i in nodes if i != node_id and live[i].tunnel_ip}))
        if not flood:
            continue
        macs = tuple(sorted((mac, live[i].tunnel_ip) for mac, i in located.get(nid, {}).items()
                            if i != node_id and live[i].tunnel_ip))
        plans[nid] = VxlanPlan(name=vxlan_name(nid), vni=int(n["segmentation_id"]), local=me.tunnel_ip,
                               flood=flood, macs=macs)
    return plans


def _dhcp_plan(network_id: str, subnets: tuple[SubnetPlan, ...], ports: list[dict[str, Any]]) -> DhcpPlan | None:
    dhcp_subnets = {s.id: s for s in subnets if s.enable_dhcp and s.ip_version == 4}
    dhcp_port = next((p for p in ports if p["network_id"] == network_id
                      and p["device_owner"] == "network:dhcp"), None)
    if not dhcp_subnets or dhcp_port is None:
        return None
    port_ips = {ip["subnet_id"]: ip["ip_address"] for ip in dhcp_port["fixed_ips"]}
    addresses = [_with_prefix(ip, dhcp_subnets[sid].cidr) for sid, ip in port_ips.items() if sid in dhcp_subnets]
    addresses.append(f"{METADATA_ADDRESS}/32")
    plans = []
    for s in dhcp_subnets.values():
        routes: list[tuple[str, str]] = []
        if s.id in port_ips:  # metadata answers inside the DHCP namespace
            routes.append((f"{METADATA_ADDRESS}/32", port_ips[s.id]))
        routes.extend(s.host_routes)
        if s.gateway_ip:
            routes.append(("0.0.0.0/0", s.gateway_ip))
        plans.append(DhcpSubnet(id=s.id, cidr=s.cidr, gateway_ip=s.gateway_ip,
                                dns_nameservers=s.dns_nameservers, routes=tuple(routes)))
    def options(p: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        return tuple((o["opt_name"], o["opt_value"]) for o in p["extra_dhcp_opts"] if o.get("ip_version", 4) == 4)

    hosts = sorted(
        (DhcpHost(mac=p["mac_address"], ip=ip["ip_address"], hostname=_hostname(ip["ip_address"]),
                  tag=f"port-{p['id'][:11]}" if options(p) else "", options=options(p))
         for p in ports if p["network_id"] == network_id and p["id"] != dhcp_port["id"]
         for ip in p["fixed_ips"] if ip["subnet_id"] in dhcp_subnets),
        key=lambda h: (h.ip, h.mac),
    )
    return DhcpPlan(
        port_id=dhcp_port["id"], namespace=dhcp_namespace(network_id), interface="ns-" + dhcp_port["id"][:11],
        host_end="dh-" + dhcp_port["id"][:11], mac=dhcp_port["mac_address"], addresses=tuple(addresses),
        subnets=tuple(plans), hosts=tuple(hosts),
    )


def _router_plan(r: dict[str, Any], ports: list[dict[str, Any]], floatingips: list[dict[str, Any]],
                 subnet_by_id: dict[str, dict[str, Any]], bridge_of: Any, mtu_of: Any) -> RouterPlan:
    def leg(p: dict[str, Any], prefix: str) -> RouterPort:
        addresses = tuple(_with_prefix(ip["ip_address"], subnet_by_id[ip["subnet_id"]]["cidr"])
                          for ip in p["fixed_ips"] if ip["subnet_id"] in subnet_by_id)
        return RouterPort(port_id=p["id"], mac=p["mac_address"], addresses=addresses,
                          bridge=bridge_of(p["network_id"]), ns_name=prefix + p["id"][:11],
                          host_end=("rq-" if prefix == "qr-" else "rg-") + p["id"][:11], mtu=mtu_of(p["network_id"]))

    interfaces = tuple(leg(p, "qr-") for p in ports
                       if p["device_owner"] == "network:router_interface" and p["device_id"] == r["id"])
    gateway = None
    default_gateway = None
    gw_port = next((p for p in ports if p["id"] == r["gw_port_id"]), None) if r["gw_port_id"] else None
    if gw_port is not None:
        gateway = leg(gw_port, "qg-")
        for ip in gw_port["fixed_ips"]:
            s = subnet_by_id.get(ip["subnet_id"])
            if s is not None and s["gateway_ip"] and int(s["ip_version"]) == 4:
                default_gateway = s["gateway_ip"]
                break
    fips = tuple(FloatingIP(f["floating_ip_address"], f["fixed_ip_address"]) for f in floatingips
                 if f["router_id"] == r["id"] and f["fixed_ip_address"])
    return RouterPlan(
        id=r["id"], namespace=router_namespace(r["id"]), interfaces=interfaces, gateway=gateway,
        default_gateway=default_gateway, enable_snat=bool(r["enable_snat"]),
        floating_ips=fips if gateway is not None else (),
        routes=_route_pairs(r["routes"], "destination", "nexthop"),
    )


def _security_groups(db: Any, port_plans: tuple[PortPlan, ...], ports: list[dict[str, Any]]) -> tuple[SecurityGroupPlan, ...]:
    """The groups of the bound ports, plus the groups their rules name as remote; members from every port."""
    wanted = {g for p in port_plans for g in p.security_group_ids}
    if not wanted:
        return ()
    rules = _rows(db, "SELECT * FROM security_group_rules ORDER BY security_group_id, direction, ethertype, id")
    wanted |= {r["remote_group_id"] for r in rules if r["security_group_id"] in wanted and r["remote_group_id"]}
    groups = {g["id"]: g for g in _rows(db, "SELECT * FROM security_groups ORDER BY id") if g["id"] in wanted}
    members: dict[str, set[str]] = {g: set() for g in groups}
    for p in ports:
        if not p["security_groups"]:
            continue
        addresses = [ip["ip_address"] for ip in p["fixed_ips"]] + [a["ip_address"] for a in p["allowed_address_pairs"]]
        for g in p["security_groups"]:
            if g in members:
                members[g].update(addresses)
    plans = []
    for gid, g in sorted(groups.items()):
        rule_plans = tuple(
            RulePlan(direction=r["direction"], ethertype=r["ethertype"], protocol=r["protocol"],
                     port_range_min=r["port_range_min"], port_range_max=r["port_range_max"],
                     remote_ip_prefix=r["remote_ip_prefix"], remote_group_id=r["remote_group_id"])
            for r in rules if r["security_group_id"] == gid
        )
        v4 = sorted(a for a in members[gid] if ipaddress.ip_network(a, strict=False).version == 4)
        v6 = sorted(a for a in members[gid] if ipaddress.ip_network(a, strict=False).version == 6)
        stateful = g.get("stateful")
        plans.append(SecurityGroupPlan(id=gid, stateful=True if stateful is None else bool(stateful),
                                       rules=rule_plans, members_v4=tuple(v4), members_v6=tuple(v6)))
    return tuple(plans)

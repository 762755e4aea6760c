"""Text the host runs from a HostPlan: nftables rulesets and dnsmasq files.  Pure.

How a guest's packet is checked (measured on kernel 6.18, see DESIGN.md):

1. ``bridge`` table, forward hook, priority -200: the frame is still seen with its
   real bridge ports.  The in-port's chain drops spoofed MAC/ARP/IP sources and
   other ethertypes; the packet's mark is set to (in-port index << 16 | out-port index).
   ``ct`` is refused in this family (no nf_conntrack_bridge), and ``meta ibrname``
   is not supported, so ports are matched by name.
2. br_netfilter then runs the ``inet`` hooks, where conntrack works but the
   interface names are the bridge's: prerouting (raw) puts each tenant bridge in
   its own conntrack zone (overlapping tenant ranges), and forward jumps on the
   mark's halves to the in-port's egress chain (return = allowed) and the
   out-port's ingress chain (accept = allowed).

Frames from another node arrive through a network's VXLAN link (``vx-…``), a bridge
port like a tap: they were checked against spoofing at the sending node's tap, and
here they meet the destination port's ingress chain like any other frame.  Only
the other members' tunnel addresses may send VXLAN to this node's (input hook):
anyone else on the underlay could otherwise inject frames into any tenant network.

Every ruleset is one nft transaction that declares, deletes and refills the
table, so a pass replaces the rules atomically and traffic never meets a gap.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable

from cloudbox.errors import BadRequest
from cloudbox.network.core import PORT_PROTOCOLS, protocol_number
from cloudbox.network.hostplan import (VXLAN_PORT, DhcpPlan, HostPlan, PortPlan, RouterPlan, RulePlan,
                                       SecurityGroupPlan)

LEASE_SECONDS = 86400
# Neighbour discovery and multicast listener messages a guest needs (IPv6 works without rules).
ND_OUT = "nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report"
ND_IN = "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query"


def table_name(node_id: str) -> str:
    """The host tables of one node: cloudbox_<node id[:8]> (nft names: letters, digits, _)."""
    return "cloudbox_" + re.sub(r"[^A-Za-z0-9_]", "_", node_id[:8])


def _set(items: Iterable[str], quote: bool = False) -> str:
    values = [f'"{i}"' if quote else i for i in items]
    return "{ " + ", ".join(values) + " }"


def _replace(family: str, name: str, body: list[str]) -> list[str]:
    """Declare (so delete never fails), delete, and refill a table: one atomic swap."""
    lines = [f"table {family} {name}", f"delete table {family} {name}"]
    if body:
        lines += [f"table {family} {name} {{", *body, "}"]
    return lines


def _chain(name: str, rules: list[str], hook: str | None = None) -> list[str]:
    lines = [f"  chain {name} {{"]
    if hook:
        lines.append(f"    {hook}")
    lines += [f"    {r}" for r in rules]
    lines.append("  }")
    return lines


def lla(mac: str) -> str:
    """The IPv6 link-local address a guest derives from its MAC (EUI-64)."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return str(ipaddress.IPv6Address(bytes([0xFE, 0x80] + [0] * 6 + eui)))


def _collapse(addresses: Iterable[str], version: int) -> list[str]:
    """Addresses/prefixes of one family, merged: nft refuses overlapping set elements."""
    nets = [ipaddress.ip_network(a, strict=False) for a in addresses]
    nets = [n for n in nets if n.version == version]
    out = []
    for n in ipaddress.collapse_addresses(nets):  # type: ignore[type-var]
        out.append(str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n))
    return out


# --- host tables -----------------------------------------------------------------

def port_indexes(plan: HostPlan) -> dict[str, int]:
    """port id -> 16-bit index used in packet marks; only valid within one ruleset."""
    return {p.id: i for i, p in enumerate(sorted(plan.ports, key=lambda p: p.id), start=1)}


def render_host(plan: HostPlan) -> str:
    """The host's bridge and inet tables (and the external masquerade) as one nft script."""
    name = table_name(plan.node_id)
    index = port_indexes(plan)
    groups = {g.id: (i, g) for i, g in enumerate(plan.security_groups, start=1)}
    bridge_body: list[str] = []
    inet_body: list[str] = []
    if plan.ports or guest_legs(plan):
        bridge_body = _bridge_body(plan, index)
    if plan.ports or plan.external or plan.tunnel_address():
        inet_body = _inet_body(plan, index, groups)
    lines = _replace("bridge", name, bridge_body) + _replace("inet", name, inet_body)
    return "\n".join(lines) + "\n"


# The mark of frames from a guest leg on the external bridge (a router's gateway): in-port index
# 0xffff, which no port takes (indexes count the ports of one node from 1).
GUEST_LEG_MARK = 0xFFFF << 16


def guest_legs(plan: HostPlan) -> list[str]:
    """Router gateways on the external bridge: the links that carry guests' traffic out."""
    if plan.external is None:
        return []
    return [r.gateway.host_end for r in plan.routers if r.gateway is not None and r.gateway.bridge == plan.external.bridge]


def _bridge_body(plan: HostPlan, index: dict[str, int]) -> list[str]:
    legs = [f'"{leg}" : 0x{GUEST_LEG_MARK:08x}' for leg in guest_legs(plan)]
    mark_legs = [f"meta mark set iifname map {_set(legs)}"] if legs else []
    if not plan.ports:  # only router gateways here: mark what they send (the inet table guards it)
        body = _chain("forward", mark_legs, "type filter hook forward priority -200; policy accept;")
        return body + _chain("input", mark_legs, "type filter hook input priority -200; policy accept;")
    # Every port we plug into a bridge gets a mark (0 for our own veths, GUEST_LEG_MARK for router
    # gateways), so a mark left by something else never reaches the inet chain as if it were ours.
    marks = [f'"{p.tap}" : 0x{index[p.id] << 16:08x}' for p in plan.ports] + legs
    for n in plan.networks:
        if n.dhcp is not None:
            marks.append(f'"{n.dhcp.host_end}" : 0x00000000')
    for r in plan.routers:
        for leg in r.interfaces:
            marks.append(f'"{leg.host_end}" : 0x00000000')
        if r.gateway is not None and r.gateway.host_end not in guest_legs(plan):
            marks.append(f'"{r.gateway.host_end}" : 0x00000000')
    for n in plan.networks:
        if n.vxlan is not None:  # other nodes' guests: checked at their own taps
            marks.append(f'"{n.vxlan.name}" : 0x00000000')
    secured = [p for p in plan.ports if p.port_security]
    forward = [f"meta mark set iifname map {{ {', '.join(marks)} }}"]
    if secured:
        forward.append("iifname vmap " + _set(f'"{p.tap}" : jump from_{index[p.id]}' for p in secured))
    forward.append("oifname vmap " + _set(f'"{p.tap}" : jump to_{index[p.id]}' for p in plan.ports))
    body = _chain("forward", forward, "type filter hook forward priority -200; policy accept;")
    # Tenant bridges carry no host address; still, nothing from a guest is for the host.
    body += _chain("input", [*mark_legs, "iifname " + _set((p.tap for p in plan.ports), quote=True) + " drop"],
                   "type filter hook input priority -200; policy accept;")
    for p in plan.ports:
        i = index[p.id]
        body += _chain(f"to_{i}", [f"meta mark set meta mark or 0x{i:04x}"])
        if p.port_security:
            body += _anti_spoof(p, i)
    return body


def _guard(plan: HostPlan) -> tuple[list[str], list[str]]:
    """The sets of guarded destinations (``hostplan.guarded_destinations``: the host's own
    addresses, management ranges) and the rules that drop new flows guests open to them.

    A guest's traffic leaves through its router's gateway leg on the external bridge, marked
    there (bridge table).  What the host routes on for it meets the inet forward hook, what is
    for the host itself the input hook, and what is bridged to an uplink the forward hook too
    (br_netfilter): each time with conntrack, so only flows guests *open* are dropped, and a
    management host may still reach a floating IP and get its answers.
    """
    ext = plan.external
    if ext is None or not ext.guarded or not guest_legs(plan):
        return [], []
    sets: list[str] = []
    rules: list[str] = []
    for version, family in ((4, "ip"), (6, "ip6")):
        elements = _collapse(ext.guarded, version)
        if elements:
            sets += [f"  set guarded_v{version} {{", f"    type ipv{version}_addr; flags interval;",
                     f"    elements = {_set(elements)}", "  }"]
            # The bridge's name too: another node's tables on the same host (tests run several)
            # see this packet with this mark, and must leave it to this node.
            rules.append(f'iifname "{ext.bridge}" meta mark & 0xffff0000 == 0x{GUEST_LEG_MARK:08x} '
                         f"ct state {{ new, invalid }} {family} daddr @guarded_v{version} drop")
    return sets, rules


def _anti_spoof(p: PortPlan, i: int) -> list[str]:
    """A guest may send only from its MACs and addresses (fixed IPs and allowed pairs)."""
    by_mac: dict[str, list[str]] = {p.mac: list(p.addresses) + [lla(p.mac)]}
    for ip, mac in p.allowed_address_pairs:
        by_mac.setdefault(mac, [lla(mac)]).append(ip)
    arp, ip4, ip6 = [], [], []
    for mac, addresses in by_mac.items():
        v4 = _collapse(addresses, 4)
        v6 = _collapse(addresses, 6)
        if v4:
            arp.append(f"ether saddr {mac} arp saddr ether {mac} arp saddr ip {_set(v4)} return")
            ip4.append(f"ether saddr {mac} ip saddr {_set(v4)} return")
        arp.append(f"ether saddr {mac} arp saddr ether {mac} arp saddr ip 0.0.0.0 return")  # probes
        ip4.append(f"ether saddr {mac} ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return")
        ip6.append(f"ether saddr {mac} ip6 saddr {_set(v6)} return")
        # Duplicate address detection and MLD go out before the guest owns an address.
        ip6.append(f"ether saddr {mac} ip6 saddr :: icmpv6 type {{ nd-neighbor-solicit, mld2-listener-report, mld-listener-report }} return")
    # Neighbour discovery speaks for addresses inside the packet, not in its header: a guest may
    # advertise (NA) only its own addresses, and never acts as a router (RA, redirect), else it
    # could take over its neighbours' traffic by their link-local or any other IPv6 address.
    own6 = _collapse([a for addresses in by_mac.values() for a in addresses], 6)
    nd = ["icmpv6 type { nd-router-advert, nd-redirect } drop",
          f"icmpv6 type nd-neighbor-advert {ND_TARGET} != {_set(_as_integers(own6))} drop"]
    # goto, not jump: their "return" must land back in forward, past this chain's drop.
    body = _chain(f"from_{i}", [f"ether type vmap {{ arp : goto arp_{i}, ip : goto ip_{i}, ip6 : goto ip6_{i} }}",
                                "drop"])
    body += _chain(f"arp_{i}", arp + ["drop"])
    body += _chain(f"ip_{i}", ip4 + ["drop"])
    body += _chain(f"ip6_{i}", nd + ip6 + ["drop"])
    return body


# The target address of a neighbour advertisement (RFC 4861 4.4: after type, code, checksum and
# flags).  nft 1.0.6 has no `icmpv6 taddr`, so the raw payload is compared with 128-bit numbers.
ND_TARGET = "@th,64,128"


def _as_integers(networks: list[str]) -> list[str]:
    """IPv6 addresses/prefixes (as ``_collapse`` gives them) as the hex numbers or ranges a raw
    128-bit payload match takes."""
    out = []
    for text in networks:
        net = ipaddress.IPv6Network(text)
        first, last = int(net.network_address), int(net.broadcast_address)
        out.append(f"0x{first:032x}" if first == last else f"0x{first:032x}-0x{last:032x}")
    return out


def _inet_body(plan: HostPlan, index: dict[str, int], groups: dict[str, tuple[int, SecurityGroupPlan]]) -> list[str]:
    body, guard = _guard(plan)
    for gi, g in groups.values():
        for version, members in ((4, g.members_v4), (6, g.members_v6)):
            elements = _collapse(members, version)
            body.append(f"  set sg{gi}_v{version} {{")
            body.append(f"    type ipv{version}_addr; flags interval;")
            if elements:
                body.append(f"    elements = {_set(elements)}")
            body.append("  }")
    tenant_bridges = sorted({(n.bridge, n.ct_zone) for n in plan.networks if not n.external})
    if tenant_bridges:
        # Own conntrack zone per tenant network: two projects may use the same range.  Not
        # on the external bridge, where the host itself talks (its flows are in zone 0).
        zones = ", ".join(f'"{b}" : {z}' for b, z in tenant_bridges)
        body += _chain("prerouting", [f"ct zone set iifname map {{ {zones} }}"],
                       "type filter hook prerouting priority raw; policy accept;")
    if plan.ports or guard:
        port_bridges = sorted({p.bridge for p in plan.ports})
        secured = [p for p in plan.ports if p.port_security]
        forward = [*guard, f"iifname != {_set(port_bridges, quote=True)} accept"] if port_bridges else list(guard)
        if secured:
            forward.append("meta mark & 0xffff0000 vmap "
                           + _set(f"0x{index[p.id] << 16:08x} : jump egress_{index[p.id]}" for p in secured))
            forward.append("meta mark & 0x0000ffff vmap "
                           + _set(f"0x{index[p.id]:08x} : jump ingress_{index[p.id]}" for p in secured))
        body += _chain("forward", forward, "type filter hook forward priority filter; policy accept;")
        for p in secured:
            body += _port_filters(p, index[p.id], groups)
    incoming = list(guard)  # what guests open to the host's own guarded addresses
    local = plan.tunnel_address()
    if local is not None:
        # VXLAN carries no authentication: only the other members may send it to this node.
        version = ipaddress.ip_address(local).version
        family = "ip" if version == 4 else "ip6"
        peers = [a for a in plan.tunnel_peers() if ipaddress.ip_address(a).version == version]
        allowed = f"{family} saddr != {_set(peers)} " if peers else ""
        incoming.append(f"{family} daddr {local} udp dport {VXLAN_PORT} {allowed}drop")
    ext = plan.external
    if ext is not None and ext.masquerade_cidrs and not ext.interface:
        cidrs = _set(ext.masquerade_cidrs)
        # Bridged packets pass this hook too (br_netfilter): only what the host routes *from*
        # the external bridge to another interface is masqueraded, never a bridged frame.
        body += _chain("postrouting", [f'iifname "{ext.bridge}" oifname != "{ext.bridge}" ip saddr {cidrs} masquerade'],
                       "type nat hook postrouting priority srcnat; policy accept;")
        # The host is the external network's router, not a service for it: floating IPs
        # and router gateways may not open connections to the host itself.
        incoming += [
            f'iifname "{ext.bridge}" ct state established,related accept',
            f'iifname "{ext.bridge}" meta l4proto {{ icmp, ipv6-icmp }} accept',
            f'iifname "{ext.bridge}" drop',
        ]
    if incoming:
        body += _chain("input", incoming, "type filter hook input priority filter; policy accept;")
    return body


def _port_filters(p: PortPlan, i: int, groups: dict[str, tuple[int, SecurityGroupPlan]]) -> list[str]:
    """Egress (return = allowed) and ingress (accept = allowed) chains of one secured port."""
    port_groups = [groups[g] for g in p.security_group_ids if g in groups]
    stateful = any(g.stateful for _, g in port_groups) or not port_groups
    egress: list[str] = []
    ingress: list[str] = []
    if stateful:
        egress += ["ct state established,related return", "ct state invalid drop"]
        ingress += ["ct state established,related accept", "ct state invalid drop"]
    egress += [
        "udp sport 68 udp dport 67 return",  # DHCP to the server
        "udp sport 67 udp dport 68 drop",  # but no DHCP server in a guest
        "udp sport 546 udp dport 547 return",
        "udp sport 547 udp dport 546 drop",
        "icmpv6 type nd-router-advert drop",  # nor a router advertising itself
        f"icmpv6 type {{ {ND_OUT} }} return",
    ]
    ingress += [
        "udp sport 67 udp dport 68 accept",  # the DHCP server's answers
        "udp sport 547 udp dport 546 accept",
        f"icmpv6 type {{ {ND_IN} }} accept",
    ]
    for _, g in port_groups:
        for rule in g.rules:
            match = _rule_match(rule, groups)
            if match is None:
                continue
            if rule.direction == "egress":
                egress.append(f"{match} return".strip())
            else:
                ingress.append(f"{match} accept".strip())
    return _chain(f"egress_{i}", egress + ["drop"]) + _chain(f"ingress_{i}", ingress + ["drop"])


def _rule_match(rule: RulePlan, groups: dict[str, tuple[int, SecurityGroupPlan]]) -> str | None:
    """The nft match of one security group rule, or None when it can match nothing here."""
    version = 6 if rule.ethertype == "IPv6" else 4
    family = "ip6" if version == 6 else "ip"
    parts = [f"meta nfproto ipv{version}"]
    peer = "saddr" if rule.direction == "ingress" else "daddr"
    if rule.remote_ip_prefix:
        net = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        if net.version != version:
            return None
        if net.prefixlen:
            parts.append(f"{family} {peer} {_collapse([rule.remote_ip_prefix], version)[0]}")
    if rule.remote_group_id:
        if rule.remote_group_id not in groups:
            return None
        parts.append(f"{family} {peer} @sg{groups[rule.remote_group_id][0]}_v{version}")
    try:  # nft gets the number: every spelling of a protocol (core decides which) is one rule
        number = protocol_number(rule.protocol, rule.ethertype)
    except BadRequest:
        return None
    if number is not None:
        parts.append(f"meta l4proto {number}")
        lo, hi = rule.port_range_min, rule.port_range_max
        if number in PORT_PROTOCOLS and lo is not None:
            parts.append(f"th dport {lo}" if hi in (None, lo) else f"th dport {lo}-{hi}")
        elif number in (1, 58) and lo is not None:
            kind = "icmp" if number == 1 else "icmpv6"
            parts.append(f"{kind} type {lo}")
            if hi is not None:
                parts.append(f"{kind} code {hi}")
    return " ".join(parts)


# --- router namespaces ---------------------------------------------------------------

ROUTER_TABLE = "cloudbox_router"


def render_router(router: RouterPlan) -> str:
    """NAT of one router namespace: floating IPs (DNAT in, SNAT out) and SNAT to the gateway."""
    body: list[str] = []
    if router.gateway is not None:
        qg = router.gateway.ns_name
        pre = [f"ip daddr {f.floating} dnat ip to {f.fixed}" for f in router.floating_ips]
        post = [f'oifname "{qg}" ip saddr {f.fixed} snat ip to {f.floating}' for f in router.floating_ips]
        gw_v4 = [a.split("/")[0] for a in router.gateway.addresses if ipaddress.ip_interface(a).version == 4]
        if router.enable_snat and gw_v4:
            # Only what came from inside: the external side's own replies are untouched.
            post.append(f'oifname "{qg}" iifname != "{qg}" meta nfproto ipv4 snat ip to {gw_v4[0]}')
        body += _chain("prerouting", pre, "type nat hook prerouting priority dstnat; policy accept;")
        # The router's own packets to a floating IP (e.g. its metadata proxy, tests) also DNAT.
        body += _chain("output", [f"ip daddr {f.floating} dnat ip to {f.fixed}" for f in router.floating_ips],
                       "type nat hook output priority -100; policy accept;")
        body += _chain("postrouting", post, "type nat hook postrouting priority srcnat; policy accept;")
        if router.enable_snat:
            # Behind SNAT the tenant networks are not routed from outside: only replies and
            # floating IPs come in (else anyone on the external network, or a project with a
            # static route via this gateway, could reach guests that have no floating IP).
            body += _chain("forward", [f'iifname "{qg}" ct state established,related accept',
                                       f'iifname "{qg}" ct status dnat accept',
                                       f'iifname "{qg}" drop'],
                           "type filter hook forward priority filter; policy accept;")
    return "\n".join(_replace("inet", ROUTER_TABLE, body)) + "\n"


# --- dnsmasq -----------------------------------------------------------------------

def dnsmasq_config(network_id: str, dhcp: DhcpPlan, mtu: int, run_dir: str) -> str:
    """dnsmasq's config file of one DHCP namespace; a change here restarts dnsmasq."""
    lines = [
        f"interface={dhcp.interface}",
        "bind-interfaces",
        "except-interface=lo",
        "port=0",  # DHCP only, no DNS
        f"pid-file={run_dir}/dnsmasq.pid",
        f"dhcp-hostsfile={run_dir}/hosts",
        f"dhcp-optsfile={run_dir}/opts",
        f"dhcp-leasefile={run_dir}/leases",
        "dhcp-authoritative",
        "dhcp-no-override",
        "no-resolv",
        "no-hosts",
        "no-ping",
        f"# network {network_id}",
    ]
    for n, s in enumerate(dhcp.subnets):
        net = ipaddress.ip_network(s.cidr, strict=False)
        tag = f"subnet{n}"
        lines.append(f"dhcp-range=set:{tag},{net.network_address},static,{net.netmask},{LEASE_SECONDS}s")
        if s.gateway_ip:
            lines.append(f"dhcp-option=tag:{tag},option:router,{s.gateway_ip}")
        else:
            lines.append(f"dhcp-option=tag:{tag},option:router")  # none: dnsmasq would offer itself
        if s.routes:
            lines.append(f"dhcp-option=tag:{tag},option:classless-static-route,"
                         + ",".join(f"{dest},{hop}" for dest, hop in s.routes))
        if s.dns_nameservers:
            lines.append(f"dhcp-option=tag:{tag},option:dns-server,{','.join(s.dns_nameservers)}")
        lines.append(f"dhcp-option=tag:{tag},option:mtu,{mtu}")
    return "\n".join(lines) + "\n"


def dnsmasq_hosts(dhcp: DhcpPlan) -> str:
    """Static leases (a host with options of its own gets their tag); dnsmasq re-reads this file on SIGHUP."""
    return "".join(f"{h.mac},{f'set:{h.tag},' if h.tag else ''}{h.ip},{h.hostname}\n" for h in dhcp.hosts)


def dnsmasq_opts(dhcp: DhcpPlan) -> str:
    """The ports' extra DHCP options, each for its host's tag (a number as is, a name as `option:`);
    dnsmasq re-reads this file on SIGHUP too."""
    lines = []
    for h in dhcp.hosts:
        for name, value in h.options:
            key = name if name.isdigit() else f"option:{name}"
            lines.append(f"tag:{h.tag},{key}" + (f",{value}" if value else "") + "\n")
    return "".join(dict.fromkeys(lines))  # a port with two addresses is two hosts with one tag


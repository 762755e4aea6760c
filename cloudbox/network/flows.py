"""Which tracked flows a host plan still allows: the security groups' verdict on a conntrack entry.

A port's chains accept ``ct state established`` before any rule (render._port_filters), so a
flow a removed rule let in would live on in conntrack.  After each pass whose filters changed
for some ports, the driver lists the host's conntrack entries, asks ``to_cut`` which of them the
new plan no longer allows, and deletes those: the next packet of such a flow is new again and
meets the rules as they are now.  Flows still allowed keep their entries (a re-apply disturbs no
traffic).

Pure: it mirrors the nftables rules of render._port_filters as Python, from the same HostPlan.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Hashable, Iterable

from cloudbox.errors import BadRequest
from cloudbox.network.core import ICMP_PROTOCOLS, PORT_PROTOCOLS, protocol_number
from cloudbox.network.hostplan import HostPlan, PortPlan, RulePlan, SecurityGroupPlan

UDP = 17
ICMPV6 = 58
# ICMPv6 types render.ND_OUT and render.ND_IN name: what every port sends and takes regardless of rules.
ND_OUT = frozenset({133, 135, 136, 131, 143})  # router/neighbour solicit, neighbour advert, MLD reports
ND_IN = frozenset({134, 135, 136, 130})  # router advert, neighbour solicit/advert, MLD query
ROUTER_ADVERT = 134


@dataclass(frozen=True)
class Flow:
    """One conntrack entry: its zone and original direction (who opened it)."""

    zone: int
    version: int  # 4 | 6
    protocol: int
    source: str
    destination: str
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    id: int | None = None  # the kernel's id of the entry (a delete names it, so only it goes)


def port_filters(plan: HostPlan) -> dict[str, Hashable]:
    """Per secured port, everything its chains are made of; a change means its flows need a look."""
    groups = {g.id: g for g in plan.security_groups}
    out: dict[str, Hashable] = {}
    for p in plan.ports:
        if not p.port_security:
            continue
        own = [groups[g] for g in p.security_group_ids if g in groups]
        remote = sorted({r.remote_group_id for g in own for r in g.rules if r.remote_group_id})
        out[p.id] = (p.network_id, p.addresses, p.allowed_address_pairs, tuple(own),
                     tuple(groups.get(g) for g in remote))
    return out


def ports_to_recheck(before: HostPlan | None, after: HostPlan) -> set[str]:
    """The secured ports of ``after`` whose filters differ from ``before`` (all of them without one:
    the rules may have changed while nobody applied them)."""
    new = port_filters(after)
    if before is None:
        return set(new)
    old = port_filters(before)
    return {port for port, filters in new.items() if old.get(port) != filters}


def to_cut(plan: HostPlan, flows: Iterable[Flow], ports: set[str]) -> list[Flow]:
    """The flows of ``ports`` (by zone and address) that ``plan``'s rules would not let start now."""
    groups = {g.id: g for g in plan.security_groups}
    zones = {n.id: (0 if n.external else n.ct_zone) for n in plan.networks}
    by_zone: dict[int, list[PortPlan]] = {}
    for p in plan.ports:
        if p.id in ports and p.port_security and p.network_id in zones and _stateful(p, groups):
            by_zone.setdefault(zones[p.network_id], []).append(p)
    cut = []
    for flow in flows:
        for port in by_zone.get(flow.zone, ()):
            if (_holds(port, flow.source) and not _egress_allows(port, flow, groups)) or \
                    (_holds(port, flow.destination) and not _ingress_allows(port, flow, groups)):
                cut.append(flow)
                break
    return cut


def _stateful(port: PortPlan, groups: dict[str, SecurityGroupPlan]) -> bool:
    """As render: stateful unless every group of the port is stateless (then no entry is trusted)."""
    own = [groups[g] for g in port.security_group_ids if g in groups]
    return any(g.stateful for g in own) or not own


def _holds(port: PortPlan, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for text in (*port.addresses, *(pair for pair, _ in port.allowed_address_pairs)):
        net = ipaddress.ip_network(text, strict=False)
        if net.version == ip.version and ip in net:
            return True
    return False


def _egress_allows(port: PortPlan, flow: Flow, groups: dict[str, SecurityGroupPlan]) -> bool:
    if flow.protocol == UDP and (flow.sport, flow.dport) in ((68, 67), (546, 547)):
        return True  # DHCP to the server
    if flow.protocol == UDP and (flow.sport, flow.dport) in ((67, 68), (547, 546)):
        return False  # no DHCP server in a guest
    if flow.protocol == ICMPV6 and flow.icmp_type == ROUTER_ADVERT:
        return False
    if flow.protocol == ICMPV6 and flow.icmp_type in ND_OUT:
        return True
    return _rules_allow(port, flow, groups, "egress", flow.destination)


def _ingress_allows(port: PortPlan, flow: Flow, groups: dict[str, SecurityGroupPlan]) -> bool:
    if flow.protocol == UDP and (flow.sport, flow.dport) in ((67, 68), (547, 546)):
        return True  # the DHCP server's answers
    if flow.protocol == ICMPV6 and flow.icmp_type in ND_IN:
        return True
    return _rules_allow(port, flow, groups, "ingress", flow.source)


def _rules_allow(port: PortPlan, flow: Flow, groups: dict[str, SecurityGroupPlan], direction: str,
                 peer: str) -> bool:
    own = [groups[g] for g in port.security_group_ids if g in groups]
    return any(rule.direction == direction and _matches(rule, flow, peer, groups) for g in own for rule in g.rules)


def _matches(rule: RulePlan, flow: Flow, peer: str, groups: dict[str, SecurityGroupPlan]) -> bool:
    """render._rule_match, as a predicate on one flow."""
    version = 6 if rule.ethertype == "IPv6" else 4
    if version != flow.version:
        return False
    address = ipaddress.ip_address(peer)
    if rule.remote_ip_prefix:
        net = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        if net.version != version or address not in net:
            return False
    if rule.remote_group_id:
        group = groups.get(rule.remote_group_id)
        members: Any = () if group is None else (group.members_v4 if version == 4 else group.members_v6)
        if not any(address in ipaddress.ip_network(m, strict=False) for m in members):
            return False
    try:
        number = protocol_number(rule.protocol, rule.ethertype)
    except BadRequest:
        return False
    if number is None:
        return True
    if number != flow.protocol:
        return False
    low, high = rule.port_range_min, rule.port_range_max
    if number in PORT_PROTOCOLS and low is not None:
        return flow.dport is not None and low <= flow.dport <= (low if high is None else high)
    if number in ICMP_PROTOCOLS and low is not None:
        return flow.icmp_type == low and (high is None or flow.icmp_code == high)
    return True

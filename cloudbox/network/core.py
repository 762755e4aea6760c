"""Pure network logic: IPAM, validation of Neutron requests, list queries.

Nothing here touches the database, the clock, randomness or the network: time and
random bytes come in as arguments, rows come in as dicts.  The Neutron JSON views
are in ``views.py``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from cloudbox.errors import BadRequest, Conflict
from cloudbox.settings import parse_bool

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_QUOTAS: dict[str, int] = {
    "network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
    "security_group": 10, "security_group_rule": 100,
}
VXLAN_MAX = 16777215
MTU = {"vxlan": 1450, "flat": 1500}
MAC_PREFIX = "fa:16:3e"
DEFAULT_AZ = "nova"

OWNER_DHCP = "network:dhcp"
OWNER_ROUTER_INTERFACE = "network:router_interface"
OWNER_ROUTER_GATEWAY = "network:router_gateway"
OWNER_FLOATINGIP = "network:floatingip"
# Device owners only the cloud itself (or an admin) sets: routers, DHCP, floating IPs, servers.
CLOUD_OWNED = ("network:", "compute:")
PORT_STATUSES = ("ACTIVE", "DOWN", "BUILD", "ERROR")
VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
              "remote-managed")
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")

# IP protocol names Neutron accepts, and their numbers.
PROTOCOLS: dict[str, int] = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2, "ipip": 4,
    "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43,
    "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}
PORT_PROTOCOLS = {6, 17, 33, 132, 136}  # protocols with port ranges
ICMP_PROTOCOLS = {1, 58}


def new_mac(random_bytes: bytes) -> str:
    """A MAC in OpenStack's fa:16:3e range from three random bytes."""
    return MAC_PREFIX + "".join(f":{b:02x}" for b in random_bytes[:3])


def normalize_mac(text: Any) -> str:
    parts = str(text).strip().lower().replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise BadRequest(f"Invalid input for mac_address. Reason: '{text}' is not a valid MAC address.")
    mac = ":".join(parts)
    if int(parts[0], 16) & 1 or mac == "00:00:00:00:00:00":
        raise BadRequest(f"Invalid input for mac_address. Reason: '{text}' is not a valid unicast MAC address.")
    return mac


# --- addresses ------------------------------------------------------------------------------
def parse_ip(text: Any, what: str = "ip_address") -> IPAddress:
    try:
        return ipaddress.ip_address(str(text).strip())
    except ValueError:
        raise BadRequest(f"Invalid input for {what}. Reason: '{text}' is not a valid IP address.") from None


def parse_cidr(text: Any, what: str = "cidr", strict: bool = True) -> IPNetwork:
    """A network from its CIDR; ``strict``: host bits must be zero (Neutron says which CIDR it meant)."""
    raw = str(text).strip()
    try:
        if "/" not in raw:
            raise ValueError("no prefix length")
        net = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise BadRequest(f"Invalid input for {what}. Reason: '{text}' is not a valid IP subnet.") from None
    if strict and int(ipaddress.ip_interface(raw).ip) != int(net.network_address):
        raise BadRequest(f"Invalid input for {what}. Reason: '{text}' isn't a recognized IP subnet cidr, "
                         f"'{net}' is recommended.")
    return net


def host_range(net: IPNetwork) -> tuple[int, int]:
    """The first and last address (as integers) a host may take: IPv4 skips network and broadcast."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4:
        if net.prefixlen >= 31:
            return first, last
        return first + 1, last - 1
    return first + 1, last


def to_ip(version: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def default_pools(net: IPNetwork, gateway: str | None) -> list[dict[str, str]]:
    """The whole host range minus the gateway, as Neutron makes it."""
    first, last = host_range(net)
    spans = [(first, last)]
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        spans = [(a, b) for a, b in ((first, gw - 1), (gw + 1, last)) if a <= b] if first <= gw <= last else spans
    return [{"start": to_ip(net.version, a), "end": to_ip(net.version, b)} for a, b in spans]


def validate_pools(net: IPNetwork, pools: Sequence[Mapping[str, Any]], gateway: str | None) -> list[dict[str, str]]:
    spans: list[tuple[int, int]] = []
    for pool in pools:
        if not isinstance(pool, Mapping) or "start" not in pool or "end" not in pool:
            raise BadRequest("Invalid input for allocation_pools: each pool needs a start and an end.")
        start, end = parse_ip(pool["start"], "allocation_pools"), parse_ip(pool["end"], "allocation_pools")
        if start.version != net.version or end.version != net.version or start not in net or end not in net:
            raise BadRequest(f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.")
        if int(start) > int(end):
            raise BadRequest(f"The allocation pool {start}-{end} is not valid: its start is after its end.")
        first, last = host_range(net)
        if int(start) < first or int(end) > last:
            raise BadRequest(f"The allocation pool {start}-{end} includes the network or broadcast address of {net}.")
        spans.append((int(start), int(end)))
    spans.sort()
    for (a1, b1), (a2, b2) in zip(spans, spans[1:]):
        if a2 <= b1:
            raise BadRequest(f"Found overlapping allocation pools: {to_ip(net.version, a1)}-{to_ip(net.version, b1)} "
                             f"and {to_ip(net.version, a2)}-{to_ip(net.version, b2)}.")
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        for a, b in spans:
            if a <= gw <= b:
                raise Conflict(f"Gateway ip {gateway} conflicts with allocation pool "
                               f"{to_ip(net.version, a)}-{to_ip(net.version, b)}.")
    return [{"start": to_ip(net.version, a), "end": to_ip(net.version, b)} for a, b in spans]


def lowest_free(pools: Sequence[Mapping[str, str]], used: Iterable[str]) -> str | None:
    """The lowest address of the pools that is not used, or None when they are full."""
    taken = sorted(int(ipaddress.ip_address(u)) for u in used)
    for pool in pools:
        start, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
        candidate = int(start)
        for value in taken:
            if value < candidate:
                continue
            if value > candidate:
                break
            candidate += 1
        if candidate <= int(end):
            return to_ip(start.version, candidate)
    return None


def pool_size(pools: Sequence[Mapping[str, str]]) -> int:
    return sum(int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1 for p in pools)


def eui64(cidr: str, mac: str) -> str:
    """The SLAAC address of ``mac`` in a /64."""
    net = ipaddress.ip_network(cidr)
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return str(ipaddress.IPv6Address(int(net.network_address) | int.from_bytes(bytes(iid), "big")))


def in_cidr(ip: str, cidr: str) -> bool:
    address, net = ipaddress.ip_address(ip), ipaddress.ip_network(cidr)
    return address.version == net.version and address in net


def overlaps(a: str, b: str) -> bool:
    na, nb = ipaddress.ip_network(a), ipaddress.ip_network(b)
    return na.version == nb.version and na.overlaps(nb)


def lowest_free_segment(used: Iterable[int]) -> int:
    candidate = 1
    for value in sorted(set(used)):
        if value < candidate:
            continue
        if value > candidate:
            break
        candidate += 1
    if candidate > VXLAN_MAX:
        raise Conflict("Unable to create the network. No tenant network is available for allocation.")
    return candidate


# --- subnets --------------------------------------------------------------------------------
# Until the data plane serves router advertisements (and DHCPv6), a guest could neither take an
# address nor find a route on an IPv6 subnet: such subnets are refused, not made to fail later.
IPV6_UNSUPPORTED = ("IPv6 subnets are not supported yet: cloudbox sends no router advertisements and serves no "
                    "DHCPv6, so guests could not configure an address or a route on them. Use an IPv4 subnet.")


def refuse_ipv6(version: Any) -> None:
    if version == 6:
        raise BadRequest(IPV6_UNSUPPORTED)


def _gateway(net: IPNetwork, body: Mapping[str, Any]) -> str | None:
    if "gateway_ip" not in body:
        first, last = host_range(net)
        return to_ip(net.version, first) if first <= last else None
    if body["gateway_ip"] is None:
        return None
    gw = parse_ip(body["gateway_ip"], "gateway_ip")
    if gw.version != net.version:
        raise BadRequest(f"Invalid input for gateway_ip: {gw} is not an IPv{net.version} address.")
    if gw not in net:
        raise BadRequest(f"Gateway IP {gw} is not in the subnet {net}.")
    if net.version == 4 and net.prefixlen < 31 and gw in (net.network_address, net.broadcast_address):
        raise BadRequest(f"Gateway is not valid on subnet: {gw} is the network or broadcast address of {net}.")
    if net.version == 6 and gw == net.network_address:
        raise BadRequest(f"Gateway is not valid on subnet: {gw} is the subnet-router anycast address of {net}.")
    return str(gw)


def static_routes(routes: Sequence[Any], what: str = "routes") -> list[dict[str, str]]:
    """Validated {destination, nexthop} routes, normalised, without duplicates."""
    out: list[dict[str, str]] = []
    for route in routes:
        if not isinstance(route, Mapping) or set(route) != {"destination", "nexthop"}:
            raise BadRequest(f"Invalid input for {what}: each route has exactly a destination and a nexthop.")
        destination = parse_cidr(route["destination"], what)
        nexthop = parse_ip(route["nexthop"], what)
        if destination.version != nexthop.version:
            raise BadRequest(f"Invalid input for {what}: route {destination} via {nexthop} mixes IP versions.")
        item = {"destination": str(destination), "nexthop": str(nexthop)}
        if item in out:
            raise BadRequest(f"Duplicate route '{destination} via {nexthop}' in {what}.")
        out.append(item)
    return out


def host_routes(net: IPNetwork, routes: Sequence[Any]) -> list[dict[str, str]]:
    out = static_routes(routes, "host_routes")
    for route in out:
        if ipaddress.ip_address(route["nexthop"]).version != net.version:
            raise BadRequest(f"Invalid input for host_routes: route {route['destination']} via {route['nexthop']} "
                             f"is not IPv{net.version}.")
    return out


def nameservers(servers: Sequence[Any]) -> list[str]:
    out: list[str] = []
    for server in servers:
        ip = str(parse_ip(server, "dns_nameservers"))
        if ip in out:
            raise BadRequest(f"Duplicate nameserver '{ip}'.")
        out.append(ip)
    return out


def subnet_row(body: Mapping[str, Any], *, id: str, project_id: str, network_id: str, at: str) -> dict[str, Any]:
    """A validated subnet row from a create request."""
    version = body.get("ip_version", 4)
    if version not in (4, 6):
        raise BadRequest(f"Invalid input for ip_version. Reason: {version} is not in [4, 6].")
    if body.get("cidr") is None:
        raise BadRequest("Bad subnets request: a cidr must be given (subnet pools are not supported).")
    net = parse_cidr(body["cidr"])
    if net.version != version:
        raise BadRequest(f"Cidr {net} does not match the ip_version {version}.")
    if version == 4 and net.prefixlen > 30 or version == 6 and net.prefixlen > 126:
        raise BadRequest(f"Invalid CIDR {net}: the subnet is too small to hold any host.")
    ra, mode = body.get("ipv6_ra_mode"), body.get("ipv6_address_mode")
    if version == 4 and (ra or mode):
        raise BadRequest("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False "
                         "or on an IPv4 subnet.")
    if ra and mode and ra != mode:
        raise BadRequest(f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{mode}' is not valid. "
                         "If both attributes are set, they must be the same value.")
    if mode in ("slaac", "dhcpv6-stateless") and net.prefixlen != 64:
        raise BadRequest(f"Invalid CIDR {net} for IPv6 address mode. OpenStack uses the EUI-64 address format, "
                         "which requires the prefix to be /64.")
    gateway = _gateway(net, body)
    pools = body.get("allocation_pools")
    pools = validate_pools(net, pools, gateway) if pools else default_pools(net, gateway)
    if not pools:
        raise BadRequest(f"Subnet {net} has no address left for hosts after the gateway.")
    return {
        "id": id, "project_id": project_id, "network_id": network_id, "name": body.get("name") or "",
        "description": body.get("description") or "", "ip_version": version, "cidr": str(net),
        "gateway_ip": gateway, "enable_dhcp": bool(body.get("enable_dhcp", True)), "allocation_pools": pools,
        "dns_nameservers": nameservers(body.get("dns_nameservers") or []),
        "host_routes": host_routes(net, body.get("host_routes") or []), "ipv6_ra_mode": ra,
        "ipv6_address_mode": mode, "tags": clean_tags(body.get("tags") or []), "created_at": at, "updated_at": at,
        "revision_number": 0,
    }


def subnet_changes(subnet: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """Validated changes of a subnet update (cidr, ip_version and network cannot change)."""
    for key in ("cidr", "ip_version", "network_id", "ipv6_ra_mode", "ipv6_address_mode"):
        if key in body and body[key] != subnet[key]:
            raise BadRequest(f"Cannot update read-only attribute {key}.")
    net = ipaddress.ip_network(subnet["cidr"])
    changes: dict[str, Any] = {k: body[k] for k in ("name", "description") if k in body}
    for key in ("name", "description"):
        if key in changes and changes[key] is None:
            changes[key] = ""
    if "enable_dhcp" in body:
        changes["enable_dhcp"] = bool(body["enable_dhcp"])
    gateway = subnet["gateway_ip"]
    if "gateway_ip" in body:
        gateway = changes["gateway_ip"] = _gateway(net, body)
    if "allocation_pools" in body:
        changes["allocation_pools"] = validate_pools(net, body["allocation_pools"] or [], gateway)
    elif "gateway_ip" in body:
        validate_pools(net, subnet["allocation_pools"], gateway)
    if "dns_nameservers" in body:
        changes["dns_nameservers"] = nameservers(body["dns_nameservers"] or [])
    if "host_routes" in body:
        changes["host_routes"] = host_routes(net, body["host_routes"] or [])
    return changes


# --- ports ------------------------------------------------------------------------------------
def fixed_ip_requests(items: Sequence[Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for item in items:
        if not isinstance(item, Mapping) or not set(item) <= {"subnet_id", "ip_address"}:
            raise BadRequest("Invalid input for fixed_ips: each entry has a subnet_id and/or an ip_address.")
        if not item.get("subnet_id") and not item.get("ip_address"):
            raise BadRequest("IP allocation requires subnet_id or ip_address.")
        entry = {}
        if item.get("subnet_id"):
            entry["subnet_id"] = str(item["subnet_id"])
        if item.get("ip_address"):
            entry["ip_address"] = str(parse_ip(item["ip_address"], "fixed_ips"))
        if entry in out and "ip_address" in entry:
            raise BadRequest(f"Duplicate IP address '{entry['ip_address']}'.")
        out.append(entry)
    return out


def address_pairs(pairs: Sequence[Any], port_mac: str | None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for pair in pairs:
        if not isinstance(pair, Mapping) or "ip_address" not in pair or not set(pair) <= {"ip_address", "mac_address"}:
            raise BadRequest("Invalid input for allowed_address_pairs: each pair has an ip_address and may have "
                             "a mac_address.")
        text = str(pair["ip_address"])
        ip = str(parse_cidr(text, "allowed_address_pairs", strict=False)) if "/" in text else str(
            parse_ip(text, "allowed_address_pairs"))
        mac = normalize_mac(pair["mac_address"]) if pair.get("mac_address") else port_mac
        item = {"ip_address": ip, "mac_address": mac or ""}
        if item in out:
            raise BadRequest("Request contains duplicate address pair: "
                             f"mac_address {item['mac_address']} ip_address {ip}.")
        out.append(item)
    return out


# DHCP options of a port (extra_dhcp_opts), handed to dnsmasq per host.  A name goes into
# dnsmasq's options file as `option:<name>` (or a number), a value after it: names are plain
# words and values hold no control character, so an option cannot add a line of its own.
DHCP_OPT_NAME = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_.-]{0,63}|[1-9][0-9]{0,2})$")
DHCP_BLANK_OK = ("router", "classless-static-route")  # Neutron: these may be sent with an empty value


def dhcp_options(current: Sequence[Mapping[str, Any]], requested: Sequence[Any]) -> list[dict[str, Any]]:
    """A port's extra_dhcp_opts after ``requested`` (Neutron's rules): an option named again (same
    name and ip_version) takes its new value, or goes with opt_value null; others are added."""
    out = [dict(o) for o in current]
    for item in requested:
        if not isinstance(item, Mapping) or not {"opt_name", "opt_value"} <= set(item) \
                or not set(item) <= {"opt_name", "opt_value", "ip_version"}:
            raise BadRequest("Invalid input for extra_dhcp_opts: each option has an opt_name, an opt_value and "
                             "may have an ip_version.")
        name, value, version = item["opt_name"], item["opt_value"], item.get("ip_version", 4)
        if not isinstance(name, str) or not DHCP_OPT_NAME.match(name):
            raise BadRequest(f"Invalid input for extra_dhcp_opts: opt_name '{str(name)[:64]}' is not an option "
                             "name (letters, digits, '-', '_' or '.', up to 64) or number.")
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        if version not in (4, 6) or isinstance(version, bool):
            raise BadRequest(f"Invalid input for extra_dhcp_opts: ip_version {str(version)[:10]} is not in [4, 6].")
        if value is not None:
            if not isinstance(value, str) or len(value) > 255 or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
                raise BadRequest(f"Invalid input for extra_dhcp_opts: the value of {name} must be a string of at "
                                 "most 255 printable characters.")
            if not value and name not in DHCP_BLANK_OK:
                raise BadRequest(f"Invalid input for extra_dhcp_opts: the value of {name} is empty.")
        found = next((o for o in out if o["opt_name"] == name and o["ip_version"] == version), None)
        if found is not None:
            out.remove(found)
        if value is not None:
            out.append({"opt_name": name, "opt_value": value, "ip_version": version})
    if len(out) > 64:
        raise BadRequest("A port may have at most 64 extra DHCP options.")
    return sorted(out, key=lambda o: (o["ip_version"], o["opt_name"]))


# --- security group rules -------------------------------------------------------------------------
# One place decides which protocols are the same: duplicate detection, list filters and the
# nftables rules all compare numbers from here, so "tcp" and "6" are one protocol everywhere.
ANY_PROTOCOL = ("", "any", "0")  # Neutron: "any or 0"


def protocol_number(protocol: str | int | None, ethertype: str | None = None) -> int | None:
    """The IP protocol number a rule's protocol means (None: any protocol).

    A name and its number are the same protocol; on an IPv6 rule ICMP means ICMPv6, as Neutron
    takes "icmp" and "1" there.  A protocol no name or number stands for raises BadRequest.
    """
    if protocol is None:
        return None
    text = str(protocol).strip().lower()
    if text in ANY_PROTOCOL:
        return None
    number = PROTOCOLS.get(text)
    if number is None:
        if not text.isdigit() or int(text) > 255:
            raise BadRequest(f"Security group rule protocol {str(protocol)[:40]} not supported. Only protocol values "
                             f"{sorted(PROTOCOLS)} and integer representations [0 to 255] are supported.")
        number = int(text)
    return 58 if number == 1 and ethertype == "IPv6" else number


def protocol_spellings(protocol: str) -> list[str]:
    """Every stored spelling of the protocol ``protocol`` names (its names and its number), for filters."""
    try:
        number = protocol_number(protocol)
    except BadRequest:
        return [protocol]  # matches nothing, as any unknown value of a filter
    if number is None:
        return [protocol]
    return sorted({name for name, n in PROTOCOLS.items() if n == number} | {str(number)})


def rule_row(body: Mapping[str, Any], *, id: str, project_id: str, at: str) -> dict[str, Any]:
    """A validated security group rule row (the group and remote group are checked against state later)."""
    direction = body.get("direction")
    if direction not in ("ingress", "egress"):
        raise BadRequest(f"Invalid input for direction. Reason: {direction!r} is not in ['ingress', 'egress'].")
    ethertype = body.get("ethertype") or "IPv4"
    if ethertype not in ("IPv4", "IPv6"):
        raise BadRequest(f"Invalid input for ethertype. Reason: {ethertype!r} is not in ['IPv4', 'IPv6'].")
    raw = body.get("protocol")
    # Stored as the client spelled it (a lower-case name, or the number as text), "any" as NULL.
    number = protocol_number(raw, ethertype)
    protocol = None if number is None else (str(raw).strip().lower() if str(raw).strip().lower() in PROTOCOLS
                                            else str(int(str(raw).strip())))
    if number == 58 and ethertype == "IPv4":
        raise BadRequest(f"Ethertype IPv4 is not supported with protocol {protocol}.")
    low, high = body.get("port_range_min"), body.get("port_range_max")
    for name, value in (("port_range_min", low), ("port_range_max", high)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise BadRequest(f"Invalid input for {name}. Reason: '{value}' is not an integer.") from None
    low = int(low) if low is not None else None
    high = int(high) if high is not None else None
    # Neutron's checks, in its order and with its messages (clients and Tempest match them).
    for value in (low, high):
        if value is not None and not 0 <= value <= 65535:
            raise BadRequest(f"Invalid value for port {value}.")
    if (low is not None or high is not None) and number is None:
        raise BadRequest("Must also specify protocol if port range is given.")
    if number in PORT_PROTOCOLS:
        if low == 0 or high == 0:
            raise BadRequest("Invalid value for port 0.")
        if (low is not None or high is not None) and (low is None or high is None or low > high):
            raise BadRequest("For TCP/UDP protocols, port_range_min must be <= port_range_max.")
    elif number in ICMP_PROTOCOLS:
        for attr, field_name, value in (("port_range_min", "type", low), ("port_range_max", "code", high)):
            if value is not None and not 0 <= value <= 255:
                raise BadRequest(f"Invalid value for ICMP {field_name} ({attr}) {value}. It must be 0 to 255.")
        if high is not None and low is None:
            raise BadRequest(f"ICMP code (port-range-max) {high} is provided but ICMP type (port-range-min) is missing.")
    elif low is not None or high is not None:
        # Neutron takes min == max here and ignores it; a port of GRE means nothing, so it is refused.
        raise BadRequest(f"Invalid protocol {protocol} for port range, only supported for TCP, UDP, UDPLITE, SCTP "
                         "and DCCP.")
    prefix = body.get("remote_ip_prefix")
    remote_group = body.get("remote_group_id")
    if prefix is not None and remote_group is not None:
        raise BadRequest("Only remote_ip_prefix or remote_group_id may be provided.")
    if prefix is not None:
        net = parse_cidr(prefix, "remote_ip_prefix", strict=False)
        if f"IPv{net.version}" != ethertype:
            raise BadRequest(f"Conflicting value ethertype {ethertype} for CIDR {prefix}.")
        prefix = str(net)
    return {
        "id": id, "project_id": project_id, "security_group_id": body.get("security_group_id"),
        "direction": direction, "ethertype": ethertype, "protocol": protocol, "port_range_min": low,
        "port_range_max": high, "remote_ip_prefix": prefix, "remote_group_id": remote_group,
        "description": body.get("description") or "", "tags": clean_tags(body.get("tags") or []), "created_at": at,
        "updated_at": at, "revision_number": 0,
    }


def rule_key(rule: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two rules the same rule (a prefix of 'anything' equals no prefix)."""
    prefix = rule["remote_ip_prefix"]
    if prefix in ("0.0.0.0/0", "::/0"):
        prefix = None
    return (rule["security_group_id"], rule["direction"], rule["ethertype"],
            protocol_number(rule["protocol"], rule["ethertype"]),
            rule["port_range_min"], rule["port_range_max"], prefix, rule["remote_group_id"])


def default_group_rules(group_id: str, project_id: str, rule_ids: Sequence[str], at: str,
                        with_ingress: bool = True) -> list[dict[str, Any]]:
    """Egress anywhere (IPv4, IPv6); for ``default`` also ingress from the group's own members."""
    base = {"project_id": project_id, "security_group_id": group_id, "protocol": None, "port_range_min": None,
            "port_range_max": None, "remote_ip_prefix": None, "description": "", "created_at": at,
            "updated_at": at, "revision_number": 0}
    specs = [("egress", "IPv4", None), ("egress", "IPv6", None)]
    if with_ingress:
        specs += [("ingress", "IPv4", group_id), ("ingress", "IPv6", group_id)]
    return [{**base, "id": rule_id, "direction": d, "ethertype": e, "remote_group_id": r}
            for rule_id, (d, e, r) in zip(rule_ids, specs)]


# --- tags and names ----------------------------------------------------------------------------------
def clean_tags(tags: Sequence[Any]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > 255 or "," in tag:
            raise BadRequest(f"Invalid input for tags. Reason: '{tag}' is not a valid tag (1 to 255 characters, no comma).")
        if tag not in out:
            out.append(tag)
    if len(out) > 50:
        raise BadRequest("A resource may have at most 50 tags.")
    return sorted(out)


def bool_value(value: Any, what: str) -> bool:
    try:
        return parse_bool(value)
    except ValueError:
        raise BadRequest(f"Invalid input for {what}. Reason: '{str(value)[:100]}' cannot be converted to boolean.") from None


# --- list queries ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    column: str  # a column of the table (or a SQL expression over it)
    kind: str = "str"  # str | bool | int | protocol | json (a list column: match any element) | fixed_ips


@dataclass
class ListQuery:
    equals: list[tuple[Field, list[Any]]] = field(default_factory=list)
    contains: list[tuple[Field, list[Any]]] = field(default_factory=list)  # json list columns
    fixed_ips: list[tuple[str, str]] = field(default_factory=list)  # (subnet_id|ip_address|ip_address_substr, value)
    tags_all: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags_all: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)
    sort: list[tuple[str, str]] = field(default_factory=list)  # (column, asc|desc)
    fields: list[str] = field(default_factory=list)


CONTROL_PARAMS = {"limit", "marker", "page_reverse", "sort_key", "sort_dir", "fields", "tags", "tags-any",
                  "not-tags", "not-tags-any", "all_tenants", "all_projects"}


def _split(values: list[str]) -> list[str]:
    return [t for v in values for t in v.split(",") if t]


def parse_list_query(args: Any, fields: Mapping[str, Field]) -> ListQuery:
    """Neutron's list parameters: any attribute as a filter (a repeated key means OR), tags, sorting, fields.

    ``args`` is a multidict (``getlist``).  Unknown filters are ignored, as Neutron without
    filter validation does; ``fields`` names every filter of the table (``fixed_ips`` only where
    the table has that column), so a filter never names a column the table lacks.
    """
    query = ListQuery()
    for key in args.keys():
        values = args.getlist(key)
        if key in CONTROL_PARAMS:
            continue
        spec = fields.get(key)
        if spec is None:
            continue
        if spec.kind == "fixed_ips":
            for item in values:
                name, _, value = item.partition("=")
                if name not in ("subnet_id", "ip_address", "ip_address_substr") or not value:
                    raise BadRequest(f"Invalid fixed_ips filter {item[:100]!r}: use subnet_id=, ip_address= or "
                                     "ip_address_substr=.")
                query.fixed_ips.append((name, value))
            continue
        if spec.kind == "bool":
            converted: list[Any] = [int(bool_value(v, key)) for v in values]
        elif spec.kind == "int":
            try:
                converted = [int(v) for v in values]
                if any(not -(2**63) <= v < 2**63 for v in converted):  # what SQLite holds
                    raise ValueError("out of range")
            except ValueError:
                raise BadRequest(f"Invalid input for {key}: {str(values)[:100]} must be integers.") from None
        elif spec.kind == "protocol":  # "tcp" finds rules given as "6", and the other way round
            converted = [spelling for v in values for spelling in protocol_spellings(v)]
        else:
            converted = list(values)
        (query.contains if spec.kind == "json" else query.equals).append((spec, converted))
    query.tags_all = _split(args.getlist("tags"))
    query.tags_any = _split(args.getlist("tags-any"))
    query.not_tags_all = _split(args.getlist("not-tags"))
    query.not_tags_any = _split(args.getlist("not-tags-any"))
    keys, dirs = args.getlist("sort_key"), args.getlist("sort_dir")
    if len(dirs) > len(keys):
        raise BadRequest("The number of sort_keys and sort_dirs must be the same.")
    for i, key in enumerate(keys):
        direction = dirs[i] if i < len(dirs) else "asc"
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort_dir {direction[:100]!r}: use asc or desc.")
        spec = fields.get(key)
        if spec is None or spec.kind in ("json", "fixed_ips"):
            raise BadRequest(f"{key[:100]} is an invalid attribute for sort_keys.")
        query.sort.append((spec.column, direction))
    if not any(column == "id" for column, _ in query.sort):
        query.sort.append(("id", query.sort[0][1] if query.sort else "asc"))
    query.fields = _split(args.getlist("fields"))
    return query


def select_fields(view: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    if not fields:
        return view
    return {k: view[k] for k in fields if k in view}


def common_fields(named: bool = True, **extra: Field) -> dict[str, Field]:
    """The filters every resource has, and ``extra``; ``named``: the table has a name column
    (floating IPs and rules have none: a filter on a column the table lacks was a 500)."""
    base = {
        "id": Field("id"), "description": Field("description"),
        "project_id": Field("project_id"), "tenant_id": Field("project_id"),
        "revision_number": Field("revision_number", "int"), "created_at": Field("created_at"),
        "updated_at": Field("updated_at"),
    }
    if named:
        base["name"] = Field("name")
    base.update(extra)
    return base


FILTERS: dict[str, dict[str, Field]] = {
    "networks": common_fields(**{
        "admin_state_up": Field("admin_state_up", "bool"), "shared": Field("shared", "bool"),
        "router:external": Field("external", "bool"), "status": Field("status"), "mtu": Field("mtu", "int"),
        "provider:network_type": Field("network_type"), "provider:physical_network": Field("physical_network"),
        "provider:segmentation_id": Field("segmentation_id", "int"),
        "port_security_enabled": Field("port_security_enabled", "bool"), "is_default": Field("is_default", "bool"),
    }),
    "subnets": common_fields(**{
        "network_id": Field("network_id"), "ip_version": Field("ip_version", "int"), "cidr": Field("cidr"),
        "gateway_ip": Field("gateway_ip"), "enable_dhcp": Field("enable_dhcp", "bool"),
        "ipv6_ra_mode": Field("ipv6_ra_mode"), "ipv6_address_mode": Field("ipv6_address_mode"),
        "subnetpool_id": Field("subnetpool_id"),
    }),
    "ports": common_fields(**{
        "network_id": Field("network_id"), "mac_address": Field("mac_address"),
        "admin_state_up": Field("admin_state_up", "bool"), "status": Field("status"),
        "device_id": Field("device_id"), "device_owner": Field("device_owner"),
        "binding:host_id": Field("binding_host_id"), "binding:vnic_type": Field("binding_vnic_type"),
        "port_security_enabled": Field("port_security_enabled", "bool"),
        "security_groups": Field("security_groups", "json"), "fixed_ips": Field("fixed_ips", "fixed_ips"),
    }),
    "routers": common_fields(**{
        "admin_state_up": Field("admin_state_up", "bool"), "status": Field("status"),
    }),
    "floatingips": common_fields(False, **{
        "floating_network_id": Field("floating_network_id"), "floating_ip_address": Field("floating_ip_address"),
        "port_id": Field("port_id"), "fixed_ip_address": Field("fixed_ip_address"), "router_id": Field("router_id"),
        "status": Field("status"),
    }),
    "security_groups": common_fields(**{"stateful": Field("stateful", "bool")}),
    "subnetpools": common_fields(**{
        "ip_version": Field("ip_version", "int"), "shared": Field("shared", "bool"),
        "is_default": Field("is_default", "bool"), "address_scope_id": Field("address_scope_id"),
        "default_prefixlen": Field("default_prefixlen", "int"), "min_prefixlen": Field("min_prefixlen", "int"),
        "max_prefixlen": Field("max_prefixlen", "int"), "default_quota": Field("default_quota", "int"),
    }),
    "address_scopes": {
        "id": Field("id"), "name": Field("name"), "project_id": Field("project_id"), "tenant_id": Field("project_id"),
        "ip_version": Field("ip_version", "int"), "shared": Field("shared", "bool"),
    },
    "metering_labels": common_fields(**{"shared": Field("shared", "bool")}),
    "metering_label_rules": {
        "id": Field("id"), "project_id": Field("project_id"), "tenant_id": Field("project_id"),
        "metering_label_id": Field("metering_label_id"), "direction": Field("direction"),
        "excluded": Field("excluded", "bool"), "remote_ip_prefix": Field("remote_ip_prefix"),
        "source_ip_prefix": Field("source_ip_prefix"), "destination_ip_prefix": Field("destination_ip_prefix"),
    },
    "security_group_rules": common_fields(False, **{
        "security_group_id": Field("security_group_id"), "direction": Field("direction"),
        "ethertype": Field("ethertype"), "protocol": Field("protocol", "protocol"),
        "port_range_min": Field("port_range_min", "int"), "port_range_max": Field("port_range_max", "int"),
        "remote_ip_prefix": Field("remote_ip_prefix"), "remote_group_id": Field("remote_group_id"),
    }),
}

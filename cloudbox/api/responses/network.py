"""Neutron v2.0 response bodies, by route (paths under /network/v2.0).

Lists and shows take Neutron's ``fields``, which cuts a view down to the fields asked for:
there no field is required, but every field shown must have its type.
"""

from __future__ import annotations

from cloudbox.api.responses.shapes import (
    ANY_OBJ, BOOL, INT, NINT, NSTR, STR, STRS, Doc, Schema, array, enum, loose, obj, wrap,
)

P = "/network/v2.0"

LINKS = array(obj({"rel": STR, "href": STR}))
STANDARD = {"description": STR, "tags": STRS, "created_at": STR, "updated_at": STR, "revision_number": INT}
OWNER = {"project_id": STR, "tenant_id": STR}
STATUS = enum("ACTIVE", "DOWN", "BUILD", "ERROR")
NETWORK = obj(
    {"id": STR, "name": STR, **OWNER, "admin_state_up": BOOL, "status": STATUS, "subnets": STRS, "shared": BOOL,
     "router:external": BOOL, "mtu": INT, "port_security_enabled": BOOL, "availability_zone_hints": STRS,
     "availability_zones": STRS, "ipv4_address_scope": NSTR, "ipv6_address_scope": NSTR, "l2_adjacency": BOOL,
     "is_default": BOOL, **STANDARD},
    {"provider:network_type": NSTR, "provider:physical_network": NSTR, "provider:segmentation_id": NINT},
)
POOL = obj({"start": STR, "end": STR})
ROUTE = obj({"destination": STR, "nexthop": STR})
IPV6_MODE = {"enum": [None, "slaac", "dhcpv6-stateful", "dhcpv6-stateless"]}
SUBNET = obj({
    "id": STR, "name": STR, **OWNER, "network_id": STR, "ip_version": enum(4, 6), "cidr": STR, "gateway_ip": NSTR,
    "enable_dhcp": BOOL, "allocation_pools": array(POOL), "dns_nameservers": STRS, "host_routes": array(ROUTE),
    "ipv6_ra_mode": IPV6_MODE, "ipv6_address_mode": IPV6_MODE, "subnetpool_id": NSTR, "service_types": STRS,
    "segment_id": NSTR, **STANDARD,
})
FIXED_IP = obj({"subnet_id": STR, "ip_address": STR})
PORT = obj(
    {"id": STR, "name": STR, **OWNER, "network_id": STR, "mac_address": STR, "admin_state_up": BOOL,
     "status": STATUS, "device_id": STR, "device_owner": STR, "fixed_ips": array(FIXED_IP),
     "allowed_address_pairs": array(obj({"ip_address": STR}, {"mac_address": STR})),
     "extra_dhcp_opts": array(ANY_OBJ), "security_groups": STRS, "port_security_enabled": BOOL,
     "binding:vnic_type": STR, "ip_allocation": STR, **STANDARD},
    {"binding:host_id": STR, "binding:profile": ANY_OBJ, "binding:vif_type": STR, "binding:vif_details": ANY_OBJ},
)
ROUTER = obj({
    "id": STR, "name": STR, **OWNER, "admin_state_up": BOOL, "status": STATUS,
    "external_gateway_info": {"anyOf": [{"type": "null"}, obj(
        {"network_id": STR, "enable_snat": BOOL, "external_fixed_ips": array(FIXED_IP)})]},
    "routes": array(ROUTE), "availability_zone_hints": STRS, "availability_zones": STRS, **STANDARD,
})
FLOATINGIP = obj({
    "id": STR, **OWNER, "floating_network_id": STR, "floating_ip_address": STR, "router_id": NSTR,
    "port_id": NSTR, "fixed_ip_address": NSTR, "status": STATUS,
    "port_details": {"anyOf": [{"type": "null"}, obj({
        "name": STR, "network_id": STR, "mac_address": STR, "admin_state_up": BOOL, "status": STR,
        "device_id": STR, "device_owner": STR})]},
    **STANDARD,
})
RULE = obj({
    "id": STR, **OWNER, "security_group_id": STR, "direction": enum("ingress", "egress"),
    "ethertype": enum("IPv4", "IPv6"), "protocol": NSTR, "port_range_min": NINT, "port_range_max": NINT,
    "remote_ip_prefix": NSTR, "remote_group_id": NSTR, "remote_address_group_id": NSTR, **STANDARD,
})
SECURITY_GROUP = obj({"id": STR, "name": STR, **OWNER, "stateful": BOOL, "shared": BOOL,
                      "security_group_rules": array(RULE), **STANDARD})
QUOTA = wrap("quota", {"type": "object", "additionalProperties": INT,
                       "properties": {"project_id": STR, "tenant_id": STR}})
QUOTA_DETAILS = wrap("quota", {"type": "object", "additionalProperties": obj(
    {"limit": INT, "used": INT, "reserved": INT})})
AVAILABILITY = obj({
    "network_id": STR, "network_name": STR, **OWNER, "total_ips": INT, "used_ips": INT,
    "subnet_ip_availability": array(obj({"subnet_id": STR, "subnet_name": STR, "cidr": STR,
                                         "ip_version": enum(4, 6), "total_ips": INT, "used_ips": INT})),
})
SUBNETPOOL = obj({
    "id": STR, "name": STR, **OWNER, "ip_version": enum(4, 6), "prefixes": STRS, "min_prefixlen": INT,
    "max_prefixlen": INT, "default_prefixlen": INT, "shared": BOOL, "is_default": BOOL, "default_quota": NINT,
    "address_scope_id": NSTR, **STANDARD,
})
ADDRESS_SCOPE = obj({"id": STR, "name": STR, **OWNER, "ip_version": enum(4, 6), "shared": BOOL})
METERING_LABEL = obj({"id": STR, "name": STR, "description": STR, **OWNER, "shared": BOOL})
METERING_RULE = obj({
    "id": STR, "metering_label_id": STR, **OWNER, "direction": enum("ingress", "egress"), "excluded": BOOL,
    "remote_ip_prefix": NSTR, "source_ip_prefix": NSTR, "destination_ip_prefix": NSTR,
})
AGENT = obj({
    "id": STR, "agent_type": STR, "binary": STR, "topic": STR, "host": STR, "admin_state_up": BOOL, "alive": BOOL,
    "description": NSTR, "availability_zone": NSTR, "configurations": ANY_OBJ, "created_at": NSTR,
    "started_at": NSTR, "heartbeat_timestamp": NSTR, "resources_synced": {"type": ["boolean", "null"]},
    "resource_versions": ANY_OBJ,
})
EXTENSION = obj({"alias": STR, "name": STR, "description": STR, "links": array(ANY_OBJ), "updated": STR})
INTERFACE = obj({"id": STR, **OWNER, "port_id": STR, "network_id": STR, "subnet_id": STR, "subnet_ids": STRS})
TAGS = obj({"tags": STRS})
VERSIONS = obj({"versions": array(obj({"id": STR, "status": STR, "links": array(ANY_OBJ)}))})

# URL collection → (key of one, view)
COLLECTIONS: dict[str, tuple[str, Schema]] = {
    "networks": ("network", NETWORK), "subnets": ("subnet", SUBNET), "ports": ("port", PORT),
    "routers": ("router", ROUTER), "floatingips": ("floatingip", FLOATINGIP),
    "security-groups": ("security_group", SECURITY_GROUP),
    "security-group-rules": ("security_group_rule", RULE),
    "subnetpools": ("subnetpool", SUBNETPOOL), "address-scopes": ("address_scope", ADDRESS_SCOPE),
    "metering/metering-labels": ("metering_label", METERING_LABEL),
    "metering/metering-label-rules": ("metering_label_rule", METERING_RULE),
}
TAGGED = ("networks", "subnets", "ports", "routers", "floatingips", "security-groups", "security-group-rules",
          "subnetpools")
BULK = ("networks", "subnets", "ports")  # POST takes {"<collection>": [...]} too, and answers in kind
NOT_UPDATED = ("metering/metering-labels", "metering/metering-label-rules")


def listing(key: str, item: Schema) -> Schema:
    return obj({key: array(item)}, {f"{key}_links": LINKS})


def _collections() -> dict[tuple[str, str], Doc]:
    docs: dict[tuple[str, str], Doc] = {}
    for collection, (singular, view) in COLLECTIONS.items():
        base, item = f"{P}/{collection}", f"{P}/{collection}/{{id}}"
        docs[("GET", base)] = Doc({200: listing(singular + "s", loose(view))})
        created = wrap(singular, view)
        if collection in BULK:
            created = {"anyOf": [created, wrap(collection, array(view))]}
        docs[("POST", base)] = Doc({201: created})
        docs[("GET", item)] = Doc({200: wrap(singular, loose(view))})
        if collection not in NOT_UPDATED:
            docs[("PUT", item)] = Doc({200: wrap(singular, view)})
        docs[("DELETE", item)] = Doc({204: None})
    for collection in TAGGED:
        tags = f"{P}/{collection}/{{id}}/tags"
        docs[("GET", tags)] = Doc({200: TAGS})
        docs[("PUT", tags)] = Doc({200: TAGS})
        docs[("DELETE", tags)] = Doc({204: None})
        docs[("GET", tags + "/{tag}")] = Doc({204: None})
        docs[("PUT", tags + "/{tag}")] = Doc({201: None})
        docs[("DELETE", tags + "/{tag}")] = Doc({204: None})
    return docs


def docs() -> dict[tuple[str, str], Doc]:
    quota = f"{P}/quotas/{{project_id}}"
    router = f"{P}/routers/{{id}}"
    out = {
        ("GET", "/network"): Doc({200: VERSIONS}, anonymous=True),
        ("GET", P): Doc({200: obj({"resources": array(obj({"name": STR, "collection": STR,
                                                            "links": array(ANY_OBJ)}))})}, anonymous=True),
        ("GET", f"{P}/extensions"): Doc({200: obj({"extensions": array(EXTENSION)})}),
        ("GET", f"{P}/extensions/{{alias}}"): Doc({200: wrap("extension", EXTENSION)}),
        ("GET", f"{P}/quotas"): Doc({200: obj({"quotas": array({"type": "object", "additionalProperties": INT,
                                                                 "properties": OWNER, "required": list(OWNER)})})}),
        ("GET", quota): Doc({200: QUOTA}),
        ("PUT", quota): Doc({200: QUOTA}),
        ("DELETE", quota): Doc({204: None}),
        ("GET", quota + "/default"): Doc({200: QUOTA}),
        ("GET", quota + "/details"): Doc({200: QUOTA_DETAILS}),
        ("GET", quota + "/details.json"): Doc({200: QUOTA_DETAILS}),
        ("GET", f"{P}/network-ip-availabilities"): Doc({200: listing("network_ip_availabilities", loose(AVAILABILITY))}),
        ("GET", f"{P}/network-ip-availabilities/{{network_id}}"): Doc({200: wrap("network_ip_availability",
                                                                                  AVAILABILITY)}),
        # Made on first use: a GET creates a network and a router, so it can meet the project's quota (409).
        ("GET", f"{P}/auto-allocated-topology/{{project_id}}"): Doc({200: wrap("auto_allocated_topology", obj(
            {"id": STR, **OWNER}))}, errors=(409,)),
        ("DELETE", f"{P}/auto-allocated-topology/{{project_id}}"): Doc({204: None}),
        ("PUT", router + "/add_router_interface"): Doc({200: INTERFACE}),
        ("PUT", router + "/remove_router_interface"): Doc({200: INTERFACE}),
        ("PUT", router + "/add_extraroutes"): Doc({200: wrap("router", ROUTER)}),
        ("PUT", router + "/remove_extraroutes"): Doc({200: wrap("router", ROUTER)}),
        ("GET", f"{P}/service-providers"): Doc({200: obj({"service_providers": array(obj(
            {"service_type": STR, "name": STR, "default": BOOL}))})}),
        ("GET", f"{P}/agents"): Doc({200: listing("agents", loose(AGENT))}),
        ("GET", f"{P}/agents/{{id}}"): Doc({200: wrap("agent", loose(AGENT))}),
        ("GET", f"{P}/agents/{{id}}/dhcp-networks"): Doc({200: obj({"networks": array(NETWORK)})}),
        ("POST", f"{P}/agents/{{id}}/dhcp-networks"): Doc({201: None}),
        ("DELETE", f"{P}/agents/{{id}}/dhcp-networks/{{network_id}}"): Doc({204: None}),
        ("GET", f"{P}/networks/{{id}}/dhcp-agents"): Doc({200: obj({"agents": array(AGENT)})}),
    }
    out.update(_collections())
    return out

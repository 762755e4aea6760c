"""JSON schemas of the network API's request bodies (Neutron v2.0 attribute names).

Unknown attributes are refused with 400, as Neutron does ("Unrecognized attribute").
Attributes clients send with neutral values for extensions we do not have (availability
zone hints, distributed/ha false, subnet pools null) are accepted with those values only.
"""

from __future__ import annotations

from typing import Any

from cloudbox.network import core

STRING = {"type": "string", "maxLength": 255}
TEXT = {"type": ["string", "null"], "maxLength": 255}
BOOL = {"type": "boolean"}
ID = {"type": "string", "maxLength": 64}
NULL_ID = {"type": ["string", "null"], "maxLength": 64}
TAGS = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255}, "maxItems": 50}
FALSE = {"const": False}
EMPTY = {"type": "array", "maxItems": 0}
AZ_HINTS = {"type": "array", "items": {"enum": [core.DEFAULT_AZ]}}
IP = {"type": "string", "maxLength": 64}
NULL_IP = {"type": ["string", "null"], "maxLength": 64}
OWNER = {"project_id": ID, "tenant_id": ID}
STANDARD = {"name": STRING, "description": TEXT}
FIXED_IPS = {"type": "array", "maxItems": 64, "items": {
    "type": "object", "properties": {"subnet_id": ID, "ip_address": IP}, "additionalProperties": False}}
PAIRS = {"type": "array", "maxItems": 64, "items": {
    "type": "object", "properties": {"ip_address": IP, "mac_address": {"type": "string", "maxLength": 32}},
    "required": ["ip_address"], "additionalProperties": False}}
ROUTES = {"type": "array", "maxItems": 256, "items": {
    "type": "object", "properties": {"destination": IP, "nexthop": IP}, "required": ["destination", "nexthop"],
    "additionalProperties": False}}
POOLS = {"type": "array", "maxItems": 64, "items": {
    "type": "object", "properties": {"start": IP, "end": IP}, "required": ["start", "end"],
    "additionalProperties": False}}
HOST_ROUTES = ROUTES
# Checked in full by core.dhcp_options (names, printable values, Neutron's merge on update).
DHCP_OPTS = {"type": ["array", "null"], "maxItems": 64, "items": {
    "type": "object", "properties": {"opt_name": {"type": "string", "maxLength": 64},
                                     "opt_value": {"type": ["string", "null"], "maxLength": 255},
                                     "ip_version": {"type": ["integer", "string"], "enum": [4, 6, "4", "6"]}},
    "required": ["opt_name", "opt_value"], "additionalProperties": False}}
GATEWAY_INFO = {"type": ["object", "null"], "properties": {
    "network_id": ID, "enable_snat": BOOL, "external_fixed_ips": FIXED_IPS,
}, "additionalProperties": False}


def wrap(key: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """{key: {...}} with exactly these attributes."""
    inner: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        inner["required"] = list(required)
    return {"type": "object", "properties": {key: inner}, "required": [key], "additionalProperties": False}


def with_bulk(schema: dict[str, Any], plural: str, most: int = 100) -> dict[str, Any]:
    """``schema`` ({singular: {...}}) or {plural: [1 to ``most`` of what singular holds]}."""
    (inner,) = schema["properties"].values()
    return {"anyOf": [schema, {"type": "object", "properties": {plural: {
        "type": "array", "minItems": 1, "maxItems": most, "items": inner}}, "required": [plural],
        "additionalProperties": False}]}


NETWORK_UPDATE = {
    **STANDARD, "admin_state_up": BOOL, "shared": BOOL, "router:external": BOOL, "port_security_enabled": BOOL,
    "is_default": BOOL, "mtu": {"type": "integer", "minimum": 68, "maximum": 9000}, "availability_zone_hints": AZ_HINTS,
    "qos_policy_id": {"type": "null"}, "dns_domain": {"type": ["string", "null"], "maxLength": 0},
}
CREATE_NETWORK = wrap("network", {
    **NETWORK_UPDATE, **OWNER, "tags": TAGS, "provider:network_type": {"enum": ["vxlan", "flat"]},
    "provider:physical_network": {"type": ["string", "null"], "maxLength": 64},
    "provider:segmentation_id": {"type": ["integer", "null"], "minimum": 1, "maximum": core.VXLAN_MAX},
})
UPDATE_NETWORK = wrap("network", NETWORK_UPDATE)

SUBNET_UPDATE = {
    **STANDARD, "gateway_ip": NULL_IP, "enable_dhcp": BOOL, "allocation_pools": POOLS,
    "dns_nameservers": {"type": "array", "items": IP, "maxItems": 16}, "host_routes": HOST_ROUTES,
    "service_types": EMPTY, "segment_id": {"type": "null"}, "dns_publish_fixed_ip": FALSE,
}
CREATE_SUBNET = wrap("subnet", {
    **SUBNET_UPDATE, **OWNER, "tags": TAGS, "network_id": ID, "cidr": {"type": ["string", "null"], "maxLength": 64},
    "ip_version": {"enum": [4, 6]}, "ipv6_ra_mode": {"enum": [None, *core.IPV6_MODES]},
    "ipv6_address_mode": {"enum": [None, *core.IPV6_MODES]}, "subnetpool_id": NULL_ID,
    "use_default_subnet_pool": BOOL, "prefixlen": {"type": ["integer", "null"], "minimum": 0, "maximum": 128},
}, required=("network_id",))
UPDATE_SUBNET = wrap("subnet", {**SUBNET_UPDATE, "ipv6_ra_mode": {"enum": [None, *core.IPV6_MODES]},
                                "ipv6_address_mode": {"enum": [None, *core.IPV6_MODES]}})

PORT_UPDATE = {
    **STANDARD, "admin_state_up": BOOL, "mac_address": {"type": "string", "maxLength": 32}, "fixed_ips": FIXED_IPS,
    "device_id": {"type": "string", "maxLength": 255}, "device_owner": {"type": "string", "maxLength": 255},
    "security_groups": {"type": ["array", "null"], "items": ID, "maxItems": 64}, "port_security_enabled": BOOL,
    "allowed_address_pairs": PAIRS, "binding:host_id": {"type": ["string", "null"], "maxLength": 255},
    "binding:profile": {"type": ["object", "null"]}, "binding:vnic_type": {"enum": list(core.VNIC_TYPES)},
    "extra_dhcp_opts": DHCP_OPTS, "qos_policy_id": {"type": "null"},
}
CREATE_PORT = wrap("port", {**PORT_UPDATE, **OWNER, "tags": TAGS, "network_id": ID}, required=("network_id",))
UPDATE_PORT = wrap("port", PORT_UPDATE)

ROUTER_UPDATE = {
    **STANDARD, "admin_state_up": BOOL, "external_gateway_info": GATEWAY_INFO,
    "routes": {**ROUTES, "type": ["array", "null"]},  # null: none (Tempest clears routes so)
    "distributed": FALSE, "ha": FALSE, "availability_zone_hints": AZ_HINTS,
}
CREATE_ROUTER = wrap("router", {**ROUTER_UPDATE, **OWNER, "tags": TAGS})
UPDATE_ROUTER = wrap("router", ROUTER_UPDATE)
ROUTER_INTERFACE = {"type": "object", "properties": {"subnet_id": ID, "port_id": ID}, "additionalProperties": False}
EXTRA_ROUTES = wrap("router", {"routes": ROUTES}, required=("routes",))

CREATE_FLOATINGIP = wrap("floatingip", {
    "description": TEXT, **OWNER, "tags": TAGS, "floating_network_id": ID, "floating_ip_address": IP,
    "subnet_id": ID, "port_id": NULL_ID, "fixed_ip_address": NULL_IP,
}, required=("floating_network_id",))
UPDATE_FLOATINGIP = wrap("floatingip", {"description": TEXT, "port_id": NULL_ID, "fixed_ip_address": NULL_IP})

CREATE_SECURITY_GROUP = wrap("security_group", {**STANDARD, **OWNER, "tags": TAGS, "stateful": BOOL})
UPDATE_SECURITY_GROUP = wrap("security_group", {**STANDARD})
CREATE_RULE = wrap("security_group_rule", {
    "description": TEXT, **OWNER, "tags": TAGS, "security_group_id": ID, "direction": {"enum": ["ingress", "egress"]},
    "ethertype": {"enum": ["IPv4", "IPv6"]}, "protocol": {"type": ["string", "integer", "null"], "maxLength": 40},
    "port_range_min": {"type": ["integer", "null"]}, "port_range_max": {"type": ["integer", "null"]},
    "remote_ip_prefix": NULL_IP, "remote_group_id": NULL_ID, "remote_address_group_id": {"type": "null"},
}, required=("security_group_id", "direction"))

UPDATE_QUOTA = wrap("quota", {
    **{name: {"type": "integer", "minimum": -1, "maximum": 2**31 - 1} for name in core.DEFAULT_QUOTAS},
    "check_limit": BOOL,
})
TAGS_BODY = {"type": "object", "properties": {"tags": TAGS}, "required": ["tags"], "additionalProperties": False}

# Subnet pools and address scopes: shapes here, bounds and prefixes in core_pools.pool_fields.
PREFIXLEN = {"type": ["integer", "string", "null"], "maxLength": 3}
SUBNETPOOL_UPDATE = {
    **STANDARD, "prefixes": {"type": "array", "items": IP, "minItems": 1, "maxItems": 64},
    "default_prefixlen": PREFIXLEN, "min_prefixlen": PREFIXLEN, "max_prefixlen": PREFIXLEN,
    "default_quota": {"type": ["integer", "null"], "minimum": 0}, "address_scope_id": NULL_ID, "is_default": BOOL,
}
CREATE_SUBNETPOOL = wrap("subnetpool", {**SUBNETPOOL_UPDATE, **OWNER, "tags": TAGS, "shared": BOOL},
                         required=("prefixes",))
UPDATE_SUBNETPOOL = wrap("subnetpool", SUBNETPOOL_UPDATE)
CREATE_ADDRESS_SCOPE = wrap("address_scope", {"name": STRING, **OWNER, "shared": BOOL, "ip_version": {"enum": [4, 6]}},
                            required=("ip_version",))
UPDATE_ADDRESS_SCOPE = wrap("address_scope", {"name": STRING, "shared": BOOL})
CREATE_METERING_LABEL = wrap("metering_label", {**STANDARD, **OWNER, "shared": BOOL})
CREATE_METERING_LABEL_RULE = wrap("metering_label_rule", {
    "metering_label_id": ID, **OWNER, "direction": {"enum": ["ingress", "egress"]}, "excluded": BOOL,
    "remote_ip_prefix": NULL_IP, "source_ip_prefix": NULL_IP, "destination_ip_prefix": NULL_IP,
}, required=("metering_label_id",))

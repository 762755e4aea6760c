"""Neutron v2.0 JSON views of decoded rows (pure).

``admin`` says whether the viewer is a cloud admin (or reader): Neutron shows the provider
and binding attributes to admins only.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from cloudbox.network import core


def _standard(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "description": row.get("description") or "", "tags": list(row.get("tags") or []),
        "created_at": row["created_at"], "updated_at": row["updated_at"],
        "revision_number": row["revision_number"],
    }


def _owner(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"project_id": row["project_id"], "tenant_id": row["project_id"]}


def network(row: Mapping[str, Any], subnet_ids: Sequence[str], admin: bool,
            scopes: Mapping[int, str | None] | None = None) -> dict[str, Any]:
    """``scopes``: the address scope of the network's IPv4 and IPv6 subnets (their pools')."""
    scopes = scopes or {}
    view = {
        "id": row["id"], "name": row["name"], **_owner(row), "admin_state_up": row["admin_state_up"],
        "status": row["status"], "subnets": list(subnet_ids), "shared": row["shared"],
        "router:external": row["external"], "mtu": row["mtu"], "port_security_enabled": row["port_security_enabled"],
        "availability_zone_hints": [], "availability_zones": [core.DEFAULT_AZ], "ipv4_address_scope": scopes.get(4),
        "ipv6_address_scope": scopes.get(6), "l2_adjacency": True, "is_default": row["is_default"], **_standard(row),
    }
    if admin:
        view.update({
            "provider:network_type": row["network_type"], "provider:physical_network": row["physical_network"],
            "provider:segmentation_id": row["segmentation_id"],
        })
    return view


def subnet(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], **_owner(row), "network_id": row["network_id"],
        "ip_version": row["ip_version"], "cidr": row["cidr"], "gateway_ip": row["gateway_ip"],
        "enable_dhcp": row["enable_dhcp"], "allocation_pools": list(row["allocation_pools"]),
        "dns_nameservers": list(row["dns_nameservers"]), "host_routes": list(row["host_routes"]),
        "ipv6_ra_mode": row["ipv6_ra_mode"], "ipv6_address_mode": row["ipv6_address_mode"],
        "subnetpool_id": row.get("subnetpool_id"), "service_types": [], "segment_id": None, **_standard(row),
    }


def vif_type(row: Mapping[str, Any]) -> str:
    return "bridge" if row["binding_host_id"] else "unbound"


def port(row: Mapping[str, Any], admin: bool) -> dict[str, Any]:
    view = {
        "id": row["id"], "name": row["name"], **_owner(row), "network_id": row["network_id"],
        "mac_address": row["mac_address"], "admin_state_up": row["admin_state_up"], "status": row["status"],
        "device_id": row["device_id"], "device_owner": row["device_owner"], "fixed_ips": list(row["fixed_ips"]),
        "allowed_address_pairs": list(row["allowed_address_pairs"]),
        "extra_dhcp_opts": [dict(o) for o in row.get("extra_dhcp_opts") or []],
        "security_groups": list(row["security_groups"]), "port_security_enabled": row["port_security_enabled"],
        "binding:vnic_type": row["binding_vnic_type"], "ip_allocation": "immediate", **_standard(row),
    }
    if admin:
        view.update({
            "binding:host_id": row["binding_host_id"] or "", "binding:profile": dict(row["binding_profile"]),
            "binding:vif_type": vif_type(row),
            "binding:vif_details": {"port_filter": True} if row["binding_host_id"] else {},
        })
    return view


def router(row: Mapping[str, Any], gateway_port: Mapping[str, Any] | None) -> dict[str, Any]:
    gateway = None
    if row["external_network_id"]:
        gateway = {
            "network_id": row["external_network_id"], "enable_snat": row["enable_snat"],
            "external_fixed_ips": list(gateway_port["fixed_ips"]) if gateway_port else [],
        }
    return {
        "id": row["id"], "name": row["name"], **_owner(row), "admin_state_up": row["admin_state_up"],
        "status": row["status"], "external_gateway_info": gateway, "routes": list(row["routes"]),
        "availability_zone_hints": [], "availability_zones": [core.DEFAULT_AZ], **_standard(row),
    }


def floatingip(row: Mapping[str, Any], port_row: Mapping[str, Any] | None) -> dict[str, Any]:
    details = None
    if port_row is not None:
        details = {k: port_row[k] for k in ("name", "network_id", "mac_address", "admin_state_up", "status",
                                            "device_id", "device_owner")}
    return {
        "id": row["id"], **_owner(row), "floating_network_id": row["floating_network_id"],
        "floating_ip_address": row["floating_ip_address"], "router_id": row["router_id"], "port_id": row["port_id"],
        "fixed_ip_address": row["fixed_ip_address"], "status": row["status"], "port_details": details,
        **_standard(row),
    }


def rule(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], **_owner(row), "security_group_id": row["security_group_id"],
        "direction": row["direction"], "ethertype": row["ethertype"], "protocol": row["protocol"],
        "port_range_min": row["port_range_min"], "port_range_max": row["port_range_max"],
        "remote_ip_prefix": row["remote_ip_prefix"], "remote_group_id": row["remote_group_id"],
        "remote_address_group_id": None, "description": row["description"] or "", "tags": list(row.get("tags") or []),
        "created_at": row["created_at"], "updated_at": row["updated_at"], "revision_number": row["revision_number"],
    }


def security_group(row: Mapping[str, Any], rules: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], **_owner(row), "stateful": row["stateful"], "shared": False,
        "security_group_rules": [rule(r) for r in rules], **_standard(row),
    }


def subnetpool(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], **_owner(row), "ip_version": row["ip_version"],
        "prefixes": list(row["prefixes"]), "min_prefixlen": row["min_prefixlen"], "max_prefixlen": row["max_prefixlen"],
        "default_prefixlen": row["default_prefixlen"], "shared": row["shared"], "is_default": row["is_default"],
        "default_quota": row["default_quota"], "address_scope_id": row["address_scope_id"], **_standard(row),
    }


def address_scope(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], **_owner(row), "ip_version": row["ip_version"],
            "shared": row["shared"]}


def metering_label(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "description": row["description"], **_owner(row),
            "shared": row["shared"]}


def metering_label_rule(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "metering_label_id": row["metering_label_id"], **_owner(row),
            "direction": row["direction"], "excluded": row["excluded"], "remote_ip_prefix": row["remote_ip_prefix"],
            "source_ip_prefix": row["source_ip_prefix"], "destination_ip_prefix": row["destination_ip_prefix"]}


def quota(limits: Mapping[str, int], project_id: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = dict(limits)
    if project_id is not None:
        view.update({"project_id": project_id, "tenant_id": project_id})
    return view


def quota_details(limits: Mapping[str, int], usage: Mapping[str, int]) -> dict[str, Any]:
    return {k: {"limit": v, "used": usage.get(k, 0), "reserved": 0} for k, v in limits.items()}


# --- discovery -----------------------------------------------------------------------------------------
# (alias, name, description): clients look for the aliases; names and descriptions are ours.
EXTENSIONS: list[tuple[str, str, str]] = [
    ("router", "Routers", "Routers between networks, with a gateway to an external network."),
    ("external-net", "External networks", "The router:external attribute of networks."),
    ("subnet-external-network", "Subnets of external networks", "Every project sees the subnets of external networks."),
    ("extraroute", "Static routes", "Static routes on routers."),
    ("extraroute-atomic", "Static route edits", "add_extraroutes / remove_extraroutes on routers."),
    ("ext-gw-mode", "Gateway SNAT switch", "enable_snat in a router's external_gateway_info."),
    ("security-group", "Security groups", "Security groups and their rules on ports."),
    ("quotas", "Quotas", "Per-project limits of network resources."),
    ("quota_details", "Quota usage", "Limits with what each project uses."),
    ("port-security", "Port security", "port_security_enabled on networks and ports."),
    ("allowed-address-pairs", "Address pairs", "Further addresses a port may send from."),
    ("extra_dhcp_opt", "Extra DHCP options", "extra_dhcp_opts of ports, served by their network's DHCP server."),
    ("binding", "Port bindings", "binding:host_id, binding:vif_type and the other binding attributes."),
    ("provider", "Provider attributes", "provider:network_type, physical_network and segmentation_id."),
    ("standard-attr-description", "Descriptions", "A description on every resource."),
    ("standard-attr-tag", "Tags", "Tags on networks, subnets, ports, routers, floating IPs, security groups and "
     "their rules."),
    ("tag", "Network tags", "Tags on networks (the first tag API; standard-attr-tag has them on every resource)."),
    ("tag-ext", "Tags on more resources", "Tags on subnets, ports, routers and subnet pools."),
    ("service-type", "Service providers", "The providers of the network services (routers: one, single_node)."),
    ("standard-attr-revisions", "Revision numbers", "revision_number on every resource."),
    ("standard-attr-timestamp", "Timestamps", "created_at and updated_at on every resource."),
    ("net-mtu", "MTU", "The mtu attribute of networks."),
    ("auto-allocated-topology", "Auto-allocated topology", "A network and router made for a project on demand."),
    ("network-ip-availability", "IP availability", "Used and total addresses per network and subnet."),
    ("subnet_allocation", "Subnet pools", "Subnets that take their CIDR from a subnet pool."),
    ("default-subnetpools", "Default subnet pools", "use_default_subnet_pool on subnets."),
    ("address-scope", "Address scopes", "Subnet pools whose prefixes must not overlap."),
    ("agent", "Agents", "The DHCP, L3 and metadata parts of every node, alive while the node is up."),
    ("dhcp_agent_scheduler", "DHCP agent scheduler", "Which node's DHCP agent serves a network; moving it."),
    ("metering", "Metering", "Metering labels and their rules (the API; the counts are not measured)."),
    ("fip-port-details", "Floating IP port details", "port_details of floating IPs."),
    ("ip-substring-filtering", "Address substring filter", "Listing ports by part of an address."),
    ("project-id", "project_id", "project_id beside tenant_id."),
    ("pagination", "Paging", "limit and marker on lists."),
    ("sorting", "Sorting", "sort_key and sort_dir on lists."),
]


# Neutron's service-type extension: what provides each network service (cloudbox's routers are one kind).
SERVICE_PROVIDERS = [{"service_type": "L3_ROUTER_NAT", "name": "single_node", "default": True}]


def extension(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description, "links": [],
            "updated": "2026-01-01T00:00:00-00:00"}


RESOURCES = [
    ("network", "networks"), ("subnet", "subnets"), ("port", "ports"), ("router", "routers"),
    ("floatingip", "floatingips"), ("security_group", "security-groups"),
    ("security_group_rule", "security-group-rules"), ("quota", "quotas"),
    ("network_ip_availability", "network-ip-availabilities"), ("extension", "extensions"),
    ("subnetpool", "subnetpools"), ("address_scope", "address-scopes"), ("metering_label", "metering/metering-labels"),
    ("metering_label_rule", "metering/metering-label-rules"), ("agent", "agents"),
    ("service_provider", "service-providers"),
]


def root(base: str) -> dict[str, Any]:
    return {"resources": [{"name": name, "collection": collection,
                           "links": [{"href": f"{base}/{collection}", "rel": "self"}]}
                          for name, collection in RESOURCES]}


def versions(base: str) -> dict[str, Any]:
    return {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"href": f"{base}/v2.0/", "rel": "self"}]}]}

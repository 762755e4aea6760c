"""Nova's older read APIs kept for old clients: os-hosts (to 2.42), os-networks and os-tenant-networks
(to 2.35, read-only, from the network service).  From those microversions on they answer 404, as in Nova."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from cloudbox.api.routes import Call, Route
from cloudbox.compute.api import Version, route
from cloudbox.compute.api_proxies import MANY, proxy_only
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, CloudboxError, NotFound
from cloudbox.identity.core import require

HOSTS_MAX = (2, 42)
ON_OFF = ("enable", "disable")


class NotImplementedHere(CloudboxError):
    """Nova's 501: the hypervisor cannot do it (libvirt's host power actions and maintenance mode)."""

    status = 501
    title = "Not Implemented"


def hosts_only(version: Version) -> None:
    if version > HOSTS_MAX:
        raise NotFound(f"os-hosts is not served at microversion {version[0]}.{version[1]}: "
                       "use os-hypervisors and os-services (removed at 2.43).")


async def host_named(svc: ComputeService, name: str) -> dict[str, Any]:
    for host in await svc.resources.hosts():
        if host["name"] == name:
            return host
    raise NotFound(f"Compute host {name[:80]} could not be found.")


async def list_hosts(svc: ComputeService, call: Call, version: Version) -> Any:
    """Each compute host twice, as Nova lists its services: compute in its zone, the scheduler internal."""
    hosts_only(version)
    require(call.auth.is_cloud_reader, "os_compute_api:os-hosts:list")
    zone = call.query.get("zone")
    out = []
    for h in await svc.resources.hosts():
        out.append({"host_name": h["name"], "service": "compute", "zone": h["availability_zone"]})
        out.append({"host_name": h["name"], "service": "scheduler", "zone": "internal"})
    return {"hosts": [h for h in out if not zone or h["zone"] == zone]}


async def show_host(svc: ComputeService, call: Call, version: Version, host_name: str) -> Any:
    """The host's totals and what its servers use now (used_max: the same, no overcommit here)."""
    hosts_only(version)
    require(call.auth.is_cloud_reader, "os_compute_api:os-hosts:show")
    h = await host_named(svc, host_name)
    usage = h["usage"]
    total = {"cpu": h["vcpus"], "memory_mb": h["memory_mb"], "disk_gb": h["disk_gb"]}
    used = {"cpu": usage["vcpus"], "memory_mb": usage["ram_mb"], "disk_gb": usage["disk_gb"]}
    rows = [("(total)", total), ("(used_now)", used), ("(used_max)", used)]
    return {"host": [{"resource": {"host": h["name"], "project": p, **r}} for p, r in rows]}


async def update_host(svc: ComputeService, call: Call, version: Version, host_name: str) -> Any:
    """Nova's checks, then 501: cloudbox does not put a host into maintenance or disable it here
    (os-services is where a host is disabled)."""
    hosts_only(version)
    require(call.auth.is_cloud_admin, "os_compute_api:os-hosts:update")
    body = call.body or {}
    if not body or set(body) - {"status", "maintenance_mode"}:
        raise BadRequest("Update a host with status and/or maintenance_mode, each enable or disable.")
    for key, value in body.items():
        if value not in ON_OFF:
            raise BadRequest(f"Invalid {key} {str(value)[:40]!r}: use enable or disable.")
    await host_named(svc, host_name)
    raise NotImplementedHere("Changing a host's status or maintenance mode is not implemented by this cloud.")


async def host_power(svc: ComputeService, call: Call, version: Version, host_name: str, action: str) -> Any:
    hosts_only(version)
    require(call.auth.is_cloud_admin, "os_compute_api:os-hosts:start")
    if action not in ("startup", "shutdown", "reboot"):
        raise NotFound(f"No host action {action[:40]}.")
    await host_named(svc, host_name)
    raise NotImplementedHere(f"Host {action} is not implemented by this hypervisor driver.")


# --- os-networks (read-only) ----------------------------------------------------------------------
NETWORK_FIELDS = ("cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6", "gateway_v6", "netmask_v6")
ADMIN_FIELDS = ("created_at", "updated_at", "deleted_at", "deleted", "injected", "bridge", "vlan",
                "vpn_public_address", "vpn_public_port", "vpn_private_address", "dhcp_start", "project_id", "host",
                "bridge_interface", "multi_host", "priority", "rxtx_base", "mtu", "dhcp_server", "enable_dhcp",
                "share_address")


def nova_network(network: dict[str, Any], admin: bool) -> dict[str, Any]:
    """A network as Nova shows one from Neutron: its id and label; nova-network's fields are null."""
    view: dict[str, Any] = {"id": network["id"], "label": network["name"], **dict.fromkeys(NETWORK_FIELDS)}
    if admin:
        view.update(dict.fromkeys(ADMIN_FIELDS))
    return view


async def list_networks(svc: ComputeService, call: Call, version: Version) -> Any:
    proxy_only(version, "os-networks")
    found, _ = await svc.network.list(call.auth, "networks", MultiDict(), MANY, None)
    return {"networks": [nova_network(n, call.auth.is_cloud_admin) for n in found]}


async def network_named(svc: ComputeService, call: Call, version: Version, network_id: str,
                        api: str) -> dict[str, Any]:
    """The network a legacy path names (404 in Nova's words, and from 2.36)."""
    proxy_only(version, api)
    try:
        return await svc.network.show(call.auth, "networks", network_id)
    except NotFound:
        raise NotFound(f"Network {network_id[:80]} could not be found.") from None


async def show_network(svc: ComputeService, call: Call, version: Version, network_id: str) -> Any:
    network = await network_named(svc, call, version, network_id, "os-networks")
    return {"network": nova_network(network, call.auth.is_cloud_admin)}


async def tenant_network(svc: ComputeService, call: Call, network: dict[str, Any]) -> dict[str, Any]:
    """A network as os-tenant-networks shows one: id, label and the CIDR of its first subnet."""
    cidr = None
    if network.get("subnets"):
        try:
            cidr = (await svc.network.show(call.auth, "subnets", network["subnets"][0]))["cidr"]
        except NotFound:  # deleted meanwhile
            pass
    return {"id": network["id"], "label": network["name"], "cidr": cidr}


async def list_tenant_networks(svc: ComputeService, call: Call, version: Version) -> Any:
    proxy_only(version, "os-tenant-networks")
    found, _ = await svc.network.list(call.auth, "networks", MultiDict(), MANY, None)
    return {"networks": [await tenant_network(svc, call, n) for n in found]}


async def show_tenant_network(svc: ComputeService, call: Call, version: Version, network_id: str) -> Any:
    network = await network_named(svc, call, version, network_id, "os-tenant-networks")
    return {"network": await tenant_network(svc, call, network)}


HOST_UPDATE = {"type": "object"}


def routes(svc: ComputeService) -> list[Route]:
    return [
        route(svc, "GET", "/os-hosts", list_hosts, query=("zone",)),
        route(svc, "GET", "/os-hosts/{host_name}", show_host),
        route(svc, "PUT", "/os-hosts/{host_name}", update_host, body=HOST_UPDATE),
        route(svc, "GET", "/os-hosts/{host_name}/{action}", host_power),
        route(svc, "GET", "/os-networks", list_networks),
        route(svc, "GET", "/os-networks/{network_id}", show_network),
        route(svc, "GET", "/os-tenant-networks", list_tenant_networks),
        route(svc, "GET", "/os-tenant-networks/{network_id}", show_tenant_network),
    ]

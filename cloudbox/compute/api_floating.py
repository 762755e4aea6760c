"""Nova's floating IP proxies: os-floating-ips (to 2.35) and the addFloatingIp/removeFloatingIp
actions (to 2.43), answered by the network service with the caller's credentials, in Nova's shape
({id, ip, fixed_ip, instance_id, pool}: the pool is the external network's name); and the
addFixedIp/removeFixedIp actions (to 2.43), which change the addresses of a server's port."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute.api import Version, project_of, route
from cloudbox.compute.api_proxies import MANY, conflict_is_bad_request, proxy_only, server_ports
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, Conflict, NotFound

ACTIONS_MAX = (2, 43)  # addFloatingIp/removeFloatingIp were removed at 2.44


async def pools(svc: ComputeService, call: Call) -> dict[str, dict[str, Any]]:
    """External networks the caller sees, by id."""
    found, _ = await svc.network.list(call.auth, "networks", MultiDict({"router:external": ["true"]}), MANY, None)
    return {n["id"]: n for n in found}


def nova_fip(fip: dict[str, Any], networks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    details = fip.get("port_details") or {}
    network = networks.get(fip["floating_network_id"])
    return {"id": fip["id"], "ip": fip["floating_ip_address"], "fixed_ip": fip["fixed_ip_address"],
            "instance_id": details.get("device_id") if fip["port_id"] else None,
            "pool": network["name"] if network else None}


async def list_fips(svc: ComputeService, call: Call, version: Version) -> Any:
    proxy_only(version, "os-floating-ips")
    found, _ = await svc.network.list(call.auth, "floatingips", MultiDict({"project_id": [project_of(call)]}),
                                      MANY, None)
    networks = await pools(svc, call)
    return {"floating_ips": [nova_fip(f, networks) for f in found]}


async def show_fip(svc: ComputeService, call: Call, version: Version, fip_id: str) -> Any:
    proxy_only(version, "os-floating-ips")
    try:
        fip = await svc.network.show(call.auth, "floatingips", fip_id)
    except NotFound:
        raise NotFound(f"Floating IP {fip_id[:80]} could not be found.") from None
    return {"floating_ip": nova_fip(fip, await pools(svc, call))}


async def create_fip(svc: ComputeService, call: Call, version: Version) -> Any:
    """Allocate from the pool named (an external network's name or id), or the only one there is."""
    proxy_only(version, "os-floating-ips")
    pool = (call.body or {}).get("pool")
    if pool is not None and not isinstance(pool, str):
        raise BadRequest("pool must be a network name.")
    networks = await pools(svc, call)
    if pool:
        chosen = [n for n in networks.values() if pool in (n["id"], n["name"])]
    else:
        chosen = list(networks.values()) if len(networks) == 1 else []
    if len(chosen) != 1:
        raise NotFound(f"Floating IP pool not found: {str(pool)[:80]}." if pool else
                       "No default floating IP pool: name one.")
    fip = await svc.network.create_floatingip(call.auth, {"floating_network_id": chosen[0]["id"],
                                                          "project_id": project_of(call)})
    return {"floating_ip": nova_fip(fip, networks)}


async def delete_fip(svc: ComputeService, call: Call, version: Version, fip_id: str) -> Reply:
    proxy_only(version, "os-floating-ips")
    try:
        await svc.network.delete_floatingip(call.auth, fip_id)
    except NotFound:
        raise NotFound(f"Floating IP {fip_id[:80]} could not be found.") from None
    return Reply(None, 202)


async def fip_by_address(svc: ComputeService, call: Call, address: Any) -> dict[str, Any]:
    if not isinstance(address, str) or not address:
        raise BadRequest("The action needs the floating IP's address.")
    found, _ = await svc.network.list(call.auth, "floatingips",
                                      MultiDict({"floating_ip_address": [address]}), MANY, None)
    if not found:
        raise NotFound(f"Floating IP not found for address {address[:60]}.")
    return found[0]


async def add_fip(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                  args: dict[str, Any]) -> Reply:
    """addFloatingIp: the address to the server's port holding ``fixed_address`` (or its first IPv4 one)."""
    if version > ACTIONS_MAX:
        raise BadRequest("There is no such action: addFloatingIp (removed at 2.44).")
    fip = await fip_by_address(svc, call, args.get("address"))
    wanted = args.get("fixed_address")
    for port in await server_ports(svc, call, server["id"]):
        for ip in port["fixed_ips"]:
            address = ip["ip_address"]
            if (wanted and address == wanted) or (not wanted and ":" not in address):
                with conflict_is_bad_request():  # the fixed IP has a floating IP already
                    await svc.network.update_floatingip(call.auth, fip["id"], {"port_id": port["id"],
                                                                               "fixed_ip_address": address})
                return Reply(None, 202)
    if wanted:
        raise BadRequest(f"Specified fixed address {str(wanted)[:60]} not assigned to instance.")
    raise BadRequest("No IPv4 fixed address is associated with the instance.")


async def remove_fip(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                     args: dict[str, Any]) -> Reply:
    if version > ACTIONS_MAX:
        raise BadRequest("There is no such action: removeFloatingIp (removed at 2.44).")
    fip = await fip_by_address(svc, call, args.get("address"))
    if not fip["port_id"] or (fip.get("port_details") or {}).get("device_id") != server["id"]:
        raise Conflict(f"Floating IP {fip['floating_ip_address']} is not associated with instance {server['id']}.")
    await svc.network.update_floatingip(call.auth, fip["id"], {"port_id": None})
    return Reply(None, 202)


def fixed_ips_but(port: dict[str, Any], address: str | None = None) -> list[dict[str, str]]:
    """A port's fixed IPs as a port update names them, without ``address``."""
    return [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
            for ip in port["fixed_ips"] if ip["ip_address"] != address]


async def add_fixed_ip(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                       args: dict[str, Any]) -> Reply:
    """addFixedIp: one more address on the server's port on ``networkId``, from the first of that
    network's subnets with room (a server with no port there is a 400, as in Nova)."""
    if version > ACTIONS_MAX:
        raise BadRequest("There is no such action: addFixedIp (removed at 2.44).")
    network_id = args.get("networkId")
    if not isinstance(network_id, str) or not network_id or set(args) - {"networkId"}:
        raise BadRequest("addFixedIp needs networkId, a network's id, and nothing else.")
    for port in await server_ports(svc, call, server["id"]):
        if port["network_id"] != network_id:
            continue
        network = await svc.network.show(call.auth, "networks", network_id)
        for subnet_id in network["subnets"]:
            try:
                await svc.network.update_port(call.auth, port["id"],
                                              {"fixed_ips": [*fixed_ips_but(port), {"subnet_id": subnet_id}]})
            except Conflict:  # that subnet has no free address left
                continue
            return Reply(None, 202)
        raise BadRequest(f"Zero fixed IPs could be found: network {network_id[:40]} has no free address.")
    raise BadRequest(f"Network {network_id[:40]} could not be found for instance {server['id']}.")


async def remove_fixed_ip(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                          args: dict[str, Any]) -> Reply:
    """removeFixedIp: the address goes from the server's port that holds it."""
    if version > ACTIONS_MAX:
        raise BadRequest("There is no such action: removeFixedIp (removed at 2.44).")
    address = args.get("address")
    if not isinstance(address, str) or not address or set(args) - {"address"}:
        raise BadRequest("removeFixedIp needs address, an IP address, and nothing else.")
    for port in await server_ports(svc, call, server["id"]):
        if any(ip["ip_address"] == address for ip in port["fixed_ips"]):
            await svc.network.update_port(call.auth, port["id"], {"fixed_ips": fixed_ips_but(port, address)})
            return Reply(None, 202)
    raise BadRequest(f"Fixed IP {address[:45]} is not one of instance {server['id']}'s addresses.")


FIP_BODY = {"type": ["object", "null"], "properties": {"pool": {"type": ["string", "null"]}}}


def routes(svc: ComputeService) -> list[Route]:
    return [
        route(svc, "GET", "/os-floating-ips", list_fips),
        route(svc, "POST", "/os-floating-ips", create_fip, body=FIP_BODY),
        route(svc, "GET", "/os-floating-ips/{fip_id}", show_fip),
        route(svc, "DELETE", "/os-floating-ips/{fip_id}", delete_fip, status=202),
    ]

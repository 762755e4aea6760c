"""apply() of routers (gateways, interfaces, routes), floating IPs and auto-allocated topologies."""

from __future__ import annotations

import ipaddress
from typing import Any, Sequence

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.network import commands as c
from cloudbox.network import core, store
from cloudbox.network.apply_l2 import create_network, create_port, create_subnet, delete_port, port_row
from cloudbox.network.store import bump, get, insert, must_get, rows, update
from cloudbox.state.migrations import Handler

MAX_ROUTES = 30


# --- routers ------------------------------------------------------------------------------------
def _gateway_port(db: sqlite_utils.Database, router: dict[str, Any]) -> dict[str, Any] | None:
    return get(db, "ports", router["gw_port_id"])


def _connected_subnets(db: sqlite_utils.Database, router: dict[str, Any]) -> list[dict[str, Any]]:
    """Subnets the router has an address on: its interfaces' and its gateway's."""
    ports = store.router_interfaces(db, router["id"])
    gateway = _gateway_port(db, router)
    if gateway:
        ports.append(gateway)
    ids = [ip["subnet_id"] for p in ports for ip in p["fixed_ips"]]
    return [s for s in (get(db, "subnets", i) for i in dict.fromkeys(ids)) if s]


def _check_routes(db: sqlite_utils.Database, router: dict[str, Any], routes: Sequence[dict[str, str]]) -> None:
    if len(routes) > MAX_ROUTES:
        raise BadRequest(f"Unable to complete operation for {router['id']}. The number of routes exceeds the "
                         f"maximum {MAX_ROUTES}.")
    connected = _connected_subnets(db, router)
    own = {ip["ip_address"] for p in store.router_interfaces(db, router["id"]) for ip in p["fixed_ips"]}
    for route in routes:
        if route["nexthop"] in own:
            raise BadRequest(f"Invalid format for routes: {route}, the nexthop is used by router.")
        if not any(core.in_cidr(route["nexthop"], s["cidr"]) for s in connected):
            raise BadRequest(f"Invalid format for routes: {route}, the nexthop is not connected with router.")


def _set_gateway(db: sqlite_utils.Database, router: dict[str, Any], gateway: dict[str, Any] | None,
                 at: str) -> dict[str, Any]:
    """Replace the router's gateway (None: remove it); returns the router's new gateway columns."""
    current = _gateway_port(db, router)
    same_network = gateway is not None and current is not None and gateway["network_id"] == router["external_network_id"]
    if same_network and gateway is not None and not gateway.get("external_fixed_ips"):
        return {"enable_snat": gateway.get("enable_snat", True)}
    if current is not None:
        if list(db.query("SELECT 1 FROM floatingips WHERE router_id = ? LIMIT 1", [router["id"]])):
            raise Conflict(f"Gateway cannot be updated for router {router['id']}, since a gateway to external network "
                           f"{router['external_network_id']} is required by one or more floating IPs.")
        delete_port(db, current["id"], at, internal=True)
    if gateway is None:
        return {"external_network_id": None, "gw_port_id": None, "enable_snat": True}
    network = get(db, "networks", gateway["network_id"])
    if network is None or not network["external"]:
        raise BadRequest(f"Bad router request: Network {gateway['network_id']} is not a valid external network.")
    if not store.subnets_of(db, network["id"]):
        raise BadRequest(f"Bad router request: No subnets on external network {network['id']}.")
    port = port_row(id=gateway["port_id"], project_id="", network=network, mac=gateway["mac"], at=at,
                    device_id=router["id"], device_owner=core.OWNER_ROUTER_GATEWAY, security_groups=[],
                    port_security_enabled=False)
    requests = gateway.get("external_fixed_ips") or None
    create_port(db, port, requests, None, at)
    return {"external_network_id": network["id"], "gw_port_id": gateway["port_id"],
            "enable_snat": gateway.get("enable_snat", True)}


def create_router(db: sqlite_utils.Database, row: dict[str, Any], gateway: dict[str, Any] | None,
                  at: str) -> dict[str, Any]:
    if get(db, "routers", row["id"]):
        raise Conflict(f"Router {row['id']} exists already.")
    store.check_quota(db, row["project_id"], "router")
    insert(db, "routers", row)
    if gateway is not None:
        db["routers"].update(row["id"], store.encode(_set_gateway(db, must_get(db, "routers", row["id"]), gateway, at)))
    return must_get(db, "routers", row["id"])


def _apply_update_router(db: sqlite_utils.Database, cmd: c.UpdateRouter) -> dict[str, Any]:
    router = must_get(db, "routers", cmd.id)
    changes = dict(cmd.changes)
    if cmd.set_gateway:
        changes.update(_set_gateway(db, router, cmd.gateway, cmd.at))
    if "routes" in changes:
        _check_routes(db, {**router, **changes}, changes["routes"])
    return update(db, "routers", cmd.id, changes, cmd.at)


def _apply_edit_routes(db: sqlite_utils.Database, cmd: c.EditRoutes) -> dict[str, Any]:
    router = must_get(db, "routers", cmd.id)
    routes = [r for r in router["routes"] if r not in cmd.remove]
    routes += [r for r in cmd.add if r not in routes]
    _check_routes(db, router, routes)
    return update(db, "routers", cmd.id, {"routes": routes}, cmd.at)


def delete_router(db: sqlite_utils.Database, router_id: str, at: str) -> None:
    router = must_get(db, "routers", router_id)
    if store.router_interfaces(db, router_id):
        raise Conflict(f"Router {router_id} still has ports")
    if list(db.query("SELECT 1 FROM floatingips WHERE router_id = ? LIMIT 1", [router_id])):
        raise Conflict(f"Router {router_id} is still used by floating IPs.")
    gateway = _gateway_port(db, router)
    if gateway is not None:
        delete_port(db, gateway["id"], at, internal=True)
    db.execute("DELETE FROM auto_allocated_topologies WHERE router_id = ?", [router_id])
    db.execute("DELETE FROM routers WHERE id = ?", [router_id])


def _interface_info(router: dict[str, Any], port: dict[str, Any], subnet_id: str) -> dict[str, Any]:
    return {"id": router["id"], "tenant_id": router["project_id"], "project_id": router["project_id"],
            "port_id": port["id"], "network_id": port["network_id"], "subnet_id": subnet_id,
            "subnet_ids": [ip["subnet_id"] for ip in port["fixed_ips"]]}


def _check_no_overlap(db: sqlite_utils.Database, router: dict[str, Any], subnets: Sequence[dict[str, Any]]) -> None:
    attached = _connected_subnets(db, router)
    for subnet in subnets:
        for other in attached:
            if other["id"] == subnet["id"]:
                raise BadRequest(f"Bad router request: Router already has a port on subnet {subnet['id']}.")
            if core.overlaps(other["cidr"], subnet["cidr"]):
                raise BadRequest(f"Bad router request: Cidr {subnet['cidr']} of subnet {subnet['id']} overlaps with "
                                 f"cidr {other['cidr']} of subnet {other['id']}.")


def add_interface(db: sqlite_utils.Database, router_id: str, subnet_id: str | None, port_id: str | None,
                  new_port_id: str, mac: str, at: str) -> dict[str, Any]:
    router = must_get(db, "routers", router_id)
    if port_id:
        port = must_get(db, "ports", port_id)
        if port["device_id"] or port["device_owner"]:
            raise Conflict(f"Unable to complete operation on port {port_id} for network {port['network_id']}. "
                           f"Port already has an attached device {port['device_id'] or port['device_owner']}.")
        if not port["fixed_ips"]:
            raise BadRequest("Bad router request: Router port must have at least one fixed IP.")
        subnets = [must_get(db, "subnets", ip["subnet_id"]) for ip in port["fixed_ips"]]
        _check_no_overlap(db, router, subnets)
        port = update(db, "ports", port_id, {"device_id": router_id, "device_owner": core.OWNER_ROUTER_INTERFACE,
                                             "security_groups": []}, at)
        info = _interface_info(router, port, subnets[0]["id"])
    else:
        subnet = must_get(db, "subnets", subnet_id)
        if not subnet["gateway_ip"]:
            raise BadRequest(f"Bad router request: Subnet {subnet_id} does not have a gateway IP.")
        _check_no_overlap(db, router, [subnet])
        network = must_get(db, "networks", subnet["network_id"])
        row = port_row(id=new_port_id, project_id=router["project_id"], network=network, mac=mac, at=at,
                       device_id=router_id, device_owner=core.OWNER_ROUTER_INTERFACE, security_groups=[])
        port = create_port(db, row, [{"subnet_id": subnet["id"], "ip_address": subnet["gateway_ip"]}], None, at)
        info = _interface_info(router, port, subnet["id"])
    bump(db, "routers", router_id, at)
    return info


def _floating_ips_through(db: sqlite_utils.Database, router_id: str, subnet: dict[str, Any]) -> bool:
    for fip in db.query("SELECT fixed_ip_address FROM floatingips WHERE router_id = ?", [router_id]):
        if fip["fixed_ip_address"] and core.in_cidr(fip["fixed_ip_address"], subnet["cidr"]):
            return True
    return False


def remove_interface(db: sqlite_utils.Database, router_id: str, subnet_id: str | None, port_id: str | None,
                     at: str) -> dict[str, Any]:
    router = must_get(db, "routers", router_id)
    interfaces = store.router_interfaces(db, router_id)
    if port_id:
        port = next((p for p in interfaces if p["id"] == port_id), None)
        if port is None:
            raise NotFound(f"Router {router_id} does not have an interface with id {port_id}")
        if subnet_id and not any(ip["subnet_id"] == subnet_id for ip in port["fixed_ips"]):
            raise Conflict(f"Subnet {subnet_id} is not on port {port_id} of router {router_id}.")
        removed = [ip["subnet_id"] for ip in port["fixed_ips"]]
    else:
        port = next((p for p in interfaces if any(ip["subnet_id"] == subnet_id for ip in p["fixed_ips"])), None)
        if port is None:
            raise NotFound(f"Router {router_id} has no interface on subnet {subnet_id}")
        removed = [subnet_id]  # type: ignore[list-item]
    remaining_router = dict(router)
    for sid in removed:
        subnet = must_get(db, "subnets", sid)
        if _floating_ips_through(db, router_id, subnet):
            raise Conflict(f"Router interface for subnet {sid} on router {router_id} cannot be deleted, as it is "
                           "required by one or more floating IPs.")
        if any(core.in_cidr(r["nexthop"], subnet["cidr"]) for r in router["routes"]):
            raise Conflict(f"Router interface for subnet {sid} on router {router_id} cannot be deleted, as it is "
                           "required by one or more routes.")
    info = _interface_info(remaining_router, port, removed[0])
    left = [ip for ip in port["fixed_ips"] if ip["subnet_id"] not in removed]
    if left:
        db.execute(f"DELETE FROM ip_allocations WHERE port_id = ? AND subnet_id IN ({','.join('?' * len(removed))})",
                   [port["id"], *removed])
        update(db, "ports", port["id"], {"fixed_ips": left}, at)
    else:
        delete_port(db, port["id"], at, internal=True)
    bump(db, "routers", router_id, at)
    return info


# --- floating IPs -------------------------------------------------------------------------------------
def _associate(db: sqlite_utils.Database, fip: dict[str, Any], port_id: str, fixed_ip: str | None) -> dict[str, Any]:
    port = get(db, "ports", port_id)
    if port is None or port["project_id"] != fip["project_id"]:
        raise NotFound(f"Port {port_id} could not be found.")
    if port["device_owner"].startswith("network:"):
        raise BadRequest(f"Bad floatingip request: Port {port_id} has owner {port['device_owner']} and therefore "
                         "cannot have a floating IP.")
    v4 = [ip for ip in port["fixed_ips"] if ipaddress.ip_address(ip["ip_address"]).version == 4]
    if fixed_ip is not None:
        chosen = next((ip for ip in v4 if ip["ip_address"] == fixed_ip), None)
        if chosen is None:
            raise BadRequest(f"Bad floatingip request: Port {port_id} does not have fixed ip {fixed_ip}.")
    elif not v4:
        raise BadRequest(f"Bad floatingip request: Port {port_id} does not have any IPv4 address.")
    elif len(v4) > 1:
        raise BadRequest(f"Bad floatingip request: Port {port_id} has multiple fixed IPv4 addresses. Must provide a "
                         "specific IPv4 address when assigning a floating IP.")
    else:
        chosen = v4[0]
    router_id = None
    for interface in rows(db, "SELECT * FROM ports WHERE network_id = ? AND device_owner = ? ORDER BY created_at, id",
                          [port["network_id"], core.OWNER_ROUTER_INTERFACE]):
        router = get(db, "routers", interface["device_id"])
        if router and router["external_network_id"] == fip["floating_network_id"] and any(
                ip["subnet_id"] == chosen["subnet_id"] for ip in interface["fixed_ips"]):
            router_id = router["id"]
            break
    if router_id is None:
        raise NotFound(f"External network {fip['floating_network_id']} is not reachable from subnet "
                       f"{chosen['subnet_id']}.  Therefore, cannot associate Port {port_id} with a Floating IP.")
    taken = list(db.query("SELECT id FROM floatingips WHERE port_id = ? AND fixed_ip_address = ? AND id != ? "
                          "AND floating_network_id = ?",
                          [port_id, chosen["ip_address"], fip["id"], fip["floating_network_id"]]))
    if taken:
        raise Conflict(f"Cannot associate floating IP {fip['floating_ip_address']} ({fip['id']}) with port {port_id} "
                       f"using fixed IP {chosen['ip_address']}, as that fixed IP already has a floating IP on external "
                       f"network {fip['floating_network_id']}.")
    return {"port_id": port_id, "fixed_ip_address": chosen["ip_address"], "router_id": router_id, "status": "ACTIVE"}


def _apply_create_fip(db: sqlite_utils.Database, cmd: c.CreateFloatingIp) -> dict[str, Any]:
    row = dict(cmd.row)
    network = get(db, "networks", row["floating_network_id"])
    if network is None or not network["external"]:
        raise BadRequest(f"Bad floatingip request: Network {row['floating_network_id']} is not a valid external "
                         "network.")
    if get(db, "floatingips", row["id"]):
        raise Conflict(f"Floating IP {row['id']} exists already.")
    store.check_quota(db, row["project_id"], "floatingip")
    request: dict[str, str] = {}
    if cmd.subnet_id:
        subnet = get(db, "subnets", cmd.subnet_id)
        if subnet is None or subnet["network_id"] != network["id"]:
            raise BadRequest(f"Bad floatingip request: Subnet {cmd.subnet_id} is not on network {network['id']}.")
        request["subnet_id"] = cmd.subnet_id
    if row.get("floating_ip_address"):
        request["ip_address"] = row["floating_ip_address"]
    port = port_row(id=row["floating_port_id"], project_id="", network=network, mac=cmd.port_mac, at=cmd.at,
                    device_id=row["id"], device_owner=core.OWNER_FLOATINGIP, security_groups=[],
                    port_security_enabled=False)
    port = create_port(db, port, [request] if request else None, None, cmd.at)
    v4 = [ip for ip in port["fixed_ips"] if ipaddress.ip_address(ip["ip_address"]).version == 4]
    if not v4:
        raise BadRequest(f"Bad floatingip request: Network {network['id']} has no IPv4 subnet.")
    row["floating_ip_address"] = v4[0]["ip_address"]
    wanted_port, wanted_fixed = row.get("port_id"), row.get("fixed_ip_address")
    row.update({"port_id": None, "fixed_ip_address": None, "router_id": None, "status": "DOWN"})
    if wanted_port:
        row.update(_associate(db, row, wanted_port, wanted_fixed))
    insert(db, "floatingips", row)
    return must_get(db, "floatingips", row["id"])


def _apply_update_fip(db: sqlite_utils.Database, cmd: c.UpdateFloatingIp) -> dict[str, Any]:
    fip = must_get(db, "floatingips", cmd.id)
    changes = {k: v for k, v in cmd.changes.items() if k == "description"}
    if "port_id" in cmd.changes:
        if cmd.changes["port_id"] is None:
            changes.update({"port_id": None, "fixed_ip_address": None, "router_id": None, "status": "DOWN"})
        else:
            changes.update(_associate(db, fip, cmd.changes["port_id"], cmd.changes.get("fixed_ip_address")))
    return update(db, "floatingips", cmd.id, changes, cmd.at)


def delete_floating_ip(db: sqlite_utils.Database, fip_id: str, at: str) -> None:
    fip = must_get(db, "floatingips", fip_id)
    db.execute("DELETE FROM floatingips WHERE id = ?", [fip_id])
    if get(db, "ports", fip["floating_port_id"]):
        delete_port(db, fip["floating_port_id"], at, internal=True)


# --- auto-allocated topology ------------------------------------------------------------------------------
def _apply_auto_allocate(db: sqlite_utils.Database, cmd: c.AutoAllocateTopology) -> dict[str, Any]:
    found = list(db.query("SELECT * FROM auto_allocated_topologies WHERE project_id = ?", [cmd.project_id]))
    if found:
        return dict(found[0])
    ids = cmd.ids
    network = create_network(db, cmd.network)
    subnet = create_subnet(db, cmd.subnet, ids["dhcp_port"], ids["dhcp_mac"], cmd.at)
    gateway = {"network_id": cmd.external_network_id, "enable_snat": True, "port_id": ids["gateway_port"],
               "mac": ids["gateway_mac"]}
    router = create_router(db, cmd.router, gateway, cmd.at)
    add_interface(db, router["id"], subnet["id"], None, ids["interface_port"], ids["interface_mac"], cmd.at)
    row = {"project_id": cmd.project_id, "network_id": network["id"], "router_id": router["id"]}
    insert(db, "auto_allocated_topologies", row)
    return row


def _apply_delete_auto(db: sqlite_utils.Database, cmd: c.DeleteAutoAllocatedTopology) -> None:
    from cloudbox.network.apply_l2 import HANDLERS as L2

    found = list(db.query("SELECT * FROM auto_allocated_topologies WHERE project_id = ?", [cmd.project_id]))
    if not found:
        raise NotFound(f"Auto allocated topology of project {cmd.project_id} could not be found.")
    topology = found[0]
    router = get(db, "routers", topology["router_id"])
    if router is not None:
        for interface in store.router_interfaces(db, router["id"]):
            for ip in list(interface["fixed_ips"]):
                remove_interface(db, router["id"], ip["subnet_id"], None, cmd.at)
        delete_router(db, router["id"], cmd.at)
    if get(db, "networks", topology["network_id"]):
        L2[c.DeleteNetwork](db, c.DeleteNetwork(topology["network_id"]))
    db.execute("DELETE FROM auto_allocated_topologies WHERE project_id = ?", [cmd.project_id])


HANDLERS: dict[type, Handler] = {
    c.CreateRouter: lambda db, cmd: create_router(db, cmd.row, cmd.gateway, cmd.at),
    c.UpdateRouter: _apply_update_router,
    c.EditRoutes: _apply_edit_routes,
    c.DeleteRouter: lambda db, cmd: delete_router(db, cmd.id, cmd.at),
    c.AddRouterInterface: lambda db, cmd: add_interface(db, cmd.router_id, cmd.subnet_id, cmd.port_id,
                                                        cmd.new_port_id, cmd.mac, cmd.at),
    c.RemoveRouterInterface: lambda db, cmd: remove_interface(db, cmd.router_id, cmd.subnet_id, cmd.port_id, cmd.at),
    c.CreateFloatingIp: _apply_create_fip,
    c.UpdateFloatingIp: _apply_update_fip,
    c.DeleteFloatingIp: lambda db, cmd: delete_floating_ip(db, cmd.id, ""),
    c.AutoAllocateTopology: _apply_auto_allocate,
    c.DeleteAutoAllocatedTopology: _apply_delete_auto,
}

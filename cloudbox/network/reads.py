"""What the network service runs inside ``engine.read``: pages of views, single views, IP
availability, and the checks of a server's requested networks.

Plain functions of a database handle (sqlite-utils), called as ``engine.read(fn, ...)`` by
``service.py``; they read and never write.  Rows come from ``store.py``, views from ``views.py``.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Sequence

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound
from cloudbox.network import core, store, views
from cloudbox.network.store import Viewer


# --- pages and views ---------------------------------------------------------------------------
def render_rows(db: sqlite_utils.Database, table: str, found: Sequence[dict[str, Any]], admin: bool) -> list[dict[str, Any]]:
    if table == "networks":
        subnets = store.subnet_ids_by_network(db, [r["id"] for r in found])
        scopes = store.address_scopes_by_network(db, [r["id"] for r in found])
        return [views.network(r, subnets[r["id"]], admin, scopes.get(r["id"])) for r in found]
    if table == "subnets":
        return [views.subnet(r) for r in found]
    if table == "ports":
        return [views.port(r, admin) for r in found]
    if table == "routers":
        gateways = store.ports_by_id(db, [r["gw_port_id"] for r in found])
        return [views.router(r, gateways.get(r["gw_port_id"] or "")) for r in found]
    if table == "floatingips":
        ports = store.ports_by_id(db, [r["port_id"] for r in found])
        return [views.floatingip(r, ports.get(r["port_id"] or "")) for r in found]
    if table == "security_groups":
        rules = store.rules_by_group(db, [r["id"] for r in found])
        return [views.security_group(r, rules[r["id"]]) for r in found]
    simple = {"subnetpools": views.subnetpool, "address_scopes": views.address_scope,
              "metering_labels": views.metering_label, "metering_label_rules": views.metering_label_rule}
    if table in simple:
        return [simple[table](r) for r in found]
    return [views.rule(r) for r in found]


def list_page(db: sqlite_utils.Database, table: str, viewer: Viewer, query: core.ListQuery,
                     marker: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    found = store.list_rows(db, table, viewer, query, marker, limit)
    more = len(found) > limit
    found = found[:limit]
    return render_rows(db, table, found, viewer.admin), (found[-1]["id"] if more and found else None)


def show_one(db: sqlite_utils.Database, table: str, viewer: Viewer, id: str) -> dict[str, Any]:
    return render_rows(db, table, [store.visible(db, table, viewer, id)], viewer.admin)[0]


def usable_networks(db: sqlite_utils.Database, project_id: str) -> list[dict[str, Any]]:
    """Networks a server of the project can be put on by "auto": its own and shared ones, not external."""
    return store.rows(db, "SELECT * FROM networks WHERE (project_id = ? OR shared = 1) AND external = 0 "
                          "ORDER BY created_at, id", [project_id])


def availability(db: sqlite_utils.Database, network: dict[str, Any], ip_version: int | None) -> dict[str, Any]:
    subnets = []
    for subnet in store.subnets_of(db, network["id"]):
        if ip_version is not None and subnet["ip_version"] != ip_version:
            continue
        used = db.execute("SELECT count(*) FROM ip_allocations WHERE subnet_id = ?", [subnet["id"]]).fetchone()[0]
        subnets.append({"subnet_id": subnet["id"], "subnet_name": subnet["name"], "cidr": subnet["cidr"],
                        "ip_version": subnet["ip_version"], "total_ips": core.pool_size(subnet["allocation_pools"]),
                        "used_ips": used})
    return {"network_id": network["id"], "network_name": network["name"], "project_id": network["project_id"],
            "tenant_id": network["project_id"], "total_ips": sum(s["total_ips"] for s in subnets),
            "used_ips": sum(s["used_ips"] for s in subnets), "subnet_ip_availability": subnets}


def availability_page(db: sqlite_utils.Database, query: core.ListQuery, ip_version: int | None,
                         marker: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    found = store.list_rows(db, "networks", Viewer(None, True), query, marker, limit)
    more = len(found) > limit
    found = found[:limit]
    return [availability(db, n, ip_version) for n in found], (found[-1]["id"] if more and found else None)


AVAILABILITY_FILTERS = {
    "network_id": core.Field("id"), "network_name": core.Field("name"), "project_id": core.Field("project_id"),
    "tenant_id": core.Field("project_id"),
}


def find_group(db: sqlite_utils.Database, project_id: str, name_or_id: str) -> str | None:
    found = store.rows(db, "SELECT id FROM security_groups WHERE project_id = ? AND (id = ? OR name = ?) "
                           "ORDER BY id = ? DESC", [project_id, name_or_id, name_or_id, name_or_id])
    if len(found) > 1 and found[0]["id"] != name_or_id:
        raise Conflict(f"Multiple security groups found matching '{name_or_id}'. Use an ID to be more specific.")
    return found[0]["id"] if found else None


def topology(db: sqlite_utils.Database, project_id: str) -> dict[str, Any] | None:
    found = list(db.query("SELECT * FROM auto_allocated_topologies WHERE project_id = ?", [project_id]))
    return dict(found[0]) if found else None


def ip_in_use(db: sqlite_utils.Database, network_id: str, ip: str) -> str | None:
    found = list(db.query("SELECT a.port_id, p.device_id FROM ip_allocations a JOIN ports p ON p.id = a.port_id "
                          "WHERE a.network_id = ? AND a.ip_address = ?", [network_id, ip]))
    return (found[0]["device_id"] or found[0]["port_id"]) if found else None



# --- servers' requested networks -------------------------------------------------------------------
def check_requested(db: sqlite_utils.Database, project_id: str, is_admin: bool, requested: Any) -> None:
    viewer = Viewer(project_id, is_admin)
    if requested in ("none", []):
        return
    if requested == "auto":
        usable = usable_networks(db, project_id)
        if len(usable) > 1:
            raise Conflict("Multiple possible networks found, use a Network ID to be more specific.")
        if not usable:
            externals = store.external_networks(db)
            if not externals or not (any(n["is_default"] for n in externals) or len(externals) == 1):
                raise BadRequest(f"Unable to automatically allocate a network for project {project_id}")
        elif not store.subnets_of(db, usable[0]["id"]):
            raise BadRequest(f"Network {usable[0]['id']} requires a subnet in order to boot instances on.")
        return
    if not isinstance(requested, list):
        raise BadRequest(f"Bad networks format: {requested!r}")
    seen_ports: set[str] = set()
    for entry in requested:
        if not isinstance(entry, dict):
            raise BadRequest(f"Bad networks format: {entry!r}")
        if entry.get("port"):
            port_id = entry["port"]
            if port_id in seen_ports:
                raise BadRequest(f"Port id {port_id} appears more than once in the request.")
            seen_ports.add(port_id)
            try:
                port = store.visible(db, "ports", viewer, port_id)
            except NotFound:
                raise BadRequest(f"Port id {port_id} could not be found.") from None
            if port["device_id"]:
                raise Conflict(f"Port {port_id} is still in use.")
            if not port["fixed_ips"]:
                raise BadRequest(f"Port {port_id} requires a FixedIP in order to be used.")
            continue
        network_id = entry.get("uuid")
        if not network_id:
            raise BadRequest("Bad networks format: network uuid is not in proper format.")
        try:
            network = store.visible(db, "networks", viewer, network_id)
        except NotFound:
            raise BadRequest(f"Network {network_id} could not be found.") from None
        if network["external"] and not network["shared"] and not is_admin:
            raise Forbidden(f"It is not allowed to create an interface on external network {network_id}")
        subnets = store.subnets_of(db, network_id)
        if not subnets:
            raise BadRequest(f"Network {network_id} requires a subnet in order to boot instances on.")
        if entry.get("fixed_ip"):
            try:
                ip = str(ipaddress.ip_address(str(entry["fixed_ip"])))
            except ValueError:
                raise BadRequest(f"Invalid fixed IP address ({entry['fixed_ip']})") from None
            if not any(core.in_cidr(ip, s["cidr"]) for s in subnets):
                raise BadRequest(f"Fixed IP address {ip} is not valid on network {network_id}.")
            holder = ip_in_use(db, network_id, ip)
            if holder:
                raise Conflict(f"Fixed IP address {ip} is already in use on instance {holder}.")

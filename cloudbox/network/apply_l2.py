"""apply() of networks, subnets, ports (with IPAM), tags, quotas and servers' ports.

Every function here runs inside the state engine's transaction: no clock, no
randomness, no I/O.  A raised CloudboxError rolls the whole command back.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Sequence

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, InternalError, NotFound
from cloudbox.network import commands as c
from cloudbox.network import core, store
from cloudbox.network.apply_pools import pool_subnet
from cloudbox.network.store import bump, get, insert, must_get, rows, update
from cloudbox.state.commands import decode
from cloudbox.state.migrations import Handler


# --- IPAM ----------------------------------------------------------------------------------------
def _used(db: sqlite_utils.Database, subnet_id: str) -> list[str]:
    return [r["ip_address"] for r in db.query("SELECT ip_address FROM ip_allocations WHERE subnet_id = ?", [subnet_id])]


def _taken_by(db: sqlite_utils.Database, subnet_id: str, ip: str) -> str | None:
    found = list(db.query("SELECT port_id FROM ip_allocations WHERE subnet_id = ? AND ip_address = ?", [subnet_id, ip]))
    return found[0]["port_id"] if found else None


def _auto_address(db: sqlite_utils.Database, subnet: dict[str, Any], mac: str, chosen: Sequence[str]) -> str | None:
    if subnet["ip_version"] == 6 and subnet["ipv6_address_mode"] in ("slaac", "dhcpv6-stateless"):
        ip = core.eui64(subnet["cidr"], mac)
        return None if ip in chosen or _taken_by(db, subnet["id"], ip) else ip
    return core.lowest_free(subnet["allocation_pools"], [*_used(db, subnet["id"]), *chosen])


def allocate(db: sqlite_utils.Database, network: dict[str, Any], port_id: str, mac: str, device_owner: str,
             requests: Sequence[dict[str, str]] | None, *, v4_only: bool = False,
             keep: Sequence[dict[str, str]] = ()) -> list[dict[str, str]]:
    """Choose and record the port's addresses.

    ``requests`` None: one address from the first IPv4 subnet with room, and one from each IPv6
    subnet (SLAAC: EUI-64).  Else each request names a subnet, an address, or both.  ``keep``:
    the port's current addresses, reused for subnet-only requests on their subnet.
    """
    subnets = store.subnets_of(db, network["id"])
    by_id = {s["id"]: s for s in subnets}
    out: list[dict[str, str]] = []
    if requests is None:
        v4 = [s for s in subnets if s["ip_version"] == 4]
        for subnet in v4:
            ip = _auto_address(db, subnet, mac, [])
            if ip:
                out.append({"subnet_id": subnet["id"], "ip_address": ip})
                break
        else:
            if v4:
                raise Conflict(f"No more IP addresses available on network {network['id']}.")
        if not v4_only:
            stateful_done = False  # one stateful IPv6 address; every SLAAC subnet gives its own
            for subnet in (s for s in subnets if s["ip_version"] == 6):
                slaac = subnet["ipv6_address_mode"] in ("slaac", "dhcpv6-stateless")
                if not slaac and stateful_done:
                    continue
                ip = _auto_address(db, subnet, mac, [])
                if ip:
                    out.append({"subnet_id": subnet["id"], "ip_address": ip})
                    stateful_done = stateful_done or not slaac
    else:
        reusable = list(keep)
        for request in requests:
            subnet_id, ip = request.get("subnet_id"), request.get("ip_address")
            if subnet_id is not None and subnet_id not in by_id:
                raise BadRequest(f"Invalid input for operation: Failed to create port on network {network['id']}, "
                                 f"because fixed_ips included invalid subnet {subnet_id}.")
            if ip is not None:
                subnet = by_id.get(subnet_id) if subnet_id else next(
                    (s for s in subnets if core.in_cidr(ip, s["cidr"])), None)
                if subnet is None:
                    raise BadRequest(f"IP address {ip} is not a valid IP for any of the subnets on the specified network.")
                if not core.in_cidr(ip, subnet["cidr"]):
                    raise BadRequest(f"IP address {ip} is not a valid IP for the specified subnet.")
                first, last = core.host_range(ipaddress.ip_network(subnet["cidr"]))
                if not first <= int(ipaddress.ip_address(ip)) <= last:
                    raise BadRequest(f"IP address {ip} is not a valid IP for the specified subnet.")
                if ip == subnet["gateway_ip"] and device_owner != core.OWNER_ROUTER_INTERFACE:
                    raise Conflict(f"IP address {ip} already allocated in subnet {subnet['id']}: it is the "
                                   "subnet's gateway.")
                holder = _taken_by(db, subnet["id"], ip)
                if (holder and holder != port_id) or any(o["ip_address"] == ip for o in out):
                    raise Conflict(f"IP address {ip} already allocated in subnet {subnet['id']}")
                out.append({"subnet_id": subnet["id"], "ip_address": ip})
            else:
                subnet = by_id[subnet_id]
                kept = next((k for k in reusable if k["subnet_id"] == subnet_id
                             and not any(r.get("ip_address") == k["ip_address"] for r in requests)), None)
                if kept is not None:
                    reusable.remove(kept)
                    out.append(dict(kept))
                    continue
                chosen = [o["ip_address"] for o in out] + [k["ip_address"] for k in keep]
                found = _auto_address(db, subnet, mac, chosen)
                if found is None:
                    raise Conflict(f"No more IP addresses available for subnet {subnet_id}.")
                out.append({"subnet_id": subnet_id, "ip_address": found})
    for item in out:
        db.execute("INSERT INTO ip_allocations (network_id, subnet_id, ip_address, port_id) VALUES (?, ?, ?, ?)",
                   [network["id"], item["subnet_id"], item["ip_address"], port_id])
    return out


def release(db: sqlite_utils.Database, port_id: str) -> None:
    db.execute("DELETE FROM ip_allocations WHERE port_id = ?", [port_id])


# --- networks ----------------------------------------------------------------------------------------
def _apply_create_network(db: sqlite_utils.Database, cmd: c.CreateNetwork) -> dict[str, Any]:
    from cloudbox.network.apply_secgroups import ensure_default_group

    network = create_network(db, cmd.row)
    if cmd.default_sg:
        ensure_default_group(db, network["project_id"], cmd.default_sg, network["created_at"])
    return network


def create_network(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    if get(db, "networks", row["id"]):
        raise Conflict(f"Network {row['id']} exists already.")
    store.check_quota(db, row["project_id"], "network")
    if row["network_type"] == "vxlan":
        used = [r["segmentation_id"] for r in db.query(
            "SELECT segmentation_id FROM networks WHERE network_type = 'vxlan' ORDER BY segmentation_id")]
        if row.get("segmentation_id") is None:
            row["segmentation_id"] = core.lowest_free_segment(used)
        elif row["segmentation_id"] in used:
            raise Conflict(f"Unable to create the network. The VLAN/tunnel ID {row['segmentation_id']} is in use.")
    elif row["network_type"] == "flat":
        if list(db.query("SELECT 1 FROM networks WHERE network_type = 'flat' AND physical_network = ?",
                         [row["physical_network"]])):
            raise Conflict(f"Unable to create the flat network. Physical network {row['physical_network']} is in use.")
    if row.get("is_default"):
        _check_default_external(db, row["id"], row)
    insert(db, "networks", row)
    return must_get(db, "networks", row["id"])


def _check_default_external(db: sqlite_utils.Database, network_id: str, row: dict[str, Any]) -> None:
    if not row.get("external"):
        raise BadRequest("Only an external network (router:external) can be the default one.")
    other = list(db.query("SELECT id FROM networks WHERE is_default = 1 AND id != ?", [network_id]))
    if other:
        raise Conflict(f"Unable to set network {network_id} as default: the default external network is "
                       f"{other[0]['id']}.")


def _apply_update_network(db: sqlite_utils.Database, cmd: c.UpdateNetwork) -> dict[str, Any]:
    network = must_get(db, "networks", cmd.id)
    changes = dict(cmd.changes)
    if changes.get("shared") is False and network["shared"]:
        others = list(db.query("SELECT 1 FROM ports WHERE network_id = ? AND project_id NOT IN (?, '') "
                               "AND device_owner != ? LIMIT 1", [cmd.id, network["project_id"], core.OWNER_DHCP]))
        if others:
            raise Conflict(f"Unable to reconfigure sharing settings for network {cmd.id}. Multiple tenants are using it.")
    if changes.get("external") is False and network["external"]:
        if list(db.query("SELECT 1 FROM routers WHERE external_network_id = ? LIMIT 1", [cmd.id])) or list(
                db.query("SELECT 1 FROM floatingips WHERE floating_network_id = ? LIMIT 1", [cmd.id])):
            raise Conflict(f"External network {cmd.id} cannot be updated to be internal: routers or floating IPs "
                           "use it.")
        changes["is_default"] = False
    if changes.get("is_default"):
        _check_default_external(db, cmd.id, {**network, **changes})
    return update(db, "networks", cmd.id, changes, cmd.at)


def _apply_delete_network(db: sqlite_utils.Database, cmd: c.DeleteNetwork) -> None:
    must_get(db, "networks", cmd.id)
    # An external network goes with its unassociated floating IPs (Neutron's rule); an associated
    # one keeps its port, and with it the network.
    for fip in list(db.query("SELECT id, floating_port_id FROM floatingips WHERE floating_network_id = ? "
                             "AND port_id IS NULL", [cmd.id])):
        db.execute("DELETE FROM floatingips WHERE id = ?", [fip["id"]])
        db.execute("DELETE FROM ports WHERE id = ?", [fip["floating_port_id"]])
    if list(db.query("SELECT 1 FROM ports WHERE network_id = ? AND device_owner != ? LIMIT 1",
                     [cmd.id, core.OWNER_DHCP])):
        raise Conflict(f"Unable to complete operation on network {cmd.id}. There are one or more ports still in "
                       "use on the network.")
    db.execute("DELETE FROM ports WHERE network_id = ?", [cmd.id])  # DHCP ports; allocations cascade
    db.execute("DELETE FROM subnets WHERE network_id = ?", [cmd.id])
    db.execute("DELETE FROM auto_allocated_topologies WHERE network_id = ?", [cmd.id])
    db.execute("DELETE FROM networks WHERE id = ?", [cmd.id])


def _apply_pin_dhcp(db: sqlite_utils.Database, cmd: c.PinDhcp) -> None:
    must_get(db, "networks", cmd.network_id)
    if cmd.node_id is None:
        db.execute("DELETE FROM dhcp_network_pins WHERE network_id = ?", [cmd.network_id])
    else:
        db.execute("INSERT OR REPLACE INTO dhcp_network_pins (network_id, node_id) VALUES (?, ?)",
                   [cmd.network_id, cmd.node_id])


# --- subnets ------------------------------------------------------------------------------------------
def dhcp_port(db: sqlite_utils.Database, network_id: str) -> dict[str, Any] | None:
    found = rows(db, "SELECT * FROM ports WHERE network_id = ? AND device_owner = ? ORDER BY created_at, id LIMIT 1",
                 [network_id, core.OWNER_DHCP])
    return found[0] if found else None


def _give_dhcp_address(db: sqlite_utils.Database, network: dict[str, Any], subnet: dict[str, Any], port_id: str,
                       mac: str, at: str) -> None:
    """The network's DHCP port takes the lowest free address of the subnet (made with the first DHCP subnet)."""
    port = dhcp_port(db, network["id"])
    if port is None:
        row = port_row(id=port_id, project_id=network["project_id"], network=network, mac=mac, at=at,
                       device_id=f"dhcp{network['id']}", device_owner=core.OWNER_DHCP, security_groups=[])
        insert(db, "ports", row)
        port = must_get(db, "ports", port_id)
    if any(ip["subnet_id"] == subnet["id"] for ip in port["fixed_ips"]):
        return
    new = allocate(db, network, port["id"], port["mac_address"], core.OWNER_DHCP, [{"subnet_id": subnet["id"]}])
    update(db, "ports", port["id"], {"fixed_ips": [*port["fixed_ips"], *new]}, at)


def _take_dhcp_address(db: sqlite_utils.Database, subnet_id: str, network_id: str, at: str) -> None:
    port = dhcp_port(db, network_id)
    if port is None:
        return
    remaining = [ip for ip in port["fixed_ips"] if ip["subnet_id"] != subnet_id]
    db.execute("DELETE FROM ip_allocations WHERE port_id = ? AND subnet_id = ?", [port["id"], subnet_id])
    if not remaining:
        db.execute("DELETE FROM ports WHERE id = ?", [port["id"]])
    elif remaining != port["fixed_ips"]:
        update(db, "ports", port["id"], {"fixed_ips": remaining}, at)


def create_subnet(db: sqlite_utils.Database, row: dict[str, Any], dhcp_port_id: str, dhcp_mac: str,
                  at: str) -> dict[str, Any]:
    network = must_get(db, "networks", row["network_id"])
    if get(db, "subnets", row["id"]):
        raise Conflict(f"Subnet {row['id']} exists already.")
    store.check_quota(db, row["project_id"], "subnet")
    for other in store.subnets_of(db, network["id"]):
        if other["ip_version"] == row["ip_version"] and other.get("subnetpool_id") != row.get("subnetpool_id"):
            raise BadRequest("Subnets hosted on the same network must be allocated from the same subnet pool.")
        if core.overlaps(other["cidr"], row["cidr"]):
            raise BadRequest(f"Invalid input for operation: Requested subnet with cidr: {row['cidr']} for network: "
                             f"{network['id']} overlaps with another subnet.")
    insert(db, "subnets", row)
    bump(db, "networks", network["id"], at)
    if row["enable_dhcp"]:
        _give_dhcp_address(db, network, row, dhcp_port_id, dhcp_mac, at)
    return must_get(db, "subnets", row["id"])


def _apply_create_subnet(db: sqlite_utils.Database, cmd: c.CreateSubnet) -> dict[str, Any]:
    row = pool_subnet(db, cmd.row, cmd.pool) if cmd.pool else cmd.row
    return create_subnet(db, row, cmd.dhcp_port_id, cmd.dhcp_mac, cmd.at)


def _apply_update_subnet(db: sqlite_utils.Database, cmd: c.UpdateSubnet) -> dict[str, Any]:
    subnet = must_get(db, "subnets", cmd.id)
    changes = cmd.changes
    if "gateway_ip" in changes and changes["gateway_ip"] != subnet["gateway_ip"] and subnet["gateway_ip"]:
        holder = _taken_by(db, cmd.id, subnet["gateway_ip"])
        if holder:
            raise Conflict(f"Gateway {subnet['gateway_ip']} of subnet {cmd.id} is in use by port {holder}: "
                           "remove the router interface first.")
    if "gateway_ip" in changes and changes["gateway_ip"] and _taken_by(db, cmd.id, changes["gateway_ip"]):
        raise Conflict(f"IP address {changes['gateway_ip']} already allocated in subnet {cmd.id}")
    updated = update(db, "subnets", cmd.id, changes, cmd.at)
    network = must_get(db, "networks", subnet["network_id"])
    if changes.get("enable_dhcp") is True and not subnet["enable_dhcp"]:
        _give_dhcp_address(db, network, updated, cmd.dhcp_port_id, cmd.dhcp_mac, cmd.at)
    elif changes.get("enable_dhcp") is False and subnet["enable_dhcp"]:
        _take_dhcp_address(db, cmd.id, network["id"], cmd.at)
    return must_get(db, "subnets", cmd.id)


def _apply_delete_subnet(db: sqlite_utils.Database, cmd: c.DeleteSubnet) -> None:
    subnet = must_get(db, "subnets", cmd.id)
    users = list(db.query("SELECT a.port_id, p.device_owner FROM ip_allocations a JOIN ports p ON p.id = a.port_id "
                          "WHERE a.subnet_id = ? AND p.device_owner != ? LIMIT 1", [cmd.id, core.OWNER_DHCP]))
    if users:
        raise Conflict(f"Unable to complete operation on subnet {cmd.id}: One or more ports have an IP allocation "
                       f"from this subnet (port {users[0]['port_id']}, {users[0]['device_owner'] or 'no owner'}).")
    _take_dhcp_address(db, cmd.id, subnet["network_id"], cmd.at)
    db.execute("DELETE FROM subnets WHERE id = ?", [cmd.id])
    bump(db, "networks", subnet["network_id"], cmd.at)


# --- ports ----------------------------------------------------------------------------------------------
def port_row(*, id: str, project_id: str, network: dict[str, Any], mac: str, at: str, device_id: str = "",
             device_owner: str = "", security_groups: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    row = {
        "id": id, "project_id": project_id, "network_id": network["id"], "name": "", "description": "",
        "mac_address": mac, "admin_state_up": True, "status": "DOWN", "device_id": device_id,
        "device_owner": device_owner, "fixed_ips": [], "security_groups": security_groups or [],
        "port_security_enabled": network["port_security_enabled"], "allowed_address_pairs": [],
        "binding_host_id": "", "binding_profile": {}, "binding_vnic_type": "normal", "compute_managed": False,
        "device_order": 0, "extra_dhcp_opts": [], "tags": [], "created_at": at, "updated_at": at, "revision_number": 0,
    }
    row.update(extra)
    return row


def _check_groups(db: sqlite_utils.Database, group_ids: Sequence[str]) -> None:
    for group_id in group_ids:
        if get(db, "security_groups", group_id) is None:
            raise NotFound(f"Security group {group_id} does not exist")


def create_port(db: sqlite_utils.Database, row: dict[str, Any], requests: Sequence[dict[str, str]] | None,
                default_sg: dict[str, Any] | None, at: str) -> dict[str, Any]:
    """Insert a port: quota, MAC unique on its network, default group, addresses."""
    from cloudbox.network.apply_secgroups import ensure_default_group

    row = dict(row)
    network = must_get(db, "networks", row["network_id"])
    if get(db, "ports", row["id"]):
        raise Conflict(f"Port {row['id']} exists already.")
    if row["device_owner"] != core.OWNER_DHCP:
        store.check_quota(db, row["project_id"], "port")
    if list(db.query("SELECT 1 FROM ports WHERE network_id = ? AND mac_address = ?", [network["id"], row["mac_address"]])):
        raise Conflict(f"Unable to complete operation for network {network['id']}. The mac address "
                       f"{row['mac_address']} is in use.")
    if row["security_groups"] is None:
        row["security_groups"] = [ensure_default_group(db, row["project_id"], default_sg, at)] if (
            row["port_security_enabled"] and default_sg) else []
    _check_groups(db, row["security_groups"])
    row["fixed_ips"] = []
    insert(db, "ports", row)
    v4_only = row["device_owner"] in (core.OWNER_ROUTER_GATEWAY, core.OWNER_FLOATINGIP)
    fixed = allocate(db, network, row["id"], row["mac_address"], row["device_owner"], requests, v4_only=v4_only)
    db["ports"].update(row["id"], store.encode({"fixed_ips": fixed}))
    return must_get(db, "ports", row["id"])


def disassociate_floating_ips(db: sqlite_utils.Database, port_id: str, at: str,
                              keep_fixed: Sequence[str] | None = None) -> None:
    """Floating IPs of the port (or only those whose fixed address is not in ``keep_fixed``) come loose."""
    for fip in rows(db, "SELECT * FROM floatingips WHERE port_id = ?", [port_id]):
        if keep_fixed is not None and fip["fixed_ip_address"] in keep_fixed:
            continue
        update(db, "floatingips", fip["id"], {"port_id": None, "fixed_ip_address": None, "router_id": None,
                                              "status": "DOWN"}, at)


def update_port(db: sqlite_utils.Database, port_id: str, changes: dict[str, Any],
                requests: Sequence[dict[str, str]] | None, at: str) -> dict[str, Any]:
    port = must_get(db, "ports", port_id)
    changes = dict(changes)
    merged = {**port, **changes}
    if "mac_address" in changes and changes["mac_address"] != port["mac_address"]:
        if port["binding_host_id"] or port["device_id"]:
            raise Conflict(f"Unable to complete operation on port {port_id}: the MAC of a bound port cannot change.")
        if list(db.query("SELECT 1 FROM ports WHERE network_id = ? AND mac_address = ?",
                         [port["network_id"], changes["mac_address"]])):
            raise Conflict(f"Unable to complete operation for network {port['network_id']}. The mac address "
                           f"{changes['mac_address']} is in use.")
    if "device_id" in changes and changes["device_id"] and port["device_id"] and changes["device_id"] != port["device_id"] \
            and port["device_owner"].startswith("network:"):
        raise Conflict(f"Port {port_id} is in use by {port['device_owner']} {port['device_id']}.")
    if not merged["port_security_enabled"]:
        if merged["security_groups"]:
            raise Conflict("Port has security group associated. Cannot disable port security or ip address until "
                           "security group is removed.")
        if merged["allowed_address_pairs"]:
            raise Conflict("Port Security must be enabled in order to have allowed address pairs on a port.")
    _check_groups(db, changes.get("security_groups", []))
    if requests is not None:
        network = must_get(db, "networks", port["network_id"])
        release(db, port_id)
        fixed = allocate(db, network, port_id, merged["mac_address"], merged["device_owner"], requests,
                         keep=port["fixed_ips"])
        changes["fixed_ips"] = fixed
        disassociate_floating_ips(db, port_id, at, keep_fixed=[f["ip_address"] for f in fixed])
    return update(db, "ports", port_id, changes, at)


def delete_port(db: sqlite_utils.Database, port_id: str, at: str, *, internal: bool = False) -> None:
    port = must_get(db, "ports", port_id)
    if not internal and port["device_owner"] in (core.OWNER_ROUTER_INTERFACE, core.OWNER_ROUTER_GATEWAY,
                                                 core.OWNER_FLOATINGIP):
        raise Conflict(f"Port {port_id} cannot be deleted directly via the port API: has device owner "
                       f"{port['device_owner']}.")
    disassociate_floating_ips(db, port_id, at)
    db.execute("DELETE FROM ports WHERE id = ?", [port_id])


def _apply_port_status(db: sqlite_utils.Database, cmd: c.SetPortStatus) -> dict[str, Any]:
    port = must_get(db, "ports", cmd.id)
    if port["status"] == cmd.status:
        return port
    return update(db, "ports", cmd.id, {"status": cmd.status}, cmd.at)


# --- servers' ports --------------------------------------------------------------------------------------
def _apply_allocate(db: sqlite_utils.Database, cmd: c.AllocateServerPorts) -> list[dict[str, Any]]:
    existing = store.server_ports(db, cmd.server_id)
    if existing:
        return existing  # a retried build: the ports made for the server the first time
    for index, item in enumerate(cmd.ports):
        if "port_id" in item:
            port = must_get(db, "ports", item["port_id"])
            if port["device_id"]:
                raise Conflict(f"Port {port['id']} is still in use.")
            # Checked here, from the tables, so every node gives the same verdict: a server takes
            # ports of its own project only (a network's owner sees, but may not take, others').
            if port["project_id"] != cmd.project_id or str(port["device_owner"]).startswith(core.CLOUD_OWNED):
                raise BadRequest(f"Port {port['id']} is not usable by project {cmd.project_id}.")
            if must_get(db, "networks", port["network_id"])["external"]:
                raise BadRequest(f"Port {port['id']} is on an external network; servers attach to it through a router.")
            update(db, "ports", port["id"], {"device_id": cmd.server_id, "device_owner": cmd.device_owner,
                                             "binding_host_id": cmd.host, "compute_managed": False,
                                             "device_order": index}, cmd.at)
        else:
            row = {**item["new"], "device_id": cmd.server_id, "device_owner": cmd.device_owner,
                   "binding_host_id": cmd.host, "compute_managed": True, "device_order": index}
            requests = item.get("fixed_ips")
            create_port(db, row, requests, cmd.default_sg, cmd.at)
    return store.server_ports(db, cmd.server_id)


def _apply_deallocate(db: sqlite_utils.Database, cmd: c.DeallocateServerPorts) -> None:
    for port in store.server_ports(db, cmd.server_id):
        if port["compute_managed"]:
            delete_port(db, port["id"], cmd.at, internal=True)
        else:
            update(db, "ports", port["id"], {"device_id": "", "device_owner": "", "binding_host_id": "",
                                             "binding_profile": {}, "status": "DOWN", "device_order": 0}, cmd.at)


# --- bulk create ----------------------------------------------------------------------------------------------
BULK_TYPES = (c.CreateNetwork, c.CreateSubnet, c.CreatePort, c.CreateSecurityGroupRule)


def _apply_bulk(db: sqlite_utils.Database, cmd: c.BulkCreate) -> list[dict[str, Any]]:
    """Each create in order, in this one transaction: the first refusal undoes them all."""
    from cloudbox.network.apply_secgroups import HANDLERS as SECGROUPS

    out = []
    for item in cmd.commands:
        sub = decode(json.dumps(item))
        if not isinstance(sub, BULK_TYPES):
            raise InternalError(f"{sub.TYPE} cannot be part of a bulk create")
        out.append({**HANDLERS, **SECGROUPS}[type(sub)](db, sub))
    return out


# --- tags and quotas ---------------------------------------------------------------------------------------
def _apply_tags(db: sqlite_utils.Database, cmd: c.EditTags) -> list[str]:
    if cmd.table not in store.TABLES:
        raise BadRequest(f"Resources of type {cmd.table} have no tags.")
    row = must_get(db, cmd.table, cmd.id)
    tags = list(row["tags"])
    if cmd.op == "replace":
        tags = list(cmd.tags)
    elif cmd.op == "clear":
        tags = []
    elif cmd.op == "add":
        tags = sorted(set(tags) | set(cmd.tags))
        if len(tags) > 50:
            raise BadRequest("A resource may have at most 50 tags.")
    elif cmd.op == "remove":
        for tag in cmd.tags:
            if tag not in tags:
                raise NotFound(f"Tag {tag} could not be found for resource {cmd.id}.")
        tags = [t for t in tags if t not in cmd.tags]
    update(db, cmd.table, cmd.id, {"tags": sorted(tags)}, cmd.at)
    return sorted(tags)


def _apply_set_quota(db: sqlite_utils.Database, cmd: c.SetQuota) -> dict[str, int]:
    if cmd.check_usage:
        usage = store.quota_usage(db, cmd.project_id)
        for resource, limit in cmd.limits.items():
            if 0 <= limit < usage[resource]:
                raise BadRequest(f"Quota limit {limit} for {resource} must be greater than or equal to already used "
                                 f"and reserved {usage[resource]}.")
    for resource, limit in sorted(cmd.limits.items()):
        db.execute("INSERT OR REPLACE INTO network_quotas (project_id, resource, hard_limit) VALUES (?, ?, ?)",
                   [cmd.project_id, resource, limit])
    return store.quota_limits(db, cmd.project_id)


def _apply_delete_quota(db: sqlite_utils.Database, cmd: c.DeleteQuota) -> None:
    db.execute("DELETE FROM network_quotas WHERE project_id = ?", [cmd.project_id])


HANDLERS: dict[type, Handler] = {
    c.CreateNetwork: _apply_create_network,
    c.UpdateNetwork: _apply_update_network,
    c.DeleteNetwork: _apply_delete_network,
    c.PinDhcp: _apply_pin_dhcp,
    c.CreateSubnet: _apply_create_subnet,
    c.UpdateSubnet: _apply_update_subnet,
    c.DeleteSubnet: _apply_delete_subnet,
    c.CreatePort: lambda db, cmd: create_port(db, cmd.row, cmd.fixed_ips, cmd.default_sg, cmd.at),
    c.UpdatePort: lambda db, cmd: update_port(db, cmd.id, cmd.changes, cmd.fixed_ips, cmd.at),
    c.DeletePort: lambda db, cmd: delete_port(db, cmd.id, cmd.at),
    c.SetPortStatus: _apply_port_status,
    c.AllocateServerPorts: _apply_allocate,
    c.DeallocateServerPorts: _apply_deallocate,
    c.BulkCreate: _apply_bulk,
    c.EditTags: _apply_tags,
    c.SetQuota: _apply_set_quota,
    c.DeleteQuota: _apply_delete_quota,
}

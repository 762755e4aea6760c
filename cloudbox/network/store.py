"""Network tables: the migration, rows, visibility, listing, and apply(db, command).

The apply functions live by resource in ``apply_l2.py`` (networks, subnets, ports,
servers' ports), ``apply_l3.py`` (routers, floating IPs, auto-allocated topologies)
and ``apply_secgroups.py``; ``apply`` here dispatches to them.  ``server_addresses``
and ``network_data`` are what compute reads inside ``engine.read``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Sequence

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.network import commands as c
from cloudbox.network import core
from cloudbox.state.db import decode_columns, encode_columns
from cloudbox.state.migrations import StoreSpec

MIGRATIONS = [
    """
    CREATE TABLE networks (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '', admin_state_up INTEGER NOT NULL DEFAULT 1,
        shared INTEGER NOT NULL DEFAULT 0, external INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL,
        mtu INTEGER NOT NULL, network_type TEXT NOT NULL, physical_network TEXT, segmentation_id INTEGER,
        port_security_enabled INTEGER NOT NULL DEFAULT 1, is_default INTEGER NOT NULL DEFAULT 0,
        tags TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        revision_number INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX networks_project ON networks (project_id);
    CREATE UNIQUE INDEX networks_vxlan_segment ON networks (segmentation_id) WHERE network_type = 'vxlan';
    CREATE TABLE subnets (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, network_id TEXT NOT NULL REFERENCES networks(id),
        name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', ip_version INTEGER NOT NULL,
        cidr TEXT NOT NULL, gateway_ip TEXT, enable_dhcp INTEGER NOT NULL DEFAULT 1,
        allocation_pools TEXT NOT NULL DEFAULT '[]', dns_nameservers TEXT NOT NULL DEFAULT '[]',
        host_routes TEXT NOT NULL DEFAULT '[]', ipv6_ra_mode TEXT, ipv6_address_mode TEXT,
        tags TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        revision_number INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX subnets_network ON subnets (network_id);
    CREATE INDEX subnets_project ON subnets (project_id);
    CREATE TABLE ports (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, network_id TEXT NOT NULL REFERENCES networks(id),
        name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', mac_address TEXT NOT NULL,
        admin_state_up INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL, device_id TEXT NOT NULL DEFAULT '',
        device_owner TEXT NOT NULL DEFAULT '', fixed_ips TEXT NOT NULL DEFAULT '[]',
        security_groups TEXT NOT NULL DEFAULT '[]', port_security_enabled INTEGER NOT NULL DEFAULT 1,
        allowed_address_pairs TEXT NOT NULL DEFAULT '[]', binding_host_id TEXT NOT NULL DEFAULT '',
        binding_profile TEXT NOT NULL DEFAULT '{}', binding_vnic_type TEXT NOT NULL DEFAULT 'normal',
        compute_managed INTEGER NOT NULL DEFAULT 0, device_order INTEGER NOT NULL DEFAULT 0,
        tags TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        revision_number INTEGER NOT NULL DEFAULT 0, UNIQUE (network_id, mac_address));
    CREATE INDEX ports_project ON ports (project_id);
    CREATE INDEX ports_device ON ports (device_id);
    CREATE INDEX ports_host ON ports (binding_host_id);
    CREATE TABLE ip_allocations (
        network_id TEXT NOT NULL, subnet_id TEXT NOT NULL REFERENCES subnets(id), ip_address TEXT NOT NULL,
        port_id TEXT NOT NULL REFERENCES ports(id) ON DELETE CASCADE, PRIMARY KEY (subnet_id, ip_address));
    CREATE INDEX ip_allocations_port ON ip_allocations (port_id);
    CREATE TABLE routers (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '', admin_state_up INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL,
        external_network_id TEXT, enable_snat INTEGER NOT NULL DEFAULT 1, gw_port_id TEXT,
        routes TEXT NOT NULL DEFAULT '[]', tags TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, revision_number INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX routers_project ON routers (project_id);
    CREATE TABLE floatingips (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, floating_network_id TEXT NOT NULL,
        floating_ip_address TEXT NOT NULL, floating_port_id TEXT NOT NULL, port_id TEXT, fixed_ip_address TEXT,
        router_id TEXT, status TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        revision_number INTEGER NOT NULL DEFAULT 0, UNIQUE (floating_network_id, floating_ip_address));
    CREATE INDEX floatingips_project ON floatingips (project_id);
    CREATE INDEX floatingips_port ON floatingips (port_id);
    CREATE TABLE security_groups (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '', stateful INTEGER NOT NULL DEFAULT 1,
        is_default INTEGER NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, revision_number INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX security_groups_project ON security_groups (project_id);
    CREATE UNIQUE INDEX security_groups_default ON security_groups (project_id) WHERE is_default = 1;
    CREATE TABLE security_group_rules (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL,
        security_group_id TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
        direction TEXT NOT NULL, ethertype TEXT NOT NULL, protocol TEXT, port_range_min INTEGER,
        port_range_max INTEGER, remote_ip_prefix TEXT, remote_group_id TEXT, description TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, revision_number INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX security_group_rules_group ON security_group_rules (security_group_id);
    CREATE INDEX security_group_rules_remote ON security_group_rules (remote_group_id);
    CREATE TABLE network_quotas (
        project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit INTEGER NOT NULL,
        PRIMARY KEY (project_id, resource));
    CREATE TABLE auto_allocated_topologies (
        project_id TEXT PRIMARY KEY, network_id TEXT NOT NULL, router_id TEXT NOT NULL);
    """,
    # Security group rules take tags, as every Neutron resource with standard attributes does.
    """
    ALTER TABLE security_group_rules ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    """,
    # A port's extra DHCP options ([{opt_name, opt_value, ip_version}]), served by its DHCP server.
    """
    ALTER TABLE ports ADD COLUMN extra_dhcp_opts TEXT NOT NULL DEFAULT '[]';
    """,
    # Subnet pools (subnets may take their CIDR from one), address scopes (pools that must not
    # overlap), metering labels and their rules (tags: empty, but every listed table has them), and
    # the DHCP agent an admin put a network on ('' for none: hostplan.Placement.dhcp_owner).
    """
    CREATE TABLE address_scopes (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', ip_version INTEGER NOT NULL,
        shared INTEGER NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, revision_number INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX address_scopes_project ON address_scopes (project_id);
    CREATE TABLE subnetpools (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '', ip_version INTEGER NOT NULL, prefixes TEXT NOT NULL,
        min_prefixlen INTEGER NOT NULL, max_prefixlen INTEGER NOT NULL, default_prefixlen INTEGER NOT NULL,
        shared INTEGER NOT NULL DEFAULT 0, is_default INTEGER NOT NULL DEFAULT 0, default_quota INTEGER,
        address_scope_id TEXT REFERENCES address_scopes(id), tags TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, revision_number INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX subnetpools_project ON subnetpools (project_id);
    CREATE INDEX subnetpools_scope ON subnetpools (address_scope_id);
    CREATE UNIQUE INDEX subnetpools_default ON subnetpools (ip_version) WHERE is_default = 1;
    ALTER TABLE subnets ADD COLUMN subnetpool_id TEXT REFERENCES subnetpools(id);
    CREATE INDEX subnets_pool ON subnets (subnetpool_id);
    CREATE TABLE metering_labels (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '', shared INTEGER NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, revision_number INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE metering_label_rules (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL,
        metering_label_id TEXT NOT NULL REFERENCES metering_labels(id) ON DELETE CASCADE,
        direction TEXT NOT NULL, excluded INTEGER NOT NULL DEFAULT 0, remote_ip_prefix TEXT,
        source_ip_prefix TEXT, destination_ip_prefix TEXT, tags TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, revision_number INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX metering_label_rules_label ON metering_label_rules (metering_label_id);
    CREATE TABLE dhcp_network_pins (
        network_id TEXT PRIMARY KEY REFERENCES networks(id) ON DELETE CASCADE, node_id TEXT NOT NULL);
    """,
]

JSON_COLUMNS = {"tags", "allocation_pools", "dns_nameservers", "host_routes", "fixed_ips", "security_groups",
                "allowed_address_pairs", "binding_profile", "routes", "extra_dhcp_opts", "prefixes"}
BOOL_COLUMNS = {"admin_state_up", "shared", "external", "port_security_enabled", "is_default", "enable_dhcp",
                "enable_snat", "stateful", "compute_managed", "excluded"}
TABLES = ("networks", "subnets", "ports", "routers", "floatingips", "security_groups", "security_group_rules",
          "subnetpools")  # the tables with tags
NOT_FOUND = {
    "networks": "Network {} could not be found.", "subnets": "Subnet {} could not be found.",
    "ports": "Port {} could not be found.", "routers": "Router {} could not be found.",
    "floatingips": "Floating IP {} could not be found", "security_groups": "Security group {} does not exist",
    "security_group_rules": "Security group rule {} does not exist",
    "subnetpools": "Subnet pool {} could not be found.", "address_scopes": "Address scope {} could not be found.",
    "metering_labels": "Metering label {} does not exist.", "metering_label_rules": "Metering label rule {} does not exist.",
}


@dataclass(frozen=True)
class Viewer:
    """Who reads: a project, or everything (cloud admin or reader); ``admin`` also sees admin-only attributes."""

    project_id: str | None
    sees_all: bool = False

    @property
    def admin(self) -> bool:
        return self.sees_all


# --- rows -----------------------------------------------------------------------------------
def decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return decode_columns(row, JSON_COLUMNS, BOOL_COLUMNS)


def encode(row: dict[str, Any]) -> dict[str, Any]:
    return encode_columns(row, JSON_COLUMNS, BOOL_COLUMNS)


def get(db: sqlite_utils.Database, table: str, id: str | None) -> dict[str, Any] | None:
    if not id:
        return None
    rows = list(db.query(f"SELECT * FROM {table} WHERE id = ?", [id]))
    return decode(rows[0]) if rows else None


def must_get(db: sqlite_utils.Database, table: str, id: str | None) -> dict[str, Any]:
    row = get(db, table, id)
    if row is None:
        raise NotFound(NOT_FOUND[table].format(id))
    return row


def rows(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query(sql, list(params))]  # type: ignore[misc]


def insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> None:
    db[table].insert(encode(row))


def update(db: sqlite_utils.Database, table: str, id: str, changes: dict[str, Any], at: str) -> dict[str, Any]:
    """Write ``changes``, stamp updated_at and count the revision; returns the row as it is now."""
    current = must_get(db, table, id)
    db.execute(f"UPDATE {table} SET revision_number = revision_number + 1, updated_at = ? WHERE id = ?", [at, id])
    if changes:
        db[table].update(id, encode(changes))
    return {**current, **changes, "updated_at": at, "revision_number": current["revision_number"] + 1}


def bump(db: sqlite_utils.Database, table: str, id: str, at: str) -> None:
    db.execute(f"UPDATE {table} SET revision_number = revision_number + 1, updated_at = ? WHERE id = ?", [at, id])


# --- visibility -------------------------------------------------------------------------------
def visibility(table: str, viewer: Viewer) -> tuple[str, list[Any]]:
    """A SQL condition selecting the rows of ``table`` the viewer sees."""
    if viewer.sees_all:
        return "1", []
    p = viewer.project_id
    if p is None:
        return "0", []
    if table == "networks":
        return "(project_id = ? OR shared = 1 OR external = 1)", [p]
    if table == "subnets":
        return ("(project_id = ? OR network_id IN (SELECT id FROM networks WHERE shared = 1 OR external = 1))", [p])
    if table == "ports":
        return "(project_id = ? OR network_id IN (SELECT id FROM networks WHERE project_id = ?))", [p, p]
    if table in ("subnetpools", "address_scopes"):
        return "(project_id = ? OR shared = 1)", [p]
    if table in ("metering_labels", "metering_label_rules"):
        return "0", []  # the cloud's administrators' (Neutron: admin only)
    if table == "security_group_rules":
        return "(project_id = ? OR security_group_id IN (SELECT id FROM security_groups WHERE project_id = ?))", [p, p]
    return "project_id = ?", [p]


def visible(db: sqlite_utils.Database, table: str, viewer: Viewer, id: str) -> dict[str, Any]:
    """The row if the viewer sees it; else NotFound (others' resources do not exist for them)."""
    clause, params = visibility(table, viewer)
    found = rows(db, f"SELECT * FROM {table} WHERE id = ? AND {clause}", [id, *params])
    if not found:
        raise NotFound(NOT_FOUND[table].format(id))
    return found[0]


# --- listing ------------------------------------------------------------------------------------
def _sort_sql(column: str) -> str:
    return f"coalesce({column}, '')"


def list_rows(db: sqlite_utils.Database, table: str, viewer: Viewer, query: core.ListQuery, marker: str | None,
              limit: int, extra: tuple[str, list[Any]] | None = None) -> list[dict[str, Any]]:
    """At most ``limit`` + 1 visible rows matching the query, in its order, after ``marker``."""
    clause, params = visibility(table, viewer)
    clauses, params = [clause], list(params)
    if extra:
        clauses.append(extra[0])
        params.extend(extra[1])
    for spec, values in query.equals:
        clauses.append(f"{spec.column} IN ({','.join('?' * len(values))})")
        params.extend(values)
    for spec, values in query.contains:
        clauses.append(f"EXISTS (SELECT 1 FROM json_each({table}.{spec.column}) j "
                       f"WHERE j.value IN ({','.join('?' * len(values))}))")
        params.extend(values)
    for name, value in query.fixed_ips:
        if name == "ip_address_substr":
            clauses.append(f"EXISTS (SELECT 1 FROM json_each({table}.fixed_ips) j "
                           "WHERE instr(json_extract(j.value, '$.ip_address'), ?) > 0)")
        else:
            clauses.append(f"EXISTS (SELECT 1 FROM json_each({table}.fixed_ips) j "
                           f"WHERE json_extract(j.value, '$.{name}') = ?)")
        params.append(value)
    has_tag = f"EXISTS (SELECT 1 FROM json_each({table}.tags) t WHERE t.value = ?)"
    for tag in query.tags_all:
        clauses.append(has_tag)
        params.append(tag)
    if query.tags_any:
        clauses.append("(" + " OR ".join([has_tag] * len(query.tags_any)) + ")")
        params.extend(query.tags_any)
    if query.not_tags_all:
        clauses.append("NOT (" + " AND ".join([has_tag] * len(query.not_tags_all)) + ")")
        params.extend(query.not_tags_all)
    for tag in query.not_tags_any:
        clauses.append("NOT " + has_tag)
        params.append(tag)
    if marker:
        mark_clause, mark_params = visibility(table, viewer)
        found = list(db.query(
            "SELECT " + ", ".join(f"{_sort_sql(c)} AS k{i}" for i, (c, _) in enumerate(query.sort))
            + f" FROM {table} WHERE id = ? AND {mark_clause}", [marker, *mark_params]))
        if not found:
            raise BadRequest(f"Marker {marker[:100]} could not be found.")
        after = []
        for i, (column, direction) in enumerate(query.sort):
            equal = [f"{_sort_sql(c)} = ?" for c, _ in query.sort[:i]]
            beyond = f"{_sort_sql(column)} {'>' if direction == 'asc' else '<'} ?"
            after.append("(" + " AND ".join([*equal, beyond]) + ")")
            params.extend([found[0][f"k{j}"] for j in range(i)] + [found[0][f"k{i}"]])
        clauses.append("(" + " OR ".join(after) + ")")
    order = ", ".join(f"{_sort_sql(c)} {d.upper()}" for c, d in query.sort)
    sql = f"SELECT * FROM {table} WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT ?"
    return rows(db, sql, [*params, limit + 1])


# --- related rows -------------------------------------------------------------------------------
def subnets_of(db: sqlite_utils.Database, network_id: str) -> list[dict[str, Any]]:
    return rows(db, "SELECT * FROM subnets WHERE network_id = ? ORDER BY created_at, id", [network_id])


def subnet_ids_by_network(db: sqlite_utils.Database, network_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {n: [] for n in network_ids}
    for chunk in _chunks(list(network_ids)):
        for r in db.query(f"SELECT id, network_id FROM subnets WHERE network_id IN ({','.join('?' * len(chunk))})"
                          " ORDER BY created_at, id", chunk):
            out[r["network_id"]].append(r["id"])
    return out


def address_scopes_by_network(db: sqlite_utils.Database, network_ids: Sequence[str]) -> dict[str, dict[int, str]]:
    """network id -> {IP version: the address scope of its subnets' pool} (a network's subnets of one
    version all come from one pool, or none)."""
    out: dict[str, dict[int, str]] = {}
    for chunk in _chunks(list(network_ids)):
        for r in db.query("SELECT s.network_id, s.ip_version, p.address_scope_id FROM subnets s JOIN subnetpools p "
                          f"ON p.id = s.subnetpool_id WHERE s.network_id IN ({','.join('?' * len(chunk))}) "
                          "AND p.address_scope_id IS NOT NULL ORDER BY s.created_at, s.id", chunk):
            out.setdefault(r["network_id"], {}).setdefault(r["ip_version"], r["address_scope_id"])
    return out


def rules_by_group(db: sqlite_utils.Database, group_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {g: [] for g in group_ids}
    for chunk in _chunks(list(group_ids)):
        for r in rows(db, "SELECT * FROM security_group_rules WHERE security_group_id IN "
                          f"({','.join('?' * len(chunk))}) ORDER BY created_at, id", chunk):
            out[r["security_group_id"]].append(r)
    return out


def ports_by_id(db: sqlite_utils.Database, ids: Sequence[str | None]) -> dict[str, dict[str, Any]]:
    wanted = [i for i in dict.fromkeys(ids) if i]
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(wanted):
        for r in rows(db, f"SELECT * FROM ports WHERE id IN ({','.join('?' * len(chunk))})", chunk):
            out[r["id"]] = r
    return out


def not_active(db: sqlite_utils.Database, port_ids: Sequence[str]) -> list[str]:
    """Those of ``port_ids`` that exist and are not ACTIVE."""
    out: list[str] = []
    for chunk in _chunks(list(port_ids)):
        out += [r["id"] for r in db.query(f"SELECT id FROM ports WHERE id IN ({','.join('?' * len(chunk))}) "
                                          "AND status != 'ACTIVE' ORDER BY id", chunk)]
    return out


def _chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def default_group(db: sqlite_utils.Database, project_id: str) -> dict[str, Any] | None:
    found = rows(db, "SELECT * FROM security_groups WHERE project_id = ? AND is_default = 1", [project_id])
    return found[0] if found else None


def default_subnetpool(db: sqlite_utils.Database, ip_version: int) -> dict[str, Any] | None:
    found = rows(db, "SELECT * FROM subnetpools WHERE is_default = 1 AND ip_version = ?", [ip_version])
    return found[0] if found else None


def router_interfaces(db: sqlite_utils.Database, router_id: str) -> list[dict[str, Any]]:
    return rows(db, "SELECT * FROM ports WHERE device_id = ? AND device_owner = ? ORDER BY created_at, id",
                [router_id, core.OWNER_ROUTER_INTERFACE])


def compute_port_at(db: sqlite_utils.Database, network_id: str, address: str) -> dict[str, Any] | None:
    """The server port holding ``address`` on ``network_id`` (the metadata service's guest)."""
    found = rows(db, "SELECT p.* FROM ip_allocations a JOIN ports p ON p.id = a.port_id "
                     "WHERE a.network_id = ? AND a.ip_address = ? AND p.device_owner LIKE 'compute:%'",
                 [network_id, address])
    return found[0] if found else None


def server_ports(db: sqlite_utils.Database, server_id: str) -> list[dict[str, Any]]:
    return rows(db, "SELECT * FROM ports WHERE device_id = ? AND device_owner LIKE 'compute:%' "
                    "ORDER BY device_order, created_at, id", [server_id])


# --- quotas ---------------------------------------------------------------------------------------
USAGE_SQL = {
    "network": "SELECT count(*) FROM networks WHERE project_id = ?",
    "subnet": "SELECT count(*) FROM subnets WHERE project_id = ?",
    "port": f"SELECT count(*) FROM ports WHERE project_id = ? AND device_owner != '{core.OWNER_DHCP}'",
    "router": "SELECT count(*) FROM routers WHERE project_id = ?",
    "floatingip": "SELECT count(*) FROM floatingips WHERE project_id = ?",
    "security_group": "SELECT count(*) FROM security_groups WHERE project_id = ?",
    "security_group_rule": "SELECT count(*) FROM security_group_rules WHERE project_id = ?",
}


def quota_limits(db: sqlite_utils.Database, project_id: str) -> dict[str, int]:
    limits = dict(core.DEFAULT_QUOTAS)
    for r in db.query("SELECT resource, hard_limit FROM network_quotas WHERE project_id = ?", [project_id]):
        limits[r["resource"]] = r["hard_limit"]
    return limits


def quota_usage(db: sqlite_utils.Database, project_id: str) -> dict[str, int]:
    return {k: db.execute(sql, [project_id]).fetchone()[0] for k, sql in USAGE_SQL.items()}


def projects_with_quotas(db: sqlite_utils.Database) -> list[str]:
    return [r["project_id"] for r in db.query("SELECT DISTINCT project_id FROM network_quotas ORDER BY project_id")]


def check_quota(db: sqlite_utils.Database, project_id: str, resource: str, wanted: int = 1) -> None:
    """OverQuota as Neutron says it (409), decided from the tables so every node agrees."""
    if not project_id:
        return
    limit = quota_limits(db, project_id)[resource]
    if limit < 0:
        return
    used = db.execute(USAGE_SQL[resource], [project_id]).fetchone()[0]
    if used + wanted > limit:
        raise Conflict(f"Quota exceeded for resources: ['{resource}'].")


# --- for compute and the metadata service ---------------------------------------------------------
def server_addresses(db: sqlite_utils.Database, server_ids: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Nova's ``addresses`` of each server: network name → fixed addresses, then their floating ones."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in server_ids}
    for chunk in _chunks(list(server_ids)):
        marks = ",".join("?" * len(chunk))
        ports = rows(db, f"SELECT p.*, n.name AS network_name FROM ports p JOIN networks n ON n.id = p.network_id "
                         f"WHERE p.device_id IN ({marks}) AND p.device_owner LIKE 'compute:%' "
                         "ORDER BY p.device_order, p.created_at, p.id", chunk)
        port_ids = [p["id"] for p in ports]
        floating: dict[tuple[str, str], list[str]] = {}
        for sub in _chunks(port_ids):
            for f in db.query(f"SELECT port_id, fixed_ip_address, floating_ip_address FROM floatingips "
                              f"WHERE port_id IN ({','.join('?' * len(sub))}) ORDER BY floating_ip_address", sub):
                floating.setdefault((f["port_id"], f["fixed_ip_address"]), []).append(f["floating_ip_address"])
        for port in ports:
            entries = out[port["device_id"]].setdefault(port["network_name"], [])
            fixed = [{"addr": ip["ip_address"], "version": ipaddress.ip_address(ip["ip_address"]).version,
                      "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]}
                     for ip in port["fixed_ips"]]
            entries.extend(fixed)
            for ip in port["fixed_ips"]:
                for address in floating.get((port["id"], ip["ip_address"]), []):
                    entries.append({"addr": address, "version": 4, "OS-EXT-IPS:type": "floating",
                                    "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
    return out


def network_data(db: sqlite_utils.Database, server_id: str) -> dict[str, Any]:
    """OpenStack's network_data.json for a server's ports (static addresses, as Nova writes it)."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    for port in server_ports(db, server_id):
        network = must_get(db, "networks", port["network_id"])
        link_id = "tap" + port["id"][:11]
        links.append({"id": link_id, "vif_id": port["id"], "type": "bridge",
                      "ethernet_mac_address": port["mac_address"], "mtu": network["mtu"]})
        for ip in port["fixed_ips"]:
            subnet = get(db, "subnets", ip["subnet_id"])
            if subnet is None:
                continue
            net = ipaddress.ip_network(subnet["cidr"])
            dns = [{"type": "dns", "address": a} for a in subnet["dns_nameservers"]]
            routes = []
            if subnet["gateway_ip"]:
                routes.append({"network": "0.0.0.0" if net.version == 4 else "::",
                               "netmask": "0.0.0.0" if net.version == 4 else "::",
                               "gateway": subnet["gateway_ip"]})
            for route in subnet["host_routes"]:
                dest = ipaddress.ip_network(route["destination"])
                routes.append({"network": str(dest.network_address), "netmask": str(dest.netmask),
                               "gateway": route["nexthop"]})
            entry = {"id": f"network{len(networks)}", "type": f"ipv{net.version}", "link": link_id,
                     "ip_address": ip["ip_address"], "netmask": str(net.netmask), "routes": routes,
                     "network_id": network["id"], "services": dns}
            networks.append(entry)
            services.extend(s for s in dns if s not in services)
    return {"links": links, "networks": networks, "services": services}


def external_networks(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return rows(db, "SELECT * FROM networks WHERE external = 1 ORDER BY is_default DESC, created_at, id")


STORE = StoreSpec("network", MIGRATIONS, c, ("cloudbox.network.apply_l2", "cloudbox.network.apply_l3",
                                              "cloudbox.network.apply_secgroups", "cloudbox.network.apply_pools",
                                              "cloudbox.network.apply_metering"))

"""Compute tables: migrations, apply(db, command), and the queries of the service."""

from __future__ import annotations

import json
from typing import Any, Callable

import sqlite_utils

from cloudbox.compute import commands as c
from cloudbox.compute import core
from cloudbox.compute.models import ServerQuery
from cloudbox.errors import BadRequest, Conflict, NotFound, OverQuota
from cloudbox.state.migrations import Handler, StoreSpec

# (db, server ids) -> id -> network name -> addresses ({"addr", "version", ...}): network's reader
AddressReader = Callable[[sqlite_utils.Database, list[str]], dict[str, dict[str, list[dict[str, Any]]]]]

MIGRATIONS = [
    """
    CREATE TABLE flavors (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, vcpus INTEGER NOT NULL, ram INTEGER NOT NULL,
        disk INTEGER NOT NULL, ephemeral INTEGER NOT NULL DEFAULT 0, swap INTEGER NOT NULL DEFAULT 0,
        rxtx_factor REAL NOT NULL DEFAULT 1.0, is_public INTEGER NOT NULL DEFAULT 1,
        description TEXT, extra_specs TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
    CREATE TABLE flavor_access (
        flavor_id TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE, project_id TEXT NOT NULL,
        PRIMARY KEY (flavor_id, project_id));
    CREATE TABLE keypairs (
        user_id TEXT NOT NULL, name TEXT NOT NULL, public_key TEXT NOT NULL, fingerprint TEXT NOT NULL,
        type TEXT NOT NULL DEFAULT 'ssh', created_at TEXT NOT NULL, PRIMARY KEY (user_id, name));
    CREATE TABLE compute_hosts (
        name TEXT PRIMARY KEY, node_id TEXT NOT NULL, host_ip TEXT NOT NULL, vcpus INTEGER NOT NULL,
        memory_mb INTEGER NOT NULL, disk_gb INTEGER NOT NULL, hypervisor_type TEXT NOT NULL,
        hypervisor_version INTEGER NOT NULL, accel TEXT NOT NULL, accel_detail TEXT NOT NULL DEFAULT '',
        availability_zone TEXT NOT NULL DEFAULT 'nova', enabled INTEGER NOT NULL DEFAULT 1,
        updated_at TEXT NOT NULL);
    CREATE TABLE server_groups (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, policy TEXT NOT NULL, project_id TEXT NOT NULL,
        user_id TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE servers (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
        flavor TEXT NOT NULL, image_id TEXT, key_name TEXT, key_data TEXT, user_data TEXT,
        host TEXT, availability_zone TEXT, status TEXT NOT NULL, vm_state TEXT NOT NULL,
        task_state TEXT, power_state INTEGER NOT NULL DEFAULT 0, fault TEXT,
        metadata TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '[]',
        config_drive INTEGER NOT NULL DEFAULT 0, hostname TEXT NOT NULL, description TEXT,
        locked INTEGER NOT NULL DEFAULT 0, server_group_id TEXT, networks TEXT NOT NULL DEFAULT '"auto"',
        ports TEXT NOT NULL DEFAULT '[]', image_properties TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        launched_at TEXT);
    CREATE INDEX servers_project ON servers (project_id);
    CREATE INDEX servers_host ON servers (host);
    CREATE TABLE quotas (
        project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit INTEGER NOT NULL,
        PRIMARY KEY (project_id, resource));
    """,
    """
    CREATE TABLE aggregates (
        id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, name TEXT NOT NULL UNIQUE,
        availability_zone TEXT, metadata TEXT NOT NULL DEFAULT '{}', hosts TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL, updated_at TEXT);
    """,
    """
    ALTER TABLE servers ADD COLUMN security_groups TEXT NOT NULL DEFAULT '["default"]';
    """,
    """
    ALTER TABLE servers ADD COLUMN locked_by TEXT;
    ALTER TABLE servers ADD COLUMN locked_reason TEXT;
    """,
    """
    ALTER TABLE servers ADD COLUMN access_ipv4 TEXT NOT NULL DEFAULT '';
    ALTER TABLE servers ADD COLUMN access_ipv6 TEXT NOT NULL DEFAULT '';
    """,
    # 6: instance actions (kept after their server is deleted, as Nova lists them from 2.21) and
    # the password a guest posts to the metadata service (os-server-password).
    """
    CREATE TABLE instance_actions (
        server_id TEXT NOT NULL, request_id TEXT NOT NULL, action TEXT NOT NULL, project_id TEXT NOT NULL,
        user_id TEXT NOT NULL, start_time TEXT NOT NULL, updated_at TEXT, message TEXT,
        PRIMARY KEY (server_id, request_id));
    CREATE TABLE instance_action_events (
        server_id TEXT NOT NULL, request_id TEXT NOT NULL, event TEXT NOT NULL, start_time TEXT NOT NULL,
        finish_time TEXT, result TEXT, host TEXT, details TEXT, PRIMARY KEY (server_id, request_id, event));
    ALTER TABLE servers ADD COLUMN password TEXT NOT NULL DEFAULT '';
    """,
    # 7: what a lifecycle action keeps while it lasts (the old flavor of a resize, the image of a
    # shelved server, the rescue image), and the migrations resize and migrate record (Nova's
    # os-migrations; kept after their server, as Nova keeps them).
    """
    ALTER TABLE servers ADD COLUMN lifecycle TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE migrations (
        id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, server_id TEXT NOT NULL, project_id TEXT NOT NULL,
        user_id TEXT NOT NULL, migration_type TEXT NOT NULL, status TEXT NOT NULL, source_compute TEXT,
        dest_compute TEXT, dest_host TEXT, old_instance_type_id INTEGER, new_instance_type_id INTEGER,
        created_at TEXT NOT NULL, updated_at TEXT);
    CREATE INDEX migrations_server ON migrations (server_id);
    """,
    # 8: Nova's block device mappings: the volumes of a server (attached ones, and for a server
    # booted from a volume its root), with the volume service's attachment and connection_info.
    # status: attaching (reserved at the volume service, not yet in the guest), attached, detaching.
    """
    CREATE TABLE block_device_mappings (
        id TEXT PRIMARY KEY, server_id TEXT NOT NULL, project_id TEXT NOT NULL, volume_id TEXT,
        attachment_id TEXT, source_type TEXT NOT NULL, destination_type TEXT NOT NULL, boot_index INTEGER,
        device_name TEXT, device_type TEXT NOT NULL DEFAULT 'disk', disk_bus TEXT NOT NULL DEFAULT 'virtio',
        volume_size INTEGER, image_id TEXT, snapshot_id TEXT, tag TEXT,
        delete_on_termination INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL,
        connection_info TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, updated_at TEXT);
    CREATE INDEX block_device_mappings_server ON block_device_mappings (server_id);
    CREATE INDEX block_device_mappings_volume ON block_device_mappings (volume_id);
    """,
]

JSON_COLUMNS = {"flavor", "extra_specs", "fault", "metadata", "tags", "ports", "networks", "image_properties",
                "security_groups", "lifecycle",
                "hosts", "connection_info"}
BOOL_COLUMNS = {"is_public", "config_drive", "locked", "enabled", "delete_on_termination"}
CURRENT_QUOTAS = ("instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups",
                  "server_group_members")
# Nova's older quotas, shown and settable until 2.35 (network) and 2.56 (injected files), with Nova's
# defaults; Nova stopped enforcing them (the network service has its own quotas, files are not injected).
NETWORK_QUOTAS = {"floating_ips": 10, "fixed_ips": -1, "security_groups": 10, "security_group_rules": 20}
INJECTED_QUOTAS = {"injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255}
QUOTA_RESOURCES = CURRENT_QUOTAS + tuple(NETWORK_QUOTAS) + tuple(INJECTED_QUOTAS)


def quota_resources(version: tuple[int, int]) -> tuple[str, ...]:
    """The quotas Nova shows at ``version``."""
    return (CURRENT_QUOTAS + (tuple(NETWORK_QUOTAS) if version < (2, 36) else ())
            + (tuple(INJECTED_QUOTAS) if version < (2, 57) else ()))


def decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    for key in JSON_COLUMNS & out.keys():
        if out[key] is not None:
            out[key] = json.loads(out[key])
    for key in BOOL_COLUMNS & out.keys():
        out[key] = bool(out[key])
    return out


def encode(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if key in JSON_COLUMNS and value is not None and (key == "networks" or not isinstance(value, str)):
            value = json.dumps(value, sort_keys=True)
        elif key in BOOL_COLUMNS and isinstance(value, bool):
            value = int(value)
        out[key] = value
    return out


def one(db: sqlite_utils.Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    rows = list(db.query(sql, params))
    return decode(rows[0]) if rows else None


def get_server(db: sqlite_utils.Database, server_id: str) -> dict[str, Any] | None:
    return one(db, "SELECT * FROM servers WHERE id = ?", [server_id])


def must_server(db: sqlite_utils.Database, server_id: str) -> dict[str, Any]:
    row = get_server(db, server_id)
    if row is None:
        raise NotFound(f"Instance {server_id} could not be found.")
    return row


def get_flavor(db: sqlite_utils.Database, flavor_id: str) -> dict[str, Any] | None:
    return one(db, "SELECT * FROM flavors WHERE id = ?", [flavor_id])


def project_usage(db: sqlite_utils.Database, project_id: str) -> dict[str, int]:
    rows = [decode(r) for r in db.query("SELECT flavor FROM servers WHERE project_id = ?", [project_id])]
    return {
        "instances": len(rows),
        "cores": sum(r["flavor"]["vcpus"] for r in rows),  # type: ignore[index]
        "ram": sum(r["flavor"]["ram"] for r in rows),  # type: ignore[index]
    }


def host_usage(db: sqlite_utils.Database, host: str) -> dict[str, int]:
    rows = [decode(r) for r in db.query("SELECT flavor FROM servers WHERE host = ?", [host])]
    return {
        "servers": len(rows),
        "vcpus": sum(r["flavor"]["vcpus"] for r in rows),  # type: ignore[index]
        "ram_mb": sum(r["flavor"]["ram"] for r in rows),  # type: ignore[index]
        "disk_gb": sum(r["flavor"]["disk"] + r["flavor"].get("ephemeral", 0) for r in rows),  # type: ignore[index]
    }


def host_zone(db: sqlite_utils.Database, host: dict[str, Any]) -> str:
    """A host's availability zone: its aggregate's, when an aggregate names one, else its own."""
    for r in db.query("SELECT availability_zone, hosts FROM aggregates WHERE availability_zone IS NOT NULL ORDER BY id"):
        if host["name"] in json.loads(r["hosts"]):
            return r["availability_zone"]
    return host["availability_zone"]


QUOTA_CLASS = "quota-class:"  # quota classes' rows in quotas (no project id has a colon)
DEFAULT_CLASS = QUOTA_CLASS + "default"


def quota_limits(db: sqlite_utils.Database, project_id: str, defaults: dict[str, int]) -> dict[str, int]:
    """A project's limits: the settings' defaults, then the default quota class's, then its own."""
    limits = dict(defaults)
    for owner in (DEFAULT_CLASS, project_id):
        for r in db.query("SELECT resource, hard_limit FROM quotas WHERE project_id = ?", [owner]):
            limits[r["resource"]] = r["hard_limit"]
    return limits


def class_limits(db: sqlite_utils.Database, name: str, defaults: dict[str, int]) -> dict[str, int]:
    """A quota class's limits: the settings' defaults, then what was set for the class."""
    limits = dict(defaults)
    for r in db.query("SELECT resource, hard_limit FROM quotas WHERE project_id = ?", [QUOTA_CLASS + name]):
        limits[r["resource"]] = r["hard_limit"]
    return limits


def check_quota(usage: dict[str, int], wanted: dict[str, int], limits: dict[str, int]) -> None:
    for resource, amount in wanted.items():
        limit = limits.get(resource, -1)
        if limit >= 0 and usage.get(resource, 0) + amount > limit:
            raise OverQuota(
                f"Quota exceeded for {resource}: Requested {amount}, but already used "
                f"{usage.get(resource, 0)} of {limit} {resource}"
            )


# --- queries of the service -------------------------------------------------
def count(db: sqlite_utils.Database, sql: str, params: list[Any]) -> int:
    return int(db.execute(sql, params).fetchone()[0])


def all_servers(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query("SELECT * FROM servers")]  # type: ignore[misc]


def servers_of(db: sqlite_utils.Database, project_id: str | None) -> list[dict[str, Any]]:
    """The servers of one project, or of every project (None)."""
    if project_id is None:
        return all_servers(db)
    return [decode(r) for r in db.query("SELECT * FROM servers WHERE project_id = ?", [project_id])]  # type: ignore[misc]


def list_servers(db: sqlite_utils.Database, query: ServerQuery, limit: int,
                 addresses: AddressReader | None = None) -> list[dict[str, Any]]:
    """One page of servers, newest first, plus the first server of the next page when there is one.

    Columns filter in SQL; the name, flavor and tag filters (JSON columns, regular expressions)
    are applied to batches, so a page costs the same however many rows it skips.  The address
    filters need ``addresses`` (the network service's reader of servers' addresses).
    """
    clauses, params = [], []
    if query.project_id is not None:
        clauses.append("project_id = ?")
        params.append(query.project_id)
    if query.marker:
        mark = get_server(db, query.marker)
        if mark is None:
            raise BadRequest(f"marker [{query.marker[:80]}] not found")
        clauses.append("(created_at, id) < (?, ?)")
        params += [mark["created_at"], mark["id"]]
    for column, value in (("status", query.status), ("image_id", query.image_id), ("host", query.host),
                          ("availability_zone", query.availability_zone)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.changes_since:
        clauses.append("updated_at >= ?")
        params.append(query.changes_since)
    where = " AND ".join(clauses) or "1"
    name_match = core.regex_matcher(query.name, "name")
    ip_match = [(4, core.regex_matcher(query.ip, "ip")), (6, core.regex_matcher(query.ip6, "ip6"))]
    ip_match = [(version, match) for version, match in ip_match if match]
    out: list[dict[str, Any]] = []
    offset = 0
    while len(out) <= limit:
        batch = [decode(r) for r in db.query(
            f"SELECT * FROM servers WHERE {where} ORDER BY created_at DESC, id DESC LIMIT 200 OFFSET ?",
            params + [offset])]
        if not batch:
            break
        offset += len(batch)
        found = addresses(db, [r["id"] for r in batch]) if ip_match and addresses else {}
        for row in batch:
            assert row is not None
            tags = set(row["tags"])
            if name_match and not name_match(row["name"]):
                continue
            if ip_match and not all(any(a["version"] == version and match(a["addr"])
                                        for net in found.get(row["id"], {}).values() for a in net)
                                    for version, match in ip_match):
                continue
            if query.flavor_id and row["flavor"]["id"] != query.flavor_id:
                continue
            if query.tags and not set(query.tags) <= tags:
                continue
            if query.tags_any and not set(query.tags_any) & tags:
                continue
            if query.not_tags and set(query.not_tags) <= tags:
                continue
            out.append(row)
        if len(batch) < 200:
            break  # the last batch: no need to ask for the next, empty one
    return out[: limit + 1]


def count_flavors(db: sqlite_utils.Database) -> int:
    return count(db, "SELECT count(*) FROM flavors", [])


def flavor_access_granted(db: sqlite_utils.Database, flavor_id: str, project_id: str | None) -> bool:
    return bool(list(db.query("SELECT 1 FROM flavor_access WHERE flavor_id = ? AND project_id = ?",
                              [flavor_id, project_id])))


def list_flavors(db: sqlite_utils.Database, *, min_ram: int, min_disk: int, visibility: str,
                 project_id: str | None, marker: str | None, limit: int) -> list[dict[str, Any]]:
    """Flavors by id; ``visibility`` "all", "public", "private", or "project" (public ones and
    those shared with ``project_id``).  Fetches ``limit`` + 1 rows: the extra one means more."""
    clauses, params = ["ram >= ?", "disk >= ?"], [min_ram, min_disk]
    if visibility == "public":
        clauses.append("is_public = 1")
    elif visibility == "private":
        clauses.append("is_public = 0")
    elif visibility == "project":
        clauses.append("(is_public = 1 OR id IN (SELECT flavor_id FROM flavor_access WHERE project_id = ?))")
        params.append(project_id)
    if marker:
        clauses.append("id > ?")
        params.append(marker)
    rows = db.query(f"SELECT * FROM flavors WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?", params + [limit + 1])
    return [decode(r) for r in rows]  # type: ignore[misc]


def flavor_access(db: sqlite_utils.Database, flavor_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query("SELECT * FROM flavor_access WHERE flavor_id = ? ORDER BY project_id",
                                      [flavor_id])]


def get_keypair(db: sqlite_utils.Database, user_id: str, name: str) -> dict[str, Any] | None:
    return one(db, "SELECT * FROM keypairs WHERE user_id = ? AND name = ?", [user_id, name])


def list_keypairs(db: sqlite_utils.Database, user_id: str, marker: str | None, limit: int) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query("SELECT * FROM keypairs WHERE user_id = ? AND name > ? ORDER BY name LIMIT ?",
                                      [user_id, marker or "", limit + 1])]


def count_keypairs(db: sqlite_utils.Database, user_id: str) -> int:
    return count(db, "SELECT count(*) FROM keypairs WHERE user_id = ?", [user_id])


def get_server_group(db: sqlite_utils.Database, group_id: str) -> dict[str, Any] | None:
    return one(db, "SELECT * FROM server_groups WHERE id = ?", [group_id])


def list_server_groups(db: sqlite_utils.Database, project_id: str | None, marker: str | None,
                       limit: int) -> list[dict[str, Any]]:
    """Server groups by id, of one project or of all (None); ``limit`` + 1 rows."""
    return [dict(r) for r in db.query(
        "SELECT * FROM server_groups WHERE (? OR project_id = ?) AND id > ? ORDER BY id LIMIT ?",
        [int(project_id is None), project_id, marker or "", limit + 1])]


def count_server_groups(db: sqlite_utils.Database, project_id: str) -> int:
    return count(db, "SELECT count(*) FROM server_groups WHERE project_id = ?", [project_id])


def group_members(db: sqlite_utils.Database, group_id: str) -> list[str]:
    return [r["id"] for r in db.query("SELECT id FROM servers WHERE server_group_id = ? ORDER BY id", [group_id])]


def group_hosts(db: sqlite_utils.Database, group_id: str, except_server: str) -> list[str]:
    """Hosts that already run members of a server group (for its affinity rules)."""
    return [r["host"] for r in db.query(
        "SELECT DISTINCT host FROM servers WHERE server_group_id = ? AND host IS NOT NULL AND id != ?",
        [group_id, except_server])]


def compute_hosts(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every compute host by name, with its effective availability zone and its usage."""
    hosts = [decode(r) for r in db.query("SELECT * FROM compute_hosts ORDER BY name")]
    return [{**h, "availability_zone": host_zone(db, h), "usage": host_usage(db, h["name"])}  # type: ignore[index]
            for h in hosts if h is not None]


def zones(db: sqlite_utils.Database) -> set[str]:
    return {host_zone(db, dict(r)) for r in db.query("SELECT name, availability_zone FROM compute_hosts")}


def get_aggregate(db: sqlite_utils.Database, aggregate_id: int) -> dict[str, Any] | None:
    return one(db, "SELECT * FROM aggregates WHERE id = ?", [aggregate_id])


def list_aggregates(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query("SELECT * FROM aggregates ORDER BY id")]  # type: ignore[misc]


# --- apply ------------------------------------------------------------------
def _apply_create_server(db: sqlite_utils.Database, cmd: c.CreateServer) -> dict[str, Any]:
    row = cmd.row
    if get_server(db, row["id"]) is not None:
        raise Conflict(f"Server {row['id']} exists already.")
    flavor = row["flavor"]
    check_quota(
        project_usage(db, row["project_id"]),
        {"instances": 1, "cores": flavor["vcpus"], "ram": flavor["ram"]},
        cmd.quota,
    )
    if row.get("server_group_id"):
        group = one(db, "SELECT * FROM server_groups WHERE id = ?", [row["server_group_id"]])
        if group is None:
            raise BadRequest(f"Server group {row['server_group_id']} not found.")
    db["servers"].insert(encode(row))
    return must_server(db, row["id"])


def _apply_create_servers(db: sqlite_utils.Database, cmd: c.CreateServers) -> list[dict[str, Any]]:
    """The servers of one request: as many as the quota leaves room for, or none below min_count."""
    rows = list(cmd.rows)
    for row in rows:
        if get_server(db, row["id"]) is not None:
            raise Conflict(f"Server {row['id']} exists already.")
    first = rows[0]
    made = core.servers_within_quota(project_usage(db, first["project_id"]), first["flavor"], cmd.quota,
                                     cmd.min_count, len(rows))
    if first.get("server_group_id") and get_server_group(db, first["server_group_id"]) is None:
        raise BadRequest(f"Server group {first['server_group_id']} not found.")
    for row in rows[:made]:
        db["servers"].insert(encode(row))
    return [must_server(db, row["id"]) for row in rows[:made]]


def _apply_claim(db: sqlite_utils.Database, cmd: c.ClaimHost) -> dict[str, Any]:
    server = must_server(db, cmd.server_id)
    if server["host"] is not None:
        raise Conflict(f"Server {cmd.server_id} is already placed on {server['host']}.")
    if one(db, "SELECT name FROM compute_hosts WHERE name = ? AND enabled = 1", [cmd.host]) is None:
        raise Conflict(f"Host {cmd.host} is not an enabled compute host.")
    usage = host_usage(db, cmd.host)
    flavor = server["flavor"]
    if (usage["vcpus"] + flavor["vcpus"] > cmd.limit_vcpus
            or usage["ram_mb"] + flavor["ram"] > cmd.limit_ram_mb
            or usage["disk_gb"] + flavor["disk"] + flavor.get("ephemeral", 0) > cmd.limit_disk_gb):
        raise Conflict(f"Host {cmd.host} has no room left for server {cmd.server_id}.")
    if server["server_group_id"]:
        group = one(db, "SELECT * FROM server_groups WHERE id = ?", [server["server_group_id"]])
        peers = [r["host"] for r in db.query(
            "SELECT host FROM servers WHERE server_group_id = ? AND id != ? AND host IS NOT NULL",
            [server["server_group_id"], server["id"]])]
        if group and group["policy"] in ("anti-affinity", "soft-anti-affinity") and cmd.host in peers \
                and group["policy"] == "anti-affinity":
            raise Conflict(f"Host {cmd.host} already runs a member of anti-affinity group {group['id']}.")
        if group and group["policy"] == "affinity" and peers and cmd.host not in peers:
            raise Conflict(f"Affinity group {group['id']} lives on {peers[0]}, not {cmd.host}.")
    changes: dict[str, Any] = {"host": cmd.host, "updated_at": cmd.at, "task_state": "spawning"}
    db["servers"].update(cmd.server_id, changes)
    return must_server(db, cmd.server_id)


def _apply_update_server(db: sqlite_utils.Database, cmd: c.UpdateServer) -> dict[str, Any]:
    server = must_server(db, cmd.id)
    if cmd.expect_task_states is not None and server["task_state"] not in cmd.expect_task_states:
        raise Conflict(
            f"Cannot change instance {cmd.id} while it is in task_state {server['task_state']}."
        )
    changes = dict(cmd.changes)
    if "metadata_merge" in changes:
        merged = {**server["metadata"], **changes.pop("metadata_merge")}
        changes["metadata"] = merged
    if "metadata_delete" in changes:
        key = changes.pop("metadata_delete")
        if key not in server["metadata"]:
            raise NotFound(f"Metadata item {key} was not found.")
        changes["metadata"] = {k: v for k, v in server["metadata"].items() if k != key}
    if changes:
        db["servers"].update(cmd.id, encode(changes))
    return must_server(db, cmd.id)


def _apply_delete_server(db: sqlite_utils.Database, cmd: c.DeleteServer) -> Any:
    db.execute("DELETE FROM servers WHERE id = ?", [cmd.id])
    db.execute("DELETE FROM block_device_mappings WHERE server_id = ?", [cmd.id])  # its volumes were detached
    return None


def _apply_report_host(db: sqlite_utils.Database, cmd: c.ReportHost) -> Any:
    db["compute_hosts"].upsert(encode(cmd.row), pk="name")
    return None


def _apply_create_flavor(db: sqlite_utils.Database, cmd: c.CreateFlavor) -> Any:
    if get_flavor(db, cmd.row["id"]) is not None:
        raise Conflict(f"Flavor with ID {cmd.row['id']} already exists.")
    if one(db, "SELECT id FROM flavors WHERE name = ?", [cmd.row["name"]]):
        raise Conflict(f"Flavor with name {cmd.row['name']} already exists.")
    db["flavors"].insert(encode(cmd.row))
    return get_flavor(db, cmd.row["id"])


def _apply_delete_flavor(db: sqlite_utils.Database, cmd: c.DeleteFlavor) -> Any:
    if db.execute("DELETE FROM flavors WHERE id = ?", [cmd.id]).rowcount == 0:
        raise NotFound(f"Flavor {cmd.id} could not be found.")
    return None


def _apply_describe_flavor(db: sqlite_utils.Database, cmd: c.DescribeFlavor) -> Any:
    if get_flavor(db, cmd.id) is None:
        raise NotFound(f"Flavor {cmd.id} could not be found.")
    db["flavors"].update(cmd.id, {"description": cmd.description})
    return get_flavor(db, cmd.id)


def _apply_set_flavor_extra_specs(db: sqlite_utils.Database, cmd: c.SetFlavorExtraSpecs) -> Any:
    if get_flavor(db, cmd.id) is None:
        raise NotFound(f"Flavor {cmd.id} could not be found.")
    db["flavors"].update(cmd.id, {"extra_specs": json.dumps(cmd.extra_specs, sort_keys=True)})
    return get_flavor(db, cmd.id)


def _apply_flavor_access(db: sqlite_utils.Database, cmd: c.FlavorAccess) -> Any:
    flavor = get_flavor(db, cmd.flavor_id)
    if flavor is None:
        raise NotFound(f"Flavor {cmd.flavor_id} could not be found.")
    if flavor["is_public"]:
        raise Conflict("Can not add access to a public flavor.")
    if cmd.grant:
        if list(db.query("SELECT 1 FROM flavor_access WHERE flavor_id = ? AND project_id = ?",
                         [cmd.flavor_id, cmd.project_id])):
            raise Conflict(f"Flavor access already exists for flavor {cmd.flavor_id} and project {cmd.project_id}.")
        db["flavor_access"].insert({"flavor_id": cmd.flavor_id, "project_id": cmd.project_id})
    elif db.execute("DELETE FROM flavor_access WHERE flavor_id = ? AND project_id = ?",
                    [cmd.flavor_id, cmd.project_id]).rowcount == 0:
        raise NotFound(f"Flavor access not found for flavor {cmd.flavor_id} and project {cmd.project_id}.")
    return None


def _apply_create_keypair(db: sqlite_utils.Database, cmd: c.CreateKeypair) -> Any:
    if one(db, "SELECT name FROM keypairs WHERE user_id = ? AND name = ?", [cmd.row["user_id"], cmd.row["name"]]):
        raise Conflict(f"Key pair '{cmd.row['name']}' already exists.")
    count = db.execute("SELECT count(*) FROM keypairs WHERE user_id = ?", [cmd.row["user_id"]]).fetchone()[0]
    check_quota({"key_pairs": count}, {"key_pairs": 1}, {"key_pairs": cmd.limit})
    db["keypairs"].insert(cmd.row)
    return None


def _apply_delete_keypair(db: sqlite_utils.Database, cmd: c.DeleteKeypair) -> Any:
    if db.execute("DELETE FROM keypairs WHERE user_id = ? AND name = ?", [cmd.user_id, cmd.name]).rowcount == 0:
        raise NotFound(f"Keypair {cmd.name} not found for user {cmd.user_id}.")
    return None


def _apply_create_server_group(db: sqlite_utils.Database, cmd: c.CreateServerGroup) -> Any:
    count = db.execute("SELECT count(*) FROM server_groups WHERE project_id = ?",
                       [cmd.row["project_id"]]).fetchone()[0]
    check_quota({"server_groups": count}, {"server_groups": 1}, {"server_groups": cmd.limit})
    db["server_groups"].insert(cmd.row)
    return None


def _apply_delete_server_group(db: sqlite_utils.Database, cmd: c.DeleteServerGroup) -> Any:
    if db.execute("DELETE FROM server_groups WHERE id = ?", [cmd.id]).rowcount == 0:
        raise NotFound(f"Instance group {cmd.id} could not be found.")
    db.execute("UPDATE servers SET server_group_id = NULL WHERE server_group_id = ?", [cmd.id])
    return None


def _apply_create_aggregate(db: sqlite_utils.Database, cmd: c.CreateAggregate) -> Any:
    if one(db, "SELECT id FROM aggregates WHERE name = ?", [cmd.row["name"]]):
        raise Conflict(f"Aggregate {cmd.row['name']} already exists.")
    next_id = db.execute("SELECT coalesce(max(id), 0) + 1 FROM aggregates").fetchone()[0]
    db["aggregates"].insert(encode({**cmd.row, "id": next_id}))
    return one(db, "SELECT * FROM aggregates WHERE id = ?", [next_id])


def _apply_update_aggregate(db: sqlite_utils.Database, cmd: c.UpdateAggregate) -> Any:
    agg = one(db, "SELECT * FROM aggregates WHERE id = ?", [cmd.id])
    if agg is None:
        raise NotFound(f"Aggregate {cmd.id} could not be found.")
    changes = dict(cmd.changes)
    if "name" in changes and one(db, "SELECT id FROM aggregates WHERE name = ? AND id != ?", [changes["name"], cmd.id]):
        raise Conflict(f"Aggregate {changes['name']} already exists.")
    if "add_host" in changes:
        host = changes.pop("add_host")
        if one(db, "SELECT name FROM compute_hosts WHERE name = ?", [host]) is None:
            raise NotFound(f"Compute host {host} could not be found.")
        if host in agg["hosts"]:
            raise Conflict(f"Aggregate {cmd.id} already has host {host}.")
        changes["hosts"] = agg["hosts"] + [host]
    if "remove_host" in changes:
        host = changes.pop("remove_host")
        if host not in agg["hosts"]:
            raise NotFound(f"Cannot remove host {host} from aggregate {cmd.id}: it is not a member.")
        changes["hosts"] = [h for h in agg["hosts"] if h != host]
    if "metadata_merge" in changes:
        merged = {**agg["metadata"], **changes.pop("metadata_merge")}
        changes["metadata"] = {k: v for k, v in merged.items() if v is not None}
    db["aggregates"].update(cmd.id, encode(changes))
    return one(db, "SELECT * FROM aggregates WHERE id = ?", [cmd.id])


def _apply_delete_aggregate(db: sqlite_utils.Database, cmd: c.DeleteAggregate) -> Any:
    agg = one(db, "SELECT * FROM aggregates WHERE id = ?", [cmd.id])
    if agg is None:
        raise NotFound(f"Aggregate {cmd.id} could not be found.")
    if agg["hosts"]:
        raise BadRequest(f"Cannot delete aggregate {cmd.id}: it still has hosts.")
    db.execute("DELETE FROM aggregates WHERE id = ?", [cmd.id])
    return None


def _apply_set_quota(db: sqlite_utils.Database, cmd: c.SetQuota) -> Any:
    for resource, limit in sorted(cmd.limits.items()):
        if resource not in QUOTA_RESOURCES:
            raise BadRequest(f"Unknown quota resource {resource}.")
        db["quotas"].upsert({"project_id": cmd.project_id, "resource": resource, "hard_limit": limit},
                            pk=("project_id", "resource"))
    return None


HANDLERS: dict[type, Handler] = {
    c.CreateServer: _apply_create_server,
    c.CreateServers: _apply_create_servers,
    c.ClaimHost: _apply_claim,
    c.UpdateServer: _apply_update_server,
    c.DeleteServer: _apply_delete_server,
    c.ReportHost: _apply_report_host,
    c.CreateFlavor: _apply_create_flavor,
    c.DeleteFlavor: _apply_delete_flavor,
    c.DescribeFlavor: _apply_describe_flavor,
    c.SetFlavorExtraSpecs: _apply_set_flavor_extra_specs,
    c.FlavorAccess: _apply_flavor_access,
    c.CreateKeypair: _apply_create_keypair,
    c.DeleteKeypair: _apply_delete_keypair,
    c.CreateServerGroup: _apply_create_server_group,
    c.DeleteServerGroup: _apply_delete_server_group,
    c.CreateAggregate: _apply_create_aggregate,
    c.UpdateAggregate: _apply_update_aggregate,
    c.DeleteAggregate: _apply_delete_aggregate,
    c.SetQuota: _apply_set_quota,
}


STORE = StoreSpec("compute", MIGRATIONS, c, (__name__, "cloudbox.compute.apply_records",
                                              "cloudbox.compute.apply_lifecycle",
                                              "cloudbox.compute.apply_volumes"))


# --- asked by the cluster service (through ComputeService) --------------------------------------
def server_ids_on_host(db: sqlite_utils.Database, host: str) -> list[str]:
    """Ids of the servers placed on compute host ``host``."""
    return [r["id"] for r in db.query("SELECT id FROM servers WHERE host = ? ORDER BY id", [host])]


def host_node_id(db: sqlite_utils.Database, host: str) -> str | None:
    """Id of the node that runs compute host ``host`` (None: no such host)."""
    row = one(db, "SELECT node_id FROM compute_hosts WHERE name = ?", [host])
    return row["node_id"] if row else None

"""apply() of subnet pools and address scopes, and the CIDR a subnet takes from its pool.

The checks that depend on state are here, so every node agrees: a pool's prefixes only grow and
never overlap another pool's in the same address scope, one default pool per IP version, a
pool or scope in use is not deleted, and a subnet's block is the lowest free one of its size.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict
from cloudbox.network import commands as c
from cloudbox.network import core, core_pools
from cloudbox.network.store import get, insert, must_get, rows, update
from cloudbox.state.migrations import Handler


# --- subnets from a pool -------------------------------------------------------------------------------
def pool_subnet(db: sqlite_utils.Database, row: dict[str, Any], pool_request: dict[str, Any]) -> dict[str, Any]:
    """The subnet row with its CIDR from the pool: the one asked for if it is free there, else the
    lowest free block of the asked size; the pool's quota of addresses per project holds."""
    pool = must_get(db, "subnetpools", pool_request["subnetpool_id"])
    request = pool_request.get("request") or {}
    version = row.get("ip_version") or request.get("ip_version") or pool["ip_version"]
    if version != pool["ip_version"]:
        raise BadRequest(f"Cannot allocate an IPv{version} subnet from IPv{pool['ip_version']} subnet pool "
                         f"{pool['id']}.")
    core.refuse_ipv6(version)
    allocated = [r["cidr"] for r in db.query("SELECT cidr FROM subnets WHERE subnetpool_id = ?", [pool["id"]])]
    if row.get("cidr"):
        net = ipaddress.ip_network(row["cidr"])
        if not core_pools.within(row["cidr"], pool["prefixes"]):
            raise BadRequest(f"Cidr {net} is not within the prefixes of subnet pool {pool['id']}.")
        if not pool["min_prefixlen"] <= net.prefixlen <= pool["max_prefixlen"]:
            raise BadRequest(f"Unable to allocate subnet with prefix length {net.prefixlen}, minimum allowed prefix "
                             f"is {pool['min_prefixlen']}, maximum allowed prefix is {pool['max_prefixlen']}.")
        if any(core.overlaps(row["cidr"], other) for other in allocated):
            raise Conflict(f"Failed to allocate subnet {net}: it overlaps a subnet of subnet pool {pool['id']}.")
        out = dict(row)
    else:
        prefixlen = core_pools.subnet_prefixlen(pool, request)
        cidr = core_pools.lowest_free_block(pool["prefixes"], allocated, prefixlen)
        if cidr is None:
            raise Conflict(f"Insufficient prefix space to allocate subnet size /{prefixlen} from subnet pool "
                           f"{pool['id']}.")
        fields = {k: v for k, v in request.items() if k not in ("prefixlen", "subnetpool_id", "use_default_subnet_pool")}
        out = {**core.subnet_row({**fields, "cidr": cidr, "ip_version": pool["ip_version"]}, id=row["id"],
                                 project_id=row["project_id"], network_id=row["network_id"], at=row["created_at"])}
    used = [r["cidr"] for r in db.query("SELECT cidr FROM subnets WHERE subnetpool_id = ? AND project_id = ?",
                                        [pool["id"], out["project_id"]])]
    core_pools.check_quota(pool, used, out["cidr"])
    out["subnetpool_id"] = pool["id"]
    return out


# --- subnet pools ----------------------------------------------------------------------------------------
def _check_scope(db: sqlite_utils.Database, pool: dict[str, Any]) -> None:
    """A pool in an address scope: same IP version, and no prefix shared with the scope's other pools."""
    if not pool.get("address_scope_id"):
        return
    scope = must_get(db, "address_scopes", pool["address_scope_id"])
    if scope["ip_version"] != pool["ip_version"]:
        raise BadRequest(f"Illegal subnetpool association: subnetpool {pool['id']} cannot be associated with address "
                         f"scope {scope['id']}: their IP versions differ.")
    for other in rows(db, "SELECT * FROM subnetpools WHERE address_scope_id = ? AND id != ?", [scope["id"], pool["id"]]):
        if any(core.overlaps(a, b) for a in pool["prefixes"] for b in other["prefixes"]):
            raise BadRequest(f"Illegal subnetpool association: subnetpool {pool['id']} cannot be associated with "
                             f"address scope {scope['id']}: its prefixes overlap those of subnet pool {other['id']}.")


def _check_default(db: sqlite_utils.Database, pool: dict[str, Any]) -> None:
    if pool.get("is_default") and list(db.query(
            "SELECT 1 FROM subnetpools WHERE is_default = 1 AND ip_version = ? AND id != ?",
            [pool["ip_version"], pool["id"]])):
        raise Conflict(f"A default subnetpool for IPv{pool['ip_version']} has already been set. Only one default may "
                       "exist per IP family.")


def _apply_create_pool(db: sqlite_utils.Database, cmd: c.CreateSubnetPool) -> dict[str, Any]:
    row = cmd.row
    if get(db, "subnetpools", row["id"]):
        raise Conflict(f"Subnet pool {row['id']} exists already.")
    _check_scope(db, row)
    _check_default(db, row)
    insert(db, "subnetpools", row)
    return must_get(db, "subnetpools", row["id"])


def _apply_update_pool(db: sqlite_utils.Database, cmd: c.UpdateSubnetPool) -> dict[str, Any]:
    pool = must_get(db, "subnetpools", cmd.id)
    changes = core_pools.pool_fields(cmd.changes, pool)  # again here: the pool may have changed since
    for key in ("is_default", "address_scope_id"):
        if key in cmd.changes:
            changes[key] = cmd.changes[key]
    merged = {**pool, **changes}
    _check_scope(db, merged)
    _check_default(db, merged)
    return update(db, "subnetpools", cmd.id, changes, cmd.at)


def _apply_delete_pool(db: sqlite_utils.Database, cmd: c.DeleteSubnetPool) -> None:
    must_get(db, "subnetpools", cmd.id)
    if list(db.query("SELECT 1 FROM subnets WHERE subnetpool_id = ? LIMIT 1", [cmd.id])):
        raise Conflict(f"Subnet pool {cmd.id} cannot be deleted: subnets were allocated from it.")
    db.execute("DELETE FROM subnetpools WHERE id = ?", [cmd.id])


# --- address scopes -----------------------------------------------------------------------------------------
def _apply_create_scope(db: sqlite_utils.Database, cmd: c.CreateAddressScope) -> dict[str, Any]:
    if get(db, "address_scopes", cmd.row["id"]):
        raise Conflict(f"Address scope {cmd.row['id']} exists already.")
    insert(db, "address_scopes", cmd.row)
    return must_get(db, "address_scopes", cmd.row["id"])


def _apply_update_scope(db: sqlite_utils.Database, cmd: c.UpdateAddressScope) -> dict[str, Any]:
    scope = must_get(db, "address_scopes", cmd.id)
    if scope["shared"] and cmd.changes.get("shared") is False:
        raise BadRequest(f"Unable to update address scope {cmd.id}: a shared address scope cannot be unshared.")
    return update(db, "address_scopes", cmd.id, cmd.changes, cmd.at)


def _apply_delete_scope(db: sqlite_utils.Database, cmd: c.DeleteAddressScope) -> None:
    must_get(db, "address_scopes", cmd.id)
    if list(db.query("SELECT 1 FROM subnetpools WHERE address_scope_id = ? LIMIT 1", [cmd.id])):
        raise Conflict(f"Unable to complete operation on address scope {cmd.id}. There are one or more subnet pools "
                       "in use on the address scope.")
    db.execute("DELETE FROM address_scopes WHERE id = ?", [cmd.id])


HANDLERS: dict[type, Handler] = {
    c.CreateSubnetPool: _apply_create_pool,
    c.UpdateSubnetPool: _apply_update_pool,
    c.DeleteSubnetPool: _apply_delete_pool,
    c.CreateAddressScope: _apply_create_scope,
    c.UpdateAddressScope: _apply_update_scope,
    c.DeleteAddressScope: _apply_delete_scope,
}

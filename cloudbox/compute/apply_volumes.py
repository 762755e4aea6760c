"""Apply of the block device mapping commands (commands_volumes.py) and the queries of the table."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.compute import commands_volumes as v
from cloudbox.compute.store import decode, encode, must_server
from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.state.migrations import Handler


def get_bdm(db: sqlite_utils.Database, bdm_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM block_device_mappings WHERE id = ?", [bdm_id]))
    return decode(rows[0]) if rows else None


def bdms_of(db: sqlite_utils.Database, server_id: str) -> list[dict[str, Any]]:
    """A server's mappings: the root first (boot_index 0), then by device name and creation."""
    return [decode(r) for r in db.query(  # type: ignore[misc]
        "SELECT * FROM block_device_mappings WHERE server_id = ?"
        " ORDER BY boot_index IS NULL, boot_index, device_name, created_at, id", [server_id])]


def bdms_of_many(db: sqlite_utils.Database, server_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The mappings of many servers (a server list's volumes_attached), by server id."""
    out: dict[str, list[dict[str, Any]]] = {sid: [] for sid in server_ids}
    for start in range(0, len(server_ids), 500):
        chunk = server_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for r in db.query(f"SELECT * FROM block_device_mappings WHERE server_id IN ({marks})"
                          " ORDER BY boot_index IS NULL, boot_index, device_name, created_at, id", chunk):
            row = decode(r)
            assert row is not None
            out[row["server_id"]].append(row)
    return out


def bdms_on_host(db: sqlite_utils.Database, host: str) -> list[dict[str, Any]]:
    """The mappings of the servers placed on compute host ``host``."""
    return [decode(r) for r in db.query(  # type: ignore[misc]
        "SELECT b.* FROM block_device_mappings b JOIN servers s ON s.id = b.server_id WHERE s.host = ?"
        " ORDER BY b.server_id, b.created_at, b.id", [host])]


def bdms_of_volume(db: sqlite_utils.Database, volume_id: str) -> list[dict[str, Any]]:
    return [decode(r) for r in db.query(  # type: ignore[misc]
        "SELECT * FROM block_device_mappings WHERE volume_id = ? ORDER BY created_at, id", [volume_id])]


def _apply_create(db: sqlite_utils.Database, cmd: v.CreateBlockDevices) -> Any:
    server_ids = {row["server_id"] for row in cmd.rows}
    if len(server_ids) != 1:
        raise BadRequest("The block device mappings of one command belong to one server.")
    server = must_server(db, server_ids.pop())
    if cmd.vm_states is not None and (server["vm_state"] not in cmd.vm_states or server["task_state"]):
        state = server["task_state"] or server["vm_state"]
        raise Conflict(f"Cannot 'attach_volume' instance {server['id']} while it is in "
                       f"{'task_state' if server['task_state'] else 'vm_state'} {state}")
    existing = bdms_of(db, server["id"])
    volumes = {b["volume_id"] for b in existing if b["volume_id"]}
    devices = {b["device_name"] for b in existing if b["device_name"]}
    for row in cmd.rows:
        if row.get("volume_id") and row["volume_id"] in volumes:
            raise BadRequest(f"Invalid volume: volume {row['volume_id']} is already attached to instance "
                             f"{server['id']}.")
        if row.get("device_name") and row["device_name"] in devices:
            raise Conflict(f"The supplied device path ({row['device_name']}) is in use.")
        if get_bdm(db, row["id"]) is not None:
            raise Conflict(f"Block device mapping {row['id']} exists already.")
        volumes.add(row.get("volume_id"))
        devices.add(row.get("device_name"))
        db["block_device_mappings"].insert(encode(row))
    return [get_bdm(db, row["id"]) for row in cmd.rows]


def _apply_update(db: sqlite_utils.Database, cmd: v.UpdateBlockDevice) -> Any:
    bdm = get_bdm(db, cmd.id)
    if bdm is None:
        raise NotFound(f"Block device mapping {cmd.id} could not be found.")
    if cmd.expect_status is not None and bdm["status"] not in cmd.expect_status:
        raise Conflict(f"Volume {bdm['volume_id']} of instance {bdm['server_id']} is {bdm['status']}.")
    if cmd.changes:
        db["block_device_mappings"].update(cmd.id, encode(dict(cmd.changes)))
    return get_bdm(db, cmd.id)


def _apply_delete(db: sqlite_utils.Database, cmd: v.DeleteBlockDevices) -> Any:
    for bdm_id in cmd.ids:
        db.execute("DELETE FROM block_device_mappings WHERE id = ?", [bdm_id])
    return None


HANDLERS: dict[type, Handler] = {
    v.CreateBlockDevices: _apply_create,
    v.UpdateBlockDevice: _apply_update,
    v.DeleteBlockDevices: _apply_delete,
}

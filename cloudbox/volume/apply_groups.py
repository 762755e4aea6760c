"""apply() of the group commands: group types, groups (their volumes' membership) and group
snapshots. Volumes and snapshots a group makes go through apply.py's own create checks."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.state.migrations import Handler
from cloudbox.volume import apply as volumes
from cloudbox.volume import commands as c
from cloudbox.volume import store as s
from cloudbox.volume import store_groups as sg


def _create_type(db: sqlite_utils.Database, cmd: c.CreateGroupType) -> dict[str, Any]:
    if list(db.query("SELECT 1 FROM volume_group_types WHERE name = ? OR id = ?", [cmd.row["name"], cmd.row["id"]])):
        raise Conflict(f"Group type {cmd.row['name']} already exists.")
    db["volume_group_types"].insert(s.encode(cmd.row))
    return sg.must_type(db, cmd.row["id"])


def _update_type(db: sqlite_utils.Database, cmd: c.UpdateGroupType) -> dict[str, Any]:
    kind = sg.must_type(db, cmd.id)
    name = cmd.changes.get("name")
    if name and list(db.query("SELECT 1 FROM volume_group_types WHERE name = ? AND id != ?", [name, cmd.id])):
        raise Conflict(f"Group type {name} already exists.")
    for key in cmd.remove:
        if key not in kind["group_specs"]:
            raise NotFound(f"Group type {cmd.id} has no group spec with key {key}.")
    specs = {k: v for k, v in {**kind["group_specs"], **cmd.specs}.items() if k not in cmd.remove}
    db["volume_group_types"].update(cmd.id, s.encode({**cmd.changes, "group_specs": specs, "updated_at": cmd.at}))
    return sg.must_type(db, cmd.id)


def _delete_type(db: sqlite_utils.Database, cmd: c.DeleteGroupType) -> None:
    sg.must_type(db, cmd.id)
    if list(db.query("SELECT 1 FROM volume_groups WHERE group_type_id = ? LIMIT 1", [cmd.id])):
        raise BadRequest(f"Invalid group type: group type {cmd.id} is in use by groups.")
    db.execute("DELETE FROM volume_group_types WHERE id = ?", [cmd.id])


def _member_check(db: sqlite_utils.Database, group: dict[str, Any], volume: dict[str, Any]) -> None:
    if volume["project_id"] != group["project_id"]:
        raise BadRequest(f"Invalid volume: volume {volume['id']} is not in the group's project.")
    if volume["volume_type_id"] not in group["volume_type_ids"]:
        raise BadRequest(f"Invalid volume: volume {volume['id']}'s type is not one of the group's volume types.")


def _create_group(db: sqlite_utils.Database, cmd: c.CreateGroup) -> dict[str, Any]:
    row = cmd.row
    if sg.get_group(db, row["id"]) is not None:
        raise Conflict(f"A group with ID {row['id']} exists already.")
    sg.must_type(db, row["group_type_id"])
    for type_id in row["volume_type_ids"]:
        if s.get_type(db, type_id) is None:
            raise NotFound(f"Volume type {type_id} could not be found.")
    for source_key, getter in (("source_group_id", sg.get_group), ("group_snapshot_id", sg.get_group_snapshot)):
        if row.get(source_key):
            source = getter(db, row[source_key])
            if source is None or source["project_id"] != row["project_id"]:
                raise NotFound(f"The group's source {row[source_key]} could not be found.")
            if source["status"] != "available":
                raise BadRequest(f"Invalid group: source {source['id']} is {source['status']}, not available.")
    db["volume_groups"].insert(s.encode(row))
    for volume in cmd.volumes:  # each checked and counted as any new volume is
        volumes._create_volume(db, c.CreateVolume(volume, cmd.defaults))
    return sg.must_group(db, row["id"])


def _update_group(db: sqlite_utils.Database, cmd: c.UpdateGroup) -> dict[str, Any]:
    group = sg.must_group(db, cmd.id)
    if (cmd.add or cmd.remove) and group["status"] != "available":
        raise BadRequest(f"Invalid group: group {cmd.id} is {group['status']}, not available.")
    for volume_id in cmd.add:
        volume = s.get_volume(db, volume_id)
        if volume is None or volume["project_id"] != group["project_id"]:
            raise BadRequest(f"Invalid volume: volume {volume_id} could not be found to add to the group.")
        _member_check(db, group, volume)
        if volume.get("group_id") not in (None, cmd.id):
            raise BadRequest(f"Invalid volume: volume {volume_id} is in another group.")
        if volume["status"] not in ("available", "in-use"):
            raise BadRequest(f"Invalid volume: volume {volume_id} is {volume['status']}.")
    for volume_id in cmd.remove:
        volume = s.get_volume(db, volume_id)
        if volume is None or volume.get("group_id") != cmd.id:
            raise BadRequest(f"Invalid volume: volume {volume_id} is not in group {cmd.id}.")
    for volume_id in cmd.add:
        db["volumes"].update(volume_id, {"group_id": cmd.id, "updated_at": cmd.at})
    for volume_id in cmd.remove:
        db["volumes"].update(volume_id, {"group_id": None, "updated_at": cmd.at})
    db["volume_groups"].update(cmd.id, s.encode({**cmd.changes, "updated_at": cmd.at}))
    return sg.must_group(db, cmd.id)


def _delete_group(db: sqlite_utils.Database, cmd: c.DeleteGroup) -> None:
    sg.must_group(db, cmd.id)
    if list(db.query("SELECT 1 FROM volume_group_snapshots WHERE group_id = ? LIMIT 1", [cmd.id])):
        raise BadRequest(f"Invalid group: group {cmd.id} has group snapshots: delete them first.")
    members = sg.volumes_of(db, cmd.id)
    if members and not cmd.delete_volumes:
        raise BadRequest(f"Invalid group: group {cmd.id} still has {len(members)} volumes: delete them with the "
                         "group (delete-volumes) or remove them first.")
    for volume in members:  # each refused as its own delete would be (attachments, snapshots, status)
        volumes._delete(db, c.DeleteVolume(volume["id"], False, False, cmd.at))
        db["volumes"].update(volume["id"], {"group_id": None})
    db.execute("DELETE FROM volume_groups WHERE id = ?", [cmd.id])


def _status(db: sqlite_utils.Database, cmd: c.GroupStatus) -> None:
    if cmd.snapshot:
        sg.must_group_snapshot(db, cmd.id)
        db["volume_group_snapshots"].update(cmd.id, {"status": cmd.status, "updated_at": cmd.at})
    else:
        sg.must_group(db, cmd.id)
        db["volume_groups"].update(cmd.id, {"status": cmd.status, "updated_at": cmd.at})


def _create_group_snapshot(db: sqlite_utils.Database, cmd: c.CreateGroupSnapshot) -> dict[str, Any]:
    row = cmd.row
    group = sg.must_group(db, row["group_id"])
    if group["status"] != "available":
        raise BadRequest(f"Invalid group: group {group['id']} is {group['status']}, not available.")
    if sorted(x["volume_id"] for x in cmd.snapshots) != sorted(v["id"] for v in sg.volumes_of(db, group["id"])):
        raise Conflict(f"Group {group['id']}'s volumes changed while its snapshot was asked for: ask again.")
    db["volume_group_snapshots"].insert(s.encode(row))
    for snapshot in cmd.snapshots:  # each checked and counted as any new snapshot is
        volumes._create_snapshot(db, c.CreateSnapshot(snapshot, True, cmd.defaults))
    return sg.must_group_snapshot(db, row["id"])


def _delete_group_snapshot(db: sqlite_utils.Database, cmd: c.DeleteGroupSnapshot) -> None:
    sg.must_group_snapshot(db, cmd.id)
    if list(db.query("SELECT 1 FROM volume_groups WHERE group_snapshot_id = ? AND status = 'creating'", [cmd.id])):
        raise BadRequest(f"Invalid group snapshot: a group is being made from {cmd.id}.")
    for snapshot in sg.snapshots_of(db, cmd.id):
        if snapshot["status"] not in ("deleting",):
            volumes._delete_snapshot(db, c.DeleteSnapshot(snapshot["id"], cmd.at))
        db["volume_snapshots"].update(snapshot["id"], {"group_snapshot_id": None})
    db.execute("DELETE FROM volume_group_snapshots WHERE id = ?", [cmd.id])


HANDLERS: dict[type, Handler] = {
    c.CreateGroupType: _create_type,
    c.UpdateGroupType: _update_type,
    c.DeleteGroupType: _delete_type,
    c.CreateGroup: _create_group,
    c.UpdateGroup: _update_group,
    c.DeleteGroup: _delete_group,
    c.GroupStatus: _status,
    c.CreateGroupSnapshot: _create_group_snapshot,
    c.DeleteGroupSnapshot: _delete_group_snapshot,
}

"""apply(db, command) of every volume command: state checks and quotas decided here, the same on
every node (the rows, ids and times come inside the commands)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.state.migrations import Handler
from cloudbox.volume import commands as c
from cloudbox.volume import core, core_attach
from cloudbox.volume import store as s
from cloudbox.volume import store_attach as sa
from cloudbox.volume import store_groups as sg


def _check_quota(db: sqlite_utils.Database, project_id: str, defaults: dict[str, int], type_id: str,
                 volumes: int, gigabytes: int, snapshots: int) -> None:
    limits = s.quota_limits(db, project_id, defaults)
    usage = s.quota_usage(db, project_id)
    per_volume = limits.get("per_volume_gigabytes", -1)
    if volumes and per_volume >= 0 and gigabytes > per_volume:
        raise core.QuotaExceeded(f"VolumeSizeExceedsLimit: {gigabytes} GB is more than the {per_volume} GB "
                                 "a volume may have.")
    kind = s.get_type(db, type_id)
    name = kind["name"] if kind else ""
    adding = {"volumes": volumes, "gigabytes": gigabytes, "snapshots": snapshots,
              f"volumes_{name}": volumes, f"gigabytes_{name}": gigabytes, f"snapshots_{name}": snapshots}
    core.check_quota(limits, usage, adding)


def _metadata_changes(row: dict[str, Any], requested: dict[str, Any], what: str) -> dict[str, Any]:
    """An update's changes with ``<field>_merge`` / ``<field>_delete`` made into the whole new
    ``metadata`` or ``image_metadata`` (Cinder's volume_image_metadata)."""
    changes = dict(requested)
    for field, label in (("metadata", "metadata"), ("image_metadata", "image metadata")):
        if f"{field}_merge" in changes:
            changes[field] = core.check_metadata({**row[field], **changes.pop(f"{field}_merge")})
        if f"{field}_delete" in changes:
            key = changes.pop(f"{field}_delete")
            if key not in row[field]:
                raise NotFound(f"{what} {row['id']} has no {label} with key {key}.")
            changes[field] = {k: v for k, v in row[field].items() if k != key}
    return changes


# --- user messages: a volume or snapshot going to error with a reason leaves one (Cinder's /messages) ---
MESSAGE_NAMESPACE = uuid.UUID("6f1d1c0e-3c52-4d2b-9d0e-76f3a0c1b2a4")
MESSAGE_DAYS = 30  # guaranteed_until, as Cinder's message_ttl
# (resource type, the status it left) -> Cinder's action id and words
ACTIONS = {("VOLUME", "creating"): ("001", "schedule allocate volume"), ("VOLUME", "extending"): ("007", "extend volume"),
           ("VOLUME", "uploading"): ("003", "copy volume to image"), ("VOLUME", "deleting"): ("000", "delete volume"),
           ("SNAPSHOT", "creating"): ("009", "create snapshot"), ("SNAPSHOT", "deleting"): ("010", "delete snapshot")}


def _record_message(db: sqlite_utils.Database, kind: str, row: dict[str, Any], was: str, to: str, message: str,
                    at: str, detail: str = "001") -> None:
    """A message for the row's project when it goes to an error status with a reason (its id is
    derived from the row, status and time, so every node makes the same)."""
    if not to.startswith("error") or not message or message == core.HELD:
        return
    action, words = ACTIONS.get((kind, was), ("000", "volume operation"))
    message_id = str(uuid.uuid5(MESSAGE_NAMESPACE, f"{row['id']}|{to}|{at}"))
    if s.get_message(db, message_id) is not None:
        return
    until = (datetime.fromisoformat(at) + timedelta(days=MESSAGE_DAYS)).isoformat(timespec="microseconds")
    db["volume_messages"].insert({
        "id": message_id, "project_id": row["project_id"], "resource_type": kind, "resource_uuid": row["id"],
        "event_id": f"VOLUME_{kind}_{action}_{detail}", "message_level": "ERROR",
        "user_message": f"{words}: {message}", "request_id": f"req-{message_id}", "created_at": at,
        "guaranteed_until": until})


def _delete_message(db: sqlite_utils.Database, cmd: c.DeleteMessage) -> None:
    found = s.get_message(db, cmd.id)
    if found is None:
        raise NotFound(f"Message {cmd.id} could not be found.")
    db.execute("DELETE FROM volume_messages WHERE id = ?", [cmd.id])


def _released(row: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A change of status that does not set its own message releases a status an admin set."""
    if row["message"] == core.HELD and "message" not in changes:
        return {**changes, "message": ""}
    return changes


def _touch_volume(db: sqlite_utils.Database, volume_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    db["volumes"].update(volume_id, s.encode(changes))
    return s.must_volume(db, volume_id)


# --- volumes ---------------------------------------------------------------------------------
def _create_volume(db: sqlite_utils.Database, cmd: c.CreateVolume) -> dict[str, Any]:
    row = dict(cmd.row)
    if s.get_volume(db, row["id"]) is not None:
        raise Conflict(f"A volume with ID {row['id']} exists already.")
    if s.get_type(db, row["volume_type_id"]) is None:
        raise NotFound(f"Volume type {row['volume_type_id']} could not be found.")
    if row.get("snapshot_id"):
        snapshot = s.must_snapshot(db, row["snapshot_id"])
        if snapshot["status"] != "available":
            raise BadRequest(f"Invalid snapshot: snapshot {snapshot['id']} is {snapshot['status']}, not available.")
        if row["size"] < snapshot["size"]:
            raise BadRequest(f"Invalid input received: the volume ({row['size']} GB) must be at least as large "
                             f"as the snapshot ({snapshot['size']} GB).")
        row["host"] = snapshot["host"]  # the snapshot's data is there
    if row.get("source_volid"):
        source = s.must_volume(db, row["source_volid"])
        if source["status"] not in ("available", "in-use"):
            raise BadRequest(f"Invalid volume: source volume {source['id']} is {source['status']}.")
        if row["size"] < source["size"]:
            raise BadRequest(f"Invalid input received: the volume ({row['size']} GB) must be at least as large "
                             f"as its source ({source['size']} GB).")
        row["host"] = source["host"]
    if row.get("group_id"):
        group = sg.get_group(db, row["group_id"])
        if group is None or group["project_id"] != row["project_id"]:
            raise NotFound(f"Group {row['group_id']} could not be found.")
        if row["volume_type_id"] not in group["volume_type_ids"]:
            raise BadRequest(f"Invalid input received: the volume's type is not one of group {group['id']}'s "
                             "volume types.")
    _check_quota(db, row["project_id"], cmd.defaults, row["volume_type_id"], 1, row["size"], 0)
    db["volumes"].insert(s.encode(row))
    _record_message(db, "VOLUME", row, "creating", row["status"], row.get("message") or "", row["created_at"],
                    detail="002")  # 002: no valid backend, the only error a create decides
    return s.must_volume(db, row["id"])


def _transition(db: sqlite_utils.Database, cmd: c.Transition) -> dict[str, Any]:
    volume = s.must_volume(db, cmd.id)
    if cmd.expect and volume["status"] not in cmd.expect:
        raise Conflict(f"Invalid volume: volume {cmd.id} is {volume['status']}, not {' or '.join(cmd.expect)}.")
    changes = _released(volume, dict(cmd.changes))
    _record_message(db, "VOLUME", volume, volume["status"], cmd.to, changes.get("message", ""), cmd.at)
    return _touch_volume(db, cmd.id, {**changes, "status": cmd.to, "updated_at": cmd.at})


def _update_volume(db: sqlite_utils.Database, cmd: c.UpdateVolume) -> dict[str, Any]:
    volume = s.must_volume(db, cmd.id)
    changes = _metadata_changes(volume, cmd.changes, "Volume")
    if "readonly" in changes and volume["status"] not in ("available", "in-use"):
        raise Conflict(f"Invalid volume: volume {cmd.id} is {volume['status']}.")
    if "readonly" in changes:  # Cinder keeps the flag in admin metadata, shown among the metadata
        changes["admin_metadata"] = {**volume.get("admin_metadata", {}), "readonly": str(bool(changes["readonly"]))}
    return _touch_volume(db, cmd.id, {**changes, "updated_at": cmd.at})


def _extend(db: sqlite_utils.Database, cmd: c.ExtendVolume) -> dict[str, Any]:
    volume = s.must_volume(db, cmd.id)
    if volume["status"] == "in-use" and cmd.attached:
        _check_attached_extend(db, volume, isinstance(cmd, c.ExtendRemoteVolume))
    elif volume["status"] != "available":
        allowed = "an available or in-use" if cmd.attached else "an available"
        raise BadRequest(f"Invalid volume: volume {cmd.id} is {volume['status']}; only {allowed} volume "
                         "can be extended.")
    if cmd.new_size <= volume["size"]:
        raise BadRequest(f"Invalid input received: new size ({cmd.new_size} GB) must be greater than the "
                         f"current size ({volume['size']} GB).")
    _check_quota(db, volume["project_id"], cmd.defaults, volume["volume_type_id"], 0,
                 cmd.new_size - volume["size"], 0)
    return _touch_volume(db, cmd.id, _released(volume, {"status": "extending", "pending_size": cmd.new_size,
                                                        "updated_at": cmd.at}))


def _check_attached_extend(db: sqlite_utils.Database, volume: dict[str, Any], remote_ok: bool) -> None:
    """An in-use volume grows while attached once: its guest's QEMU resizes the disk; over NBD
    (``remote_ok``: ExtendRemoteVolume, schema 2) after the export is made again at the new
    size (reconcile.py). Two guests sharing one disk would each have to be resized: refused."""
    attachments = sa.attachments_of(db, volume["id"])
    if len(attachments) > 1:
        raise BadRequest(f"Invalid volume: volume {volume['id']} is attached {len(attachments)} times; a "
                         "multiattach volume can be extended only while attached once.")
    if not remote_ok and any(core_attach.is_remote(a, volume["host"]) for a in attachments):
        raise BadRequest(f"Invalid volume: volume {volume['id']} is attached to a server on another node "
                         "(over NBD) since the extend was asked; ask again.")


def _retype(db: sqlite_utils.Database, cmd: c.RetypeVolume) -> dict[str, Any]:
    volume = s.must_volume(db, cmd.id)
    if volume["status"] not in ("available", "in-use"):
        raise BadRequest(f"Invalid volume: volume {cmd.id} is {volume['status']}.")
    if s.get_type(db, cmd.type_id) is None:
        raise NotFound(f"Volume type {cmd.type_id} could not be found.")
    if cmd.type_id == volume["volume_type_id"]:
        raise BadRequest("Invalid input received: the volume already has this type.")
    # The same disk serves any type here (one backend per node): the new type's quota is what changes.
    kind = s.get_type(db, cmd.type_id)
    assert kind is not None
    limits = s.quota_limits(db, volume["project_id"], cmd.defaults)
    usage = s.quota_usage(db, volume["project_id"])
    gb = volume["size"] + sum(x["size"] for x in s.snapshots_of(db, cmd.id))
    core.check_quota(limits, usage, {f"volumes_{kind['name']}": 1, f"gigabytes_{kind['name']}": gb})
    # A volume is multiattach when its type says so (Cinder's convention); one attached to two
    # servers keeps its flag.
    multiattach = core_attach.type_multiattach(kind["extra_specs"])
    if volume["multiattach"] and not multiattach and len(
            list(db.query("SELECT 1 FROM volume_attachments WHERE volume_id = ?", [cmd.id]))) > 1:
        raise BadRequest(f"Invalid volume: volume {cmd.id} has several attachments; its type must stay multiattach.")
    return _touch_volume(db, cmd.id, {"volume_type_id": cmd.type_id, "multiattach": multiattach,
                                      "updated_at": cmd.at})


def _delete(db: sqlite_utils.Database, cmd: c.DeleteVolume) -> dict[str, Any]:
    volume = s.must_volume(db, cmd.id)
    # An attachment refuses even a force delete; a status reset to attaching with none does not
    # (Cinder decides on the attachments, not the status, when forced).
    if list(db.query("SELECT 1 FROM volume_attachments WHERE volume_id = ? LIMIT 1", [cmd.id])):
        raise BadRequest(f"Invalid volume: volume {cmd.id} is {volume['status']} and still has attachments: "
                         "detach it first.")
    if volume["status"] in core.ATTACHED and not cmd.force:
        raise BadRequest(f"Invalid volume: volume {cmd.id} is {volume['status']}: detach it first.")
    if not cmd.force and volume["status"] not in (*core.DELETABLE, "error_deleting"):
        raise BadRequest(f"Invalid volume: volume status must be available or error or error_restoring or "
                         f"error_extending or error_managing and must not be migrating, attached, belong to a "
                         f"group, have snapshots or be disassociated from snapshots after volume transfer; "
                         f"volume {cmd.id} is {volume['status']}.")
    snapshots = s.snapshots_of(db, cmd.id)
    if snapshots and not cmd.cascade:
        raise BadRequest(f"Invalid volume: volume {cmd.id} still has {len(snapshots)} dependent snapshots: "
                         "delete them first, or delete with cascade.")
    for snapshot in snapshots:
        if snapshot["status"] not in ("available", "error", "error_deleting", "deleting"):
            raise BadRequest(f"Invalid volume: snapshot {snapshot['id']} is {snapshot['status']}.")
        db["volume_snapshots"].update(snapshot["id"], _released(snapshot, {"status": "deleting", "updated_at": cmd.at}))
    return _touch_volume(db, cmd.id, _released(volume, {"status": "deleting", "updated_at": cmd.at}))


def _purge(db: sqlite_utils.Database, cmd: c.PurgeVolume) -> None:
    volume = s.must_volume(db, cmd.id)
    if volume["status"] != "deleting":
        raise Conflict(f"Volume {cmd.id} is {volume['status']}, not deleting.")
    if s.snapshots_of(db, cmd.id):
        raise Conflict(f"Volume {cmd.id} still has snapshots.")
    db.execute("DELETE FROM volume_transfers WHERE volume_id = ?", [cmd.id])  # one a force delete cut short
    db.execute("DELETE FROM volumes WHERE id = ?", [cmd.id])


# --- snapshots -------------------------------------------------------------------------------
def _create_snapshot(db: sqlite_utils.Database, cmd: c.CreateSnapshot) -> dict[str, Any]:
    row = dict(cmd.row)
    volume = s.must_volume(db, row["volume_id"])
    if volume["status"] != "available" and not (cmd.force and volume["status"] == "in-use"):
        raise BadRequest(f"Invalid volume: volume {volume['id']} is {volume['status']}; a snapshot needs an "
                         "available volume (or force for one in use).")
    if s.get_snapshot(db, row["id"]) is not None:
        raise Conflict(f"A snapshot with ID {row['id']} exists already.")
    _check_quota(db, volume["project_id"], cmd.defaults, volume["volume_type_id"], 0, volume["size"], 1)
    row.update(size=volume["size"], host=volume["host"], project_id=volume["project_id"])
    db["volume_snapshots"].insert(s.encode(row))
    return s.must_snapshot(db, row["id"])


def _snapshot_transition(db: sqlite_utils.Database, cmd: c.SnapshotTransition) -> dict[str, Any]:
    snapshot = s.must_snapshot(db, cmd.id)
    if cmd.expect and snapshot["status"] not in cmd.expect:
        raise Conflict(f"Invalid snapshot: snapshot {cmd.id} is {snapshot['status']}.")
    changes = _released(snapshot, dict(cmd.changes))
    _record_message(db, "SNAPSHOT", snapshot, snapshot["status"], cmd.to, changes.get("message", ""), cmd.at)
    db["volume_snapshots"].update(cmd.id, s.encode({**changes, "status": cmd.to, "updated_at": cmd.at}))
    return s.must_snapshot(db, cmd.id)


def _update_snapshot(db: sqlite_utils.Database, cmd: c.UpdateSnapshot) -> dict[str, Any]:
    snapshot = s.must_snapshot(db, cmd.id)
    changes = _metadata_changes(snapshot, cmd.changes, "Snapshot")
    db["volume_snapshots"].update(cmd.id, s.encode({**changes, "updated_at": cmd.at}))
    return s.must_snapshot(db, cmd.id)


def _delete_snapshot(db: sqlite_utils.Database, cmd: c.DeleteSnapshot) -> dict[str, Any]:
    snapshot = s.must_snapshot(db, cmd.id)
    if snapshot["status"] not in ("available", "error", "error_deleting"):
        raise BadRequest(f"Invalid snapshot: snapshot {cmd.id} is {snapshot['status']}; only an available or "
                         "errored snapshot can be deleted.")
    db["volume_snapshots"].update(cmd.id, _released(snapshot, {"status": "deleting", "updated_at": cmd.at}))
    return s.must_snapshot(db, cmd.id)


def _purge_snapshot(db: sqlite_utils.Database, cmd: c.PurgeSnapshot) -> None:
    s.must_snapshot(db, cmd.id)
    db.execute("DELETE FROM volume_snapshots WHERE id = ?", [cmd.id])


# --- transfers ---------------------------------------------------------------------------------
def _create_transfer(db: sqlite_utils.Database, cmd: c.CreateTransfer) -> dict[str, Any]:
    row = cmd.row
    volume = s.must_volume(db, row["volume_id"])
    if volume["status"] != "available":
        raise BadRequest(f"Invalid volume: volume {volume['id']} is {volume['status']}; only an available volume "
                         "can be transferred.")
    if s.get_transfer(db, row["id"]) is not None:
        raise Conflict(f"A transfer with ID {row['id']} exists already.")
    db["volume_transfers"].insert(s.encode(row))
    _touch_volume(db, volume["id"], {"status": "awaiting-transfer", "updated_at": row["created_at"]})
    return s.get_transfer(db, row["id"]) or {}


def _delete_transfer(db: sqlite_utils.Database, cmd: c.DeleteTransfer) -> None:
    transfer = s.get_transfer(db, cmd.id)
    if transfer is None:
        raise NotFound(f"Transfer {cmd.id} could not be found.")
    db.execute("DELETE FROM volume_transfers WHERE id = ?", [cmd.id])
    volume = s.get_volume(db, transfer["volume_id"])
    if volume is not None and volume["status"] == "awaiting-transfer":
        _touch_volume(db, volume["id"], {"status": "available", "updated_at": cmd.at})


def _accept_transfer(db: sqlite_utils.Database, cmd: c.AcceptTransfer) -> dict[str, Any]:
    transfer = s.get_transfer(db, cmd.id)
    if transfer is None:
        raise NotFound(f"Transfer {cmd.id} could not be found.")
    if cmd.key_hash != transfer["key_hash"]:
        raise BadRequest(f"Invalid auth key: attempt to transfer {cmd.id} with an invalid auth key.")
    volume = s.must_volume(db, transfer["volume_id"])
    if volume["status"] != "awaiting-transfer":
        raise BadRequest(f"Invalid volume: volume {volume['id']} is {volume['status']}, not awaiting-transfer.")
    snapshots = [] if transfer["no_snapshots"] else s.snapshots_of(db, volume["id"])
    _check_quota(db, cmd.project_id, cmd.defaults, volume["volume_type_id"], 1,
                 volume["size"] + sum(x["size"] for x in snapshots), len(snapshots))
    for snapshot in snapshots:
        db["volume_snapshots"].update(snapshot["id"], {"project_id": cmd.project_id, "user_id": cmd.user_id,
                                                       "updated_at": cmd.at})
    db.execute("DELETE FROM volume_transfers WHERE id = ?", [cmd.id])
    _touch_volume(db, volume["id"], {"project_id": cmd.project_id, "user_id": cmd.user_id, "status": "available",
                                     "updated_at": cmd.at})
    return transfer


# --- types, defaults, quotas -----------------------------------------------------------------
def _create_type(db: sqlite_utils.Database, cmd: c.CreateType) -> dict[str, Any]:
    if list(db.query("SELECT 1 FROM volume_types WHERE name = ?", [cmd.row["name"]])):
        raise Conflict(f"Volume Type {cmd.row['name']} already exists.")
    if s.get_type(db, cmd.row["id"]) is not None:
        raise Conflict(f"Volume Type {cmd.row['id']} already exists.")
    db["volume_types"].insert(s.encode(cmd.row))
    return s.get_type(db, cmd.row["id"]) or {}


def _must_type(db: sqlite_utils.Database, type_id: str) -> dict[str, Any]:
    kind = s.get_type(db, type_id)
    if kind is None:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return kind


def _update_type(db: sqlite_utils.Database, cmd: c.UpdateType) -> dict[str, Any]:
    _must_type(db, cmd.id)
    name = cmd.changes.get("name")
    if name is not None and list(db.query("SELECT 1 FROM volume_types WHERE name = ? AND id != ?", [name, cmd.id])):
        raise Conflict(f"Volume Type {name} already exists.")
    db["volume_types"].update(cmd.id, s.encode({**cmd.changes, "updated_at": cmd.at}))
    return _must_type(db, cmd.id)


def _delete_type(db: sqlite_utils.Database, cmd: c.DeleteType) -> None:
    _must_type(db, cmd.id)
    if cmd.id == core.DEFAULT_TYPE_ID:
        raise BadRequest("The __DEFAULT__ volume type cannot be deleted.")
    if list(db.query("SELECT 1 FROM volumes WHERE volume_type_id = ? LIMIT 1", [cmd.id])):
        raise BadRequest(f"Target volume type {cmd.id} is still in use.")
    if list(db.query("SELECT 1 FROM volume_default_types WHERE type_id = ? LIMIT 1", [cmd.id])):
        raise BadRequest(f"Volume type {cmd.id} is a default type; set another default first.")
    db.execute("DELETE FROM volume_types WHERE id = ?", [cmd.id])


def _extra_specs(db: sqlite_utils.Database, cmd: c.SetExtraSpecs) -> dict[str, Any]:
    kind = _must_type(db, cmd.id)
    specs = dict(kind["extra_specs"])
    for key in cmd.unset:
        if key not in specs:
            raise NotFound(f"Volume Type {cmd.id} has no extra specs with key {key}.")
        del specs[key]
    specs.update(cmd.values)
    if len(specs) > core.MAX_METADATA:
        raise BadRequest(f"A volume type has at most {core.MAX_METADATA} extra specs.")
    db["volume_types"].update(cmd.id, s.encode({"extra_specs": specs, "updated_at": cmd.at}))
    return _must_type(db, cmd.id)


def _type_access(db: sqlite_utils.Database, cmd: c.TypeAccess) -> None:
    kind = _must_type(db, cmd.id)
    if kind["is_public"]:
        raise BadRequest(f"Invalid volume type: type access of public type {cmd.id} cannot be changed.")
    has = cmd.project_id in s.type_access(db, cmd.id)
    if cmd.grant:
        if has:
            raise Conflict(f"Volume type access for {cmd.id} / {cmd.project_id} combination already exists.")
        db["volume_type_access"].insert({"type_id": cmd.id, "project_id": cmd.project_id})
    else:
        if not has:
            raise NotFound(f"Volume type access not found for {cmd.id} / {cmd.project_id} combination.")
        db.execute("DELETE FROM volume_type_access WHERE type_id = ? AND project_id = ?", [cmd.id, cmd.project_id])


def _default_type(db: sqlite_utils.Database, cmd: c.SetDefaultType) -> None:
    if cmd.type_id is None:
        if not list(db.query("SELECT 1 FROM volume_default_types WHERE project_id = ?", [cmd.project_id])):
            raise NotFound(f"Default type for project {cmd.project_id} could not be found.")
        db.execute("DELETE FROM volume_default_types WHERE project_id = ?", [cmd.project_id])
        return
    _must_type(db, cmd.type_id)
    db["volume_default_types"].upsert({"project_id": cmd.project_id, "type_id": cmd.type_id}, pk="project_id")


def _set_quota(db: sqlite_utils.Database, cmd: c.SetQuota) -> None:
    for resource, limit in sorted(cmd.limits.items()):
        db["volume_quotas"].upsert({"project_id": cmd.project_id, "resource": resource, "hard_limit": limit},
                                   pk=("project_id", "resource"))


def _delete_quota(db: sqlite_utils.Database, cmd: c.DeleteQuota) -> None:
    db.execute("DELETE FROM volume_quotas WHERE project_id = ?", [cmd.project_id])


HANDLERS: dict[type, Handler] = {
    c.CreateVolume: _create_volume,
    c.Transition: _transition,
    c.UpdateVolume: _update_volume,
    c.ExtendVolume: _extend,
    c.ExtendRemoteVolume: _extend,
    c.RetypeVolume: _retype,
    c.DeleteVolume: _delete,
    c.PurgeVolume: _purge,
    c.CreateSnapshot: _create_snapshot,
    c.SnapshotTransition: _snapshot_transition,
    c.UpdateSnapshot: _update_snapshot,
    c.DeleteSnapshot: _delete_snapshot,
    c.PurgeSnapshot: _purge_snapshot,
    c.CreateType: _create_type,
    c.UpdateType: _update_type,
    c.DeleteType: _delete_type,
    c.SetExtraSpecs: _extra_specs,
    c.TypeAccess: _type_access,
    c.SetDefaultType: _default_type,
    c.SetQuota: _set_quota,
    c.DeleteQuota: _delete_quota,
    c.DeleteMessage: _delete_message,
    c.CreateTransfer: _create_transfer,
    c.DeleteTransfer: _delete_transfer,
    c.AcceptTransfer: _accept_transfer,
}

"""apply of attachments, QoS specs, uploads and backends (rules in core_attach's table)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.state.migrations import Handler
from cloudbox.volume import commands_attach as c
from cloudbox.volume import core_attach as rules
from cloudbox.volume import store as s
from cloudbox.volume import store_attach as sa


def _settle(db: sqlite_utils.Database, volume: dict[str, Any], at: str) -> None:
    """The volume's status from what is attached, if the attach flow owns its status."""
    if volume["status"] not in rules.FLOW:
        return  # uploading, error, maintenance...: not the attach flow's to change
    status = rules.settled_status(a["attach_status"] for a in sa.attachments_of(db, volume["id"]))
    db["volumes"].update(volume["id"], {"status": status, "updated_at": at})


def _may_attach(db: sqlite_utils.Database, volume: dict[str, Any], instance_uuid: str | None) -> None:
    """Refuse an attachment the volume cannot take: Cinder's 400 (InvalidVolume)."""
    status = volume["status"]
    if status == "available" or (status == "attaching" and not sa.attachments_of(db, volume["id"])):
        return  # attaching with no attachment: an os-reserve awaiting its os-attach
    if status in ("reserved", "attaching", "in-use"):
        if not volume["multiattach"]:
            raise BadRequest(f"Invalid volume: volume {volume['id']} is {status} and is not multiattach; "
                             "detach it first, or use a volume type with multiattach.")
        if instance_uuid and any(a["instance_uuid"] == instance_uuid for a in sa.attachments_of(db, volume["id"])):
            raise BadRequest(f"Invalid volume: volume {volume['id']} is already attached to server "
                             f"{instance_uuid}.")
        return
    raise BadRequest(f"Invalid volume: volume {volume['id']} is {status}; only an available volume (or an "
                     "in-use multiattach one) can be attached.")


def _reserve(db: sqlite_utils.Database, cmd: c.ReserveAttachment) -> dict[str, Any]:
    row = dict(cmd.row)
    volume = s.must_volume(db, row["volume_id"])
    if sa.get_attachment(db, row["id"]) is not None:
        raise Conflict(f"A volume attachment with ID {row['id']} exists already.")
    _may_attach(db, volume, row.get("instance_uuid"))
    if volume["readonly"] and row["attach_mode"] == "rw" and cmd.legacy_attached:
        raise BadRequest(f"Invalid attach mode 'rw' for volume {volume['id']}: it is read-only.")
    row["project_id"] = volume["project_id"]
    if cmd.legacy_attached:
        row.update(attach_status="attached", attach_time=row["created_at"])
    else:
        row["attach_status"] = "attaching" if row["connector"] else "reserved"
    db["volume_attachments"].insert(s.encode(row))
    _settle(db, volume, row["created_at"])
    return sa.must_attachment(db, row["id"])


def _update(db: sqlite_utils.Database, cmd: c.UpdateAttachment) -> dict[str, Any]:
    attachment = sa.must_attachment(db, cmd.id)
    if attachment["attach_status"] not in ("reserved", "attaching"):
        raise BadRequest(f"Invalid volume attachment: attachment {cmd.id} is {attachment['attach_status']}; only "
                         "a reserved attachment takes a connector.")
    changes = {"connector": cmd.connector, "connection_info": cmd.connection_info, "attach_status": "attaching",
               "updated_at": cmd.at}
    if cmd.mountpoint is not None:
        changes["mountpoint"] = cmd.mountpoint
    if cmd.attached_host is not None:
        changes["attached_host"] = cmd.attached_host
    db["volume_attachments"].update(cmd.id, s.encode(changes))
    _settle(db, s.must_volume(db, attachment["volume_id"]), cmd.at)
    return sa.must_attachment(db, cmd.id)


def _complete(db: sqlite_utils.Database, cmd: c.CompleteAttachment) -> dict[str, Any]:
    attachment = sa.must_attachment(db, cmd.id)
    if attachment["attach_status"] == "attached":
        return attachment  # completing twice changes nothing
    if attachment["attach_status"] != "attaching":
        raise BadRequest(f"Invalid volume attachment: attachment {cmd.id} has no connector yet; update it with "
                         "the host's connector before completing it.")
    db["volume_attachments"].update(cmd.id, {"attach_status": "attached", "attach_time": cmd.at,
                                             "updated_at": cmd.at})
    _settle(db, s.must_volume(db, attachment["volume_id"]), cmd.at)
    return sa.must_attachment(db, cmd.id)


def _delete(db: sqlite_utils.Database, cmd: c.DeleteAttachments) -> list[dict[str, Any]]:
    volume = s.must_volume(db, cmd.volume_id)
    for attachment_id in cmd.ids:
        attachment = sa.get_attachment(db, attachment_id)
        if attachment is None or attachment["volume_id"] != cmd.volume_id:
            raise NotFound(f"Volume attachment {attachment_id} of volume {cmd.volume_id} could not be found.")
    for attachment_id in cmd.ids:
        db.execute("DELETE FROM volume_attachments WHERE id = ?", [attachment_id])
    _settle(db, volume, cmd.at)
    return sa.attachments_of(db, cmd.volume_id)


def _mark_exported(db: sqlite_utils.Database, cmd: c.MarkExported) -> dict[str, Any] | None:
    attachment = sa.get_attachment(db, cmd.id)
    info = attachment["connection_info"] if attachment else {}
    if not attachment or attachment["attach_status"] not in ("attaching", "attached") or \
            info.get("driver_volume_type") != "nbd":
        return None  # detached meanwhile, or no longer reached over NBD
    info = {**info, "data": {**info.get("data", {}), "exported": True}}
    db["volume_attachments"].update(cmd.id, s.encode({"connection_info": info, "updated_at": cmd.at}))
    return sa.must_attachment(db, cmd.id)


def _settle_volume(db: sqlite_utils.Database, cmd: c.SettleVolume) -> dict[str, Any]:
    volume = s.must_volume(db, cmd.id)
    if volume["status"] not in cmd.expect:
        raise BadRequest(f"Invalid volume: volume {cmd.id} is {volume['status']}, not {' or '.join(cmd.expect)}.")
    db["volumes"].update(cmd.id, {"status": "available", "updated_at": cmd.at})  # let the attachments decide
    _settle(db, {**volume, "status": "available"}, cmd.at)
    return s.must_volume(db, cmd.id)


def _legacy_reserve(db: sqlite_utils.Database, cmd: c.LegacyReserve) -> dict[str, Any]:
    volume = s.must_volume(db, cmd.id)
    if not (volume["status"] == "available" or (volume["multiattach"] and volume["status"] == "in-use")):
        raise BadRequest(f"Invalid volume: volume {cmd.id} is {volume['status']}; only an available volume (or an "
                         "in-use multiattach one) can be reserved.")
    db["volumes"].update(cmd.id, {"status": "attaching", "updated_at": cmd.at})
    return s.must_volume(db, cmd.id)


# --- uploads ---------------------------------------------------------------------------------
def _begin_upload(db: sqlite_utils.Database, cmd: c.BeginVolumeUpload) -> dict[str, Any]:
    volume = s.must_volume(db, cmd.volume_id)
    if volume["status"] == "in-use" and not cmd.force:
        raise BadRequest(f"Invalid volume: volume {cmd.volume_id} is in-use; upload it with force, or detach it.")
    if volume["status"] not in ("available", "in-use"):
        raise BadRequest(f"Invalid volume: volume {cmd.volume_id} is {volume['status']}; only an available volume "
                         "(or an in-use one with force) can be uploaded to an image.")
    db["volume_uploads"].insert({"volume_id": cmd.volume_id, "image_id": cmd.image_id, "disk_format": cmd.disk_format,
                                 "restore_status": volume["status"], "created_at": cmd.at})
    db["volumes"].update(cmd.volume_id, {"status": "uploading", "updated_at": cmd.at})
    return s.must_volume(db, cmd.volume_id)


def _finish_upload(db: sqlite_utils.Database, cmd: c.FinishVolumeUpload) -> None:
    upload = sa.upload_of(db, cmd.volume_id)
    if upload is None:
        raise NotFound(f"Volume {cmd.volume_id} has no upload running.")
    db.execute("DELETE FROM volume_uploads WHERE volume_id = ?", [cmd.volume_id])
    volume = s.must_volume(db, cmd.volume_id)
    if volume["status"] == "uploading":  # an admin's reset meanwhile wins
        db["volumes"].update(cmd.volume_id, {"status": upload["restore_status"], "message": cmd.message,
                                             "updated_at": cmd.at})
        # A forced upload of an in-use volume whose attachments went meanwhile comes back available.
        _settle(db, s.must_volume(db, cmd.volume_id), cmd.at)


def _reimage(db: sqlite_utils.Database, cmd: c.ReimageVolume) -> dict[str, Any]:
    volume = s.must_volume(db, cmd.id)
    allowed = ("available", "error", "reserved") if cmd.reserved else ("available", "error")
    if volume["status"] not in allowed:
        raise BadRequest(f"Invalid volume: volume {cmd.id} is {volume['status']}; only a volume "
                         f"{', '.join(allowed[:-1])} or {allowed[-1]} can be reimaged"
                         + ("." if cmd.reserved else " (a reserved one with reimage_reserved)."))
    db["volumes"].update(cmd.id, s.encode({"status": "downloading", "image_id": cmd.image_id, "bootable": True,
                                           "image_metadata": cmd.image_metadata, "message": "",
                                           "updated_at": cmd.at}))
    return s.must_volume(db, cmd.id)


# --- QoS specs -------------------------------------------------------------------------------
def _create_qos(db: sqlite_utils.Database, cmd: c.CreateQos) -> dict[str, Any]:
    if list(db.query("SELECT 1 FROM volume_qos_specs WHERE name = ?", [cmd.row["name"]])):
        raise Conflict(f"QoS Specs {cmd.row['name']} already exists.")
    db["volume_qos_specs"].insert(s.encode(cmd.row))
    return sa.must_qos(db, cmd.row["id"])


def _update_qos(db: sqlite_utils.Database, cmd: c.UpdateQos) -> dict[str, Any]:
    qos = sa.must_qos(db, cmd.id)
    specs = dict(qos["specs"])
    for key in cmd.unset:
        if key not in specs:
            raise BadRequest(f"QoS spec {cmd.id} has no key {key}.")
        del specs[key]
    specs.update(cmd.values)
    changes: dict[str, Any] = {"specs": specs, "updated_at": cmd.at}
    if cmd.consumer is not None:
        changes["consumer"] = cmd.consumer
    db["volume_qos_specs"].update(cmd.id, s.encode(changes))
    return sa.must_qos(db, cmd.id)


def _delete_qos(db: sqlite_utils.Database, cmd: c.DeleteQos) -> None:
    sa.must_qos(db, cmd.id)
    if sa.qos_types(db, cmd.id):
        if not cmd.force:
            raise BadRequest(f"QoS Specs {cmd.id} is still associated with entities.")
        db.execute("UPDATE volume_types SET qos_specs_id = NULL WHERE qos_specs_id = ?", [cmd.id])
    db.execute("DELETE FROM volume_qos_specs WHERE id = ?", [cmd.id])


def _associate_qos(db: sqlite_utils.Database, cmd: c.AssociateQos) -> None:
    sa.must_qos(db, cmd.id)
    if cmd.type_id is None:
        db.execute("UPDATE volume_types SET qos_specs_id = NULL WHERE qos_specs_id = ?", [cmd.id])
        return
    kind = s.get_type(db, cmd.type_id)
    if kind is None:
        raise NotFound(f"Volume type {cmd.type_id} could not be found.")
    if cmd.associate:
        if kind["qos_specs_id"] not in (None, cmd.id):
            raise BadRequest(f"Invalid volume type: type {cmd.type_id} is already associated with QoS specs "
                             f"{kind['qos_specs_id']}.")
        db.execute("UPDATE volume_types SET qos_specs_id = ? WHERE id = ?", [cmd.id, cmd.type_id])
    else:
        if kind["qos_specs_id"] != cmd.id:
            raise BadRequest(f"Invalid volume type: type {cmd.type_id} is not associated with QoS specs {cmd.id}.")
        db.execute("UPDATE volume_types SET qos_specs_id = NULL WHERE id = ?", [cmd.type_id])


def _register_backend(db: sqlite_utils.Database, cmd: c.RegisterBackend) -> None:
    db["volume_backends"].upsert(cmd.row, pk="host")


HANDLERS: dict[type, Handler] = {
    c.ReserveAttachment: _reserve,
    c.UpdateAttachment: _update,
    c.CompleteAttachment: _complete,
    c.DeleteAttachments: _delete,
    c.MarkExported: _mark_exported,
    c.SettleVolume: _settle_volume,
    c.LegacyReserve: _legacy_reserve,
    c.BeginVolumeUpload: _begin_upload,
    c.FinishVolumeUpload: _finish_upload,
    c.ReimageVolume: _reimage,
    c.CreateQos: _create_qos,
    c.UpdateQos: _update_qos,
    c.DeleteQos: _delete_qos,
    c.AssociateQos: _associate_qos,
    c.RegisterBackend: _register_backend,
}

"""How volume rows become Cinder v3's JSON (pure)."""

from __future__ import annotations

from typing import Any


def _links(base: str, kind: str, object_id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base}/{kind}/{object_id}"},
            {"rel": "bookmark", "href": f"{base}/{kind}/{object_id}"}]


def volume_summary(base: str, volume: dict[str, Any]) -> dict[str, Any]:
    return {"id": volume["id"], "name": volume["name"], "links": _links(base, "volumes", volume["id"])}


Version = tuple[int, int]
VISIBLE_ADMIN_METADATA = ("readonly", "attached_mode")


def volume(base: str, row: dict[str, Any], *, admin: bool, version: Version = (3, 0),
           extended: bool = True) -> dict[str, Any]:
    """A volume as Cinder shows it at ``version``: fields appear at the microversion that added
    them; the answers of create and update are not ``extended`` with what Cinder's show and list
    extensions add (tenant, host, migration and image attributes), as Tempest's schemas check."""
    out: dict[str, Any] = {
        "id": row["id"], "name": row["name"], "description": row["description"], "size": row["size"],
        "status": row["status"], "availability_zone": row["availability_zone"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
        "attachments": [attached(a) for a in row.get("attachments", ()) if a["attach_status"] == "attached"],
        "bootable": "true" if row["bootable"] else "false",
        "encrypted": False, "multiattach": row["multiattach"],
        # Cinder shows its visible admin metadata (readonly) among the metadata, over the user's keys
        "metadata": {**row["metadata"], **{k: v for k, v in (row.get("admin_metadata") or {}).items()
                                           if k in VISIBLE_ADMIN_METADATA}},
        "snapshot_id": row["snapshot_id"], "source_volid": row["source_volid"], "user_id": row["user_id"],
        "volume_type": row.get("volume_type"), "replication_status": None, "consistencygroup_id": None,
        "migration_status": row["migration_status"], "links": _links(base, "volumes", row["id"]),
    }
    if version >= (3, 13):
        out["group_id"] = row.get("group_id")
    if version >= (3, 21) and admin:
        out["provider_id"] = None
    if version >= (3, 48):
        out["shared_targets"] = False
        out["service_uuid"] = None
    if version >= (3, 61) and admin:
        out["cluster_name"] = None
    if version >= (3, 63):
        out["volume_type_id"] = row["volume_type_id"]
    if version >= (3, 64):
        out["encryption_key_id"] = None
    if version >= (3, 65):
        out["consumes_quota"] = True
    if extended:
        out["os-vol-tenant-attr:tenant_id"] = row["project_id"]
        if row["image_metadata"]:
            out["volume_image_metadata"] = row["image_metadata"]
        if admin:
            out["os-vol-host-attr:host"] = f"{row['host']}@cloudbox#cloudbox"
            out["os-vol-mig-status-attr:migstat"] = row["migration_status"]
            out["os-vol-mig-status-attr:name_id"] = None
    # Why a volume went to error is a user message (GET /messages), as Cinder keeps it.
    return out


def snapshot(row: dict[str, Any], *, version: Version = (3, 0), detail: bool = True) -> dict[str, Any]:
    """A snapshot at ``version``; ``detail`` (show, list detail) adds the extended attributes."""
    out: dict[str, Any] = {
        "id": row["id"], "name": row["name"], "description": row["description"], "volume_id": row["volume_id"],
        "size": row["size"], "status": row["status"], "created_at": row["created_at"],
        "updated_at": row["updated_at"], "metadata": row["metadata"],
    }
    if version >= (3, 14):
        out["group_snapshot_id"] = row.get("group_snapshot_id")
    if version >= (3, 41):
        out["user_id"] = row["user_id"]
    if version >= (3, 65):
        out["consumes_quota"] = True
    if detail:
        out["os-extended-snapshot-attributes:project_id"] = row["project_id"]
        progress = row.get("progress") or ("100%" if row["status"] == "available" else "0%")
        out["os-extended-snapshot-attributes:progress"] = progress  # as reported, else from the status
    return out


def volume_type(row: dict[str, Any], *, admin: bool, answer: str = "show") -> dict[str, Any]:
    """A type as Cinder's ``answer`` (show, create or update) has it: create leaves out the QoS
    specs' id, update the access attribute too."""
    out = {"id": row["id"], "name": row["name"], "description": row["description"], "is_public": row["is_public"]}
    if answer != "update":
        out["os-volume-type-access:is_public"] = row["is_public"]
    if answer == "show":
        out["qos_specs_id"] = row.get("qos_specs_id")
    # Cinder shows extra specs to admins only (they name backends).
    out["extra_specs"] = row["extra_specs"] if admin else {}
    return out


def quota_set(project_id: str, limits: dict[str, int], usage: dict[str, int] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": project_id}
    for key, limit in sorted(limits.items()):
        if usage is None:
            body[key] = limit
        else:
            body[key] = {"limit": limit, "in_use": usage.get(key, 0), "reserved": 0, "allocated": 0}
    return {"quota_set": body}


def limits(limits: dict[str, int], usage: dict[str, int]) -> dict[str, Any]:
    return {"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": limits["volumes"], "maxTotalSnapshots": limits["snapshots"],
        "maxTotalVolumeGigabytes": limits["gigabytes"], "maxTotalBackups": limits["backups"],
        "maxTotalBackupGigabytes": limits["backup_gigabytes"],
        "totalVolumesUsed": usage.get("volumes", 0), "totalGigabytesUsed": usage.get("gigabytes", 0),
        "totalSnapshotsUsed": usage.get("snapshots", 0), "totalBackupsUsed": 0, "totalBackupGigabytesUsed": 0,
    }}}


def zones(names: list[str]) -> dict[str, Any]:
    return {"availabilityZoneInfo": [{"zoneName": n, "zoneState": {"available": True}} for n in names]}


# --- attachments and QoS specs -----------------------------------------------------------------
def attached(row: dict[str, Any]) -> dict[str, Any]:
    """An attachment as a volume's ``attachments`` list shows it (attached ones only, as Cinder)."""
    return {"id": row["volume_id"], "attachment_id": row["id"], "volume_id": row["volume_id"],
            "server_id": row["instance_uuid"], "host_name": row["attached_host"], "device": row["mountpoint"],
            "attached_at": row["attach_time"]}


def attachment_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "status": row["attach_status"], "instance": row["instance_uuid"],
            "volume_id": row["volume_id"]}


def attachment(row: dict[str, Any]) -> dict[str, Any]:
    return {**attachment_summary(row), "attached_at": row["attach_time"], "detached_at": None,
            "attach_mode": row["attach_mode"], "connection_info": row["connection_info"] or None}


def qos(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "consumer": row["consumer"], "specs": row["specs"]}


def qos_links(base: str, qos_id: str) -> list[dict[str, str]]:
    return _links(base, "qos-specs", qos_id)


def message(base: str, row: dict[str, Any]) -> dict[str, Any]:
    """A user message (Cinder 3.3): why a volume or snapshot of the project went to error."""
    return {"id": row["id"], "event_id": row["event_id"], "message_level": row["message_level"],
            "user_message": row["user_message"], "resource_type": row["resource_type"],
            "resource_uuid": row["resource_uuid"], "request_id": row["request_id"], "created_at": row["created_at"],
            "guaranteed_until": row["guaranteed_until"], "links": _links(base, "messages", row["id"])}

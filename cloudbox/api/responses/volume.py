"""Cinder v3 response bodies, by route (paths under /volume/v3, each also under
/volume/v3/{project_scope}, the project in the path as Cinder's older endpoints have it)."""

from __future__ import annotations

from cloudbox.api.responses.shapes import (
    ANY_OBJ, BOOL, EMPTY_LIST, INT, NSTR, STR, STR_MAP, Doc, array, enum, obj, wrap,
)

P = "/volume/v3"
SCOPE = "/{project_scope}"

LINKS = array(obj({"rel": STR, "href": STR}))
VERSION = obj({"id": STR, "status": STR, "version": STR, "min_version": STR, "links": LINKS})
VERSIONS = obj({"versions": array(VERSION)})
VOLUME_STATUS = enum("creating", "available", "reserved", "attaching", "detaching", "in-use", "maintenance",
                     "deleting", "awaiting-transfer", "error", "error_deleting", "backing-up", "restoring-backup",
                     "error_backing-up", "error_restoring", "error_extending", "downloading", "uploading",
                     "retyping", "extending")
# Fields come at the microversion that added them; create and update leave out the tenant, host,
# migration and image attributes (views.volume).
VOLUME = obj(
    {"id": STR, "name": NSTR, "description": NSTR, "size": INT, "status": VOLUME_STATUS,
     "availability_zone": STR, "created_at": STR, "updated_at": NSTR, "attachments": array(ANY_OBJ),
     "bootable": enum("true", "false"), "encrypted": BOOL, "multiattach": BOOL, "metadata": STR_MAP,
     "snapshot_id": NSTR, "source_volid": NSTR, "user_id": NSTR, "volume_type": NSTR,
     "replication_status": NSTR, "consistencygroup_id": NSTR, "migration_status": NSTR, "links": LINKS},
    {"os-vol-tenant-attr:tenant_id": STR, "os-vol-host-attr:host": STR, "volume_image_metadata": STR_MAP,
     "os-vol-mig-status-attr:migstat": NSTR, "os-vol-mig-status-attr:name_id": NSTR,
     "group_id": NSTR, "provider_id": NSTR, "shared_targets": BOOL, "service_uuid": NSTR, "cluster_name": NSTR,
     "volume_type_id": STR, "encryption_key_id": NSTR, "consumes_quota": BOOL},
)
SUMMARY = obj({"id": STR, "name": NSTR, "links": LINKS})
SNAPSHOT = obj({"id": STR, "name": NSTR, "description": NSTR, "volume_id": STR, "size": INT,
                "status": enum("creating", "available", "backing-up", "deleting", "error", "deleted", "unmanaging",
                               "restoring", "error_deleting"),
                "created_at": STR, "updated_at": NSTR, "metadata": STR_MAP},
               # show and list detail add the extended attributes; later microversions the rest
               {"os-extended-snapshot-attributes:project_id": STR,
                "os-extended-snapshot-attributes:progress": STR, "group_snapshot_id": NSTR, "user_id": STR,
                "consumes_quota": BOOL})
# create leaves out qos_specs_id, update the access attribute too
TYPE = obj({"id": STR, "name": STR, "description": NSTR, "is_public": BOOL, "extra_specs": STR_MAP},
           {"os-volume-type-access:is_public": BOOL, "qos_specs_id": NSTR})
PAGE_LINKS = array(obj({"rel": STR, "href": STR}))
METADATA = obj({"metadata": STR_MAP})
META = obj({"meta": STR_MAP})
QUOTA_VALUE = {"anyOf": [INT, obj({"limit": INT, "in_use": INT, "reserved": INT, "allocated": INT})]}
QUOTA_SET = obj({"quota_set": obj({}, {"id": STR}, extra=QUOTA_VALUE)})
DEFAULT_TYPE = obj({"project_id": STR, "volume_type_id": STR})
LIMITS = obj({"limits": obj({"rate": array(ANY_OBJ), "absolute": obj({}, extra=INT)})})
ZONES = obj({"availabilityZoneInfo": array(obj({"zoneName": STR, "zoneState": obj({"available": BOOL})}))})

ATTACHMENT_SUMMARY = obj({"id": STR, "status": enum("reserved", "attaching", "attached", "detaching", "detached"),
                          "instance": NSTR, "volume_id": STR})
ATTACHMENT = obj({**ATTACHMENT_SUMMARY["properties"], "attached_at": NSTR, "detached_at": NSTR,
                  "attach_mode": enum("rw", "ro"), "connection_info": {"type": ["object", "null"]}})
QOS = obj({"id": STR, "name": STR, "consumer": enum("front-end", "back-end", "both"), "specs": STR_MAP})
SERVICE = obj({"binary": STR, "host": STR, "zone": STR, "status": STR, "state": STR, "updated_at": STR})
HOST = obj({"host_name": STR, "service": STR, "zone": STR, "service-status": enum("available", "unavailable"),
            "service-state": enum("enabled", "disabled"), "last-update": NSTR})
HOST_RESOURCE = obj({"resource": obj({"host": STR, "project": STR, "volume_count": STR, "total_volume_gb": STR,
                                      "snapshot_count": STR, "total_snapshot_gb": STR})})
CAPABILITIES = obj({"volume_backend_name": STR, "storage_protocol": STR, "vendor_name": STR, "driver_version": STR,
                    "namespace": STR, "pool_name": NSTR, "description": NSTR, "display_name": NSTR,
                    "visibility": NSTR, "replication_targets": array(ANY_OBJ),
                    "properties": obj({}, extra=obj({"title": STR, "type": STR, "description": STR}))})
MESSAGE = obj({"id": STR, "event_id": STR, "message_level": STR, "user_message": STR, "resource_type": STR,
               "resource_uuid": NSTR, "request_id": STR, "created_at": STR, "guaranteed_until": STR, "links": LINKS})
EXTENSION = obj({"alias": STR, "name": STR, "description": STR, "links": array(ANY_OBJ), "updated": STR})


def _attach_docs() -> dict[tuple[str, str], Doc]:
    attachment, spec = "/attachments/{attachment_id}", "/qos-specs/{qos_id}"
    listed = obj({"attachments": array(ATTACHMENT_SUMMARY)}, {"attachments_links": PAGE_LINKS})
    docs = {
        # The attachments API is 404 below 3.27.
        ("GET", "/attachments"): Doc({200: listed}, errors=(404,)),
        ("GET", "/attachments/detail"): Doc({200: obj({"attachments": array(ATTACHMENT)},
                                                       {"attachments_links": PAGE_LINKS})}, errors=(404,)),
        ("POST", "/attachments"): Doc({200: wrap("attachment", ATTACHMENT)}, errors=(404,)),
        ("GET", attachment): Doc({200: wrap("attachment", ATTACHMENT)}),
        ("PUT", attachment): Doc({200: wrap("attachment", ATTACHMENT)}),
        ("POST", attachment + "/action"): Doc({204: None}),
        ("DELETE", attachment): Doc({200: listed}),
        ("GET", "/qos-specs"): Doc({200: obj({"qos_specs": array(QOS)})}),
        ("POST", "/qos-specs"): Doc({200: obj({"qos_specs": QOS, "links": LINKS})}),
        ("GET", spec): Doc({200: obj({"qos_specs": QOS, "links": LINKS})}),
        ("PUT", spec): Doc({200: obj({"qos_specs": STR_MAP})}),
        ("DELETE", spec): Doc({202: None}),
        ("PUT", spec + "/delete_keys"): Doc({202: None}),
        ("GET", spec + "/associations"): Doc({200: obj({"qos_associations": array(
            obj({"association_type": STR, "name": STR, "id": STR}))})}),
        ("GET", spec + "/associate"): Doc({202: None}),
        ("GET", spec + "/disassociate"): Doc({202: None}),
        ("GET", spec + "/disassociate_all"): Doc({202: None}),
        ("GET", "/os-services"): Doc({200: obj({"services": array(SERVICE)})}),
        ("GET", "/os-hosts"): Doc({200: obj({"hosts": array(HOST)})}),
        ("GET", "/os-hosts/{host}"): Doc({200: obj({"host": array(HOST_RESOURCE)})}),
        ("GET", "/capabilities/{host}"): Doc({200: CAPABILITIES}),
        ("PUT", "/os-services/{service_action}"): Doc({200: obj({"host": STR, "binary": STR, "status": STR})}),
        ("GET", "/resource_filters"): Doc({200: obj({"resource_filters": array(
            obj({"resource": STR, "filters": array(STR)}))})}),
        ("GET", "/scheduler-stats/get_pools"): Doc({200: obj({"pools": array(obj({"name": STR}))})}),
    }
    for path, key in (("/consistencygroups", "consistencygroups"), ("/consistencygroups/detail", "consistencygroups"),
                      ("/clusters", "clusters"), ("/clusters/detail", "clusters")):
        docs[("GET", path)] = Doc({200: obj({key: EMPTY_LIST})})
    return docs


TRANSFER = obj({"id": STR, "name": NSTR, "volume_id": STR, "links": LINKS},
               {"created_at": STR, "auth_key": STR, "no_snapshots": BOOL, "source_project_id": STR,
                "destination_project_id": NSTR, "accepted": BOOL})


def _transfer_docs() -> dict[tuple[str, str], Doc]:
    """Both transfer APIs; /volume-transfers is 404 below 3.55 (and a list's unknown marker is 404)."""
    docs: dict[tuple[str, str], Doc] = {}
    for prefix in ("/os-volume-transfer", "/volume-transfers"):
        listed = obj({"transfers": array(TRANSFER)}, {"transfers_links": PAGE_LINKS})
        docs.update({
            ("POST", prefix): Doc({202: wrap("transfer", TRANSFER)}, errors=(404,)),
            ("GET", prefix): Doc({200: listed}, errors=(404,)),
            ("GET", prefix + "/detail"): Doc({200: listed}, errors=(404,)),
            ("GET", prefix + "/{transfer_id}"): Doc({200: wrap("transfer", TRANSFER)}),
            ("DELETE", prefix + "/{transfer_id}"): Doc({202: None}),
            ("POST", prefix + "/{transfer_id}/accept"): Doc({202: wrap("transfer", TRANSFER)}, errors=(413,)),
        })
    return docs


GROUP_TYPE = obj({"id": STR, "name": STR, "description": NSTR, "is_public": BOOL, "group_specs": STR_MAP})
GROUP = obj({"id": STR, "name": NSTR},
            {"description": NSTR, "status": STR, "availability_zone": STR, "created_at": STR, "group_type": STR,
             "group_snapshot_id": NSTR, "source_group_id": NSTR, "volume_types": array(STR), "volumes": array(STR),
             "replication_status": NSTR})
GROUP_SNAPSHOT = obj({"id": STR, "name": NSTR},
                     {"created_at": STR, "group_id": STR, "status": STR, "description": NSTR, "group_type_id": STR})


def _group_docs() -> dict[tuple[str, str], Doc]:
    """Group types (3.11+), groups (3.13+), group snapshots (3.14+): 404 below their microversion."""
    kind, spec, one, snap = ("/group_types/{type_id}", "/group_types/{type_id}/group_specs", "/groups/{group_id}",
                             "/group_snapshots/{group_snapshot_id}")
    new = (404,)
    return {
        ("GET", "/group_types"): Doc({200: obj({"group_types": array(GROUP_TYPE)})}, errors=new),
        ("POST", "/group_types"): Doc({202: wrap("group_type", GROUP_TYPE)}, errors=new),
        ("GET", kind): Doc({200: wrap("group_type", GROUP_TYPE)}),
        ("PUT", kind): Doc({200: wrap("group_type", GROUP_TYPE)}),
        ("DELETE", kind): Doc({202: None}),
        ("GET", spec): Doc({200: obj({"group_specs": STR_MAP})}),
        ("POST", spec): Doc({202: obj({"group_specs": STR_MAP})}),
        ("GET", spec + "/{key}"): Doc({200: STR_MAP}),
        ("PUT", spec + "/{key}"): Doc({200: STR_MAP}),
        ("DELETE", spec + "/{key}"): Doc({202: None}),
        ("POST", "/groups"): Doc({202: wrap("group", GROUP)}, errors=new),
        ("POST", "/groups/action"): Doc({202: wrap("group", GROUP)}, errors=new),
        ("GET", "/groups"): Doc({200: obj({"groups": array(GROUP)}, {"groups_links": PAGE_LINKS})}, errors=new),
        ("GET", "/groups/detail"): Doc({200: obj({"groups": array(GROUP)}, {"groups_links": PAGE_LINKS})},
                                       errors=new),
        ("GET", one): Doc({200: wrap("group", GROUP)}),
        ("PUT", one): Doc({202: None}),
        ("POST", one + "/action"): Doc({202: None}),
        ("POST", "/group_snapshots"): Doc({202: wrap("group_snapshot", GROUP_SNAPSHOT)}, errors=new),
        ("GET", "/group_snapshots"): Doc({200: obj({"group_snapshots": array(GROUP_SNAPSHOT)},
                                                   {"group_snapshots_links": PAGE_LINKS})}, errors=new),
        ("GET", "/group_snapshots/detail"): Doc({200: obj({"group_snapshots": array(GROUP_SNAPSHOT)},
                                                          {"group_snapshots_links": PAGE_LINKS})}, errors=new),
        ("GET", snap): Doc({200: wrap("group_snapshot", GROUP_SNAPSHOT)}),
        ("DELETE", snap): Doc({202: None}),
        ("POST", snap + "/action"): Doc({202: None}),
    }


BACKUP = obj({"id": STR, "name": NSTR, "links": LINKS},
             # show and list detail: the rest (metadata 3.43+, user_id 3.56+, the project to admins 3.18+)
             {"status": enum("creating", "available", "deleting", "error", "error_deleting", "restoring"),
              "size": INT, "object_count": INT, "availability_zone": STR, "container": STR, "created_at": STR,
              "updated_at": STR, "description": NSTR, "fail_reason": NSTR, "volume_id": STR, "is_incremental": BOOL,
              "has_dependent_backups": BOOL, "snapshot_id": NSTR, "data_timestamp": STR, "metadata": STR_MAP,
              "user_id": NSTR, "os-backup-project-attr:project_id": STR, "encryption_key_id": NSTR})


def _backup_docs() -> dict[tuple[str, str], Doc]:
    """Backups; PUT is 404 below 3.9."""
    one = "/backups/{backup_id}"
    listed = obj({"backups": array(BACKUP)}, {"backups_links": PAGE_LINKS, "count": INT})
    return {
        # An unknown marker is Cinder's 404, as in the volume and snapshot lists.
        ("GET", "/backups"): Doc({200: listed}, errors=(404,)),
        ("GET", "/backups/detail"): Doc({200: listed}, errors=(404,)),
        ("POST", "/backups"): Doc({202: wrap("backup", BACKUP)}, errors=(404, 413)),
        ("GET", one): Doc({200: wrap("backup", BACKUP)}),
        ("PUT", one): Doc({200: wrap("backup", BACKUP)}),
        ("DELETE", one): Doc({202: None}),
        ("POST", one + "/restore"): Doc({202: obj({"restore": obj({"backup_id": STR, "volume_id": STR,
                                                                    "volume_name": NSTR})})}, errors=(413,)),
        ("POST", one + "/action"): Doc({202: None}),
        ("GET", one + "/export_record"): Doc({200: obj({"backup-record": obj({"backup_service": STR,
                                                                             "backup_url": STR})})}),
        ("POST", "/backups/import_record"): Doc({201: wrap("backup", BACKUP)}),
    }


def _relative() -> dict[tuple[str, str], Doc]:
    volume, snapshot, kind, quota = "/volumes/{volume_id}", "/snapshots/{snapshot_id}", "/types/{type_id}", \
        "/os-quota-sets/{project_id}"
    docs = {
        # An unknown marker is Cinder's 404 in the volume and snapshot lists.
        ("GET", "/volumes"): Doc({200: obj({"volumes": array(SUMMARY)}, {"volumes_links": PAGE_LINKS})},
                                 errors=(404,)),
        ("GET", "/volumes/detail"): Doc({200: obj({"volumes": array(VOLUME)}, {"volumes_links": PAGE_LINKS})},
                                        errors=(404,)),
        ("GET", "/volumes/summary"): Doc({200: obj({"volume-summary": obj(
            {"total_count": INT, "total_size": INT, "metadata": obj({}, extra=array(STR))})})}),
        ("POST", "/volumes"): Doc({202: wrap("volume", VOLUME)}, errors=(413,)),
        ("GET", volume): Doc({200: wrap("volume", VOLUME)}),
        ("PUT", volume): Doc({200: wrap("volume", VOLUME)}),
        ("DELETE", volume): Doc({202: None}),
        # Most actions answer no body; os-initialize_connection answers {"connection_info"} (200) and
        # os-volume_upload_image {"os-volume_upload_image"} (202).
        ("POST", volume + "/action"): Doc({200: None, 202: None}, errors=(413, 503)),
        ("GET", "/snapshots"): Doc({200: obj({"snapshots": array(SNAPSHOT)}, {"snapshots_links": PAGE_LINKS})},
                                   errors=(404,)),
        ("GET", "/snapshots/detail"): Doc({200: obj({"snapshots": array(SNAPSHOT)},
                                                     {"snapshots_links": PAGE_LINKS})}, errors=(404,)),
        ("POST", "/snapshots"): Doc({202: wrap("snapshot", SNAPSHOT)}, errors=(413,)),
        ("GET", snapshot): Doc({200: wrap("snapshot", SNAPSHOT)}),
        ("PUT", snapshot): Doc({200: wrap("snapshot", SNAPSHOT)}),
        ("DELETE", snapshot): Doc({202: None}),
        ("POST", snapshot + "/action"): Doc({202: None}),
        ("GET", "/types"): Doc({200: obj({"volume_types": array(TYPE)})}),
        ("POST", "/types"): Doc({200: wrap("volume_type", TYPE)}),
        ("GET", kind): Doc({200: wrap("volume_type", TYPE)}),
        ("PUT", kind): Doc({200: wrap("volume_type", TYPE)}),
        ("DELETE", kind): Doc({202: None}),
        ("GET", kind + "/extra_specs"): Doc({200: obj({"extra_specs": STR_MAP})}),
        ("POST", kind + "/extra_specs"): Doc({200: obj({"extra_specs": STR_MAP})}),
        ("GET", kind + "/extra_specs/{key}"): Doc({200: STR_MAP}),
        ("PUT", kind + "/extra_specs/{key}"): Doc({200: STR_MAP}),
        ("DELETE", kind + "/extra_specs/{key}"): Doc({202: None}),
        ("GET", kind + "/os-volume-type-access"): Doc({200: obj({"volume_type_access": array(
            obj({"volume_type_id": STR, "project_id": STR}))})}),
        ("POST", kind + "/action"): Doc({202: None}),
        ("GET", "/default-types"): Doc({200: obj({"default_types": array(DEFAULT_TYPE)})}),
        ("GET", "/default-types/{project_id}"): Doc({200: wrap("default_type", DEFAULT_TYPE)}),
        ("PUT", "/default-types/{project_id}"): Doc({200: wrap("default_type", DEFAULT_TYPE)}),
        ("DELETE", "/default-types/{project_id}"): Doc({204: None}),
        ("GET", quota): Doc({200: QUOTA_SET}),
        ("GET", quota + "/defaults"): Doc({200: QUOTA_SET}),
        ("PUT", quota): Doc({200: QUOTA_SET}),
        ("DELETE", quota): Doc({200: None}),
        ("GET", "/os-quota-class-sets/{name}"): Doc({200: obj({"quota_class_set": ANY_OBJ})}),
        ("PUT", "/os-quota-class-sets/{name}"): Doc({200: obj({"quota_class_set": ANY_OBJ})}),
        ("GET", "/limits"): Doc({200: LIMITS}),
        # The messages API is 404 below 3.3 (and for an unknown marker).
        ("GET", "/messages"): Doc({200: obj({"messages": array(MESSAGE)}, {"messages_links": PAGE_LINKS})},
                                  errors=(404,)),
        ("GET", "/messages/{message_id}"): Doc({200: wrap("message", MESSAGE)}),
        ("DELETE", "/messages/{message_id}"): Doc({204: None}),
        ("GET", "/os-availability-zone"): Doc({200: ZONES}),
        ("GET", "/extensions"): Doc({200: obj({"extensions": array(EXTENSION)})}),
    }
    for owner in ("/volumes/{volume_id}", "/snapshots/{snapshot_id}"):
        base = owner + "/metadata"
        docs.update({
            ("GET", base): Doc({200: METADATA}), ("POST", base): Doc({200: METADATA}),
            ("PUT", base): Doc({200: METADATA}), ("GET", base + "/{meta_key}"): Doc({200: META}),
            ("PUT", base + "/{meta_key}"): Doc({200: META}), ("DELETE", base + "/{meta_key}"): Doc({200: None}),
        })
    docs.update(_attach_docs())
    docs.update(_transfer_docs())
    docs.update(_group_docs())
    docs.update(_backup_docs())
    return docs


def docs() -> dict[tuple[str, str], Doc]:
    out = {("GET", P): Doc({200: VERSIONS}, anonymous=True),
           ("GET", "/volume"): Doc({300: VERSIONS}, anonymous=True)}
    for (method, path), doc in _relative().items():
        out[(method, P + path)] = doc
        out[(method, P + SCOPE + path)] = doc
    return out


__all__ = ["docs"]

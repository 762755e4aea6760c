"""Nova v2.1 response bodies, by route (paths under /compute/v2.1).

Fields that only some microversions show are optional; statuses that depend on the
microversion are all listed (key pairs: 200 and 202 at 2.1, 201 and 204 from 2.2).
"""

from __future__ import annotations

from cloudbox.api.responses.shapes import (
    ANY_OBJ, BOOL, EMPTY_LIST, INT, NINT, NSTR, NUM, STR, STR_MAP, STRS, Body, Doc, Schema, array, enum, header,
    nullable, obj, wrap,
)

P = "/compute/v2.1"

# Any microversion from 2.1 to 2.96, or "latest"; another answers 406, a malformed one 400.
MICROVERSION = header(
    "OpenStack-API-Version", {"type": "string", "pattern": r"^compute (latest|2\.([1-9]|[1-8][0-9]|9[0-6]))$"},
    description="The compute microversion wanted (Nova's microversions 2.1 to 2.96)",
)
LINKS = array(obj({"rel": STR, "href": STR}))
NEXT_LINKS = LINKS
VERSION = obj({"id": STR, "status": STR, "version": STR, "min_version": STR, "updated": STR, "links": LINKS,
               "media-types": array(obj({"base": STR, "type": STR}))})

FLAVOR_SUMMARY = obj({"id": STR, "name": STR, "links": LINKS}, {"description": NSTR})
FLAVOR = obj(
    {"id": STR, "name": STR, "vcpus": INT, "ram": INT, "disk": INT, "OS-FLV-EXT-DATA:ephemeral": INT,
     "swap": {"anyOf": [INT, {"const": ""}]}, "rxtx_factor": NUM, "os-flavor-access:is_public": BOOL,
     "OS-FLV-DISABLED:disabled": BOOL, "links": LINKS},
    {"description": NSTR, "extra_specs": STR_MAP},
)
SERVER_SUMMARY = obj({"id": STR, "name": STR, "links": LINKS})
SERVER_STATUS = enum("ACTIVE", "BUILD", "DELETED", "ERROR", "HARD_REBOOT", "MIGRATING", "PASSWORD", "PAUSED",
                     "REBOOT", "REBUILD", "RESCUE", "RESIZE", "REVERT_RESIZE", "SHELVED", "SHELVED_OFFLOADED",
                     "SHUTOFF", "SOFT_DELETED", "SUSPENDED", "UNKNOWN", "VERIFY_RESIZE")
ADDRESS = obj({"addr": STR, "version": enum(4, 6)}, {"OS-EXT-IPS:type": enum("fixed", "floating"),
                                                     "OS-EXT-IPS-MAC:mac_addr": STR})
SERVER_FLAVOR = {"anyOf": [
    obj({"id": STR, "links": LINKS}),  # before 2.47
    obj({"vcpus": INT, "ram": INT, "disk": INT, "ephemeral": INT, "swap": INT, "original_name": STR},
        {"extra_specs": STR_MAP}),
]}
SERVER = obj(
    {"id": STR, "name": STR, "status": SERVER_STATUS, "tenant_id": STR, "user_id": STR, "metadata": STR_MAP,
     "hostId": STR, "image": {"anyOf": [obj({"id": STR, "links": LINKS}), {"const": ""}]},
     "flavor": SERVER_FLAVOR, "created": STR, "updated": STR,
     "addresses": {"type": "object", "additionalProperties": array(ADDRESS)},
     "accessIPv4": STR, "accessIPv6": STR, "links": LINKS, "OS-DCF:diskConfig": enum("AUTO", "MANUAL"),
     "OS-EXT-AZ:availability_zone": STR, "config_drive": STR, "key_name": NSTR,
     "OS-SRV-USG:launched_at": NSTR, "OS-SRV-USG:terminated_at": NSTR, "OS-EXT-STS:task_state": NSTR,
     "OS-EXT-STS:vm_state": STR, "OS-EXT-STS:power_state": INT,
     "os-extended-volumes:volumes_attached": array(obj({"id": STR}, {"delete_on_termination": BOOL})),
     "security_groups": array(obj({"name": STR}))},
    {"fault": obj({"code": INT, "message": STR}, {"created": STR, "details": STR}), "locked": BOOL, "progress": INT,
     "description": NSTR, "tags": STRS, "trusted_image_certificates": nullable(STRS), "locked_reason": NSTR,
     "pinned_availability_zone": NSTR, "host_status": NSTR, "server_groups": STRS, "OS-EXT-SRV-ATTR:host": NSTR,
     "OS-EXT-SRV-ATTR:hypervisor_hostname": NSTR, "OS-EXT-SRV-ATTR:instance_name": STR,
     "OS-EXT-SRV-ATTR:hostname": STR, "OS-EXT-SRV-ATTR:reservation_id": STR,
     "OS-EXT-SRV-ATTR:launch_index": INT, "OS-EXT-SRV-ATTR:kernel_id": STR, "OS-EXT-SRV-ATTR:ramdisk_id": STR,
     "OS-EXT-SRV-ATTR:root_device_name": NSTR, "OS-EXT-SRV-ATTR:user_data": NSTR},
)
# An update's answer (and a rebuild's) before 2.75: the basic server, without the extended attributes.
# A server's volume (os-volume_attachments): id until 2.89, tag from 2.70, delete_on_termination
# from 2.79, attachment_id and bdm_uuid from 2.89.
VOLUME_ATTACHMENT = obj({"serverId": STR, "volumeId": STR, "device": NSTR},
                        {"id": STR, "tag": NSTR, "delete_on_termination": BOOL, "attachment_id": NSTR,
                         "bdm_uuid": STR})
SERVER_CHANGED = obj(
    {"id": STR, "name": STR, "status": SERVER_STATUS, "tenant_id": STR, "user_id": STR, "metadata": STR_MAP,
     "hostId": STR, "image": {"anyOf": [obj({"id": STR, "links": LINKS}), {"const": ""}]},
     "flavor": SERVER_FLAVOR, "created": STR, "updated": STR,
     "addresses": {"type": "object", "additionalProperties": array(obj({"addr": STR, "version": enum(4, 6)}))},
     "accessIPv4": STR, "accessIPv6": STR, "links": LINKS, "OS-DCF:diskConfig": enum("AUTO", "MANUAL")},
    SERVER["properties"],
)
SERVER_CREATED = {"anyOf": [
    wrap("server", obj({"id": STR, "links": LINKS, "OS-DCF:diskConfig": enum("AUTO", "MANUAL"),
                        "security_groups": array(obj({"name": STR}))}, {"adminPass": STR})),
    obj({"reservation_id": STR}),  # return_reservation_id
]}
KEYPAIR_TYPE = enum("ssh", "x509")
KEYPAIR_CREATED = wrap("keypair", obj({"name": STR, "public_key": STR, "fingerprint": STR, "user_id": STR},
                                      {"type": KEYPAIR_TYPE, "private_key": STR}))
KEYPAIR = obj({"name": STR, "public_key": STR, "fingerprint": STR, "user_id": STR, "created_at": STR,
               "deleted": BOOL, "deleted_at": NSTR, "updated_at": NSTR, "id": INT}, {"type": KEYPAIR_TYPE})
KEYPAIR_SUMMARY = obj({"name": STR, "public_key": STR, "fingerprint": STR}, {"type": KEYPAIR_TYPE})
QUOTA_VALUE = {"anyOf": [INT, obj({"limit": INT, "in_use": INT, "reserved": INT})]}
QUOTA_SET = wrap("quota_set", obj({}, {"id": STR}, extra=QUOTA_VALUE))
SERVER_USAGE = obj({"instance_id": STR, "name": STR, "hours": NUM, "vcpus": INT, "memory_mb": INT,
                    "local_gb": INT, "flavor": STR, "state": STR, "started_at": STR, "ended_at": NSTR,
                    "uptime": INT, "tenant_id": STR})
TENANT_USAGE = obj({"tenant_id": STR, "total_hours": NUM, "total_vcpus_usage": NUM, "total_memory_mb_usage": NUM,
                    "total_local_gb_usage": NUM, "start": STR, "stop": STR}, {"server_usages": array(SERVER_USAGE)})
ZONE = obj({"zoneName": STR, "zoneState": obj({"available": BOOL}),
            "hosts": nullable({"type": "object", "additionalProperties": {"type": "object"}})})
# Nova's volume proxies (os-volumes, os-snapshots, to 2.35): an unattached volume's attachments are [{}]
PROXY_VOLUME = obj({"id": STR, "status": STR, "size": INT, "availabilityZone": STR, "createdAt": STR,
                    "displayName": NSTR, "displayDescription": NSTR, "volumeType": NSTR, "snapshotId": NSTR,
                    "metadata": STR_MAP, "attachments": array(obj({}, {"id": STR, "volumeId": STR, "serverId": STR,
                                                                       "device": STR}))})
PROXY_SNAPSHOT = obj({"id": STR, "volumeId": STR, "status": STR, "size": INT, "createdAt": STR,
                      "displayName": NSTR, "displayDescription": NSTR})
HYPERVISOR_ID = {"type": ["integer", "string"]}  # an integer before 2.53, a UUID from 2.53
HYPERVISOR = obj({"id": HYPERVISOR_ID, "hypervisor_hostname": STR, "state": enum("up", "down"),
                  "status": enum("enabled", "disabled")},
                 {"hypervisor_type": STR, "hypervisor_version": INT, "host_ip": STR, "service": ANY_OBJ,
                  "vcpus": INT, "memory_mb": INT, "local_gb": INT, "vcpus_used": INT, "memory_mb_used": INT,
                  "local_gb_used": INT, "free_ram_mb": INT, "free_disk_gb": INT, "running_vms": INT,
                  "current_workload": INT, "disk_available_least": NINT, "uptime": NSTR,
                  "cpu_info": {"type": ["object", "string"]},  # a JSON string before 2.28
                  "servers": array(obj({"uuid": STR, "name": STR}))})
SERVICE = obj({"id": {"type": ["integer", "string"]}, "binary": STR, "host": STR, "zone": STR,
               "status": enum("enabled", "disabled"), "state": enum("up", "down"), "updated_at": NSTR,
               "disabled_reason": NSTR}, {"forced_down": BOOL})
EVENTS = obj({"events": array(obj({"name": STR, "server_uuid": STR, "code": INT},
                                   {"status": STR, "tag": STR}))})
POLICY = enum("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
SERVER_GROUP = obj({"id": STR, "name": STR, "members": STRS},
                   {"policies": array(POLICY), "policy": POLICY, "rules": ANY_OBJ, "metadata": ANY_OBJ,
                    "project_id": STR, "user_id": STR})
AGGREGATE = obj({"id": INT, "name": STR, "availability_zone": NSTR, "hosts": STRS,
                 "metadata": {"type": "object", "additionalProperties": NSTR}, "created_at": STR,
                 "updated_at": NSTR, "deleted": BOOL, "deleted_at": NSTR}, {"uuid": STR})
AGGREGATE_CREATED = obj({"id": INT, "name": STR, "availability_zone": NSTR, "created_at": STR, "updated_at": NSTR,
                         "deleted": BOOL, "deleted_at": NSTR}, {"uuid": STR})  # Nova's create: no hosts, no metadata
FLAVOR_ACCESS = obj({"flavor_access": array(obj({"flavor_id": STR, "tenant_id": STR}))})


NOVA_RULE = obj({"id": STR, "parent_group_id": STR, "ip_protocol": NSTR, "from_port": INT, "to_port": INT,
                 "group": ANY_OBJ, "ip_range": ANY_OBJ})
NOVA_GROUP = obj({"id": STR, "name": STR, "description": STR, "tenant_id": STR, "rules": array(NOVA_RULE)})
EXTENSION = obj({"name": STR, "alias": STR, "description": STR, "links": LINKS, "namespace": STR, "updated": STR})
NOVA_FIP = obj({"id": STR, "ip": NSTR, "fixed_ip": NSTR, "instance_id": NSTR, "pool": NSTR})
NOVA_IMAGE = obj({"id": STR, "name": NSTR, "links": LINKS}, {
    "minRam": INT, "minDisk": INT, "metadata": ANY_OBJ, "created": NSTR, "updated": NSTR, "status": STR,
    "progress": INT, "OS-EXT-IMG-SIZE:size": {"type": ["integer", "null"]}, "server": ANY_OBJ})
NOVA_HOST = obj({"host_name": STR, "service": STR, "zone": STR})
NOVA_NETWORK = obj({"id": STR, "label": STR})
TENANT_NETWORK = obj({"id": STR, "label": STR, "cidr": NSTR})
QUOTA_CLASS_SET = obj({}, {"id": STR}, extra=QUOTA_VALUE)
IPS = {"type": "object", "additionalProperties": array(obj({"addr": STR, "version": enum(4, 6)}))}
MIGRATION = obj({"id": {"type": ["integer", "string"]}, "status": STR, "instance_uuid": STR, "source_node": NSTR,
                 "source_compute": NSTR, "dest_node": NSTR, "dest_compute": NSTR, "dest_host": NSTR,
                 "created_at": NSTR, "updated_at": NSTR},
                {"old_instance_type_id": {"type": ["integer", "string", "null"]},
                 "new_instance_type_id": {"type": ["integer", "string", "null"]}, "migration_type": STR,
                 "uuid": STR, "user_id": NSTR, "project_id": NSTR})
ACTION_FIELDS = {"action": STR, "instance_uuid": STR, "request_id": STR, "user_id": STR, "project_id": STR,
                 "start_time": STR, "message": NSTR}
INSTANCE_ACTION = obj(ACTION_FIELDS, {"updated_at": NSTR})
ACTION_EVENT = obj({"event": STR, "start_time": STR, "finish_time": NSTR, "result": NSTR},
                   {"traceback": NSTR, "host": STR, "hostId": STR, "details": NSTR})
DIAGNOSTICS = {"anyOf": [
    obj({"state": STR, "driver": STR, "hypervisor": NSTR, "hypervisor_os": NSTR, "uptime": NINT,
         "config_drive": BOOL, "num_cpus": INT, "num_nics": INT, "num_disks": INT,
         "memory_details": obj({"maximum": NINT, "used": NINT}),
         "cpu_details": array(obj({"id": NINT, "time": NINT, "utilisation": NINT})),
         "nic_details": array(obj({"mac_address": NSTR, **{k: NINT for k in (
             "rx_octets", "rx_errors", "rx_drop", "rx_packets", "rx_rate", "tx_octets", "tx_errors", "tx_drop",
             "tx_packets", "tx_rate")}})),
         "disk_details": array(obj({k: NINT for k in (
             "read_bytes", "read_requests", "write_bytes", "write_requests", "errors_count")}))}),
    {"type": "object", "additionalProperties": NINT},  # before 2.48: the driver's own flat counters
]}
AUDIT_LOG = obj({"hosts_not_run": STRS, "log": {"type": "object", "additionalProperties": obj(
    {"state": STR, "instances": INT, "errors": INT, "message": STR})}, "num_hosts": INT, "num_hosts_done": INT,
    "num_hosts_not_run": INT, "num_hosts_running": INT, "overall_status": STR, "period_beginning": STR,
    "period_ending": STR, "total_errors": INT, "total_instances": INT})


CONSOLE = obj({"type": STR, "url": STR})
REMOTE_CONSOLE = obj({"protocol": STR, "type": STR, "url": STR})
CONSOLE_TOKEN = obj({"instance_uuid": STR, "host": STR, "port": NINT, "internal_access_path": NSTR})


def nova(responses: dict[int, Body], *errors: int, anonymous: bool = False) -> Doc:
    """Every compute route negotiates the microversion: 406 for one out of range."""
    return Doc(responses, errors=(406, *errors), headers=(MICROVERSION,), anonymous=anonymous)


def listing(key: str, item: Schema) -> Schema:
    return obj({key: array(item)}, {f"{key}_links": NEXT_LINKS})


def docs() -> dict[tuple[str, str], Doc]:
    server = f"{P}/servers/{{server_id}}"
    flavor = f"{P}/flavors/{{flavor_id}}"
    aggregate = f"{P}/os-aggregates/{{aggregate_id}}"
    quota = f"{P}/os-quota-sets/{{project_id}}"
    metadata = obj({"metadata": STR_MAP})
    return {
        ("GET", P): nova({200: wrap("version", VERSION)}, anonymous=True),
        ("GET", "/compute"): Doc({200: obj({"versions": array(VERSION)})}, anonymous=True),
        ("GET", "/compute/v2"): Doc({200: wrap("version", VERSION)}, anonymous=True),  # Nova's legacy v2
        # servers
        # With block_device_mapping(_v2) a server boots from a volume (imageRef "" allowed): Nova's
        # 400s for bad mappings (boot sequence, sizes, a volume/image/snapshot not found or a volume
        # not available or not bootable, ephemeral/swap local disks: not built); 503 without volumes.
        ("POST", f"{P}/servers"): nova({202: SERVER_CREATED}),
        ("GET", f"{P}/servers"): nova({200: listing("servers", SERVER_SUMMARY)}),
        ("GET", f"{P}/servers/detail"): nova({200: listing("servers", SERVER)}),
        ("GET", server): nova({200: wrap("server", SERVER)}),
        ("PUT", server): nova({200: wrap("server", {"anyOf": [SERVER, SERVER_CHANGED]})}),
        ("DELETE", server): nova({204: None}),
        # os-getConsoleOutput answers 200 with the output; the other actions 202, with a body for some
        # (rebuild, createImage from 2.45), so the 202 body is left undescribed. A volume-backed
        # server: createImage snapshots its volumes (an image with no data, bdm_v2 True), createBackup
        # and a rebuild with another image than its volume's are 400s (Nova's, below 2.93).
        # (rescue answers 200 with the rescue password; confirmResize 204)
        ("POST", f"{server}/action"): nova({200: {"anyOf": [obj({"output": STR}), obj({"adminPass": STR}),
                                                            wrap("console", CONSOLE)]},
                                            202: None, 204: None}),
        # remote consoles (cloudbox.console): a URL with a one-time token; 404 before 2.6, 409 for a
        # server that is not ACTIVE, 400 for a protocol other than vnc and serial
        ("POST", f"{server}/remote-consoles"): nova({200: wrap("remote_console", REMOTE_CONSOLE)}),
        # an admin's look at a token: 401 before 2.31 (Nova's, for consoles other than RDP)
        ("GET", f"{P}/os-console-auth-tokens/{{console_token}}"): nova({200: wrap("console", CONSOLE_TOKEN)}),
        ("GET", f"{server}/metadata"): nova({200: metadata}),
        ("POST", f"{server}/metadata"): nova({200: metadata}),
        ("PUT", f"{server}/metadata"): nova({200: metadata}),
        ("GET", f"{server}/metadata/{{key}}"): nova({200: obj({"meta": STR_MAP})}),
        ("PUT", f"{server}/metadata/{{key}}"): nova({200: obj({"meta": STR_MAP})}),
        ("DELETE", f"{server}/metadata/{{key}}"): nova({204: None}),
        ("GET", f"{server}/tags"): nova({200: obj({"tags": STRS})}),
        ("PUT", f"{server}/tags"): nova({200: obj({"tags": STRS})}),
        ("DELETE", f"{server}/tags"): nova({204: None}),
        ("GET", f"{server}/tags/{{tag}}"): nova({204: None}),
        ("PUT", f"{server}/tags/{{tag}}"): nova({201: None, 204: None}),  # 204: the server had the tag
        ("DELETE", f"{server}/tags/{{tag}}"): nova({204: None}),
        # flavors
        ("GET", f"{P}/flavors"): nova({200: listing("flavors", FLAVOR_SUMMARY)}),
        ("GET", f"{P}/flavors/detail"): nova({200: listing("flavors", FLAVOR)}),
        ("POST", f"{P}/flavors"): nova({200: wrap("flavor", FLAVOR)}),
        ("GET", flavor): nova({200: wrap("flavor", FLAVOR)}),
        ("PUT", flavor): nova({200: wrap("flavor", FLAVOR)}),
        ("DELETE", flavor): nova({202: None}),
        ("POST", f"{flavor}/action"): nova({200: FLAVOR_ACCESS}),
        ("GET", f"{flavor}/os-flavor-access"): nova({200: FLAVOR_ACCESS}),
        ("GET", f"{flavor}/os-extra_specs"): nova({200: obj({"extra_specs": STR_MAP})}),
        ("POST", f"{flavor}/os-extra_specs"): nova({200: obj({"extra_specs": STR_MAP})}),
        ("GET", f"{flavor}/os-extra_specs/{{key}}"): nova({200: STR_MAP}),
        ("PUT", f"{flavor}/os-extra_specs/{{key}}"): nova({200: STR_MAP}),
        ("DELETE", f"{flavor}/os-extra_specs/{{key}}"): nova({200: None}),
        # key pairs: Nova's base microversion answers create 200 and delete 202; 2.2 and later 201 and 204
        ("GET", f"{P}/os-keypairs"): nova({200: listing("keypairs", obj({"keypair": KEYPAIR_SUMMARY}))}),
        ("POST", f"{P}/os-keypairs"): nova({200: KEYPAIR_CREATED, 201: KEYPAIR_CREATED}),
        ("GET", f"{P}/os-keypairs/{{name}}"): nova({200: wrap("keypair", KEYPAIR)}),
        ("DELETE", f"{P}/os-keypairs/{{name}}"): nova({202: None, 204: None}),
        # limits, quotas, usage
        ("GET", f"{P}/limits"): nova({200: wrap("limits", obj({
            "absolute": {"type": "object", "additionalProperties": INT}, "rate": EMPTY_LIST}))}),
        ("GET", quota): nova({200: QUOTA_SET}),
        ("PUT", quota): nova({200: QUOTA_SET}),
        ("DELETE", quota): nova({202: None}),
        ("GET", f"{quota}/detail"): nova({200: QUOTA_SET}),
        ("GET", f"{quota}/defaults"): nova({200: QUOTA_SET}),
        ("GET", f"{P}/os-simple-tenant-usage"): nova({200: obj({"tenant_usages": array(TENANT_USAGE)})}),
        ("GET", f"{P}/os-simple-tenant-usage/{{project_id}}"): nova({200: obj({"tenant_usage": {
            "anyOf": [TENANT_USAGE, {"type": "object", "maxProperties": 0}]}})}),
        # zones, hypervisors, services
        ("GET", f"{P}/os-availability-zone"): nova({200: obj({"availabilityZoneInfo": array(ZONE)})}),
        ("GET", f"{P}/os-availability-zone/detail"): nova({200: obj({"availabilityZoneInfo": array(ZONE)})}),
        # 404: no hypervisor matches the hypervisor_hostname_pattern (2.53+)
        ("GET", f"{P}/os-hypervisors"): nova({200: obj({"hypervisors": array(HYPERVISOR)})}, 404),
        ("GET", f"{P}/os-hypervisors/detail"): nova({200: obj({"hypervisors": array(HYPERVISOR)})}, 404),
        ("GET", f"{P}/os-hypervisors/statistics"): nova({200: wrap("hypervisor_statistics", {
            "type": "object", "additionalProperties": INT})}),
        ("GET", f"{P}/os-hypervisors/{{hypervisor_id_}}"): nova({200: wrap("hypervisor", HYPERVISOR)}),
        ("GET", f"{P}/os-hypervisors/{{hypervisor_id_}}/uptime"): nova({200: wrap("hypervisor", HYPERVISOR)}),
        ("GET", f"{P}/os-hypervisors/{{pattern}}/search"): nova({200: obj({"hypervisors": array(HYPERVISOR)})}),
        ("GET", f"{P}/os-hypervisors/{{pattern}}/servers"): nova({200: obj({"hypervisors": array(HYPERVISOR)})}),
        ("GET", f"{P}/os-services"): nova({200: obj({"services": array(SERVICE)})}),
        ("POST", f"{P}/os-server-external-events"): nova({200: EVENTS, 207: EVENTS}),
        # server groups
        ("GET", f"{P}/os-server-groups"): nova({200: listing("server_groups", SERVER_GROUP)}),
        ("POST", f"{P}/os-server-groups"): nova({200: wrap("server_group", SERVER_GROUP)}),
        ("GET", f"{P}/os-server-groups/{{group_id}}"): nova({200: wrap("server_group", SERVER_GROUP)}),
        ("DELETE", f"{P}/os-server-groups/{{group_id}}"): nova({204: None}),
        # aggregates
        ("GET", f"{P}/os-aggregates"): nova({200: obj({"aggregates": array(AGGREGATE)})}),
        ("POST", f"{P}/os-aggregates"): nova({200: wrap("aggregate", AGGREGATE_CREATED)}),
        ("GET", aggregate): nova({200: wrap("aggregate", AGGREGATE)}),
        ("PUT", aggregate): nova({200: wrap("aggregate", AGGREGATE)}),
        ("DELETE", aggregate): nova({200: None}),
        ("POST", f"{aggregate}/action"): nova({200: wrap("aggregate", AGGREGATE)}),
        # Nova's proxies of the network and image services: 404 from the microversion that removed them
        # (2.36; os-hosts 2.43), so their collections answer 404 too
        ("GET", f"{P}/extensions"): nova({200: obj({"extensions": array(EXTENSION)})}),
        ("GET", f"{P}/extensions/{{alias}}"): nova({200: wrap("extension", EXTENSION)}),
        ("GET", f"{P}/os-floating-ips"): nova({200: obj({"floating_ips": array(NOVA_FIP)})}, 404),
        ("POST", f"{P}/os-floating-ips"): nova({200: wrap("floating_ip", NOVA_FIP)}),
        ("GET", f"{P}/os-floating-ips/{{fip_id}}"): nova({200: wrap("floating_ip", NOVA_FIP)}),
        ("DELETE", f"{P}/os-floating-ips/{{fip_id}}"): nova({202: None}),
        ("GET", f"{P}/images"): nova({200: listing("images", NOVA_IMAGE)}, 404),
        ("GET", f"{P}/images/detail"): nova({200: listing("images", NOVA_IMAGE)}, 404),
        ("GET", f"{P}/images/{{image_id}}"): nova({200: wrap("image", NOVA_IMAGE)}),
        ("DELETE", f"{P}/images/{{image_id}}"): nova({204: None}),
        ("GET", f"{P}/images/{{image_id}}/metadata"): nova({200: metadata}),
        ("POST", f"{P}/images/{{image_id}}/metadata"): nova({200: metadata}),
        ("PUT", f"{P}/images/{{image_id}}/metadata"): nova({200: metadata}),
        ("GET", f"{P}/images/{{image_id}}/metadata/{{key}}"): nova({200: obj({"meta": STR_MAP})}),
        ("PUT", f"{P}/images/{{image_id}}/metadata/{{key}}"): nova({200: obj({"meta": STR_MAP})}),
        ("DELETE", f"{P}/images/{{image_id}}/metadata/{{key}}"): nova({204: None}),
        ("GET", f"{P}/os-hosts"): nova({200: obj({"hosts": array(NOVA_HOST)})}, 404),
        ("GET", f"{P}/os-hosts/{{host_name}}"): nova({200: obj({"host": array(obj({"resource": ANY_OBJ}))})}),
        ("PUT", f"{P}/os-hosts/{{host_name}}"): nova({}, 501),
        ("GET", f"{P}/os-hosts/{{host_name}}/{{action}}"): nova({}, 501),
        ("GET", f"{P}/os-networks"): nova({200: obj({"networks": array(NOVA_NETWORK)})}, 404),
        ("GET", f"{P}/os-networks/{{network_id}}"): nova({200: wrap("network", NOVA_NETWORK)}),
        ("GET", f"{P}/os-tenant-networks"): nova({200: obj({"networks": array(TENANT_NETWORK)})}, 404),
        ("GET", f"{P}/os-tenant-networks/{{network_id}}"): nova({200: wrap("network", TENANT_NETWORK)}),
        ("GET", f"{P}/os-quota-class-sets/{{class_id}}"): nova({200: wrap("quota_class_set", QUOTA_CLASS_SET)}),
        ("PUT", f"{P}/os-quota-class-sets/{{class_id}}"): nova({200: wrap("quota_class_set", QUOTA_CLASS_SET)}),
        ("GET", f"{server}/ips"): nova({200: obj({"addresses": IPS})}),
        # migrations (resize and migrate record them; a server's in-progress live migrations from 2.23: none)
        ("GET", f"{P}/os-migrations"): nova({200: listing("migrations", MIGRATION)}),
        ("GET", f"{server}/migrations"): nova({200: obj({"migrations": array(MIGRATION)})}, 404),
        ("GET", f"{server}/migrations/{{migration_id}}"): nova({200: wrap("migration", MIGRATION)}, 404),
        # records: instance actions (a deleted server's from 2.21), password, diagnostics, audit log
        ("GET", f"{server}/os-instance-actions"): nova({200: obj({"instanceActions": array(INSTANCE_ACTION)},
                                                                {"links": LINKS})}),
        ("GET", f"{server}/os-instance-actions/{{request_id}}"): nova({200: wrap("instanceAction", obj(
            ACTION_FIELDS, {"updated_at": NSTR, "events": array(ACTION_EVENT)}))}),
        ("GET", f"{server}/os-server-password"): nova({200: obj({"password": STR})}),
        ("DELETE", f"{server}/os-server-password"): nova({204: None}),
        ("GET", f"{server}/diagnostics"): nova({200: DIAGNOSTICS}, 409),
        # a server's volumes: an attach answers when the volume is in-use (500 when the hypervisor
        # failed, everything undone; 503 when the volume's node cannot serve it); a detach at once
        # (202), the disk leaving in the background; a swap (a new volumeId) is 501, not supported
        ("GET", f"{server}/os-volume_attachments"): nova({200: obj({"volumeAttachments": array(VOLUME_ATTACHMENT)})}),
        ("GET", f"{server}/os-volume_attachments/{{volume_id}}"): nova({200: wrap("volumeAttachment",
                                                                                  VOLUME_ATTACHMENT)}),
        ("POST", f"{server}/os-volume_attachments"): nova({200: wrap("volumeAttachment", VOLUME_ATTACHMENT)}, 500),
        ("PUT", f"{server}/os-volume_attachments/{{volume_id}}"): nova({202: None}),
        ("DELETE", f"{server}/os-volume_attachments/{{volume_id}}"): nova({202: None}),
        ("GET", f"{P}/os-instance_usage_audit_log"): nova({200: wrap("instance_usage_audit_logs", AUDIT_LOG)}),
        ("GET", f"{P}/os-instance_usage_audit_log/{{before}}"): nova({200: wrap("instance_usage_audit_log",
                                                                               AUDIT_LOG)}),
        ("GET", f"{server}/ips/{{network}}"): nova({200: IPS}),
        ("GET", f"{server}/os-security-groups"): nova({200: obj({"security_groups": array(NOVA_GROUP)})}),
        ("GET", f"{P}/os-security-groups"): nova({200: obj({"security_groups": array(NOVA_GROUP)})}, 404),
        ("POST", f"{P}/os-security-groups"): nova({200: wrap("security_group", NOVA_GROUP)}),
        ("GET", f"{P}/os-security-groups/{{group_id}}"): nova({200: wrap("security_group", NOVA_GROUP)}),
        ("PUT", f"{P}/os-security-groups/{{group_id}}"): nova({200: wrap("security_group", NOVA_GROUP)}),
        ("DELETE", f"{P}/os-security-groups/{{group_id}}"): nova({202: None}),
        ("POST", f"{P}/os-security-group-rules"): nova({200: wrap("security_group_rule", NOVA_RULE)}),
        ("DELETE", f"{P}/os-security-group-rules/{{rule_id}}"): nova({202: None}),
        **{(method, f"{P}/{kind}{tail}"): nova({status: body}, 404)
           for kind, key, item in (("os-volumes", "volume", PROXY_VOLUME), ("os-snapshots", "snapshot", PROXY_SNAPSHOT))
           for method, tail, status, body in (
               ("GET", "", 200, obj({key + "s": array(item)})), ("GET", "/detail", 200, obj({key + "s": array(item)})),
               ("POST", "", 200, wrap(key, item)), ("GET", f"/{{{key}_id}}", 200, wrap(key, item)),
               ("DELETE", f"/{{{key}_id}}", 202, None))},
    }

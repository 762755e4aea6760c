"""Pure rules of attachments, QoS specs and uploads (no trio, sqlite or I/O).

A volume's status follows its attachments (Cinder's new attach flow, 3.27+):

| step                              | attachment          | volume                          |
|-----------------------------------|---------------------|---------------------------------|
| POST /attachments (no connector)  | reserved            | available → reserved            |
| POST /attachments (connector)     | attaching           | available → attaching           |
| PUT /attachments/{id} (connector) | reserved → attaching| reserved → attaching            |
| os-complete                       | attaching → attached| → in-use                        |
| DELETE /attachments/{id}          | (gone)              | what is left decides (settle)   |

Legacy actions: os-reserve available → attaching (no attachment yet); os-unreserve settles;
os-attach makes an attached attachment at once (→ in-use); os-begin_detaching in-use →
detaching, os-roll_detaching detaching → in-use; os-detach / os-force_detach remove one (or
every) attachment and settle. A volume that is in-use takes a second attachment only when it is
multiattach, and a volume's multiattach comes from its type (extra spec ``multiattach``).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from cloudbox.errors import BadRequest

# The statuses the attach flow owns: settle moves a volume only between these.
FLOW = ("available", "reserved", "attaching", "in-use", "detaching")
ATTACH_MODES = ("rw", "ro")
CONSUMERS = ("front-end", "back-end", "both")
# QoS keys libvirt's <iotune> enforces on the guest's disk (Nova's front-end keys).
FRONT_END_KEYS = ("total_bytes_sec", "read_bytes_sec", "write_bytes_sec", "total_iops_sec", "read_iops_sec",
                  "write_iops_sec", "total_bytes_sec_max", "read_bytes_sec_max", "write_bytes_sec_max",
                  "total_iops_sec_max", "read_iops_sec_max", "write_iops_sec_max", "size_iops_sec")
UPLOAD_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx")
NBD_PORT = 10809  # the IANA port of NBD; qemu-storage-daemon's export will listen there


def settled_status(attach_statuses: Iterable[str]) -> str:
    """The status a volume's remaining attachments give it."""
    left = set(attach_statuses)
    if "attached" in left:
        return "in-use"
    if "attaching" in left:
        return "attaching"
    if "reserved" in left:
        return "reserved"
    return "available"


def type_multiattach(extra_specs: Mapping[str, str]) -> bool:
    """Cinder's convention: a type with ``multiattach="<is> True"`` makes multiattach volumes."""
    return str(extra_specs.get("multiattach", "")).strip().lower() in ("<is> true", "true")


def check_connector(connector: Any) -> dict[str, Any]:
    if not isinstance(connector, dict) or not connector:
        raise BadRequest("Invalid input received: connector must be an object (os-brick's connector "
                         "properties: host, initiator, ...).")
    host = connector.get("host")
    if host is not None and (not isinstance(host, str) or len(host) > 255):
        raise BadRequest("Invalid input received: connector host must be a string of up to 255 characters.")
    mountpoint = connector.get("mountpoint")
    if mountpoint is not None and (not isinstance(mountpoint, str) or len(mountpoint) > 255):
        raise BadRequest("Invalid input received: connector mountpoint must be a string.")
    return dict(connector)


def check_mode(mode: Any) -> str:
    mode = "rw" if mode is None else mode
    if mode not in ATTACH_MODES:
        raise BadRequest(f"Invalid input received: attach mode must be rw or ro, not {str(mode)[:20]!r}.")
    return mode


def front_end_limits(qos: Mapping[str, Any] | None) -> dict[str, str]:
    """The limits compute sets as libvirt ``<iotune>`` (consumer front-end or both)."""
    if not qos or qos["consumer"] not in ("front-end", "both"):
        return {}
    return {k: v for k, v in sorted(qos["specs"].items()) if k in FRONT_END_KEYS}


def check_qos_specs(values: Mapping[str, Any]) -> dict[str, str]:
    """Keys and values of QoS specs: strings; the front-end keys are whole numbers ≥ 0."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key or len(key) > 255:
            raise BadRequest("Invalid input received: QoS spec keys are 1-255 characters.")
        if isinstance(value, bool) or not isinstance(value, (str, int)) or len(str(value)) > 255:
            raise BadRequest(f"Invalid input received: QoS spec {key[:60]} must be a string or a number.")
        text = str(value).strip()
        if key in FRONT_END_KEYS and not (text.isdigit() and len(text) < 19):
            raise BadRequest(f"Invalid input received: QoS spec {key} must be a whole number of 0 or more, "
                             f"not {text[:40]!r}.")
        out[key] = text
    return out


def check_consumer(consumer: Any) -> str:
    if consumer not in CONSUMERS:
        raise BadRequest(f"Invalid input received: consumer must be one of {', '.join(CONSUMERS)}, "
                         f"not {str(consumer)[:40]!r}.")
    return consumer


def local_connection(volume: Mapping[str, Any], attachment_id: str | None, access_mode: str, path: str,
                     disk_format: str, block: bool, qos: Mapping[str, str]) -> dict[str, Any]:
    """What compute needs to give a guest a volume kept on its own node: the file or block device
    QEMU opens directly (libvirt ``<disk type='file'|'block'>`` with ``<driver type=format>``)."""
    return {"driver_volume_type": "local", "serial": volume["id"], "data": {
        "volume_id": volume["id"], "attachment_id": attachment_id, "device_path": path,
        "disk_type": "block" if block else "file", "format": disk_format, "access_mode": access_mode,
        "discard": True, "encrypted": False, "qos_specs": dict(qos) or None}}


def nbd_connection(volume: Mapping[str, Any], attachment_id: str | None, access_mode: str, host: str,
                   port: int, qos: Mapping[str, str]) -> dict[str, Any]:
    """The seam for a guest on another node: QEMU's NBD client over TLS (cluster CA certificates) to
    qemu-storage-daemon's export on the volume's node, named by the volume. Not served yet: the
    service refuses remote connectors until the export exists (see DESIGN.md)."""
    return {"driver_volume_type": "nbd", "serial": volume["id"], "data": {
        "volume_id": volume["id"], "attachment_id": attachment_id, "host": host, "port": port,
        "export_name": f"volume-{volume['id']}", "tls": True, "format": "raw", "access_mode": access_mode,
        "discard": True, "encrypted": False, "qos_specs": dict(qos) or None}}


def is_remote(attachment: Mapping[str, Any], volume_host: str) -> bool:
    """An attachment by a guest on another node than the volume's (over NBD)."""
    info = attachment.get("connection_info") or {}
    return info.get("driver_volume_type") == "nbd" or attachment.get("attached_host") not in (None, "", volume_host)

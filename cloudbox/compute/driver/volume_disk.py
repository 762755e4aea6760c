"""libvirt ``<disk>`` elements for volumes, from the volume service's connection_info (pure: no
libvirt, no I/O; the XML is checked against libvirt's schema in tests).

connection_info (see cloudbox/volume/DESIGN.md, "Attaching"), by ``driver_volume_type``:

- ``local``: the volume is kept on the guest's node. ``data.device_path`` is a file
  (``disk_type`` "file": ``<disk type='file'>``, ``<source file=...>``) or a block device
  (``disk_type`` "block": ``<disk type='block'>``, ``<source dev=...>``).
- ``nbd``: the volume is on another node, exported by qemu-storage-daemon there: a network disk,
  ``<source protocol='nbd' name=export_name tls='yes'><host name=... port=.../></source>``.

Both: ``data.format`` (raw/qcow2) → ``<driver type=...>``, ``data.access_mode`` "ro" →
``<readonly/>``, ``data.discard`` → discard='unmap', ``data.qos_specs`` (front-end keys) →
``<iotune>``, ``data.multiattach`` → ``<shareable/>``; the volume id is the ``<serial>`` (how a
disk is found again to detach or resize it) and a boot volume gets ``<boot order=.../>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Mapping

from cloudbox.compute.driver import VolumeDisk
from cloudbox.errors import Unavailable

FORMATS = ("raw", "qcow2")
# libvirt's <iotune> children, in its schema's order (front-end QoS keys with the same names).
IOTUNE_KEYS = ("total_bytes_sec", "read_bytes_sec", "write_bytes_sec", "total_iops_sec", "read_iops_sec",
               "write_iops_sec", "total_bytes_sec_max", "read_bytes_sec_max", "write_bytes_sec_max",
               "total_iops_sec_max", "read_iops_sec_max", "write_iops_sec_max", "size_iops_sec")


def _iotune(disk: ET.Element, qos: Mapping[str, Any] | None) -> None:
    limits = [(key, str(qos[key]).strip()) for key in IOTUNE_KEYS if qos and key in qos]
    limits = [(key, value) for key, value in limits if value.isdigit() and int(value) > 0]
    if limits:
        iotune = ET.SubElement(disk, "iotune")
        for key, value in limits:
            ET.SubElement(iotune, key).text = value


def disk_element(disk: VolumeDisk) -> ET.Element:
    """The ``<disk>`` of a volume; Unavailable for a connection_info this driver cannot use."""
    info = disk.connection_info
    kind = info.get("driver_volume_type")
    data: Mapping[str, Any] = info.get("data") or {}
    fmt = data.get("format") or "raw"
    if fmt not in FORMATS:
        raise Unavailable(f"Volume {disk.volume_id} has format {str(fmt)[:20]}; guests take raw or qcow2 volumes.")
    if not disk.target.startswith("vd") or not disk.target[2:].isalpha():
        raise Unavailable(f"Volume {disk.volume_id}: {disk.target[:20]} is not a virtio disk name (vdb, vdc...).")
    driver = {"name": "qemu", "type": fmt}
    if data.get("discard"):
        driver["discard"] = "unmap"
    if kind == "local":
        disk_type = data.get("disk_type") or "file"
        path = data.get("device_path")
        if disk_type not in ("file", "block") or not isinstance(path, str) or not path.startswith("/"):
            raise Unavailable(f"Volume {disk.volume_id}: its local connection has no usable device_path.")
        element = ET.Element("disk", {"type": disk_type, "device": "disk"})
        ET.SubElement(element, "driver", driver)
        ET.SubElement(element, "source", {"file" if disk_type == "file" else "dev": path})
    elif kind == "nbd":
        host, port, export = data.get("host"), data.get("port"), data.get("export_name")
        if not isinstance(host, str) or not host or not isinstance(export, str) or not export:
            raise Unavailable(f"Volume {disk.volume_id}: its nbd connection has no host or export name.")
        element = ET.Element("disk", {"type": "network", "device": "disk"})
        # libvirt 9.0 cannot set QEMU's NBD reconnect-delay (it came in libvirt 9.4): a request that
        # fails while the export is away (its node restarts, or the export is made again at a new
        # size) pauses the guest instead of failing in it, and the driver resumes the guest until
        # the reconnected client serves it (real_volumes.VolumeDisksMixin.resume_after_io_error).
        ET.SubElement(element, "driver", {**driver, "error_policy": "stop", "rerror_policy": "stop"})
        source = ET.SubElement(element, "source", {"protocol": "nbd", "name": export})
        if data.get("tls", True):
            source.set("tls", "yes")
        ET.SubElement(source, "host", {"name": host, "port": str(int(port or 10809))})
    else:
        raise Unavailable(f"Volume {disk.volume_id}: connections of type {str(kind)[:20]} are not supported "
                          "by this compute driver (local and nbd are).")
    ET.SubElement(element, "target", {"dev": disk.target, "bus": "virtio"})
    _iotune(element, data.get("qos_specs"))
    if data.get("access_mode") == "ro":
        ET.SubElement(element, "readonly")
    if data.get("multiattach"):
        ET.SubElement(element, "shareable")
    ET.SubElement(element, "serial").text = disk.volume_id
    if disk.boot_index is not None:
        ET.SubElement(element, "boot", {"order": str(disk.boot_index + 1)})
    return element


def disk_xml(disk: VolumeDisk) -> str:
    """The ``<disk>`` of a volume as text (what attachDeviceFlags takes)."""
    element = disk_element(disk)
    ET.indent(element)
    return ET.tostring(element, encoding="unicode")


def with_volume_disks(domain_xml: str, volumes: tuple[VolumeDisk, ...], *, image_root: bool = True) -> str:
    """A domain XML with the volumes' disks after its other disks.  Without an image root (a server
    booted from a volume: ``image_root`` False) the image disk goes, and so does ``<os><boot dev>``
    (libvirt takes per-device boot orders or that, not both): the volumes' boot orders rule."""
    if not volumes and image_root:
        return domain_xml
    domain = ET.fromstring(domain_xml)
    devices = domain.find("devices")
    assert devices is not None
    if not image_root:
        root = next((d for d in devices.iterfind("disk") if (d.find("target") is not None
                                                                and d.find("target").get("dev") == "vda")), None)  # type: ignore[union-attr]
        if root is not None:
            devices.remove(root)
        os_ = domain.find("os")
        for boot in list(os_.iterfind("boot")) if os_ is not None else []:
            os_.remove(boot)  # type: ignore[union-attr]
    disks = list(devices.iterfind("disk"))
    at = list(devices).index(disks[-1]) + 1 if disks else 0
    # A volume whose device another disk of this definition holds (a rescued guest's own disk is
    # vdb) moves to the next free one, for as long as this definition lasts.
    held = {d.find("target").get("dev") for d in disks if d.find("target") is not None}  # type: ignore[union-attr]
    taken = held | {v.target for v in volumes}
    placed = []
    for volume in sorted(volumes, key=lambda v: v.target):
        if volume.target in held:
            free = next(f"vd{c}" for c in "bcdefghijklmnopqrstuvwxyz" if f"vd{c}" not in taken)
            taken.add(free)
            volume = VolumeDisk(volume.volume_id, free, volume.connection_info, volume.boot_index)
        placed.append(volume)
    for n, volume in enumerate(sorted(placed, key=lambda v: v.target)):
        devices.insert(at + n, disk_element(volume))
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode")


def volume_disks(domain_xml: str) -> dict[str, str]:
    """The volume disks of a domain XML: target device by serial (volume id)."""
    found = {}
    for disk in ET.fromstring(domain_xml).iterfind("devices/disk"):
        serial, target = disk.findtext("serial"), disk.find("target")
        if serial and target is not None:
            found[serial] = target.get("dev", "")
    return found


def find_disk(domain_xml: str, volume_id: str) -> str | None:
    """The ``<disk>`` of volume ``volume_id`` in a domain XML as text (what detachDeviceFlags
    takes), or None when the domain does not have it."""
    for disk in ET.fromstring(domain_xml).iterfind("devices/disk"):
        if disk.findtext("serial") == volume_id:
            return ET.tostring(disk, encoding="unicode")
    return None


def disk_target(domain_xml: str, volume_id: str) -> str | None:
    """The target device (vdb) of volume ``volume_id`` in a domain XML, or None."""
    return volume_disks(domain_xml).get(volume_id)

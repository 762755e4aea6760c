"""Block device mappings of a create request, read and checked as Nova reads them. Pure.

A create request names its disks in one of two syntaxes (never both: a 400):
- ``block_device_mapping_v2``: each item a source (image, volume, snapshot, blank), a
  destination (volume, local), a ``boot_index`` (0 is the root; -1 or None: not bootable),
  ``volume_size``, ``delete_on_termination``...  An image to local at boot_index 0 is the
  ordinary boot from ``imageRef`` (the openstack CLI sends it with every ``--image`` boot).
- ``block_device_mapping`` (legacy v1): ``volume_id``/``snapshot_id`` on a ``device_name``; the
  one on the root device (vda) is the boot disk, as Nova's from_legacy_mapping decides.

What cloudbox builds: the root from an image (the local qcow2 overlay), or from a volume
(existing, or made by the volume service from an image, a snapshot, or blank), and more
volumes after it (vdb, vdc...).  Local disks other than the image root (ephemeral and swap:
source blank, destination local) are refused with Nova's 400; say so rather than drop them.

Errors are Nova's (``Block Device Mapping is Invalid: ...``), all 400.  The checks that need
state (does the volume exist, is it available) are in boot_volumes_service.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

from cloudbox.compute.core import strict_bool
from cloudbox.errors import BadRequest

Version = tuple[int, int]

SOURCES = ("image", "volume", "snapshot", "blank")
DESTINATIONS = ("local", "volume")
ROOT_DEVICE = "vda"  # Nova assumes it when no image names another (legacy conversion)
# Nova's DiskBus field: a disk_bus it does not know is refused up front.
DISK_BUSES = ("fdc", "ide", "sata", "scsi", "usb", "virtio", "xen", "lxc", "uml")
MAX_VOLUMES = 26  # vda..vdz: one virtio target letter each
DEVICE_NAME = re.compile(r"^(/dev/)?[a-z]+d[a-z]+$")

BOOT_SEQUENCE = "Boot sequence for the instance and image/block device mapping combination is not valid."


def invalid(details: str | None = None) -> BadRequest:
    """Nova's InvalidBDM family: ``Block Device Mapping is Invalid[: details]`` (400)."""
    return BadRequest(f"Block Device Mapping is Invalid: {details}" if details else "Block Device Mapping is Invalid.")


@dataclass(frozen=True)
class BlockDevice:
    """One mapping as cloudbox keeps it (Nova's BlockDeviceDict, less what no driver here uses)."""

    source_type: str
    destination_type: str
    uuid: str | None = None  # the image, volume or snapshot (None for blank)
    boot_index: int | None = None
    volume_size: int | None = None  # GB
    delete_on_termination: bool = False
    device_name: str | None = None  # as asked ("/dev/vdb" or "vdb"); None: the next free one
    device_type: str | None = None
    disk_bus: str | None = None
    guest_format: str | None = None
    volume_type: str | None = None
    tag: str | None = None

    @property
    def is_root(self) -> bool:
        return self.boot_index == 0

    @property
    def is_volume(self) -> bool:
        return self.destination_type == "volume"

    @property
    def image_root(self) -> bool:
        """The ordinary boot from an image: its local overlay is the root disk."""
        return self.source_type == "image" and self.destination_type == "local" and self.boot_index == 0


@dataclass(frozen=True)
class BootRequest:
    """What a create asks for its disks: the image (``""`` for a volume-backed server) and the
    volumes, root first when the root is one."""

    image_ref: str
    devices: tuple[BlockDevice, ...] = ()

    @property
    def root(self) -> BlockDevice | None:
        return next((d for d in self.devices if d.is_root), None)

    @property
    def volume_backed(self) -> bool:
        root = self.root
        return root is not None and root.is_volume

    @property
    def volumes(self) -> tuple[BlockDevice, ...]:
        """The mappings that are volumes (made or attached by the volume service), root first."""
        found = [d for d in self.devices if d.is_volume]
        return tuple(sorted(found, key=lambda d: (not d.is_root,)))


# --- reading one item ---------------------------------------------------------------------------
def _int(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise invalid(f"{what} is invalid.")
    try:
        return int(str(value).strip())
    except ValueError:
        raise invalid(f"{what} is invalid.") from None


def _size(value: Any) -> int | None:
    size = _int(value, "volume_size")
    if size is not None and size < 0:
        raise invalid("volume_size is invalid.")
    return size


def _text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{key} must be a string.")
    return value or None


def _device_name(item: Mapping[str, Any]) -> str | None:
    name = _text(item, "device_name")
    if name is not None and not DEVICE_NAME.match(name):
        raise BadRequest(f"The supplied device path ({name[:60]}) is invalid.")
    return name


def from_api(item: Mapping[str, Any], image_specified: bool, version: Version) -> BlockDevice | None:
    """One item of block_device_mapping_v2 (Nova's BlockDeviceDict.from_api); None for ``no_device``."""
    if not isinstance(item, Mapping):
        raise invalid("each mapping is an object.")
    if item.get("no_device"):
        return None
    if "tag" in item and version < (2, 32):
        raise BadRequest("Invalid input for field/attribute block_device_mapping_v2: tag needs microversion 2.32.")
    if "volume_type" in item and version < (2, 67):
        raise BadRequest("Invalid input for field/attribute block_device_mapping_v2: volume_type needs "
                         "microversion 2.67.")
    source = item.get("source_type")
    if source not in SOURCES:
        raise invalid("Invalid source_type field.")
    destination = item.get("destination_type") or "local"
    if destination not in DESTINATIONS:
        raise invalid("Invalid destination_type field.")
    uuid = _text(item, "uuid")
    if source == "blank" and uuid:
        raise invalid("Invalid device UUID.")
    if source != "blank" and not uuid:
        raise invalid("Missing device UUID.")
    boot_index = _int(item.get("boot_index"), "Boot index")
    volume_type = _text(item, "volume_type")
    if source == "image" and destination == "local" and not (image_specified and boot_index == 0):
        raise invalid("Mapping image to local is not supported.")
    if destination == "local" and volume_type:
        raise invalid("Specifying a volume_type with destination_type=local is not supported.")
    if source == "volume" and volume_type:
        raise invalid("Specifying volume type to existing volume is not supported.")
    disk_bus = _text(item, "disk_bus")
    if disk_bus and disk_bus not in DISK_BUSES:
        raise invalid(f"Unable to attach device with disk bus {disk_bus[:40]}.")
    return BlockDevice(
        source_type=source, destination_type=destination, uuid=uuid,
        boot_index=boot_index if boot_index is None or boot_index >= 0 else None,
        volume_size=_size(item.get("volume_size")),
        delete_on_termination=strict_bool(item.get("delete_on_termination", False), "delete_on_termination"),
        device_name=_device_name(item), device_type=_text(item, "device_type"), disk_bus=disk_bus,
        guest_format=_text(item, "guest_format"), volume_type=volume_type, tag=_text(item, "tag"))


def from_legacy(item: Mapping[str, Any]) -> BlockDevice | None:
    """One item of the legacy block_device_mapping (Nova's BlockDeviceDict.from_legacy); its
    boot_index is decided by ``legacy_mapping``. None for ``no_device``."""
    if not isinstance(item, Mapping):
        raise invalid("each mapping is an object.")
    if item.get("no_device"):
        return None
    common = {"device_name": _device_name(item), "volume_size": _size(item.get("volume_size")),
              "delete_on_termination": strict_bool(item.get("delete_on_termination", False),
                                                   "delete_on_termination")}
    if item.get("volume_id"):
        return BlockDevice("volume", "volume", uuid=str(item["volume_id"]), **common)
    if item.get("snapshot_id"):
        return BlockDevice("snapshot", "volume", uuid=str(item["snapshot_id"]), **common)
    if item.get("virtual_name"):  # ephemeralN / swap: local disks, refused in check()
        swap = str(item["virtual_name"]) == "swap"
        return BlockDevice("blank", "local", guest_format="swap" if swap else None, **common)
    raise invalid("Unrecognized legacy format.")


def legacy_mapping(devices: Sequence[BlockDevice], image_ref: str,
                   root_device: str = ROOT_DEVICE) -> list[BlockDevice]:
    """Boot indexes of legacy mappings (Nova's from_legacy_mapping): the volume or snapshot on
    the root device boots; otherwise the image does (an image-to-local root comes first)."""
    out: list[BlockDevice] = []
    volume_backed = False
    for device in devices:
        if device.source_type in ("volume", "snapshot") and strip_dev(device.device_name) == strip_dev(root_device):
            out.append(replace(device, boot_index=0))
            volume_backed = True
        else:
            out.append(replace(device, boot_index=None))
    if not volume_backed and image_ref:
        out.insert(0, BlockDevice("image", "local", uuid=image_ref, boot_index=0, delete_on_termination=True))
    return out


def strip_dev(name: str | None) -> str:
    return (name or "").removeprefix("/dev/")


# --- the whole request ---------------------------------------------------------------------------
def parse(server: Mapping[str, Any], image_ref: str, version: Version, max_count: int = 1) -> BootRequest:
    """The disks of a create body's ``server`` (``image_ref``: its imageRef as an id, or "")."""
    legacy = server.get("block_device_mapping") or []
    v2 = server.get("block_device_mapping_v2") or []
    if legacy and v2:
        raise BadRequest("Using different block_device_mapping syntaxes is not allowed in the same request.")
    if not legacy and not v2:
        if not image_ref:
            raise BadRequest("Missing imageRef attribute")
        return BootRequest(image_ref)
    if legacy:
        devices = legacy_mapping([d for d in map(from_legacy, legacy) if d is not None], image_ref)
    else:
        devices = [d for d in (from_api(item, "imageRef" in server, version) for item in v2) if d is not None]
        if image_ref and not any(d.is_root for d in devices):
            # The image boots when no mapping does (novaclient inserts this mapping itself).
            devices.insert(0, BlockDevice("image", "local", uuid=image_ref, boot_index=0,
                                          delete_on_termination=True))
    return check(BootRequest(image_ref, tuple(devices)), max_count)


def check(request: BootRequest, max_count: int = 1) -> BootRequest:
    """Nova's checks that need no state (its _validate_bdm's first half); the request, with the
    image root's uuid as the request's image when the request named none."""
    devices = request.devices
    indexes = sorted(d.boot_index for d in devices if d.boot_index is not None)
    if not indexes or indexes != list(range(len(indexes))):
        raise invalid(BOOT_SEQUENCE)
    root = request.root
    assert root is not None
    if root.image_root and request.image_ref and root.uuid != request.image_ref:
        raise invalid(BOOT_SEQUENCE)
    for device in devices:
        if device.destination_type == "local" and not device.image_root:
            if device.source_type == "blank":
                raise invalid("ephemeral and swap disks (source_type blank, destination_type local) are not "
                              "supported by this cloud; use a blank volume (destination_type volume).")
            raise invalid(f"Mapping {device.source_type} to local is not supported.")
        if device.source_type == "image" and device.is_volume and not device.volume_size:
            raise invalid("Images with destination_type 'volume' need to have a non-zero size specified")
        if device.source_type == "blank" and device.is_volume and not device.volume_size:
            raise invalid("Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size")
        if (root.image_root and device.is_volume and strip_dev(device.device_name) == ROOT_DEVICE):
            raise BadRequest(f"The volume cannot be assigned the same device name as the root device {ROOT_DEVICE}")
    if max_count > 1 and any(d.source_type == "volume" for d in devices):
        raise BadRequest("Cannot attach one or more volumes to multiple instances")
    ids = [d.uuid for d in devices if d.source_type == "volume"]
    if len(ids) != len(set(ids)):
        raise invalid("a volume is mapped twice.")
    names = [strip_dev(d.device_name) for d in devices if d.is_volume and d.device_name]
    if len(names) != len(set(names)):
        raise invalid("a device name is used twice.")
    if len(request.volumes) + (0 if request.volume_backed else 1) > MAX_VOLUMES:
        raise invalid(f"at most {MAX_VOLUMES} disks.")
    image_ref = request.image_ref or (root.uuid if root.image_root else "") or ""
    return replace(request, image_ref=image_ref)


def device_names(request: BootRequest) -> list[str]:
    """The guest device of each of ``request.volumes`` (vda for a volume root; others as asked,
    else the next free letters from vdb), as /dev/vdX."""
    taken = {strip_dev(d.device_name) for d in request.volumes if d.device_name and not d.is_root}
    taken.add(ROOT_DEVICE)
    free = (f"vd{chr(c)}" for c in range(ord("b"), ord("z") + 1) if f"vd{chr(c)}" not in taken)
    out = []
    for device in request.volumes:
        if device.is_root:
            out.append(f"/dev/{ROOT_DEVICE}")
        elif device.device_name:
            out.append(f"/dev/{strip_dev(device.device_name)}")
        else:
            out.append(f"/dev/{next(free)}")
    return out


# --- images of volume-backed servers ------------------------------------------------------------
def image_mapping(bdm: Mapping[str, Any], snapshot_id: str, size: int) -> dict[str, Any]:
    """One volume of a volume-backed server as its snapshot image lists it (Nova's
    snapshot_from_bdm(...).get_image_mapping()): booting the image makes a volume from the snapshot."""
    return {"source_type": "snapshot", "destination_type": "volume", "snapshot_id": snapshot_id,
            "volume_id": None, "image_id": None, "volume_size": size, "boot_index": bdm.get("boot_index"),
            "device_name": bdm.get("device_name"), "delete_on_termination": bool(bdm.get("delete_on_termination")),
            "device_type": bdm.get("device_type") or "disk", "disk_bus": bdm.get("disk_bus") or "virtio",
            "guest_format": None, "no_device": None, "tag": bdm.get("tag"), "volume_type": None}


def snapshot_image_properties(mappings: list[dict[str, Any]]) -> dict[str, str]:
    """The properties Nova gives a volume-backed server's image (Glance v2 keeps strings)."""
    return {"block_device_mapping": json.dumps(mappings), "bdm_v2": "True", "root_device_name": f"/dev/{ROOT_DEVICE}"}


def image_defined(properties: Mapping[str, Any]) -> list[BlockDevice]:
    """The mappings an image carries (a volume-backed server's snapshot, bdm_v2 True): each a
    volume to make from its snapshot. An image without them (or with unreadable ones) has none."""
    raw = properties.get("block_device_mapping")
    if not raw or str(properties.get("bdm_v2", "")).lower() != "true":
        return []
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("no_device"):
            continue
        source = item.get("source_type")
        uuid = item.get(f"{source}_id") if source in ("snapshot", "volume", "image") else None
        if source not in SOURCES or item.get("destination_type") != "volume":
            continue
        out.append(BlockDevice(source, "volume", uuid=uuid, boot_index=_int(item.get("boot_index"), "Boot index"),
                               volume_size=_size(item.get("volume_size")),
                               delete_on_termination=bool(item.get("delete_on_termination")),
                               device_name=item.get("device_name"), tag=item.get("tag")))
    return out


def with_image_defined(request: BootRequest, defined: list[BlockDevice]) -> BootRequest:
    """The request once its image's own mappings are merged in (Nova's _merge_bdms_lists): an
    image that brings a root drops the request's image-to-local root; the request's mappings win
    on a device name both name."""
    if not defined:
        return request
    devices = list(request.devices)
    if any(d.is_root for d in defined):
        devices = [d for d in devices if not d.image_root]
    named = {strip_dev(d.device_name) for d in devices if d.device_name}
    merged = [d for d in defined if not d.device_name or strip_dev(d.device_name) not in named] + devices
    return replace(request, devices=tuple(merged))


def as_row(device: BlockDevice) -> dict[str, Any]:
    """The mapping's own fields, for logs and the rows of the compute table."""
    return {k: v for k, v in asdict(device).items() if k != "uuid"}


@dataclass
class Prepared:
    """A request checked against the cloud's state: the volumes to make or attach, with the
    devices they get, and what the scheduler and the server's row need."""

    request: BootRequest
    devices: list[str] = field(default_factory=list)  # /dev/vdX of each of request.volumes
    image: dict[str, Any] = field(default_factory=dict)  # the root image (id "" when volume-backed)
    sizes: dict[int, int] = field(default_factory=dict)  # index in request.volumes → GB
    volume_hosts: dict[str, str] = field(default_factory=dict)  # existing volume id → its node

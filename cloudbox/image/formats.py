"""What uploaded image data really is, judged from its bytes and from `qemu-img info` (pure).

An image service that believes the disk_format a user claims is open to known
attacks: a "raw" image that is really a qcow2 with a backing file pointing at
a host file (/etc/shadow, another tenant's disk) makes the hypervisor read
that file; so does a qcow2 with an external data file, or a VMDK whose
descriptor names host files as extents.  Like Glance's format inspector, we
refuse data whose format is not exactly the one declared, and refuse those
features outright.  The checks on the header run before qemu-img ever opens
the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Mapping

from cloudbox.errors import BadRequest

HEAD_BYTES = 64 * 1024  # enough for every magic, including ISO 9660's at 32 KiB
TAIL_BYTES = 512  # a VHD footer

# The qemu-img driver that reads each disk format, and the formats its data may be detected as.
QEMU_FORMAT = {
    "qcow2": "qcow2", "raw": "raw", "iso": "raw", "ami": "raw", "ari": "raw", "aki": "raw",
    "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx", "ploop": "parallels",
}
ACCEPTS = {
    "qcow2": {"qcow2"}, "raw": {"raw", "iso"}, "ami": {"raw", "iso"}, "ari": {"raw", "iso"},
    "aki": {"raw", "iso"}, "iso": {"iso"}, "vmdk": {"vmdk"}, "vdi": {"vdi"}, "vhd": {"vhd"},
    "vhdx": {"vhdx"}, "ploop": {"ploop"},
}
VMDK_CREATE_TYPES = ("monolithicSparse", "streamOptimized")
QCOW2_INCOMPAT_DATA_FILE = 1 << 2


@dataclass(frozen=True)
class Sample:
    """The first HEAD_BYTES and last TAIL_BYTES of the data, and its size."""

    head: bytes
    tail: bytes
    size: int


def detect(sample: Sample) -> str:
    """The format the data's own magic says, "vmdk-descriptor" for a bare VMDK descriptor, else "raw"."""
    head = sample.head
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    if head[:4] in (b"KDMV", b"COWD"):
        return "vmdk"
    if head.lstrip()[:21] == b"# Disk DescriptorFile":
        return "vmdk-descriptor"
    if head[:8] == b"vhdxfile":
        return "vhdx"
    if head[:8] == b"conectix":
        return "vhd"
    if head[0x40:0x44] == b"\x7f\x10\xda\xbe":
        return "vdi"
    if head[:16] in (b"WithoutFreeSpace", b"WithouFreSpacExt"):
        return "ploop"
    if head[:4] == b"QED\x00":
        return "qed"
    if head[:6] == b"LUKS\xba\xbe":
        return "luks"
    if sample.size % 512 == 0 and sample.tail[-512:][:8] == b"conectix":
        return "vhd"  # a fixed VHD: raw data and a footer
    if any(head[at:at + 5] in (b"CD001", b"BEA01") for at in (0x8001, 0x8801, 0x9001)):
        return "iso"
    return "raw"


def qcow2_header_problem(head: bytes) -> str | None:
    """Why a qcow2 header is unsafe (backing file, external data file), or None."""
    if len(head) < 72:
        return "its qcow2 header is truncated"
    version, backing_offset = struct.unpack(">IQ", head[4:16])
    if backing_offset != 0:
        return "it has a backing file"
    if version >= 3:
        if len(head) < 104:
            return "its qcow2 header is truncated"
        (incompatible,) = struct.unpack(">Q", head[72:80])
        if incompatible & QCOW2_INCOMPAT_DATA_FILE:
            return "it has an external data file"
    return None


def check_sample(disk_format: str, sample: Sample) -> None:
    """Refuse data whose magic is not the declared disk_format's, or that is unsafe to open."""
    found = detect(sample)
    if found not in ACCEPTS[disk_format]:
        if disk_format in ("raw", "ami", "ari", "aki"):
            raise BadRequest(f"Image data is not {disk_format}: it is {_name(found)}; refusing it. "
                             f"Upload it with disk_format {found} if that is what it is.")
        raise BadRequest(f"Image data does not match disk_format {disk_format}: it looks like {_name(found)}.")
    if found == "qcow2":
        problem = qcow2_header_problem(sample.head)
        if problem:
            raise BadRequest(f"Refusing the qcow2 image: {problem}, which an image may not have.")


def _name(found: str) -> str:
    return {"raw": "raw data (no known image format)", "vmdk-descriptor": "a VMDK descriptor file"}.get(found, found)


def check_qemu_info(disk_format: str, info: Mapping[str, Any], path: str) -> int | None:
    """Check `qemu-img info --output=json` of the stored data; return its virtual size."""
    expected = QEMU_FORMAT[disk_format]
    if info.get("format") != expected:
        raise BadRequest(f"qemu-img reads the data as {info.get('format')!r}, not {expected!r}.")
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise BadRequest(f"Refusing the {disk_format} image: it has a backing file, which an image may not have.")
    specific = info.get("format-specific") or {}
    data = specific.get("data") or {}
    if expected == "qcow2" and (data.get("data-file") or data.get("data-file-raw")):
        raise BadRequest("Refusing the qcow2 image: it has an external data file, which an image may not have.")
    if expected == "vmdk":
        if data.get("create-type") not in VMDK_CREATE_TYPES:
            raise BadRequest(f"Refusing the VMDK image: create type {data.get('create-type')!r} is not one of "
                             f"{', '.join(VMDK_CREATE_TYPES)}.")
        for extent in data.get("extents") or []:
            if extent.get("filename") not in (None, path):
                raise BadRequest("Refusing the VMDK image: it names other files as extents.")
    size = info.get("virtual-size")
    return int(size) if isinstance(size, int) else None

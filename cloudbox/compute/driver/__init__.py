"""The contract between the compute service and a hypervisor driver.

``real.py`` drives libvirt (embedded QEMU driver by default) and qemu-img;
``fake.py`` keeps domains in memory for fast tests.  Both pass the same
contract tests (tests/test_compute_driver.py).  Every method that can block
is async; blocking libvirt calls run in worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from cloudbox.nics import NicSpec  # the NIC network hands compute (DomainSpec.nics)

# Domain states as the compute service sees them (libvirt's, simplified).
RUNNING, SHUTOFF, PAUSED, SUSPENDED, CRASHED = "running", "shutoff", "paused", "suspended", "crashed"


@dataclass(frozen=True)
class VolumeDisk:
    """A volume as a disk of a guest: what the volume service's connection_info says about how to
    reach it (``local``: a file or block device; ``nbd``: another node's export), the target device
    (``vdb``) and, for a server booted from a volume, its boot order (0: the root).  volume_disk.py
    turns it into libvirt's ``<disk>``; the volume id is the disk's serial (the guest sees it in
    /dev/disk/by-id/virtio-<first 20 characters>), which is how drivers find the disk again."""

    volume_id: str
    target: str  # "vdb", without /dev/
    connection_info: dict[str, Any]
    boot_index: int | None = None  # 0: the root disk of a server booted from this volume


@dataclass(frozen=True)
class DomainSpec:
    uuid: str  # the server id; also the libvirt domain uuid
    name: str  # libvirt domain name, "cloudbox-<uuid>"
    vcpus: int
    memory_mb: int
    root_disk: str  # qcow2 overlay path
    console_log: str  # serial console is written here
    accel: str  # "kvm" or "tcg"
    nics: tuple[NicSpec, ...] = ()
    config_drive: str | None = None  # ISO9660 image labelled config-2
    # More qcow2 disks after the root one (vdb, vdc...): a rescued guest's own disk.
    extra_disks: tuple[str, ...] = ()
    start: bool = True  # False: defined only (a resized server that was stopped stays off)
    # Stored in the domain XML's <metadata>, read back by list_domains (adoption after a restart).
    metadata: dict[str, str] = field(default_factory=dict)
    # The root disk's backing chain, (path, format) nearest first, when the caller knows it (an
    # overlay it just made on a cached image): the driver need not run qemu-img to read it.
    root_chain: tuple[tuple[str, str], ...] | None = None
    # Volumes in the definition from the start (attached ones a redefine keeps; a boot volume).
    # With root_disk "" the guest has no image disk: the volume with boot_index 0 is its vda.
    volumes: tuple[VolumeDisk, ...] = ()


@dataclass(frozen=True)
class DomainInfo:
    uuid: str
    name: str
    state: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class HostInfo:
    hostname: str
    vcpus: int
    memory_mb: int
    disk_gb: int  # free space where instance disks live
    hypervisor_type: str  # "QEMU"
    hypervisor_version: int  # libvirt's integer form, e.g. 7002000
    accel: str  # "kvm" if a probe guest really ran under KVM, else "tcg"
    accel_detail: str  # why: what the probe saw


class ComputeDriver(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def host_info(self) -> HostInfo: ...
    async def list_domains(self) -> list[DomainInfo]: ...
    async def get_state(self, uuid: str) -> str | None: ...
    async def create(self, spec: DomainSpec) -> None: ...
    async def start(self, uuid: str) -> None: ...
    async def stop(self, uuid: str, *, graceful: bool = True, timeout: float = 60) -> None: ...
    async def reboot(self, uuid: str, *, hard: bool = False) -> None: ...
    async def pause(self, uuid: str) -> None: ...
    async def unpause(self, uuid: str) -> None: ...
    async def suspend(self, uuid: str) -> None: ...
    async def resume(self, uuid: str) -> None: ...
    async def inject_nmi(self, uuid: str) -> None: ...  # a non-maskable interrupt: the guest's crash dump
    async def destroy(self, uuid: str) -> None: ...  # stop if running and undefine; no error if absent
    # Volumes (hot-plug): a running or paused domain gets the disk live and in its persistent
    # definition, a stopped one in its definition only.  attach_disk of a serial the domain has
    # already is a Conflict.  detach_disk waits (up to ``timeout``) until the guest released the
    # disk (libvirt's device-removed event, or the live XML no longer has it) and raises
    # Unavailable if it did not; a disk the domain does not have is no error (idempotent).
    async def attach_disk(self, uuid: str, disk: VolumeDisk) -> None: ...
    async def detach_disk(self, uuid: str, volume_id: str, *, timeout: float = 30) -> None: ...
    # The volume grew (os-extend of an in-use volume): the running guest sees the new size.
    async def resize_disk(self, uuid: str, volume_id: str, size_bytes: int) -> None: ...
    # The volume ids (serials) of the domain's volume disks, target by serial: the live ones of an
    # active domain (``live``), else its persistent definition's.
    async def volume_disks(self, uuid: str, *, live: bool = True) -> dict[str, str]: ...
    # The unix sockets of a running domain's consoles by protocol ("vnc", "serial"); {} when none.
    async def console_sockets(self, uuid: str) -> dict[str, str]: ...
    def events(self) -> Any: ...  # a trio MemoryReceiveChannel of (uuid, state) lifecycle events

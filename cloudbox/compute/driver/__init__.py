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
    def events(self) -> Any: ...  # a trio MemoryReceiveChannel of (uuid, state) lifecycle events

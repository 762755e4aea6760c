"""An in-memory hypervisor with the real driver's behaviour, for fast tests.

Domains live in a registry keyed by the driver's ``uri``, not in the driver
object, so they outlive it the way libvirt domains outlive the cloudbox
process: a second ``FakeDriver`` opened on the same uri adopts them.  State
changes follow ``core.LIFECYCLE`` and send (uuid, state) events, as the real
driver's libvirt callbacks do; starting a domain appends a line to its
console log, as a real guest's firmware would.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import trio

from cloudbox.compute.core import DOMAIN_NAME_PREFIX, plan_lifecycle
from cloudbox.compute.driver import (
    CRASHED,
    PAUSED,
    RUNNING,
    SHUTOFF,
    DomainInfo,
    DomainSpec,
    HostInfo,
    VolumeDisk,
)
from cloudbox.compute.driver.volume_disk import disk_xml
from cloudbox.errors import Conflict, NotFound, Unavailable

EVENT_BUFFER = 1000


@dataclass
class _FakeDomain:
    spec: DomainSpec
    state: str = SHUTOFF
    # Volume disks by serial (live and persistent alike: a fake guest releases a disk at once),
    # and the size in bytes each was last resized to.
    disks: dict[str, VolumeDisk] = field(default_factory=dict)
    disk_sizes: dict[str, int] = field(default_factory=dict)


# uri -> uuid -> domain: the "hypervisor" that outlives driver objects.
_HOSTS: dict[str, dict[str, _FakeDomain]] = {}


class FakeDriver:
    def __init__(
        self,
        uri: str | None = None,
        instances_dir: Path | None = None,
        *,
        vcpus: int = 8,
        memory_mb: int = 16384,
        disk_gb: int = 200,
        hostname: str | None = None,
    ) -> None:
        # No uri: a host of its own.  The same uri: the same host (adoption).
        self.uri = uri or f"fake:///{uuid.uuid4()}"
        self.instances_dir = instances_dir
        self._vcpus, self._memory_mb, self._disk_gb = vcpus, memory_mb, disk_gb
        self._hostname = hostname or socket.gethostname()
        self._send, self._receive = trio.open_memory_channel[tuple[str, str]](EVENT_BUFFER)
        self._opened = False
        # Volume ids whose disk a guest will not release (tests of a detach that times out).
        self.stuck_disks: set[str] = set()

    @property
    def _domains(self) -> dict[str, _FakeDomain]:
        return _HOSTS.setdefault(self.uri, {})

    async def open(self) -> None:
        await trio.lowlevel.checkpoint()
        self._opened = True

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()
        self._opened = False
        self._send.close()

    def events(self) -> trio.MemoryReceiveChannel[tuple[str, str]]:
        return self._receive

    async def host_info(self) -> HostInfo:
        await trio.lowlevel.checkpoint()
        return HostInfo(
            hostname=self._hostname,
            vcpus=self._vcpus,
            memory_mb=self._memory_mb,
            disk_gb=self._disk_gb,
            hypervisor_type="QEMU",
            hypervisor_version=7002000,
            accel="tcg",
            accel_detail="fake driver: no guest runs",
        )

    async def list_domains(self) -> list[DomainInfo]:
        await trio.lowlevel.checkpoint()
        return [
            DomainInfo(uuid=uuid, name=domain.spec.name, state=domain.state, metadata=dict(domain.spec.metadata))
            for uuid, domain in sorted(self._domains.items())
            if domain.spec.name.startswith(DOMAIN_NAME_PREFIX)
        ]

    async def get_state(self, uuid: str) -> str | None:
        await trio.lowlevel.checkpoint()
        domain = self._domains.get(uuid)
        return domain.state if domain else None

    def _get(self, uuid: str) -> _FakeDomain:
        domain = self._domains.get(uuid)
        if domain is None:
            raise NotFound(f"no domain {uuid}")
        return domain

    def _set_state(self, uuid: str, domain: _FakeDomain, state: str) -> None:
        if state == domain.state:
            return
        domain.state = state
        if state == RUNNING:
            self._write_console(domain.spec, "fake guest running")
        try:
            self._send.send_nowait((uuid, state))
        except (trio.WouldBlock, trio.ClosedResourceError):
            pass  # nobody reads: the state is still right, as after a lost libvirt event

    @staticmethod
    def _write_console(spec: DomainSpec, line: str) -> None:
        path = Path(spec.console_log)
        if path.parent.is_dir():
            with open(path, "a") as console:
                console.write(f"{line}\r\n")

    async def _transition(self, uuid: str, operation: str) -> None:
        await trio.lowlevel.checkpoint()
        domain = self._get(uuid)
        target = plan_lifecycle(operation, domain.state)
        if target is not None:
            if operation == "hard_reboot" and domain.state == RUNNING:
                self._write_console(domain.spec, "fake guest reset")
            self._set_state(uuid, domain, target)

    async def create(self, spec: DomainSpec) -> None:
        await trio.lowlevel.checkpoint()
        domain = self._domains.get(spec.uuid)
        if domain is not None and domain.state not in (SHUTOFF, CRASHED):
            raise Conflict(f"domain {spec.uuid} exists and is {domain.state}")
        for volume in spec.volumes:
            disk_xml(volume)  # the real driver's check of connection_info
        if domain is None:
            domain = self._domains[spec.uuid] = _FakeDomain(spec)
        else:
            domain.spec = spec
        domain.disks = {volume.volume_id: volume for volume in spec.volumes}
        if spec.start:
            self._set_state(spec.uuid, domain, RUNNING)

    async def start(self, uuid: str) -> None:
        await self._transition(uuid, "start")

    async def stop(self, uuid: str, *, graceful: bool = True, timeout: float = 60) -> None:
        await self._transition(uuid, "stop")

    async def reboot(self, uuid: str, *, hard: bool = False) -> None:
        await self._transition(uuid, "hard_reboot" if hard else "reboot")

    async def pause(self, uuid: str) -> None:
        await self._transition(uuid, "pause")

    async def console_sockets(self, uuid: str) -> dict[str, str]:
        """A fake guest has no console sockets (its console is only its log)."""
        await trio.lowlevel.checkpoint()
        self._get(uuid)
        return {}

    async def inject_nmi(self, uuid: str) -> None:
        await trio.lowlevel.checkpoint()
        domain = self._get(uuid)
        self._write_console(domain.spec, "fake guest NMI received")

    async def unpause(self, uuid: str) -> None:
        await self._transition(uuid, "unpause")

    async def suspend(self, uuid: str) -> None:
        await self._transition(uuid, "suspend")

    async def resume(self, uuid: str) -> None:
        await self._transition(uuid, "resume")

    async def destroy(self, uuid: str) -> None:
        await trio.lowlevel.checkpoint()
        domain = self._domains.get(uuid)
        if domain is None:
            return
        if domain.state in (RUNNING, PAUSED):  # libvirt reports only the stop of an active domain
            self._set_state(uuid, domain, SHUTOFF)
        del self._domains[uuid]


    async def attach_disk(self, uuid: str, disk: VolumeDisk) -> None:
        await trio.lowlevel.checkpoint()
        domain = self._get(uuid)
        disk_xml(disk)
        if disk.volume_id in domain.disks:
            raise Conflict(f"domain {uuid} has volume {disk.volume_id} already")
        if any(d.target == disk.target for d in domain.disks.values()):
            raise Conflict(f"domain {uuid} has a disk {disk.target} already")
        domain.disks[disk.volume_id] = disk

    async def detach_disk(self, uuid: str, volume_id: str, *, timeout: float = 30) -> None:
        await trio.lowlevel.checkpoint()
        domain = self._domains.get(uuid)
        if domain is None or volume_id not in domain.disks:
            return
        if volume_id in self.stuck_disks and domain.state in (RUNNING, PAUSED):
            raise Unavailable(f"the guest of {uuid} did not release volume {volume_id} in {timeout:.0f} s")
        del domain.disks[volume_id]

    async def resize_disk(self, uuid: str, volume_id: str, size_bytes: int) -> None:
        await trio.lowlevel.checkpoint()
        domain = self._get(uuid)
        if volume_id not in domain.disks:
            raise NotFound(f"domain {uuid} has no volume {volume_id}")
        domain.disk_sizes[volume_id] = size_bytes

    async def volume_disks(self, uuid: str, *, live: bool = True) -> dict[str, str]:
        await trio.lowlevel.checkpoint()
        return {serial: disk.target for serial, disk in sorted(self._get(uuid).disks.items())}

    def disk_size(self, uuid: str, volume_id: str) -> int | None:
        """The size a fake guest's volume disk was last resized to (tests)."""
        return self._get(uuid).disk_sizes.get(volume_id)


def forget_host(uri: str) -> None:
    """Drop every domain of a fake host (test teardown)."""
    _HOSTS.pop(uri, None)


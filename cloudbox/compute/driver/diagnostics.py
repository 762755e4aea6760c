"""What a guest's hypervisor knows of it, for Nova's server diagnostics: CPU times, memory,
and the counters of its disks and NICs.

Read from libvirt (the driver's own connection, in a worker thread) for the real driver; the
in-memory driver reports its domain with zero counters.  Returns None for a guest this host
does not run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import trio

from cloudbox.compute.driver import CRASHED, PAUSED, RUNNING, SHUTOFF, SUSPENDED


@dataclass(frozen=True)
class DiskStats:
    device: str  # the guest's device name ("vda")
    read_bytes: int | None = None
    read_requests: int | None = None
    write_bytes: int | None = None
    write_requests: int | None = None
    errors: int | None = None


@dataclass(frozen=True)
class NicStats:
    device: str  # the host's tap name
    mac_address: str | None
    rx_octets: int | None = None
    rx_packets: int | None = None
    rx_errors: int | None = None
    rx_drop: int | None = None
    tx_octets: int | None = None
    tx_packets: int | None = None
    tx_errors: int | None = None
    tx_drop: int | None = None


@dataclass(frozen=True)
class GuestStats:
    state: str  # the driver's state name (running, paused, shutoff, suspended, crashed)
    max_memory_kib: int
    memory_kib: int
    cpu_times_ns: tuple[int | None, ...]  # one per vCPU (None: not running, libvirt has none)
    memory_stats: dict[str, int] = field(default_factory=dict)  # libvirt's memoryStats (KiB)
    disks: tuple[DiskStats, ...] = ()
    nics: tuple[NicStats, ...] = ()


async def guest_stats(driver: Any, uuid: str) -> GuestStats | None:
    """The guest ``uuid``'s counters as the driver sees them, or None if this host has no such guest."""
    if hasattr(driver, "_lookup_or_none"):  # the libvirt driver
        return await trio.to_thread.run_sync(_libvirt_stats, driver, uuid)
    state = await driver.get_state(uuid)
    if state is None:
        return None
    spec = driver._get(uuid).spec  # the in-memory driver keeps each domain's spec
    kib = spec.memory_mb * 1024
    return GuestStats(state=state, max_memory_kib=kib, memory_kib=kib,
                      cpu_times_ns=tuple(0 if state == RUNNING else None for _ in range(spec.vcpus)),
                      disks=(DiskStats("vda", 0, 0, 0, 0, 0),),
                      nics=tuple(NicStats(n.tap, n.mac, 0, 0, 0, 0, 0, 0, 0, 0) for n in spec.nics))


# libvirt's domain states (virDomainState) → the driver's names
_LIBVIRT_STATES = {1: RUNNING, 2: RUNNING, 3: PAUSED, 4: SHUTOFF, 5: SHUTOFF, 6: CRASHED, 7: SUSPENDED}


def _libvirt_stats(driver: Any, uuid: str) -> GuestStats | None:
    import libvirt

    try:
        dom = driver._lookup_or_none(uuid)
    except libvirt.libvirtError:
        return None
    if dom is None:
        return None
    state, max_mem, mem, vcpus, _cpu_time = dom.info()
    running = dom.isActive()
    cpu_times: tuple[int | None, ...] = tuple(None for _ in range(vcpus))
    memory: dict[str, int] = {}
    if running:
        try:
            cpu_times = tuple(int(v[2]) for v in dom.vcpus()[0])
        except libvirt.libvirtError:
            pass  # a guest paused mid-migration or an old QEMU: no per-vCPU times
        try:
            memory = {k: int(v) for k, v in dom.memoryStats().items()}
        except libvirt.libvirtError:
            pass
    root = ET.fromstring(dom.XMLDesc(0))
    disks, nics = [], []
    for disk in root.findall("./devices/disk"):
        target = disk.find("target")
        if target is None or not target.get("dev"):
            continue
        dev = target.get("dev", "")
        counters: tuple[int | None, ...] = (None,) * 5
        if running:
            try:
                counters = tuple(dom.blockStats(dev))
            except libvirt.libvirtError:
                pass
        rd_req, rd_bytes, wr_req, wr_bytes, errs = counters
        disks.append(DiskStats(dev, rd_bytes, rd_req, wr_bytes, wr_req, errs))
    for nic in root.findall("./devices/interface"):
        target, mac = nic.find("target"), nic.find("mac")
        dev = target.get("dev", "") if target is not None else ""
        values: tuple[int | None, ...] = (None,) * 8
        if running and dev:
            try:
                values = tuple(dom.interfaceStats(dev))
            except libvirt.libvirtError:
                pass
        rx_bytes, rx_packets, rx_errs, rx_drop, tx_bytes, tx_packets, tx_errs, tx_drop = values
        nics.append(NicStats(dev, mac.get("address") if mac is not None else None, rx_bytes, rx_packets, rx_errs,
                             rx_drop, tx_bytes, tx_packets, tx_errs, tx_drop))
    return GuestStats(state=_LIBVIRT_STATES.get(state, SHUTOFF), max_memory_kib=int(max_mem), memory_kib=int(mem),
                      cpu_times_ns=cpu_times, memory_stats=memory, disks=tuple(disks), nics=tuple(nics))

"""The libvirt driver's volume disks: hot-plug, hot-unplug, resize (a mixin of LibvirtDriver).

A running (or paused) domain takes a disk live and in its persistent definition at once
(VIR_DOMAIN_AFFECT_LIVE | CONFIG), so a reboot, a stop and start or a hard reboot keep it; a
stopped domain's definition alone changes.  Unplugging asks the guest to release the disk (an
ACPI hot-unplug the guest's kernel must agree to): libvirt's device-removed event says when it
did, and the live XML is read again after each event or half-second, whichever comes first, so a
lost event costs only that half-second.  A request the guest has not answered in ASK_AGAIN seconds
is sent again: one sent while the guest was booting (before its kernel handled ACPI hot-plug) is
lost.  A guest that keeps the disk past the timeout raises Unavailable, and the definition keeps
the disk too (the caller leaves the volume attached).
"""

from __future__ import annotations

import logging
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import trio

from cloudbox.compute import disks
from cloudbox.compute.core import DOMAIN_NAME_PREFIX
from cloudbox.compute.driver import PAUSED, VolumeDisk
from cloudbox.compute.driver import confinement
from cloudbox.compute.driver._libvirt import libvirt
from cloudbox.compute.driver.volume_disk import disk_element, find_disk, volume_disks
from cloudbox.errors import Conflict, NotFound, Unavailable

log = logging.getLogger(__name__)

LIVE_AND_CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
RECHECK = 0.5  # seconds between reads of the live XML while a guest releases a disk
ASK_AGAIN = 10.0  # seconds after which a detach the guest has not answered is asked again
NBD_RESIZE_WAIT = 30.0  # seconds a guest's NBD client has to reconnect to a grown export
NBD_OUTAGE = 600.0  # seconds a guest paused by an NBD disk's failed request is resumed again and again
RESUME_EVERY = 0.5


def nbd_node(domain_xml: str, volume_id: str) -> str | None:
    """QEMU's node name of a volume's NBD disk (libvirt's ``libvirt-<index>-storage``, from the
    live definition's source index), None when it is no NBD disk."""
    for disk in ET.fromstring(domain_xml).iter("disk"):
        source, serial = disk.find("source"), disk.find("serial")
        if (serial is not None and serial.text == volume_id and source is not None
                and source.get("protocol") == "nbd" and source.get("index")):
            return f"libvirt-{source.get('index')}-storage"
    return None


def paused_by_nbd(dom: Any) -> bool:
    """Paused by a failed request of an NBD disk (only those stop on an error: volume_disk.py; a
    local disk that fills up pauses with the same reason, and is left to the operator)."""
    state, reason = dom.state()
    return (state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_IOERROR
            and "protocol='nbd'" in dom.XMLDesc(0))


def nbd_reconnect(dom: Any, node: str) -> None:
    """Make QEMU's NBD client of the disk send a request, so that one cut by its server reconnects
    (QEMU 7.2 reconnects on the next request: no request, no new size). A read of the first sector
    through QEMU's monitor (HMP qemu-io on the NBD node: the device's id names no block backend);
    the first tries after the cut fail (the reconnect is made in the background meanwhile)."""
    import libvirt_qemu  # after _libvirt: its logging set-up comes first

    try:
        libvirt_qemu.qemuMonitorCommand(dom, f'qemu-io {node} "read 0 512"',
                                        libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
    except libvirt.libvirtError as exc:
        log.debug("NBD disk poke: %s", exc)


class VolumeDisksMixin:
    """Needs from LibvirtDriver: _run, _lookup, _connection, _owned, guest, _token."""

    _devices_changed: trio.Event | None = None

    # -- events -------------------------------------------------------------------------

    _resuming: set[str] | None = None

    def resume_paused_by_io_errors(self, conn: Any) -> None:
        """At open: guests an NBD outage paused while this process was away are resumed too."""
        for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PAUSED):
            try:
                if dom.name().startswith(DOMAIN_NAME_PREFIX) and paused_by_nbd(dom):
                    self.resume_after_io_error(dom)
            except libvirt.libvirtError:
                continue  # gone meanwhile

    def resume_after_io_error(self, dom: Any) -> None:
        """A guest paused by an I/O error (libvirt's event): one paused by a failed request of
        an NBD disk is resumed every half-second (QEMU retries the request, which reconnects to
        the export once its node serves it again) until it runs, for NBD_OUTAGE at most; any
        other (a local disk that filled up) is reported paused, as before. In a thread of its
        own: libvirt's event thread must neither wait nor call back into libvirt."""
        uuid = dom.UUIDString()
        if self._resuming is None:
            self._resuming = set()
        if uuid in self._resuming:
            return
        self._resuming.add(uuid)

        def resume() -> None:
            deadline = time.monotonic() + NBD_OUTAGE
            try:
                if not paused_by_nbd(dom):
                    token = getattr(self, "_token", None)
                    if token is not None:
                        token.run_sync_soon(self._deliver, uuid, PAUSED)  # type: ignore[attr-defined]
                    return
                log.warning("guest paused by an NBD disk's I/O error: resumed as the disk reconnects",
                            extra={"server_id": uuid})
                while time.monotonic() < deadline:
                    time.sleep(RESUME_EVERY)
                    if not paused_by_nbd(dom):
                        return
                    try:
                        dom.resume()
                    except libvirt.libvirtError as exc:
                        log.debug("resume after an I/O error: %s", exc)
                log.warning("guest still paused by an NBD disk's I/O error", extra={"server_id": uuid})
            except (libvirt.libvirtError, trio.RunFinishedError):
                pass  # the domain went away, or the driver's trio run ended
            finally:
                self._resuming.discard(uuid)  # type: ignore[union-attr]

        threading.Thread(target=resume, name=f"resume {uuid}", daemon=True).start()

    def register_device_events(self, conn: Any) -> int:
        """Listen for libvirt's device-removed events (a guest released a disk)."""
        return conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                           self._on_device_removed, None)

    def _on_device_removed(self, _conn: Any, _dom: Any, _alias: str, _opaque: Any) -> None:
        token = getattr(self, "_token", None)
        if token is None:
            return
        try:
            token.run_sync_soon(self._wake_device_waiters)
        except trio.RunFinishedError:
            pass

    def _wake_device_waiters(self) -> None:
        changed, self._devices_changed = self._devices_changed, trio.Event()
        if changed is not None:
            changed.set()

    # -- the disk's XML, with what confinement needs -------------------------------------

    async def _volume_disk_xml(self, disk: VolumeDisk) -> str:
        element = disk_element(disk)
        source, driver = element.find("source"), element.find("driver")
        path = source.get("file") if source is not None and element.get("type") == "file" else None
        if path and driver is not None and driver.get("type") == "qcow2":
            # State the chain (empty or not) so libvirt neither probes it nor chowns backing files.
            chain = await disks.backing_chain(Path(path))
            wrapper = ET.Element("domain")
            ET.SubElement(wrapper, "devices").append(element)
            wrapped = confinement.with_backing_chains(ET.tostring(wrapper, encoding="unicode"), {path: chain})
            element = ET.fromstring(wrapped).find("devices/disk")  # type: ignore[assignment]
            for backing, _fmt in chain:
                if self.guest is not None:  # type: ignore[attr-defined]
                    confinement.make_backing_readable(Path(backing), self.guest, self._owned())  # type: ignore[attr-defined]
        if path and self.guest is not None:  # type: ignore[attr-defined]
            await trio.to_thread.run_sync(
                lambda: confinement.ensure_reachable([path], self.guest, self._owned()))  # type: ignore[attr-defined]
        ET.indent(element)
        return ET.tostring(element, encoding="unicode")

    # -- the contract --------------------------------------------------------------------

    async def attach_disk(self, uuid: str, disk: VolumeDisk) -> None:
        xml = await self._volume_disk_xml(disk)

        def attach() -> None:
            dom = self._lookup(uuid)  # type: ignore[attr-defined]
            current = volume_disks(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            if dom.isActive():
                current.update(volume_disks(dom.XMLDesc(0)))
            if disk.volume_id in current:
                raise Conflict(f"domain {uuid} has volume {disk.volume_id} already")
            if disk.target in current.values():
                raise Conflict(f"domain {uuid} has a disk {disk.target} already")
            if not dom.isActive():
                dom.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
                return
            dom.attachDeviceFlags(xml, LIVE_AND_CONFIG)

        await self._run(attach, uuid)  # type: ignore[attr-defined]

    async def detach_disk(self, uuid: str, volume_id: str, *, timeout: float = 30) -> None:
        def detach() -> bool:
            """Ask for the detach; True when the live domain still has to release the disk."""
            try:
                dom = self._lookup(uuid)  # type: ignore[attr-defined]
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return False
                raise
            persistent = find_disk(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), volume_id)
            live = find_disk(dom.XMLDesc(0), volume_id) if dom.isActive() else None
            if live is not None:
                try:
                    dom.detachDeviceFlags(live, libvirt.VIR_DOMAIN_AFFECT_LIVE)
                except libvirt.libvirtError as exc:
                    # A detach already asked of the guest and not answered yet: wait for it again.
                    if "already in the process of unplug" not in (exc.get_error_message() or ""):
                        raise
            if persistent is not None and live is None:
                dom.detachDeviceFlags(persistent, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
            return live is not None

        if not await self._run(detach, uuid):  # type: ignore[attr-defined]
            return
        with trio.move_on_after(timeout):
            asked = trio.current_time()
            while True:
                if self._devices_changed is None:
                    self._devices_changed = trio.Event()
                changed = self._devices_changed
                if not await self._live_has(uuid, volume_id):
                    break
                if trio.current_time() - asked >= ASK_AGAIN:
                    # A request the guest missed (it came before its kernel took ACPI hot-plug
                    # events, during boot) is lost: ask again, as Nova does.
                    await self._run(lambda: self._ask_again(uuid, volume_id), uuid)  # type: ignore[attr-defined]
                    asked = trio.current_time()
                with trio.move_on_after(RECHECK):
                    await changed.wait()
        if await self._live_has(uuid, volume_id):
            raise Unavailable(f"the guest of server {uuid} did not release volume {volume_id} in {timeout:.0f} s "
                              "(its operating system must accept PCI hot-unplug)")

        def forget() -> None:  # the guest let go: the definition drops the disk too
            dom = self._lookup(uuid)  # type: ignore[attr-defined]
            persistent = find_disk(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), volume_id)
            if persistent is not None and dom.isPersistent():
                dom.detachDeviceFlags(persistent, libvirt.VIR_DOMAIN_AFFECT_CONFIG)

        await self._run(forget, uuid)  # type: ignore[attr-defined]

    def _ask_again(self, uuid: str, volume_id: str) -> None:
        dom = self._lookup(uuid)  # type: ignore[attr-defined]
        live = find_disk(dom.XMLDesc(0), volume_id) if dom.isActive() else None
        if live is None:
            return
        try:
            dom.detachDeviceFlags(live, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        except libvirt.libvirtError as exc:
            log.info("detach asked again of %s: %s", uuid, exc.get_error_message())

    async def _live_has(self, uuid: str, volume_id: str) -> bool:
        def query() -> bool:
            try:
                dom = self._lookup(uuid)  # type: ignore[attr-defined]
                return dom.isActive() and find_disk(dom.XMLDesc(0), volume_id) is not None
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return False
                raise

        return await self._run(query, uuid)  # type: ignore[attr-defined]

    async def resize_disk(self, uuid: str, volume_id: str, size_bytes: int) -> None:
        def resize() -> None:
            dom = self._lookup(uuid)  # type: ignore[attr-defined]
            if not dom.isActive():
                return  # a stopped guest reads the volume's size when it starts
            xml = dom.XMLDesc(0)
            target = volume_disks(xml).get(volume_id)
            if target is None:
                raise NotFound(f"domain {uuid} has no volume {volume_id}")
            node = nbd_node(xml, volume_id)
            deadline = time.monotonic() + NBD_RESIZE_WAIT
            while True:
                try:
                    dom.blockResize(target, size_bytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
                    return
                except libvirt.libvirtError as exc:
                    # QEMU's NBD client learns the export's size when it connects: until it has
                    # reconnected to the export made again at the new size, it cannot grow.
                    if node is None or "Cannot grow NBD" not in str(exc) or time.monotonic() > deadline:
                        raise
                nbd_reconnect(dom, node)
                time.sleep(0.2)

        await self._run(resize, uuid)  # type: ignore[attr-defined]

    async def volume_disks(self, uuid: str, *, live: bool = True) -> dict[str, str]:
        def query() -> dict[str, str]:
            dom = self._lookup(uuid)  # type: ignore[attr-defined]
            active = live and dom.isActive()
            return volume_disks(dom.XMLDesc(0 if active else libvirt.VIR_DOMAIN_XML_INACTIVE))

        return await self._run(query, uuid)  # type: ignore[attr-defined]

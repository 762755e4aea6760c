"""The libvirt driver: QEMU guests through libvirt's embedded QEMU driver.

By default libvirt runs inside this process (``qemu:///embed?root=DIR``): no
libvirtd, and each node (even several test nodes on one machine, one per
process) owns its guests under its own root.  QEMU processes are not our
children in any way that matters: they keep running when cloudbox exits, and
a driver opened again on the same root lists them as running (adoption).
``qemu:///system`` works too; ``ensure_libvirtd`` starts the daemons where no
init system does.

Threads: libvirt's default event loop runs in one daemon thread per process
(libvirt needs it for the embedded driver and for events); every blocking
libvirt call runs in a trio worker thread; lifecycle callbacks arrive on the
event-loop thread and are handed to trio with ``TrioToken.run_sync_soon``.

Acceleration: /dev/kvm existing does not mean KVM works (nested KVM here
opens fine and then fails inside the guest), so ``host_info`` boots a probe
guest under KVM once per process and falls back to TCG unless it ran.

Confinement: QEMU runs as an unprivileged user (``guest_user``, Debian's
libvirt-qemu) with libvirt's DAC driver and QEMU's seccomp sandbox; before a
guest starts the driver makes its files reachable and its backing files
read-only to it (see confinement.py).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

import trio

from cloudbox import nbd_tls
from cloudbox.compute import disks
from cloudbox.compute.core import (DOMAIN_NAME_PREFIX, SERIAL_SOCKET_DIR, console_sockets, parse_domain_metadata,
                                   plan_lifecycle, render_domain_xml)
from cloudbox.compute.driver import (
    CRASHED,
    PAUSED,
    RUNNING,
    SHUTOFF,
    SUSPENDED,
    DomainInfo,
    DomainSpec,
    HostInfo,
)
from cloudbox.compute.driver._libvirt import libvirt
from cloudbox.compute.driver import confinement, kvm_probe
from cloudbox.compute.driver.confinement import GuestIdentity
from cloudbox.compute.driver.real_volumes import VolumeDisksMixin, paused_by_nbd
from cloudbox.compute.driver.volume_disk import with_volume_disks
from cloudbox.errors import CloudboxError, Conflict, NotFound, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
EVENT_BUFFER = 1000
DAEMON_START_TIMEOUT = 15.0
# libvirt calls get threads of their own: a guest's start holds one for seconds, and with the
# default limiter's 40 (shared with the state engine's reads and commits) 20 boots at once would
# leave the rest of the node half of it, and 40 none.
LIBVIRT_THREADS = 256

# --- process-wide libvirt setup -------------------------------------------------

_loop_lock = threading.Lock()
_loop_started = False


def _ignore_libvirt_error(_context: Any, _error: Any) -> None:
    """libvirt's default handler prints every error; ours are raised as exceptions instead."""


def _run_event_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:  # pragma: no cover - keep the loop alive whatever a callback does
            log.exception("libvirt event loop iteration failed")
            time.sleep(0.1)


def ensure_event_loop() -> None:
    """Register and start libvirt's default event loop once per process (before any open)."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True).start()
        _loop_started = True


# Each open of an embed uri registers libvirt's QEMU driver once more, and
# libvirt takes only a couple of dozen drivers per process; the driver keeps
# its state in the process anyway.  So an embed connection is opened once per
# process and shared; LibvirtDriver.close() leaves it open.
_embed_lock = threading.Lock()
_embed_connections: dict[str, libvirt.virConnect] = {}


def _open_connection(uri: str, guest_user: str, data_root: Path | None = None) -> libvirt.virConnect:
    root = embed_root(uri)
    if root is None:
        if uri.startswith("qemu:///system"):
            ensure_libvirtd()
        return libvirt.open(uri)
    with _embed_lock:
        conn = _embed_connections.get(uri)
        if conn is None:
            if _embed_connections:
                raise Unavailable(
                    f"cannot open {uri}: libvirt's embedded driver serves one root per process "
                    f"and this process already uses {next(iter(_embed_connections))}"
                )
            guest = confinement.guest_identity(guest_user)
            # First: libvirt's cache of QEMU's capabilities goes stale whenever its user cannot open /dev/kvm.
            confinement.ensure_kvm_access(guest)
            prepare_embed_root(root, guest, nbd_tls.guest_client_dir(data_root, guest) if data_root else None)
            conn = libvirt.open(f"qemu:///embed?root={short_root(root)}")
            _wait_for_reconnects(conn)
            _embed_connections[uri] = conn
        return conn


def _wait_for_reconnects(conn: libvirt.virConnect) -> None:
    """Let libvirt finish re-attaching to the QEMU processes it found running.

    Opening a root whose guests survived us starts one reconnect thread per
    guest; a destroy racing one fails with "domain is not running".  A query
    that takes the domain's job waits for its reconnect to end.
    """
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        try:
            dom.memoryStats()
        except libvirt.libvirtError:
            pass  # gone meanwhile, or QEMU no longer answers: its state will say so


# QEMU's monitor socket lives at <root>/lib/qemu/domain-<id>-<20 chars of name>/monitor.sock
# and a UNIX socket path has at most 107 bytes; longer roots get a short symlink.
MAX_EMBED_ROOT = 48
SHORT_ROOTS = Path("/run/cloudbox/libvirt")


def short_root(root: Path) -> Path:
    """``root`` itself, or a short symlink to it when QEMU's socket paths under it would be too long."""
    root = root.absolute()
    if len(str(root)) <= MAX_EMBED_ROOT:
        return root
    link = SHORT_ROOTS / hashlib.sha256(str(root).encode()).hexdigest()[:16]
    link.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not (link.is_symlink() and os.readlink(link) == str(root)):
        temporary = link.with_name(f".{link.name}.{os.getpid()}")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(root)
        os.replace(temporary, link)
    return link


def embed_root(uri: str) -> Path | None:
    """The root directory of a ``qemu:///embed?root=DIR`` uri, or None for other uris."""
    parsed = urlparse(uri)
    if parsed.scheme != "qemu" or parsed.path != "/embed":
        return None
    roots = parse_qs(parsed.query).get("root")
    if not roots:
        raise ValueError(f"{uri}: the embedded driver needs ?root=DIR")
    return Path(roots[0])


def default_uri(data_dir: Path) -> str:
    return f"qemu:///embed?root={data_dir / 'libvirt'}"


def prepare_embed_root(root: Path, guest: GuestIdentity, nbd_tls_dir: Path | None = None) -> None:
    """Write the embedded driver's qemu.conf (libvirt reads <root>/etc/qemu.conf when it opens)."""
    (root / "etc").mkdir(parents=True, exist_ok=True, mode=0o700)
    conf, wanted = root / "etc" / "qemu.conf", confinement.embed_qemu_conf(guest, nbd_tls_dir)
    if not conf.exists() or conf.read_text() != wanted:
        conf.write_text(wanted)


QEMU_BINARY = "qemu-system-x86_64"  # what libvirt runs for the x86_64 guests core.py describes
_QEMU_VERSION = re.compile(rb"QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?")


@functools.cache
def qemu_version() -> int:
    """The guests' QEMU's version as libvirt counts it (7.2.5: 7002005), from the binary itself.

    For the embedded driver: its getVersion() learns the capabilities of every QEMU binary on the
    host (qemu-system-i386 too: a probe of seconds) and keeps them in this process."""
    binary = shutil.which(QEMU_BINARY) or f"/usr/bin/{QEMU_BINARY}"
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"cannot run {binary} --version: {exc}") from exc
    found = _QEMU_VERSION.search(out)
    if found is None:
        raise Unavailable(f"{binary} --version printed no version: {out[:200]!r}")
    major, minor, micro = (int(part or 0) for part in found.groups())
    return major * 1_000_000 + minor * 1_000 + micro


def _socket_answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def ensure_libvirtd() -> None:
    """Start virtlogd and libvirtd (daemonised) unless their sockets already answer.

    For ``qemu:///system`` on hosts without an init system; with systemd the
    sockets answer (socket activation) and nothing is started.
    """
    for daemon, sock in (("virtlogd", "/run/libvirt/virtlogd-sock"), ("libvirtd", "/run/libvirt/libvirt-sock")):
        if _socket_answers(sock):
            continue
        binary = shutil.which(daemon) or f"/usr/sbin/{daemon}"
        log.info("starting %s", daemon)
        subprocess.run([binary, "-d"], check=True, timeout=DAEMON_START_TIMEOUT, capture_output=True)
        deadline = time.monotonic() + DAEMON_START_TIMEOUT
        while not _socket_answers(sock):
            if time.monotonic() > deadline:
                raise Unavailable(f"{daemon} started but {sock} does not answer")
            time.sleep(0.1)


# --- state mapping ----------------------------------------------------------------


def with_extra_disks(xml: str, paths: tuple[str, ...]) -> str:
    """The domain XML with qcow2 disks ``paths`` after its root disk, as vdb, vdc... (a rescued
    guest boots its rescue disk and sees its own disk second, as with Nova)."""
    if not paths:
        return xml
    domain = ET.fromstring(xml)
    devices = domain.find("devices")
    assert devices is not None
    root = devices.find("disk")
    at = list(devices).index(root) + 1 if root is not None else 0
    for n, path in enumerate(paths):
        disk = ET.Element("disk", {"type": "file", "device": "disk"})
        ET.SubElement(disk, "driver", {"name": "qemu", "type": "qcow2", "discard": "unmap"})
        ET.SubElement(disk, "source", {"file": path})
        ET.SubElement(disk, "target", {"dev": f"vd{chr(ord('b') + n)}", "bus": "virtio"})
        devices.insert(at + n, disk)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode")


def _state_of(dom: libvirt.virDomain) -> str:
    state, reason = dom.state()
    if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED, libvirt.VIR_DOMAIN_SHUTDOWN):
        return RUNNING
    if state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_IOERROR and paused_by_nbd(dom):
        return RUNNING  # an NBD disk's export is away: resumed when it returns (real_volumes.py)
    if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED):
        return PAUSED
    if state == libvirt.VIR_DOMAIN_CRASHED:
        return CRASHED
    if state == libvirt.VIR_DOMAIN_SHUTOFF and reason in (libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, libvirt.VIR_DOMAIN_SHUTOFF_FAILED):
        return CRASHED
    if dom.hasManagedSaveImage(0):
        return SUSPENDED
    return SHUTOFF


def _event_state(event: int, detail: int) -> str | None:
    """The state a lifecycle event reports, or None for events that are not a state (define, undefine...)."""
    if event in (libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_RESUMED):
        return RUNNING
    if event in (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED):
        return PAUSED
    if event == libvirt.VIR_DOMAIN_EVENT_CRASHED:
        return CRASHED
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
        if detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED:
            return SUSPENDED
        if detail in (libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED, libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED):
            return CRASHED
        return SHUTOFF
    return None  # DEFINED, UNDEFINED, SHUTDOWN (STOPPED follows)


def _translate(exc: libvirt.libvirtError, what: str) -> CloudboxError:
    code = exc.get_error_code()
    message = exc.get_error_message() or str(exc)
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return NotFound(f"no domain {what}")
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        return Conflict(f"domain {what}: {message}")
    return CloudboxError(f"libvirt, domain {what}: {message}")


# --- the driver --------------------------------------------------------------------


def _destroy_if_active(dom: libvirt.virDomain) -> None:
    """Kill the guest's QEMU if it runs; a guest that stopped meanwhile is no error."""
    if not dom.isActive():
        return
    try:
        dom.destroy()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID or dom.isActive():
            raise


class LibvirtDriver(VolumeDisksMixin):
    def __init__(
        self, uri: str, instances_dir: Path, *, accel: str = "auto", guest_user: str = confinement.DEFAULT_GUEST_USER
    ) -> None:
        if accel not in ("auto", "kvm", "tcg"):
            raise ValueError("accel must be auto, kvm or tcg")
        self.uri = uri
        self.instances_dir = Path(instances_dir)
        self._accel = accel
        self.guest_user = guest_user  # the embedded driver's; qemu:///system's is in the host's qemu.conf
        self.guest: GuestIdentity | None = None  # whom QEMU runs as (None: root, or libvirt has no DAC)
        self.confinement = ""  # what confines guests, in words (logged at open)
        self._conn: libvirt.virConnect | None = None
        self._callback_id: int | None = None
        self._device_callback_id: int | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._send, self._receive = trio.open_memory_channel[tuple[str, str]](EVENT_BUFFER)
        # Bumped on every event; lets stop() wait for "shut off" without polling.
        self._changed = trio.Event()
        self._last_state: dict[str, str] = {}
        self._threads = trio.CapacityLimiter(LIBVIRT_THREADS)

    # -- connection -----------------------------------------------------------

    async def open(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        await trio.to_thread.run_sync(self._open_blocking)

    def _open_blocking(self) -> None:
        ensure_event_loop()
        self.instances_dir.mkdir(parents=True, exist_ok=True)
        try:
            conn = _open_connection(self.uri, self.guest_user, self.instances_dir.parent)  # the data dir
            self._confine_host(conn)
        except libvirt.libvirtError as exc:
            raise Unavailable(f"cannot open libvirt at {self.uri}: {exc.get_error_message()}") from exc
        self._callback_id = conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None
        )
        self._device_callback_id = self.register_device_events(conn)
        self._conn = conn
        self.resume_paused_by_io_errors(conn)

    def _confine_host(self, conn: libvirt.virConnect) -> None:
        """Learn whom QEMU runs as, and let it reach what it needs and nothing else of ours."""
        root = embed_root(self.uri)
        if root is not None:
            # The embedded driver's QEMU runs as the qemu.conf we wrote says, with DAC, which libvirt always
            # stacks.  Not asked of libvirt (getCapabilities, getSecurityModel): either makes it learn every
            # QEMU binary on the host (qemu-system-i386 too: ~4 s) and keep that (~3.5 MiB) for good,
            # which otherwise waits for the first guest and takes its one binary.
            guest: GuestIdentity | None = confinement.guest_identity(self.guest_user)
            models = "dac, plus a MAC driver where libvirt finds one usable"
        else:
            capabilities = conn.getCapabilities()
            guest = confinement.identity_from_capabilities(capabilities)
            models = ", ".join(confinement.security_models(capabilities))
        if guest is None or guest.uid == 0:
            self.guest = None
            self.confinement = f"QEMU runs as root (the qemu.conf of {self.uri} says so); security drivers: {models}"
            log.warning("guests are not confined", extra={"uri": self.uri, "confinement": self.confinement})
            return
        self.guest = guest
        kvm = confinement.ensure_kvm_access(guest)
        places: list[Path] = [self.instances_dir]
        if root is not None:  # QEMU opens <root>/lib/qemu/domain-*/ files, by the short path when there is one
            places += [root / "lib" / "qemu", short_root(root) / "lib" / "qemu"]
        confinement.ensure_reachable(places, guest, self._owned())
        keep = [self.instances_dir] + ([root, short_root(root)] if root is not None else [])
        confinement.seal(self.instances_dir.parent, keep, guest)
        apparmor = confinement.apparmor_finding(embedded=root is not None)
        seccomp = "on" if root is not None else "as the host's qemu.conf says (on by default)"
        self.confinement = (
            f"QEMU runs as {guest.describe()}; security drivers: {models} (dac chowns what a running guest uses); "
            f"seccomp sandbox: {seccomp}; {apparmor}; {kvm}"
        )
        log.info("guest confinement", extra={"uri": self.uri, "confinement": self.confinement})
        if "AppArmor: enabled" in apparmor and "apparmor" not in models:
            log.warning("AppArmor is enabled on this host but does not confine guests", extra={"why": apparmor})

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            callback_ids = [self._callback_id, self._device_callback_id]
            self._callback_id = self._device_callback_id = None

            def close_blocking() -> None:
                for callback_id in callback_ids:
                    if callback_id is None:
                        continue
                    try:
                        conn.domainEventDeregisterAny(callback_id)
                    except libvirt.libvirtError:
                        pass
                if embed_root(self.uri) is None:  # embed connections stay open (see _open_connection)
                    conn.close()

            await trio.to_thread.run_sync(close_blocking)
        self._send.close()

    def events(self) -> trio.MemoryReceiveChannel[tuple[str, str]]:
        return self._receive

    # -- events (libvirt's thread -> trio) ----------------------------------------

    def _on_lifecycle(self, _conn: Any, dom: libvirt.virDomain, event: int, detail: int, _opaque: Any) -> None:
        state = _event_state(event, detail)
        token = self._token
        if state is None or token is None:
            return
        try:
            if not dom.name().startswith(DOMAIN_NAME_PREFIX):
                return  # the KVM probe, or a domain someone else defined
            if event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED and detail == libvirt.VIR_DOMAIN_EVENT_SUSPENDED_IOERROR:
                self.resume_after_io_error(dom)  # an NBD disk's export away is no pause of the server's
                return
            token.run_sync_soon(self._deliver, dom.UUIDString(), state)
        except (trio.RunFinishedError, libvirt.libvirtError):
            pass  # trio has ended, or the domain vanished meanwhile

    def _deliver(self, uuid: str, state: str) -> None:
        changed, self._changed = self._changed, trio.Event()
        changed.set()
        if self._last_state.get(uuid) == state:
            return  # libvirt says "resumed" and "started" for one start
        self._last_state[uuid] = state
        try:
            self._send.send_nowait((uuid, state))
        except trio.WouldBlock:
            log.warning("compute events not read; dropped %s -> %s", uuid, state)
        except trio.ClosedResourceError:
            pass

    # -- helpers ------------------------------------------------------------------

    def _connection(self) -> libvirt.virConnect:
        if self._conn is None:
            raise Unavailable("the libvirt driver is not open")
        return self._conn

    async def _run(self, fn: Callable[[], T], what: str) -> T:
        def call() -> T:
            try:
                return fn()
            except libvirt.libvirtError as exc:
                raise _translate(exc, what) from exc

        return await trio.to_thread.run_sync(call, limiter=self._threads)

    def _lookup(self, uuid: str) -> libvirt.virDomain:
        return self._connection().lookupByUUIDString(uuid)

    def _lookup_or_none(self, uuid: str) -> libvirt.virDomain | None:
        try:
            return self._lookup(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    # -- queries ------------------------------------------------------------------

    async def host_info(self) -> HostInfo:
        conn = self._connection()

        def query() -> tuple[list[Any], str, int, os.statvfs_result]:
            version = qemu_version() if embed_root(self.uri) is not None else conn.getVersion()
            return conn.getInfo(), conn.getHostname(), version, os.statvfs(self.instances_dir)

        info, hostname, version, disk = await self._run(query, "host")
        accel, detail = await self._acceleration()
        return HostInfo(
            hostname=hostname,
            vcpus=int(info[2]),
            memory_mb=int(info[1]),
            disk_gb=disk.f_bavail * disk.f_frsize // (1 << 30),
            hypervisor_type="QEMU",
            hypervisor_version=int(version),
            accel=accel,
            accel_detail=detail,
        )

    async def _acceleration(self) -> tuple[str, str]:
        if self._accel != "auto":
            return self._accel, f"set to {self._accel}; no probe"
        conn = self._connection()
        work_dir = self.instances_dir / ".probe"
        root = embed_root(self.uri)
        qemu_log_dir = root / "log" / "qemu" if root is not None else Path("/var/log/libvirt/qemu")
        limit = kvm_probe.PROBE_TIMEOUT + kvm_probe.PROBE_START_GRACE
        await trio.to_thread.run_sync(self._prepare_probe_dir, work_dir)
        with trio.move_on_after(limit):
            try:
                # Abandoned (not waited for) if libvirt's start of the KVM guest itself blocks.
                return await trio.to_thread.run_sync(
                    lambda: kvm_probe.cached_probe_kvm(conn, work_dir, qemu_log_dir), abandon_on_cancel=True
                )
            except libvirt.libvirtError as exc:
                return kvm_probe.remember(("tcg", f"the KVM probe failed: {exc.get_error_message()}"))
        return kvm_probe.remember(("tcg", f"the KVM probe did not finish in {limit:.0f} s: starting a KVM guest blocks"),
                                  lasting=True)

    def _owned(self) -> list[Path]:
        """The directories this node owns (their permissions are ours to set): the data dir (the
        one holding instances/), the libvirt root and the short links to roots."""
        root = embed_root(self.uri)
        return [self.instances_dir.parent, SHORT_ROOTS] + ([root] if root is not None else [])

    def _prepare_probe_dir(self, work_dir: Path) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        if self.guest is not None:
            confinement.ensure_reachable([work_dir], self.guest, self._owned())

    async def list_domains(self) -> list[DomainInfo]:
        conn = self._connection()

        def query() -> list[DomainInfo]:
            found = []
            for dom in conn.listAllDomains(0):
                try:
                    name = dom.name()
                    if not name.startswith(DOMAIN_NAME_PREFIX):
                        continue
                    found.append(
                        DomainInfo(
                            uuid=dom.UUIDString(),
                            name=name,
                            state=_state_of(dom),
                            metadata=parse_domain_metadata(dom.XMLDesc(0)),
                        )
                    )
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:  # undefined meanwhile
                        raise
            return sorted(found, key=lambda d: d.uuid)

        return await self._run(query, "list")

    async def get_state(self, uuid: str) -> str | None:
        def query() -> str | None:
            dom = self._lookup_or_none(uuid)
            return _state_of(dom) if dom is not None else None

        return await self._run(query, uuid)

    # -- confinement: before any start --------------------------------------------------

    async def _backing_chains(self, xml: str, known: dict[str, confinement.Chain] | None = None
                              ) -> dict[str, confinement.Chain]:
        known = known or {}
        return {path: known[path] if path in known else await disks.backing_chain(Path(path))
                for path in confinement.disks_without_chain(xml)}

    def _prepare_files(self, xml: str) -> None:
        """Let the guest reach its files, and read (not write) its backing files."""
        SHORT_ROOTS.mkdir(parents=True, exist_ok=True, mode=0o700)  # libvirt binds the serial socket there
        Path(SERIAL_SOCKET_DIR).mkdir(exist_ok=True, mode=0o700)
        guest = self.guest
        if guest is None:
            return
        owned = self._owned()
        for backing in confinement.backing_files(xml):
            confinement.make_backing_readable(Path(backing), guest, owned)
        confinement.ensure_reachable(confinement.guest_paths(xml), guest, owned)

    async def _confine(self, dom: libvirt.virDomain, uuid: str) -> None:
        """Before a defined domain starts: its definition states its backing chains (those made
        before guests ran unprivileged do not; libvirt would chown the backing files to the
        guest), and its files are ready for the guest."""
        xml = await self._run(lambda: dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), uuid)
        confined = confinement.with_backing_chains(xml, await self._backing_chains(xml))

        def apply() -> None:
            if confined != xml:
                self._connection().defineXML(confined)
            self._prepare_files(confined)

        await self._run(apply, uuid)

    # -- lifecycle ------------------------------------------------------------------

    async def create(self, spec: DomainSpec) -> None:
        marks = [("", time.perf_counter())]  # (step, when it ended): logged as each step's ms
        xml = with_extra_disks(render_domain_xml(spec), spec.extra_disks)
        xml = with_volume_disks(xml, spec.volumes, image_root=bool(spec.root_disk))
        known = {spec.root_disk: list(spec.root_chain)} if spec.root_chain is not None else None
        xml = confinement.with_backing_chains(xml, await self._backing_chains(xml, known))
        conn = self._connection()
        marks.append(("xml", time.perf_counter()))

        def define_and_start() -> None:
            marks.append(("thread", time.perf_counter()))
            Path(spec.console_log).parent.mkdir(parents=True, exist_ok=True)
            existing = self._lookup_or_none(spec.uuid)
            if existing is not None and _state_of(existing) not in (SHUTOFF, CRASHED):
                raise Conflict(f"domain {spec.uuid} exists and is {_state_of(existing)}")
            self._prepare_files(xml)
            marks.append(("files", time.perf_counter()))
            # Not validated against libvirt's schema here (tens of ms a define): the renderer's
            # output is, in the tests (tests/test_boot_path.py).
            dom = conn.defineXML(xml)
            marks.append(("define", time.perf_counter()))
            if not spec.start:
                return
            try:
                dom.create()
                marks.append(("start", time.perf_counter()))
            except BaseException:
                if existing is None:  # undo our define; a pre-existing definition stays
                    try:
                        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
                    except libvirt.libvirtError:
                        log.warning("could not undefine %s after its start failed", spec.uuid)
                raise

        await self._run(define_and_start, spec.uuid)
        marks.append(("resume", time.perf_counter()))
        log.info("domain created", extra={"server_id": spec.uuid, "steps_ms": {
            name: round((end - begin) * 1000, 1) for (_, begin), (name, end) in zip(marks, marks[1:])}})

    async def _plan(self, uuid: str, operation: str) -> tuple[libvirt.virDomain, str, str | None]:
        def query() -> tuple[libvirt.virDomain, str]:
            dom = self._lookup(uuid)
            return dom, _state_of(dom)

        dom, state = await self._run(query, uuid)
        return dom, state, plan_lifecycle(operation, state)

    async def start(self, uuid: str) -> None:
        dom, _state, target = await self._plan(uuid, "start")
        if target is not None:
            await self._confine(dom, uuid)
            await self._run(dom.create, uuid)  # restores from the managed save when there is one

    async def stop(self, uuid: str, *, graceful: bool = True, timeout: float = 60) -> None:
        dom, state, target = await self._plan(uuid, "stop")
        if target is None:
            return
        if state == SUSPENDED:
            await self._run(lambda: dom.managedSaveRemove(0), uuid)
            self._deliver(uuid, SHUTOFF)  # libvirt sends no event for dropping a save image
            return
        if graceful and state == RUNNING:
            await self._run(dom.shutdown, uuid)  # ACPI power button
            if await self._wait_state(uuid, {SHUTOFF, CRASHED}, timeout):
                return
            log.info("domain %s ignored the shutdown request for %.0f s; destroying it", uuid, timeout)

        await self._run(lambda: _destroy_if_active(dom), uuid)

    async def _wait_state(self, uuid: str, states: set[str], timeout: float) -> bool:
        """Wait until the domain is in one of ``states``; False if ``timeout`` passes first."""
        with trio.move_on_after(timeout):
            while True:
                changed = self._changed
                if await self.get_state(uuid) in states:
                    return True
                await changed.wait()
        return False

    async def reboot(self, uuid: str, *, hard: bool = False) -> None:
        dom, state, _target = await self._plan(uuid, "hard_reboot" if hard else "reboot")
        if not hard:
            await self._run(lambda: dom.reboot(0), uuid)  # ACPI, guest's choice, like Nova's soft reboot
            return

        def hard_reboot() -> None:
            if state in (RUNNING, PAUSED):
                dom.reset(0)
                if state == PAUSED:
                    dom.resume()
                return
            if state == SUSPENDED:
                dom.managedSaveRemove(0)  # a hard reboot boots afresh, as Nova's does
            dom.create()

        if state not in (RUNNING, PAUSED):
            await self._confine(dom, uuid)
        await self._run(hard_reboot, uuid)

    async def pause(self, uuid: str) -> None:
        dom, _state, target = await self._plan(uuid, "pause")
        if target is not None:
            await self._run(dom.suspend, uuid)

    async def console_sockets(self, uuid: str) -> dict[str, str]:
        """The unix sockets of the running domain's consoles, by protocol (from its live XML)."""
        def query() -> dict[str, str]:
            dom = self._lookup(uuid)
            return console_sockets(dom.XMLDesc(0)) if dom.isActive() else {}

        return await self._run(query, uuid)

    async def inject_nmi(self, uuid: str) -> None:
        dom = await self._run(lambda: self._lookup(uuid), uuid)
        await self._run(lambda: dom.injectNMI(0), uuid)

    async def unpause(self, uuid: str) -> None:
        dom, _state, target = await self._plan(uuid, "unpause")
        if target is not None:
            await self._run(dom.resume, uuid)

    async def suspend(self, uuid: str) -> None:
        dom, _state, target = await self._plan(uuid, "suspend")
        if target is not None:
            # Memory goes to libvirt's managed-save file; resume restores it running.
            await self._run(lambda: dom.managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING), uuid)

    async def resume(self, uuid: str) -> None:
        dom, _state, target = await self._plan(uuid, "resume")
        if target is not None:
            await self._confine(dom, uuid)
            await self._run(dom.create, uuid)

    async def destroy(self, uuid: str) -> None:
        def destroy_and_undefine() -> None:
            dom = self._lookup_or_none(uuid)
            if dom is None:
                return
            try:
                _destroy_if_active(dom)
                dom.undefineFlags(
                    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
                    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                )
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise

        await self._run(destroy_and_undefine, uuid)

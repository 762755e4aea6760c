"""Does KVM really run guests here?  Boot a tiny guest under KVM and see.

/dev/kvm opening is not enough: under nested virtualization without full
support, KVM runs SeaBIOS (slowly) and then stops the guest with "KVM
internal error. Suberror: 1" at the first IRET in 32-bit protected mode, as
SYSLINUX executes.  The probe guest does exactly that from its boot sector
and reports on the serial port; TCG runs it in well under a second.

The verdict is cached per process, and a verdict the probe guest itself gave (it ran, stopped,
or blocked: on hosts where starting a KVM guest blocks, the probe costs its whole 40 s) is also
kept for the rest of the host's boot in ``HOST_CACHE``, keyed by the boot id, /dev/kvm, the KVM
modules' parameters and the QEMU binary, so that later node starts on the host skip it. A verdict
from a failure to start the probe (a permission, a libvirt error) is never kept there. Deleting
the file makes the next node start probe again.
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

from cloudbox.compute.driver._libvirt import libvirt

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 10.0  # for the guest to print; TCG needs well under a second
PROBE_START_GRACE = 30.0  # for libvirt to start (or fail to start) it

# A boot sector that prints a line from real mode, enters 32-bit protected
# mode, does an IRET and a short loop, then prints a second line and halts.
# Assembled with GNU as from (AT&T syntax, .code16, linked at 0x7c00):
#   cli; xor %ax,%ax; mov %ax,%ds; mov %ax,%ss; mov $0x7c00,%sp
#   print msg_real to port 0x3f8; lgdtl gdt_desc; set CR0.PE; ljmpl $8,$pm32
#   pm32: load 0x10 into ds/es/ss; pushfl; pushl $8; pushl $after; iretl
#   after: 20,000,000 x (dec %ecx; jnz); print msg_prot; 1: hlt; jmp 1b
#   msg_real "CLOUDBOX-PROBE: real mode\r\n", msg_prot "CLOUDBOX-PROBE: protected mode ok\r\n"
#   gdt: null, code 0x00cf9a000000ffff, data 0x00cf92000000ffff; gdt_desc: .word 23, .long gdt
PROBE_BOOT_CODE = bytes.fromhex(
    "fa31c08ed88ed0bc007cbe647cac84c07406baf803eeebf5660f0116c07c0f20"
    "c06683c8010f22c066ea307c0000080066b810008ed88ec08ed0bc007c00009c"
    "6a0868487c0000cfb9002d31014975fdbe807c0000ac84c0740766baf803eeeb"
    "f4f4ebfd434c4f5544424f582d50524f42453a207265616c206d6f64650d0a00"
    "434c4f5544424f582d50524f42453a2070726f746563746564206d6f6465206f"
    "6b0d0a008d7426000000000000000000ffff0000009acf00ffff00000092cf00"
    "1700a87c"
)
PROBE_DONE = b"CLOUDBOX-PROBE: protected mode ok"
PROBE_STARTED = b"CLOUDBOX-PROBE: real mode"
PROBE_NAME_PREFIX = "kvmprobe-"  # not "cloudbox-": list_domains never shows it

HOST_CACHE = Path("/run/cloudbox/kvm-probe.json")  # /run: gone at the host's next boot

_probe_lock = threading.Lock()
_probe_result: tuple[str, str] | None = None


def host_key() -> dict[str, object]:
    """What a probe's verdict depends on, short of running it again."""
    def read(path: str) -> str | None:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return None

    qemu = shutil.which("qemu-system-x86_64")
    qemu_stat = os.stat(qemu) if qemu else None
    try:
        kvm_device: int | None = os.stat("/dev/kvm").st_rdev
    except OSError:
        kvm_device = None
    params = {str(p): read(str(p)) for p in sorted(Path("/sys/module").glob("kvm*/parameters/nested"))}
    return {"boot_id": read("/proc/sys/kernel/random/boot_id"), "kvm_device": kvm_device, "kvm_params": params,
            "qemu": [qemu, qemu_stat.st_size, qemu_stat.st_mtime_ns] if qemu_stat else None}


def load_host_verdict(path: Path | None = None) -> tuple[str, str] | None:
    """The verdict an earlier probe gave in this boot of the host, if nothing it depends on changed."""
    try:
        kept = json.loads((path or HOST_CACHE).read_text())
        if kept["key"] == json.loads(json.dumps(host_key())) and kept["accel"] in ("kvm", "tcg"):
            return str(kept["accel"]), f"{kept['detail']} (found by an earlier probe in this boot of the host)"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def keep_host_verdict(verdict: tuple[str, str], path: Path | None = None) -> None:
    path = path or HOST_CACHE
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps({"key": host_key(), "accel": verdict[0], "detail": verdict[1]}))
        os.replace(temporary, path)
    except OSError as exc:  # a read-only /run: the next start probes again
        log.warning("the KVM probe's verdict could not be kept", extra={"path": str(path), "error": str(exc)})


def probe_disk() -> bytes:
    """A 1 MiB raw disk whose boot sector is the probe program (SeaBIOS wants more than one sector)."""
    sector = PROBE_BOOT_CODE.ljust(510, b"\0") + b"\x55\xaa"
    return sector.ljust(1 << 20, b"\0")


def _probe_xml(name: str, disk: Path, console: Path) -> str:
    disk_path, console_path = html.escape(str(disk)), html.escape(str(console))
    return f"""<domain type='kvm'>
  <name>{name}</name>
  <memory unit='MiB'>16</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><bios useserial='yes'/><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk_path}'/><target dev='vda' bus='virtio'/><readonly/></disk>
    <serial type='file'><source path='{console_path}'/></serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>"""


_STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: "no state",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutting down",
    libvirt.VIR_DOMAIN_SHUTOFF: "shut off",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended by the guest",
}


def _qemu_error(log_file: Path | None) -> str:
    """The KVM error line QEMU wrote to its log, if any."""
    if log_file is None or not log_file.exists():
        return ""
    for line in log_file.read_text(errors="replace").splitlines():
        if "KVM internal error" in line or "kvm run failed" in line.lower():
            return f"; QEMU logged {line.strip()!r}"
    return ""


def probe_kvm(
    conn: libvirt.virConnect, work_dir: Path, qemu_log_dir: Path | None = None, timeout: float = PROBE_TIMEOUT
) -> tuple[str, str]:
    """("kvm" | "tcg", what was seen): boot the probe guest under KVM, at most ``timeout`` seconds."""
    return _probe(conn, work_dir, qemu_log_dir, timeout)[0]


def _probe(
    conn: libvirt.virConnect, work_dir: Path, qemu_log_dir: Path | None, timeout: float
) -> tuple[tuple[str, str], bool]:
    """The verdict, and whether the probe guest gave it (then it lasts the host's boot)."""
    if not os.path.exists("/dev/kvm"):
        return ("tcg", "no /dev/kvm on this host"), False
    try:
        conn.getDomainCapabilities(None, "x86_64", None, "kvm", 0)
    except libvirt.libvirtError as exc:
        return ("tcg", f"/dev/kvm exists but libvirt cannot use KVM: {exc.get_error_message()}"), False
    for dom in conn.listAllDomains(0):  # a probe left behind by a killed process
        if dom.name().startswith(PROBE_NAME_PREFIX):
            try:
                dom.destroy()
            except libvirt.libvirtError:
                pass
    work_dir.mkdir(parents=True, exist_ok=True)
    disk, console = work_dir / "kvm-probe.img", work_dir / "kvm-probe.log"
    disk.write_bytes(probe_disk())
    console.unlink(missing_ok=True)
    name = f"{PROBE_NAME_PREFIX}{os.getpid()}"
    qemu_log = qemu_log_dir / f"{name}.log" if qemu_log_dir is not None else None
    if qemu_log is not None:
        qemu_log.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        dom = conn.createXML(_probe_xml(name, disk, console), 0)
    except libvirt.libvirtError as exc:
        return ("tcg", f"a KVM guest could not start: {exc.get_error_message()}"), False
    try:
        while True:
            elapsed = time.monotonic() - started
            output = console.read_bytes() if console.exists() else b""
            if PROBE_DONE in output:
                return ("kvm", f"a KVM probe guest ran real-mode and protected-mode code in {elapsed:.1f} s"), True
            state, _reason = dom.state()
            if state != libvirt.VIR_DOMAIN_RUNNING:
                seen = "after its real-mode line" if PROBE_STARTED in output else "before printing anything"
                return ("tcg", (
                    f"/dev/kvm opens but a KVM probe guest was {_STATE_NAMES.get(state, state)} {seen}, "
                    f"{elapsed:.1f} s after it started{_qemu_error(qemu_log)}"
                )), True
            if elapsed > timeout:
                seen = "printed its real-mode line only" if PROBE_STARTED in output else "printed nothing"
                return ("tcg", f"/dev/kvm opens but a KVM probe guest {seen} in {timeout:.0f} s "
                               "(TCG needs under 1 s)"), True
            time.sleep(0.1)
    finally:
        try:
            dom.destroy()
        except libvirt.libvirtError:
            pass
        disk.unlink(missing_ok=True)
        console.unlink(missing_ok=True)


def cached_probe_kvm(conn: libvirt.virConnect, work_dir: Path, qemu_log_dir: Path | None) -> tuple[str, str]:
    """``probe_kvm`` once per process; later calls return the first answer."""
    if _probe_result is not None:  # also when a stuck probe still holds the lock
        return _probe_result
    with _probe_lock:
        if _probe_result is None:
            kept = load_host_verdict()
            if kept is not None:
                remember(kept)
            else:
                verdict, lasting = _probe(conn, work_dir, qemu_log_dir, PROBE_TIMEOUT)
                remember(verdict, lasting=lasting)
        assert _probe_result is not None
        return _probe_result


def remember(verdict: tuple[str, str], *, lasting: bool = False) -> tuple[str, str]:
    """Cache ``verdict`` unless one is cached already; returns the cached one. A ``lasting`` one
    (the probe guest's own) is kept for the host's boot too."""
    global _probe_result
    if _probe_result is None:
        _probe_result = verdict
        log.info("acceleration: %s (%s)", *verdict)
        if lasting:
            keep_host_verdict(verdict)
    return _probe_result

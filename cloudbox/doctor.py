"""`cloudbox doctor`: is this host fit to run a node, and what to fix when it is not.

Each check returns a ``Finding``: ``ok``, ``warn`` (works, but worse: guests on TCG, no
time sync) or ``fail`` (the node cannot work as configured); ``fix`` says what to do.
Checks read the host and run read-only commands; none changes anything, none opens
the node's libvirt root (the running node holds it) or boots a guest (the node's own
KVM probe does that at start and `openstack hypervisor show` reports it).
The command exits 1 when any check fails.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from cloudbox.node import DataDir, bind_error, split_listen
from cloudbox.settings import Settings

OK, WARN, FAIL = "ok", "warn", "fail"
KVM_GET_API_VERSION = 0xAE00
KVM_API_VERSION = 12
MIN_FREE_BYTES = 2 << 30  # below this, image uploads and volume creates start to fail
LOW_FREE_FRACTION = 0.10
LIBVIRT_DRIVER_DIRS = (Path("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver"),
                       Path("/usr/lib64/libvirt/connection-driver"), Path("/usr/lib/libvirt/connection-driver"))

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def run_command(argv: Sequence[str]) -> "subprocess.CompletedProcess[str]":
    """Run a read-only host command; a missing program reads as exit 127."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"{argv[0]}: no answer within 10 s")


# --- virtualization ---------------------------------------------------------------------
def check_kvm(device: Path = Path("/dev/kvm")) -> Finding:
    if not device.exists():
        return Finding("kvm", WARN, f"no {device}: guests run with QEMU's TCG (emulation, several times slower)",
                       "enable virtualization (VT-x/AMD-V) in the firmware and load kvm_intel or kvm_amd; "
                       "in a VM, enable nested virtualization")
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return Finding("kvm", WARN, f"{device} does not open ({exc.strerror}): guests run with TCG",
                       "run cloudbox as root, or give its user the kvm group")
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        return Finding("kvm", WARN, f"{device} opens but does not answer ({exc.strerror}): guests run with TCG")
    finally:
        os.close(fd)
    if version != KVM_API_VERSION:
        return Finding("kvm", WARN, f"{device} speaks KVM API {version}, not {KVM_API_VERSION}: guests run with TCG")
    return Finding("kvm", OK, f"{device} usable; at start the node boots a probe guest and falls back to TCG "
                              "if KVM does not really run it (see `openstack hypervisor show`)")


def check_qemu(which: Callable[[str], str | None] = shutil.which) -> Finding:
    for name in ("qemu-system-x86_64", "qemu-img"):
        if which(name) is None:
            return Finding("qemu", FAIL, f"{name} is missing", "apt install qemu-system-x86 qemu-utils")
    return Finding("qemu", OK, "qemu-system-x86_64 and qemu-img present")


def check_libvirt(settings: Settings, run: Runner = run_command,
                  driver_dirs: Sequence[Path] = LIBVIRT_DRIVER_DIRS) -> Finding:
    if settings.compute_driver == "fake":
        return Finding("libvirt", OK, "compute_driver=fake: libvirt not used")
    try:
        import libvirt  # noqa: F401 - only whether it loads
    except ImportError as exc:
        return Finding("libvirt", FAIL, f"the libvirt Python binding does not load ({exc})",
                       "apt install libvirt0 (the .deb depends on it)")
    uri = settings.libvirt_uri
    if not uri or uri.startswith("qemu:///embed"):
        if not any((d / "libvirt_driver_qemu.so").exists() for d in driver_dirs):
            return Finding("libvirt", FAIL, "libvirt's QEMU driver (libvirt_driver_qemu.so) is missing: "
                                            "the embedded driver cannot run guests",
                           "apt install libvirt-daemon-driver-qemu")
        return Finding("libvirt", OK, "embedded QEMU driver present (no libvirtd needed)")
    proc = run(["virsh", "-c", uri, "version"])
    if proc.returncode != 0:
        return Finding("libvirt", FAIL, f"{uri} does not answer: {(proc.stderr or proc.stdout).strip()[:200]}",
                       "start libvirtd (systemctl start libvirtd, or `libvirtd -d` without systemd), "
                       "or leave libvirt_uri empty for the embedded driver")
    return Finding("libvirt", OK, f"{uri} answers")


# --- network ----------------------------------------------------------------------------
def check_network(settings: Settings, run: Runner = run_command,
                  which: Callable[[str], str | None] = shutil.which,
                  sys_class_net: Path = Path("/sys/class/net")) -> list[Finding]:
    if settings.network_driver == "fake":
        return [Finding("network", OK, "network_driver=fake: no bridges or nftables used")]
    found: list[Finding] = []
    missing = [name for name in ("ip", "nft", "dnsmasq") if which(name) is None]
    if missing:
        found.append(Finding("network", FAIL, f"missing: {', '.join(missing)}",
                             "apt install iproute2 nftables dnsmasq-base"))
    nft = run(["nft", "list", "tables"])
    if nft.returncode != 0:
        found.append(Finding("nftables", FAIL, f"`nft list tables` fails: {nft.stderr.strip()[:200]}",
                             "run as root, on a kernel with nf_tables (modprobe nf_tables)"))
    else:
        found.append(Finding("nftables", OK, "nf_tables usable"))
    bridge = sys_class_net / settings.external_bridge
    if bridge.exists() and not (bridge / "bridge").is_dir():
        found.append(Finding("bridges", FAIL, f"{settings.external_bridge} exists but is no bridge",
                             f"remove that interface or choose another external_bridge"))
    elif settings.external_interface and not (sys_class_net / settings.external_interface).exists():
        found.append(Finding("bridges", FAIL, f"external_interface {settings.external_interface} does not exist",
                             "set external_interface to the uplink's name (ip link) or leave it empty"))
    else:
        state = "present" if bridge.exists() else "not made yet (the node makes it at start)"
        found.append(Finding("bridges", OK, f"external bridge {settings.external_bridge} {state}"))
    return found


def check_port(name: str, host: str, port: int, our_pid: int | None,
               listening_pids: Callable[[int], set[int]] | None = None) -> Finding:
    """A port must be free, or held by this node's own process."""
    error = bind_error(host, port)
    if error is None:
        return Finding(name, OK, f"{host}:{port} free")
    holders = (listening_pids or pids_listening)(port)
    if our_pid is not None and (our_pid in holders or not holders):
        return Finding(name, OK, f"{host}:{port} held by this node (pid {our_pid})")
    who = f" by pid {', '.join(map(str, sorted(holders)))}" if holders else ""
    return Finding(name, FAIL, f"{host}:{port} is in use{who}, not by this node",
                   f"stop what holds it (ss -ltnp 'sport = :{port}') or change `listen`/peer_port in cloudbox.json")


def pids_listening(port: int) -> set[int]:
    """Pids with a listening TCP socket on ``port`` (from /proc; empty when unknown)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    pids: set[int] = set()
    if not inodes:
        return pids
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    pids.add(int(proc.name))
                    break
        except OSError:
            continue
    return pids


# --- the data dir -------------------------------------------------------------------------
def check_disk(path: Path, min_free: int = MIN_FREE_BYTES) -> Finding:
    probe = path if path.exists() else next((p for p in path.parents if p.exists()), Path("/"))
    usage = shutil.disk_usage(probe)
    free_gib = usage.free / (1 << 30)
    if usage.free < min_free:
        return Finding("disk", FAIL, f"{free_gib:.1f} GiB free under {path}, below {min_free / (1 << 30):.1f} GiB",
                       "free space (old images, volumes, logs) or move the data dir to a bigger disk")
    if usage.free < usage.total * LOW_FREE_FRACTION:
        return Finding("disk", WARN, f"{free_gib:.1f} GiB free under {path} ({usage.free * 100 // usage.total}%)",
                       "free space soon: SQLite and uploads need room to grow")
    return Finding("disk", OK, f"{free_gib:.1f} GiB free under {path}")


def check_database(directory: DataDir) -> Finding:
    if not directory.exists():
        return Finding("database", FAIL, f"no cloud in {directory.root}", "run `cloudbox init` (or `cloudbox join`)")
    try:
        conn = sqlite3.connect(f"file:{directory.database}?mode=ro", uri=True, timeout=10)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        rows = [str(exc)]
    if rows != ["ok"]:
        return Finding("database", FAIL, f"{directory.database} is damaged: {'; '.join(rows[:2])}",
                       "restore the last backup: cloudbox restore FILE --data-dir NEW_DIR")
    return Finding("database", OK, f"{directory.database} passes SQLite's quick_check")


# --- time ----------------------------------------------------------------------------------
def check_time(run: Runner = run_command) -> Finding:
    """Tokens, certificates and etcd's leases need the nodes' clocks to agree."""
    timedated = run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if timedated.returncode == 0 and timedated.stdout.strip() == "yes":
        return Finding("time", OK, "clock synchronized (timedatectl)")
    chrony = run(["chronyc", "-n", "tracking"])
    if chrony.returncode == 0:
        leap = next((line.split(":", 1)[1].strip() for line in chrony.stdout.splitlines()
                     if line.startswith("Leap status")), "")
        if leap == "Normal":
            return Finding("time", OK, "clock synchronized (chrony)")
        return Finding("time", WARN, f"chrony runs but is not synchronized (leap status {leap or 'unknown'})",
                       "check chrony's sources: chronyc sources")
    if timedated.returncode == 0:
        return Finding("time", WARN, "the clock is not synchronized (timedatectl: NTPSynchronized=no)",
                       "enable time sync: timedatectl set-ntp true, or apt install chrony")
    return Finding("time", WARN, "no time synchronization found (neither timedatectl nor chrony answers)",
                   "apt install chrony: tokens, certificates and a cluster's etcd need agreeing clocks")


# --- the cluster ----------------------------------------------------------------------------
def check_etcd(clustered: bool, view: dict | None, error: str | None,
               which: Callable[[str], str | None] = shutil.which) -> Finding:
    if not clustered:
        if which("etcd") is None:
            return Finding("etcd", WARN, "single node; etcd is missing, so it cannot form or join a cluster",
                           "apt install etcd-server")
        return Finding("etcd", OK, "single node (etcd is used once a second node joins)")
    if view is None:
        return Finding("etcd", FAIL, f"cannot ask this node about etcd: {error}",
                       "start the node (systemctl start cloudbox or cloudbox serve --background)")
    if not view.get("leader"):
        return Finding("etcd", FAIL, f"etcd has no leader (members: {', '.join(view.get('members', []))}): "
                                     "the cluster cannot commit writes",
                       "start the other nodes; a majority of etcd members must be up and reach each other")
    return Finding("etcd", OK, f"etcd healthy: leader {view['leader']}, members {', '.join(view['members'])}")


def clustered(directory: DataDir) -> bool:
    """Whether this node is in a cluster (it has the cluster's config file)."""
    from cloudbox.cluster.service import CLUSTER_FILE

    return (directory.root / CLUSTER_FILE).exists()


def host_checks(directory: DataDir, settings: Settings, our_pid: int | None,
                run: Runner = run_command) -> list[Finding]:
    """Every check but etcd's (which needs the node's API)."""
    host, port = split_listen(settings.listen)
    found = [check_kvm(), check_qemu(), check_libvirt(settings, run), *check_network(settings, run),
             check_port("api port", host, port, our_pid)]
    found.append(check_port("peer port", host, settings.peer_port or port + 1, our_pid))
    found += [check_disk(directory.root), check_database(directory), check_time(run)]
    if os.geteuid() != 0:
        found.append(Finding("user", WARN, "not root: several checks (nftables, KVM) see less than the node will",
                             "run cloudbox doctor as root"))
    return found

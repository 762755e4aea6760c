"""NBD exports of this node's volumes to guests on other nodes: QEMU's qemu-storage-daemon with
TLS from the cluster CA on both ends (ARCHITECTURE.md "Storage"; never a hand-written block
protocol).

One daemon per node, listening on the node's cluster address at NBD's port (10809), with one
export per attached volume (``volume-<id>``) added and removed through its QMP socket. Why one
daemon and not one per export: the guest's node builds the connection_info on its own (the
volume's node's address, a fixed port, the export's name: no port to allocate and replicate),
there is one TLS listener and one process to adopt after a restart, and an export costs a QMP
call rather than a process start. The price: every holder of a cluster-CA client certificate
may open every export of the node (QEMU's tls-authz is per server, not per export), which is
the trust nodes already give each other (each holds the CA key), and a crash of the daemon
takes all of the node's exports down until the worker starts it again.

- The daemon is started (``--daemonize``, a pid file) the first time an export is wanted and
  outlives cloudbox: a guest on another node keeps its disk while this node's cloudbox
  restarts. At start the worker adopts it through its QMP socket; one that no longer answers,
  or listens on another address, is replaced (its exports are then added again).
- ``verify-peer=on``: a client without a certificate signed by the cluster CA is refused in the
  TLS handshake, and NBD's options before TLS (listing exports, opening one) are refused too.
- Blocking calls (subprocess, the QMP socket): the worker runs them in a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudbox.volume.core_attach import NBD_PORT
from cloudbox.volume.driver import DriverError

log = logging.getLogger("cloudbox.volume")
QMP_TIMEOUT = 10.0  # seconds a QMP command may take (blockdev-add opens a file; export-del waits for clients)
START_TIMEOUT = 30.0
MAX_SOCKET_PATH = 100  # a UNIX socket path holds at most 107 bytes
SHORT_SOCKETS = Path("/run/cloudbox")
# glibc serves QEMU's per-request buffers (2 MiB from qemu-img, up to NBD's 32 MiB) with a fresh
# mmap and gives them back with munmap, so every request faulted in and zeroed its pages: most of
# the daemon's CPU on reads (bench/volume.py, DESIGN.md "Cost"). A fixed mmap threshold at glibc's
# largest (32 MiB) keeps them in the heap, and a high trim threshold keeps the heap from being
# returned between requests (the daemon keeps what its busiest moment needed: tens of MiB).
# (glibc's own names for its tunables glibc.malloc.mmap_threshold and trim_threshold.)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}
# AES-GCM (AES-NI on x86) chosen by the server, AES-128 first: ChaCha20 costs three times the CPU
# here, AES-256 a tenth more; TLS 1.2 and 1.3 as NORMAL has them, without CBC or other ciphers.
TLS_PRIORITY = "NORMAL:%SERVER_PRECEDENCE:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305"


def daemon_env() -> dict[str, str]:
    """The environment qemu-storage-daemon is started with: this one's, with the malloc tunables."""
    return {**os.environ, **MALLOC_ENV}


class ExportError(DriverError):
    """The daemon refused or failed; the message says what QEMU said."""


def export_name(volume_id: str) -> str:
    return f"volume-{volume_id}"


def _node_names(volume_id: str) -> tuple[str, str]:
    """(format node, file node): QEMU's node names are at most 31 characters."""
    digest = volume_id.replace("-", "")[:30]
    return f"v{digest}", f"f{digest}"


@dataclass(frozen=True)
class ExportSpec:
    """What to export: the driver's path (file or block device), its format, read-only or not."""

    volume_id: str
    path: str
    format: str  # raw or qcow2
    block: bool
    readonly: bool


class Qmp:
    """A QMP connection (QEMU's JSON control protocol over a UNIX socket); events are skipped."""

    def __init__(self, path: str, timeout: float = QMP_TIMEOUT) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
            self.file = self.sock.makefile("rw", encoding="utf-8")
            greeting = json.loads(self.file.readline() or "{}")
            if "QMP" not in greeting:
                raise ExportError(f"{path} does not speak QMP")
            self.execute("qmp_capabilities")
        except BaseException:
            self.sock.close()
            raise

    def execute(self, command: str, /, **arguments: Any) -> Any:
        self.file.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise ExportError(f"qemu-storage-daemon closed its monitor during {command}")
            reply = json.loads(line)
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise ExportError(f"{command}: {reply['error'].get('desc', reply['error'])}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        self.sock.close()


class ExportDaemon:
    """This node's qemu-storage-daemon: state in ``run_dir`` (pid file, log, QMP socket), TLS
    from ``tls_dir`` (nbd_tls.server_dir), listening on ``address``:``port``."""

    def __init__(self, run_dir: Path, tls_dir: Path, address: str, port: int = NBD_PORT) -> None:
        self.run_dir = Path(run_dir)
        self.tls_dir = Path(tls_dir)
        self.address = address
        self.port = port
        self.pid_file = self.run_dir / "qsd.pid"
        self.listen_file = self.run_dir / "listen"  # the address the running daemon was started on
        socket_path = self.run_dir / "qmp.sock"
        if len(str(socket_path.absolute())) > MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.run_dir.absolute()).encode()).hexdigest()[:16]
            socket_path = SHORT_SOCKETS / f"qsd-{digest}.sock"
        self.socket_path = socket_path

    @property
    def listen(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    # --- the process ----------------------------------------------------------------------------
    def _qmp(self) -> Qmp | None:
        """A QMP connection to the running daemon, or None when none answers."""
        try:
            return Qmp(str(self.socket_path))
        except (OSError, ValueError, ExportError):
            return None

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"qemu-storage-daemon" in cmdline else None

    def running(self) -> bool:
        qmp = self._qmp()
        if qmp is None:
            return False
        qmp.close()
        return True

    def ensure_running(self) -> bool:
        """Adopt the daemon that answers on this address, or start one; True when started."""
        listening = self.listen_file.read_text().strip() if self.listen_file.exists() else ""
        if listening == self.listen and self.running():
            return False
        self.stop()  # one that does not answer, or listens elsewhere
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.socket_path.unlink(missing_ok=True)
        args = [
            "qemu-storage-daemon",
            "--object", f"tls-creds-x509,id=tls0,dir={self.tls_dir},endpoint=server,verify-peer=on,"
                        f"priority={TLS_PRIORITY}",
            "--nbd-server", f"addr.type=inet,addr.host={self.address},addr.port={self.port},tls-creds=tls0",
            "--chardev", f"socket,id=monitor0,path={self.socket_path},server=on,wait=off",
            "--monitor", "chardev=monitor0",
            "--pidfile", str(self.pid_file),
            "--daemonize",
        ]
        try:
            # --daemonize returns once the daemon listens (or with its error on stderr).
            proc = subprocess.run(args, capture_output=True, text=True, timeout=START_TIMEOUT,
                                  stdin=subprocess.DEVNULL, env=daemon_env())
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ExportError(f"qemu-storage-daemon did not start: {exc}") from exc
        if proc.returncode != 0:
            raise ExportError(f"qemu-storage-daemon did not start on {self.listen}: "
                              f"{(proc.stderr or proc.stdout).strip()[-300:]}")
        self.listen_file.write_text(self.listen + "\n")
        log.info("NBD export daemon started", extra={"listen": self.listen, "pid": self.pid()})
        return True

    def stop(self) -> None:
        """Quit the daemon (every export goes with it); a daemon that does not answer is killed."""
        qmp = self._qmp()
        pid = self.pid()
        if qmp is not None:
            with contextlib.suppress(ExportError, OSError):
                qmp.execute("quit")
            qmp.close()
        if pid is not None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.02)
            if Path(f"/proc/{pid}").exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        self.listen_file.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)

    # --- exports ---------------------------------------------------------------------------------
    def exports(self) -> set[str]:
        """Ids of the volumes exported now (none when the daemon is not running)."""
        qmp = self._qmp()
        if qmp is None:
            return set()
        try:
            found = qmp.execute("query-block-exports")
        finally:
            qmp.close()
        return {e["id"].removeprefix("volume-") for e in found
                if e["id"].startswith("volume-") and not e.get("shutting-down")}

    def add(self, spec: ExportSpec) -> None:
        """Export the volume (a no-op when it is exported already); starts the daemon if needed."""
        self.ensure_running()
        fmt_node, file_node = _node_names(spec.volume_id)
        name = export_name(spec.volume_id)
        qmp = self._qmp()
        if qmp is None:
            raise ExportError(f"qemu-storage-daemon does not answer on {self.socket_path}")
        try:
            if any(e["id"] == name for e in qmp.execute("query-block-exports")):
                return
            self._drop_nodes(qmp, spec.volume_id)  # left by a removal a crash cut short
            qmp.execute("blockdev-add", **{
                "driver": "host_device" if spec.block else "file", "node-name": file_node, "filename": spec.path,
                "read-only": spec.readonly, "discard": "unmap", "aio": "threads"})
            try:
                qmp.execute("blockdev-add", **{"driver": spec.format, "node-name": fmt_node, "file": file_node,
                                               "read-only": spec.readonly, "discard": "unmap"})
                qmp.execute("block-export-add", **{"type": "nbd", "id": name, "node-name": fmt_node, "name": name,
                                                   "writable": not spec.readonly})
            except ExportError:
                self._drop_nodes(qmp, spec.volume_id)
                raise
        finally:
            qmp.close()
        log.info("volume exported over NBD", extra={"volume_id": spec.volume_id, "listen": self.listen})

    def remove(self, volume_id: str) -> None:
        """Stop exporting the volume: clients still connected are cut off (the attachment is gone),
        then its block nodes are closed. A no-op when it is not exported."""
        qmp = self._qmp()
        if qmp is None:
            return
        name = export_name(volume_id)
        try:
            if any(e["id"] == name for e in qmp.execute("query-block-exports")):
                self._end_export(qmp, name)
            self._drop_nodes(qmp, volume_id)
        finally:
            qmp.close()
        log.info("NBD export of volume stopped", extra={"volume_id": volume_id})

    def grow(self, volume_id: str, size_bytes: int) -> bool:
        """Grow an exported volume and announce its size: QEMU's block_resize on the export's
        format node (the daemon holds the image, so qemu-img may not write it), then the export
        is made again under the same name, as NBD tells a client the size only when it connects:
        clients are cut and reconnect (the guest's QEMU finds the new size, then its block resize
        can grow the guest's disk). False when the volume is not exported here."""
        fmt_node, _ = _node_names(volume_id)
        name = export_name(volume_id)
        qmp = self._qmp()
        if qmp is None:
            return False
        try:
            found = next((e for e in qmp.execute("query-block-exports") if e["id"] == name), None)
            if found is None:
                return False
            writable = not any(n["node-name"] == fmt_node and n.get("ro") for n in
                               qmp.execute("query-named-block-nodes", flat=True))
            # The export does not share resize with others: it ends first, and comes back at once.
            self._end_export(qmp, name)
            try:
                qmp.execute("block_resize", **{"node-name": fmt_node, "size": size_bytes})
            finally:
                qmp.execute("block-export-add", **{"type": "nbd", "id": name, "node-name": fmt_node,
                                                   "name": name, "writable": writable})
        finally:
            qmp.close()
        log.info("NBD export grown", extra={"volume_id": volume_id, "size": size_bytes})
        return True

    @staticmethod
    def _end_export(qmp: Qmp, name: str) -> None:
        """End an export, its clients cut off, and wait until QEMU has let it go."""
        qmp.execute("block-export-del", id=name, mode="hard")
        deadline = time.monotonic() + QMP_TIMEOUT
        while any(e["id"] == name for e in qmp.execute("query-block-exports")):
            if time.monotonic() > deadline:
                raise ExportError(f"export {name} did not end in {QMP_TIMEOUT:.0f} s")
            time.sleep(0.02)

    @staticmethod
    def _drop_nodes(qmp: Qmp, volume_id: str) -> None:
        present = {n["node-name"] for n in qmp.execute("query-named-block-nodes", flat=True)}
        for node in _node_names(volume_id):  # the format node first: it holds the file node
            if node in present:
                qmp.execute("blockdev-del", **{"node-name": node})

"""Certificates of NBD over TLS between nodes, in the directory layout QEMU's ``tls-creds-x509``
object reads (shared by the volume service's exports and compute's QEMU, which is the client).

- server (the volume's node, qemu-storage-daemon, run as root): ``ca-cert.pem``,
  ``server-cert.pem``, ``server-key.pem``: the node's own certificate, whose names hold the
  node's cluster address (the address a client checks). Root only (0700 / 0600).
- client (a guest's node, its QEMU run as the guest user through libvirt's
  ``nbd_tls_x509_cert_dir``): ``ca-cert.pem``, ``client-cert.pem``, ``client-key.pem``: a
  client-only certificate the node signs with the cluster CA (every node holds it), not the
  node's own: a QEMU taken over by its guest can read this key, and with it reach other nodes'
  exports but never pose as a node. Readable by root and the guest's group only (0750 / 0640).
Both are rewritten when the CA (or, for the server, the node's certificate) changes.

The node writes its client directory through a child process (``guest_client_dir``): checking or
signing the certificate loads cryptography's OpenSSL binding and touches more of its Rust module,
about 4 MiB the node would keep for its whole life for a file only QEMU reads (issue 14).
Run as ``python -m cloudbox.nbd_tls DATA_ROOT NODE_NAME [GID]`` it writes that directory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def server_dir(data_root: Path) -> Path:
    return Path(data_root) / "nbd-tls" / "server"


def client_dir(data_root: Path) -> Path:
    return Path(data_root) / "nbd-tls" / "client"


def _write(path: Path, data: bytes, mode: int, gid: int | None) -> None:
    """Write ``path`` whole (a reader never sees half a key), with its mode and group."""
    if path.exists() and path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        if gid is not None:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _directory(path: Path, gid: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.mkdir(exist_ok=True, mode=0o700)
    if gid is not None:
        os.chown(path, -1, gid)
    os.chmod(path, 0o750 if gid is not None else 0o700)


def write_server_dir(data_root: Path) -> Path:
    """The export's directory, from the node's files under ``pki/`` (root only)."""
    pki_dir, out = Path(data_root) / "pki", server_dir(data_root)
    _directory(out, None)
    _write(out / "ca-cert.pem", (pki_dir / "ca.pem").read_bytes(), 0o600, None)
    _write(out / "server-cert.pem", (pki_dir / "node.pem").read_bytes(), 0o600, None)
    _write(out / "server-key.pem", (pki_dir / "node.key").read_bytes(), 0o600, None)
    return out


def _signed_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    from cryptography import x509  # here and below: imported by the child only (guest_client_dir)
    from cryptography.exceptions import InvalidSignature

    try:
        x509.load_pem_x509_certificate(cert_pem).verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except (ValueError, TypeError, InvalidSignature):  # another CA's, or not a certificate: sign a new one
        return False
    return True


def write_client_dir(data_root: Path, node_name: str, gid: int | None = None) -> Path:
    """The client directory of this node's guests' QEMU; ``gid`` (the guest's group) may read it,
    None: root only. The client certificate is kept while the cluster CA signed it."""
    pki_dir, out = Path(data_root) / "pki", client_dir(data_root)
    ca_pem = (pki_dir / "ca.pem").read_bytes()
    _directory(out, gid)
    mode = 0o640 if gid is not None else 0o600
    cert_path, key_path = out / "client-cert.pem", out / "client-key.pem"
    if cert_path.exists() and key_path.exists() and _signed_by(cert_path.read_bytes(), ca_pem):
        cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
    else:
        from cloudbox import pki

        ca = pki.KeyPair(ca_pem, (pki_dir / "ca.key").read_bytes())
        made = pki.create_client_cert(ca, f"nbd client {node_name}", dt.datetime.now(dt.timezone.utc))
        cert_pem, key_pem = made.cert_pem, made.key_pem
    _write(out / "ca-cert.pem", ca_pem, mode, gid)
    _write(key_path, key_pem, mode, gid)
    _write(cert_path, cert_pem, mode, gid)
    return out


def guest_client_dir(data_root: Path, guest: Any) -> Path | None:
    """The client directory libvirt's qemu.conf names for NBD disks (volumes kept on other nodes),
    written for the guests' QEMU (``guest``: its GuestIdentity; None when QEMU runs as root) and
    made reachable by it; None when ``data_root`` holds no cluster CA (a driver used alone)."""
    data_root = Path(data_root)
    if not (data_root / "pki" / "ca.key").exists():
        return None
    try:
        name = json.loads((data_root / "node.json").read_text())["name"]
    except (OSError, ValueError, KeyError):
        name = socket.gethostname()
    out = _write_client_dir_apart(data_root, name, guest.gid if guest is not None else None)
    if guest is not None:
        from cloudbox.compute.driver import confinement  # the guest's search path through the 0700 data dir

        confinement.ensure_reachable([out], guest, [data_root])
    return out


CHILD_TIMEOUT = 120  # seconds: a Python start and one EC key, on a loaded host


def _write_client_dir_apart(data_root: Path, node_name: str, gid: int | None) -> Path:
    """``write_client_dir`` in a child process (this very module, from the same tree), so that the
    node does not keep what the certificate check loads; OSError with the child's words if it fails."""
    tree = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (tree, os.environ.get("PYTHONPATH", "")) if p)
    argv = [sys.executable, "-m", "cloudbox.nbd_tls", str(data_root), node_name, "" if gid is None else str(gid)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT,
                          env={**os.environ, "PYTHONPATH": path})
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]  # the exception's line
        raise OSError(f"writing the NBD client certificate failed: {why}")
    return client_dir(data_root)


def main(argv: list[str]) -> None:
    data_root, node_name, gid = argv
    write_client_dir(Path(data_root), node_name, int(gid) if gid else None)


if __name__ == "__main__":
    main(sys.argv[1:])

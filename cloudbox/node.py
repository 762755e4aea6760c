"""A node's data directory: what lives where."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cloudbox.errors import SetupError

DEFAULT_DATA_DIR = "/var/lib/cloudbox"


@dataclass(frozen=True)
class DataDir:
    root: Path

    @classmethod
    def from_option(cls, value: str | None) -> "DataDir":
        return cls(Path(value or os.environ.get("CLOUDBOX_DATA_DIR") or DEFAULT_DATA_DIR).absolute())

    # Files of the node.
    @property
    def database(self) -> Path:
        return self.root / "state.db"

    @property
    def node_file(self) -> Path:
        return self.root / "node.json"

    @property
    def ca_cert(self) -> Path:
        return self.root / "pki" / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "pki" / "ca.key"

    @property
    def node_cert(self) -> Path:
        return self.root / "pki" / "node.pem"

    @property
    def node_key(self) -> Path:
        return self.root / "pki" / "node.key"

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    @property
    def openrc(self) -> Path:
        return self.root / "admin-openrc.sh"

    @property
    def pid_file(self) -> Path:
        return self.root / "serve.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "logs" / "cloudbox.log"

    def exists(self) -> bool:
        return self.database.exists() and self.node_file.exists()

    def require_cloud(self) -> None:
        if not self.root.is_dir():
            raise SetupError(f"no data directory at {self.root}: run `cloudbox init` first (or pass --data-dir)")
        if not self.exists():
            raise SetupError(f"no cloud in {self.root}: run `cloudbox init` first")

    def node_info(self) -> dict:
        try:
            return json.loads(self.node_file.read_text())
        except (OSError, ValueError) as exc:
            raise SetupError(f"cannot read {self.node_file}: {exc}") from exc

    def running_pid(self) -> int | None:
        """The pid of a live `cloudbox serve` on this data dir, if any."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid
        return pid if b"cloudbox" in cmdline else None


def default_advertise() -> str:
    """The host's first non-loopback IPv4 address, read from the kernel (no traffic sent)."""
    try:
        from pyroute2 import IPRoute  # optional: present on real nodes

        with IPRoute() as ipr:
            for msg in ipr.get_addr(family=socket.AF_INET):
                addr = msg.get_attr("IFA_ADDRESS")
                if addr and not addr.startswith("127."):
                    return addr
    except Exception:  # noqa: BLE001 - fall back to loopback below
        pass
    return "127.0.0.1"


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise SetupError(f"--listen must be HOST:PORT, not {listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def bind_error(host: str, port: int) -> OSError | None:
    """What binding a TCP socket to ``host``:``port`` fails with now (None: it is free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None

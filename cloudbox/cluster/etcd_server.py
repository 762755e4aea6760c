"""Running this node's etcd member (Debian's etcd-server) as a child of the node.

The member listens for clients on ``client_url`` and for peers on ``peer_url``,
both with mutual TLS: the node's certificate, trusted only if signed by the
cluster CA.  It is started through ``setpriv --pdeathsig KILL`` so it dies with
the node, even when the node is killed with SIGKILL, and is restarted when it
exits on its own.
"""

from __future__ import annotations

import errno
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from cloudbox.errors import SetupError
from cloudbox.node import bind_error

log = logging.getLogger("cloudbox.etcd")

RESTART_DELAY = 1.0
POLL = 0.5  # seconds between checks that etcd still runs
COMPACTION_RETENTION = 10000  # revisions of history etcd keeps for nodes catching up


@dataclass(frozen=True)
class MemberConfig:
    name: str  # the node id
    data_dir: Path
    client_url: str
    peer_url: str
    initial_cluster: str  # name=peer_url,...
    initial_state: str  # "new" or "existing"
    ca: Path
    cert: Path
    key: Path

    def argv(self) -> list[str]:
        host_client = self.client_url
        return [
            "etcd", "--name", self.name, "--data-dir", str(self.data_dir),
            "--listen-client-urls", host_client, "--advertise-client-urls", host_client,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster, "--initial-cluster-state", self.initial_state,
            "--initial-cluster-token", "cloudbox",
            "--cert-file", str(self.cert), "--key-file", str(self.key),
            "--trusted-ca-file", str(self.ca), "--client-cert-auth",
            "--peer-cert-file", str(self.cert), "--peer-key-file", str(self.key),
            "--peer-trusted-ca-file", str(self.ca), "--peer-client-cert-auth",
            "--auto-compaction-mode", "revision", "--auto-compaction-retention", str(COMPACTION_RETENTION),
            "--pre-vote",  # a node cut off and back does not force an election with its inflated term
            "--log-level", "error",  # warn logs a line per gateway request ("ignoring common name")
            "--logger", "zap", "--log-outputs", "stderr",
        ]


def etcd_urls(address: str, client_port: int, peer_port: int) -> tuple[str, str]:
    """(client URL, peer URL) of an etcd member on ``address``."""
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{client_port}", f"https://{host}:{peer_port}"


def port_taken(address: str, port: int) -> bool:
    """Whether a process on this host listens on ``address``:``port`` already (an address that
    is not this host's cannot be checked here and counts as free)."""
    exc = bind_error(address, port)
    return exc is not None and exc.errno == errno.EADDRINUSE


def etcd_binary() -> str:
    path = shutil.which("etcd")
    if path is None:
        raise SetupError("etcd is not installed: a cluster needs Debian's etcd-server package (apt-get install etcd-server)")
    return path


class EtcdMember:
    """Keeps one etcd process running while ``run`` runs."""

    def __init__(self, config: MemberConfig, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.process: Any = None
        self.starts = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        etcd_binary()
        self.config.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = False
        try:
            while True:
                with open(self.log_path, "ab") as out:
                    argv = ["setpriv", "--pdeathsig", "KILL", "--", *self.config.argv()]
                    # Started from the trio thread (the main thread, which lives as long as the
                    # process): the parent-death signal follows the thread that forked, so a
                    # worker thread (trio's open_process) would get etcd killed when it retires.
                    self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
                self.starts += 1
                log.info("etcd started", extra={"pid": self.process.pid, "client_url": self.config.client_url,
                                                "starts": self.starts})
                if not started:
                    started = True
                    task_status.started()
                while (code := self.process.poll()) is None:
                    await trio.sleep(POLL)
                log.warning("etcd exited; restarting", extra={"code": code, "log": str(self.log_path)})
                await trio.sleep(RESTART_DELAY)
        finally:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                with trio.move_on_after(5) as scope:
                    scope.shield = True
                    while self.process.poll() is None:
                        await trio.sleep(0.05)
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait()

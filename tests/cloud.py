"""Real cloudbox servers for tests: `cloudbox init` + `cloudbox serve` as subprocesses over HTTPS;
and ``wait_for``, the one way tests wait for something to become true."""

from __future__ import annotations

import inspect
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import httpx
import trio

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]


class GaveUp(AssertionError):
    """Raised by a condition of ``wait_for`` to stop waiting at once: what is awaited can no
    longer come (a server went to ERROR, the process exited)."""


def _timed_out(timeout: float, what: str | Callable[[], str], last: BaseException | None) -> AssertionError:
    text = what() if callable(what) else what
    return AssertionError(f"timed out after {timeout:g} s waiting for {text}"
                          + (f" (last error: {last!r})" if last is not None else ""))


def wait_for(condition: Callable[[], T], timeout: float, what: str | Callable[[], str], *,
             every: float = 0.2) -> T:
    """Call ``condition`` every ``every`` seconds until it returns something truthy; return that.

    An exception from the condition counts as "not yet" (a server still starting refuses
    connections) and the last one is shown if time runs out; a ``GaveUp`` ends the wait at once.
    After ``timeout`` seconds, fails naming ``what`` was awaited (a callable is asked then, so the
    message can say what was last seen).
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except GaveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - reported below if it never succeeds
            last = exc
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, last)
        time.sleep(every)


async def wait_for_async(condition: Callable[[], T | Awaitable[T]], timeout: float,
                         what: str | Callable[[], str], *, every: float = 0.05) -> T:
    """``wait_for`` in a trio test: the condition may be async, and the wait is on trio's clock
    (so under ``autojump_clock`` a long timeout takes no real time)."""
    deadline = trio.current_time() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value  # type: ignore[return-value]
        except GaveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - reported below if it never succeeds
            last = exc
        if trio.current_time() >= deadline:
            raise _timed_out(timeout, what, last)
        await trio.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "cloudbox", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"cloudbox {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Cloud:
    """One node: its data dir, URL, admin password and serving process."""

    data_dir: Path
    port: int
    password: str = ""
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return self.url + "/identity/v3"

    @property
    def ca(self) -> str:
        return str(self.data_dir / "pki" / "ca.pem")

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "test-serve.log"

    def init(self, *extra: str, compute: str = "fake") -> subprocess.CompletedProcess:
        proc = run_cli("init", "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}",
                       "--advertise", "127.0.0.1", "--no-user-config", "--set", f"compute_driver={compute}",
                       "--set", f"network_driver={'fake' if compute == 'fake' else 'linux'}",
                       "--set", f"peer_port={free_port()}", *extra, env=self.env)
        for line in proc.stdout.splitlines():
            if "password" in line:
                self.password = line.rsplit(" ", 1)[-1]
        return proc

    def start(self, timeout: float = 30) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloudbox", "serve", "--data-dir", str(self.data_dir)],
            stdout=log, stderr=log, env={**os.environ, **self.env}, start_new_session=True,
        )
        log.close()
        self.wait_serving(timeout)

    def wait_serving(self, timeout: float = 30) -> None:
        ctx = ssl.create_default_context(cafile=self.ca)

        def serving() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise GaveUp(f"cloudbox serve exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            with urllib.request.urlopen(self.url + "/cloudbox/v1/health", context=ctx, timeout=2) as r:
                return json.loads(r.read())["status"] == "ok"

        wait_for(serving, timeout, lambda: f"cloudbox serve to come up:\n{self.log_path.read_text()[-3000:]}",
                 every=0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"X-Auth-Token": token} if token else {}
        return httpx.Client(base_url=self.url, verify=self.ssl_context(), headers=headers, timeout=30)

    def token(self, user: str = "admin", password: str | None = None, project: str | None = "admin",
              domain: str | None = None, system: bool = False) -> str:
        body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password if password is not None else self.password}}}}}
        if system:
            body["auth"]["scope"] = {"system": {"all": True}}
        elif domain:
            body["auth"]["scope"] = {"domain": {"id": domain}}
        elif project:
            body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        with self.client() as c:
            r = c.post("/identity/v3/auth/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]

    def openstack_env(self, **auth: str) -> dict[str, str]:
        """Environment for the real `openstack` CLI (as admin unless told otherwise)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update({
            "OS_AUTH_URL": self.auth_url, "OS_USERNAME": "admin", "OS_PASSWORD": self.password,
            "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3", "OS_CACERT": self.ca, "OS_INTERFACE": "public",
            "HOME": str(self.data_dir),
        })
        env.update(auth)
        return env

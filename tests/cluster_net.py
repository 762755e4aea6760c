"""A private L2 underlay for cluster tests: one bridge in the host namespace and one network
namespace per node, each node a real `cloudbox` process (init/serve/join) inside its namespace.

Layout (one run at a time on a machine; a lock file serialises runs):

    host:   cbtbr0  10.210.0.254/24      (the test process talks to the nodes from here)
    node n: netns cbt-<run>-<n>, eth0 10.210.0.<n>/24 (veth cbt<run>v<n> in cbtbr0), lo up,
            its own UTS namespace per command with hostname node<n>

Rules the harness keeps:
- Traffic goes only to loopback and 10.210.0.0/24: clients ignore proxy settings, the node
  processes get no proxy variables, and the subnet must be unused on the host.
- Everything is undone by `Underlay.down()` (idempotent), which the fixtures call in their
  finalizers: processes named by pid files in the data dirs, every process left in the
  namespaces, the namespaces, the links, the data dirs (logs are copied out first).
- Leftovers of earlier runs (namespaces `cbt-*`, links `cbt*`) are removed before a run starts.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import yaml

from tests.cloud import wait_for

wait_until = wait_for  # its old name here, which test_cluster_compute.py still imports

ROOT = Path(__file__).resolve().parents[1]
SUBNET = ipaddress.ip_network("10.210.0.0/24")
HOST_IP = "10.210.0.254"
BRIDGE = "cbtbr0"
NS_PREFIX = "cbt-"
LINK_PREFIX = "cbt"
API_PORT = 8443
LOCK_FILE = Path("/run/lock/cloudbox-cluster-tests.lock")
PARTITION_TABLE = "cbt_partition"
# The nodes run from the project's virtualenv when there is one (the test process may be another
# Python, e.g. `python -m pytest` outside the venv).
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable


def sh(*args: str, check: bool = True, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=input, env=clean_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def clean_env(home: Path | None = None, clock_offset: float = 0.0) -> dict[str, str]:
    """The environment of node processes: no proxies (traffic stays on the underlay), no
    CLOUDBOX_* overrides or OS_* credentials of the caller; with ``clock_offset`` the process's
    wall clock is that many seconds off (tests/clock_skew)."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.startswith(("CLOUDBOX_", "OS_", "CBT_"))}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if clock_offset:
        env["PYTHONPATH"] = str(ROOT / "tests" / "clock_skew") + os.pathsep + env["PYTHONPATH"]
        env["CBT_CLOCK_OFFSET"] = repr(clock_offset)
    if home is not None:
        env["HOME"] = str(home)
    return env


# --- join tokens ------------------------------------------------------------------------------

def _split_token(token: str) -> tuple[str, str]:
    """("cbx1.", body): the version prefix cloudbox puts before the base64url JSON, if any."""
    text = token.strip()
    prefix, dot, body = text.rpartition(".")
    return (prefix + dot, body) if dot else ("", text)


def decode_token(token: str) -> dict[str, Any]:
    """A join token: an optional version prefix ("cbx1.") and base64url of a JSON object."""
    _prefix, body = _split_token(token)
    try:
        return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, json.JSONDecodeError) as exc:
        raise AssertionError(f"the join token is not [prefix.]base64url(JSON) as the tests expect: {token[:80]}...") from exc


def edit_token(token: str, **changes: Any) -> str:
    """The token with some fields replaced (each must exist in it), encoded the same way."""
    fields = decode_token(token)
    missing = [k for k in changes if k not in fields]
    assert not missing, f"the join token has no field {missing}; its fields are {sorted(fields)}"
    prefix, body = _split_token(token)
    raw = base64.urlsafe_b64encode(json.dumps({**fields, **changes}, separators=(",", ":")).encode()).decode()
    return prefix + (raw if body.endswith("=") else raw.rstrip("="))


def altered(text: str) -> str:
    """The same string with its last characters changed (still the same alphabet)."""
    tail = "AAAA" if not text.endswith("AAAA") else "BBBB"
    return text[:-4] + tail


# --- the underlay -----------------------------------------------------------------------------

def _netns_list() -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _links() -> list[str]:
    out = sh("ip", "-o", "link", "show", check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def _ns_pids(ns: str) -> list[int]:
    out = sh("ip", "netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _kill_pids(pids: list[int], grace: float) -> None:
    """SIGTERM, then SIGKILL what is left after ``grace`` seconds."""
    alive = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
            alive.append(pid)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def clean_leftovers() -> None:
    """Remove what earlier runs left: their namespaces (and processes in them) and links."""
    for ns in _netns_list():
        if ns.startswith(NS_PREFIX):
            _kill_pids(_ns_pids(ns), grace=0)
            sh("ip", "netns", "delete", ns, check=False)
    for link in _links():
        if link.startswith(LINK_PREFIX):
            sh("ip", "link", "delete", link, check=False)


def _check_subnet_unused() -> None:
    """Refuse to run when 10.210.0.0/24 means something on this host (traffic would leave it)."""
    out = sh("ip", "-4", "-o", "route", "show", "table", "all").stdout
    for line in out.splitlines():
        dest = line.split()[0]
        if dest in ("default", "local", "broadcast", "unreachable", "prohibit", "blackhole"):
            dest = line.split()[1] if dest != "default" else "0.0.0.0/0"
        if dest == "0.0.0.0/0":
            continue
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(dest, strict=False)
            if net.overlaps(SUBNET) and f"dev {BRIDGE}" not in line:
                raise AssertionError(f"{SUBNET} is in use on this host ({line!r}); the cluster tests need it free")


class Underlay:
    """The bridge and ``count`` node namespaces; ``root`` holds the nodes' data dirs."""

    _active = False  # an underlay of this process is up (the host has one bridge)

    def __init__(self, count: int, root: Path, logs_to: Path | None = None) -> None:
        assert 1 <= count <= 200
        self.count = count
        self.root = root
        self.logs_to = logs_to
        self.run_id = f"{os.getpid():x}"
        self.nodes: dict[tuple[int, str], Node] = {}
        self._lock: Any = None
        self._up = False

    # names and addresses
    def ns(self, n: int) -> str:
        return f"{NS_PREFIX}{self.run_id}-{n}"

    def veth(self, n: int) -> str:
        return f"{LINK_PREFIX}{self.run_id}v{n}"

    @staticmethod
    def ip(n: int) -> str:
        return str(SUBNET.network_address + n)

    def up(self) -> "Underlay":
        # The lock is per open file: a second underlay in this process would wait for itself.
        assert not Underlay._active, "another Underlay is up in this process; down() it first"
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(LOCK_FILE, "w")
        lock = self._lock

        def locked() -> bool:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        wait_for(locked, 300, f"{LOCK_FILE}, which another cluster test run holds", every=1)
        self._up = True  # from here on, down() has something to undo
        Underlay._active = True
        clean_leftovers()
        _check_subnet_unused()
        sh("ip", "link", "add", BRIDGE, "type", "bridge", "nf_call_iptables", "0", "nf_call_ip6tables", "0",
           "nf_call_arptables", "0")
        sh("ip", "addr", "add", f"{HOST_IP}/{SUBNET.prefixlen}", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for n in range(1, self.count + 1):
            ns, veth, peer = self.ns(n), self.veth(n), f"{LINK_PREFIX}{self.run_id}p{n}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", peer, "netns", ns)
            sh("ip", "link", "set", veth, "master", BRIDGE)
            sh("ip", "link", "set", veth, "up")
            self.exec(n, "ip", "link", "set", "lo", "up")
            self.exec(n, "ip", "link", "set", peer, "name", "eth0")
            self.exec(n, "ip", "addr", "add", f"{self.ip(n)}/{SUBNET.prefixlen}", "dev", "eth0")
            self.exec(n, "ip", "link", "set", "eth0", "up")
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def exec(self, n: int, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command in node ``n``'s namespace (no UTS namespace: for ip/nft/ping)."""
        return sh("ip", "netns", "exec", self.ns(n), *cmd, check=check, timeout=timeout)

    def command(self, n: int, *cmd: str) -> list[str]:
        """argv that runs ``cmd`` in node ``n``'s network namespace with hostname node<n>."""
        return ["ip", "netns", "exec", self.ns(n), "unshare", "--uts", "--", "sh", "-c",
                'hostname "$0" && exec "$@"', f"node{n}", *cmd]

    def spawn(self, n: int, *cmd: str, log: Path) -> subprocess.Popen:
        """Start a background process in node ``n``'s namespace (down() kills it with the rest)."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            return subprocess.Popen(["ip", "netns", "exec", self.ns(n), *cmd], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=out, env=clean_env(), start_new_session=True)

    def pids(self, n: int) -> list[int]:
        return [p for p in _ns_pids(self.ns(n)) if _alive(p)]

    def node(self, n: int, second: str = "", api_port: int = API_PORT) -> "Node":
        """The node of namespace ``n``; ``second`` names another node on the same address (a lab
        of two nodes sharing one address), which needs its own ``api_port``."""
        if (n, second) not in self.nodes:
            self.nodes[(n, second)] = Node(self, n, self.root / f"node{n}{second}" / "data", api_port=api_port)
        return self.nodes[(n, second)]

    # partitions
    def partition(self, n: int, from_nodes: list[int] | None = None) -> None:
        """Drop all traffic between node ``n`` and the other nodes (or ``from_nodes``), in node
        ``n``'s namespace; the host (10.210.0.254) still reaches it."""
        others = [self.ip(m) for m in (from_nodes or range(1, self.count + 1)) if m != n]
        peers = ", ".join(others)
        rules = (
            f"table inet {PARTITION_TABLE} {{\n"
            f"  chain input {{ type filter hook input priority -10; policy accept; ip saddr {{ {peers} }} drop; }}\n"
            f"  chain output {{ type filter hook output priority -10; policy accept; ip daddr {{ {peers} }} drop; }}\n"
            f"}}\n"
        )
        self.heal(n)
        sh("ip", "netns", "exec", self.ns(n), "nft", "-f", "-", input=rules)

    def heal(self, n: int) -> None:
        self.exec(n, "nft", "delete", "table", "inet", PARTITION_TABLE, check=False)

    def partitioned(self, n: int) -> bool:
        return self.exec(n, "nft", "list", "table", "inet", PARTITION_TABLE, check=False).returncode == 0

    # teardown
    def down(self) -> None:
        """Undo everything; safe to call twice and after a failed up()."""
        if not self._up:
            return
        try:
            for node in self.nodes.values():
                node.copy_logs()
            # Processes named by pid files in our data dirs (checked to be ours), then every
            # process left in a namespace: TERM, a grace, then KILL.
            pids: set[int] = set()
            for node in self.nodes.values():
                pids.update(node.pid_file_pids())
            for n in range(1, self.count + 1):
                if self.ns(n) in _netns_list():
                    pids.update(_ns_pids(self.ns(n)))
            _kill_pids(sorted(pids), grace=5)
            for n in range(1, self.count + 1):
                if self.ns(n) in _netns_list():
                    _kill_pids(_ns_pids(self.ns(n)), grace=0)
                    sh("ip", "netns", "delete", self.ns(n), check=False)
                if self.veth(n) in _links():
                    sh("ip", "link", "delete", self.veth(n), check=False)
            if BRIDGE in _links():
                sh("ip", "link", "delete", BRIDGE, check=False)
            shutil.rmtree(self.root, ignore_errors=True)
        finally:
            self._up = False
            Underlay._active = False
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def leftovers(self) -> list[str]:
        """What of this run still exists on the host (empty after down())."""
        found = [f"netns {ns}" for ns in _netns_list() if ns.startswith(f"{NS_PREFIX}{self.run_id}-")]
        found += [f"link {link}" for link in _links() if link.startswith(LINK_PREFIX)]
        if self.root.exists():
            found.append(f"dir {self.root}")
        return found

    def __enter__(self) -> "Underlay":
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.down()


# --- one node ---------------------------------------------------------------------------------

@dataclass
class Node:
    """One cloudbox node in namespace ``n`` of the underlay; the CLI runs inside the namespace."""

    underlay: Underlay
    n: int
    data_dir: Path
    api_port: int = API_PORT
    clock_offset: float = 0.0  # seconds this node's wall clock is off (its processes started from now on)
    password: str = ""
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def ip(self) -> str:
        return self.underlay.ip(self.n)

    @property
    def url(self) -> str:
        return f"https://{self.ip}:{self.api_port}"

    @property
    def home(self) -> Path:
        return self.data_dir.parent / "home"

    @property
    def ca(self) -> Path:
        return self.data_dir / "pki" / "ca.pem"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "cloudbox.log"

    @property
    def name(self) -> str:
        """The node's name as the cloud knows it (node.json)."""
        return json.loads((self.data_dir / "node.json").read_text())["name"]

    # the CLI
    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        argv = self.underlay.command(self.n, PYTHON, "-m", "cloudbox", *args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env=clean_env(self.home, self.clock_offset), stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"node{self.n}: cloudbox {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}\n--- log tail ---\n{self.log_tail()}")
        return proc

    def init(self, *extra: str) -> subprocess.CompletedProcess:
        proc = self.cli("init", "--data-dir", str(self.data_dir), "--listen", f"{self.ip}:{self.api_port}",
                        "--advertise", self.ip, "--no-user-config", "--set", "compute_driver=fake",
                        "--set", "network_driver=fake", *extra)
        self.read_password()
        return proc

    def join(self, token: str, *extra: str, check: bool = True, fake: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess:
        drivers = ("--set", "compute_driver=fake", "--set", "network_driver=fake") if fake else ()
        proc = self.cli("join", token, "--data-dir", str(self.data_dir), "--listen", f"{self.ip}:{self.api_port}",
                        "--advertise", self.ip, *drivers, *extra, check=check, timeout=timeout)
        if proc.returncode == 0 and (self.data_dir / "clouds.yaml").exists():
            self.read_password()  # a joined node need not write one: the cloud's admin password is set by the caller
        return proc

    def serve(self, timeout: float = 120) -> None:
        """`cloudbox serve --background` (returns when healthy), then check from the host."""
        self.cli("serve", "--data-dir", str(self.data_dir), "--background", timeout=timeout)
        self.wait_healthy(30)

    def stop(self) -> None:
        self.cli("stop", "--data-dir", str(self.data_dir))

    def pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "serve.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def kill9(self, timeout: float = 10) -> int:
        """SIGKILL the `cloudbox serve` process; returns its pid once it is gone."""
        pid = self.pid()
        assert pid is not None, f"node{self.n} has no running cloudbox serve"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not _alive(pid), timeout, f"pid {pid} to die")
        return pid

    def processes(self) -> list[str]:
        """Command lines of every process in this node's namespace."""
        out = []
        for pid in self.underlay.pids(self.n):
            with contextlib.suppress(OSError):
                out.append(f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        return out

    def etcd_pids(self) -> list[int]:
        """Pids of the etcd processes in this node's namespace."""
        found = []
        for pid in self.underlay.pids(self.n):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "etcd":
                    found.append(pid)
        return found

    def pid_file_pids(self) -> list[int]:
        """Live pids named by *.pid files in the data dir whose process is ours (cmdline names
        cloudbox/etcd or the data dir), so a reused pid is never killed."""
        found = []
        if not self.data_dir.exists():
            return found
        for path in list(self.data_dir.glob("*.pid")) + list(self.data_dir.glob("*/*.pid")):
            with contextlib.suppress(OSError, ValueError):
                pid = int(path.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if _alive(pid) and (b"cloudbox" in cmdline or b"etcd" in cmdline or str(self.data_dir).encode() in cmdline):
                    found.append(pid)
        return found

    # credentials and HTTP
    def read_password(self) -> str:
        doc = yaml.safe_load((self.data_dir / "clouds.yaml").read_text())
        self.password = doc["clouds"]["cloudbox"]["auth"]["password"]
        return self.password

    def client(self, token: str | None = None, timeout: float = 30) -> httpx.Client:
        headers = {"X-Auth-Token": token} if token else {}
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=str(self.ca)),
                            headers=headers, timeout=timeout, trust_env=False)

    def token(self, password: str | None = None, fresh: bool = False) -> str:
        """An admin token issued by this node (cached)."""
        if "admin" in self._tokens and not fresh:
            return self._tokens["admin"]
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password or self.password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        with self.client() as c:
            r = c.post("/identity/v3/auth/tokens", json=body)
        assert r.status_code == 201, f"node{self.n}: token: {r.status_code} {r.text}"
        self._tokens["admin"] = r.headers["X-Subject-Token"]
        return self._tokens["admin"]

    def admin(self, timeout: float = 30) -> httpx.Client:
        return self.client(self.token(), timeout=timeout)

    def health(self, timeout: float = 3) -> dict[str, Any] | None:
        try:
            with self.client(timeout=timeout) as c:
                r = c.get("/cloudbox/v1/health")
            return r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def wait_healthy(self, timeout: float = 60) -> dict[str, Any]:
        return wait_for(lambda: (h := self.health()) and h.get("status") == "ok" and h, timeout,
                        f"node{self.n} to be healthy at {self.url}")

    def get_json(self, path: str, timeout: float = 10) -> Any:
        with self.admin(timeout=timeout) as c:
            r = c.get(path)
        assert r.status_code == 200, f"node{self.n}: GET {path}: {r.status_code} {r.text}"
        return r.json()

    def cluster_state(self) -> dict[str, Any]:
        return self.get_json("/cloudbox/v1/cluster/state")

    def etcd(self) -> dict[str, Any]:
        return self.get_json("/cloudbox/v1/cluster/etcd")

    # cluster CLI
    def cluster_add(self, name: str, *extra: str) -> str:
        """`cloudbox cluster add NAME` on this node: the join token (the last line of stdout)."""
        proc = self.cli("cluster", "add", name, "--data-dir", str(self.data_dir), *extra)
        lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
        assert lines, f"cluster add printed nothing:\n{proc.stderr}"
        return lines[-1]

    def cluster_list(self) -> list[dict[str, Any]]:
        proc = self.cli("cluster", "list", "--data-dir", str(self.data_dir), "--json")
        try:
            members = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"cluster list --json printed no JSON:\n{proc.stdout}") from exc
        assert isinstance(members, list), members
        for m in members:
            missing = {"name", "id", "role", "address", "up", "capacity"} - set(m)
            assert not missing, f"cluster list --json: member without {missing}: {m}"
        return members

    def cluster_remove(self, name: str, *extra: str) -> subprocess.CompletedProcess:
        return self.cli("cluster", "remove", name, "--data-dir", str(self.data_dir), *extra)

    # logs
    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def copy_logs(self) -> None:
        if self.underlay.logs_to is None or not (self.data_dir / "logs").is_dir():
            return
        dest = self.underlay.logs_to / f"node{self.n}"
        with contextlib.suppress(OSError):
            shutil.copytree(self.data_dir / "logs", dest, dirs_exist_ok=True)


# --- cluster-wide helpers ---------------------------------------------------------------------

def by_name(nodes: list[Node]) -> dict[str, Node]:
    return {node.name: node for node in nodes}


def etcd_leader(nodes: list[Node]) -> Node:
    """The node whose etcd member leads, as the first answering node reports it."""
    names = by_name(nodes)
    errors = []
    for node in nodes:
        try:
            leader = node.etcd()["leader"]
        except (AssertionError, httpx.HTTPError) as exc:
            errors.append(f"node{node.n}: {exc}")
            continue
        if leader is None:
            errors.append(f"node{node.n}: no leader")
            continue
        assert leader in names, f"etcd leader {leader!r} is none of {sorted(names)}"
        return names[leader]
    raise AssertionError("no node names an etcd leader: " + "; ".join(errors))


def wait_converged(nodes: list[Node], timeout: float = 60) -> list[dict[str, Any]]:
    """Wait until every node reports the same applied_revision; returns their states (which
    carry the table hashes at that revision)."""
    last: list[Any] = []

    def same() -> list[dict[str, Any]] | None:
        states = [node.cluster_state() for node in nodes]
        last[:] = [(s.get("node"), s.get("applied_revision")) for s in states]
        revisions = {s["applied_revision"] for s in states}
        return states if len(revisions) == 1 else None

    try:
        return wait_for(same, timeout, "every node to apply the same revision", every=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen {last}") from None


def all_projects(node: Node) -> dict[str, str]:
    """id -> name of every project, read through ``node`` (paged)."""
    out: dict[str, str] = {}
    url: str | None = "/identity/v3/projects?limit=500"
    with node.admin() as c:
        while url:
            r = c.get(url)
            assert r.status_code == 200, f"node{node.n}: {r.status_code} {r.text}"
            body = r.json()
            out.update({p["id"]: p["name"] for p in body["projects"]})
            url = (body.get("links") or {}).get("next")  # absolute: httpx takes it as it is
    return out


def error_message(response: httpx.Response) -> str:
    """The "message" of an error body in any of the OpenStack shapes ('' if none)."""
    try:
        body = response.json()
    except ValueError:
        return ""

    def find(value: Any) -> str:
        if isinstance(value, dict):
            if isinstance(value.get("message"), str) and value["message"].strip():
                return value["message"]
            for v in value.values():
                if found := find(v):
                    return found
        return ""

    return find(body)


@contextlib.contextmanager
def underlay(count: int, root: Path, logs_to: Path | None = None) -> Iterator[Underlay]:
    net = Underlay(count, root, logs_to)
    with net:
        yield net


@contextlib.contextmanager
def joined_cluster(tmp_path_factory: Any, name: str, count: int = 2) -> Iterator[list["Node"]]:
    """``count`` nodes on a fresh underlay: node 1 made the cloud, the others joined it; logs kept
    under the test session's ``<name>-logs``."""
    net = Underlay(count, tmp_path_factory.mktemp(name), logs_to=tmp_path_factory.getbasetemp() / f"{name}-logs")
    try:
        net.up()
        first = net.node(1)
        first.init()
        first.serve()
        nodes = [first]
        for n in range(2, count + 1):
            joiner = net.node(n)
            joiner.password = first.password
            joiner.join(first.cluster_add(f"node{n}"))
            nodes.append(joiner)
        # A joiner serves before the others' next liveness tick has seen it: a test that at once
        # asks node 1 to place something on node 2 met "compute service down".
        names = {f"node{n}" for n in range(1, count + 1)}
        for node in nodes:
            wait_for(lambda node=node: {m["name"] for m in node.cluster_list() if m["up"]} == names, 60,
                     f"node{node.n} to see every node up")
        yield nodes
    finally:
        net.down()

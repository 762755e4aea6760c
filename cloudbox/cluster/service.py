"""The cluster service: this node's membership, its etcd member, its liveness, and joins.

A node starts alone (the log is a table of its SQLite file).  The first
``join`` it accepts turns it into a cluster without stopping it: it starts an
etcd member of its own, records etcd's current revision as applied, and
switches the state engine to the log in etcd.  Joining nodes are added to etcd
as learners (not counted for quorum until they have caught up) and promote
themselves once their member is in sync; the first three nodes run etcd
members, later ones are etcd clients only.

Which nodes are up is ``up_nodes()``, the one answer every service asks: from
etcd leases (``cluster.liveness``), never from timestamps, never through the log.

This node's cluster settings live in ``<data-dir>/cluster.json`` (node-local,
never replicated): whether it runs a member, its URLs, and the etcd endpoints.

What the service needs of the node it runs in is handed over typed: the state
engine, the data directory, the settings, who this node is (``ThisNode``) and,
once compute exists (compute is made with this service), the compute service,
asked for its host's capacity and servers through its public methods.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import ssl
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import trio

from cloudbox import logs
from cloudbox.api.routes import FORWARDED_BY
from cloudbox.clock import iso, now_iso, parse_iso
from cloudbox.cluster import commands as c
from cloudbox.cluster import store
from cloudbox.cluster.etcd import EtcdClient, tls_context
from cloudbox.cluster.etcd_server import EtcdMember, MemberConfig, etcd_urls, port_taken
from cloudbox.cluster.liveness import Liveness
from cloudbox.cluster.replication import LOG_KEY, ReplicatedLog
from cloudbox.cluster.versions import NodeVersions
from cloudbox.cluster import versions as versions_mod
from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from cloudbox.node import DataDir
from cloudbox.settings import BY_NAME, Settings
from cloudbox.state import commands as cmds
from cloudbox.state.engine import StateEngine

if TYPE_CHECKING:
    from cloudbox import pki
    from cloudbox.compute.service import ComputeService

log = logging.getLogger("cloudbox.cluster")

CLUSTER_FILE = "cluster.json"
VOTERS = 3  # nodes that run an etcd member; later ones are clients only
TOKEN_TTL = 3600
TOKEN_VERSION = 1
LEARNER_WAIT = 60.0  # seconds a join waits for etcd to accept another member
BARRIER_TIMEOUT = 1.0  # seconds a read waits for etcd's revision before it is served as is
BARRIER_BACKOFF = 2.0  # seconds reads skip the barrier after etcd did not answer
FORWARD_HEADERS = {"x-auth-token", "content-type", "accept", "openstack-api-version", "x-openstack-request-id"}


@dataclass(frozen=True)
class ThisNode:
    """Who this node is, as the cluster knows it."""

    id: str
    name: str  # also its compute host's name
    api_url: str  # the HTTPS API
    peer_url: str  # the node-to-node API (mutual TLS with node certificates)
    peer_port: int
    tunnel_ip: str  # its address among the nodes: etcd's URLs are made on it


def load_config(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / CLUSTER_FILE).read_text())
    except FileNotFoundError:
        return None


def save_config(root: Path, config: dict[str, Any]) -> None:
    tmp = root / f".{CLUSTER_FILE}.tmp"
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, root / CLUSTER_FILE)


# --- join tokens ---------------------------------------------------------------------------------
def encode_token(body: dict[str, Any]) -> str:
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return "cbx1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(text: str) -> dict[str, Any]:
    text = text.strip()
    if not text.startswith("cbx1."):
        raise BadRequest("This is not a cloudbox join token (it should start with 'cbx1.').")
    payload = text[5:]
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError as exc:
        raise BadRequest(f"The join token is damaged: {exc}") from exc
    missing = {"id", "name", "secret", "fingerprint", "addresses", "expires"} - set(body)
    if missing or not isinstance(body.get("addresses"), list):
        raise BadRequest(f"The join token lacks {', '.join(sorted(missing)) or 'addresses'}.")
    return body


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ClusterService:
    def __init__(self, engine: StateEngine, data_dir: DataDir, settings: Settings, me: ThisNode) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.settings = settings
        self.me = me
        self.compute: ComputeService | None = None  # handed over once compute exists
        self.config = load_config(self.data_dir.root)
        self.client: EtcdClient | None = None
        self.etcd_member: EtcdMember | None = None
        self._nursery: trio.Nursery | None = None
        self._join_lock = trio.Lock()
        self._barrier_off_until = 0.0
        self._revision_call: list[Any] | None = None  # [state, done, revision, error] of the shared read
        self.running = False
        self.removed = False
        self._etcd_scope: trio.CancelScope | None = None
        self.liveness: Liveness | None = None
        self._liveness_scope: trio.CancelScope | None = None
        self.versions = NodeVersions(engine, me.id, lambda: engine.read(store.nodes))
        if self.config is not None:
            self._connect(self.config)
        self.engine.add_listener(self._on_commit)

    def _on_commit(self, cmd: Any, result: Any) -> None:
        if isinstance(cmd, c.RemoveNode) and cmd.node_id == self.me.id:
            # Taken out of the cluster: its etcd member is gone; stop running one.
            self.removed = True
            for scope in (self._etcd_scope, self._liveness_scope):
                if scope is not None:
                    scope.cancel()
            log.error("this node was removed from the cluster; stop it (`cloudbox stop`)")

    @property
    def clustered(self) -> bool:
        return self.engine.log is not None

    def tls(self) -> ssl.SSLContext:
        d = self.data_dir
        return tls_context(str(d.ca_cert), str(d.node_cert), str(d.node_key))

    def _connect(self, config: dict[str, Any]) -> None:
        self.client = EtcdClient(config["endpoints"], self.tls())
        self.engine.log = ReplicatedLog(self.client, self.me.id, self.me.name, self.catch_up)
        self.versions.clustered(self.client)

    def _member_config(self, config: dict[str, Any]) -> MemberConfig:
        d = self.data_dir
        return MemberConfig(
            name=self.me.id, data_dir=d.root / "etcd", client_url=config["client_url"],
            peer_url=config["peer_url"], initial_cluster=config["initial_cluster"],
            initial_state=config["initial_state"], ca=d.ca_cert, cert=d.node_cert, key=d.node_key)

    # --- running ------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.config is not None and self.config.get("member"):
                self.etcd_member = EtcdMember(self._member_config(self.config), self.data_dir.root / "logs" / "etcd.log")
                await nursery.start(self._keep_etcd, self.etcd_member)
                if self.config.get("learner_id"):
                    nursery.start_soon(self._promote, self.config["learner_id"])
            if self.client is not None:
                await nursery.start(self._keep_liveness, self.client)
                await nursery.start(self.versions.run)
            self.running = True
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self.running = False
                if self.client is not None:
                    with trio.CancelScope(shield=True):
                        await self.client.aclose()

    async def catch_up(self, compact_revision: int) -> None:
        """This node is behind etcd's compacted history: copy a snapshot from a live peer."""
        # Every other member, those up first (liveness comes from etcd, not from this node's old state).
        peers = sorted((n for n in await self.nodes() if n["id"] != self.me.id), key=lambda n: not n["up"])
        for peer in peers:
            tmp = self.data_dir.root / f".catch-up-{uuid.uuid4().hex}.db"
            try:
                async with self.peer_client(timeout=120) as client:
                    async with client.stream("GET", f"{peer['peer_url']}/cloudbox/v1/cluster/snapshot") as resp:
                        if resp.status_code != 200:
                            log.warning("a peer refused its snapshot", extra={"peer": peer["name"],
                                                                              "status": resp.status_code})
                            continue
                        revision = int(resp.headers["X-Cloudbox-Revision"])
                        if revision < compact_revision:
                            log.warning("a peer is behind the compaction too", extra={"peer": peer["name"]})
                            continue
                        with open(tmp, "wb") as out:
                            async for chunk in resp.aiter_bytes(1 << 20):
                                out.write(chunk)
                await trio.to_thread.run_sync(self.engine.restore, tmp)
                log.warning("caught up from a snapshot", extra={"from_node": peer["name"], "revision": revision,
                                                                "compact_revision": compact_revision})
                return
            except Exception as exc:  # noqa: BLE001 - try the next peer
                log.warning("snapshot from a peer failed", extra={"peer": peer["name"], "why": str(exc)})
            finally:
                tmp.unlink(missing_ok=True)
        await trio.sleep(2)  # no peer could help now; the watch is retried

    async def wait_writable(self) -> None:
        """In a cluster: wait until a majority of etcd answers, then until this node has applied
        the log up to that point (so that it serves no stale reads and its start-up writes commit)."""
        if self.client is None:
            return
        waited = 0.0
        while True:
            try:
                revision = await self._log_revision()
                break
            except Unavailable as exc:
                if waited % 5 < 0.5:
                    log.warning("waiting for a majority of the cluster's etcd members", extra={"why": exc.message})
                await trio.sleep(0.5)
                waited += 0.5
        while self.engine.applied_revision < revision and self.engine.stalled is None:
            await trio.sleep(0.05)
        if self.engine.stalled is not None:  # it serves reads of what it could apply
            log.error("behind the cluster, at a command this node does not understand",
                      extra={"revision": self.engine.applied_revision, "cluster_revision": revision})
            return
        log.info("caught up with the cluster", extra={"revision": revision})

    async def _log_revision(self) -> int:
        """etcd's revision of the last write to the log (other keys, e.g. leases, move etcd's own
        revision without adding to the log); a linearizable read."""
        assert self.client is not None
        return await self.client.mod_revision(LOG_KEY)

    async def read_barrier(self) -> None:
        """Before a read in a cluster: apply the log up to etcd's current revision, so that a write
        acknowledged by any node is visible here.  Without a quorum the read is served as is."""
        if self.client is None or time.monotonic() < self._barrier_off_until or self.engine.stalled is not None:
            return
        try:
            with trio.fail_after(BARRIER_TIMEOUT):
                revision = await self._current_revision()
                while self.engine.applied_revision < revision:
                    await self.engine.applied.wait()
        except (Unavailable, trio.TooSlowError):
            self._barrier_off_until = time.monotonic() + BARRIER_BACKOFF  # stale reads beat hung reads

    async def _keep_etcd(self, member: EtcdMember,
                         task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._etcd_scope = scope
            await member.run(task_status=task_status)

    async def _current_revision(self) -> int:
        """The log's revision in etcd, read once for all the reads that arrive while one read is on its way
        (each gets a revision read after it arrived)."""
        if self._revision_call is None or self._revision_call[0] != "waiting":
            done = trio.Event()
            call: list[Any] = ["waiting", done, None, None]
            self._revision_call = call

            async def fetch() -> None:
                call[0] = "running"
                try:
                    call[2] = await self._log_revision()
                except BaseException as exc:  # noqa: BLE001 - handed to every waiter
                    call[3] = exc
                finally:
                    done.set()

            assert self._nursery is not None
            self._nursery.start_soon(fetch)
        call = self._revision_call
        await call[1].wait()
        if call[3] is not None:
            raise Unavailable(str(call[3]))
        return call[2]

    async def _keep_liveness(self, client: EtcdClient,
                             task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep this node's lease and its view of who is up (until it is removed)."""
        self.liveness = Liveness(client, self.me.id, self.capacity)
        with trio.CancelScope() as scope:
            self._liveness_scope = scope
            if self.removed:
                scope.cancel()
            await self.liveness.run(task_status=task_status)

    async def start_background(self) -> None:
        """After the engine runs: register this node (its row, once; liveness needs no writes)."""
        if self.engine.stalled is not None:
            return  # it cannot write; its row is as the cluster last knew it
        await self.register()

    async def register(self) -> None:
        mine = self._own_row()
        rows = await self.engine.read(store.nodes)
        current = next((r for r in rows if r["id"] == mine["id"]), None)
        if current is None or any(current[k] != mine[k] for k in ("name", "api_url", "peer_url", "tunnel_ip", "etcd_member",
                                                                 "etcd_peer_url")):
            await self.engine.propose(c.RegisterNode({**mine, "joined_at": current["joined_at"] if current else mine["joined_at"]}))

    def _own_row(self) -> dict[str, Any]:
        at = now_iso()
        return {"id": self.me.id, "name": self.me.name, "api_url": self.me.api_url, "peer_url": self.me.peer_url,
                "tunnel_ip": self.me.tunnel_ip, "etcd_member": bool(self.config and self.config.get("member")),
                "etcd_peer_url": (self.config or {}).get("peer_url", "") if (self.config or {}).get("member") else "",
                "joined_at": at, "heartbeat_at": at, "capacity": {}}

    async def capacity(self) -> dict[str, Any]:
        """What this node reports of itself: its compute host's capacity and servers."""
        return await self.compute.host_capacity() if self.compute is not None else {}

    async def _promote(self, learner_id: str) -> None:
        """Promote this node's etcd learner to a voter once it has caught up."""
        assert self.client is not None
        for _ in range(600):
            try:
                await self.client.call("/v3/cluster/member/promote", {"ID": learner_id}, timeout=5)
                log.info("etcd member promoted to voter", extra={"member": learner_id})
                break
            except Unavailable as exc:
                if "not a learner" in exc.message or "member not found" in exc.message:
                    break
                await trio.sleep(0.5)
        config = dict(self.config or {})
        config.pop("learner_id", None)
        self.config = config
        save_config(self.data_dir.root, config)

    # --- views --------------------------------------------------------------------------------
    async def up_nodes(self) -> frozenset[str]:
        """The ids of the nodes that are up: the one answer to "is that node up" for every service.

        Alone (no etcd) only this node is, and always.  In a cluster a node is up while its lease key
        exists in etcd (see cluster.liveness); this node counts itself up while it serves."""
        if self.liveness is None or self.removed:
            return frozenset({self.me.id})
        return await self.liveness.up_nodes()

    async def nodes(self) -> list[dict[str, Any]]:
        """Every member with ``up``, its role, its capacity (as it reports it while up) and
        ``heartbeat_at``: when this node last saw it up (by this node's clock)."""
        rows = await self.engine.read(store.nodes)
        up = await self.up_nodes()
        for row in rows:
            row["up"] = row["id"] in up
            row["version"] = self.versions.of(row["id"])
            row["role"] = "voter" if row["etcd_member"] else ("client" if self.clustered else "single")
            if row["id"] == self.me.id:
                mine = self.liveness.reported(self.me.id) if self.liveness is not None else None
                row["capacity"] = mine if mine is not None else await self.capacity()
                row["heartbeat_at"] = now_iso()
            elif self.liveness is not None:
                row["capacity"] = self.liveness.reported(row["id"]) or row["capacity"]
                seen = self.liveness.last_seen(row["id"])
                row["heartbeat_at"] = iso(seen) if seen is not None else row["heartbeat_at"]
        return rows

    async def upgrade_view(self) -> dict[str, Any]:
        """The cluster's command schemas: recorded, lowest among the nodes, and this node's."""
        return {"finished_schema": await self.engine.read(store.cluster_schema),
                "lowest_schema": self.engine.cluster_schema, "lowest_nodes": self.engine.schema_laggards,
                "this_node": versions_mod.own(), "stalled": self.engine.stalled}

    async def finish_upgrade(self, force: bool) -> dict[str, Any]:
        """Record that the cluster speaks this node's command schema from now on (nodes older than it
        may not join).  Refused while a member speaks an older one, unless ``force``: that node then
        stops at this command, loudly, until it is upgraded."""
        target = cmds.known_schema()
        if self.client is not None:
            await self.versions.refresh()
        rows = await self.engine.read(store.nodes)
        behind = sorted(r["name"] for r in rows if int(self.versions.of(r["id"])["command_schema"]) < target)
        if behind and not force:
            raise Conflict(f"Node(s) {', '.join(behind)} speak an older command schema than {target}; upgrade "
                           "them first (or force it: they stop applying the log until they are upgraded).")
        if await self.engine.read(store.cluster_schema) < target:
            await self.engine.propose(c.FinishUpgrade(target, now_iso(), tuple(behind)), ungated=force)
            log.warning("cluster upgrade finished", extra={"schema": target, "forced_over": behind})
        return await self.upgrade_view()

    async def etcd_view(self) -> dict[str, Any]:
        if self.client is None:
            return {"leader": None, "members": [], "clustered": False}
        status = await self.client.status()
        members = await self.client.members()
        names = {r["id"]: r["name"] for r in await self.engine.read(store.nodes)}
        by_member = {m["id"]: names.get(m["name"], m["name"]) for m in members}
        return {"clustered": True, "leader": by_member.get(status["leader"]),
                "members": sorted(by_member.values()), "raft_term": status["raft_term"]}

    # --- talking to other nodes ----------------------------------------------------------------
    def peer_client(self, timeout: float = 30.0) -> Any:
        import httpx

        return httpx.AsyncClient(verify=self.tls(), timeout=httpx.Timeout(timeout, connect=3.0))

    async def member(self, node_id: str) -> dict[str, Any]:
        """A live member by id (Unavailable when it is down or gone)."""
        nodes = {n["id"]: n for n in await self.nodes()}
        node = nodes.get(node_id)
        if node is None:
            raise Unavailable(f"Node {node_id} is not a member of the cluster.")
        if not node["up"]:
            raise Unavailable(f"Node {node['name']} is down (last seen up at {node['heartbeat_at']}).")
        return node

    async def node_of_host(self, host: str) -> dict[str, Any]:
        """The live member that runs compute host ``host`` (Unavailable when it is down)."""
        node_id = await self.compute.node_of_host(host) if self.compute is not None else None
        node = {n["id"]: n for n in await self.nodes()}.get(node_id or "")
        if node is None:
            raise Unavailable(f"Compute host {host} is not a member of the cluster.")
        if not node["up"]:
            raise Unavailable(f"Compute host {host} is down (last seen up at {node['heartbeat_at']}).")
        return node

    async def forward(self, host: str, method: str, path: str, headers: Mapping[str, str],
                      body: Any) -> tuple[int, bytes, dict[str, str]]:
        """Send an API call (``path`` with its query string, the caller's ``headers``, a JSON
        ``body`` or None) on to the node of compute host ``host``, over the peer port; returns
        (status, body, the headers worth passing back)."""
        node = await self.node_of_host(host)
        sent = {k: v for k, v in headers.items() if k.lower() in FORWARD_HEADERS or k.lower().startswith("x-openstack")}
        sent[FORWARDED_BY] = self.me.name
        if (request_id := logs.request_id.get()) is not None:
            sent["x-openstack-request-id"] = request_id
        content = json.dumps(body).encode() if body is not None else b""
        url = node["peer_url"] + path.rstrip("?")
        import httpx

        try:
            async with self.peer_client() as client:
                resp = await client.request(method, url, content=content, headers=sent)
        except httpx.HTTPError as exc:
            raise Unavailable(f"Compute host {host} did not answer: {exc or type(exc).__name__}") from exc
        keep = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "location")
                or k.lower().startswith(("openstack-api", "x-openstack"))}
        return resp.status_code, resp.content, keep

    # --- tokens and joins ---------------------------------------------------------------------
    async def create_token(self, name: str, ttl: int) -> str:
        if not name or len(name) > 63 or not all(ch.isalnum() or ch in "-_." for ch in name):
            raise BadRequest("A node name is 1-63 letters, digits, '-', '_' or '.'.")
        if not 1 <= ttl <= 7 * 86400:
            raise BadRequest("ttl must be between 1 second and 7 days.")
        secret = secrets.token_urlsafe(32)
        token_id = uuid.uuid4().hex
        now = time.time()
        await self.engine.propose(c.CreateJoinToken(token_id, name, secret_hash(secret), iso(now), iso(now + ttl)))
        addresses = [n["api_url"] for n in await self.nodes() if n["up"]] or [self.me.api_url]
        if self.me.api_url in addresses:  # this node first: it made the token
            addresses.remove(self.me.api_url)
            addresses.insert(0, self.me.api_url)
        from cloudbox import pki  # with cryptography's x509 at the first use: 1.8 MiB at idle (issue 14)

        return encode_token({"v": TOKEN_VERSION, "id": token_id, "name": name, "secret": secret,
                             "fingerprint": pki.fingerprint(self.data_dir.ca_cert.read_bytes()),
                             "addresses": addresses, "expires": iso(now + ttl)})

    async def accept_join(self, body: dict[str, Any]) -> dict[str, Any]:
        """Check a join request; if good, add the node (and an etcd learner) and sign its certificate.

        Every check that can refuse runs before anything is written; the token is consumed in
        the same command that adds the node, so a token is good for one node only."""
        for key in ("token_id", "secret", "name", "csr", "address"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise BadRequest(f"The join request lacks {key!r}.")
        row = await self.engine.read(store.token, body["token_id"])
        if row is None or not hmac.compare_digest(row["secret_hash"], secret_hash(body["secret"])):
            raise Forbidden("The join token is not valid for this cluster (unknown token or wrong secret).")
        if row["used_at"] is not None:
            raise Forbidden("The join token was used already; ask for a new one with `cloudbox cluster add`.")
        if parse_iso(row["expires_at"]) < time.time():
            raise Forbidden("The join token has expired; ask for a new one with `cloudbox cluster add`.")
        if row["name"] != body["name"]:
            raise Forbidden(f"The join token is for node {row['name']!r}, not {body['name']!r}.")
        joiner = {"package": str(body.get("package") or versions_mod.BEFORE["package"]),
                  "command_schema": int(body.get("command_schema") or 1)}  # older joiners send neither
        required = await self.engine.read(store.cluster_schema)
        if joiner["command_schema"] < required:
            raise Conflict(f"Node {body['name']} runs cloudbox {joiner['package']}, which speaks command schema "
                           f"{joiner['command_schema']}; this cluster finished its upgrade to schema {required}. "
                           "Install the cluster's release on it, then join.")
        address = body["address"]
        api_url = body.get("api_url") or f"https://{address}:8443"
        peer_url = body.get("peer_url") or f"https://{address}:{self.me.peer_port}"
        # The joiner's etcd member listens where its own settings say (older joiners: the defaults).
        client_url, etcd_peer = etcd_urls(address, int(body.get("etcd_client_port") or BY_NAME["etcd_client_port"].default),
                                          int(body.get("etcd_peer_port") or BY_NAME["etcd_peer_port"].default))
        names = ["localhost", "127.0.0.1", "::1", body["name"], address]
        from cloudbox import pki

        try:
            cert_pem = pki.sign_csr(self._ca(), body["csr"].encode(), body["name"], names,
                                    dt.datetime.now(dt.timezone.utc))
        except ValueError as exc:
            raise BadRequest(f"The join request's CSR is unusable: {exc}") from exc
        async with self._join_lock:
            if not self.clustered:
                await self._become_cluster()
            assert self.client is not None
            members = await self.client.members()
            voter = len(members) < VOTERS
            taken = [m for m in members if {client_url, etcd_peer} & set(m["client_urls"] + m["peer_urls"])]
            if voter and taken:
                raise Conflict(f"etcd ports of {address} are used by another member already ({etcd_peer}, "
                               f"{client_url}); join with other ones (--set etcd_client_port=PORT "
                               "--set etcd_peer_port=PORT).")
            node_id = uuid.uuid4().hex
            at = now_iso()
            node_row = {"id": node_id, "name": body["name"], "api_url": api_url, "peer_url": peer_url,
                        "tunnel_ip": address, "etcd_member": voter, "etcd_peer_url": etcd_peer if voter else "",
                        "joined_at": at, "heartbeat_at": at, "capacity": {}}
            await self.engine.propose(c.ConsumeJoinToken(body["token_id"], at, node_row))
            await versions_mod.put(self.client, node_id, joiner)  # counted before it first starts
            learner_id = None
            try:
                if voter:
                    added = await self._add_learner(etcd_peer)
                    learner_id = added["member"]["ID"]
                    members = [m for m in await self.client.members()]
            except Exception:
                with trio.CancelScope(shield=True):
                    await self.engine.propose(c.RemoveNode(node_id, now_iso()))
                raise
        initial = []
        for m in members:
            name = m["name"] or (node_id if m["id"] == learner_id else "")
            if name:
                initial.extend(f"{name}={u}" for u in m["peer_urls"])
        endpoints = [u for m in members if m["client_urls"] for u in m["client_urls"]]
        log.info("node joined", extra={"node": body["name"], "node_id": node_id, "voter": voter})
        return {
            "node_id": node_id, "cert": cert_pem.decode(), "ca": self.data_dir.ca_cert.read_text(),
            "ca_key": self.data_dir.ca_key.read_text(),
            "settings": {k: v for k, v in self.settings.as_dict().items() if _cluster_scope(k)},
            "cluster": {"member": voter, "client_url": client_url, "peer_url": etcd_peer,
                        "initial_cluster": ",".join(initial), "initial_state": "existing",
                        "endpoints": ([client_url] if voter else []) + endpoints,
                        **({"learner_id": learner_id} if learner_id else {})},
            "snapshot_from": self.me.peer_url,
        }

    async def abort_join(self, body: dict[str, Any]) -> None:
        """Undo an accepted join whose node never came up (it asks with the token's secret)."""
        row = await self.engine.read(store.token, body["token_id"])
        if row is None or not hmac.compare_digest(row["secret_hash"], secret_hash(body["secret"])):
            raise Forbidden("The join token is not valid for this cluster (unknown token or wrong secret).")
        try:
            node = await self.engine.read(store.get_node, body["node_id"])
        except NotFound:
            return
        if node["name"] != row["name"]:
            raise Forbidden("That node did not join with this token.")
        # heartbeat_at moved with the heartbeats of logs written before liveness moved to leases.
        if node["heartbeat_at"] != node["joined_at"] or node["id"] in await self.up_nodes():
            raise Conflict(f"Node {node['name']} has served already; remove it with `cloudbox cluster remove`.")
        await self.remove(node["id"], force=True)

    async def _add_learner(self, peer_url: str) -> dict[str, Any]:
        return await self._reconfigure("/v3/cluster/member/add", {"peerURLs": [peer_url], "isLearner": True})

    async def _reconfigure(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change etcd's membership; etcd refuses while a member is still catching up or has just
        started ("unhealthy cluster", one learner at a time), so wait for that, up to LEARNER_WAIT."""
        assert self.client is not None
        deadline = trio.current_time() + LEARNER_WAIT
        while True:
            try:
                return await self.client.call(path, body, timeout=10)
            except Unavailable as exc:
                busy = any(w in exc.message for w in ("unhealthy", "learner", "not started"))
                if not busy or trio.current_time() > deadline:
                    raise
                log.info("etcd not ready for another member yet; waiting", extra={"why": exc.message})
                await trio.sleep(0.5)

    def _ca(self) -> pki.KeyPair:
        from cloudbox import pki

        try:
            return pki.KeyPair(self.data_dir.ca_cert.read_bytes(), self.data_dir.ca_key.read_bytes())
        except FileNotFoundError as exc:
            raise Conflict("This node does not hold the cluster CA's key; add nodes from another member.") from exc

    async def _become_cluster(self) -> None:
        """Start this single node's etcd member and move the state engine's log into it."""
        address = self.me.tunnel_ip
        settings = self.settings
        client_url, peer_url = etcd_urls(address, settings.etcd_client_port, settings.etcd_peer_port)
        busy = [p for p in (settings.etcd_client_port, settings.etcd_peer_port) if port_taken(address, p)]
        if busy or settings.etcd_client_port == settings.etcd_peer_port:
            raise Conflict(f"This node cannot start its etcd member on {address}: port "
                           f"{busy[0] if busy else settings.etcd_client_port} is in use. Set etcd_client_port and "
                           "etcd_peer_port to two free ports in its cloudbox.json (node settings), restart it, "
                           "and join again.")
        config = {"member": True, "client_url": client_url, "peer_url": peer_url,
                  "initial_cluster": f"{self.me.id}={peer_url}", "initial_state": "new",
                  "endpoints": [client_url]}
        etcd_dir = self.data_dir.root / "etcd"
        shutil.rmtree(etcd_dir, ignore_errors=True)  # a member of an earlier attempt that never served
        member = EtcdMember(self._member_config(config), self.data_dir.root / "logs" / "etcd.log")
        client = EtcdClient(config["endpoints"], self.tls())
        assert self._nursery is not None
        await self._nursery.start(self._keep_etcd, member)
        try:
            revision = await _wait_ready(client, 30)
        except BaseException:
            if self._etcd_scope is not None:
                self._etcd_scope.cancel()
            await client.aclose()
            shutil.rmtree(etcd_dir, ignore_errors=True)
            raise
        save_config(self.data_dir.root, config)
        self.config, self.client, self.etcd_member = config, client, member
        await self.engine.join_cluster(ReplicatedLog(client, self.me.id, self.me.name, self.catch_up),
                                       revision)
        await self._nursery.start(self._keep_liveness, client)
        self.versions.clustered(client)
        await self._nursery.start(self.versions.run)
        await self.register()
        log.info("this node now keeps its log in etcd", extra={"revision": revision, "etcd": client_url})

    async def remove(self, key: str, force: bool) -> dict[str, Any]:
        """Take a node out of the cluster: its etcd member, its row, its compute host."""
        node = await self.engine.read(store.get_node, key)
        if node["id"] == self.me.id:
            raise Conflict("A node cannot remove itself; remove it from another member.")
        servers = await self.compute.servers_on_host(node["name"]) if self.compute is not None else []
        if servers and not force:
            raise Conflict(f"Node {node['name']} still has {len(servers)} server(s); move or delete them "
                           "(or evacuate them), or remove it with --force.")
        if self.client is not None:
            for member in await self.client.members():
                if _member_of(member, node):
                    await self._reconfigure("/v3/cluster/member/remove", {"ID": member["id"]})
        removed = await self.engine.propose(c.RemoveNode(node["id"], now_iso()))
        log.info("node removed", extra={"node": node["name"], "node_id": node["id"], "servers": len(servers)})
        return removed


def _cluster_scope(name: str) -> bool:
    return BY_NAME[name].scope == "cluster"


def _member_of(member: dict[str, Any], node: dict[str, Any]) -> bool:
    """Whether etcd ``member`` is ``node``'s: a started member bears the node's id; a learner that
    never started has no name yet and is known by its peer URL (nodes may share an address)."""
    if member["name"]:
        return member["name"] == node["id"]
    if node.get("etcd_peer_url"):
        return node["etcd_peer_url"] in member["peer_urls"]
    return any(f"//{node['tunnel_ip']}:" in u for u in member["peer_urls"])  # rows from before etcd_peer_url


async def _wait_ready(client: EtcdClient, seconds: float) -> int:
    """Wait until etcd answers a linearizable read; returns its revision."""
    last: Exception | None = None
    with trio.move_on_after(seconds):
        while True:
            try:
                return await client.revision()
            except Unavailable as exc:
                last = exc
                await trio.sleep(0.2)
    raise Unavailable(f"etcd did not become ready within {seconds:g} s: {last}")

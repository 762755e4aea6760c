"""Cluster benchmark: what the replicated state engine's write path costs over raw etcd (issue #5).

In one run it starts, in a temporary dir:
- a real 3-member etcd cluster (the installed `etcd`) on 127.0.0.1 with cloudbox's own flags
  (MemberConfig.argv: mutual TLS with a cluster CA and node certificates made by cloudbox.pki);
- "three nodes": three StateEngines in this one process and one trio run, each with its own
  SQLite file and a ReplicatedLog over its own EtcdClient that prefers its own member, as a
  node does.  They share this process's CPU (and the GIL), so this is a lower bound of what
  three machines would do;
and measures, for 1, 8 and 64 concurrent writers (writer i uses node i % 3):
- cloudbox: engine.propose(CreateJoinToken) until answered, i.e. group-committed into an etcd
  put, watched back and applied to the proposer's SQLite (the other two nodes apply it too);
- the baseline "raw put": the same writers, each doing one EtcdClient.put per command of a body
  like a batch of one command, waiting for etcd's answer: what "one put per command" costs.  Each
  baseline writer has its own EtcdClient (one keep-alive connection to its node's member): three
  shared clients were about half as fast at 64 writers (httpx's pool under ~21 concurrent
  requests), which would flatter cloudbox, whose engine has at most 4 puts in flight per node;
- the baseline "put + watch": the same, plus waiting until a watcher on the writer's own member
  sees the put (cloudbox's figure includes that delivery and the apply).
Each figure is the median of --repeat interleaved runs (latency percentiles pool all runs); the
ratio cloudbox / baseline throughput is our overhead.  All three etcd members and the three
SQLite files share this machine's disk and CPUs, unlike a real cluster.  Nothing is asserted
but that the three nodes' databases agree at the end.

It also prints where a cloudbox write's time goes (per batch on the node that proposed it: etcd's
commit and the watch, waiting for the follower, the apply, and the rest: queue and wake-up),
etcd's WAL fsyncs from its metrics, and issue #14's targets (2,000 commands/s at 64 writers,
and at least half the raw puts/s of the same etcd in the same run) with whether this run met them.
The writers are closed loops (each waits for its answer), so a rate is writers / latency: on a
shared machine the CPU queue shows in every step; read the load line at the end.

Usage: .venv/bin/python bench/cluster.py [--seconds 5] [--repeat 2] [--writers 1,8,64]
       [--modes cloudbox,raw put,put + watch] [--dir DIR]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import datetime as dt
import hashlib
import json
import io
import os
import pstats
import resource
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio  # noqa: E402

from cloudbox import pki  # noqa: E402
from cloudbox.cluster.commands import CreateJoinToken  # noqa: E402
from cloudbox.cluster.etcd import EtcdClient, tls_context  # noqa: E402
from cloudbox.cluster.etcd_server import MemberConfig  # noqa: E402
from cloudbox.cluster.replication import ReplicatedLog  # noqa: E402
from cloudbox.errors import CloudboxError  # noqa: E402
from cloudbox.services import STORES  # noqa: E402
from cloudbox.state import commands as cmds  # noqa: E402
from cloudbox.state.engine import StateEngine  # noqa: E402
from bench.identity import cpu_of  # noqa: E402
from tests.cloud import free_port  # noqa: E402

NODES = 3
RAW_KEY = "/bench/raw"  # the raw puts' key (one key, as cloudbox's log)
WATCHED_KEY = "/bench/watched"  # the put + watch baseline's key
MODES = ("cloudbox", "raw put", "put + watch")
HEALTHY_WITHIN = 30.0
FSYNC_METRIC = "etcd_disk_wal_fsync_duration_seconds"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values else float("nan")


def machine_load() -> str:
    """The 1-minute load average and, where the kernel has it, how often runnable tasks waited for a CPU."""
    text = f"load {os.getloadavg()[0]:.1f}"
    try:
        some = Path("/proc/pressure/cpu").read_text().split()[1]  # avg10=...
        text += f", CPU pressure {some.split('=')[1]}% (10 s)"
    except (OSError, IndexError):
        pass
    return text


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()


def token_command(writer: int) -> CreateJoinToken:
    """A cheap command with unique ids: one row in cluster_join_tokens."""
    now = time.time()
    return CreateJoinToken(id=uuid.uuid4().hex, name=f"bench-{writer}",
                           secret_hash=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
                           created_at=iso(now), expires_at=iso(now + 3600))


def raw_body(node_id: str, writer: int) -> bytes:
    """What cloudbox puts for a batch of one command."""
    return json.dumps({"origin": node_id, "batch": uuid.uuid4().hex,
                       "commands": [cmds.encode(token_command(writer))]}, separators=(",", ":")).encode()


# --- etcd ------------------------------------------------------------------------------------

@dataclass
class Node:
    node_id: str
    ca: Path
    cert: Path
    key: Path
    client_url: str
    peer_url: str


def make_nodes(tmp: Path) -> list[Node]:
    now = dt.datetime.now(dt.timezone.utc)
    ca = pki.create_ca("bench", now)
    (tmp / "ca.pem").write_bytes(ca.cert_pem)
    nodes = []
    for i in range(NODES):
        pair = pki.create_node_cert(ca, f"node{i + 1}", ["localhost", "127.0.0.1"], now)
        cert, key = tmp / f"node{i + 1}.pem", tmp / f"node{i + 1}.key"
        cert.write_bytes(pair.cert_pem)
        key.write_bytes(pair.key_pem)
        key.chmod(0o600)
        nodes.append(Node(uuid.uuid4().hex, tmp / "ca.pem", cert, key,
                          f"https://127.0.0.1:{free_port()}", f"https://127.0.0.1:{free_port()}"))
    return nodes


class EtcdCluster:
    """Three etcd processes with cloudbox's command line; stopped (and their logs summarised) on exit."""

    def __init__(self, tmp: Path, nodes: list[Node]) -> None:
        self.tmp, self.nodes = tmp, nodes
        self.processes: list[subprocess.Popen] = []
        self.logs = [tmp / f"etcd{i + 1}.log" for i in range(len(nodes))]

    def __enter__(self) -> "EtcdCluster":
        initial = ",".join(f"{n.node_id}={n.peer_url}" for n in self.nodes)
        try:
            for node, log_path in zip(self.nodes, self.logs):
                config = MemberConfig(name=node.node_id, data_dir=self.tmp / f"etcd-{node.node_id[:8]}",
                                      client_url=node.client_url, peer_url=node.peer_url, initial_cluster=initial,
                                      initial_state="new", ca=node.ca, cert=node.cert, key=node.key)
                with open(log_path, "ab") as out:  # pdeathsig: etcd dies with this process, as on a node
                    self.processes.append(subprocess.Popen(
                        ["setpriv", "--pdeathsig", "KILL", "--", *config.argv()],
                        stdin=subprocess.DEVNULL, stdout=out, stderr=out))
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes:
            try:
                total += cpu_of(proc.pid)
            except FileNotFoundError:
                continue
        return total

    def check_alive(self) -> None:
        for i, proc in enumerate(self.processes):
            if proc.poll() is not None:
                tail = self.logs[i].read_text(errors="replace")[-2000:]
                raise RuntimeError(f"etcd member {i + 1} exited with {proc.returncode}:\n{tail}")

    def log_summary(self) -> str:
        """Leader elections and the warnings etcd logged, over all members."""
        terms: set[str] = set()
        warnings: collections.Counter[str] = collections.Counter()
        for path in self.logs:
            for line in path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                msg = str(entry.get("msg", ""))
                if " elected leader " in msg:
                    terms.add(msg.rsplit(" at term ", 1)[-1])
                if entry.get("level") in ("warn", "error", "fatal", "panic"):
                    warnings[msg[:90]] += 1
        size = sum(path.stat().st_size for path in self.logs)
        parts = [f"{size / 1e6:.1f} MB written",
                 f"{len(terms)} leader election(s) (terms {', '.join(sorted(terms, key=int))})"]
        parts += [f"{count}x {msg!r}" for msg, count in warnings.most_common(6)]
        return "; ".join(parts)


# --- instruments -----------------------------------------------------------------------------

@dataclass
class LogStats:
    """Counted by CountingLog and the wrapped follower applies; the bench reads deltas per run."""

    puts: int = 0
    commands: int = 0
    put_seconds: float = 0.0
    last_revision: int = 0
    applies: int = 0  # follower transactions, all nodes
    applied_events: int = 0
    apply_seconds: float = 0.0
    apply_cpu_seconds: float = 0.0  # of which the applying thread ran (the rest: disk, GIL, CPU queue)


@dataclass
class BatchTimes:
    """One batch's path on the node that proposed it (perf_counter seconds)."""

    commands: int
    put_start: float
    put_end: float = 0.0
    received: float = 0.0  # its watch event reached the node's follower
    apply_start: float = 0.0
    apply_end: float = 0.0


class CountingLog(ReplicatedLog):
    """ReplicatedLog that counts each batch's commands, times its etcd put, and notes when the
    node's watch delivers each revision (for the latency breakdown of the batches it proposed)."""

    def __init__(self, client: EtcdClient, node_id: str, node_name: str, stats: LogStats) -> None:
        super().__init__(client, node_id, node_name)
        self.stats = stats
        self.batches: dict[int, BatchTimes] = {}  # revision → this node's batch
        self.received: dict[int, float] = {}  # revision → when the watch delivered it here

    async def append(self, body: bytes) -> int:
        start = time.perf_counter()
        revision = await super().append(body)
        end = time.perf_counter()
        stats = self.stats
        commands = body.count(CreateJoinToken.TYPE.encode())
        stats.puts += 1
        stats.commands += commands
        stats.put_seconds += end - start
        stats.last_revision = max(stats.last_revision, revision)
        self.batches[revision] = BatchTimes(commands, start, end)
        return revision

    async def follow(self, applied: Callable[[], int], send: Any) -> None:
        received = self.received

        class Noting:
            async def send(self, event: Any) -> None:
                received[event.revision] = time.perf_counter()
                await send.send(event)

        await super().follow(applied, Noting())


# --profile: one profile per apply (they run in worker threads, where the main thread's profiler
# does not see them), merged when the report is printed.
APPLY_PROFILES: list[cProfile.Profile] | None = None


def time_applies(engine: StateEngine, stats: LogStats) -> None:
    """Wrap this engine's follower transaction (it runs in a worker thread) to count and time it."""
    apply_events = engine._apply_events

    def timed(events: list[Any]) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        profile = cProfile.Profile() if APPLY_PROFILES is not None else None
        if profile is not None:
            profile.enable()
        try:
            return apply_events(events)
        finally:
            if profile is not None:
                profile.disable()
                APPLY_PROFILES.append(profile)
            end = time.perf_counter()
            stats.applies += 1
            stats.applied_events += len(events)
            stats.apply_seconds += end - start
            stats.apply_cpu_seconds += time.thread_time() - cpu
            log = engine.log
            if isinstance(log, CountingLog):
                for event in events:
                    batch = log.batches.get(event.revision)
                    if batch is not None:
                        batch.received = log.received.pop(event.revision, 0.0)
                        batch.apply_start, batch.apply_end = start, end
                for revision in [r for r in log.received if r <= event.revision]:
                    del log.received[revision]  # other nodes' batches

    engine._apply_events = timed  # type: ignore[method-assign]


def breakdown(logs: list["CountingLog"], since: float) -> dict[str, float]:
    """Mean ms of each step of the batches proposed since ``since``, weighted by their commands.
    A proposer waits for: its batch's put to be sent, etcd's commit and its node's watch (the put's
    own answer may come later: nobody waits for it), the follower to finish what it was applying,
    the batch's apply; then the wake-up (the writer's latency minus those steps)."""
    steps = {"put answered": 0.0, "etcd+watch": 0.0, "wait follower": 0.0, "apply": 0.0}
    weight = 0
    for log in logs:
        for revision, b in list(log.batches.items()):
            if b.put_start < since or not b.apply_end:
                if b.put_start < since:
                    del log.batches[revision]  # an earlier run's (or the warm-up's)
                continue
            steps["put answered"] += (b.put_end - b.put_start) * b.commands
            steps["etcd+watch"] += (b.received - b.put_start) * b.commands
            steps["wait follower"] += (b.apply_start - b.received) * b.commands
            steps["apply"] += (b.apply_end - b.apply_start) * b.commands
            weight += b.commands
            del log.batches[revision]
    return {k: v * 1000 / max(weight, 1) for k, v in steps.items()}


class Watcher:
    """Watches WATCHED_KEY through one client; ``wait_seen(revision)`` returns once it saw that put."""

    def __init__(self, client: EtcdClient) -> None:
        self.client = client
        self.seen = 0
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.seen = await self.client.revision()
        task_status.started()
        while True:
            try:
                async for event in self.client.watch(WATCHED_KEY, self.seen + 1):
                    self.seen = event.revision
                    self._changed.set()
                    self._changed = trio.Event()
            except CloudboxError as exc:
                print(f"  (watch broke: {exc}; re-opening)", file=sys.stderr)
            await trio.sleep(0.1)

    async def wait_seen(self, revision: int) -> None:
        while self.seen < revision:
            await self._changed.wait()


# --- runs ------------------------------------------------------------------------------------

@dataclass
class Run:
    rate: float
    latencies: list[float]  # ms
    errors: list[str]
    puts: int = 0
    commands: int = 0
    put_ms: float = 0.0
    applies: int = 0
    applied_events: int = 0
    apply_ms: float = 0.0
    apply_cpu_ms: float = 0.0
    bench_cpu: float = 0.0  # cores busy
    etcd_cpu: float = 0.0
    started: float = 0.0
    fsyncs: float = 0.0  # etcd WAL fsyncs per second, per member (mean of the three)
    fsync_ms: float = 0.0  # their mean duration
    steps: dict[str, float] = field(default_factory=dict)  # cloudbox: mean ms per step (breakdown())


@dataclass
class Bench:
    args: argparse.Namespace
    etcd: EtcdCluster
    nodes: list[Node]
    engines: list[StateEngine]
    clients: list[EtcdClient]  # the baselines' clients, one per node (health checks, watchers)
    watchers: list[Watcher]
    stats: LogStats
    endpoints: list[list[str]]  # each node's etcd endpoints, its own member first
    contexts: list[ssl.SSLContext]
    writer_clients: dict[int, EtcdClient] = field(default_factory=dict)  # the baselines' puts, one per writer
    runs: dict[tuple[str, int], list[Run]] = field(default_factory=dict)
    watched_revision: int = 0
    states: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # each node's at the end

    async def writers(self, count: int, seconds: float, op: Callable[[int], Awaitable[None]]) -> Run:
        latencies: list[float] = []
        errors: list[str] = []
        fsyncs_before = await self.fsyncs()
        before = (resource.getrusage(resource.RUSAGE_SELF), self.etcd.cpu_seconds(), LogStats(**vars(self.stats)))
        deadline = time.perf_counter() + seconds

        async def writer(i: int) -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    await op(i)
                except CloudboxError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(count):
                nursery.start_soon(writer, i)
        elapsed = time.perf_counter() - start
        usage, etcd_cpu, stats = before
        now = resource.getrusage(resource.RUSAGE_SELF)
        s = self.stats
        fsyncs = [(a[0] - b[0], a[1] - b[1]) for a, b in zip(await self.fsyncs(), fsyncs_before)]
        count = sum(n for n, _ in fsyncs)
        return Run(
            fsyncs=count / len(fsyncs) / elapsed, fsync_ms=sum(t for _, t in fsyncs) * 1000 / max(count, 1),
            rate=len(latencies) / elapsed, latencies=latencies, errors=errors,
            puts=s.puts - stats.puts, commands=s.commands - stats.commands,
            put_ms=(s.put_seconds - stats.put_seconds) * 1000, applies=s.applies - stats.applies,
            applied_events=s.applied_events - stats.applied_events,
            apply_ms=(s.apply_seconds - stats.apply_seconds) * 1000,
            apply_cpu_ms=(s.apply_cpu_seconds - stats.apply_cpu_seconds) * 1000,
            bench_cpu=(now.ru_utime + now.ru_stime - usage.ru_utime - usage.ru_stime) / elapsed,
            etcd_cpu=(self.etcd.cpu_seconds() - etcd_cpu) / elapsed, started=start)

    async def fsyncs(self) -> list[tuple[float, float]]:
        """Each member's (WAL fsyncs, seconds spent in them) so far, from its metrics."""
        out = []
        for client in self.clients:
            samples = await client.metrics([FSYNC_METRIC])
            out.append((samples.get(FSYNC_METRIC + "_count", 0.0), samples.get(FSYNC_METRIC + "_sum", 0.0)))
        return out

    async def propose(self, i: int) -> None:
        await self.engines[i % NODES].propose(token_command(i))

    def writer_client(self, i: int) -> EtcdClient:
        if i not in self.writer_clients:
            self.writer_clients[i] = EtcdClient(self.endpoints[i % NODES], self.contexts[i % NODES])
        return self.writer_clients[i]

    async def raw_put(self, i: int) -> None:
        await self.writer_client(i).put(RAW_KEY, raw_body(self.nodes[i % NODES].node_id, i))

    async def put_and_watch(self, i: int) -> None:
        node = i % NODES
        revision = await self.writer_client(i).put(WATCHED_KEY, raw_body(self.nodes[node].node_id, i))
        self.watched_revision = max(self.watched_revision, revision)
        await self.watchers[node].wait_seen(revision)

    async def wait_quiet(self) -> None:
        """Until every node applied every batch and every watcher saw every put, so runs do not overlap."""
        with trio.fail_after(30):
            while (any(e.applied_revision < self.stats.last_revision for e in self.engines)
                   or any(w.seen < self.watched_revision for w in self.watchers)):
                await trio.sleep(0.01)

    async def run_all(self) -> None:
        ops = {"cloudbox": self.propose, "raw put": self.raw_put, "put + watch": self.put_and_watch}
        for mode in self.args.modes:  # warm up: every writer's connection, caches
            await self.writers(max(self.args.writers), 0.5, ops[mode])
        await self.wait_quiet()
        for repeat in range(self.args.repeat):
            for count in self.args.writers:
                for mode in self.args.modes:
                    self.etcd.check_alive()
                    run = await self.writers(count, self.args.seconds, ops[mode])
                    await self.wait_quiet()
                    if mode == "cloudbox":
                        run.steps = breakdown([e.log for e in self.engines], run.started)
                    self.runs.setdefault((mode, count), []).append(run)
                    print(f"  run {repeat + 1}: {count:3d} writers, {mode:<12} {run.rate:8.0f}/s "
                          f"p50 {pct(run.latencies, 50):7.2f} ms p99 {pct(run.latencies, 99):7.2f} ms"
                          + (f"  {len(run.errors)} errors" if run.errors else ""), file=sys.stderr)


async def wait_healthy(etcd: EtcdCluster, urls: list[str], contexts: list[ssl.SSLContext]) -> None:
    """Until a linearizable read succeeds through each member alone: all are up, with a leader."""
    with trio.fail_after(HEALTHY_WITHIN):
        for url, context in zip(urls, contexts):
            client = EtcdClient([url], context)
            try:
                while True:
                    etcd.check_alive()
                    try:
                        await client.revision()
                        break
                    except CloudboxError:
                        await trio.sleep(0.1)
            finally:
                await client.aclose()


async def bench_main(args: argparse.Namespace, tmp: Path, etcd: EtcdCluster, nodes: list[Node]) -> Bench:
    urls = [n.client_url for n in nodes]
    contexts = [tls_context(str(n.ca), str(n.cert), str(n.key)) for n in nodes]
    own_first = [[urls[i]] + urls[:i] + urls[i + 1:] for i in range(NODES)]  # a node prefers its own member
    clients = [EtcdClient(own_first[i], contexts[i]) for i in range(NODES)]
    log_clients = [EtcdClient(own_first[i], contexts[i]) for i in range(NODES)]
    stats = LogStats()
    engines: list[StateEngine] = []
    bench: Bench | None = None
    try:
        await wait_healthy(etcd, urls, contexts)
        for i, node in enumerate(nodes):
            engine = StateEngine(tmp / f"node{i + 1}.db", STORES)
            engine.open(create=True)
            engine.log = CountingLog(log_clients[i], node.node_id, f"node{i + 1}", stats)
            time_applies(engine, stats)
            engines.append(engine)
        bench = Bench(args, etcd, nodes, engines, clients, [Watcher(c) for c in clients], stats, own_first, contexts)
        async with trio.open_nursery() as nursery:
            for engine in engines:
                await nursery.start(engine.run)
            for watcher in bench.watchers:
                await nursery.start(watcher.run)
            await bench.run_all()
            bench.states = [e.state_at() for e in engines]
            nursery.cancel_scope.cancel()
        return bench
    finally:
        for engine in engines:
            engine.close()
        with trio.CancelScope(shield=True):
            for client in clients + log_clients + list(bench.writer_clients.values() if bench else []):
                await client.aclose()


TARGET_RATE = 2000.0  # issue #14: committed commands/s at TARGET_WRITERS writers on 3 nodes
TARGET_WRITERS = 64
TARGET_RATIO = 0.5  # of the raw puts/s of the same etcd in the same run


def report(bench: Bench, args: argparse.Namespace, etcd_version: str) -> None:
    def summary(mode: str, count: int) -> tuple[float, float, float] | None:
        runs = bench.runs.get((mode, count))
        if not runs:
            return None
        latencies = [x for r in runs for x in r.latencies]
        return statistics.median(r.rate for r in runs), pct(latencies, 50), pct(latencies, 99)

    def cells(figures: tuple[float, float, float] | None, width: int) -> str:
        if figures is None:
            return f"{'-':>{width}} {'-':>7} {'-':>7}"
        return f"{figures[0]:{width}.0f} {figures[1]:7.2f} {figures[2]:7.2f}"

    def ratio(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> str:
        return f"{a[0] / b[0]:6.2f}" if a and b and b[0] else f"{'-':>6}"

    print(f"cloudbox cluster write benchmark: 3 nodes = 3 StateEngines in this one process (one trio run), "
          f"a 3-member etcd {etcd_version} on 127.0.0.1 with cloudbox's flags (mutual TLS); "
          f"{os.cpu_count()} CPUs; writer i proposes on node i % 3; {args.seconds:g} s per run, "
          f"median of {args.repeat} interleaved runs (p50/p99 over all runs' commands)")
    print(f"{'writers':>7} | {'cloudbox/s':>10} {'p50 ms':>7} {'p99 ms':>7} | {'raw put/s':>9} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'ratio':>6} | {'put+watch/s':>11} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}")
    for count in args.writers:
        c, r, w = (summary(m, count) for m in MODES)
        print(f"{count:7d} | {cells(c, 10)} | {cells(r, 9)} {ratio(c, r)} | {cells(w, 11)} {ratio(c, w)}")
    print("ratio = cloudbox commands/s / baseline commands/s (baseline: one etcd put per command)")
    print()
    print("cloudbox's write path, all runs (etcd put = CountingLog.append; apply = one follower transaction "
          "on one node; CPU in cores busy, 1.0 = one core; fsync = etcd's WAL fsyncs per member, from its metrics)")
    print(f"{'writers':>7} {'cmds/put':>8} {'puts/s':>7} {'put ms':>7} {'events/apply':>12} {'apply ms':>8} "
          f"{'(on cpu)':>8} {'cpu bench':>9} {'cpu etcd':>8} {'fsync/s':>7} {'fsync ms':>8} | "
          f"{'raw: cpu bench':>14} {'cpu etcd':>8} {'fsync/s':>7} {'fsync ms':>8}")
    for count in args.writers:
        runs = bench.runs.get(("cloudbox", count))
        if not runs:
            continue
        raws = bench.runs.get(("raw put", count)) or []
        puts, commands = sum(r.puts for r in runs), sum(r.commands for r in runs)
        applies = sum(r.applies for r in runs)
        seconds = args.seconds * len(runs)
        raw_cpu = (f"{statistics.median(r.bench_cpu for r in raws):14.2f} "
                   f"{statistics.median(r.etcd_cpu for r in raws):8.2f} "
                   f"{statistics.median(r.fsyncs for r in raws):7.0f} "
                   f"{statistics.median(r.fsync_ms for r in raws):8.2f}") if raws else f"{'-':>14} {'-':>8}"
        print(f"{count:7d} {commands / max(puts, 1):8.1f} {puts / seconds:7.0f} "
              f"{sum(r.put_ms for r in runs) / max(puts, 1):7.2f} "
              f"{sum(r.applied_events for r in runs) / max(applies, 1):12.1f} "
              f"{sum(r.apply_ms for r in runs) / max(applies, 1):8.2f} "
              f"{sum(r.apply_cpu_ms for r in runs) / max(applies, 1):8.2f} "
              f"{statistics.median(r.bench_cpu for r in runs):9.2f} "
              f"{statistics.median(r.etcd_cpu for r in runs):8.2f} "
              f"{statistics.median(r.fsyncs for r in runs):7.0f} {statistics.median(r.fsync_ms for r in runs):8.2f} | "
              f"{raw_cpu}")
    print()
    print("where a cloudbox write's time goes (mean ms per command, proposer's node; queue+wake = the writer's "
          "mean latency minus the rest: waiting to be sent, trio waking the writer)")
    names = ["queue+wake", "etcd+watch", "wait follower", "apply", "put answered"]
    print(f"{'writers':>7} {'mean ms':>8} " + " ".join(f"{n:>13}" for n in names))
    for count in args.writers:
        runs = bench.runs.get(("cloudbox", count))
        if not runs:
            continue
        latencies = [x for r in runs for x in r.latencies]
        mean = statistics.fmean(latencies) if latencies else float("nan")
        steps = {k: statistics.fmean(r.steps.get(k, 0.0) for r in runs) for k in names[1:]}
        steps["queue+wake"] = mean - steps["etcd+watch"] - steps["wait follower"] - steps["apply"]
        print(f"{count:7d} {mean:8.2f} " + " ".join(f"{steps[n]:13.2f}" for n in names))
    errors = collections.Counter(e for runs in bench.runs.values() for r in runs for e in r.errors)
    if errors:
        print(f"errors: {sum(errors.values())}: " + "; ".join(f"{n}x {e[:160]}" for e, n in errors.most_common(3)))
    else:
        print("errors: none")
    states = bench.states
    same = all(s == states[0] for s in states)
    print(f"the three nodes' databases agree at the end: {'yes' if same else 'NO'} "
          f"(applied revision {', '.join(str(s[0]) for s in states)})")
    c, r = summary("cloudbox", TARGET_WRITERS), summary("raw put", TARGET_WRITERS)
    if c is not None:
        verdict = "met" if c[0] >= TARGET_RATE else "NOT met"
        line = f"target at {TARGET_WRITERS} writers: {c[0]:.0f} commands/s (>= {TARGET_RATE:.0f}: {verdict})"
        if r is not None:
            verdict = "met" if c[0] >= TARGET_RATIO * r[0] else "NOT met"
            line += f"; {c[0] / r[0]:.2f} of raw etcd puts/s {r[0]:.0f} in this run (>= {TARGET_RATIO}: {verdict})"
        print(line)


def print_profile(title: str, profiles: list[cProfile.Profile], top: int) -> None:
    if not profiles:
        return
    out = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=out)
    for profile in profiles[1:]:
        stats.add(profile)
    stats.sort_stats("tottime").print_stats(top)
    print(f"\nprofile of {title}, all modes and writer counts together:")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one run")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--writers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 64])
    parser.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES),
                        help="comma-separated subset of: " + ", ".join(MODES) + " (the report needs all three)")
    parser.add_argument("--dir", default=None, help="where the temporary dir goes (etcd's and SQLite's disk)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile the run (cProfile: the trio thread, and the applies in their threads) "
                             "and print the N functions with the most own time of each")
    args = parser.parse_args()
    global APPLY_PROFILES
    if args.profile:
        APPLY_PROFILES = []
    etcd_version = subprocess.run(["etcd", "--version"], capture_output=True, text=True,
                                  check=True).stdout.split()[2]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill, too, stops etcd and removes the dir
    load_before = machine_load()
    with tempfile.TemporaryDirectory(prefix="cbx-bench-cluster-", dir=args.dir) as name:
        tmp = Path(name)
        nodes = make_nodes(tmp)
        with EtcdCluster(tmp, nodes) as etcd:
            main_profile = cProfile.Profile() if args.profile else None
            try:
                if main_profile is not None:
                    main_profile.enable()
                bench = trio.run(bench_main, args, tmp, etcd, nodes)
            except BaseException:
                print(f"etcd logs: {etcd.log_summary()}", file=sys.stderr)
                raise
            finally:
                if main_profile is not None:
                    main_profile.disable()
            etcd_logs = etcd.log_summary()  # before the members stop: their shutdown is noise
    report(bench, args, etcd_version)
    if main_profile is not None:
        print_profile("the trio thread (HTTP to etcd, JSON, queues, the writers themselves)", [main_profile],
                      args.profile)
        print_profile("the applies (worker threads)", APPLY_PROFILES or [], args.profile)
    print(f"etcd logs: {etcd_logs}")
    print(f"machine load (other processes share these CPUs): before {load_before}; after {machine_load()}")


if __name__ == "__main__":
    main()

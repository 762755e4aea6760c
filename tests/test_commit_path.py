"""The cluster's commit path in the state engine: group-committed batches from concurrent writers on
several nodes, applied in the log's order everywhere, and nothing acknowledged lost when a node dies
between the log's commit and its own apply, or loses the last transactions of its database.

The log here is an in-memory stand-in for etcd's key (revisions with gaps, as other keys move
etcd's revision; a watch from any revision), so the engine's side is tested alone and fast; the
real etcd runs in tests/test_cluster*.py and bench/cluster.py.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import trio

from cloudbox.cluster.etcd import Event
from cloudbox.cluster.replication import LOG_KEY
from cloudbox.errors import Conflict, Unavailable
from cloudbox.state.commands import Command, command
from cloudbox.state.engine import StateEngine
from cloudbox.state.migrations import StoreSpec

WAIT = 20  # seconds: a guard against a hang, never a measurement


@command("commitpath.append")
class Append(Command):
    """Writer ``writer``'s ``n``-th row; answers how many rows there were then (its place in the order)."""

    writer: int
    n: int


@command("commitpath.claim")
class Claim(Command):
    """Take ``name``; refused once taken (the same verdict on every node)."""

    name: str
    writer: int


def _append(db: Any, cmd: Append) -> int:
    db.conn.execute("INSERT INTO cp_rows (writer, n) VALUES (?, ?)", (cmd.writer, cmd.n))
    return db.conn.execute("SELECT count(*) FROM cp_rows").fetchone()[0]


def _claim(db: Any, cmd: Claim) -> str:
    if db.conn.execute("SELECT 1 FROM cp_names WHERE name = ?", (cmd.name,)).fetchone():
        raise Conflict(f"{cmd.name} is taken")
    db.conn.execute("INSERT INTO cp_names (name, writer) VALUES (?, ?)", (cmd.name, cmd.writer))
    return cmd.name


@command("commitpath.half")
class Half(Command):
    """Writes a row, then is refused: the row must not stay."""

    writer: int
    n: int
    seen: dict


def _half(db: Any, cmd: Half) -> None:
    cmd.seen["applied"] = cmd.seen.get("applied", 0) + 1  # an apply that changes its own command
    db.conn.execute("INSERT INTO cp_rows (writer, n) VALUES (?, ?)", (cmd.writer, cmd.n))
    raise Conflict(f"half {cmd.n} is refused after its write")


HANDLERS = {Append: _append, Claim: _claim, Half: _half}
STORE = StoreSpec("commitpath", ["CREATE TABLE cp_rows (writer INTEGER NOT NULL, n INTEGER NOT NULL,"
                                 " PRIMARY KEY (writer, n));\n"
                                 "CREATE TABLE cp_names (name TEXT PRIMARY KEY, writer INTEGER NOT NULL);"],
                  sys.modules[__name__], (__name__,))


class SharedLog:
    """etcd's log key: each put gets a revision (with gaps); watchers see every put in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.revision = 0
        self._changed = trio.Event()

    def put(self, body: bytes) -> int:
        self.revision += 2  # a write to another key (a lease's value) between two puts
        self.events.append(Event(self.revision, LOG_KEY.encode(), body))
        self._changed.set()
        self._changed = trio.Event()
        return self.revision

    async def wait_changed(self) -> None:
        await self._changed.wait()


class NodeLog:
    """One node's view of the shared log, as ReplicatedLog gives it to the engine.  ``hold`` stops
    the watch from delivering (the node is slow or about to die)."""

    def __init__(self, shared: SharedLog, node_id: str) -> None:
        self.shared, self.node_id, self.node_name = shared, node_id, node_id
        self.puts = 0
        self.held = False
        self._released = trio.Event()

    async def append(self, body: bytes) -> int:
        await trio.sleep(0)  # a network round trip: other tasks run meanwhile
        self.puts += 1
        return self.shared.put(body)

    def hold(self) -> None:
        self.held = True
        self._released = trio.Event()

    def release(self) -> None:
        self.held = False
        self._released.set()

    async def follow(self, applied: Callable[[], int], send: trio.MemorySendChannel) -> None:
        start = applied() + 1
        while True:
            new = [e for e in self.shared.events if e.revision >= start]
            if not new:  # no checkpoint since the look: no put can be missed
                await self.shared.wait_changed()
                continue
            while self.held:
                await self._released.wait()
            await send.send(new[0])
            start = new[0].revision + 1


def node(path: Path, shared: SharedLog, name: str) -> StateEngine:
    engine = StateEngine(path, [STORE])
    engine.open(create=True)
    engine.log = NodeLog(shared, name)
    return engine


async def wait_applied(engine: StateEngine, revision: int) -> None:
    with trio.fail_after(WAIT):
        while engine.applied_revision < revision:
            await engine.applied.wait()


async def run_in(engine: StateEngine, scope: trio.CancelScope,
                 task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Run ``engine`` until ``scope`` is cancelled: the node dies, its nursery's other tasks go on."""
    with scope:
        await engine.run(task_status=task_status)


def rows(engine: StateEngine) -> list[tuple[int, int]]:
    return engine.read_sync(lambda db: [tuple(r) for r in db.conn.execute("SELECT writer, n FROM cp_rows ORDER BY 1, 2")])


async def test_concurrent_writers_on_three_nodes_commit_in_one_order(tmp_path: Path):
    shared = SharedLog()
    engines = [node(tmp_path / f"n{i}.db", shared, f"n{i}") for i in range(3)]
    writers, per_writer = 30, 6
    places: dict[tuple[int, int], int] = {}
    claims: dict[int, str] = {}

    async def writer(i: int) -> None:
        engine = engines[i % 3]
        for n in range(per_writer):
            places[(i, n)] = await engine.propose(Append(i, n))
        try:  # two writers per name: one wins, on every node the same one
            claims[i] = await engine.propose(Claim(f"name-{i // 2}", i))
        except Conflict:
            claims[i] = "refused"

    async with trio.open_nursery() as nursery:
        for engine in engines:
            await nursery.start(engine.run)
        async with trio.open_nursery() as inner:
            for i in range(writers):
                inner.start_soon(writer, i)
        for engine in engines:
            await wait_applied(engine, shared.revision)
        nursery.cancel_scope.cancel()

    # Group commit: far fewer puts than commands, and every proposal answered.
    total = writers * (per_writer + 1)
    assert sum(e.log.puts for e in engines) < total
    assert len(places) == writers * per_writer
    # One order: each command's answer is its place, each place is taken once, a writer's own
    # commands keep the order it proposed them in.
    assert sorted(places.values()) == list(range(1, writers * per_writer + 1))
    for i in range(writers):
        assert [places[(i, n)] for n in range(per_writer)] == sorted(places[(i, n)] for n in range(per_writer))
    won = [v for v in claims.values() if v != "refused"]
    assert len(won) == writers // 2 and set(won) == {f"name-{k}" for k in range(writers // 2)}
    # The same log, state and hashes on every node.
    expected = sorted((i, n) for i in range(writers) for n in range(per_writer))
    for engine in engines:
        assert rows(engine) == expected
        assert engine.log_entries() == engines[0].log_entries()
        assert engine.state_at() == engines[0].state_at()
    assert len(engines[0].log_entries()) == total - writers // 2  # refused claims are not logged
    for engine in engines:
        engine.close()


async def test_a_node_that_dies_between_commit_and_apply_loses_nothing(tmp_path: Path):
    shared = SharedLog()
    a, b = node(tmp_path / "a.db", shared, "a"), node(tmp_path / "b.db", shared, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        b_scope = trio.CancelScope()
        await nursery.start(run_in, b, b_scope)
        assert await a.propose(Append(1, 0)) == 1  # acknowledged on a
        await wait_applied(b, shared.revision)
        b.log.hold()  # b's watch stops delivering: what etcd commits now is not applied on b
        outcome: dict[str, Any] = {}

        async def propose_on_b() -> None:
            try:
                outcome["result"] = await b.propose(Append(2, 0))
            except Unavailable as exc:
                outcome["error"] = exc

        nursery.start_soon(propose_on_b)
        assert await a.propose(Append(1, 1)) in (2, 3)  # acknowledged on a, not applied on b
        with trio.fail_after(WAIT):
            while len(shared.events) < 3:  # b's own batch is in the log too
                await shared.wait_changed()
        await wait_applied(a, shared.revision)
        b_scope.cancel()  # b dies: committed in the log, never applied on b
        with trio.fail_after(WAIT):
            while not outcome:
                await trio.sleep(0)
        assert isinstance(outcome.get("error"), Unavailable)  # never acknowledged, but committed
        assert rows(b) == [(1, 0)]
        b.close()

        b2 = node(tmp_path / "b.db", shared, "b")  # the node starts again on its database
        await nursery.start(b2.run)
        await wait_applied(b2, shared.revision)
        assert rows(b2) == rows(a) == [(1, 0), (1, 1), (2, 0)]
        assert b2.state_at() == a.state_at()
        assert b2.log_entries() == a.log_entries()
        nursery.cancel_scope.cancel()
    a.close()
    b2.close()


async def test_a_node_that_loses_its_last_transactions_reapplies_them_from_the_log(tmp_path: Path):
    """In a cluster the node's commits are not synced one by one (etcd's log is the durable copy):
    a power cut may take the database back to an older state, with its applied revision, and
    the node then applies the rest of the log again, to the same state as its peers."""
    shared = SharedLog()
    a, b = node(tmp_path / "a.db", shared, "a"), node(tmp_path / "b.db", shared, "b")
    backup = tmp_path / "backup"
    backup.mkdir()
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        scope = trio.CancelScope()
        await nursery.start(run_in, b, scope)
        assert b._writer.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: etcd keeps the log
        for n in range(5):
            await b.propose(Append(2, n))
        await wait_applied(b, shared.revision)
        scope.cancel()
        with trio.fail_after(WAIT):
            while b.running:
                await trio.sleep(0)
        b.close()
        for name in ("b.db", "b.db-wal"):  # the database as the disk held it before the cut
            if (tmp_path / name).exists():
                shutil.copy(tmp_path / name, backup / name)
        b = node(tmp_path / "b.db", shared, "b")
        await nursery.start(b.run)
        for n in range(5, 12):  # acknowledged on b (and a), then lost from b's disk
            await b.propose(Append(2, n))
            await a.propose(Append(1, n))
        await wait_applied(a, shared.revision)
        nursery.cancel_scope.cancel()
    b.close()
    for name in ("b.db", "b.db-wal", "b.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
        if (backup / name).exists():
            shutil.copy(backup / name, tmp_path / name)
    b = node(tmp_path / "b.db", shared, "b")
    assert len(rows(b)) == 5  # the cut took the last transactions back
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        await wait_applied(b, shared.revision)
        nursery.cancel_scope.cancel()
    assert rows(b) == rows(a) and len(rows(a)) == 19
    assert b.state_at() == a.state_at()
    assert b.log_entries() == a.log_entries()
    a.close()
    b.close()


def test_a_node_alone_syncs_every_commit(tmp_path: Path):
    """Alone, the log is in the database itself: every commit is synced before it is answered."""
    engine = StateEngine(tmp_path / "alone.db", [STORE])
    engine.open(create=True)
    assert engine._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert engine.apply_now(Append(1, 0)) == 1
    engine.close()


@pytest.mark.parametrize("count", [1, 300])
async def test_one_batch_of_many_commands_applies_in_one_transaction(tmp_path: Path, count: int):
    """Proposals queued together go to the log as one put and are applied in one transaction."""
    shared = SharedLog()
    engine = node(tmp_path / "n.db", shared, "n")
    answers: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        async with trio.open_nursery() as inner:
            for i in range(count):
                inner.start_soon(lambda i=i: _collect(engine, Append(i, 0), answers))
        nursery.cancel_scope.cancel()
    assert sorted(answers) == list(range(1, count + 1))
    assert engine.log.puts <= max(1, count // 256 + 1)  # BATCH_MAX commands a put at the most
    engine.close()


async def _collect(engine: StateEngine, cmd: Command, answers: list[int]) -> None:
    answers.append(await engine.propose(cmd))


async def test_a_proposal_queued_without_waiting_commits_before_the_next_one(tmp_path: Path):
    """propose_nowait queues at once: alone, what is proposed after it commits after it."""
    engine = StateEngine(tmp_path / "alone.db", [STORE])
    engine.open(create=True)
    with pytest.raises(Unavailable):
        engine.propose_nowait(Append(1, 0))  # not running
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        first = engine.propose_nowait(Append(1, 0))
        taken = engine.propose_nowait(Claim("x", 1))
        refused = engine.propose_nowait(Claim("x", 2))
        assert await engine.propose(Append(2, 0)) == 2  # after the first row
        for pending in (first, taken, refused):
            assert pending.done.is_set()
        assert (first.result, first.error, taken.result) == (1, None, "x")
        assert isinstance(refused.error, Conflict)
        nursery.cancel_scope.cancel()
    engine.close()


async def test_a_batch_with_a_refused_command_commits_the_others_as_a_savepoint_each_would(tmp_path: Path):
    """Commands queued together share one transaction without savepoints until one is refused; then
    the batch is applied again, a savepoint each, from the commands' log texts."""
    engine = StateEngine(tmp_path / "alone.db", [STORE])
    engine.open(create=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        queued = [engine.propose_nowait(Append(1, 0)), engine.propose_nowait(Half(9, 9, {})),
                  engine.propose_nowait(Claim("y", 1)), engine.propose_nowait(Append(1, 1))]
        await engine.propose(Append(2, 0))
        nursery.cancel_scope.cancel()
    assert [p.result for p in queued] == [1, None, "y", 2]
    assert isinstance(queued[1].error, Conflict) and queued[1].cmd.seen == {"applied": 1}
    assert rows(engine) == [(1, 0), (1, 1), (2, 0)]
    assert [json.loads(text)["type"] for text in engine.log_entries()] == [
        "commitpath.append", "commitpath.claim", "commitpath.append", "commitpath.append"]
    engine.close()

"""The state core: ordered log, deterministic apply, group commit, replay, migrations."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
import trio

from cloudbox.errors import Conflict, NotFound, Unavailable
from cloudbox.state.commands import Command, command, decode, encode
from cloudbox.state.engine import BATCH_MAX, StateEngine, replay
from cloudbox.state.migrations import StoreSpec, migrate


@command("testsvc.put")
class Put(Command):
    key: str
    value: int


@command("testsvc.delete")
class Drop(Command):
    key: str


@command("testsvc.pair")
class Pair(Command):
    items: tuple[tuple[str, int], ...]


def _put(db, cmd: Put) -> int:
    if list(db.query("SELECT 1 FROM kv WHERE key = ?", [cmd.key])):
        raise Conflict(f"{cmd.key} exists")
    db["kv"].insert({"key": cmd.key, "value": cmd.value})
    return cmd.value * 2


def _drop(db, cmd: Drop) -> None:
    if db.execute("DELETE FROM kv WHERE key = ?", [cmd.key]).rowcount == 0:
        raise NotFound(cmd.key)


def _pair(db, cmd: Pair) -> int:
    # Writes the first item, then fails on a duplicate: apply must be all or nothing.
    for key, value in cmd.items:
        _put(db, Put(key, value))
    return len(cmd.items)


HANDLERS = {Put: _put, Drop: _drop, Pair: _pair}


STORE = StoreSpec("testsvc", ["CREATE TABLE kv (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"],
                  sys.modules[__name__], (__name__,))


def rows(engine: StateEngine) -> dict[str, int]:
    return engine.read_sync(lambda db: {r["key"]: r["value"] for r in db.query("SELECT * FROM kv")})


def test_commands_round_trip_through_json():
    cmd = Pair((("a", 1), ("b", 2)))
    assert decode(encode(cmd)) == cmd
    assert encode(cmd) == encode(decode(encode(cmd)))


def test_apply_now_writes_log_and_state(tmp_path: Path):
    engine = StateEngine(tmp_path / "s.db", [STORE])
    engine.open(create=True)
    assert engine.apply_now(Put("a", 1)) == 2
    assert rows(engine) == {"a": 1}
    assert engine.last_seq == 1
    assert [decode(e) for e in engine.log_entries()] == [Put("a", 1)]


def test_rejected_command_changes_nothing_and_is_not_logged(tmp_path: Path):
    engine = StateEngine(tmp_path / "s.db", [STORE])
    engine.open(create=True)
    engine.apply_now(Put("a", 1))
    before = engine.table_hashes()
    with pytest.raises(Conflict):
        engine.apply_now(Pair((("b", 2), ("a", 3))))  # "b" is written, then "a" conflicts
    assert rows(engine) == {"a": 1}
    assert engine.table_hashes() == before
    assert len(engine.log_entries()) == 1


async def test_group_commit_answers_every_proposer(tmp_path: Path):
    engine = StateEngine(tmp_path / "s.db", [STORE])
    engine.open(create=True)
    results: dict[int, object] = {}

    async def propose(i: int) -> None:
        try:
            results[i] = await engine.propose(Put(f"k{i % 150}", i))
        except Conflict:
            results[i] = "conflict"

    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        async with trio.open_nursery() as writers:
            for i in range(300):
                writers.start_soon(propose, i)
        nursery.cancel_scope.cancel()
    # Exactly one of each pair of proposers for a key won; the loser got a Conflict.
    assert sum(1 for r in results.values() if r == "conflict") == 150
    assert len(rows(engine)) == 150
    assert engine.last_seq == 150
    winners = {i for i, r in results.items() if r != "conflict"}
    assert all(results[i] == 2 * i for i in winners)


class _StuckLog:
    """A cluster log whose etcd never answers (``hang``) or answers that it has no quorum."""

    node_id, node_name = "n1", "node1"

    def __init__(self, hang: bool) -> None:
        self.hang = hang
        self.appends = 0

    async def append(self, body: bytes) -> int:
        self.appends += 1
        if self.hang:
            await trio.sleep_forever()
        raise Unavailable("etcdserver: no leader")

    async def follow(self, applied, send) -> None:
        await trio.sleep_forever()


@pytest.mark.parametrize("hang", [True, False])
async def test_a_write_without_quorum_is_refused_with_what_is_known(tmp_path: Path, hang: bool):
    engine = StateEngine(tmp_path / "s.db", [STORE])
    engine.open(create=True)
    engine.commit_timeout = 0.2
    log = _StuckLog(hang)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await engine.join_cluster(log, 0)
        with pytest.raises(Unavailable) as first:
            await engine.propose(Put("a", 1))
        with pytest.raises(Unavailable) as second:  # within FAIL_FAST: refused without asking etcd
            await engine.propose(Put("b", 2))
        nursery.cancel_scope.cancel()
    assert log.appends == 1
    if hang:  # etcd may still commit what it did not answer: the message must not say "not done"
        assert "may still commit it late" in first.value.message and "node1" in first.value.message
    else:
        assert "cannot commit writes now" in first.value.message and "no leader" in first.value.message
    assert "cannot commit writes now" in second.value.message  # never sent: certainly not done
    assert rows(engine) == {}


def test_replay_gives_identical_tables(tmp_path: Path):
    engine = StateEngine(tmp_path / "live.db", [STORE])
    engine.open(create=True)
    for i in range(50):
        engine.apply_now(Put(f"k{i}", i))
    for i in range(0, 50, 3):
        engine.apply_now(Drop(f"k{i}"))
    with pytest.raises(NotFound):
        engine.apply_now(Drop("missing"))
    live = engine.table_hashes()
    replayed = replay(engine.log_entries(), tmp_path / "replay.db", [STORE])
    assert replayed == live
    assert set(live) == {"_migrations", "kv"}


def test_replay_detects_a_difference(tmp_path: Path):
    """The comparison can fail: a log missing one command hashes differently."""
    engine = StateEngine(tmp_path / "live.db", [STORE])
    engine.open(create=True)
    for i in range(5):
        engine.apply_now(Put(f"k{i}", i))
    assert replay(engine.log_entries()[:-1], tmp_path / "short.db", [STORE]) != engine.table_hashes()


def test_migrations_are_applied_once_and_refuse_edits(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert migrate(conn, [STORE]) == [("testsvc", 1)]
    assert migrate(conn, [STORE]) == []
    grown = StoreSpec("testsvc", [STORE.migrations[0], "ALTER TABLE kv ADD COLUMN note TEXT;"],
                      STORE.commands, STORE.appliers)
    assert migrate(conn, [grown]) == [("testsvc", 2)]
    edited = StoreSpec("testsvc", ["CREATE TABLE kv (key TEXT);", grown.migrations[1]], STORE.commands, STORE.appliers)
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        migrate(conn, [edited])


def test_corrupt_database_is_refused(tmp_path: Path):
    from cloudbox.errors import SetupError

    path = tmp_path / "bad.db"
    path.write_bytes(b"this is not a database" * 100)
    engine = StateEngine(path, [STORE])
    with pytest.raises(SetupError, match="bad.db"):
        engine.open()


def test_the_database_and_its_snapshots_are_readable_by_their_owner_only(tmp_path: Path):
    """It holds password hashes and token keys; guests' QEMU runs as another user on the host."""
    path = tmp_path / "private.db"
    path.write_bytes(b"")
    path.chmod(0o644)  # a database made before this rule
    engine = StateEngine(path, [STORE])
    engine.open(create=True)
    try:
        engine.apply_now(Put("a", 1))
        snapshot = tmp_path / "snapshot.db"
        engine.snapshot_to(snapshot)
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), snapshot):
            assert name.stat().st_mode & 0o777 == 0o600, name
    finally:
        engine.close()


async def test_proposals_queued_when_the_engine_stops_are_answered(tmp_path: Path):
    """No proposer waits forever: each gets its result or a 503, whether queued or in flight."""
    engine = StateEngine(tmp_path / "stop.db", [STORE])
    engine.open(create=True)
    outcomes: list[str] = []

    async def propose(i: int) -> None:
        try:
            await engine.propose(Put(f"k{i}", i))
            outcomes.append("done")
        except Unavailable:
            outcomes.append("refused")

    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as outer:
                engine_scope = trio.CancelScope()

                async def run_engine(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                    with engine_scope:
                        await engine.run(task_status=task_status)

                await outer.start(run_engine)
                async with trio.open_nursery() as proposers:
                    for i in range(3 * BATCH_MAX + 100):  # more than one batch: some wait in the queue
                        proposers.start_soon(propose, i)
                    await trio.sleep(0)  # let them queue, then stop the engine under them
                    engine_scope.cancel()
        assert len(outcomes) == 3 * BATCH_MAX + 100
        assert "refused" in outcomes
        with pytest.raises(Unavailable):
            await engine.propose(Put("late", 1))
    finally:
        engine.close()

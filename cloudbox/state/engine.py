"""The state engine of one node: an ordered command log applied to SQLite.

Rules:
- A write is a command: ``propose(cmd)`` queues it; one writer task takes
  queued commands in batches (group commit) and, in one SQLite transaction,
  appends each to ``_log`` and applies it inside its own savepoint.  A
  command whose apply raises ``CloudboxError`` is rolled back whole (log row
  included) and its proposer gets the error; the rest of the batch commits.
- The proposer is answered only after the commit, so an acknowledged write is
  on disk: alone, each commit is synced (synchronous=FULL), since the log is
  in this file; in a cluster the log is etcd's, synced by a majority before
  the batch is applied anywhere, so commits here are not synced one by one
  (synchronous=NORMAL): a power cut may take the last transactions back, with
  the ``applied_revision`` written in them, and the node re-applies them from
  etcd (or from a peer's snapshot).  A crash of the process loses nothing.
- Reads run on a small pool of read-only connections in worker threads; WAL
  lets them proceed while the writer commits.
- After a commit, listeners get (command, result) for post-commit work (caches,
  events); they must not block.  ``from_here`` tells them whether the command
  was proposed on this node.

Two ways to keep the log (see ``cloudbox.cluster.replication``):
- alone (the embedded default): the log is the ``_log`` table, written in the
  same transaction as the apply;
- in a cluster: the writer sends each batch to etcd as one write; a follower
  task applies every batch (from every node) in etcd's revision order, records
  the revision in ``local_cluster`` in the same transaction, and answers this
  node's proposers once their batch is applied here.

Versions (see ``cloudbox.state.commands``): a batch holding a command this node does not
understand (unknown kind, newer schema) is not applied, nor anything after it: the
follower stops there, records why in ``stalled`` (shown in /health and `cloudbox
status`), and the node keeps serving reads of the state before it; its own writes are
refused at once.  Restarted by a release that understands it, the node goes on from
there.  A command is proposed only if every node of the cluster speaks its schema
(``cluster_schema``, kept by the cluster service from the nodes' registrations).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import sqlite_utils
import trio

from cloudbox.errors import CloudboxError, InternalError, SetupError, Unavailable
from cloudbox.state import commands as cmds
from cloudbox.state import db as dbmod
from cloudbox.state.migrations import StoreSpec, migrate

log = logging.getLogger("cloudbox.state")
T = TypeVar("T")
Listener = Callable[[cmds.Command, Any], None]

BATCH_MAX = 256
PUTS_IN_FLIGHT = 4  # batches of one node in etcd at once (cluster only)
FAIL_FAST = 1.0  # seconds after a write found no quorum during which writes are refused at once
READERS = 4


@dataclass
class _Pending:
    cmd: cmds.Command
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: CloudboxError | None = None


class StateEngine:
    def __init__(self, path: Path | str, stores: Sequence[StoreSpec]) -> None:
        self.path = Path(path)
        self.stores = {s.service: s for s in stores}
        self._store_list = list(stores)
        self._writer: sqlite3.Connection | None = None
        self._writer_db: sqlite_utils.Database | None = None
        self._readers: list[sqlite_utils.Database] = []
        self._send, self._receive = trio.open_memory_channel[_Pending](BATCH_MAX * 4)
        self._listeners: list[Listener] = []
        self._write_lock = threading.Lock()  # the writer connection
        self._pool_lock = threading.Lock()  # the free list of readers
        self._free_readers: list[sqlite_utils.Database] = []
        self._gate = threading.Condition()  # reads in flight, paused while a snapshot replaces the file
        self._active_reads = 0
        self._swapping = False
        self.last_seq = 0
        self.running = False
        self.from_here = True  # during listener calls: was the command proposed on this node
        self.log: Any = None  # a cluster.replication.ReplicatedLog once this node is in a cluster
        self.applied_revision = 0  # the last etcd revision applied here (cluster only)
        self._inflight: dict[str, list[_Pending]] = {}  # batch id → this node's proposals in etcd
        self._nursery: trio.Nursery | None = None
        self.applied = trio.Event()  # set (and replaced) each time the follower applied events
        self._follower_scope: trio.CancelScope | None = None
        self._put_slots = trio.Semaphore(PUTS_IN_FLIGHT)
        self._fail_fast_until = 0.0
        self._last_refusal = ""
        self.stalled: dict[str, Any] | None = None  # why the follower stopped (a command not understood)
        self.cluster_schema = cmds.known_schema()  # the lowest command schema of the cluster's nodes
        self.schema_laggards = ""  # who speaks only cluster_schema (for messages), set with it
        self.commit_timeout = 3.0  # seconds a write may wait for etcd before 503
        self.apply_timeout = 10.0  # seconds a committed write may wait to be applied here

    # --- opening -----------------------------------------------------------
    def open(self, *, create: bool = False) -> None:
        """Open (and with ``create``, make) the database, check it, migrate it."""
        if not create and not self.path.exists():
            raise FileNotFoundError(self.path)
        conn = dbmod.connect(self.path)
        dbmod.check_integrity(conn, self.path)
        try:
            applied = migrate(conn, self._store_list)
            if applied:  # once per migration and database: an upgrade's first start says which ran
                log.info("schema migrations applied", extra={"migrations": [f"{s} #{v}" for s, v in applied]})
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {dbmod.LOG_TABLE} ("
                " seq INTEGER PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL)"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS local_cluster (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise SetupError(f"database {self.path} is corrupt: {exc}") from exc
        self._writer = conn
        self._writer_db = sqlite_utils.Database(conn)  # made once: its constructor runs a PRAGMA and plugin hooks
        self._set_durability()
        self.last_seq = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {dbmod.LOG_TABLE}").fetchone()[0]
        row = conn.execute("SELECT value FROM local_cluster WHERE key = 'applied_revision'").fetchone()
        self.applied_revision = int(row[0]) if row else 0
        self._readers = [
            sqlite_utils.Database(dbmod.connect(self.path, readonly=True)) for _ in range(READERS)
        ]
        self._free_readers = list(self._readers)

    def close(self) -> None:
        self.close_connections()

    def _set_durability(self) -> None:
        """Sync every commit alone; in a cluster, leave durability to etcd's log (see the module's rules)."""
        if self._writer is not None:
            self._writer.execute(f"PRAGMA synchronous={'NORMAL' if self.log is not None else 'FULL'}")

    def close_connections(self) -> None:
        for reader in self._readers:
            reader.conn.close()
        self._readers = []
        self._free_readers = []
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._writer_db = None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # --- writing -----------------------------------------------------------
    async def propose(self, cmd: cmds.Command, *, ungated: bool = False) -> Any:
        """Append ``cmd`` to the log, apply it, and return apply's result (or raise its error).
        ``ungated``: send it even if some node does not speak its schema (an operator's force)."""
        self._admit(cmd, ungated)
        pending = _Pending(cmd)
        try:
            await self._send.send(pending)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise Unavailable("the state engine is not running") from None
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    def propose_nowait(self, cmd: cmds.Command) -> _Pending:
        """Queue ``cmd`` without waiting for its commit; await ``.done`` of the answer for its
        ``result`` or ``error``.  Proposals are taken in the order they were queued: alone, a
        command queued before another commits in the same or an earlier transaction (in a cluster,
        batches in flight at once may commit in either order).  Raises Unavailable when the engine
        does not run or its queue is full."""
        self._admit(cmd, False)
        pending = _Pending(cmd)
        try:
            self._send.send_nowait(pending)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            raise Unavailable("the state engine cannot take a proposal now") from None
        return pending

    def _admit(self, cmd: cmds.Command, ungated: bool) -> None:
        """Refuse a proposal this node may not make now (Unavailable), before it is queued."""
        if not self.running:
            raise Unavailable("the state engine is not running")
        if self.stalled is not None:
            raise Unavailable(self.stalled["message"])
        if cmd.SINCE > cmds.known_schema():
            raise Unavailable(f"This node speaks command schema {cmds.known_schema()}; {cmd.TYPE} needs "
                              f"{cmd.SINCE}. Upgrade it.")
        if cmd.SINCE > self.cluster_schema and not ungated:
            raise Unavailable(
                f"{cmd.TYPE} needs command schema {cmd.SINCE}, but {self.schema_laggards or 'a node of the cluster'} "
                f"speaks only {self.cluster_schema}: the cluster is mid-upgrade. Upgrade every node first "
                "(`cloudbox status` shows each node's version).")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self.log is not None:
                    await nursery.start(self._follow)
                task_status.started()
                async with self._receive:
                    try:
                        await self._serve_queue(nursery)
                    finally:
                        self._refuse_queued()
        finally:
            self.running = False
            self._nursery = None
            for batch in self._inflight.values():
                for pending in batch:
                    pending.error = Unavailable("the node is stopping")
                    pending.done.set()
            self._inflight.clear()

    async def _serve_queue(self, nursery: trio.Nursery) -> None:
        """Take proposals in batches: apply them here (one node) or send them to the cluster's log."""
        while True:
            batch = [await self._receive.receive()]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            if self.log is None:
                try:
                    await trio.to_thread.run_sync(self._apply_batch, batch)
                except BaseException:
                    # Cancelled before the thread started (the node is stopping): nothing was applied.
                    self._refuse([p for p in batch if not p.done.is_set()], "the node is stopping")
                    raise
                for pending in batch:
                    pending.done.set()
                self._notify(batch)
            else:
                await self._put_slots.acquire()
                nursery.start_soon(self._replicate, batch)

    def _refuse_queued(self) -> None:
        """Proposals still waiting in the queue when the engine stops are answered, not forgotten."""
        while True:
            try:
                pending = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return
            pending.error = Unavailable("the node is stopping")
            pending.done.set()

    # --- the cluster's log ------------------------------------------------------------------
    async def join_cluster(self, log: Any, revision: int) -> None:
        """Switch a running single node to the cluster's log, whose history up to ``revision``
        this database already holds.  Proposals queued meanwhile go to the cluster."""
        assert self._writer is not None
        with self._write_lock:
            self._writer.execute("INSERT OR REPLACE INTO local_cluster (key, value) VALUES ('applied_revision', ?)",
                                 (str(revision),))
        self.applied_revision = revision
        self.log = log
        if self._nursery is not None:
            await self._nursery.start(self._follow)

    async def _replicate(self, batch: list[_Pending]) -> None:
        """Send one batch to etcd; its proposers are answered when the follower applied it here."""
        try:
            await self._replicate_batch(batch)
        finally:
            self._put_slots.release()

    async def _replicate_batch(self, batch: list[_Pending]) -> None:
        batch_id = uuid.uuid4().hex
        if trio.current_time() < self._fail_fast_until:
            self._refuse(batch, self._last_refusal)
            return
        body = json.dumps({"origin": self.log.node_id, "batch": batch_id,
                           "commands": [cmds.encode(p.cmd) for p in batch]}, separators=(",", ":"))
        self._inflight[batch_id] = batch
        try:
            with trio.fail_after(self.commit_timeout):
                revision = await self.log.append(body.encode())
        except (Unavailable, trio.TooSlowError) as exc:
            self._inflight.pop(batch_id, None)
            why = exc.message if isinstance(exc, Unavailable) else f"no answer within {self.commit_timeout:g} s"
            self._last_refusal = (
                "The cluster cannot commit writes now: no majority of its etcd members is reachable "
                f"from node {self.log.node_name} ({why}). Reads keep working; retry once the nodes are back.")
            message = self._last_refusal
            if not isinstance(exc, Unavailable):  # etcd may still commit a put it did not answer in time
                message = (f"The cluster did not confirm the write within {self.commit_timeout:g} s: no majority "
                           f"of its etcd members answered node {self.log.node_name}. The write is not "
                           "acknowledged, but etcd may still commit it late (then it shows on every node): "
                           "check before you retry. Reads keep working.")
            # Writes queued meanwhile are refused at once rather than each waiting out the timeout.
            self._fail_fast_until = trio.current_time() + FAIL_FAST
            self._refuse(batch, message)
            return
        self._nursery.start_soon(self._expire, batch_id, revision)

    def _refuse(self, batch: list[_Pending], message: str) -> None:
        for pending in batch:
            pending.error = Unavailable(message)
            pending.done.set()

    async def _expire(self, batch_id: str, revision: int) -> None:
        """A committed batch that is not applied here in time is answered 503 (the write stands)."""
        await trio.sleep(self.apply_timeout)
        batch = self._inflight.pop(batch_id, None)
        if batch:
            for pending in batch:
                pending.error = Unavailable(
                    f"The write was committed by the cluster (revision {revision}) but this node has not "
                    f"applied it within {self.apply_timeout:g} s; it will appear once the node catches up.")
                pending.done.set()

    async def _follow(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Apply the cluster's log in revision order, until an entry this node does not understand."""
        with self._write_lock:
            self._set_durability()
        send, receive = trio.open_memory_channel[Any](4096)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.log.follow, lambda: self.applied_revision, send)
            task_status.started()
            async with receive:
                while True:
                    events = [await receive.receive()]
                    while len(events) < BATCH_MAX:
                        try:
                            events.append(receive.receive_nowait())
                        except trio.WouldBlock:
                            break
                    events = [e for e in events if e.revision > self.applied_revision]
                    if not events:
                        continue
                    applied = await trio.to_thread.run_sync(self._apply_events, events)
                    self.applied.set()
                    self.applied = trio.Event()
                    if self.stalled is not None:  # nothing after the entry it does not understand
                        nursery.cancel_scope.cancel()
                    for origin, batch_id, batch in applied:
                        mine = self._inflight.pop(batch_id, None) if origin == self.log.node_id else None
                        if mine is not None:
                            for pending, done in zip(mine, batch):
                                pending.result, pending.error = done.result, done.error
                                pending.done.set()
                        self.from_here = mine is not None
                        try:
                            self._notify(batch)
                        finally:
                            self.from_here = True

    def _apply_events(self, events: list[Any]) -> list[tuple[str, str, list[_Pending]]]:
        """Apply log events (each a batch of commands) in one SQLite transaction."""
        assert self._writer is not None
        out: list[tuple[str, str, list[_Pending]]] = []
        items: list[tuple[_Pending, str]] = []
        kept = []
        for event in events:
            body = json.loads(event.value)
            batch: list[tuple[_Pending, str]] = []
            try:
                for text in body["commands"]:
                    try:
                        batch.append((_Pending(cmds.decode(text)), text))
                    except cmds.NotUnderstood:
                        raise
                    except CloudboxError as exc:  # the same text fails alike everywhere: skipped everywhere
                        log.error("undecodable command at revision %d: %s", event.revision, exc)
            except cmds.NotUnderstood as exc:
                self._stall(event.revision, exc)
                break
            kept.append(event)
            items.extend(batch)
            out.append((body.get("origin", ""), body.get("batch", ""), [p for p, _ in batch]))
        if not kept:
            return out
        events = kept

        def record_revision(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO local_cluster (key, value) VALUES ('applied_revision', ?)",
                         (str(events[-1].revision),))

        with self._write_lock:
            self._apply_transaction(items, record_revision)
            self.applied_revision = events[-1].revision
        return out

    def _stall(self, revision: int, exc: cmds.NotUnderstood) -> None:
        self.stalled = {
            "revision": revision, "command": exc.kind,
            "version": exc.version, "known_schema": exc.known,
            "message": (f"This node stopped applying the cluster's log at revision {revision}: {exc.message}. "
                        f"It serves reads of the state before it and refuses writes; upgrade it to a release "
                        f"that speaks command schema {max(exc.version, exc.known + 1)} and restart it, and it "
                        "catches up from there."),
        }
        log.error("stopped at a command this node does not understand: %s", self.stalled["message"],
                  extra={k: v for k, v in self.stalled.items() if k != "message"})

    def apply_now(self, cmd: cmds.Command) -> Any:
        """Apply one command synchronously (used by ``cloudbox init`` before any server runs)."""
        pending = _Pending(cmd)
        self._apply_batch([pending])
        self._notify([pending])
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _apply_batch(self, batch: list[_Pending]) -> None:
        assert self._writer is not None
        with self._write_lock:
            try:
                self._apply_transaction([(pending, cmds.encode(pending.cmd)) for pending in batch])
            except Exception as exc:
                for pending in batch:
                    pending.result = None
                    pending.error = Unavailable(f"the database refused the write: {exc}")
                log.exception("commit of a batch of %d commands failed", len(batch))

    def _apply_transaction(self, items: list[tuple[_Pending, str]],
                           finish: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Apply ``items`` (each command with its log text) in order in one transaction with their
        log rows (and ``finish``'s writes), and commit.  Raises what the database refused.

        Optimistic: at first no savepoint per command (each SQL statement releases and takes back
        the GIL, and the two savepoint statements were most of a small command's).  If any
        command fails, that transaction is rolled back and the commands, decoded afresh from their
        texts (an apply may have changed its command's dicts), are applied again in a new one,
        each in its own savepoint, which decides every command's outcome: so the state, the log
        and the answers are what a savepoint per command always gives."""
        assert self._writer is not None
        conn, db = self._writer, self._writer_db
        for careful in (False, True):
            conn.execute("BEGIN IMMEDIATE")
            logged: list[tuple[int, str, str]] = []
            try:
                for pending, text in items:
                    if careful:
                        self._apply_logged(conn, db, pending, text, logged)
                    else:
                        pending.result = self._apply_one(db, pending.cmd)
                        logged.append((self.last_seq + len(logged) + 1, pending.cmd.TYPE, text))
                self._write_log(conn, logged)
                if finish is not None:
                    finish(conn)
                conn.execute("COMMIT")
            except Exception:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if careful:
                    raise
                for pending, text in items:
                    pending.cmd, pending.result, pending.error = _fresh(pending.cmd, text), None, None
                continue
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self.last_seq += len(logged)
            return

    def _apply_logged(self, conn: sqlite3.Connection, db: sqlite_utils.Database, pending: _Pending,
                      text: str, logged: list[tuple[int, str, str]]) -> None:
        """Apply one command in its own savepoint; once applied, its log row joins ``logged``
        (written for the whole transaction at once by ``_write_log``: no apply reads the log)."""
        conn.execute("SAVEPOINT command")
        try:
            pending.result = self._apply_one(db, pending.cmd)
            conn.execute("RELEASE command")
            logged.append((self.last_seq + len(logged) + 1, pending.cmd.TYPE, text))
        except Exception as exc:  # noqa: BLE001 - a bug in one apply must not stop the writer
            conn.execute("ROLLBACK TO command")
            conn.execute("RELEASE command")
            if isinstance(exc, CloudboxError):
                pending.error = exc
            else:
                log.exception("apply of %s failed", pending.cmd.TYPE)
                pending.error = InternalError(f"internal error applying {pending.cmd.TYPE}")

    @staticmethod
    def _write_log(conn: sqlite3.Connection, logged: list[tuple[int, str, str]]) -> None:
        conn.executemany(f"INSERT INTO {dbmod.LOG_TABLE} (seq, type, body) VALUES (?, ?, ?)", logged)

    def _apply_one(self, db: sqlite_utils.Database, cmd: cmds.Command) -> Any:
        store = self.stores.get(cmd.service)
        if store is None:
            raise InternalError(f"no store for command {cmd.TYPE}")
        return store.apply(db, cmd)

    def _notify(self, batch: list[_Pending]) -> None:
        for pending in batch:
            if pending.error is None:
                for listener in self._listeners:
                    try:
                        listener(pending.cmd, pending.result)
                    except Exception:  # noqa: BLE001
                        log.exception("post-commit listener failed for %s", pending.cmd.TYPE)

    # --- reading -----------------------------------------------------------
    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` on a read-only connection in a worker thread."""
        return await trio.to_thread.run_sync(self.read_sync, fn, *args)

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        with self._gate:
            while self._swapping:
                self._gate.wait()
            self._active_reads += 1
        try:
            with self._pool_lock:
                db = self._free_readers.pop() if self._free_readers else None
            if db is None:
                db = sqlite_utils.Database(dbmod.connect(self.path, readonly=True))
                with self._pool_lock:
                    self._readers.append(db)
            try:
                return fn(db, *args)
            finally:
                with self._pool_lock:
                    self._free_readers.append(db)
        finally:
            with self._gate:
                self._active_reads -= 1
                self._gate.notify_all()

    def restore(self, snapshot: Path) -> None:
        """Replace the whole database by a snapshot of a peer (a node behind etcd's compacted
        history).  Writes and reads wait meanwhile; the log then continues from its revision."""
        with self._write_lock:
            with self._gate:
                self._swapping = True
                while self._active_reads:
                    self._gate.wait()
            try:
                self.close_connections()
                for suffix in ("-wal", "-shm"):
                    Path(str(self.path) + suffix).unlink(missing_ok=True)
                # The snapshot's bytes, then its new name, reach the disk before the node goes on:
                # a power cut must leave the old database or the whole new one, never a torn file.
                dbmod.sync(snapshot)
                os.replace(snapshot, self.path)
                dbmod.sync(self.path.parent)
                self.open()
            finally:
                with self._gate:
                    self._swapping = False
                    self._gate.notify_all()

    # --- checking ----------------------------------------------------------
    def log_entries(self) -> list[str]:
        assert self._writer is not None
        return [r[0] for r in self._writer.execute(f"SELECT body FROM {dbmod.LOG_TABLE} ORDER BY seq")]

    def table_hashes(self) -> dict[str, str]:
        assert self._writer is not None
        with self._write_lock:
            return dbmod.table_hashes(self._writer)

    def state_at(self) -> tuple[int, dict[str, str]]:
        """(applied revision, table hashes), read together."""
        assert self._writer is not None
        with self._write_lock:
            return self.applied_revision, dbmod.table_hashes(self._writer)

    def snapshot_to(self, path: Path) -> int:
        """A consistent copy of the database at ``path`` (no node-local rows but the revision);
        returns the cluster revision it holds."""
        assert self._writer is not None
        with self._write_lock:
            revision = self.applied_revision
            dbmod.keep_private(path)
            target = sqlite3.connect(str(path))
            try:
                self._writer.backup(target)
            finally:
                target.close()
        copy = sqlite3.connect(str(path), isolation_level=None)
        try:
            names = [r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'local_%'")]
            for name in names:
                copy.execute(f'DELETE FROM "{name}"')
            copy.execute("INSERT OR REPLACE INTO local_cluster (key, value) VALUES ('applied_revision', ?)",
                         (str(revision),))
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
        return revision


def _fresh(cmd: cmds.Command, text: str) -> cmds.Command:
    """The command as its log text says (what every other node applies)."""
    try:
        return cmds.decode(text)
    except CloudboxError:
        return cmd


def replay(entries: Sequence[str], path: Path | str, stores: Sequence[StoreSpec]) -> dict[str, str]:
    """Apply a log to a fresh database at ``path``; return its table hashes."""
    engine = StateEngine(path, stores)
    engine.open(create=True)
    try:
        for text in entries:
            engine.apply_now(cmds.decode(text))
        return engine.table_hashes()
    finally:
        engine.close()

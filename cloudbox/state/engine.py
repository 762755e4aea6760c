"""The state engine of one node: an ordered command log applied to SQLite.

Rules:
- A write is a command: ``propose(cmd)`` queues it; one writer task takes
  queued commands in batches (group commit) and, in one SQLite transaction,
  appends each to ``_log`` and applies it inside its own savepoint.  A
  command whose apply raises ``CloudboxError`` is rolled back whole (log row
  included) and its proposer gets the error; the rest of the batch commits.
- The proposer is answered only after the commit, so an acknowledged write is
  on disk (synchronous=FULL).
- Reads run on a small pool of read-only connections in worker threads; WAL
  lets them proceed while the writer commits.
- After a commit, listeners get (command, result) for post-commit work (caches,
  events); they must not block.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import sqlite_utils
import trio

from cloudbox.errors import CloudboxError, SetupError, Unavailable
from cloudbox.state import commands as cmds
from cloudbox.state import db as dbmod
from cloudbox.state.migrations import StoreSpec, migrate

log = logging.getLogger("cloudbox.state")
T = TypeVar("T")
Listener = Callable[[cmds.Command, Any], None]

BATCH_MAX = 256
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
        self._readers: list[sqlite_utils.Database] = []
        self._send, self._receive = trio.open_memory_channel[_Pending](BATCH_MAX * 4)
        self._listeners: list[Listener] = []
        self._write_lock = threading.Lock()  # the writer connection
        self._pool_lock = threading.Lock()  # the free list of readers
        self._free_readers: list[sqlite_utils.Database] = []
        self.last_seq = 0
        self.running = False

    # --- opening -----------------------------------------------------------
    def open(self, *, create: bool = False) -> None:
        """Open (and with ``create``, make) the database, check it, migrate it."""
        if not create and not self.path.exists():
            raise FileNotFoundError(self.path)
        conn = dbmod.connect(self.path)
        dbmod.check_integrity(conn, self.path)
        try:
            migrate(conn, self._store_list)
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {dbmod.LOG_TABLE} ("
                " seq INTEGER PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL)"
            )
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise SetupError(f"database {self.path} is corrupt: {exc}") from exc
        self._writer = conn
        self.last_seq = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {dbmod.LOG_TABLE}").fetchone()[0]
        self._readers = [
            sqlite_utils.Database(dbmod.connect(self.path, readonly=True)) for _ in range(READERS)
        ]
        self._free_readers = list(self._readers)

    def close(self) -> None:
        for reader in self._readers:
            reader.conn.close()
        self._readers = []
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # --- writing -----------------------------------------------------------
    async def propose(self, cmd: cmds.Command) -> Any:
        """Append ``cmd`` to the log, apply it, and return apply's result (or raise its error)."""
        if not self.running:
            raise Unavailable("the state engine is not running")
        pending = _Pending(cmd)
        await self._send.send(pending)
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        task_status.started()
        try:
            async with self._receive:
                while True:
                    batch = [await self._receive.receive()]
                    while len(batch) < BATCH_MAX:
                        try:
                            batch.append(self._receive.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    await trio.to_thread.run_sync(self._apply_batch, batch)
                    for pending in batch:
                        pending.done.set()
                    self._notify(batch)
        finally:
            self.running = False

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
        conn = self._writer
        db = sqlite_utils.Database(conn)
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            seq = self.last_seq
            try:
                for pending in batch:
                    conn.execute("SAVEPOINT command")
                    try:
                        text = cmds.encode(pending.cmd)
                        conn.execute(
                            f"INSERT INTO {dbmod.LOG_TABLE} (seq, type, body) VALUES (?, ?, ?)",
                            (seq + 1, pending.cmd.TYPE, text),
                        )
                        pending.result = self._apply_one(db, pending.cmd)
                        conn.execute("RELEASE command")
                        seq += 1
                    except Exception as exc:  # noqa: BLE001 - a bug in one apply must not stop the writer
                        conn.execute("ROLLBACK TO command")
                        conn.execute("RELEASE command")
                        if isinstance(exc, CloudboxError):
                            pending.error = exc
                        else:
                            log.exception("apply of %s failed", pending.cmd.TYPE)
                            pending.error = CloudboxError(f"internal error applying {pending.cmd.TYPE}")
                conn.execute("COMMIT")
                self.last_seq = seq
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for pending in batch:
                    pending.result = None
                    pending.error = Unavailable(f"the database refused the write: {exc}")
                log.exception("commit of a batch of %d commands failed", len(batch))

    def _apply_one(self, db: sqlite_utils.Database, cmd: cmds.Command) -> Any:
        store = self.stores.get(cmd.service)
        if store is None:
            raise CloudboxError(f"no store for command {cmd.TYPE}")
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

    # --- checking ----------------------------------------------------------
    def log_entries(self) -> list[str]:
        assert self._writer is not None
        return [r[0] for r in self._writer.execute(f"SELECT body FROM {dbmod.LOG_TABLE} ORDER BY seq")]

    def table_hashes(self) -> dict[str, str]:
        assert self._writer is not None
        with self._write_lock:
            return dbmod.table_hashes(self._writer)


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

"""The local blob store: each object version is one immutable file named by its data id.

Files live at ``<root>/data/<id[:2]>/<id>``; uploads are written under ``<root>/tmp`` and renamed
in after fsync, so a file in ``data/`` is always whole. The user's names never reach a path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterable, AsyncIterator, BinaryIO, Callable

import trio

from cloudbox.errors import BadRequest, PayloadTooLarge

CHUNK = 1 << 20  # bytes per read (one worker-thread call each)
WRITE_BATCH = 1 << 20  # bytes of body gathered before one worker-thread call hashes (another writes) them
PIPELINE_DEPTH = 4  # batches read ahead of the hashing or the writing thread before the upload waits
WRITEBACK_EVERY = 8 << 20  # bytes written between two requests to the disk to start writing them back
_DATA_ID = re.compile(r"^[0-9a-f]{32}$")


class TooShort(BadRequest):
    """The body ended before the size it declared."""


@dataclass(frozen=True)
class Written:
    data_id: str
    size: int
    md5: str


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.tmp = root / "tmp"

    def setup(self) -> None:
        for path in (self.root, self.data, self.tmp):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, data_id: str) -> Path:
        if not _DATA_ID.match(data_id):  # ids come from rows the proposer made; never a client's text
            raise ValueError(f"not a data id: {data_id!r}")
        return self.data / data_id[:2] / data_id

    async def write(self, data_id: str, body: AsyncIterable[bytes], *, size: int | None, max_size: int) -> Written:
        """Stream ``body`` into the file of ``data_id``: md5 and size on the way, fsynced and
        renamed into place before returning. ``size``: the length the client declared (a body
        of another length is refused); over ``max_size`` bytes is a 413. Nothing stays on a failure.

        A body that fits in one batch costs one worker-thread call (open, md5, write, fsync,
        rename). A larger one is a bounded pipeline: the event loop keeps reading the body while
        one worker thread hashes the batches already read and another writes them (md5 and
        write let go of the GIL), at most PIPELINE_DEPTH batches behind, so the receive, the md5
        and the write overlap instead of taking turns."""
        upload = _Upload(self.tmp / data_id, self.path(data_id))
        received = 0

        def check(chunk: bytes) -> None:
            nonlocal received
            received += len(chunk)
            if received > max_size:
                raise PayloadTooLarge("Your request is too large.")
            if size is not None and received > size:
                raise BadRequest("The request body is longer than its Content-Length.")

        try:
            chunks = aiter(body)
            batch, ended = await _next_batch(chunks, check)
            if ended:
                _check_length(received, size)
                await trio.to_thread.run_sync(upload.small, batch)
            else:
                await self._pipeline(upload, chunks, batch, check)
                _check_length(received, size)
                await trio.to_thread.run_sync(upload.finish)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(upload.discard)
            raise
        return Written(data_id, received, upload.digest.hexdigest())

    @staticmethod
    async def _pipeline(upload: "_Upload", chunks: AsyncIterator[bytes], first: list[bytes],
                        check: Callable[[bytes], None]) -> None:
        """Hash and write every batch of ``chunks`` (``first`` already read) in two worker threads
        while the next batches are read; returns once both threads are done with the last one."""
        to_hash, hash_queue = trio.open_memory_channel[list[bytes]](PIPELINE_DEPTH)
        to_write, write_queue = trio.open_memory_channel[list[bytes]](PIPELINE_DEPTH)

        failures: list[Exception] = []  # raised here, not as the nursery's exception group

        async def work(queue: trio.MemoryReceiveChannel[list[bytes]], step: Callable[[list[bytes]], None]) -> None:
            try:
                async with queue:
                    async for pieces in queue:
                        await trio.to_thread.run_sync(step, pieces)
            except Exception as exc:  # noqa: BLE001 - a disk error: stop the upload, raise it below
                failures.append(exc)
                nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(work, hash_queue, upload.hash)
            nursery.start_soon(work, write_queue, upload.write)
            try:
                async with to_hash, to_write:
                    batch, ended = first, False
                    while batch:
                        await to_hash.send(batch)
                        await to_write.send(batch)
                        if ended:
                            break
                        batch, ended = await _next_batch(chunks, check)
            except Exception as exc:  # noqa: BLE001 - a bad body: stop the threads' work, raise it below
                failures.append(exc)
                nursery.cancel_scope.cancel()
        if failures:
            raise failures[0]

    async def copy(self, source_id: str, data_id: str) -> None:
        """A new file ``data_id`` with the bytes of ``source_id`` (fsynced)."""
        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in self.read(source_id, 0, None):
                yield chunk
        await self.write(data_id, chunks(), size=None, max_size=1 << 62)

    async def open(self, data_id: str) -> BinaryIO:
        return await trio.to_thread.run_sync(lambda: open(self.path(data_id), "rb"))

    async def read(self, data_id: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        file = await self.open(data_id)
        async for chunk in read_file(file, start, end):
            yield chunk

    async def unlink(self, data_id: str) -> None:
        await trio.to_thread.run_sync(_unlink, self.path(data_id))

    def files(self) -> list[tuple[str, float]]:
        """(data id, modification time) of every file in data/ (blocking; the sweep's)."""
        out = []
        for sub in self.data.iterdir() if self.data.exists() else ():
            for path in sub.iterdir():
                if _DATA_ID.match(path.name):
                    out.append((path.name, path.stat().st_mtime))
        return out

    def stale_uploads(self, older_than: float) -> int:
        """Remove tmp/ files of uploads a crash cut short (blocking)."""
        removed = 0
        cutoff = time.time() - older_than
        for path in self.tmp.iterdir() if self.tmp.exists() else ():
            if path.stat().st_mtime < cutoff:
                _unlink(path)
                removed += 1
        return removed


async def _next_batch(chunks: AsyncIterator[bytes], check: Callable[[bytes], None]) -> tuple[list[bytes], bool]:
    """Up to WRITE_BATCH bytes of ``chunks`` (the pieces as received), and whether the body ended."""
    batch: list[bytes] = []
    batched = 0
    while batched < WRITE_BATCH:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            return batch, True
        check(chunk)
        batch.append(chunk)
        batched += len(chunk)
    return batch, False


def _check_length(received: int, size: int | None) -> None:
    if size is not None and received < size:
        raise TooShort("The request body ended before its Content-Length.")


class _Upload:
    """One upload's file under tmp/ and its md5; every method runs in a worker thread. ``hash``
    and ``write`` may run at the same time (each batch's pieces are immutable bytes)."""

    def __init__(self, tmp: Path, final: Path) -> None:
        self.tmp = tmp
        self.final = final
        self.digest = hashlib.md5(usedforsecurity=False)
        self.file: BinaryIO | None = None
        self.written = 0
        self.flushed = 0  # bytes the disk was told to start writing back

    def hash(self, pieces: list[bytes]) -> None:
        for data in pieces:
            self.digest.update(data)

    def write(self, pieces: list[bytes]) -> None:
        if self.file is None:
            self.file = open(self.tmp, "xb")
        self.file.writelines(pieces)
        self.written += sum(len(data) for data in pieces)
        if self.written - self.flushed >= WRITEBACK_EVERY:
            # Let the disk write what we have so far while the rest arrives, so the fsync before
            # the 201 waits for the last few MiB only, not for the whole object.
            self.file.flush()
            _start_writeback(self.file.fileno(), self.flushed, self.written - self.flushed)
            self.flushed = self.written

    def small(self, pieces: list[bytes]) -> None:
        """A whole body in one call: a small object costs one worker-thread hop."""
        self.hash(pieces)
        self.write(pieces)
        self.finish()

    def finish(self) -> None:
        if self.file is None:
            self.file = open(self.tmp, "xb")
        _finish(self.file, self.tmp, self.final)

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
        _unlink(self.tmp)


async def read_file(file: BinaryIO, start: int, end: int | None) -> AsyncIterator[bytes]:
    """Bytes [start, end) of an open file in CHUNK reads (worker threads); closes it at the end."""
    try:
        await trio.to_thread.run_sync(file.seek, start)
        left = None if end is None else end - start
        while left is None or left > 0:
            want = CHUNK if left is None else min(CHUNK, left)
            data = await trio.to_thread.run_sync(file.read, want)
            if not data:
                break
            if left is not None:
                left -= len(data)
            yield data
    finally:
        file.close()


def _finish(file: BinaryIO, tmp: Path, final: Path) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()
    final.parent.mkdir(exist_ok=True, mode=0o700)
    os.rename(tmp, final)
    _fsync_dir(final.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


_SYNC_FILE_RANGE_WRITE = 2
try:
    _sync_file_range = ctypes.CDLL(None, use_errno=True).sync_file_range
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
except (OSError, AttributeError):  # not Linux: the fsync at the end does all the work
    _sync_file_range = None


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing [offset, offset+length) to disk, without waiting for it
    (a hint: the fsync before the 201 is still what makes the file durable)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)

"""The local blob store: each object version is one immutable file named by its data id.

Files live at ``<root>/data/<id[:2]>/<id>``; uploads are written under ``<root>/tmp`` and renamed
in after fsync, so a file in ``data/`` is always whole. The user's names never reach a path.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterable, AsyncIterator, BinaryIO

import trio

from cloudbox.errors import BadRequest, PayloadTooLarge

CHUNK = 1 << 20  # bytes per read (one worker-thread call each)
WRITE_BATCH = 1 << 20  # bytes of body gathered before one worker-thread call hashes and writes them
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
        of another length is refused); over ``max_size`` bytes is a 413. Nothing stays on a failure."""
        final = self.path(data_id)
        tmp = self.tmp / data_id
        digest = hashlib.md5(usedforsecurity=False)
        written = 0
        files: list[BinaryIO] = []  # the file once opened (by the first batch's thread call)

        def flush(chunks: list[bytes], finish: bool) -> None:
            # open (first time), md5, write and, at the end, fsync and rename: one worker-thread
            # call per batch, so a small object costs one hop; md5 and write let go of the GIL,
            # so the event loop keeps reading the socket meanwhile
            if not files:
                files.append(open(tmp, "xb"))
            for data in chunks:
                digest.update(data)
            files[0].writelines(chunks)
            if finish:
                _finish(files[0], tmp, final)

        try:
            batch: list[bytes] = []
            batched = 0
            async for chunk in body:
                written += len(chunk)
                if written > max_size or (size is not None and written > size):
                    if written > max_size:
                        raise PayloadTooLarge("Your request is too large.")
                    raise BadRequest("The request body is longer than its Content-Length.")
                batch.append(chunk)
                batched += len(chunk)
                if batched >= WRITE_BATCH:
                    await trio.to_thread.run_sync(flush, batch, False)
                    batch, batched = [], 0
            if size is not None and written < size:
                raise TooShort("The request body ended before its Content-Length.")
            await trio.to_thread.run_sync(flush, batch, True)
        except BaseException:
            if files:
                files[0].close()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_unlink, tmp)
            raise
        return Written(data_id, written, digest.hexdigest())

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

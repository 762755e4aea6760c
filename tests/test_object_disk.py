"""The blob store's upload pipeline (disk.BlobStore.write): a body larger than one batch is hashed
and written in two worker threads while the next batches are read, never more than a few batches
ahead of the slower thread, and every failure leaves nothing behind and is raised as itself."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import AsyncIterator

import pytest
import trio
import trio.testing

from cloudbox.errors import BadRequest, PayloadTooLarge
from cloudbox.object import disk
from cloudbox.object.disk import BlobStore, TooShort

DATA_ID = "0123456789abcdef0123456789abcdef"
SIZES = [300 << 10, 1 << 20, 1536 << 10, 7, 64 << 10, 2 << 20, 900 << 10]  # irregular, like TLS reads


def store(tmp_path: Path) -> BlobStore:
    blobs = BlobStore(tmp_path / "objects")
    blobs.setup()
    return blobs


def pieces(sizes: list[int]) -> list[bytes]:
    return [os.urandom(n) for n in sizes]


async def body(parts: list[bytes], fail_after: int | None = None) -> AsyncIterator[bytes]:
    for index, part in enumerate(parts):
        if index == fail_after:
            raise ConnectionError("the client went away")
        yield part


def left(blobs: BlobStore) -> list[str]:
    return [p.name for p in (*blobs.tmp.iterdir(), *blobs.data.rglob("*")) if p.is_file()]


async def test_large_body_hashed_and_written_whole(tmp_path: Path) -> None:
    blobs = store(tmp_path)
    parts = pieces(SIZES * 3)
    data = b"".join(parts)
    written = await blobs.write(DATA_ID, body(parts), size=len(data), max_size=1 << 30)
    assert (written.size, written.md5) == (len(data), hashlib.md5(data).hexdigest())
    assert blobs.path(DATA_ID).read_bytes() == data
    assert list(blobs.tmp.iterdir()) == []


@pytest.mark.parametrize("parts", [[], [b"x"], [os.urandom(1000), os.urandom(5000)]])
async def test_small_body_in_one_call(tmp_path: Path, parts: list[bytes]) -> None:
    blobs = store(tmp_path)
    data = b"".join(parts)
    written = await blobs.write(DATA_ID, body(parts), size=None, max_size=1 << 30)
    assert (written.size, written.md5) == (len(data), hashlib.md5(data).hexdigest())
    assert blobs.path(DATA_ID).read_bytes() == data


@pytest.mark.parametrize("size, max_size, error", [
    (sum(SIZES) - 1, 1 << 30, BadRequest),  # longer than its Content-Length, found mid-pipeline
    (sum(SIZES) + 1, 1 << 30, TooShort),  # ended before its Content-Length
    (None, (3 << 20) + 5, PayloadTooLarge),  # past the largest object, mid-pipeline
])
async def test_wrong_length_leaves_nothing(tmp_path: Path, size: int | None, max_size: int,
                                           error: type[Exception]) -> None:
    blobs = store(tmp_path)
    with pytest.raises(error) as caught:
        await blobs.write(DATA_ID, body(pieces(SIZES)), size=size, max_size=max_size)
    assert type(caught.value) is error
    assert left(blobs) == []


async def test_body_failing_midway_leaves_nothing(tmp_path: Path) -> None:
    blobs = store(tmp_path)
    with pytest.raises(ConnectionError):
        await blobs.write(DATA_ID, body(pieces(SIZES), fail_after=5), size=None, max_size=1 << 30)
    assert left(blobs) == []


async def test_disk_error_raised_as_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blobs = store(tmp_path)
    real = disk._Upload.write

    def failing(self: disk._Upload, batch: list[bytes]) -> None:
        if self.written >= 2 << 20:
            raise OSError(28, "No space left on device")
        real(self, batch)

    monkeypatch.setattr(disk._Upload, "write", failing)
    with pytest.raises(OSError) as caught:
        await blobs.write(DATA_ID, body(pieces(SIZES * 2)), size=None, max_size=1 << 30)
    assert caught.value.errno == 28
    assert left(blobs) == []


async def test_reads_ahead_of_a_slow_disk_by_a_few_batches_only(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    blobs = store(tmp_path)
    real = disk._Upload.write
    stalled = threading.Event()

    def slow(self: disk._Upload, batch: list[bytes]) -> None:
        stalled.wait()  # the disk does not take the first batch until the test says so
        real(self, batch)

    monkeypatch.setattr(disk._Upload, "write", slow)
    parts = [os.urandom(1 << 20) for _ in range(40)]
    pulled = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal pulled
        for part in parts:
            pulled += 1
            yield part

    result: list[disk.Written] = []

    async def upload() -> None:
        result.append(await blobs.write(DATA_ID, counted(), size=None, max_size=1 << 30))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(upload)
        while True:  # until the upload waits for the stalled writer, not for the hashing thread
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            if pulled >= disk.PIPELINE_DEPTH + 2:
                break
        # one batch in the writer, PIPELINE_DEPTH queued, one read and waiting to be queued
        assert pulled <= disk.PIPELINE_DEPTH + 3 < len(parts)
        stalled.set()
    data = b"".join(parts)
    assert result[0].md5 == hashlib.md5(data).hexdigest()
    assert blobs.path(DATA_ID).read_bytes() == data

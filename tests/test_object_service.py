"""The object service in-process (the interface S3 and the Swift API call): streamed puts with md5,
ranged reads, listings with prefix / delimiter / markers / reverse, copies, container counters,
refusals that change nothing, the sweep and the expirer, and the log replaying to the same tables."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import AsyncIterator

import pytest
import trio

from cloudbox.errors import Conflict, NotFound, PayloadTooLarge
from cloudbox.object import core
from cloudbox.object.service import ObjectService
from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine, replay


class _Settings:
    pass


async def _body(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _names(entries: list) -> list[str]:
    return [e.name for e in entries]


async def test_objects_round_trip_and_listings(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    clock = [1000.0]
    svc = ObjectService(engine, _Settings(), tmp_path / "objects", node_id="n1", clock_fn=lambda: clock[0])
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await nursery.start(svc.run)
        assert await svc.create_container("p1", "c1", {"x-container-meta-color": "blue"}) is True
        assert await svc.create_container("p1", "c1") is False
        with pytest.raises(NotFound):
            await svc.put_object("p1", "nope", "a", _body(b"x"))
        data = b"hello " * 100_000
        info = await svc.put_object("p1", "c1", "dir/a.txt", _body(data[:7], data[7:]), content_type="text/plain",
                                    metadata={"k": "v"}, size=len(data))
        assert info.etag == hashlib.md5(data).hexdigest() and info.size == len(data)
        async with await svc.open_object("p1", "c1", "dir/a.txt") as reader:
            got = b"".join([c async for c in reader.chunks(5, 17)])
        assert got == data[5:17]
        for name in ("dir/b", "dir/sub/c", "e", "f/g", "../../etc/passwd", "ü"):
            await svc.put_object("p1", "c1", name, _body(name.encode()))
        container = await svc.head_container("p1", "c1")
        assert container.object_count == 7 and container.bytes_used == len(data) + sum(
            len(n.encode()) for n in ("dir/b", "dir/sub/c", "e", "f/g", "../../etc/passwd", "ü"))
        listed = await svc.list_objects("p1", "c1")
        assert _names(listed) == ["../../etc/passwd", "dir/a.txt", "dir/b", "dir/sub/c", "e", "f/g", "ü"]
        assert _names(await svc.list_objects("p1", "c1", delimiter="/")) == ["../", "dir/", "e", "f/", "ü"]
        assert _names(await svc.list_objects("p1", "c1", delimiter="/", reverse=True)) == ["ü", "f/", "e", "dir/", "../"]
        assert _names(await svc.list_objects("p1", "c1", prefix="dir/", delimiter="/")) == [
            "dir/a.txt", "dir/b", "dir/sub/"]
        assert _names(await svc.list_objects("p1", "c1", marker="dir/b", end_marker="f/g")) == ["dir/sub/c", "e"]
        assert _names(await svc.list_objects("p1", "c1", marker="f/g", reverse=True, limit=2)) == ["e", "dir/sub/c"]
        assert _names(await svc.list_objects("p1", "c1", delimiter="/", limit=2)) == ["../", "dir/"]
        # The bytes live under a random id: no name reaches the file system.
        files = {p.name for p in (tmp_path / "objects" / "data").rglob("*") if p.is_file()}
        assert len(files) == 7 and all(len(f) == 32 for f in files)
        copied = await svc.copy_object("p1", "c1", "dir/a.txt", "c1", "copy", metadata={"extra": "1"})
        assert copied.etag == info.etag and copied.metadata == {"k": "v", "extra": "1"}
        await svc.put_object("p1", "c1", "copy", _body(b"new"))  # an overwrite frees the old file
        assert len({p.name for p in (tmp_path / "objects" / "data").rglob("*") if p.is_file()}) == 8
        with pytest.raises(Conflict):
            await svc.delete_container("p1", "c1")
        before = engine.table_hashes()
        with pytest.raises(PayloadTooLarge):
            await svc.blobs.write("0" * 32, _body(b"x" * 10), size=None, max_size=5)
        with pytest.raises(core.Unprocessable):
            await svc.put_object("p1", "c1", "bad", _body(b"abc"), etag="0" * 32)
        assert engine.table_hashes() == before
        assert not list((tmp_path / "objects" / "tmp").iterdir())
        account = await svc.head_account("p1")
        assert (account.container_count, account.object_count) == (1, 8)
        await svc.update_object("p1", "c1", "e", {"m": "1"}, {"x-delete-at": "1005"})
        clock[0] = 1006.0
        assert await svc.expire() == 1
        with pytest.raises(NotFound):
            await svc.head_object("p1", "c1", "e")
        (tmp_path / "objects" / "data" / "ab").mkdir(exist_ok=True)
        (tmp_path / "objects" / "data" / "ab" / ("ab" + "0" * 30)).write_bytes(b"orphan")
        assert await svc.sweep(-1) == 1
        # Versioning moves rows (the bytes stay): stack mode brings the newest version back.
        await svc.create_container("p1", "versions")
        await svc.put_object("p1", "c1", "v", _body(b"1"))
        clock[0] += 1
        await svc.put_object("p1", "c1", "v", _body(b"2"), archive="versions")
        assert _names(await svc.list_objects("p1", "versions")) == ["001v/0000001006.00000"]
        await svc.delete_object("p1", "c1", "v", archive="versions", restore=True)
        async with await svc.open_object("p1", "c1", "v") as reader:
            assert b"".join([c async for c in reader.chunks()]) == b"1"
        assert (await svc.head_container("p1", "versions")).object_count == 0
        log = engine.log_entries()
        assert replay(log, tmp_path / "replay.db", STORES) == engine.table_hashes()
        nursery.cancel_scope.cancel()
    engine.close()

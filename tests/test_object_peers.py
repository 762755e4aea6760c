"""A replicated write is acknowledged at a majority of durable copies: the slowest copy finishes
in the service's background nursery, after the answer (peers.replicated_write, with fake peers)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, AsyncIterable, AsyncIterator

import trio

from cloudbox.object import peers
from cloudbox.object.disk import BlobStore


class FakeResponse:
    def __init__(self, md5: str) -> None:
        self.status_code = 201
        self._md5 = md5

    def json(self) -> dict[str, Any]:
        return {"md5": self._md5}


class FakePeers:
    """The pooled peer client: each node's copy is hashed; the node "slow" answers only once
    ``release`` is set."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.answered: list[str] = []

    async def put(self, url: str, content: AsyncIterable[bytes], headers: dict[str, str]) -> FakeResponse:
        digest = hashlib.md5()
        async for chunk in content:
            digest.update(chunk)
        node = url.split("//")[1].split("/")[0]
        if node == "slow":
            await self.release.wait()
        self.answered.append(node)
        return FakeResponse(digest.hexdigest())


class FakeCluster:
    async def nodes(self) -> list[dict[str, Any]]:
        return [{"id": n, "peer_url": f"https://{n}"} for n in ("me", "fast", "slow")]


class FakeService:
    def __init__(self, root: Path, nursery: trio.Nursery) -> None:
        self.node_id = "me"
        self.blobs = BlobStore(root)
        self.blobs.setup()
        self.cluster = FakeCluster()
        self.running = True
        self.peer_pool = FakePeers()
        self.background = nursery


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), 65536):
        yield data[offset:offset + 65536]


async def test_the_ack_does_not_wait_for_the_slowest_copy(tmp_path: Path) -> None:
    data = b"x" * 300_000
    async with trio.open_nursery() as nursery:
        svc = FakeService(tmp_path, nursery)
        with trio.fail_after(5):  # never answered if the write waited for the slow copy
            written, good = await peers.replicated_write(svc, "ab" * 16, chunks(data), size=len(data),
                                                         max_size=1 << 30, targets=["me", "fast", "slow"])
        assert written.md5 == hashlib.md5(data).hexdigest()
        assert good == ["me", "fast"] and svc.peer_pool.answered == ["fast"]
        assert svc.blobs.path("ab" * 16).read_bytes() == data
        # The third copy is still going, in the background; it finishes once its peer answers.
        svc.peer_pool.release.set()
        with trio.fail_after(5):
            while svc.peer_pool.answered != ["fast", "slow"]:
                await trio.sleep(0.01)


async def test_without_a_background_nursery_every_copy_is_awaited(tmp_path: Path) -> None:
    data = b"y" * 1000
    async with trio.open_nursery() as nursery:
        svc = FakeService(tmp_path, nursery)
        svc.background = None  # type: ignore[assignment]
        svc.peer_pool.release.set()
        written, good = await peers.replicated_write(svc, "cd" * 16, chunks(data), size=len(data),
                                                     max_size=1 << 30, targets=["me", "fast", "slow"])
        assert good == ["me", "fast", "slow"] and sorted(svc.peer_pool.answered) == ["fast", "slow"]

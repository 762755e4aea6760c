"""cluster.liveness against an etcd stand-in whose leases end by trio's clock (autojump: the
timeouts are what is tested, so no test waits for real).  The namespace tests (test_cluster_compute)
run the same against real etcd."""

from __future__ import annotations

import itertools
import time
from typing import Any

import trio

from cloudbox.cluster.liveness import PREFIX, Liveness
from cloudbox.errors import Unavailable

TTL = 10
TICK = 2.0


class FakeEtcd:
    """Leases and keys as Liveness uses them; a lease ends ``ttl`` seconds after its last refresh."""

    def __init__(self) -> None:
        self.leases: dict[int, tuple[float, int]] = {}  # id -> (expiry, ttl)
        self.keys: dict[str, tuple[bytes, int]] = {}  # key -> (value, lease)
        self.writes = 0  # revisions etcd would have made: puts and deletes
        self._ids = itertools.count(1)

    def expire(self) -> None:
        now = trio.current_time()
        for lease, (expiry, _ttl) in list(self.leases.items()):
            if expiry <= now:
                self.drop(lease)

    def drop(self, lease: int) -> None:
        del self.leases[lease]
        for key in [k for k, (_v, owner) in self.keys.items() if owner == lease]:
            del self.keys[key]
            self.writes += 1


class Client:
    """One node's client of the FakeEtcd; ``cut`` cuts the node off."""

    def __init__(self, etcd: FakeEtcd) -> None:
        self.etcd = etcd
        self.cut = False

    def _reach(self) -> FakeEtcd:
        if self.cut:
            raise Unavailable("etcd did not accept the request (no route)")
        self.etcd.expire()
        return self.etcd

    async def grant(self, ttl: int) -> int:
        etcd = self._reach()
        lease = next(etcd._ids)
        etcd.leases[lease] = (trio.current_time() + ttl, ttl)
        return lease

    async def keepalive(self, lease: int) -> int:
        etcd = self._reach()
        if lease not in etcd.leases:
            return 0
        ttl = etcd.leases[lease][1]
        etcd.leases[lease] = (trio.current_time() + ttl, ttl)
        return ttl

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        etcd = self._reach()
        if lease and lease not in etcd.leases:
            raise Unavailable("etcdserver: requested lease not found")
        etcd.keys[key] = (value, lease)
        etcd.writes += 1
        return etcd.writes

    async def get_prefix(self, prefix: str) -> dict[str, bytes]:
        etcd = self._reach()
        return {k: v for k, (v, _lease) in etcd.keys.items() if k.startswith(prefix)}

    async def revoke(self, lease: int) -> None:
        etcd = self._reach()
        if lease in etcd.leases:
            etcd.drop(lease)


class Node:
    def __init__(self, etcd: FakeEtcd, node_id: str) -> None:
        self.client = Client(etcd)
        self.capacity: dict[str, Any] = {"servers": 0}
        self.liveness = Liveness(self.client, node_id, self.report, ttl=TTL, tick=TICK)  # type: ignore[arg-type]
        self.scope: trio.CancelScope | None = None

    async def report(self) -> dict[str, Any]:
        return dict(self.capacity)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as self.scope:
            await self.liveness.run(task_status=task_status)


async def start(nursery: trio.Nursery, etcd: FakeEtcd, *names: str) -> list[Node]:
    nodes = [Node(etcd, name) for name in names]
    for node in nodes:
        await nursery.start(node.run)
    for node in nodes:
        await node.liveness.up_nodes()  # the first read is in
    await trio.sleep(TICK + 0.5)  # everyone's key was read by everyone
    return nodes


async def wait_for(condition: Any, limit: float) -> float:
    """Seconds (trio's clock) until ``condition()`` holds; fails after ``limit``."""
    began = trio.current_time()
    with trio.fail_after(limit):
        while not condition():
            await trio.sleep(0.1)
    return trio.current_time() - began


async def test_nodes_are_up_while_their_leases_live_and_a_silent_one_is_down_within_the_ttl(autojump_clock):
    etcd = FakeEtcd()
    async with trio.open_nursery() as nursery:
        a, b, c = await start(nursery, etcd, "a", "b", "c")
        for node in (a, b, c):
            assert node.liveness.up() == {"a", "b", "c"}
        await trio.sleep(10 * TTL)  # refreshed all along
        assert a.liveness.up() == {"a", "b", "c"}
        # c dies: its client goes silent and its task ends without a word to etcd.
        c.client.cut = True
        c.scope.cancel()
        took = await wait_for(lambda: a.liveness.up() == {"a", "b"} and b.liveness.up() == {"a", "b"}, 2 * TTL)
        assert took <= TTL + TICK  # the lease runs out at most TTL after the last refresh; read within a tick
        assert a.liveness.reported("c") is None and a.liveness.last_seen("c") is not None
        nursery.cancel_scope.cancel()


async def test_an_idle_cluster_writes_nothing_and_a_changed_report_is_one_put(autojump_clock):
    etcd = FakeEtcd()
    async with trio.open_nursery() as nursery:
        a, b = await start(nursery, etcd, "a", "b")
        writes = etcd.writes
        assert writes == 2  # one key each
        await trio.sleep(20 * TTL)
        assert etcd.writes == writes, "refreshing leases and reading who is up must write nothing"
        a.capacity = {"servers": 1}
        await wait_for(lambda: b.liveness.reported("a") == {"servers": 1}, 2 * TICK)
        assert etcd.writes == writes + 1
        nursery.cancel_scope.cancel()


async def test_a_node_cut_off_keeps_its_view_and_comes_back_with_a_new_lease(autojump_clock):
    etcd = FakeEtcd()
    async with trio.open_nursery() as nursery:
        a, b = await start(nursery, etcd, "a", "b")
        first_lease = b.liveness.lease
        b.client.cut = True
        await wait_for(lambda: a.liveness.up() == {"a"}, TTL + 2 * TICK)
        # b cannot know better than its last read: it changes nothing (and starts nothing of a's).
        await trio.sleep(5 * TTL)
        assert b.liveness.up() == {"a", "b"}
        b.client.cut = False
        await wait_for(lambda: a.liveness.up() == {"a", "b"} == b.liveness.up(), 2 * TICK)
        assert b.liveness.lease != first_lease  # the old one had run out
        nursery.cancel_scope.cancel()


async def test_a_node_stopped_on_purpose_is_down_at_the_next_read(autojump_clock):
    etcd = FakeEtcd()
    async with trio.open_nursery() as nursery:
        a, b = await start(nursery, etcd, "a", "b")
        assert a.liveness.up() == {"a", "b"}
        b.scope.cancel()  # a stop: the lease is revoked on the way out
        took = await wait_for(lambda: a.liveness.up() == {"a"}, TTL)
        assert took <= TICK
        assert PREFIX + "b" not in etcd.keys
        nursery.cancel_scope.cancel()


async def test_asking_before_the_first_read_waits_for_it(autojump_clock):
    etcd = FakeEtcd()
    async with trio.open_nursery() as nursery:
        (a,) = await start(nursery, etcd, "a")
        late = Node(etcd, "late")
        late.client.cut = True  # etcd is not reachable yet
        await nursery.start(late.run)
        asked: list[frozenset[str]] = []

        async def ask() -> None:
            asked.append(await late.liveness.up_nodes())

        nursery.start_soon(ask)
        await trio.sleep(1)
        assert asked == []  # still waiting for etcd
        late.client.cut = False
        await wait_for(lambda: asked, TICK)
        assert asked == [frozenset({"a", "late"})]
        nursery.cancel_scope.cancel()


async def test_wall_clocks_decide_nothing(autojump_clock, monkeypatch):
    etcd = FakeEtcd()
    async with trio.open_nursery() as nursery:
        a, b = await start(nursery, etcd, "a", "b")
        monkeypatch.setattr(time, "time", lambda: 0.0)  # every wall clock back to 1970
        await trio.sleep(5 * TTL)
        assert a.liveness.up() == {"a", "b"} == b.liveness.up()
        monkeypatch.setattr(time, "time", lambda: 4e9)  # and on to 2096
        await trio.sleep(5 * TTL)
        assert a.liveness.up() == {"a", "b"} == b.liveness.up()
        nursery.cancel_scope.cancel()

"""Which nodes of a cluster are up, from etcd leases: no clock of one node is compared with
another's, and nothing goes through the command log.

Rules:
- Each node keeps the key ``/cloudbox/alive/<node id>`` under a lease of ``ttl`` seconds and
  refreshes the lease every ``tick`` seconds.  The key's value is what the node reports of
  itself (its capacity), put again only when that changed: an idle cluster writes nothing.
- etcd deletes the key when the lease runs out, by its leader's own timer: a node that stopped,
  was killed or is cut off from etcd's majority is gone within ``ttl`` (plus a leader election
  when it led etcd: a new leader renews every lease once).  A node stopped on purpose revokes its
  lease and is gone at once.
- Every tick each node also reads the prefix (a linearizable read): a node is up while its key
  exists.  A node always counts itself up.
- A node out of etcd's reach keeps its last view: it cannot know better, and changing nothing
  is the least harm (seeing itself alone would make it start every router and DHCP server the
  others run; seeing itself down would stop those its tenants still reach).  The others, which
  see it down once its lease ran out, have taken its share meanwhile; when it is back, it takes
  a new lease.  No clock is read to decide anything.
- Until the first read succeeds, ``up_nodes`` waits for it (at most ``ttl`` seconds), so that a
  starting node does not take every other node for down.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Awaitable, Callable

import trio

from cloudbox.cluster.etcd import EtcdClient
from cloudbox.errors import Unavailable

log = logging.getLogger("cloudbox.cluster")

PREFIX = "/cloudbox/alive/"
LEASE_TTL = 10  # seconds a node's key outlives its last refresh
TICK = 2.0  # seconds between a node's refreshes (and its reads of who is up)
RETRY = 0.5  # seconds between attempts before the first read succeeded

Report = Callable[[], Awaitable[dict[str, Any]]]


class Liveness:
    """This node's lease and its view of everyone's; ``run`` keeps both while it runs."""

    def __init__(self, client: EtcdClient, node_id: str, report: Report, *, ttl: int = LEASE_TTL,
                 tick: float = TICK) -> None:
        self.client = client
        self.node_id = node_id
        self.report = report
        self.ttl = ttl
        self.tick = tick
        self.lease = 0
        self._reported: dict[str, Any] | None = None  # the value of our key as last put
        self._alive: dict[str, dict[str, Any]] = {}  # node id -> its report, at the last read
        self._seen: dict[str, float] = {}  # node id -> unix time (this node's clock) it was last seen up
        self._synced = trio.Event()
        self._trouble = ""  # the last failure, logged once until a tick succeeds again

    # --- asking --------------------------------------------------------------------------------
    def up(self) -> frozenset[str]:
        """The ids of the nodes that are up, as this node last read them (and itself)."""
        return frozenset(self._alive) | {self.node_id}

    async def up_nodes(self) -> frozenset[str]:
        """``up()``, once the first read is in (or ``ttl`` seconds passed without it)."""
        if not self._synced.is_set():
            with trio.move_on_after(self.ttl):
                await self._synced.wait()
        return self.up()

    def reported(self, node_id: str) -> dict[str, Any] | None:
        """What an up node last reported of itself (None: not up, or nothing read yet)."""
        return self._alive.get(node_id)

    def last_seen(self, node_id: str) -> float | None:
        """Unix time (this node's clock) at which ``node_id`` was last seen up, if ever."""
        return self._seen.get(node_id)

    # --- running -------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                try:
                    await self._tick()
                except Exception:  # noqa: BLE001 - liveness must outlast any one failure
                    log.exception("liveness tick failed")
                await trio.sleep(self.tick if self._synced.is_set() else RETRY)
        finally:
            if self.lease:
                with trio.move_on_after(1) as scope:  # stopped on purpose: gone for the others at once
                    scope.shield = True
                    try:
                        await self.client.revoke(self.lease)
                    except Unavailable:
                        pass

    async def _tick(self) -> None:
        try:
            if self.lease and await self.client.keepalive(self.lease) <= 0:
                log.warning("this node's lease ran out (etcd was out of reach for longer than it lives); "
                            "taking a new one")
                self.lease = 0
            if not self.lease:
                self.lease = await self.client.grant(self.ttl)
                self._reported = None
            report = await self.report()
            if report != self._reported:
                await self.client.put(PREFIX + self.node_id, json.dumps(report, sort_keys=True).encode(),
                                      lease=self.lease)
                self._reported = report
            found = await self.client.get_prefix(PREFIX)
        except Unavailable as exc:
            if exc.message != self._trouble:
                log.warning("cannot refresh this node's lease or read who is up", extra={"why": exc.message})
                self._trouble = exc.message
            return
        if self._trouble:
            log.info("liveness is current again")
            self._trouble = ""
        self._alive = {key[len(PREFIX):]: _decode(value) for key, value in found.items()}
        now = time.time()
        for node_id in self._alive:
            self._seen[node_id] = now
        self._synced.set()


def _decode(value: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(value)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}

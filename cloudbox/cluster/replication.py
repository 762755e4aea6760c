"""The cluster's command log in etcd: one key, written once per batch, read by watching it.

Every batch of commands (group commit: all that one node's writer has queued)
is one etcd write to ``LOG_KEY``; etcd's revision of that write is its place
in the log.  Each node watches the key from the revision after the last one it
applied, so all nodes apply the same batches in the same order.  etcd keeps
the key's history until it is compacted (``--auto-compaction-retention``); a
node that fell further behind copies a snapshot from a peer instead.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import trio

from cloudbox.cluster.etcd import Compacted, EtcdClient
from cloudbox.errors import Unavailable

log = logging.getLogger("cloudbox.cluster")

LOG_KEY = "/cloudbox/log"
RETRY = 0.5  # seconds between attempts to re-open a broken watch


class ReplicatedLog:
    def __init__(self, client: EtcdClient, node_id: str, node_name: str,
                 on_compacted: Callable[[int], Any] | None = None) -> None:
        self.client = client
        self.node_id = node_id
        self.node_name = node_name
        self.on_compacted = on_compacted
        self.connected = False  # is the watch open
        self.last_error = ""

    async def append(self, body: bytes) -> int:
        """Commit one batch; returns its revision (raises Unavailable without a quorum)."""
        return await self.client.put(LOG_KEY, body)

    async def follow(self, applied: Callable[[], int], send: trio.MemorySendChannel) -> None:
        """Send every log event after ``applied()`` to ``send``, re-opening the watch as needed."""
        while True:
            start = applied() + 1
            try:
                async for event in self.client.watch(LOG_KEY, start):
                    if not self.connected:
                        self.connected = True
                    await send.send(event)
                self.last_error = "the watch ended"
            except Compacted as exc:
                self.connected = False
                self.last_error = str(exc)
                log.error("log compacted past this node", extra={"applied": start - 1,
                                                                 "compact_revision": exc.compact_revision})
                if self.on_compacted is None:
                    raise Unavailable(f"this node is behind etcd's compacted history ({exc})") from exc
                await self.on_compacted(exc.compact_revision)
                continue
            except Unavailable as exc:
                if self.connected:
                    log.warning("log watch broke", extra={"why": exc.message})
                self.connected = False
                self.last_error = exc.message
            await trio.sleep(RETRY)

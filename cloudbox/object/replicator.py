"""The replicator of one node: every object whose copies belong on this node (placement.wanted over
the members) gets a good local copy, fetched from a node that keeps one; the auditor re-reads
local copies at a bounded rate and replaces those whose md5 differs from the row's.

A pass walks the object rows in key order, a page at a time; after fetching a copy it proposes
``object.placed`` so every node knows the new copy, and does the same for a local copy the row
does not name yet once its md5 is checked (a PUT is acknowledged at a majority of copies: the
last one may land after the commit). Copies on nodes no longer wanted stay (an
extra copy costs disk, never correctness); copies of deleted or overwritten objects are removed
by each node's sweep.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import trio

from cloudbox.object import commands as c
from cloudbox.object import peers, placement, store

log = logging.getLogger("cloudbox.object")

PASS_SECONDS = 10.0  # between passes
PAGE = 500
AUDIT_BYTES_PER_PASS = 256 << 20  # bytes of local copies re-read per pass


class Replicator:
    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self._audit_after: tuple[str, str, str] = ("", "", "")
        self.repaired = 0  # copies made (missing or corrupt), for tests and status

    async def run(self) -> None:
        while True:
            try:
                if self.svc.cluster is not None and self.svc.cluster.clustered:
                    await self.pass_once()
                    await self.audit_once()
            except Exception:  # the next pass tries again
                log.exception("object replication pass failed")
            await trio.sleep(PASS_SECONDS)

    async def pass_once(self) -> int:
        """Fetch every copy this node should keep and lacks; returns how many it made."""
        members = [n["id"] for n in await self.svc.cluster.nodes()]
        made, after = 0, ("", "", "")
        while True:
            rows = await self.svc.read(store.objects_after, after, PAGE)
            for row in rows:
                mine = self.svc.node_id in placement.wanted(row["data_id"], members) or self.svc.node_id in row["nodes"]
                if not mine:
                    continue
                path = self.svc.blobs.path(row["data_id"])
                if not await trio.to_thread.run_sync(path.exists):
                    made += await self._repair(row)
                elif self.svc.node_id not in row["nodes"]:
                    made += await self._late(row, path)
            if len(rows) < PAGE:
                return made
            after = (rows[-1]["account"], rows[-1]["container"], rows[-1]["name"])

    async def audit_once(self) -> int:
        """Re-read local copies (a bounded number of bytes per pass); a copy whose md5 is not the
        row's is dropped and fetched again. Returns how many it replaced."""
        budget, replaced = AUDIT_BYTES_PER_PASS, 0
        while budget > 0:
            rows = await self.svc.read(store.objects_after, self._audit_after, PAGE)
            if not rows:
                self._audit_after = ("", "", "")
                return replaced
            for row in rows:
                self._audit_after = (row["account"], row["container"], row["name"])
                path = self.svc.blobs.path(row["data_id"])
                if not row["md5"] or not await trio.to_thread.run_sync(path.exists):
                    continue
                budget -= row["size"]
                if await trio.to_thread.run_sync(_md5_of, path) != row["md5"]:
                    log.warning("an object copy is corrupt; fetching a good one",
                                extra={"data_id": row["data_id"], "container": row["container"]})
                    await self.svc.blobs.unlink(row["data_id"])
                    replaced += await self._repair(row)
                if budget <= 0:
                    break
        return replaced

    async def _late(self, row: dict[str, Any], path: Any) -> int:
        """A copy that was still being written when its PUT was acknowledged (at a majority):
        recorded in the row's nodes once its md5 is checked, made again if it is not good."""
        if row["md5"] and await trio.to_thread.run_sync(_md5_of, path) == row["md5"]:
            await self.svc.engine.propose(c.PlaceObject(row["account"], row["container"], row["name"], row["data_id"],
                                                        self.svc.node_id))
            return 1
        await self.svc.blobs.unlink(row["data_id"])
        return await self._repair(row)

    async def _repair(self, row: dict[str, Any]) -> int:
        others = tuple(n for n in row["nodes"] if n != self.svc.node_id)
        if not others:
            return 0
        try:
            written = await self.svc.blobs.write(row["data_id"], peers.fetch(self.svc, others, row["data_id"], 0, None),
                                                 size=None, max_size=1 << 62)
        except Exception as exc:  # noqa: BLE001 - tried again at the next pass
            log.warning("could not copy an object from a peer", extra={"data_id": row["data_id"], "why": str(exc)})
            return 0
        if row["md5"] and written.md5 != row["md5"]:
            await self.svc.blobs.unlink(row["data_id"])  # the peer's copy is bad too: another pass, another peer
            return 0
        if self.svc.node_id not in row["nodes"]:
            await self.svc.engine.propose(c.PlaceObject(row["account"], row["container"], row["name"], row["data_id"],
                                                        self.svc.node_id))
        self.repaired += 1
        log.info("object copy made", extra={"data_id": row["data_id"], "from": list(others)})
        return 1


def _md5_of(path: Any) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while data := f.read(1 << 20):
            digest.update(data)
    return digest.hexdigest()

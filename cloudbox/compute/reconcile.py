"""The compute reconciler: make this host match the database, and the database what the host runs.

Rules (ARCHITECTURE.md, "Desired state and reconcilers"):

- Observe first, then read: the host's domains and instance directories are listed before
  the servers are read, so whatever a concurrent request made is in both lists or in neither.
- Act per server under that server's lock with its row read afresh; a server whose lock is
  held has an operation under way and is left alone this pass.
- Idempotent: a second pass changes nothing; after a crash or a restart a pass repairs drift.

What a pass does, per case:

| observed                             | database                          | action                                  |
|--------------------------------------|-----------------------------------|-----------------------------------------|
| no domain                            | ours, not BUILD, not ERROR, not   | ERROR "guest disappeared"               |
|                                      | handed here by a cold migration   |                                         |
| domain in another state              | ours, or a task left over         | status follows the domain (not after an |
|                                      |                                   | admin's reset to error, nor in a held   |
|                                      |                                   | status: states.follows_guest)           |
| any                                  | ours, task deleting               | finish the delete                       |
| any                                  | ours, image_snapshot or shelving  | the snapshot's (or shelved) unfinished  |
|                                      | (first pass)                      | image deleted                           |
| any                                  | ours, BUILD (first pass)          | build again from clean                  |
| domain                               | no such server                    | orphan: destroyed                       |
| domain                               | on another host, clustered        | evacuated: destroyed, files too         |
| domain                               | on another host, alone            | ghost: reported, left alone             |
| instance directory                   | no such server, no domain         | orphan files removed                    |
| cached image (older than BASE_GRACE) | no server here uses it            | removed                                 |

Lifecycle events from the driver update the power state of servers with no task running.
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING, Any

import trio

from cloudbox.clock import now_iso
from cloudbox.compute import store
from cloudbox.compute.driver import DomainInfo
from cloudbox.compute.states import STATE_VIEW, follows_guest, settled
from cloudbox.errors import Conflict, NotFound

if TYPE_CHECKING:
    from cloudbox.compute.service import ComputeService

log = logging.getLogger("cloudbox.compute")

INTERVAL = 30  # seconds between passes
BUSY_WAIT_MAX = 30  # seconds a periodic pass waits for the operations under way (boots) to end
BUSY_POLL = 0.25


class Reconciler:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        self.ghosts: set[str] = set()  # guests running here that the database places on another host
        self._first_pass = True

    async def run(self) -> None:
        """Follow the driver's lifecycle events and pass every INTERVAL seconds (after a first
        pass, which the service runs before it serves)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow_events)
            while True:
                await trio.sleep(INTERVAL)
                await self._after_operations()
                try:
                    await self.reconcile()
                except Exception:  # noqa: BLE001 - the next pass tries again
                    log.exception("reconcile failed")

    async def _after_operations(self) -> None:
        """A periodic pass waits (at most BUSY_WAIT_MAX) while operations hold servers' locks: it
        would list every domain (the XML of each) in the middle of their starts, and it leaves the
        servers of those operations alone anyway."""
        locks = self.svc._locks  # noqa: SLF001 - the service's own per-server locks
        with trio.move_on_after(BUSY_WAIT_MAX):
            while any(lock.locked() for lock in list(locks.values())):
                await trio.sleep(BUSY_POLL)

    async def _follow_events(self) -> None:
        svc = self.svc
        async for server_id, state in svc.driver.events():
            try:
                server = await svc.get(server_id)
            except NotFound:
                continue
            if server["host"] != svc.host or server["task_state"] is not None or state not in STATE_VIEW:
                continue
            if STATE_VIEW[state][0] != server["status"] and server["status"] != "BUILD" and follows_guest(server):
                log.info("guest changed state", extra={"server_id": server_id, "state": state})
                try:
                    await svc.update(server_id, settled(state), expect=(None,))
                except (Conflict, NotFound):
                    pass
                except Exception:  # noqa: BLE001 - keep following events
                    log.exception("could not record the state of %s", server_id)

    async def reconcile(self) -> None:
        """One pass.  Interrupted builds are resumed on the first pass only (at start, before the
        API serves): later, a BUILD server always has its build task."""
        svc = self.svc
        domains = {d.uuid: d for d in await svc.driver.list_domains()}
        directories = await trio.to_thread.run_sync(svc.guests.directories)
        servers = await svc.engine.read(store.all_servers)
        mine = [s for s in servers if s["host"] == svc.host]
        by_id = {s["id"]: s for s in servers}
        first_pass, self._first_pass = self._first_pass, False
        for server in mine:
            lock = svc.lock(server["id"])
            try:
                lock.acquire_nowait()
            except trio.WouldBlock:
                continue  # an operation is under way
            try:
                await self._server(server["id"], domains.get(server["id"]), first_pass)
            except Exception:  # noqa: BLE001 - one server's trouble must not stop the pass
                log.exception("reconcile of %s failed", server["id"])
            finally:
                lock.release()
        await self._foreign_domains(domains, by_id)
        for path in directories:
            if path.name == "_base":
                in_use = {s["image_id"] for s in mine} | {s["lifecycle"].get("rescue_image_id") for s in mine}
                await trio.to_thread.run_sync(svc.guests.clean_base, in_use)
            elif path.name not in by_id and path.name not in domains:
                await trio.to_thread.run_sync(lambda p=path: shutil.rmtree(p, ignore_errors=True))
                log.info("orphan instance files removed", extra={"server_id": path.name})
        if first_pass:
            for sid in [s["id"] for s in servers if s["host"] is None and s["status"] == "BUILD"]:
                svc.spawn(svc.build, sid)

    async def _foreign_domains(self, domains: dict[str, DomainInfo], by_id: dict[str, dict[str, Any]]) -> None:
        """Guests here that no server of this host explains: orphans, evacuated ones, ghosts."""
        svc = self.svc
        ghosts: set[str] = set()
        for sid in domains:
            owner = by_id.get(sid)
            if owner is None:
                log.warning("orphan guest removed", extra={"server_id": sid})
                await svc.driver.destroy(sid)
            elif owner["host"] not in (svc.host, None) and svc.cluster.clustered:
                # Evacuated while this node was down: the server runs elsewhere now (Nova does the same).
                log.warning("evacuated guest removed: the server was rebuilt on another host",
                            extra={"server_id": sid, "db_host": owner["host"]})
                await svc.driver.destroy(sid)
                await svc.guests.remove_files(sid)
            elif owner["host"] not in (svc.host, None):
                log.warning("ghost guest: the database places it on another host",
                            extra={"server_id": sid, "db_host": owner["host"]})
                ghosts.add(sid)
        self.ghosts = ghosts

    async def _server(self, server_id: str, domain: DomainInfo | None, first_pass: bool) -> None:
        """One server of this host, under its lock."""
        svc = self.svc
        try:
            server = await svc.get(server_id)
        except NotFound:
            return
        if first_pass and server["task_state"] in ("image_snapshot", "shelving", "shelving_image_uploading"):
            await svc.discard_unfinished_snapshots(server_id)  # the snapshot ended with the last run
        if server["task_state"] == "deleting":
            svc.spawn(svc.finish_delete, server_id)
        elif server["status"] == "BUILD":
            if first_pass:
                # A build cut short by a crash or restart: start it again from a clean slate.
                log.info("resuming interrupted build", extra={"server_id": server_id})
                svc.spawn(svc.restart_build, server_id)
        elif domain is None:
            # A server handed between nodes (a cold migration or its revert) has no guest here yet.
            if server["status"] != "ERROR" and server["task_state"] not in ("resize_migrated", "resize_reverting"):
                log.warning("guest vanished", extra={"server_id": server_id})
                await svc.update(server_id, {
                    "status": "ERROR", "vm_state": "error", "task_state": None, "power_state": 0,
                    "fault": {"code": 500, "created": now_iso(micro=True),
                              "message": "The guest disappeared from the hypervisor behind cloudbox's back."},
                }, expect=(server["task_state"],))
        else:
            await trio.to_thread.run_sync(svc.guests.trim_console, server_id)
            state = await svc.driver.get_state(server_id) or domain.state
            observed = STATE_VIEW.get(state)
            if observed and follows_guest(server) and (
                    observed[0] != server["status"] or server["task_state"] is not None):
                log.info("guest state corrected", extra={"server_id": server_id, "state": state})
                await svc.update(server_id, settled(state), expect=(server["task_state"],))

"""The network reconciler of one node: makes the host match the tables.

Rules:
- A pass reads the tables (``build_plan``), applies the plan through the driver
  (a full, idempotent sync) and tells the metadata listeners which DHCP
  namespaces exist.  One pass runs at a time (a lock); bind/unbind take it too.
- Passes run: once before ``run`` reports started, then every ``interval``
  seconds, shortly after a committed ``network.*`` command (debounced: a burst
  of commands costs one pass), and when the cluster changes: every
  ``LIVENESS_CHECK`` seconds the loop reads ``cluster_nodes`` (cheap) and asks
  the cluster which nodes are up (``up_nodes``: etcd leases), and runs a pass
  when a member joined, left, changed its tunnel address or went up or down, so
  DHCP servers and routers of a node that is gone restart elsewhere within about
  the lease's TTL + LIVENESS_CHECK.
- A pass that fails is logged and retried on the next wake-up; it never stops the
  node.  bind() raises its error to the caller (compute), which must not boot a
  guest without its port.
- bind() binds its port (driver.bind_ports, with the binds waiting meanwhile) and queues its
  ACTIVE commit without waiting for it (the guest starts meanwhile): no pass over
  the rest of the host, which the loop's next pass (woken by the ports' commits) brings up to date.
  A bind waits for a pass that holds the lock, and a full pass is slow (it looks at the whole host),
  so the loop's passes give way to boots: a server's ports allocated to this host (the
  ``network.server.allocate`` commit of a build here) are binds to come, and a pass waits until
  none is expected and binds have been quiet for BIND_QUIET, at most BIND_WAIT_MAX (a build that
  failed before its bind is forgotten then).  It also waits while guests whose ports were bound
  are starting (compute says when a start ended: ``started``), at most GUEST_WAIT_MAX: a pass
  looks at the whole host (every link, the conntrack table) and its CPU is taken from those starts.
- Ports that compute unbound are left out of the plan until bound again (their
  rows may still name this host until the control plane clears them).
- Each pass asks the driver for the host's own addresses and LANs (``host_networks``)
  before it reads the tables: with the setting ``management_cidrs`` they are what
  guests may not reach beyond the external network.
"""

from __future__ import annotations

import inspect
import logging
import time
from functools import partial
from typing import Any, Awaitable, Callable, Collection

import trio

from cloudbox.errors import NotFound, SetupError
from cloudbox.network import store as network_store
from cloudbox.network.driver import NetworkDriver
from cloudbox.network.hostplan import HostNetworks, HostPlan, Management, build_plan, cluster_members, tap_name
from cloudbox.nics import NicSpec

log = logging.getLogger("cloudbox.network.dataplane")

INTERVAL = 30.0
LIVENESS_CHECK = 5.0  # seconds between looks at the cluster's members and who of them is up
DEBOUNCE = 0.2
BIND_QUIET = 1.0  # a loop's pass waits for binds to be this long quiet and none to be expected ...
BIND_WAIT_MAX = 5.0  # ... but no longer than this
GUEST_WAIT_MAX = 15.0  # nor longer than this for guests starting on ports bound here
GUEST_POLL = 0.1  # seconds between looks at the guests starting
# Commands that change nothing on a host (a port's status is what bind itself reports).
QUIET_COMMANDS = ("network.port.status", "network.tags", "network.quota.")


async def _every_member() -> None:
    """No cluster to ask (tests): every member counts as up."""
    return None


class DataPlane:
    def __init__(self, engine: Any, node_id: str, host: str, settings: Any, driver: NetworkDriver,
                 network_service: Any, metadata: Any = None, interval: float = INTERVAL,
                 up_nodes: Callable[[], Awaitable[Collection[str] | None]] | None = None) -> None:
        self.engine = engine
        self.node_id = node_id
        self.host = host
        self.external_bridge = settings.external_bridge
        self.external_interface = settings.external_interface
        try:  # what guests may not reach beyond the external network (with the host's own addresses)
            self.management = Management.parse(getattr(settings, "management_cidrs", "auto"))
        except ValueError as exc:
            raise SetupError(str(exc)) from None
        self.driver = driver
        self.network_service = network_service
        self.metadata = metadata
        self.interval = interval
        self.up_nodes = up_nodes or _every_member  # the cluster's answer to "which nodes are up"
        self.plan: HostPlan | None = None
        self.passes = 0
        self.passes_deferred = 0  # loop passes that waited for binds (statistics)
        self.last_error: str | None = None
        self._lock = trio.Lock()
        self._wake = trio.Event()
        self._unbound: set[str] = set()
        # Commits seen, and the count when the last pass read the tables: a pass that read them
        # after the last commit makes the loop's pending pass needless.
        self._commits = 0
        self._read_at = -1
        self._passed_at = time.monotonic()
        self._host_networks: HostNetworks | None = None  # the last pass's look (binds reuse it)
        self._metadata_namespaces: dict[str, str] | None = None  # what the listeners were last told
        self._last_bind = 0.0  # monotonic time of the last bind (the loop's passes let binds go first)
        self._expected: dict[str, float] = {}  # port id -> when its build allocated it here (its bind to come)
        self._to_bind: set[str] = set()  # ports whose bind waits for the lock
        self._starting: dict[str, float] = {}  # port id -> when it was bound, until its guest's start ended
        self._bound: dict[str, NicSpec | Exception] = {}  # a batch's results, until their binds take them
        self._statuses: list[Any] = []  # the engine's answers to the ACTIVE statuses binds queued
        self._status_retry: set[str] = set()  # ports whose ACTIVE could not be queued or was refused

    # --- the loop ----------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.engine.add_listener(self._on_commit)
        await self._pass_logged()
        task_status.started()
        while True:
            woken = False
            with trio.move_on_after(min(self.interval, LIVENESS_CHECK)):
                await self._wake.wait()
                woken = True
                await trio.sleep(DEBOUNCE)  # let the rest of a burst of commands commit
            if woken and self._read_at >= self._commits:
                self._wake = trio.Event()
                continue  # another pass already applied every commit
            if not woken and time.monotonic() - self._passed_at < self.interval and not await self._cluster_changed():
                continue
            await self._after_binds()
            self._wake = trio.Event()
            await self._pass_logged()

    async def _after_binds(self) -> None:
        """A loop's pass waits until no bind is expected and binds have been quiet for BIND_QUIET
        (at most BIND_WAIT_MAX): a boot's bind puts its own port in force, and a pass holds the
        lock its bind needs for as long as it looks at the whole host (1.4 s with 5 boots at
        once on a loaded host).  Then it waits while guests on ports bound here are starting
        (at most GUEST_WAIT_MAX in all): its CPU would be taken from their starts."""
        began = time.monotonic()
        waiting = False
        while True:
            now = time.monotonic()
            self._expected = {p: at for p, at in self._expected.items() if now - at < BIND_WAIT_MAX}
            self._starting = {p: at for p, at in self._starting.items() if now - at < GUEST_WAIT_MAX}
            quiet_for = now - self._last_bind
            binding = bool(self._expected) or quiet_for < BIND_QUIET
            if not binding and not self._starting:
                return
            deadline = began + (GUEST_WAIT_MAX if self._starting else BIND_WAIT_MAX)
            if now >= deadline:
                return
            if not waiting:
                waiting = True
                self.passes_deferred += 1
            pause = max(BIND_QUIET - quiet_for, 0.05) if binding else GUEST_POLL
            await trio.sleep(min(pause, deadline - now))

    def started(self, port_ids: Collection[str]) -> None:
        """The start of the guest on these (bound) ports ended, whether it ran or not."""
        for port_id in port_ids:
            self._starting.pop(port_id, None)

    async def _cluster_changed(self) -> bool:
        """Whether the members (or their liveness) differ from those the last plan was placed on."""
        if self.plan is None:
            return False  # no pass succeeded yet: the interval retries
        try:
            members = await self.engine.read(cluster_members, await self.up_nodes())
        except Exception:  # noqa: BLE001 - a failed look is no reason to stop; the interval pass comes
            log.exception("reading the cluster members failed")
            return False
        return members != self.plan.members

    def _on_commit(self, cmd: Any, result: Any) -> None:
        """Engine listener (runs in the trio thread after a commit): ask for a pass soon."""
        kind = getattr(cmd, "TYPE", "")
        if kind == "network.server.allocate" and getattr(cmd, "host", None) == self.host:
            now = time.monotonic()  # a build here: its ports' binds come next
            self._expected.update((port["id"], now) for port in result or ())
        if kind.startswith("network.") and not kind.startswith(QUIET_COMMANDS):
            self._commits += 1
            self._wake.set()

    async def _pass_logged(self) -> None:
        try:
            await self.reconcile()
        except Exception as exc:  # noqa: BLE001 - the node goes on; the next pass retries
            self.last_error = str(exc)
            log.exception("network reconcile failed")

    async def reconcile(self) -> HostPlan:
        """One pass; returns the plan it applied.  The ports of the DHCP servers and routers it
        runs then go ACTIVE (outside the lock: a proposal may wait on the cluster)."""
        async with self._lock:
            plan = await self._reconcile_locked()
        await self.network_service.set_ports_active(plan.service_port_ids())
        await self._settle_statuses()
        return plan

    async def _reconcile_locked(self) -> HostPlan:
        started = time.monotonic()
        read_at = self._commits
        self._passed_at = time.monotonic()
        host_networks = await self.driver.host_networks()  # observed first, then the tables read
        self._host_networks = host_networks
        plan = await self.engine.read(partial(build_plan, management=self.management, host_networks=host_networks),
                                      self.host, self.node_id, self.external_bridge, self.external_interface,
                                      await self.up_nodes())
        self._unbound &= {p.id for p in plan.ports}  # forget ports deleted or bound elsewhere since
        plan = plan.without_ports(self._unbound)
        try:
            await self.driver.apply(plan)
        finally:
            self.plan = plan
            # The namespaces exist (or are kept) whatever else of the pass failed.
            await self._sync_metadata(plan.dhcp_namespaces())
        self.passes += 1
        self._read_at = read_at
        self.last_error = None
        log.debug("network pass", extra={"pass": self.passes, "ms": round((time.monotonic() - started) * 1000, 1)})
        return plan

    async def _sync_metadata(self, namespaces: dict[str, str], changed_only: bool = False) -> None:
        """Tell the metadata listeners which DHCP namespaces exist (namespace → network id); a pass
        tells them every time (they retry what failed), a bind only when it made a namespace."""
        if self.metadata is None or (changed_only and namespaces == self._metadata_namespaces):
            return
        result = self.metadata.sync(namespaces)
        if inspect.isawaitable(result):
            await result
        self._metadata_namespaces = dict(namespaces)

    # --- compute's side -------------------------------------------------------------------
    async def bind(self, port_id: str) -> NicSpec:
        """Make the port's tap (plugged, filtered) before compute starts the guest; the port goes
        ACTIVE (queued before this returns: it commits before what the caller proposes next).

        Only the ports being bound get objects made: the tables are read afresh (the host's
        ruleset holds every port's chains and its groups' members, so it is replaced whole, in
        one nft transaction), then the driver binds those ports alone; the rest of the host is
        the loop's.  Binds that wait for the lock meanwhile go in one batch: one read, one
        ruleset for all of them (concurrent boots do not pay one each)."""
        started = time.perf_counter()
        self._last_bind = time.monotonic()
        self._expected.pop(port_id, None)
        self._unbound.discard(port_id)
        self._to_bind.add(port_id)
        async with self._lock:
            locked = time.perf_counter()
            if port_id not in self._bound:  # not in the batch of a bind before this one
                await self._bind_batch()
            result = self._bound.pop(port_id)
        if isinstance(result, BaseException):
            raise result
        self._starting[port_id] = time.monotonic()  # its guest starts next
        log.info("port bound", extra={"port_id": port_id, "steps_ms": {
            "wait": round((locked - started) * 1000, 1), "bind": round((time.perf_counter() - locked) * 1000, 1)}})
        return result

    async def _bind_batch(self) -> None:
        """Bind every port waiting (under the lock); each one's NicSpec or error in ``_bound``."""
        batch, self._to_bind = self._to_bind, set()
        try:
            if self._host_networks is None:
                self._host_networks = await self.driver.host_networks()
            plan = await self.engine.read(
                partial(build_plan, management=self.management, host_networks=self._host_networks),
                self.host, self.node_id, self.external_bridge, self.external_interface, await self.up_nodes())
            plan = plan.without_ports(self._unbound)
            here = tuple(sorted(p for p in batch if plan.port(p) is not None))
            nics = await self.driver.bind_ports(plan, here) if here else {}
        except Exception as exc:  # noqa: BLE001 - every port of the batch gets the error
            for port_id in batch:
                self._bound[port_id] = exc
            return
        for port_id in batch:
            self._bound[port_id] = nics.get(port_id) or NotFound(f"port {port_id} is not bound to host {self.host}")
        await self._mark_active(nics)
        networks = {port.network_id for port in (plan.port(p) for p in here) if port is not None}
        try:  # their networks' DHCP namespaces exist now: the metadata listeners serve them before guests ask
            await self._sync_metadata({**(self._metadata_namespaces or {}), **{
                namespace: network_id for namespace, network_id in plan.dhcp_namespaces().items()
                if network_id in networks}}, changed_only=True)
        except Exception:  # noqa: BLE001 - the next pass tells them again
            log.exception("metadata listeners could not follow a bind")

    async def _mark_active(self, port_ids: Collection[str]) -> None:
        """The bound ports go ACTIVE: one read for the batch, their commits queued (one transaction
        for the batch) and not waited for: the guests start meanwhile, and on this node the
        servers' own ACTIVE commits after their ports'.  A commit that failed is retried by
        ``_settle_statuses`` (the next bind or pass)."""
        await self._settle_statuses()
        if not port_ids:
            return
        try:
            waiting = await self.engine.read(network_store.not_active, sorted(port_ids))
            self._statuses += self.network_service.set_ports_active_nowait(waiting)
        except Exception:  # noqa: BLE001 - the ports are bound: the next pass sets their status
            log.exception("the bound ports' status could not be queued")
            self._status_retry.update(port_ids)

    async def _settle_statuses(self) -> None:
        """Status commits queued by binds: forget those done; those refused (but for a port deleted
        meanwhile) are proposed again, and waited for, here."""
        failed = [p.cmd.id for p in self._statuses if p.done.is_set() and p.error is not None
                  and not isinstance(p.error, NotFound)]
        self._statuses = [p for p in self._statuses if not p.done.is_set()]
        retry, self._status_retry = self._status_retry | set(failed), set()
        for port_id in sorted(retry):
            try:
                await self.network_service.set_port_status(port_id, "ACTIVE")
            except NotFound:
                pass
            except Exception:  # noqa: BLE001 - tried again on the next bind or pass
                log.exception("port status still not committed", extra={"port_id": port_id})
                self._status_retry.add(port_id)

    async def unbind(self, port_id: str) -> None:
        """Remove the port's tap (the guest is gone); the port goes DOWN."""
        self._starting.pop(port_id, None)
        async with self._lock:
            self._unbound.add(port_id)
            await self.driver.remove_port(tap_name(port_id))
        try:
            await self.network_service.set_port_status(port_id, "DOWN")
        except NotFound:
            pass  # deleted with its server already

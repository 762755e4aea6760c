"""The compute service: servers from request to running guest, and back.

What other parts of the node call: the requests on servers (create, list, change, delete,
power actions, rebuild, snapshot, evacuate), the metadata service's answer, and ``run``.
Its collaborators are handed over at start-up, typed, so a call can be followed: the
state engine, the settings, the hypervisor driver, and the image, network, data plane and
cluster services.

A create records the servers (quota checked in apply), then the node that took the request
schedules each one in the background and the chosen host builds its guest (``guests``).
Server states and power actions are in ``states``; the reconciler in ``reconcile``;
flavors, key pairs, quotas, groups, aggregates and hosts in ``resources``.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import trio

from cloudbox import memory
from cloudbox.compute import commands as c
from cloudbox.compute.boot_volumes_service import BootVolumes
from cloudbox.compute import core, listing, scheduler, store
from cloudbox.compute.driver import RUNNING, SHUTOFF, ComputeDriver, HostInfo
from cloudbox.compute.guests import Guests
from cloudbox.compute.lifecycle import Lifecycle
from cloudbox.compute.models import ServerQuery, ServerRequest
from cloudbox.compute.reconcile import Reconciler
from cloudbox.compute.resources import ComputeResources, stamp
from cloudbox.compute.states import BY_TASK, POWER_ACTIONS, QUEUED_BEHIND, STATE_VIEW, settled
from cloudbox.compute.timeline import Timelines
from cloudbox.compute.volumes import ComputeVolumes
from cloudbox.errors import BadRequest, CloudboxError, Conflict, Forbidden, NotFound, Unavailable
from cloudbox.network import store as network_store
from cloudbox.settings import Settings
from cloudbox.state.engine import StateEngine

if TYPE_CHECKING:
    from cloudbox.cluster.service import ClusterService
    from cloudbox.identity.core import AuthContext
    from cloudbox.image.service import ImageService
    from cloudbox.network.dataplane import DataPlane
    from cloudbox.network.service import NetworkService

log = logging.getLogger("cloudbox.compute")

SNAPSHOT_STATUSES = ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED")
REBUILD_STATUSES = ("ACTIVE", "SHUTOFF", "ERROR")


class NoValidHost(CloudboxError):
    status = 500
    title = "No valid host"


class ComputeService:
    def __init__(self, engine: StateEngine, settings: Settings, driver: ComputeDriver, *, node_id: str, host: str,
                 data_dir: Path, images: ImageService, network: NetworkService, dataplane: DataPlane,
                 cluster: ClusterService) -> None:
        self.engine = engine
        self.settings = settings
        self.driver = driver
        self.node_id = node_id
        self.host = host
        self.images = images
        self.network = network
        self.cluster = cluster
        self.instances_dir = data_dir / "instances"
        self.guests = Guests(driver, self.instances_dir, host, images, dataplane)
        self.resources = ComputeResources(engine, settings, cluster)
        self.reconciler = Reconciler(self)
        self.lifecycle = Lifecycle(self)  # rescue, shelve, resize, migrate
        self.volumes = ComputeVolumes(self)  # os-volume_attachments; the volumes a guest's definition carries
        self.volume_service: Any = None  # the volume service (server.py hands it over)
        self.guests.volume_disks = self.volumes.disks_of
        self.boot_volumes = BootVolumes(self)  # boot from volume: a create's volumes; volume-backed snapshots
        self.host_info: HostInfo | None = None
        self.running = False
        self.unavailable = "the compute service is starting"
        self._nursery: trio.Nursery | None = None
        self._locks: dict[str, trio.Lock] = {}
        self._pinned: dict[str, str] = {}  # server id → the host an evacuation asked for
        self.timelines = Timelines()
        self.answers = listing.Answers()  # encoded server lists, kept while the state stays
        self.engine.add_listener(self._on_commit)

    @property
    def ghosts(self) -> set[str]:
        """Guests running here that the database places on another host."""
        return self.reconciler.ghosts

    # --- background machinery ---------------------------------------------------------
    def _on_commit(self, cmd: Any, result: Any) -> None:
        if self._nursery is None:
            return
        self.lifecycle.on_commit(cmd)  # a cold migration's steps on the other node
        if isinstance(cmd, c.CreateServers) and self.engine.from_here:
            for row in result:  # the node that took the request schedules them
                self.spawn(self.build, row["id"])
        elif isinstance(cmd, c.ClaimHost) and cmd.host == self.host and not self.engine.from_here:
            self.spawn(self.build, cmd.server_id)  # placed here by another node's scheduler

    def lock(self, server_id: str) -> trio.Lock:
        """The lock every operation on one server's guest holds (trio's locks are fair: FIFO)."""
        return self._locks.setdefault(server_id, trio.Lock())

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a background operation; its failure is logged, never fatal to the node."""
        assert self._nursery is not None, "compute service not running"

        async def guarded() -> None:
            try:
                await fn(*args)
            except Exception:  # noqa: BLE001 - one server's trouble must not stop the node's API
                log.exception("background compute task %s failed", getattr(fn, "__name__", fn))

        self._nursery.start_soon(guarded, name=getattr(fn, "__name__", "compute-task"))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.instances_dir.mkdir(parents=True, exist_ok=True)
        try:
            await self.driver.open()
        except Exception as exc:  # noqa: BLE001 - the rest of the node keeps serving
            self.unavailable = f"the hypervisor driver could not start: {exc}"
            log.error("compute unavailable", extra={"why": self.unavailable})
            task_status.started()
            await trio.sleep_forever()
        try:
            self.host_info = await self.driver.host_info()
            try:
                await self.report_host()
            except Unavailable as exc:  # this node stopped at a log entry it does not understand (issue 19)
                log.warning("compute host not reported", extra={"why": exc.message})
            await self.resources.ensure_default_flavors()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self.reconciler.reconcile()
                nursery.start_soon(self.reconciler.run)
                self.spawn(self.volumes.recover)  # attaches and detaches a stop cut short
                self.running = True
                self.unavailable = ""
                task_status.started()
                # compute starts after the node's start-up trim; its own start leaves ~1 MiB freed (issue 14)
                await trio.to_thread.run_sync(memory.trim_heap)
                await trio.sleep_forever()
        finally:
            self.running = False
            self._nursery = None
            with trio.CancelScope(shield=True):
                await self.driver.close()

    async def report_host(self) -> None:
        info = self.host_info
        assert info is not None
        row = {
            "name": self.host, "node_id": self.node_id, "host_ip": self.settings.advertise or "127.0.0.1",
            "vcpus": info.vcpus, "memory_mb": info.memory_mb, "disk_gb": info.disk_gb,
            "hypervisor_type": "KVM" if info.accel == "kvm" else "QEMU",
            "hypervisor_version": info.hypervisor_version, "accel": info.accel,
            "accel_detail": info.accel_detail, "availability_zone": self.settings.availability_zone,
            "enabled": True, "updated_at": stamp(),
        }
        await self.engine.propose(c.ReportHost(row))
        log.info("compute host reported", extra={"host": self.host, "accel": info.accel,
                                                 "vcpus": info.vcpus, "memory_mb": info.memory_mb})

    def require_running(self) -> None:
        if not self.running:
            raise Unavailable(f"Compute is unavailable on this node: {self.unavailable}.")

    # --- reading servers ----------------------------------------------------------------
    async def get(self, server_id: str) -> dict[str, Any]:
        return await self.engine.read(store.must_server, server_id)

    async def visible_server(self, ctx: AuthContext, server_id: str, write: bool = False) -> dict[str, Any]:
        """The server if the caller may see it (NotFound otherwise, as Nova answers), and change it
        when ``write`` (Forbidden; Conflict while it is locked)."""
        try:
            server = await self.get(server_id)
        except NotFound:
            raise NotFound(f"Instance {server_id[:80]} could not be found.") from None
        if not (ctx.can_read_project(server["project_id"]) or ctx.can_write_project(server["project_id"])):
            raise NotFound(f"Instance {server_id[:80]} could not be found.")
        if write:
            if not ctx.can_write_project(server["project_id"]):
                raise Forbidden("You are not authorized to perform the requested action: os_compute_api:servers:update.")
            if server["locked"] and not ctx.is_cloud_admin:
                raise Conflict(f"Instance {server_id} is locked.")
        return server

    async def set_lock(self, server: dict[str, Any], locked: bool, locked_by: str | None,
                       reason: str | None) -> None:
        """Lock or unlock a server (``locked_by``: "owner" or "admin", as Nova records it)."""
        await self.engine.propose(c.UpdateServer(server["id"], {
            "locked": locked, "locked_by": locked_by, "locked_reason": reason}))

    async def addressed(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows with their ``addresses`` (fixed and floating) and whether their host is down."""
        return await self.engine.read(listing.addressed, rows, await self.alive_hosts())

    async def show_server(self, ctx: AuthContext, server_id: str) -> dict[str, Any]:
        return (await self.addressed([await self.visible_server(ctx, server_id)]))[0]

    async def list_servers(self, query: ServerQuery, limit: int, detail: bool, view: listing.View) -> bytes:
        """One page of servers (with addresses when ``detail``) as ``view`` renders it, encoded."""
        return await listing.answer(self, query, limit, detail, view)

    # --- creating -------------------------------------------------------------------------
    async def create_servers(self, ctx: AuthContext, project_id: str, request: ServerRequest) -> list[dict[str, Any]]:
        """Check a create request whole, then record its servers (1 to max_count, as the quota
        allows, never fewer than min_count); the builds follow in the background."""
        self.require_running()
        received = self.timelines.received()
        flavor = await self.resources.bootable_flavor(ctx, project_id, request.flavor_ref)
        boot = await self.boot_volumes.prepare(ctx, request, flavor)  # the image, or the volumes, it boots from
        image = boot.image
        key_data = await self._key_data(ctx.user_id, request.key_name) if request.key_name else None
        await self.network.check_requested_networks(project_id, ctx.is_cloud_admin, request.networks)
        await self.network.check_security_groups(project_id, request.security_groups)
        zone = request.availability_zone
        if zone and zone not in await self.engine.read(store.zones):
            raise BadRequest(f"The requested availability zone is not available: {zone[:255]}.")
        self._check_metadata(request.metadata)
        if request.group_id:
            group = await self.engine.read(store.get_server_group, request.group_id)
            if group is None or group["project_id"] != project_id:
                raise BadRequest(f"Server group {request.group_id[:80]} not found.")
        properties = image.get("properties") or {}
        image_props = {k: v for k, v in properties.items()
                       if isinstance(v, str) and k.startswith(("hw_", "img_", "architecture", "hypervisor_type"))}
        # As many rows as the quota has room for now (apply checks again, against the count there).
        limits = await self.resources.quota_limits(project_id)
        quota = {k: limits[k] for k in ("instances", "cores", "ram")}
        usage = await self.engine.read(store.project_usage, project_id)
        room = core.servers_within_quota(usage, flavor, quota, request.min_count, request.max_count)
        rows = []
        for index in range(room):
            name = request.name if request.max_count == 1 else f"{request.name}-{index + 1}"
            now = stamp()
            rows.append({
                "id": str(uuid.uuid4()), "name": name, "project_id": project_id, "user_id": ctx.user_id,
                "flavor": {k: flavor[k] for k in ("id", "name", "vcpus", "ram", "disk", "ephemeral", "swap",
                                                  "extra_specs")},
                "image_id": image["id"] or None, "key_name": request.key_name, "key_data": key_data,
                "user_data": request.user_data, "host": None,
                "availability_zone": zone or self.settings.availability_zone,
                "status": "BUILD", "vm_state": "building", "task_state": "scheduling", "power_state": 0,
                "fault": None, "metadata": request.metadata, "tags": list(request.tags),
                "config_drive": request.config_drive or self.settings.force_config_drive,
                "hostname": core.hostname_for(request.hostname or name), "description": request.description,
                "access_ipv4": request.access_ipv4, "access_ipv6": request.access_ipv6,
                "locked": False, "server_group_id": request.group_id, "networks": request.networks, "ports": [],
                "security_groups": list(request.security_groups), "image_properties": image_props,
                "created_at": now, "updated_at": now, "launched_at": None,
            })
        self.timelines.committed([row["id"] for row in rows], received)  # before the commit spawns builds
        return await self.boot_volumes.record(
            ctx, boot, rows, lambda: self.engine.propose(c.CreateServers(tuple(rows), quota, request.min_count)))

    async def _bootable_image(self, ctx: AuthContext, image_ref: str, flavor: dict[str, Any]) -> dict[str, Any]:
        try:
            image = await self.images.active_image(image_ref, ctx)
        except NotFound:
            raise BadRequest(f"Image {image_ref[:80]} could not be found.") from None
        if image.get("min_ram") and flavor["ram"] < image["min_ram"]:
            raise BadRequest("Flavor's memory is too small for requested image.")
        if image.get("min_disk") and flavor["disk"] < image["min_disk"]:
            raise BadRequest("Flavor's disk is too small for requested image.")
        return image

    async def _key_data(self, user_id: str, key_name: str) -> str:
        row = await self.engine.read(store.get_keypair, user_id, key_name)
        if row is None:
            raise BadRequest("Invalid key_name provided.")
        return row["public_key"]

    def _check_metadata(self, metadata: dict[str, str]) -> None:
        if len(metadata) > self.settings.quota_metadata_items:
            raise Forbidden(f"Quota exceeded for metadata_items: at most {self.settings.quota_metadata_items}.")

    # --- changing -------------------------------------------------------------------------
    async def update(self, server_id: str, changes: dict[str, Any],
                     expect: tuple[str | None, ...] | None = None) -> dict[str, Any]:
        """Change a server's row; with ``expect``, only while its task_state is one of those."""
        changes = {"updated_at": stamp(), **changes}
        return await self.engine.propose(c.UpdateServer(server_id, changes, expect))

    async def update_server(self, ctx: AuthContext, server_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Rename, describe or re-hostname a server the caller may change."""
        server = await self.visible_server(ctx, server_id, write=True)
        if "hostname" in changes:
            changes = {**changes, "hostname": core.hostname_for(changes["hostname"])}
        updated = await self.update(server["id"], changes) if changes else server
        return (await self.addressed([updated]))[0]

    async def edit_metadata(self, ctx: AuthContext, server_id: str, op: str, items: dict[str, str]) -> dict[str, str]:
        """``op`` "merge", "replace" or "delete" (of the keys of ``items``); returns the new metadata."""
        server = await self.visible_server(ctx, server_id, write=True)
        current = server["metadata"]
        if op == "delete":
            missing = [k for k in items if k not in current]
            if missing:
                raise NotFound("Metadata item was not found")
            merged = {k: v for k, v in current.items() if k not in items}
        else:
            merged = dict(items) if op == "replace" else {**current, **items}
            self._check_metadata(merged)
        return (await self.update(server["id"], {"metadata": merged}))["metadata"]

    async def edit_tags(self, ctx: AuthContext, server_id: str, op: str, tags: list[str]) -> tuple[list[str], bool]:
        """``op`` "replace", "add" or "remove"; returns the server's tags and whether they changed."""
        server = await self.visible_server(ctx, server_id, write=True)
        current = server["tags"]
        if op == "replace":
            wanted = list(dict.fromkeys(tags))
        elif op == "add":
            wanted = current + [t for t in tags if t not in current]
            if len(wanted) > 50:
                raise BadRequest("A server has at most 50 tags.")
        else:
            missing = [t for t in tags if t not in current]
            if missing:
                raise NotFound(f"Tag {missing[0][:60]} could not be found.")
            wanted = [t for t in current if t not in tags]
        if op == "replace" or wanted != current:
            await self.update(server["id"], {"tags": wanted})
        return wanted, wanted != current

    # --- scheduling and building ---------------------------------------------------------
    def ratios(self) -> scheduler.Ratios:
        return scheduler.Ratios(self.settings.cpu_allocation_ratio, self.settings.ram_allocation_ratio,
                                self.settings.disk_allocation_ratio, self.settings.reserved_host_memory_mb)

    async def _schedule(self, server: dict[str, Any]) -> dict[str, Any]:
        ratios = self.ratios()
        alive = await self.alive_hosts()
        pinned = self._pinned.pop(server["id"], None)
        preferred = await self.boot_volumes.preferred_hosts(server)  # the node keeping its boot volume
        for attempt in range(5):
            hosts, group = await self.engine.read(_hosts_and_group, server)
            if alive is not None:
                # Hosts of nodes that stopped heartbeating get nothing new.
                hosts = [h if h.name in alive else dataclasses.replace(h, up=False) for h in hosts]
            if pinned:
                hosts = [h for h in hosts if h.name == pinned]
            req = scheduler.request_for(server, group, preferred)
            plan = scheduler.schedule(hosts, req, ratios, self.settings.scheduler_weigher)
            log.info("scheduling", extra={"server_id": server["id"], "candidates": [h.name for h, _ in plan.ranked],
                                          "rejected": plan.rejected, "attempt": attempt})
            if not plan.ranked:
                raise NoValidHost(scheduler.no_valid_host_message(req, plan))
            for host, limits in plan.ranked:
                try:
                    claimed = await self.engine.propose(c.ClaimHost(
                        server["id"], host.name, limits.vcpus, limits.ram_mb, limits.disk_gb, stamp()))
                except Conflict as exc:
                    log.info("claim lost", extra={"server_id": server["id"], "host": host.name, "why": exc.message})
                    continue
                log.info("scheduled", extra={"server_id": server["id"], "host": host.name})
                return claimed
        raise NoValidHost("No valid host was found: every claim lost a race with other boots; try again.")

    async def build(self, server_id: str) -> None:
        """Schedule the server if it has no host yet, then build its guest if the host is this one."""
        timeline = self.timelines.start(server_id)
        async with self.lock(server_id):
            try:
                server = await self.get(server_id)
            except NotFound:
                return
            timeline.step("read")
            unshelving = server["status"] == "SHELVED_OFFLOADED" and server["task_state"] in ("unshelving", "spawning")
            if (server["status"] != "BUILD" and not unshelving) or server["task_state"] == "deleting":
                return
            try:
                if server["host"] is None:
                    server = await self._schedule(server)
                    timeline.step("schedule")
                if server["host"] != self.host:
                    return  # another node builds it
                if unshelving:
                    return await self.lifecycle.build_unshelved(server)
                server = await self._allocate_ports(server)
                timeline.step("allocate_ports")
                await self.boot_volumes.connect(server)  # its volumes, made and connected from here
                timeline.step("volumes")
                timeline.add(await self._spawn(server))
                timeline.log(self.host)
            except Exception as exc:  # noqa: BLE001 - every failure ends in ERROR with a fault
                await (self.lifecycle.unshelve_failed(server_id, exc) if unshelving else self._fail(server_id, exc))

    async def _spawn(self, server: dict[str, Any]) -> dict[str, float]:
        assert self.host_info is not None
        sid = server["id"]
        # A stopped server that is rebuilt stays stopped, as in Nova.
        start = not (server["task_state"] == "rebuild_spawning" and server["vm_state"] == "stopped")

        async def record() -> None:
            await self.update(sid, {**settled(RUNNING if start else SHUTOFF), "launched_at": stamp()},
                              expect=("spawning", "scheduling", "rebuild_spawning"))

        steps = await self.guests.spawn(server, self.host_info.accel, lambda: self.drive_files(server), record, start)
        log.info("server active", extra={"server_id": sid, "host": self.host, "steps_ms": steps})
        return steps

    async def _fail(self, server_id: str, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, CloudboxError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, CloudboxError):
            log.exception("build of %s failed", server_id)
        else:
            log.warning("build failed", extra={"server_id": server_id, "why": message})
        try:
            await self._remove_guest(server_id)
            await self.update(server_id, {
                "status": "ERROR", "vm_state": "error", "task_state": None, "power_state": 0,
                "fault": {"code": 500, "message": message, "created": stamp(),
                          "details": "" if isinstance(exc, CloudboxError) else repr(exc)},
            })
        except NotFound:
            pass

    async def _allocate_ports(self, server: dict[str, Any]) -> dict[str, Any]:
        """The server's ports from the network service (idempotent: a resumed build reuses them)."""
        if server["networks"] == "none":
            return server
        ports = await self.network.allocate_for_server(
            server["id"], server["project_id"], self.host, server["networks"], server["security_groups"],
            server["availability_zone"] or self.settings.availability_zone)
        await self.network.bind_ports_to(ports, self.host)  # an evacuated server's ports move here
        wanted = [{"port_id": p["id"], "network_id": p["network_id"], "mac": p["mac_address"]} for p in ports]
        if wanted == server["ports"]:
            return server
        return await self.update(server["id"], {"ports": wanted})

    async def _remove_guest(self, server_id: str) -> None:
        """Remove the server's guest from this host (its ports stay allocated to the server)."""
        try:
            ports = (await self.get(server_id))["ports"]
        except NotFound:
            ports = []
        await self.guests.remove(server_id, ports)

    async def restart_build(self, server_id: str) -> None:
        """Build again from a clean slate (a build cut short by a crash or a restart)."""
        async with self.lock(server_id):
            await self._remove_guest(server_id)
        await self.build(server_id)

    # --- metadata for guests --------------------------------------------------------------
    async def drive_files(self, server: dict[str, Any]) -> dict[str, bytes]:
        """Every file of the server's config drive; the metadata service serves the same."""
        network_data = await self.engine.read(network_store.network_data, server["id"])
        ipv4 = [n["ip_address"] for n in network_data.get("networks", []) if n.get("type") == "ipv4"]
        meta = self.meta_data(server)
        ec2 = core.build_ec2_meta_data(meta, instance_id=f"i-{server['id'][:8]}",
                                       instance_type=server["flavor"]["name"], local_ipv4=ipv4[0] if ipv4 else "")
        user_data = base64.b64decode(server["user_data"]) if server["user_data"] else None
        return core.config_drive_files(meta, user_data, network_data, None, ec2_meta_data=ec2)

    async def metadata_answer(self, network_id: str, source_ip: str, path: str) -> tuple[int, str, bytes]:
        """The metadata service's answer to the guest at ``source_ip`` on ``network_id``."""
        from cloudbox.network import metadata

        # Anti-spoofing vouches for the source address; the network is the one whose namespace
        # the request came into.
        port = await self.engine.read(network_store.compute_port_at, network_id, source_ip)
        unknown = (404, "text/plain", b"No server has this address on this network.\n")
        if port is None:
            return unknown
        try:
            server = await self.get(port["device_id"])
        except NotFound:
            return unknown
        if server["project_id"] != port["project_id"] or port["id"] not in {p["port_id"] for p in server["ports"]}:
            return unknown  # the port names the server, but the server does not hold the port
        return metadata.respond(await self.drive_files(server), path)

    def meta_data(self, server: dict[str, Any]) -> dict[str, Any]:
        """meta_data.json of a server, as Nova writes it (the metadata service serves the same)."""
        keys = [{"name": server["key_name"], "type": "ssh", "data": server["key_data"]}] if server["key_name"] else []
        return core.build_meta_data(
            uuid=server["id"], name=server["name"], hostname=server["hostname"], project_id=server["project_id"],
            availability_zone=server["availability_zone"] or "", random_seed=os.urandom(512),
            meta=server["metadata"], keys=keys,
        )

    # --- hosts of other nodes ---------------------------------------------------------------
    async def alive_hosts(self) -> set[str] | None:
        """Names of the compute hosts whose nodes are up; None when this node is alone."""
        return await self.resources.alive_hosts()

    async def host_is_down(self, host: str | None) -> bool:
        if host is None:
            return False
        alive = await self.alive_hosts()
        return alive is not None and host not in alive

    async def evacuate(self, server: dict[str, Any], target: str | None) -> None:
        """Rebuild a down host's server elsewhere: same id, ports and addresses, a fresh disk from its image."""
        old = server["host"]
        if old is None or not await self.host_is_down(old):
            raise Conflict(f"Cannot evacuate server {server['id']}: its compute host {old} is up.")
        await self.update(server["id"], {
            "host": None, "status": "BUILD", "vm_state": "building", "task_state": "scheduling",
            "power_state": 0, "fault": None}, expect=(None, "spawning", "scheduling"))
        if target:
            self._pinned[server["id"]] = target
        log.info("evacuating", extra={"server_id": server["id"], "from_host": old, "to_host": target})
        self.spawn(self.build, server["id"])

    # --- deleting ---------------------------------------------------------------------------
    async def delete_server(self, server: dict[str, Any]) -> None:
        """Delete a server: its guest goes in the background; on a down host, only its record
        (Nova's "local delete": that host removes the guest when it returns)."""
        if server["host"] not in (None, self.host) and await self.host_is_down(server["host"]):
            async with self.lock(server["id"]):
                await self.network.deallocate_for_server(server["id"])
                await self.volumes.release_all(server)
                await self.engine.propose(c.DeleteServer(server["id"]))
            log.info("server deleted while its host is down", extra={"server_id": server["id"]})
            return
        self.require_running()
        if server["task_state"] != "deleting":
            await self.update(server["id"], {"task_state": "deleting"})
            self.spawn(self.finish_delete, server["id"])

    async def finish_delete(self, server_id: str) -> None:
        async with self.lock(server_id):
            try:
                server = await self.get(server_id)
            except NotFound:
                return
            if server["host"] in (None, self.host):
                await self.guests.remove(server_id, server["ports"])
                await self.network.deallocate_for_server(server_id)
                await self.volumes.release_all(server)
                await self.engine.propose(c.DeleteServer(server_id))
                await self.lifecycle.forget(server)
                self._locks.pop(server_id, None)
                log.info("server deleted", extra={"server_id": server_id})

    # --- actions ------------------------------------------------------------------------------
    async def power_action(self, server: dict[str, Any], action: str) -> None:
        """Start a power action (``states.POWER_ACTIONS``) in the background.  A start asked for
        while a stop runs is queued behind it: the stop's task runs it when the guest is off."""
        self.require_running()
        spec = POWER_ACTIONS[action]
        sid = server["id"]
        if server["task_state"] is not None and QUEUED_BEHIND.get(spec.task) == server["task_state"]:
            try:
                await self.update(sid, {"task_state": spec.task}, expect=(server["task_state"],))
                log.info("power action queued", extra={"server_id": sid, "action": action,
                                                       "behind": server["task_state"]})
                return
            except Conflict:
                server = await self.get(sid)  # the running action ended meanwhile: act as usual
        if server["task_state"] is not None:
            raise Conflict(f"Cannot '{action}' instance {sid} while it is in task_state {server['task_state']}")
        if server["status"] not in spec.allowed:
            raise Conflict(f"Cannot '{action}' instance {sid} while it is in vm_state {server['vm_state']}")
        await self.update(sid, {"task_state": spec.task}, expect=(None,))
        self.spawn(self._act, sid, spec.task, getattr(self.driver, spec.operation), spec.final)

    async def reset_state(self, server: dict[str, Any], state: str) -> None:
        """Nova's os-resetState: vm_state active or error, no task (the guest is not touched)."""
        await self.update(server["id"], {"status": state.upper(), "vm_state": state, "task_state": None})

    async def trigger_crash_dump(self, server: dict[str, Any]) -> None:
        """Nova's trigger_crash_dump: an NMI to a running guest with no task under way (else 409)."""
        self.require_running()
        if server["status"] != "ACTIVE" or server["task_state"] is not None:
            raise Conflict(f"Cannot 'trigger_crash_dump' instance {server['id']} while it is in vm_state "
                           f"{server['vm_state']} and task_state {server['task_state']}")
        await self.driver.inject_nmi(server["id"])

    async def reboot(self, server: dict[str, Any], hard: bool) -> None:
        self.require_running()
        sid = server["id"]
        allowed = ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "ERROR") if hard else ("ACTIVE",)
        if server["task_state"] is not None:
            raise Conflict(f"Cannot 'reboot' instance {sid} while it is in task_state {server['task_state']}")
        if server["status"] not in allowed:
            raise Conflict(f"Cannot 'reboot' instance {sid} while it is in vm_state {server['vm_state']}")
        task = "rebooting_hard" if hard else "rebooting"
        await self.update(sid, {"task_state": task, "status": "HARD_REBOOT" if hard else "REBOOT"}, expect=(None,))

        async def work(server_id: str) -> None:
            if await self.driver.get_state(server_id) == RUNNING:
                await self.driver.reboot(server_id, hard=hard)
            else:
                await self.driver.start(server_id)

        self.spawn(self._act, sid, task, work, RUNNING)

    async def _act(self, server_id: str, task: str, work: Callable[[str], Awaitable[Any]], final: str) -> None:
        """Run an action whose ``task`` is set already, then every action queued behind it."""
        async with self.lock(server_id):
            next_action: tuple[str, Callable[[str], Awaitable[Any]], str] | None = (task, work, final)
            while next_action is not None:
                next_action = await self._act_once(server_id, *next_action)

    async def _act_once(self, server_id: str, task: str, work: Callable[[str], Awaitable[Any]],
                        final: str) -> tuple[str, Callable[[str], Awaitable[Any]], str] | None:
        """One action and the record of its end; returns the action queued behind it, if any."""
        try:
            await work(server_id)
            changes = settled(final)
        except Exception as exc:  # noqa: BLE001 - the server shows the fault
            log.exception("action %s on %s failed", task, server_id)
            state = await self.driver.get_state(server_id)
            changes = settled(state) if state in STATE_VIEW else {"task_state": None}
            changes["fault"] = {"code": 500, "message": f"{task} failed: {exc}", "created": stamp()}
        try:
            await self.update(server_id, changes, expect=(task,))
            return None
        except NotFound:
            return None
        except Conflict:
            pass
        # The task changed under us: an action queued behind this one, or something else.
        try:
            current = (await self.get(server_id))["task_state"]
        except NotFound:
            return None
        queued = BY_TASK.get(current or "")
        if queued is None or QUEUED_BEHIND.get(queued.task) != task:
            log.warning("action ended after its task changed", extra={"server_id": server_id, "task": task,
                                                                        "now": current})
            return None
        shown = {k: v for k, v in changes.items() if k != "task_state"}  # what this action reached
        await self.update(server_id, shown, expect=(queued.task,))
        return queued.task, getattr(self.driver, queued.operation), queued.final

    async def rebuild(self, ctx: AuthContext, server: dict[str, Any], image_ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Replace the server's disk from ``image_ref`` (and apply ``changes``: name, metadata,
        description, user_data, key_name); the new guest is built in the background."""
        self.require_running()
        try:
            image = await self.images.active_image(image_ref, ctx)
        except NotFound:
            raise BadRequest(f"Image {image_ref[:80]} could not be found.") from None
        image_id = await self.boot_volumes.check_rebuild(server, image)  # a volume-backed one keeps its ""
        if server["task_state"] is not None:
            raise Conflict(f"Cannot 'rebuild' instance {server['id']} while it is in task_state {server['task_state']}")
        if server["status"] not in REBUILD_STATUSES:
            raise Conflict(f"Cannot 'rebuild' instance {server['id']} while it is {server['status']}")
        self._check_metadata(changes.get("metadata") or {})
        changes = dict(changes)
        if "key_name" in changes:
            changes["key_data"] = await self._key_data(ctx.user_id, changes["key_name"]) if changes["key_name"] else None
        updated = await self.update(server["id"], {
            **changes, "image_id": image_id, "status": "REBUILD", "task_state": "rebuilding",
            "vm_state": server["vm_state"]}, expect=(None,))
        self.spawn(self._rebuild, server["id"])
        return (await self.addressed([updated]))[0]

    async def _rebuild(self, server_id: str) -> None:
        async with self.lock(server_id):
            try:
                await self.driver.destroy(server_id)
                self.guests.remove_disk(server_id)
                await self.update(server_id, {"task_state": "rebuild_spawning"})
                await self._spawn(await self.get(server_id))
            except Exception as exc:  # noqa: BLE001 - every failure ends in ERROR with a fault
                await self._fail(server_id, exc)

    async def snapshot(self, ctx: AuthContext, server: dict[str, Any], name: str, metadata: dict[str, Any],
                       backup: tuple[str, int] | None = None) -> str:
        """Start a snapshot of the server's disk into a new image; returns the image id at once.
        A ``backup`` (type, rotation) is a createBackup: once stored, only the newest ``rotation``
        backups of that type of the server are kept."""
        self.require_running()
        if server["task_state"] is not None:
            raise Conflict(f"Cannot 'createImage' instance {server['id']} while it is in task_state "
                           f"{server['task_state']}")
        if server["status"] not in SNAPSHOT_STATUSES:
            raise Conflict(f"Cannot snapshot instance {server['id']} while it is {server['status']}")
        # Nova's order: its properties, then the caller's metadata (which may name an image_type).
        props = {"image_type": "backup" if backup else "snapshot", "base_image_ref": server["image_id"] or "",
                 "user_id": ctx.user_id, **({"backup_type": backup[0]} if backup else {}),
                 **core.snapshot_properties(metadata), "instance_uuid": server["id"]}
        if await self.boot_volumes.volume_backed(server["id"]):
            return await self.boot_volumes.snapshot(ctx, server, name, props, backup is not None)
        await self.update(server["id"], {"task_state": "image_snapshot"}, expect=(None,))
        try:
            image = await self.images.create(ctx, {"name": name, "disk_format": "qcow2", "container_format": "bare",
                                                   "visibility": "private", **props})
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.update(server["id"], {"task_state": None}, expect=("image_snapshot",))
            raise
        self.spawn(self._snapshot, server["id"], image, backup)
        return image["id"]

    async def _rotate_backups(self, server_id: str, newest: str, backup_type: str, rotation: int) -> None:
        """Delete the server's oldest backups of ``backup_type`` beyond the newest ``rotation``
        (``newest``, just made, first: images' created_at are whole seconds, so older backups made
        within one second are in no particular order, as in Glance)."""
        from cloudbox.image.core import ListOptions

        mine = ListOptions(properties={"instance_uuid": server_id, "backup_type": backup_type},
                           sort=(("created_at", "desc"), ("id", "desc")))
        found = await self.images.list(None, mine, None, 1000)
        ordered = [i for i in found if i["id"] == newest] + [i for i in found if i["id"] != newest]
        for image in ordered[rotation:]:
            log.info("backup rotated out", extra={"server_id": server_id, "image_id": image["id"]})
            await self.images.discard(image["id"])

    async def _snapshot(self, server_id: str, image: dict[str, Any], backup: tuple[str, int] | None = None) -> None:
        """Copy the disk into the image; unless the image became active, it is deleted again
        (a failed or cancelled snapshot leaves no queued image behind)."""
        from cloudbox.compute import disks

        tmp = self.guests.instance_dir(server_id) / f"snapshot-{image['id']}.qcow2"
        stored = False
        try:
            async with self.lock(server_id):
                paused = False
                try:
                    # A paused guest writes nothing, so the copy is consistent.
                    if await self.driver.get_state(server_id) == RUNNING:
                        await self.driver.pause(server_id)
                        paused = True
                    await disks.snapshot_to_qcow2(self.guests.instance_dir(server_id) / "disk", tmp)
                finally:
                    if paused:
                        await self.driver.unpause(server_id)
                await self.images.store_file(image, tmp)
                stored = True
                log.info("snapshot stored", extra={"server_id": server_id, "image_id": image["id"]})
            if backup is not None:
                await self._rotate_backups(server_id, image["id"], *backup)
        except Exception:  # noqa: BLE001 - recorded below: the image goes, the task ends
            log.exception("snapshot of %s failed", server_id)
        finally:
            with trio.CancelScope(shield=True):
                tmp.unlink(missing_ok=True)
                if not stored:
                    try:
                        await self.images.discard(image["id"])
                    except CloudboxError as exc:
                        log.warning("failed snapshot's image not deleted", extra={"image_id": image["id"],
                                                                                  "why": exc.message})
                try:
                    await self.update(server_id, {"task_state": None}, expect=("image_snapshot",))
                except (Conflict, NotFound):
                    pass

    async def discard_unfinished_snapshots(self, server_id: str) -> None:
        """Delete the images of this server's snapshots that a stop or a crash cut short (still
        queued or saving): the reconciler's first pass, for a server left in image_snapshot."""
        from cloudbox.image.core import ListOptions

        # By instance_uuid alone: createImage metadata may name another image_type, backups are "backup".
        unfinished = ListOptions(equals={"status": ["queued", "saving"]}, properties={"instance_uuid": server_id})
        for image in await self.images.list(None, unfinished, None, 100):
            log.warning("unfinished snapshot's image deleted", extra={"server_id": server_id, "image_id": image["id"]})
            await self.images.discard(image["id"])

    async def console_output(self, server: dict[str, Any], length: int | None) -> str:
        return await self.guests.console_output(server["id"], length)

    # --- asked by the cluster service ------------------------------------------------------------
    async def host_capacity(self) -> dict[str, Any]:
        """This node's compute host as the cluster reports it: the servers placed on it and, once
        the driver told, its vcpus, memory_mb and disk_gb."""
        out: dict[str, Any] = {"servers": len(await self.servers_on_host(self.host))}
        if self.host_info is not None:
            out.update(vcpus=self.host_info.vcpus, memory_mb=self.host_info.memory_mb, disk_gb=self.host_info.disk_gb)
        return out

    async def servers_on_host(self, host: str) -> list[str]:
        """Ids of the servers placed on compute host ``host``."""
        return await self.engine.read(store.server_ids_on_host, host)

    async def node_of_host(self, host: str) -> str | None:
        """Id of the node that runs compute host ``host`` (None: no such host)."""
        return await self.engine.read(store.host_node_id, host)


def _hosts_and_group(db: Any, server: dict[str, Any]) -> tuple[list[scheduler.HostState], dict[str, Any] | None]:
    """What the scheduler sees: every host with its usage, and the server's group with its hosts."""
    hosts = [scheduler.HostState(
        name=h["name"], vcpus=h["vcpus"], memory_mb=h["memory_mb"], disk_gb=h["disk_gb"],
        used_vcpus=h["usage"]["vcpus"], used_ram_mb=h["usage"]["ram_mb"], used_disk_gb=h["usage"]["disk_gb"],
        availability_zone=h["availability_zone"], enabled=bool(h["enabled"]), hypervisor_type=h["hypervisor_type"],
    ) for h in store.compute_hosts(db)]
    group = store.get_server_group(db, server["server_group_id"]) if server["server_group_id"] else None
    if group is not None:
        group["hosts"] = store.group_hosts(db, group["id"], server["id"])
    return hosts, group

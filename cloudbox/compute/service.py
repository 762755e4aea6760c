"""The compute service: servers from request to running guest, and back.

Server states (Nova's): a request makes a row in BUILD (task "scheduling");
the scheduler claims a host (task "spawning"); the host's build makes the
guest and sets ACTIVE, or ERROR with a fault.  Actions set a task_state while
they run and clear it when the guest reached its new state.  Lifecycle events
from the driver update power state only for servers with no task running.

| status    | vm_state  | set by                                  |
|-----------|-----------|-----------------------------------------|
| BUILD     | building  | create, rebuild                         |
| ACTIVE    | active    | build done, start, reboot, unpause, resume |
| SHUTOFF   | stopped   | stop, guest powered off, crashed or killed |
| PAUSED    | paused    | pause                                   |
| SUSPENDED | suspended | suspend                                 |
| ERROR     | error     | build failed, guest vanished            |
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import secrets
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import trio

from cloudbox.compute import commands as c
from cloudbox.compute import scheduler, store
from cloudbox.compute.driver import CRASHED, PAUSED, RUNNING, SHUTOFF, SUSPENDED, ComputeDriver, DomainSpec
from cloudbox.errors import BadRequest, CloudboxError, Conflict, NotFound, Unavailable
from cloudbox.identity.core import iso

log = logging.getLogger("cloudbox.compute")

DEFAULT_FLAVORS = [
    # id, name, vcpus, ram MB, disk GB: Nova's classic set, plus devstack's small ones for tiny guests.
    ("1", "m1.tiny", 1, 512, 1), ("2", "m1.small", 1, 2048, 20), ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80), ("5", "m1.xlarge", 8, 16384, 160),
    ("42", "m1.nano", 1, 128, 1), ("84", "m1.micro", 1, 192, 1),
]
CONSOLE_READ = 1 << 20  # most of a console log one request returns
CONSOLE_MAX = 8 << 20  # a console log longer than this is cut to its last CONSOLE_READ bytes
BASE_GRACE = 600  # seconds a cached image stays after its last server is gone
STATE_VIEW = {
    # observed domain state → (status, vm_state, power_state)
    RUNNING: ("ACTIVE", "active", 1),
    SHUTOFF: ("SHUTOFF", "stopped", 4),
    PAUSED: ("PAUSED", "paused", 3),
    SUSPENDED: ("SUSPENDED", "suspended", 4),
    # A guest that crashed or whose QEMU was killed is off: the user can start it again.
    CRASHED: ("SHUTOFF", "stopped", 4),
}


def now_iso() -> str:
    return iso(time.time())


def settled(state: str) -> dict[str, Any]:
    status, vm_state, power = STATE_VIEW[state]
    return {"status": status, "vm_state": vm_state, "power_state": power, "task_state": None,
            "updated_at": now_iso()}


class ComputeService:
    def __init__(self, node: Any, driver: ComputeDriver) -> None:
        self.node = node
        self.engine = node.engine
        self.settings = node.settings
        self.driver = driver
        self.host = node.name
        self.instances_dir: Path = node.data_dir.root / "instances"
        self.host_info: Any = None
        self._nursery: trio.Nursery | None = None
        self._locks: dict[str, trio.Lock] = {}
        self.engine.add_listener(self._on_commit)
        self.running = False
        self.unavailable = "the compute service is starting"
        self.ghosts: set[str] = set()  # guests running here that the database places on another host
        self._first_pass = True
        self._pinned: dict[str, str] = {}  # server id → the host an evacuation asked for

    # --- background machinery ---------------------------------------------------------
    def _on_commit(self, cmd: Any, result: Any) -> None:
        if self._nursery is None:
            return
        if isinstance(cmd, c.CreateServer) and self.engine.from_here:
            self.spawn(self._build, cmd.row["id"])  # the node that took the request schedules it
        elif isinstance(cmd, c.ClaimHost) and cmd.host == self.host and not self.engine.from_here:
            self.spawn(self._build, cmd.server_id)  # placed here by another node's scheduler

    def _lock(self, server_id: str) -> trio.Lock:
        return self._locks.setdefault(server_id, trio.Lock())

    def spawn(self, fn: Any, *args: Any) -> None:
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
            await self.report_host()
            await self.ensure_default_flavors()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self.reconcile()
                nursery.start_soon(self._follow_events)
                nursery.start_soon(self._reconcile_periodically)
                self.running = True
                self.unavailable = ""
                task_status.started()
                await trio.sleep_forever()
        finally:
            self.running = False
            self._nursery = None
            with trio.CancelScope(shield=True):
                await self.driver.close()

    async def report_host(self) -> None:
        info = self.host_info
        row = {
            "name": self.host, "node_id": self.node.node_id, "host_ip": self.settings.advertise or "127.0.0.1",
            "vcpus": info.vcpus, "memory_mb": info.memory_mb, "disk_gb": info.disk_gb,
            "hypervisor_type": "KVM" if info.accel == "kvm" else "QEMU",
            "hypervisor_version": info.hypervisor_version, "accel": info.accel,
            "accel_detail": info.accel_detail, "availability_zone": self.settings.availability_zone,
            "enabled": True, "updated_at": now_iso(),
        }
        await self.engine.propose(c.ReportHost(row))
        log.info("compute host reported", extra={"host": self.host, "accel": info.accel,
                                                 "vcpus": info.vcpus, "memory_mb": info.memory_mb})

    async def ensure_default_flavors(self) -> None:
        count = await self.engine.read(lambda db: db.execute("SELECT count(*) FROM flavors").fetchone()[0])
        if count:
            return
        for fid, name, vcpus, ram, disk in DEFAULT_FLAVORS:
            row = {"id": fid, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk, "ephemeral": 0,
                   "swap": 0, "rxtx_factor": 1.0, "is_public": True, "description": None,
                   "extra_specs": {}, "created_at": now_iso()}
            try:
                await self.engine.propose(c.CreateFlavor(row))
            except Conflict:
                pass  # another node made it first

    # --- requests -----------------------------------------------------------------------
    def quota_defaults(self) -> dict[str, int]:
        s = self.settings
        return {"instances": s.quota_instances, "cores": s.quota_cores, "ram": s.quota_ram,
                "key_pairs": s.quota_key_pairs, "metadata_items": s.quota_metadata_items,
                "server_groups": s.quota_server_groups, "server_group_members": s.quota_server_group_members}

    def require_running(self) -> None:
        if not self.running:
            raise Unavailable(f"Compute is unavailable on this node: {self.unavailable}.")

    async def create_server(self, row: dict[str, Any]) -> dict[str, Any]:
        """Record a new server (quota checked in apply); the build follows in the background."""
        self.require_running()
        quota = await self.engine.read(store.quota_limits, row["project_id"], self.quota_defaults())
        return await self.engine.propose(c.CreateServer(row, {k: quota[k] for k in ("instances", "cores", "ram")}))

    async def update(self, server_id: str, changes: dict[str, Any],
                     expect: tuple[str | None, ...] | None = None) -> dict[str, Any]:
        changes = {"updated_at": now_iso(), **changes}
        return await self.engine.propose(c.UpdateServer(server_id, changes, expect))

    async def get(self, server_id: str) -> dict[str, Any]:
        return await self.engine.read(store.must_server, server_id)

    # --- scheduling and building ---------------------------------------------------------
    async def _schedule(self, server: dict[str, Any]) -> dict[str, Any]:
        ratios = scheduler.Ratios(self.settings.cpu_allocation_ratio, self.settings.ram_allocation_ratio,
                                  self.settings.disk_allocation_ratio, self.settings.reserved_host_memory_mb)
        flavor = server["flavor"]
        image_props = server.get("image_properties") or {}
        alive = await self.alive_hosts()
        pinned = self._pinned.pop(server["id"], None)
        for attempt in range(5):
            hosts, group = await self.engine.read(_hosts_and_group, server)
            if alive is not None:
                # Hosts of nodes that stopped heartbeating get nothing new.
                hosts = [h if h.name in alive else dataclasses.replace(h, up=False) for h in hosts]
            if pinned:
                hosts = [h for h in hosts if h.name == pinned]
            req = scheduler.Request(
                vcpus=flavor["vcpus"], ram_mb=flavor["ram"], disk_gb=flavor["disk"] + flavor.get("ephemeral", 0),
                availability_zone=server["availability_zone"],
                image_properties=image_props,
                group_policy=group["policy"] if group else None, group_hosts=tuple(group["hosts"]) if group else (),
            )
            plan = scheduler.schedule(hosts, req, ratios, self.settings.scheduler_weigher)
            log.info("scheduling", extra={"server_id": server["id"], "candidates": [h.name for h, _ in plan.ranked],
                                          "rejected": plan.rejected, "attempt": attempt})
            if not plan.ranked:
                raise NoValidHost(scheduler.no_valid_host_message(req, plan))
            for host, limits in plan.ranked:
                try:
                    claimed = await self.engine.propose(c.ClaimHost(
                        server["id"], host.name, limits.vcpus, limits.ram_mb, limits.disk_gb, now_iso()))
                except Conflict as exc:
                    log.info("claim lost", extra={"server_id": server["id"], "host": host.name, "why": exc.message})
                    continue
                log.info("scheduled", extra={"server_id": server["id"], "host": host.name})
                return claimed
        raise NoValidHost("No valid host was found: every claim lost a race with other boots; try again.")

    async def _build(self, server_id: str) -> None:
        async with self._lock(server_id):
            try:
                server = await self.get(server_id)
            except NotFound:
                return
            if server["status"] != "BUILD" or server["task_state"] == "deleting":
                return
            try:
                if server["host"] is None:
                    started = time.perf_counter()
                    server = await self._schedule(server)
                    log.info("placed", extra={"server_id": server_id, "ms": round((time.perf_counter() - started) * 1000, 1)})
                if server["host"] != self.host:
                    return  # another node builds it
                server = await self._allocate_ports(server)
                await self._spawn(server)
            except Exception as exc:  # noqa: BLE001 - every failure ends in ERROR with a fault
                await self._fail(server_id, exc)

    async def _fail(self, server_id: str, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, CloudboxError) else f"{type(exc).__name__}: {exc}"
        code = 500
        if not isinstance(exc, (CloudboxError,)):
            log.exception("build of %s failed", server_id)
        else:
            log.warning("build failed", extra={"server_id": server_id, "why": message})
        try:
            await self._teardown_guest(server_id)
            await self.update(server_id, {
                "status": "ERROR", "vm_state": "error", "task_state": None, "power_state": 0,
                "fault": {"code": code, "message": message, "created": now_iso(),
                          "details": "" if isinstance(exc, CloudboxError) else repr(exc)},
            })
        except NotFound:
            pass

    def instance_dir(self, server_id: str) -> Path:
        return self.instances_dir / server_id

    def console_log(self, server_id: str) -> Path:
        return self.instance_dir(server_id) / "console.log"

    async def _base_image(self, image_id: str) -> tuple[Path, str, dict[str, Any]]:
        """The image's data on this node, cached under instances/_base (a hard link when possible)."""
        images = self.node.image
        path, image = await images.image_path(image_id, None)
        fmt = image["disk_format"]
        if fmt not in ("qcow2", "raw"):
            raise BadRequest(f"Image {image_id} has disk_format {fmt}; servers boot from qcow2 or raw images.")
        base_dir = self.instances_dir / "_base"
        base_dir.mkdir(parents=True, exist_ok=True)
        cached = base_dir / image_id
        if not cached.exists():
            tmp = base_dir / f".{image_id}.{secrets.token_hex(4)}"
            try:
                os.link(path, tmp)
            except OSError:
                await trio.to_thread.run_sync(shutil.copyfile, path, tmp)
            os.replace(tmp, cached)
        return cached, fmt, image

    async def _spawn(self, server: dict[str, Any]) -> None:
        from cloudbox.compute import disks

        sid = server["id"]
        steps: dict[str, float] = {}
        mark = time.perf_counter()

        def step(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            steps[name] = round((now - mark) * 1000, 1)
            mark = now

        directory = self.instance_dir(sid)
        directory.mkdir(parents=True, exist_ok=True)
        base, fmt, image = await self._base_image(server["image_id"])
        step("image")
        disk = directory / "disk"
        if not disk.exists():
            await disks.create_overlay(base, fmt, disk, server["flavor"]["disk"])
        step("disk")
        drive = None
        if server["config_drive"]:
            drive = directory / "config.iso"
            await disks.build_config_drive(drive, await self.drive_files(server))
        step("config_drive")
        nics = tuple([await self.node.dataplane.bind(p["port_id"]) for p in server["ports"]])
        step("port")
        spec = DomainSpec(
            uuid=sid, name=f"cloudbox-{sid}", vcpus=server["flavor"]["vcpus"], memory_mb=server["flavor"]["ram"],
            root_disk=str(disk), console_log=str(self.console_log(sid)), accel=self.host_info.accel,
            nics=nics, config_drive=str(drive) if drive else None,
            metadata={"server_id": sid, "project_id": server["project_id"], "host": self.host},
        )
        await self.driver.create(spec)
        step("domain")
        await self.update(sid, {**settled(RUNNING), "launched_at": now_iso()}, expect=("spawning", "scheduling", "rebuild_spawning"))
        step("record")
        log.info("server active", extra={"server_id": sid, "host": self.host, "steps_ms": steps})

    async def _allocate_ports(self, server: dict[str, Any]) -> dict[str, Any]:
        """The server's ports from the network service (idempotent: a resumed build reuses them)."""
        if server["networks"] == "none":
            return server
        ports = await self.node.network.allocate_for_server(
            server["id"], server["project_id"], self.host, server["networks"], server["security_groups"],
            server["availability_zone"] or self.settings.availability_zone)
        await self.node.network.bind_ports_to(ports, self.host)  # an evacuated server's ports move here
        wanted = [{"port_id": p["id"], "network_id": p["network_id"], "mac": p["mac_address"]} for p in ports]
        if wanted == server["ports"]:
            return server
        return await self.update(server["id"], {"ports": wanted})

    async def drive_files(self, server: dict[str, Any]) -> dict[str, bytes]:
        """Every file of the server's config drive; the metadata service serves the same."""
        from cloudbox.compute import core
        from cloudbox.network import store as network_store

        network_data = await self.engine.read(network_store.network_data, server["id"])
        ipv4 = [n["ip_address"] for n in network_data.get("networks", []) if n.get("type") == "ipv4"]
        meta = self.meta_data(server)
        ec2 = core.build_ec2_meta_data(meta, instance_id=f"i-{server['id'][:8]}",
                                       instance_type=server["flavor"]["name"], local_ipv4=ipv4[0] if ipv4 else "")
        return core.config_drive_files(meta, _user_data(server), network_data, None, ec2_meta_data=ec2)

    async def metadata_answer(self, network_id: str, source_ip: str, path: str) -> tuple[int, str, bytes]:
        """The metadata service's answer to the guest at ``source_ip`` on ``network_id``."""
        from cloudbox.network import metadata
        from cloudbox.network import store as network_store

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
        from cloudbox.compute import core

        keys = [{"name": server["key_name"], "type": "ssh", "data": server["key_data"]}] if server["key_name"] else []
        return core.build_meta_data(
            uuid=server["id"], name=server["name"], hostname=server["hostname"], project_id=server["project_id"],
            availability_zone=server["availability_zone"] or "", random_seed=os.urandom(512),
            meta=server["metadata"], keys=keys,
        )

    async def _teardown_guest(self, server_id: str) -> None:
        """Remove the guest, its disks and its port from this host; idempotent and best effort:
        a step that fails is logged and the next reconcile pass tries again."""
        try:
            await self.driver.destroy(server_id)
        except Exception:  # noqa: BLE001
            log.exception("could not destroy the domain of %s", server_id)
        try:
            server = await self.get(server_id)
            for port in server["ports"]:
                await self.node.dataplane.unbind(port["port_id"])
        except NotFound:
            pass
        except Exception:  # noqa: BLE001
            log.exception("could not unbind the ports of %s", server_id)
        await trio.to_thread.run_sync(lambda: shutil.rmtree(self.instance_dir(server_id), ignore_errors=True))

    # --- hosts of other nodes ---------------------------------------------------------------
    async def alive_hosts(self) -> set[str] | None:
        """Names of the compute hosts whose nodes are up; None when this node is alone."""
        cluster = self.node.cluster
        if not cluster.clustered:
            return None
        up = {n["id"] for n in await cluster.nodes() if n["up"]}
        rows = await self.engine.read(lambda db: list(db.query("SELECT name, node_id FROM compute_hosts")))
        return {r["name"] for r in rows if r["node_id"] in up}

    async def host_is_down(self, host: str) -> bool:
        alive = await self.alive_hosts()
        return alive is not None and host not in alive

    async def delete_on_down_host(self, server_id: str) -> None:
        """Delete a server whose host is down from the database; that host removes the guest on return."""
        async with self._lock(server_id):
            await self.node.network.deallocate_for_server(server_id)
            await self.engine.propose(c.DeleteServer(server_id))
            log.info("server deleted while its host is down", extra={"server_id": server_id})

    async def evacuate(self, server: dict[str, Any], target: str | None) -> None:
        """Rebuild a down host's server elsewhere: same id, ports and addresses, a fresh disk from its image."""
        old = server["host"]
        await self.update(server["id"], {
            "host": None, "status": "BUILD", "vm_state": "building", "task_state": "scheduling",
            "power_state": 0, "fault": None}, expect=(None, "spawning", "scheduling"))
        if target:
            self._pinned[server["id"]] = target
        log.info("evacuating", extra={"server_id": server["id"], "from_host": old, "to_host": target})
        self.spawn(self._build, server["id"])

    # --- deleting and actions -------------------------------------------------------------
    async def delete_server(self, server_id: str) -> None:
        self.require_running()
        await self.update(server_id, {"task_state": "deleting"})
        self.spawn(self._delete, server_id)

    async def _delete(self, server_id: str) -> None:
        async with self._lock(server_id):
            try:
                server = await self.get(server_id)
            except NotFound:
                return
            if server["host"] in (None, self.host):
                await self._teardown_guest(server_id)
                await self.node.network.deallocate_for_server(server_id)
                await self.engine.propose(c.DeleteServer(server_id))
                self._locks.pop(server_id, None)
                log.info("server deleted", extra={"server_id": server_id})

    async def act(self, server_id: str, task: str, work: Any, final: str | None) -> None:
        """Run an action in the background: ``task`` is set already; ``final`` is the state to settle in."""
        self.require_running()
        async def go() -> None:
            async with self._lock(server_id):
                try:
                    await work()
                    state = final or await self.driver.get_state(server_id) or SHUTOFF
                    await self.update(server_id, settled(state), expect=(task,))
                except Exception as exc:  # noqa: BLE001
                    log.exception("action %s on %s failed", task, server_id)
                    state = await self.driver.get_state(server_id)
                    changes = settled(state) if state in STATE_VIEW else {"task_state": None}
                    changes["fault"] = {"code": 500, "message": f"{task} failed: {exc}", "created": now_iso()}
                    try:
                        await self.update(server_id, changes)
                    except NotFound:
                        pass

        self.spawn(go)

    async def rebuild(self, server_id: str) -> None:
        async def work() -> None:
            await self.driver.destroy(server_id)
            disk = self.instance_dir(server_id) / "disk"
            disk.unlink(missing_ok=True)
            await self.update(server_id, {"task_state": "rebuild_spawning"})
            await self._spawn(await self.get(server_id))

        async def go() -> None:
            async with self._lock(server_id):
                try:
                    await work()
                except Exception as exc:  # noqa: BLE001
                    await self._fail(server_id, exc)

        self.spawn(go)

    async def snapshot(self, ctx: Any, server: dict[str, Any], name: str, metadata: dict[str, str]) -> str:
        """Start a snapshot of the server's disk into a new image; returns the image id at once."""
        images = self.node.image
        props = {k: str(v) for k, v in metadata.items()}
        props.update({"image_type": "snapshot", "instance_uuid": server["id"],
                      "base_image_ref": server["image_id"] or "", "user_id": ctx.user_id})
        await self.update(server["id"], {"task_state": "image_snapshot"}, expect=(None,))
        try:
            image = await images.create(ctx, {"name": name, "disk_format": "qcow2", "container_format": "bare",
                                              "visibility": "private", **props})
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.update(server["id"], {"task_state": None}, expect=("image_snapshot",))
            raise
        self.spawn(self._snapshot, server["id"], image)
        return image["id"]

    async def _snapshot(self, server_id: str, image: dict[str, Any]) -> None:
        from cloudbox.compute import disks

        async with self._lock(server_id):
            tmp = self.instance_dir(server_id) / f"snapshot-{image['id']}.qcow2"
            try:
                paused = False
                try:
                    # A paused guest writes nothing, so the copy is consistent.
                    if await self.driver.get_state(server_id) == RUNNING:
                        await self.driver.pause(server_id)
                        paused = True
                    await disks.snapshot_to_qcow2(self.instance_dir(server_id) / "disk", tmp)
                finally:
                    if paused:
                        await self.driver.unpause(server_id)
                await self.node.image.store_file(image, tmp)
                log.info("snapshot stored", extra={"server_id": server_id, "image_id": image["id"]})
            except Exception:  # noqa: BLE001
                log.exception("snapshot of %s failed", server_id)
                try:
                    await self.node.image.discard(image["id"])
                except CloudboxError:
                    pass
            finally:
                tmp.unlink(missing_ok=True)
                try:
                    await self.update(server_id, {"task_state": None}, expect=("image_snapshot",))
                except (Conflict, NotFound):
                    pass

    async def console_output(self, server_id: str, length: int | None) -> str:
        path = self.console_log(server_id)

        def read() -> str:
            # Only the tail: a chatty guest's log can be large (reconcile keeps it under CONSOLE_MAX).
            try:
                with open(path, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    size = f.tell()
                    f.seek(max(0, size - CONSOLE_READ))
                    text = f.read().decode("utf-8", errors="replace")
            except FileNotFoundError:
                return ""
            lines = text.splitlines(keepends=True)
            return "".join(lines[-length:] if length else lines)

        return await trio.to_thread.run_sync(read)

    # --- observing the host ---------------------------------------------------------------
    async def _follow_events(self) -> None:
        async for server_id, state in self.driver.events():
            try:
                server = await self.get(server_id)
            except NotFound:
                continue
            if server["host"] != self.host or server["task_state"] is not None or state not in STATE_VIEW:
                continue
            if STATE_VIEW[state][0] != server["status"] and server["status"] != "BUILD":
                log.info("guest changed state", extra={"server_id": server_id, "state": state})
                try:
                    await self.update(server_id, settled(state), expect=(None,))
                except (Conflict, NotFound):
                    pass
                except Exception:  # noqa: BLE001 - keep following events
                    log.exception("could not record the state of %s", server_id)

    async def _reconcile_periodically(self) -> None:
        while True:
            await trio.sleep(30)
            try:
                await self.reconcile()
            except Exception:  # noqa: BLE001
                log.exception("reconcile failed")

    async def reconcile(self) -> None:
        """Make this host match the database, and the database match what the host really runs.

        The host is observed first (domains, instance directories) and the database read after,
        so whatever a concurrent request made is either in both or in neither.  Each server is
        then handled under its own lock with its row read afresh; servers with an operation
        under way are left alone.  Interrupted builds are resumed on the first pass only (at
        start, before the API serves): later, a BUILD server always has its build task.
        """
        domains = {d.uuid: d for d in await self.driver.list_domains()}
        directories = await trio.to_thread.run_sync(
            lambda: [p for p in self.instances_dir.iterdir() if p.is_dir()])
        servers = await self.engine.read(lambda db: [store.decode(r) for r in db.query("SELECT * FROM servers")])
        mine = [s for s in servers if s["host"] == self.host]
        by_id = {s["id"]: s for s in servers}
        first_pass, self._first_pass = self._first_pass, False
        for server in mine:
            lock = self._lock(server["id"])
            try:
                lock.acquire_nowait()
            except trio.WouldBlock:
                continue  # an operation is under way
            try:
                await self._reconcile_server(server["id"], domains.get(server["id"]), first_pass)
            except Exception:  # noqa: BLE001 - one server's trouble must not stop the pass
                log.exception("reconcile of %s failed", server["id"])
            finally:
                lock.release()
        ghosts: set[str] = set()
        for sid in domains:
            owner = by_id.get(sid)
            if owner is None:
                log.warning("orphan guest removed", extra={"server_id": sid})
                await self.driver.destroy(sid)
            elif owner["host"] not in (self.host, None) and self.node.cluster.clustered:
                # Evacuated while this node was down: the server runs elsewhere now (Nova does the same).
                log.warning("evacuated guest removed: the server was rebuilt on another host",
                            extra={"server_id": sid, "db_host": owner["host"]})
                await self.driver.destroy(sid)
                await trio.to_thread.run_sync(lambda: shutil.rmtree(self.instance_dir(sid), ignore_errors=True))
            elif owner["host"] not in (self.host, None):
                log.warning("ghost guest: the database places it on another host",
                            extra={"server_id": sid, "db_host": owner["host"]})
                ghosts.add(sid)
        self.ghosts = ghosts
        for path in directories:
            if path.name == "_base":
                await trio.to_thread.run_sync(self._clean_base, {s["image_id"] for s in mine})
            elif path.name not in by_id and path.name not in domains:
                await trio.to_thread.run_sync(lambda p=path: shutil.rmtree(p, ignore_errors=True))
                log.info("orphan instance files removed", extra={"server_id": path.name})
        if first_pass:
            for sid in [s["id"] for s in servers if s["host"] is None and s["status"] == "BUILD"]:
                self.spawn(self._build, sid)

    async def _reconcile_server(self, server_id: str, domain: Any, first_pass: bool) -> None:
        """One server of this host, under its lock."""
        try:
            server = await self.get(server_id)
        except NotFound:
            return
        if server["task_state"] == "deleting":
            self.spawn(self._delete, server_id)
        elif server["status"] == "BUILD":
            if first_pass:
                # A build cut short by a crash or restart: start it again from a clean slate.
                log.info("resuming interrupted build", extra={"server_id": server_id})
                self.spawn(self._rebuild_interrupted, server_id)
        elif domain is None:
            if server["status"] != "ERROR":
                log.warning("guest vanished", extra={"server_id": server_id})
                await self.update(server_id, {
                    "status": "ERROR", "vm_state": "error", "task_state": None, "power_state": 0,
                    "fault": {"code": 500, "created": now_iso(),
                              "message": "The guest disappeared from the hypervisor behind cloudbox's back."},
                }, expect=(server["task_state"],))
        else:
            await trio.to_thread.run_sync(self._trim_console, server_id)
            state = await self.driver.get_state(server_id) or domain.state
            observed = STATE_VIEW.get(state)
            if observed and (observed[0] != server["status"] or server["task_state"] is not None):
                log.info("guest state corrected", extra={"server_id": server_id, "state": state})
                await self.update(server_id, settled(state), expect=(server["task_state"],))

    def _trim_console(self, server_id: str) -> None:
        """Keep a guest from filling the disk through its serial console: QEMU appends (O_APPEND),
        so cutting the file to its tail under it is safe."""
        path = self.console_log(server_id)
        try:
            if path.stat().st_size <= CONSOLE_MAX:
                return
            with open(path, "r+b") as f:
                f.seek(-CONSOLE_READ, os.SEEK_END)
                tail = f.read()
                f.seek(0)
                f.truncate()
                f.write(tail)
            log.info("console log trimmed", extra={"server_id": server_id})
        except FileNotFoundError:
            pass

    def _clean_base(self, in_use: set[str]) -> None:
        """Remove temp files of copies cut short, and cached images no server on this host uses.

        Only files older than BASE_GRACE go: a build that began after the servers were read
        may have just made its cached image.
        """
        cutoff = time.time() - BASE_GRACE
        for path in (self.instances_dir / "_base").iterdir():
            try:
                if path.stat().st_ctime > cutoff:  # ctime: a new hard link counts as new
                    continue
                if path.name.startswith(".") or path.name not in in_use:
                    path.unlink(missing_ok=True)
                    log.info("unused cached image removed", extra={"file": path.name})
            except FileNotFoundError:
                pass

    async def _rebuild_interrupted(self, server_id: str) -> None:
        async with self._lock(server_id):
            await self._teardown_guest(server_id)
        await self._build(server_id)



class NoValidHost(CloudboxError):
    status = 500
    title = "No valid host"


def _user_data(server: dict[str, Any]) -> bytes | None:
    if not server["user_data"]:
        return None
    return base64.b64decode(server["user_data"])


def _hosts_and_group(db: Any, server: dict[str, Any]) -> tuple[list[scheduler.HostState], dict[str, Any] | None]:
    hosts = []
    for row in db.query("SELECT * FROM compute_hosts ORDER BY name"):
        usage = store.host_usage(db, row["name"])
        hosts.append(scheduler.HostState(
            name=row["name"], vcpus=row["vcpus"], memory_mb=row["memory_mb"], disk_gb=row["disk_gb"],
            used_vcpus=usage["vcpus"], used_ram_mb=usage["ram_mb"], used_disk_gb=usage["disk_gb"],
            availability_zone=store.host_zone(db, row), enabled=bool(row["enabled"]),
            hypervisor_type=row["hypervisor_type"],
        ))
    group = None
    if server["server_group_id"]:
        g = store.one(db, "SELECT * FROM server_groups WHERE id = ?", [server["server_group_id"]])
        if g:
            g["hosts"] = [r["host"] for r in db.query(
                "SELECT DISTINCT host FROM servers WHERE server_group_id = ? AND host IS NOT NULL AND id != ?",
                [g["id"], server["id"]])]
            group = g
    return hosts, group


def new_server_id() -> str:
    return str(uuid.uuid4())

"""Nova's lifecycle actions on the libvirt driver: rescue/unrescue, shelve/shelveOffload/unshelve,
resize/migrate with confirmResize/revertResize.

The states each action moves through are in ``states`` (its second table).  Each request checks
the server's status and task (409 otherwise), records the action's first task, and the guest's
host does the work in the background under the server's lock; every step that fails leaves the
server in ERROR with a fault, as Nova does for a failed rescue or resize.

- rescue: the guest is stopped and defined anew to boot a rescue disk (an overlay of the rescue
  image, the server's own by default) with its own disk attached second (vdb); unrescue defines
  it again on its own disk and drops the rescue disk.
- shelve: the guest is stopped, its disk stored as the image "<name>-shelved" (image service),
  then offloaded at once (Nova's default shelved_offload_time of 0): guest, taps and files go,
  the server has no host and uses none of its resources.  unshelve schedules it again (into
  another availability zone or onto a host when asked, from 2.77 and 2.91), makes its disk from
  the shelved image, boots it, and deletes the image.
- resize: the guest is stopped, its disk kept aside (``disk.resize-orig``), grown when the new
  flavor's is bigger, and the guest defined anew with the new flavor (started if it was running):
  VERIFY_RESIZE.  confirmResize drops the copy; revertResize brings it back with the old flavor.
  The server's row carries the new flavor from the start (quotas follow it) and the old one in
  ``lifecycle`` until the end.  A migration row records each resize and migrate (os-migrations).
- migrate: a cold migration to another host the scheduler picks (or an admin names, 2.56): the
  resize path with the same flavor, where the disk travels as a transfer image (see "cold
  migration to another node" below).  One host (a single node): Nova's 400 "No valid host".
"""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import TYPE_CHECKING, Any

import trio

from cloudbox.compute import apply_lifecycle, disks, scheduler, store
from cloudbox.compute import commands as cu
from cloudbox.compute import commands_lifecycle as c
from cloudbox.compute.driver import RUNNING, SHUTOFF
from cloudbox.compute.resources import stamp
from cloudbox.compute.states import settled
from cloudbox.errors import BadRequest, CloudboxError, Conflict, NotFound

if TYPE_CHECKING:
    from cloudbox.compute.service import ComputeService
    from cloudbox.identity.core import AuthContext

log = logging.getLogger("cloudbox.compute")

STOP_TIMEOUT = 30  # seconds a guest has to power off cleanly before it is switched off
RESCUE_DISK = "disk.rescue"
RESIZE_ORIG = "disk.resize-orig"
RESCUE_STATUSES = ("ACTIVE", "SHUTOFF", "ERROR")
SHELVE_STATUSES = ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED")
END_STATE = {"active": RUNNING, "stopped": SHUTOFF}  # a resize ends as the server was


def refuse(action: str, server: dict[str, Any], statuses: tuple[str, ...]) -> None:
    """Nova's 409 for an action asked of a server with a task under way or in another state."""
    if server["task_state"] is not None:
        raise Conflict(f"Cannot '{action}' instance {server['id']} while it is in task_state {server['task_state']}")
    if server["status"] not in statuses:
        raise Conflict(f"Cannot '{action}' instance {server['id']} while it is in vm_state {server['vm_state']}")


class Lifecycle:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    # --- shared steps ---------------------------------------------------------------------------
    async def _update(self, server_id: str, changes: dict[str, Any], expect: tuple[str | None, ...] | None = None
                      ) -> dict[str, Any]:
        return await self.svc.update(server_id, changes, expect)

    async def _migration(self, migration_id: int | None, status: str, **changes: Any) -> None:
        if migration_id is not None:
            await self.svc.engine.propose(c.UpdateMigration(migration_id, {
                "status": status, "updated_at": stamp(), **changes}))

    async def _power_off(self, server_id: str) -> str | None:
        """Stop the guest cleanly (switched off after STOP_TIMEOUT); its state before (None: no domain)."""
        state = await self.svc.driver.get_state(server_id)
        if state is not None and state != SHUTOFF:
            await self.svc.driver.stop(server_id, graceful=state == RUNNING, timeout=STOP_TIMEOUT)
        return state

    async def _failed(self, server_id: str, task: str, exc: BaseException) -> None:
        """A lifecycle step failed: ERROR with the fault, as Nova leaves a failed rescue or resize."""
        log.exception("%s of %s failed", task, server_id)
        message = exc.message if isinstance(exc, CloudboxError) else f"{type(exc).__name__}: {exc}"
        try:
            await self._update(server_id, {"status": "ERROR", "vm_state": "error", "task_state": None,
                                           "fault": {"code": 500, "message": f"{task} failed: {message}",
                                                     "created": stamp()}})
        except NotFound:
            pass

    def _accel(self) -> str:
        assert self.svc.host_info is not None
        return self.svc.host_info.accel

    # --- rescue -----------------------------------------------------------------------------------
    async def rescue(self, ctx: AuthContext, server: dict[str, Any], image_ref: str | None) -> None:
        """Boot the server from a rescue disk (its own image's, or ``image_ref``'s), its disk second."""
        self.svc.require_running()
        refuse("rescue", server, RESCUE_STATUSES)
        ref = image_ref or server["image_id"]
        if not ref:
            raise BadRequest("Cannot rescue a volume-backed instance.")
        try:
            image = await self.svc.images.active_image(ref, ctx)
        except NotFound:
            raise BadRequest(f"Image {ref[:80]} could not be found.") from None
        lifecycle = {**server["lifecycle"], "rescue_image_id": image["id"]}
        await self._update(server["id"], {"task_state": "rescuing", "lifecycle": lifecycle}, expect=(None,))
        self.svc.spawn(self._rescue, server["id"])

    async def _rescue(self, server_id: str) -> None:
        async with self.svc.lock(server_id):
            try:
                server = await self.svc.get(server_id)
                await self._power_off(server_id)
                directory = self.svc.guests.instance_dir(server_id)
                rescue_disk = directory / RESCUE_DISK
                rescue_disk.unlink(missing_ok=True)
                base, fmt = await self.svc.guests.base_image(server["lifecycle"]["rescue_image_id"])
                await disks.create_overlay(base, fmt, rescue_disk, server["flavor"]["disk"])
                await self.svc.guests.redefine(server, self._accel(), root=RESCUE_DISK, extra_disks=("disk",))
                await self._update(server_id, {"status": "RESCUE", "vm_state": "rescued", "power_state": 1,
                                               "task_state": None}, expect=("rescuing",))
                log.info("server rescued", extra={"server_id": server_id})
            except Exception as exc:  # noqa: BLE001 - the server shows the fault
                await self._failed(server_id, "rescue", exc)

    async def unrescue(self, server: dict[str, Any]) -> None:
        self.svc.require_running()
        refuse("unrescue", server, ("RESCUE",))
        await self._update(server["id"], {"task_state": "unrescuing"}, expect=(None,))
        self.svc.spawn(self._unrescue, server["id"])

    async def _unrescue(self, server_id: str) -> None:
        async with self.svc.lock(server_id):
            try:
                server = await self.svc.get(server_id)
                await self.svc.driver.destroy(server_id)
                await self.svc.guests.redefine(server, self._accel())
                (self.svc.guests.instance_dir(server_id) / RESCUE_DISK).unlink(missing_ok=True)
                lifecycle = {k: v for k, v in server["lifecycle"].items() if k != "rescue_image_id"}
                await self._update(server_id, {**settled(RUNNING), "lifecycle": lifecycle}, expect=("unrescuing",))
            except Exception as exc:  # noqa: BLE001
                await self._failed(server_id, "unrescue", exc)

    # --- shelve -----------------------------------------------------------------------------------
    async def shelve(self, ctx: AuthContext, server: dict[str, Any]) -> None:
        """Store the server's disk as "<name>-shelved" and offload it (no host, no guest)."""
        self.svc.require_running()
        refuse("shelve", server, SHELVE_STATUSES)
        await self._update(server["id"], {"task_state": "shelving"}, expect=(None,))
        try:
            image = await self.svc.images.create(ctx, {
                "name": f"{server['name']}-shelved", "disk_format": "qcow2", "container_format": "bare",
                "visibility": "private", "image_type": "snapshot", "instance_uuid": server["id"],
                "base_image_ref": server["image_id"] or "", "user_id": ctx.user_id})
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._update(server["id"], {"task_state": None}, expect=("shelving",))
            raise
        self.svc.spawn(self._shelve, server["id"], image)

    async def _shelve(self, server_id: str, image: dict[str, Any]) -> None:
        directory = self.svc.guests.instance_dir(server_id)
        tmp = directory / f"shelve-{image['id']}.qcow2"
        stored = False
        async with self.svc.lock(server_id):
            try:
                await self._power_off(server_id)
                await self._update(server_id, {"task_state": "shelving_image_uploading"})
                await disks.snapshot_to_qcow2(directory / "disk", tmp)
                await self.svc.images.store_file(image, tmp)
                stored = True
                server = await self._update(server_id, {
                    "status": "SHELVED", "vm_state": "shelved", "power_state": 4,
                    "task_state": "shelving_offloading",
                    "lifecycle": {"shelved_image_id": image["id"]}})
                await self._offload(server)
            except Exception as exc:  # noqa: BLE001
                await self._failed(server_id, "shelve", exc)
            finally:
                with trio.CancelScope(shield=True):
                    tmp.unlink(missing_ok=True)
                    if not stored:
                        try:
                            await self.svc.images.discard(image["id"])
                        except CloudboxError:
                            log.warning("shelved image not deleted", extra={"image_id": image["id"]})

    async def _offload(self, server: dict[str, Any]) -> None:
        """The guest, its taps and files go from this host; the server keeps its ports."""
        await self.svc.guests.remove(server["id"], server["ports"])
        await self._update(server["id"], {"status": "SHELVED_OFFLOADED", "vm_state": "shelved_offloaded",
                                          "power_state": 0, "task_state": None, "host": None},
                           expect=("shelving_offloading",))
        log.info("server shelved and offloaded", extra={"server_id": server["id"]})

    async def shelve_offload(self, server: dict[str, Any]) -> None:
        self.svc.require_running()
        refuse("shelveOffload", server, ("SHELVED",))
        await self._update(server["id"], {"task_state": "shelving_offloading"}, expect=(None,))

        async def offload() -> None:
            async with self.svc.lock(server["id"]):
                try:
                    await self._offload(await self.svc.get(server["id"]))
                except Exception as exc:  # noqa: BLE001
                    await self._failed(server["id"], "shelveOffload", exc)

        self.svc.spawn(offload)

    async def unshelve(self, server: dict[str, Any], zone: tuple[bool, str | None], host: str | None) -> None:
        """Boot a shelved server again; ``zone`` (given, value): a new availability zone (None: any),
        ``host``: the host an administrator named (2.91)."""
        self.svc.require_running()
        refuse("unshelve", server, ("SHELVED", "SHELVED_OFFLOADED"))
        given, name = zone
        if (given or host) and server["status"] != "SHELVED_OFFLOADED":
            raise Conflict(f"The server {server['id']} is not shelved offloaded: it cannot move to another "
                           "availability zone or host.")
        if given and name is not None and name not in await self.svc.engine.read(store.zones):
            raise BadRequest(f"The requested availability zone is not available: {name[:255]}.")
        if host is not None:
            hosts = {h["name"]: h for h in await self.svc.engine.read(store.compute_hosts)}
            if host not in hosts:
                raise BadRequest(f"Compute host {host[:255]} could not be found.")
            wanted = name if given else server["availability_zone"]
            if wanted is not None and hosts[host]["availability_zone"] != wanted:
                raise BadRequest(f"Host '{host}' is not in availability zone '{wanted[:255]}'.")
        changes: dict[str, Any] = {"task_state": "unshelving"}
        if given:
            changes["availability_zone"] = name
        await self._update(server["id"], changes, expect=(None,))
        if host is not None:
            self.svc._pinned[server["id"]] = host  # noqa: SLF001 - the scheduler's pin, as evacuate uses it
        self.svc.spawn(self.svc.build, server["id"])

    async def build_unshelved(self, server: dict[str, Any]) -> None:
        """On the host the scheduler chose (under the server's lock): its disk from the shelved
        image, its guest, and the image deleted."""
        sid = server["id"]
        image_id = server["lifecycle"].get("shelved_image_id")
        try:
            server = await self.svc._allocate_ports(server)  # noqa: SLF001 - the build's own step
            directory = self.svc.guests.instance_dir(sid)
            directory.mkdir(parents=True, exist_ok=True)
            if image_id:
                base, _fmt = await self.svc.guests.base_image(image_id)
                await disks.snapshot_to_qcow2(base, directory / "disk")
            await self.svc._spawn(server)  # noqa: SLF001
        except Exception as exc:  # noqa: BLE001 - back to SHELVED_OFFLOADED, as Nova leaves a failed unshelve
            log.exception("unshelve of %s failed", sid)
            await self.svc.guests.remove(sid, server["ports"])
            message = exc.message if isinstance(exc, CloudboxError) else f"{type(exc).__name__}: {exc}"
            await self._update(sid, {"status": "SHELVED_OFFLOADED", "vm_state": "shelved_offloaded", "host": None,
                                     "task_state": None, "power_state": 0,
                                     "fault": {"code": 500, "message": f"unshelve failed: {message}",
                                               "created": stamp()}})
            return
        zone = {}
        if server["availability_zone"] is None:  # unpinned at 2.91: it shows its new host's zone
            zone = {"availability_zone": next(h["availability_zone"] for h in await self.svc.engine.read(
                store.compute_hosts) if h["name"] == self.svc.host)}
        await self._update(sid, {"lifecycle": {}, **zone})
        await self._discard_image(image_id)

    async def unshelve_failed(self, server_id: str, exc: BaseException) -> None:
        """Scheduling found no host: the server stays offloaded, with the fault (Nova's NoValidHost)."""
        message = exc.message if isinstance(exc, CloudboxError) else f"{type(exc).__name__}: {exc}"
        await self._update(server_id, {"task_state": None, "host": None,
                                       "fault": {"code": 500, "message": message, "created": stamp()}})

    async def _discard_image(self, image_id: str | None) -> None:
        if not image_id:
            return
        try:
            await self.svc.images.discard(image_id)
        except CloudboxError as exc:
            log.warning("shelved image not deleted", extra={"image_id": image_id, "why": exc.message})

    async def forget(self, server: dict[str, Any]) -> None:
        """A deleted server's shelved image goes with it (as Nova deletes it)."""
        await self._discard_image(server["lifecycle"].get("shelved_image_id"))

    # --- resize and migrate -----------------------------------------------------------------------
    async def resize(self, ctx: AuthContext, server: dict[str, Any], flavor_ref: str) -> None:
        self.svc.require_running()
        refuse("resize", server, apply_lifecycle.RESIZE_STATUSES)
        flavor = await self.svc.resources.bootable_flavor(ctx, server["project_id"], flavor_ref)
        old = server["flavor"]
        if flavor["id"] == old["id"]:
            raise BadRequest("When resizing, instances must change flavor!")
        image_disk = not await self.svc.boot_volumes.volume_backed(server["id"])  # Nova's rules of root disks
        if flavor["disk"] == 0 and old["disk"] != 0 and image_disk:
            raise BadRequest("Resize to zero disk flavor is not allowed.")
        if (flavor["disk"] < old["disk"] and image_disk) or flavor.get("ephemeral", 0) < old.get("ephemeral", 0):
            raise BadRequest("Resize error: Unable to resize disk down.")
        # Nova's order: the quota (403), then the scheduler (400); apply checks the quota again.
        limits = await self.svc.resources.quota_limits(server["project_id"])
        usage = await self.svc.engine.read(store.project_usage, server["project_id"])
        store.check_quota(usage, apply_lifecycle.growth(old, flavor), limits)
        await self._check_room(server, flavor)
        await self._start(ctx, server, flavor, "resize", server["host"])

    async def _check_room(self, server: dict[str, Any], flavor: dict[str, Any]) -> None:
        """A resize stays on its host: the host must have room for what the new flavor adds (else
        Nova's 400, as its scheduler answers)."""
        from cloudbox.compute.service import _hosts_and_group

        hosts, _group = await self.svc.engine.read(_hosts_and_group, server)
        host = next((h for h in hosts if h.name == server["host"]), None)
        if host is None:
            return
        limits, old = scheduler.limits_for(host, self.svc.ratios()), server["flavor"]

        def disk(f: dict[str, Any]) -> int:
            return f["disk"] + f.get("ephemeral", 0)

        if (host.used_vcpus + flavor["vcpus"] - old["vcpus"] > limits.vcpus
                or host.used_ram_mb + flavor["ram"] - old["ram"] > limits.ram_mb
                or host.used_disk_gb + disk(flavor) - disk(old) > limits.disk_gb):
            raise BadRequest(f"No valid host was found. Host {host.name} has no room for flavor {flavor['name']}.")

    async def migrate(self, ctx: AuthContext, server: dict[str, Any], host: str | None) -> None:
        """A cold migration: the scheduler picks another host; with none, Nova's 400."""
        self.svc.require_running()
        refuse("migrate", server, apply_lifecycle.RESIZE_STATUSES)
        hosts = {h["name"]: h for h in await self.svc.engine.read(store.compute_hosts)}
        if host is not None:
            if host not in hosts:
                raise BadRequest(f"Compute host {host[:255]} could not be found.")
            if host == server["host"]:
                raise BadRequest(f"Unable to migrate instance ({server['id']}) to current host ({host}).")
        alive = await self.svc.alive_hosts()
        others = {n for n, h in hosts.items() if n != server["host"] and h["enabled"]
                  and (alive is None or n in alive) and (host is None or n == host)}
        if not others:
            raise BadRequest("No valid host was found. No valid host found for cold migrate")
        dest = await self._pick_host(server, others)
        await self._start(ctx, server, server["flavor"], "migration", dest)

    async def _pick_host(self, server: dict[str, Any], candidates: set[str]) -> str:
        """The scheduler's best host among ``candidates`` for the server as it is (Nova's 400 if none)."""
        from cloudbox.compute.service import _hosts_and_group

        hosts, group = await self.svc.engine.read(_hosts_and_group, server)
        req = scheduler.request_for(server, group)
        plan = scheduler.schedule([h for h in hosts if h.name in candidates], req, self.svc.ratios(),
                                  self.svc.settings.scheduler_weigher)
        if not plan.ranked:
            raise BadRequest(f"No valid host was found. {scheduler.no_valid_host_message(req, plan)}")
        return plan.ranked[0][0].name

    async def _start(self, ctx: AuthContext, server: dict[str, Any], flavor: dict[str, Any], kind: str,
                     dest: str | None) -> None:
        limits = await self.svc.resources.quota_limits(server["project_id"])
        keep = ("id", "name", "vcpus", "ram", "disk", "ephemeral", "swap", "extra_specs")
        dest_ip = await self.svc.engine.read(_host_ip, dest)
        await self.svc.engine.propose(c.StartResize(
            server["id"], {k: flavor[k] for k in keep}, {
                "uuid": str(uuid.uuid4()), "migration_type": kind, "dest_compute": dest, "dest_host": dest_ip,
                "user_id": ctx.user_id}, {k: limits[k] for k in ("cores", "ram")}, stamp()))
        self.svc.spawn(self._resize if dest == server["host"] else self._migrate_out, server["id"], ctx)

    async def _resize(self, server_id: str, ctx: AuthContext | None = None) -> None:
        async with self.svc.lock(server_id):
            server = await self.svc.get(server_id)
            migration = server["lifecycle"].get("migration_id")
            directory = self.svc.guests.instance_dir(server_id)
            try:
                await self._update(server_id, {"task_state": "resize_migrating"}, expect=("resize_prep",))
                await self._migration(migration, "migrating")
                await self._power_off(server_id)
                image_disk = (directory / "disk").exists()  # none when booted from a volume
                if image_disk:
                    await disks.copy_disk(directory / "disk", directory / RESIZE_ORIG)
                await self._update(server_id, {"task_state": "resize_migrated"}, expect=("resize_migrating",))
                await self._migration(migration, "post-migrating")
                if image_disk:
                    await disks.grow(directory / "disk", server["flavor"]["disk"])
                await self._update(server_id, {"task_state": "resize_finish"}, expect=("resize_migrated",))
                started = server["lifecycle"]["old_vm_state"] == "active"
                await self.svc.guests.redefine(server, self._accel(), start=started)
                await self._update(server_id, {"status": "VERIFY_RESIZE", "vm_state": "resized", "task_state": None,
                                               "power_state": 1 if started else 4}, expect=("resize_finish",))
                await self._migration(migration, "finished")
                log.info("server resized", extra={"server_id": server_id, "flavor": server["flavor"]["id"]})
            except Exception as exc:  # noqa: BLE001
                await self._migration(migration, "error")
                await self._failed(server_id, "resize", exc)

    async def confirm_resize(self, server: dict[str, Any]) -> None:
        """The new flavor stays; the old disk goes (Nova's 204)."""
        self.svc.require_running()
        refuse("confirmResize", server, ("VERIFY_RESIZE",))
        lifecycle = server["lifecycle"]
        await self._update(server["id"], {**settled(END_STATE[lifecycle.get("old_vm_state", "active")]),
                                          "lifecycle": {}}, expect=(None,))
        await self._migration(lifecycle.get("migration_id"), "confirmed")
        await trio.to_thread.run_sync(
            (self.svc.guests.instance_dir(server["id"]) / RESIZE_ORIG).unlink, True)

    async def revert_resize(self, server: dict[str, Any]) -> None:
        """Back to the old flavor and the old disk."""
        self.svc.require_running()
        refuse("revertResize", server, ("VERIFY_RESIZE",))
        await self._update(server["id"], {"status": "REVERT_RESIZE", "task_state": "resize_reverting"},
                           expect=(None,))
        await self._migration(server["lifecycle"].get("migration_id"), "reverting")
        self.svc.spawn(self._revert, server["id"])

    async def _revert(self, server_id: str) -> None:
        async with self.svc.lock(server_id):
            server = await self.svc.get(server_id)
            lifecycle = server["lifecycle"]
            directory = self.svc.guests.instance_dir(server_id)
            try:
                if lifecycle.get("source_host") not in (None, self.svc.host):
                    return await self._revert_out(server)
                await self.svc.driver.destroy(server_id)
                if (directory / RESIZE_ORIG).exists():  # a volume-backed server kept no disk aside
                    await trio.to_thread.run_sync(lambda: (directory / RESIZE_ORIG).replace(directory / "disk"))
                server = await self._update(server_id, {"flavor": lifecycle["old_flavor"]})
                await self._reverted(server, lifecycle)
            except Exception as exc:  # noqa: BLE001
                await self._migration(lifecycle.get("migration_id"), "error")
                await self._failed(server_id, "revertResize", exc)

    # --- cold migration to another node --------------------------------------------------------------
    # The source node stores the stopped guest's disk as a transfer image and hands the server to the
    # destination (host and task "resize_migrated" in one update); the destination, told by that
    # commit, makes the disk from the image and defines the guest: VERIFY_RESIZE.  The source keeps
    # its files until confirmResize (then removes them) or revertResize (the destination removes its
    # guest and hands the server back with task "resize_reverting"; the source defines it again).
    def on_commit(self, cmd: Any) -> None:
        """A committed command that asks this node for a cold migration's next step."""
        if isinstance(cmd, cu.UpdateServer) and cmd.changes.get("host") == self.svc.host:
            task = cmd.changes.get("task_state")
            if task == "resize_migrated":
                self.svc.spawn(self._migrate_in, cmd.id)
            elif task == "resize_reverting":
                self.svc.spawn(self._revert_in, cmd.id)
        elif isinstance(cmd, c.UpdateMigration) and cmd.changes.get("status") == "confirmed":
            self.svc.spawn(self._confirmed, cmd.id)

    async def _handed_here(self, server_id: str, task: str) -> dict[str, Any] | None:
        """The server, if it was handed to this host with ``task`` and nothing moved it since."""
        try:
            server = await self.svc.get(server_id)
        except NotFound:
            return None
        return server if server["host"] == self.svc.host and server["task_state"] == task else None

    async def _migrate_out(self, server_id: str, ctx: AuthContext) -> None:
        async with self.svc.lock(server_id):
            server = await self.svc.get(server_id)
            lifecycle = server["lifecycle"]
            migration = lifecycle.get("migration_id")
            row = await self.svc.engine.read(apply_lifecycle.get_migration, migration)
            directory = self.svc.guests.instance_dir(server_id)
            image: dict[str, Any] | None = None
            try:
                await self._update(server_id, {"task_state": "resize_migrating"}, expect=("resize_prep",))
                await self._migration(migration, "migrating")
                await self._power_off(server_id)
                image = await self.svc.images.create(ctx, {
                    "name": f"{server['name']}-migrating", "disk_format": "qcow2", "container_format": "bare",
                    "visibility": "private", "image_type": "snapshot", "instance_uuid": server_id})
                tmp = directory / f"migrate-{image['id']}.qcow2"
                try:
                    await disks.snapshot_to_qcow2(directory / "disk", tmp)
                    await self.svc.images.store_file(image, tmp)
                finally:
                    tmp.unlink(missing_ok=True)
                await self.svc.driver.destroy(server_id)  # its files stay here until confirm or revert
                for port in server["ports"]:
                    await self.svc.guests.dataplane.unbind(port["port_id"])
                await self._migration(migration, "post-migrating")
                await self._update(server_id, {
                    "host": row["dest_compute"], "task_state": "resize_migrated",
                    "lifecycle": {**lifecycle, "transfer_image_id": image["id"]}}, expect=("resize_migrating",))
                log.info("server handed to its new host", extra={"server_id": server_id, "to": row["dest_compute"]})
            except Exception as exc:  # noqa: BLE001
                if image is not None:
                    await self._discard_image(image["id"])
                await self._migration(migration, "error")
                await self._failed(server_id, "migrate", exc)

    async def _migrate_in(self, server_id: str) -> None:
        async with self.svc.lock(server_id):
            server = await self._handed_here(server_id, "resize_migrated")
            if server is None:
                return
            lifecycle = server["lifecycle"]
            try:
                server = await self._update(server_id, {"task_state": "resize_finish"}, expect=("resize_migrated",))
                server = await self.svc._allocate_ports(server)  # noqa: SLF001 - the build's own step
                directory = self.svc.guests.instance_dir(server_id)
                directory.mkdir(parents=True, exist_ok=True)
                base, _fmt = await self.svc.guests.base_image(lifecycle["transfer_image_id"])
                await disks.snapshot_to_qcow2(base, directory / "disk")
                started = lifecycle["old_vm_state"] == "active"

                async def record() -> None:
                    await self._update(server_id, {"status": "VERIFY_RESIZE", "vm_state": "resized",
                                                   "task_state": None, "power_state": 1 if started else 4},
                                       expect=("resize_finish",))

                await self.svc.guests.spawn(server, self._accel(), lambda: self.svc.drive_files(server), record,
                                            started)
                await self._migration(lifecycle.get("migration_id"), "finished")
                await self._update(server_id, {"lifecycle": {k: v for k, v in lifecycle.items()
                                                             if k != "transfer_image_id"}})
                log.info("server migrated here", extra={"server_id": server_id})
            except Exception as exc:  # noqa: BLE001
                await self._migration(lifecycle.get("migration_id"), "error")
                await self._failed(server_id, "migrate", exc)
            finally:
                await self._discard_image(lifecycle.get("transfer_image_id"))

    async def _revert_out(self, server: dict[str, Any]) -> None:
        """revertResize of a migration, on its destination: the guest goes, the source takes it back."""
        await self.svc.guests.remove(server["id"], server["ports"])
        await self._update(server["id"], {"host": server["lifecycle"]["source_host"],
                                          "task_state": "resize_reverting"}, expect=("resize_reverting",))

    async def _revert_in(self, server_id: str) -> None:
        async with self.svc.lock(server_id):
            server = await self._handed_here(server_id, "resize_reverting")
            if server is None:
                return
            lifecycle = server["lifecycle"]
            try:
                server = await self.svc._allocate_ports(server)  # noqa: SLF001 - its ports come back here
                await self._reverted(server, lifecycle)
            except Exception as exc:  # noqa: BLE001
                await self._migration(lifecycle.get("migration_id"), "error")
                await self._failed(server_id, "revertResize", exc)

    async def _reverted(self, server: dict[str, Any], lifecycle: dict[str, Any]) -> None:
        """A reverted server (old flavor and disk back) runs again as it was before the resize."""
        state = END_STATE[lifecycle.get("old_vm_state", "active")]
        await self.svc.guests.redefine(server, self._accel(), start=state == RUNNING)
        await self._update(server["id"], {**settled(state), "lifecycle": {}}, expect=("resize_reverting",))
        await self._migration(lifecycle.get("migration_id"), "reverted")

    async def _confirmed(self, migration_id: int) -> None:
        """A confirmed migration's source drops the files it kept (the server runs elsewhere)."""
        row = await self.svc.engine.read(apply_lifecycle.get_migration, migration_id)
        if row is None or row["source_compute"] != self.svc.host or row["dest_compute"] == self.svc.host:
            return
        async with self.svc.lock(row["server_id"]):
            try:
                if (await self.svc.get(row["server_id"]))["host"] == self.svc.host:
                    return
            except NotFound:
                pass
            await self.svc.guests.remove_files(row["server_id"])

    # --- os-migrations ----------------------------------------------------------------------------
    async def migrations(self, filters: dict[str, Any], marker: str | None, limit: int) -> list[dict[str, Any]]:
        if marker is not None and not await self.svc.engine.read(apply_lifecycle.migration_marker_exists, marker):
            raise BadRequest(f"Marker {marker[:80]} could not be found.")
        return await self.svc.engine.read(apply_lifecycle.list_migrations, filters, marker, limit)


def _host_ip(db: Any, host: str | None) -> str | None:
    row = store.one(db, "SELECT host_ip FROM compute_hosts WHERE name = ?", [host]) if host else None
    return row["host_ip"] if row else None


def rescue_password(given: Any) -> str:
    """Nova's rescue answers the password given, or one it made (12 characters)."""
    if given is None:
        return secrets.token_urlsafe(9)
    if not isinstance(given, str):
        raise BadRequest("rescue's adminPass must be a string.")
    return given


"""Boot from volume, compute's side: the volumes of a create request made, reserved, connected.

The request path (the caller's context, so the volume service authorises as it would the
caller), in ``ComputeService.create_servers``:

1. ``prepare``: the disks parsed (boot_volumes.py) are checked against the cloud (Nova's
   _validate_bdm's second half): each volume, snapshot and image exists and the caller sees it
   (else Nova's 400 ``failed to get volume/snapshot/image``), an existing volume is available
   (400) and a root volume bootable (400); the root's image properties feed the scheduler.
2. ``record``: holding each new server's lock (so its build, spawned when CreateServers
   commits, waits), existing volumes are reserved for it before the servers are recorded (a
   refusal is a 400 and nothing is left), then the servers are recorded, the other volumes are
   asked of the volume service (from an image, a snapshot, or blank: ``creating`` on this node)
   and the mappings (``block_device_mappings``) recorded ``building``.  A server whose volumes
   cannot be made goes to ERROR with the reason, as Nova's build does.

The build (``connect``, on the chosen host, before the guest is defined): each mapping's volume
is awaited until available (a volume in error fails the build), reserved if it was made here,
connected with this host's connector, completed (in-use) and the mapping ``attached`` with its
connection_info: the guest's definition then carries it (guests.py, ``volumes.disks_of``), the
root one as vda with no image disk.

Also here: the scheduler's preference (the node that keeps the boot volume), createImage of a
volume-backed server (a snapshot of each volume, and an image without data whose properties list
them, as Nova makes it), and Nova's refusal to rebuild a volume-backed server with another image.
Detaching at delete, and deleting the volumes marked delete_on_termination, is the attach side's
(volumes.py), as for any attached volume.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import trio

from cloudbox.compute import boot_volumes as bv
from cloudbox.compute import commands_volumes as cv
from cloudbox.compute.apply_volumes import bdms_of
from cloudbox.compute.resources import stamp
from cloudbox.compute.volumes import OnBehalf
from cloudbox.errors import BadRequest, CloudboxError, Conflict, NotFound, Unavailable

if TYPE_CHECKING:
    from cloudbox.compute.models import ServerRequest
    from cloudbox.compute.service import ComputeService
    from cloudbox.identity.core import AuthContext

log = logging.getLogger("cloudbox.compute")

VOLUME_WAIT = 900.0  # seconds a build waits for a volume made from an image (TCG hosts copy slowly)
SNAPSHOT_WAIT = 900.0
RECHECK = 5.0  # seconds between reads when no commit woke the waiter (a missed wake-up costs this)
# The status of a create's mapping until its server's build connected it (then ``attached``): not
# ``attaching``, which the attach side's recovery at start undoes; a build cut short by a restart
# is resumed (``connect`` again) instead.
BUILDING = "building"


@dataclass
class Prepared:
    """A create's disks, checked: what the rows and the volume service need."""

    request: bv.BootRequest
    image: dict[str, Any]  # the root image ({"id": "", "properties": ...} for a volume-backed root)
    devices: list[str] = field(default_factory=list)  # /dev/vdX of each of request.volumes
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # existing volume id → volume


class BootVolumes:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        self._changed = trio.Event()
        svc.engine.add_listener(self._on_commit)

    def _on_commit(self, cmd: Any, result: Any) -> None:
        if type(cmd).__module__.startswith(("cloudbox.volume", "cloudbox.compute")):
            self._changed.set()  # a volume, snapshot or server changed: waiters read again
            self._changed = trio.Event()

    def _volume_service(self) -> Any:
        if self.svc.volume_service is None:
            raise Unavailable("Volumes are unavailable on this node: no volume service.")
        return self.svc.volume_service

    # --- the request -----------------------------------------------------------------------------
    async def prepare(self, ctx: AuthContext, request: ServerRequest, flavor: dict[str, Any]) -> Prepared:
        """The create's disks checked against the cloud; ``image`` is the server's image (its id
        "" for a volume-backed root) with the properties the scheduler reads."""
        boot = request.boot or bv.BootRequest(request.image_ref)
        image: dict[str, Any] = {"id": "", "properties": {}}
        if not boot.volume_backed:
            image = await self.svc._bootable_image(ctx, boot.image_ref, flavor)
            defined = bv.image_defined(image.get("properties") or {})
            if defined:  # a volume-backed server's image: volumes from its snapshots
                boot = bv.check(bv.with_image_defined(boot, defined), request.max_count)
        prepared = Prepared(boot, image)
        if not boot.volumes:
            return prepared
        volumes = self._volume_service()
        for device in boot.volumes:
            if device.source_type == "volume":
                volume = await self._existing_volume(ctx, str(device.uuid))
                if device.is_root and not volume["bootable"]:
                    raise BadRequest(f"Block Device {volume['id']} is not bootable.")
                prepared.volumes[volume["id"]] = volume
                if device.is_root:
                    prepared.image = {**image, "properties": dict(volume.get("image_metadata") or {})}
            elif device.source_type == "snapshot":
                try:
                    await volumes.get_snapshot(ctx, str(device.uuid))
                except NotFound:
                    raise bv.invalid(f"failed to get snapshot {device.uuid}.") from None
            elif device.source_type == "image":
                try:
                    made_from = await self.svc.images.active_image(str(device.uuid), ctx)
                except (NotFound, Conflict):
                    raise bv.invalid(f"failed to get image {device.uuid}.") from None
                min_disk = int(made_from.get("min_disk") or 0)
                if device.volume_size is not None and min_disk > device.volume_size:
                    raise BadRequest(f"Volume is smaller than the minimum size specified in image metadata. Volume "
                                     f"size is {device.volume_size << 30} bytes, minimum size is {min_disk << 30} "
                                     f"bytes.")
                if device.is_root:
                    if made_from.get("min_ram") and flavor["ram"] < made_from["min_ram"]:
                        raise BadRequest("Flavor's memory is too small for requested image.")
                    prepared.image = {**image, "properties": made_from.get("properties") or {}}
        prepared.devices = bv.device_names(boot)
        return prepared

    async def _existing_volume(self, ctx: AuthContext, volume_id: str) -> dict[str, Any]:
        try:
            volume = await self._volume_service().get(ctx, volume_id)
        except NotFound:
            raise bv.invalid(f"failed to get volume {volume_id}.") from None
        if volume["status"] != "available":
            raise BadRequest(f"Invalid volume: volume '{volume_id}' status must be 'available'. Currently in "
                             f"'{volume['status']}'")
        return volume

    async def record(self, ctx: AuthContext, prepared: Prepared, rows: list[dict[str, Any]],
                     propose: Callable[[], Awaitable[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
        """Record the servers (``propose``) with their volumes: existing ones reserved first (a
        refusal is the request's 400), then the servers, then the volumes to make."""
        request = prepared.request
        if not request.volumes:
            return await propose()
        attach = self._volume_service().attach
        async with contextlib.AsyncExitStack() as held:
            for row in rows:  # each build waits for its mappings
                await held.enter_async_context(self.svc.lock(row["id"]))
            reserved: dict[str, dict[str, Any]] = {}
            try:
                for device in request.volumes:
                    if device.source_type == "volume":  # max_count is 1 (boot_volumes.check)
                        reserved[str(device.uuid)] = await attach.reserve(ctx, str(device.uuid), rows[0]["id"])
                created = await propose()
            except BaseException:
                with trio.CancelScope(shield=True):
                    for attachment in reserved.values():
                        await self._forget_attachment(attachment["id"])
                    for row in rows:
                        self.svc._locks.pop(row["id"], None)
                raise
            for server in created:
                try:
                    await self._map(ctx, prepared, server, reserved)
                except CloudboxError as exc:
                    log.warning("volumes of a new server not made", extra={"server_id": server["id"], "why": exc.message})
                    for attachment in reserved.values():  # no mapping names them: the server's delete would not
                        await self._forget_attachment(attachment["id"])
                    await self.svc.update(server["id"], {
                        "status": "ERROR", "vm_state": "error", "task_state": None,
                        "fault": {"code": exc.status, "message": f"Build of instance {server['id']} aborted: "
                                                                 f"{exc.message}", "created": stamp()}})
        return created

    async def _map(self, ctx: AuthContext, prepared: Prepared, server: dict[str, Any],
                   reserved: dict[str, dict[str, Any]]) -> None:
        """One server's mappings: the volumes to make are asked for, then every row recorded; on a
        failure the volumes made for it are deleted again."""
        bdm_rows: list[dict[str, Any]] = []
        made: list[str] = []
        try:
            await self._make(ctx, prepared, server, reserved, bdm_rows, made)
            await self.svc.engine.propose(cv.CreateBlockDevices(tuple(bdm_rows)))
        except BaseException:
            if made:  # no volume of this server is left unmapped (they are deleted once made)
                self.svc.spawn(self._delete_when_made, ctx, made)
            raise

    async def _delete_when_made(self, ctx: AuthContext, volume_ids: list[str]) -> None:
        volumes = self._volume_service()
        for volume_id in volume_ids:
            try:
                with trio.move_on_after(VOLUME_WAIT):
                    while True:
                        changed = self._changed
                        if (await volumes.get(ctx, volume_id))["status"] not in ("creating", "downloading"):
                            break
                        with trio.move_on_after(RECHECK):
                            await changed.wait()
                await volumes.delete(ctx, volume_id)
            except CloudboxError as exc:
                log.warning("volume of a failed server not deleted", extra={"volume_id": volume_id, "why": exc.message})

    async def _make(self, ctx: AuthContext, prepared: Prepared, server: dict[str, Any],
                    reserved: dict[str, dict[str, Any]], bdm_rows: list[dict[str, Any]], made: list[str]) -> None:
        volumes = self._volume_service()
        for device, name in zip(prepared.request.volumes, prepared.devices):
            attachment_id = None
            if device.source_type == "volume":
                volume_id = str(device.uuid)
                attachment_id = reserved[volume_id]["id"]
                size = prepared.volumes[volume_id]["size"]
            else:
                body: dict[str, Any] = {"name": "", "size": device.volume_size}
                if device.source_type == "image":
                    body["imageRef"] = device.uuid
                elif device.source_type == "snapshot":
                    body["snapshot_id"] = device.uuid
                if device.volume_type:
                    body["volume_type"] = device.volume_type
                volume = await volumes.create(ctx, body)
                volume_id, size = volume["id"], volume["size"]
                made.append(volume_id)
            bdm_rows.append({
                "id": str(uuid.uuid4()), "server_id": server["id"], "project_id": server["project_id"],
                "volume_id": volume_id, "attachment_id": attachment_id, "source_type": device.source_type,
                "destination_type": "volume", "boot_index": device.boot_index, "device_name": name,
                "device_type": device.device_type or "disk", "disk_bus": device.disk_bus or "virtio",
                "volume_size": size, "image_id": device.uuid if device.source_type == "image" else None,
                "snapshot_id": device.uuid if device.source_type == "snapshot" else None, "tag": device.tag,
                "delete_on_termination": device.delete_on_termination, "status": BUILDING,
                "connection_info": {}, "created_at": stamp(), "updated_at": None,
            })

    async def _forget_attachment(self, attachment_id: str) -> None:
        try:
            await self._volume_service().attach.detach(None, attachment_id)
        except CloudboxError as exc:
            log.warning("reservation not rolled back", extra={"attachment_id": attachment_id, "why": exc.message})

    # --- scheduling and building -----------------------------------------------------------------
    async def mappings(self, server_id: str) -> list[dict[str, Any]]:
        """The server's volume mappings, root first."""
        return [b for b in await self.svc.engine.read(bdms_of, server_id) if b["destination_type"] == "volume"]

    async def volume_backed(self, server_id: str) -> bool:
        return any(b["boot_index"] == 0 for b in await self.mappings(server_id))

    async def preferred_hosts(self, server: dict[str, Any]) -> tuple[str, ...]:
        """The nodes that keep the server's volumes, its root's first: its guest reaches them
        locally there (elsewhere it would need an NBD export)."""
        if self.svc.volume_service is None:
            return ()
        owner = OnBehalf(server["project_id"])
        hosts: list[str] = []
        for bdm in await self.mappings(server["id"]):
            try:
                host = (await self.svc.volume_service.get(owner, bdm["volume_id"]))["host"]
            except NotFound:
                continue
            if host and host not in hosts:
                hosts.append(host)
        return tuple(hosts)

    async def connect(self, server: dict[str, Any]) -> None:
        """Every volume of the server in its guest's reach from this host (before the guest is
        defined): awaited, reserved, connected, completed; its mapping ``attached``."""
        pending = [b for b in await self.mappings(server["id"]) if b["status"] == BUILDING]
        if not pending:
            return
        attach = self._volume_service().attach
        owner = OnBehalf(server["project_id"])
        for bdm in pending:
            # Each step may have run already (a build cut short by a restart resumes here).
            found = (await attach.of_volumes([bdm["volume_id"]]))[bdm["volume_id"]]
            attachment = next((a for a in found if a["instance_uuid"] == server["id"]), None)
            if attachment is None:
                await self._wait_available(owner, bdm, server["id"])
                attachment = await attach.reserve(None, bdm["volume_id"], server["id"])
            if bdm["attachment_id"] != attachment["id"]:
                await self.svc.engine.propose(cv.UpdateBlockDevice(bdm["id"], {"attachment_id": attachment["id"]}))
            if attachment["attach_status"] == "attached":
                info = await attach.connection(None, attachment["id"])
            else:
                connector = {"host": self.svc.host, "mountpoint": bdm["device_name"]}
                info = (await attach.connect(None, attachment["id"], connector))["connection_info"]
                await attach.complete(None, attachment["id"])
            await self.svc.engine.propose(cv.UpdateBlockDevice(bdm["id"], {
                "status": "attached", "connection_info": info, "updated_at": stamp()}))
            log.info("boot volume connected", extra={"server_id": server["id"], "volume_id": bdm["volume_id"],
                                                     "device": bdm["device_name"]})

    async def _wait_available(self, owner: OnBehalf, bdm: dict[str, Any], server_id: str) -> None:
        """Until the mapping's volume, made for the server, is available (a server deleted
        meanwhile ends the wait: its delete waits for the build)."""
        volume_id = bdm["volume_id"]
        with trio.fail_after(VOLUME_WAIT):
            while True:
                changed = self._changed
                if (await self.svc.get(server_id))["task_state"] == "deleting":
                    raise Conflict(f"Server {server_id} was deleted while its volume {volume_id} was being made.")
                volume = await self._volume_service().get(owner, volume_id)
                if volume["status"] == "available":
                    return
                if volume["status"] not in ("creating", "downloading"):
                    why = volume.get("message") or f"it is {volume['status']}"
                    raise Unavailable(f"Volume {volume_id} did not finish being created: {why}.")
                with trio.move_on_after(RECHECK):
                    await changed.wait()

    # --- actions on volume-backed servers ------------------------------------------------------------
    async def refuse_volume_backed(self, server: dict[str, Any], action: str) -> None:
        """Rescue (Nova's 400 before 2.87), shelve, migrate and evacuate move or copy the image
        disk, which a volume-backed server has not: refused (409) rather than left half-done. (A
        resize stays on its host and keeps the volume: it works.)"""
        if not await self.volume_backed(server["id"]):
            return
        if action == "rescue":
            raise BadRequest("Cannot rescue a volume-backed instance.")
        raise Conflict(f"Cannot '{action}' instance {server['id']}: cloudbox does not {action} volume-backed "
                       f"servers yet.")

    async def check_rebuild(self, server: dict[str, Any], image: dict[str, Any]) -> str | None:
        """Nova (below 2.93, and cloudbox at every version: it does not reimage volumes) rebuilds a
        volume-backed server only with the image its root volume came from; the image the server
        records then: ``image``'s, or a volume-backed server's own (None when it showed "")."""
        root = next((b for b in await self.mappings(server["id"]) if b["boot_index"] == 0), None)
        if root is None:
            return str(image["id"])
        volume = await self._volume_service().get(OnBehalf(server["project_id"]),
                                                   root["volume_id"])
        if (volume.get("image_metadata") or {}).get("image_id") != image["id"]:
            raise BadRequest(f"Image {image['id']} is unacceptable: Unable to rebuild with a different image for a "
                             f"volume-backed server.")
        return server["image_id"]

    async def snapshot(self, ctx: AuthContext, server: dict[str, Any], name: str, properties: dict[str, Any],
                       backup: bool = False) -> str:
        """createImage of a volume-backed server: a snapshot of each of its volumes (forced: they
        are in use) and an image with no data whose properties list them (block_device_mapping,
        bdm_v2 True), as Nova makes it; the image is active once every snapshot is."""
        if backup:
            raise BadRequest("Backup is not supported for volume-backed instances.")
        mappings = await self.mappings(server["id"])
        volumes = self._volume_service()
        await self.svc.update(server["id"], {"task_state": "image_snapshot"}, expect=(None,))
        snapshots: list[dict[str, Any]] = []
        image: dict[str, Any] | None = None
        try:
            listed = []
            for bdm in mappings:
                snapshot = await volumes.create_snapshot(ctx, {"volume_id": bdm["volume_id"], "force": True,
                                                               "name": f"snapshot for {name}"})
                snapshots.append(snapshot)
                listed.append(bv.image_mapping(bdm, snapshot["id"], snapshot["size"]))
            image = await self.svc.images.create(ctx, {
                "name": name, "disk_format": "raw", "container_format": "bare", "visibility": "private",
                **properties, **bv.snapshot_image_properties(listed)})
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._end_snapshot(server["id"], None, False)
            raise
        self.svc.spawn(self._finish_snapshot, ctx, server["id"], image, [s["id"] for s in snapshots])
        return str(image["id"])

    async def _finish_snapshot(self, ctx: AuthContext, server_id: str, image: dict[str, Any],
                               snapshot_ids: list[str]) -> None:
        stored = False
        try:
            with trio.fail_after(SNAPSHOT_WAIT):
                for snapshot_id in snapshot_ids:
                    while True:
                        changed = self._changed
                        snapshot = await self._volume_service().get_snapshot(ctx, snapshot_id)
                        if snapshot["status"] == "available":
                            break
                        if snapshot["status"] != "creating":
                            raise Unavailable(f"Snapshot {snapshot_id} is {snapshot['status']}.")
                        with trio.move_on_after(RECHECK):
                            await changed.wait()
            with tempfile.TemporaryDirectory() as scratch:  # no data: Nova's zero-length upload
                empty = Path(scratch) / "empty"
                empty.touch()
                await self.svc.images.store_file(image, empty)
            stored = True
            log.info("volume-backed snapshot stored", extra={"server_id": server_id, "image_id": image["id"]})
        except Exception:  # noqa: BLE001 - the image goes, the task ends
            log.exception("snapshot of volume-backed server %s failed", server_id)
        finally:
            with trio.CancelScope(shield=True):
                await self._end_snapshot(server_id, image, stored)

    async def _end_snapshot(self, server_id: str, image: dict[str, Any] | None, stored: bool) -> None:
        if image is not None and not stored:
            try:
                await self.svc.images.discard(image["id"])
            except CloudboxError as exc:
                log.warning("failed snapshot's image not deleted", extra={"image_id": image["id"], "why": exc.message})
        try:
            await self.svc.update(server_id, {"task_state": None}, expect=("image_snapshot",))
        except (Conflict, NotFound):
            pass

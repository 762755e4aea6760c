"""Volumes of servers (Nova's os-volume_attachments and block device mappings), compute's side.

The volume service keeps volumes and their attachments; compute keeps which volume is which
disk of which server (``block_device_mappings``, apply_volumes.py) and puts the disk in the
guest.  An attach is synchronous in the request (the volume is in-use when it answers):

1. the API checks the server (state, lock) and the volume (visible; not attached to this
   server; available, or in-use and multiattach from 2.60);
2. ``reserve`` at the volume service: an attachment, the volume reserved (refused there, 400,
   when the volume cannot take it: nothing changed);
3. a mapping is recorded ``attaching`` (apply refuses, 409, a server whose state changed or a
   device name taken meanwhile; the reservation is then rolled back);
4. on the server's node: ``connect`` (the connection_info), the driver's ``attach_disk`` (live
   and persistent when the guest runs, the definition only when it is stopped), ``complete``
   (the volume in-use), the mapping ``attached``.  A failure here detaches the disk, deletes
   the attachment (``detach``) and the mapping: nothing is left half-made.

A detach answers at once (202, as Nova's) with the mapping ``detaching`` and the volume
``detaching``; in the background, under the server's lock, the driver's ``detach_disk`` waits
until the guest released the disk, then ``detach`` at the volume service (available) and the
mapping goes.  A guest that keeps the disk rolls back: mapping ``attached``, volume in-use.

Deleting a server (``release_all``) forgets its attachments after its guest is gone and deletes
the volumes marked delete_on_termination.  ``disks_of`` is what a (re)definition of the guest
carries, so rebuild, resize, rescue and unshelve keep the disks (reboot, stop/start and hard
reboot keep them through the persistent definition).
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from cloudbox.compute import commands_records as cr
from cloudbox.compute import commands_volumes as v
from cloudbox.compute import volume_swap
from cloudbox.compute.apply_volumes import bdms_of, bdms_of_many, bdms_of_volume, bdms_on_host
from cloudbox.compute.driver import VolumeDisk
from cloudbox.compute.resources import stamp
from cloudbox.errors import BadRequest, CloudboxError, Conflict, NotFound, Unavailable

if TYPE_CHECKING:
    from cloudbox.compute.service import ComputeService

log = logging.getLogger("cloudbox.compute")

# Nova's allowed vm_states for attach_volume / detach_volume (and no task), less soft_deleted
# (cloudbox has no soft delete); the shelved ones from 2.20 (a shelved-offloaded server's volume is
# connected for the node that takes the request, and its guest gets the disk when it is unshelved).
VOLUME_VM_STATES = ("active", "paused", "stopped", "resized")
SHELVED_VM_STATES = ("shelved", "shelved_offloaded")
DEVICE_LETTERS = "bcdefghijklmnopqrstuvwxyz"  # vda is the root disk
DEVICE = re.compile(r"^/dev/(x?[a-z]?d?)([a-z]+)[0-9]*$")  # Nova's schema for a requested device
DETACH_TIMEOUT = 180.0  # seconds a guest has to release a disk (a booting guest is asked again)
RECOVER_WAIT = 60.0  # seconds recovery waits for the volume service to start


@dataclass(frozen=True)
class OnBehalf:
    """The caller the volume service sees when compute acts for a server's owner without a
    request (deleting the volumes of a server being deleted): that project, no more."""

    project_id: str
    is_cloud_admin: bool = False
    is_cloud_reader: bool = False

    def can_read_project(self, project_id: str | None) -> bool:
        return project_id == self.project_id

    def can_write_project(self, project_id: str | None) -> bool:
        return project_id == self.project_id


def device_target(device_name: str) -> str:
    """``/dev/vdb`` → ``vdb``."""
    return device_name.rsplit("/", 1)[-1]


def choose_device(taken: set[str], requested: str | None) -> str:
    """The device of a new disk: the requested /dev/vdX when it is free, else the first free
    /dev/vdX after vda (Nova's libvirt driver does not honour a requested name at all)."""
    if requested:
        match = DEVICE.match(requested)
        if match is None:
            raise BadRequest(f"The supplied device path ({requested[:40]}) is invalid.")
        wanted = f"vd{match.group(2)}"
        if match.group(1) == "vd" and wanted != "vda" and wanted not in taken:
            return f"/dev/{wanted}"
    for letter in DEVICE_LETTERS:
        if f"vd{letter}" not in taken:
            return f"/dev/vd{letter}"
    raise BadRequest("The server has no free device name left for another volume.")


def volume_disk(bdm: dict[str, Any]) -> VolumeDisk:
    """The driver's view of a mapping that has its connection_info."""
    return VolumeDisk(volume_id=bdm["volume_id"], target=device_target(bdm["device_name"]),
                      connection_info=bdm["connection_info"], boot_index=bdm["boot_index"])


def attached_view(bdms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A server's volumes as its show lists them (os-extended-volumes:volumes_attached)."""
    return [{"id": b["volume_id"], "delete_on_termination": b["delete_on_termination"]}
            for b in bdms if b["volume_id"]]


def allowed_states(shelved_ok: bool) -> tuple[str, ...]:
    return VOLUME_VM_STATES + (SHELVED_VM_STATES if shelved_ok else ())


def check_state(server: dict[str, Any], action: str, shelved_ok: bool = True) -> None:
    """Nova's check_instance_state for attach_volume / detach_volume (409); a shelved server only
    from 2.20 (``shelved_ok``)."""
    if server["task_state"] is not None:
        raise Conflict(f"Cannot '{action}' instance {server['id']} while it is in task_state {server['task_state']}")
    if server["vm_state"] not in allowed_states(shelved_ok):
        raise Conflict(f"Cannot '{action}' instance {server['id']} while it is in vm_state {server['vm_state']}")


class ComputeVolumes:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        svc.engine.add_listener(self._on_commit)

    def _on_commit(self, cmd: Any, result: Any) -> None:
        """A volume grew: the node that runs the guest resizes its disk.  Heard two ways, on every
        node: ``extended`` (Nova's volume-extended event) recorded the size on the mapping, or the
        volume service settled an in-use volume with a new size (its extend's end)."""
        if not self.svc.running or not isinstance(result, dict):
            return
        if isinstance(cmd, v.UpdateBlockDevice) and "volume_size" in cmd.changes:
            self.svc.spawn(self._resize_disk, result["server_id"], result["id"])
        elif (cmd.TYPE == "volume.transition" and "size" in getattr(cmd, "changes", {})
              and result.get("status") == "in-use"):
            self.svc.spawn(self._volume_grew, result["id"], int(result["size"]))

    @property
    def service(self) -> Any:
        """The volume service (server.py hands it to compute)."""
        found = self.svc.volume_service
        if found is None:
            raise Unavailable("The volume service is not available on this node.")
        return found

    # --- reading ---------------------------------------------------------------------------------
    async def of_server(self, server_id: str) -> list[dict[str, Any]]:
        return await self.svc.engine.read(bdms_of, server_id)

    async def of_servers(self, server_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        return await self.svc.engine.read(bdms_of_many, server_ids)

    async def mapping(self, server: dict[str, Any], volume_id: str) -> dict[str, Any]:
        """The server's mapping of ``volume_id`` (404, Nova's words, when it has none)."""
        for bdm in await self.of_server(server["id"]):
            if bdm["volume_id"] == volume_id:
                return bdm
        raise NotFound(f"Instance {server['id']} is not attached to volume {volume_id[:80]}.")

    async def disks_of(self, server_id: str) -> tuple[VolumeDisk, ...]:
        """The volume disks a definition of the server's guest carries: its mappings that reached
        the guest (attached, or on their way out) and have a connection_info."""
        rows = await self.of_server(server_id)
        return tuple(volume_disk(b) for b in rows
                     if b["volume_id"] and b["status"] in ("attached", "detaching") and b["connection_info"]
                     and b["device_name"])

    # --- attaching -------------------------------------------------------------------------------
    async def attach(self, ctx: Any, server: dict[str, Any], volume_id: str, *, device: str | None = None,
                     tag: str | None = None, delete_on_termination: bool = False,
                     multiattach_ok: bool = True, shelved_ok: bool = True) -> dict[str, Any]:
        """Attach the caller's volume to the server (see the module's steps); the mapping."""
        svc = self.svc
        svc.require_running()
        volume = await self.service.get(ctx, volume_id)  # 404 unless the caller sees it
        check_state(server, "attach_volume", shelved_ok)
        if volume["multiattach"] and not multiattach_ok:
            raise BadRequest("Multiattach volumes are only supported starting with compute API version 2.60.")
        if volume["multiattach"] and server["vm_state"] == "shelved_offloaded":
            raise BadRequest("Attaching multiattach volumes is not supported for shelved-offloaded instances.")
        async with svc.lock(server["id"]):
            server = await svc.get(server["id"])
            check_state(server, "attach_volume", shelved_ok)
            bdms = await self.of_server(server["id"])
            if any(b["volume_id"] == volume_id for b in bdms):
                raise BadRequest(f"Invalid volume: volume {volume_id} already attached to instance {server['id']}.")
            if volume["status"] != "available" and not (volume["multiattach"] and volume["status"] == "in-use"):
                raise BadRequest(f"Invalid volume: volume '{volume_id}' status must be 'available'. Currently in "
                                 f"'{volume['status']}'.")
            taken = {device_target(b["device_name"]) for b in bdms if b["device_name"]} | {"vda"}
            device_name = choose_device(taken, device)
            attachment = await self.service.attach.reserve(None, volume_id, server["id"])
            at = stamp()
            row = {"id": str(uuid.uuid4()), "server_id": server["id"], "project_id": server["project_id"],
                   "volume_id": volume_id, "attachment_id": attachment["id"], "source_type": "volume",
                   "destination_type": "volume", "boot_index": None, "device_name": device_name,
                   "device_type": "disk", "disk_bus": "virtio", "volume_size": volume["size"], "image_id": None,
                   "snapshot_id": None, "tag": tag, "delete_on_termination": delete_on_termination,
                   "status": "attaching", "connection_info": {}, "created_at": at, "updated_at": at}
            try:
                [bdm] = await svc.engine.propose(v.CreateBlockDevices((row,), allowed_states(shelved_ok)))
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._forget_attachment(attachment["id"])
                raise
            return await self._connect(server, bdm, bool(volume["multiattach"]))

    async def _connect(self, server: dict[str, Any], bdm: dict[str, Any], multiattach: bool = False) -> dict[str, Any]:
        """Step 4: the disk in the guest, the volume in-use, the mapping attached; or all undone."""
        plugged = False
        try:
            connector = {"host": self.svc.host, "mountpoint": bdm["device_name"]}
            attachment = await self.service.attach.connect(None, bdm["attachment_id"], connector)
            info = attachment["connection_info"]
            if multiattach:  # <shareable/>: QEMU lets several guests write the volume (share-rw)
                info = {**info, "data": {**info.get("data", {}), "multiattach": True}}
            attachment = {**attachment, "connection_info": info}
            disk = volume_disk({**bdm, "connection_info": info})
            if await self.svc.driver.get_state(server["id"]) is not None:
                plugged = True  # before the call: a plug that failed half-way is unplugged too
                await self.svc.driver.attach_disk(server["id"], disk)
            await self.service.attach.complete(None, bdm["attachment_id"])
            return await self.svc.engine.propose(v.UpdateBlockDevice(bdm["id"], {
                "status": "attached", "connection_info": attachment["connection_info"], "updated_at": stamp()}))
        except BaseException as exc:
            log.warning("attach failed; undone", extra={"server_id": server["id"], "volume_id": bdm["volume_id"],
                                                        "why": str(exc)[:300]})
            with trio.CancelScope(shield=True):
                if plugged:
                    try:
                        await self.svc.driver.detach_disk(server["id"], bdm["volume_id"], timeout=DETACH_TIMEOUT)
                    except CloudboxError:
                        log.exception("the disk of volume %s stays in %s", bdm["volume_id"], server["id"])
                await self._forget_attachment(bdm["attachment_id"])
                await self.svc.engine.propose(v.DeleteBlockDevices((bdm["id"],)))
            raise

    async def _forget_attachment(self, attachment_id: str) -> None:
        """The volume service forgets an attachment (a rollback, or the server is going)."""
        try:
            await self.service.attach.detach(None, attachment_id)
        except NotFound:
            pass  # forgotten already (a reset, or a second pass)
        except CloudboxError as exc:
            log.warning("attachment not forgotten", extra={"attachment_id": attachment_id, "why": exc.message})

    # --- changing ----------------------------------------------------------------------------------
    async def set_delete_on_termination(self, server: dict[str, Any], volume_id: str, value: bool) -> None:
        bdm = await self.mapping(server, volume_id)
        await self.svc.engine.propose(v.UpdateBlockDevice(bdm["id"], {"delete_on_termination": value,
                                                                       "updated_at": stamp()}))

    async def swap(self, ctx: Any, server: dict[str, Any], old_volume_id: str, new_volume_id: str) -> None:
        """Swap a server's volume for another (Nova's volume update by an admin, which Nova serves
        only for the volume service's migration of the old volume): checked as Nova checks it,
        then done in the background (volume_swap.py)."""
        self.svc.require_running()
        old = await self.service.get(ctx, old_volume_id)
        bdm = await self.mapping(server, old_volume_id)
        new = await self.service.get(ctx, new_volume_id)
        if new["status"] != "available":
            raise BadRequest(f"Invalid volume: volume '{new_volume_id}' status must be 'available'. Currently in "
                             f"'{new['status']}'.")
        check_state(server, "swap_volume", shelved_ok=False)
        volume_swap.check_migrating(old)
        await volume_swap.begin(self, server, bdm, old, new)

    # --- detaching ---------------------------------------------------------------------------------
    async def detach(self, ctx: Any, server: dict[str, Any], volume_id: str, shelved_ok: bool = True) -> None:
        """Begin detaching: checked at once (404, 400, 409), the disk leaves in the background."""
        svc = self.svc
        svc.require_running()
        await self.service.get(ctx, volume_id)  # 404 unless the caller sees it
        bdm = await self.mapping(server, volume_id)
        if bdm["boot_index"] == 0:
            raise BadRequest("Cannot detach a root device volume")
        check_state(server, "detach_volume", shelved_ok)
        if bdm["status"] != "attached":
            raise BadRequest(f"Invalid volume: volume {volume_id} is {bdm['status']} on instance {server['id']}.")
        await svc.engine.propose(v.UpdateBlockDevice(bdm["id"], {"status": "detaching", "updated_at": stamp()},
                                                     ("attached",)))
        try:
            await self.service.attach.legacy(None, volume_id, "os-begin_detaching", {})
        except CloudboxError:  # a multiattach volume attached elsewhere too: it stays in-use meanwhile
            pass
        svc.spawn(self._finish_detach, server["id"], bdm["id"])

    async def _finish_detach(self, server_id: str, bdm_id: str) -> None:
        async with self.svc.lock(server_id):
            bdm = next((b for b in await self.of_server(server_id) if b["id"] == bdm_id), None)
            if bdm is None or bdm["status"] != "detaching":
                return
            try:
                await self.svc.driver.detach_disk(server_id, bdm["volume_id"], timeout=DETACH_TIMEOUT)
            except CloudboxError as exc:
                log.warning("detach failed; the volume stays attached", extra={
                    "server_id": server_id, "volume_id": bdm["volume_id"], "why": exc.message})
                await self.svc.engine.propose(v.UpdateBlockDevice(bdm_id, {"status": "attached",
                                                                           "updated_at": stamp()}))
                try:
                    await self.service.attach.legacy(None, bdm["volume_id"], "os-roll_detaching", {})
                except CloudboxError:
                    pass
                return
            await self._forget_attachment(bdm["attachment_id"])
            await self.svc.engine.propose(v.DeleteBlockDevices((bdm_id,)))
            log.info("volume detached", extra={"server_id": server_id, "volume_id": bdm["volume_id"]})

    async def release_all(self, server: dict[str, Any]) -> None:
        """The server is going and its guest is gone: the volume service forgets its attachments
        and the volumes marked delete_on_termination are deleted (their failures are logged: the
        server's delete goes on, as Nova's does)."""
        for bdm in await self.of_server(server["id"]):
            if bdm["attachment_id"]:
                await self._forget_attachment(bdm["attachment_id"])
            if bdm["volume_id"] and bdm["delete_on_termination"]:
                try:
                    await self.service.delete(OnBehalf(server["project_id"]), bdm["volume_id"])
                except CloudboxError as exc:
                    log.warning("volume of a deleted server not deleted", extra={
                        "server_id": server["id"], "volume_id": bdm["volume_id"], "why": exc.message})
        rows = await self.of_server(server["id"])
        if rows:
            await self.svc.engine.propose(v.DeleteBlockDevices(tuple(b["id"] for b in rows)))

    # --- after a crash or a restart ------------------------------------------------------------------
    async def recover(self) -> None:
        """Make this host's guests and the volume service agree with the mappings (at start, once
        the volume service runs): an attach cut short (``attaching``) is undone, a detach under
        way (``detaching``) is finished, and a volume disk a guest's definition has but no live
        mapping wants is unplugged.  Idempotent: a second run finds nothing to do."""
        service = self.svc.volume_service
        if service is None:
            return  # a node without the volume service has no volumes to recover
        with trio.move_on_after(RECOVER_WAIT):
            while not getattr(service, "running", True):
                await trio.sleep(0.5)  # the volume service starts after compute
        for bdm in await self.svc.engine.read(bdms_on_host, self.svc.host):
            if bdm["status"] == "detaching":
                self.svc.spawn(self._finish_detach, bdm["server_id"], bdm["id"])
            elif bdm["status"] == "attaching":
                async with self.svc.lock(bdm["server_id"]):
                    log.warning("attach cut short; undone", extra={"server_id": bdm["server_id"],
                                                                    "volume_id": bdm["volume_id"]})
                    await self.svc.driver.detach_disk(bdm["server_id"], bdm["volume_id"], timeout=DETACH_TIMEOUT)
                    if bdm["attachment_id"]:
                        await self._forget_attachment(bdm["attachment_id"])
                    await self.svc.engine.propose(v.DeleteBlockDevices((bdm["id"],)))
        wanted: dict[str, set[str]] = {}
        known: set[str] = set()
        for bdm in await self.svc.engine.read(bdms_on_host, self.svc.host):
            wanted.setdefault(bdm["server_id"], set()).add(bdm["volume_id"])
            known.add(bdm["attachment_id"])
        # An attach cut short between its reserve and its mapping left an attachment no mapping
        # names: forgotten (servers being built are left alone: their build reserves as it goes).
        for server_id in await self.svc.servers_on_host(self.svc.host):
            server = await self.svc.get(server_id)
            if server["status"] == "BUILD" or server["task_state"] is not None:
                continue
            for attachment in await service.attach.list(None, {"instance_uuid": server_id}, None, 100, True):
                if attachment["id"] not in known:
                    log.warning("attachment of no mapping forgotten", extra={
                        "server_id": server_id, "volume_id": attachment["volume_id"]})
                    await self._forget_attachment(attachment["id"])
        for domain in await self.svc.driver.list_domains():
            try:
                found = await self.svc.driver.volume_disks(domain.uuid, live=False)
            except NotFound:
                continue
            for volume_id in set(found) - wanted.get(domain.uuid, set()):
                log.warning("volume disk of no mapping unplugged", extra={"server_id": domain.uuid,
                                                                          "volume_id": volume_id})
                async with self.svc.lock(domain.uuid):
                    await self.svc.driver.detach_disk(domain.uuid, volume_id, timeout=DETACH_TIMEOUT)

    # --- events from the volume service -----------------------------------------------------------------
    async def extended(self, server_id: str, volume_id: str) -> None:
        """Nova's volume-extended event (the volume service's, or os-server-external-events): the
        mapping records the volume's new size, and the node running the guest resizes its disk
        (``_on_commit``), whichever node heard the event."""
        server = await self.svc.get(server_id)
        bdm = await self.mapping(server, volume_id)
        volume = await self.service.get(OnBehalf(server["project_id"]), volume_id)
        await self.svc.engine.propose(v.UpdateBlockDevice(bdm["id"], {"volume_size": volume["size"],
                                                                       "updated_at": stamp()}))

    async def _volume_grew(self, volume_id: str, size: int) -> None:
        """Record an in-use volume's new size on its mappings of servers on this host (each
        mapping by one node: its server's), which resizes their disks."""
        for bdm in await self.svc.engine.read(bdms_of_volume, volume_id):
            if bdm["volume_size"] == size:
                continue
            try:
                server = await self.svc.get(bdm["server_id"])
            except NotFound:
                continue
            if server["host"] == self.svc.host:
                await self.svc.engine.propose(v.UpdateBlockDevice(bdm["id"], {"volume_size": size,
                                                                               "updated_at": stamp()}))

    async def _resize_disk(self, server_id: str, bdm_id: str) -> None:
        async with self.svc.lock(server_id):
            server = await self.svc.get(server_id)
            bdm = next((b for b in await self.of_server(server_id) if b["id"] == bdm_id), None)
            if server["host"] != self.svc.host or bdm is None or bdm["status"] != "attached":
                return
            # Nova's instance action for it (Tempest waits on its compute_extend_volume event).
            await self.svc.engine.propose(cr.RecordActions(
                (server_id,), f"req-{uuid.uuid4()}", "extend_volume", server["project_id"],
                server.get("user_id") or "", stamp(), "compute_extend_volume", self.svc.host))
            try:
                if await self.svc.driver.get_state(server_id) is not None:  # else: a later definition reads the size
                    await self.svc.driver.resize_disk(server_id, bdm["volume_id"], int(bdm["volume_size"]) << 30)
            except Exception as exc:
                await self.svc.engine.propose(cr.FinishEvents(server_id, stamp(), "Error", self.svc.host,
                                                              str(exc)[:1000]))
                raise
            await self.svc.engine.propose(cr.FinishEvents(server_id, stamp(), "Success", self.svc.host))
        log.info("volume extended in the guest", extra={"server_id": server_id, "volume_id": bdm["volume_id"],
                                                        "size_gb": bdm["volume_size"]})


"""Swapping a server's volume for another (Nova's ``PUT /servers/{id}/os-volume_attachments/{old}``
with a new ``volumeId``, admins only; Cinder's migration of an in-use volume asks it of Nova).

As Nova since its bug 2112187 (OSSA-2025-001: a swap asked directly let a user's guest keep a
volume it no longer owned), only the volume service's migration may ask it: the old volume's
``migration_status`` is ``migrating`` or ``completing``; any other swap is a 409 and changes
nothing (Tempest 47's TestVolumeSwap expects exactly that). cloudbox's volume service migrates no
in-use volume yet (one backend a node: a retype keeps the disk), so today an admin's
``os-reset_status`` with ``migration_status`` is what opens the way.

Answered 202 once checked; the old volume is ``detaching`` and the new one ``reserved`` at once
(what Nova's API does before it casts to compute), then on the guest's node, under the server's
lock:
1. the new volume is connected for this node (``attaching``);
2. the old disk leaves the guest (a hot-unplug the guest's kernel agrees to; config only when
   the guest is stopped);
3. the old volume's data is copied onto the new one with ``qemu-img convert -n`` (each side a
   local file or block device, or another node's NBD export with the node's client certificate),
   as Nova's libvirt driver copies it with a block job;
4. the new disk is plugged at the same target, the new volume completes its attachment
   (``in-use``), the mapping names the new volume and the old attachment is forgotten (the old
   volume ``available``).
A failure before step 4 undoes what was done: the old disk is plugged again, the old volume rolls
back to ``in-use``, the new attachment is forgotten (``available``).

Why unplug, copy, plug and not libvirt's block copy: a block copy keeps the disk's serial (the
old volume's id, by which every other part of compute finds a volume's disk) and needs the
persistent definition rewritten around it; the guest sees its disk go and come back here, with
the old data on it. The guest's node does it (step 3 reads and writes through this node).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from cloudbox import nbd_tls
from cloudbox.compute import commands_volumes as v
from cloudbox.compute.driver import VolumeDisk
from cloudbox.compute.resources import stamp
from cloudbox.errors import BadRequest, CloudboxError, Conflict, Unavailable

if TYPE_CHECKING:
    from cloudbox.compute.volumes import ComputeVolumes

log = logging.getLogger("cloudbox.compute")
COPY_TIMEOUT = 3600.0  # seconds a copy may take (a large volume over NBD)


def check_migrating(old: dict[str, Any]) -> None:
    """409 unless the volume service is migrating the old volume (see the module's note)."""
    if old.get("migration_status") not in ("migrating", "completing"):
        raise Conflict(f"Volume {old['id']} is not being migrated: swapping a server's volume is done only for "
                       "the volume service's migration of it (Nova's bug 2112187).")


def image_opts(info: dict[str, Any], tls_object: str) -> str:
    """qemu-img's --image-opts of a connection_info (local: the file or device; nbd: the export)."""
    data = info.get("data") or {}
    fmt = data.get("format") or "raw"
    kind = info.get("driver_volume_type")
    if kind == "local":
        driver = "host_device" if data.get("disk_type") == "block" else "file"
        return f"driver={fmt},file.driver={driver},file.filename={data['device_path']}"
    if kind == "nbd":
        opts = (f"driver={fmt},file.driver=nbd,file.server.type=inet,file.server.host={data['host']},"
                f"file.server.port={int(data.get('port') or 10809)},file.export={data['export_name']}")
        return opts + (f",file.tls-creds={tls_object}" if data.get("tls", True) else "")
    raise Unavailable(f"A volume connected as {str(kind)[:20]} cannot be copied here.")


def copy_volume(source: dict[str, Any], target: dict[str, Any], data_root: Path) -> None:
    """Copy one volume's data onto another (which is at least as large), both by connection_info."""
    args = ["qemu-img", "convert", "-n", "-W"]
    if "nbd" in (source.get("driver_volume_type"), target.get("driver_volume_type")):
        client = nbd_tls.client_dir(data_root)
        if not (client / "client-cert.pem").exists():
            raise Unavailable("This node has no NBD client certificate to reach the other node's volume.")
        args += ["--object", f"tls-creds-x509,id=tls0,dir={client},endpoint=client"]
    args += ["--image-opts", image_opts(source, "tls0"), "--target-image-opts", image_opts(target, "tls0")]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=COPY_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"The copy of the volume failed: {exc}") from exc
    if done.returncode != 0:
        raise Unavailable(f"The copy of the volume failed: {done.stderr.strip()[-300:]}")


async def begin(volumes: ComputeVolumes, server: dict[str, Any], bdm: dict[str, Any], old: dict[str, Any],
                new: dict[str, Any]) -> None:
    """Checked (400s, nothing changed), then the volumes' statuses set and the swap spawned."""
    if bdm["status"] != "attached":
        raise BadRequest(f"Invalid volume: volume {old['id']} is {bdm['status']} on instance {server['id']}.")
    if bdm["boot_index"] == 0:
        raise BadRequest("Cannot swap the root device volume of an instance.")
    if old["multiattach"] or new["multiattach"]:
        raise BadRequest("Swapping multi-attach volumes is not supported.")
    if new["project_id"] != server["project_id"]:
        raise BadRequest(f"Invalid volume: volume {new['id']} belongs to another project than the instance.")
    if new["size"] < old["size"]:
        raise BadRequest(f"Invalid volume: volume {new['id']} ({new['size']} GB) is smaller than volume "
                         f"{old['id']} ({old['size']} GB).")
    service = volumes.service
    attachment = await service.attach.reserve(None, new["id"], server["id"])
    try:
        await service.attach.legacy(None, old["id"], "os-begin_detaching", {})
    except BaseException:
        with trio.CancelScope(shield=True):
            await volumes._forget_attachment(attachment["id"])
        raise
    volumes.svc.spawn(swap, volumes, server["id"], bdm["id"], new, attachment["id"])


async def swap(volumes: ComputeVolumes, server_id: str, bdm_id: str, new: dict[str, Any], attachment_id: str) -> None:
    from cloudbox.compute.volumes import volume_disk  # volumes.py imports this module

    svc, service = volumes.svc, volumes.service
    async with svc.lock(server_id):
        bdm = next((b for b in await volumes.of_server(server_id) if b["id"] == bdm_id), None)
        old_disk: VolumeDisk | None = None
        unplugged = False
        try:
            if bdm is None or bdm["status"] != "attached":
                raise Unavailable("The volume left the server before the swap began.")
            old_disk = volume_disk(bdm)
            connected = await service.attach.connect(None, attachment_id,
                                                     {"host": svc.host, "mountpoint": bdm["device_name"]})
            info = connected["connection_info"]
            defined = await svc.driver.get_state(server_id) is not None
            if defined:
                await svc.driver.detach_disk(server_id, bdm["volume_id"], timeout=60)
                unplugged = True
            await trio.to_thread.run_sync(copy_volume, bdm["connection_info"], info, svc.instances_dir.parent)
            if defined:
                await svc.driver.attach_disk(server_id, VolumeDisk(new["id"], old_disk.target, info))
        except BaseException as exc:
            log.warning("volume swap failed; undone", extra={"server_id": server_id, "volume_id": new["id"],
                                                             "why": str(exc)[:300]})
            with trio.CancelScope(shield=True):
                if unplugged and old_disk is not None:
                    try:
                        await svc.driver.attach_disk(server_id, old_disk)
                    except CloudboxError:
                        log.exception("the old disk did not return to %s", server_id)
                if bdm is not None:
                    try:
                        await service.attach.legacy(None, bdm["volume_id"], "os-roll_detaching", {})
                    except CloudboxError:
                        pass
                await volumes._forget_attachment(attachment_id)
            if isinstance(exc, CloudboxError):
                return
            raise
        await service.attach.complete(None, attachment_id)
        await svc.engine.propose(v.UpdateBlockDevice(bdm_id, {
            "volume_id": new["id"], "attachment_id": attachment_id, "connection_info": info,
            "volume_size": new["size"], "updated_at": stamp()}))
        await volumes._forget_attachment(bdm["attachment_id"])
    log.info("volume swapped", extra={"server_id": server_id, "old": bdm["volume_id"], "new": new["id"]})

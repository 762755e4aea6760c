"""Volumes of servers (Nova's os-volume_attachments and block device mappings), compute's side.

The volume service keeps volumes and their attachments; compute keeps which volume is which
disk of which server (``block_device_mappings``, apply_volumes.py) and puts the disk in the
guest.  An attach, synchronous in the request as Nova's is:

1. the API checks the server (state, lock) and the volume (visible, available);
2. ``reserve`` at the volume service: an attachment, the volume reserved (a volume that cannot
   take it is refused there, 400, and nothing changed);
3. a mapping is recorded ``attaching`` (apply refuses a volume already on the server or a taken
   device name; the reservation is then rolled back);
4. on the server's node: ``connect`` (the connection_info), the driver's ``attach_disk``
   (live and persistent when the guest runs, the definition only when it is stopped),
   ``complete`` (the volume in-use), the mapping ``attached``.  A failure in 4 detaches the disk,
   deletes the attachment (``detach``) and the mapping: nothing is left half-made.

A detach: the mapping ``detaching``, the driver's ``detach_disk`` (waits until the guest released
the disk), ``detach`` at the volume service, the mapping goes.  A guest that keeps the disk leaves
the mapping ``attached`` again and the volume in-use (the request answers 500... as Nova's does).

``disks_of`` is what a (re)definition of the guest carries: every attached volume's disk, so a
rebuild, resize, rescue or unshelve keeps them (reboot, stop/start and hard reboot keep them
through the persistent definition).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cloudbox.compute.apply_volumes import bdms_of
from cloudbox.compute.driver import VolumeDisk

if TYPE_CHECKING:
    from cloudbox.compute.service import ComputeService

log = logging.getLogger("cloudbox.compute")


def device_target(device_name: str) -> str:
    """``/dev/vdb`` → ``vdb``."""
    return device_name.rsplit("/", 1)[-1]


def volume_disk(bdm: dict[str, Any]) -> VolumeDisk:
    """The driver's view of a mapping that has its connection_info."""
    return VolumeDisk(volume_id=bdm["volume_id"], target=device_target(bdm["device_name"]),
                      connection_info=bdm["connection_info"], boot_index=bdm["boot_index"])


class ComputeVolumes:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    async def disks_of(self, server_id: str) -> tuple[VolumeDisk, ...]:
        """The volume disks a definition of the server's guest carries: its mappings that reached
        the guest (attached, or on their way out) and have a connection_info."""
        rows = await self.svc.engine.read(bdms_of, server_id)
        return tuple(volume_disk(b) for b in rows
                     if b["volume_id"] and b["status"] in ("attached", "detaching") and b["connection_info"]
                     and b["device_name"])

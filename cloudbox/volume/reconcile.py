"""The volume worker of one node: finishes the disk work of the volumes and snapshots it keeps.

Observe, read, act (STYLE.md 13): each pass reads the volumes and snapshots whose ``host`` is
this node in a transitional status and does their disk work (creating, extending, deleting),
then proposes the outcome, which expects the status it found (a reset by an admin meanwhile
wins). The same pass at start finishes what a crash interrupted: making a disk again from its
source is idempotent, so a volume stuck in creating is made (or put in error with the reason).
At start and every SWEEP_INTERVAL, files/LVs of no volume or snapshot are reported and removed,
and an available volume whose data is missing goes to error with a message.

NBD exports (export.py) follow attachments: each pass, the volumes of this node attached by
guests on other nodes (attaching or attached, connection_info nbd) are exported and every other
export is stopped (an orphan: its attachment went, here or while cloudbox was down); an export
that is up is then marked on its attachment (MarkExported), which the guest's node waits for
before plugging the disk in. Attachment commands from any node wake the worker.
"""

from __future__ import annotations

import logging
import stat
from typing import Any

import trio

from cloudbox import guard
from cloudbox.errors import CloudboxError
from cloudbox import nbd_tls
from cloudbox.volume import backup, commands_attach, store, store_attach
from cloudbox.volume.driver import DriverError, export_volume
from cloudbox.volume.export import ExportDaemon, ExportSpec

log = logging.getLogger("cloudbox.volume")
POLL_INTERVAL = 5.0  # seconds between passes when nothing wakes the worker (other nodes' requests)
SWEEP_INTERVAL = 600.0
PARALLEL = 4


class Worker:
    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self.driver = svc.driver
        self.busy: set[str] = set()
        self.limiter = trio.CapacityLimiter(PARALLEL)
        self.orphans_removed: list[str] = []
        self.daemon: ExportDaemon | None = None  # this node's NBD exports, made at the first one wanted

    def _on_commit(self, cmd: Any, _result: Any) -> None:
        """Another node's attach or detach may change what this node exports: look now."""
        if cmd.TYPE.startswith("volume.attachment.") and not isinstance(cmd, commands_attach.MarkExported):
            self.svc.wake.set()
        elif cmd.TYPE in backup.WAKES:  # a backup, restore or delete of a backup for this node, maybe
            self.svc.wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.to_thread.run_sync(self.driver.check)
        await self.register()
        await self.sweep()
        self.svc.engine.add_listener(self._on_commit)
        async with trio.open_nursery() as nursery:
            self.svc.running = True
            task_status.started()
            try:
                swept = trio.current_time()
                while True:
                    self.svc.wake = trio.Event()
                    await self.pass_once(nursery)
                    await self.sync_exports()
                    if trio.current_time() - swept > SWEEP_INTERVAL:
                        await self.sweep()
                        swept = trio.current_time()
                    with trio.move_on_after(POLL_INTERVAL):
                        await self.svc.wake.wait()
            finally:
                self.svc.running = False

    async def pass_once(self, nursery: trio.Nursery) -> None:
        def read(db: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            return (store.volumes_in(db, self.svc.host, ("creating", "extending", "deleting", "downloading")),
                    store.snapshots_in(db, self.svc.host, ("creating", "deleting")))

        volumes, snapshots = await self.svc.read(read)
        await backup.work(self, nursery)  # backups, restores and deletes of backups (backup.py)
        for upload in await self.svc.read(store_attach.uploads_on, self.svc.host):
            key = "upload:" + upload["volume_id"]
            if key not in self.busy:
                self.busy.add(key)
                guard.spawn(nursery, self._upload, upload, name=f"volume upload {upload['volume_id']}")
        for snapshot in snapshots:
            if snapshot["id"] not in self.busy:
                self.busy.add(snapshot["id"])
                guard.spawn(nursery, self._snapshot, snapshot, name=f"volume snapshot {snapshot['id']}")
        for volume in volumes:
            if volume["id"] not in self.busy:
                self.busy.add(volume["id"])
                guard.spawn(nursery, self._volume, volume, name=f"volume {volume['id']}")

    async def _volume(self, volume: dict[str, Any]) -> None:
        try:
            async with self.limiter:
                # The pass read ``volume`` before it awaited other work; a run of the same volume may
                # have ended meanwhile (its busy mark gone). Acting on the stale row would do the work
                # again: a second create deletes the file of a volume already handed to a guest.
                current = await self.svc.read(store.get_volume, volume["id"])
                if current is None or current["status"] != volume["status"]:
                    return
                await self._act(current)
        finally:
            self.busy.discard(volume["id"])
            self.svc.wake.set()

    async def _act(self, volume: dict[str, Any]) -> None:
        vid, status = volume["id"], volume["status"]
        d = self.driver
        try:
            if status == "creating":
                if volume["snapshot_id"]:
                    await trio.to_thread.run_sync(d.create_from_snapshot, vid, volume["size"], volume["snapshot_id"])
                elif volume["source_volid"]:
                    await trio.to_thread.run_sync(d.create_from_volume, vid, volume["size"], volume["source_volid"])
                elif volume["image_id"]:
                    path, image = await self.svc.images.image_path(volume["image_id"], None)
                    await trio.to_thread.run_sync(d.create_from_image, vid, volume["size"], path,
                                                  image["disk_format"])
                else:
                    await trio.to_thread.run_sync(d.create_blank, vid, volume["size"])
                await self.svc.finish(vid, ("creating",), "available", launched_at=self.svc.now(), message="")
            elif status == "downloading":  # os-reimage: the image written over the volume
                path, image = await self.svc.images.image_path(volume["image_id"], None)
                await trio.to_thread.run_sync(d.create_from_image, vid, volume["size"], path, image["disk_format"])
                reserved = bool(await self.svc.read(store_attach.attachments_of, vid))  # Nova's rebuild holds one
                await self.svc.finish(vid, ("downloading",), "reserved" if reserved else "available", message="")
            elif status == "extending":
                # An attached volume (extended at 3.42+) keeps its attachment while it grows: the
                # guest's node resizes the disk through QEMU once it sees the commit (in-use, size).
                attached = bool(await self.svc.read(store_attach.attachments_of, vid))
                grow = d.extend_attached if attached else d.extend
                await trio.to_thread.run_sync(grow, vid, volume["pending_size"])
                daemon = self.export_daemon() if attached else None
                if daemon is not None:  # a guest on another node: the export grows and tells it
                    await trio.to_thread.run_sync(daemon.grow, vid, volume["pending_size"] << 30)
                await self.svc.finish(vid, ("extending",), "in-use" if attached else "available",
                                      size=volume["pending_size"], pending_size=None)
            elif status == "deleting":
                if await self.svc.read(store.snapshots_of, vid):
                    return  # cascade: its snapshots go first, and wake the worker again
                await trio.to_thread.run_sync(d.delete, vid)
                await self.svc.propose(store.c.PurgeVolume(vid))
        except (DriverError, CloudboxError) as exc:
            failed = {"creating": "error", "extending": "error_extending", "deleting": "error_deleting",
                      "downloading": "error"}[status]
            log.warning("volume %s: %s failed: %s", vid, status, exc)
            try:
                await self.svc.finish(vid, (status,), failed, message=str(exc)[:500], pending_size=None)
            except CloudboxError:
                pass  # reset or removed meanwhile

    async def _snapshot(self, snapshot: dict[str, Any]) -> None:
        sid, status = snapshot["id"], snapshot["status"]
        try:
            async with self.limiter:
                current = await self.svc.read(store.get_snapshot, sid)  # as in _volume: the pass's row may be stale
                if current is None or current["status"] != status:
                    return
                if status == "creating":
                    await trio.to_thread.run_sync(self.driver.snapshot, sid, snapshot["volume_id"])
                    await self.svc.finish_snapshot(sid, ("creating",), "available", message="")
                else:
                    await trio.to_thread.run_sync(self.driver.delete_snapshot, sid)
                    await self.svc.propose(store.c.PurgeSnapshot(sid))
        except (DriverError, CloudboxError) as exc:
            log.warning("snapshot %s: %s failed: %s", sid, status, exc)
            try:
                await self.svc.finish_snapshot(sid, (status,), "error" if status == "creating" else "error_deleting",
                                               message=str(exc)[:500])
            except CloudboxError:
                pass
        finally:
            self.busy.discard(sid)
            self.svc.wake.set()

    async def register(self) -> None:
        """This node's backend in the volume services list (proposed only when it changed)."""
        row = {"host": self.svc.host, "node_id": self.svc.node_id, "driver": self.driver.name,
               "availability_zone": self.svc.availability_zone}
        known = {b["host"]: b for b in await self.svc.read(store_attach.backends)}.get(self.svc.host)
        if known is None or any(known[k] != v for k, v in row.items()):
            await self.svc.propose(commands_attach.RegisterBackend({**row, "registered_at": self.svc.now()}))

    async def _upload(self, upload: dict[str, Any]) -> None:
        """Write the volume's data into its image (queued, made by the request), then give the
        volume back its status. A failure leaves the volume as it was, with the reason, and the
        image deleted; a crash mid-way is run again at the next start (the image still queued)."""
        vid, image_id = upload["volume_id"], upload["image_id"]
        dest = self.driver.scratch / f"upload-{vid}-{image_id}.{upload['disk_format']}"
        message = ""
        try:
            async with self.limiter:
                image = await self.svc.images.get(None, image_id)
                if image["status"] == "active":  # stored before a crash cut the finish short
                    return
                await trio.to_thread.run_sync(lambda: self.driver.scratch.mkdir(parents=True, exist_ok=True))
                await trio.to_thread.run_sync(export_volume, self.driver, vid, dest, upload["disk_format"])
                await self.svc.images.store_file(image, dest)
        except (DriverError, CloudboxError) as exc:
            message = f"Upload to image {image_id} failed: {exc}"[:500]
            log.warning("volume %s: %s", vid, message)
            try:
                await self.svc.images.discard(image_id)
            except CloudboxError:
                pass
        finally:
            await trio.to_thread.run_sync(lambda: dest.unlink(missing_ok=True))
            try:
                await self.svc.propose(commands_attach.FinishVolumeUpload(vid, message, self.svc.now()))
            except CloudboxError:
                pass  # the volume went meanwhile
            self.busy.discard("upload:" + vid)
            self.svc.wake.set()

    async def sweep(self) -> list[str]:
        """Remove disks of no volume or snapshot (observed first, then the database read)."""
        volumes, snapshots = await trio.to_thread.run_sync(self.driver.stored)
        known_volumes, known_snapshots = await self.svc.read(store.ids_on, self.svc.host)
        removed = []
        for vid in sorted(volumes - known_volumes):
            if "backup:" + vid in self.busy:
                continue  # the clone of a snapshot a running backup reads (backup.py), not an orphan
            log.warning("removing volume data of no volume", extra={"volume_id": vid, "driver": self.driver.name})
            await trio.to_thread.run_sync(self.driver.delete, vid)
            removed.append(vid)
        for sid in sorted(snapshots - known_snapshots):
            log.warning("removing snapshot data of no snapshot", extra={"snapshot_id": sid})
            await trio.to_thread.run_sync(self.driver.delete_snapshot, sid)
            removed.append(sid)
        self.orphans_removed.extend(removed)
        # Files of uploads a crash cut short (an upload running now is in busy).
        scratch = self.driver.scratch
        for path in await trio.to_thread.run_sync(lambda: sorted(scratch.glob("upload-*")) if scratch.is_dir() else []):
            vid = path.name.removeprefix("upload-")[:36]
            if "upload:" + vid not in self.busy:
                log.warning("removing the file of an interrupted upload", extra={"path": str(path)})
                await trio.to_thread.run_sync(lambda p=path: p.unlink(missing_ok=True))
                removed.append(path.name)
        # A volume whose data vanished (a disk replaced, a file removed by hand) says so.
        # Observed again after the read: a volume made available meanwhile has its data by then.
        ready = await self.svc.read(store.volumes_in, self.svc.host, ("available", "in-use"))
        present = (await trio.to_thread.run_sync(self.driver.stored))[0]
        for volume in ready:
            if volume["id"] not in present:
                log.error("volume data is missing", extra={"volume_id": volume["id"]})
                try:
                    await self.svc.finish(volume["id"], (volume["status"],), "error",
                                          message=f"The volume's data is missing from this node's {self.driver.name} "
                                                  "storage.")
                except CloudboxError:
                    pass
        return removed

    # --- NBD exports ----------------------------------------------------------------------------------
    def export_daemon(self) -> ExportDaemon | None:
        """This node's export daemon; None when the node is alone (no other node to export to)."""
        cluster = self.svc.cluster
        if cluster is None or not getattr(cluster, "clustered", False):
            return None
        if self.daemon is None:
            root = cluster.data_dir.root
            self.daemon = ExportDaemon(root / "nbd-exports", nbd_tls.server_dir(root), cluster.me.tunnel_ip)
        return self.daemon

    async def sync_exports(self) -> None:
        """Exports match the remote attachments (observed first, then the database read); a
        failure is logged and tried again next pass (the guest's node waits, then gives up)."""
        daemon = self.export_daemon()
        if daemon is None:
            return
        try:
            exported = await trio.to_thread.run_sync(daemon.exports)
            attachments = await self.svc.read(store_attach.remote_attachments, self.svc.host)
            wanted: dict[str, bool] = {}  # volume id → read-only (every attachment ro, or the volume)
            for a in attachments:
                readonly = a["volume_readonly"] or a["attach_mode"] == "ro"
                wanted[a["volume_id"]] = wanted.get(a["volume_id"], True) and readonly
            for vid in sorted(exported - set(wanted)):
                log.info("stopping the NBD export of no attachment", extra={"volume_id": vid})
                await trio.to_thread.run_sync(daemon.remove, vid)
            if wanted:
                await trio.to_thread.run_sync(nbd_tls.write_server_dir, self.svc.cluster.data_dir.root)
            for vid, readonly in sorted(wanted.items()):
                if vid not in exported:
                    await trio.to_thread.run_sync(lambda v=vid, r=readonly: daemon.add(self._export_spec(v, r)))
            for a in attachments:
                if not a["connection_info"].get("data", {}).get("exported"):
                    await self.svc.propose(commands_attach.MarkExported(a["id"], self.svc.now()))
        except (DriverError, CloudboxError, OSError) as exc:
            log.warning("NBD exports: %s", exc)

    def _export_spec(self, volume_id: str, readonly: bool) -> ExportSpec:
        path = self.driver.path(volume_id)
        return ExportSpec(volume_id, str(path), self.driver.volume_format(volume_id),
                          stat.S_ISBLK(path.stat().st_mode), readonly)

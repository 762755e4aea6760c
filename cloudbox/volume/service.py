"""The volume service: the public async methods behind the Cinder API, and run().

Requests only change state (a command each); the disk work of a volume is done by the node
that keeps it (``host``): reconcile.Worker on that node finds volumes and snapshots in a
transitional status (creating, extending, deleting) and finishes them, so a request for another
node's volume needs no forwarding and a crash mid-way is finished at the next start.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable, Mapping

import trio

from cloudbox import clock
from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound
from cloudbox.identity.core import require
from cloudbox.state.engine import StateEngine
from cloudbox.volume import commands as c
from cloudbox.volume import core, core_attach, store
from cloudbox.volume.driver import VolumeDriver
from cloudbox.volume.service_attach import AttachService
from cloudbox.volume.service_backups import BackupService
from cloudbox.volume.service_qos import QosService
from cloudbox.volume.service_groups import GroupService
from cloudbox.volume.service_transfers import TransferService
from cloudbox.volume.service_types import TypeService

log = logging.getLogger("cloudbox.volume")


def viewer_of(ctx: Any, all_projects: bool = False) -> core.Viewer:
    if ctx is None:
        return core.Viewer(None, sees_all=True)
    if all_projects and ctx.is_cloud_reader:
        return core.Viewer(None, sees_all=True)
    project = ctx.project_id if ctx.project_id and ctx.can_read_project(ctx.project_id) else None
    return core.Viewer(project, sees_all=False)


def single_viewer(ctx: Any) -> core.Viewer:
    """Who may show one object by id: admins (and system readers) any, others their project's."""
    return viewer_of(ctx, all_projects=True)


class VolumeService:
    def __init__(self, engine: StateEngine, settings: Any, driver: VolumeDriver, *, node_id: str, host: str,
                 images: Any = None, clock_fn: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.settings = settings
        self.driver = driver
        self.node_id = node_id
        self.host = host
        self.images = images
        self.clock = clock_fn
        self.running = False
        self.wake = trio.Event()  # set when this node proposed work for its worker
        self.types = TypeService(self)
        self.attach = AttachService(self)  # attachments, legacy attach actions, uploads to images
        self.qos = QosService(self)  # QoS specs and the volume services list
        self.transfers = TransferService(self)  # volumes offered to and accepted by other projects
        self.groups = GroupService(self)  # group types, groups of volumes, group snapshots
        self.backups = BackupService(self)  # backups into the owner's object store (backup.py)
        self.objects: Any = None  # the node's ObjectService, set by the node: where backups are kept
        self.cluster: Any = None  # set by the node when clustered: up_nodes() asks it who is up

    # --- plumbing -------------------------------------------------------------------------------
    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.engine.read(fn, *args)

    async def propose(self, cmd: Any) -> Any:
        result = await self.engine.propose(cmd)
        self.wake.set()
        return result

    def now(self) -> str:
        return clock.iso(self.clock(), micro=True).rstrip("Z")  # Cinder's times carry no zone

    def defaults(self) -> dict[str, int]:
        s = self.settings
        return core.quota_defaults(s.quota_volumes, s.quota_gigabytes, s.quota_snapshots)

    @property
    def availability_zone(self) -> str:
        return self.settings.storage_availability_zone

    async def _volume(self, ctx: Any, volume_id: str, *, write: str = "") -> dict[str, Any]:
        volume = await self.read(store.visible_volume_view, single_viewer(ctx), volume_id)
        if not ctx.can_read_project(volume["project_id"]):
            raise NotFound(f"Volume {volume_id} could not be found.")
        if write:
            require(ctx.can_write_project(volume["project_id"]), write)
        return volume

    async def _snapshot(self, ctx: Any, snapshot_id: str, *, write: str = "") -> dict[str, Any]:
        snapshot = await self.read(store.visible_snapshot, single_viewer(ctx), snapshot_id)
        if not ctx.can_read_project(snapshot["project_id"]):
            raise NotFound(f"Snapshot {snapshot_id} could not be found.")
        if write:
            require(ctx.can_write_project(snapshot["project_id"]), write)
        return snapshot

    async def _view(self, volume_id: str) -> dict[str, Any]:
        return await self.read(store.visible_volume_view, core.Viewer(None, True), volume_id)

    # --- volumes --------------------------------------------------------------------------------
    async def create(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        project = ctx.project_id
        if not project:
            raise Forbidden("Creating a volume needs a project-scoped token.")
        require(ctx.can_write_project(project), "volume:create")
        viewer = viewer_of(ctx)
        sources = [k for k in ("snapshot_id", "source_volid", "imageRef", "backup_id") if body.get(k)]
        if len(sources) > 1:
            raise BadRequest(f"Invalid input received: give at most one of {', '.join(sources)}.")
        if body.get("backup_id"):
            raise BadRequest("Invalid input received: volumes from backups are not supported by this cloud.")
        size = body.get("size")
        row: dict[str, Any] = {"snapshot_id": None, "source_volid": None, "image_id": None}
        image_metadata: dict[str, str] = {}
        bootable = False
        source_type: str | None = None
        if body.get("snapshot_id"):
            snapshot = await self._snapshot(ctx, str(body["snapshot_id"]))
            row["snapshot_id"] = snapshot["id"]
            size = snapshot["size"] if size is None else size
            source = await self.read(store.get_volume, snapshot["volume_id"])
            source_type = source["volume_type_id"] if source else None
            bootable = bool(source and source["bootable"])
            image_metadata = dict(source["image_metadata"]) if source else {}
        elif body.get("source_volid"):
            source = await self._volume(ctx, str(body["source_volid"]))
            row["source_volid"] = source["id"]
            size = source["size"] if size is None else size
            source_type = source["volume_type_id"]
            bootable, image_metadata = source["bootable"], dict(source["image_metadata"])
        elif body.get("imageRef"):
            try:
                image = await self.images.active_image(str(body["imageRef"]), ctx)
            except Conflict as e:  # Cinder: an image that is not active is invalid input
                raise BadRequest(f"Invalid image: {e}") from e
            row["image_id"] = image["id"]
            needed = core.image_needs_gb(image)
            size = max(needed, 1) if size is None else size
            if core.parse_size(size) < needed:
                raise BadRequest(f"Invalid input received: image {image['id']} needs a volume of at least "
                                 f"{needed} GB; {size} GB was asked for.")
            bootable = True
            image_metadata = core.image_metadata_of(image)
        if size is None:
            raise BadRequest("Invalid input received: size is required for a blank volume.")
        size = core.parse_size(size)
        if body.get("volume_type"):
            kind = await self.read(store.find_type, viewer, str(body["volume_type"]))
        elif source_type:
            kind = {"id": source_type}
        else:
            kind = await self.read(store.default_type, project)
        zone = body.get("availability_zone") or self.availability_zone
        if zone != self.availability_zone:
            raise BadRequest(f"Invalid input received: availability zone {str(zone)[:60]!r} is invalid; "
                             f"this cloud has {self.availability_zone!r}.")
        metadata = core.check_metadata(body.get("metadata") or {})
        group_id = body.get("group_id")
        if group_id:  # the group's volume types are checked in apply
            group = await self.groups.get(ctx, str(group_id))
            if group["status"] != "available":
                raise BadRequest(f"Invalid group: group {group['id']} is {group['status']}, not available.")
            group_id = group["id"]
        # multiattach comes from the type (extra spec multiattach="<is> True"), as Cinder's
        # volume types decide it; the request's deprecated flag does not override the type.
        full_type = await self.read(store.get_type, kind["id"])
        multiattach = bool(full_type and core_attach.type_multiattach(full_type["extra_specs"]))
        # A type asking what this node's backend is not cannot be placed: the volume is made in
        # error with the reason (a user message), as Cinder's scheduler answers it.
        unmet = core.unmet_capabilities(full_type["extra_specs"] if full_type else {},
                                        core.backend_capabilities(self.driver.name))
        at = self.now()
        row.update({
            "id": str(uuid.uuid4()), "project_id": project, "user_id": ctx.user_id, "name": body.get("name"),
            "description": body.get("description"), "size": size, "status": "error" if unmet else "creating",
            "host": self.host,
            "availability_zone": zone, "volume_type_id": kind["id"], "bootable": bootable, "readonly": False,
            "multiattach": multiattach, "disk_format": "raw", "pending_size": None,
            "metadata": metadata, "image_metadata": image_metadata, "migration_status": None,
            "message": f"No valid backend was found: the type asks {', '.join(unmet)}." if unmet else "",
            "created_at": at, "updated_at": at, "launched_at": None, "group_id": group_id or None,
        })
        volume = await self.propose(c.CreateVolume(row, self.defaults()))
        return await self._view(volume["id"])

    async def get(self, ctx: Any, volume_id: str) -> dict[str, Any]:
        return await self._volume(ctx, volume_id)

    async def list(self, ctx: Any, opts: core.ListOptions, marker: str | None, limit: int,
                   all_projects: bool) -> list[dict[str, Any]]:
        viewer = viewer_of(ctx, all_projects)
        if viewer.project_id is None and not viewer.sees_all:
            return []
        return await self.read(store.list_volumes, viewer, opts, marker, limit)

    async def summary(self, ctx: Any, all_projects: bool) -> dict[str, Any]:
        viewer = viewer_of(ctx, all_projects)
        if viewer.project_id is None and not viewer.sees_all:
            return {"total_count": 0, "total_size": 0, "metadata": {}}
        return await self.read(store.volume_summary, viewer)

    async def update(self, ctx: Any, volume_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        await self._volume(ctx, volume_id, write="volume:update")
        if "metadata" in changes:
            changes["metadata"] = core.check_metadata(changes["metadata"])
        await self.propose(c.UpdateVolume(volume_id, changes, self.now()))
        return await self._view(volume_id)

    async def delete(self, ctx: Any, volume_id: str, *, cascade: bool = False, force: bool = False) -> None:
        await self._volume(ctx, volume_id, write="volume:delete")
        if force:
            require(ctx.is_cloud_admin, "volume:force_delete")
        await self.propose(c.DeleteVolume(volume_id, cascade, force, self.now()))

    async def extend(self, ctx: Any, volume_id: str, new_size: Any, *, attached: bool = False) -> None:
        """``attached``: an in-use volume may grow too (Cinder's 3.42+); its guest's node resizes the disk."""
        volume = await self._volume(ctx, volume_id, write="volume:extend")
        kind = c.ExtendVolume
        if attached and volume["status"] == "in-use":  # a guest on another node: its own kind (schema 2)
            if any(core_attach.is_remote(a, volume["host"]) for a in (await self.attach.of_volumes([volume_id])).get(volume_id, [])):
                kind = c.ExtendRemoteVolume
        await self.propose(kind(volume_id, core.parse_size(new_size, "new_size"), self.defaults(), self.now(),
                                attached))

    async def set_bootable(self, ctx: Any, volume_id: str, bootable: Any) -> None:
        await self._volume(ctx, volume_id, write="volume_extension:volume_actions:set_bootable")
        await self.propose(c.UpdateVolume(volume_id, {"bootable": core.parse_bool(bootable, "bootable")},
                                          self.now()))

    async def set_readonly(self, ctx: Any, volume_id: str, readonly: Any) -> None:
        await self._volume(ctx, volume_id, write="volume_extension:volume_actions:update_readonly_flag")
        await self.propose(c.UpdateVolume(volume_id, {"readonly": core.parse_bool(readonly, "readonly")},
                                          self.now()))

    async def reset_status(self, ctx: Any, volume_id: str, body: Mapping[str, Any]) -> None:
        require(ctx.is_cloud_admin, "volume_extension:volume_admin_actions:reset_status")
        await self._volume(ctx, volume_id)
        status = body.get("status")
        if status not in core.STATUSES:
            raise BadRequest(f"Invalid input received: status {str(status)[:40]!r} is not a volume status.")
        # A reset changes only the database, as Cinder's: the worker leaves a status it would act on.
        changes: dict[str, Any] = {"message": core.HELD if status in core.WORKED_STATUSES else ""}
        if body.get("migration_status") is not None:
            changes["migration_status"] = None if body["migration_status"] == "none" else body["migration_status"]
        attach_status = body.get("attach_status")
        if attach_status not in (None, "attached", "detached"):
            raise BadRequest(f"Invalid input received: attach_status {str(attach_status)[:40]!r} must be attached "
                             "or detached.")
        if attach_status == "detached":  # Cinder's reset to detached forgets every attachment
            attachments = await self.attach.of_volumes([volume_id])
            if attachments[volume_id]:
                await self.propose(c.DeleteAttachments(volume_id, tuple(a["id"] for a in attachments[volume_id]),
                                                       self.now()))
        await self.propose(c.Transition(volume_id, (), status, self.now(), changes))

    async def retype(self, ctx: Any, volume_id: str, new_type: str) -> None:
        await self._volume(ctx, volume_id, write="volume:retype")
        kind = await self.read(store.find_type, viewer_of(ctx), new_type)
        await self.propose(c.RetypeVolume(volume_id, kind["id"], self.defaults(), self.now()))

    # --- metadata (volumes and snapshots share the shape) ------------------------------------------
    async def set_metadata(self, ctx: Any, kind: str, object_id: str, metadata: Any, *,
                           replace: bool) -> dict[str, str]:
        metadata = core.check_metadata(metadata)
        key = "metadata" if replace else "metadata_merge"
        if kind == "volume":
            await self._volume(ctx, object_id, write="volume:update_volume_metadata")
            return (await self.propose(c.UpdateVolume(object_id, {key: metadata}, self.now())))["metadata"]
        await self._snapshot(ctx, object_id, write="volume:update_snapshot_metadata")
        return (await self.propose(c.UpdateSnapshot(object_id, {key: metadata}, self.now())))["metadata"]

    async def image_metadata(self, ctx: Any, volume_id: str, changes: Mapping[str, Any] | None = None,
                             remove: str | None = None) -> dict[str, str]:
        """os-show/set/unset_image_metadata: the volume's image properties (volume_image_metadata)."""
        if changes is None and remove is None:
            return dict((await self._volume(ctx, volume_id))["image_metadata"])
        await self._volume(ctx, volume_id, write="volume_extension:volume_image_metadata:set")
        update = {"image_metadata_merge": core.check_metadata(changes)} if changes is not None else \
            {"image_metadata_delete": remove}
        return (await self.propose(c.UpdateVolume(volume_id, update, self.now())))["image_metadata"]

    async def delete_metadata(self, ctx: Any, kind: str, object_id: str, key: str) -> None:
        if kind == "volume":
            await self._volume(ctx, object_id, write="volume:delete_volume_metadata")
            await self.propose(c.UpdateVolume(object_id, {"metadata_delete": key}, self.now()))
        else:
            await self._snapshot(ctx, object_id, write="volume:delete_snapshot_metadata")
            await self.propose(c.UpdateSnapshot(object_id, {"metadata_delete": key}, self.now()))

    async def metadata(self, ctx: Any, kind: str, object_id: str) -> dict[str, str]:
        found = await (self._volume(ctx, object_id) if kind == "volume" else self._snapshot(ctx, object_id))
        return found["metadata"]

    # --- snapshots --------------------------------------------------------------------------------
    async def create_snapshot(self, ctx: Any, body: Mapping[str, Any],
                              version: tuple[int, int] = (3, 0)) -> dict[str, Any]:
        if not body.get("volume_id"):
            raise NotFound("Volume None could not be found: a snapshot needs the volume_id of its volume.")
        volume = await self._volume(ctx, str(body["volume_id"]), write="volume:create_snapshot")
        force = core.parse_bool(body.get("force", False), "force")
        if version >= (3, 66):
            # Cinder 3.66: an in-use volume is snapshotted without force (the CLI no longer sends it);
            # a force that is false is refused, a true one ignored.
            if "force" in body and not force:
                raise BadRequest("Since microversion 3.66 the 'force' flag is invalid for this request. For "
                                 "backward compatibility, however, when the 'force' flag is passed with a value "
                                 "evaluating to True, it is silently ignored.")
            force = True
        at = self.now()
        row = {"id": str(uuid.uuid4()), "project_id": volume["project_id"], "user_id": ctx.user_id,
               "volume_id": volume["id"], "name": body.get("name") or body.get("display_name"),
               "description": body.get("description") or body.get("display_description"),
               "size": volume["size"], "status": "creating", "host": volume["host"],
               "metadata": core.check_metadata(body.get("metadata") or {}), "message": "",
               "created_at": at, "updated_at": at}
        return await self.propose(c.CreateSnapshot(row, force, self.defaults()))

    async def get_snapshot(self, ctx: Any, snapshot_id: str) -> dict[str, Any]:
        return await self._snapshot(ctx, snapshot_id)

    async def list_snapshots(self, ctx: Any, opts: core.ListOptions, marker: str | None, limit: int,
                             all_projects: bool) -> list[dict[str, Any]]:
        viewer = viewer_of(ctx, all_projects)
        if viewer.project_id is None and not viewer.sees_all:
            return []
        return await self.read(store.list_snapshots, viewer, opts, marker, limit)

    async def update_snapshot(self, ctx: Any, snapshot_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        await self._snapshot(ctx, snapshot_id, write="volume:update_snapshot")
        return await self.propose(c.UpdateSnapshot(snapshot_id, changes, self.now()))

    async def delete_snapshot(self, ctx: Any, snapshot_id: str) -> None:
        await self._snapshot(ctx, snapshot_id, write="volume:delete_snapshot")
        await self.propose(c.DeleteSnapshot(snapshot_id, self.now()))

    async def reset_snapshot_status(self, ctx: Any, snapshot_id: str, status: Any) -> None:
        require(ctx.is_cloud_admin, "volume_extension:snapshot_admin_actions:reset_status")
        await self._snapshot(ctx, snapshot_id)
        if status not in core.SNAPSHOT_STATUSES:
            raise BadRequest(f"Invalid input received: status {str(status)[:40]!r} is not a snapshot status.")
        held = core.HELD if status in core.WORKED_STATUSES else ""
        await self.propose(c.SnapshotTransition(snapshot_id, (), status, self.now(), {"message": held,
                                                                                      "progress": None}))

    async def update_snapshot_status(self, ctx: Any, snapshot_id: str, body: Mapping[str, Any]) -> None:
        """os-update_snapshot_status (what Nova reports of a snapshot it takes): from creating to
        creating, available or error; from deleting to deleting or error_deleting; with a progress."""
        await self._snapshot(ctx, snapshot_id, write="snapshot_extension:snapshot_actions:update_snapshot_status")
        status, progress = body.get("status"), body.get("progress")
        allowed = {"creating": ("creating", "available", "error"), "deleting": ("deleting", "error_deleting")}
        if not isinstance(status, str) or status not in {s for v in allowed.values() for s in v}:
            raise BadRequest(f"Invalid input received: status {str(status)[:40]!r} must be one of creating, "
                             "available, error, deleting, error_deleting.")
        if progress is not None and not (isinstance(progress, str) and len(progress) <= 255):
            raise BadRequest("Invalid input received: progress must be text such as '80%'.")
        expect = tuple(was for was, to in allowed.items() if status in to)
        changes: dict[str, Any] = {"message": core.HELD} if status in core.WORKED_STATUSES else {}
        if progress is not None:
            changes["progress"] = progress
        try:
            await self.propose(c.SnapshotTransition(snapshot_id, expect, status, self.now(), changes))
        except Conflict as e:
            raise BadRequest(f"Invalid snapshot: {e}") from e

    async def force_delete_snapshot(self, ctx: Any, snapshot_id: str) -> None:
        require(ctx.is_cloud_admin, "volume_extension:snapshot_admin_actions:force_delete")
        await self._snapshot(ctx, snapshot_id)
        await self.propose(c.SnapshotTransition(snapshot_id, (), "deleting", self.now(), {}))

    # --- user messages (3.3) ------------------------------------------------------------------------
    async def list_messages(self, ctx: Any, marker: str | None, limit: int) -> list[dict[str, Any]]:
        viewer = viewer_of(ctx)
        if viewer.project_id is None and not viewer.sees_all:
            return []
        return await self.read(store.list_messages, viewer, marker, limit)

    async def get_message(self, ctx: Any, message_id: str) -> dict[str, Any]:
        return await self.read(store.visible_message, single_viewer(ctx), message_id)

    async def delete_message(self, ctx: Any, message_id: str) -> None:
        message = await self.get_message(ctx, message_id)
        require(ctx.can_write_project(message["project_id"]), "message:delete")
        await self.propose(c.DeleteMessage(message_id))

    async def up_nodes(self) -> set[str] | None:
        """Ids of the nodes that are up; None when this node is alone (or nobody told us)."""
        if self.cluster is None or not getattr(self.cluster, "clustered", False):
            return None
        return {n["id"] for n in await self.cluster.nodes() if n["up"]}

    async def count(self, ctx: Any, opts: core.ListOptions, all_projects: bool) -> int:
        """How many volumes a list's filters match (with_count, 3.45)."""
        viewer = viewer_of(ctx, all_projects)
        if viewer.project_id is None and not viewer.sees_all:
            return 0
        return await self.read(store.count, "volumes", viewer, opts)

    # --- worker's commands (reconcile.py) -----------------------------------------------------------
    async def finish(self, volume_id: str, expect: tuple[str, ...], to: str, **changes: Any) -> None:
        await self.propose(c.Transition(volume_id, expect, to, self.now(), changes))

    async def finish_snapshot(self, snapshot_id: str, expect: tuple[str, ...], to: str, **changes: Any) -> None:
        await self.propose(c.SnapshotTransition(snapshot_id, expect, to, self.now(), changes))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from cloudbox.volume.reconcile import Worker

        await Worker(self).run(task_status=task_status)

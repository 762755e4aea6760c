"""``svc.backups``: volume backups (Cinder's /backups): create (full or incremental), list, show,
update, delete (admins: force), restore into a new or an existing volume, admins' reset_status.
Requests change state only; the volume's node does the disk work (backup.py)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any, Mapping

from cloudbox.errors import BadRequest, Forbidden, NotFound
from cloudbox.identity.core import require
from cloudbox.object import core as object_core
from cloudbox.volume import commands as c
from cloudbox.volume import core, store
from cloudbox.volume import store_backups as sb
from cloudbox.volume.apply_backups import STATUSES

DEFAULT_CONTAINER = "volumebackups"
BACKUP_SERVICE = "cinder.backup.drivers.cloudbox_objects"  # what export_record names (Cinder's driver module)
RECORD_FIELDS = ("id", "project_id", "user_id", "volume_id", "snapshot_id", "name", "description", "container",
                 "size", "object_count", "is_incremental", "parent_id", "availability_zone", "metadata",
                 "data_timestamp", "created_at")


def _text(body: Mapping[str, Any], key: str, limit: int = 255) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise BadRequest(f"Invalid input received: {key} must be text of up to {limit} characters.")
    return value


class BackupService:
    def __init__(self, svc: Any) -> None:
        self.svc = svc

    async def get(self, ctx: Any, backup_id: str, *, write: str = "") -> dict[str, Any]:
        from cloudbox.volume.service import single_viewer

        backup = await self.svc.read(sb.visible_backup, single_viewer(ctx), backup_id)
        if not ctx.can_read_project(backup["project_id"]):
            raise NotFound(f"Backup {backup_id} could not be found.")
        if write:
            require(ctx.can_write_project(backup["project_id"]), write)
        return backup

    async def list(self, ctx: Any, marker: str | None, limit: int, all_projects: bool) -> list[dict[str, Any]]:
        from cloudbox.volume.service import viewer_of

        return await self.svc.read(sb.list_backups, viewer_of(ctx, all_projects), marker, limit)

    async def count(self, ctx: Any, all_projects: bool) -> int:
        from cloudbox.volume.service import viewer_of

        return await self.svc.read(sb.count_backups, viewer_of(ctx, all_projects))

    async def create(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        if getattr(self.svc, "objects", None) is None:
            raise BadRequest("Invalid input received: this cloud has no object store to keep backups in.")
        volume_id = body.get("volume_id")
        if not isinstance(volume_id, str) or not volume_id:
            raise BadRequest("Invalid input received: a backup needs the volume_id of the volume to back up.")
        volume = await self.svc._volume(ctx, volume_id, write="backup:create")
        container = body.get("container") or DEFAULT_CONTAINER
        if not isinstance(container, str):
            raise BadRequest("Invalid input received: container must be text.")
        try:
            object_core.check_container_name(container)
        except BadRequest as e:
            raise BadRequest(f"Invalid input received: container: {e}") from e
        snapshot_id = body.get("snapshot_id")
        if snapshot_id is not None:
            if not isinstance(snapshot_id, str):
                raise BadRequest("Invalid input received: snapshot_id must be a snapshot's id.")
            snapshot_id = (await self.svc._snapshot(ctx, snapshot_id))["id"]
        zone = body.get("availability_zone")
        if zone is not None and zone != self.svc.availability_zone:
            raise BadRequest(f"Invalid input received: availability zone {str(zone)[:60]!r} is invalid; "
                             f"this cloud has {self.svc.availability_zone!r}.")
        at = self.svc.now()
        row = {"id": str(uuid.uuid4()), "project_id": volume["project_id"], "user_id": ctx.user_id,
               "volume_id": volume["id"], "snapshot_id": snapshot_id, "name": _text(body, "name"),
               "description": _text(body, "description", 65535), "container": container, "status": "creating",
               "size": volume["size"], "object_count": 0,
               "is_incremental": core.parse_bool(body.get("incremental", False), "incremental"),
               "host": volume["host"], "availability_zone": self.svc.availability_zone, "fail_reason": None,
               "metadata": core.check_metadata(body.get("metadata") or {}), "restore_volume_id": None,
               "data_timestamp": at, "created_at": at, "updated_at": at}
        force = core.parse_bool(body.get("force", False), "force")
        return await self.svc.propose(c.CreateBackup(row, force, self.svc.defaults()))

    async def update(self, ctx: Any, backup_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        await self.get(ctx, backup_id, write="backup:update")
        changes: dict[str, Any] = {}
        for key, limit in (("name", 255), ("description", 65535)):
            if key in body:
                changes[key] = _text(body, key, limit)
        if "metadata" in body:
            changes["metadata"] = core.check_metadata(body["metadata"] or {})
        if not changes:
            raise BadRequest("Invalid input received: give a name, description or metadata to change.")
        return await self.svc.propose(c.UpdateBackup(backup_id, changes, self.svc.now()))

    async def delete(self, ctx: Any, backup_id: str, force: bool = False) -> None:
        await self.get(ctx, backup_id, write="backup:delete")
        if force:
            require(ctx.is_cloud_admin, "backup:force_delete")
        await self.svc.propose(c.DeleteBackup(backup_id, force, self.svc.now()))

    async def reset_status(self, ctx: Any, backup_id: str, status: Any) -> None:
        require(ctx.is_cloud_admin, "backup:backup-reset_status")
        await self.get(ctx, backup_id)
        if status not in ("available", "error"):
            raise BadRequest(f"Invalid input received: a backup's status may be reset to available or error, not "
                             f"{str(status)[:40]!r}.")
        await self.svc.propose(c.BackupTransition(backup_id, STATUSES, status, self.svc.now(), {}))

    async def restore(self, ctx: Any, backup_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        backup = await self.get(ctx, backup_id, write="backup:restore")
        volume_id = body.get("volume_id")
        name = _text(body, "name")
        new_volume = None
        at = self.svc.now()
        if volume_id:
            if not isinstance(volume_id, str):
                raise BadRequest("Invalid input received: volume_id must be a volume's id.")
            target = await self.svc._volume(ctx, volume_id, write="backup:restore")
            volume_id = target["id"]
        else:
            project = backup["project_id"]
            if not ctx.project_id or not ctx.can_write_project(project):
                raise Forbidden("Restoring into a new volume needs a token of the backup's project.")
            kind = await self.svc.read(store.default_type, project)
            volume_id = str(uuid.uuid4())
            new_volume = {
                "id": volume_id, "project_id": project, "user_id": ctx.user_id,
                "name": name or f"restore_backup_{backup_id}", "description": f"auto-created to restore backup "
                f"{backup_id}", "size": backup["size"], "status": "creating", "host": self.svc.host,
                "availability_zone": self.svc.availability_zone, "volume_type_id": kind["id"], "bootable": False,
                "readonly": False, "multiattach": False, "disk_format": "raw", "pending_size": None, "metadata": {},
                "image_metadata": {}, "migration_status": None, "message": "", "created_at": at, "updated_at": at,
                "launched_at": None, "group_id": None, "snapshot_id": None, "source_volid": None, "image_id": None}
        await self.svc.propose(c.RestoreBackup(backup_id, volume_id, new_volume, self.svc.defaults(), at))
        volume = await self.svc.read(store.must_volume, volume_id)
        return {"backup_id": backup_id, "volume_id": volume_id, "volume_name": volume["name"] or ""}

    # --- export_record / import_record (admins): a backup's row, to bring back after a database loss ---
    async def export_record(self, ctx: Any, backup_id: str) -> dict[str, str]:
        require(ctx.is_cloud_admin, "backup:export-import")
        backup = await self.get(ctx, backup_id)
        if backup["status"] != "available":
            raise BadRequest(f"Invalid backup: backup {backup_id} is {backup['status']}, not available.")
        record = {k: backup[k] for k in RECORD_FIELDS}
        record["manifest"] = backup_module().prefix(backup) + backup_module().MANIFEST
        return {"backup_service": BACKUP_SERVICE,
                "backup_url": base64.b64encode(json.dumps(record, sort_keys=True).encode()).decode()}

    async def import_record(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        require(ctx.is_cloud_admin, "backup:export-import")
        if body.get("backup_service") != BACKUP_SERVICE:
            raise BadRequest(f"Invalid input received: backup_service must be {BACKUP_SERVICE}.")
        try:
            record = json.loads(base64.b64decode(str(body.get("backup_url") or ""), validate=True))
        except (binascii.Error, ValueError) as e:
            raise BadRequest("Invalid input received: backup_url is not an exported backup record.") from e
        if not isinstance(record, dict) or any(k not in record for k in (*RECORD_FIELDS, "manifest")) or \
                not all(isinstance(record[k], str) for k in ("id", "project_id", "volume_id", "container", "manifest")) \
                or not core.UUID.match(record["id"]) or not isinstance(record["size"], int):
            raise BadRequest("Invalid input received: backup_url is not an exported backup record.")
        if getattr(self.svc, "objects", None) is None:
            raise BadRequest("Invalid input received: this cloud has no object store to keep backups in.")
        if not ctx.project_id:
            raise Forbidden("Importing a backup needs a project-scoped token: the backup is the project's.")
        at = self.svc.now()
        row = {k: record[k] for k in RECORD_FIELDS}
        # As Cinder's, the imported backup is the importing project's; it gets its own copy of the
        # objects, so it stands alone (no parent: its manifest names every chunk).
        row.update(project_id=ctx.project_id, user_id=ctx.user_id, status="available", host=self.svc.host,
                   fail_reason=None, volume_status=None, restore_volume_id=None, updated_at=at, parent_id=None,
                   metadata=core.check_metadata(record["metadata"] or {}), is_incremental=False)
        if await self.svc.read(sb.get_backup, row["id"]) is not None:
            raise BadRequest(f"Invalid backup: backup {row['id']} exists already.")
        try:
            row["object_count"] = await backup_module().copy_backup(
                self.svc.objects, record["project_id"], record["container"], record["manifest"], row)
        except NotFound as e:
            raise BadRequest(f"Invalid input received: the record's objects are not there: {e}") from e
        return await self.svc.propose(c.ImportBackup(row))


def backup_module() -> Any:
    from cloudbox.volume import backup

    return backup

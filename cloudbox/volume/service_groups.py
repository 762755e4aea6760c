"""``svc.groups``: generic volume groups (Cinder 3.13+): group types (admins), groups of volumes
of the group's volume types, group snapshots (a snapshot of each volume, not consistent across
them: cloudbox's backends report consistent_group_snapshot_enabled False), groups made from
another group or a group snapshot (their volumes are clones made by the worker)."""

from __future__ import annotations

import uuid
from typing import Any, Mapping

from cloudbox.errors import BadRequest, Forbidden
from cloudbox.identity.core import require
from cloudbox.volume import commands as c
from cloudbox.volume import core, store
from cloudbox.volume import store_groups as sg

GROUP_STATUSES = ("creating", "available", "deleting", "error", "error_deleting", "updating", "in-use")
SNAPSHOT_STATUSES = ("creating", "available", "deleting", "error", "error_deleting")


def _text(body: Mapping[str, Any], key: str, limit: int = 255) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise BadRequest(f"Invalid input received: {key} must be text of up to {limit} characters.")
    return value


def _specs(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and 0 < len(k) <= 255 and isinstance(v, str)
                                              and len(v) <= 255 for k, v in value.items()):
        raise BadRequest("Invalid input received: group specs are an object of strings (keys 1-255 characters).")
    return dict(value)


class GroupService:
    def __init__(self, svc: Any) -> None:
        self.svc = svc

    # --- group types ----------------------------------------------------------------------------------
    async def list_types(self, ctx: Any, is_public: bool | None, sort: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return await self.svc.read(sg.list_types, bool(ctx.is_cloud_admin), is_public, sort)

    async def get_type(self, ctx: Any, type_id: str) -> dict[str, Any]:
        return await self.svc.read(sg.find_type, type_id, bool(ctx.is_cloud_admin))

    async def create_type(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        require(ctx.is_cloud_admin, "group:group_types:create")
        name = _text(body, "name")
        if not name or not name.strip():
            raise BadRequest("Invalid input received: a group type needs a name of 1 to 255 characters.")
        at = self.svc.now()
        row = {"id": str(uuid.uuid4()), "name": name.strip(), "description": _text(body, "description", 65535),
               "is_public": core.parse_bool(body.get("is_public", True), "is_public"),
               "group_specs": _specs(body.get("group_specs") or {}), "created_at": at, "updated_at": at}
        return await self.svc.propose(c.CreateGroupType(row))

    async def update_type(self, ctx: Any, type_id: str, body: Mapping[str, Any] | None = None,
                          specs: Mapping[str, Any] | None = None, remove: tuple[str, ...] = ()) -> dict[str, Any]:
        require(ctx.is_cloud_admin, "group:group_types:update")
        changes: dict[str, Any] = {}
        for key in ("name", "description"):
            if body and key in body:
                changes[key] = _text(body, key, 255 if key == "name" else 65535)
        if "name" in changes and not (changes["name"] or "").strip():
            raise BadRequest("Invalid input received: a group type's name cannot be empty.")
        if body and "is_public" in body:
            changes["is_public"] = core.parse_bool(body["is_public"], "is_public")
        if body is not None and not changes:
            raise BadRequest("Invalid input received: give name, description or is_public to update.")
        return await self.svc.propose(c.UpdateGroupType(type_id, changes, _specs(specs or {}), remove,
                                                        self.svc.now()))

    async def delete_type(self, ctx: Any, type_id: str) -> None:
        require(ctx.is_cloud_admin, "group:group_types:delete")
        await self.svc.propose(c.DeleteGroupType(type_id))

    # --- groups -------------------------------------------------------------------------------------
    def _project(self, ctx: Any) -> str:
        if not ctx.project_id:
            raise Forbidden("Groups need a project-scoped token.")
        require(ctx.can_write_project(ctx.project_id), "group:create")
        return ctx.project_id

    async def create(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        from cloudbox.volume.service import viewer_of

        project = self._project(ctx)
        group_type = body.get("group_type")
        if not isinstance(group_type, str) or not group_type:
            raise BadRequest("Invalid input received: a group needs its group_type.")
        kind = await self.svc.read(sg.find_type, group_type, bool(ctx.is_cloud_admin))
        names = body.get("volume_types")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise BadRequest("Invalid input received: a group needs a list of volume_types.")
        type_ids = []
        for name in names:
            type_ids.append((await self.svc.read(store.find_type, viewer_of(ctx), name))["id"])
        zone = body.get("availability_zone") or self.svc.availability_zone
        if zone != self.svc.availability_zone:
            raise BadRequest(f"Invalid input received: availability zone {str(zone)[:60]!r} is invalid.")
        return await self.svc.propose(c.CreateGroup(self._row(ctx, project, body, kind["id"], type_ids), [],
                                                    self.svc.defaults()))

    def _row(self, ctx: Any, project: str, body: Mapping[str, Any], type_id: str, type_ids: list[str],
             **sources: str | None) -> dict[str, Any]:
        at = self.svc.now()
        return {"id": str(uuid.uuid4()), "project_id": project, "user_id": ctx.user_id, "name": _text(body, "name"),
                "description": _text(body, "description", 65535), "status": "available", "group_type_id": type_id,
                "volume_type_ids": type_ids, "availability_zone": self.svc.availability_zone,
                "group_snapshot_id": sources.get("group_snapshot_id"),
                "source_group_id": sources.get("source_group_id"), "created_at": at, "updated_at": at}

    async def create_from_source(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        """A group whose volumes copy another group's volumes, or a group snapshot's snapshots."""
        project = self._project(ctx)
        source_id, snapshot_id = body.get("source_group_id"), body.get("group_snapshot_id")
        if bool(source_id) == bool(snapshot_id) or not isinstance(source_id or snapshot_id, str):
            raise BadRequest("Invalid input received: give one of source_group_id and group_snapshot_id.")
        sources: list[tuple[str, dict[str, Any]]] = []  # (column, source row) per new volume
        if source_id:
            source = await self.get(ctx, source_id)
            for volume_id in source["volumes"]:
                sources.append(("source_volid", await self.svc.read(store.get_volume, volume_id)))
        else:
            snapshot = await self.get_snapshot(ctx, snapshot_id)
            source = await self.svc.read(sg.must_group, snapshot["group_id"])
            for member in await self.svc.read(sg.snapshots_of, snapshot_id):
                sources.append(("snapshot_id", member))
        row = self._row(ctx, project, body, source["group_type_id"], list(source["volume_type_ids"]),
                        source_group_id=source_id, group_snapshot_id=snapshot_id)
        at = row["created_at"]
        volumes = []
        for column, origin in sources:
            volume = origin if column == "source_volid" else await self.svc.read(store.get_volume, origin["volume_id"])
            volumes.append({
                "id": str(uuid.uuid4()), "project_id": project, "user_id": ctx.user_id, "name": None,
                "description": None, "size": origin["size"], "status": "creating", "host": origin["host"],
                "availability_zone": row["availability_zone"], "volume_type_id": volume["volume_type_id"],
                "bootable": volume["bootable"], "readonly": False, "multiattach": volume["multiattach"],
                "disk_format": "raw", "pending_size": None, "metadata": {}, "image_metadata": volume["image_metadata"],
                "message": "", "migration_status": None, "created_at": at, "updated_at": at, "launched_at": None,
                "snapshot_id": origin["id"] if column == "snapshot_id" else None,
                "source_volid": origin["id"] if column == "source_volid" else None, "image_id": None,
                "group_id": row["id"]})
        return await self.svc.propose(c.CreateGroup(row, volumes, self.svc.defaults()))

    async def get(self, ctx: Any, group_id: str) -> dict[str, Any]:
        from cloudbox.volume.service import single_viewer

        group = await self.svc.read(sg.visible_group, single_viewer(ctx), group_id)
        require(ctx.can_read_project(group["project_id"]), "group:get")
        return group

    async def list(self, ctx: Any, marker: str | None, limit: int, all_projects: bool) -> list[dict[str, Any]]:
        from cloudbox.volume.service import viewer_of

        viewer = viewer_of(ctx, all_projects)
        if viewer.project_id is None and not viewer.sees_all:
            return []
        return await self.svc.read(sg.list_groups, viewer, marker, limit)

    async def update(self, ctx: Any, group_id: str, body: Mapping[str, Any]) -> None:
        group = await self.get(ctx, group_id)
        require(ctx.can_write_project(group["project_id"]), "group:update")
        changes = {k: _text(body, k, 255 if k == "name" else 65535) for k in ("name", "description") if k in body}
        lists = []
        for key in ("add_volumes", "remove_volumes"):
            raw = body.get(key) or ""
            if not isinstance(raw, str) or len(raw) > 65535:
                raise BadRequest(f"Invalid input received: {key} is a comma-separated list of volume ids.")
            lists.append(tuple(v.strip() for v in raw.split(",") if v.strip()))
        if not changes and not any(lists):
            raise BadRequest("Invalid input received: give name, description, add_volumes or remove_volumes.")
        if set(lists[0]) & set(lists[1]):
            raise BadRequest("Invalid input received: a volume cannot be both added and removed.")
        await self.svc.propose(c.UpdateGroup(group_id, changes, lists[0], lists[1], self.svc.now()))

    async def delete(self, ctx: Any, group_id: str, delete_volumes: Any) -> None:
        group = await self.get(ctx, group_id)
        require(ctx.can_write_project(group["project_id"]), "group:delete")
        await self.svc.propose(c.DeleteGroup(group_id, core.parse_bool(delete_volumes, "delete-volumes"),
                                             self.svc.now()))

    async def reset_status(self, ctx: Any, object_id: str, status: Any, snapshot: bool = False) -> None:
        require(ctx.is_cloud_admin, "group:reset_group_snapshot_status" if snapshot else "group:reset_status")
        await (self.get_snapshot(ctx, object_id) if snapshot else self.get(ctx, object_id))
        if status not in (SNAPSHOT_STATUSES if snapshot else GROUP_STATUSES):
            raise BadRequest(f"Invalid input received: status {str(status)[:40]!r} is not a group status.")
        await self.svc.propose(c.GroupStatus(object_id, status, self.svc.now(), snapshot))

    # --- group snapshots ----------------------------------------------------------------------------
    async def create_snapshot(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        group_id = body.get("group_id")
        if not isinstance(group_id, str) or not group_id:
            raise BadRequest("Invalid input received: a group snapshot needs the group_id of its group.")
        group = await self.get(ctx, group_id)
        require(ctx.can_write_project(group["project_id"]), "group:create_group_snapshot")
        if not group["volumes"]:
            raise BadRequest(f"Invalid group: group {group_id} has no volumes to snapshot.")
        at = self.svc.now()
        row = {"id": str(uuid.uuid4()), "project_id": group["project_id"], "user_id": ctx.user_id,
               "group_id": group_id, "group_type_id": group["group_type_id"], "name": _text(body, "name"),
               "description": _text(body, "description", 65535), "status": "available", "created_at": at,
               "updated_at": at}
        snapshots = [{"id": str(uuid.uuid4()), "project_id": group["project_id"], "user_id": ctx.user_id,
                      "volume_id": volume_id, "name": None, "description": None, "size": 0, "status": "creating",
                      "host": "", "metadata": {}, "message": "", "created_at": at, "updated_at": at,
                      "group_snapshot_id": row["id"]} for volume_id in group["volumes"]]
        return await self.svc.propose(c.CreateGroupSnapshot(row, snapshots, self.svc.defaults()))

    async def get_snapshot(self, ctx: Any, snapshot_id: str) -> dict[str, Any]:
        from cloudbox.volume.service import single_viewer

        found = await self.svc.read(sg.visible_group_snapshot, single_viewer(ctx), snapshot_id)
        require(ctx.can_read_project(found["project_id"]), "group:get_group_snapshot")
        return found

    async def list_snapshots(self, ctx: Any, marker: str | None, limit: int,
                             all_projects: bool) -> list[dict[str, Any]]:
        from cloudbox.volume.service import viewer_of

        viewer = viewer_of(ctx, all_projects)
        if viewer.project_id is None and not viewer.sees_all:
            return []
        return await self.svc.read(sg.list_group_snapshots, viewer, marker, limit)

    async def delete_snapshot(self, ctx: Any, snapshot_id: str) -> None:
        found = await self.get_snapshot(ctx, snapshot_id)
        require(ctx.can_write_project(found["project_id"]), "group:delete_group_snapshot")
        await self.svc.propose(c.DeleteGroupSnapshot(snapshot_id, self.svc.now()))

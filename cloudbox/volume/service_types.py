"""``service.types``: volume types (extra specs, access, defaults), quotas, limits, zones."""

from __future__ import annotations

import uuid
from typing import Any, Mapping

from cloudbox.errors import BadRequest, Forbidden, NotFound
from cloudbox.identity.core import require
from cloudbox.volume import commands as c
from cloudbox.volume import core, store


class TypeService:
    def __init__(self, svc: Any) -> None:
        self.svc = svc

    # --- types ------------------------------------------------------------------------------------
    async def list(self, ctx: Any, is_public: bool | None) -> list[dict[str, Any]]:
        from cloudbox.volume.service import viewer_of

        # Public types and the private ones the caller's project was given (all of them for admins).
        return await self.svc.read(store.list_types, viewer_of(ctx, all_projects=True), is_public)

    async def get(self, ctx: Any, type_id: str) -> dict[str, Any]:
        from cloudbox.volume.service import viewer_of

        if type_id == "default":
            return await self.svc.read(store.default_type, ctx.project_id)
        return await self.svc.read(store.find_type, viewer_of(ctx, all_projects=True), type_id)

    async def create(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        require(ctx.is_cloud_admin, "volume_extension:types_manage")
        name = str(body.get("name") or "").strip()
        if not name or len(name) > 255:
            raise BadRequest("Invalid input received: a volume type needs a name of 1 to 255 characters.")
        specs = body.get("extra_specs") or {}
        core.check_metadata(specs)
        is_public = core.parse_bool(body.get("os-volume-type-access:is_public", body.get("is_public", True)),
                                    "is_public")
        at = self.svc.now()
        row = {"id": str(uuid.uuid4()), "name": name, "description": body.get("description"),
               "is_public": is_public, "extra_specs": specs, "created_at": at, "updated_at": at}
        return await self.svc.propose(c.CreateType(row))

    async def update(self, ctx: Any, type_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        require(ctx.is_cloud_admin, "volume_extension:types_manage")
        changes: dict[str, Any] = {}
        if "name" in body:
            name = str(body["name"] or "").strip()
            if not name or len(name) > 255:
                raise BadRequest("Invalid input received: a volume type's name has 1 to 255 characters.")
            changes["name"] = name
        if "description" in body:
            changes["description"] = body["description"]
        if "is_public" in body:
            changes["is_public"] = core.parse_bool(body["is_public"], "is_public")
        if not changes:
            raise BadRequest("Invalid input received: give name, description or is_public.")
        return await self.svc.propose(c.UpdateType(type_id, changes, self.svc.now()))

    async def delete(self, ctx: Any, type_id: str) -> None:
        require(ctx.is_cloud_admin, "volume_extension:types_manage")
        await self.svc.propose(c.DeleteType(type_id))

    async def set_extra_specs(self, ctx: Any, type_id: str, specs: Any, unset: tuple[str, ...] = ()) -> dict[str, str]:
        require(ctx.is_cloud_admin, "volume_extension:types_extra_specs:update")
        values = core.check_metadata(specs or {})
        kind = await self.svc.propose(c.SetExtraSpecs(type_id, values, unset, self.svc.now()))
        return kind["extra_specs"]

    async def access(self, ctx: Any, type_id: str) -> list[str]:
        require(ctx.is_cloud_admin, "volume_extension:volume_type_access")
        kind = await self.svc.read(store.get_type, type_id)
        if kind is None:
            raise NotFound(f"Volume type {type_id} could not be found.")
        if kind["is_public"]:
            raise NotFound(f"Access list not available for public volume type {type_id}.")
        return await self.svc.read(store.type_access, type_id)

    async def set_access(self, ctx: Any, type_id: str, project_id: Any, grant: bool) -> None:
        require(ctx.is_cloud_admin, "volume_extension:volume_type_access:addProjectAccess")
        if not isinstance(project_id, str) or not project_id:
            raise BadRequest("Invalid input received: project is required.")
        await self.svc.propose(c.TypeAccess(type_id, project_id, grant))

    # --- default types (3.62) -------------------------------------------------------------------
    async def set_default(self, ctx: Any, project_id: str, type_name: Any) -> dict[str, Any]:
        require(ctx.is_cloud_admin, "volume_extension:default_set_or_update")
        kind = await self.svc.read(store.find_type, core.Viewer(None, True), str(type_name or ""))
        await self.svc.propose(c.SetDefaultType(project_id, kind["id"]))
        return {"project_id": project_id, "volume_type_id": kind["id"]}

    async def get_default(self, ctx: Any, project_id: str) -> dict[str, Any]:
        require(ctx.is_cloud_admin, "volume_extension:default_get")
        for row in await self.svc.read(store.default_types):
            if row["project_id"] == project_id:
                return {"project_id": project_id, "volume_type_id": row["type_id"]}
        raise NotFound(f"Default type for project {project_id} could not be found.")

    async def list_defaults(self, ctx: Any) -> list[dict[str, Any]]:
        require(ctx.is_cloud_admin, "volume_extension:default_get_all")
        return [{"project_id": r["project_id"], "volume_type_id": r["type_id"]}
                for r in await self.svc.read(store.default_types) if r["project_id"]]

    async def unset_default(self, ctx: Any, project_id: str) -> None:
        require(ctx.is_cloud_admin, "volume_extension:default_unset")
        await self.svc.propose(c.SetDefaultType(project_id, None))

    # --- quotas, limits, zones ------------------------------------------------------------------
    def _may_read_quota(self, ctx: Any, project_id: str) -> None:
        if not (ctx.is_cloud_reader or ctx.can_read_project(project_id)):
            raise Forbidden(f"You are not authorized to read the quotas of project {project_id}.")

    async def quota(self, ctx: Any, project_id: str) -> tuple[dict[str, int], dict[str, int]]:
        """(limits, usage) of a project."""
        self._may_read_quota(ctx, project_id)

        def read(db: Any) -> tuple[dict[str, int], dict[str, int]]:
            return store.quota_limits(db, project_id, self.svc.defaults()), store.quota_usage(db, project_id)

        return await self.svc.read(read)

    async def quota_defaults(self, ctx: Any, project_id: str) -> dict[str, int]:
        self._may_read_quota(ctx, project_id)
        return await self.svc.read(store.quota_limits, store.QUOTA_CLASS, self.svc.defaults())

    async def set_quota(self, ctx: Any, project_id: str, body: Mapping[str, Any]) -> dict[str, int]:
        require(ctx.is_cloud_admin, "volume_extension:quotas:update")
        known = set(await self.svc.read(store.quota_limits, project_id, self.svc.defaults()))
        limits = core.check_quota_limits(body, known)
        await self.svc.propose(c.SetQuota(project_id, limits))
        return (await self.quota(ctx, project_id))[0]

    async def delete_quota(self, ctx: Any, project_id: str) -> None:
        require(ctx.is_cloud_admin, "volume_extension:quotas:delete")
        await self.svc.propose(c.DeleteQuota(project_id))

    async def set_class_quota(self, ctx: Any, name: str, body: Mapping[str, Any]) -> dict[str, int]:
        require(ctx.is_cloud_admin, "volume_extension:quota_classes:update")
        if name != "default":
            raise BadRequest("Only the default quota class is kept.")
        known = set(await self.svc.read(store.quota_limits, store.QUOTA_CLASS, self.svc.defaults()))
        await self.svc.propose(c.SetQuota(store.QUOTA_CLASS, core.check_quota_limits(body, known)))
        return await self.svc.read(store.quota_limits, store.QUOTA_CLASS, self.svc.defaults())

    async def limits(self, ctx: Any, project_id: str | None) -> tuple[dict[str, int], dict[str, int]]:
        project = project_id or ctx.project_id
        if not project:
            raise BadRequest("Limits are those of a project: use a project-scoped token.")
        return await self.quota(ctx, project)

    def zones(self) -> list[str]:
        return [self.svc.availability_zone]

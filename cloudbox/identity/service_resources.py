"""Identity's resources as callers see them: domains, projects, users, groups and roles, the
catalog's regions, services and endpoints, group membership, and what a user may scope to.

Each method takes the caller's AuthContext, finds what it names (NotFound first), checks the
caller may act on it (Forbidden), and changes state through the service's commands.  The API's
handlers (api.py, api_projects.py, api_users.py, api_catalog.py) call one method each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound
from cloudbox.identity import commands as c
from cloudbox.identity import core, store
from cloudbox.identity import core_extensions as x
from cloudbox.identity.core import AuthContext, pick, require

if TYPE_CHECKING:
    from cloudbox.identity.service import IdentityService

Row = dict[str, Any]


class Resources:
    def __init__(self, identity: IdentityService) -> None:
        self.identity = identity

    async def _not_cloud_actor(self, ctx: AuthContext, actor_type: str, actor_id: str, action: str) -> None:
        """Users and groups with roles on the system or the admin project are the cloud admins' to
        change: a domain admin changing one (a password, a membership) would become one."""
        if not ctx.is_cloud_admin:
            require(not await self.identity.read(store.holds_cloud_roles, actor_type, actor_id), action)

    # --- any entity ------------------------------------------------------------------------
    async def list(self, ctx: AuthContext, entity: str, filters: dict[str, Any], marker: str | None,
                   limit: int) -> list[Row]:
        """One page (``limit`` + 1 rows, to tell if there are more) of an entity in id order;
        callers below cloud level see their own domain's only.  Projects asked for with
        is_domain=true are the domains, as Keystone serves them."""
        require(core.may_read(ctx, entity, None), f"identity:list_{core.PLURAL[entity]}")
        filters = dict(filters)
        if entity == "project" and filters.pop("is_domain", None):
            require(core.may_read(ctx, "domain", None), "identity:list_domains")
            wanted = {k: v for k, v in filters.items() if k in ("name", "enabled")}
            rows = await self.identity.read(lambda db: store.page(db, "domain", wanted, marker=marker, limit=limit))
            return [core.domain_as_project(r) for r in rows]
        if entity in core.DOMAIN_OWNED and not ctx.is_cloud_reader:
            filters["domain_id"] = ctx.domain_id
        if entity == "role" and "domain_id" not in filters:
            filters["domain_id"] = ""  # global roles unless a domain's are asked for
        return await self.identity.read(lambda db: store.page(db, entity, filters, marker=marker, limit=limit))

    async def _domain_as_project(self, entity: str, id: str) -> Row | None:
        """The domain a project id names (Keystone serves domains as projects with is_domain)."""
        if entity != "project" or await self.identity.read(store.get, "project", id) is not None:
            return None
        return await self.identity.read(store.get, "domain", id)

    async def show(self, ctx: AuthContext, entity: str, id: str) -> Row:
        domain = await self._domain_as_project(entity, id)
        if domain is not None:
            require(core.may_read(ctx, "domain", domain), "identity:get_project")
            return core.domain_as_project(domain)
        row = await self.identity.get(entity, id)
        require(core.may_read(ctx, entity, row), f"identity:get_{entity}")
        return row

    async def delete(self, ctx: AuthContext, entity: str, id: str) -> None:
        domain = await self._domain_as_project(entity, id)
        if domain is not None:
            require(ctx.is_cloud_admin, "identity:delete_project")
            await self.identity.delete("domain", domain["id"])
            return
        row = await self.identity.get(entity, id)
        require(core.may_write(ctx, entity, row), f"identity:delete_{entity}")
        if entity in ("user", "group"):
            await self._not_cloud_actor(ctx, entity, row["id"], f"identity:delete_{entity}")
        core.check_protected(entity, row, deleting=True)
        if entity == "user" and row["id"] == ctx.user_id:
            raise Forbidden("You cannot delete the user you are authenticated as.")
        await self.identity.delete(entity, row["id"])

    # --- domains and projects ----------------------------------------------------------------
    async def create_domain(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        require(ctx.is_cloud_admin, "identity:create_domain")
        row = {"name": body["name"], "description": body.get("description") or "",
               "enabled": body.get("enabled", True)}
        if body.get("id"):
            row["id"] = body["id"]
        return await self.identity.create("domain", row)

    async def update_domain(self, ctx: AuthContext, domain_id: str, body: dict[str, Any]) -> Row:
        row = await self.identity.get("domain", domain_id)
        require(ctx.is_cloud_admin, "identity:update_domain")
        return await self.identity.update("domain", row["id"], pick(body, ("name", "description", "enabled")))

    async def create_project(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        if body.get("is_domain"):  # a project that is a domain: Keystone's other way to make one
            if body.get("parent_id") or body.get("domain_id"):
                raise BadRequest("A project that is a domain has neither a parent nor a domain.")
            return core.domain_as_project(await self.create_domain(ctx, body))
        domain_id = body.get("domain_id") or core.caller_domain(ctx)
        parent_id = body.get("parent_id")
        if parent_id == domain_id:  # Keystone names the domain as the parent of a top-level project
            parent_id = None
        if parent_id:
            parent = await self.identity.get("project", parent_id)
            if parent["domain_id"] != domain_id:
                raise BadRequest("A project's parent must be in the same domain.")
        require(ctx.can_manage_domain(domain_id), "identity:create_project")
        return await self.identity.create("project", {
            "name": body["name"], "domain_id": domain_id, "parent_id": parent_id,
            "description": body.get("description") or "", "enabled": body.get("enabled", True),
            "tags": list(dict.fromkeys(body.get("tags") or [])),
            "extra": x.extra_attributes(body, x.PROJECT_FIELDS) or {},
        })

    async def update_project(self, ctx: AuthContext, project_id: str, body: dict[str, Any]) -> Row:
        domain = await self._domain_as_project("project", project_id)
        if domain is not None:
            return core.domain_as_project(await self.update_domain(ctx, domain["id"], body))
        row = await self.identity.get("project", project_id)
        changes = pick(body, ("name", "description", "enabled", "tags"))
        extra = x.extra_attributes(body, x.PROJECT_FIELDS, row["extra"])
        if extra is not None:
            changes["extra"] = extra
        # Its manager names and describes a project; enabling it is for its domain's admins.
        manager = ctx.can_manage_project(row["id"]) and "enabled" not in changes
        require(manager or core.may_write(ctx, "project", row), "identity:update_project")
        core.check_protected("project", row, changes=changes)
        return await self.identity.update("project", row["id"], changes)

    # --- users and groups --------------------------------------------------------------------
    async def create_user(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        domain_id = body.get("domain_id") or core.caller_domain(ctx)
        require(ctx.can_manage_domain(domain_id), "identity:create_user")
        row = {
            "name": body["name"], "domain_id": domain_id, "enabled": body.get("enabled", True),
            "default_project_id": body.get("default_project_id"), "description": body.get("description") or "",
            "email": body.get("email"), "extra": x.extra_attributes(body, x.USER_FIELDS) or {},
        }
        if body.get("password"):
            row["password_hash"] = await self.identity.hash_password(body["password"])
            row["password_changed_at"] = self.identity.now_iso()
        return await self.identity.create("user", row)

    async def update_user(self, ctx: AuthContext, user_id: str, body: dict[str, Any]) -> Row:
        """Change a user; disabling one or setting a password revokes the user's tokens."""
        row = await self.identity.get("user", user_id)
        require(core.may_write(ctx, "user", row), "identity:update_user")
        await self._not_cloud_actor(ctx, "user", row["id"], "identity:update_user")
        changes = pick(body, ("name", "enabled", "default_project_id", "description", "email"))
        extra = x.extra_attributes(body, x.USER_FIELDS, row["extra"])
        if extra is not None:
            changes["extra"] = extra
        revoke = changes.get("enabled") is False
        if body.get("password"):
            changes["password_hash"] = await self.identity.hash_password(body["password"])
            changes["password_changed_at"] = self.identity.now_iso()
            revoke = True
        if changes.get("enabled") is False and row["id"] == ctx.user_id:
            raise Forbidden("You cannot disable the user you are authenticated as.")
        return await self.identity.update("user", row["id"], changes, revoke_tokens=revoke)

    async def change_password(self, ctx: AuthContext, user_id: str, original: str, password: str) -> None:
        """A password change proven by the original password, as Keystone takes it from anyone
        who knows it; revokes the user's tokens."""
        await self.identity.get("user", user_id)
        await self.identity.check_password({"user": {"id": user_id, "password": original}})
        changes = {"password_hash": await self.identity.hash_password(password),
                   "password_changed_at": self.identity.now_iso()}
        await self.identity.update("user", user_id, changes, revoke_tokens=True)

    async def create_group(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        domain_id = body.get("domain_id") or core.caller_domain(ctx)
        require(ctx.can_manage_domain(domain_id), "identity:create_group")
        return await self.identity.create(
            "group", {"name": body["name"], "domain_id": domain_id, "description": body.get("description") or ""})

    async def update_group(self, ctx: AuthContext, group_id: str, body: dict[str, Any]) -> Row:
        row = await self.identity.get("group", group_id)
        require(core.may_write(ctx, "group", row), "identity:update_group")
        return await self.identity.update("group", row["id"], pick(body, ("name", "description")))

    async def user_projects(self, ctx: AuthContext, user_id: str) -> list[Row]:
        """The projects a user holds a role on (directly, by group, or inherited)."""
        user = await self.identity.get("user", user_id)
        require(user_id == ctx.user_id or ctx.can_read_domain(user["domain_id"]), "identity:list_user_projects")
        return await self.identity.read(store.user_target_rows, user_id, "project")

    async def user_groups(self, ctx: AuthContext, user_id: str) -> list[Row]:
        user = await self.identity.get("user", user_id)
        require(user_id == ctx.user_id or ctx.can_read_domain(user["domain_id"]), "identity:list_groups_for_user")
        return await self.identity.read(store.user_groups, user_id)

    async def group_users(self, ctx: AuthContext, group_id: str, marker: str | None, limit: int) -> list[Row]:
        """One page (``limit`` + 1 rows) of a group's members."""
        group = await self.identity.get("group", group_id)
        require(ctx.can_read_domain(group["domain_id"]), "identity:list_users_in_group")
        return await self.identity.read(
            lambda db: store.group_users_page(db, group_id, marker=marker, limit=limit))

    async def check_member(self, ctx: AuthContext, group_id: str, user_id: str) -> None:
        """Nothing if the user is in the group, else NotFound."""
        group = await self.identity.get("group", group_id)
        await self.identity.get("user", user_id)
        require(ctx.can_read_domain(group["domain_id"]) or user_id == ctx.user_id, "identity:check_user_in_group")
        if group_id not in await self.identity.read(store.user_group_ids, user_id):
            raise NotFound(f"User {user_id} is not a member of group {group_id}.")

    async def add_member(self, ctx: AuthContext, group_id: str, user_id: str) -> None:
        await self._membership(ctx, group_id, user_id, "add")

    async def remove_member(self, ctx: AuthContext, group_id: str, user_id: str) -> None:
        await self._membership(ctx, group_id, user_id, "remove")

    async def _membership(self, ctx: AuthContext, group_id: str, user_id: str, action: str) -> None:
        group = await self.identity.get("group", group_id)
        user = await self.identity.get("user", user_id)
        require(ctx.can_manage_domain(group["domain_id"]), f"identity:{action}_user_to_group")
        await self._not_cloud_actor(ctx, "group", group_id, f"identity:{action}_user_to_group")
        await self._not_cloud_actor(ctx, "user", user["id"], f"identity:{action}_user_to_group")
        cmd = c.AddGroupMember(group_id, user["id"]) if action == "add" else c.RemoveGroupMember(group_id, user["id"])
        await self.identity.propose(cmd)

    # --- what the token's user may scope to -----------------------------------------------------
    async def scope_targets(self, ctx: AuthContext, target_type: str) -> list[Row]:
        """The enabled projects (or domains) the token's user holds a role on."""
        return await self.identity.read(store.user_target_rows, ctx.user_id, target_type, True)

    async def may_scope_to_system(self, ctx: AuthContext) -> bool:
        return bool(await self.identity.read(store.direct_role_ids, ctx.user_id, "system", "all"))

    # --- roles ------------------------------------------------------------------------------------
    async def create_role(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        require(ctx.is_cloud_admin, "identity:create_role")
        return await self.identity.create("role", {
            "name": body["name"], "domain_id": body.get("domain_id") or "",
            "description": body.get("description") or ""})

    async def update_role(self, ctx: AuthContext, role_id: str, body: dict[str, Any]) -> Row:
        row = await self.identity.get("role", role_id)
        require(ctx.is_cloud_admin, "identity:update_role")
        changes = pick(body, ("name", "description"))
        core.check_protected("role", row, changes=changes)
        return await self.identity.update("role", row["id"], changes)

    # --- the catalog: regions, services, endpoints ---------------------------------------------------
    async def create_region(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        require(ctx.is_cloud_admin, "identity:create_region")
        row = {"description": body.get("description") or "", "parent_region_id": body.get("parent_region_id")}
        if body.get("id"):
            row["id"] = body["id"]
        return await self.identity.create("region", row)

    async def put_region(self, ctx: AuthContext, region_id: str, body: dict[str, Any]) -> Row:
        """PUT /regions/{id}: a region made with the id the path names."""
        if body.get("id") not in (None, region_id):
            raise BadRequest("The region id in the body differs from the one in the path.")
        return await self.create_region(ctx, {**body, "id": region_id})

    async def _create_region_once(self, region_id: str) -> None:
        try:
            await self.identity.create("region", {"id": region_id, "description": "", "parent_region_id": None})
        except Conflict:  # made meanwhile by another request: what we wanted
            pass

    async def update_region(self, ctx: AuthContext, region_id: str, body: dict[str, Any]) -> Row:
        row = await self.identity.get("region", region_id)
        require(ctx.is_cloud_admin, "identity:update_region")
        changes = pick(body, ("description", "parent_region_id"))
        if changes.get("parent_region_id") == row["id"]:
            raise BadRequest("A region cannot be its own parent.")
        return await self.identity.update("region", row["id"], changes)

    async def create_service(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        require(ctx.is_cloud_admin, "identity:create_service")
        return await self.identity.create("service", {
            "type": body["type"], "name": body.get("name") or "", "description": body.get("description") or "",
            "enabled": body.get("enabled", True),
        })

    async def update_service(self, ctx: AuthContext, service_id: str, body: dict[str, Any]) -> Row:
        row = await self.identity.get("service", service_id)
        require(ctx.is_cloud_admin, "identity:update_service")
        return await self.identity.update(
            "service", row["id"], pick(body, ("type", "name", "description", "enabled")))

    async def create_endpoint(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        require(ctx.is_cloud_admin, "identity:create_endpoint")
        legacy_region = body.get("region") if not body.get("region_id") else None
        if legacy_region:
            # As Keystone: a region named by the v2-era "region" is made if missing (region_id
            # must name one that exists).  The service is checked first, so a bad one makes nothing.
            await self.identity.get("service", body["service_id"])
            if await self.identity.read(store.get, "region", legacy_region) is None:
                await self._create_region_once(legacy_region)
        return await self.identity.create("endpoint", {
            "service_id": body["service_id"], "interface": body["interface"], "url": body["url"],
            "region_id": body.get("region_id") or body.get("region"), "enabled": body.get("enabled", True),
        })

    async def update_endpoint(self, ctx: AuthContext, endpoint_id: str, body: dict[str, Any]) -> Row:
        row = await self.identity.get("endpoint", endpoint_id)
        require(ctx.is_cloud_admin, "identity:update_endpoint")
        changes = pick(body, ("service_id", "interface", "url", "region_id", "enabled"))
        if "region" in body and "region_id" not in body:  # the v2-era name clients still send
            changes["region_id"] = body["region"]
            if body["region"]:  # made if missing, as at create
                if body.get("service_id"):
                    await self.identity.get("service", body["service_id"])
                if await self.identity.read(store.get, "region", body["region"]) is None:
                    await self._create_region_once(body["region"])
        return await self.identity.update("endpoint", row["id"], changes)

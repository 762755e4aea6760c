"""Keystone v3 routes: authentication and tokens, and the identity resources.

Role assignments and application credentials are in ``api_grants.py``.
"""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.errors import BadRequest, Forbidden, NotFound
from cloudbox.identity import core, models, store
from cloudbox.identity.core import AuthContext, require
from cloudbox.identity.service import ADMIN_PROJECT_NAME, IdentityService

PLURAL = {
    "domain": "domains", "project": "projects", "user": "users", "group": "groups", "role": "roles",
    "region": "regions", "service": "services", "endpoint": "endpoints",
}
FILTERS = {
    "domain": ("name", "enabled"),
    "project": ("name", "domain_id", "enabled", "parent_id"),
    "user": ("name", "domain_id", "enabled"),
    "group": ("name", "domain_id"),
    "role": ("name", "domain_id"),
    "region": ("parent_region_id",),
    "service": ("type", "name"),
    "endpoint": ("interface", "service_id", "region_id"),
}
DOMAIN_OWNED = ("project", "user", "group")
CATALOG_ENTITIES = ("region", "service", "endpoint")


def version_document(base: str) -> dict[str, Any]:
    return {
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": base + "/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


def build(identity: IdentityService) -> ApiSpec:
    svc = identity

    def caller_domain(ctx: AuthContext) -> str:
        if ctx.project:
            return ctx.project["domain_id"]
        if ctx.domain:
            return ctx.domain["id"]
        return core.DEFAULT_DOMAIN_ID

    # --- version discovery ------------------------------------------------------
    async def show_version(call: Call) -> Any:
        return {"version": version_document(call.base)}

    # --- tokens -------------------------------------------------------------------
    async def issue_token(call: Call) -> Reply:
        ctx = await svc.issue_token(call.body["auth"])
        catalog = None if call.flag("nocatalog") else await svc.catalog()
        return Reply(core.render_token(ctx, catalog), 201, {"X-Subject-Token": ctx.token})

    async def _subject(call: Call) -> AuthContext:
        subject = call.request.headers.get("X-Subject-Token")
        if not subject:
            raise BadRequest("X-Subject-Token header is required.")
        if subject == call.auth.token:
            return call.auth
        try:
            ctx = await svc.authenticate(subject)
        except Exception as exc:  # noqa: BLE001
            raise NotFound("Could not find token: the subject token is invalid, expired or revoked.") from exc
        return ctx

    def _may_see_token(call: Call, subject: AuthContext) -> bool:
        return subject.user_id == call.auth.user_id or call.auth.is_cloud_reader

    async def validate_token(call: Call) -> Reply:
        subject = await _subject(call)
        require(_may_see_token(call, subject), "identity:validate_token")
        catalog = None if call.flag("nocatalog") else await svc.catalog()
        return Reply(core.render_token(subject, catalog), 200, {"X-Subject-Token": subject.token})

    async def check_token(call: Call) -> Reply:
        subject = await _subject(call)
        require(_may_see_token(call, subject), "identity:check_token")
        return Reply(None, 200, {"X-Subject-Token": subject.token})

    async def revoke_token(call: Call) -> Reply:
        subject = await _subject(call)
        require(subject.user_id == call.auth.user_id or call.auth.is_cloud_admin, "identity:revoke_token")
        await svc.revoke_token(subject)
        return Reply(None, 204)

    async def auth_catalog(call: Call) -> Any:
        return {"catalog": await svc.catalog(), "links": {"self": call.base + "/auth/catalog"}}

    async def auth_projects(call: Call) -> Any:
        user_id = call.auth.user_id

        def load(db: Any) -> list[dict[str, Any]]:
            ids = store.targets_of_user(db, user_id, "project")
            rows = [store.get(db, "project", i) for i in sorted(ids)]
            return [r for r in rows if r and r["enabled"]]

        rows = await svc.read(load)
        return {"projects": [core.render_project(r, call.base) for r in rows],
                "links": {"self": call.base + "/auth/projects", "previous": None, "next": None}}

    async def auth_domains(call: Call) -> Any:
        user_id = call.auth.user_id

        def load(db: Any) -> list[dict[str, Any]]:
            ids = store.targets_of_user(db, user_id, "domain")
            rows = [store.get(db, "domain", i) for i in sorted(ids)]
            return [r for r in rows if r and r["enabled"]]

        rows = await svc.read(load)
        return {"domains": [core.render_domain(r, call.base) for r in rows],
                "links": {"self": call.base + "/auth/domains", "previous": None, "next": None}}

    async def auth_system(call: Call) -> Any:
        user_id = call.auth.user_id
        roles = await svc.read(lambda db: store.direct_role_ids(db, user_id, "system", "all"))
        return {"system": [{"all": True}] if roles else [], "links": {"self": call.base + "/auth/system"}}

    # --- generic resources --------------------------------------------------------
    def may_read(ctx: AuthContext, entity: str, row: dict[str, Any] | None) -> bool:
        if entity in CATALOG_ENTITIES:
            return True
        if entity == "domain":
            if row is None:
                return ctx.is_cloud_reader
            return ctx.is_cloud_reader or ctx.domain_id == row["id"] or (
                ctx.project is not None and ctx.project["domain_id"] == row["id"])
        if entity == "role":
            return ctx.is_cloud_reader or (ctx.scope == "domain" and core.ROLE_READER in ctx.role_names)
        if row is None:  # listing
            return ctx.is_cloud_reader or ctx.is_domain_reader(ctx.domain_id)
        if entity == "user" and row["id"] == ctx.user_id:
            return True
        if entity == "project" and row["id"] == ctx.project_id:
            return True
        return ctx.can_read_domain(row["domain_id"])

    def may_write(ctx: AuthContext, entity: str, row: dict[str, Any]) -> bool:
        if entity in DOMAIN_OWNED:
            return ctx.can_manage_domain(row["domain_id"])
        return ctx.is_cloud_admin

    async def require_not_cloud_actor(ctx: AuthContext, actor_type: str, actor_id: str, action: str) -> None:
        """Users and groups with roles on the system or the admin project are the cloud admins' to
        change: a domain admin changing one (a password, a membership) would become one."""
        if not ctx.is_cloud_admin:
            require(not await svc.read(store.holds_cloud_roles, actor_type, actor_id), action)

    def render(entity: str, row: dict[str, Any], base: str) -> dict[str, Any]:
        return core.RENDER[entity](row, base)

    def make_list(entity: str):
        async def list_items(call: Call) -> Any:
            ctx = call.auth
            require(may_read(ctx, entity, None), f"identity:list_{PLURAL[entity]}")
            filters: dict[str, Any] = {}
            for key in FILTERS[entity]:
                if key == "enabled":
                    filters[key] = call.flag("enabled")
                elif key in call.query:
                    filters[key] = call.query[key]
            if entity in ("endpoint",) and call.query.get("region"):
                filters["region_id"] = call.query["region"]
            if entity in DOMAIN_OWNED and not ctx.is_cloud_reader:
                filters["domain_id"] = ctx.domain_id
            if entity == "role" and "domain_id" not in filters:
                filters["domain_id"] = ""
            limit, marker = call.page()
            rows = await svc.read(lambda db: store.page(db, entity, filters, marker=marker, limit=limit))
            rows, links = call.paged(rows, limit, "/" + PLURAL[entity])
            return {PLURAL[entity]: [render(entity, r, call.base) for r in rows], "links": links}

        list_items.__name__ = f"list_{PLURAL[entity]}"
        list_items.__doc__ = f"List {PLURAL[entity]} (filters: {', '.join(FILTERS[entity])}; paging: limit, marker)"
        return list_items

    def make_get(entity: str):
        async def get_item(call: Call, **params: str) -> Any:
            row = await svc.get(entity, params[f"{entity}_id"])
            require(may_read(call.auth, entity, row), f"identity:get_{entity}")
            return {entity: render(entity, row, call.base)}

        get_item.__name__ = f"get_{entity}"
        get_item.__doc__ = f"Show one {entity}"
        return get_item

    def make_delete(entity: str):
        async def delete_item(call: Call, **params: str) -> Reply:
            row = await svc.get(entity, params[f"{entity}_id"])
            require(may_write(call.auth, entity, row), f"identity:delete_{entity}")
            if entity in ("user", "group"):
                await require_not_cloud_actor(call.auth, entity, row["id"], f"identity:delete_{entity}")
            await _guard_protected(entity, row, deleting=True)
            if entity == "user" and row["id"] == call.auth.user_id:
                raise Forbidden("You cannot delete the user you are authenticated as.")
            await svc.delete(entity, row["id"])
            return Reply(None, 204)

        delete_item.__name__ = f"delete_{entity}"
        delete_item.__doc__ = f"Delete one {entity}"
        return delete_item

    async def _guard_protected(entity: str, row: dict[str, Any], *, deleting: bool = False,
                               changes: dict[str, Any] | None = None) -> None:
        """The admin project and the built-in roles hold the cloud together: they stay."""
        changes = changes or {}
        if entity == "project" and row["domain_id"] == core.DEFAULT_DOMAIN_ID and row["name"] == ADMIN_PROJECT_NAME:
            if deleting or changes.get("enabled") is False or changes.get("name", row["name"]) != row["name"]:
                raise Forbidden("The admin project cannot be deleted, disabled or renamed.")
        if entity == "role" and row["name"] in (core.ROLE_ADMIN, core.ROLE_MEMBER, core.ROLE_READER) and not row["domain_id"]:
            if deleting or changes.get("name", row["name"]) != row["name"]:
                raise Forbidden(f"The built-in role {row['name']!r} cannot be deleted or renamed.")

    def body_of(call: Call, key: str) -> dict[str, Any]:
        return {k: v for k, v in call.body[key].items()}

    # --- creates and updates, one per resource --------------------------------------
    async def create_domain(call: Call) -> Reply:
        require(call.auth.is_cloud_admin, "identity:create_domain")
        b = body_of(call, "domain")
        row = {"name": b["name"], "description": b.get("description") or "", "enabled": b.get("enabled", True)}
        if b.get("id"):
            row["id"] = b["id"]
        created = await svc.create("domain", row)
        return Reply({"domain": core.render_domain(created, call.base)}, 201)

    async def update_domain(call: Call, domain_id: str) -> Any:
        row = await svc.get("domain", domain_id)
        require(call.auth.is_cloud_admin, "identity:update_domain")
        changes = _pick(body_of(call, "domain"), ("name", "description", "enabled"))
        updated = await svc.update("domain", row["id"], changes)
        return {"domain": core.render_domain(updated, call.base)}

    async def create_project(call: Call) -> Reply:
        b = body_of(call, "project")
        domain_id = b.get("domain_id") or caller_domain(call.auth)
        parent_id = b.get("parent_id")
        if parent_id == domain_id:
            parent_id = None
        if parent_id:
            parent = await svc.get("project", parent_id)
            if parent["domain_id"] != domain_id:
                raise BadRequest("A project's parent must be in the same domain.")
        require(call.auth.can_manage_domain(domain_id), "identity:create_project")
        row = {
            "name": b["name"], "domain_id": domain_id, "parent_id": parent_id,
            "description": b.get("description") or "", "enabled": b.get("enabled", True),
            "tags": b.get("tags") or [],
        }
        created = await svc.create("project", row)
        return Reply({"project": core.render_project(created, call.base)}, 201)

    async def update_project(call: Call, project_id: str) -> Any:
        row = await svc.get("project", project_id)
        require(may_write(call.auth, "project", row), "identity:update_project")
        changes = _pick(body_of(call, "project"), ("name", "description", "enabled", "tags"))
        await _guard_protected("project", row, changes=changes)
        updated = await svc.update("project", row["id"], changes)
        return {"project": core.render_project(updated, call.base)}

    async def create_user(call: Call) -> Reply:
        b = body_of(call, "user")
        domain_id = b.get("domain_id") or caller_domain(call.auth)
        require(call.auth.can_manage_domain(domain_id), "identity:create_user")
        row = {
            "name": b["name"], "domain_id": domain_id, "enabled": b.get("enabled", True),
            "default_project_id": b.get("default_project_id"), "description": b.get("description") or "",
            "email": b.get("email"),
        }
        if b.get("password"):
            row["password_hash"] = await svc.hash_password(b["password"])
            row["password_changed_at"] = svc.now_iso()
        created = await svc.create("user", row)
        return Reply({"user": core.render_user(created, call.base)}, 201)

    async def update_user(call: Call, user_id: str) -> Any:
        row = await svc.get("user", user_id)
        require(may_write(call.auth, "user", row), "identity:update_user")
        await require_not_cloud_actor(call.auth, "user", row["id"], "identity:update_user")
        b = body_of(call, "user")
        changes = _pick(b, ("name", "enabled", "default_project_id", "description", "email"))
        revoke = changes.get("enabled") is False
        if b.get("password"):
            changes["password_hash"] = await svc.hash_password(b["password"])
            changes["password_changed_at"] = svc.now_iso()
            revoke = True
        if changes.get("enabled") is False and row["id"] == call.auth.user_id:
            raise Forbidden("You cannot disable the user you are authenticated as.")
        updated = await svc.update("user", row["id"], changes, revoke_tokens=revoke)
        return {"user": core.render_user(updated, call.base)}

    async def change_password(call: Call, user_id: str) -> Reply:
        require(call.auth.user_id == user_id, "identity:change_password")
        b = body_of(call, "user")
        await svc._check_password(
            {"user": {"id": user_id, "password": b["original_password"]}}
        )
        changes = {"password_hash": await svc.hash_password(b["password"]), "password_changed_at": svc.now_iso()}
        await svc.update("user", user_id, changes, revoke_tokens=True)
        return Reply(None, 204)

    async def create_group(call: Call) -> Reply:
        b = body_of(call, "group")
        domain_id = b.get("domain_id") or caller_domain(call.auth)
        require(call.auth.can_manage_domain(domain_id), "identity:create_group")
        created = await svc.create(
            "group", {"name": b["name"], "domain_id": domain_id, "description": b.get("description") or ""}
        )
        return Reply({"group": core.render_group(created, call.base)}, 201)

    async def update_group(call: Call, group_id: str) -> Any:
        row = await svc.get("group", group_id)
        require(may_write(call.auth, "group", row), "identity:update_group")
        updated = await svc.update("group", row["id"], _pick(body_of(call, "group"), ("name", "description")))
        return {"group": core.render_group(updated, call.base)}

    async def create_role(call: Call) -> Reply:
        require(call.auth.is_cloud_admin, "identity:create_role")
        b = body_of(call, "role")
        created = await svc.create(
            "role", {"name": b["name"], "domain_id": b.get("domain_id") or "", "description": b.get("description") or ""}
        )
        return Reply({"role": core.render_role(created, call.base)}, 201)

    async def update_role(call: Call, role_id: str) -> Any:
        row = await svc.get("role", role_id)
        require(call.auth.is_cloud_admin, "identity:update_role")
        changes = _pick(body_of(call, "role"), ("name", "description"))
        await _guard_protected("role", row, changes=changes)
        updated = await svc.update("role", row["id"], changes)
        return {"role": core.render_role(updated, call.base)}

    async def create_region(call: Call) -> Reply:
        require(call.auth.is_cloud_admin, "identity:create_region")
        b = body_of(call, "region")
        row = {"description": b.get("description") or "", "parent_region_id": b.get("parent_region_id")}
        if b.get("id"):
            row["id"] = b["id"]
        created = await svc.create("region", row)
        return Reply({"region": core.render_region(created, call.base)}, 201)

    async def update_region(call: Call, region_id: str) -> Any:
        row = await svc.get("region", region_id)
        require(call.auth.is_cloud_admin, "identity:update_region")
        changes = _pick(body_of(call, "region"), ("description", "parent_region_id"))
        if changes.get("parent_region_id") == row["id"]:
            raise BadRequest("A region cannot be its own parent.")
        updated = await svc.update("region", row["id"], changes)
        return {"region": core.render_region(updated, call.base)}

    async def create_service(call: Call) -> Reply:
        require(call.auth.is_cloud_admin, "identity:create_service")
        b = body_of(call, "service")
        created = await svc.create("service", {
            "type": b["type"], "name": b.get("name") or "", "description": b.get("description") or "",
            "enabled": b.get("enabled", True),
        })
        return Reply({"service": core.render_service(created, call.base)}, 201)

    async def update_service(call: Call, service_id: str) -> Any:
        row = await svc.get("service", service_id)
        require(call.auth.is_cloud_admin, "identity:update_service")
        updated = await svc.update("service", row["id"], _pick(body_of(call, "service"), ("type", "name", "description", "enabled")))
        return {"service": core.render_service(updated, call.base)}

    async def create_endpoint(call: Call) -> Reply:
        require(call.auth.is_cloud_admin, "identity:create_endpoint")
        b = body_of(call, "endpoint")
        created = await svc.create("endpoint", {
            "service_id": b["service_id"], "interface": b["interface"], "url": b["url"],
            "region_id": b.get("region_id") or b.get("region"), "enabled": b.get("enabled", True),
        })
        return Reply({"endpoint": core.render_endpoint(created, call.base)}, 201)

    async def update_endpoint(call: Call, endpoint_id: str) -> Any:
        row = await svc.get("endpoint", endpoint_id)
        require(call.auth.is_cloud_admin, "identity:update_endpoint")
        b = body_of(call, "endpoint")
        changes = _pick(b, ("service_id", "interface", "url", "region_id", "enabled"))
        if "region" in b and "region_id" not in b:
            changes["region_id"] = b["region"]
        updated = await svc.update("endpoint", row["id"], changes)
        return {"endpoint": core.render_endpoint(updated, call.base)}

    # --- relations ------------------------------------------------------------------
    async def user_projects(call: Call, user_id: str) -> Any:
        user = await svc.get("user", user_id)
        require(user_id == call.auth.user_id or call.auth.can_read_domain(user["domain_id"]),
                "identity:list_user_projects")

        def load(db: Any) -> list[dict[str, Any]]:
            return [store.get(db, "project", i) for i in sorted(store.targets_of_user(db, user_id, "project"))]

        rows = [r for r in await svc.read(load) if r]
        return {"projects": [core.render_project(r, call.base) for r in rows],
                "links": {"self": f"{call.base}/users/{user_id}/projects", "previous": None, "next": None}}

    async def user_groups(call: Call, user_id: str) -> Any:
        user = await svc.get("user", user_id)
        require(user_id == call.auth.user_id or call.auth.can_read_domain(user["domain_id"]),
                "identity:list_groups_for_user")
        rows = await svc.read(lambda db: [store.get(db, "group", g) for g in store.user_group_ids(db, user_id)])
        return {"groups": [core.render_group(r, call.base) for r in rows if r],
                "links": {"self": f"{call.base}/users/{user_id}/groups", "previous": None, "next": None}}

    async def group_users(call: Call, group_id: str) -> Any:
        group = await svc.get("group", group_id)
        require(call.auth.can_read_domain(group["domain_id"]), "identity:list_users_in_group")
        limit, marker = call.page()
        rows = await svc.read(lambda db: store.page(
            db, "user", {}, marker=marker, limit=limit,
            extra_sql="id IN (SELECT user_id FROM group_members WHERE group_id = ?)", extra_params=[group_id]))
        rows, links = call.paged(rows, limit, f"/groups/{group_id}/users")
        return {"users": [core.render_user(r, call.base) for r in rows], "links": links}

    async def _membership(call: Call, group_id: str, user_id: str, action: str) -> Reply:
        group = await svc.get("group", group_id)
        user = await svc.get("user", user_id)
        if action == "check":
            require(call.auth.can_read_domain(group["domain_id"]) or user_id == call.auth.user_id,
                    "identity:check_user_in_group")
            member = await svc.read(lambda db: group_id in store.user_group_ids(db, user_id))
            if not member:
                raise NotFound(f"User {user_id} is not a member of group {group_id}.")
            return Reply(None, 204)
        require(call.auth.can_manage_domain(group["domain_id"]), f"identity:{action}_user_to_group")
        await require_not_cloud_actor(call.auth, "group", group_id, f"identity:{action}_user_to_group")
        await require_not_cloud_actor(call.auth, "user", user["id"], f"identity:{action}_user_to_group")
        from cloudbox.identity import commands as c

        cmd = c.AddGroupMember(group_id, user["id"]) if action == "add" else c.RemoveGroupMember(group_id, user["id"])
        await svc.propose(cmd)
        return Reply(None, 204)

    async def add_member(call: Call, group_id: str, user_id: str) -> Reply:
        return await _membership(call, group_id, user_id, "add")

    async def check_member(call: Call, group_id: str, user_id: str) -> Reply:
        return await _membership(call, group_id, user_id, "check")

    async def remove_member(call: Call, group_id: str, user_id: str) -> Reply:
        return await _membership(call, group_id, user_id, "remove")

    routes = [
        Route("GET", "", show_version, access="public", summary="Identity v3 version document"),
        Route("POST", "/auth/tokens", issue_token, access="public", body=models.AUTH, status=201,
              query=("nocatalog",), summary="Authenticate and issue a token"),
        Route("GET", "/auth/tokens", validate_token, query=("nocatalog", "allow_expired"),
              summary="Validate the token in X-Subject-Token"),
        Route("HEAD", "/auth/tokens", check_token, summary="Check the token in X-Subject-Token"),
        Route("DELETE", "/auth/tokens", revoke_token, status=204, summary="Revoke the token in X-Subject-Token"),
        Route("GET", "/auth/catalog", auth_catalog, summary="Service catalog for the token"),
        Route("GET", "/auth/projects", auth_projects, summary="Projects the token's user may scope to"),
        Route("GET", "/auth/domains", auth_domains, summary="Domains the token's user may scope to"),
        Route("GET", "/auth/system", auth_system, summary="Whether the token's user may scope to the system"),
        Route("POST", "/domains", create_domain, body=models.DOMAIN_CREATE, status=201),
        Route("PATCH", "/domains/{domain_id}", update_domain, body=models.DOMAIN_UPDATE),
        Route("POST", "/projects", create_project, body=models.PROJECT_CREATE, status=201),
        Route("PATCH", "/projects/{project_id}", update_project, body=models.PROJECT_UPDATE),
        Route("POST", "/users", create_user, body=models.USER_CREATE, status=201),
        Route("PATCH", "/users/{user_id}", update_user, body=models.USER_UPDATE),
        Route("POST", "/users/{user_id}/password", change_password, body=models.USER_PASSWORD, status=204),
        Route("GET", "/users/{user_id}/projects", user_projects),
        Route("GET", "/users/{user_id}/groups", user_groups),
        Route("POST", "/groups", create_group, body=models.GROUP_CREATE, status=201),
        Route("PATCH", "/groups/{group_id}", update_group, body=models.GROUP_UPDATE),
        Route("GET", "/groups/{group_id}/users", group_users, query=("limit", "marker")),
        Route("PUT", "/groups/{group_id}/users/{user_id}", add_member, status=204),
        Route("HEAD", "/groups/{group_id}/users/{user_id}", check_member, status=204),
        Route("DELETE", "/groups/{group_id}/users/{user_id}", remove_member, status=204),
        Route("POST", "/roles", create_role, body=models.ROLE_CREATE, status=201),
        Route("PATCH", "/roles/{role_id}", update_role, body=models.ROLE_UPDATE),
        Route("POST", "/regions", create_region, body=models.REGION_CREATE, status=201),
        Route("PATCH", "/regions/{region_id}", update_region, body=models.REGION_UPDATE),
        Route("POST", "/services", create_service, body=models.SERVICE_CREATE, status=201),
        Route("PATCH", "/services/{service_id}", update_service, body=models.SERVICE_UPDATE),
        Route("POST", "/endpoints", create_endpoint, body=models.ENDPOINT_CREATE, status=201),
        Route("PATCH", "/endpoints/{endpoint_id}", update_endpoint, body=models.ENDPOINT_UPDATE),
    ]
    for entity, plural in PLURAL.items():
        filters = FILTERS[entity] + ("limit", "marker") + (("region",) if entity == "endpoint" else ())
        routes.append(Route("GET", f"/{plural}", make_list(entity), query=filters))
        routes.append(Route("GET", f"/{plural}/{{{entity}_id}}", make_get(entity)))
        routes.append(Route("DELETE", f"/{plural}/{{{entity}_id}}", make_delete(entity), status=204))
    from cloudbox.identity import api_grants

    routes += api_grants.routes(svc)
    return ApiSpec("identity", "/identity/v3", "keystone", routes, catalog=("identity", "keystone"))


def _pick(body: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {k: body[k] for k in keys if k in body}
    for key in ("description",):
        if key in out and out[key] is None:
            out[key] = ""
    return out

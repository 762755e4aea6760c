"""Who holds which role where: grants of roles to users and groups on projects, domains and the
system, the role-assignment listing, implied roles, and application credentials.

Each method takes the caller's AuthContext and checks what it may do; the API's handlers
(api_grants.py, api_users.py) call one method each.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from cloudbox.errors import BadRequest, Forbidden, NotFound
from cloudbox.identity import commands as c
from cloudbox.identity import core, store
from cloudbox.identity.core import AssignmentQuery, AuthContext, require

if TYPE_CHECKING:
    from cloudbox.identity.service import IdentityService

Row = dict[str, Any]


class Grants:
    def __init__(self, identity: IdentityService) -> None:
        self.identity = identity

    # --- who may grant and see grants ------------------------------------------------------------
    async def _may_grant(self, ctx: AuthContext, target_type: str, target_id: str, role: Row,
                         actor_type: str, actor_id: str) -> None:
        if target_type == "system":
            require(ctx.is_cloud_admin, "identity:create_system_grant")
            return
        target = await self.identity.get(target_type, target_id)
        if ctx.is_cloud_admin:
            return
        domain_id = target["domain_id"] if target_type == "project" else target["id"]
        manages = ctx.can_manage_domain(domain_id) or (
            target_type == "project" and ctx.can_manage_project(target_id))
        require(manages, "identity:create_grant")
        # A domain or project manager hands out the roles of its domain or project, never one
        # that makes a cloud admin, never on the admin project (it owns the cloud's shared
        # resources), and only to people of its domain who are not cloud-level already
        # (changing those would make it one).
        managed = role["name"] in core.MANAGED_ROLES and not role["domain_id"]
        require(managed and not await self.identity.read(store.implies_admin, role["id"]),
                "identity:create_grant:admin_role")
        admin_project = await self.identity.admin_project_id()
        require(not (target_type == "project" and target_id == admin_project), "identity:create_grant:admin_project")
        actor = await self.identity.get(actor_type, actor_id)
        require(actor["domain_id"] == domain_id, "identity:create_grant:other_domain")
        cloud_actor = await self.identity.read(store.holds_cloud_roles, actor_type, actor_id)
        require(not cloud_actor, "identity:create_grant:cloud_actor")

    async def _may_read_grants(self, ctx: AuthContext, target_type: str, target_id: str, actor_id: str | None) -> None:
        if actor_id and actor_id == ctx.user_id:
            return
        if target_type == "system":
            require(ctx.is_cloud_reader, "identity:list_system_grants")
            return
        target = await self.identity.get(target_type, target_id)
        domain_id = target["domain_id"] if target_type == "project" else target["id"]
        manager = target_type == "project" and ctx.can_manage_project(target_id)
        require(manager or ctx.can_read_domain(domain_id), "identity:list_grants")

    # --- grants ------------------------------------------------------------------------------------
    async def roles_granted(self, ctx: AuthContext, actor_type: str, actor_id: str, target_type: str,
                            target_id: str, inherited: bool = False) -> list[Row]:
        """The roles granted directly to one actor on one target ("all" for the system)."""
        await self.identity.get(actor_type, actor_id)
        await self._may_read_grants(ctx, target_type, target_id, actor_id)
        return await self.identity.read(store.granted_roles, actor_type, actor_id, target_type, target_id, inherited)

    async def check(self, ctx: AuthContext, actor_type: str, actor_id: str, target_type: str, target_id: str,
                    role_id: str, inherited: bool = False) -> None:
        """Nothing if the grant exists, else NotFound."""
        await self.identity.get(actor_type, actor_id)
        role = await self.identity.get("role", role_id)
        await self._may_read_grants(ctx, target_type, target_id, actor_id)
        if not await self.identity.read(
                store.grant_exists, actor_type, actor_id, target_type, target_id, role["id"], inherited):
            raise NotFound("Could not find role assignment.")

    async def grant(self, ctx: AuthContext, actor_type: str, actor_id: str, target_type: str, target_id: str,
                    role_id: str, inherited: bool = False) -> None:
        await self._change(c.Grant, ctx, actor_type, actor_id, target_type, target_id, role_id, inherited)

    async def revoke(self, ctx: AuthContext, actor_type: str, actor_id: str, target_type: str, target_id: str,
                     role_id: str, inherited: bool = False) -> None:
        await self._change(c.Revoke, ctx, actor_type, actor_id, target_type, target_id, role_id, inherited)

    async def _change(self, kind: type[c.Grant] | type[c.Revoke], ctx: AuthContext, actor_type: str,
                      actor_id: str, target_type: str, target_id: str, role_id: str, inherited: bool) -> None:
        await self.identity.get(actor_type, actor_id)
        role = await self.identity.get("role", role_id)
        await self._may_grant(ctx, target_type, target_id, role, actor_type, actor_id)
        await self.identity.propose(kind(actor_type, actor_id, target_type, target_id, role["id"], inherited))

    async def assignments(self, ctx: AuthContext, q: AssignmentQuery, base: str) -> list[dict[str, Any]]:
        """GET /role_assignments, rendered: cloud readers see all; others their own, or (domain
        readers) those on their domain and its projects."""
        # A project manager sees those on its project (asked for by scope.project.id).
        manager = q.project_id is not None and ctx.can_manage_project(q.project_id)
        if not ctx.is_cloud_reader:
            own = q.user_id == ctx.user_id
            domain_ok = ctx.scope == "domain" and core.ROLE_READER in ctx.role_names
            require(own or domain_ok or manager, "identity:list_role_assignments")
        if q.effective and q.group_id:
            raise BadRequest("effective cannot be combined with group.id.")

        def load(db: Any) -> list[dict[str, Any]]:
            rows = store.assignments(db, q)
            if not ctx.is_cloud_reader and q.user_id != ctx.user_id:
                if manager and ctx.scope == "project":
                    rows = [r for r in rows if (r["target_type"], r["target_id"]) == ("project", ctx.project_id)]
                else:
                    rows = [r for r in rows if store.assignment_in_domain(db, r, ctx.domain_id)]
            if q.effective:
                rows = [r for r in store.effective_assignments(db, rows, q.user_id) if q.matches(r)]
            known = store.assignment_names(db, rows) if q.include_names else None
            return [core.render_assignment(r, known, base) for r in rows]

        return await self.identity.read(load)

    # --- implied roles -------------------------------------------------------------------------------
    async def implied_roles(self, ctx: AuthContext, prior_role_id: str) -> tuple[Row, list[Row]]:
        """A role and the roles it implies directly."""
        prior = await self.identity.get("role", prior_role_id)
        return prior, await self.identity.read(store.implied_roles, prior["id"])

    async def imply(self, ctx: AuthContext, prior_role_id: str, implied_role_id: str) -> tuple[Row, Row]:
        require(ctx.is_cloud_admin, "identity:create_implied_role")
        prior, implied = await self.identity.get("role", prior_role_id), await self.identity.get("role", implied_role_id)
        await self.identity.propose(c.ImplyRole(prior["id"], implied["id"]))
        return prior, implied

    async def check_implied(self, ctx: AuthContext, prior_role_id: str, implied_role_id: str) -> None:
        if not await self.identity.read(store.implication_exists, prior_role_id, implied_role_id):
            raise NotFound("Could not find that role inference rule.")

    async def implied_rule(self, ctx: AuthContext, prior_role_id: str, implied_role_id: str) -> tuple[Row, Row]:
        """One inference rule: the prior role and the role it implies."""
        await self.check_implied(ctx, prior_role_id, implied_role_id)
        return await self.identity.get("role", prior_role_id), await self.identity.get("role", implied_role_id)

    async def unimply(self, ctx: AuthContext, prior_role_id: str, implied_role_id: str) -> None:
        require(ctx.is_cloud_admin, "identity:delete_implied_role")
        await self.identity.propose(c.UnimplyRole(prior_role_id, implied_role_id))

    async def role_inferences(self, ctx: AuthContext) -> list[tuple[Row, list[Row]]]:
        return await self.identity.read(store.role_inferences)

    # --- application credentials ----------------------------------------------------------------------
    async def create_app_credential(self, ctx: AuthContext, user_id: str, body: dict[str, Any]
                                    ) -> tuple[Row, list[Row], str]:
        """Make an application credential of the caller's project with roles the caller holds
        there; returns it, its roles and its secret (shown this once only)."""
        core.may_manage_app_credentials(ctx, user_id, write=True)
        if ctx.user_id != user_id or ctx.scope != "project":
            raise Forbidden("Application credentials are made by their user with a project-scoped token.")
        role_ids = core.app_credential_roles(ctx.roles, body.get("roles"))
        expires_at = core.app_credential_expiry(body.get("expires_at"), self.identity.clock())
        secret = body.get("secret") or secrets.token_urlsafe(64)
        created = await self.identity.create("app_credential", {
            "user_id": user_id, "project_id": ctx.project_id, "name": body["name"],
            "description": body.get("description") or "", "secret_hash": core.hash_secret(secret),
            "expires_at": expires_at, "unrestricted": bool(body.get("unrestricted", False)),
            "roles": role_ids,
        })
        held = {r["id"]: r for r in ctx.roles}
        return created, [held[i] for i in created["roles"]], secret

    async def app_credentials(self, ctx: AuthContext, user_id: str, name: str | None, marker: str | None,
                              limit: int) -> list[tuple[Row, list[Row]]]:
        """One page (``limit`` + 1) of a user's application credentials, each with its roles."""
        core.may_manage_app_credentials(ctx, user_id, write=False)
        filters = {"user_id": user_id, "name": name}

        def load(db: Any) -> list[tuple[Row, list[Row]]]:
            rows = store.page(db, "app_credential", filters, marker=marker, limit=limit)
            return [(r, store.roles_by_ids(db, r["roles"])) for r in rows]

        return await self.identity.read(load)

    async def app_credential(self, ctx: AuthContext, user_id: str, app_cred_id: str) -> tuple[Row, list[Row]]:
        core.may_manage_app_credentials(ctx, user_id, write=False)
        row = await self._users_credential(user_id, app_cred_id)
        return row, await self.identity.read(store.roles_by_ids, row["roles"])

    async def delete_app_credential(self, ctx: AuthContext, user_id: str, app_cred_id: str) -> None:
        core.may_manage_app_credentials(ctx, user_id, write=True)
        row = await self._users_credential(user_id, app_cred_id)
        await self.identity.delete("app_credential", row["id"])

    async def _users_credential(self, user_id: str, app_cred_id: str) -> Row:
        row = await self.identity.get("app_credential", app_cred_id)
        if row["user_id"] != user_id:
            raise NotFound(f"Could not find application credential: {app_cred_id}.")
        return row

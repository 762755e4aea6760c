"""Keystone v3 routes for role assignments, implied roles and application credentials."""

from __future__ import annotations

import secrets
from typing import Any

from cloudbox import clock
from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import BadRequest, Forbidden, NotFound
from cloudbox.identity import commands as c
from cloudbox.identity import core, models, store
from cloudbox.identity.core import AuthContext, require
from cloudbox.identity.service import IdentityService

TARGETS = {"projects": "project", "domains": "domain", "system": "system"}
ACTORS = {"users": "user", "groups": "group"}


def routes(svc: IdentityService) -> list[Route]:
    async def _may_grant(ctx: AuthContext, target_type: str, target_id: str, role: dict[str, Any],
                         actor_type: str, actor_id: str) -> None:
        if target_type == "system":
            require(ctx.is_cloud_admin, "identity:create_system_grant")
            return
        target = await svc.get(target_type, target_id)
        domain_id = target["domain_id"] if target_type == "project" else target["id"]
        require(ctx.can_manage_domain(domain_id), "identity:create_grant")
        if ctx.is_cloud_admin:
            return
        # A domain admin manages projects and people of the domain, not the cloud: it may grant
        # member and reader only, never on the admin project, never to cloud-level actors.
        require(role["name"] in (core.ROLE_MEMBER, core.ROLE_READER), "identity:create_grant:admin_role")
        admin_project = await svc.admin_project_id()
        require(not (target_type == "project" and target_id == admin_project), "identity:create_grant:admin_project")
        cloud_actor = await svc.read(store.holds_cloud_roles, actor_type, actor_id)
        require(not cloud_actor, "identity:create_grant:cloud_actor")

    async def _may_read_grants(ctx: AuthContext, target_type: str, target_id: str, actor_id: str | None) -> None:
        if actor_id and actor_id == ctx.user_id:
            return
        if target_type == "system":
            require(ctx.is_cloud_reader, "identity:list_system_grants")
            return
        target = await svc.get(target_type, target_id)
        domain_id = target["domain_id"] if target_type == "project" else target["id"]
        require(ctx.can_read_domain(domain_id), "identity:list_grants")

    def grant_handler(verb: str, target_kind: str, actor_kind: str, inherited: bool = False):
        target_type, actor_type = TARGETS[target_kind], ACTORS[actor_kind]

        async def handler(call: Call, role_id: str, **params: str) -> Reply:
            target_id = params.get(f"{target_type}_id", "all")
            actor_id = params[f"{actor_type}_id"]
            await svc.get(actor_type, actor_id)
            role = await svc.get("role", role_id)
            if verb == "check":
                await _may_read_grants(call.auth, target_type, target_id, actor_id)
                found = await svc.read(lambda db: list(db.query(
                    "SELECT 1 FROM role_assignments WHERE actor_type = ? AND actor_id = ? AND target_type = ?"
                    " AND target_id = ? AND role_id = ? AND inherited = ?",
                    [actor_type, actor_id, target_type, target_id, role["id"], int(inherited)])))
                if not found:
                    raise NotFound("Could not find role assignment.")
                return Reply(None, 204)
            await _may_grant(call.auth, target_type, target_id, role, actor_type, actor_id)
            cls = c.Grant if verb == "grant" else c.Revoke
            await svc.propose(cls(actor_type, actor_id, target_type, target_id, role["id"], inherited))
            return Reply(None, 204)

        handler.__name__ = f"{verb}_{target_type}_{actor_type}_role" + ("_inherited" if inherited else "")
        return handler

    def list_handler(target_kind: str, actor_kind: str, inherited: bool = False):
        target_type, actor_type = TARGETS[target_kind], ACTORS[actor_kind]

        async def handler(call: Call, **params: str) -> Any:
            target_id = params.get(f"{target_type}_id", "all")
            actor_id = params[f"{actor_type}_id"]
            await svc.get(actor_type, actor_id)
            await _may_read_grants(call.auth, target_type, target_id, actor_id)
            rows = await svc.read(lambda db: [dict(r) for r in db.query(
                "SELECT r.* FROM roles r JOIN role_assignments a ON a.role_id = r.id WHERE a.actor_type = ?"
                " AND a.actor_id = ? AND a.target_type = ? AND a.target_id = ? AND a.inherited = ? ORDER BY r.name",
                [actor_type, actor_id, target_type, target_id, int(inherited)])])
            return {"roles": [core.render_role(r, call.base) for r in rows],
                    "links": {"self": call.request.url, "previous": None, "next": None}}

        handler.__name__ = f"list_{target_type}_{actor_type}_roles" + ("_inherited" if inherited else "")
        return handler

    out: list[Route] = []
    for target_kind, target_type in TARGETS.items():
        for actor_kind, actor_type in ACTORS.items():
            prefix = f"/{target_kind}/{{{target_type}_id}}" if target_type != "system" else "/system"
            base = f"{prefix}/{actor_kind}/{{{actor_type}_id}}/roles"
            out += [
                Route("GET", base, list_handler(target_kind, actor_kind)),
                Route("PUT", base + "/{role_id}", grant_handler("grant", target_kind, actor_kind), status=204),
                Route("HEAD", base + "/{role_id}", grant_handler("check", target_kind, actor_kind), status=204),
                Route("GET", base + "/{role_id}", grant_handler("check", target_kind, actor_kind), status=204),
                Route("DELETE", base + "/{role_id}", grant_handler("revoke", target_kind, actor_kind), status=204),
            ]
    # Roles on a domain inherited by all of its projects (openstack role add --inherited).
    for actor_kind, actor_type in ACTORS.items():
        base = f"/OS-INHERIT/domains/{{domain_id}}/{actor_kind}/{{{actor_type}_id}}/roles"
        out += [
            Route("GET", base + "/inherited_to_projects", list_handler("domains", actor_kind, True)),
            Route("PUT", base + "/{role_id}/inherited_to_projects",
                  grant_handler("grant", "domains", actor_kind, True), status=204),
            Route("HEAD", base + "/{role_id}/inherited_to_projects",
                  grant_handler("check", "domains", actor_kind, True), status=204),
            Route("DELETE", base + "/{role_id}/inherited_to_projects",
                  grant_handler("revoke", "domains", actor_kind, True), status=204),
        ]

    # --- GET /role_assignments --------------------------------------------------------
    async def list_role_assignments(call: Call) -> Any:
        q, ctx = call.query, call.auth
        user_id, group_id = q.get("user.id"), q.get("group.id")
        if not ctx.is_cloud_reader:
            own = user_id == ctx.user_id
            domain_ok = ctx.scope == "domain" and core.ROLE_READER in ctx.role_names
            require(own or domain_ok, "identity:list_role_assignments")
        effective = call.flag("effective") or False
        include_names = call.flag("include_names") or False
        if effective and group_id:
            raise BadRequest("effective cannot be combined with group.id.")

        def load(db: Any) -> list[dict[str, Any]]:
            clauses, params = [], []
            # Effective roles come from grants on other targets (inherited from the domain) and
            # other roles (implied): filter by scope and role after expanding, not before.
            if "scope.project.id" in q and not effective:
                clauses.append("target_type = 'project' AND target_id = ?")
                params.append(q["scope.project.id"])
            if "scope.domain.id" in q and not effective:
                clauses.append("target_type = 'domain' AND target_id = ?")
                params.append(q["scope.domain.id"])
            if "scope.system" in q and not effective:
                clauses.append("target_type = 'system'")
            if "role.id" in q and not effective:
                clauses.append("role_id = ?")
                params.append(q["role.id"])
            if group_id:
                clauses.append("actor_type = 'group' AND actor_id = ?")
                params.append(group_id)
            if user_id and not effective:
                clauses.append("actor_type = 'user' AND actor_id = ?")
                params.append(user_id)
            if user_id and effective:
                groups = store.user_group_ids(db, user_id)
                marks = ",".join("?" * len(groups)) or "NULL"
                clauses.append(f"((actor_type = 'user' AND actor_id = ?) OR (actor_type = 'group' AND actor_id IN ({marks})))")
                params += [user_id, *groups]
            if "scope.OS-INHERIT:inherited_to" in q:
                clauses.append("inherited = 1")
            where = " AND ".join(clauses) or "1"
            rows = [dict(r) for r in db.query(
                f"SELECT * FROM role_assignments WHERE {where} ORDER BY actor_type, actor_id, target_type, target_id, role_id", params)]
            if not ctx.is_cloud_reader and user_id != ctx.user_id:
                rows = [r for r in rows if _in_domain(db, r, ctx.domain_id)]
            if effective:
                rows = [r for r in _effective(db, rows, user_id) if _matches_filters(r, q)]
            return [_render_assignment(db, r, include_names, call.base) for r in rows]

        assignments = await svc.read(load)
        return {"role_assignments": assignments, "links": {"self": call.base + "/role_assignments",
                                                            "previous": None, "next": None}}

    out.append(Route("GET", "/role_assignments", list_role_assignments,
                     query=("user.id", "group.id", "role.id", "scope.project.id", "scope.domain.id",
                            "scope.system", "effective", "include_names", "include_subtree",
                            "scope.OS-INHERIT:inherited_to")))

    # --- implied roles -----------------------------------------------------------------
    async def list_implied(call: Call, prior_role_id: str) -> Any:
        prior = await svc.get("role", prior_role_id)
        rows = await svc.read(lambda db: [dict(r) for r in db.query(
            "SELECT r.* FROM roles r JOIN role_implications i ON i.implied_role_id = r.id"
            " WHERE i.prior_role_id = ? ORDER BY r.name", [prior["id"]])])
        return {"role_inference": {"prior_role": _role_ref(prior, call.base),
                                   "implies": [_role_ref(r, call.base) for r in rows]}}

    async def imply(call: Call, prior_role_id: str, implied_role_id: str) -> Reply:
        require(call.auth.is_cloud_admin, "identity:create_implied_role")
        prior, implied = await svc.get("role", prior_role_id), await svc.get("role", implied_role_id)
        await svc.propose(c.ImplyRole(prior["id"], implied["id"]))
        return Reply({"role_inference": {"prior_role": _role_ref(prior, call.base),
                                         "implies": _role_ref(implied, call.base)}}, 201)

    async def check_implied(call: Call, prior_role_id: str, implied_role_id: str) -> Reply:
        found = await svc.read(lambda db: list(db.query(
            "SELECT 1 FROM role_implications WHERE prior_role_id = ? AND implied_role_id = ?",
            [prior_role_id, implied_role_id])))
        if not found:
            raise NotFound("Could not find that role inference rule.")
        return Reply(None, 204)

    async def unimply(call: Call, prior_role_id: str, implied_role_id: str) -> Reply:
        require(call.auth.is_cloud_admin, "identity:delete_implied_role")
        await svc.propose(c.UnimplyRole(prior_role_id, implied_role_id))
        return Reply(None, 204)

    async def role_inferences(call: Call) -> Any:
        def load(db: Any) -> list[dict[str, Any]]:
            rules: dict[str, list[str]] = {}
            for r in db.query("SELECT * FROM role_implications ORDER BY prior_role_id, implied_role_id"):
                rules.setdefault(r["prior_role_id"], []).append(r["implied_role_id"])
            roles = {r["id"]: dict(r) for r in db.query("SELECT * FROM roles")}
            return [{"prior_role": _role_ref(roles[p], call.base),
                     "implies": [_role_ref(roles[i], call.base) for i in implied]} for p, implied in rules.items()]

        return {"role_inferences": await svc.read(load)}

    out += [
        Route("GET", "/roles/{prior_role_id}/implies", list_implied),
        Route("PUT", "/roles/{prior_role_id}/implies/{implied_role_id}", imply, status=201),
        Route("HEAD", "/roles/{prior_role_id}/implies/{implied_role_id}", check_implied, status=204),
        Route("DELETE", "/roles/{prior_role_id}/implies/{implied_role_id}", unimply, status=204),
        Route("GET", "/role_inferences", role_inferences),
    ]

    # --- application credentials ---------------------------------------------------------
    def _own(call: Call, user_id: str, write: bool) -> None:
        if call.auth.user_id == user_id:
            if write and call.auth.app_cred is not None and not call.auth.app_cred["unrestricted"]:
                raise Forbidden("A restricted application credential cannot manage application credentials.")
            return
        require(call.auth.is_cloud_admin if write else call.auth.is_cloud_reader,
                "identity:application_credentials")

    async def create_app_cred(call: Call, user_id: str) -> Reply:
        _own(call, user_id, write=True)
        ctx = call.auth
        if call.auth.user_id != user_id or ctx.scope != "project":
            raise Forbidden("Application credentials are made by their user with a project-scoped token.")
        b = call.body["application_credential"]
        held = {r["id"]: r for r in ctx.roles}
        wanted: list[str] = []
        for spec in b.get("roles") or list(ctx.roles):
            match = [r for r in ctx.roles if r["id"] == spec.get("id") or r["name"] == spec.get("name")]
            if not match:
                raise BadRequest(f"You do not hold the role {spec.get('id') or spec.get('name')!r} on this project.")
            wanted.append(match[0]["id"])
        expires_at = b.get("expires_at")
        if expires_at:
            try:
                when = clock.parse_iso(expires_at)
                expires_at = clock.iso(when, micro=True)
            except (ValueError, OverflowError, OSError):
                raise BadRequest(f"expires_at is not an ISO 8601 time this cloud can store: {expires_at!r}") from None
            if when <= svc.clock():
                raise BadRequest("expires_at is in the past.")
        secret = b.get("secret") or secrets.token_urlsafe(64)
        row = {
            "user_id": user_id, "project_id": ctx.project_id, "name": b["name"],
            "description": b.get("description") or "", "secret_hash": core.hash_secret(secret),
            "expires_at": expires_at, "unrestricted": bool(b.get("unrestricted", False)),
            "roles": sorted(set(wanted)),
        }
        created = await svc.create("app_credential", row)
        body = core.render_app_credential(created, [held[i] for i in created["roles"]], call.base)
        body["secret"] = secret
        return Reply({"application_credential": body}, 201)

    async def _cred_roles(row: dict[str, Any]) -> list[dict[str, Any]]:
        return await svc.read(store.roles_by_ids, row["roles"])

    async def list_app_creds(call: Call, user_id: str) -> Any:
        _own(call, user_id, write=False)
        limit, marker = call.page()
        filters = {"user_id": user_id, "name": call.query.get("name")}
        rows = await svc.read(lambda db: store.page(db, "app_credential", filters, marker=marker, limit=limit))
        rows, links = call.paged(rows, limit, f"/users/{user_id}/application_credentials")
        return {"application_credentials": [
            core.render_app_credential(r, await _cred_roles(r), call.base) for r in rows], "links": links}

    async def get_app_cred(call: Call, user_id: str, app_cred_id: str) -> Any:
        _own(call, user_id, write=False)
        row = await svc.get("app_credential", app_cred_id)
        if row["user_id"] != user_id:
            raise NotFound(f"Could not find application credential: {app_cred_id}.")
        return {"application_credential": core.render_app_credential(row, await _cred_roles(row), call.base)}

    async def delete_app_cred(call: Call, user_id: str, app_cred_id: str) -> Reply:
        _own(call, user_id, write=True)
        row = await svc.get("app_credential", app_cred_id)
        if row["user_id"] != user_id:
            raise NotFound(f"Could not find application credential: {app_cred_id}.")
        await svc.delete("app_credential", row["id"])
        return Reply(None, 204)

    base = "/users/{user_id}/application_credentials"
    out += [
        Route("GET", base, list_app_creds, query=("name", "limit", "marker")),
        Route("POST", base, create_app_cred, body=models.APP_CREDENTIAL_CREATE, status=201),
        Route("GET", base + "/{app_cred_id}", get_app_cred),
        Route("DELETE", base + "/{app_cred_id}", delete_app_cred, status=204),
    ]
    return out


def _role_ref(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "links": {"self": f"{base}/roles/{row['id']}"}}


def _in_domain(db: Any, row: dict[str, Any], domain_id: str | None) -> bool:
    if row["target_type"] == "domain":
        return row["target_id"] == domain_id
    if row["target_type"] == "project":
        project = store.get(db, "project", row["target_id"])
        return bool(project and project["domain_id"] == domain_id)
    return False


def _matches_filters(row: dict[str, Any], q: Any) -> bool:
    if "scope.project.id" in q and (row["target_type"], row["target_id"]) != ("project", q["scope.project.id"]):
        return False
    if "scope.domain.id" in q and (row["target_type"], row["target_id"]) != ("domain", q["scope.domain.id"]):
        return False
    if "scope.system" in q and row["target_type"] != "system":
        return False
    return "role.id" not in q or row["role_id"] == q["role.id"]


def _effective(db: Any, rows: list[dict[str, Any]], user_id: str | None) -> list[dict[str, Any]]:
    """Expand group grants to the user, inherited domain grants to projects, and implied roles."""
    out: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in rows:
        actor = ("user", user_id) if user_id else (row["actor_type"], row["actor_id"])
        if row["inherited"] and row["target_type"] == "domain":
            targets = [("project", p["id"]) for p in store.find(db, "project", domain_id=row["target_id"])]
        else:
            targets = [(row["target_type"], row["target_id"])]
        for role_id in store.expand_implied(db, {row["role_id"]}):
            for target_type, target_id in targets:
                key = (actor[1] or "", target_type, target_id, role_id)
                out[key] = {"actor_type": actor[0], "actor_id": actor[1], "target_type": target_type,
                            "target_id": target_id, "role_id": role_id, "inherited": 0}
    return [out[k] for k in sorted(out)]


def _render_assignment(db: Any, row: dict[str, Any], names: bool, base: str) -> dict[str, Any]:
    def named(entity: str, id: str) -> dict[str, Any]:
        ref: dict[str, Any] = {"id": id}
        if names:
            item = store.get(db, entity, id)
            if item:
                ref["name"] = item["name"]
                if "domain_id" in item and entity != "role":
                    domain = store.get(db, "domain", item["domain_id"])
                    ref["domain"] = {"id": item["domain_id"], "name": domain["name"] if domain else None}
        return ref

    scope: dict[str, Any]
    if row["target_type"] == "system":
        scope = {"system": {"all": True}}
    else:
        scope = {row["target_type"]: named(row["target_type"], row["target_id"])}
    if row["inherited"]:
        scope["OS-INHERIT:inherited_to"] = "projects"
    # The URL of the grant itself, as the grant routes spell it.
    target = "/system" if row["target_type"] == "system" else f"/{row['target_type']}s/{row['target_id']}"
    link = f"{target}/{row['actor_type']}s/{row['actor_id']}/roles/{row['role_id']}"
    if row["inherited"]:
        link = f"/OS-INHERIT{link}/inherited_to_projects"
    return {
        row["actor_type"]: named(row["actor_type"], row["actor_id"]),
        "role": named("role", row["role_id"]),
        "scope": scope,
        "links": {"assignment": base + link},
    }

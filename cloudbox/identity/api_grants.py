"""Keystone v3 routes of grants of roles on projects, domains and the system (and inherited ones),
role assignments, and implied roles (roles themselves are served by ``api.py``)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.identity import core
from cloudbox.identity.core import AssignmentQuery
from cloudbox.identity.service import IdentityService

TARGETS = {"projects": "project", "domains": "domain", "system": "system"}
ACTORS = {"users": "user", "groups": "group"}
Handler = Callable[..., Awaitable[Any]]  # async def handler(svc, call, **path_params)


# --- grants: one handler per verb, target and actor (the path names the ids) ----------------------
def grant_handler(verb: str, target_kind: str, actor_kind: str, inherited: bool = False) -> Handler:
    target_type, actor_type = TARGETS[target_kind], ACTORS[actor_kind]

    async def handler(svc: IdentityService, call: Call, role_id: str, **params: str) -> Reply:
        target_id = params.get(f"{target_type}_id", "all")
        actor_id = params[f"{actor_type}_id"]
        act = {"check": svc.grants.check, "grant": svc.grants.grant, "revoke": svc.grants.revoke}[verb]
        await act(call.auth, actor_type, actor_id, target_type, target_id, role_id, inherited)
        return Reply(None, 204)

    handler.__name__ = f"{verb}_{target_type}_{actor_type}_role" + ("_inherited" if inherited else "")
    return handler


def list_handler(target_kind: str, actor_kind: str, inherited: bool = False) -> Handler:
    target_type, actor_type = TARGETS[target_kind], ACTORS[actor_kind]

    async def handler(svc: IdentityService, call: Call, **params: str) -> Any:
        target_id = params.get(f"{target_type}_id", "all")
        rows = await svc.grants.roles_granted(
            call.auth, actor_type, params[f"{actor_type}_id"], target_type, target_id, inherited)
        return {"roles": [core.render_role(r, call.base) for r in rows],
                "links": core.unpaged_links(str(call.request.url))}

    handler.__name__ = f"list_{target_type}_{actor_type}_roles" + ("_inherited" if inherited else "")
    return handler


def grant_routes() -> list[Route]:
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
    # Roles on a domain inherited by all of its projects (openstack role add --inherited), and
    # roles on a project inherited by the projects below it.
    for target_kind, target_type in (("domains", "domain"), ("projects", "project")):
        for actor_kind, actor_type in ACTORS.items():
            base = f"/OS-INHERIT/{target_kind}/{{{target_type}_id}}/{actor_kind}/{{{actor_type}_id}}/roles"
            one = base + "/{role_id}/inherited_to_projects"
            out += [
                Route("PUT", one, grant_handler("grant", target_kind, actor_kind, True), status=204),
                Route("HEAD", one, grant_handler("check", target_kind, actor_kind, True), status=204),
                Route("GET", one, grant_handler("check", target_kind, actor_kind, True), status=204),
                Route("DELETE", one, grant_handler("revoke", target_kind, actor_kind, True), status=204),
            ]
            if target_type == "domain":
                out.append(Route("GET", base + "/inherited_to_projects", list_handler(target_kind, actor_kind, True)))
    return out


# --- GET /role_assignments ------------------------------------------------------------------
async def list_role_assignments(svc: IdentityService, call: Call) -> Any:
    q = call.query
    query = AssignmentQuery(
        user_id=q.get("user.id"), group_id=q.get("group.id"), role_id=q.get("role.id"),
        project_id=q.get("scope.project.id"), domain_id=q.get("scope.domain.id"),
        system="scope.system" in q, inherited_only="scope.OS-INHERIT:inherited_to" in q,
        effective=call.flag("effective") or False, include_names=call.flag("include_names") or False,
    )
    assignments = await svc.grants.assignments(call.auth, query, call.base)
    return {"role_assignments": assignments, "links": core.unpaged_links(call.base + "/role_assignments")}


# --- implied roles ---------------------------------------------------------------------------
async def list_implied(svc: IdentityService, call: Call, prior_role_id: str) -> Any:
    prior, implied = await svc.grants.implied_roles(call.auth, prior_role_id)
    return {"role_inference": core.render_role_inference(prior, implied, call.base)}


async def imply(svc: IdentityService, call: Call, prior_role_id: str, implied_role_id: str) -> Reply:
    prior, implied = await svc.grants.imply(call.auth, prior_role_id, implied_role_id)
    return Reply({"role_inference": core.render_role_inference(prior, implied, call.base)}, 201)


async def check_implied(svc: IdentityService, call: Call, prior_role_id: str, implied_role_id: str) -> Reply:
    await svc.grants.check_implied(call.auth, prior_role_id, implied_role_id)
    return Reply(None, 204)


async def show_implied(svc: IdentityService, call: Call, prior_role_id: str, implied_role_id: str) -> Any:
    prior, implied = await svc.grants.implied_rule(call.auth, prior_role_id, implied_role_id)
    return {"role_inference": core.render_role_inference(prior, implied, call.base)}


async def unimply(svc: IdentityService, call: Call, prior_role_id: str, implied_role_id: str) -> Reply:
    await svc.grants.unimply(call.auth, prior_role_id, implied_role_id)
    return Reply(None, 204)


async def role_inferences(svc: IdentityService, call: Call) -> Any:
    rules = await svc.grants.role_inferences(call.auth)
    return {"role_inferences": [core.render_role_inference(p, implied, call.base) for p, implied in rules]}


ROUTES = [
    *grant_routes(),
    Route("GET", "/role_assignments", list_role_assignments,
          query=("user.id", "group.id", "role.id", "scope.project.id", "scope.domain.id",
                 "scope.system", "effective", "include_names", "include_subtree",
                 "scope.OS-INHERIT:inherited_to")),
    Route("GET", "/roles/{prior_role_id}/implies", list_implied),
    Route("PUT", "/roles/{prior_role_id}/implies/{implied_role_id}", imply, status=201),
    Route("HEAD", "/roles/{prior_role_id}/implies/{implied_role_id}", check_implied, status=204),
    Route("GET", "/roles/{prior_role_id}/implies/{implied_role_id}", show_implied),
    Route("DELETE", "/roles/{prior_role_id}/implies/{implied_role_id}", unimply, status=204),
    Route("GET", "/role_inferences", role_inferences),
]

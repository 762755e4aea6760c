"""Keystone v3 routes at /identity/v3: version discovery, tokens, what a token may scope to, and
the list, show, create, update and delete endpoints of every entity (domains, projects, users,
groups, roles, regions, services, endpoints), made alike from one table.

The other routes live by resource family: users' passwords, projects and groups, group members
and application credentials in ``api_users.py``; grants, role assignments and implied roles in
``api_grants.py``; credentials, policies, endpoint groups, OAuth1 consumers, domain
configuration and project tags in ``api_extensions.py``.  Each module lists its routes in a ``ROUTES`` table of module-level handlers
``async def handler(svc, call, **path_params)``; ``build`` hands them the service.  A handler
parses, calls one method of the service, and renders.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Awaitable, Callable

from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.errors import BadRequest
from cloudbox.identity import api_ec2, api_extensions, api_grants, api_users, core, models
from cloudbox.identity.api_common import Handler, deleter, shower
from cloudbox.identity.core import PLURAL, AuthContext, require
from cloudbox.identity.service import IdentityService
from cloudbox.identity.service_resources import Resources

Row = dict[str, Any]

# The query filters of each entity's list.
FILTERS = {
    "domain": ("name", "enabled"),
    "project": ("name", "domain_id", "enabled", "parent_id", "is_domain"),
    "user": ("name", "domain_id", "enabled"),
    "group": ("name", "domain_id"),
    "role": ("name", "domain_id"),
    "region": ("parent_region_id",),
    "service": ("type", "name"),
    "endpoint": ("interface", "service_id", "region_id"),
}


def version_document(base: str) -> dict[str, Any]:
    return {
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": base + "/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


async def show_version(svc: IdentityService, call: Call) -> Any:
    return {"version": version_document(call.base)}


# --- tokens -------------------------------------------------------------------------
def _subject_token(call: Call) -> str:
    subject = call.request.headers.get("X-Subject-Token")
    if not subject:
        raise BadRequest("X-Subject-Token header is required.")
    return subject


async def issue_token(svc: IdentityService, call: Call) -> Reply:
    ctx, catalog = await svc.issue_token(call.body["auth"], catalog=not call.flag("nocatalog"))
    return Reply(core.render_token(ctx, catalog), 201, {"X-Subject-Token": ctx.token})


async def validate_token(svc: IdentityService, call: Call) -> Reply:
    subject = _subject_token(call)
    ctx, catalog = await svc.validate_token(call.auth, subject, catalog=not call.flag("nocatalog"))
    return Reply(core.render_token(ctx, catalog), 200, {"X-Subject-Token": ctx.token})


async def check_token(svc: IdentityService, call: Call) -> Reply:
    ctx = await svc.check_token(call.auth, _subject_token(call))
    return Reply(None, 200, {"X-Subject-Token": ctx.token})


async def revoke_token(svc: IdentityService, call: Call) -> Reply:
    await svc.revoke_subject(call.auth, _subject_token(call))
    return Reply(None, 204)


# --- what the token may scope to ----------------------------------------------------------
async def auth_catalog(svc: IdentityService, call: Call) -> Any:
    project = call.auth.project_id if call.auth else None
    return {"catalog": core.scoped_catalog(await svc.catalog(), project), "links": {"self": call.base + "/auth/catalog"}}


async def auth_projects(svc: IdentityService, call: Call) -> Any:
    rows = await svc.resources.scope_targets(call.auth, "project")
    return {"projects": [core.render_project(r, call.base) for r in rows],
            "links": core.unpaged_links(call.base + "/auth/projects")}


async def auth_domains(svc: IdentityService, call: Call) -> Any:
    rows = await svc.resources.scope_targets(call.auth, "domain")
    return {"domains": [core.render_domain(r, call.base) for r in rows],
            "links": core.unpaged_links(call.base + "/auth/domains")}


async def auth_system(svc: IdentityService, call: Call) -> Any:
    allowed = await svc.resources.may_scope_to_system(call.auth)
    return {"system": [{"all": True}] if allowed else [], "links": {"self": call.base + "/auth/system"}}


# --- list, show, create, update and delete: the same for every entity ---------------------------
def lister(entity: str) -> Handler:
    plural = PLURAL[entity]

    async def handler(svc: IdentityService, call: Call) -> Any:
        # Checked before the query is parsed: a caller who may not list gets 403 whatever it asked.
        require(core.may_read(call.auth, entity, None), f"identity:list_{plural}")
        filters: dict[str, Any] = {}
        for key in FILTERS[entity]:
            if key in ("enabled", "is_domain"):
                filters[key] = call.flag(key)
            elif key in call.query:
                filters[key] = call.query[key]
        if entity == "endpoint" and call.query.get("region"):
            filters["region_id"] = call.query["region"]
        limit, marker = call.page()
        rows = await svc.resources.list(call.auth, entity, filters, marker, limit)
        rows, links = call.paged(rows, limit, "/" + plural)
        return {plural: [core.RENDER[entity](r, call.base) for r in rows], "links": links}

    handler.__name__ = f"list_{plural}"
    handler.__doc__ = f"List {plural} (filters: {', '.join(FILTERS[entity])}; paging: limit, marker)"
    return handler


def creator(entity: str, create: Callable[[Resources, AuthContext, dict[str, Any]], Awaitable[Row]]) -> Handler:
    async def handler(svc: IdentityService, call: Call) -> Reply:
        created = await create(svc.resources, call.auth, call.body[entity])
        return Reply({entity: core.RENDER[entity](created, call.base)}, 201)

    handler.__name__ = f"create_{entity}"
    return handler


def updater(entity: str, update: Callable[[Resources, AuthContext, str, dict[str, Any]], Awaitable[Row]]) -> Handler:
    async def handler(svc: IdentityService, call: Call, **params: str) -> Any:
        updated = await update(svc.resources, call.auth, params[f"{entity}_id"], call.body[entity])
        return {entity: core.RENDER[entity](updated, call.base)}

    handler.__name__ = f"update_{entity}"
    return handler


# entity → (its create and update methods, the schemas of their bodies)
WRITERS = {
    "domain": (Resources.create_domain, Resources.update_domain, models.DOMAIN_CREATE, models.DOMAIN_UPDATE),
    "project": (Resources.create_project, Resources.update_project, models.PROJECT_CREATE, models.PROJECT_UPDATE),
    "user": (Resources.create_user, Resources.update_user, models.USER_CREATE, models.USER_UPDATE),
    "group": (Resources.create_group, Resources.update_group, models.GROUP_CREATE, models.GROUP_UPDATE),
    "role": (Resources.create_role, Resources.update_role, models.ROLE_CREATE, models.ROLE_UPDATE),
    "region": (Resources.create_region, Resources.update_region, models.REGION_CREATE, models.REGION_UPDATE),
    "service": (Resources.create_service, Resources.update_service, models.SERVICE_CREATE, models.SERVICE_UPDATE),
    "endpoint": (Resources.create_endpoint, Resources.update_endpoint, models.ENDPOINT_CREATE,
                 models.ENDPOINT_UPDATE),
}


def write_routes(entity: str) -> list[Route]:
    create, update, create_body, update_body = WRITERS[entity]
    plural = PLURAL[entity]
    return [
        Route("POST", f"/{plural}", creator(entity, create), body=create_body, status=201),
        Route("PATCH", f"/{plural}/{{{entity}_id}}", updater(entity, update), body=update_body),
    ]


def read_delete_routes(entity: str) -> list[Route]:
    plural = PLURAL[entity]
    query = FILTERS[entity] + ("limit", "marker") + (("region",) if entity == "endpoint" else ())
    return [
        Route("GET", f"/{plural}", lister(entity), query=query),
        Route("GET", f"/{plural}/{{{entity}_id}}", shower(entity, core.RENDER[entity])),
        Route("DELETE", f"/{plural}/{{{entity}_id}}", deleter(entity), status=204),
    ]


ROUTES = [
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
]


def bind(svc: IdentityService, handler: Handler) -> Handler:
    """``handler`` with the service given: what the app calls, ``handler(call, **path_params)``."""

    async def bound(call: Call, **params: str) -> Any:
        return await handler(svc, call, **params)

    bound.__name__, bound.__doc__ = handler.__name__, handler.__doc__  # the OpenAPI document names them
    return bound


def build(svc: IdentityService) -> ApiSpec:
    table = [
        *ROUTES,
        *[r for entity in PLURAL for r in write_routes(entity)],
        *api_users.ROUTES,
        *[r for entity in PLURAL for r in read_delete_routes(entity)],
        *api_grants.ROUTES,
        *api_users.APP_CREDENTIAL_ROUTES,
        *api_extensions.ROUTES,
        *api_ec2.ROUTES,
    ]
    routes = [dataclasses.replace(r, handler=bind(svc, r.handler)) for r in table]
    return ApiSpec("identity", "/identity/v3", "keystone", routes, catalog=("identity", "keystone"))

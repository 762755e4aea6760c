"""Keystone v3 routes of users (password, projects, groups, application credentials) and groups
(members); their list, show, create, update and delete are in ``api.py``."""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.identity import core, models
from cloudbox.identity.service import IdentityService


# --- users --------------------------------------------------------------------------------
async def change_password(svc: IdentityService, call: Call, user_id: str) -> Reply:
    body = call.body["user"]
    await svc.resources.change_password(call.auth, user_id, body["original_password"], body["password"])
    return Reply(None, 204)


async def user_projects(svc: IdentityService, call: Call, user_id: str) -> Any:
    rows = await svc.resources.user_projects(call.auth, user_id)
    return {"projects": [core.render_project(r, call.base) for r in rows],
            "links": core.unpaged_links(f"{call.base}/users/{user_id}/projects")}


async def user_groups(svc: IdentityService, call: Call, user_id: str) -> Any:
    rows = await svc.resources.user_groups(call.auth, user_id)
    return {"groups": [core.render_group(r, call.base) for r in rows],
            "links": core.unpaged_links(f"{call.base}/users/{user_id}/groups")}


# --- groups -------------------------------------------------------------------------------
async def group_users(svc: IdentityService, call: Call, group_id: str) -> Any:
    limit, marker = call.page()
    rows = await svc.resources.group_users(call.auth, group_id, marker, limit)
    rows, links = call.paged(rows, limit, f"/groups/{group_id}/users")
    return {"users": [core.render_user(r, call.base) for r in rows], "links": links}


async def add_member(svc: IdentityService, call: Call, group_id: str, user_id: str) -> Reply:
    await svc.resources.add_member(call.auth, group_id, user_id)
    return Reply(None, 204)


async def check_member(svc: IdentityService, call: Call, group_id: str, user_id: str) -> Reply:
    await svc.resources.check_member(call.auth, group_id, user_id)
    return Reply(None, 204)


async def remove_member(svc: IdentityService, call: Call, group_id: str, user_id: str) -> Reply:
    await svc.resources.remove_member(call.auth, group_id, user_id)
    return Reply(None, 204)


# --- application credentials -----------------------------------------------------------------
async def create_app_cred(svc: IdentityService, call: Call, user_id: str) -> Reply:
    created, roles, secret = await svc.grants.create_app_credential(
        call.auth, user_id, call.body["application_credential"])
    body = core.render_app_credential(created, roles, call.base)
    body["secret"] = secret  # shown once, when made
    return Reply({"application_credential": body}, 201)


async def list_app_creds(svc: IdentityService, call: Call, user_id: str) -> Any:
    limit, marker = call.page()
    found = await svc.grants.app_credentials(call.auth, user_id, call.query.get("name"), marker, limit)
    roles = {row["id"]: held for row, held in found}
    rows, links = call.paged([row for row, _ in found], limit, f"/users/{user_id}/application_credentials")
    return {"application_credentials": [core.render_app_credential(r, roles[r["id"]], call.base) for r in rows],
            "links": links}


async def get_app_cred(svc: IdentityService, call: Call, user_id: str, app_cred_id: str) -> Any:
    row, roles = await svc.grants.app_credential(call.auth, user_id, app_cred_id)
    return {"application_credential": core.render_app_credential(row, roles, call.base)}


async def delete_app_cred(svc: IdentityService, call: Call, user_id: str, app_cred_id: str) -> Reply:
    await svc.grants.delete_app_credential(call.auth, user_id, app_cred_id)
    return Reply(None, 204)


ROUTES = [
    Route("POST", "/users/{user_id}/password", change_password, body=models.USER_PASSWORD, status=204),
    Route("GET", "/users/{user_id}/projects", user_projects),
    Route("GET", "/users/{user_id}/groups", user_groups),
    Route("GET", "/groups/{group_id}/users", group_users, query=("limit", "marker")),
    Route("PUT", "/groups/{group_id}/users/{user_id}", add_member, status=204),
    Route("HEAD", "/groups/{group_id}/users/{user_id}", check_member, status=204),
    Route("DELETE", "/groups/{group_id}/users/{user_id}", remove_member, status=204),
]

_CREDS = "/users/{user_id}/application_credentials"
APP_CREDENTIAL_ROUTES = [
    Route("GET", _CREDS, list_app_creds, query=("name", "limit", "marker")),
    Route("POST", _CREDS, create_app_cred, body=models.APP_CREDENTIAL_CREATE, status=201),
    Route("GET", _CREDS + "/{app_cred_id}", get_app_cred),
    Route("DELETE", _CREDS + "/{app_cred_id}", delete_app_cred, status=204),
]

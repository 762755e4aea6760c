"""Shared steps of the identity API tests: unique names, auth bodies, Keystone's error shape, and
the admin's and a team's views of a running cloud (fixtures ``ident`` and ``team`` in conftest.py)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from tests.cloud import Cloud

V = "/identity/v3"
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def password_auth(name: str, password: str, scope: Any = None, domain_id: str = "default") -> dict[str, Any]:
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": domain_id}, "password": password}}}}}
    if scope is not None:
        body["auth"]["scope"] = scope
    return body


def assert_error(r: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    """A Keystone error: exactly {"error": {"code", "title", "message"}}, code equal to the status."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "title", "message"}, error
    assert error["code"] == status
    assert isinstance(error["title"], str) and error["title"]
    assert isinstance(error["message"], str) and error["message"]
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    assert REQUEST_ID.match(r.headers["x-openstack-request-id"])
    return error


def names(items: list[dict[str, Any]]) -> set[str]:
    return {i["name"] for i in items}


class Ident:
    """The admin's view of the cloud, with shortcuts to make resources and tokens."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.admin = cloud.client(cloud.token())
        self.anon = cloud.client()
        self.roles = {r["name"]: r["id"] for r in self.admin.get(V + "/roles").json()["roles"]}

    def create(self, kind: str, **fields: Any) -> dict[str, Any]:
        r = self.admin.post(f"{V}/{kind}s", json={kind: fields})
        assert r.status_code == 201, r.text
        return r.json()[kind]

    def user(self, password: str | None = None, **fields: Any) -> dict[str, Any]:
        fields.setdefault("name", unique("user"))
        if password:
            fields["password"] = password
        return self.create("user", **fields)

    def grant(self, target: str, user_id: str, role: str) -> None:
        """``target`` is "projects/<id>", "domains/<id>" or "system"."""
        r = self.admin.put(f"{V}/{target}/users/{user_id}/roles/{self.roles[role]}")
        assert r.status_code == 204, r.text

    def issue(self, body: dict[str, Any], **params: str) -> httpx.Response:
        return self.anon.post(V + "/auth/tokens", json=body, params=params)

    def token(self, body: dict[str, Any]) -> str:
        r = self.issue(body)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]

    def lookup(self, kind: str, **filters: str) -> list[dict[str, Any]]:
        r = self.admin.get(f"{V}/{kind}s", params=filters)
        assert r.status_code == 200, r.text
        return r.json()[f"{kind}s"]


class Team:
    """A project with a user holding only `reader` on it and one holding `member`."""

    def __init__(self, ident: Ident) -> None:
        self.password = unique("pw")
        self.project = ident.create("project", name=unique("team"), description="the team's project")
        self.reader = ident.user(self.password)
        self.member = ident.user(self.password)
        ident.grant(f"projects/{self.project['id']}", self.reader["id"], "reader")
        ident.grant(f"projects/{self.project['id']}", self.member["id"], "member")
        scope = {"project": {"id": self.project["id"]}}
        self.reader_client = ident.cloud.client(ident.token(password_auth(self.reader["name"], self.password, scope)))
        self.member_client = ident.cloud.client(ident.token(password_auth(self.member["name"], self.password, scope)))

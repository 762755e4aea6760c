"""The identity API (Keystone v3 at /identity/v3) over real HTTPS against a running node.

Tests share the session ``cloud`` and keep out of each other's way by naming
everything they make with a unique suffix; a test that needs other settings
starts a ``new_cloud`` of its own.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, Iterator

import httpx
import pytest

from cloudbox.clock import parse_iso
from tests.cloud import Cloud

V = "/identity/v3"
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# --- helpers ----------------------------------------------------------------------
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


@pytest.fixture(scope="module")
def ident(cloud: Cloud) -> Iterator[Ident]:
    ident = Ident(cloud)
    yield ident
    ident.admin.close()
    ident.anon.close()


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


@pytest.fixture(scope="module")
def team(ident: Ident) -> Iterator[Team]:
    team = Team(ident)
    yield team
    team.reader_client.close()
    team.member_client.close()


# --- issuing tokens ------------------------------------------------------------------
def test_password_token_scoped_to_a_project(ident: Ident, cloud: Cloud) -> None:
    scope = {"project": {"name": "admin", "domain": {"id": "default"}}}
    r = ident.issue(password_auth("admin", cloud.password, scope))
    assert r.status_code == 201, r.text
    assert r.headers["X-Subject-Token"]
    token = r.json()["token"]
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == "admin" and token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["project"]["name"] == "admin" and token["project"]["domain"]["id"] == "default"
    assert token["is_admin_project"] is True
    # admin implies member implies reader
    assert names(token["roles"]) == {"admin", "member", "reader"}
    assert parse_iso(token["expires_at"]) - parse_iso(token["issued_at"]) == pytest.approx(3600, abs=1)
    identity = [s for s in token["catalog"] if s["type"] == "identity"]
    assert len(identity) == 1
    assert {e["interface"]: e["url"] for e in identity[0]["endpoints"]} == {
        "public": cloud.auth_url, "internal": cloud.auth_url, "admin": cloud.auth_url}
    assert "catalog" not in ident.issue(password_auth("admin", cloud.password, scope), nocatalog="1").json()["token"]


def test_default_project_and_scope_by_project_id(ident: Ident) -> None:
    password = unique("pw")
    project = ident.create("project", name=unique("proj"))
    user = ident.user(password, default_project_id=project["id"])
    ident.grant(f"projects/{project['id']}", user["id"], "member")

    token = ident.issue(password_auth(user["name"], password)).json()["token"]
    assert token["project"]["id"] == project["id"]
    assert names(token["roles"]) == {"member", "reader"}
    assert token.get("is_admin_project") is None

    by_id = ident.issue(password_auth(user["name"], password, {"project": {"id": project["id"]}}))
    assert by_id.status_code == 201 and by_id.json()["token"]["project"]["id"] == project["id"]


def test_unscoped_tokens(ident: Ident, cloud: Cloud) -> None:
    password = unique("pw")
    user = ident.user(password)
    r = ident.issue(password_auth(user["name"], password))
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    for scoped_only in ("roles", "project", "domain", "system", "catalog"):
        assert scoped_only not in token
    # An unscoped token may discover projects but not read the cloud.
    with cloud.client(r.headers["X-Subject-Token"]) as c:
        assert c.get(V + "/auth/projects").json()["projects"] == []
        assert_error(c.get(V + "/users"), 403)

    # The admin has a default project; "unscoped" asks for no scope all the same.
    token = ident.issue(password_auth("admin", cloud.password, "unscoped")).json()["token"]
    assert "project" not in token and "roles" not in token


def test_domain_and_system_scoped_tokens(ident: Ident, cloud: Cloud) -> None:
    r = ident.issue(password_auth("admin", cloud.password, {"domain": {"id": "default"}}))
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token["domain"] == {"id": "default", "name": "Default"}
    assert "admin" in names(token["roles"]) and "project" not in token

    r = ident.issue(password_auth("admin", cloud.password, {"system": {"all": True}}))
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token["system"] == {"all": True}
    assert names(token["roles"]) == {"admin", "member", "reader"}
    with cloud.client(r.headers["X-Subject-Token"]) as system_admin:
        assert system_admin.get(V + "/users").status_code == 200

    # Without a role there, no scope.
    password = unique("pw")
    user = ident.user(password)
    for scope in ({"system": {"all": True}}, {"domain": {"id": "default"}}, {"project": {"name": "admin", "domain": {"id": "default"}}}):
        assert_error(ident.issue(password_auth(user["name"], password, scope)), 401)
    assert_error(ident.issue(password_auth(user["name"], password, {"project": {"id": "no-such-project"}})), 401)


def test_rescoping_a_token(ident: Ident) -> None:
    password = unique("pw")
    project = ident.create("project", name=unique("proj"))
    user = ident.user(password)
    ident.grant(f"projects/{project['id']}", user["id"], "member")
    unscoped = ident.issue(password_auth(user["name"], password))
    original = unscoped.json()["token"]

    r = ident.issue({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped.headers["X-Subject-Token"]}},
                              "scope": {"project": {"id": project["id"]}}}})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token["project"]["id"] == project["id"]
    assert set(token["methods"]) == {"token", "password"}
    assert names(token["roles"]) == {"member", "reader"}
    assert token["expires_at"] == original["expires_at"]  # rescoping never extends a token's life
    assert token["audit_ids"][1] == original["audit_ids"][0]
    with ident.cloud.client(r.headers["X-Subject-Token"]) as c:
        assert c.get(f"{V}/projects/{project['id']}").status_code == 200

    bogus = {"auth": {"identity": {"methods": ["token"], "token": {"id": "not-a-token"}}}}
    assert_error(ident.issue(bogus), 401)


def test_application_credentials(ident: Ident, cloud: Cloud) -> None:
    password = unique("pw")
    project = ident.create("project", name=unique("proj"))
    user = ident.user(password)
    ident.grant(f"projects/{project['id']}", user["id"], "member")
    scope = {"project": {"id": project["id"]}}
    owner = cloud.client(ident.token(password_auth(user["name"], password, scope)))
    base = f"{V}/users/{user['id']}/application_credentials"

    r = owner.post(base, json={"application_credential": {"name": "ci", "roles": [{"name": "reader"}]}})
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    secret = cred["secret"]
    assert cred["project_id"] == project["id"] and names(cred["roles"]) == {"reader"}
    assert "secret" not in owner.get(f"{base}/{cred['id']}").json()["application_credential"]
    assert [c["id"] for c in owner.get(base).json()["application_credentials"]] == [cred["id"]]
    assert_error(owner.post(base, json={"application_credential": {"name": "ci"}}), 409)

    by_id = {"auth": {"identity": {"methods": ["application_credential"],
                                   "application_credential": {"id": cred["id"], "secret": secret}}}}
    by_name = {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
        "name": "ci", "secret": secret, "user": {"name": user["name"], "domain": {"id": "default"}}}}}}
    for body in (by_id, by_name):
        r = ident.issue(body)
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        assert token["methods"] == ["application_credential"]
        assert token["application_credential"] == {"id": cred["id"], "name": "ci", "restricted": True}
        assert token["project"]["id"] == project["id"]
        assert names(token["roles"]) == {"reader"}  # only the roles the credential carries
    cred_token = r.headers["X-Subject-Token"]

    wrong_secret = {"auth": {"identity": {"methods": ["application_credential"],
                                          "application_credential": {"id": cred["id"], "secret": "wrong"}}}}
    wrong_password = password_auth(user["name"], "wrong")
    assert ident.issue(wrong_secret).json() == ident.issue(wrong_password).json()
    assert_error(ident.issue(wrong_secret), 401)

    with cloud.client(cred_token) as via_cred:
        assert via_cred.get(f"{V}/projects/{project['id']}").status_code == 200
        # A restricted credential cannot make more credentials, nor be rescoped.
        assert_error(via_cred.post(base, json={"application_credential": {"name": "more"}}), 403)
        rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": cred_token}}, "scope": scope}}
        assert_error(ident.issue(rescope), 403)

        assert owner.delete(f"{base}/{cred['id']}").status_code == 204
        assert_error(via_cred.get(f"{V}/projects/{project['id']}"), 401)
    assert_error(ident.issue(by_id), 401)
    owner.close()


# --- validating, checking and revoking --------------------------------------------------
def test_validate_and_check_tokens(ident: Ident, team: Team) -> None:
    member_token = team.member_client.headers["X-Auth-Token"]
    admin_token = ident.admin.headers["X-Auth-Token"]

    r = ident.admin.get(V + "/auth/tokens", headers={"X-Subject-Token": member_token})
    assert r.status_code == 200, r.text
    assert r.headers["X-Subject-Token"] == member_token
    token = r.json()["token"]
    assert token["user"]["id"] == team.member["id"] and token["project"]["id"] == team.project["id"]
    assert "catalog" in token
    assert "catalog" not in ident.admin.get(V + "/auth/tokens", params={"nocatalog": "1"},
                                            headers={"X-Subject-Token": member_token}).json()["token"]

    # One's own token, yes; someone else's, no.
    own = team.member_client.get(V + "/auth/tokens", headers={"X-Subject-Token": member_token})
    assert own.status_code == 200 and own.json()["token"]["user"]["id"] == team.member["id"]
    assert_error(team.member_client.get(V + "/auth/tokens", headers={"X-Subject-Token": admin_token}), 403)

    r = ident.admin.head(V + "/auth/tokens", headers={"X-Subject-Token": member_token})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["X-Subject-Token"] == member_token
    assert ident.admin.head(V + "/auth/tokens", headers={"X-Subject-Token": "garbage"}).status_code == 404

    assert_error(ident.admin.get(V + "/auth/tokens", headers={"X-Subject-Token": "garbage"}), 404)
    assert_error(ident.admin.get(V + "/auth/tokens"), 400, "X-Subject-Token")
    assert_error(ident.anon.get(V + "/auth/tokens", headers={"X-Subject-Token": member_token}), 401)


def test_revoked_token_fails_everywhere_and_others_keep_working(ident: Ident, cloud: Cloud) -> None:
    password = unique("pw")
    project = ident.create("project", name=unique("proj"))
    user = ident.user(password)
    ident.grant(f"projects/{project['id']}", user["id"], "member")
    scope = {"project": {"id": project["id"]}}
    doomed, kept = (ident.token(password_auth(user["name"], password, scope)) for _ in range(2))

    with cloud.client(doomed) as c:
        assert c.get(V + "/auth/catalog").status_code == 200
        r = c.delete(V + "/auth/tokens", headers={"X-Subject-Token": doomed})
        assert r.status_code == 204, r.text
        for method, path in [
            ("GET", V + "/auth/catalog"), ("GET", V + "/auth/projects"), ("GET", f"{V}/users/{user['id']}"),
            ("GET", f"{V}/projects/{project['id']}"), ("GET", V + "/users"), ("GET", "/cloudbox/v1/status"),
            ("GET", V + "/auth/tokens"), ("DELETE", V + "/auth/tokens"),
        ]:
            r = c.request(method, path, headers={"X-Subject-Token": doomed})
            assert_error(r, 401)
            assert r.headers["WWW-Authenticate"].startswith("Keystone uri=")
        assert c.post(V + "/projects", json={"project": {"name": unique("p")}}).status_code == 401
    assert_error(ident.admin.get(V + "/auth/tokens", headers={"X-Subject-Token": doomed}), 404)
    rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": doomed}}, "scope": scope}}
    assert_error(ident.issue(rescope), 401)

    with cloud.client(kept) as c:
        assert c.get(V + "/auth/catalog").status_code == 200
        assert c.head(V + "/auth/tokens", headers={"X-Subject-Token": kept}).status_code == 200
        # Nobody but the owner or a cloud admin revokes a token.
        other_password = unique("pw")
        other = ident.user(other_password)
        ident.grant(f"projects/{project['id']}", other["id"], "member")
        with cloud.client(ident.token(password_auth(other["name"], other_password, scope))) as o:
            assert_error(o.delete(V + "/auth/tokens", headers={"X-Subject-Token": kept}), 403)
        assert c.get(V + "/auth/catalog").status_code == 200
        assert ident.admin.delete(V + "/auth/tokens", headers={"X-Subject-Token": kept}).status_code == 204
        assert_error(c.get(V + "/auth/catalog"), 401)


def test_token_expires(new_cloud: Cloud) -> None:
    new_cloud.init("--set", "token_expiration=2")
    new_cloud.start()
    with new_cloud.client() as anon:
        r = anon.post(V + "/auth/tokens", json=password_auth("admin", new_cloud.password, {"system": {"all": True}}))
    assert r.status_code == 201, r.text
    body = r.json()["token"]
    assert parse_iso(body["expires_at"]) - parse_iso(body["issued_at"]) == pytest.approx(2, abs=0.01)
    expires_at = parse_iso(body["expires_at"])
    with new_cloud.client(r.headers["X-Subject-Token"]) as c:
        assert c.get(V + "/auth/catalog").status_code == 200
        deadline = time.monotonic() + 15
        while (r := c.get(V + "/auth/catalog")).status_code == 200:
            assert time.monotonic() < deadline, "the token never expired"
            time.sleep(0.1)
        assert time.time() >= expires_at - 0.5  # not rejected early
        assert_error(r, 401, "expired")
    # The expiry is the token's, not the cloud's: a new token works.
    with new_cloud.client(new_cloud.token()) as fresh:
        assert fresh.get(V + "/auth/catalog").status_code == 200


def test_password_change_revokes_old_tokens(ident: Ident, cloud: Cloud) -> None:
    password, new_password = unique("pw"), unique("pw")
    project = ident.create("project", name=unique("proj"))
    user = ident.user(password)
    ident.grant(f"projects/{project['id']}", user["id"], "member")
    scope = {"project": {"id": project["id"]}}
    old = [cloud.client(ident.token(password_auth(user["name"], password, scope))) for _ in range(2)]
    change = f"{V}/users/{user['id']}/password"

    wrong = old[0].post(change, json={"user": {"original_password": "wrong", "password": new_password}})
    assert_error(wrong, 401)
    assert old[0].get(V + "/auth/catalog").status_code == 200  # a failed change revokes nothing

    r = old[0].post(change, json={"user": {"original_password": password, "password": new_password}})
    assert r.status_code == 204, r.text
    for c in old:
        assert_error(c.get(V + "/auth/catalog"), 401)
        c.close()
    assert_error(ident.issue(password_auth(user["name"], password, scope)), 401)
    with cloud.client(ident.token(password_auth(user["name"], new_password, scope))) as c:
        assert c.get(V + "/auth/catalog").status_code == 200

        # An admin setting the password revokes too.
        assert ident.admin.patch(f"{V}/users/{user['id']}", json={"user": {"password": password}}).status_code == 200
        assert_error(c.get(V + "/auth/catalog"), 401)
    assert ident.issue(password_auth(user["name"], password, scope)).status_code == 201


def test_disabled_user_tokens_fail(ident: Ident, cloud: Cloud) -> None:
    password = unique("pw")
    project = ident.create("project", name=unique("proj"))
    user = ident.user(password)
    ident.grant(f"projects/{project['id']}", user["id"], "member")
    scope = {"project": {"id": project["id"]}}
    with cloud.client(ident.token(password_auth(user["name"], password, scope))) as c:
        assert c.get(V + "/auth/catalog").status_code == 200
        r = ident.admin.patch(f"{V}/users/{user['id']}", json={"user": {"enabled": False}})
        assert r.status_code == 200 and r.json()["user"]["enabled"] is False
        assert_error(c.get(V + "/auth/catalog"), 401)
        refused = ident.issue(password_auth(user["name"], password, scope))
        assert_error(refused, 401)
        assert refused.json() == ident.issue(password_auth(user["name"], "wrong", scope)).json()

        assert ident.admin.patch(f"{V}/users/{user['id']}", json={"user": {"enabled": True}}).status_code == 200
        assert_error(c.get(V + "/auth/catalog"), 401)  # re-enabling does not revive old tokens
    with cloud.client(ident.token(password_auth(user["name"], password, scope))) as c:
        assert c.get(V + "/auth/catalog").status_code == 200
    # Nobody disables themself by accident.
    admin_id = ident.admin.get(V + "/auth/tokens", headers={"X-Subject-Token": ident.admin.headers["X-Auth-Token"]}).json()["token"]["user"]["id"]
    assert_error(ident.admin.patch(f"{V}/users/{admin_id}", json={"user": {"enabled": False}}), 403)


def test_failed_authentication_says_nothing_about_why(ident: Ident, cloud: Cloud) -> None:
    password = unique("pw")
    user = ident.user(password)
    disabled = ident.user(password, enabled=False)
    attempts = {
        "wrong password": password_auth(user["name"], "not-" + password),
        "unknown user": password_auth(unique("nobody"), password),
        "unknown domain": password_auth(user["name"], password, domain_id=unique("nodomain")),
        "disabled user": password_auth(disabled["name"], password),
        "empty password": password_auth(user["name"], ""),
        "unknown user id": {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"id": uuid.uuid4().hex, "password": password}}}}},
    }
    bodies = {}
    for what, body in attempts.items():
        r = ident.issue(body)
        assert_error(r, 401)
        assert "X-Subject-Token" not in r.headers, what
        assert r.headers["WWW-Authenticate"] == f'Keystone uri="{cloud.auth_url}"'
        bodies[what] = r.content
    assert len(set(bodies.values())) == 1, bodies
    assert ident.issue(password_auth(user["name"], password)).status_code == 201


def test_error_body_shape(ident: Ident, team: Team) -> None:
    project = ident.create("project", name=unique("proj"))
    cases = [
        (ident.admin.post(V + "/projects", content=b"{"), 400),
        (ident.anon.get(V + "/users"), 401),
        (team.member_client.get(V + "/users"), 403),
        (ident.admin.get(V + "/users/" + uuid.uuid4().hex), 404),
        (ident.admin.get(V + "/no/such/thing"), 404),
        (ident.admin.put(V + "/users"), 405),
        (ident.admin.post(V + "/projects", json={"project": {"name": project["name"]}}), 409),
        (ident.admin.post(V + "/projects", content=b" " * (2 << 20)), 413),
    ]
    for r, status in cases:
        assert_error(r, status)
        assert r.headers["content-type"] == "application/json"


# --- authorization ----------------------------------------------------------------------
def test_reader_cannot_write_and_nothing_changes(ident: Ident, team: Team) -> None:
    reader, pid, rid = team.reader_client, team.project["id"], team.reader["id"]
    new_project, new_user, new_group, new_role = (unique(k) for k in ("project", "user", "group", "role"))
    refused = [
        reader.post(V + "/projects", json={"project": {"name": new_project}}),
        reader.post(V + "/users", json={"user": {"name": new_user, "password": "x"}}),
        reader.post(V + "/groups", json={"group": {"name": new_group}}),
        reader.post(V + "/roles", json={"role": {"name": new_role}}),
        reader.put(f"{V}/projects/{pid}/users/{rid}/roles/{ident.roles['member']}"),
        reader.put(f"{V}/projects/{pid}/users/{rid}/roles/{ident.roles['admin']}"),
        reader.put(f"{V}/system/users/{rid}/roles/{ident.roles['admin']}"),
        reader.patch(f"{V}/projects/{pid}", json={"project": {"description": "mine now"}}),
        reader.delete(f"{V}/projects/{pid}"),
        reader.delete(f"{V}/users/{team.member['id']}"),
        reader.patch(f"{V}/users/{team.member['id']}", json={"user": {"enabled": False}}),
    ]
    for r in refused:
        assert_error(r, 403, "not authorized")

    assert ident.lookup("project", name=new_project) == []
    assert ident.lookup("user", name=new_user) == []
    assert ident.lookup("group", name=new_group) == []
    assert ident.lookup("role", name=new_role) == []
    grants = ident.admin.get(V + "/role_assignments", params={"user.id": rid}).json()["role_assignments"]
    assert [(g["role"]["id"], g["scope"]) for g in grants] == [(ident.roles["reader"], {"project": {"id": pid}})]
    project = ident.admin.get(f"{V}/projects/{pid}").json()["project"]
    assert project["description"] == "the team's project" and project["enabled"] is True
    assert ident.admin.get(f"{V}/users/{team.member['id']}").json()["user"]["enabled"] is True
    # ...and the reader still reads.
    assert reader.get(f"{V}/projects/{pid}").status_code == 200


def test_member_cannot_list_users_admin_can(ident: Ident, team: Team) -> None:
    member = team.member_client
    assert_error(member.get(V + "/users"), 403, "identity:list_users")
    assert_error(member.get(V + "/projects"), 403)
    assert_error(member.get(f"{V}/users/{team.reader['id']}"), 403)
    assert_error(member.get(f"{V}/users/{team.reader['id']}/projects"), 403)
    assert_error(member.get(V + "/role_assignments", params={"user.id": team.reader["id"]}), 403)
    # What is the member's own, the member sees.
    assert member.get(f"{V}/users/{team.member['id']}").json()["user"]["name"] == team.member["name"]
    assert member.get(f"{V}/projects/{team.project['id']}").status_code == 200
    assert member.get(V + "/role_assignments", params={"user.id": team.member["id"]}).status_code == 200

    r = ident.admin.get(V + "/users", params={"name": team.member["name"]})
    assert r.status_code == 200 and [u["id"] for u in r.json()["users"]] == [team.member["id"]]
    assert "password" not in r.json()["users"][0] and "password_hash" not in r.json()["users"][0]


# --- bad input ---------------------------------------------------------------------------
def test_malformed_json_is_400_and_creates_nothing(ident: Ident) -> None:
    name = unique("proj")
    for raw in (b'{"project": {"name": "%s"' % name.encode(), b"\xff\xfe", b"project=" + name.encode()):
        r = ident.admin.post(V + "/projects", content=raw, headers={"Content-Type": "application/json"})
        assert_error(r, 400, "not valid JSON")
    assert_error(ident.admin.post(V + "/projects", content=b""), 400, "empty")
    assert_error(ident.anon.post(V + "/auth/tokens", content=b'{"auth": '), 400, "not valid JSON")
    assert ident.lookup("project", name=name) == []


def test_body_over_max_body_bytes_is_413_and_creates_nothing(ident: Ident) -> None:
    limit = 1 << 20

    def padded(name: str, size: int) -> bytes:
        doc = b'{"project": {"name": "%s"}}' % name.encode()
        return doc + b" " * (size - len(doc))  # valid JSON, valid body: only its size is wrong

    too_big = unique("big")
    r = ident.admin.post(V + "/projects", content=padded(too_big, limit + 1), headers={"Content-Type": "application/json"})
    assert_error(r, 413, str(limit))
    # The server did not read the body, so it closes the connection and must say so.
    assert r.headers["connection"] == "close"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming too
        body = padded(too_big, 3 * limit)
        for i in range(0, len(body), 64 * 1024):
            yield body[i:i + 64 * 1024]

    r = ident.admin.post(V + "/projects", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(r, 413)
    assert ident.lookup("project", name=too_big) == []  # same client: the closed connection is not reused

    just_fits = unique("fits")
    r = ident.admin.post(V + "/projects", content=padded(just_fits, limit), headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert [p["name"] for p in ident.lookup("project", name=just_fits)] == [just_fits]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/projects", {"project": {"description": "no name"}}, "'project'"),
    ("/projects", {"project": {"name": 5}}, "project/name"),
    ("/projects", {"project": {"name": "NAME", "enabled": "yes"}}, "project/enabled"),
    ("/projects", {"project": {"name": "NAME", "tags": "a,b"}}, "project/tags"),
    ("/projects", {"project": {"name": " padded "}}, "project/name"),
    ("/projects", {"project": []}, "'project'"),
    ("/projects", ["project"], "'body'"),
    ("/users", {"user": {"name": "NAME", "password": 1234}}, "user/password"),
    ("/users", {"user": {"name": "NAME", "enabled": 1}}, "user/enabled"),
    ("/groups", {"group": {"name": ["NAME"]}}, "group/name"),
    ("/roles", {"role": {}}, "'role'"),
    ("/domains", {"domain": {"name": "NAME", "description": 7}}, "domain/description"),
    ("/endpoints", {"endpoint": {"service_id": "x", "interface": "sideways", "url": "https://e"}}, "endpoint/interface"),
    ("/endpoints", {"endpoint": {"service_id": "x", "interface": "public", "url": "ftp://e"}}, "endpoint/url"),
    ("/auth/tokens", {"auth": {"identity": {}}}, "auth/identity"),
    ("/auth/tokens", {"auth": {"identity": {"methods": ["kerberos"]}}}, "auth/identity/methods/0"),
])
def test_schema_violations_name_the_field(ident: Ident, path: str, body: Any, field: str) -> None:
    name = unique("bad")
    template = json.dumps(body)
    r = ident.admin.post(V + path, content=template.replace("NAME", name), headers={"Content-Type": "application/json"})
    message = assert_error(r, 400)["message"]
    assert field in message, message
    if "NAME" in template:  # a body that names something: that something was not made
        assert ident.lookup(path.strip("/")[:-1], name=name) == []


# --- request ids -------------------------------------------------------------------------
def test_every_response_carries_a_request_id(ident: Ident, cloud: Cloud) -> None:
    admin, anon = ident.admin, ident.anon
    doomed = ident.create("group", name=unique("rid"))
    responses = [
        admin.delete(f"{V}/groups/{doomed['id']}"),
        anon.get("/cloudbox/v1/health"),
        anon.get("/identity"),
        anon.get(V),
        anon.get("/openapi.json"),
        admin.get(V + "/projects"),
        admin.head(V + "/projects"),
        admin.head(V + "/auth/tokens", headers={"X-Subject-Token": admin.headers["X-Auth-Token"]}),
        admin.post(V + "/projects", json={"project": {"name": unique("rid")}}),
        admin.put(f"{V}/projects/{uuid.uuid4().hex}/users/{uuid.uuid4().hex}/roles/{uuid.uuid4().hex}"),
        admin.post(V + "/projects", content=b"not json"),
        anon.post(V + "/auth/tokens", json=password_auth("admin", "wrong")),
        anon.get(V + "/users"),
        anon.head(V + "/users"),
        admin.get(V + "/users/" + uuid.uuid4().hex),
        admin.head(V + "/users/" + uuid.uuid4().hex),
        anon.get("/no/such/path"),
        anon.post("/no/such/path", content=b"{}"),
        anon.get(V + "/no/such/path"),
        anon.delete(V + "/projects"),
        anon.request("OPTIONS", V + "/users"),
        admin.post(V + "/projects", content=b" " * (2 << 20)),
    ]
    statuses = {r.status_code for r in responses}
    assert {200, 201, 204, 300, 400, 401, 404, 405, 413} <= statuses
    ids = []
    for r in responses:
        request_id = r.headers.get("x-openstack-request-id", "")
        assert REQUEST_ID.match(request_id), (r.request.method, r.request.url, r.status_code, r.headers)
        ids.append(request_id)
    assert len(set(ids)) == len(ids)


# --- paging ------------------------------------------------------------------------------
def test_paging_follows_next_links(ident: Ident) -> None:
    domain = ident.create("domain", name=unique("paging"))
    made = {ident.create("project", name=unique("page"), domain_id=domain["id"])["id"] for _ in range(7)}

    seen: list[str] = []
    sizes: list[int] = []
    url: str | None = f"{ident.cloud.auth_url}/projects?domain_id={domain['id']}&limit=3"
    while url:
        r = ident.admin.get(url)
        assert r.status_code == 200, r.text
        page = r.json()
        sizes.append(len(page["projects"]))
        seen += [p["id"] for p in page["projects"]]
        assert page["links"]["previous"] is None
        url = page["links"]["next"]
        assert len(sizes) <= 4, "paging does not end"
    assert sizes == [3, 3, 1]
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    assert seen == sorted(seen)  # pages follow one order

    whole = ident.admin.get(V + "/projects", params={"domain_id": domain["id"], "limit": "7"}).json()
    assert len(whole["projects"]) == 7 and whole["links"]["next"] is None


@pytest.mark.parametrize("limit", ["abc", "-1", "1.5", "3x"])
def test_bad_limit_is_400(ident: Ident, limit: str) -> None:
    for path in ("/projects", "/users", "/roles", "/endpoints"):
        assert_error(ident.admin.get(V + path, params={"limit": limit}), 400, "limit")


# --- resources ---------------------------------------------------------------------------
def test_project_crud(ident: Ident) -> None:
    name = unique("proj")
    project = ident.create("project", name=name, description="first", tags=["a"])
    assert project["domain_id"] == "default" and project["parent_id"] == "default"
    assert project["links"]["self"] == f"{ident.cloud.auth_url}/projects/{project['id']}"
    assert ident.admin.get(f"{V}/projects/{project['id']}").json()["project"] == project

    r = ident.admin.patch(f"{V}/projects/{project['id']}", json={"project": {"description": "second", "tags": ["b", "c"]}})
    assert r.status_code == 200 and r.json()["project"]["description"] == "second"
    assert ident.admin.get(f"{V}/projects/{project['id']}").json()["project"]["tags"] == ["b", "c"]
    assert [p["id"] for p in ident.lookup("project", name=name)] == [project["id"]]

    assert_error(ident.admin.post(V + "/projects", json={"project": {"name": name}}), 409, name)
    other = ident.create("project", name=unique("proj"))
    assert_error(ident.admin.patch(f"{V}/projects/{other['id']}", json={"project": {"name": name}}), 409)
    domain = ident.create("domain", name=unique("dom"))
    assert ident.create("project", name=name, domain_id=domain["id"])["domain_id"] == domain["id"]

    child = ident.create("project", name=unique("child"), parent_id=project["id"])
    assert child["parent_id"] == project["id"]
    assert_error(ident.admin.delete(f"{V}/projects/{project['id']}"), 403)
    assert ident.admin.delete(f"{V}/projects/{child['id']}").status_code == 204
    assert ident.admin.delete(f"{V}/projects/{project['id']}").status_code == 204
    assert_error(ident.admin.get(f"{V}/projects/{project['id']}"), 404)
    assert_error(ident.admin.delete(f"{V}/projects/{project['id']}"), 404)

    admin_project = ident.lookup("project", name="admin", domain_id="default")[0]
    assert_error(ident.admin.delete(f"{V}/projects/{admin_project['id']}"), 403)
    assert_error(ident.admin.patch(f"{V}/projects/{admin_project['id']}", json={"project": {"name": "x"}}), 403)


def test_user_crud(ident: Ident, cloud: Cloud) -> None:
    password = unique("pw")
    name = unique("user")
    user = ident.user(password, name=name, email="a@example.com", description="someone")
    assert "password" not in user and "password_hash" not in user
    assert user["email"] == "a@example.com" and user["enabled"] is True
    got = ident.admin.get(f"{V}/users/{user['id']}").json()["user"]
    assert got == user

    r = ident.admin.patch(f"{V}/users/{user['id']}", json={"user": {"email": "b@example.com", "description": None}})
    assert r.status_code == 200
    assert r.json()["user"]["email"] == "b@example.com" and "description" not in r.json()["user"]

    other = ident.user()
    assert_error(ident.admin.post(V + "/users", json={"user": {"name": name}}), 409, name)
    assert_error(ident.admin.patch(f"{V}/users/{other['id']}", json={"user": {"name": name}}), 409)
    assert ident.admin.get(f"{V}/users/{other['id']}").json()["user"]["name"] == other["name"]
    assert_error(ident.admin.post(V + "/users", json={"user": {"name": unique("u"), "domain_id": "no-such"}}), 400, "no-such")

    token = ident.token(password_auth(name, password))
    assert ident.admin.delete(f"{V}/users/{user['id']}").status_code == 204
    assert_error(ident.admin.get(f"{V}/users/{user['id']}"), 404)
    with cloud.client(token) as c:
        assert_error(c.get(V + "/auth/projects"), 401)
    assert_error(ident.issue(password_auth(name, password)), 401)


def test_groups_and_membership(ident: Ident, cloud: Cloud) -> None:
    password = unique("pw")
    project = ident.create("project", name=unique("proj"))
    user = ident.user(password)
    name = unique("group")
    group = ident.create("group", name=name, description="people")
    assert group["domain_id"] == "default"
    assert_error(ident.admin.post(V + "/groups", json={"group": {"name": name}}), 409)
    r = ident.admin.patch(f"{V}/groups/{group['id']}", json={"group": {"description": "more people"}})
    assert r.json()["group"]["description"] == "more people"

    member_path = f"{V}/groups/{group['id']}/users/{user['id']}"
    assert ident.admin.head(member_path).status_code == 404
    assert ident.admin.put(member_path).status_code == 204
    assert ident.admin.head(member_path).status_code == 204
    assert [u["id"] for u in ident.admin.get(f"{V}/groups/{group['id']}/users").json()["users"]] == [user["id"]]
    assert [g["id"] for g in ident.admin.get(f"{V}/users/{user['id']}/groups").json()["groups"]] == [group["id"]]

    # A role given to the group is the member's too.
    r = ident.admin.put(f"{V}/projects/{project['id']}/groups/{group['id']}/roles/{ident.roles['member']}")
    assert r.status_code == 204
    scope = {"project": {"id": project["id"]}}
    token = ident.issue(password_auth(user["name"], password, scope))
    assert names(token.json()["token"]["roles"]) == {"member", "reader"}
    assert [p["id"] for p in ident.admin.get(f"{V}/users/{user['id']}/projects").json()["projects"]] == [project["id"]]

    assert ident.admin.delete(member_path).status_code == 204
    assert_error(ident.admin.delete(member_path), 404)
    assert ident.admin.head(member_path).status_code == 404
    assert ident.admin.get(f"{V}/users/{user['id']}/groups").json()["groups"] == []
    assert_error(ident.issue(password_auth(user["name"], password, scope)), 401)  # no role left there
    with cloud.client(token.headers["X-Subject-Token"]) as c:
        assert_error(c.get(V + "/auth/catalog"), 401)  # its only role went with the membership

    assert ident.admin.delete(f"{V}/groups/{group['id']}").status_code == 204
    assert_error(ident.admin.get(f"{V}/groups/{group['id']}"), 404)


def test_domain_crud(ident: Ident, cloud: Cloud) -> None:
    name = unique("dom")
    domain = ident.create("domain", name=name, description="a place")
    assert domain["enabled"] is True
    assert_error(ident.admin.post(V + "/domains", json={"domain": {"name": name}}), 409)
    assert name in names(ident.admin.get(V + "/domains").json()["domains"])

    password = unique("pw")
    user = ident.user(password, domain_id=domain["id"])
    assert user["domain_id"] == domain["id"]
    ident.grant(f"domains/{domain['id']}", user["id"], "admin")
    domain_admin = cloud.client(ident.token(password_auth(user["name"], password, {"domain": {"id": domain["id"]}}, domain["id"])))
    # A domain admin manages its own domain only.
    assert domain_admin.post(V + "/projects", json={"project": {"name": unique("p")}}).json()["project"]["domain_id"] == domain["id"]
    assert_error(domain_admin.post(V + "/projects", json={"project": {"name": unique("p"), "domain_id": "default"}}), 403)

    assert_error(ident.admin.delete(f"{V}/domains/{domain['id']}"), 403, "disable")
    r = ident.admin.patch(f"{V}/domains/{domain['id']}", json={"domain": {"enabled": False}})
    assert r.status_code == 200 and r.json()["domain"]["enabled"] is False
    assert_error(domain_admin.get(V + "/auth/catalog"), 401)  # a disabled domain's users lose their tokens
    domain_admin.close()
    assert ident.admin.delete(f"{V}/domains/{domain['id']}").status_code == 204
    assert_error(ident.admin.get(f"{V}/domains/{domain['id']}"), 404)
    assert_error(ident.admin.get(f"{V}/users/{user['id']}"), 404)

    assert_error(ident.admin.patch(f"{V}/domains/default", json={"domain": {"enabled": False}}), 400)
    assert_error(ident.admin.delete(f"{V}/domains/default"), 403)


def test_builtin_roles_imply_each_other(ident: Ident) -> None:
    r = ident.admin.get(f"{V}/roles/{ident.roles['admin']}/implies")
    assert [x["name"] for x in r.json()["role_inference"]["implies"]] == ["member"]
    r = ident.admin.get(f"{V}/roles/{ident.roles['member']}/implies")
    assert [x["name"] for x in r.json()["role_inference"]["implies"]] == ["reader"]
    assert ident.admin.get(f"{V}/roles/{ident.roles['reader']}/implies").json()["role_inference"]["implies"] == []
    rules = {i["prior_role"]["name"]: names(i["implies"]) for i in ident.admin.get(V + "/role_inferences").json()["role_inferences"]}
    assert rules["admin"] == {"member"} and rules["member"] == {"reader"}

    project = ident.create("project", name=unique("proj"))
    password = unique("pw")
    expected = {"admin": {"admin", "member", "reader"}, "member": {"member", "reader"}, "reader": {"reader"}}
    for role, held in expected.items():
        user = ident.user(password)
        ident.grant(f"projects/{project['id']}", user["id"], role)
        token = ident.issue(password_auth(user["name"], password, {"project": {"id": project["id"]}})).json()["token"]
        assert names(token["roles"]) == held, role

    for role in ("admin", "member", "reader"):
        assert_error(ident.admin.delete(f"{V}/roles/{ident.roles[role]}"), 403)
        assert_error(ident.admin.patch(f"{V}/roles/{ident.roles[role]}", json={"role": {"name": unique("r")}}), 403)


def test_role_crud_and_implied_roles(ident: Ident) -> None:
    prior = ident.create("role", name=unique("prior"))
    implied = ident.create("role", name=unique("implied"))
    assert_error(ident.admin.post(V + "/roles", json={"role": {"name": prior["name"]}}), 409)
    assert_error(ident.admin.patch(f"{V}/roles/{prior['id']}", json={"role": {"name": implied["name"]}}), 409)
    r = ident.admin.patch(f"{V}/roles/{prior['id']}", json={"role": {"description": "comes first"}})
    assert r.json()["role"]["description"] == "comes first"

    rule = f"{V}/roles/{prior['id']}/implies/{implied['id']}"
    assert ident.admin.head(rule).status_code == 404
    r = ident.admin.put(rule)
    assert r.status_code == 201, r.text
    assert r.json()["role_inference"]["implies"]["id"] == implied["id"]
    assert ident.admin.head(rule).status_code == 204
    assert_error(ident.admin.put(f"{V}/roles/{implied['id']}/implies/{prior['id']}"), 400, "cycle")

    project = ident.create("project", name=unique("proj"))
    password = unique("pw")
    user = ident.user(password)
    r = ident.admin.put(f"{V}/projects/{project['id']}/users/{user['id']}/roles/{prior['id']}")
    assert r.status_code == 204
    scope = {"project": {"id": project["id"]}}
    assert names(ident.issue(password_auth(user["name"], password, scope)).json()["token"]["roles"]) == {prior["name"], implied["name"]}

    assert ident.admin.delete(rule).status_code == 204
    assert ident.admin.head(rule).status_code == 404
    assert_error(ident.admin.delete(rule), 404)
    assert names(ident.issue(password_auth(user["name"], password, scope)).json()["token"]["roles"]) == {prior["name"]}

    assert ident.admin.delete(f"{V}/roles/{prior['id']}").status_code == 204
    assert_error(ident.admin.get(f"{V}/roles/{prior['id']}"), 404)
    assert_error(ident.issue(password_auth(user["name"], password, scope)), 401)  # its one role is gone


def test_regions_services_endpoints_and_catalog(ident: Ident, cloud: Cloud) -> None:
    parent_id, child_id = unique("Region"), unique("Region")
    parent = ident.create("region", id=parent_id, description="up")
    assert parent["id"] == parent_id and parent["parent_region_id"] is None
    assert_error(ident.admin.post(V + "/regions", json={"region": {"id": parent_id}}), 409)
    child = ident.create("region", id=child_id, parent_region_id=parent_id)
    assert child["parent_region_id"] == parent_id
    assert_error(ident.admin.post(V + "/regions", json={"region": {"parent_region_id": unique("none")}}), 400)
    # No region may end up its own ancestor.
    assert_error(ident.admin.patch(f"{V}/regions/{child_id}", json={"region": {"parent_region_id": child_id}}), 400)
    assert_error(ident.admin.patch(f"{V}/regions/{parent_id}", json={"region": {"parent_region_id": child_id}}), 400, "cycle")
    assert ident.admin.get(f"{V}/regions/{parent_id}").json()["region"]["parent_region_id"] is None

    service_type = unique("type")
    service = ident.create("service", type=service_type, name=unique("svc"), description="test service")
    urls = {i: f"https://{i}.example.com/{service_type}" for i in ("public", "internal")}
    endpoints = {i: ident.create("endpoint", service_id=service["id"], interface=i, url=u, region_id=child_id)
                 for i, u in urls.items()}
    assert endpoints["public"]["region"] == child_id
    assert_error(ident.admin.post(V + "/endpoints", json={"endpoint": {
        "service_id": uuid.uuid4().hex, "interface": "public", "url": "https://x"}}), 400)

    listed = ident.admin.get(V + "/endpoints", params={"service_id": service["id"]}).json()["endpoints"]
    assert {e["id"] for e in listed} == {e["id"] for e in endpoints.values()}
    public = ident.admin.get(V + "/endpoints", params={"service_id": service["id"], "interface": "public"}).json()["endpoints"]
    assert [e["id"] for e in public] == [endpoints["public"]["id"]]
    assert {e["id"] for e in ident.admin.get(V + "/endpoints", params={"region": child_id}).json()["endpoints"]} == \
        {e["id"] for e in endpoints.values()}
    assert [s["id"] for s in ident.admin.get(V + "/services", params={"type": service_type}).json()["services"]] == [service["id"]]

    def catalog_entry(catalog: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next((s for s in catalog if s["id"] == service["id"]), None)

    entry = catalog_entry(ident.admin.get(V + "/auth/catalog").json()["catalog"])
    assert entry is not None and entry["type"] == service_type
    assert {e["interface"]: e["url"] for e in entry["endpoints"]} == urls
    token = ident.issue(password_auth("admin", cloud.password)).json()["token"]
    assert catalog_entry(token["catalog"]) == entry

    new_url = f"https://moved.example.com/{service_type}"
    r = ident.admin.patch(f"{V}/endpoints/{endpoints['public']['id']}", json={"endpoint": {"url": new_url}})
    assert r.status_code == 200 and r.json()["endpoint"]["url"] == new_url
    ident.admin.patch(f"{V}/endpoints/{endpoints['internal']['id']}", json={"endpoint": {"enabled": False}})
    entry = catalog_entry(ident.admin.get(V + "/auth/catalog").json()["catalog"])
    assert {e["interface"]: e["url"] for e in entry["endpoints"]} == {"public": new_url}
    ident.admin.patch(f"{V}/services/{service['id']}", json={"service": {"enabled": False}})
    assert catalog_entry(ident.admin.get(V + "/auth/catalog").json()["catalog"]) is None

    assert_error(ident.admin.delete(f"{V}/regions/{child_id}"), 403)  # endpoints are in it
    assert ident.admin.delete(f"{V}/services/{service['id']}").status_code == 204
    for endpoint in endpoints.values():  # the service's endpoints went with it
        assert_error(ident.admin.get(f"{V}/endpoints/{endpoint['id']}"), 404)
    assert_error(ident.admin.delete(f"{V}/regions/{parent_id}"), 403)  # it has a child
    assert ident.admin.delete(f"{V}/regions/{child_id}").status_code == 204
    assert ident.admin.delete(f"{V}/regions/{parent_id}").status_code == 204
    assert_error(ident.admin.get(f"{V}/regions/{parent_id}"), 404)


def test_role_assignments(ident: Ident, cloud: Cloud) -> None:
    roles = ident.roles
    domain = ident.create("domain", name=unique("dom"))
    in_domain = ident.create("project", name=unique("proj"), domain_id=domain["id"])
    elsewhere = ident.create("project", name=unique("proj"))
    password = unique("pw")
    user = ident.user(password, domain_id=domain["id"])
    group = ident.create("group", name=unique("group"), domain_id=domain["id"])
    assert ident.admin.put(f"{V}/groups/{group['id']}/users/{user['id']}").status_code == 204

    grants = {
        "project": f"{V}/projects/{elsewhere['id']}/users/{user['id']}/roles/{roles['member']}",
        "domain": f"{V}/domains/{domain['id']}/users/{user['id']}/roles/{roles['reader']}",
        "system": f"{V}/system/users/{user['id']}/roles/{roles['reader']}",
        "inherited": f"{V}/OS-INHERIT/domains/{domain['id']}/groups/{group['id']}/roles/{roles['member']}/inherited_to_projects",
    }
    for path in grants.values():
        assert ident.admin.head(path).status_code == 404
        assert ident.admin.put(path).status_code == 204, path
        assert ident.admin.head(path).status_code == 204, path
    assert ident.admin.get(grants["project"]).status_code == 204
    assert ident.admin.head(f"{V}/domains/{domain['id']}/groups/{group['id']}/roles/{roles['member']}").status_code == 404

    def role_names(path: str) -> set[str]:
        r = ident.admin.get(path)
        assert r.status_code == 200, r.text
        return names(r.json()["roles"])

    assert role_names(f"{V}/projects/{elsewhere['id']}/users/{user['id']}/roles") == {"member"}
    assert role_names(f"{V}/domains/{domain['id']}/users/{user['id']}/roles") == {"reader"}
    assert role_names(f"{V}/system/users/{user['id']}/roles") == {"reader"}
    assert role_names(f"{V}/OS-INHERIT/domains/{domain['id']}/groups/{group['id']}/roles/inherited_to_projects") == {"member"}
    assert role_names(f"{V}/domains/{domain['id']}/groups/{group['id']}/roles") == set()

    def assignments(**params: str) -> list[dict[str, Any]]:
        r = ident.admin.get(V + "/role_assignments", params=params)
        assert r.status_code == 200, r.text
        return r.json()["role_assignments"]

    def summary(items: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        out = set()
        for a in items:
            scope = a["scope"]
            target = "system" if "system" in scope else next(f"{k}:{v['id']}" for k, v in scope.items() if k in ("project", "domain"))
            actor = "user" if "user" in a else "group"
            out.add((actor, target, a["role"]["id"]))
        return out

    direct = assignments(**{"user.id": user["id"]})
    assert summary(direct) == {
        ("user", f"project:{elsewhere['id']}", roles["member"]),
        ("user", f"domain:{domain['id']}", roles["reader"]),
        ("user", "system", roles["reader"]),
    }
    named = assignments(**{"user.id": user["id"], "include_names": "true", "scope.project.id": elsewhere["id"]})
    assert len(named) == 1
    assert named[0]["user"] == {"id": user["id"], "name": user["name"], "domain": {"id": domain["id"], "name": domain["name"]}}
    assert named[0]["role"] == {"id": roles["member"], "name": "member"}
    assert named[0]["scope"]["project"] == {"id": elsewhere["id"], "name": elsewhere["name"],
                                            "domain": {"id": "default", "name": "Default"}}
    assert "name" not in direct[0]["user"]

    inherited = assignments(**{"group.id": group["id"]})
    assert len(inherited) == 1 and inherited[0]["scope"]["OS-INHERIT:inherited_to"] == "projects"
    # Each assignment links to its own grant.
    for a in direct + inherited:
        link = a["links"]["assignment"]
        assert link.startswith(cloud.auth_url + "/")
        assert ident.admin.head(link).status_code == 204, link

    effective = assignments(**{"user.id": user["id"], "effective": "true"})
    assert all("user" in a and "OS-INHERIT:inherited_to" not in a["scope"] for a in effective)
    assert summary(effective) == {
        ("user", f"project:{elsewhere['id']}", roles["member"]),
        ("user", f"project:{elsewhere['id']}", roles["reader"]),
        ("user", f"domain:{domain['id']}", roles["reader"]),
        ("user", "system", roles["reader"]),
        ("user", f"project:{in_domain['id']}", roles["member"]),  # inherited from the domain, via the group
        ("user", f"project:{in_domain['id']}", roles["reader"]),  # implied by member
    }
    on_project = assignments(**{"user.id": user["id"], "effective": "", "scope.project.id": in_domain["id"]})
    assert summary(on_project) == {("user", f"project:{in_domain['id']}", roles["member"]),
                                   ("user", f"project:{in_domain['id']}", roles["reader"])}
    readers = assignments(**{"user.id": user["id"], "effective": "true", "role.id": roles["reader"]})
    assert len(readers) == 4 and {a["role"]["id"] for a in readers} == {roles["reader"]}
    assert_error(ident.admin.get(V + "/role_assignments", params={"group.id": group["id"], "effective": "true"}), 400)

    token = ident.issue(password_auth(user["name"], password, {"project": {"id": in_domain["id"]}}, domain["id"]))
    assert names(token.json()["token"]["roles"]) == {"member", "reader"}
    system = ident.issue(password_auth(user["name"], password, {"system": {"all": True}}, domain["id"])).json()["token"]
    assert names(system["roles"]) == {"reader"}
    with cloud.client(token.headers["X-Subject-Token"]) as c:  # the user reads their own assignments
        assert summary(c.get(V + "/role_assignments", params={"user.id": user["id"]}).json()["role_assignments"]) == summary(direct)

    for path in grants.values():
        assert ident.admin.delete(path).status_code == 204, path
        assert ident.admin.head(path).status_code == 404
        assert_error(ident.admin.delete(path), 404)
    assert assignments(**{"user.id": user["id"], "effective": "true"}) == []
    assert_error(ident.admin.put(f"{V}/projects/{elsewhere['id']}/users/{user['id']}/roles/{uuid.uuid4().hex}"), 404)
    assert_error(ident.admin.put(f"{V}/projects/{uuid.uuid4().hex}/users/{user['id']}/roles/{roles['member']}"), 404)


def test_auth_projects_catalog_and_user_projects(ident: Ident, team: Team, cloud: Cloud) -> None:
    password = unique("pw")
    domain = ident.create("domain", name=unique("dom"))
    direct = ident.create("project", name=unique("direct"))
    via_group = ident.create("project", name=unique("group"))
    inherited = ident.create("project", name=unique("inherited"), domain_id=domain["id"])
    disabled = ident.create("project", name=unique("disabled"))
    ident.create("project", name=unique("not-mine"))
    user = ident.user(password)
    group = ident.create("group", name=unique("group"))
    ident.admin.put(f"{V}/groups/{group['id']}/users/{user['id']}")
    ident.grant(f"projects/{direct['id']}", user["id"], "reader")
    ident.grant(f"projects/{disabled['id']}", user["id"], "reader")
    ident.admin.put(f"{V}/projects/{via_group['id']}/groups/{group['id']}/roles/{ident.roles['member']}")
    ident.admin.put(f"{V}/OS-INHERIT/domains/{domain['id']}/users/{user['id']}/roles/{ident.roles['member']}/inherited_to_projects")
    ident.admin.patch(f"{V}/projects/{disabled['id']}", json={"project": {"enabled": False}})

    unscoped = ident.issue(password_auth(user["name"], password))
    with cloud.client(unscoped.headers["X-Subject-Token"]) as c:
        r = c.get(V + "/auth/projects")
        assert r.status_code == 200, r.text
        assert {p["id"] for p in r.json()["projects"]} == {direct["id"], via_group["id"], inherited["id"]}
        mine = c.get(f"{V}/users/{user['id']}/projects").json()["projects"]
        assert {p["id"] for p in mine} == {direct["id"], via_group["id"], inherited["id"], disabled["id"]}
        assert_error(c.get(f"{V}/users/{team.member['id']}/projects"), 403)
        assert c.get(V + "/auth/domains").json()["domains"] == []
        assert c.get(V + "/auth/system").json()["system"] == []
    admin_view = ident.admin.get(f"{V}/users/{user['id']}/projects").json()["projects"]
    assert {p["id"] for p in admin_view} == {p["id"] for p in mine}
    assert_error(ident.admin.get(f"{V}/users/{uuid.uuid4().hex}/projects"), 404)

    for project in (direct, via_group, inherited):  # every project listed can be scoped to
        scope = {"project": {"id": project["id"]}}
        assert ident.issue(password_auth(user["name"], password, scope)).status_code == 201
    assert_error(ident.issue(password_auth(user["name"], password, {"project": {"id": disabled["id"]}})), 401)

    admin_token = ident.issue(password_auth("admin", cloud.password)).json()["token"]
    catalog = ident.admin.get(V + "/auth/catalog").json()
    assert catalog["catalog"] == admin_token["catalog"]
    assert catalog["links"]["self"] == cloud.auth_url + "/auth/catalog"
    types = {s["type"]: s for s in catalog["catalog"]}
    assert {"identity", "cloudbox"} <= set(types)
    assert {e["url"] for e in types["cloudbox"]["endpoints"]} == {cloud.url + "/cloudbox/v1"}
    assert ident.admin.get(V + "/auth/system").json()["system"] == [{"all": True}]
    assert "default" in {d["id"] for d in ident.admin.get(V + "/auth/domains").json()["domains"]}


# --- token keys ---------------------------------------------------------------------------
def test_token_key_rotation(ident: Ident, team: Team, cloud: Cloud) -> None:
    before = ident.token(password_auth("admin", cloud.password))
    member_before = team.member_client.headers["X-Auth-Token"]

    assert_error(team.member_client.post("/cloudbox/v1/token-keys/rotate"), 403)
    assert ident.anon.post("/cloudbox/v1/token-keys/rotate").status_code == 401
    r = ident.admin.post("/cloudbox/v1/token-keys/rotate")
    assert r.status_code == 200, r.text
    first = r.json()["token_keys"]["primary"]
    second = ident.admin.post("/cloudbox/v1/token-keys/rotate").json()["token_keys"]["primary"]
    assert second == first + 1

    for token in (before, member_before):
        r = ident.admin.get(V + "/auth/tokens", headers={"X-Subject-Token": token})
        assert r.status_code == 200, r.text
    with cloud.client(before) as c:
        assert c.get(V + "/auth/catalog").status_code == 200
    assert team.member_client.get(f"{V}/projects/{team.project['id']}").status_code == 200
    after = ident.token(password_auth("admin", cloud.password))
    assert after != before
    assert ident.admin.head(V + "/auth/tokens", headers={"X-Subject-Token": after}).status_code == 200


# --- the API's shape -----------------------------------------------------------------------
def test_openapi_lists_every_route_served(cloud: Cloud, ident: Ident) -> None:
    from cloudbox.node import DataDir
    from cloudbox.server import Node
    from cloudbox.settings import Settings

    node = Node(DataDir(cloud.data_dir), Settings.load(cloud.data_dir))  # wired like `cloudbox serve`, not opened
    app = node.app()
    served: set[tuple[str, str]] = set()
    served_head: set[str] = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
        if "HEAD" in rule.methods:
            served_head.add(path)
    assert ("/identity/v3/auth/tokens", "POST") in served and len(served) > 100

    r = ident.anon.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, m.upper()) for path, ops in doc["paths"].items() for m in ops}
    assert served - {(p, m) for p, m in documented if m != "HEAD"} == set(), "served but not documented"
    assert {(p, m) for p, m in documented if m != "HEAD"} - served == set(), "documented but not served"
    assert {p for p, m in documented if m == "HEAD"} <= served_head
    operation_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert doc["paths"]["/identity/v3/users"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == ["user"]


def test_version_documents_and_their_links(ident: Ident, cloud: Cloud) -> None:
    r = ident.anon.get("/identity")
    assert r.status_code == 300
    [version] = r.json()["versions"]["values"]
    assert version["id"].startswith("v3.") and version["status"] == "stable"
    self_link = next(link["href"] for link in version["links"] if link["rel"] == "self")
    assert self_link == cloud.auth_url + "/"
    for url in (self_link, cloud.auth_url):  # keystoneauth follows the self link
        r = ident.anon.get(url)
        assert r.status_code == 200, (url, r.text)
        assert r.json()["version"]["id"] == version["id"]


def test_head_works_on_every_kind_of_get(ident: Ident, team: Team) -> None:
    for client, path in [
        (ident.anon, "/cloudbox/v1/health"), (ident.anon, V), (ident.admin, V + "/projects"),
        (ident.admin, V + "/auth/catalog"), (ident.admin, f"{V}/projects/{team.project['id']}"),
        (ident.admin, V + "/role_assignments"),
    ]:
        r = client.head(path)
        assert r.status_code == 200, (path, r.status_code)
        assert r.content == b""
        assert r.headers["content-type"] == "application/json"
    # HEAD answers with the headers GET would send.
    assert int(ident.anon.head(V).headers["content-length"]) == len(ident.anon.get(V).content)
    assert ident.anon.head(V + "/projects").status_code == 401
    assert team.member_client.head(V + "/users").status_code == 403


def test_a_domain_admin_cannot_become_a_cloud_admin(cloud: Cloud) -> None:
    """admin on the Default domain manages that domain's projects and people, not the cloud."""
    with cloud.client(cloud.token()) as admin:
        roles = {r["name"]: r["id"] for r in admin.get("/identity/v3/roles").json()["roles"]}
        admin_user = admin.get("/identity/v3/users?name=admin").json()["users"][0]
        admin_project = admin.get("/identity/v3/projects?name=admin").json()["projects"][0]
        name = unique("dadmin")
        x = admin.post("/identity/v3/users", json={"user": {"name": name, "password": "pw"}}).json()["user"]
        regular = admin.post("/identity/v3/users", json={"user": {"name": unique("reg"), "password": "pw"}}).json()["user"]
        project = admin.post("/identity/v3/projects", json={"project": {"name": unique("dp")}}).json()["project"]
        assert admin.put(f"/identity/v3/domains/default/users/{x['id']}/roles/{roles['admin']}").status_code == 204
        group = admin.post("/identity/v3/groups", json={"group": {"name": unique("cloudops")}}).json()["group"]
        assert admin.put(f"/identity/v3/projects/{admin_project['id']}/groups/{group['id']}/roles/{roles['admin']}").status_code == 204
    token = cloud.token(name, "pw", project=None, domain="default")
    with cloud.client(token) as dom:
        # What a domain admin may do.
        ok = dom.put(f"/identity/v3/projects/{project['id']}/users/{regular['id']}/roles/{roles['member']}")
        assert ok.status_code == 204
        # What would make it a cloud admin.
        for path in (
            f"/identity/v3/projects/{admin_project['id']}/users/{x['id']}/roles/{roles['admin']}",
            f"/identity/v3/projects/{admin_project['id']}/users/{x['id']}/roles/{roles['member']}",
            f"/identity/v3/projects/{project['id']}/users/{x['id']}/roles/{roles['admin']}",
            f"/identity/v3/groups/{group['id']}/users/{x['id']}",
        ):
            assert dom.put(path).status_code == 403, path
        assert dom.patch(f"/identity/v3/users/{admin_user['id']}", json={"user": {"password": "mine"}}).status_code == 403
        assert dom.patch(f"/identity/v3/users/{admin_user['id']}", json={"user": {"enabled": False}}).status_code == 403
        assert dom.delete(f"/identity/v3/users/{admin_user['id']}").status_code == 403
        assert dom.patch(f"/identity/v3/users/{regular['id']}", json={"user": {"description": "ok"}}).status_code == 200
    # Nothing changed for the cloud admin.
    cloud.token()


def test_revoking_a_token_leaves_tokens_rescoped_from_it(cloud: Cloud) -> None:
    parent = cloud.token()
    with cloud.client() as c:
        r = c.post("/identity/v3/auth/tokens", json={"auth": {"identity": {"methods": ["token"], "token": {"id": parent}},
                                                             "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        assert r.status_code == 201
        child = r.headers["X-Subject-Token"]
    with cloud.client(cloud.token()) as admin:
        assert admin.delete("/identity/v3/auth/tokens", headers={"X-Subject-Token": parent}).status_code == 204
        assert admin.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": parent}).status_code == 404
        assert admin.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": child}).status_code == 200

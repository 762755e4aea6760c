"""Keystone tokens over HTTPS against a running node: issuing them (password, token, application
credential; every scope), validating, checking and revoking them, expiry, and key rotation."""

from __future__ import annotations

import time
import uuid

import pytest

from cloudbox.clock import parse_iso
from tests.cloud import Cloud, wait_for
from tests.identity_helpers import V, Ident, Team, assert_error, names, password_auth, unique


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
    # admin implies manager implies member implies reader
    assert names(token["roles"]) == {"admin", "manager", "member", "reader"}
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
    assert names(token["roles"]) == {"admin", "manager", "member", "reader"}
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
        r = wait_for(lambda: (x := c.get(V + "/auth/catalog")).status_code != 200 and x, 15, "the token to expire")
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

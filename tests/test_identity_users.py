"""Keystone users and groups over HTTPS: their life cycle, group membership, and who may list them."""

from __future__ import annotations

from tests.cloud import Cloud
from tests.identity_helpers import V, Ident, Team, assert_error, names, password_auth, unique


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
    # As Keystone: a domain that does not exist is not found (404), whatever names it.
    assert_error(ident.admin.post(V + "/users", json={"user": {"name": unique("u"), "domain_id": "no-such"}}), 404, "no-such")

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

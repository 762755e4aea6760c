"""Keystone roles over HTTPS: built-in and implied roles, grants and role assignments, and what a
reader or a domain manager may not grant or change."""

from __future__ import annotations

import uuid
from typing import Any

from tests.cloud import Cloud
from tests.identity_helpers import V, Ident, Team, assert_error, names, password_auth, unique


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


def test_builtin_roles_imply_each_other(ident: Ident) -> None:
    chain = {"admin": ["manager"], "manager": ["member"], "member": ["reader"], "reader": []}
    for prior, implied in chain.items():
        r = ident.admin.get(f"{V}/roles/{ident.roles[prior]}/implies")
        assert [x["name"] for x in r.json()["role_inference"]["implies"]] == implied, prior
    rules = {i["prior_role"]["name"]: names(i["implies"]) for i in ident.admin.get(V + "/role_inferences").json()["role_inferences"]}
    assert {k: rules[k] for k in ("admin", "manager", "member")} == {
        "admin": {"manager"}, "manager": {"member"}, "member": {"reader"}}

    project = ident.create("project", name=unique("proj"))
    password = unique("pw")
    expected = {"admin": {"admin", "manager", "member", "reader"}, "manager": {"manager", "member", "reader"},
                "member": {"member", "reader"}, "reader": {"reader"}}
    for role, held in expected.items():
        user = ident.user(password)
        ident.grant(f"projects/{project['id']}", user["id"], role)
        token = ident.issue(password_auth(user["name"], password, {"project": {"id": project["id"]}})).json()["token"]
        assert names(token["roles"]) == held, role

    for role in chain:
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


def test_a_domain_manager_cannot_become_a_cloud_admin(cloud: Cloud) -> None:
    """manager on the Default domain manages that domain's projects and people, not the cloud."""
    with cloud.client(cloud.token()) as admin:
        roles = {r["name"]: r["id"] for r in admin.get("/identity/v3/roles").json()["roles"]}
        admin_user = admin.get("/identity/v3/users?name=admin").json()["users"][0]
        admin_project = admin.get("/identity/v3/projects?name=admin").json()["projects"][0]
        name = unique("dadmin")
        x = admin.post("/identity/v3/users", json={"user": {"name": name, "password": "pw"}}).json()["user"]
        regular = admin.post("/identity/v3/users", json={"user": {"name": unique("reg"), "password": "pw"}}).json()["user"]
        project = admin.post("/identity/v3/projects", json={"project": {"name": unique("dp")}}).json()["project"]
        assert admin.put(f"/identity/v3/domains/default/users/{x['id']}/roles/{roles['manager']}").status_code == 204
        group = admin.post("/identity/v3/groups", json={"group": {"name": unique("cloudops")}}).json()["group"]
        assert admin.put(f"/identity/v3/projects/{admin_project['id']}/groups/{group['id']}/roles/{roles['admin']}").status_code == 204
        # admin on any project is a cloud admin: the domain's manager cannot change such a user.
        padmin = admin.post("/identity/v3/users", json={"user": {"name": unique("padmin"), "password": "pw"}}).json()["user"]
        assert admin.put(f"/identity/v3/projects/{project['id']}/users/{padmin['id']}/roles/{roles['admin']}").status_code == 204
    token = cloud.token(name, "pw", project=None, domain="default")
    with cloud.client(token) as dom:
        # What a domain manager may do.
        for role in ("member", "manager"):
            ok = dom.put(f"/identity/v3/projects/{project['id']}/users/{regular['id']}/roles/{roles[role]}")
            assert ok.status_code == 204, role
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
        assert dom.patch(f"/identity/v3/users/{padmin['id']}", json={"user": {"password": "mine"}}).status_code == 403
        assert dom.post("/identity/v3/domains", json={"domain": {"name": unique("d")}}).status_code == 403
        assert dom.patch(f"/identity/v3/users/{regular['id']}", json={"user": {"description": "ok"}}).status_code == 200
    # Nothing changed for the cloud admin.
    cloud.token()

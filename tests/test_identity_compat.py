"""Keystone's answers where Tempest found cloudbox answering otherwise: name limits, domains that
do not exist, projects that are domains, users' extra attributes, password changes proven by
the original, regions made by id or by an endpoint's v2-era "region", inherited roles on project
trees, domain-specific roles, inference rules, application credentials' expiry."""

from __future__ import annotations

import datetime as dt

from tests.cloud import Cloud
from tests.identity_helpers import V, Ident, assert_error, password_auth, unique


def test_names_and_domains_as_keystone_answers(ident: Ident) -> None:
    assert_error(ident.admin.post(V + "/domains", json={"domain": {"name": "d" * 65}}), 400, "domain/name")
    assert_error(ident.admin.post(V + "/projects", json={"project": {"name": "p" * 65}}), 400, "project/name")
    assert ident.admin.post(V + "/projects", json={"project": {"name": unique("p").ljust(64, "p")}}).status_code == 201
    long_user = unique("u").ljust(255, "u")  # users' names go to 255, as Keystone's
    assert ident.admin.post(V + "/users", json={"user": {"name": long_user}}).status_code == 201
    name = unique("d")
    assert ident.admin.post(V + "/domains", json={"domain": {"name": name}}).status_code == 201
    assert_error(ident.admin.post(V + "/domains", json={"domain": {"name": name}}), 409)
    for kind in ("user", "group", "project"):
        r = ident.admin.post(f"{V}/{kind}s", json={kind: {"name": unique(kind), "domain_id": "no-such-domain"}})
        assert_error(r, 404, "no-such-domain")
        assert ident.lookup(kind, domain_id="no-such-domain") == []


def test_projects_that_are_domains(ident: Ident) -> None:
    made = ident.admin.post(V + "/projects", json={"project": {"name": unique("isdom"), "is_domain": True}})
    assert made.status_code == 201, made.text
    project = made.json()["project"]
    assert project["is_domain"] is True and project["domain_id"] is None and project["parent_id"] is None
    assert ident.admin.get(f"{V}/domains/{project['id']}").json()["domain"]["name"] == project["name"]
    listed = ident.admin.get(V + "/projects", params={"is_domain": "true"}).json()["projects"]
    assert project["id"] in {p["id"] for p in listed} and all(p["is_domain"] for p in listed)
    assert project["id"] not in {p["id"] for p in ident.admin.get(V + "/projects").json()["projects"]}
    assert ident.admin.get(f"{V}/projects/{project['id']}").json()["project"] == project
    assert_error(ident.admin.post(V + "/projects", json={"project": {
        "name": unique("x"), "is_domain": True, "domain_id": "default"}}), 400)
    assert_error(ident.admin.delete(f"{V}/projects/{project['id']}"), 403, "disable")
    r = ident.admin.patch(f"{V}/projects/{project['id']}", json={"project": {"enabled": False}})
    assert r.status_code == 200 and r.json()["project"]["enabled"] is False
    assert ident.admin.delete(f"{V}/projects/{project['id']}").status_code == 204
    assert_error(ident.admin.get(f"{V}/domains/{project['id']}"), 404)
    assert_error(ident.admin.get(f"{V}/projects/{project['id']}"), 404)


def test_users_keep_attributes_keystone_does_not_know(ident: Ident) -> None:
    project = ident.create("project", name=unique("p"))
    user = ident.user(unique("pw"), project_id=project["id"], email="a@example.com")
    assert user["project_id"] == project["id"]
    assert ident.admin.get(f"{V}/users/{user['id']}").json()["user"]["project_id"] == project["id"]
    r = ident.admin.patch(f"{V}/users/{user['id']}", json={"user": {"project_id": "other", "favourite": [1, 2]}})
    assert r.json()["user"]["project_id"] == "other" and r.json()["user"]["favourite"] == [1, 2]
    # Known attributes stay what they are whatever the extra ones say; the extra ones are bounded.
    r = ident.admin.patch(f"{V}/users/{user['id']}", json={"user": {"password_hash": "x", "description": "d"}})
    assert "password_hash" not in r.json()["user"] and r.json()["user"]["description"] == "d"
    assert_error(ident.admin.patch(f"{V}/users/{user['id']}", json={"user": {"big": "x" * 9000}}), 400)
    assert_error(ident.admin.patch(f"{V}/users/{user['id']}", json={"user": {f"k{i}": i for i in range(40)}}), 400)
    assert "big" not in ident.admin.get(f"{V}/users/{user['id']}").json()["user"]
    tagged = ident.create("project", name=unique("p"), cost_centre="42")
    assert ident.admin.get(f"{V}/projects/{tagged['id']}").json()["project"]["cost_centre"] == "42"


def test_anyone_with_the_original_password_changes_it(ident: Ident, cloud: Cloud) -> None:
    password, new = unique("pw"), unique("pw")
    user = ident.user(password)
    change = f"{V}/users/{user['id']}/password"
    assert_error(ident.admin.post(change, json={"user": {"original_password": "wrong", "password": new}}), 401)
    r = ident.admin.post(change, json={"user": {"original_password": password, "password": new}})
    assert r.status_code == 204, r.text
    assert ident.issue(password_auth(user["name"], new)).status_code == 201
    assert_error(ident.issue(password_auth(user["name"], password)), 401)


def test_regions_by_id_and_by_an_endpoints_region(ident: Ident) -> None:
    region = unique("region")
    r = ident.admin.put(f"{V}/regions/{region}", json={"region": {"description": "by id"}})
    assert r.status_code == 201 and r.json()["region"]["id"] == region
    assert_error(ident.admin.put(f"{V}/regions/{region}", json={"region": {}}), 409)
    assert_error(ident.admin.put(f"{V}/regions/{unique('r')}", json={"region": {"id": "other"}}), 400)

    service = ident.create("service", type=unique("t"))
    legacy = unique("legacy")
    endpoint = ident.create("endpoint", service_id=service["id"], interface="public", url="https://a/", region=legacy)
    assert endpoint["region_id"] == legacy and ident.admin.get(f"{V}/regions/{legacy}").status_code == 200
    moved = unique("moved")
    r = ident.admin.patch(f"{V}/endpoints/{endpoint['id']}", json={"endpoint": {"region": moved}})
    assert r.status_code == 200 and r.json()["endpoint"]["region"] == moved
    assert ident.admin.get(f"{V}/regions/{moved}").status_code == 200
    # region_id must name a region that exists; a bad service makes no region.
    assert_error(ident.admin.post(V + "/endpoints", json={"endpoint": {
        "service_id": service["id"], "interface": "public", "url": "https://a/", "region_id": unique("r")}}), 400)
    orphan = unique("orphan")
    assert_error(ident.admin.post(V + "/endpoints", json={"endpoint": {
        "service_id": "no-such", "interface": "public", "url": "https://a/", "region": orphan}}), 404)
    assert_error(ident.admin.get(f"{V}/regions/{orphan}"), 404)


def test_roles_inherited_down_a_project_tree(ident: Ident) -> None:
    root = ident.create("project", name=unique("root"))
    child = ident.create("project", name=unique("child"), parent_id=root["id"])
    leaf = ident.create("project", name=unique("leaf"), parent_id=child["id"])
    password = unique("pw")
    user = ident.user(password)
    grant = f"{V}/OS-INHERIT/projects/{root['id']}/users/{user['id']}/roles/{ident.roles['member']}/inherited_to_projects"
    assert ident.admin.put(grant).status_code == 204
    assert ident.admin.head(grant).status_code == 204

    def effective(project: dict) -> set[str]:
        r = ident.admin.get(V + "/role_assignments", params={
            "scope.project.id": project["id"], "user.id": user["id"], "effective": ""})
        return {a["role"]["id"] for a in r.json()["role_assignments"]}

    assert effective(root) == set()  # inherited by the projects below, not the project itself
    assert effective(child) == effective(leaf) == {ident.roles["member"], ident.roles["reader"]}
    assert_error(ident.issue(password_auth(user["name"], password, {"project": {"id": root["id"]}})), 401)
    token = ident.issue(password_auth(user["name"], password, {"project": {"id": leaf["id"]}}))
    assert token.status_code == 201 and {r["name"] for r in token.json()["token"]["roles"]} == {"member", "reader"}
    listed = ident.admin.get(V + "/role_assignments", params={"user.id": user["id"]}).json()["role_assignments"]
    assert [a["scope"].get("OS-INHERIT:inherited_to") for a in listed] == ["projects"]
    assert ident.admin.delete(grant).status_code == 204
    assert effective(leaf) == set()
    assert ident.admin.head(grant).status_code == 404


def test_domain_roles_stay_out_of_tokens_and_rules(ident: Ident) -> None:
    domain = ident.create("domain", name=unique("d"))
    domain_role = ident.create("role", name=unique("dr"), domain_id=domain["id"])
    other = ident.create("role", name=unique("dr2"), domain_id=domain["id"])
    project = ident.create("project", name=unique("p"))
    password = unique("pw")
    user = ident.user(password)
    assert ident.admin.put(f"{V}/projects/{project['id']}/users/{user['id']}/roles/{domain_role['id']}").status_code == 204
    r = ident.admin.get(V + "/role_assignments", params={
        "scope.project.id": project["id"], "user.id": user["id"], "effective": ""})
    assert r.json()["role_assignments"] == []
    assert_error(ident.issue(password_auth(user["name"], password, {"project": {"id": project["id"]}})), 401)
    # A domain's role may imply another's or a global one; a global role may not imply a domain's.
    rule = f"{V}/roles/{domain_role['id']}/implies/{ident.roles['reader']}"
    assert ident.admin.put(rule).status_code == 201
    assert ident.admin.put(f"{V}/roles/{domain_role['id']}/implies/{other['id']}").status_code == 201
    assert_error(ident.admin.put(f"{V}/roles/{ident.roles['reader']}/implies/{domain_role['id']}"), 403)
    shown = ident.admin.get(rule).json()["role_inference"]
    assert shown["prior_role"]["id"] == domain_role["id"] and shown["implies"]["name"] == "reader"
    token = ident.issue(password_auth(user["name"], password, {"project": {"id": project["id"]}}))
    assert {r["name"] for r in token.json()["token"]["roles"]} == {"reader"}  # what it implies counts
    assert ident.admin.delete(rule).status_code == 204
    assert_error(ident.admin.get(rule), 404)


def test_application_credential_expiry_as_given(ident: Ident, cloud: Cloud) -> None:
    password = unique("pw")
    project = ident.create("project", name=unique("p"))
    user = ident.user(password)
    ident.grant(f"projects/{project['id']}", user["id"], "member")
    when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).replace(tzinfo=None, microsecond=123456)
    with cloud.client(ident.token(password_auth(user["name"], password, {"project": {"id": project["id"]}}))) as c:
        r = c.post(f"{V}/users/{user['id']}/application_credentials", json={"application_credential": {
            "name": unique("ac"), "expires_at": when.isoformat()}})
        assert r.status_code == 201, r.text
        assert r.json()["application_credential"]["expires_at"] == when.isoformat()
        zoned = c.post(f"{V}/users/{user['id']}/application_credentials", json={"application_credential": {
            "name": unique("ac"), "expires_at": when.isoformat() + "Z"}})
        assert zoned.json()["application_credential"]["expires_at"] == when.isoformat()

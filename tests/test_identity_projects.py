"""Keystone projects and domains over HTTPS: their life cycle, paging, and the projects a user may
scope to."""

from __future__ import annotations

import uuid

from tests.cloud import Cloud
from tests.identity_helpers import V, Ident, Team, assert_error, names, password_auth, unique


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


def test_domain_crud(ident: Ident, cloud: Cloud) -> None:
    name = unique("dom")
    domain = ident.create("domain", name=name, description="a place")
    assert domain["enabled"] is True
    assert_error(ident.admin.post(V + "/domains", json={"domain": {"name": name}}), 409)
    assert name in names(ident.admin.get(V + "/domains").json()["domains"])

    password = unique("pw")
    user = ident.user(password, domain_id=domain["id"])
    assert user["domain_id"] == domain["id"]
    ident.grant(f"domains/{domain['id']}", user["id"], "manager")
    domain_admin = cloud.client(ident.token(password_auth(user["name"], password, {"domain": {"id": domain["id"]}}, domain["id"])))
    # A domain manager manages its own domain only.
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

"""Keystone application credentials and the service catalog (regions, services, endpoints) over HTTPS."""

from __future__ import annotations

import uuid
from typing import Any

from tests.cloud import Cloud
from tests.identity_helpers import V, Ident, assert_error, names, password_auth, unique


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

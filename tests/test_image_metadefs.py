"""Glance's metadata definitions API (/image/v2/metadefs) over real HTTPS against a running node:
namespaces and what they hold, who may see and change them, and bad input refused whole."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jsonschema
import pytest

from cloudbox.api.responses import doc_for

from tests.test_image_api import Tenant, admin, glance_error, unique
from tests.test_image_api import alpha as tenant

__all__ = ["admin", "tenant"]  # fixtures shared with the image API's tests

NS = "/image/v2/metadefs/namespaces"
BUILTIN = {"OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Aggregate", "OS::Nova::Server"}


def documented(method: str, path: str, r: httpx.Response) -> None:
    """The answer is what the OpenAPI document says this route answers."""
    body = doc_for(method, "/image/v2" + path).responses[r.status_code]
    jsonschema.validate(r.json(), body, cls=jsonschema.Draft202012Validator)


def create(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("namespace", unique("OS::Test"))
    r = admin.post(NS, json=fields)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_namespace_made_whole_shows_what_it_holds(admin: httpx.Client):
    types = {t["name"] for t in admin.get("/image/v2/metadefs/resource_types").json()["resource_types"]}
    assert BUILTIN <= types
    name = unique("OS::Compute::Hypervisor")
    hypervisor = {"title": "Hypervisor", "type": "string", "enum": ["qemu", "kvm"]}
    created = create(admin, namespace=name, display_name="Hypervisor", description="Pick one", visibility="public",
                     protected=True,
                     resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "hw_"},
                                                 {"name": "OS::Test::Thing"}],
                     properties={"hypervisor": hypervisor},
                     objects=[{"name": "CPU", "required": ["cores"],
                               "properties": {"cores": {"title": "Cores", "type": "integer", "minimum": 1}}}],
                     tags=[{"name": "fast"}, {"name": "slow"}])
    assert created["namespace"] == name and created["protected"] is True and created["visibility"] == "public"
    assert created["self"] == f"/v2/metadefs/namespaces/{name}"
    assert created["schema"] == "/v2/schemas/metadefs/namespace"
    r = admin.get(f"{NS}/{name}")
    documented("GET", "/metadefs/namespaces/{namespace}", r)
    shown = r.json()
    assert shown["properties"] == {"hypervisor": hypervisor}
    assert [o["name"] for o in shown["objects"]] == ["CPU"] and shown["objects"][0]["required"] == ["cores"]
    assert sorted(t["name"] for t in shown["tags"]) == ["fast", "slow"]
    assert {a["name"] for a in shown["resource_type_associations"]} == {"OS::Glance::Image", "OS::Test::Thing"}
    # Asked for one resource type, names carry its prefix.
    for_images = admin.get(f"{NS}/{name}", params={"resource_type": "OS::Glance::Image"}).json()
    assert list(for_images["properties"]) == ["hw_hypervisor"]
    assert list(for_images["objects"][0]["properties"]) == ["hw_cores"]
    r = admin.get(f"{NS}/{name}/properties/hw_hypervisor", params={"resource_type": "OS::Glance::Image"})
    assert r.status_code == 200 and r.json()["name"] == "hw_hypervisor", r.text
    # A resource type named by an association is made with it.
    types = {t["name"] for t in admin.get("/image/v2/metadefs/resource_types").json()["resource_types"]}
    assert "OS::Test::Thing" in types

    glance_error(admin.post(NS, json={"namespace": name}), 409, "already exists")
    glance_error(admin.delete(f"{NS}/{name}"), 403, "protected")
    glance_error(admin.delete(f"{NS}/{name}/objects"), 403, "protected")
    r = admin.put(f"{NS}/{name}", json={"namespace": name, "visibility": "private", "protected": False})
    assert r.status_code == 200, r.text
    assert r.json()["visibility"] == "private" and r.json()["protected"] is False
    assert "display_name" not in r.json()  # a PUT replaces: what it leaves out is gone
    assert admin.delete(f"{NS}/{name}").status_code == 204
    glance_error(admin.get(f"{NS}/{name}"), 404, "was not found")
    glance_error(admin.get(f"{NS}/{name}/properties"), 404)


def test_only_admins_change_and_others_see_public_and_their_own(admin: httpx.Client, tenant: Tenant):
    public, private = create(admin, visibility="public"), create(admin, visibility="private")
    mine = create(admin, visibility="private", owner=tenant.project_id)
    seen = {n["namespace"] for n in tenant.reader.get(NS, params={"limit": 1000}).json()["namespaces"]}
    assert public["namespace"] in seen and mine["namespace"] in seen and private["namespace"] not in seen
    glance_error(tenant.member.get(f"{NS}/{private['namespace']}"), 404)
    assert tenant.member.get(f"{NS}/{mine['namespace']}").status_code == 200
    glance_error(tenant.member.post(NS, json={"namespace": unique("OS::Mine")}), 403, "add_metadef_namespace")
    glance_error(tenant.member.post(f"{NS}/{public['namespace']}/tags/x"), 403)
    glance_error(tenant.member.delete(f"{NS}/{public['namespace']}"), 403)
    glance_error(tenant.member.delete(f"{NS}/{private['namespace']}"), 404)  # unseen: not found, not forbidden
    only_public = tenant.member.get(NS, params={"visibility": "public", "limit": 1000}).json()["namespaces"]
    assert {n["visibility"] for n in only_public} == {"public"}
    glance_error(admin.get(NS, params={"visibility": "everyone"}), 400)


def test_paging_and_the_resource_type_filter(admin: httpx.Client):
    kind = unique("OS::Paging::Kind")
    made = [create(admin, resource_type_associations=[{"name": kind}])["namespace"] for _ in range(3)]
    r = admin.get(NS, params={"resource_types": kind, "limit": 2, "sort_key": "namespace", "sort_dir": "asc"})
    documented("GET", "/metadefs/namespaces", r)
    page = r.json()
    assert [n["namespace"] for n in page["namespaces"]] == sorted(made)[:2]
    assert "marker=" in page["next"] and page["first"].startswith("/v2/metadefs/namespaces")
    rest = admin.get(NS, params={"resource_types": kind, "limit": 2, "sort_key": "namespace", "sort_dir": "asc",
                                 "marker": sorted(made)[1]}).json()
    assert [n["namespace"] for n in rest["namespaces"]] == sorted(made)[2:] and "next" not in rest
    glance_error(admin.get(NS, params={"sort_key": "owner"}), 400)
    glance_error(admin.get(NS, params={"marker": unique("absent")}), 400)


def test_objects_properties_and_renames(admin: httpx.Client):
    name = create(admin)["namespace"]
    objects, properties = f"{NS}/{name}/objects", f"{NS}/{name}/properties"
    r = admin.post(objects, json={"name": "Watchdog", "description": "Acts on a hang",
                                  "properties": {"action": {"title": "Action", "type": "string"}}})
    assert r.status_code == 201, r.text
    assert r.json()["self"] == f"/v2/metadefs/namespaces/{name}/objects/Watchdog"
    documented("POST", "/metadefs/namespaces/{namespace}/objects", r)
    documented("GET", "/metadefs/namespaces/{namespace}/objects", admin.get(objects))
    glance_error(admin.post(objects, json={"name": "Watchdog"}), 409)
    r = admin.put(f"{objects}/Watchdog", json={"name": "Dog"})
    assert r.status_code == 200 and r.json()["name"] == "Dog" and r.json()["properties"] == {}
    glance_error(admin.get(f"{objects}/Watchdog"), 404)
    assert [o["name"] for o in admin.get(objects).json()["objects"]] == ["Dog"]
    glance_error(admin.post(objects, json={"name": "Bad", "required": ["missing"]}), 400, "missing")

    r = admin.post(properties, json={"name": "OS::Glance::Image", "title": "t", "type": "string", "enum": ["a"]})
    assert r.status_code == 201 and r.json()["title"] == "t", r.text
    documented("POST", "/metadefs/namespaces/{namespace}/properties", r)
    assert admin.get(f"{properties}/OS::Glance::Image").json()["name"] == "OS::Glance::Image"
    r = admin.put(f"{properties}/OS::Glance::Image", json={"name": "renamed", "title": "u", "type": "integer"})
    assert r.status_code == 200 and r.json() == {"name": "renamed", "title": "u", "type": "integer"}, r.text
    assert admin.get(properties).json()["properties"] == {"renamed": {"title": "u", "type": "integer"}}
    glance_error(admin.post(properties, json={"name": "x", "title": "x", "type": "colour"}), 400)
    glance_error(admin.post(properties, json={"name": "x", "type": "string"}), 400, "title")
    glance_error(admin.post(properties, json={"name": "x", "title": "x", "type": "integer", "minimum": 5,
                                              "maximum": 1}), 400, "minimum")
    glance_error(admin.post(properties, json={"name": "x" * 81, "title": "x", "type": "string"}), 400)
    assert admin.delete(f"{properties}/renamed").status_code == 204
    glance_error(admin.delete(f"{properties}/renamed"), 404)
    assert admin.delete(objects).status_code == 204
    assert admin.get(objects).json()["objects"] == []
    assert admin.get(properties).json()["properties"] == {}


def test_tags_replace_append_rename_and_page(admin: httpx.Client):
    name = create(admin)["namespace"]
    tags = f"{NS}/{name}/tags"
    r = admin.post(tags, json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert r.status_code == 201 and r.json() == {"tags": [{"name": "a"}, {"name": "b"}]}, r.text
    r = admin.post(tags, json={"tags": [{"name": "c"}]})  # replaces
    assert [t["name"] for t in admin.get(tags).json()["tags"]] == ["c"]
    r = admin.post(tags, json={"tags": [{"name": "d"}]}, headers={"X-Openstack-Append": "True"})
    assert r.status_code == 201
    assert sorted(t["name"] for t in admin.get(tags).json()["tags"]) == ["c", "d"]
    glance_error(admin.post(tags, json={"tags": [{"name": "e"}, {"name": "e"}]}), 400, "twice")
    r = admin.post(f"{tags}/single")
    assert r.status_code == 201 and r.json()["name"] == "single" and r.json()["created_at"]
    documented("POST", "/metadefs/namespaces/{namespace}/tags/{tag_name}", r)
    documented("GET", "/metadefs/namespaces/{namespace}/tags", admin.get(tags))
    glance_error(admin.post(f"{tags}/single"), 409)
    r = admin.put(f"{tags}/single", json={"name": "renamed"})
    assert r.status_code == 200 and r.json()["name"] == "renamed"
    assert admin.get(f"{tags}/renamed").json()["name"] == "renamed"
    glance_error(admin.get(f"{tags}/single"), 404)
    page = admin.get(tags, params={"limit": 2, "sort_key": "name", "sort_dir": "asc"}).json()["tags"]
    assert [t["name"] for t in page] == ["c", "d"]
    after = admin.get(tags, params={"limit": 2, "sort_key": "name", "sort_dir": "asc", "marker": "d"}).json()
    assert [t["name"] for t in after["tags"]] == ["renamed"]
    assert admin.delete(f"{tags}/renamed").status_code == 204
    assert admin.delete(tags).status_code == 204
    assert admin.get(tags).json()["tags"] == []


def test_resource_type_associations(admin: httpx.Client):
    name = create(admin)["namespace"]
    url = f"{NS}/{name}/resource_types"
    r = admin.post(url, json={"name": "OS::Nova::Flavor", "prefix": "hw:", "properties_target": "image"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "OS::Nova::Flavor" and r.json()["prefix"] == "hw:"
    glance_error(admin.post(url, json={"name": "OS::Nova::Flavor"}), 409)
    documented("GET", "/metadefs/namespaces/{namespace}/resource_types", admin.get(url))
    listed = admin.get(url).json()["resource_type_associations"]
    assert [a["name"] for a in listed] == ["OS::Nova::Flavor"]
    assert admin.delete(f"{url}/OS::Nova::Flavor").status_code == 204
    glance_error(admin.delete(f"{url}/OS::Nova::Flavor"), 404)
    assert admin.get(url).json()["resource_type_associations"] == []


def test_bad_bodies_change_nothing(admin: httpx.Client):
    name = unique("OS::Bad")
    for body in ({"namespace": name, "colour": "red"}, {"namespace": name, "visibility": "shared"},
                 {"namespace": "x" * 81}, {"namespace": name, "protected": "yes"}, {"display_name": "no name"},
                 {"namespace": name, "properties": {"p": {"title": "p"}}},
                 {"namespace": name, "objects": [{"name": "o"}, {"name": "o"}]},
                 {"namespace": name, "created_at": "2020-01-01T00:00:00Z"}, {"namespace": "a/b"},
                 {"namespace": name, "tags": [{"name": "x/y"}]}, {"namespace": name, "properties": {
                     "p/q": {"title": "p", "type": "string"}}}):
        glance_error(admin.post(NS, json=body), 400)
    glance_error(admin.get(f"{NS}/{name}"), 404)


@pytest.mark.parametrize("name, title", [
    ("namespace", "namespace"), ("namespaces", "namespaces"), ("resource_type", "resource_type_association"),
    ("resource_types", "resource_type_associations"), ("object", "object"), ("objects", "objects"),
    ("property", "property"), ("properties", "properties"), ("tag", "tag"), ("tags", "tags"),
])
def test_schemas(tenant: Tenant, name: str, title: str):
    r = tenant.reader.get(f"/image/v2/schemas/metadefs/{name}")
    assert r.status_code == 200 and r.json()["name"] == title, r.text

"""OS::Heat::TestResource (Heat's own test resource) and the Heat answers heat-tempest-plugin
checks: validate refuses an unknown type, DELETE by name is a 302, a type's generated template,
and a resource marked unhealthy (CHECK_FAILED, then replaced by an update). Plain HTTP, fake drivers."""

from __future__ import annotations

from typing import Any

import requests

from tests.cloud import Cloud, wait_for
from tests.test_orchestration_cli import heat_url, user_env  # noqa: F401 (the fixture)


def template(**props: Any) -> dict[str, Any]:
    return {"heat_template_version": "2016-04-08",
            "resources": {"test": {"type": "OS::Heat::TestResource", "properties": props}},
            "outputs": {"out": {"value": {"get_attr": ["test", "output"]}}}}


class Heat:
    def __init__(self, cloud: Cloud, env: dict[str, str]) -> None:
        self.url, token = heat_url(cloud, env)
        self.headers = {"X-Auth-Token": token}
        self.ca = cloud.ca

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        url = path if path.startswith("http") else self.url + path
        return requests.request(method, url, headers=self.headers, verify=self.ca, timeout=30,
                                allow_redirects=False, **kw)

    def create(self, name: str, tmpl: dict[str, Any]) -> str:
        answer = self.call("POST", "/stacks", json={"stack_name": name, "template": tmpl, "disable_rollback": True})
        assert answer.status_code == 201, answer.text
        return answer.json()["stack"]["links"][0]["href"]

    def settled(self, link: str, wanted: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            stack = self.call("GET", link).json()["stack"]
            return stack if not stack["stack_status"].endswith("IN_PROGRESS") else None

        stack = wait_for(done, 60, f"{link} to settle", every=0.2)
        assert stack["stack_status"] == wanted, stack
        return stack

    def resource(self, link: str) -> dict[str, Any]:
        return self.call("GET", link + "/resources/test").json()["resource"]


def test_test_resource_create_update_replace_fail_and_wait(new_cloud: Cloud, user_env: dict[str, str]):
    heat = Heat(new_cloud, user_env)
    shown = heat.call("GET", "/resource_types/OS::Heat::TestResource").json()
    assert shown["support_status"]["status"] == "SUPPORTED"
    assert shown["properties"]["wait_secs"]["default"] == 0 and shown["properties"]["value"]["default"] == \
        "test_string"
    assert set(shown["attributes"]) == {"output", "show"}

    link = heat.create("t1", template(value="first"))
    stack = heat.settled(link, "CREATE_COMPLETE")
    assert stack["outputs"][0]["output_value"] == "first"
    first = heat.resource(link)
    assert first["attributes"]["output"] == "first" and first["physical_resource_id"].startswith("t1-test-")

    # A new value is changed in place (same physical id); update_replace turned on replaces it.
    assert heat.call("PATCH", link, json={"parameters": {}, "template": template(value="second")}).status_code == 202
    heat.settled(link, "UPDATE_COMPLETE")
    second = heat.resource(link)
    assert second["physical_resource_id"] == first["physical_resource_id"]
    assert second["attributes"]["output"] == "second"
    plan = heat.call("PUT", link + "/preview", json={"template": template(value="third", update_replace=True)})
    assert [r["resource_name"] for r in plan.json()["resource_changes"]["replaced"]] == ["test"], plan.text
    assert heat.call("PUT", link, json={"template": template(value="third", update_replace=True)}).status_code == 202
    heat.settled(link, "UPDATE_COMPLETE")
    third = heat.resource(link)
    assert third["physical_resource_id"] != first["physical_resource_id"]
    assert third["attributes"]["output"] == "third"

    # fail: the create ends FAILED with Heat's reason, after its (per action) wait.
    failed = heat.create("t2", template(fail=True, wait_secs=30, action_wait_secs={"create": 1}))
    mid = heat.call("GET", failed).json()["stack"]
    assert mid["stack_status"] == "CREATE_IN_PROGRESS"
    stack = heat.settled(failed, "CREATE_FAILED")
    assert "Test Resource failed test" in stack["stack_status_reason"]
    assert heat.resource(failed)["resource_status"] == "CREATE_FAILED"

    # Property values of the wrong kind are a 400 that makes nothing.
    for bad in ({"wait_secs": "soon"}, {"action_wait_secs": {"resume": 1}}, {"colour": "red"}):
        answer = heat.call("POST", "/stacks", json={"stack_name": "bad", "template": template(**bad)})
        assert answer.status_code == 400, answer.text
    assert heat.call("GET", "/stacks/bad").status_code == 404


def test_validate_delete_by_name_type_template_and_mark_unhealthy(new_cloud: Cloud, user_env: dict[str, str]):
    heat = Heat(new_cloud, user_env)
    # validate refuses a type this cloud does not serve, as create does; a known one passes.
    unknown = {"heat_template_version": "2016-04-08", "resources": {"x": {"type": "OS::Foo::Bar"}}}
    answer = heat.call("POST", "/validate", json={"template": unknown})
    assert answer.status_code == 400
    assert "The Resource Type (OS::Foo::Bar) could not be found." in answer.json()["error"]["message"]
    assert heat.call("POST", "/validate", json={"template": template(value="v")}).status_code == 200

    # A type's generated template: a parameter per property, the resource, an output per attribute.
    hot = heat.call("GET", "/resource_types/OS::Heat::TestResource/template", params={"template_type": "hot"})
    assert hot.status_code == 200, hot.text
    body = hot.json()
    assert body["heat_template_version"] == "2016-10-14"
    assert body["resources"]["TestResource"] == {"type": "OS::Heat::TestResource", "properties": {
        name: {"get_param": name} for name in body["parameters"]}}
    assert body["parameters"]["wait_secs"] == {"type": "number", "description": "", "default": 0}
    assert body["outputs"]["output"]["value"] == {"get_attr": ["TestResource", "output"]}
    cfn = heat.call("GET", "/resource_types/OS::Heat::TestResource/template").json()
    assert cfn["Resources"]["TestResource"]["Properties"]["value"] == {"Ref": "value"}
    assert heat.call("GET", "/resource_types/OS::Heat::TestResource/template",
                     params={"template_type": "xml"}).status_code == 400
    assert heat.call("GET", "/resource_types/OS::Foo::Bar/template").status_code == 404

    link = heat.create("marked", template(value="v"))
    heat.settled(link, "CREATE_COMPLETE")
    before = heat.resource(link)["physical_resource_id"]
    for bad in ({}, {"mark_unhealthy": "maybe"}, {"mark_unhealthy": True, "resource_status_reason": 5}):
        assert heat.call("PATCH", link + "/resources/test", json=bad).status_code == 400
    assert heat.resource(link)["resource_status"] == "CREATE_COMPLETE"
    assert heat.call("PATCH", link + "/resources/nothing", json={"mark_unhealthy": True}).status_code == 404
    marked = heat.call("PATCH", link + "/resources/test",
                       json={"mark_unhealthy": True, "resource_status_reason": "resource deleted"})
    assert marked.status_code == 200, marked.text
    shown = heat.resource(link)
    assert (shown["resource_status"], shown["resource_status_reason"]) == ("CHECK_FAILED", "resource deleted")
    assert heat.call("PATCH", link + "/resources/test", json={"mark_unhealthy": False}).status_code == 200
    assert heat.resource(link)["resource_status"] == "CHECK_COMPLETE"
    heat.call("PATCH", link + "/resources/test", json={"mark_unhealthy": True})
    # An update with nothing changed replaces the unhealthy resource.
    assert heat.call("PATCH", link, json={}).status_code == 202
    heat.settled(link, "UPDATE_COMPLETE")
    after = heat.resource(link)
    assert after["resource_status"] == "CREATE_COMPLETE" and after["physical_resource_id"] != before

    # DELETE by name alone: Heat's 302 to NAME/ID, nothing deleted; the Location deletes.
    found = heat.call("DELETE", "/stacks/marked")
    assert found.status_code == 302 and found.headers["Location"] == link
    assert heat.call("GET", link).json()["stack"]["stack_status"] == "UPDATE_COMPLETE"
    assert heat.call("DELETE", "/stacks/nothing").status_code == 404
    assert heat.call("DELETE", found.headers["Location"]).status_code == 204
    wait_for(lambda: heat.call("GET", link).status_code == 404, 60, "marked to be deleted", every=0.2)

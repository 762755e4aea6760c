"""Heat's software configs and deployments: the /software_configs and /software_deployments API (what
heat-tempest-plugin's gabbi file asks, bad input a 4xx, another project's a 404), and the stack
resources on top (SoftwareConfig, SoftwareDeployment with NO_SIGNAL and with a signed URL the
server reports to, StructuredDeployment, SoftwareDeploymentGroup), down to a server's metadata.
Plain HTTP against the shared node (fake drivers), each test in projects of its own."""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any

import requests

from tests.cloud import Cloud, wait_for
from tests.test_fuzz import _document, _matches
from tests.test_orchestration_testresource import Heat


class Member(Heat):
    """Heat's API as the member of a new project (made through Keystone's API: quicker than the CLI)."""

    def __init__(self, cloud: Cloud, prefix: str) -> None:  # noqa: D107 (no super: Heat's asks the CLI)
        name, password = f"{prefix}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        with cloud.client(cloud.token()) as admin:
            project = admin.post("/identity/v3/projects", json={"project": {"name": name, "domain_id": "default"}})
            user = admin.post("/identity/v3/users", json={"user": {"name": name, "password": password,
                                                                   "domain_id": "default"}})
            role = admin.get("/identity/v3/roles", params={"name": "member"}).json()["roles"][0]
            project_id, user_id = project.json()["project"]["id"], user.json()["user"]["id"]
            granted = admin.put(f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role['id']}")
            assert granted.status_code == 204, granted.text
        self.url = f"{cloud.url}/orchestration/v1/{project_id}"
        self.headers = {"X-Auth-Token": cloud.token(name, password, name)}
        self.ca = cloud.ca


def deployments_of(heat: Heat, server: str) -> list[dict[str, Any]]:
    answer = heat.call("GET", f"/software_deployments/metadata/{server}")
    assert answer.status_code == 200, answer.text
    return answer.json()["metadata"]


def test_configs_and_deployments_api(cloud: Cloud):
    heat = Member(cloud, "soft")
    made = heat.call("POST", "/software_configs", json={
        "name": "hello", "group": "script", "config": "#!/bin/sh\necho hello",
        "inputs": [{"name": "who", "default": "world"}], "outputs": [{"name": "result", "error_output": False}]})
    assert made.status_code == 200, made.text
    config = made.json()["software_config"]
    assert config["group"] == "script" and config["inputs"] == [{"name": "who", "default": "world",
                                                                 "type": "String"}]
    shown = heat.call("GET", f"/software_configs/{config['id']}").json()["software_config"]
    assert shown == config
    listed = heat.call("GET", "/software_configs").json()["software_configs"]
    assert [(c["id"], c["group"]) for c in listed] == [(config["id"], "script")] and "config" not in listed[0]

    # Bad input is a 400 (or a 404 for a config that is not there) and makes nothing.
    for body in ({"inputs": "who"}, {"inputs": [{"type": "String"}]}, {"inputs": [{"name": "a", "type": "Float"}]},
                 {"outputs": [{"name": "x", "error_output": "yes"}]}, {"options": []}, {"name": 7},
                 {"config": 5}, {"id": "not-a-uuid"}, ["a list"]):
        assert heat.call("POST", "/software_configs", json=body).status_code == 400, body
    for body, status in (({"server_id": "s1"}, 400), ({"config_id": config["id"]}, 400),
                         ({"config_id": config["id"], "server_id": "s1", "status": "DONE"}, 400),
                         ({"config_id": config["id"], "server_id": "s1", "input_values": "x"}, 400),
                         ({"config_id": "nope", "server_id": "s1"}, 404)):
        assert heat.call("POST", "/software_deployments", json=body).status_code == status, body
    assert len(heat.call("GET", "/software_configs").json()["software_configs"]) == 1
    assert heat.call("GET", "/software_deployments").json()["software_deployments"] == []

    made = heat.call("POST", "/software_deployments", json={  # a null is as if not sent
        "config_id": config["id"], "server_id": "dummy_server", "action": "ACTION0", "input_values": {"who": "me"},
        "status": None, "status_reason": None})
    assert made.status_code == 200, made.text
    deployment = made.json()["software_deployment"]
    assert (deployment["action"], deployment["status"], deployment["server_id"]) == \
        ("ACTION0", "COMPLETE", "dummy_server")
    metadata = deployments_of(heat, "dummy_server")
    assert [(m["id"], m["group"]) for m in metadata] == [(config["id"], "script")]
    assert metadata[0]["inputs"][0]["value"] == "me" and metadata[0]["config"] == "#!/bin/sh\necho hello"
    assert deployments_of(heat, "another_server") == []

    updated = heat.call("PUT", f"/software_deployments/{deployment['id']}", json={
        "action": "ACTION1", "status": "COMPLETE", "status_reason": "completed",
        "output_values": {"result": "done"}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["software_deployment"]["output_values"] == {"result": "done"}
    assert heat.call("PUT", f"/software_deployments/{deployment['id']}", json={"status": "GONE"}).status_code == 400
    assert heat.call("PUT", f"/software_deployments/{deployment['id']}", json={"config_id": "x"}).status_code == 404
    shown = heat.call("GET", f"/software_deployments/{deployment['id']}").json()["software_deployment"]
    assert (shown["action"], shown["status_reason"]) == ("ACTION1", "completed")
    by_server = heat.call("GET", "/software_deployments", params={"server_id": "dummy_server"}).json()
    assert [d["id"] for d in by_server["software_deployments"]] == [deployment["id"]]

    # Another project sees none of it, and cannot touch it.
    other = Member(cloud, "other")
    assert other.call("GET", "/software_configs").json()["software_configs"] == []
    assert other.call("GET", "/software_deployments").json()["software_deployments"] == []
    assert other.call("GET", "/software_deployments/metadata/dummy_server").json()["metadata"] == []
    for method, path in (("GET", f"/software_configs/{config['id']}"), ("DELETE", f"/software_configs/{config['id']}"),
                         ("GET", f"/software_deployments/{deployment['id']}"),
                         ("DELETE", f"/software_deployments/{deployment['id']}")):
        assert other.call(method, path).status_code == 404, (method, path)
    assert other.call("PUT", f"/software_deployments/{deployment['id']}", json={"status": "FAILED"}).status_code == 404
    assert other.call("POST", "/software_deployments", json={"config_id": config["id"],
                                                             "server_id": "x"}).status_code == 404
    # The tenant in the path must be the token's.
    assert requests.get(f"{heat.url.rsplit('/', 1)[0]}/{other.url.rsplit('/', 1)[1]}/software_configs",
                        headers=heat.headers, verify=heat.ca, timeout=30).status_code == 404

    # What was answered is what the OpenAPI document says (the fuzzer's check, on real bodies).
    document, base = _document(cloud), "/orchestration/v1/{tenant_id}"
    for method, path, real, body in (
            ("GET", "/software_configs", "/software_configs", None),
            ("GET", "/software_configs/{config_id}", f"/software_configs/{config['id']}", None),
            ("GET", "/software_deployments", "/software_deployments", None),
            ("GET", "/software_deployments/{deployment_id}", f"/software_deployments/{deployment['id']}", None),
            ("PUT", "/software_deployments/{deployment_id}", f"/software_deployments/{deployment['id']}",
             {"status": "COMPLETE"}),
            ("GET", "/software_deployments/metadata/{server_id}", "/software_deployments/metadata/dummy_server",
             None)):
        answer = heat.call(method, real, json=body)
        _matches(document, method, base + path, answer.status_code, answer.json())

    # A config in use stays; once its deployment is gone it goes.
    assert heat.call("DELETE", f"/software_configs/{config['id']}").status_code == 409
    assert heat.call("DELETE", f"/software_deployments/{deployment['id']}").status_code == 204
    assert heat.call("GET", f"/software_deployments/{deployment['id']}").status_code == 404
    assert heat.call("DELETE", f"/software_configs/{config['id']}").status_code == 204
    assert heat.call("GET", f"/software_configs/{config['id']}").status_code == 404


TEMPLATE = {
    "heat_template_version": "2018-08-31",
    "parameters": {"who": {"type": "string", "default": "world"}},
    "resources": {
        "config": {"type": "OS::Heat::SoftwareConfig", "properties": {
            "group": "script", "config": "#!/bin/sh\necho hello $who > $heat_outputs_path.result",
            "inputs": [{"name": "who"}], "outputs": [{"name": "result"}]}},
        "quiet": {"type": "OS::Heat::SoftwareDeployment", "properties": {
            "config": {"get_resource": "config"}, "server": "server-a", "signal_transport": "NO_SIGNAL",
            "input_values": {"who": {"get_param": "who"}}}},
        "told": {"type": "OS::Heat::SoftwareDeployment", "properties": {
            "config": {"get_resource": "config"}, "server": "server-b", "input_values": {"who": "b"}}},
        "structured": {"type": "OS::Heat::StructuredConfig", "properties": {
            "group": "ansible", "config": {"greeting": {"get_input": "who"}, "fixed": [1, 2]},
            "inputs": [{"name": "who"}]}},
        "applied": {"type": "OS::Heat::StructuredDeployment", "properties": {
            "config": {"get_resource": "structured"}, "server": "server-a", "signal_transport": "NO_SIGNAL",
            "input_values": {"who": "structured"}}},
        "many": {"type": "OS::Heat::SoftwareDeploymentGroup", "properties": {
            "config": {"get_resource": "config"}, "servers": {"one": "server-c", "two": "server-d"},
            "signal_transport": "NO_SIGNAL"}},
    },
    "outputs": {"result": {"value": {"get_attr": ["told", "result"]}},
                "stdout": {"value": {"get_attr": ["told", "deploy_stdout"]}},
                "codes": {"value": {"get_attr": ["many", "deploy_status_codes"]}}},
}


def test_a_config_with_bad_inputs_is_refused_before_anything_is_made(cloud: Cloud):
    heat = Member(cloud, "soft")
    template = {"heat_template_version": "2018-08-31", "resources": {
        "config": {"type": "OS::Heat::SoftwareConfig", "properties": {"config": "x", "inputs": [{"type": "Json"}]}},
        "deploy": {"type": "OS::Heat::SoftwareDeployment", "properties": {
            "config": {"get_resource": "config"}, "server": "s", "signal_transport": "PIGEON"}}}}
    answer = heat.call("POST", "/stacks", json={"stack_name": "bad", "template": template})
    assert answer.status_code == 400 and "resources.config.properties.inputs[0].name" in answer.text, answer.text
    template["resources"]["config"]["properties"]["inputs"] = [{"name": "ok"}]
    answer = heat.call("POST", "/stacks", json={"stack_name": "bad", "template": template})
    assert answer.status_code == 400 and "resources.deploy.properties.signal_transport" in answer.text, answer.text
    assert heat.call("GET", "/stacks").json()["stacks"] == []
    assert heat.call("GET", "/software_configs").json()["software_configs"] == []


def signal_of(cloud: Cloud, metadata: dict[str, Any]) -> str:
    """The deployment's signed URL, on the node's own base (a guest's is the metadata address)."""
    inputs = {i["name"]: i["value"] for i in metadata["inputs"]}
    assert inputs["deploy_signal_transport"] == "CFN_SIGNAL" and inputs["deploy_signal_verb"] == "POST"
    url = urllib.parse.urlsplit(inputs["deploy_signal_id"])
    assert url.netloc == "169.254.169.254" and url.path.startswith("/orchestration/v1/signal/")
    return f"{cloud.url}{url.path}?{url.query}"


def test_deployments_in_a_stack_signal_and_leave_nothing(cloud: Cloud):
    heat = Member(cloud, "soft")
    link = heat.create("soft", TEMPLATE)
    # The signalled deployment waits for its server; the others are done with NO_SIGNAL.
    told = wait_for(lambda: deployments_of(heat, "server-b") or None, 30, "server-b's deployment")
    assert heat.call("GET", link).json()["stack"]["stack_status"] == "CREATE_IN_PROGRESS"
    inputs = {i["name"]: i["value"] for i in told[0]["inputs"]}
    assert inputs["who"] == "b" and inputs["deploy_action"] == "CREATE" and inputs["deploy_server_id"] == "server-b"
    assert inputs["deploy_resource_name"] == "told" and told[0]["group"] == "script"
    url = signal_of(cloud, told[0])
    forged = url.rsplit("=", 1)[0] + "=" + "0" * 64
    assert requests.post(forged, json={"deploy_status_code": 0}, verify=cloud.ca, timeout=30).status_code == 404
    assert requests.post(url, json=["not", "a", "map"], verify=cloud.ca, timeout=30).status_code == 400
    sent = requests.post(url, json={"deploy_stdout": "hi", "deploy_stderr": "", "deploy_status_code": 0,
                                    "result": "hello b"}, verify=cloud.ca, timeout=30)
    assert sent.status_code == 200, sent.text
    stack = heat.settled(link, "CREATE_COMPLETE")
    outputs = {o["output_key"]: o["output_value"] for o in stack["outputs"]}
    assert outputs == {"result": "hello b", "stdout": "hi", "codes": {"one": None, "two": None}}

    quiet = deployments_of(heat, "server-a")  # ordered by group: ansible, then script
    assert [m["group"] for m in quiet] == ["ansible", "script"]
    assert quiet[0]["config"] == {"greeting": "structured", "fixed": [1, 2]}
    assert "deploy_signal_id" not in {i["name"] for i in quiet[1]["inputs"]}
    assert {i["name"]: i["value"] for i in quiet[1]["inputs"]}["who"] == "world"
    assert len(deployments_of(heat, "server-c")) == len(deployments_of(heat, "server-d")) == 1
    deployment = heat.call("GET", link + "/resources/told").json()["resource"]["physical_resource_id"]
    shown = heat.call("GET", f"/software_deployments/{deployment}").json()["software_deployment"]
    assert (shown["status"], shown["status_reason"]) == ("COMPLETE", "Outputs received")
    events = heat.call("GET", link + "/resources/told/events").json()["events"]
    assert any(e["resource_status"] == "SIGNAL_COMPLETE" for e in events)

    # An update runs the deployment again (action UPDATE); the server reports a failure.
    template = {**TEMPLATE, "resources": {**TEMPLATE["resources"], "told": {
        "type": "OS::Heat::SoftwareDeployment", "properties": {
            "config": {"get_resource": "config"}, "server": "server-b", "input_values": {"who": "b2"}}}}}
    assert heat.call("PATCH", link, json={"template": template}).status_code == 202
    told = wait_for(lambda: (lambda m: m if m and {i["name"]: i["value"] for i in m[0]["inputs"]}["who"] == "b2"
                             else None)(deployments_of(heat, "server-b")), 30, "the update's config")
    assert {i["name"]: i["value"] for i in told[0]["inputs"]}["deploy_action"] == "UPDATE"
    # This time through Heat's resource signal API, with a token (HEAT_SIGNAL's way).
    sent = heat.call("POST", link + "/resources/told/signal", json={"deploy_status_code": 3, "deploy_stderr": "boom"})
    assert sent.status_code == 200, sent.text
    stack = heat.settled(link, "UPDATE_FAILED")
    assert "non-zero status code: 3" in stack["stack_status_reason"], stack

    # Deleting the stack removes every deployment and config it made.
    assert heat.call("DELETE", link).status_code == 204
    wait_for(lambda: heat.call("GET", link).status_code == 404, 30, "the stack to go")
    assert heat.call("GET", "/software_deployments").json()["software_deployments"] == []
    assert heat.call("GET", "/software_configs").json()["software_configs"] == []


def test_a_servers_deployments_are_in_its_metadata(cloud: Cloud):
    heat = Member(cloud, "soft")
    image = heat.call("POST", cloud.url + "/image/v2/images", json={
        "name": "tiny", "disk_format": "raw", "container_format": "bare"}).json()
    upload = requests.put(f"{cloud.url}/image/v2/images/{image['id']}/file", data=b"\0" * 65536,
                          headers={**heat.headers, "Content-Type": "application/octet-stream"}, verify=heat.ca,
                          timeout=30)
    assert upload.status_code == 204, upload.text
    template = {
        "heat_template_version": "2018-08-31",
        "resources": {
            "net": {"type": "OS::Neutron::Net"},
            "subnet": {"type": "OS::Neutron::Subnet", "properties": {"network": {"get_resource": "net"},
                                                                      "cidr": "10.9.0.0/24"}},
            "server": {"type": "OS::Nova::Server", "depends_on": "subnet", "properties": {
                "image": image["id"], "flavor": "m1.tiny", "networks": [{"network": {"get_resource": "net"}}]}},
            "config": {"type": "OS::Heat::SoftwareConfig", "properties": {"config": "echo hi"}},
            "deploy": {"type": "OS::Heat::SoftwareDeployment", "properties": {
                "config": {"get_resource": "config"}, "server": {"get_resource": "server"},
                "signal_transport": "NO_SIGNAL"}},
        },
    }
    link = heat.create("with-server", template)
    heat.settled(link, "CREATE_COMPLETE")
    metadata = heat.call("GET", link + "/resources/server/metadata").json()["metadata"]
    server = heat.call("GET", link + "/resources/server").json()["resource"]["physical_resource_id"]
    assert [d["config"] for d in metadata["deployments"]] == ["echo hi"]
    assert metadata["deployments"] == deployments_of(heat, server)
    assert heat.call("GET", link + "/resources/config/metadata").json()["metadata"] == {}


def test_suspend_and_delete_run_on_the_server_when_asked(cloud: Cloud):
    heat = Member(cloud, "soft")
    template = {"heat_template_version": "2018-08-31", "resources": {
        "config": {"type": "OS::Heat::SoftwareConfig", "properties": {"group": "script", "config": "true"}},
        "deploy": {"type": "OS::Heat::SoftwareDeployment", "properties": {
            "config": {"get_resource": "config"}, "server": "server-x", "actions": ["SUSPEND", "DELETE"]}}}}
    link = heat.create("actions", template)
    heat.settled(link, "CREATE_COMPLETE")  # CREATE is not among its actions: nothing to wait for

    def asked(action: str) -> dict[str, Any] | None:
        found = deployments_of(heat, "server-x")
        inputs = {i["name"]: i["value"] for i in found[0]["inputs"]} if found else {}
        return found[0] if inputs.get("deploy_action") == action else None

    assert asked("CREATE") is not None
    assert heat.call("POST", link + "/actions", json={"suspend": None}).status_code == 200
    suspended = wait_for(lambda: asked("SUSPEND"), 30, "the SUSPEND config")
    assert heat.call("GET", link).json()["stack"]["stack_status"] == "SUSPEND_IN_PROGRESS"
    assert requests.post(signal_of(cloud, suspended), json={"deploy_status_code": 0}, verify=cloud.ca,
                         timeout=30).status_code == 200
    heat.settled(link, "SUSPEND_COMPLETE")

    assert heat.call("DELETE", link).status_code == 204
    deleting = wait_for(lambda: asked("DELETE"), 30, "the DELETE config")
    assert heat.call("GET", link).json()["stack"]["stack_status"] == "DELETE_IN_PROGRESS"
    assert requests.post(signal_of(cloud, deleting), json={"deploy_status_code": 0}, verify=cloud.ca,
                         timeout=30).status_code == 200
    wait_for(lambda: heat.call("GET", link).status_code == 404, 30, "the stack to go")
    assert deployments_of(heat, "server-x") == []
    assert heat.call("GET", "/software_configs").json()["software_configs"] == []

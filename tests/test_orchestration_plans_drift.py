"""Issue 18's "beyond Heat" and the last Heat features, over plain HTTP on the shared cloud (fake
drivers): stored plans at /cloudbox/v1 (applied later, 409 once the stack changed), stack check
finding drift of properties (a server renamed, a security group rule deleted) and an update
changing them back in place, adopt of abandoned data, deletion_policy Retain (and Snapshot
refused), and a ScalingPolicy's cooldown."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cloud import Cloud, wait_for
from tests.test_openstack_cli import member_env, openstack
from tests.test_orchestration_cli import cli
from tests.test_orchestration_testresource import Heat


def tr_template(value: str, **props: Any) -> dict[str, Any]:
    return {"heat_template_version": "2016-04-08",
            "resources": {"test": {"type": "OS::Heat::TestResource", "properties": {"value": value, **props}}},
            "outputs": {"out": {"value": {"get_attr": ["test", "output"]}}}}


@pytest.fixture(scope="module")
def heat(cloud: Cloud) -> Heat:
    """One member of one project for the module's tests (their stacks have names of their own)."""
    env = member_env(cloud, "plans")
    heat = Heat(cloud, env)
    heat.env = env  # type: ignore[attr-defined]
    return heat


def prepare_http(cloud: Cloud, heat: Heat) -> None:
    """An image named cirros-drift and a network named private (with a subnet), over HTTP."""
    image = heat.call("POST", f"{cloud.url}/image/v2/images", json={
        "name": "cirros-drift", "disk_format": "raw", "container_format": "bare"}).json()
    upload = requests.put(f"{cloud.url}/image/v2/images/{image['id']}/file", data=b"\0" * 65536, verify=cloud.ca,
                          headers={**heat.headers, "Content-Type": "application/octet-stream"}, timeout=30)
    assert upload.status_code == 204, upload.text
    net = heat.call("POST", f"{cloud.url}/network/v2.0/networks", json={"network": {"name": "private"}}).json()
    subnet = heat.call("POST", f"{cloud.url}/network/v2.0/subnets", json={"subnet": {
        "network_id": net["network"]["id"], "cidr": "10.0.0.0/24", "ip_version": 4, "name": "private-subnet"}})
    assert subnet.status_code == 201, subnet.text
    wait_for(lambda: heat.call("GET", f"{cloud.url}/image/v2/images/{image['id']}").json()["status"] == "active",
             30, "the image to be active", every=0.2)


def plans_url(cloud: Cloud, link: str) -> str:
    return f"{cloud.url}/cloudbox/v1/orchestration/stacks/{link.rsplit('/', 1)[1]}/plans"


def test_a_stored_plan_is_applied_later_and_refused_once_the_stack_changed(cloud: Cloud, heat: Heat):
    link = heat.create("planned", tr_template("first"))
    heat.settled(link, "CREATE_COMPLETE")
    plans = plans_url(cloud, link)

    made = heat.call("POST", plans, json={"template": tr_template("second")})
    assert made.status_code == 201, made.text
    plan = made.json()["plan"]
    assert made.headers["Location"] == plan["links"][0]["href"]
    assert [c["resource_name"] for c in plan["resource_changes"]["updated"]] == ["test"]
    assert plan["resource_changes"]["updated"][0]["changes"] == [
        {"property": "value", "old": "first", "new": "second", "in_place": True}]
    assert plan["stale"] is False
    replacing = heat.call("POST", plans, json={"template": tr_template("third", update_replace=True)}).json()["plan"]
    assert [c["resource_name"] for c in replacing["resource_changes"]["replaced"]] == ["test"]
    kept = heat.call("POST", plans, json={"existing": True, "parameters": {}}).json()["plan"]
    assert [c["resource_name"] for c in kept["resource_changes"]["unchanged"]] == ["test"]
    assert sorted(p["id"] for p in heat.call("GET", plans).json()["plans"]) == sorted([plan["id"], replacing["id"],
                                                                                     kept["id"]])
    assert heat.resource(link)["attributes"]["output"] == "first"  # planning changes nothing

    # Bad input changes nothing: an unknown key, a template that does not parse, no such plan.
    assert heat.call("POST", plans, json={"template": tr_template("x"), "bogus": 1}).status_code == 400
    assert heat.call("POST", plans, json={"template": "resources: [unclosed"}).status_code == 400
    for odd in ({"existing": True, "clear_parameters": 5}, {"existing": "maybe"}, {"template": 5},
                {"template": tr_template("x"), "parameters": [1]}, {"template": tr_template("x"), "tags": 5}):
        assert heat.call("POST", plans, json=odd).status_code == 400, odd
    assert heat.call("POST", f"{plans}/{uuid.uuid4()}/apply").status_code == 404
    assert heat.call("POST", plans.replace(link.rsplit("/", 1)[1], str(uuid.uuid4())), json={}).status_code == 404

    applied = heat.call("POST", f"{plans}/{plan['id']}/apply")
    assert applied.status_code == 202, applied.text
    stack = heat.settled(link, "UPDATE_COMPLETE")
    assert stack["outputs"][0]["output_value"] == "second"
    assert heat.call("GET", f"{plans}/{plan['id']}").status_code == 404  # used up

    # The stack changed since the other plans were made: they are stale, and applying one is a 409.
    stale = heat.call("GET", f"{plans}/{replacing['id']}").json()["plan"]
    assert stale["stale"] is True
    refused = heat.call("POST", f"{plans}/{replacing['id']}/apply")
    assert refused.status_code == 409 and "changed since plan" in refused.text, refused.text
    assert heat.call("GET", link).json()["stack"]["stack_status"] == "UPDATE_COMPLETE"
    assert heat.call("DELETE", f"{plans}/{replacing['id']}").status_code == 204
    assert [p["id"] for p in heat.call("GET", plans).json()["plans"]] == [kept["id"]]
    assert heat.call("DELETE", link).status_code == 204
    wait_for(lambda: heat.call("GET", link).status_code == 404, 30, "the stack to go", every=0.2)


DRIFT = {
    "heat_template_version": "2021-04-16",
    "resources": {
        "server": {"type": "OS::Nova::Server", "properties": {
            "flavor": "m1.tiny", "image": "cirros-drift", "networks": [{"network": "private"}]}},
        "group": {"type": "OS::Neutron::SecurityGroup", "properties": {"rules": [
            {"protocol": "icmp"}, {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}]}},
    },
}


def test_check_finds_drift_and_an_update_changes_it_back_in_place(cloud: Cloud, heat: Heat):
    prepare_http(cloud, heat)
    link = heat.create("drifty", DRIFT)
    heat.settled(link, "CREATE_COMPLETE")
    rows = {r["resource_name"]: r for r in heat.call("GET", link + "/resources").json()["resources"]}
    server_id, group_id = rows["server"]["physical_resource_id"], rows["group"]["physical_resource_id"]
    nova, neutron = f"{cloud.url}/compute/v2.1/servers/{server_id}", f"{cloud.url}/network/v2.0"
    name = heat.call("GET", nova).json()["server"]["name"]

    def check(wanted: str) -> dict[str, Any]:
        assert heat.call("POST", link + "/actions", json={"check": None}).status_code == 200
        return heat.settled(link, wanted)

    check("CHECK_COMPLETE")
    # Outside the stack: the server is renamed and the group's ssh rule deleted.
    assert heat.call("PUT", nova, json={"server": {"name": "renamed"}}).status_code == 200
    rules = heat.call("GET", f"{neutron}/security-groups/{group_id}").json()["security_group"]["security_group_rules"]
    ssh = next(r for r in rules if r["protocol"] == "tcp")
    assert heat.call("DELETE", f"{neutron}/security-group-rules/{ssh['id']}").status_code == 204
    for _ in range(2):  # a second check still compares with the stack's values
        stack = check("CHECK_FAILED")
        assert "drift" in stack["stack_status_reason"]
        found = {r["resource_name"]: r for r in heat.call("GET", link + "/resources").json()["resources"]}
        assert found["server"]["resource_status"] == "CHECK_FAILED"
        assert f"name is 'renamed' in the cloud, '{name}' in the stack" in found["server"]["resource_status_reason"]
        assert "rules differ" in found["group"]["resource_status_reason"]

    plan = heat.call("PATCH", link + "/preview", json={"parameters": {}}).json()["resource_changes"]
    assert sorted(c["resource_name"] for c in plan["updated"]) == ["group", "server"], plan
    assert heat.call("PATCH", link, json={"parameters": {}}).status_code == 202
    heat.settled(link, "UPDATE_COMPLETE")
    assert heat.call("GET", nova).json()["server"]["name"] == name  # the same server, renamed back
    rules = heat.call("GET", f"{neutron}/security-groups/{group_id}").json()["security_group"]["security_group_rules"]
    assert any(r["protocol"] == "tcp" and r["port_range_min"] == 22 for r in rules)
    check("CHECK_COMPLETE")
    assert heat.call("DELETE", link).status_code == 204
    wait_for(lambda: heat.call("GET", link).status_code == 404, 30, "the stack to go", every=0.2)


KEPT = {
    "heat_template_version": "2021-04-16",
    "resources": {
        "group": {"type": "OS::Neutron::SecurityGroup", "deletion_policy": "Retain",
                  "properties": {"description": "kept"}},
        "word": {"type": "OS::Heat::RandomString", "properties": {"length": 12}},
    },
    "outputs": {"word": {"value": {"get_attr": ["word", "value"]}}},
}


def test_adopt_retain_snapshot_and_cooldown(cloud: Cloud, heat: Heat, tmp_path: Path):
    neutron = f"{cloud.url}/network/v2.0"
    snap = {**KEPT, "resources": {**KEPT["resources"], "group": {**KEPT["resources"]["group"],
                                                                  "deletion_policy": "Snapshot"}}}
    refused = heat.call("POST", "/stacks", json={"stack_name": "snap", "template": snap})
    assert refused.status_code == 400 and "Snapshot is not served" in refused.text, refused.text

    # Abandon, then adopt the abandoned data as python-heatclient sends it (the file's text).
    link = heat.create("first", KEPT)
    word = heat.settled(link, "CREATE_COMPLETE")["outputs"][0]["output_value"]
    group_id = heat.call("GET", link + "/resources/group").json()["resource"]["physical_resource_id"]
    abandoned = tmp_path / "first.json"
    openstack(cloud, "stack", "abandon", "--output-file", str(abandoned), "first", env=heat.env)
    data = json.loads(abandoned.read_text())
    assert heat.call("GET", f"{neutron}/security-groups/{group_id}").status_code == 200
    missing = {**data, "resources": {"word": data["resources"]["word"]}}
    bad = heat.call("POST", "/stacks", json={"stack_name": "adopted", "adopt_stack_data": json.dumps(missing)})
    assert bad.status_code == 400 and "no resource_id" in bad.text, bad.text
    assert heat.call("POST", "/stacks", json={"stack_name": "adopted", "adopt_stack_data": "{"}).status_code == 400
    shown = cli(cloud, heat.env, "stack", "adopt", "--adopt-file", str(abandoned), "--wait", "adopted")
    assert shown["stack_status"] == "ADOPT_COMPLETE", shown
    adopted = heat.call("GET", "/stacks/adopted").headers["Location"]
    assert heat.settled(adopted, "ADOPT_COMPLETE")["outputs"][0]["output_value"] == word
    rows = {r["resource_name"]: r for r in heat.call("GET", adopted + "/resources").json()["resources"]}
    assert rows["group"]["physical_resource_id"] == group_id and rows["group"]["resource_status"] == "ADOPT_COMPLETE"

    # Retain: deleting the stack keeps the group.
    assert heat.call("DELETE", adopted).status_code == 204
    wait_for(lambda: heat.call("GET", adopted).status_code == 404, 30, "the stack to go", every=0.2)
    assert heat.call("GET", f"{neutron}/security-groups/{group_id}").json()["security_group"]["description"] == "kept"
    assert heat.call("DELETE", f"{neutron}/security-groups/{group_id}").status_code == 204

    # Cooldown: a second signal within it scales nothing.
    scaling = {"heat_template_version": "2016-10-14", "resources": {
        "asg": {"type": "OS::Heat::AutoScalingGroup", "properties": {
            "min_size": 1, "max_size": 5, "resource": {"type": "OS::Heat::RandomString"}}},
        "up": {"type": "OS::Heat::ScalingPolicy", "properties": {
            "auto_scaling_group_id": {"get_resource": "asg"}, "adjustment_type": "change_in_capacity",
            "scaling_adjustment": 1, "cooldown": 600}}},
        "outputs": {"url": {"value": {"get_attr": ["up", "alarm_url"]}},
                    "size": {"value": {"get_attr": ["asg", "current_size"]}}}}
    link = heat.create("cool", scaling)
    outs = {o["output_key"]: o["output_value"] for o in heat.settled(link, "CREATE_COMPLETE")["outputs"]}
    assert outs["size"] == 1
    size = lambda: {o["output_key"]: o["output_value"] for o in  # noqa: E731
                    heat.call("GET", link).json()["stack"]["outputs"]}["size"]
    assert heat.call("POST", outs["url"]).status_code == 200
    wait_for(lambda: size() == 2, 30, "the group to grow to 2", every=0.2)
    assert heat.call("POST", outs["url"]).status_code == 200
    events = heat.call("GET", link + "/resources/up/events").json()["events"]
    assert "cooldown: not scaled" in events[-1]["resource_status_reason"], events[-1]
    assert size() == 2
    assert heat.call("DELETE", link).status_code == 204
    wait_for(lambda: heat.call("GET", link).status_code == 404, 30, "the stack to go", every=0.2)

"""Issue 18, acceptance 4 (second half) with real guests: an AutoScalingGroup of servers (the test
guest image, the smallest flavor) grows from 1 to 3 when its ScalingPolicy's alarm_url is
signalled, the 3 servers go ACTIVE on the real libvirt (TCG) driver, and a stack delete leaves
nothing: no server, no port, no QEMU process of theirs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cloud import Cloud, wait_for
from tests.compute_helpers import LATEST, member_with_network
from tests.test_compute_records_guest import node  # noqa: F401 - a real node with the test guest as "cirros"


def template(network: str) -> dict[str, Any]:
    return {
        "heat_template_version": "2016-10-14",
        "resources": {
            "asg": {"type": "OS::Heat::AutoScalingGroup", "properties": {
                "min_size": 1, "max_size": 3, "resource": {"type": "OS::Nova::Server", "properties": {
                    "image": "cirros", "flavor": "m1.nano", "networks": [{"network": network}]}}}},
            "grow": {"type": "OS::Heat::ScalingPolicy", "properties": {
                "auto_scaling_group_id": {"get_resource": "asg"}, "adjustment_type": "change_in_capacity",
                "scaling_adjustment": 2, "cooldown": 600}},
        },
        "outputs": {"url": {"value": {"get_attr": ["grow", "alarm_url"]}},
                    "size": {"value": {"get_attr": ["asg", "current_size"]}},
                    "refs": {"value": {"get_attr": ["asg", "refs"]}}},
    }


def qemu_of(server_ids: set[str]) -> list[str]:
    """The pids of QEMU processes running one of these servers."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmdline and any(s in cmdline for s in server_ids):
            found.append(pid)
    return found


def active_servers(member: httpx.Client) -> list[dict[str, Any]]:
    return member.get("/compute/v2.1/servers/detail", headers=LATEST).json()["servers"]


@pytest.mark.slow
def test_autoscaling_group_of_real_guests_grows_from_one_to_three_and_goes(node: Cloud):  # noqa: F811
    project, member, net = member_with_network(node, "scaled", "192.168.11.0/24")
    heat = f"/orchestration/v1/{project}"
    created = member.post(f"{heat}/stacks", json={"stack_name": "scaled", "template": template(net["id"])})
    assert created.status_code == 201, created.text
    link = f"{heat}/stacks/scaled/{created.json()['stack']['id']}"

    def settled() -> dict[str, Any] | None:
        stack = member.get(link).json()["stack"]
        return None if stack["stack_status"].endswith("IN_PROGRESS") else stack

    stack = wait_for(settled, 90, "the group of one server", every=0.5)
    assert stack["stack_status"] == "CREATE_COMPLETE", stack["stack_status_reason"]
    outputs = {o["output_key"]: o["output_value"] for o in stack["outputs"]}
    assert outputs["size"] == 1
    first = active_servers(member)
    assert [s["status"] for s in first] == ["ACTIVE"] and [s["id"] for s in first] == outputs["refs"]

    # What an alarm sends: a POST of the signed URL, no token.
    with httpx.Client(verify=node.ssl_context(), timeout=30) as alarm:
        answer = alarm.post(outputs["url"])
    assert answer.status_code == 200, answer.text

    def three_active() -> list[dict[str, Any]] | None:
        servers = active_servers(member)
        return servers if len(servers) == 3 and all(s["status"] == "ACTIVE" for s in servers) else None

    servers = wait_for(three_active, 120, "3 ACTIVE servers", every=0.5)
    assert first[0]["id"] in {s["id"] for s in servers}  # the first member is kept, two added
    assert all(s["flavor"]["original_name"] == "m1.nano" for s in servers)
    assert len(qemu_of({s["id"] for s in servers})) == 3  # three real guests run

    def grown() -> dict[str, Any] | None:
        shown = member.get(link).json()["stack"]
        found = {o["output_key"]: o["output_value"] for o in shown["outputs"]}
        return found if found["size"] == 3 else None

    assert sorted(wait_for(grown, 30, "current_size 3", every=0.5)["refs"]) == sorted(s["id"] for s in servers)

    assert member.delete(link).status_code == 204
    wait_for(lambda: member.get(link).status_code == 404, 90, "the stack to go", every=0.5)
    assert active_servers(member) == []
    ports = member.get("/network/v2.0/ports", params={"network_id": net["id"]}).json()["ports"]
    assert [p for p in ports if p["device_owner"].startswith("compute:")] == []
    wait_for(lambda: not qemu_of({s["id"] for s in servers}), 30, "the guests' QEMU to end", every=0.5)
    member.close()

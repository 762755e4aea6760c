"""ResourceGroup and AutoScalingGroup: nested stacks of copies, resized by an update or by a
ScalingPolicy's signed URL (an AutoScalingGroup grows from 1 to 3 servers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import yaml

from tests.cloud import Cloud, wait_for
from tests.test_openstack_cli import openstack
from tests.test_orchestration_cli import cli, prepare, user_env  # noqa: F401 (the fixture)

GROUP = {
    "heat_template_version": "2016-10-14",
    "parameters": {"count": {"type": "number", "default": 2}},
    "resources": {"names": {"type": "OS::Heat::ResourceGroup", "properties": {
        "count": {"get_param": "count"},
        "resource_def": {"type": "OS::Heat::RandomString", "properties": {"length": 8, "salt": "s%index%"}}}}},
    "outputs": {"refs": {"value": {"get_attr": ["names", "refs"]}},
                "values": {"value": {"get_attr": ["names", "attributes", "value"]}}},
}

SCALING = {
    "heat_template_version": "2016-10-14",
    "resources": {
        "asg": {"type": "OS::Heat::AutoScalingGroup", "properties": {
            "min_size": 1, "max_size": 3, "resource": {"type": "OS::Nova::Server", "properties": {
                "flavor": "m1.tiny", "image": "cirros", "networks": [{"network": "private"}]}}}},
        "up": {"type": "OS::Heat::ScalingPolicy", "properties": {
            "auto_scaling_group_id": {"get_resource": "asg"}, "adjustment_type": "change_in_capacity",
            "scaling_adjustment": 1}},
    },
    "outputs": {"url": {"value": {"get_attr": ["up", "alarm_url"]}},
                "size": {"value": {"get_attr": ["asg", "current_size"]}}},
}


def outputs(cloud: Cloud, env: dict[str, str], name: str) -> dict[str, Any]:
    return {o["output_key"]: o["output_value"] for o in cli(cloud, env, "stack", "show", name)["outputs"]}


def test_resource_group_grows_and_shrinks_with_updates(new_cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    cloud, env = new_cloud, user_env
    path = tmp_path / "group.yaml"
    path.write_text(yaml.safe_dump(GROUP))
    assert cli(cloud, env, "stack", "create", "-t", str(path), "--wait", "grp")["stack_status"] == "CREATE_COMPLETE"
    first = outputs(cloud, env, "grp")
    assert len(first["refs"]) == 2 and [len(v) for v in first["values"]] == [8, 8]
    assert [s["Stack Name"] for s in cli(cloud, env, "stack", "list")] == ["grp"]  # the nested stack is hidden
    cli(cloud, env, "stack", "update", "--existing", "--parameter", "count=3", "--wait", "grp")
    grown = outputs(cloud, env, "grp")
    assert len(grown["refs"]) == 3 and grown["refs"][:2] == first["refs"]  # members kept, one added at the end
    cli(cloud, env, "stack", "update", "--existing", "--parameter", "count=1", "--wait", "grp")
    assert outputs(cloud, env, "grp")["refs"] == first["refs"][:1]
    openstack(cloud, "stack", "delete", "--yes", "--wait", "grp", env=env)
    assert cli(cloud, env, "stack", "list") == []


def test_autoscaling_group_grows_from_one_to_three_servers_by_its_policy_url(new_cloud: Cloud,
                                                                              user_env: dict[str, str],
                                                                              tmp_path: Path):
    cloud, env = new_cloud, user_env
    prepare(cloud, env, tmp_path, "cirros")
    path = tmp_path / "scaling.yaml"
    path.write_text(yaml.safe_dump(SCALING))
    assert cli(cloud, env, "stack", "create", "-t", str(path), "--wait", "web")["stack_status"] == "CREATE_COMPLETE"
    assert len(cli(cloud, env, "server", "list")) == 1
    url = outputs(cloud, env, "web")["url"]
    assert "/orchestration/v1/signal/" in url
    for size in (2, 3):
        answer = requests.post(url, verify=cloud.ca, timeout=30)  # what an alarm (or a guest) sends
        assert answer.status_code == 200, answer.text

        def grown(size: int = size) -> bool:
            servers = cli(cloud, env, "server", "list")
            return len(servers) == size and all(s["Status"] == "ACTIVE" for s in servers)

        wait_for(grown, 90, f"{size} active servers", every=0.5)
        wait_for(lambda size=size: outputs(cloud, env, "web")["size"] == size, 30, f"current_size {size}", every=0.5)
    # At max_size, another signal changes nothing.
    assert requests.post(url, verify=cloud.ca, timeout=30).status_code == 200
    assert len(cli(cloud, env, "server", "list")) == 3
    openstack(cloud, "stack", "delete", "--yes", "--wait", "web", env=env)
    assert cli(cloud, env, "server", "list") == [] and cli(cloud, env, "stack", "list") == []

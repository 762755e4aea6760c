"""Suspend, resume and check a stack with the real CLI; check finds what was removed outside the
stack, and an update (--existing) makes it again."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cloud import Cloud
from tests.test_openstack_cli import openstack
from tests.test_orchestration_cli import cli, prepare, refused, user_env  # noqa: F401 (the fixture)

TEMPLATE = {
    "heat_template_version": "2021-04-16",
    "resources": {
        "port": {"type": "OS::Neutron::Port", "properties": {"network": "private"}},
        "server": {"type": "OS::Nova::Server", "properties": {
            "flavor": "m1.tiny", "image": "cirros", "networks": [{"port": {"get_resource": "port"}}]}},
        "group": {"type": "OS::Neutron::SecurityGroup", "properties": {"name": "watched", "rules": [
            {"protocol": "icmp"}]}},
    },
}


def test_suspend_resume_check_and_repair(new_cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    cloud, env = new_cloud, user_env
    prepare(cloud, env, tmp_path, "cirros")
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(TEMPLATE))
    assert cli(cloud, env, "stack", "create", "-t", str(path), "--wait", "three")["stack_status"] == "CREATE_COMPLETE"
    server_id = {r["resource_name"]: r for r in cli(cloud, env, "stack", "resource", "list", "three")}["server"][
        "physical_resource_id"]

    suspended = cli(cloud, env, "stack", "suspend", "--wait", "three")
    assert suspended[0]["Stack Status"] == "SUSPEND_COMPLETE"
    assert cli(cloud, env, "server", "show", server_id)["status"] == "SUSPENDED"
    resumed = cli(cloud, env, "stack", "resume", "--wait", "three")
    assert resumed[0]["Stack Status"] == "RESUME_COMPLETE"
    assert cli(cloud, env, "server", "show", server_id)["status"] == "ACTIVE"
    assert "nothing to resume" in refused(cloud, env, "stack", "resume", "three")

    assert cli(cloud, env, "stack", "check", "--wait", "three")[0]["Stack Status"] == "CHECK_COMPLETE"
    # Drift: the group is deleted outside the stack; check says so, an update makes it again.
    openstack(cloud, "security", "group", "delete", "watched", env=env)
    assert "CHECK_FAILED" in refused(cloud, env, "stack", "check", "--wait", "three")
    shown = cli(cloud, env, "stack", "show", "three")
    assert shown["stack_status"] == "CHECK_FAILED", shown
    assert "group" in shown["stack_status_reason"] and "no longer exists" in shown["stack_status_reason"]
    resources = {r["resource_name"]: r["resource_status"] for r in cli(cloud, env, "stack", "resource", "list",
                                                                        "three")}
    assert resources == {"port": "CHECK_COMPLETE", "server": "CHECK_COMPLETE", "group": "CHECK_FAILED"}
    updated = cli(cloud, env, "stack", "update", "--existing", "--wait", "three")
    assert updated["stack_status"] == "UPDATE_COMPLETE", updated
    assert cli(cloud, env, "security", "group", "show", "watched")["name"] == "watched"
    assert cli(cloud, env, "server", "show", server_id)["status"] == "ACTIVE"  # the rest was left alone
    openstack(cloud, "stack", "delete", "--yes", "--wait", "three", env=env)
    assert cli(cloud, env, "server", "list") == []

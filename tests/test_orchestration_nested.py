"""A template as a resource type (the environment's resource_registry names a file the CLI sends):
a child stack of its own, the resource's properties as its parameters, its outputs as attributes;
an update changes the child in place; delete removes it."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cloud import Cloud, wait_for
from tests.test_openstack_cli import openstack
from tests.test_orchestration_cli import cli, user_env  # noqa: F401 (the fixture)

BOX = {"heat_template_version": "2016-10-14",
       "parameters": {"length": {"type": "number", "constraints": [{"range": {"min": 4, "max": 64}}]}},
       "resources": {"s": {"type": "OS::Heat::RandomString", "properties": {"length": {"get_param": "length"}}}},
       "outputs": {"value": {"value": {"get_attr": ["s", "value"]}}}}
PARENT = {"heat_template_version": "2016-10-14",
          "parameters": {"len": {"type": "number", "default": 5}},
          "resources": {"a": {"type": "My::Box", "properties": {"length": {"get_param": "len"}}}},
          "outputs": {"v": {"value": {"get_attr": ["a", "value"]}}}}


def test_nested_template_through_the_resource_registry(new_cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    cloud, env = new_cloud, user_env
    (tmp_path / "box.yaml").write_text(yaml.safe_dump(BOX))
    (tmp_path / "parent.yaml").write_text(yaml.safe_dump(PARENT))
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"resource_registry": {"My::Box": "box.yaml"}}))
    create = ("stack", "create", "-t", str(tmp_path / "parent.yaml"), "-e", str(tmp_path / "env.yaml"), "--wait")
    assert cli(cloud, env, *create, "nest")["stack_status"] == "CREATE_COMPLETE"

    def value() -> str:
        return cli(cloud, env, "stack", "output", "show", "nest", "v")["output_value"]

    first = value()
    assert len(first) == 5
    child = {r["resource_name"]: r for r in cli(cloud, env, "stack", "resource", "list", "nest")}["a"]
    assert [s["Stack Name"] for s in cli(cloud, env, "stack", "list")] == ["nest"]  # the child is hidden
    # The child's own constraints hold: a length out of its range fails the create.
    cli(cloud, env, *create[:-1], "--parameter", "len=2", "nest2")
    failed = wait_for(lambda: (lambda s: s if s["stack_status"] != "CREATE_IN_PROGRESS" else None)(
        cli(cloud, env, "stack", "show", "nest2")), 30, "nest2 to end", every=0.5)
    assert failed["stack_status"] == "CREATE_FAILED" and "length" in failed["stack_status_reason"], failed
    updated = cli(cloud, env, "stack", "update", "--existing", "--parameter", "len=7", "--wait", "nest")
    assert updated["stack_status"] == "UPDATE_COMPLETE", updated
    assert len(value()) == 7
    after = {r["resource_name"]: r for r in cli(cloud, env, "stack", "resource", "list", "nest")}["a"]
    assert after["physical_resource_id"] == child["physical_resource_id"]  # the same child, updated in place
    openstack(cloud, "stack", "delete", "--yes", "--wait", "nest", env=env)
    openstack(cloud, "stack", "delete", "--yes", "--wait", "nest2", env=env)
    assert cli(cloud, env, "stack", "list") == []

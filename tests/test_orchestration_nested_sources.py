"""A nested template's text changing, with the properties of its template resource unchanged,
updates the child stack in place (and the plan, ``--dry-run``, shows it with what changed): a new
text of the template, of a file it reaches (get_file, a template it nests), or a resource_registry
naming another template; the same for a group whose members are such a template. A change of a
file it does not reach changes nothing.

The library's fingerprint (hot.nested_sources) is tested alone; the service in-process (one state
engine, Heat's TestResource, which calls no other service)."""

from __future__ import annotations

import types
import uuid
from pathlib import Path
from typing import Any

import trio
import yaml

from cloudbox.orchestration import hot, store
from cloudbox.orchestration.service import OrchestrationService
from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine
from tests.test_orchestration_cli import cli, user_env  # noqa: F401 (the fixture)

INNER = """
heat_template_version: 2021-04-16
parameters:
  name: {type: string}
resources:
  r:
    type: OS::Heat::TestResource
    properties:
      value: {list_join: ["-", ["%s", {get_param: name}]]}
  deeper: {type: deeper.yaml}
outputs:
  value: {value: {get_attr: [r, output]}}
"""
DEEPER = """
heat_template_version: 2021-04-16
resources:
  s:
    type: OS::Heat::TestResource
    properties: {value: {get_file: script.sh}}
"""
PARENT = {"heat_template_version": "2021-04-16", "resources": {
    "thing": {"type": "My::Thing", "properties": {"name": "x"}},
    "other": {"type": "OS::Heat::TestResource", "properties": {"value": "o"}}},
    "outputs": {"value": {"value": {"get_attr": ["thing", "value"]}}}}
REGISTRY = {"resource_registry": {"My::Thing": "inner.yaml"}}


def test_the_fingerprint_covers_the_files_a_template_reaches():
    files = {"inner.yaml": INNER % "a", "deeper.yaml": DEEPER, "script.sh": "echo 1", "notes.txt": "n"}
    found = hot.nested_sources("inner.yaml", files)
    assert found["template"] == "inner.yaml"
    assert sorted(found["files"]) == ["deeper.yaml", "inner.yaml", "script.sh"]  # not notes.txt
    assert hot.nested_sources("inner.yaml", {**files, "notes.txt": "other"}) == found
    again = hot.nested_sources("inner.yaml", {**files, "script.sh": "echo 2"})
    assert again != found and hot.describe_sources(found, again) == ["script.sh changed"]
    moved = hot.nested_sources("deeper.yaml", files)
    assert hot.describe_sources(found, moved) == [
        "template deeper.yaml replaces inner.yaml", "inner.yaml is no longer used"]
    assert hot.describe_sources(None, found) == ["template inner.yaml (its sources were not recorded before)"]
    aliased = {"m.yaml": "resources: {x: {type: My::Leaf}}", "leaf.yaml": "{}"}  # a type of the registry
    assert list(hot.nested_sources("m.yaml", aliased)["files"]) == ["m.yaml"]
    mapped = hot.nested_sources("m.yaml", aliased, lambda t: "leaf.yaml" if t == "My::Leaf" else t)
    assert list(mapped["files"]) == ["leaf.yaml", "m.yaml"]
    broken = hot.nested_sources("bad.yaml", {"bad.yaml": "{: not yaml"})  # its text still counts
    assert list(broken["files"]) == ["bad.yaml"]


class Identity:
    async def mint(self, payload: Any) -> Any:
        return types.SimpleNamespace(token="unused")


CALLER = types.SimpleNamespace(project_id="p1", user_id="u1", token="unused", is_cloud_reader=False,
                               can_write_project=lambda p: p == "p1", can_read_project=lambda p: p == "p1")


async def ended(svc: OrchestrationService, stack_id: str) -> dict[str, Any]:
    with trio.fail_after(20):
        while (stack := await svc.read(store.must_stack, stack_id))["status"] == "IN_PROGRESS":
            await trio.sleep(0.05)
    return stack


def body(files: dict[str, str], registry: dict[str, Any] = REGISTRY) -> dict[str, Any]:
    return {"template": PARENT, "environment": yaml.safe_dump(registry), "files": files}


def planned(plan: dict[str, Any]) -> dict[str, list[str]]:
    return {k: [e["resource_name"] for e in v] for k, v in plan["resource_changes"].items() if v}


async def test_a_nested_template_change_updates_its_child_in_place(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    svc = OrchestrationService(engine, None, node_id="a", identity=Identity())
    svc.app = object()
    files = {"inner.yaml": INNER % "a", "deeper.yaml": DEEPER, "script.sh": "one", "notes.txt": "n"}
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await nursery.start(svc.run)
        stack = await svc.create(CALLER, {"stack_name": "outer", **body(files)})
        stack = await ended(svc, stack["id"])
        assert (stack["action"], stack["status"]) == ("CREATE", "COMPLETE"), stack["status_reason"]
        thing = await svc.read(store.get_resource, stack["id"], "thing")
        child_id = thing["physical_id"]

        async def child_values() -> dict[str, tuple[str, str]]:
            rows = await svc.read(store.resources_of, child_id)
            out = {r["name"]: (r["id"], r["properties"].get("value")) for r in rows}
            deeper = next(r for r in rows if r["name"] == "deeper")["physical_id"]
            for row in await svc.read(store.resources_of, deeper):
                out[f"deeper.{row['name']}"] = (row["id"], row["properties"].get("value"))
            return out

        before = await child_values()
        assert {k: v[1] for k, v in before.items()} == {"r": "a-x", "deeper": None, "deeper.s": "one"}

        async def update(files: dict[str, str], registry: dict[str, Any] = REGISTRY) -> dict[str, Any]:
            plan = await svc.preview_update(CALLER, stack, body(files, registry), patch=False)
            await svc.update(CALLER, await svc.read(store.must_stack, stack["id"]), body(files, registry), patch=False)
            done = await ended(svc, stack["id"])
            assert (done["action"], done["status"]) == ("UPDATE", "COMPLETE"), done["status_reason"]
            return plan

        # The nested template's text: the plan shows the child updated, and it is, in place.
        files = {**files, "inner.yaml": INNER % "b"}
        plan = await update(files)
        assert planned(plan) == {"updated": ["thing"], "unchanged": ["other"]}
        entry = plan["resource_changes"]["updated"][0]
        assert entry["nested_changes"] == ["inner.yaml changed"] and entry["changes"] == []
        assert entry["reason"] == "its nested stack is updated: inner.yaml changed"
        after = await child_values()
        assert after["r"] == (before["r"][0], "b-x")  # the same resource, changed in place
        thing_now = await svc.read(store.get_resource, stack["id"], "thing")
        assert (thing_now["id"], thing_now["physical_id"], thing_now["action"]) == (thing["id"], child_id, "UPDATE")
        outputs = await svc.queries.outputs(await svc.read(store.must_stack, stack["id"]))
        assert outputs[0]["output_value"] == "b-x"

        # A file the nested template reaches two levels down (get_file in a template it nests).
        files = {**files, "script.sh": "two"}
        assert planned(await update(files))["updated"] == ["thing"]
        assert (await child_values())["deeper.s"] == (before["deeper.s"][0], "two")

        # A file it does not reach: nothing to do.
        files = {**files, "notes.txt": "changed"}
        assert planned(await update(files)) == {"unchanged": ["thing", "other"]}

        # The resource_registry names another template for the type: the same child, updated.
        files = {**files, "inner2.yaml": INNER % "c"}
        plan = await update(files, {"resource_registry": {"My::Thing": "inner2.yaml"}})
        assert plan["resource_changes"]["updated"][0]["nested_changes"] == [
            "template inner2.yaml replaces inner.yaml", "inner.yaml is no longer used", "inner2.yaml is used"]
        assert (await child_values())["r"] == (before["r"][0], "c-x")
        assert (await svc.read(store.get_resource, stack["id"], "thing"))["physical_id"] == child_id
        nursery.cancel_scope.cancel()



MEMBER = """
heat_template_version: 2021-04-16
parameters:
  index: {type: string}
resources:
  r:
    type: OS::Heat::TestResource
    properties:
      value: {str_replace: {template: "%s-I", params: {I: {get_param: index}}}}
  leaf: {type: My::Leaf}
"""
LEAF = """
heat_template_version: 2021-04-16
resources:
  s: {type: OS::Heat::TestResource, properties: {value: %s}}
"""


async def test_a_group_of_nested_templates_named_through_the_registry_follows_their_text(tmp_path: Path):
    """A ResourceGroup's members are a type the resource_registry maps to a template, which itself
    uses a type of the parent's registry (inherited): a change of either text updates the members."""
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    svc = OrchestrationService(engine, None, node_id="a", identity=Identity())
    svc.app = object()
    template = {"heat_template_version": "2021-04-16", "resources": {"group": {
        "type": "OS::Heat::ResourceGroup", "properties": {"count": 2, "resource_def": {
            "type": "My::Member", "properties": {"index": "%index%"}}}}}}
    registry = {"resource_registry": {"My::Member": "member.yaml", "My::Leaf": "leaf.yaml"}}
    files = {"member.yaml": MEMBER % "a", "leaf.yaml": LEAF % "one"}

    def request(files: dict[str, str]) -> dict[str, Any]:
        return {"template": template, "environment": yaml.safe_dump(registry), "files": files}

    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await nursery.start(svc.run)
        stack = await ended(svc, (await svc.create(CALLER, {"stack_name": "grouped", **request(files)}))["id"])
        assert (stack["action"], stack["status"]) == ("CREATE", "COMPLETE"), stack["status_reason"]
        group_child = (await svc.read(store.get_resource, stack["id"], "group"))["physical_id"]

        async def values() -> dict[str, tuple[str, Any]]:
            out = {}
            for member in await svc.read(store.resources_of, group_child):
                for row in await svc.read(store.resources_of, member["physical_id"]):
                    if row["name"] == "r":
                        out[member["name"]] = (row["id"], row["properties"]["value"])
                    else:
                        leaf = await svc.read(store.resources_of, row["physical_id"])
                        out[f"{member['name']}.leaf"] = (leaf[0]["id"], leaf[0]["properties"]["value"])
            return out

        before = await values()
        assert {k: v[1] for k, v in before.items()} == {"0": "a-0", "1": "a-1", "0.leaf": "one", "1.leaf": "one"}
        for changed, expected in ((("member.yaml", MEMBER % "b"), {"0": "b-0", "1": "b-1"}),
                                  (("leaf.yaml", LEAF % "two"), {"0.leaf": "two", "1.leaf": "two"})):
            files = {**files, changed[0]: changed[1]}
            plan = await svc.preview_update(CALLER, stack, request(files), patch=False)
            assert plan["resource_changes"]["updated"][0]["nested_changes"] == [f"{changed[0]} changed"]
            await svc.update(CALLER, await svc.read(store.must_stack, stack["id"]), request(files), patch=False)
            done = await ended(svc, stack["id"])
            assert (done["action"], done["status"]) == ("UPDATE", "COMPLETE"), done["status_reason"]
            now = await values()
            for key, value in expected.items():
                assert now[key] == (before[key][0], value)  # the same resources, updated in place
        nursery.cancel_scope.cancel()

def test_the_cli_dry_run_shows_a_nested_template_change_and_the_update_makes_it(new_cloud: Any, user_env: Any,
                                                                               tmp_path: Path):
    """python-heatclient end to end: only box.yaml's text changes; --dry-run lists the template
    resource as updated, and the update changes the same child."""
    cloud, env = new_cloud, user_env
    box = {"heat_template_version": "2016-10-14", "parameters": {"length": {"type": "number"}},
           "resources": {"s": {"type": "OS::Heat::TestResource", "properties": {
               "value": {"str_replace": {"template": "one-L", "params": {"L": {"get_param": "length"}}}}}}},
           "outputs": {"value": {"value": {"get_attr": ["s", "output"]}}}}
    parent = {"heat_template_version": "2016-10-14", "resources": {
        "a": {"type": "My::Box", "properties": {"length": 5}},
        "b": {"type": "OS::Heat::TestResource", "properties": {"value": "b"}}},
        "outputs": {"v": {"value": {"get_attr": ["a", "value"]}}}}
    (tmp_path / "box.yaml").write_text(yaml.safe_dump(box))
    (tmp_path / "parent.yaml").write_text(yaml.safe_dump(parent))
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"resource_registry": {"My::Box": "box.yaml"}}))
    parts = ("-t", str(tmp_path / "parent.yaml"), "-e", str(tmp_path / "env.yaml"))
    assert cli(cloud, env, "stack", "create", *parts, "--wait", "nest")["stack_status"] == "CREATE_COMPLETE"
    child = {r["resource_name"]: r for r in cli(cloud, env, "stack", "resource", "list", "nest")}["a"]
    assert cli(cloud, env, "stack", "output", "show", "nest", "v")["output_value"] == "one-5"

    box["resources"]["s"]["properties"]["value"]["str_replace"]["template"] = "two-L"
    (tmp_path / "box.yaml").write_text(yaml.safe_dump(box))
    plan = cli(cloud, env, "stack", "update", "--dry-run", *parts, "nest")
    assert {k: [e["resource_name"] for e in v] for k, v in plan.items() if v} == {"updated": ["a"], "unchanged": ["b"]}
    # python-heatclient sends files under their URLs
    assert plan["updated"][0]["nested_changes"] == [f"file://{tmp_path}/box.yaml changed"]
    assert cli(cloud, env, "stack", "update", *parts, "--wait", "nest")["stack_status"] == "UPDATE_COMPLETE"
    assert cli(cloud, env, "stack", "output", "show", "nest", "v")["output_value"] == "two-5"
    after = {r["resource_name"]: r for r in cli(cloud, env, "stack", "resource", "list", "nest")}["a"]
    assert after["physical_resource_id"] == child["physical_resource_id"]  # the same child, updated in place

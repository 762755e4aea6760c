"""A stack left in progress by a node that went down is continued by a live node, exactly once:
two live nodes' engines over one replicated state (in-process, Heat's TestResource, which calls
no other service), the cluster's liveness played by ``up_nodes``."""

from __future__ import annotations

import types
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from cloudbox.errors import Conflict
from cloudbox.orchestration import commands as c
from cloudbox.orchestration import store
from cloudbox.orchestration.service import OrchestrationService
from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine

TEMPLATE = {"heat_template_version": "2021-04-16", "resources": {
    "one": {"type": "OS::Heat::TestResource", "properties": {"value": "1"}},
    "two": {"type": "OS::Heat::TestResource", "properties": {"value": "2", "wait_secs": 0.3},
            "depends_on": ["one"]},
    "three": {"type": "OS::Heat::TestResource", "properties": {"value": "3"}, "depends_on": ["two"]},
}}
AT = "2026-12-07T12:00:00Z"


class Identity:
    """The owner's token: TestResource never uses it."""

    async def mint(self, payload: Any) -> Any:
        return types.SimpleNamespace(token="unused")


def stack_row(stack_id: str, runner: str) -> dict[str, Any]:
    return {"id": stack_id, "name": "left", "project_id": "p1", "user_id": "u1", "description": "",
            "action": "CREATE", "status": "IN_PROGRESS", "status_reason": "Stack CREATE started",
            "template": TEMPLATE, "environment": {}, "files": {}, "parameters": {}, "previous": {},
            "disable_rollback": True, "timeout_mins": None, "tags": [], "parent_id": None, "runner": runner,
            "created_at": AT, "updated_at": None}


async def until(check: Any, what: str, timeout: float = 10) -> Any:
    with trio.move_on_after(timeout):
        while not (found := await check()):
            await trio.sleep(0.02)
        return found
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_down_nodes_stack_is_continued_by_one_live_node(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    up = {"a", "b", "c"}

    async def up_nodes() -> frozenset[str]:
        return frozenset(up)

    nodes = [OrchestrationService(engine, None, node_id=n, identity=Identity()) for n in ("b", "c")]
    for svc in nodes:
        svc.app, svc.up_nodes, svc.takeover_tick = object(), up_nodes, 0.02
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        # Node a was creating the stack: "one" is made, "two" was asked for and not recorded yet.
        stack_id = str(uuid.uuid4())
        await engine.propose(c.CreateStack(stack_row(stack_id, "a"), str(uuid.uuid4())))
        one = await engine.propose(c.ResourceState(stack_id, "one", str(uuid.uuid4()), "OS::Heat::TestResource",
                                                   "CREATE", "COMPLETE", "state changed", AT, str(uuid.uuid4()),
                                                   {"physical_id": "left-one-made-by-a", "properties": {"value": "1"},
                                                    "data": {"value": "1"}}))
        await engine.propose(c.ResourceState(stack_id, "two", str(uuid.uuid4()), "OS::Heat::TestResource", "CREATE",
                                             "IN_PROGRESS", "state changed", AT, str(uuid.uuid4()),
                                             {"properties": {"value": "2", "wait_secs": 0.3}}))
        for svc in nodes:
            await nursery.start(svc.run)

        # While a is up its stack is its own: nobody takes it.
        for svc in nodes:
            assert await svc.take_over() == []
        await trio.sleep(0.2)
        assert (await engine.read(store.must_stack, stack_id))["runner"] == "a"

        up.discard("a")
        done = await until(lambda: _ended(engine, stack_id), "the stack to be continued and to end")
        assert (done["action"], done["status"]) == ("CREATE", "COMPLETE"), done
        assert done["runner"] in ("b", "c")
        rows = {r["name"]: r for r in await engine.read(store.resources_of, stack_id)}
        assert {n: (r["action"], r["status"]) for n, r in rows.items()} == {
            n: ("CREATE", "COMPLETE") for n in ("one", "two", "three")}
        assert rows["one"]["physical_id"] == one["physical_id"]  # what a made is kept, not made again
        events = await engine.read(store.events_of, stack_id, None, None, 100, "asc", {})
        taken = [e for e in events if "continued by node" in e["reason"]]
        assert len(taken) == 1, taken  # both nodes tried; apply gave it to one
        assert taken[0]["reason"] == f"Stack CREATE continued by node {done['runner']} (node a is down)"
        assert sum(1 for e in events if e["resource_name"] == "three" and e["status"] == "IN_PROGRESS") == 1

        # A claim decided in apply: a second claim from the old runner is refused.
        with pytest.raises(Conflict):
            await engine.propose(c.ClaimStack(stack_id, "a", "b", AT, str(uuid.uuid4())))
        nursery.cancel_scope.cancel()


async def test_a_node_stops_driving_a_stack_another_node_took(tmp_path: Path):
    """A node cut off long enough to be taken for down finds its stack claimed: it stops its drive."""
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    svc = OrchestrationService(engine, None, node_id="b", identity=Identity())
    svc.app, svc.takeover_tick = object(), 3600

    async def up_nodes() -> frozenset[str]:
        return frozenset({"b", "c"})

    svc.up_nodes = up_nodes
    slow = {"heat_template_version": "2021-04-16", "resources": {
        "slow": {"type": "OS::Heat::TestResource", "properties": {"wait_secs": 60}}}}
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await nursery.start(svc.run)
        stack_id = str(uuid.uuid4())
        await engine.propose(c.CreateStack({**stack_row(stack_id, "b"), "template": slow}, str(uuid.uuid4())))
        svc.start(stack_id)
        await until(lambda: engine.read(store.get_resource, stack_id, "slow"), "the drive to start")
        assert stack_id in svc.runner.scopes
        await engine.propose(c.ClaimStack(stack_id, "b", "c", AT, str(uuid.uuid4())))  # c took it
        assert await svc.take_over() == []
        assert stack_id not in svc.runner.scopes
        stack = await engine.read(store.must_stack, stack_id)
        assert (stack["status"], stack["runner"]) == ("IN_PROGRESS", "c")  # b wrote no failure on its way out
        nursery.cancel_scope.cancel()


async def _ended(engine: StateEngine, stack_id: str) -> dict[str, Any] | None:
    stack = await engine.read(store.must_stack, stack_id)
    return stack if stack["status"] != "IN_PROGRESS" else None

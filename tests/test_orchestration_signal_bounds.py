"""Signals are replicated commands, and a guest holding a handle's URL may send as many as it likes:
a WaitConditionHandle keeps at most its wait conditions' count of distinct signal ids plus a
margin (a repeated id replaces its signal, as Heat's; a new id past the bound is a 400, Heat's
RequestLimitExceeded, and nothing is logged), and a ScalingPolicy records a bounded number of
signals that scaled nothing (cooldown, a group at its bound). In-process: one state engine, the
orchestration service without its engine running (a signal needs none)."""

from __future__ import annotations

import types
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from cloudbox.errors import BadRequest, Unavailable
from cloudbox.orchestration import commands as c
from cloudbox.orchestration import service as service_module
from cloudbox.orchestration import store
from cloudbox.orchestration.service import OrchestrationService
from cloudbox.services import STORES
from cloudbox.state.db import LOG_TABLE
from cloudbox.state.engine import StateEngine

AT = "2026-12-07T12:00:00Z"
WAITS = {"heat_template_version": "2021-04-16",
         "parameters": {"count": {"type": "number", "default": 2}},
         "resources": {
             "handle": {"type": "OS::Heat::WaitConditionHandle"},
             "waiter": {"type": "OS::Heat::WaitCondition", "properties": {
                 "handle": {"get_resource": "handle"}, "count": {"get_param": "count"}, "timeout": 60}}}}


def stack_row(stack_id: str, template: dict[str, Any]) -> dict[str, Any]:
    return {"id": stack_id, "name": "signalled", "project_id": "p1", "user_id": "u1", "description": "",
            "action": "CREATE", "status": "IN_PROGRESS", "status_reason": "", "template": template,
            "environment": {}, "files": {}, "parameters": {}, "previous": {}, "disable_rollback": True,
            "timeout_mins": None, "tags": [], "parent_id": None, "runner": "a", "created_at": AT, "updated_at": None}


async def add_row(engine: StateEngine, stack_id: str, name: str, kind: str, **changes: Any) -> dict[str, Any]:
    return await engine.propose(c.ResourceState(stack_id, name, str(uuid.uuid4()), kind, "CREATE", "COMPLETE",
                                                "state changed", AT, "", changes))


async def logged(engine: StateEngine) -> int:
    return await engine.read(lambda db: next(iter(db.query(f"SELECT count(*) AS n FROM {LOG_TABLE}")))["n"])


@pytest.fixture
def engine(tmp_path: Path) -> StateEngine:
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    return engine


async def test_a_handle_keeps_its_count_of_distinct_signals_plus_a_margin(engine: StateEngine):
    svc = OrchestrationService(engine, None, node_id="a", identity=types.SimpleNamespace())
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        stack_id = str(uuid.uuid4())
        stack = await engine.propose(c.CreateStack(stack_row(stack_id, WAITS), str(uuid.uuid4())))
        # The waiter is not made yet: its count (2) is read from the template.
        await add_row(engine, stack_id, "handle", "OS::Heat::WaitConditionHandle", physical_id="h-1",
                      data={"secret": "s"})
        limit = 2 + service_module.SIGNAL_MARGIN
        for n in range(limit):
            await svc.signal(stack, "handle", {"id": f"guest-{n}", "data": n})
        before = await logged(engine)
        with pytest.raises(BadRequest, match="Request limit exceeded: handle holds 6 signals, its bound"):
            await svc.signal(stack, "handle", {"id": "one-more", "data": "flood"})
        with pytest.raises(BadRequest):
            await svc.signal(stack, "handle", None)  # no id: numbered as a new one
        assert await logged(engine) == before  # refused before the log: nothing replicated

        # A signal with an id the handle holds replaces it (Heat overwrites).
        await svc.signal(stack, "handle", {"id": "guest-1", "data": "again", "status": "FAILURE"})
        signals = (await engine.read(store.get_resource, stack_id, "handle"))["data"]["signals"]
        assert [s["id"] for s in signals] == [f"guest-{n}" for n in range(limit)]
        assert (signals[1]["data"], signals[1]["status"]) == ("again", "FAILURE")

        # Apply decides for signals racing the service's check: a new id past the bound changes nothing.
        with pytest.raises(BadRequest, match="Request limit exceeded"):
            await engine.propose(c.SignalBounded(stack_id, "handle", {"id": "raced", "status": "SUCCESS"}, AT,
                                                 str(uuid.uuid4()), limit))
        assert (await engine.read(store.get_resource, stack_id, "handle"))["data"]["signals"] == signals
        events = await engine.read(store.events_of, stack_id, "handle", None, 100, "asc", {})
        assert len(events) == limit + 1  # one per signal kept or replaced
        nursery.cancel_scope.cancel()


async def test_a_handle_bound_follows_a_larger_count_and_a_cluster_mid_upgrade(engine: StateEngine):
    svc = OrchestrationService(engine, None, node_id="a", identity=types.SimpleNamespace())
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        stack_id = str(uuid.uuid4())
        row = stack_row(stack_id, WAITS)
        row["parameters"] = {"count": 10}
        stack = await engine.propose(c.CreateStack(row, str(uuid.uuid4())))
        await add_row(engine, stack_id, "handle", "OS::Heat::WaitConditionHandle", physical_id="h-2",
                      data={"secret": "s"})
        # A node of the cluster speaks only schema 1, which has no orchestration: refused, nothing logged.
        engine.cluster_schema = 1
        before = await logged(engine)
        with pytest.raises(Unavailable, match="mid-upgrade"):
            await svc.signal(stack, "handle", {})
        assert await logged(engine) == before
        engine.cluster_schema = 2
        for _ in range(10 + service_module.SIGNAL_MARGIN):
            await svc.signal(stack, "handle", {})
        with pytest.raises(BadRequest, match="holds 14 signals"):
            await svc.signal(stack, "handle", {})
        nursery.cancel_scope.cancel()


async def test_a_policy_records_a_bounded_number_of_signals_that_scale_nothing(engine: StateEngine):
    now = [1_000_000.0]
    svc = OrchestrationService(engine, None, node_id="a", identity=types.SimpleNamespace(), clock_fn=lambda: now[0])
    template = {"heat_template_version": "2021-04-16", "resources": {
        "asg": {"type": "OS::Heat::AutoScalingGroup", "properties": {
            "min_size": 1, "max_size": 3, "resource": {"type": "OS::Heat::RandomString"}}},
        "up": {"type": "OS::Heat::ScalingPolicy", "properties": {
            "auto_scaling_group_id": {"get_resource": "asg"}, "adjustment_type": "change_in_capacity",
            "scaling_adjustment": 1, "cooldown": 60}}}}
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        stack_id = str(uuid.uuid4())
        row = {**stack_row(stack_id, template), "action": "CREATE", "status": "COMPLETE"}
        stack = await engine.propose(c.CreateStack(row, str(uuid.uuid4())))
        await add_row(engine, stack_id, "asg", "OS::Heat::AutoScalingGroup", physical_id="g-1",
                      properties={"min_size": 1, "max_size": 3, "resource": {"type": "OS::Heat::RandomString"}},
                      data={"size": 3, "child": "c-1"})
        await add_row(engine, stack_id, "up", "OS::Heat::ScalingPolicy", physical_id="p-1", data={"secret": "s"},
                      properties={"auto_scaling_group_id": "g-1", "adjustment_type": "change_in_capacity",
                                  "scaling_adjustment": 1, "cooldown": 60})
        # The group is at its max_size: each signal scales nothing; a few are recorded, the rest dropped.
        for _ in range(service_module.POLICY_IDLE):
            await svc.signal(stack, "up", None)
        before = await logged(engine)
        for _ in range(20):
            await svc.signal(stack, "up", None)  # answered as Heat's (no error), not logged
        assert await logged(engine) == before
        policy = await engine.read(store.get_resource, stack_id, "up")
        assert policy["data"]["idle"] == service_module.POLICY_IDLE
        assert [s["reason"] for s in policy["data"]["signals"]] == \
            ["not scaled: the group is at 3 (from 1 to 3)"] * service_module.POLICY_IDLE
        with pytest.raises(BadRequest, match="took 5 signals that scaled nothing"):  # apply's bound
            await engine.propose(c.SignalBounded(stack_id, "up", {"status": "SUCCESS", "reason": "raced", "id": ""},
                                                 AT, str(uuid.uuid4()), service_module.POLICY_IDLE))

        # A scaling resets the count and starts the cooldown; the policy keeps only its last signals.
        for n in range(12):
            await engine.propose(c.SignalBounded(stack_id, "up", {"status": "SUCCESS", "reason": f"scaled {n}",
                                                                  "id": "", "scaled_at": now[0]},
                                                 AT, str(uuid.uuid4()), service_module.POLICY_IDLE))
        policy = await engine.read(store.get_resource, stack_id, "up")
        assert (policy["data"]["idle"], policy["data"]["scaled_at"]) == (0, now[0])
        assert len(policy["data"]["signals"]) == 10 and policy["data"]["signals"][-1]["reason"] == "scaled 11"
        now[0] += 30
        await engine.propose(c.ResourceState(stack_id, "asg", (await engine.read(
            store.get_resource, stack_id, "asg"))["id"], "OS::Heat::AutoScalingGroup", "CREATE", "COMPLETE",
            "state changed", AT, "", {"data": {"size": 2, "child": "c-1"}}))
        for _ in range(8):  # in its cooldown: scaled nothing, recorded up to the bound
            await svc.signal(stack, "up", {})
        policy = await engine.read(store.get_resource, stack_id, "up")
        assert policy["data"]["idle"] == service_module.POLICY_IDLE
        assert policy["data"]["signals"][-1]["reason"] == "cooldown: not scaled (31 s of 60 s left)"
        nursery.cancel_scope.cancel()

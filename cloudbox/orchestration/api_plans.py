"""Stored plans of stack updates at /cloudbox/v1/orchestration (cloudbox's own API; plans.py):
make a plan (the update's body, as Heat's PUT takes it, plus ``existing``), read it, apply it
later (409 if the stack changed since), or drop it."""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.orchestration.plans import view
from cloudbox.orchestration.service import OrchestrationService

PREFIX = "/cloudbox/v1"
PLANS = "/orchestration/stacks/{stack_id}/plans"


def build(svc: OrchestrationService) -> ApiSpec:
    plans = svc.plans

    async def create_plan(call: Call, stack_id: str) -> Reply:
        stack = await svc.find(call.auth, stack_id)
        plan = await plans.create(call.auth, stack, call.body)
        shown = view(call.base, await svc.find(call.auth, stack["id"]), plan)
        return Reply({"plan": shown}, 201, {"Location": shown["links"][0]["href"]})

    async def list_plans(call: Call, stack_id: str) -> Any:
        stack = await svc.find(call.auth, stack_id)
        return {"plans": [view(call.base, stack, p) for p in await plans.list(call.auth, stack)]}

    async def show_plan(call: Call, stack_id: str, plan_id: str) -> Any:
        stack = await svc.find(call.auth, stack_id)
        return {"plan": view(call.base, stack, await plans.get(call.auth, stack, plan_id))}

    async def apply_plan(call: Call, stack_id: str, plan_id: str) -> Reply:
        await plans.apply(call.auth, await svc.find(call.auth, stack_id), plan_id)
        return Reply(None, 202)

    async def delete_plan(call: Call, stack_id: str, plan_id: str) -> Reply:
        await plans.delete(call.auth, await svc.find(call.auth, stack_id), plan_id)
        return Reply(None, 204)

    one = PLANS + "/{plan_id}"
    return ApiSpec("orchestration-plans", PREFIX, "cloudbox", [
        Route("POST", PLANS, create_plan, summary="Plan a stack's update, stored to be applied later",
              body={"type": "object"}, status=201),
        Route("GET", PLANS, list_plans, summary="A stack's stored plans"),
        Route("GET", one, show_plan, summary="One stored plan, property by property"),
        Route("POST", one + "/apply", apply_plan, summary="Start the planned update (409 if the stack changed since)",
              status=202),
        Route("DELETE", one, delete_plan, summary="Drop a stored plan", status=204),
    ])

"""Stored plans of stack updates (the native /cloudbox/v1 API, api_plans.py).

A plan is an update checked whole and planned now (the same checks and plan as
``PUT .../preview``), recorded with the stack's version it was made from (its ``event_seq``: every
change of the stack or of one of its resources, an action, a signal, leaves an event and moves
it). Applying the plan later starts exactly that update, and apply (the command's, on every node)
refuses it with 409 if the stack's version moved meanwhile or it is in progress. A plan is used up
by its apply and goes with its stack.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.orchestration import commands as c
from cloudbox.orchestration import store

if TYPE_CHECKING:
    from cloudbox.orchestration.service import OrchestrationService

UPDATE_KEYS = ("template", "template_url", "parameters", "clear_parameters", "environment", "files",
               "disable_rollback", "timeout_mins", "tags")


class Plans:
    def __init__(self, svc: OrchestrationService) -> None:
        self.svc = svc

    async def create(self, ctx: Any, stack: dict[str, Any], body: Any) -> dict[str, Any]:
        """Plan an update (Heat's update body; ``existing``: true keeps what is not sent, as PATCH)."""
        from cloudbox.orchestration.service import _flag, _tags, _timeout

        svc = self.svc
        await svc.writable(ctx, stack, "stacks:update")
        if not isinstance(body, dict):
            raise BadRequest("The body must be an object: the update, as PUT /stacks/{name}/{id} takes it.")
        unknown = sorted(set(body) - {*UPDATE_KEYS, "existing"})
        if unknown:
            raise BadRequest(f"Unknown key {unknown[0][:60]!r} in the plan's body (it takes {', '.join(UPDATE_KEYS)}"
                             ", existing).")
        if stack["status"] == "IN_PROGRESS":
            raise Conflict(f"Stack {stack['name']} is {stack['action']}_IN_PROGRESS: plan once it ended.")
        if stack["action"] == "DELETE":
            raise BadRequest(f"Stack {stack['name']} is being deleted.")
        existing = _flag(body.get("existing", False), "existing")
        update = {k: v for k, v in body.items() if k != "existing"}
        model, stored = await svc._update_parts(ctx, stack, update, existing)  # noqa: SLF001 - the update's own checks
        rows = await svc.read(store.resources_of, stack["id"])
        changes: dict[str, Any] = {**stored, "description": model.description}
        for key, parse in (("disable_rollback", lambda v: _flag(v, "disable_rollback")),
                           ("timeout_mins", _timeout), ("tags", _tags)):
            if key in body:
                changes[key] = parse(body[key])
        row = {"id": str(uuid.uuid4()), "stack_id": stack["id"], "project_id": stack["project_id"],
               "user_id": ctx.user_id or "", "stack_version": stack["event_seq"], "changes": changes,
               "plan": svc.queries.plan(stack, model, rows)["resource_changes"], "created_at": svc.now()}
        return await svc.propose(c.CreatePlan(row))

    async def list(self, ctx: Any, stack: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.svc.read(store.plans_of, stack["id"])

    async def get(self, ctx: Any, stack: dict[str, Any], plan_id: str) -> dict[str, Any]:
        plan = await self.svc.read(store.get_plan, plan_id)
        if plan is None or plan["stack_id"] != stack["id"]:
            raise NotFound(f"The plan {plan_id[:40]} could not be found.")
        return plan

    async def apply(self, ctx: Any, stack: dict[str, Any], plan_id: str) -> None:
        svc = self.svc
        await svc.writable(ctx, stack, "stacks:update")
        svc.require_running()
        await self.get(ctx, stack, plan_id)
        await svc.propose(c.ApplyPlan(plan_id, stack["id"], svc.node_id, svc.now(), str(uuid.uuid4())))
        svc.start(stack["id"])

    async def delete(self, ctx: Any, stack: dict[str, Any], plan_id: str) -> None:
        await self.svc.writable(ctx, stack, "stacks:update")
        await self.get(ctx, stack, plan_id)
        await self.svc.propose(c.DeletePlan(plan_id, stack["id"]))


def view(base: str, stack: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """A plan as the API shows it; ``stale`` once the stack changed since (its apply would be a 409)."""
    url = f"{base}/orchestration/stacks/{stack['id']}/plans/{plan['id']}"
    return {"id": plan["id"], "stack_id": stack["id"], "stack_name": stack["name"],
            "stack_version": plan["stack_version"], "stale": stack["event_seq"] != plan["stack_version"],
            "created_at": plan["created_at"], "resource_changes": plan["plan"],
            "links": [{"href": url, "rel": "self"}]}

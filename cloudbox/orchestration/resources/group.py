"""OS::Heat::ResourceGroup, OS::Heat::AutoScalingGroup and OS::Heat::ScalingPolicy.

A group is a nested stack (a stack of its own whose parent is the group's stack, driven by the
same engine, so it resumes after a crash the same way) holding ``count`` copies of one resource
definition, named "0", "1", ... (ResourceGroup, with ``%index%`` replaced) or by their index
too (AutoScalingGroup). Changing the size updates the nested stack: members are added at the
end and removed from the end. A ScalingPolicy's signed URL (wait.py's signing) changes its
group's size by its adjustment when called.
"""

from __future__ import annotations

import secrets
from typing import Any

from cloudbox.errors import BadRequest
from cloudbox.orchestration.resources.base import Context, Plugin, ResourceFailed
from cloudbox.orchestration.resources.wait import signal_url


def _indexed(value: Any, var: str, index: int) -> Any:
    if isinstance(value, str):
        return value.replace(var, str(index)) if var else value
    if isinstance(value, list):
        return [_indexed(v, var, index) for v in value]
    if isinstance(value, dict):
        return {k: _indexed(v, var, index) for k, v in value.items()}
    return value


class Group(Plugin):
    """What ResourceGroup and AutoScalingGroup share: the nested stack of members."""

    member_type_key = "resource_def"
    attribute_names = frozenset({"show", "refs", "refs_map", "attributes", "removed_rsrc_list", "current_size",
                                 "outputs", "outputs_list"})

    def size(self, props: dict[str, Any]) -> int:
        raise NotImplementedError

    def template(self, props: dict[str, Any], count: int) -> dict[str, Any]:
        definition = props.get(self.member_type_key) or {}
        if not isinstance(definition, dict) or not definition.get("type"):
            raise ResourceFailed(f"{self.member_type_key} needs a type")
        var = str(props.get("index_var", "%index%"))
        resources = {}
        for index in range(count):
            member: dict[str, Any] = {"type": definition["type"]}
            for key in ("properties", "metadata"):
                if definition.get(key):
                    member[key] = _indexed(definition[key], var, index)
            resources[str(index)] = member
        return {"heat_template_version": "2021-04-16", "resources": resources}

    async def _apply_size(self, ctx: Context, props: dict[str, Any], count: int) -> None:
        """The child made or updated with ``count`` members; it gets the stack's files and registry,
        so members may be nested templates (sent in files, or named through the resource_registry)."""
        template = self.template(props, count)
        if ctx.data.get("child"):
            await ctx.stacks.update_child({"id": ctx.data["child"], "name": ctx.physical_name,
                                           "project_id": ctx.stack["project_id"]}, template, None, ctx.files,
                                          ctx.environment)
        else:
            child = await ctx.stacks.create_child(ctx.stack, ctx.physical_name, template, None, ctx.files,
                                                  ctx.environment)
            ctx.data["child"] = child["id"]
        ctx.data["size"] = count
        ctx.data["sources"] = ctx.sources  # the members' nested template: a change there updates them

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        await self._apply_size(ctx, props, self.size(props))
        return str(ctx.data["child"])

    async def find(self, ctx: Context) -> str | None:
        return None  # create_child finds a child of the same name itself

    async def wait(self, ctx: Context) -> None:
        child = await ctx.stacks.wait_child(ctx.data.get("child") or ctx.physical_id)
        if child is None or child["status"] != "COMPLETE":
            raise ResourceFailed(f"nested stack {ctx.physical_name}: {child['status_reason'] if child else 'gone'}")

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        ctx.data.setdefault("child", ctx.physical_id)
        await self._apply_size(ctx, new, self.size(new))
        await self.wait(ctx)

    async def delete(self, ctx: Context) -> None:
        child = ctx.data.get("child") or ctx.physical_id
        if not child:
            return
        await ctx.stacks.delete_child(child)
        left = await ctx.stacks.wait_child(child, gone=True)
        if left is not None:
            raise ResourceFailed(f"nested stack {ctx.physical_name}: {left['status_reason']}")

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        rows = await ctx.stacks.child_rows(ctx.data.get("child") or ctx.physical_id)
        members = sorted(rows, key=lambda r: int(r["name"]) if r["name"].isdigit() else 1 << 30)
        names: set[str] = set()
        for row in members:
            names.update(k for k in row["attributes"] if k != "show")
        out: dict[str, Any] = {
            "refs": [r["physical_id"] for r in members], "refs_map": {r["name"]: r["physical_id"] for r in members},
            "attributes": {n: [r["attributes"].get(n) for r in members] for n in sorted(names)},
            "removed_rsrc_list": [], "current_size": len(members),
            "outputs": {r["physical_id"]: {k: v for k, v in r["attributes"].items() if k != "show"} for r in members},
            "outputs_list": [{k: v for k, v in r["attributes"].items() if k != "show"} for r in members],
        }
        for row in members:
            out[f"resource.{row['name']}"] = {k: v for k, v in row["attributes"].items() if k != "show"}
        return out


class ResourceGroup(Group):
    type = "OS::Heat::ResourceGroup"
    description = "count copies of one resource definition (%index% replaced by each one's index)."
    properties = {"count": "integer", "resource_def": "map", "index_var": "string", "removal_policies": "list",
                  "removal_policies_mode": "string"}
    required = frozenset({"resource_def"})
    update_allowed = frozenset({"count", "resource_def", "removal_policies", "removal_policies_mode"})

    def size(self, props: dict[str, Any]) -> int:
        count = props.get("count", 1)
        if not isinstance(count, int) or count < 0:
            raise BadRequest(f"count must be a whole number from 0, not {count!r}")
        return count


class AutoScalingGroup(Group):
    type = "OS::Heat::AutoScalingGroup"
    description = "A group of min_size to max_size copies of a resource, resized by its ScalingPolicy signals."
    member_type_key = "resource"
    properties = {"min_size": "integer", "max_size": "integer", "desired_capacity": "integer", "resource": "map",
                  "cooldown": "integer", "rolling_updates": "map"}
    required = frozenset({"min_size", "max_size", "resource"})
    update_allowed = frozenset({"min_size", "max_size", "desired_capacity", "resource", "cooldown",
                                "rolling_updates"})

    def size(self, props: dict[str, Any]) -> int:
        low, high = int(props["min_size"]), int(props["max_size"])
        if not 0 <= low <= high:
            raise BadRequest("min_size must be from 0 to max_size")
        desired = props.get("desired_capacity")
        return min(max(int(desired) if desired is not None else low, low), high)

    async def resize(self, ctx: Context, props: dict[str, Any], count: int) -> None:
        """A scaling policy's signal: the group's new size, within its bounds."""
        count = min(max(count, int(props["min_size"])), int(props["max_size"]))
        ctx.data.setdefault("child", ctx.physical_id)
        if count != ctx.data.get("size"):
            await self._apply_size(ctx, props, count)


class ScalingPolicy(Plugin):
    type = "OS::Heat::ScalingPolicy"
    description = "Changes an AutoScalingGroup's size by scaling_adjustment when its alarm_url is signalled."
    properties = {"auto_scaling_group_id": "string", "adjustment_type": "string", "scaling_adjustment": "number",
                  "cooldown": "integer", "min_adjustment_step": "integer"}
    required = frozenset({"auto_scaling_group_id", "adjustment_type", "scaling_adjustment"})
    update_allowed = frozenset({"adjustment_type", "scaling_adjustment", "cooldown", "min_adjustment_step"})
    attribute_names = frozenset({"show", "alarm_url", "signal_url"})

    def check(self, name: str, props: dict[str, Any]) -> None:
        super().check(name, props)
        kind = props.get("adjustment_type")
        if isinstance(kind, str) and kind not in ("change_in_capacity", "exact_capacity",
                                                  "percent_change_in_capacity"):
            raise BadRequest(f"resources.{name}.properties.adjustment_type: {kind!r} is not one of "
                             "change_in_capacity, exact_capacity, percent_change_in_capacity")

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        ctx.data["secret"] = secrets.token_hex(32)
        return ctx.row_id

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        return None  # read from the row's properties at each signal

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        url = signal_url(f"https://{ctx.api.host}", ctx.stack["id"], ctx.physical_id, ctx.data.get("secret", ""))
        return {"alarm_url": url, "signal_url": url, "show": {"alarm_url": url}}


def adjusted(size: int, kind: str, adjustment: float, min_step: int | None) -> int:
    if kind == "exact_capacity":
        return int(adjustment)
    if kind == "percent_change_in_capacity":
        change = int(size * adjustment / 100)
        if min_step and abs(change) < min_step:
            change = min_step if adjustment > 0 else -min_step
        return size + change
    return size + int(adjustment)

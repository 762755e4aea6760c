"""A resource whose type is a template sent with the stack (``files``, often named through the
environment's resource_registry): a child stack of that template, its properties as the child's
parameters, the child's outputs as its attributes (Heat's template resource)."""

from __future__ import annotations

from typing import Any

from cloudbox.orchestration.resources.base import Context, ResourceFailed
from cloudbox.orchestration.resources.group import Group


class TemplateResource(Group):
    type = "OS::Heat::TemplateResource"
    description = "A nested stack of a template sent in files, its properties as the template's parameters."
    updates_anything = True  # every change goes to the child as an update of its parameters
    # ...and so does a change of its template's text or of a file it reaches (ctx.sources, the
    # engine's comparison with data["sources"]), or a resource_registry now naming another template.
    attribute_names = frozenset({"show"})

    def check(self, name: str, props: dict[str, Any]) -> None:
        return None  # the child's own parameters check them when it is built

    def _template(self, ctx: Context) -> str:
        if not ctx.template:
            raise ResourceFailed(f"the template of {ctx.name} was not sent with the stack")
        return ctx.template

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        child = await ctx.stacks.create_child(ctx.stack, ctx.physical_name, self._template(ctx), props, ctx.files,
                                              ctx.environment)
        ctx.data["child"] = child["id"]
        ctx.data["sources"] = ctx.sources  # what the child was made of: a change there updates it
        return str(child["id"])

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        ctx.data.setdefault("child", ctx.physical_id)
        await ctx.stacks.update_child({"id": ctx.data["child"], "name": ctx.physical_name,
                                       "project_id": ctx.stack["project_id"]}, self._template(ctx), new,
                                      ctx.files, ctx.environment)
        await self.wait(ctx)
        ctx.data["sources"] = ctx.sources

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        from cloudbox.orchestration import store

        child = await ctx.stacks.read(store.get_stack, ctx.data.get("child") or ctx.physical_id)
        if child is None:
            return {}
        outputs = await ctx.stacks.queries.outputs(child)
        values = {o["output_key"]: o.get("output_value") for o in outputs}
        return {**values, "show": values}

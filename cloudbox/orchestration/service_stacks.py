"""The reading side of the orchestration service: stacks, resources, events, outputs, and the
plan of an update (what it would add, change in place, replace and delete, and why)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from cloudbox.errors import BadRequest, NotFound
from cloudbox.orchestration import drift, hot
from cloudbox.orchestration import model as m
from cloudbox.orchestration import store
from cloudbox.orchestration.resources import PLUGINS

if TYPE_CHECKING:
    from cloudbox.orchestration.service import OrchestrationService

STACK_SORT = {"stack_name": "name", "created_at": "created_at", "updated_at": "updated_at",
              "stack_status": "status", "creation_time": "created_at", "updated_time": "updated_at", "name": "name"}
STACK_FILTERS = {"name": "name", "stack_name": "name", "status": "status", "action": "action", "id": "id",
                 "project": "project_id", "tenant": "project_id", "owner_id": "parent_id"}
EVENT_FILTERS = {"resource_status": "resource_status", "resource_action": "action", "resource_type": "resource_type",
                 "resource_name": "resource_name", "physical_resource_id": "physical_id"}


class StackQueries:
    def __init__(self, svc: OrchestrationService) -> None:
        self.svc = svc

    async def list(self, ctx: Any, query: Mapping[str, str], limit: int, marker: str | None) -> list[dict[str, Any]]:
        all_projects = str(query.get("global_tenant", "")).lower() in ("true", "1") and ctx.is_cloud_reader
        project = None if all_projects else ctx.project_id
        if project is None and not all_projects:
            return []
        sort_key = STACK_SORT.get(query.get("sort_keys") or query.get("sort_key") or "created_at")
        if sort_key is None:
            raise BadRequest(f"Invalid sort key {str(query.get('sort_keys'))[:40]!r}.")
        sort_dir = (query.get("sort_dir") or "desc").lower()
        if sort_dir not in ("asc", "desc"):
            raise BadRequest("sort_dir must be asc or desc.")
        filters = {STACK_FILTERS[k]: v for k, v in query.items() if k in STACK_FILTERS and v}
        if not all_projects:
            filters.pop("project_id", None)
        return await self.svc.read(store.list_stacks, project, filters, marker, limit, sort_key, sort_dir)

    async def detail(self, stack: dict[str, Any], resolve_outputs: bool = True) -> dict[str, Any]:
        """A stack with what its show needs: parameters as shown (hidden masked) and outputs."""
        rows = {r["name"]: r for r in await self.svc.read(store.resources_of, stack["id"])}
        shown: dict[str, Any] = {}
        outputs: list[dict[str, Any]] = []
        try:
            model = self.svc.model_of(stack, stack)
        except BadRequest:
            model = None
        if model is not None:
            shown = model.parameters.shown()
            if resolve_outputs:
                outputs = m.outputs(model, rows)
        return {**stack, "shown_parameters": shown, "outputs": outputs if resolve_outputs else None}

    async def resources(self, stack: dict[str, Any]) -> list[dict[str, Any]]:
        rows = await self.svc.read(store.resources_of, stack["id"])
        return [{**r, "required_by": self._required_by(stack, r["name"])} for r in rows]

    def _required_by(self, stack: dict[str, Any], name: str) -> list[str]:
        try:
            model = self.svc.model_of(stack, stack)
        except BadRequest:
            return []
        return sorted(n for n, d in (model.defs.items() if model else ()) if name in d.depends_on)

    async def resource(self, stack: dict[str, Any], name: str) -> dict[str, Any]:
        row = await self.svc.read(store.get_resource, stack["id"], name)
        if row is None:
            raise NotFound(f"The Resource ({name[:80]}) could not be found in Stack {stack['name']}.")
        return {**row, "required_by": self._required_by(stack, name)}

    async def events(self, stack: dict[str, Any], resource_name: str | None, query: Mapping[str, str], limit: int,
                     marker: str | None) -> list[dict[str, Any]]:
        sort_dir = (query.get("sort_dir") or "asc").lower()
        if sort_dir not in ("asc", "desc"):
            raise BadRequest("sort_dir must be asc or desc.")
        if resource_name is not None and await self.svc.read(store.get_resource, stack["id"], resource_name) is None:
            found = await self.svc.read(store.events_of, stack["id"], resource_name, None, 1, "asc", {})
            if not found:
                raise NotFound(f"The Resource ({resource_name[:80]}) could not be found in Stack {stack['name']}.")
        filters = {EVENT_FILTERS[k]: v for k, v in query.items() if k in EVENT_FILTERS and v}
        return await self.svc.read(store.events_of, stack["id"], resource_name, marker, limit, sort_dir, filters)

    async def event(self, stack: dict[str, Any], resource_name: str, event_id: str) -> dict[str, Any]:
        found = await self.svc.read(store.get_event, stack["id"], event_id)
        if found is None or found["resource_name"] != resource_name:
            raise NotFound(f"The Event ({event_id[:80]}) could not be found.")
        return found

    async def outputs(self, stack: dict[str, Any]) -> list[dict[str, Any]]:
        return (await self.detail(stack))["outputs"] or []

    async def output(self, stack: dict[str, Any], key: str) -> dict[str, Any]:
        for entry in await self.outputs(stack):
            if entry["output_key"] == key:
                return entry
        raise NotFound(f"Specified output key {key[:80]} not found.")

    def plan(self, stack: dict[str, Any], model: m.Model, current: list[dict[str, Any]]) -> dict[str, Any]:
        """Heat's resource_changes, each entry with the property changes that decide it and, for a
        replacement, the reason."""
        rows = {r["name"]: r for r in current}
        changes: dict[str, list[dict[str, Any]]] = {k: [] for k in ("added", "updated", "replaced", "deleted",
                                                                     "unchanged")}

        def entry(name: str, kind: str, row: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
            return {"resource_name": name, "resource_type": kind,
                    "resource_identity": {"stack_name": stack["name"], "stack_id": stack["id"],
                                          "tenant": stack["project_id"], "path": f"/resources/{name}"},
                    "resource_action": row["action"] if row else "INIT",
                    "resource_status": row["status"] if row else "COMPLETE",
                    "physical_resource_id": row["physical_id"] if row else "", "stack_name": stack["name"],
                    "stack_identity": {"stack_name": stack["name"], "stack_id": stack["id"],
                                       "tenant": stack["project_id"], "path": ""},
                    **extra}

        for name in model.order:
            kind, row = model.types[name], rows.get(name)
            if row is None:
                changes["added"].append(entry(name, kind, None))
                continue
            if row["type"] != kind:
                reason = f"its type changes from {row['type']} to {kind}"
                changes["replaced"].append(entry(name, kind, row, reason=reason))
                continue
            try:
                props = m.resolve_properties(model, name, rows)
            except BadRequest:
                props = dict(model.defs[name].properties or {})
            allowed, anything = PLUGINS[kind].update_allowed, PLUGINS[kind].updates_anything
            diff = [{"property": k, "old": row["properties"].get(k), "new": props.get(k),
                     "in_place": anything or k in allowed}
                    for k in sorted(set(props) | set(row["properties"])) if props.get(k) != row["properties"].get(k)]
            broken = drift.broken(row)  # a drifted row is changed back in place, a failed one replaced
            sources = m.nested_sources(model, name, props)
            nested = hot.describe_sources(row["data"].get("sources"), sources) \
                if sources is not None and sources != row["data"].get("sources") else []
            extra = {"nested_changes": nested,
                     "reason": f"its nested stack is updated: {'; '.join(nested)}"} if nested else {}
            if not diff and not broken and not nested:
                changes["unchanged"].append(entry(name, kind, row))
            elif not broken and all(d["in_place"] for d in diff) and \
                    not PLUGINS[kind].replaces(row["properties"], props, {d["property"] for d in diff}):
                changes["updated"].append(entry(name, kind, row, changes=diff, **extra))
            else:
                fixed = [d["property"] for d in diff if not d["in_place"]]
                reason = (f"{kind} cannot change {', '.join(fixed)} in place" if fixed
                          else "it failed before and is made again" if broken
                          else f"{kind} is replaced by this change")
                changes["replaced"].append(entry(name, kind, row, changes=diff, reason=reason))
        for name, row in rows.items():
            if name not in model.defs:
                changes["deleted"].append(entry(name, row["type"], row))
        return {"resource_changes": changes}

"""The engine: drives a stack's action (create, update, delete, rollback) to its end.

Rules (what makes it resumable):
- every step is a command: a resource goes IN_PROGRESS (with the properties it is being given)
  before the cloud is asked, learns its physical id as soon as it has one, and goes COMPLETE or
  FAILED after; the stack's own status changes are commands too; each leaves Heat's event;
- the engine holds no state of its own: ``drive`` reads the stack's row and its resources' rows
  and converges them towards the stack's template (or towards nothing, for a delete). So a node
  that restarts calls ``drive`` again for each stack it was running and the work continues:
  a resource caught IN_PROGRESS is found by its tag (``Plugin.find``) instead of made twice;
- resources are made in dependency order, independent ones at once; deleted in reverse, one at
  a time; an update changes in place what its type allows and replaces the rest (the old one
  deleted first, then the new made), then deletes what the template dropped.

Stack transitions (action, status):
  CREATE IN_PROGRESS → CREATE COMPLETE | CREATE FAILED | ROLLBACK IN_PROGRESS (rollback asked)
  UPDATE IN_PROGRESS → UPDATE COMPLETE | UPDATE FAILED | ROLLBACK IN_PROGRESS
  ROLLBACK IN_PROGRESS → ROLLBACK COMPLETE | ROLLBACK FAILED
  DELETE IN_PROGRESS → (the rows purged) | DELETE FAILED
  SUSPEND / RESUME / CHECK IN_PROGRESS → COMPLETE | FAILED (each resource in turn; check goes on past
  a failure, to report every resource removed outside the stack)
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import trio

from cloudbox.errors import CloudboxError
from cloudbox.orchestration import commands as c
from cloudbox.orchestration import drift
from cloudbox.orchestration import model as m
from cloudbox.orchestration import store
from cloudbox.orchestration.resources import CONFIG_TYPES, PLUGINS, Context, ResourceFailed

if TYPE_CHECKING:
    from cloudbox.orchestration.service import OrchestrationService

log = logging.getLogger("cloudbox.orchestration")

STATE_CHANGED = "state changed"


def failure_text(exc: BaseException) -> str:
    kind = type(exc).__name__ if not isinstance(exc, ResourceFailed) else "ResourceFailed"
    message = exc.message if isinstance(exc, CloudboxError) else str(exc)
    return f"{kind}: {message}"


class Engine:
    def __init__(self, svc: OrchestrationService) -> None:
        self.svc = svc
        self.scopes: dict[str, trio.CancelScope] = {}  # stack id -> the drive in progress
        self.ended: dict[str, trio.Event] = {}
        self.models: dict[str, m.Model | None] = {}  # stack id -> the model its drive converges to

    # --- plumbing --------------------------------------------------------------------------------
    async def _rows(self, stack_id: str) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in await self.svc.read(store.resources_of, stack_id)}

    async def _resource(self, stack: dict[str, Any], name: str, row_id: str, kind: str, action: str, status: str,
                        reason: str = STATE_CHANGED, event: bool = True, **changes: Any) -> dict[str, Any]:
        return await self.svc.propose(c.ResourceState(stack["id"], name, row_id, kind, action, status, reason,
                                                      self.svc.now(), str(uuid.uuid4()) if event else "",
                                                      changes or None))

    async def _stack(self, stack: dict[str, Any], action: str, status: str, reason: str,
                     expect: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
        return await self.svc.propose(c.StackState(stack["id"], action, status, reason, self.svc.now(),
                                                   str(uuid.uuid4()), expect, changes or None))

    def _context(self, api: Any, stack: dict[str, Any], row: dict[str, Any],
                 rows: dict[str, dict[str, Any]], props: dict[str, Any] | None = None) -> Context:
        configs = {r["physical_id"]: r["data"].get("config", "") for r in rows.values()
                   if r["type"] in CONFIG_TYPES and r["physical_id"]}
        async def peer(physical_id: str) -> dict[str, Any] | None:
            found = await self.svc.read(store.resource_by_physical_id, physical_id)
            return found if found is not None and found["stack_id"] == stack["id"] else None

        data = {k: v for k, v in row["data"].items() if k != drift.INTENDED}  # an action's write ends a drift
        model = self.models.get(stack["id"])
        return Context(api, stack, row["name"], row["id"], row["physical_id"], data, configs, peer,
                       self.svc, m.nested_template(model, row["name"]),
                       dict(model.files) if model is not None else dict(stack.get("files") or {}),
                       m.nested_sources(model, row["name"], props), m.child_environment(model))

    # --- one stack ------------------------------------------------------------------------------
    def start(self, nursery: trio.Nursery, stack_id: str) -> None:
        """Drive the stack in the background (the service's nursery); one drive per stack."""
        if stack_id in self.scopes:
            return
        scope = trio.CancelScope()
        self.scopes[stack_id], self.ended[stack_id] = scope, trio.Event()

        async def run() -> None:
            try:
                with scope:
                    await self.drive(stack_id)
            except Exception:  # one stack's fault never ends the service (STYLE.md item 12)
                log.exception("stack drive failed", extra={"stack_id": stack_id})
            finally:
                self.scopes.pop(stack_id, None)
                self.models.pop(stack_id, None)
                self.ended.pop(stack_id).set()

        nursery.start_soon(run)

    async def stop(self, stack_id: str) -> None:
        """Cancel the drive of a stack (a delete while it was being made) and wait for its end."""
        scope, ended = self.scopes.get(stack_id), self.ended.get(stack_id)
        if scope is not None and ended is not None:
            scope.cancel()
            await ended.wait()

    async def drive(self, stack_id: str) -> None:
        stack = await self.svc.read(store.get_stack, stack_id)
        if stack is None or stack["status"] != "IN_PROGRESS":
            return
        action = stack["action"]
        try:
            api = await self.svc.api_for(stack)
        except CloudboxError as exc:  # the owner lost its roles, or the project went
            await self._stack(stack, action, "FAILED", f"{action} failed: the stack's owner cannot act now "
                                                       f"({exc.message})")
            return
        if action == "DELETE":
            await self._delete_stack(api, stack)
            return
        if action in ("SUSPEND", "RESUME", "CHECK"):
            await self._each(api, stack, action)
            return
        target = stack["previous"] if action == "ROLLBACK" else stack
        try:
            model = self.svc.model_of(target, stack)
        except CloudboxError as exc:  # the stored template no longer builds (a resource type gone)
            await self._stack(stack, action, "FAILED", f"{action} aborted: {exc.message}")
            return
        self.models[stack_id] = model
        failures: list[str] = []
        timeout = (stack["timeout_mins"] or 0) * 60 or float("inf")
        with trio.move_on_after(timeout) as timer:
            if action == "ADOPT":
                failures = await self._adopt(api, stack, model)
            else:
                failures = await self._converge(api, stack, model)
            if not failures:
                failures = await self._delete_dropped(api, stack, model)
        if timer.cancelled_caught:
            failures.append(f"{action} timed out")
        if failures:
            await self._failed(stack, action, failures[0])
            return
        await self._refresh_attributes(api, stack, model)
        changes: dict[str, Any] = {}
        if action == "ROLLBACK" and stack["previous"].get("template"):
            changes = {k: stack["previous"][k] for k in ("template", "environment", "files", "parameters")}
            changes["previous"] = {}
        reason = f"Stack {action} completed successfully"
        await self._stack(stack, action, "COMPLETE", reason, (f"{action}_IN_PROGRESS",), **changes)

    async def _failed(self, stack: dict[str, Any], action: str, reason: str) -> None:
        if action in ("CREATE", "UPDATE") and not stack["disable_rollback"]:
            await self._stack(stack, action, "FAILED", reason)
            rollback: dict[str, Any] = {}
            if action == "CREATE":  # rolling back a create is deleting what it made
                rollback = {"previous": {"template": {}, "environment": {}, "files": {}, "parameters": {}}}
            stack = await self._stack(stack, "ROLLBACK", "IN_PROGRESS", reason, **rollback)
            await self.drive(stack["id"])
            return
        await self._stack(stack, action, "FAILED", reason if action != "ROLLBACK" else f"Rollback failed: {reason}")

    # --- create and update: converge the rows towards the model ------------------------------------
    async def _converge(self, api: Any, stack: dict[str, Any], model: m.Model | None) -> list[str]:
        if model is None:
            return []
        done = {name: trio.Event() for name in model.order}
        failed: list[str] = []

        async def one(name: str) -> None:
            try:
                for dependency in model.defs[name].depends_on:
                    if dependency in done:
                        await done[dependency].wait()
                if failed:
                    return
                await self._converge_one(api, stack, model, name)
            except (CloudboxError, ResourceFailed) as exc:
                failed.append(f"Resource {stack['action']} failed: {failure_text(exc)}")
            except Exception as exc:  # a plugin's bug fails its stack, not the node
                log.exception("resource action failed", extra={"stack_id": stack["id"], "resource": name})
                failed.append(f"Resource {stack['action']} failed: {type(exc).__name__}: {exc}")
            finally:
                done[name].set()

        async with trio.open_nursery() as nursery:
            for name in model.order:
                nursery.start_soon(one, name)
        return failed

    async def _converge_one(self, api: Any, stack: dict[str, Any], model: m.Model, name: str) -> None:
        rows = await self._rows(stack["id"])
        kind = model.types[name]
        plugin = PLUGINS[kind]
        props = m.resolve_properties(model, name, rows)
        row = rows.get(name)
        if row is not None and row["action"] == "DELETE":  # a replacement cut short: finish the delete
            await self._delete_one(api, stack, row, rows)
            row = None
        if row is not None and row["action"] == "CREATE" and row["status"] == "IN_PROGRESS":
            await self._create(api, stack, name, kind, props, rows, row)
            return
        if row is None:
            plugin.check(name, props)
            await self._create(api, stack, name, kind, props, rows, None)
            return
        changed = {k for k in set(props) | set(row["properties"]) if props.get(k) != row["properties"].get(k)}
        broken = drift.broken(row)  # failed: replaced; drifted (a check's finding): changed back in place
        sources = m.nested_sources(model, name, props)  # a nested template whose text changed: its child is updated
        stale = sources is not None and sources != row["data"].get("sources")
        if row["type"] == kind and not broken and not changed and not stale:
            if row["status"] == "IN_PROGRESS":  # an update whose last step was cut short
                await self._resource(stack, name, row["id"], kind, row["action"], "COMPLETE")
            return
        if row["type"] == kind and not broken and (plugin.updates_anything or changed <= plugin.update_allowed) \
                and not plugin.replaces(row["properties"], props, changed):
            plugin.check(name, props)
            await self._resource(stack, name, row["id"], kind, "UPDATE", "IN_PROGRESS")
            ctx = self._context(api, stack, row, rows, props)
            try:
                await plugin.update(ctx, row["properties"], props, changed)
                attributes = await self._attributes(plugin, ctx)
            except (CloudboxError, ResourceFailed) as exc:
                await self._resource(stack, name, row["id"], kind, "UPDATE", "FAILED", failure_text(exc))
                raise
            await self._resource(stack, name, row["id"], kind, "UPDATE", "COMPLETE", properties=props,
                                 attributes=attributes, data=ctx.data)
            return
        plugin.check(name, props)  # replaced: the old one goes first, then the new is made
        await self._delete_one(api, stack, row, rows)
        await self._create(api, stack, name, kind, props, await self._rows(stack["id"]), None)

    async def _create(self, api: Any, stack: dict[str, Any], name: str, kind: str, props: dict[str, Any],
                      rows: dict[str, dict[str, Any]], row: dict[str, Any] | None) -> None:
        plugin = PLUGINS[kind]
        if row is None:
            row = await self._resource(stack, name, str(uuid.uuid4()), kind, "CREATE", "IN_PROGRESS",
                                       properties=props)
        ctx = self._context(api, stack, row, rows, props)
        try:
            if not ctx.physical_id:
                ctx.physical_id = await plugin.find(ctx) or ""
            if not ctx.physical_id:
                ctx.physical_id = await plugin.create(ctx, props)
            await self._resource(stack, name, row["id"], kind, "CREATE", "IN_PROGRESS", event=False,
                                 physical_id=ctx.physical_id, data=ctx.data)
            await plugin.wait(ctx)
            attributes = await self._attributes(plugin, ctx)
        except (CloudboxError, ResourceFailed) as exc:
            await self._resource(stack, name, row["id"], kind, "CREATE", "FAILED", failure_text(exc),
                                 physical_id=ctx.physical_id, data=ctx.data)
            raise
        await self._resource(stack, name, row["id"], kind, "CREATE", "COMPLETE", attributes=attributes,
                             data=ctx.data, properties=props)

    async def _attributes(self, plugin: Any, ctx: Context) -> dict[str, Any]:
        if not ctx.physical_id:
            return {}
        try:
            return await plugin.attributes(ctx)
        except CloudboxError as exc:
            log.warning("attributes unreadable", extra={"resource": ctx.name, "error": exc.message})
            return {}

    async def _refresh_attributes(self, api: Any, stack: dict[str, Any], model: m.Model | None) -> None:
        """Attributes read again at the end (a server's addresses may come after it is ACTIVE)."""
        rows = await self._rows(stack["id"])
        for name, row in rows.items():
            plugin = PLUGINS.get(row["type"])
            if plugin is None or row["status"] != "COMPLETE":
                continue
            attributes = await self._attributes(plugin, self._context(api, stack, row, rows))
            if attributes and attributes != row["attributes"]:
                await self._resource(stack, name, row["id"], row["type"], row["action"], "COMPLETE", event=False,
                                     attributes=attributes)

    # --- adopt: the rows of things that exist (adopt.py) --------------------------------------------------
    async def _adopt(self, api: Any, stack: dict[str, Any], model: m.Model | None) -> list[str]:
        entries = stack["previous"].get("adopt", {})
        if model is None:
            return []
        for name in model.order:
            rows = await self._rows(stack["id"])
            kind, row = model.types[name], rows.get(name)
            if row is not None and row["status"] == "COMPLETE":
                continue
            entry = entries.get(name, {})
            if row is None:
                row = await self._resource(stack, name, str(uuid.uuid4()), kind, "ADOPT", "IN_PROGRESS",
                                           physical_id=entry.get("resource_id", ""),
                                           data=entry.get("resource_data") or {})
            ctx = self._context(api, stack, row, rows)
            try:
                props = m.resolve_properties(model, name, rows)
                if not ctx.physical_id:
                    raise ResourceFailed(f"no resource_id was given for {name}")
                attributes = await PLUGINS[kind].attributes(ctx)
            except (CloudboxError, ResourceFailed) as exc:
                reason = failure_text(exc)
                if isinstance(exc, CloudboxError) and exc.status == 404:
                    reason = f"{kind} {ctx.physical_id} does not exist"
                await self._resource(stack, name, row["id"], kind, "ADOPT", "FAILED", reason)
                return [f"Resource ADOPT failed: {name}: {reason}"]
            await self._resource(stack, name, row["id"], kind, "ADOPT", "COMPLETE", properties=props,
                                 attributes=attributes)
        return []

    # --- suspend, resume, check: each resource in turn ------------------------------------------------
    async def _each(self, api: Any, stack: dict[str, Any], action: str) -> None:
        rows = await self._rows(stack["id"])
        order = self._delete_order(stack, rows)  # dependents first: a server suspends before its network
        if action != "SUSPEND":
            order.reverse()
        problems = []
        for name in order:
            row, plugin = rows[name], PLUGINS.get(rows[name]["type"])
            if plugin is None:
                continue
            ctx = self._context(api, stack, row, rows)
            await self._resource(stack, name, row["id"], row["type"], action, "IN_PROGRESS")
            try:
                await {"SUSPEND": plugin.suspend, "RESUME": plugin.resume, "CHECK": plugin.check_live}[action](ctx)
                if action == "CHECK" and await self._drifted(stack, row, ctx, problems):
                    continue
            except (CloudboxError, ResourceFailed) as exc:
                reason = failure_text(exc)
                if action == "CHECK" and isinstance(exc, CloudboxError) and exc.status == 404:
                    reason = f"{row['type']} {row['physical_id']} no longer exists (removed outside the stack)"
                await self._resource(stack, name, row["id"], row["type"], action, "FAILED", reason)
                problems.append(f"Resource {action} failed: {name}: {reason}")
                if action != "CHECK":
                    break
                continue
            await self._resource(stack, name, row["id"], row["type"], action, "COMPLETE")
        if problems:
            await self._stack(stack, action, "FAILED", "; ".join(problems)[:2000])
        else:
            await self._stack(stack, action, "COMPLETE", f"Stack {action} completed successfully")

    async def _drifted(self, stack: dict[str, Any], row: dict[str, Any], ctx: Context, problems: list[str]) -> bool:
        """Check: properties changed outside the stack make the resource CHECK FAILED (drift.py)."""
        found = await drift.observed(row, ctx)
        props = drift.intended(row)
        data = {k: v for k, v in row["data"].items() if k != drift.INTENDED}
        if not found:
            if drift.INTENDED in row["data"]:  # changed back outside the stack: nothing drifts now
                await self._resource(stack, row["name"], row["id"], row["type"], "CHECK", "COMPLETE",
                                     properties=props, data=data)
                return True
            return False
        reason = drift.describe(found, props, ctx)
        await self._resource(stack, row["name"], row["id"], row["type"], "CHECK", "FAILED", reason,
                             properties={**props, **found}, data={**data, drift.INTENDED: {
                                 k: props.get(k) for k in found}})
        problems.append(f"Resource CHECK failed: {row['name']}: {reason}")
        return True

    # --- delete ------------------------------------------------------------------------------------
    async def _delete_one(self, api: Any, stack: dict[str, Any], row: dict[str, Any],
                          rows: dict[str, dict[str, Any]]) -> None:
        plugin = PLUGINS.get(row["type"])
        await self._resource(stack, row["name"], row["id"], row["type"], "DELETE", "IN_PROGRESS")
        ctx = self._context(api, stack, row, rows)
        try:
            if plugin is not None and self._retained(stack, row["name"]):
                log.info("resource retained", extra={"stack_id": stack["id"], "resource": row["name"],
                                                     "physical_id": row["physical_id"]})
            elif plugin is not None:
                if not ctx.physical_id:
                    ctx.physical_id = await plugin.find(ctx) or ""
                await plugin.delete(ctx)
        except (CloudboxError, ResourceFailed) as exc:
            await self._resource(stack, row["name"], row["id"], row["type"], "DELETE", "FAILED", failure_text(exc))
            raise
        await self._resource(stack, row["name"], row["id"], row["type"], "DELETE", "COMPLETE")
        await self.svc.propose(c.RemoveResource(stack["id"], row["id"]))

    def _retained(self, stack: dict[str, Any], name: str) -> bool:
        """``deletion_policy: Retain``: the thing stays when its resource goes (by the template that
        names the resource: the one being converged to, the stack's, or the one before an update)."""
        for parts in ("model", stack, stack["previous"]):
            try:
                model = self.models.get(stack["id"]) if parts == "model" else self.svc.model_of(parts, stack)
            except CloudboxError:
                continue
            if model is not None and name in model.defs:
                return bool(model.defs[name].deletion_policy == "Retain")
        return False

    def _delete_order(self, stack: dict[str, Any], rows: dict[str, dict[str, Any]]) -> list[str]:
        """Dependents first: the reverse of the template's create order, rows it does not name
        (dropped by an update, or a template that no longer builds) newest first before them."""
        try:
            known = [n for n in self.svc.model_of(stack, stack).order if n in rows]
        except CloudboxError:
            known = []
        others = sorted((n for n in rows if n not in known), key=lambda n: rows[n]["created_at"], reverse=True)
        return others + list(reversed(known))

    async def _delete_dropped(self, api: Any, stack: dict[str, Any], model: m.Model | None) -> list[str]:
        rows = await self._rows(stack["id"])
        wanted = set(model.defs) if model is not None else set()
        dropped = {n: r for n, r in rows.items() if n not in wanted}
        for name in sorted(dropped, key=lambda n: dropped[n]["created_at"], reverse=True):
            try:
                await self._delete_one(api, stack, dropped[name], rows)
            except Exception as exc:  # noqa: BLE001 - any fault fails the stack, never the node
                return [f"Resource DELETE failed: {failure_text(exc)}"]
        return []

    async def _delete_stack(self, api: Any, stack: dict[str, Any]) -> None:
        rows = await self._rows(stack["id"])
        for name in self._delete_order(stack, rows):
            try:
                await self._delete_one(api, stack, rows[name], rows)
            except Exception as exc:  # noqa: BLE001 - any fault fails the stack, never the node
                await self._stack(stack, "DELETE", "FAILED", f"Resource DELETE failed: {failure_text(exc)}")
                return
        await self._stack(stack, "DELETE", "COMPLETE", "Stack DELETE completed successfully")
        await self.svc.propose(c.PurgeStack(stack["id"]))

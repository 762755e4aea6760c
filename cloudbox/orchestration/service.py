"""The orchestration service: the public async methods behind the Heat API, and run().

A request checks everything it can before anything is made (the template parses, the
parameters meet their constraints, the names they give exist for the caller, every resource
type is known, there is no dependency cycle) and then only records the stack's new action; the
engine (engine.py) does the work in the background, on this node, as the stack's owner
(local_api.py). ``run`` resumes the stacks this node was driving when it stopped.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from typing import Any, Awaitable, Callable, Mapping

import trio

from cloudbox import clock
from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from cloudbox.identity.core import require
from cloudbox.orchestration import commands as c
from cloudbox.orchestration import adopt, hot, lookup, store
from cloudbox.orchestration import software
from cloudbox.orchestration import model as m
from cloudbox.orchestration.engine import Engine
from cloudbox.orchestration.local_api import LocalApi, api_as
from cloudbox.orchestration.plans import Plans
from cloudbox.orchestration.service_stacks import StackQueries
from cloudbox.state.engine import StateEngine

log = logging.getLogger("cloudbox.orchestration")

TAKEOVER_TICK = 2.0  # s between looks for stacks whose runner is down (liveness reads who is up as often)
NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,254}$")
PARTS = ("template", "environment", "files", "parameters")
SIGNAL_MARGIN = 4  # signals a handle keeps beyond the count its wait conditions need (retries, late ones)
POLICY_IDLE = 5  # signals a ScalingPolicy records that scaled nothing (cooldown, a group at its bound) per scaling


def parts_of(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) or {} for k in PARTS}


class OrchestrationService:
    def __init__(self, engine: StateEngine, settings: Any, *, node_id: str, identity: Any,
                 clock_fn: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.settings = settings
        self.node_id = node_id
        self.identity = identity
        self.clock = clock_fn
        self.app: Any = None  # the node's ASGI app, set by the node once made: resources act through it
        self.host = "localhost"  # the node's host:port, for the links the APIs write
        self.running = False
        self.nursery: trio.Nursery | None = None
        self.runner = Engine(self)
        self.queries = StackQueries(self)
        self.plans = Plans(self)
        self.up_nodes: Callable[[], Awaitable[frozenset[str]]] = self._alone  # the cluster's, set by the node
        self.takeover_tick = TAKEOVER_TICK

    async def _alone(self) -> frozenset[str]:
        return frozenset({self.node_id})

    # --- plumbing -------------------------------------------------------------------------------
    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.engine.read(fn, *args)

    async def propose(self, cmd: Any) -> Any:
        return await self.engine.propose(cmd)

    def now(self) -> str:
        return clock.iso(self.clock())

    async def api_for(self, stack: Mapping[str, Any]) -> LocalApi:
        """The cloud's APIs as the stack's owner, with the roles the owner holds now."""
        return await api_as(self.identity, self.app, self.host, stack["user_id"], stack["project_id"], self.clock)

    def caller_api(self, ctx: Any) -> LocalApi:
        """The cloud's APIs as the caller of a request (names checked as the caller sees them)."""
        return LocalApi(self.app, ctx.token, self.host)

    def model_of(self, parts: Mapping[str, Any], stack: Mapping[str, Any]) -> m.Model | None:
        """The model of a stack's stored parts (None for an empty template: a rollback to nothing)."""
        if not parts.get("template"):
            return None
        return m.build(parts["template"], parts.get("environment") or None, parts.get("files"),
                       parts.get("parameters") or {}, self.pseudo(stack), validate_values=False)

    @staticmethod
    def pseudo(stack: Mapping[str, Any]) -> dict[str, str]:
        return {"stack_name": stack["name"], "stack_id": stack["id"], "project_id": stack["project_id"]}

    def require_running(self) -> None:
        if self.nursery is None or self.app is None:
            raise Unavailable("The orchestration engine is not running on this node yet.")

    def start(self, stack_id: str) -> None:
        self.require_running()
        assert self.nursery is not None
        self.runner.start(self.nursery, stack_id)

    # --- reading ----------------------------------------------------------------------------------
    async def find(self, ctx: Any, name_or_id: str) -> dict[str, Any]:
        """A stack the caller may see, by id or by name in the caller's project (Heat's 404 otherwise)."""
        stack = await self.read(store.find_stack, ctx.project_id, name_or_id)
        if stack is None or not (ctx.can_read_project(stack["project_id"]) or ctx.is_cloud_reader):
            raise NotFound(f"The Stack ({name_or_id[:80]}) could not be found.")
        return stack

    async def find_named(self, ctx: Any, name: str, stack_id: str) -> dict[str, Any]:
        """``/stacks/NAME/ID``: the stack ``ID``, whose name must be ``NAME``."""
        stack = await self.find(ctx, stack_id)
        if stack["name"] != name and stack["id"] != name:
            raise NotFound(f"The Stack ({name[:80]}/{stack_id[:80]}) could not be found.")
        return stack

    async def writable(self, ctx: Any, stack: Mapping[str, Any], rule: str) -> None:
        require(ctx.can_write_project(stack["project_id"]), rule)

    # --- create -----------------------------------------------------------------------------------
    async def _model(self, ctx: Any, body: Mapping[str, Any], pseudo: Mapping[str, str]) -> tuple[m.Model, dict]:
        """The request's parts checked whole (constraints looked up as the caller), and the parts
        as they will be stored."""
        if body.get("template_url") and not body.get("template"):
            raise BadRequest("template_url is not supported by this cloud: send the template itself "
                             "(openstack stack create -t FILE does).")
        files = body.get("files") or {}
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise BadRequest("files must map names to their text.")
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            raise BadRequest("parameters must be a map of names to values.")
        template = body.get("template")
        parsed = hot.parse_template(template, files) if template else None
        check = await lookup.prepare(self.caller_api(ctx), parsed)
        model = m.build(template, body.get("environment"), files, params, pseudo, check)
        for rname, definition in model.defs.items():
            if definition.deletion_policy == "Snapshot":
                raise BadRequest(f"resources.{rname}.deletion_policy: Snapshot is not served by this cloud: use "
                                 "Delete or Retain.")
        stored = {"template": model.template.to_dict(), "environment": model.environment.to_dict(),
                  "files": files, "parameters": dict(params)}
        return model, stored

    async def create(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        project = ctx.project_id
        if not project:
            raise Forbidden("Creating a stack needs a project-scoped token.")
        require(ctx.can_write_project(project), "stacks:create")
        self.require_running()
        name = body.get("stack_name")
        if not isinstance(name, str) or not NAME.match(name):
            raise BadRequest(f"Invalid stack name {str(name)[:60]!r}: it must start with a letter and hold only "
                             "letters, digits, _ - and . (at most 255).")
        stack_id = str(uuid.uuid4())
        adopting = body.get(adopt.KEY) is not None
        if adopting:
            body, entries = adopt.unpack(body)
        model, stored = await self._model(ctx, body, {"stack_name": name, "stack_id": stack_id,
                                                      "project_id": project})
        action, previous = "CREATE", {}
        if adopting:
            action, previous = "ADOPT", {"adopt": adopt.check(model.types, entries)}
        at = self.now()
        row = {"id": stack_id, "name": name, "project_id": project, "user_id": ctx.user_id,
               "description": model.description, "action": action, "status": "IN_PROGRESS",
               "status_reason": f"Stack {action} started", **stored, "previous": previous,
               "disable_rollback": _flag(body.get("disable_rollback", True), "disable_rollback"),
               "timeout_mins": _timeout(body.get("timeout_mins")), "tags": _tags(body.get("tags")),
               "parent_id": None, "runner": self.node_id, "created_at": at, "updated_at": None}
        stack = await self.propose(c.CreateStack(row, str(uuid.uuid4())))
        self.start(stack_id)
        return stack

    async def preview(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        """What a create would make (POST /stacks/preview): nothing is recorded."""
        require(bool(ctx.project_id) and ctx.can_write_project(ctx.project_id), "stacks:preview")
        name = str(body.get("stack_name") or "")
        if not NAME.match(name):
            raise BadRequest(f"Invalid stack name {name[:60]!r}.")
        stack_id = "None"
        model, stored = await self._model(ctx, body, {"stack_name": name, "stack_id": stack_id,
                                                      "project_id": ctx.project_id})
        stack = {"id": stack_id, "name": name, "project_id": ctx.project_id, "description": model.description,
                 "disable_rollback": _flag(body.get("disable_rollback", True), "disable_rollback"),
                 "timeout_mins": _timeout(body.get("timeout_mins")), "tags": _tags(body.get("tags")),
                 "created_at": self.now(), "updated_at": None, "parent_id": None, **stored}
        resources = []
        for rname in model.order:
            try:
                props = m.resolve_properties(model, rname, {})
            except BadRequest:
                props = dict(model.defs[rname].properties or {})
            resources.append({"resource_name": rname, "resource_type": model.types[rname], "properties": props,
                              "required_by": sorted(n for n, d in model.defs.items() if rname in d.depends_on),
                              "description": model.defs[rname].description, "metadata": {}})
        return {"stack": stack, "model": model, "resources": resources}

    # --- update -----------------------------------------------------------------------------------
    async def _update_parts(self, ctx: Any, stack: dict[str, Any], body: Mapping[str, Any],
                            patch: bool) -> tuple[m.Model, dict]:
        merged = dict(body)
        if patch:  # PATCH (--existing): what the request leaves out is kept
            if not merged.get("template"):
                merged["template"] = stack["template"]
            params = {**stack["parameters"], **(merged.get("parameters") or {})}
            cleared_names = merged.get("clear_parameters") or []
            if not isinstance(cleared_names, list) or not all(isinstance(n, str) for n in cleared_names):
                raise BadRequest("clear_parameters must be a list of parameter names.")
            for cleared in cleared_names:
                params.pop(cleared, None)
            merged["parameters"] = params
            merged["files"] = {**stack["files"], **(merged.get("files") or {})}
            stored_env = hot.parse_environment(stack["environment"] or None, merged["files"])
            sent_env = hot.parse_environment(merged.get("environment") or None, merged["files"])
            merged["environment"] = stored_env.merge(sent_env).to_dict()
        elif not merged.get("template") and not merged.get("template_url"):
            raise BadRequest("No template specified")
        model, stored = await self._model(ctx, merged, self.pseudo(stack))
        old = self.model_of(stack, stack)
        if old is not None:
            old.parameters.check_immutable(model.parameters)
        return model, stored

    async def update(self, ctx: Any, stack: dict[str, Any], body: Mapping[str, Any], patch: bool) -> None:
        await self.writable(ctx, stack, "stacks:update")
        self.require_running()
        if stack["status"] == "IN_PROGRESS":
            raise Conflict(f"Stack {stack['name']} is {stack['action']}_IN_PROGRESS: wait for it to end.")
        if stack["action"] == "DELETE":
            raise BadRequest(f"Stack {stack['name']} is being deleted.")
        model, stored = await self._update_parts(ctx, stack, body, patch)
        changes: dict[str, Any] = {**stored, "previous": parts_of(stack), "runner": self.node_id,
                                   "description": model.description}
        for key, parse in (("disable_rollback", lambda v: _flag(v, "disable_rollback")),
                           ("timeout_mins", _timeout), ("tags", _tags)):
            if key in body:
                changes[key] = parse(body[key])
        current = f"{stack['action']}_{stack['status']}"
        await self.propose(c.StackState(stack["id"], "UPDATE", "IN_PROGRESS", "Stack UPDATE started", self.now(),
                                        str(uuid.uuid4()), (current,), changes))
        self.start(stack["id"])

    async def preview_update(self, ctx: Any, stack: dict[str, Any], body: Mapping[str, Any],
                             patch: bool) -> dict[str, Any]:
        """What an update would do (PUT/PATCH .../preview), property by property: nothing changes."""
        await self.writable(ctx, stack, "stacks:preview_update")
        model, _stored = await self._update_parts(ctx, stack, body, patch)
        return self.queries.plan(stack, model, await self.read(store.resources_of, stack["id"]))

    # --- suspend, resume, check ---------------------------------------------------------------------
    async def act(self, ctx: Any, stack: dict[str, Any], body: Any) -> None:
        """POST .../actions: {"suspend": null}, {"resume": null} or {"check": null}."""
        if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in ("suspend", "resume", "check"):
            raise BadRequest("The body must be one of {\"suspend\": null}, {\"resume\": null}, {\"check\": null}.")
        action = next(iter(body)).upper()
        await self.writable(ctx, stack, f"stacks:{action.lower()}")
        self.require_running()
        current = f"{stack['action']}_{stack['status']}"
        if stack["status"] == "IN_PROGRESS":
            raise Conflict(f"Stack {stack['name']} is {current}: wait for it to end.")
        if action == "RESUME" and current != "SUSPEND_COMPLETE":
            raise BadRequest(f"Stack {stack['name']} is {current}, not SUSPEND_COMPLETE: there is nothing to resume.")
        await self.propose(c.StackState(stack["id"], action, "IN_PROGRESS", f"Stack {action} started", self.now(),
                                        str(uuid.uuid4()), (current,), {"runner": self.node_id}))
        self.start(stack["id"])

    # --- delete, abandon --------------------------------------------------------------------------
    async def delete(self, ctx: Any, stack: dict[str, Any]) -> None:
        await self.writable(ctx, stack, "stacks:delete")
        self.require_running()
        if stack["action"] == "DELETE" and stack["status"] == "IN_PROGRESS" and stack["id"] in self.runner.scopes:
            return
        await self.runner.stop(stack["id"])  # a create or update in progress stops where it is
        await self.propose(c.StackState(stack["id"], "DELETE", "IN_PROGRESS", "Stack DELETE started", self.now(),
                                        str(uuid.uuid4()), (), {"runner": self.node_id}))
        self.start(stack["id"])

    async def abandon(self, ctx: Any, stack: dict[str, Any]) -> dict[str, Any]:
        """Forget a stack, keeping what it made (DELETE .../abandon): Heat's abandon data."""
        await self.writable(ctx, stack, "stacks:abandon")
        if stack["status"] == "IN_PROGRESS":
            raise Conflict(f"Stack {stack['name']} is {stack['action']}_IN_PROGRESS: wait for it to end.")
        rows = await self.read(store.resources_of, stack["id"])
        data = {"id": stack["id"], "name": stack["name"], "action": stack["action"], "status": stack["status"],
                "template": stack["template"], "environment": stack["environment"], "files": stack["files"],
                "project_id": stack["project_id"], "stack_user_project_id": stack["project_id"],
                "resources": {r["name"]: {"name": r["name"], "type": r["type"], "resource_id": r["physical_id"],
                                          "action": r["action"], "status": r["status"], "metadata": {},
                                          "resource_data": r["data"]} for r in rows}}
        await self.propose(c.PurgeStack(stack["id"]))
        return data

    # --- nested stacks (ResourceGroup, AutoScalingGroup): stacks of their own, driven the same way --
    async def create_child(self, parent: Mapping[str, Any], name: str, template: Any,
                           params: Mapping[str, Any] | None = None, files: Mapping[str, str] | None = None,
                           environment: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A child stack of ``parent`` (its owner's, hidden from lists); the one of that name if a
        create cut short by a crash made it already. ``environment``: the parent's resource_registry
        (``child_environment``), so the child's types map as the parent's do (Heat's)."""
        found = await self.read(store.find_stack, parent["project_id"], name)
        if found is not None:
            return found
        stack_id = str(uuid.uuid4())
        model = m.build(template, dict(environment or {}) or None, files, params or {}, {
            "stack_name": name, "stack_id": stack_id, "project_id": parent["project_id"]})
        at = self.now()
        row = {"id": stack_id, "name": name, "project_id": parent["project_id"], "user_id": parent["user_id"],
               "description": model.description, "action": "CREATE", "status": "IN_PROGRESS",
               "status_reason": "Stack CREATE started", "template": model.template.to_dict(),
               "environment": dict(environment or {}),
               "files": dict(files or {}), "parameters": dict(params or {}), "previous": {}, "disable_rollback": True,
               "timeout_mins": None,
               "tags": [], "parent_id": parent["id"], "runner": self.node_id, "created_at": at, "updated_at": None}
        stack = await self.propose(c.CreateStack(row, str(uuid.uuid4())))
        self.start(stack_id)
        return stack

    async def update_child(self, child: Mapping[str, Any], template: Any, params: Mapping[str, Any] | None = None,
                           files: Mapping[str, str] | None = None,
                           environment: Mapping[str, Any] | None = None) -> None:
        """The child's new template (and parameters, files, environment: each kept when None)."""
        current = await self.read(store.must_stack, child["id"])
        files = current["files"] if files is None else files
        environment = current["environment"] if environment is None else environment
        model = m.build(template, dict(environment) or None, files, params or {}, self.pseudo(child))
        await self.runner.stop(child["id"])
        current = await self.read(store.must_stack, child["id"])
        changes = {"template": model.template.to_dict(), "previous": parts_of(current), "runner": self.node_id,
                   "files": dict(files), "environment": dict(environment)}
        if params is not None:
            changes["parameters"] = dict(params)
        await self.propose(c.StackState(child["id"], "UPDATE", "IN_PROGRESS", "Stack UPDATE started", self.now(),
                                        str(uuid.uuid4()), (), changes))
        self.start(child["id"])

    async def delete_child(self, child_id: str) -> None:
        child = await self.read(store.get_stack, child_id)
        if child is None:
            return
        if not (child["action"] == "DELETE" and child["status"] == "IN_PROGRESS" and child_id in self.runner.scopes):
            await self.runner.stop(child_id)
            await self.propose(c.StackState(child_id, "DELETE", "IN_PROGRESS", "Stack DELETE started", self.now(),
                                            str(uuid.uuid4()), (), {"runner": self.node_id}))
            self.start(child_id)

    async def wait_child(self, child_id: str, gone: bool = False) -> dict[str, Any] | None:
        """The child once its action ended (None once deleted, with ``gone``)."""
        while True:
            child = await self.read(store.get_stack, child_id)
            if child is None and gone:
                return None
            if child is None:
                raise NotFound(f"The nested stack {child_id} is gone.")
            if child["status"] != "IN_PROGRESS" and not (gone and child["status"] == "COMPLETE"):
                return child
            if child_id not in self.runner.scopes and child["runner"] == self.node_id:
                self.start(child_id)  # its drive here ended without a word: drive it again
            await trio.sleep(0.5)

    async def child_rows(self, child_id: str) -> list[dict[str, Any]]:
        return await self.read(store.resources_of, child_id)

    # --- signals ---------------------------------------------------------------------------------
    async def signal(self, stack: dict[str, Any], name: str, body: Any) -> None:
        """A signal to a resource: a WaitConditionHandle records it (its WaitCondition counts them)."""
        row = await self.read(store.get_resource, stack["id"], name)
        if row is None:
            raise NotFound(f"The Resource ({name[:80]}) could not be found in Stack {stack['name']}.")
        if row["type"] == "OS::Heat::ScalingPolicy":
            await self.scale(stack, row)
            return
        if row["type"] in software.DEPLOYMENT_TYPES:  # a server reports its outputs (software.py)
            await software.SoftwareService(self).signal(stack, row, body)
            return
        if row["type"] != "OS::Heat::WaitConditionHandle":
            raise BadRequest(f"Resource {name} ({row['type']}) does not take signals.")
        body = body if isinstance(body, dict) else {}
        status = str(body.get("status") or "SUCCESS").upper()
        if status not in ("SUCCESS", "FAILURE"):
            raise BadRequest(f"status must be SUCCESS or FAILURE, not {str(body.get('status'))[:40]!r}.")
        held = row["data"].get("signals", [])
        count = len(held)
        signal = {"status": status, "reason": str(body.get("reason") or f"Signal {count + 1} received")[:255],
                  "data": body.get("data"), "id": str(body.get("id") or count + 1)[:255]}
        limit = self._handle_limit(stack, row)
        if count >= limit and all(kept.get("id") != signal["id"] for kept in held):
            raise BadRequest(f"Request limit exceeded: {name} holds {count} signals, its bound (the count its wait "
                             f"conditions need, plus {SIGNAL_MARGIN}); a signal with the id of one it holds "
                             "replaces that one.")
        await self._propose_signal(stack["id"], name, signal, limit)

    def _handle_limit(self, stack: dict[str, Any], handle: dict[str, Any]) -> int:
        """How many distinct signals a handle keeps: the largest ``count`` of the stack's wait
        conditions naming it (read from the template, so a waiter not made yet counts), plus a margin."""
        counts = [1]
        try:
            model = self.model_of(stack, stack)
        except BadRequest:
            model = None
        rows = {handle["name"]: handle}
        for rname, kind in (model.types.items() if model is not None else ()):
            if kind != "OS::Heat::WaitCondition":
                continue
            try:
                props = m.resolve_properties(model, rname, rows)  # type: ignore[arg-type]
                if props.get("handle") == handle["physical_id"]:
                    counts.append(int(props.get("count") or 1))
            except (BadRequest, TypeError, ValueError):
                continue
        return max(counts) + SIGNAL_MARGIN

    async def _propose_signal(self, stack_id: str, name: str, signal: dict[str, Any], limit: int) -> None:
        """A signal bounded in apply too (SignalBounded), for signals racing the caller's check.  Like
        every orchestration command it needs schema 2: a cluster with a node older than that
        refuses it (503) before anything is logged."""
        await self.propose(c.SignalBounded(stack_id, name, signal, self.now(), str(uuid.uuid4()), limit))

    async def mark_unhealthy(self, stack: dict[str, Any], name: str, body: Any) -> None:
        """Heat's resource PATCH: ``mark_unhealthy`` true sets CHECK_FAILED with the reason (the next
        update replaces it); false turns a CHECK_FAILED back to CHECK_COMPLETE."""
        if not isinstance(body, dict) or "mark_unhealthy" not in body:
            raise BadRequest("Missing required parameter: mark_unhealthy")
        flag, reason = body["mark_unhealthy"], body.get("resource_status_reason", "")
        if isinstance(flag, str) and flag.strip().lower() in ("true", "false"):
            flag = flag.strip().lower() == "true"
        if not isinstance(flag, bool):
            raise BadRequest(f"Unrecognized value '{str(flag)[:40]}' for 'mark_unhealthy', acceptable values are: "
                             "'true', 'false'")
        if not isinstance(reason, str):
            raise BadRequest("resource_status_reason must be a string.")
        row = await self.read(store.get_resource, stack["id"], name)
        if row is None:
            raise NotFound(f"The Resource ({name[:80]}) could not be found in Stack {stack['name']}.")
        if row["status"] == "IN_PROGRESS" or stack["status"] == "IN_PROGRESS":
            raise Conflict(f"Resource {name} is {row['action']}_IN_PROGRESS: mark it later.")
        if flag:
            status, reason = "FAILED", reason[:255] or "state changed by resource_mark_unhealthy api"
        elif row["action"] == "CHECK" and row["status"] == "FAILED":
            status, reason = "COMPLETE", reason[:255] or "state changed by resource_mark_unhealthy api"
        else:
            return
        await self.propose(c.ResourceState(stack["id"], name, row["id"], row["type"], "CHECK", status, reason,
                                           self.now(), str(uuid.uuid4())))

    async def scale(self, stack: dict[str, Any], policy: dict[str, Any]) -> None:
        """A ScalingPolicy's signal: its group's nested stack is resized (in the background)."""
        from cloudbox.orchestration.resources import PLUGINS, Context
        from cloudbox.orchestration.resources.group import adjusted

        props = policy["properties"]
        group = await self.read(store.resource_by_physical_id, str(props.get("auto_scaling_group_id")))
        if group is None or group["stack_id"] != stack["id"] or group["status"] == "FAILED" or \
                group["type"] != "OS::Heat::AutoScalingGroup":
            raise Conflict(f"The scaling group of {policy['name']} is not ready.")
        if stack["status"] == "IN_PROGRESS" or any(s == "IN_PROGRESS" for s in (group["status"], policy["status"])):
            raise Conflict(f"Stack {stack['name']} is {stack['action']}_{stack['status']}: signal again later.")
        cooldown = float(props.get("cooldown") or 0)
        last = policy["data"].get("scaled_at")
        if last is None:  # a row from before scaled_at was kept apart
            last = next((s.get("scaled_at") for s in reversed(policy["data"].get("signals", []))
                         if s.get("scaled_at")), None)
        size = int(group["data"].get("size", 0))
        target = adjusted(size, str(props["adjustment_type"]), float(props["scaling_adjustment"]),
                          props.get("min_adjustment_step"))
        low, high = int(group["properties"].get("min_size", 0)), int(group["properties"].get("max_size", target))
        idle = ""
        if last is not None and self.clock() - float(last) < cooldown:  # Heat's cooldown: the signal is ignored
            left = int(cooldown - (self.clock() - float(last))) + 1
            idle = f"cooldown: not scaled ({left} s of {int(cooldown)} s left)"
        elif min(max(target, low), high) == size:
            idle = f"not scaled: the group is at {size} (from {low} to {high})"
        if idle:  # answered 200 as Heat's; kept only up to a bound, so a flood of them stores nothing
            if _idle_signals(policy["data"]) >= POLICY_IDLE:
                log.info("scaling signal dropped", extra={"stack_id": stack["id"], "resource": policy["name"]})
                return
            try:
                await self._propose_signal(stack["id"], policy["name"], {
                    "status": "SUCCESS", "reason": idle, "data": None, "id": ""}, POLICY_IDLE)
            except BadRequest:  # others took the bound first (apply decides)
                log.info("scaling signal dropped", extra={"stack_id": stack["id"], "resource": policy["name"]})
            return
        await self._propose_signal(stack["id"], policy["name"], {
            "status": "SUCCESS", "reason": f"scale from {size} to {target} asked", "data": None, "id": "",
            "scaled_at": self.clock()}, POLICY_IDLE)
        plugin = PLUGINS[group["type"]]
        model = self.model_of(stack, stack)
        ctx = Context(await self.api_for(stack), stack, group["name"], group["id"], group["physical_id"],
                      dict(group["data"]), stacks=self, files=dict(model.files) if model else {},
                      environment=m.child_environment(model), sources=group["data"].get("sources"))
        await plugin.resize(ctx, group["properties"], target)  # type: ignore[attr-defined]
        await self.propose(c.ResourceState(stack["id"], group["name"], group["id"], group["type"], group["action"],
                                           group["status"], f"resized to {ctx.data['size']}", self.now(),
                                           str(uuid.uuid4()), {"data": ctx.data}))
        assert self.nursery is not None
        self.nursery.start_soon(self._refresh_group, stack["id"], group["name"], ctx.data["child"])

    async def _refresh_group(self, stack_id: str, name: str, child_id: str) -> None:
        """Once a resized group's nested stack is done, its attributes (refs, size) are read again."""
        from cloudbox.orchestration.resources import PLUGINS

        try:
            await self.wait_child(child_id)
            row = await self.read(store.get_resource, stack_id, name)
            stack = await self.read(store.get_stack, stack_id)
            if row is None or stack is None:
                return
            api = await self.api_for(stack)
            ctx = self.runner._context(api, stack, row, {})
            attributes = await PLUGINS[row["type"]].attributes(ctx)
            await self.propose(c.ResourceState(stack_id, name, row["id"], row["type"], row["action"], row["status"],
                                               row["status_reason"], self.now(), "", {"attributes": attributes}))
        except Exception:  # noqa: BLE001 - stale attributes are read again at the next action
            log.exception("group attributes not refreshed", extra={"stack_id": stack_id, "resource": name})

    async def signal_by_url(self, stack_id: str, handle_id: str, signature: str, body: Any) -> None:
        """A signal to a handle's signed URL (no token: the signature is the authority)."""
        from cloudbox.orchestration.resources.wait import signature as sign

        row = await self.read(store.resource_by_physical_id, handle_id)
        stack = await self.read(store.get_stack, stack_id)
        if row is None or stack is None or row["stack_id"] != stack_id or "secret" not in row["data"] or \
                not hmac.compare_digest(sign(row["data"]["secret"], stack_id, handle_id), signature):
            raise NotFound("No such signal URL.")
        await self.signal(stack, row["name"], body)

    # --- run ----------------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self.running = True
            task_status.started()
            # The stacks this node was driving when it stopped: their work goes on from their rows.
            for stack in await self.read(store.stacks_run_by, self.node_id):
                log.info("resuming stack", extra={"stack_id": stack["id"], "action": stack["action"]})
                self.start(stack["id"])
            while True:
                try:
                    await self.take_over()
                except Exception:  # noqa: BLE001 - the next tick tries again
                    log.exception("taking over the stacks of down nodes failed")
                await trio.sleep(self.takeover_tick)

    async def take_over(self) -> list[str]:
        """Continue the stacks in progress whose runner is down (each claimed by one command: of two
        live nodes claiming one, apply gives it to the first), and stop driving those another node
        took from this one (this node was taken for down while cut off)."""
        rows = await self.read(store.stacks_in_progress)
        for row in rows:
            if row["runner"] != self.node_id and row["id"] in self.runner.scopes:
                log.warning("stack taken over by another node: stopping its drive here",
                            extra={"stack_id": row["id"], "runner": row["runner"]})
                await self.runner.stop(row["id"])
        orphans = [r for r in rows if r["runner"] != self.node_id]
        if not orphans:
            return []
        up = await self.up_nodes()
        claimed = []
        for row in orphans:
            if row["runner"] in up:
                continue
            try:
                await self.propose(c.ClaimStack(row["id"], row["runner"], self.node_id, self.now(),
                                                str(uuid.uuid4())))
            except (Conflict, NotFound):  # another node claimed it first, or it ended meanwhile
                continue
            log.info("took over a stack of a down node", extra={"stack_id": row["id"], "from_node": row["runner"]})
            claimed.append(row["id"])
            self.start(row["id"])
        return claimed


def _idle_signals(data: Mapping[str, Any]) -> int:
    """The signals a policy took that scaled nothing since it last scaled (SignalBounded keeps the
    number; the rows of SignalResource, before it, are counted)."""
    if "idle" in data:
        return int(data["idle"])
    idle = 0
    for kept in reversed(data.get("signals", [])):
        if kept.get("scaled_at"):
            break
        idle += 1
    return idle


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise BadRequest(f"{name} must be true or false, not {str(value)[:40]!r}.")


def _timeout(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"timeout_mins must be a whole number of minutes, not {str(value)[:40]!r}.") from None
    if not 0 < minutes <= 100000:
        raise BadRequest("timeout_mins must be from 1 to 100000.")
    return minutes


def _tags(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise BadRequest("tags must be a list of names (or a comma-separated text).")
    return [t.strip() for t in value]

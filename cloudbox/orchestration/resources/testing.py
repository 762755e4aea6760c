"""OS::Heat::TestResource: the resource every Heat serves for its own tests (heat-tempest-plugin
uses it). It keeps a string (attribute ``output``) and has knobs: ``fail`` (the action ends
FAILED, except a delete), ``update_replace`` (turned on by an update: replaced, not changed in
place), ``wait_secs`` and per action ``action_wait_secs`` (how long an action takes; -1 forever,
until the stack's timeout), ``attr_wait_secs`` (how long reading its attributes takes).
``client_name``/``entity_name`` (Heat polls a client while waiting, ignoring its errors) and
``constraint_prop_secs`` (a slow validation in Heat) are accepted and change nothing here.
"""

from __future__ import annotations

import math
from typing import Any

import trio

from cloudbox.errors import BadRequest
from cloudbox.orchestration.resources.base import Context, Plugin, ResourceFailed

ACTIONS = ("create", "update", "delete")
BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return BOOLEANS.get(str(value).strip().lower(), False)


def _seconds(value: Any) -> float:
    if value is None or value == "":
        return 0.0
    return float(value)


def _number_ok(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _is_function(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith(("get_", "Fn::", "Ref",
                                                                                           "str_", "list_", "map_",
                                                                                           "if", "yaql"))


class TestResource(Plugin):
    __test__ = False  # not a pytest class, whatever its name
    type = "OS::Heat::TestResource"
    description = "A resource which stores the string value that was provided (for testing)."
    properties = {"value": "string", "update_replace": "boolean", "fail": "boolean", "client_name": "string",
                  "entity_name": "string", "wait_secs": "number", "action_wait_secs": "map",
                  "attr_wait_secs": "number", "constraint_prop_secs": "number"}
    defaults = {"value": "test_string", "update_replace": False, "fail": False, "client_name": "",
                "entity_name": "", "wait_secs": 0, "attr_wait_secs": 0, "constraint_prop_secs": 0}
    update_allowed = frozenset(properties)
    attribute_names = frozenset({"show", "output"})

    def check(self, name: str, props: dict[str, Any]) -> None:
        super().check(name, props)
        for key in ("wait_secs", "attr_wait_secs", "constraint_prop_secs"):
            value = props.get(key)
            if value is not None and not isinstance(value, dict) and not _number_ok(value):
                raise BadRequest(f"resources.{name}.properties.{key}: Value '{value}' is not a number")
        waits = props.get("action_wait_secs")
        if waits is None or _is_function(waits):
            return
        if not isinstance(waits, dict):
            raise BadRequest(f"resources.{name}.properties.action_wait_secs: Value must be a map")
        for key, value in waits.items():
            if key not in ACTIONS:
                raise BadRequest(f"resources.{name}.properties.action_wait_secs: Unknown Property {key}")
            if value is not None and not isinstance(value, dict) and not _number_ok(value):
                raise BadRequest(f"resources.{name}.properties.action_wait_secs.{key}: "
                                 f"Value '{value}' is not a number")

    def replaces(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> bool:
        return "update_replace" in changed and _flag(new.get("update_replace"))

    @staticmethod
    def wait_secs(props: dict[str, Any], action: str) -> float:
        """The action's own wait if set, else the global ``wait_secs``."""
        own = (props.get("action_wait_secs") or {}).get(action)
        return _seconds(own if own is not None else props.get("wait_secs"))

    async def _effort(self, ctx: Context, props: dict[str, Any], action: str) -> None:
        secs = self.wait_secs(props, action)
        if secs < 0:
            await trio.sleep_forever()  # until the stack's timeout or delete cancels it
        await trio.sleep(secs)
        if _flag(props.get("fail")) and action != "delete":
            raise ResourceFailed(f"Test Resource failed {ctx.name}")

    def _keep(self, ctx: Context, props: dict[str, Any]) -> None:
        ctx.data["delete_wait_secs"] = self.wait_secs(props, "delete")
        ctx.data["attr_wait_secs"] = _seconds(props.get("attr_wait_secs"))

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        self._keep(ctx, props)
        if not _flag(props.get("fail")):
            ctx.data["value"] = str(props.get("value", self.defaults["value"]))
        await self._effort(ctx, props, "create")
        return ctx.physical_name

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        self._keep(ctx, new)
        if "value" in changed and new.get("value"):
            if not _flag(new.get("fail")):
                ctx.data["value"] = str(new["value"])
            await self._effort(ctx, new, "update")
        elif _flag(new.get("fail")):  # Heat's update with no new value fails at once too
            raise ResourceFailed(f"Test Resource failed {ctx.name}")

    async def delete(self, ctx: Context) -> None:
        secs = _seconds(ctx.data.get("delete_wait_secs"))
        if secs < 0:
            await trio.sleep_forever()
        await trio.sleep(secs)

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        await trio.sleep(max(0.0, _seconds(ctx.data.get("attr_wait_secs"))))
        value = ctx.data.get("value")
        return {"output": value, "show": {"id": ctx.physical_id, "value": value}}


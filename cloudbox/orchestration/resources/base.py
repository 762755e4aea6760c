"""What every resource plugin is, and what it is handed.

A plugin turns a resource's resolved properties into calls on the cloud's public APIs, made as
the stack's owner (``Context.api``). Its contract, which makes a create resumable after a crash:
- ``create`` tags what it makes with ``Context.tag`` (unique to the resource row), so that
  ``find`` can adopt a thing made just before a crash instead of making a second one;
- ``wait`` returns once the thing is ready (or raises with the cloud's reason);
- ``delete`` is idempotent: a thing already gone is success;
- ``attributes`` reads what ``get_attr`` may ask, stored in the resource's row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, ClassVar

import trio

from cloudbox.errors import BadRequest, NotFound
from cloudbox.orchestration.local_api import LocalApi

POLL = 0.5  # seconds between reads while waiting for a thing to be ready (in-process, cheap)
WAIT = 1800.0  # seconds a resource may take to become ready before it fails
UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


class ResourceFailed(Exception):
    """A resource action failed: the reason becomes the resource's and the stack's status reason."""


async def _no_peer(physical_id: str) -> dict[str, Any] | None:
    return None


@dataclass
class Context:
    api: LocalApi
    stack: dict[str, Any]  # the stack's row
    name: str  # the resource's name in the template
    row_id: str  # the resource row's id: the tag of what it makes
    physical_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # what the plugin keeps between actions
    configs: dict[str, str] = field(default_factory=dict)  # physical id -> config of the stack's configs
    peer: Callable[[str], Awaitable[dict[str, Any] | None]] = _no_peer  # another resource's row, by physical id
    stacks: Any = None  # the orchestration service, for nested stacks (create_child, update_child...)
    template: str | None = None  # a nested template's text (its type named a file sent with the stack)
    files: dict[str, str] = field(default_factory=dict)  # the files of the template being converged to
    sources: dict[str, Any] | None = None  # a nested template's fingerprint (hot.nested_sources)
    environment: dict[str, Any] = field(default_factory=dict)  # what a child stack inherits (its registry)

    @property
    def tag(self) -> str:
        return f"heat-{self.row_id}"

    @property
    def physical_name(self) -> str:
        """Heat's generated name of a thing whose template gives none: stack-resource-suffix."""
        return f"{self.stack['name']}-{self.name}-{self.row_id[:12]}"[:255]


class Plugin:
    member_type_key: ClassVar[str] = ""  # a group's property whose ``type`` its members are (nested sources)

    type: ClassVar[str] = ""
    description: ClassVar[str] = ""
    properties: ClassVar[dict[str, str]] = {}  # name -> Heat's property type (for resource_types)
    defaults: ClassVar[dict[str, Any]] = {}  # name -> Heat's default (shown by resource_types)
    required: ClassVar[frozenset[str]] = frozenset()
    update_allowed: ClassVar[frozenset[str]] = frozenset()  # changed in place; any other change replaces
    updates_anything: ClassVar[bool] = False  # every property changes in place (a nested stack's parameters)
    attribute_names: ClassVar[frozenset[str]] = frozenset({"show"})

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        """Make the thing; return its physical id (ctx.data may be filled)."""
        raise NotImplementedError

    async def find(self, ctx: Context) -> str | None:
        """The physical id of what a create cut short by a crash made, if anything."""
        return None

    async def wait(self, ctx: Context) -> None:
        return None

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        raise ResourceFailed(f"{self.type} cannot be updated in place")

    def replaces(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> bool:
        """An update that must replace even though every changed property is in update_allowed."""
        return False

    async def delete(self, ctx: Context) -> None:
        return None

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        return {}

    async def suspend(self, ctx: Context) -> None:
        return None

    async def resume(self, ctx: Context) -> None:
        return None

    async def check_live(self, ctx: Context) -> None:
        """Stack check: the thing still exists (NotFound when it was removed outside the stack)."""
        if ctx.physical_id:
            await self.attributes(ctx)

    def check(self, name: str, props: dict[str, Any]) -> None:
        """Refuse properties a create would fail on, before anything is made (HotError-like 400)."""
        unknown = sorted(set(props) - set(self.properties))
        if unknown:
            raise BadRequest(f"resources.{name}.properties: Unknown Property {unknown[0]}")
        for key in sorted(self.required):
            if props.get(key) in (None, ""):
                raise BadRequest(f"resources.{name}.properties: Property {key} not assigned")


async def wait_for(read: Any, ready: Any, failed: Any, what: str, timeout: float = WAIT) -> dict[str, Any]:
    """Poll ``read()`` until ``ready(row)``; ``failed(row)`` (a reason) or a timeout raise."""
    with trio.move_on_after(timeout):
        while True:
            row = await read()
            reason = failed(row)
            if reason:
                raise ResourceFailed(f"{what} went to error: {reason}")
            if ready(row):
                return row
            await trio.sleep(POLL)
    raise ResourceFailed(f"{what} was not ready after {int(timeout)} s")


async def find_neutron(api: LocalApi, collection: str, singular: str, name_or_id: str) -> dict[str, Any]:
    """A Neutron thing by id or name (Heat resolves names to ids for the user)."""
    if UUID.match(name_or_id):
        try:
            return (await api.get(f"/network/v2.0/{collection}/{name_or_id}"))[singular]
        except NotFound:
            pass
    found = (await api.get(f"/network/v2.0/{collection}", name=name_or_id))[collection]
    if len(found) > 1:
        raise BadRequest(f"Multiple {singular} matches found for name '{name_or_id}', use an ID to be more specific.")
    if not found:
        raise NotFound(f"Unable to find {singular} with name or id '{name_or_id}'")
    return found[0]


async def by_tag(api: LocalApi, collection: str, tag: str) -> str | None:
    found = (await api.get(f"/network/v2.0/{collection}", tags=tag))[collection.replace("-", "_")]
    return found[0]["id"] if found else None


def dropped_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}

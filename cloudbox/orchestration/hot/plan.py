"""The plan of an update: what is added, updated in place, replaced, deleted.

A resource is replaced when its type changes or when a property changes that its
type cannot update in place (``update_allowed(type)`` names those it can; ``"*"``
means all). Changes of metadata, update_policy, deletion_policy or dependencies
alone are in-place updates. Each changed resource carries its property changes and,
when replaced, the reason, so ``--dry-run`` can show them one by one.

Properties are compared as given; pass ``old_ctx``/``new_ctx`` (Resolvers) to compare
them resolved, so a ``get_param`` whose value changed is seen as a change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudbox.orchestration.hot.dependencies import references
from cloudbox.orchestration.hot.errors import HotError
from cloudbox.orchestration.hot.functions import resolve
from cloudbox.orchestration.hot.template import ResourceDefinition
from cloudbox.orchestration.hot.versions import LATEST

_MISSING: Any = object()


@dataclass(frozen=True)
class PropertyChange:
    name: str
    old: Any  # None when the property was not set
    new: Any
    in_place: bool  # False: this change forces a replacement
    cause: str | None = None  # set when the value changes because a resource it names is replaced


@dataclass
class Plan:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # in place
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changes: dict[str, list[PropertyChange]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # why each replaced one is replaced

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added), "updated": list(self.updated),
            "replaced": list(self.replaced), "deleted": list(self.deleted),
            "unchanged": list(self.unchanged),
            "changes": {
                name: [{"property": c.name, "old": c.old, "new": c.new, "in_place": c.in_place,
                        **({"cause": c.cause} if c.cause else {})}
                       for c in changes]
                for name, changes in self.changes.items()
            },
            "reasons": dict(self.reasons),
        }


def diff(old: Mapping[str, ResourceDefinition], new: Mapping[str, ResourceDefinition],
         update_allowed: Callable[[str], set[str]], *, old_ctx: Any = None,
         new_ctx: Any = None, restricted_actions: Callable[[str], set[str]] | None = None) -> Plan:
    """The plan from ``old`` to ``new`` definitions.

    ``restricted_actions(name)`` (an Environment's ``restricted_actions``) names what the
    environment forbids for a resource; a plan that would update or replace it is a 400,
    with Heat's wording.
    """
    plan = _diff(old, new, update_allowed, old_ctx, new_ctx)
    if restricted_actions is not None:
        for name in plan.replaced:
            if "replace" in restricted_actions(name):
                raise HotError("replace is restricted for resource.", ["resources", name])
        for name in plan.updated:
            if "update" in restricted_actions(name):
                raise HotError("update is restricted for resource.", ["resources", name])
    return plan


def _diff(old: Mapping[str, ResourceDefinition], new: Mapping[str, ResourceDefinition],
          update_allowed: Callable[[str], set[str]], old_ctx: Any, new_ctx: Any) -> Plan:
    plan = Plan()
    for name in old:
        if name not in new:
            plan.deleted.append(name)
    for name, definition in new.items():
        if name not in old:
            plan.added.append(name)
            continue
        before = old[name]
        if before.type != definition.type:
            plan.replaced.append(name)
            plan.reasons[name] = f"its type changed from {before.type} to {definition.type}"
            continue
        old_props = _props(before, old_ctx)
        new_props = _props(definition, new_ctx)
        allowed = update_allowed(definition.type)
        changes = []
        for key in sorted(set(old_props) | set(new_props)):
            was, now = old_props.get(key, _MISSING), new_props.get(key, _MISSING)
            if was == now:
                continue
            changes.append(PropertyChange(key, None if was is _MISSING else was,
                                          None if now is _MISSING else now,
                                          in_place="*" in allowed or key in allowed))
        if changes:
            plan.changes[name] = changes
        fixed = [c.name for c in changes if not c.in_place]
        if fixed:
            plan.replaced.append(name)
            listed = ", ".join(fixed)
            plural = "ies" if len(fixed) > 1 else "y"
            plan.reasons[name] = f"propert{plural} {listed} of {definition.type} cannot be updated in place"
        elif changes or _other_changes(before, definition):
            plan.updated.append(name)
        else:
            plan.unchanged.append(name)
    _cascade(plan, old, new, update_allowed, old_ctx, new_ctx)
    return plan


def _cascade(plan: Plan, old: Mapping[str, ResourceDefinition], new: Mapping[str, ResourceDefinition],
             update_allowed: Callable[[str], set[str]], old_ctx: Any, new_ctx: Any) -> None:
    """A property naming a replaced resource (get_resource, get_attr) gets a new value too:
    in place when its type allows, else that resource is replaced as well, and so on."""
    replaced = set(plan.replaced)
    moved = True
    while moved:
        moved = False
        for name in [*plan.updated, *plan.unchanged]:
            definition = new[name]
            allowed = update_allowed(definition.type)
            known = {c.name for c in plan.changes.get(name, [])}
            for key, value in definition.properties.items():
                targets = sorted({t for _, t, _ in references(value, LATEST)} & replaced)
                if key in known or not targets:
                    continue
                change = PropertyChange(
                    key, _props(old[name], old_ctx).get(key), _props(definition, new_ctx).get(key),
                    in_place="*" in allowed or key in allowed,
                    cause=f"{', '.join(targets)} {'is' if len(targets) == 1 else 'are'} replaced")
                plan.changes.setdefault(name, []).append(change)
                known.add(key)
            changes = plan.changes.get(name, [])
            fixed = [c for c in changes if not c.in_place]
            if fixed:
                _move(plan, name, plan.replaced)
                first = fixed[0]
                why = f"refers to what is replaced ({first.cause})" if first.cause else "cannot be updated in place"
                plan.reasons[name] = f"property {first.name} of {definition.type} {why}"
                replaced.add(name)
                moved = True
            elif changes and name in plan.unchanged:
                _move(plan, name, plan.updated)


def _move(plan: Plan, name: str, target: list[str]) -> None:
    for group in (plan.updated, plan.unchanged):
        if name in group:
            group.remove(name)
    if name not in target:
        target.append(name)


def _props(definition: ResourceDefinition, ctx: Any) -> dict[str, Any]:
    if ctx is None:
        return definition.properties
    return resolve(definition.properties, ctx, ["resources", definition.name, "properties"])


def _other_changes(old: ResourceDefinition, new: ResourceDefinition) -> bool:
    return (old.metadata != new.metadata or old.update_policy != new.update_policy
            or old.deletion_policy != new.deletion_policy or old.depends_on != new.depends_on)

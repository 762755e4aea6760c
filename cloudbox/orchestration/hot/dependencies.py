"""Dependencies between resources, and the order to create (and delete) them.

A resource depends on every resource its properties or metadata name through
``get_resource`` or ``get_attr`` (only in the branch an ``if`` takes), and on those
in its ``depends_on``. ``order`` is a topological sort that keeps the template's
order among resources that could go in either order, so a plan reads like the
template; ``levels`` groups resources that can be made in parallel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from cloudbox.orchestration.hot.errors import HotError
from cloudbox.orchestration.hot.functions import function_call, get_attr_parts
from cloudbox.orchestration.hot.versions import Version


class HasDependencies(Protocol):
    name: str
    depends_on: frozenset[str]


def references(value: Any, version: Version, choose: Callable[[Any], bool | None] | None = None,
               name_of: Callable[[Any], Any] | None = None,
               branches: bool = True) -> list[tuple[str, str, Any]]:
    """Every ``(function, resource, attribute)`` that ``value`` refers to, in order.

    ``choose(condition)`` answers an ``if``'s condition (None: unknown, both
    branches count); ``name_of(arg)`` resolves a resource name written as a
    function (``get_resource: {get_param: x}``), None when it cannot. With
    ``branches=False`` nothing inside an ``if``'s branches counts.
    """
    found: list[tuple[str, str, Any]] = []

    def name(arg: Any) -> str | None:
        if isinstance(arg, str):
            return arg
        if name_of is not None:
            try:
                resolved = name_of(arg)
            except HotError:
                return None
            return resolved if isinstance(resolved, str) else None
        return None

    def walk(node: Any) -> None:
        call = function_call(node, version)
        if call is not None:
            fn, args = call
            if fn == "get_resource" or fn == "Ref":
                target = name(args)
                if target is not None:
                    found.append((fn, target, None))
                return
            if fn == "get_attr" and isinstance(args, list):
                try:
                    resource, attribute, _ = get_attr_parts(args, version)
                except (TypeError, ValueError):
                    walk(args)
                    return
                target = name(resource)
                if target is not None:
                    found.append((fn, target, attribute))
                walk(args[1:])
                return
            if fn == "if" and not branches:
                return
            if fn == "if" and isinstance(args, list) and len(args) in (2, 3) and choose is not None:
                taken = choose(args[0])
                if taken is True:
                    walk(args[1])
                    return
                if taken is False:
                    if len(args) == 3:
                        walk(args[2])
                    return
            walk(args)
            return
        if isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return found


def order(defs: Mapping[str, HasDependencies]) -> list[str]:
    """Resource names in a create order (dependencies first); a 400 on a cycle.

    The delete order is the reverse.
    """
    return [name for level in _levels(defs, flat=True) for name in level]


def levels(defs: Mapping[str, HasDependencies]) -> list[list[str]]:
    """Resource names in waves: each wave depends only on earlier ones (parallel within)."""
    return _levels(defs, flat=False)


def _levels(defs: Mapping[str, HasDependencies], flat: bool) -> list[list[str]]:
    position = {name: i for i, name in enumerate(defs)}
    for name, definition in defs.items():
        for dep in definition.depends_on:
            if dep not in defs:
                raise HotError(f'The specified reference "{dep}" (in {name}) is incorrect.',
                               ["resources", name])
    waiting = {name: set(d.depends_on) - {name} for name, d in defs.items()}
    for name, d in defs.items():
        if name in d.depends_on:
            raise HotError(f"Circular Dependency Found: {name}: {{{name}}}", ["resources", name])
    done: set[str] = set()
    out: list[list[str]] = []
    while waiting:
        ready = sorted((n for n, deps in waiting.items() if deps <= done), key=position.__getitem__)
        if not ready:
            raise HotError(f"Circular Dependency Found: {_cycle_text(waiting)}")
        if flat:
            ready = ready[:1]  # one at a time keeps the template's order among equals
        out.append(ready)
        for name in ready:
            done.add(name)
            del waiting[name]
    return out


def _cycle_text(waiting: Mapping[str, set[str]]) -> str:
    """One cycle among ``waiting``, as ``a -> b -> a``."""
    start = next(iter(sorted(waiting)))
    path: list[str] = []
    node = start
    while node not in path:
        path.append(node)
        node = sorted(d for d in waiting[node] if d in waiting)[0]
    cycle = path[path.index(node):] + [node]
    return " -> ".join(cycle)


def dependents(defs: Mapping[str, HasDependencies], names: Iterable[str]) -> set[str]:
    """Every resource that depends, directly or not, on one of ``names``."""
    reverse: dict[str, set[str]] = {n: set() for n in defs}
    for name, definition in defs.items():
        for dep in definition.depends_on:
            reverse.setdefault(dep, set()).add(name)
    found: set[str] = set()
    todo = list(names)
    while todo:
        for child in reverse.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found

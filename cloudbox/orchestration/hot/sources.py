"""What a nested template is made of, to see it change when its properties do not.

A template resource (a type naming a template sent in ``files``) is a child stack of that
template; the child also reads, through ``get_file`` and through its own nested types, other
files sent with the stack (also types its inherited resource_registry maps to templates).
``sources(name, files, resolve_type)`` fingerprints the template and every file it
reaches (transitively), so that an update whose files changed only there updates the child, and
one that changed other files does not. ``describe(old, new)`` says what changed, for the plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from cloudbox.orchestration.hot.environment import is_template_name
from cloudbox.orchestration.hot.errors import HotError
from cloudbox.orchestration.hot.loader import load_document

Sources = dict[str, Any]  # {"template": name, "files": {name: digest}}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _references(data: Any, files: Mapping[str, str], found: set[str], resolve_type: Callable[[str], str]) -> list[str]:
    """The names in ``files`` that ``data`` names by get_file or as a resource type (nested templates,
    also through the resource_registry: ``resolve_type``)."""
    nested: list[str] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "type" and isinstance(value, str):
                    value = resolve_type(value)
                if isinstance(value, str) and value in files and value not in found and (
                        key == "get_file" or (key == "type" and is_template_name(value))):
                    found.add(value)
                    if key == "type":
                        nested.append(value)
                elif not isinstance(value, str):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return nested


def _same(type_name: str) -> str:
    return type_name


def sources(name: str, files: Mapping[str, str], resolve_type: Callable[[str], str] = _same) -> Sources:
    """The fingerprint of the template ``name`` (a key of ``files``) and of every file it reaches
    (``resolve_type``: the resource_registry the nested stacks inherit)."""
    found = {name}
    todo = [name]
    while todo:
        current = todo.pop()
        try:
            document = load_document(files[current], "template")
        except HotError:  # a file that does not parse is still one whose text counts
            continue
        todo.extend(_references(document, files, found, resolve_type))
    return {"template": name, "files": {n: digest(files[n]) for n in sorted(found)}}


def describe(old: Sources | None, new: Sources) -> list[str]:
    """What changed between two fingerprints, one line each ([] when nothing did)."""
    if not old:
        return [f"template {new['template']} (its sources were not recorded before)"]
    lines = []
    if old.get("template") != new["template"]:
        lines.append(f"template {new['template']} replaces {old.get('template')}")
    before, after = old.get("files") or {}, new["files"]
    for name in sorted(set(before) | set(after)):
        if name not in before:
            lines.append(f"{name} is used")
        elif name not in after:
            lines.append(f"{name} is no longer used")
        elif before[name] != after[name]:
            lines.append(f"{name} changed")
    return lines

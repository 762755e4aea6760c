"""Adopt: ``POST /stacks`` with ``adopt_stack_data`` (what abandon answered; python-heatclient's
``stack adopt`` sends the file's text) makes a stack of things that already exist: nothing is
created, each resource takes the ``resource_id`` (and ``resource_data``) given for it.

Everything is checked before anything is recorded: the data parses, every resource of the
template has an entry of its type with a resource id. The entries travel in the stack's
``previous`` (``{"adopt": {name: {"resource_id", "resource_data"}}}``: an adopt has no rollback),
so a node that continues the adopt after a crash still has them. The engine then records each
resource ADOPT COMPLETE once its thing is read (its attributes; a thing that is gone fails it).
"""

from __future__ import annotations

from typing import Any, Mapping

from cloudbox.errors import BadRequest

KEY = "adopt_stack_data"


def unpack(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The create's body with the template, environment and files of the adopt data where the
    request sends none, and the resources' entries by name."""
    data = body[KEY]
    if isinstance(data, str):  # the file's text: JSON, or YAML (which python-heatclient reads it as)
        import yaml  # at the first use: PyYAML is 0.7 MiB of a node's idle memory (issue 14)

        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise BadRequest(f"{KEY} is neither JSON nor YAML: {str(exc)[:200]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("resources"), dict):
        raise BadRequest(f"{KEY} must be an object with resources (what abandon answered).")
    merged = {k: v for k, v in body.items() if k != KEY}
    for key in ("template", "environment", "files"):
        if not merged.get(key) and data.get(key):
            merged[key] = data[key]
    if not merged.get("template"):
        raise BadRequest(f"{KEY} has no template, and the request sends none.")
    entries = {}
    for name, entry in data["resources"].items():
        if not isinstance(entry, dict):
            raise BadRequest(f"{KEY}.resources.{str(name)[:80]} must be an object.")
        entries[str(name)] = entry
    return merged, entries


def check(types: Mapping[str, str], entries: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every resource of the template has an entry of its type with a resource id: what the engine
    keeps of each."""
    kept = {}
    for name, kind in types.items():
        entry = entries.get(name)
        if entry is None or not entry.get("resource_id"):
            raise BadRequest(f"{KEY}.resources.{name[:80]}: no resource_id for the template's resource {name[:80]} "
                             "(an adopted stack is made of things that exist).")
        if entry.get("type") not in (None, kind):
            raise BadRequest(f"{KEY}.resources.{name[:80]}: its type is {str(entry['type'])[:80]}, the template's "
                             f"is {kind}.")
        data = entry.get("resource_data") or {}
        if not isinstance(data, dict):
            raise BadRequest(f"{KEY}.resources.{name[:80]}.resource_data must be an object.")
        kept[name] = {"resource_id": str(entry["resource_id"]), "resource_data": data}
    return kept

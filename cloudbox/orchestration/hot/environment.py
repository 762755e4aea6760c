"""Environments: parameter values and defaults, and the resource registry.

``resource_registry`` maps a type name to another type (an alias, ``My::Server:
OS::Nova::Server``, or a glob ``OS::Networking::*: OS::Neutron::*``) or to a template
file (a nested stack, a name ending in ``.yaml`` or ``.template``); the ``resources``
key maps per-resource overrides. A null value removes a mapping. ``event_sinks`` are
accepted and ignored (cloudbox keeps events in its own state).
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudbox.orchestration.hot.errors import HotError
from cloudbox.orchestration.hot.loader import check_depth, load_document

SECTIONS = ("parameters", "parameter_defaults", "resource_registry", "event_sinks",
            "encrypted_param_names", "parameter_merge_strategies")
MERGE_STRATEGIES = ("overwrite", "merge", "deep_merge")
TEMPLATE_SUFFIXES = (".yaml", ".template")


def is_template_name(target: str) -> bool:
    """A registry target naming a template file (a nested stack) rather than a type."""
    return target.endswith(TEMPLATE_SUFFIXES)


@dataclass
class Environment:
    parameters: dict[str, Any] = field(default_factory=dict)
    parameter_defaults: dict[str, Any] = field(default_factory=dict)
    resource_registry: dict[str, Any] = field(default_factory=dict)
    event_sinks: list[Any] = field(default_factory=list)
    encrypted_param_names: list[str] = field(default_factory=list)
    parameter_merge_strategies: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The environment as Heat shows it (``openstack stack environment show``)."""
        registry = copy.deepcopy(self.resource_registry)
        registry.setdefault("resources", {})
        return {
            "parameters": copy.deepcopy(self.parameters),
            "parameter_defaults": copy.deepcopy(self.parameter_defaults),
            "resource_registry": registry,
            "event_sinks": copy.deepcopy(self.event_sinks),
            "encrypted_param_names": list(self.encrypted_param_names),
        }

    def merge(self, other: Environment) -> Environment:
        """A new environment: ``other`` applied on top of this one (later files win)."""
        strategies = {**self.parameter_merge_strategies, **other.parameter_merge_strategies}
        default_strategy = strategies.get("default", "overwrite")
        return Environment(
            parameters=_merge_values(self.parameters, other.parameters, strategies, default_strategy),
            parameter_defaults=_merge_values(self.parameter_defaults, other.parameter_defaults,
                                             strategies, default_strategy),
            resource_registry=_merge_registry(self.resource_registry, other.resource_registry),
            event_sinks=[*self.event_sinks, *other.event_sinks],
            encrypted_param_names=sorted({*self.encrypted_param_names, *other.encrypted_param_names}),
            parameter_merge_strategies=strategies,
        )

    def for_nested(self, resource_name: str, mapped_type: str | None = None) -> Environment:
        """The environment of the nested stack that resource ``resource_name`` makes.

        As Heat's: the same parameter_defaults and global mappings, no ``parameters``
        (the nested stack's come from the resource's properties); the per-resource
        section becomes what the entries matching ``resource_name`` held (so
        ``"*Nodes": {"*Step*": ...}`` reaches the nested stack's ``*Step*`` resources);
        ``mapped_type`` (the type that mapped to the nested template) is dropped so a
        template implementing a type with itself does not recurse.
        """
        registry = {k: copy.deepcopy(v) for k, v in self.resource_registry.items()
                    if k != "resources" and k != mapped_type}
        per_resource = self.resource_registry.get("resources") or {}
        inner: dict[str, Any] = {}
        for pattern, table in per_resource.items():
            if isinstance(table, dict) and pattern != resource_name and fnmatch.fnmatchcase(resource_name, pattern):
                inner.update(copy.deepcopy(table))
        if isinstance(per_resource.get(resource_name), dict):
            inner.update(copy.deepcopy(per_resource[resource_name]))
        registry["resources"] = {k: v for k, v in inner.items() if isinstance(v, dict)}
        return Environment(parameter_defaults=copy.deepcopy(self.parameter_defaults),
                           resource_registry=registry, event_sinks=copy.deepcopy(self.event_sinks),
                           encrypted_param_names=list(self.encrypted_param_names),
                           parameter_merge_strategies=dict(self.parameter_merge_strategies))

    def resource_type(self, type_name: str, resource_name: str | None = None) -> str:
        """What implements ``type_name`` for ``resource_name``: a type or a template name.

        Per-resource mappings are tried first, then the global ones; aliases are
        followed until a type maps to nothing (a loop is a 400).
        """
        seen = [type_name]
        current = type_name
        while True:
            target = self._lookup(current, resource_name)
            if target is None or target == current:
                return current
            if is_template_name(target):
                return target
            if target in seen:
                raise HotError(f"Resource type {type_name} maps to itself through the environment's "
                               f"resource_registry: {' -> '.join([*seen, target])}",
                               ["resource_registry"])
            seen.append(target)
            current = target

    def _resource_tables(self, resource_name: str | None) -> list[dict[str, Any]]:
        """The per-resource mappings for ``resource_name``: exact name first, then the
        ``fnmatch`` patterns (``"*Deployment"``) in the order written."""
        per_resource = self.resource_registry.get("resources") or {}
        if resource_name is None:
            return []
        exact = per_resource.get(resource_name)
        tables = [exact] if isinstance(exact, dict) else []
        tables += [table for pattern, table in per_resource.items()
                   if pattern != resource_name and isinstance(table, dict)
                   and fnmatch.fnmatchcase(resource_name, pattern)]
        return tables

    def restricted_actions(self, resource_name: str) -> set[str]:
        """``update`` and/or ``replace`` when the registry forbids them for the resource."""
        found: set[str] = set()
        for table in self._resource_tables(resource_name):
            actions = table.get("restricted_actions")
            if isinstance(actions, str):
                found.add(actions)
            elif isinstance(actions, list):
                found |= {str(a) for a in actions}
        return found

    def _lookup(self, type_name: str, resource_name: str | None) -> str | None:
        tables = [*self._resource_tables(resource_name), self.resource_registry]
        for table in tables:
            target = table.get(type_name)
            if isinstance(target, str):
                return target
            for pattern, glob_target in table.items():
                if (isinstance(glob_target, str) and pattern.endswith("*") and pattern != "*"
                        and glob_target.endswith("*") and type_name.startswith(pattern[:-1])):
                    return glob_target[:-1] + type_name[len(pattern) - 1:]
        return None

    def template_names(self) -> set[str]:
        """Every template file the registry names (the caller checks ``files`` has them)."""
        names = set()
        for table in [self.resource_registry, *(self.resource_registry.get("resources") or {}).values()]:
            if isinstance(table, dict):
                names |= {v for k, v in table.items()
                          if k not in ("resources", "hooks") and isinstance(v, str) and is_template_name(v)}
        return names


def _merge_values(old: Mapping[str, Any], new: Mapping[str, Any], strategies: Mapping[str, str],
                  default: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(old))
    for name, value in new.items():
        strategy = strategies.get(name, default)
        if name not in out or strategy == "overwrite":
            out[name] = copy.deepcopy(value)
        else:
            out[name] = _merge_one(out[name], value, deep=strategy == "deep_merge")
    return out


def _merge_one(old: Any, new: Any, deep: bool) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, value in new.items():
            merged[key] = _merge_one(merged[key], value, deep) if deep and key in merged else value
        return merged
    if isinstance(old, list) and isinstance(new, list):
        return [*old, *new]
    if isinstance(old, str) and isinstance(new, str):
        return f"{old},{new}" if old and new else old or new
    return new


def _merge_registry(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(old))
    for key, value in new.items():
        if key == "resources" and isinstance(value, dict):
            resources = out.setdefault("resources", {})
            for resource, mapping in value.items():
                if isinstance(mapping, dict) and isinstance(resources.get(resource), dict):
                    resources[resource] = {**resources[resource], **mapping}
                else:
                    resources[resource] = copy.deepcopy(mapping)
        elif value is None:
            out.pop(key, None)  # a null removes the mapping
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_environment(body: str | bytes | dict | None, files: Mapping[str, str] | None = None) -> Environment:
    """An environment from the request's ``environment`` (text or dict) or None."""
    if body is None or body == "":
        return Environment()
    data = load_document(body, "environment") if isinstance(body, (str, bytes)) else body
    check_depth(data, "environment")
    if not isinstance(data, dict):
        raise HotError("The environment is not a JSON object or YAML mapping.")
    for section in data:
        if section not in SECTIONS:
            raise HotError(f'environment has wrong section "{section}"')
    env = Environment()
    for section in ("parameters", "parameter_defaults", "parameter_merge_strategies"):
        value = data.get(section) or {}
        if not isinstance(value, dict):
            raise HotError(f'The environment\'s "{section}" must be a map', [section])
        setattr(env, section, copy.deepcopy(value))
    for name, strategy in env.parameter_merge_strategies.items():
        if strategy not in MERGE_STRATEGIES:
            raise HotError(f"Invalid merge strategy '{strategy}' for parameter '{name}'.",
                           ["parameter_merge_strategies", name])
    registry = data.get("resource_registry") or {}
    if not isinstance(registry, dict):
        raise HotError('The environment\'s "resource_registry" must be a map', ["resource_registry"])
    _check_registry(registry)
    env.resource_registry = copy.deepcopy(registry)  # nulls stay: they remove mappings on merge
    sinks = data.get("event_sinks") or []
    if not isinstance(sinks, list):
        raise HotError('The environment\'s "event_sinks" must be a list', ["event_sinks"])
    env.event_sinks = copy.deepcopy(sinks)
    encrypted = data.get("encrypted_param_names") or []
    if not isinstance(encrypted, list):
        raise HotError('The environment\'s "encrypted_param_names" must be a list',
                       ["encrypted_param_names"])
    env.encrypted_param_names = [str(n) for n in encrypted]
    return env


def _check_registry(registry: Mapping[str, Any], path: tuple[str, ...] = ("resource_registry",)) -> None:
    for key, value in registry.items():
        if key == "resources" and len(path) == 1:
            if not isinstance(value, dict):
                raise HotError('"resources" must be a map of resource names', [*path, key])
            for resource, mapping in value.items():
                if not isinstance(mapping, dict):
                    raise HotError("a per-resource registry must be a map", [*path, key, resource])
                _check_registry(mapping, (*path, key, resource))
        elif key == "restricted_actions":
            actions = [value] if isinstance(value, str) else value
            if not isinstance(actions, list) or not set(actions) <= {"update", "replace"}:
                raise HotError(f"Invalid restricted_action type {value!r}; valid ones are update "
                               "and replace", [*path, key])
        elif key in ("hooks", "base_url"):
            continue  # Heat's breakpoints: accepted, not used by cloudbox
        elif isinstance(value, dict) and len(path) > 2:
            _check_registry(value, (*path, key))  # a nested stack's resources, by name pattern
        elif value is not None and not isinstance(value, str):
            raise HotError(f"Invalid resource_registry entry for {key}: expected a type or a "
                           "template name", [*path, key])


def merge_environments(names: list[str] | None, files: Mapping[str, str] | None,
                       base: Environment | None = None) -> Environment:
    """``base`` (the request's ``environment``) with each of the ``environment_files``
    (names in ``files``) applied on top, in order, as Heat does.

    python-heatclient sends ``-e`` files this way: their names in ``environment_files``
    and their text in ``files`` (and their merge in ``environment`` as well).
    """
    env = base if base is not None else Environment()
    for name in names or []:
        if not files or name not in files:
            raise HotError(f'No content found in the "files" section for environment file {name}',
                           ["environment_files"])
        env = env.merge(parse_environment(files[name]))
    return env

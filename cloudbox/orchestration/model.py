"""A stack's template, environment and parameters made into what the engine walks: the
resource definitions in the cloud's types, their order, and a resolver over the stack's rows.

The only module of the service that calls the HOT library (cloudbox.orchestration.hot) for
templates; the library is pure, so everything here is too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from cloudbox.errors import BadRequest
from cloudbox.orchestration import hot
from cloudbox.orchestration.resources import PLUGINS, TEMPLATE_RESOURCE

Lookup = Callable[[str, Any], "str | None"]


def no_lookup(kind: str, value: Any) -> str | None:
    """Constraints checked once, at create and update; the engine's rebuilds do not ask again."""
    return None


@dataclass
class Model:
    template: Any  # hot.Template
    environment: Any  # hot.Environment
    parameters: Any  # hot.Parameters
    conditions: dict[str, bool]
    defs: dict[str, Any]  # name -> hot.ResourceDefinition
    types: dict[str, str]  # name -> the plugin type (after the environment's resource_registry)
    order: list[str]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return self.template.description


def build(template: Any, environment: Any, files: Mapping[str, str] | None, user_params: Mapping[str, Any],
          pseudo: Mapping[str, str], lookup: Lookup = no_lookup, validate_values: bool = True) -> Model:
    """Parse and check a stack's parts; BadRequest (a 400 naming the template path) when any is
    wrong: nothing is made from a model that does not build."""
    if template in (None, "", {}):
        raise BadRequest("No template specified")
    files = dict(files or {})
    parsed = hot.parse_template(template, files)
    env = hot.parse_environment(environment, files)
    params = parsed.parameters(env, dict(user_params), lookup, stack_name=pseudo.get("stack_name"),
                               stack_id=pseudo.get("stack_id"), project_id=pseudo.get("project_id"),
                               validate_values=validate_values)
    conditions = parsed.conditions(params)
    defs = parsed.resources(params, conditions)
    types = {}
    for name, definition in defs.items():
        kind = definition.type  # after the environment's resource_registry
        if kind not in PLUGINS and hot.is_template_name(kind) and kind in files:
            kind = TEMPLATE_RESOURCE  # a nested template sent in files: a child stack of its own
        plugin = PLUGINS.get(kind)
        if plugin is None:
            raise BadRequest(f"resources.{name}<{definition.template_type or kind}>: The Resource Type ({kind}) "
                             "could not be found.")
        plugin.check(name, definition.properties or {})
        types[name] = kind
    order = hot.order(defs)
    _check_attributes(parsed, defs, types)
    return Model(parsed, env, params, conditions, defs, types, order, files)


def _check_attributes(template: Any, defs: Mapping[str, Any], types: Mapping[str, str]) -> None:
    """A get_attr of an attribute its resource's type does not have is a 400 before anything is
    made (a group's per-member ``resource.N`` attributes are known only once made)."""
    for ref in template.attribute_references():
        if ref.resource not in defs or not isinstance(ref.attribute, str) or types[ref.resource] == TEMPLATE_RESOURCE:
            continue  # a missing resource is the library's 400; a computed name is checked when read
        plugin = PLUGINS[types[ref.resource]]
        if ref.attribute in plugin.attribute_names or ref.attribute.startswith("resource."):
            continue
        raise BadRequest(f"{'.'.join(ref.path)}: The Referenced Attribute ({ref.resource} {ref.attribute}) is "
                         f"incorrect: {types[ref.resource]} has {', '.join(sorted(plugin.attribute_names))}.")


class RowResolver:
    """get_resource and get_attr answered from the stack's resource rows (physical ids and the
    attributes each resource stored when it became ready)."""

    def __init__(self, model: Model, rows: Mapping[str, dict[str, Any]]) -> None:
        self.model = model
        self.rows = rows
        self.version = getattr(model.template, "version", None)
        self.files = model.files

    def param(self, name: str) -> Any:
        return self.model.parameters.values[name]

    def condition(self, name: str) -> bool:
        if name not in self.model.conditions:
            raise BadRequest(f'Invalid condition "{name}"')
        return self.model.conditions[name]

    def resource_id(self, name: str) -> Any:
        row = self.rows.get(name)
        return row["physical_id"] or None if row else None

    def attribute(self, name: str, path: list[Any]) -> Any:
        row = self.rows.get(name)
        if row is None:
            return None
        attributes = row["attributes"]
        if not path:
            return {k: v for k, v in attributes.items() if k != "show"}
        return attributes.get(str(path[0]))


def nested_template(model: Model | None, name: str) -> str | None:
    """The text of the nested template a resource's type names (None for a plugin's type)."""
    if model is None or name not in model.defs or model.types.get(name) != TEMPLATE_RESOURCE:
        return None
    return model.files.get(model.defs[name].type)


def nested_sources(model: Model | None, name: str, props: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The fingerprint of a template resource's template and the files it reaches, or of a group's
    members' template (``props``: the group's resolved properties); None when no template is nested.
    A change there updates the child stack, even with the resource's properties unchanged."""
    if model is None or name not in model.defs:
        return None
    kind = model.types.get(name)
    if kind == TEMPLATE_RESOURCE:
        return hot.nested_sources(model.defs[name].type, model.files, _resolver(model))
    key = PLUGINS[kind].member_type_key if kind in PLUGINS else ""
    definition = (props or {}).get(key) if key else None
    member = definition.get("type") if isinstance(definition, dict) else None
    if not isinstance(member, str):
        return None
    try:
        member = model.environment.resource_type(member)
    except BadRequest:
        return None
    if member in PLUGINS or not hot.is_template_name(member) or member not in model.files:
        return None
    return hot.nested_sources(member, model.files, _resolver(model))


def _resolver(model: Model) -> Callable[[str], str]:
    """A type as the nested stacks map it (their inherited resource_registry; a bad one: as written)."""
    def resolve(type_name: str) -> str:
        try:
            return str(model.environment.resource_type(type_name))
        except BadRequest:
            return type_name
    return resolve


def child_environment(model: Model | None) -> dict[str, Any]:
    """What a child stack inherits of its parent's environment: the global resource_registry (a
    nested template, or a group's members, may use the parent's type names)."""
    if model is None:
        return {}
    registry = {k: v for k, v in model.environment.resource_registry.items() if k not in ("resources", "hooks")}
    return {"resource_registry": registry} if registry else {}


def resolve_properties(model: Model, name: str, rows: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    resolved = hot.resolve(model.defs[name].properties or {}, RowResolver(model, rows),
                           ["resources", name, "properties"])
    return dict(resolved or {})


def outputs(model: Model, rows: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Heat's outputs of a stack: key, value (None while unknown), description; an output
    whose value cannot be computed carries output_error instead."""
    found = []
    resolver = RowResolver(model, rows)
    for key, definition in model.template.outputs(model.conditions, model.parameters).items():
        entry: dict[str, Any] = {"output_key": key, "description": definition.description or "No description given"}
        try:
            entry["output_value"] = hot.resolve(definition.value, resolver, ["outputs", key, "value"]) \
                if definition.enabled else None
        except BadRequest as exc:
            entry["output_value"], entry["output_error"] = None, exc.message
        found.append(entry)
    return found

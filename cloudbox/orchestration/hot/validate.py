"""``POST /validate``: the answer Heat gives for a template, in Heat's shape.

Missing parameter values are fine here (the point of validate is to learn which
parameters a template wants); values the caller did send are checked, and so is
everything about the template itself (structure, functions, references, cycles).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudbox.orchestration.hot.dependencies import order, references
from cloudbox.orchestration.hot.environment import Environment
from cloudbox.orchestration.hot.parameters import API_TYPES, Lookup, ParamSchema, checked_value
from cloudbox.orchestration.hot.template import ResourceDefinition, Template, parse_template


def validate(template: Template | str | bytes | dict[str, Any], env: Environment | None = None,
             lookup: Lookup | None = None, user_params: Mapping[str, Any] | None = None,
             files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The body of Heat's ``POST /v1/{project}/validate`` answer, or a HotError (400)."""
    if not isinstance(template, Template):
        template = parse_template(template, files)
    env = env or Environment()
    supplied = {**env.parameters, **(user_params or {})}
    params = template.parameters(env, supplied, lookup, stack_name="dummy", validate_values=False)
    for name, value in supplied.items():
        checked_value(template.parameter_schemas[name], value, lookup)
    complete = all(name in params.values for name in template.parameter_schemas)
    if complete:
        order(template.resources(params, template.conditions(params)))
    else:
        order(_static_definitions(template))
    result: dict[str, Any] = {
        "Description": template.description,
        "Parameters": {
            name: _parameter(schema, env.parameter_defaults.get(name), supplied.get(name))
            for name, schema in template.parameter_schemas.items()
        },
    }
    if template.parameter_groups:
        result["ParameterGroups"] = template.parameter_groups
    result["Environment"] = env.to_dict()
    return result


def _static_definitions(template: Template) -> dict[str, ResourceDefinition]:
    """Every resource with every dependency it could have (both branches of each ``if``),
    for a cycle check when parameter values are missing."""
    defs = {}
    for name, data in template.raw_resources.items():
        deps = {target for _, target, _ in references(
            {k: data.get(k) for k in ("properties", "metadata")}, template.version)}
        explicit = data.get("depends_on") or []
        deps |= {explicit} if isinstance(explicit, str) else set(explicit)
        defs[name] = ResourceDefinition(name=name, type=data["type"],
                                        depends_on=frozenset(d for d in deps if d in template.raw_resources))
    return defs


def _parameter(schema: ParamSchema, env_default: Any, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Type": API_TYPES[schema.type],
        "Description": schema.description,
        "NoEcho": "true" if schema.hidden else "false",
        "Label": schema.label or schema.name,
    }
    default = env_default if env_default is not None else schema.default
    if default is not None:
        out["Default"] = default
    if value:
        out["Value"] = value
    if schema.tags:
        out["Tags"] = list(schema.tags)
    descriptions = []
    for c in schema.constraints:
        spec = c.spec
        if c.kind == "length":
            _put(out, "MinLength", spec.get("min"))
            _put(out, "MaxLength", spec.get("max"))
        elif c.kind == "range":
            _put(out, "MinValue", spec.get("min"))
            _put(out, "MaxValue", spec.get("max"))
        elif c.kind == "modulo":
            _put(out, "Step", spec.get("step"))
            _put(out, "Offset", spec.get("offset"))
        elif c.kind == "allowed_values":
            out["AllowedValues"] = list(spec)
        elif c.kind == "allowed_pattern":
            out["AllowedPattern"] = spec
        elif c.kind == "custom_constraint":
            out["CustomConstraint"] = spec
        if c.description:
            descriptions.append(c.description)
    if descriptions:
        out["ConstraintDescription"] = " ".join(descriptions)
    return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value

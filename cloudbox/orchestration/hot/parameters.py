"""Parameters: schemas, constraints, values, hidden values.

A value comes from the user (the request's ``parameters``, which python-heatclient
fills from ``--parameter`` and the environment's ``parameters``), else from the
environment's ``parameter_defaults``, else from the template's ``default``. Errors
keep Heat's wording, which users read through python-heatclient:
``Parameter 'flavor_name' is invalid: <the constraint's description>``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudbox.orchestration.hot.errors import HotError
from cloudbox.orchestration.hot.loader import MAX_DEPTH, check_depth
from cloudbox.orchestration.hot.patterns import PatternError, matcher
from cloudbox.orchestration.hot.versions import Version

TYPES = ("string", "number", "comma_delimited_list", "json", "boolean")
API_TYPES = {"string": "String", "number": "Number", "comma_delimited_list": "CommaDelimitedList",
             "json": "Json", "boolean": "Boolean"}
PSEUDO_PARAMETERS = ("OS::stack_id", "OS::stack_name", "OS::project_id", "OS::region")
HIDDEN_TEXT = "******"

_TRUE = ("1", "t", "true", "on", "y", "yes")
_FALSE = ("0", "f", "false", "off", "n", "no")

# lookup(kind, value) -> None when the value is fine, else an error text; KeyError
# for a kind the caller does not know.
Lookup = Callable[[str, Any], "str | None"]


class ConstraintError(ValueError):
    """A value a constraint refuses; the text is Heat's (or the description)."""


def to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f'Value "{value}" is invalid for data type "number".')
    if isinstance(value, (int, float)):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        pass
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError(f"could not convert string to float: '{value}'") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"could not convert string to float: '{value}'")
    return number


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    accepted = ", ".join(f"'{v}'" for v in sorted(_TRUE + _FALSE))
    raise ValueError(f"Unrecognized value '{value}', acceptable values are: {accepted}")


@dataclass(frozen=True)
class Constraint:
    """One entry of a parameter's ``constraints`` list."""

    kind: str  # length, range, modulo, allowed_values, allowed_pattern, custom_constraint
    spec: Any
    description: str | None = None

    def check(self, value: Any, param_type: str, lookup: Lookup | None, hidden: bool = False) -> None:
        """Raise ConstraintError when ``value`` (already of the parameter's type) fails.

        A hidden parameter's value never appears in the message (only its length does).
        """
        error = self._problem(value, param_type, lookup)
        if error is None:
            return
        if self.description:
            raise ConstraintError(self.description)
        if hidden and self.kind != "length":
            shown = value_text(value, param_type)
            error = error.replace(json.dumps(value), '"******"').replace(shown, "******") if shown else error
        raise ConstraintError(error)

    def _problem(self, value: Any, param_type: str, lookup: Lookup | None) -> str | None:
        spec = self.spec
        if self.kind == "length":
            low, high = spec.get("min"), spec.get("max")
            size = len(value)
            if (low is not None and size < low) or (high is not None and size > high):
                return f"length ({size}) is out of range (min: {low}, max: {high})"
        elif self.kind == "range":
            low, high = spec.get("min"), spec.get("max")
            number = to_number(value)
            if (low is not None and number < low) or (high is not None and number > high):
                return f"{value} is out of range (min: {low}, max: {high})"
        elif self.kind == "modulo":
            step, offset = spec["step"], spec["offset"]
            if to_number(value) % step != offset:
                return f"{value} is not a multiple of {step} with an offset of {offset}"
        elif self.kind == "allowed_values":
            allowed = list(spec)
            if param_type == "comma_delimited_list":
                ok = all(item in allowed for item in value)
            elif param_type == "number":
                ok = to_number(value) in [_number_or_text(a) for a in allowed]
            elif param_type == "boolean":
                ok = value in [_boolean_or_text(a) for a in allowed]
            else:
                ok = value in allowed
            if not ok:
                listed = ", ".join(json.dumps(a) for a in allowed)
                return f"{json.dumps(value)} is not an allowed value [{listed}]"
        elif self.kind == "allowed_pattern":
            try:
                matched = matcher(spec)(str(value))
            except PatternError as exc:
                return f'"{value}" is not matched against pattern "{spec}": {exc}'
            if not matched:
                return f'"{value}" does not match pattern "{spec}"'
        elif self.kind == "custom_constraint":
            if lookup is None:
                return None
            try:
                problem = lookup(spec, value)
            except KeyError:
                return f'"{value}" does not validate {spec} (constraint not found)'
            if problem:
                return f"Error validating value '{value}': {problem}"
        return None

    def describe(self) -> dict[str, Any]:
        """The constraint as written (for ``to_dict`` and the stored template)."""
        out: dict[str, Any] = {self.kind: self.spec}
        if self.description is not None:
            out["description"] = self.description
        return out


def _number_or_text(value: Any) -> Any:
    try:
        return to_number(value)
    except ValueError:
        return value


def _boolean_or_text(value: Any) -> Any:
    try:
        return to_boolean(value)
    except ValueError:
        return value


# Which constraint applies to which type (Heat: "<kind> constraint invalid for <Type>").
_VALID_FOR = {
    "length": {"string", "comma_delimited_list", "json"},
    "range": {"number"},
    "modulo": {"number"},
    "allowed_values": set(TYPES),
    "allowed_pattern": {"string"},
    "custom_constraint": set(TYPES),
}


@dataclass(frozen=True)
class ParamSchema:
    name: str
    type: str
    description: str = ""
    label: str | None = None
    default: Any = None
    hidden: bool = False
    immutable: bool = False
    tags: tuple[str, ...] = ()
    constraints: tuple[Constraint, ...] = ()

    @property
    def has_default(self) -> bool:
        return self.default is not None

    def convert(self, value: Any) -> Any:
        """``value`` (as sent or as the default) in the parameter's type; ValueError if not."""
        if self.type == "number":
            return to_number(value)
        if self.type == "boolean":
            return to_boolean(value)
        if self.type == "comma_delimited_list":
            if isinstance(value, list):
                return [str(v) for v in value]
            if not isinstance(value, str):
                raise ValueError(f"Value must be a comma-delimited list string: {value}")
            return value.split(",") if value else []  # Heat keeps the spaces around items
        if self.type == "json":
            if isinstance(value, str):
                if not value:
                    return {}
                try:
                    value = json.loads(value)
                except RecursionError:
                    raise ValueError(f"Value must be valid JSON: nested more than {MAX_DEPTH} levels") from None
                except ValueError as exc:
                    raise ValueError(f"Value must be valid JSON: {exc}") from None
            if not isinstance(value, (dict, list)):
                raise ValueError(f"Value must be valid JSON: {value!r} is not a map or a list")
            try:
                check_depth(value, "value")
            except HotError as exc:
                raise ValueError(f"Value must be valid JSON: {exc.reason}") from None
            return value
        if isinstance(value, (dict, list)):
            raise ValueError(f'Value "{value}" is invalid for data type "string".')
        return str(value)  # as Heat: True is "True"

    def check(self, value: Any, lookup: Lookup | None, *, custom: bool = True) -> Any:
        """The converted value, or ConstraintError/ValueError with Heat's text."""
        converted = self.convert(value)
        for constraint in self.constraints:
            if constraint.kind == "custom_constraint" and not custom:
                continue
            constraint.check(converted, self.type, lookup, self.hidden)
        return converted

    def text(self, value: Any) -> str:
        """The value as Heat shows it in ``parameters`` of a stack (hidden masked)."""
        if self.hidden:
            return HIDDEN_TEXT
        return value_text(value, self.type)


def value_text(value: Any, param_type: str) -> str:
    if param_type == "comma_delimited_list" and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if param_type == "json" and isinstance(value, (dict, list)):
        return json.dumps(value)
    if param_type == "boolean" and isinstance(value, bool):
        return str(value)
    return "" if value is None else str(value)


def _number_spec(spec: Any, keys: tuple[str, ...], what: str, name: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise HotError(f"Invalid {what}, expected a mapping", ["parameters", name])
    unknown = set(spec) - set(keys)
    if unknown:
        raise HotError(f"Invalid key '{sorted(unknown)[0]}' for {what}", ["parameters", name])
    out = {}
    for key in keys:
        if spec.get(key) is None:
            out[key] = None
            continue
        try:
            out[key] = to_number(spec[key])
        except ValueError:
            raise HotError(f"{'/'.join(keys)} must be numeric", ["parameters", name]) from None
    return out


def parse_constraint(name: str, raw: Any, version: Version) -> Constraint:
    where = ["parameters", name, "constraints"]
    kinds = version.constraint_kinds
    if not isinstance(raw, dict):
        raise HotError("Invalid parameter constraints, expected a mapping", where)
    unknown = set(raw) - kinds - {"description"}
    if unknown:
        raise HotError(f"Invalid key '{sorted(unknown)[0]}' for parameter constraints", where)
    present = [k for k in raw if k in kinds]
    if len(present) != 1:
        raise HotError("No constraint expressed" if not present else
                       f"One constraint per entry, found {', '.join(sorted(present))}", where)
    kind = present[0]
    description = raw.get("description")
    spec = raw[kind]
    if kind == "length":
        spec = _number_spec(spec, ("min", "max"), "length constraint", name)
        if spec["min"] is None and spec["max"] is None:
            raise HotError("A length constraint must have a min value and/or a max value specified.", where)
        if any(v is not None and not isinstance(v, int) for v in spec.values()):
            raise HotError("min/max length must be integral", where)
    elif kind == "range":
        spec = _number_spec(spec, ("min", "max"), "range constraint", name)
        if spec["min"] is None and spec["max"] is None:
            raise HotError("A range constraint must have a min value and/or a max value specified.", where)
    elif kind == "modulo":
        spec = _number_spec(spec, ("step", "offset"), "modulo constraint", name)
        step, offset = spec["step"], spec["offset"]
        if step is None or offset is None:
            raise HotError("A modulo constraint must have a step value and an offset value specified.", where)
        if not isinstance(step, int) or not isinstance(offset, int):
            raise HotError("step/offset must be integer", where)
        if step == 0:
            raise HotError("step cannot be 0.", where)
        if abs(offset) >= abs(step):
            raise HotError("offset must be smaller (by absolute value) than step.", where)
        if step * offset < 0:
            raise HotError("step and offset must be both positive or both negative.", where)
    elif kind == "allowed_values":
        if not isinstance(spec, list):
            raise HotError("AllowedValues must be a list", where)
    elif kind == "allowed_pattern":
        if not isinstance(spec, str):
            raise HotError("AllowedPattern must be a string", where)
        try:
            matcher(spec)
        except PatternError as exc:
            raise HotError(f"Invalid allowed_pattern {spec!r}: {exc}", where) from None
    elif kind == "custom_constraint":
        if not isinstance(spec, str):
            raise HotError("custom_constraint must be a string", where)
    return Constraint(kind, spec, None if description is None else str(description))


def parse_schema(name: str, raw: Any, version: Version) -> ParamSchema:
    where = ["parameters", name]
    if not isinstance(raw, dict):
        raise HotError(f"Invalid parameter ({name}), expected a mapping", where)
    unknown = set(raw) - version.parameter_keys
    if unknown:
        raise HotError(f"Invalid key '{sorted(unknown)[0]}' for parameter ({name})", where)
    if "type" not in raw:
        raise HotError(f"Missing parameter type for parameter: {name}", where)
    kind = raw["type"]
    if kind not in TYPES:
        raise HotError(f"Invalid type ({kind})", where)
    tags = raw.get("tags") or []
    if not isinstance(tags, list):
        raise HotError(f"Tags property should be a list for parameter: {name}", where)
    raw_constraints = raw.get("constraints") or []
    if not isinstance(raw_constraints, list):
        raise HotError(f"Invalid parameter constraints for parameter {name}, expected a list", where)
    constraints = tuple(parse_constraint(name, c, version) for c in raw_constraints)
    for c in constraints:
        if kind not in _VALID_FOR[c.kind]:
            raise HotError(f"{c.kind} constraint invalid for {API_TYPES[kind]}", where)
    schema = ParamSchema(
        name=name, type=kind, description=str(raw.get("description") or ""),
        label=raw.get("label"), default=raw.get("default"),
        hidden=bool(_flag(raw.get("hidden", False), name, "hidden")),
        immutable=bool(_flag(raw.get("immutable", False), name, "immutable")),
        tags=tuple(str(t) for t in tags), constraints=constraints,
    )
    if schema.has_default:
        _check_default(schema)
    return schema


def _flag(value: Any, name: str, key: str) -> bool:
    try:
        return to_boolean(value)
    except ValueError:
        raise HotError(f"Parameter '{name}' is invalid: {key} must be a boolean",
                       ["parameters", name, key], named=True) from None


def _check_default(schema: ParamSchema) -> None:
    """Heat checks a default against every constraint but the custom ones."""
    try:
        schema.check(schema.default, None, custom=False)
    except ValueError as exc:
        raise HotError(f"Parameter '{schema.name}' is invalid: Invalid default "
                       f"{value_text(schema.default, schema.type)} ({exc})",
                       ["parameters", schema.name, "default"], named=True) from None


@dataclass
class Parameters:
    """A stack's parameter values (pseudo-parameters included)."""

    schemas: dict[str, ParamSchema]
    values: dict[str, Any]  # resolved, in each parameter's type
    user_values: dict[str, Any] = field(default_factory=dict)  # as the user sent them
    env: Any = None  # the Environment these values came from (resource_registry...)

    def shown(self) -> dict[str, str]:
        """``parameters`` of a stack's show: text, hidden ones as ``******``."""
        out = {}
        for name, value in self.values.items():
            schema = self.schemas.get(name)
            out[name] = schema.text(value) if schema else value_text(value, "string")
        return out

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def hidden_names(self) -> list[str]:
        return [n for n, s in self.schemas.items() if s.hidden]

    def immutable_changed(self, new: Parameters) -> list[str]:
        """Names whose value an update may not change (``immutable: true`` in the new template)."""
        changed = []
        for name, schema in new.schemas.items():
            if schema.immutable and name in self.schemas and name in self.values \
                    and self.values[name] != new.values.get(name):
                changed.append(name)
        return sorted(changed)

    def check_immutable(self, new: Parameters) -> None:
        changed = self.immutable_changed(new)
        if changed:
            raise HotError("The following parameters are immutable and may not be updated: "
                           + ", ".join(changed))


def build_parameters(
    schemas: Mapping[str, ParamSchema],
    user_params: Mapping[str, Any],
    parameter_defaults: Mapping[str, Any],
    lookup: Lookup | None = None,
    *,
    stack_name: str | None = None,
    stack_id: str | None = None,
    project_id: str | None = None,
    region: str | None = None,
    validate_values: bool = True,
) -> Parameters:
    for name in user_params:
        if name not in schemas:
            raise HotError(f"The Parameter ({name}) was not defined in template.",
                           ["parameters", name], named=True)
    values: dict[str, Any] = {
        "OS::stack_id": stack_id or "",
        "OS::project_id": project_id or "",
    }
    if stack_name:
        values["OS::stack_name"] = stack_name
    if region:
        values["OS::region"] = region
    all_schemas: dict[str, ParamSchema] = {
        name: ParamSchema(name, "string") for name in values
    }
    for name, schema in schemas.items():
        all_schemas[name] = schema
        if name in user_params and user_params[name] is not None:
            raw = user_params[name]
        elif name in parameter_defaults and parameter_defaults[name] is not None:
            raw = parameter_defaults[name]
        elif schema.has_default:
            raw = schema.default
        elif validate_values:
            raise HotError(f"The Parameter ({name}) was not provided.", ["parameters", name],
                           named=True)
        else:
            continue
        if not validate_values:
            try:
                values[name] = schema.convert(raw)
            except ValueError:
                values[name] = raw
            continue
        values[name] = checked_value(schema, raw, lookup)
    return Parameters(all_schemas, values, dict(user_params))


def checked_value(schema: ParamSchema, raw: Any, lookup: Lookup | None) -> Any:
    """``raw`` in the parameter's type, every constraint met; else Heat's 400."""
    try:
        return schema.check(raw, lookup)
    except ValueError as exc:
        reason = str(exc)
        if schema.hidden and isinstance(raw, str) and raw:
            reason = reason.replace(raw, HIDDEN_TEXT)  # a hidden value is never repeated
        raise HotError(f"Parameter '{schema.name}' is invalid: {reason}", ["parameters", schema.name],
                       named=True) from None

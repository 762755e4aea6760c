"""A parsed HOT template and what a stack needs from it.

``parse_template`` checks the structure (sections, resource keys, parameter
schemas, outputs, functions the version refused, references to resources and
parameters that do not exist) so a bad template is a 400 before anything is
made. The stack's side then asks the Template for ``parameters``, ``conditions``,
``resources`` and ``outputs``, each a pure function of what it is given.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudbox.orchestration.hot.dependencies import references
from cloudbox.orchestration.hot.environment import Environment, is_template_name
from cloudbox.orchestration.hot.errors import HotError
from cloudbox.orchestration.hot.functions import (
    StackContext, function_call, resolve, resolve_condition,
)
from cloudbox.orchestration.hot.loader import check_depth, load_document
from cloudbox.orchestration.hot.parameters import (
    Lookup, Parameters, ParamSchema, build_parameters, parse_schema,
)
from cloudbox.orchestration.hot.versions import VERSION_KEY, Version, find_version, version_text

_CFN_VERSION_KEYS = ("AWSTemplateFormatVersion", "HeatTemplateFormatVersion")


@dataclass(frozen=True)
class ResourceDefinition:
    """One resource as the template defines it; ``properties`` and ``metadata`` are
    unresolved (``resolve`` them with the stack's Resolver when their turn comes)."""

    name: str
    type: str  # after the environment's resource_registry (a type, or a template name)
    properties: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    depends_on: frozenset[str] = frozenset()
    deletion_policy: str = "Delete"  # Delete, Retain or Snapshot
    update_policy: dict[str, Any] = field(default_factory=dict)
    condition: Any = None  # as written: a name, a boolean or an expression
    description: str = ""
    external_id: Any = None
    template_type: str = ""  # the type as the template wrote it

    def to_dict(self) -> dict[str, Any]:
        """The definition as a template would write it (for plans and stored stacks)."""
        out: dict[str, Any] = {"type": self.template_type or self.type}
        if self.properties:
            out["properties"] = copy.deepcopy(self.properties)
        if self.metadata:
            out["metadata"] = copy.deepcopy(self.metadata)
        if self.depends_on:
            out["depends_on"] = sorted(self.depends_on)
        if self.deletion_policy != "Delete":
            out["deletion_policy"] = self.deletion_policy
        if self.update_policy:
            out["update_policy"] = copy.deepcopy(self.update_policy)
        return out


@dataclass(frozen=True)
class OutputDefinition:
    name: str
    value: Any
    description: str = ""
    condition: Any = None
    enabled: bool = True  # False: Heat shows the output with a null value

    def get(self, key: str, default: Any = None) -> Any:
        """Read like the template's dict: ``value``, ``description``, ``condition``."""
        if key in ("value", "description", "condition", "name", "enabled"):
            return getattr(self, key)
        return default

    def __getitem__(self, key: str) -> Any:
        if key not in ("value", "description", "condition", "name", "enabled"):
            raise KeyError(key)
        return getattr(self, key)


@dataclass(frozen=True)
class AttributeReference:
    """A ``get_attr`` in the template, for the engine to check the attribute exists."""

    resource: str
    attribute: Any  # None: all attributes (``get_attr: [name]``)
    path: tuple[str, ...]


@dataclass
class Template:
    raw: dict[str, Any]
    version: Version
    files: dict[str, str] = field(default_factory=dict)
    description: str = ""
    parameter_schemas: dict[str, ParamSchema] = field(default_factory=dict)
    parameter_groups: list[dict[str, Any]] = field(default_factory=list)

    # -- sections, raw -----------------------------------------------------------------
    @property
    def raw_resources(self) -> dict[str, dict[str, Any]]:
        return self.raw.get("resources") or {}

    @property
    def raw_outputs(self) -> dict[str, dict[str, Any]]:
        return self.raw.get("outputs") or {}

    @property
    def raw_conditions(self) -> dict[str, Any]:
        return self.raw.get("conditions") or {}

    @property
    def nested_attributes(self) -> set[str]:
        """What ``get_attr`` may ask of a resource this template implements (a nested
        stack): its outputs, and ``OS::stack_id`` (the nested stack's id), as in Heat."""
        return {*self.raw_outputs, "OS::stack_id"}

    def to_dict(self) -> dict[str, Any]:
        """The template as sent (the body of ``GET .../template``)."""
        return copy.deepcopy(self.raw)

    # -- parameters --------------------------------------------------------------------
    def parameters(
        self, env: Environment | None = None, user_params: Mapping[str, Any] | None = None,
        lookup: Lookup | None = None, *, stack_name: str | None = None, stack_id: str | None = None,
        project_id: str | None = None, region: str | None = None,
        pseudo: Mapping[str, Any] | None = None, validate_values: bool = True,
    ) -> Parameters:
        """The stack's parameter values: ``user_params`` over ``env.parameters``, then
        ``env.parameter_defaults``, then the template's defaults, each checked.

        The pseudo-parameters come from the keywords or from ``pseudo`` (keys
        ``OS::stack_name``, ``OS::stack_id``, ``OS::project_id``, ``OS::region``, the
        ``OS::`` prefix optional).
        """
        env = env or Environment()
        given = {str(k).removeprefix("OS::"): v for k, v in (pseudo or {}).items()}
        values = {**env.parameters, **(user_params or {})}
        params = build_parameters(
            self.parameter_schemas, values, env.parameter_defaults, lookup,
            stack_name=stack_name or given.get("stack_name"),
            stack_id=stack_id or given.get("stack_id"),
            project_id=project_id or given.get("project_id"),
            region=region or given.get("region"),
            validate_values=validate_values,
        )
        params.env = env
        return params

    # -- conditions --------------------------------------------------------------------
    def conditions(self, params: Parameters | Mapping[str, Any]) -> dict[str, bool]:
        """Every condition's value, each at most once (a loop is a 400)."""
        values = params.values if isinstance(params, Parameters) else params
        results: dict[str, bool] = {}
        evaluating: list[str] = []
        raw = self.raw_conditions

        class _Ctx(StackContext):
            def condition(self, name: str) -> bool:
                return evaluate(name)

        ctx = _Ctx(params=values, version=self.version, files=self.files)

        def evaluate(name: str) -> bool:
            if name in results:
                return results[name]
            if name not in raw:
                raise HotError(f'Invalid condition "{name}"')
            if name in evaluating:
                chain = ", ".join([*evaluating[evaluating.index(name):], name])
                raise HotError(f'Circular definition for condition "{name}" ({chain})',
                               ["conditions", name])
            evaluating.append(name)
            try:
                value = resolve_condition(raw[name], ctx, ["conditions", name])
            except HotError as exc:
                if exc.reason.startswith("Circular definition"):
                    raise
                raise HotError(f'The definition of condition "{name}" is invalid: {exc.reason}',
                               ["conditions", name]) from None
            evaluating.pop()
            results[name] = value
            return value

        for name in raw:
            evaluate(name)
        return results

    def _context(self, params: Parameters | Mapping[str, Any], conditions: Mapping[str, bool]) -> StackContext:
        values = params.values if isinstance(params, Parameters) else params
        return StackContext(params=values, conditions=conditions, version=self.version, files=self.files)

    def condition_holds(self, condition: Any, conditions: Mapping[str, bool],
                        params: Parameters | Mapping[str, Any], path: list[str]) -> bool:
        if condition is None:
            return True
        return resolve_condition(condition, self._context(params, conditions), path)

    # -- resources ---------------------------------------------------------------------
    def resources(self, params: Parameters | Mapping[str, Any],
                  conditions: Mapping[str, bool] | None = None) -> dict[str, ResourceDefinition]:
        """The definitions of the resources whose condition holds, in template order."""
        conditions = conditions if conditions is not None else self.conditions(params)
        ctx = self._context(params, conditions)
        env = params.env if isinstance(params, Parameters) and params.env is not None else Environment()
        enabled = [
            name for name, data in self.raw_resources.items()
            if self.condition_holds(data.get("condition"), conditions, params,
                                    ["resources", name, "condition"])
        ]
        enabled_set = set(enabled)
        defs: dict[str, ResourceDefinition] = {}
        for name in enabled:
            data = self.raw_resources[name]
            where = ["resources", name]

            def choose(cond: Any, _where: list[str] = where) -> bool | None:
                try:
                    return resolve_condition(cond, ctx, _where)
                except HotError:
                    return None

            def name_of(arg: Any, _where: list[str] = where) -> Any:
                return resolve(arg, ctx, _where)

            deps: set[str] = set()
            for section in ("properties", "metadata"):
                for fn, target, _ in references(data.get(section), self.version, choose, name_of):
                    if fn == "Ref" and target not in self.raw_resources:
                        continue  # 2013-05-23's Ref of a parameter
                    if target not in enabled_set:
                        why = "is disabled by its condition" if target in self.raw_resources else "does not exist"
                        raise HotError(f'The specified reference "{target}" (in {name}.{section}) is '
                                       f'incorrect: the resource {why}.', [*where, section, fn])
                    deps.add(target)
            explicit = data.get("depends_on") or []
            explicit = [explicit] if isinstance(explicit, str) else explicit
            # Heat drops explicit dependencies on resources a condition removed.
            deps |= {d for d in explicit if d in enabled_set or d not in self.raw_resources}
            policy = data.get("deletion_policy")
            if policy is not None:
                policy = resolve(policy, ctx, [*where, "deletion_policy"])
                if policy not in self.version.deletion_policies:
                    raise HotError(f'Invalid deletion policy "{policy}"', [*where, "deletion_policy"])
                policy = self.version.deletion_policies[policy]
            template_type = data["type"]
            implementation = env.resource_type(template_type, name)
            if is_template_name(implementation) and implementation not in self.files:
                raise HotError(f'Could not fetch remote template "{implementation}": it is not among the '
                               "files sent with the template", [*where, "type"])
            defs[name] = ResourceDefinition(
                name=name,
                type=implementation,
                properties=copy.deepcopy(data.get("properties") or {}),
                metadata=copy.deepcopy(data.get("metadata") or {}),
                depends_on=frozenset(deps),
                deletion_policy=policy or "Delete",
                update_policy=copy.deepcopy(data.get("update_policy") or {}),
                condition=data.get("condition"),
                description=str(data.get("description") or ""),
                external_id=data.get("external_id"),
                template_type=template_type,
            )
        return defs

    # -- outputs -----------------------------------------------------------------------
    def outputs(self, params: Parameters | Mapping[str, Any] | None = None,
                conditions: Mapping[str, bool] | None = None) -> dict[str, OutputDefinition]:
        """Every output, in template order. One whose condition is false has
        ``enabled=False`` and a null ``value`` (Heat shows it with a null value).

        ``outputs(conditions, params)`` is understood too: a Parameters is told apart
        from the conditions' dict.
        """
        if isinstance(conditions, Parameters) and not isinstance(params, Parameters):
            params, conditions = conditions, params
        params = params if params is not None else {}
        if conditions is None:
            conditions = self.conditions(params) if self.raw_conditions else {}
        out = {}
        for name, data in self.raw_outputs.items():
            enabled = True
            if data.get("condition") is not None:
                enabled = self.condition_holds(data["condition"], conditions, params,
                                               ["outputs", name, "condition"])
            out[name] = OutputDefinition(
                name=name, value=copy.deepcopy(data.get("value")) if enabled else None,
                description=str(data.get("description") or ""),
                condition=data.get("condition"), enabled=enabled)
        return out

    def check_attributes(self, defs: Mapping[str, ResourceDefinition],
                         attributes_of: Callable[[str], Collection[str] | None]) -> None:
        """Refuse a ``get_attr`` of an attribute the resource's type does not have.

        ``attributes_of(type)`` names a type's attributes (None: it cannot say, as for a
        group's ``resource.N``); ``show`` is every resource's. Resources that ``defs``
        lacks (their condition is false) are not checked.
        """
        for ref in self.attribute_references():
            definition = defs.get(ref.resource)
            if definition is None or not isinstance(ref.attribute, str) or ref.attribute == "show":
                continue
            known = attributes_of(definition.type)
            if known is not None and ref.attribute not in known:
                raise HotError(f"The Referenced Attribute ({ref.resource} {ref.attribute}) is incorrect.",
                               list(ref.path))

    def attribute_references(self) -> list[AttributeReference]:
        """Every ``get_attr`` with a literal resource name, in resources and outputs."""
        found = []
        for section, items in (("resources", self.raw_resources), ("outputs", self.raw_outputs)):
            for name, data in items.items():
                for fn, target, attribute in references(data, self.version):
                    if fn == "get_attr":
                        found.append(AttributeReference(target, attribute, (section, name)))
        return found


# -- parsing ---------------------------------------------------------------------------

def parse_template(body: str | bytes | dict[str, Any], files: Mapping[str, str] | None = None) -> Template:
    """A Template from the request's ``template`` (text or already-parsed dict)."""
    if isinstance(body, (str, bytes)):
        raw = load_document(body)
    else:
        check_depth(body)
        raw = copy.deepcopy(body)
    if not isinstance(raw, dict):
        raise HotError("The template is not a JSON object or YAML mapping.")
    for key in _CFN_VERSION_KEYS:
        if key in raw:
            raise HotError(f"{key} templates (AWS CloudFormation) are not supported by this cloud: "
                           f"write the template in HOT, with {VERSION_KEY}.")
    if VERSION_KEY not in raw:
        raise HotError("The template version is invalid: Template version was not provided")
    version = find_version(raw[VERSION_KEY])
    raw[VERSION_KEY] = version_text(raw[VERSION_KEY])
    for section in raw:
        if section not in version.sections:
            raise HotError(f"The template section is invalid: {section}")
    files = dict(files or {})
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise HotError("The description must be a string", ["description"])
    schemas = _parse_parameters(raw.get("parameters"), version)
    template = Template(raw=raw, version=version, files=files, description=description,
                        parameter_schemas=schemas)
    template.parameter_groups = _parse_parameter_groups(raw.get("parameter_groups"), schemas)
    _check_resources(template)
    duplicates = set(schemas) & set(template.raw_resources)
    if duplicates:  # Heat: a name is a parameter or a resource, never both
        raise HotError(f"Duplicate names {duplicates}")
    _check_conditions(template)
    _check_outputs(template)
    _check_functions(template)
    return template


def _section_map(raw: dict[str, Any], section: str) -> dict[str, Any]:
    value = raw.get(section)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HotError(f"The template section is invalid: {section} must be a map", [section])
    return value


def _parse_parameters(raw: Any, version: Version) -> dict[str, ParamSchema]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise HotError("The template section is invalid: parameters must be a map", ["parameters"])
    return {str(name): parse_schema(str(name), schema, version) for name, schema in raw.items()}


def _parse_parameter_groups(raw: Any, schemas: Mapping[str, ParamSchema]) -> list[dict[str, Any]]:
    if raw is None:
        return []
    where = ["parameter_groups"]
    if not isinstance(raw, list):
        raise HotError("Parameter Groups error: The parameter_groups should be a list.", where)
    grouped: set[str] = set()
    for i, group in enumerate(raw):
        if not isinstance(group, dict) or "parameters" not in group:
            raise HotError("Parameter Groups error: The parameters must be provided for each "
                           "parameter group.", [*where, i])
        names = group["parameters"]
        if not isinstance(names, list):
            raise HotError("Parameter Groups error: The parameters of parameter group should be a list.",
                           [*where, i])
        for name in names:
            if name in grouped:
                raise HotError(f"Parameter Groups error: The {name} parameter must be assigned to "
                               "one parameter group only.", [*where, i])
            if name not in schemas:
                raise HotError(f"Parameter Groups error: The grouped parameter {name} does not "
                               "reference a valid parameter.", [*where, i])
            grouped.add(name)
    return copy.deepcopy(raw)


def _check_resources(template: Template) -> None:
    raw = _section_map(template.raw, "resources")
    template.raw["resources"] = raw
    version = template.version
    for name, data in raw.items():
        where = ["resources", name]
        if not isinstance(name, str) or not name or "/" in name:
            raise HotError(f'Resource name {name!r} is invalid: it must be a non-empty string '
                           'without "/"', where)
        if not isinstance(data, dict):
            raise HotError(f'"{name}" is not a map (a resource definition must be a map with a '
                           '"type")', where)
        for key in data:
            if key not in version.resource_keys:
                raise HotError(f'"{key}" is not a valid keyword inside a resource definition', where)
        if "type" not in data:
            raise HotError(f'Resource {name} is missing "type"', where)
        if not isinstance(data["type"], str) or not data["type"]:
            raise HotError(f"Resource {name} type type must be string", [*where, "type"])
        for key in ("properties", "metadata", "update_policy"):
            value = data.get(key)
            if value is not None and not isinstance(value, dict):
                raise HotError(f"Resource {name} {key} type must be object", [*where, key])
        depends = data.get("depends_on")
        if depends is not None:
            items = [depends] if isinstance(depends, str) else depends
            if not isinstance(items, list) or not all(isinstance(d, str) for d in items):
                raise HotError(f"Resource {name} depends_on must be a list of strings",
                               [*where, "depends_on"])
            for dep in items:
                if dep not in raw:
                    raise HotError(f'The specified reference "{dep}" (in {name}) is incorrect.',
                                   [*where, "depends_on"])
        policy = data.get("deletion_policy")
        if isinstance(policy, str) and policy not in version.deletion_policies:
            raise HotError(f'Invalid deletion policy "{policy}"', [*where, "deletion_policy"])
        if data.get("condition") is not None and isinstance(data["condition"], str) \
                and data["condition"] not in template.raw_conditions:
            raise HotError(f'Invalid condition "{data["condition"]}"', [*where, "condition"])
        for fn, target, _ in references(data, version, branches=False):  # branches: resources()
            if target not in raw and fn != "Ref":
                raise HotError(f'The specified reference "{target}" (in {name}) is incorrect.',
                               [*where, fn])


def _check_conditions(template: Template) -> None:
    raw = template.raw.get("conditions")
    if raw is not None and not isinstance(raw, dict):
        raise HotError(f"Condition definitions must be a map. Found a {type(raw).__name__} instead",
                       ["conditions"])


def _check_outputs(template: Template) -> None:
    raw = template.raw.get("outputs")
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise HotError(f"Outputs must be a map. Found a {type(raw).__name__} instead", ["outputs"])
    for name, data in raw.items():
        where = ["outputs", name]
        if not isinstance(data, dict):
            raise HotError(f"Output definitions must be a map. Found a {type(data).__name__} instead",
                           where)
        if "value" not in data:
            raise HotError("Each output definition must contain a value key.", where)
        unknown = set(data) - template.version.output_keys
        if unknown:
            raise HotError(f'"{sorted(unknown)[0]}" is not a valid keyword inside an output definition',
                           where)
        for fn, target, _ in references(data.get("value"), template.version, branches=False):
            if target not in template.raw_resources:
                raise HotError(f'The specified reference "{target}" (in {name}) is incorrect.',
                               [*where, "value", fn])


def _check_functions(template: Template) -> None:
    """Refuse, at parse time, what resolve would refuse anyway: functions the version
    removed, ``yaql``, parameters and files that do not exist.

    Inside a branch of ``if`` nothing is refused here: Heat only reads the branch the
    condition takes, so a template may hold there what would fail elsewhere
    (``resolve`` refuses it if the branch is taken).
    """
    version = template.version

    def walk(node: Any, path: list[str | int], in_condition: bool, in_branch: bool) -> None:
        call = function_call(node, version, in_condition)
        if call is not None:
            name, args = call
            where = [*path, name]
            allowed = version.condition_functions if in_condition else version.functions
            if not in_branch:
                _check_call(template, name, args, where, in_condition, allowed)
            if name == "if" and isinstance(args, list) and args:
                walk(args[0], [*where, 0], True, in_branch)
                for i, item in enumerate(args[1:], start=1):
                    walk(item, [*where, i], in_condition, True)
                return
            walk(args, where, in_condition, in_branch)
            return
        if isinstance(node, dict):
            for key, item in node.items():
                walk(item, [*path, key], in_condition, in_branch)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, [*path, i], in_condition, in_branch)

    for name, data in template.raw_resources.items():
        for key, value in data.items():
            walk(value, ["resources", name, key], key == "condition", False)
    for name, data in template.raw_outputs.items():
        for key, value in data.items():
            walk(value, ["outputs", name, key], key == "condition", False)
    for name, value in template.raw_conditions.items():
        walk(value, ["conditions", name], True, False)


def _check_call(template: Template, name: str, args: Any, where: list[str | int], in_condition: bool,
                allowed: frozenset[str]) -> None:
    if name not in allowed:
        if in_condition:
            raise HotError(f'The function "{name}" is invalid in this context', where)
        raise HotError(f"The function {name} is not supported in this version of HOT.", where)
    if name == "yaql":
        raise HotError('The function "yaql" is not supported by this cloud: write the '
                       "expression with the other intrinsic functions", where)
    if name == "get_param":
        param = args[0] if isinstance(args, list) and args else args
        if isinstance(param, str) and param not in template.parameter_schemas \
                and not param.startswith("OS::"):
            raise HotError(f"The Parameter ({param}) was not provided.", where)
    if name == "get_file" and isinstance(args, str) and args not in template.files:
        raise HotError(f'No content found in the "files" section for get_file path: {args}', where)

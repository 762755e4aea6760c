"""The HOT language (Heat Orchestration Templates) as a pure library.

No I/O, no trio, no database: text and data in, data or a ``HotError`` out. A
HotError is a ``BadRequest`` (400) whose message names the template path as Heat's
do (``resources.server.properties.x.get_param: ...``), with ``.path`` and
``.heat_type`` (Heat's exception name) for the error body.

The orchestration service uses it like this::

    template = parse_template(body["template"], body.get("files"))       # structure checked
    env = merge_environments(body.get("environment_files"), files,
                             parse_environment(body.get("environment")))
    params = template.parameters(env, body.get("parameters"), lookup,    # values checked
                                 stack_name=name, stack_id=id, project_id=project)
    conditions = template.conditions(params)
    defs = template.resources(params, conditions)   # types after the resource_registry
    template.check_attributes(defs, attributes_of)  # get_attr of a missing attribute: 400
    for name in order(defs):            # delete: reversed(order(defs)); waves: levels(defs)
        props = resolve(defs[name].properties, ctx, ["resources", name, "properties"])
    outputs = template.outputs(params, conditions)  # .value None when its condition is false

``ctx`` is a ``Resolver``: ``param(name)``, ``resource_id(name)`` and
``attribute(name, path)`` where ``path`` is ``[attribute]`` (or ``[]`` for all of
them); the library walks any longer get_attr path itself. ``StackContext`` is a
ready one built from callables. ``validate`` answers ``POST /validate``;
``diff`` makes the update plan; ``TEMPLATE_VERSIONS`` and ``template_functions``
answer ``GET /template_versions[/{v}/functions]``. ``nested_sources`` fingerprints a
nested template and the files it reaches (an update of those alone updates its child stack);
``describe_sources`` says what changed between two.
"""

from cloudbox.orchestration.hot.dependencies import dependents, levels, order, references
from cloudbox.orchestration.hot.environment import (
    Environment, is_template_name, merge_environments, parse_environment,
)
from cloudbox.orchestration.hot.errors import HotError
from cloudbox.orchestration.hot.functions import (
    OMIT, Resolver, StackContext, resolve, resolve_condition,
)
from cloudbox.orchestration.hot.loader import load_document, load_yaml
from cloudbox.orchestration.hot.parameters import (
    HIDDEN_TEXT, PSEUDO_PARAMETERS, Constraint, Parameters, ParamSchema,
)
from cloudbox.orchestration.hot.plan import Plan, PropertyChange, diff
from cloudbox.orchestration.hot.sources import Sources, describe as describe_sources, sources as nested_sources
from cloudbox.orchestration.hot.template import (
    AttributeReference, OutputDefinition, ResourceDefinition, Template, parse_template,
)
from cloudbox.orchestration.hot.validate import validate
from cloudbox.orchestration.hot.versions import (
    TEMPLATE_VERSIONS, Version, find_version, template_functions,
)

__all__ = [
    "HIDDEN_TEXT", "OMIT", "PSEUDO_PARAMETERS", "TEMPLATE_VERSIONS",
    "AttributeReference", "Constraint", "Environment", "HotError", "OutputDefinition",
    "ParamSchema", "Parameters", "Plan", "PropertyChange", "ResourceDefinition", "Resolver",
    "Sources", "StackContext", "Template", "Version",
    "dependents", "describe_sources", "diff", "find_version", "is_template_name", "levels", "load_document",
    "load_yaml", "merge_environments", "nested_sources", "order", "parse_environment", "parse_template",
    "references", "resolve", "resolve_condition", "template_functions", "validate",
]

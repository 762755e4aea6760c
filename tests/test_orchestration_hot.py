"""The HOT library (cloudbox/orchestration/hot): the training examples, parsing, versions and
parameters. Pure and fast: no node, no trio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudbox.errors import BadRequest
from cloudbox.orchestration import hot

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "examples"


def devenv() -> hot.Template:
    return hot.parse_template((EXAMPLES / "devenv.yaml").read_text())


def refused(call, message: str) -> hot.HotError:
    with pytest.raises(hot.HotError) as info:
        call()
    assert isinstance(info.value, BadRequest) and info.value.status == 400
    assert message in info.value.message, info.value.message
    return info.value


def tmpl(body: dict, version: str = "2021-04-16", files: dict | None = None) -> hot.Template:
    return hot.parse_template({"heat_template_version": version, **body}, files)


# -- the examples from the training material -----------------------------------------------

def test_devenv_parses_with_its_version_as_text():
    template = devenv()
    assert template.version.date == "2016-04-08"
    assert template.to_dict()["heat_template_version"] == "2016-04-08"
    assert template.description == "Heat template to deploy an instance"
    assert list(template.parameter_schemas) == ["ssh_key_name", "flavor_name", "root_password",
                                                "private_network"]


def test_devenv_defaults_apply_and_pseudo_parameters_are_set():
    params = devenv().parameters(None, {"ssh_key_name": "demo"}, stack_name="devenv",
                                 stack_id="s-1", project_id="p-1")
    assert params.values == {
        "OS::stack_id": "s-1", "OS::project_id": "p-1", "OS::stack_name": "devenv",
        "ssh_key_name": "demo", "flavor_name": "m1.small", "root_password": "secrete",
        "private_network": "private",
    }


def test_devenv_flavor_outside_allowed_values_is_refused_with_the_description():
    error = refused(lambda: devenv().parameters(None, {"ssh_key_name": "demo", "flavor_name": "m1.large"}),
                    "Parameter 'flavor_name' is invalid: flavor_name must be one of m1.small or m1.medium")
    assert error.message == ("Parameter 'flavor_name' is invalid: "
                             "flavor_name must be one of m1.small or m1.medium")
    assert error.path == ["parameters", "flavor_name"]


def test_devenv_short_password_is_refused_for_length():
    refused(lambda: devenv().parameters(None, {"ssh_key_name": "demo", "root_password": "abc"}),
            "Parameter 'root_password' is invalid: Password MUST be between 1 - 25 characters")
    # 4 characters is the minimum the constraint really allows
    assert devenv().parameters(None, {"ssh_key_name": "d", "root_password": "abcd"}).values[
        "root_password"] == "abcd"


def test_devenv_missing_key_name_is_refused():
    refused(lambda: devenv().parameters(None, {}), "The Parameter (ssh_key_name) was not provided.")


def test_devenv_hidden_password_is_masked():
    params = devenv().parameters(None, {"ssh_key_name": "demo", "root_password": "s3cret!"},
                                 stack_name="devenv")
    shown = params.shown()
    assert shown["root_password"] == "******"
    assert shown["flavor_name"] == "m1.small"
    assert params.values["root_password"] == "s3cret!"  # the engine still gets the value
    assert params.hidden_names() == ["root_password"]


def test_devenv_resources_resolve_and_output_reads_first_address():
    template = devenv()
    params = template.parameters(None, {"ssh_key_name": "demo"})
    conditions = template.conditions(params)
    defs = template.resources(params, conditions)
    assert list(defs) == ["server", "security_group"]
    assert defs["server"].type == "OS::Nova::Server" and defs["server"].depends_on == frozenset()
    ctx = hot.StackContext(params.values, conditions,
                           attribute_of=lambda name, path: {"first_address": "10.0.0.5"}[path[0]])
    props = hot.resolve(defs["server"].properties, ctx)
    assert props["flavor"] == "m1.small" and props["key_name"] == "demo"
    assert props["networks"] == [{"network": "private"}]
    assert "sudo echo root:secrete | chpasswd" in props["user_data"]
    assert "%root_password%" not in props["user_data"]
    outputs = template.outputs(params, conditions)
    assert hot.resolve(outputs["server_private_ip"].value, ctx) == "10.0.0.5"
    assert outputs["server_private_ip"].get("description").startswith("IP address")


def test_new_server_stack_orders_the_port_before_the_server():
    body = json.loads((EXAMPLES / "new_server_stack.json").read_text())
    template = hot.parse_template(body["template"])
    assert template.version.date == "2013-05-23"
    params = template.parameters()
    defs = template.resources(params, template.conditions(params))
    assert defs["new_server"].depends_on == frozenset({"new_server_port"})
    assert hot.order(defs) == ["new_server_port", "new_server"]
    assert list(reversed(hot.order(defs))) == ["new_server", "new_server_port"]
    ctx = hot.StackContext(params.values, resource_id_of=lambda name: f"id-of-{name}")
    assert hot.resolve(defs["new_server"].properties, ctx)["networks"] == [{"port": "id-of-new_server_port"}]


def test_new_server_stack_as_json_text_parses_the_same():
    body = json.loads((EXAMPLES / "new_server_stack.json").read_text())
    assert hot.parse_template(json.dumps(body["template"])).to_dict() == body["template"]


# -- parsing and versions ---------------------------------------------------------------------

@pytest.mark.parametrize("version", ["2013-05-23", "2014-10-16", "2015-04-30", "2015-10-15",
                                     "2016-04-08", "2016-10-14", "2017-02-24", "2017-09-01",
                                     "2018-03-02", "2018-08-31", "2021-04-16"])
def test_every_version_parses_from_yaml_as_a_date(version):
    template = hot.parse_template(f"heat_template_version: {version}\nresources: {{}}\n")
    assert template.version.date == version


@pytest.mark.parametrize("alias,date", [("newton", "2016-10-14"), ("ocata", "2017-02-24"),
                                        ("pike", "2017-09-01"), ("queens", "2018-03-02"),
                                        ("rocky", "2018-08-31"), ("wallaby", "2021-04-16")])
def test_release_names_are_versions(alias, date):
    assert hot.parse_template(f"heat_template_version: {alias}\n").version.date == date


def test_a_date_object_from_a_callers_own_yaml_is_accepted():
    import datetime
    assert hot.parse_template({"heat_template_version": datetime.date(2016, 4, 8)}).version.date == "2016-04-08"


def test_unknown_version_lists_the_known_ones():
    refused(lambda: hot.parse_template("heat_template_version: 2019-01-01\n"),
            'The template version is invalid: "heat_template_version: 2019-01-01". '
            '"heat_template_version" should be one of: 2013-05-23')


def test_missing_version_and_cloudformation_are_refused():
    refused(lambda: hot.parse_template("resources: {}\n"), "Template version was not provided")
    refused(lambda: hot.parse_template('{"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}}'),
            "AWSTemplateFormatVersion templates (AWS CloudFormation) are not supported")


def test_bad_text_is_a_400_not_a_crash():
    refused(lambda: hot.parse_template("heat_template_version: [unclosed\n"), "Error parsing template")
    refused(lambda: hot.parse_template("- a list\n"), "The template is not a JSON object or YAML mapping.")
    refused(lambda: hot.parse_template(b"\xff\xfe"), "not UTF-8")
    refused(lambda: hot.parse_template("x: " + "a" * 600000), "exceeds maximum allowed size")


def test_yaml_tags_beyond_the_safe_set_are_refused():
    refused(lambda: hot.parse_template("heat_template_version: 2016-04-08\nx: !!python/object:os.system {}\n"),
            "Error parsing template")


def test_sections_are_checked_per_version():
    refused(lambda: tmpl({"resourcez": {}}), "The template section is invalid: resourcez")
    refused(lambda: tmpl({"conditions": {}}, "2016-04-08"), "The template section is invalid: conditions")
    assert tmpl({"conditions": {}}, "2016-10-14").raw_conditions == {}


def test_resource_definitions_are_checked():
    refused(lambda: tmpl({"resources": {"a": {"properties": {}}}}), 'Resource a is missing "type"')
    refused(lambda: tmpl({"resources": {"a": {"type": "OS::Heat::None", "propertes": {}}}}),
            'resources.a: "propertes" is not a valid keyword inside a resource definition')
    refused(lambda: tmpl({"resources": {"a": {"type": "OS::Heat::None", "condition": True}}}, "2016-04-08"),
            '"condition" is not a valid keyword')
    refused(lambda: tmpl({"resources": {"a": {"type": "OS::Heat::None", "properties": [1]}}}),
            "Resource a properties type must be object")
    refused(lambda: tmpl({"resources": {"a": {"type": "OS::Heat::None", "depends_on": ["b"]}}}),
            'The specified reference "b" (in a) is incorrect.')
    refused(lambda: tmpl({"resources": {"a": {"type": "OS::Heat::None", "depends_on": [1]}}}),
            "depends_on must be a list of strings")
    refused(lambda: tmpl({"resources": {"a": {"type": "OS::Heat::None", "deletion_policy": "Keep"}}}),
            'Invalid deletion policy "Keep"')
    refused(lambda: tmpl({"resources": {"a": {"type": "OS::Heat::None",
                                              "properties": {"x": {"get_resource": "nope"}}}}}),
            'resources.a.get_resource: The specified reference "nope" (in a) is incorrect.')
    refused(lambda: tmpl({"resources": {"a": {"type": "OS::Heat::None",
                                              "properties": {"x": {"get_attr": ["nope", "y"]}}}}}),
            'The specified reference "nope" (in a) is incorrect.')


def test_a_name_cannot_be_both_a_parameter_and_a_resource():
    refused(lambda: tmpl({"parameters": {"net": {"type": "string"}}, "resources": {"net": {"type": "T"}}}),
            "Duplicate names {'net'}")


def test_deletion_policy_lowercase_aliases_arrive_in_2016_10_14():
    refused(lambda: tmpl({"resources": {"a": {"type": "T", "deletion_policy": "retain"}}}, "2016-04-08"),
            'Invalid deletion policy "retain"')
    template = tmpl({"resources": {"a": {"type": "T", "deletion_policy": "retain"}}}, "2016-10-14")
    params = template.parameters()
    assert template.resources(params)["a"].deletion_policy == "Retain"


def test_outputs_are_checked():
    refused(lambda: tmpl({"outputs": {"o": {"description": "x"}}}),
            "Each output definition must contain a value key.")
    refused(lambda: tmpl({"outputs": {"o": "x"}}), "Output definitions must be a map. Found a str instead")
    refused(lambda: tmpl({"outputs": {"o": {"value": {"get_attr": ["ghost", "a"]}}}}),
            'The specified reference "ghost" (in o) is incorrect.')


def test_parameter_groups_are_checked_and_kept():
    body = {"parameters": {"a": {"type": "string"}, "b": {"type": "string"}}}
    groups = [{"label": "one", "parameters": ["a"]}, {"label": "two", "parameters": ["b"]}]
    assert tmpl({**body, "parameter_groups": groups}).parameter_groups == groups
    refused(lambda: tmpl({**body, "parameter_groups": {"a": 1}}), "The parameter_groups should be a list.")
    refused(lambda: tmpl({**body, "parameter_groups": [{"label": "x"}]}),
            "The parameters must be provided for each parameter group.")
    refused(lambda: tmpl({**body, "parameter_groups": [{"parameters": ["a"]}, {"parameters": ["a"]}]}),
            "The a parameter must be assigned to one parameter group only.")
    refused(lambda: tmpl({**body, "parameter_groups": [{"parameters": ["z"]}]}),
            "The grouped parameter z does not reference a valid parameter.")


def test_template_versions_and_their_functions():
    versions = [v["version"] for v in hot.TEMPLATE_VERSIONS]
    assert versions[0] == "heat_template_version.2013-05-23"
    assert versions[-1] == "heat_template_version.2021-04-16"
    assert {"version": "heat_template_version.2016-10-14", "type": "hot",
            "aliases": ["heat_template_version.newton"]} in hot.TEMPLATE_VERSIONS

    def names(version: str, **kw) -> set[str]:
        return {f["functions"] for f in hot.template_functions(version, **kw)}

    assert "repeat" not in names("heat_template_version.2013-05-23")
    assert "Fn::Join" in names("heat_template_version.2013-05-23")
    assert "repeat" in names("2015-04-30") and "Fn::Join" not in names("2015-04-30")
    assert "Fn::Select" in names("2015-04-30") and "Fn::Select" not in names("2015-10-15")
    assert "if" not in names("2016-04-08") and "if" in names("newton")
    assert {"make_url", "list_concat", "contains", "str_replace_vstrict"} <= names("pike")
    assert names("2016-10-14", with_condition_func=True) == {"get_param", "equals", "not", "and", "or"}
    assert names("wallaby", with_condition_func=True) == {"get_param", "equals", "not", "and", "or",
                                                         "yaql", "contains"}
    assert all(f["description"] for f in hot.template_functions("wallaby"))


# -- parameters -----------------------------------------------------------------------------

def params_of(schema: dict, value=None, version: str = "2021-04-16", lookup=None, **kw):
    template = tmpl({"parameters": {"p": schema}}, version)
    given = {} if value is None else {"p": value}
    return template.parameters(None, given, lookup, **kw).values.get("p")


@pytest.mark.parametrize("kind,given,expected", [
    ("string", "x", "x"), ("string", 42, "42"), ("string", True, "True"),
    ("number", "42", 42), ("number", "4.5", 4.5), ("number", 7, 7),
    ("boolean", "yes", True), ("boolean", "0", False), ("boolean", True, True), ("boolean", "On", True),
    ("comma_delimited_list", "a, b,c", ["a", " b", "c"]), ("comma_delimited_list", ["a", 1], ["a", "1"]),
    ("comma_delimited_list", "", []),
    ("json", '{"a": [1]}', {"a": [1]}), ("json", {"k": "v"}, {"k": "v"}), ("json", "[1, 2]", [1, 2]),
])
def test_parameter_types_convert(kind, given, expected):
    assert params_of({"type": kind}, given) == expected


@pytest.mark.parametrize("kind,given,message", [
    ("number", "abc", "could not convert string to float: 'abc'"),
    ("boolean", "maybe", "Unrecognized value 'maybe', acceptable values are:"),
    ("json", "{not json", "Value must be valid JSON"),
    ("json", "42", "Value must be valid JSON"),
    ("string", {"a": 1}, 'Value "{\'a\': 1}" is invalid for data type "string".'),
])
def test_parameter_values_of_the_wrong_type_are_refused(kind, given, message):
    refused(lambda: params_of({"type": kind}, given), f"Parameter 'p' is invalid: {message}")


def test_parameter_schema_errors():
    refused(lambda: params_of({"default": 1}), "Missing parameter type for parameter: p")
    refused(lambda: params_of({"type": "integer"}), "Invalid type (integer)")
    refused(lambda: params_of({"type": "string", "colour": "red"}), "Invalid key 'colour' for parameter (p)")
    refused(lambda: params_of({"type": "string", "tags": ["a"]}, version="2017-09-01"), "Invalid key 'tags'")
    assert params_of({"type": "string", "tags": ["a"], "default": "x"}, version="2018-03-02") == "x"
    refused(lambda: params_of({"type": "string", "constraints": {"length": {"min": 1}}}), "expected a list")
    refused(lambda: params_of({"type": "string", "constraints": [{"range": {"min": 1}}]}),
            "range constraint invalid for String")
    refused(lambda: params_of({"type": "number", "constraints": [{"allowed_pattern": "[0-9]+"}]}),
            "allowed_pattern constraint invalid for Number")
    refused(lambda: params_of({"type": "string", "constraints": [{"description": "x"}]}),
            "No constraint expressed")
    refused(lambda: params_of({"type": "string", "constraints": [{"length": {}}]}),
            "A length constraint must have a min value and/or a max value specified.")
    refused(lambda: params_of({"type": "string", "constraints": [{"allowed_pattern": "("}]}),
            "Invalid allowed_pattern")


def test_a_default_that_breaks_its_own_constraint_is_refused():
    refused(lambda: params_of({"type": "string", "default": "m1.large",
                               "constraints": [{"allowed_values": ["m1.small"]}]}, "m1.small"),
            "Parameter 'p' is invalid: Invalid default m1.large")


@pytest.mark.parametrize("constraint,good,bad,message", [
    ({"length": {"min": 2, "max": 3}}, "ab", "abcd", "length (4) is out of range (min: 2, max: 3)"),
    ({"length": {"min": 2}}, "ab", "a", "length (1) is out of range (min: 2, max: None)"),
    ({"allowed_values": ["a", "b"]}, "b", "c", '"c" is not an allowed value ["a", "b"]'),
    ({"allowed_pattern": "[a-z]+"}, "abc", "abc1", '"abc1" does not match pattern "[a-z]+"'),
])
def test_string_constraints_with_heats_messages(constraint, good, bad, message):
    schema = {"type": "string", "constraints": [constraint]}
    assert params_of(schema, good) == good
    refused(lambda: params_of(schema, bad), f"Parameter 'p' is invalid: {message}")


@pytest.mark.parametrize("constraint,good,bad,message", [
    ({"range": {"min": 1, "max": 10}}, "10", "11", "11 is out of range (min: 1, max: 10)"),
    ({"range": {"max": 0.5}}, "0.5", "0.6", "0.6 is out of range (min: None, max: 0.5)"),
    ({"modulo": {"step": 2, "offset": 1}}, "7", "8", "8 is not a multiple of 2 with an offset of 1"),
    ({"allowed_values": [1, 2]}, "2", "3", '3 is not an allowed value [1, 2]'),
])
def test_number_constraints(constraint, good, bad, message):
    schema = {"type": "number", "constraints": [constraint]}
    assert params_of(schema, good) == int(good) if "." not in good else float(good)
    refused(lambda: params_of(schema, bad), f"Parameter 'p' is invalid: {message}")


def test_modulo_exists_from_2017_02_24_and_checks_its_own_spec():
    schema = {"type": "number", "constraints": [{"modulo": {"step": 2, "offset": 0}}]}
    refused(lambda: params_of(schema, 2, version="2016-10-14"), "Invalid key 'modulo'")
    assert params_of(schema, 4, version="2017-02-24") == 4
    refused(lambda: params_of({"type": "number", "constraints": [{"modulo": {"step": 2, "offset": 3}}]}),
            "offset must be smaller (by absolute value) than step.")
    refused(lambda: params_of({"type": "number", "constraints": [{"modulo": {"step": 0, "offset": 0}}]}),
            "step cannot be 0.")


def test_list_and_json_constraints():
    listed = {"type": "comma_delimited_list", "constraints": [{"allowed_values": ["a", "b"]},
                                                               {"length": {"max": 2}}]}
    assert params_of(listed, "a,b") == ["a", "b"]
    refused(lambda: params_of(listed, "a,c"), "is not an allowed value")
    refused(lambda: params_of(listed, "a,b,a"), "length (3) is out of range")
    mapping = {"type": "json", "constraints": [{"length": {"min": 1}}]}
    refused(lambda: params_of(mapping, "{}"), "length (0) is out of range (min: 1, max: None)")


def test_custom_constraints_ask_the_callers_lookup():
    asked = []

    def lookup(kind, value):
        asked.append((kind, value))
        if kind == "nova.flavor":
            return None if value == "m1.small" else f"Flavor {value} could not be found."
        raise KeyError(kind)

    schema = {"type": "string", "constraints": [{"custom_constraint": "nova.flavor"}]}
    assert params_of(schema, "m1.small", lookup=lookup) == "m1.small"
    refused(lambda: params_of(schema, "m9", lookup=lookup),
            "Parameter 'p' is invalid: Error validating value 'm9': Flavor m9 could not be found.")
    described = {"type": "string", "constraints": [{"custom_constraint": "glance.image",
                                                    "description": "Must be an image"}]}
    refused(lambda: params_of(described, "x", lookup=lookup), "Parameter 'p' is invalid: Must be an image")
    unknown = {"type": "string", "constraints": [{"custom_constraint": "foo.bar"}]}
    refused(lambda: params_of(unknown, "x", lookup=lookup), '"x" does not validate foo.bar (constraint not found)')
    assert ("nova.flavor", "m1.small") in asked
    # the template's default is never checked against a custom constraint (as Heat)
    assert params_of({**schema, "default": "m9"}, lookup=None) == "m9"


def test_unknown_user_parameters_are_refused_but_unknown_parameter_defaults_ignored():
    template = tmpl({"parameters": {"a": {"type": "string", "default": "x"}}})
    refused(lambda: template.parameters(None, {"b": "1"}), "The Parameter (b) was not defined in template.")
    env = hot.parse_environment({"parameter_defaults": {"a": "from-env", "b": "ignored"}})
    assert template.parameters(env, {}).values["a"] == "from-env"
    assert template.parameters(env, {"a": "user"}).values["a"] == "user"
    env2 = hot.parse_environment({"parameters": {"a": "env-param"}})
    assert template.parameters(env2, {}).values["a"] == "env-param"
    assert template.parameters(env2, {"a": "user"}).values["a"] == "user"


def test_shown_values_are_text_like_heats():
    template = tmpl({"parameters": {
        "n": {"type": "number", "default": 3}, "l": {"type": "comma_delimited_list", "default": "a,b"},
        "j": {"type": "json", "default": {"k": 1}}, "b": {"type": "boolean", "default": True},
        "h": {"type": "json", "default": {"k": 1}, "hidden": True}}})
    shown = template.parameters(stack_name="s").shown()
    assert shown["n"] == "3" and shown["l"] == "a,b" and shown["j"] == '{"k": 1}'
    assert shown["b"] == "True" and shown["h"] == "******" and shown["OS::stack_name"] == "s"


def test_immutable_parameters_cannot_change_on_update():
    template = tmpl({"parameters": {"zone": {"type": "string", "immutable": True},
                                    "size": {"type": "number"}}})
    old = template.parameters(None, {"zone": "a", "size": 1})
    old.check_immutable(template.parameters(None, {"zone": "a", "size": 2}))
    refused(lambda: old.check_immutable(template.parameters(None, {"zone": "b", "size": 1})),
            "The following parameters are immutable and may not be updated: zone")


def test_errors_carry_heats_exception_names():
    def kind(call) -> str:
        with pytest.raises(hot.HotError) as info:
            call()
        return info.value.heat_type

    assert kind(lambda: hot.parse_template("heat_template_version: 1\n")) == "InvalidTemplateVersion"
    assert kind(lambda: tmpl({"x": 1})) == "InvalidTemplateSection"
    assert kind(lambda: devenv().parameters(None, {})) == "UserParameterMissing"
    assert kind(lambda: devenv().parameters(None, {"nope": 1})) == "UnknownUserParameter"
    assert kind(lambda: devenv().parameters(None, {"ssh_key_name": "k", "flavor_name": "x"})) == "StackValidationFailed"
    assert kind(lambda: tmpl({"resources": {"a": {"type": "T", "depends_on": "b"}}})) == "InvalidTemplateReference"


def test_absurd_nesting_and_expansion_are_400s():
    deep: dict = {"v": 1}
    for _ in range(150):
        deep = {"k": deep}
    refused(lambda: tmpl({"resources": {"a": {"type": "T", "properties": deep}}}), "nested more than 100 levels")
    refused(lambda: hot.parse_template("heat_template_version: 2016-04-08\nx: " + "[" * 500 + "]" * 500),
            "nested more than 100 levels")
    refused(lambda: hot.parse_template('{"heat_template_version": "2016-04-08", "x": ' + "[" * 500 + "]" * 500 + "}"),
            "nested more than 100 levels")
    refused(lambda: hot.parse_environment({"parameters": deep}), "nested more than 100 levels")
    big = {"repeat": {"for_each": {f"<{i}>": [str(n) for n in range(10)] for i in range(5)}, "template": "x"}}
    refused(lambda: hot.resolve(big, hot.StackContext({})), "repeat would make 100000 items; at most 10000")


def test_yaml_values_json_cannot_carry_are_refused():
    refused(lambda: hot.parse_template("heat_template_version: 2016-04-08\ndescription: !!binary aGVsbG8=\n"),
            "The template holds a bytes value")
    refused(lambda: hot.parse_template("heat_template_version: 2016-04-08\nx: !!set {a, b}\n"),
            "The template holds a set value")
    refused(lambda: hot.parse_environment("parameters: {a: !!binary aGVsbG8=}"), "The environment holds a bytes value")


def test_allowed_pattern_runs_in_linear_time_as_heats_anchored_match():
    import time
    schema = {"type": "string", "constraints": [{"allowed_pattern": "(a+)+$"}]}
    started = time.monotonic()
    refused(lambda: params_of(schema, "a" * 40 + "!"), 'does not match pattern "(a+)+$"')
    assert time.monotonic() - started < 1  # Python's re would backtrack for minutes here
    # as Heat's re.match: the first match from the start must cover the whole value
    refused(lambda: params_of({"type": "string", "constraints": [{"allowed_pattern": "a|ab"}]}, "ab"),
            '"ab" does not match pattern "a|ab"')
    assert params_of({"type": "string", "constraints": [{"allowed_pattern": "ab|a"}]}, "ab") == "ab"
    # lookaround (which RE2 lacks) runs with re, unless the pattern nests repetitions
    password = {"type": "string", "constraints": [{"allowed_pattern": "(?=.*[0-9])(?=.*[A-Z]).{6,}"}]}
    assert params_of(password, "Secret1") == "Secret1"
    refused(lambda: params_of(password, "secret1"), 'does not match pattern')
    refused(lambda: params_of({"type": "string", "constraints": [{"allowed_pattern": "(?=x)(a+)+$"}]}, "x"),
            "Invalid allowed_pattern '(?=x)(a+)+$': it repeats a part that itself repeats")
    refused(lambda: params_of({"type": "string", "constraints": [{"allowed_pattern": "(?=.*[A-Z]).*"}]},
                              "A" * 5000), "values over 4096 characters are not matched")
    refused(lambda: params_of({"type": "string", "constraints": [{"allowed_pattern": "(?<=a"}]}, "a"),
            "Invalid allowed_pattern")
    # Python's \u escapes work as in Heat
    chinese = {"type": "string", "constraints": [{"allowed_pattern": "^[_0-9a-zA-Z\\u4e00-\\u9fa5]+$"}]}
    assert params_of(chinese, "名字_1") == "名字_1"


def test_a_json_parameter_nested_absurdly_deep_is_refused():
    refused(lambda: params_of({"type": "json"}, "[" * 5000 + "]" * 5000), "Parameter 'p' is invalid: Value must be valid JSON")
    refused(lambda: params_of({"type": "json"}, "[" * 150 + "]" * 150), "nested more than 100 levels")

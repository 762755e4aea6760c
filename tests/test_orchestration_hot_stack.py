"""The HOT library's stack-level answers: conditions, dependencies and order (cycles refused),
environments and the resource registry, outputs, template-validate and the update plan. Pure."""

from __future__ import annotations

import pytest

from cloudbox.orchestration import hot


def refused(call, message: str) -> hot.HotError:
    with pytest.raises(hot.HotError) as info:
        call()
    assert info.value.status == 400
    assert message in info.value.message, info.value.message
    return info.value


def tmpl(body: dict, version: str = "2021-04-16", files: dict | None = None) -> hot.Template:
    return hot.parse_template({"heat_template_version": version, **body}, files)


def defs_of(template: hot.Template, user: dict | None = None, env: hot.Environment | None = None):
    params = template.parameters(env, user or {})
    return template.resources(params, template.conditions(params))


# -- conditions ---------------------------------------------------------------------------

CONDITIONAL = {
    "parameters": {"env_type": {"type": "string", "default": "test"},
                   "zone": {"type": "string", "default": ""}},
    "conditions": {
        "is_prod": {"equals": [{"get_param": "env_type"}, "prod"]},
        "is_test": {"not": "is_prod"},
        "has_zone": {"not": {"equals": [{"get_param": "zone"}, ""]}},
        "prod_in_zone": {"and": ["is_prod", "has_zone"]},
        "any": {"or": ["is_prod", "has_zone", False]},
        "known_env": {"contains": [{"get_param": "env_type"}, ["prod", "test"]]},
    },
    "resources": {
        "volume": {"type": "OS::Cinder::Volume", "condition": "is_prod", "properties": {"size": 10}},
        "server": {"type": "OS::Nova::Server", "properties": {
            "name": {"if": ["is_prod", "prod-server", "test-server"]},
            "availability_zone": {"if": ["has_zone", {"get_param": "zone"}]},
            "block_device_mapping": {"if": ["is_prod", [{"volume_id": {"get_resource": "volume"}}], []]},
        }},
        "always": {"type": "OS::Heat::None", "condition": True, "depends_on": ["volume"]},
        "never": {"type": "OS::Heat::None", "condition": {"and": ["is_prod", {"not": "is_prod"}]}},
    },
    "outputs": {
        "volume_id": {"value": {"get_resource": "volume"}, "condition": "is_prod"},
        "name": {"value": {"get_attr": ["server", "name"]}},
    },
}


def test_conditions_evaluate_with_references_between_them():
    template = tmpl(CONDITIONAL)
    assert template.conditions(template.parameters()) == {
        "is_prod": False, "is_test": True, "has_zone": False, "prod_in_zone": False, "any": False,
        "known_env": True}
    params = template.parameters(None, {"env_type": "prod", "zone": "az1"})
    assert template.conditions(params) == {
        "is_prod": True, "is_test": False, "has_zone": True, "prod_in_zone": True, "any": True,
        "known_env": True}


def test_conditions_choose_resources_branches_and_dependencies():
    template = tmpl(CONDITIONAL)
    test = defs_of(template)
    assert list(test) == ["server", "always"]
    assert test["server"].depends_on == frozenset()  # the prod branch's get_resource is not taken
    assert test["always"].depends_on == frozenset()  # Heat drops depends_on a disabled resource
    prod = defs_of(template, {"env_type": "prod"})
    assert list(prod) == ["volume", "server", "always"]
    assert prod["server"].depends_on == frozenset({"volume"})
    assert prod["always"].depends_on == frozenset({"volume"})
    assert hot.order(prod) == ["volume", "server", "always"]
    params = template.parameters()
    ctx = hot.StackContext(params.values, template.conditions(params))
    assert hot.resolve(test["server"].properties, ctx) == {"name": "test-server", "block_device_mapping": []}


def test_outputs_whose_condition_is_false_have_no_value():
    template = tmpl(CONDITIONAL)
    params = template.parameters()
    outputs = template.outputs(params, template.conditions(params))
    assert outputs["volume_id"].enabled is False and outputs["volume_id"].value is None
    assert outputs["name"].enabled is True and outputs["name"].value == {"get_attr": ["server", "name"]}
    prod = template.parameters(None, {"env_type": "prod"})
    assert template.outputs(prod)["volume_id"].value == {"get_resource": "volume"}


def test_condition_errors():
    refused(lambda: tmpl({"conditions": {"a": {"get_resource": "x"}}}),
            'conditions.a.get_resource: The function "get_resource" is invalid in this context')
    refused(lambda: tmpl({"conditions": ["a"]}), "Condition definitions must be a map. Found a list instead")
    refused(lambda: tmpl({"resources": {"r": {"type": "T", "condition": "ghost"}}}), 'Invalid condition "ghost"')
    loop = tmpl({"conditions": {"a": {"not": "b"}, "b": {"not": "a"}}})
    refused(lambda: loop.conditions(loop.parameters()), 'Circular definition for condition "a"')
    bad = tmpl({"conditions": {"a": {"equals": [1]}}})
    refused(lambda: bad.conditions(bad.parameters()),
            'The definition of condition "a" is invalid: Arguments to "equals" must be of the form: [value_1, value_2]')
    odd = tmpl({"conditions": {"a": {"and": ["x"]}, "x": True}})
    refused(lambda: odd.conditions(odd.parameters()), 'The minimum number of condition arguments to "and" is 2.')
    unknown = tmpl({"conditions": {"a": {"not": "nope"}}})
    refused(lambda: unknown.conditions(unknown.parameters()), 'Invalid condition "nope"')


def test_contains_and_yaql_in_conditions_follow_the_version():
    # before 2017-09-01 "contains" is no function there: the map is not a condition
    old = tmpl({"conditions": {"a": {"contains": ["x", ["x"]]}}}, "2017-02-24")
    refused(lambda: old.conditions(old.parameters()), 'The definition of condition "a" is invalid')
    template = tmpl({"conditions": {"a": {"contains": ["x", ["x"]]}}}, "2017-09-01")
    assert template.conditions(template.parameters()) == {"a": True}
    refused(lambda: tmpl({"conditions": {"a": {"yaql": {"expression": "true", "data": {}}}}}),
            'The function "yaql" is not supported by this cloud')


def test_a_boolean_parameter_can_be_a_condition():
    template = tmpl({"parameters": {"on": {"type": "boolean", "default": False}},
                     "conditions": {"enabled": {"get_param": "on"}},
                     "resources": {"r": {"type": "T", "condition": "enabled"}}})
    assert defs_of(template) == {}
    assert list(defs_of(template, {"on": "true"})) == ["r"]


# -- dependencies and order ---------------------------------------------------------------------

CHAIN = {
    "resources": {
        "server": {"type": "OS::Nova::Server", "properties": {
            "networks": [{"port": {"get_resource": "port"}}],
            "user_data": {"str_replace": {"template": "ip=$ip", "params": {
                "$ip": {"get_attr": ["fip", "floating_ip_address"]}}}}}},
        "fip": {"type": "OS::Neutron::FloatingIP", "properties": {"floating_network": "public"}},
        "port": {"type": "OS::Neutron::Port", "properties": {"network": {"get_resource": "net"}},
                 "metadata": {"subnet": {"get_resource": "subnet"}}},
        "subnet": {"type": "OS::Neutron::Subnet", "properties": {"network": {"get_resource": "net"}}},
        "net": {"type": "OS::Neutron::Net"},
        "sg": {"type": "OS::Neutron::SecurityGroup", "depends_on": "net"},
    },
}


def test_implicit_and_explicit_dependencies():
    defs = defs_of(tmpl(CHAIN))
    assert defs["server"].depends_on == frozenset({"port", "fip"})
    assert defs["port"].depends_on == frozenset({"net", "subnet"})  # metadata counts too
    assert defs["sg"].depends_on == frozenset({"net"})  # depends_on as a single string
    assert defs["net"].depends_on == frozenset()


def test_order_puts_dependencies_first_and_keeps_template_order_otherwise():
    defs = defs_of(tmpl(CHAIN))
    assert hot.order(defs) == ["fip", "net", "subnet", "port", "server", "sg"]
    assert hot.levels(defs) == [["fip", "net"], ["subnet", "sg"], ["port"], ["server"]]
    assert hot.dependents(defs, ["net"]) == {"subnet", "port", "server", "sg"}


def test_a_dependency_named_by_a_parameter_counts():
    template = tmpl({"parameters": {"which": {"type": "string", "default": "b"}},
                     "resources": {"a": {"type": "T", "properties": {"x": {"get_resource": {"get_param": "which"}}}},
                                   "b": {"type": "T"}}})
    assert defs_of(template)["a"].depends_on == frozenset({"b"})


def test_cycles_are_refused():
    cycle = {"resources": {
        "a": {"type": "T", "properties": {"x": {"get_resource": "b"}}},
        "b": {"type": "T", "properties": {"x": {"get_attr": ["c", "y"]}}},
        "c": {"type": "T", "depends_on": ["a"]},
        "d": {"type": "T"},
    }}
    error = refused(lambda: hot.order(defs_of(tmpl(cycle))), "Circular Dependency Found: ")
    assert "a -> b -> c -> a" in error.message
    refused(lambda: hot.order(defs_of(tmpl({"resources": {"a": {"type": "T", "depends_on": "a"}}}))),
            "Circular Dependency Found: a")
    refused(lambda: hot.validate(tmpl(cycle)), "Circular Dependency Found")


def test_order_refuses_a_dependency_it_does_not_have():
    defs = {"a": hot.ResourceDefinition("a", "T", depends_on=frozenset({"z"}))}
    refused(lambda: hot.order(defs), 'The specified reference "z" (in a) is incorrect.')


def test_a_reference_to_a_resource_its_condition_removed_is_refused():
    template = tmpl({"conditions": {"off": False}, "resources": {
        "a": {"type": "T", "condition": "off"},
        "b": {"type": "T", "properties": {"x": {"get_resource": "a"}}}}})
    refused(lambda: defs_of(template), 'The specified reference "a" (in b.properties) is incorrect: '
                                       'the resource is disabled by its condition.')


def test_attribute_references_for_the_engine_to_check():
    refs = tmpl(CHAIN).attribute_references()
    assert refs == [hot.AttributeReference("fip", "floating_ip_address", ("resources", "server"))]
    refs = tmpl({"resources": {"s": {"type": "T"}},
                 "outputs": {"all": {"value": {"get_attr": ["s"]}}}}).attribute_references()
    assert refs == [hot.AttributeReference("s", None, ("outputs", "all"))]


# -- environments ------------------------------------------------------------------------------

def test_environment_parses_and_shows_like_heats():
    env = hot.parse_environment("""
parameters:
  key_name: demo
parameter_defaults:
  flavor: m1.small
resource_registry:
  My::Server: OS::Nova::Server
  OS::Networking::*: OS::Neutron::*
  My::Stack: nested.yaml
  resources:
    special:
      My::Server: special.yaml
event_sinks:
  - type: zaqar-queue
    target: q
""")
    assert env.to_dict() == {
        "parameters": {"key_name": "demo"},
        "parameter_defaults": {"flavor": "m1.small"},
        "resource_registry": {"My::Server": "OS::Nova::Server", "OS::Networking::*": "OS::Neutron::*",
                              "My::Stack": "nested.yaml",
                              "resources": {"special": {"My::Server": "special.yaml"}}},
        "event_sinks": [{"type": "zaqar-queue", "target": "q"}],
        "encrypted_param_names": [],
    }
    assert env.resource_type("My::Server") == "OS::Nova::Server"
    assert env.resource_type("My::Server", "special") == "special.yaml"
    assert env.resource_type("OS::Networking::Port") == "OS::Neutron::Port"
    assert env.resource_type("My::Stack") == "nested.yaml"
    assert env.resource_type("OS::Nova::Server") == "OS::Nova::Server"
    assert env.template_names() == {"nested.yaml", "special.yaml"}
    assert hot.parse_environment(None).to_dict()["resource_registry"] == {"resources": {}}


def test_environment_errors():
    refused(lambda: hot.parse_environment("paramters: {}"), 'environment has wrong section "paramters"')
    refused(lambda: hot.parse_environment("parameters: [1]"), 'The environment\'s "parameters" must be a map')
    refused(lambda: hot.parse_environment("- x"), "The environment is not a JSON object or YAML mapping.")
    refused(lambda: hot.parse_environment("resource_registry: {A: [1]}"), "Invalid resource_registry entry for A")
    refused(lambda: hot.parse_environment("parameter_merge_strategies: {a: sum}"), "Invalid merge strategy 'sum'")
    loop = hot.parse_environment({"resource_registry": {"A::B": "C::D", "C::D": "A::B"}})
    refused(lambda: loop.resource_type("A::B"), "maps to itself")


def test_environment_merge_later_wins_and_null_removes():
    base = hot.parse_environment({"parameters": {"a": "1", "b": "1"},
                                  "resource_registry": {"X::Y": "x.yaml", "P::Q": "R::S",
                                                        "resources": {"r": {"X::Y": "r.yaml"}}}})
    top = hot.parse_environment({"parameters": {"b": "2"}, "parameter_defaults": {"c": 3},
                                 "resource_registry": {"P::Q": None, "resources": {"r": {"Z::Z": "z.yaml"}}}})
    merged = base.merge(top)
    assert merged.parameters == {"a": "1", "b": "2"} and merged.parameter_defaults == {"c": 3}
    assert merged.resource_registry == {"X::Y": "x.yaml",
                                        "resources": {"r": {"X::Y": "r.yaml", "Z::Z": "z.yaml"}}}
    assert base.parameters == {"a": "1", "b": "1"}  # merge makes a new environment


def test_parameter_merge_strategies():
    base = hot.parse_environment({"parameter_defaults": {"l": "a", "m": {"x": {"k": 1}}, "o": "keep"}})
    top = hot.parse_environment({"parameter_defaults": {"l": "b", "m": {"x": {"j": 2}}, "o": "new"},
                                 "parameter_merge_strategies": {"l": "merge", "m": "deep_merge"}})
    assert base.merge(top).parameter_defaults == {"l": "a,b", "m": {"x": {"k": 1, "j": 2}}, "o": "new"}


def test_environment_files_apply_in_order():
    files = {"one.yaml": "parameters: {a: one, b: one}", "two.yaml": "parameters: {b: two}"}
    base = hot.parse_environment({"parameters": {"a": "body", "c": "body"}})
    env = hot.merge_environments(["one.yaml", "two.yaml"], files, base)
    assert env.parameters == {"a": "one", "b": "two", "c": "body"}  # the files go on top, in order
    refused(lambda: hot.merge_environments(["three.yaml"], files), "three.yaml")


def test_registry_maps_resource_types_in_definitions():
    env = hot.parse_environment({"resource_registry": {"My::Net": "OS::Neutron::Net",
                                                       "resources": {"b": {"My::Net": "net.yaml"}}}})
    body = {"resources": {"a": {"type": "My::Net"}, "b": {"type": "My::Net"}}}
    refused(lambda: defs_of(tmpl(body), env=env),
            'resources.b.type: Could not fetch remote template "net.yaml": it is not among the files')
    template = tmpl(body, files={"net.yaml": "heat_template_version: 2016-04-08\n"})
    defs = defs_of(template, env=env)
    assert (defs["a"].type, defs["a"].template_type) == ("OS::Neutron::Net", "My::Net")
    assert defs["b"].type == "net.yaml" and hot.is_template_name(defs["b"].type)


# -- validate ----------------------------------------------------------------------------------

def test_validate_answers_in_heats_shape():
    template = tmpl({
        "description": "A template",
        "parameter_groups": [{"label": "sizes", "parameters": ["n"]}],
        "parameters": {
            "n": {"type": "number", "label": "Count", "default": 2,
                  "constraints": [{"range": {"min": 1, "max": 5}, "description": "1 to 5"},
                                  {"modulo": {"step": 2, "offset": 0}, "description": "even"}]},
            "img": {"type": "string", "hidden": True,
                    "constraints": [{"custom_constraint": "glance.image"},
                                    {"allowed_pattern": "[a-z]+"}]},
            "tags": {"type": "comma_delimited_list", "tags": ["t1"], "default": "a,b"},
        },
    })
    answer = hot.validate(template, hot.parse_environment({"parameter_defaults": {"tags": "x"}}))
    assert answer == {
        "Description": "A template",
        "Parameters": {
            "n": {"Type": "Number", "Description": "", "NoEcho": "false", "Label": "Count", "Default": 2,
                  "MinValue": 1, "MaxValue": 5, "Step": 2, "Offset": 0, "ConstraintDescription": "1 to 5 even"},
            "img": {"Type": "String", "Description": "", "NoEcho": "true", "Label": "img",
                    "CustomConstraint": "glance.image", "AllowedPattern": "[a-z]+"},
            "tags": {"Type": "CommaDelimitedList", "Description": "", "NoEcho": "false", "Label": "tags",
                     "Default": "x", "Tags": ["t1"]},
        },
        "ParameterGroups": [{"label": "sizes", "parameters": ["n"]}],
        "Environment": {"parameters": {}, "parameter_defaults": {"tags": "x"},
                        "resource_registry": {"resources": {}}, "event_sinks": [],
                        "encrypted_param_names": []},
    }


def test_validate_checks_values_that_were_sent_and_shows_them():
    template = tmpl({"parameters": {"f": {"type": "string", "constraints": [{"allowed_values": ["a"]}]}}})
    assert hot.validate(template, user_params={"f": "a"})["Parameters"]["f"]["Value"] == "a"
    refused(lambda: hot.validate(template, user_params={"f": "b"}), "Parameter 'f' is invalid")
    refused(lambda: hot.validate("heat_template_version: 2016-04-08\nresources: [1]"),
            "resources must be a map")


# -- plan diff ---------------------------------------------------------------------------------

SERVER_STACK = {
    "parameters": {"flavor": {"type": "string", "default": "m1.small"},
                   "net": {"type": "string", "default": "private"},
                   "ports": {"type": "comma_delimited_list", "default": "22"}},
    "resources": {
        "port": {"type": "OS::Neutron::Port", "properties": {"network": {"get_param": "net"}}},
        "server": {"type": "OS::Nova::Server", "properties": {
            "flavor": {"get_param": "flavor"}, "image": "cirros",
            "networks": [{"port": {"get_resource": "port"}}]}},
        "sg": {"type": "OS::Neutron::SecurityGroup", "properties": {"rules": {"repeat": {
            "for_each": {"%p%": {"get_param": "ports"}},
            "template": {"protocol": "tcp", "port_range_min": "%p%", "port_range_max": "%p%"}}}}},
        "old": {"type": "OS::Heat::None"},
    },
}

UPDATE_ALLOWED = {"OS::Nova::Server": {"flavor", "name", "metadata"},
                  "OS::Neutron::SecurityGroup": {"name", "description", "rules"},
                  "OS::Neutron::Port": {"name"}, "OS::Heat::None": {"*"}}


def plan_of(old_user: dict, new_user: dict, new_body: dict | None = None) -> hot.Plan:
    old_t, new_t = tmpl(SERVER_STACK), tmpl(new_body or SERVER_STACK)
    old_p, new_p = old_t.parameters(None, old_user), new_t.parameters(None, new_user)
    old_defs, new_defs = old_t.resources(old_p), new_t.resources(new_p)
    ids = {"port": "port-1", "server": "server-1", "sg": "sg-1"}
    old_ctx = hot.StackContext(old_p.values, resource_id_of=ids.get)
    new_ctx = hot.StackContext(new_p.values, resource_id_of=ids.get)
    return hot.diff(old_defs, new_defs, lambda t: UPDATE_ALLOWED.get(t, set()),
                    old_ctx=old_ctx, new_ctx=new_ctx)


def test_diff_flavor_and_rules_change_in_place():
    plan = plan_of({}, {"flavor": "m1.medium", "ports": "22,80"})
    assert (plan.updated, plan.replaced, plan.added, plan.deleted) == (["server", "sg"], [], [], [])
    assert plan.unchanged == ["port", "old"]
    assert plan.changes["server"] == [hot.PropertyChange("flavor", "m1.small", "m1.medium", True)]
    [rules] = plan.changes["sg"]
    assert rules.name == "rules" and rules.in_place and len(rules.new) == 2


def test_diff_a_property_that_cannot_change_in_place_replaces():
    plan = plan_of({}, {"net": "other"})
    assert plan.replaced == ["port", "server"] and plan.updated == []  # server: see the cascade test
    assert plan.reasons["port"] == "property network of OS::Neutron::Port cannot be updated in place"
    assert plan.changes["port"] == [hot.PropertyChange("network", "private", "other", False)]


def test_diff_added_deleted_and_type_change():
    body = {**SERVER_STACK, "resources": {**SERVER_STACK["resources"], "vol": {"type": "OS::Cinder::Volume"},
                                          "sg": {"type": "OS::Heat::None"}}}
    del body["resources"]["old"]
    plan = plan_of({}, {}, body)
    assert plan.added == ["vol"] and plan.deleted == ["old"] and plan.replaced == ["sg"]
    assert plan.reasons["sg"] == "its type changed from OS::Neutron::SecurityGroup to OS::Heat::None"
    assert plan.to_dict()["added"] == ["vol"]


def test_diff_without_contexts_compares_what_it_is_given():
    template = tmpl(SERVER_STACK)
    defs = template.resources(template.parameters())
    changed = dict(defs)
    changed["old"] = hot.ResourceDefinition("old", "OS::Heat::None", metadata={"k": "v"})
    plan = hot.diff(defs, changed, lambda t: set())
    assert plan.updated == ["old"] and plan.changes == {}
    assert plan.unchanged == ["port", "server", "sg"]


def test_diff_cascades_to_what_refers_to_a_replaced_resource():
    # the port's network changes: the port is replaced, so the server's networks (which names the
    # port) change too, and Nova cannot change networks in place: the server is replaced as well
    allowed = {**UPDATE_ALLOWED, "OS::Nova::Server": {"flavor", "name", "metadata"}}
    old_t = new_t = tmpl(SERVER_STACK)
    old_p, new_p = old_t.parameters(), new_t.parameters(None, {"net": "other"})
    ids = {"port": "port-1", "server": "server-1", "sg": "sg-1"}
    contexts = {"old_ctx": hot.StackContext(old_p.values, resource_id_of=ids.get),
                "new_ctx": hot.StackContext(new_p.values, resource_id_of=ids.get)}
    plan = hot.diff(old_t.resources(old_p), new_t.resources(new_p), lambda t: allowed.get(t, set()), **contexts)
    assert plan.replaced == ["port", "server"]
    assert plan.reasons["server"] == ("property networks of OS::Nova::Server refers to what is replaced "
                                      "(port is replaced)")
    assert plan.changes["server"][0].cause == "port is replaced"
    assert plan.unchanged == ["sg", "old"]
    # with networks updatable in place, the server is only updated
    allowed["OS::Nova::Server"] = {"flavor", "networks"}
    plan = hot.diff(old_t.resources(old_p), new_t.resources(new_p), lambda t: allowed.get(t, set()), **contexts)
    assert plan.replaced == ["port"] and plan.updated == ["server"]
    assert plan.to_dict()["changes"]["server"][0]["cause"] == "port is replaced"


def test_a_false_if_alone_resolves_to_none():
    ctx = hot.StackContext({}, {"no": False})
    assert hot.resolve({"if": ["no", "x"]}, ctx) is None


def test_resource_names_with_a_slash_are_refused():
    refused(lambda: tmpl({"resources": {"a/b": {"type": "T"}}}), "Resource name 'a/b' is invalid")


def test_hidden_values_never_appear_in_errors():
    template = tmpl({"parameters": {"pw": {"type": "string", "hidden": True,
                                           "constraints": [{"allowed_pattern": "[a-z]+"}]}}})
    error = refused(lambda: template.parameters(None, {"pw": "Secret1"}), "Parameter 'pw' is invalid")
    assert "Secret1" not in error.message and "******" in error.message
    pin = tmpl({"parameters": {"pin": {"type": "number", "hidden": True}}})
    error = refused(lambda: pin.parameters(None, {"pin": "12x4"}), "Parameter 'pin' is invalid")
    assert "12x4" not in error.message


def test_outputs_take_parameters_and_conditions_in_either_order():
    template = tmpl(CONDITIONAL)
    params = template.parameters(None, {"env_type": "prod"})
    conditions = template.conditions(params)
    assert template.outputs(params, conditions) == template.outputs(conditions, params)
    assert template.outputs(conditions, params)["volume_id"].enabled is True


def test_per_resource_registry_entries_match_name_patterns_and_nest():
    env = hot.parse_environment("""
resource_registry:
  resources:
    "*_server":
      OS::Nova::Server: special.yaml
      restricted_actions: replace
    db_server:
      restricted_actions: [update]
    "*NodesPostDeployment":
      "*Deployment_Step*":
        hooks: [pre-create, pre-update]
""")
    assert env.resource_type("OS::Nova::Server", "web_server") == "special.yaml"
    assert env.resource_type("OS::Nova::Server", "web") == "OS::Nova::Server"
    assert env.restricted_actions("db_server") == {"update", "replace"}
    assert env.restricted_actions("web") == set()
    refused(lambda: hot.parse_environment({"resource_registry": {"resources": {"a": {"restricted_actions": "delete"}}}}),
            "Invalid restricted_action type 'delete'")


def test_a_get_attr_of_an_attribute_the_type_lacks_is_refused():
    template = tmpl({"resources": {"server": {"type": "OS::Nova::Server"}},
                     "outputs": {"ip": {"value": {"get_attr": ["server", "first_addres"]}},
                                 "all": {"value": {"get_attr": ["server", "show"]}}}})
    defs = template.resources(template.parameters())
    attributes = {"OS::Nova::Server": {"first_address", "networks", "name"}}
    error = refused(lambda: template.check_attributes(defs, attributes.get),
                    "outputs.ip: The Referenced Attribute (server first_addres) is incorrect.")
    assert error.heat_type == "InvalidTemplateAttribute"
    good = tmpl({"resources": {"server": {"type": "OS::Nova::Server"}, "group": {"type": "OS::Heat::ResourceGroup"}},
                 "outputs": {"ip": {"value": {"get_attr": ["server", "first_address"]}},
                             "ips": {"value": {"get_attr": ["group", "resource.0.first_address"]}}}})
    good.check_attributes(good.resources(good.parameters()), attributes.get)  # group: type unknown, not checked


def test_a_plan_the_environment_restricts_is_refused():
    env = hot.parse_environment({"resource_registry": {"resources": {
        "port": {"restricted_actions": "replace"}, "server": {"restricted_actions": ["update"]}}}})
    old_t = tmpl(SERVER_STACK)
    old_p = old_t.parameters()
    allowed = lambda kind: UPDATE_ALLOWED.get(kind, set())  # noqa: E731
    ctx = hot.StackContext(old_p.values)

    def plan(user: dict) -> hot.Plan:
        new_p = old_t.parameters(None, user)
        return hot.diff(old_t.resources(old_p), old_t.resources(new_p), allowed, old_ctx=ctx,
                        new_ctx=hot.StackContext(new_p.values), restricted_actions=env.restricted_actions)

    error = refused(lambda: plan({"net": "other"}), "resources.port: replace is restricted for resource.")
    assert error.heat_type == "ResourceActionRestricted"
    refused(lambda: plan({"flavor": "m1.medium"}), "resources.server: update is restricted for resource.")
    assert plan({"ports": "22,80"}).updated == ["sg"]


def test_a_reference_in_an_if_branch_counts_only_when_taken():
    body = {"parameters": {"legacy": {"type": "boolean", "default": False}},
            "conditions": {"legacy": {"get_param": "legacy"}},
            "resources": {"a": {"type": "T", "properties": {"x": {"if": ["legacy", {"get_resource": "old"}, "new"]}}}},
            "outputs": {"o": {"value": {"if": ["legacy", {"get_attr": ["old", "id"]}, "new"]}}}}
    template = tmpl(body)  # as Heat, which reads only the branch an if takes
    assert defs_of(template)["a"].depends_on == frozenset()
    refused(lambda: defs_of(template, {"legacy": True}),
            'The specified reference "old" (in a.properties) is incorrect: the resource does not exist.')


def test_a_nested_stack_gets_its_parents_environment_as_heat_gives_it():
    env = hot.parse_environment("""
parameters: {top_only: 1}
parameter_defaults: {shared: 2}
resource_registry:
  My::Role: role.yaml
  OS::Networking::*: OS::Neutron::*
  resources:
    "*Nodes":
      "*Step*":
        hooks: pre-create
    ComputeNodes:
      "Config":
        My::Thing: thing.yaml
""")
    child = env.for_nested("ComputeNodes", mapped_type="My::Role")
    assert child.parameters == {} and child.parameter_defaults == {"shared": 2}
    assert child.resource_registry == {
        "OS::Networking::*": "OS::Neutron::*",
        "resources": {"*Step*": {"hooks": "pre-create"}, "Config": {"My::Thing": "thing.yaml"}}}
    assert child.resource_type("My::Thing", "Config") == "thing.yaml"
    assert env.for_nested("Other").resource_registry["resources"] == {}


def test_a_nested_templates_attributes_are_its_outputs():
    nested = tmpl({"parameters": {"size": {"type": "number"}}, "outputs": {"ip": {"value": "x"}}})
    assert nested.nested_attributes == {"ip", "OS::stack_id"}
    parent = tmpl({"resources": {"n": {"type": "nested.yaml"}},
                   "outputs": {"o": {"value": {"get_attr": ["n", "address"]}}}}, files={"nested.yaml": "{}"})
    defs = parent.resources(parent.parameters())
    refused(lambda: parent.check_attributes(defs, lambda kind: nested.nested_attributes),
            "The Referenced Attribute (n address) is incorrect.")

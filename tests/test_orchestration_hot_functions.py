"""The intrinsic functions of HOT (cloudbox/orchestration/hot/functions.py), each with its edge
cases and the versions that have it. Pure and fast."""

from __future__ import annotations

import hashlib

import pytest

from cloudbox.orchestration import hot


class Ctx:
    """A Resolver as the engine would give: parameters, ids, attributes, conditions, files."""

    def __init__(self, version: str = "2021-04-16", params: dict | None = None,
                 conditions: dict | None = None, files: dict | None = None) -> None:
        self.version = version
        self.params = {"name": "web", "count": 3, "net": {"subnets": ["s0", "s1"]}, "empty": "",
                       "list": ["a", "b"], **(params or {})}
        self.conditions = {"yes": True, "no": False, **(conditions or {})}
        self.files = files or {}
        self.asked: list = []

    def param(self, name):
        return self.params[name]

    def resource_id(self, name):
        return f"{name}-id"

    def attribute(self, name, path):
        self.asked.append((name, path))
        attributes = {"first_address": "10.0.0.5", "networks": {"private": ["10.0.0.5", "fd00::5"]},
                      "show": {"id": f"{name}-id"}}
        return attributes if not path else attributes.get(path[0])

    def condition(self, name):
        if name not in self.conditions:
            raise hot.HotError(f'Invalid condition "{name}"')
        return self.conditions[name]


def run(snippet, version: str = "2021-04-16", **kw):
    return hot.resolve(snippet, Ctx(version, **kw), ["resources", "r", "properties"])


def refused(snippet, message: str, version: str = "2021-04-16", **kw) -> hot.HotError:
    with pytest.raises(hot.HotError) as info:
        run(snippet, version, **kw)
    assert info.value.status == 400
    assert message in info.value.message, info.value.message
    return info.value


def test_ctx_is_a_resolver():
    assert isinstance(Ctx(), hot.Resolver)


# -- get_param, get_resource, get_attr, get_file -------------------------------------------

def test_get_param_with_and_without_a_path():
    assert run({"get_param": "name"}) == "web"
    assert run({"get_param": ["net", "subnets", 1]}) == "s1"
    assert run({"get_param": ["net", "subnets", "0"]}) == "s0"
    assert run({"get_param": ["net", "nope"]}) == ""  # Heat: a path that leads nowhere is ""
    assert run({"get_param": ["list", 5]}) == ""
    assert run({"get_param": {"get_param": "name"}}, params={"web": "indirect"}) == "indirect"


def test_get_param_errors():
    refused({"get_param": "ghost"}, "The Parameter (ghost) was not provided.")
    refused({"get_param": []}, 'Function "get_param" must have arguments')
    refused({"get_param": {"a": 1}}, 'Argument to "get_param" must be string or list')
    refused({"get_param": [1]}, 'Parameter name in "get_param" must be string')


def test_get_resource():
    assert run({"get_resource": "port"}) == "port-id"
    assert run([{"get_resource": "a"}, {"get_resource": "b"}]) == ["a-id", "b-id"]


def test_get_attr_with_a_path_is_walked_by_the_library():
    ctx = Ctx()
    assert hot.resolve({"get_attr": ["server", "first_address"]}, ctx) == "10.0.0.5"
    assert hot.resolve({"get_attr": ["server", "networks", "private", 0]}, ctx) == "10.0.0.5"
    assert hot.resolve({"get_attr": ["server", "networks", "private", "1"]}, ctx) == "fd00::5"
    assert hot.resolve({"get_attr": ["server", "networks", "public", 0]}, ctx) is None
    assert hot.resolve({"get_attr": ["server", "first_address", "x"]}, ctx) is None  # no path in a string
    assert ctx.asked == [("server", ["first_address"])] + [("server", ["networks"])] * 3 + [
        ("server", ["first_address"])]


def test_get_attr_all_attributes_from_2015_10_15():
    assert run({"get_attr": ["server"]})["first_address"] == "10.0.0.5"
    refused({"get_attr": ["server"]}, 'Arguments to "get_attr" must be of the form', "2015-04-30")
    refused({"get_attr": []}, 'Arguments to "get_attr" can be of the next forms')
    refused({"get_attr": "server"}, 'Argument to "get_attr" must be a list')


def test_get_attr_name_can_come_from_a_parameter():
    assert run({"get_attr": ["server", {"get_param": "attr"}]}, params={"attr": "first_address"}) == "10.0.0.5"


def test_get_file():
    assert run({"get_file": "init.sh"}, files={"init.sh": "#!/bin/sh\n"}) == "#!/bin/sh\n"
    refused({"get_file": "nope.sh"}, 'No content found in the "files" section for get_file path: nope.sh')
    refused({"get_file": ["x"]}, 'Argument to "get_file" must be a string')


def test_get_file_missing_is_refused_when_the_template_is_parsed():
    with pytest.raises(hot.HotError) as info:
        hot.parse_template({"heat_template_version": "2016-04-08", "resources": {"c": {
            "type": "OS::Heat::SoftwareConfig", "properties": {"config": {"get_file": "setup.sh"}}}}})
    assert info.value.message == ('resources.c.properties.config.get_file: No content found in the '
                                  '"files" section for get_file path: setup.sh')


# -- str_replace and its strict forms ----------------------------------------------------------

def test_str_replace_prefers_longer_placeholders():
    snippet = {"str_replace": {"template": "$var1 $var10 $var", "params": {
        "$var": "a", "$var1": "b", "$var10": "c"}}}
    assert run(snippet) == "b c a"


def test_str_replace_numbers_booleans_and_none():
    snippet = {"str_replace": {"template": "n=N b=B z=Z", "params": {"N": 3, "B": True, "Z": None}}}
    assert run(snippet) == "n=3 b=True z="


def test_str_replace_serialises_maps_and_lists_as_json_from_2015_10_15():
    snippet = {"str_replace": {"template": "cfg=C", "params": {"C": {"b": 1, "a": [1, 2]}}}}
    assert run(snippet) == 'cfg={"a": [1, 2], "b": 1}'
    refused(snippet, '"str_replace" params must be strings or numbers, param C is not valid', "2015-04-30")


def test_str_replace_argument_errors():
    refused({"str_replace": ["x"]}, 'Arguments to "str_replace" must be a map')
    refused({"str_replace": {"template": "x"}}, '"str_replace" syntax should be')
    refused({"str_replace": {"template": ["x"], "params": {}}}, '"str_replace" template must be a string')
    refused({"str_replace": {"template": "x", "params": "a"}}, '"str_replace" params must be a map')


def test_str_replace_strict_needs_every_param_used():
    assert run({"str_replace_strict": {"template": "a-X", "params": {"X": "1"}}}) == "a-1"
    refused({"str_replace_strict": {"template": "a-X", "params": {"X": "1", "Y": "2", "ZZ": "3"}}},
            "The following params were not found in the template: ZZ,Y")
    assert run({"str_replace_strict": {"template": "a-X", "params": {"X": ""}}}) == "a-"
    assert "str_replace_strict" not in {f["functions"] for f in hot.template_functions("2016-10-14")}


def test_str_replace_vstrict_also_refuses_empty_values():
    refused({"str_replace_vstrict": {"template": "a-X", "params": {"X": ""}}},
            "str_replace_vstrict has an undefined or empty value for param X, must be a defined non-empty value")
    refused({"str_replace_vstrict": {"template": "a-X", "params": {"X": None}}}, "undefined or empty value")
    refused({"str_replace_vstrict": {"template": "a-X", "params": {"X": []}}}, "undefined or empty value")
    assert run({"str_replace_vstrict": {"template": "a-X", "params": {"X": 0}}}) == "a-0"


# -- list_join, str_split, lists and maps ------------------------------------------------------

def test_list_join():
    assert run({"list_join": [",", ["a", "b", "c"]]}) == "a,b,c"
    assert run({"list_join": [", ", ["a"], ["b", "c"]]}) == "a, b, c"
    assert run({"list_join": ["-", ["a", None, {"k": 1}, [2]]]}) == 'a--{"k": 1}-[2]'
    assert run({"list_join": [",", {"get_param": "list"}]}) == "a,b"
    assert run({"list_join": [",", []]}) == ""


def test_list_join_limits_of_older_versions():
    refused({"list_join": [",", ["a"], ["b"]]}, 'Incorrect arguments to "list_join"', "2015-04-30")
    refused({"list_join": [",", [{"k": 1}]]}, "Items to join must be strings", "2015-04-30")
    refused({"list_join": [","]}, 'Incorrect arguments to "list_join" should be')
    refused({"list_join": [",", "abc"]}, '"list_join" must operate on a list')
    refused({"list_join": [1, ["a"]]}, '"list_join" delimiter must be a string')


def test_str_split():
    assert run({"str_split": [",", "a,b,c"]}) == ["a", "b", "c"]
    assert run({"str_split": [",", "a,b,c", 1]}) == "b"
    assert run({"str_split": [",", "a,b,c", "2"]}) == "c"
    refused({"str_split": [",", "a,b", 5]}, 'Incorrect index to "str_split" should be between 0 and 1')
    refused({"str_split": [",", "a,b", "x"]}, 'Incorrect index to "str_split" should be:')
    refused({"str_split": ","}, 'Incorrect arguments to "str_split"')
    assert run({"str_split": [",", "a,b"]}, "2015-04-30") == {"str_split": [",", "a,b"]}


def test_map_merge():
    assert run({"map_merge": [{"a": 1, "b": 1}, {"b": 2}, None]}) == {"a": 1, "b": 2}
    refused({"map_merge": [{"a": 1}, ["b"]]}, "Incorrect arguments: Items to merge must be maps.")
    refused({"map_merge": {"a": 1}}, 'Incorrect arguments to "map_merge" should be')


def test_map_replace():
    snippet = {"map_replace": [{"k1": "v1", "k2": "v2"},
                               {"keys": {"k1": "K1"}, "values": {"v2": "V2"}}]}
    assert run(snippet) == {"K1": "v1", "k2": "V2"}
    refused({"map_replace": [{"a": 1, "b": 2}, {"keys": {"a": "b"}}]},
            "key replacement b collides with a key in the input map")
    refused({"map_replace": [{"a": 1}, {"kees": {}}]}, 'Incorrect arguments to "map_replace"')
    refused({"map_replace": [{"a": 1}]}, 'Incorrect arguments to "map_replace"')
    assert run({"map_replace": [{"a": [1]}, {"values": {"x": "y"}}]}) == {"a": [1]}  # unhashable values stay


def test_list_concat_and_unique():
    assert run({"list_concat": [["a", "b"], ["b"], None, []]}) == ["a", "b", "b"]
    assert run({"list_concat_unique": [["a", "b"], ["b", {"k": 1}], [{"k": 1}]]}) == ["a", "b", {"k": 1}]
    refused({"list_concat": [["a"], "b"]}, "Items to concat must be lists")
    refused({"list_concat": "ab"}, 'Incorrect arguments to "list_concat"')
    assert run({"list_concat": [["a"]]}, "2017-02-24") == {"list_concat": [["a"]]}


def test_filter():
    assert run({"filter": [[None, "b"], ["a", None, "b", "c"]]}) == ["a", "c"]
    assert run({"filter": [[], ["a"]]}) == ["a"]
    assert run({"filter": [["a"], []]}) == []
    refused({"filter": [["a"]]}, '"filter" expected 2 arguments of the form [values, sequence] but got 1')
    refused({"filter": [["a"], "abc"]}, '"filter" only works with lists')
    refused({"filter": ["a", ["a"]]}, '"filter" filters a list of values')


def test_contains():
    assert run({"contains": ["a", ["a", "b"]]}) is True
    assert run({"contains": ["z", {"get_param": "list"}]}) is False
    refused({"contains": ["a"]}, 'Arguments to "contains" must be of the form')
    refused({"contains": ["a", 3]}, 'Second argument to "contains" should be a sequence.')


# -- repeat -------------------------------------------------------------------------------

def test_repeat_makes_one_item_per_value():
    snippet = {"repeat": {"for_each": {"%port%": [80, 443]},
                          "template": {"protocol": "tcp", "port_range_min": "%port%"}}}
    assert run(snippet) == [{"protocol": "tcp", "port_range_min": "80"},
                            {"protocol": "tcp", "port_range_min": "443"}]


def test_repeat_over_two_lists_is_every_combination():
    snippet = {"repeat": {"for_each": {"<p>": ["tcp", "udp"], "<n>": ["1", "2"]},
                          "template": "<p>/<n>"}}
    assert run(snippet) == ["tcp/1", "tcp/2", "udp/1", "udp/2"]


def test_repeat_without_permutations_pairs_the_lists_from_2017_09_01():
    snippet = {"repeat": {"for_each": {"<p>": ["tcp", "udp"], "<n>": ["1", "2"]},
                          "template": "<p>/<n>", "permutations": False}}
    assert run(snippet) == ["tcp/1", "udp/2"]
    refused({"repeat": {"for_each": {"a": [1], "b": [1, 2]}, "template": "ab", "permutations": False}},
            "For repeat, the length of for_each values should be equal if no nested loop.")
    refused({"repeat": {"for_each": {"a": [1]}, "template": "a", "permutations": "no"}},
            '"permutations" should be boolean type for repeat function.')


def test_repeat_over_a_parameter_and_a_map_of_keys():
    assert run({"repeat": {"for_each": {"X": {"get_param": "list"}}, "template": "n-X"}}) == ["n-a", "n-b"]
    assert run({"repeat": {"for_each": {"X": {"k1": 1, "k2": 2}}, "template": "X"}}) == ["k1", "k2"]
    refused({"repeat": {"for_each": {"X": {"k1": 1}}, "template": "X"}},
            'The values of the "for_each" argument to "repeat" must be lists', "2016-04-08")


def test_repeat_errors():
    refused({"repeat": ["x"]}, 'Arguments to "repeat" must be a map')
    refused({"repeat": {"template": "x"}}, '"repeat" syntax should be')
    refused({"repeat": {"for_each": ["x"], "template": "x"}}, 'The "for_each" argument to "repeat" must contain a map')
    refused({"repeat": {"for_each": {"x": "abc"}, "template": "x"}}, 'must be lists or maps')


def test_repeat_is_plain_data_before_2015_04_30_as_in_heat():
    snippet = {"repeat": {"for_each": {"X": ["a"]}, "template": "X"}}
    assert run(snippet, "2013-05-23") == snippet
    assert run(snippet, "2015-04-30") == ["a"]


# -- digest, make_url ----------------------------------------------------------------------

def test_digest():
    assert run({"digest": ["sha256", "abc"]}) == hashlib.sha256(b"abc").hexdigest()
    assert run({"digest": ["MD5", {"get_param": "name"}]}) == hashlib.md5(b"web").hexdigest()
    refused({"digest": ["rot13", "abc"]}, "Algorithm must be one of")
    refused({"digest": ["sha256"]}, 'Function "digest" usage: ["<algorithm>", "<value>"]')
    refused({"digest": ["sha256", 5]}, 'Argument to function "digest" must be a list of strings')


def test_make_url():
    snippet = {"make_url": {"scheme": "https", "username": "u s", "password": "p@ss",
                            "host": "example.com", "port": 8443, "path": "/a b/c",
                            "query": {"k": "v/w", "x": "1 2"}, "fragment": "top"}}
    assert run(snippet) == "https://u%20s:p%40ss@example.com:8443/a%20b/c?k=v/w&x=1+2#top"
    assert run({"make_url": {"scheme": "http", "host": "fd00::1", "path": "/"}}) == "http://[fd00::1]/"
    assert run({"make_url": {"scheme": "http", "host": "[fd00::1]", "port": "80"}}) == "http://[fd00::1]:80"
    refused({"make_url": {"scheme": "http", "port": 70000}}, "Invalid URL port 70000, must be in range 1-65535")
    refused({"make_url": {"scheme": "http", "port": "x"}}, 'Invalid URL port "x"')
    refused({"make_url": {"scheme": "http", "hots": "x"}}, 'Invalid arguments to "make_url": hots')
    refused({"make_url": {"scheme": "http:", "host": "x"}}, 'URL "scheme" should not contain')
    refused({"make_url": {"query": "a=b"}}, 'The "query" argument to "make_url" must be a map')
    refused({"make_url": ["x"]}, 'The arguments to "make_url" must be a map')


# -- if and conditions -----------------------------------------------------------------------

def test_if_takes_one_branch_and_only_resolves_that_one():
    assert run({"if": ["yes", "a", {"get_param": "ghost"}]}) == "a"
    assert run({"if": ["no", {"get_param": "ghost"}, "b"]}) == "b"
    assert run({"if": [True, 1, 2]}) == 1
    assert run({"if": [{"equals": [{"get_param": "name"}, "web"]}, 1, 2]}) == 1
    assert run({"if": [{"not": "yes"}, 1, 2]}) == 2


def test_if_needs_2016_10_14():
    snippet = {"if": ["yes", "a", "b"]}
    assert run(snippet, "2016-04-08") == snippet  # plain data there, as in Heat
    assert run(snippet, "2016-10-14") == "a"


def test_if_errors():
    refused({"if": ["yes", "a"]}, 'Arguments to "if" must be of the form: [condition_name, value_if_true, '
                                  'value_if_false]', "2018-08-31")
    refused({"if": ["ghost", "a", "b"]}, 'Invalid condition "ghost"')
    refused({"if": [{"get_resource": "x"}, "a", "b"]}, 'The function "get_resource" is invalid in this context')


def test_if_without_a_false_value_removes_the_item_from_2021_04_16():
    snippet = {"name": "x", "zone": {"if": ["no", "az1"]}, "tags": ["a", {"if": ["no", "b"]}, "c"]}
    assert run(snippet) == {"name": "x", "tags": ["a", "c"]}
    assert run({"zone": {"if": ["yes", "az1"]}}) == {"zone": "az1"}


def test_condition_functions_outside_conditions_follow_the_version():
    # equals/not/and/or are condition functions: in properties they are data, as in Heat
    assert run({"equals": [1, 1]}) == {"equals": [1, 1]}
    # contains is a regular function from 2017-09-01
    assert run({"contains": [1, [1]]}, "2017-09-01") is True
    assert run({"contains": [1, [1]]}, "2017-02-24") == {"contains": [1, [1]]}


# -- functions refused -----------------------------------------------------------------------

def test_yaql_is_refused_clearly():
    refused({"yaql": {"expression": "$.data", "data": {}}}, 'The function "yaql" is not supported by this cloud')
    with pytest.raises(hot.HotError) as info:
        hot.parse_template({"heat_template_version": "2016-10-14", "outputs": {
            "o": {"value": {"yaql": {"expression": "1", "data": {}}}}}})
    assert info.value.message.startswith("outputs.o.value.yaql: The function \"yaql\" is not supported")


def test_cloudformation_functions_in_2013_05_23_and_removed_later():
    assert run({"Fn::Join": ["-", ["a", "b"]]}, "2013-05-23") == "a-b"
    assert run({"Fn::Select": ["1", ["a", "b"]]}, "2013-05-23") == "b"
    assert run({"Fn::Select": ["k", {"k": "v"}]}, "2014-10-16") == "v"
    assert run({"Fn::Split": [",", "a,b"]}, "2013-05-23") == ["a", "b"]
    assert run({"Fn::Replace": [{"$x": "1"}, "a$x"]}, "2013-05-23") == "a1"
    assert run({"Fn::Base64": "abc"}, "2013-05-23") == "abc"
    assert run({"Ref": "name"}, "2013-05-23") == "web"
    assert run({"Ref": "port"}, "2013-05-23") == "port-id"
    assert run({"Fn::MemberListToMap": ["Name", "Value", ["m.1.Name=a", "m.1.Value=b"]]},
               "2013-05-23") == {"a": "b"}
    refused({"Fn::Join": ["-", ["a"]]}, "The function Fn::Join is not supported in this version of HOT.",
            "2014-10-16")
    refused({"Fn::Select": ["0", ["a"]]}, "The function Fn::Select is not supported in this version of HOT.",
            "2015-10-15")


def test_removed_functions_are_refused_when_the_template_is_parsed():
    with pytest.raises(hot.HotError) as info:
        hot.parse_template({"heat_template_version": "2015-04-30", "resources": {"a": {
            "type": "T", "properties": {"x": {"Fn::Join": ["-", ["a"]]}}}}})
    assert info.value.message == ("resources.a.properties.x.Fn::Join: "
                                  "The function Fn::Join is not supported in this version of HOT.")


def test_errors_name_the_path_and_the_function():
    error = refused({"a": [{"b": {"str_split": ","}}]}, 'Incorrect arguments to "str_split"')
    assert error.message.startswith("resources.r.properties.a.0.b.str_split: ")


def test_nested_functions_resolve_inside_out():
    snippet = {"list_join": ["\n", {"repeat": {
        "for_each": {"%n%": {"str_split": [",", {"get_param": "csv"}]}},
        "template": {"str_replace": {"template": "host-%n%.$d", "params": {"$d": {"get_param": "name"}}}}}}]}
    assert run(snippet, params={"csv": "1,2"}) == "host-1.web\nhost-2.web"


# -- corners Heat's own behaviour pins ------------------------------------------------------

def test_str_replace_is_a_single_pass():
    # a replacement's text is never replaced again, and longer keys win where they overlap
    params = {"1": "a", "4": "d", "8": "h", "9": "i", "123": "1", "456": "4", "890": "8", "90": "9"}
    assert run({"str_replace": {"template": "1234567890", "params": params}}) == "1478"


def test_str_replace_params_given_as_a_list_are_refused():
    refused({"str_replace": {"template": "a", "params": ["a", "b"]}},
            'str_replace: "str_replace" parameters must be a mapping')
    refused({"str_replace": {"template": 12345, "params": {"a": "b"}}}, '"str_replace" template must be a string')


def test_str_split_with_a_null_delimiter_splits_on_whitespace():
    assert run({"str_split": [None, "check"]}) == ["check"]
    assert run({"str_split": [None, "a b\tc"]}) == ["a", "b", "c"]
    assert run({"str_split": [",", None]}) is None


def test_map_merge_of_a_repeat_of_maps():
    snippet = {"map_merge": {"repeat": {"template": {"ROLE_count": 1}, "for_each": {"ROLE": ["web", "db"]}}}}
    assert run(snippet) == {"web_count": 1, "db_count": 1}
    empty = {"map_merge": {"repeat": {"template": {"ROLE": "ROLE"}, "for_each": {"ROLE": None}}}}
    assert run(empty) == {}
    both_empty = {"map_merge": {"repeat": {"template": {"R": "N"}, "for_each": {"R": None, "N": None},
                                           "permutations": False}}}
    assert run(both_empty) == {}


def test_map_replace_with_null_keys_or_values():
    assert run({"map_replace": [{"f1": "b1"}, {"values": None}]}) == {"f1": "b1"}
    assert run({"map_replace": [{"f1": "b1"}, {"keys": None}]}) == {"f1": "b1"}
    # a key replaced by itself is no collision
    assert run({"map_replace": [{"a": 1, "b": 2}, {"keys": {"a": "a"}}]}) == {"a": 1, "b": 2}


def test_repeat_a_map_template_replaces_keys_too():
    snippet = {"repeat": {"template": {"SERVICE_enabled": True}, "for_each": {"SERVICE": ["x", "y"]}}}
    assert run(snippet) == [{"x_enabled": True}, {"y_enabled": True}]
    listed = {"repeat": {"template": ["%v%-1", "%v%-2"], "for_each": {"%v%": ["a"]}}}
    assert run(listed) == [["a-1", "a-2"]]


def test_if_with_a_null_branch_and_a_condition_expression():
    assert run({"if": [True, None, "x"]}) is None
    assert run({"if": [{"not": "no"}, "t", "f"]}) == "t"
    assert run({"if": [{"or": ["no", {"equals": [{"get_param": "count"}, 3]}]}, "t", "f"]}) == "t"


def test_equals_with_get_attr_is_refused_in_a_condition():
    with pytest.raises(hot.HotError) as info:
        hot.resolve_condition({"equals": [{"get_attr": ["a", "b"]}, 1]}, Ctx())
    assert '"get_attr" is invalid in this context' in info.value.message


def test_contains_in_a_string_and_filter_of_non_lists():
    assert run({"contains": ["b", "abc"]}) is True
    refused({"filter": [[None], {"a": 1}]}, '"filter" only works with lists')
    refused({"filter": [["a"], "abcd"]}, '"filter" only works with lists')


def test_make_url_for_files():
    assert run({"make_url": {"scheme": "file", "path": "/foo/bar"}}) == "file:///foo/bar"


def test_get_file_content_is_not_resolved_again():
    text = "{get_file: other.yaml}"
    assert run({"get_file": "a.yaml"}, files={"a.yaml": text, "other.yaml": "x"}) == text


def test_list_join_a_non_list_argument():
    refused({"list_join": 5}, 'list_join: Incorrect arguments to "list_join"')
    refused({"list_join": 5}, 'list_join: Incorrect arguments to "list_join"', "2015-04-30")


def test_what_fails_inside_an_if_branch_fails_only_if_the_branch_is_taken():
    # Heat reads only the branch an if takes: a template may name there a parameter it lacks
    template = hot.parse_template({
        "heat_template_version": "2016-10-14",
        "parameters": {"debug": {"type": "boolean", "default": True}},
        "conditions": {"debug_set": {"equals": [{"get_param": "debug"}, True]}},
        "outputs": {"o": {"value": {"if": ["debug_set", "on", {"get_param": "LegacyDebug"}]}},
                    "y": {"value": {"if": ["debug_set", "plain", {"yaql": {"expression": "1", "data": {}}}]}}}})
    params = template.parameters()
    conditions = template.conditions(params)
    ctx = hot.StackContext(params.values, conditions, version=template.version)
    assert {k: hot.resolve(o.value, ctx) for k, o in template.outputs(params, conditions).items()} == {
        "o": "on", "y": "plain"}
    off = hot.StackContext(params.values, {"debug_set": False}, version=template.version)
    with pytest.raises(hot.HotError, match=r"The Parameter \(LegacyDebug\) was not provided."):
        hot.resolve(template.outputs(params, conditions)["o"].value, off)
    with pytest.raises(hot.HotError, match='"yaql" is not supported'):
        hot.resolve(template.outputs(params, conditions)["y"].value, off)


def test_str_replace_order_longest_then_alphabetical():
    params = {"1": "a", "12": "b", "123": "c", "1234": "d", "12345": "e", "123456": "f", "1234567": "g"}
    assert run({"str_replace": {"template": "1234567890", "params": params}}) == "g890"
    same_length = {"987654": "a", "876543": "b", "765432": "c", "654321": "d", "543210": "e"}
    assert run({"str_replace": {"template": "9876543210", "params": same_length}}) == "9876e"


def test_ref_of_a_parameter_or_a_resource_in_2013_05_23():
    template = hot.parse_template({"heat_template_version": "2013-05-23",
                                   "parameters": {"net": {"type": "string", "default": "private"}},
                                   "resources": {"port": {"type": "OS::Neutron::Port",
                                                          "properties": {"network": {"Ref": "net"}}},
                                                 "server": {"type": "OS::Nova::Server",
                                                            "properties": {"port": {"Ref": "port"}}}}})
    params = template.parameters()
    defs = template.resources(params)
    assert defs["port"].depends_on == frozenset() and defs["server"].depends_on == frozenset({"port"})
    ctx = hot.StackContext(params.values, resource_id_of=lambda name: f"{name}-id", version=template.version)
    assert hot.resolve(defs["port"].properties, ctx) == {"network": "private"}
    assert hot.resolve(defs["server"].properties, ctx) == {"port": "port-id"}


def test_large_inputs_are_handled_without_recursion_or_blowup():
    params = {f"$k{i}$": str(i) for i in range(1500)}  # more than Python's recursion limit
    template = "".join(params)
    assert run({"str_replace": {"template": template, "params": params}}) == "".join(map(str, range(1500)))
    refused({"repeat": {"for_each": {"%i%": list(range(5000))}, "template": "x" * 5000}},
            "repeat would make about")

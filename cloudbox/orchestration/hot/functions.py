"""Intrinsic functions: ``resolve(value, ctx)`` evaluates a template snippet.

A snippet is plain data (dicts, lists, scalars) in which a dict of exactly one
key naming a function of the template's version is a call. Arguments are
resolved first, then the function runs; ``if`` is the exception (only the
chosen branch is resolved). A name that is not a function of the version is
plain data, as in Heat: ``{repeat: ...}`` in a 2013-05-23 template is a map.
The CloudFormation-style functions that later versions dropped are refused with
Heat's wording.

The stack's side (parameter values, resource ids, attributes, condition values,
files) comes from ``ctx``, a ``Resolver``. Errors are ``HotError`` naming the
template path the caller gave (``path=``) and the function.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cloudbox.orchestration.hot.errors import HotError
from cloudbox.orchestration.hot.functions_cfn import (
    cfn_base64, cfn_get_azs, cfn_join, cfn_member_list_to_map, cfn_ref, cfn_replace, cfn_split, select,
)
from cloudbox.orchestration.hot.functions_text import (
    digest, list_join, make_str_replace, make_url, str_split,
)
from cloudbox.orchestration.hot.versions import LATEST, Version, find_version

MAX_REPEAT = 10000  # items one repeat may make (every combination of its lists)
MAX_REPEAT_SIZE = 16 * 1024 * 1024  # and about this much text in all

# What an ``if`` without a false value (2021-04-16) yields when its condition is
# false: the enclosing list item or map entry disappears.
OMIT: Any = Ellipsis

# The CloudFormation functions that 2013-05-23 also evaluates.
CFN_FUNCTIONS = ("Fn::Select", "Fn::Join", "Fn::Split", "Fn::Replace", "Fn::Base64",
                 "Fn::MemberListToMap", "Fn::GetAZs", "Fn::ResourceFacade", "Ref")


@runtime_checkable
class Resolver(Protocol):
    """What ``resolve`` asks of the stack. The engine supplies it.

    Optional members, read with ``getattr`` when present: ``version`` (a
    ``Version`` or version text; the latest when absent), ``files`` (the files sent
    with the template, for ``get_file``), ``condition(name) -> bool`` (for ``if``),
    ``resource_facade(key)`` (for nested stacks), ``availability_zones()``.
    """

    def param(self, name: str) -> Any:
        """A parameter's resolved value (pseudo-parameters included); KeyError if none."""
        ...

    def resource_id(self, name: str) -> Any:
        """``get_resource``: the resource's reference id (None before it exists)."""
        ...

    def attribute(self, name: str, path: list[Any]) -> Any:
        """``get_attr``: ``path`` is ``[attribute_name]``, or ``[]`` for a dict of all of
        the resource's attributes (2015-10-15+). Any further path the template gives
        is walked by ``resolve`` itself; answer None while the attribute is unknown."""
        ...


@dataclass
class StackContext:
    """A ready Resolver: parameter values and conditions from the library, the
    resources' side from two callables the engine passes."""

    params: Mapping[str, Any]
    conditions: Mapping[str, bool] = field(default_factory=dict)
    resource_id_of: Callable[[str], Any] = lambda name: None
    attribute_of: Callable[[str, list[Any]], Any] = lambda name, path: None
    version: Version = LATEST
    files: Mapping[str, str] = field(default_factory=dict)

    def param(self, name: str) -> Any:
        return self.params[name]

    def resource_id(self, name: str) -> Any:
        return self.resource_id_of(name)

    def attribute(self, name: str, path: list[Any]) -> Any:
        return self.attribute_of(name, path)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise HotError(f'Invalid condition "{name}"')
        return self.conditions[name]


def context_version(ctx: object) -> Version:
    version = getattr(ctx, "version", None)
    if version is None:
        return LATEST
    return version if isinstance(version, Version) else find_version(version)


def function_call(value: object, version: Version, condition: bool = False) -> tuple[str, Any] | None:
    """``(name, args)`` when ``value`` is a call of a function ``version`` knows
    (in a condition expression when ``condition``)."""
    if isinstance(value, dict) and len(value) == 1:
        (name, args), = value.items()
        if isinstance(name, str) and (
            name in version.known_functions or (condition and name in version.condition_functions)
        ):
            return name, args
    return None


def resolve(value: Any, ctx: Any, path: Sequence[str | int] = ()) -> Any:
    """``value`` with every function call of the template's version evaluated.

    An ``if`` without a false value whose condition is false removes the list item or
    map entry that holds it; standing alone it resolves to None.
    """
    result = _Evaluator(ctx, context_version(ctx)).eval(value, list(path))
    return None if result is OMIT else result


def resolve_condition(value: Any, ctx: Any, path: Sequence[str | int] = ()) -> bool:
    """A condition expression (the functions of the ``conditions`` section) as a bool;
    a string names another condition, answered by ``ctx.condition``."""
    evaluator = _Evaluator(ctx, context_version(ctx), condition=True)
    return condition_value(evaluator, value, list(path))


class _Evaluator:
    def __init__(self, ctx: Any, version: Version, condition: bool = False) -> None:
        self.ctx = ctx
        self.version = version
        self.condition = condition  # evaluating a condition: only condition functions

    def eval(self, value: Any, path: list[str | int]) -> Any:
        call = function_call(value, self.version, self.condition)
        if call is not None:
            name, args = call
            return self.call(name, args, path)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                resolved = self.eval(item, [*path, key])
                if resolved is not OMIT:
                    out[key] = resolved
            return out
        if isinstance(value, list):
            items = (self.eval(item, [*path, i]) for i, item in enumerate(value))
            return [item for item in items if item is not OMIT]
        return value

    def call(self, name: str, args: Any, path: list[str | int]) -> Any:
        where = [*path, name]
        if self.condition:
            if name not in self.version.condition_functions:
                raise HotError(f'The function "{name}" is invalid in this context', where)
        elif name not in self.version.functions:
            raise HotError(f"The function {name} is not supported in this version of HOT.", where)
        handler = _FUNCTIONS.get(name)
        if handler is None:
            raise HotError(f'The function "{name}" is not supported by this cloud', where)
        try:
            return handler(self, args, where)
        except HotError:
            raise
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise HotError(str(exc.args[0]) if exc.args else str(exc), where) from exc

    def args(self, args: Any, path: list[str | int]) -> Any:
        """Arguments with their own calls evaluated."""
        return self.eval(args, path)


# -- the functions. Each takes (evaluator, raw args, path) --------------------

def traverse(value: Any, keys: Sequence[Any], fn_name: str) -> Any:
    """Walk ``keys`` into ``value`` (map keys, list indexes as int or digit strings)."""
    for key in keys:
        if isinstance(value, Mapping):
            if not isinstance(key, (str, int)):
                raise TypeError(f'Path components in "{fn_name}" must be strings')
            value = value[key]
        elif isinstance(value, Sequence) and not isinstance(value, str):
            try:
                value = value[int(key)]
            except (ValueError, TypeError) as exc:
                raise TypeError(f"Path components in '{fn_name}' must be a string that "
                                "can be parsed into an integer.") from exc
        else:
            raise TypeError(f'"{fn_name}" can\'t traverse path')
    return value


def _get_param(ev: _Evaluator, raw: Any, path: list) -> Any:
    args = ev.args(raw, path)
    if not args:
        raise ValueError('Function "get_param" must have arguments')
    if isinstance(args, str):
        name, keys = args, []
    elif isinstance(args, list):
        name, keys = args[0], args[1:]
    else:
        raise TypeError('Argument to "get_param" must be string or list')
    if not isinstance(name, str):
        raise TypeError('Parameter name in "get_param" must be string')
    try:
        value = ev.ctx.param(name)
    except KeyError:
        raise HotError(f"The Parameter ({name}) was not provided.", path) from None
    try:
        return traverse(value, keys, "get_param")
    except (KeyError, IndexError, TypeError):
        return ""  # Heat: a path that leads nowhere gives an empty string


def _get_resource(ev: _Evaluator, raw: Any, path: list) -> Any:
    name = ev.args(raw, path)
    if not isinstance(name, str):
        raise TypeError('Argument to "get_resource" must be a string')
    return ev.ctx.resource_id(name)


def get_attr_parts(fn_args: Any, version: Version) -> tuple[Any, Any, list[Any]]:
    """(resource, attribute or None for all, path) of get_attr arguments, checked."""
    if not isinstance(fn_args, list):
        raise TypeError('Argument to "get_attr" must be a list')
    if version.at_least("2015-10-15"):
        if not fn_args:
            raise ValueError('Arguments to "get_attr" can be of the next forms: '
                             '[resource_name] or [resource_name, attribute, (path), ...]')
        if len(fn_args) == 1:
            return fn_args[0], None, []
    elif len(fn_args) < 2:
        raise ValueError('Arguments to "get_attr" must be of the form '
                         '[resource_name, attribute, (path), ...]')
    return fn_args[0], fn_args[1], list(fn_args[2:])


def _get_attr(ev: _Evaluator, raw: Any, path: list) -> Any:
    resource, attribute, keys = get_attr_parts(ev.args(raw, path), ev.version)
    if not isinstance(resource, str):
        raise TypeError('Arguments to "get_attr" must start with a resource name')
    value = ev.ctx.attribute(resource, [] if attribute is None else [attribute])
    if value is None or not keys:
        return value
    try:
        return traverse(value, keys, "get_attr")
    except (KeyError, IndexError, TypeError):
        return None  # Heat: a path an attribute does not have selects nothing


def _get_file(ev: _Evaluator, raw: Any, path: list) -> Any:
    name = ev.args(raw, path)
    if not isinstance(name, str):
        raise TypeError('Argument to "get_file" must be a string')
    files = getattr(ev.ctx, "files", None) or {}
    if name not in files:
        raise ValueError(f'No content found in the "files" section for get_file path: {name}')
    return files[name]


def _repeat(ev: _Evaluator, raw: Any, path: list) -> Any:
    if not isinstance(raw, dict):
        raise TypeError('Arguments to "repeat" must be a map')
    if "for_each" not in raw or "template" not in raw:
        raise KeyError('"repeat" syntax should be repeat:\n  template: This is %var%\n  '
                       "for_each:\n    %var%: ['a', 'b', 'c']")
    nested = raw.get("permutations", True) if ev.version.at_least("2017-09-01") else True
    if not isinstance(nested, bool):
        raise TypeError('"permutations" should be boolean type for repeat function.')
    for_each = ev.eval(raw["for_each"], [*path, "for_each"])
    if not isinstance(for_each, dict):
        raise TypeError('The "for_each" argument to "repeat" must contain a map')
    maps_allowed = ev.version.at_least("2016-10-14") and nested
    keys, values, lengths = [], [], set()
    for key, items in for_each.items():
        keys.append(key)
        if items is None:
            values.append([])
            continue
        ok = isinstance(items, list) or (maps_allowed and isinstance(items, dict))
        if not ok:
            kinds = "lists or maps" if maps_allowed else "lists"
            raise TypeError(f'The values of the "for_each" argument to "repeat" must be {kinds}')
        values.append(list(items))
        lengths.add(len(items))
    if not nested and len(lengths) > 1:
        raise ValueError("For repeat, the length of for_each values should be equal if no nested loop.")
    count = math.prod(len(v) for v in values) if nested else min((len(v) for v in values), default=0)
    if count > MAX_REPEAT:
        raise ValueError(f"repeat would make {count} items; at most {MAX_REPEAT} are allowed")
    size = len(json.dumps(raw["template"], default=str)) * count
    if size > MAX_REPEAT_SIZE:
        raise ValueError(f"repeat would make about {size} bytes; at most {MAX_REPEAT_SIZE} are allowed")
    template = ev.eval(raw["template"], [*path, "template"])
    combos = itertools.product(*values) if nested else zip(*values)

    def substitute(body: Any, pairs: Sequence[tuple[str, Any]]) -> Any:
        if isinstance(body, str):
            for key, value in pairs:
                body = body.replace(key, str(value) if not isinstance(value, str) else value)
            return body
        if isinstance(body, list):
            return [substitute(item, pairs) for item in body]
        if isinstance(body, dict):
            return {substitute(k, pairs): substitute(v, pairs) for k, v in body.items()}
        return body

    return [substitute(template, list(zip(keys, combo))) for combo in combos]


def _map_merge(ev: _Evaluator, raw: Any, path: list) -> Any:
    example = '"map_merge" : [ { "key1": "val1" }, { "key2": "val2" } ]'
    args = ev.args(raw, path)
    if not isinstance(args, list):
        raise TypeError(f'Incorrect arguments to "map_merge" should be: {example}')
    merged: dict = {}
    for item in args:
        if item is None:
            continue
        if not isinstance(item, dict):
            raise TypeError("Incorrect arguments: Items to merge must be maps. "
                            f"{json.dumps(item)[:200]} is not a map")
        merged.update(item)
    return merged


def _map_replace(ev: _Evaluator, raw: Any, path: list) -> Any:
    example = ('"map_replace" : [ { "key1": "val1" }, {"keys": {"key1": "key2"}, '
               '"values": {"val1": "val2"}}]')
    args = ev.args(raw, path)
    if not isinstance(args, list) or len(args) != 2:
        raise TypeError(f'Incorrect arguments to "map_replace" should be: {example}')
    source, replacements = (a if a is not None else {} for a in args)
    if not isinstance(source, dict) or not isinstance(replacements, dict):
        raise TypeError('Incorrect arguments: to "map_replace", arguments must be a list of '
                        f"maps. Example:  {example}")
    if set(replacements) - {"keys", "values"}:
        raise ValueError(f'Incorrect arguments to "map_replace" should be: {example}')
    new_keys = replacements.get("keys") or {}
    new_values = replacements.get("values") or {}
    if not isinstance(new_keys, dict) or not isinstance(new_values, dict):
        raise TypeError('Incorrect arguments: to "map_replace", arguments must be a list of '
                        f"maps. Example:  {example}")
    out: dict = {}
    for key, value in source.items():
        new_key = new_keys.get(key)
        if new_key is None:
            new_key = key
        elif new_key in source and new_key != key:
            raise ValueError(f"key replacement {new_key} collides with a key in the input map")
        elif new_key in out:
            raise ValueError(f"key replacement {new_key} collides with a key in the output map")
        try:
            out[new_key] = new_values.get(value, value)
        except TypeError:  # an unhashable value is never replaced
            out[new_key] = value
    return out


def condition_value(ev: _Evaluator, cond: Any, path: list) -> bool:
    """An ``if``'s first argument: a condition name, a boolean or an expression."""
    if isinstance(cond, bool):
        return cond
    if isinstance(cond, str):
        check = getattr(ev.ctx, "condition", None)
        if check is None:
            raise HotError(f'Invalid condition "{cond}"', path)
        return bool(check(cond))
    if not isinstance(cond, dict):
        raise HotError(f'Invalid condition "{cond}"', path)
    inner = _Evaluator(ev.ctx, ev.version, condition=True)
    result = inner.eval(cond, path)
    if not isinstance(result, bool):
        raise HotError(f'Invalid condition "{cond}"', path)
    return result


def _if(ev: _Evaluator, raw: Any, path: list) -> Any:
    nullable = ev.version.at_least("2021-04-16")
    sizes = (2, 3) if nullable else (3,)
    if not isinstance(raw, list) or len(raw) not in sizes:
        raise ValueError('Arguments to "if" must be of the form: '
                         "[condition_name, value_if_true, value_if_false]")
    chosen = condition_value(ev, raw[0], [*path, 0])
    if chosen:
        return ev.eval(raw[1], [*path, 1])
    if len(raw) == 2:
        return OMIT
    return ev.eval(raw[2], [*path, 2])


def _equals(ev: _Evaluator, raw: Any, path: list) -> Any:
    if not isinstance(raw, list) or len(raw) != 2:
        raise ValueError('Arguments to "equals" must be of the form: [value_1, value_2]')
    first, second = ev.args(raw, path)
    return first == second


def _boolean(fn_name: str) -> Callable:
    def run(ev: _Evaluator, raw: Any, path: list) -> Any:
        if fn_name == "not":
            items = [raw]
            if isinstance(raw, list) or raw is None:
                raise ValueError('Argument to "not" must be a condition')
        else:
            if not isinstance(raw, list):
                raise ValueError(f'Arguments to "{fn_name}" must be a list of conditions')
            if len(raw) < 2:
                raise ValueError(f'The minimum number of condition arguments to "{fn_name}" is 2.')
            items = raw
        values = [condition_value(ev, item, [*path, i]) for i, item in enumerate(items)]
        if fn_name == "not":
            return not values[0]
        return all(values) if fn_name == "and" else any(values)

    return run


def _contains(ev: _Evaluator, raw: Any, path: list) -> Any:
    if not raw or not isinstance(raw, list):
        raise TypeError('Incorrect arguments to "contains" should be: '
                        '"contains" : [ "value1", [ "value1", "value2"]]')
    if len(raw) != 2:
        raise ValueError('Arguments to "contains" must be of the form: [value1, [value1, value2]]')
    value, sequence = ev.args(raw, path)
    if not isinstance(sequence, (list, str)):
        raise TypeError('Second argument to "contains" should be a sequence.')
    return value in sequence


def _filter(ev: _Evaluator, raw: Any, path: list) -> Any:
    if not isinstance(raw, list):
        raise TypeError('Argument to "filter" must be a list')
    if len(raw) != 2:
        raise ValueError('"filter" expected 2 arguments of the form [values, sequence] but got '
                         f"{len(raw)} arguments instead")
    values, sequence = ev.args(raw, path)
    if not sequence:
        return sequence
    if not isinstance(sequence, list):
        raise TypeError('"filter" only works with lists')
    if not values:
        return sequence
    if not isinstance(values, list):
        raise TypeError('"filter" filters a list of values')
    return [item for item in sequence if item not in values]


def _make_list_concat(unique: bool) -> Callable:
    name = "list_concat_unique" if unique else "list_concat"

    def run(ev: _Evaluator, raw: Any, path: list) -> Any:
        args = ev.args(raw, path)
        if not isinstance(args, list):
            raise TypeError(f'Incorrect arguments to "{name}" should be: '
                            f'"{name}" : [ [ <value 1>, <value 2> ], [ <value 3>, <value 4> ] ]')
        out: list = []
        for item in args:
            if item is None:
                continue
            if not isinstance(item, list):
                raise TypeError("Incorrect arguments: Items to concat must be lists. "
                                f"{json.dumps(args)[:200]} contains an item that is not a list: "
                                f"{json.dumps(item)[:200]}")
            out.extend(item)
        if not unique:
            return out
        deduplicated: list = []
        for item in out:
            if item not in deduplicated:
                deduplicated.append(item)
        return deduplicated

    return run


def _yaql(ev: _Evaluator, raw: Any, path: list) -> Any:
    raise HotError('The function "yaql" is not supported by this cloud: write the expression '
                   "with the other intrinsic functions (map_merge, repeat, filter, ...)", path)


def _resource_facade(ev: _Evaluator, raw: Any, path: list) -> Any:
    key = ev.args(raw, path)
    if key not in ("metadata", "deletion_policy", "update_policy"):
        raise ValueError('Incorrect arguments to "resource_facade" should be: '
                         "resource_facade: (metadata|deletion_policy|update_policy)")
    facade = getattr(ev.ctx, "resource_facade", None)
    if facade is None:
        raise ValueError("resource_facade is only valid in a nested stack's template")
    return facade(key)


_FUNCTIONS: dict[str, Callable[[_Evaluator, Any, list], Any]] = {
    "get_param": _get_param,
    "get_resource": _get_resource,
    "get_attr": _get_attr,
    "get_file": _get_file,
    "list_join": list_join,
    "str_replace": make_str_replace("str_replace", strict=False, allow_empty=True),
    "str_replace_strict": make_str_replace("str_replace_strict", strict=True, allow_empty=True),
    "str_replace_vstrict": make_str_replace("str_replace_vstrict", strict=True, allow_empty=False),
    "repeat": _repeat,
    "digest": digest,
    "str_split": str_split,
    "map_merge": _map_merge,
    "map_replace": _map_replace,
    "if": _if,
    "equals": _equals,
    "not": _boolean("not"),
    "and": _boolean("and"),
    "or": _boolean("or"),
    "contains": _contains,
    "filter": _filter,
    "make_url": make_url,
    "list_concat": _make_list_concat(unique=False),
    "list_concat_unique": _make_list_concat(unique=True),
    "yaql": _yaql,
    "resource_facade": _resource_facade,
    "Fn::Select": select,
    "Fn::Join": cfn_join,
    "Fn::Split": cfn_split,
    "Fn::Replace": cfn_replace,
    "Fn::Base64": cfn_base64,
    "Fn::MemberListToMap": cfn_member_list_to_map,
    "Fn::ResourceFacade": _resource_facade,
    "Fn::GetAZs": cfn_get_azs,
    "Ref": cfn_ref,
}

"""The CloudFormation-style functions HOT 2013-05-23 still evaluates (``Fn::Select`` until
2015-04-30), and ``resource_facade``. Later versions refuse them by name (versions.py)."""

from __future__ import annotations

from typing import Any


def select(ev: Any, raw: Any, path: list) -> Any:
    args = ev.args(raw, path)
    if not isinstance(args, list) or len(args) != 2:
        raise ValueError('Arguments to "Fn::Select" must be of the form [index, collection]')
    index, collection = args
    if collection is None:
        return ""
    if isinstance(collection, dict):
        if not isinstance(index, str):
            raise TypeError('Index to "Fn::Select" must be a string')
        return collection.get(index, "")
    if isinstance(collection, list):
        try:
            return collection[int(index)]
        except (ValueError, TypeError, IndexError):
            return ""
    raise TypeError('Arguments to "Fn::Select" not fully resolved')


def cfn_join(ev: Any, raw: Any, path: list) -> Any:
    args = ev.args(raw, path)
    if not isinstance(args, list) or len(args) != 2 or not isinstance(args[0], str):
        raise ValueError('Arguments to "Fn::Join" must be of the form [delimiter, [string, ...]]')
    if not isinstance(args[1], list):
        raise TypeError('"Fn::Join" must operate on a list')
    return args[0].join("" if s is None else str(s) for s in args[1])


def cfn_split(ev: Any, raw: Any, path: list) -> Any:
    args = ev.args(raw, path)
    if not isinstance(args, list) or len(args) != 2 or not all(isinstance(a, str) for a in args):
        raise ValueError('Arguments to "Fn::Split" must be of the form [delimiter, string]')
    return args[1].split(args[0])


def cfn_replace(ev: Any, raw: Any, path: list) -> Any:
    args = ev.args(raw, path)
    if not isinstance(args, list) or len(args) != 2 or not isinstance(args[0], dict):
        raise ValueError('Arguments to "Fn::Replace" must be of the form [{param: value}, string]')
    mapping, text = args
    if not isinstance(text, str):
        raise TypeError('"Fn::Replace" template must be a string')
    for key in sorted(mapping, key=len, reverse=True):
        text = text.replace(key, "" if mapping[key] is None else str(mapping[key]))
    return text


def cfn_base64(ev: Any, raw: Any, path: list) -> Any:
    value = ev.args(raw, path)  # Heat's Fn::Base64 has always returned its input unchanged
    if not isinstance(value, str):
        raise TypeError('"Fn::Base64" argument must be a string')
    return value


def cfn_member_list_to_map(ev: Any, raw: Any, path: list) -> Any:
    args = ev.args(raw, path)
    if not (isinstance(args, list) and len(args) == 3 and isinstance(args[2], list)):
        raise TypeError('Wrong Arguments try: "[key_name, value_name, [list]]"')
    key_name, value_name, members = args
    pairs: dict[str, dict[str, str]] = {}
    for member in members:
        field_name, _, text = str(member).partition("=")
        prefix, _, attr = field_name.rpartition(".")
        pairs.setdefault(prefix, {})[attr] = text
    return {p[f"{key_name}"]: p.get(value_name, "") for p in pairs.values() if key_name in p}


def cfn_ref(ev: Any, raw: Any, path: list) -> Any:
    name = ev.args(raw, path)
    try:
        return ev.ctx.param(name)
    except KeyError:
        return ev.ctx.resource_id(name)


def cfn_get_azs(ev: Any, raw: Any, path: list) -> Any:
    zones = getattr(ev.ctx, "availability_zones", None)
    return list(zones()) if zones is not None else ["nova"]

"""The string functions of HOT: ``str_replace`` (and its strict forms), ``list_join``,
``str_split``, ``digest`` and ``make_url``. Each takes (evaluator, raw args, path), as
every function in ``functions.py``; errors keep Heat's wording."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any
from urllib import parse as urlparse

from cloudbox.orchestration.hot.errors import HotError


def json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def list_join(ev: Any, raw: Any, path: list) -> Any:
    example = '"list_join" : [ " ", [ "str1", "str2"] ...]'
    if not isinstance(raw, list) or len(raw) < 2:
        raise ValueError(f'Incorrect arguments to "list_join" should be: {example}')
    if not ev.version.at_least("2015-10-15") and len(raw) != 2:
        raise ValueError(f'Incorrect arguments to "list_join" should be: {example}')
    args = ev.args(raw, path)
    delim, lists = args[0], args[1:]
    strings: list[Any] = []
    for item in lists:
        if not item:
            continue
        if isinstance(item, str) or not isinstance(item, list):
            raise TypeError('"list_join" must operate on a list')
        strings.extend(item)
    if not isinstance(delim, str):
        raise TypeError('"list_join" delimiter must be a string')
    out = []
    for s in strings:
        if s is None:
            out.append("")
        elif isinstance(s, str):
            out.append(s)
        elif isinstance(s, (dict, list)) and ev.version.at_least("2015-10-15"):
            out.append(json_text(s))
        else:
            allowed = "string, map or list" if ev.version.at_least("2015-10-15") else "strings"
            raise TypeError(f"Items to join must be {allowed} not {repr(s)[:200]}")
    return delim.join(out)


def _replacement_text(value: Any, param: str, fn_name: str, json_values: bool,
                      allow_empty: bool) -> str:
    def empty() -> HotError:
        return HotError(f"{fn_name} has an undefined or empty value for param {param}, "
                        "must be a defined non-empty value")

    if value is None:
        if allow_empty:
            return ""
        raise empty()
    if isinstance(value, bool):
        text = str(value)
    elif isinstance(value, (str, int, float)):
        text = str(value)
    elif json_values and isinstance(value, (dict, list)):
        if not allow_empty and not value:
            raise empty()
        return json_text(value)
    elif json_values:
        raise TypeError(f'"{fn_name}" params must be strings, numbers, list or map.')
    else:
        raise TypeError(f'"{fn_name}" params must be strings or numbers, param {param} is not valid')
    if not allow_empty and not text:
        raise empty()
    return text


def make_str_replace(fn_name: str, strict: bool, allow_empty: bool) -> Callable:
    def run(ev: Any, raw: Any, path: list) -> Any:
        if not isinstance(raw, dict):
            raise TypeError(f'Arguments to "{fn_name}" must be a map')
        if set(raw) != {"template", "params"}:
            raise KeyError(f'"{fn_name}" syntax should be {fn_name}:\n  template: This is var1 template '
                           'var2\n  params:\n    var1: a\n    var2: b')
        if isinstance(raw["params"], list):
            raise TypeError(f'"{fn_name}" parameters must be a mapping')
        template = ev.eval(raw["template"], [*path, "template"])
        mapping = ev.eval(raw["params"], [*path, "params"])
        if not isinstance(template, str):
            raise TypeError(f'"{fn_name}" template must be a string')
        if not isinstance(mapping, dict):
            raise TypeError(f'"{fn_name}" params must be a map')
        json_values = ev.version.at_least("2015-10-15")
        # Longer placeholders first, then alphabetical: "%a%b%" wins over "%a%".
        keys = sorted(sorted(mapping, key=str), key=lambda k: len(str(k)), reverse=True)
        unused = set(keys)

        # One pass: a key is looked for only in text no earlier key replaced. The text is
        # kept as pieces, each still open to later keys or already a replacement.
        pieces: list[tuple[str, bool]] = [(template, True)]
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f'"{fn_name}" param placeholders must be strings')
            value = _replacement_text(mapping[key], key, fn_name, json_values, allow_empty)
            if key == "" or key not in template:
                continue  # open pieces are parts of the template; "" replaces nothing
            split: list[tuple[str, bool]] = []
            for text, open_ in pieces:
                parts = text.split(key) if open_ else [text]
                if len(parts) > 1:
                    unused.discard(key)
                for i, part in enumerate(parts):
                    if i:
                        split.append((value, False))
                    split.append((part, open_))
            pieces = split
        result = "".join(text for text, _ in pieces)
        if strict and unused:
            missing = ",".join(sorted(sorted(unused), key=len, reverse=True))
            raise ValueError(f"The following params were not found in the template: {missing}")
        return result

    return run


def digest(ev: Any, raw: Any, path: list) -> Any:
    args = ev.args(raw, path)
    if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
        raise TypeError('Argument to function "digest" must be a list of strings')
    if len(args) != 2:
        raise ValueError('Function "digest" usage: ["<algorithm>", "<value>"]')
    algorithm, value = args
    if algorithm.lower() not in hashlib.algorithms_available:
        raise ValueError(f"Algorithm must be one of {sorted(hashlib.algorithms_available)}")
    digest = hashlib.new(algorithm.lower())
    digest.update(value.encode("latin-1", errors="replace"))
    return digest.hexdigest()


def str_split(ev: Any, raw: Any, path: list) -> Any:
    example = '"str_split" : [ ",", "apples,pears", <index>]'
    if not isinstance(raw, list):
        raise TypeError(f'Incorrect arguments to "str_split" should be: {example}')
    args = ev.args(raw, path)
    if len(args) < 2 or len(args) > 3:
        raise ValueError(f'Incorrect arguments to "str_split" should be: {example}')
    delim, text = args[0], args[1]
    if text is None:
        return None
    # a null delimiter splits on whitespace, as Python (and so Heat) does
    if (delim is not None and not isinstance(delim, str)) or not isinstance(text, str) or delim == "":
        raise ValueError(f'Incorrect arguments to "str_split" should be: {example}')
    parts = text.split(delim)
    if len(args) == 2:
        return parts
    try:
        index = int(args[2])
    except (TypeError, ValueError):
        raise ValueError(f'Incorrect index to "str_split" should be: {example}') from None
    if not -len(parts) <= index < len(parts):
        raise ValueError(f'Incorrect index to "str_split" should be between 0 and {len(parts) - 1}')
    return parts[index]


_URL_KEYS = ("scheme", "username", "password", "host", "port", "path", "query", "fragment")


def make_url(ev: Any, raw: Any, path: list) -> Any:
    if not isinstance(raw, dict):
        raise TypeError('The arguments to "make_url" must be a map')
    unknown = set(raw) - set(_URL_KEYS)
    if unknown:
        raise ValueError(f'Invalid arguments to "make_url": {", ".join(sorted(unknown))}')
    args = ev.args(raw, path)
    for key, value in args.items():
        if key == "query":
            if not isinstance(value, dict):
                raise TypeError('The "query" argument to "make_url" must be a map')
        elif key == "port":
            try:
                port = int(value)
            except (TypeError, ValueError):
                raise ValueError(f'Invalid URL port "{value}" for make_url called with {raw}') from None
            if not 0 < port <= 65535:
                raise ValueError(f"Invalid URL port {port}, must be in range 1-65535")
        elif not isinstance(value, str):
            raise TypeError(f'The "{key}" argument to "make_url" must be a string')
    scheme = args.get("scheme", "")
    if ":" in scheme:
        raise ValueError('URL "scheme" should not contain \':\'')
    netloc = ""
    username = urlparse.quote(args.get("username", ""), safe="")
    password = urlparse.quote(args.get("password", ""), safe="")
    if username or password:
        netloc = username + (":" + password if password else "") + "@"
    host = args.get("host", "")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = urlparse.quote(host, safe=":")
    netloc += f"[{host}]" if ":" in host else host
    if args.get("port"):
        netloc += f":{args['port']}"
    query = urlparse.urlencode(args.get("query", {})).replace("%2F", "/")
    return urlparse.urlunsplit((scheme, netloc, urlparse.quote(args.get("path", "")), query,
                                urlparse.quote(args.get("fragment", ""))))

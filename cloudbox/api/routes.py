"""Routes as a table: each service lists its endpoints with the access rule beside the handler.

A handler is ``async def handler(call: Call, **path_params)`` and returns a
``Reply`` (or a dict, meaning 200 with that JSON body).  ``access`` is
"public" (no token needed) or "token" (a valid X-Auth-Token); finer rules
that depend on the resource are checked by the handler against ``call.auth``.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping

import jsonschema

from cloudbox.errors import QUOTE_LIMIT, BadRequest, quote


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]
    access: str = "token"
    summary: str = ""
    body: dict[str, Any] | None = None  # JSON schema of the request body
    query: tuple[str, ...] = ()  # query parameters understood
    status: int = 200  # success status, for the OpenAPI document
    raw_body: bool = False  # the handler reads the body itself (uploads)


@dataclass
class ApiSpec:
    """One service's API: where it is mounted, how its errors look, and its routes."""

    name: str
    prefix: str
    style: str
    routes: list[Route]
    catalog: tuple[str, str] | None = None  # (service type, service name) for the catalog

    def __post_init__(self) -> None:
        self.validators = {
            (r.method, r.path): jsonschema.Draft202012Validator(r.body) for r in self.routes if r.body
        }


@dataclass
class Reply:
    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """What a handler sees of one request."""

    request: Any  # quart Request
    auth: Any  # AuthContext or None
    body: Any
    query: Mapping[str, str]
    base: str  # absolute URL of the service's prefix, for links
    request_id: str
    max_limit: int

    def page(self) -> tuple[int, str | None]:
        """(limit, marker) from the query string, limit clamped to the server's maximum."""
        raw = self.query.get("limit")
        limit = self.max_limit
        if raw not in (None, ""):
            try:
                limit = int(raw)
            except ValueError:
                raise BadRequest(f"limit must be a whole number, not {raw[:40]!r}") from None
            if limit < 0:
                raise BadRequest("limit must not be negative")
            limit = min(limit, self.max_limit)
        marker = self.query.get("marker") or None
        return limit, marker

    def paged(self, rows: list[dict[str, Any]], limit: int, path: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Cut a fetched page (``limit`` + 1 rows) and build Keystone-style links with ``next``."""
        more = len(rows) > limit
        rows = rows[:limit]
        query = {k: v for k, v in self.query.items() if k != "marker"}
        links: dict[str, Any] = {
            "self": self.base + path + (("?" + urllib.parse.urlencode(self.query)) if self.query else ""),
            "previous": None,
            "next": None,
        }
        if more and rows:
            query["marker"] = rows[-1]["id"]
            query.setdefault("limit", str(limit))
            links["next"] = self.base + path + "?" + urllib.parse.urlencode(query)
        return rows, links

    def flag(self, name: str) -> bool | None:
        """A boolean query filter: absent → None; true/1/yes → True; false/0/no → False."""
        raw = self.query.get(name)
        if raw is None:
            return None
        text = raw.strip().lower()
        if text in ("", "true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise BadRequest(f"{name} must be true or false, not {raw!r}")


_PATH_PARAM = re.compile(r"{(\w+)(:path)?}")


def url_rule(path: str) -> str:
    """A route path as a werkzeug rule: ``{name}`` matches one segment, ``{name:path}`` the rest of
    the path, slashes included (Swift's object names)."""
    return _PATH_PARAM.sub(lambda m: f"<path:{m[1]}>" if m[2] else f"<{m[1]}>", path)


def doc_path(path: str) -> str:
    """A route path as the OpenAPI document names it (``{name:path}`` is ``{name}``)."""
    return path.replace(":path}", "}")


# Marks a call another node forwarded (it is answered where it lands, under the forwarder's request id).
FORWARDED_BY = "X-Cloudbox-Forwarded-By"
MAX_DEPTH = 64  # deepest nesting a request body may have (OpenStack's bodies stay under ten)
_INT64 = 1 << 63
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(data: bytes, validator: jsonschema.Validator | None) -> Any:
    """A request body as JSON, or BadRequest: the one parser every service's routes go through.

    Refused here, for every service at once: what is not JSON although Python's json takes it
    (NaN, Infinity, numbers that overflow to infinity), integers no column can hold (past 64
    bits), nesting deeper than ``MAX_DEPTH``, and strings that are not Unicode text (lone UTF-16
    surrogates, which json decodes from escapes like "\\ud800" and no encoder can write back).
    """
    if not data.strip():
        if validator is None:
            return None
        raise BadRequest("The request body is empty; a JSON document is required.")
    try:
        body = json.loads(data, parse_constant=_not_a_number, parse_float=_finite_float, parse_int=_int64)
    except RecursionError:
        raise BadRequest(f"Malformed request body: nested deeper than {MAX_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Malformed request body: not valid JSON ({exc}).") from None
    _check_tree(body, data)
    if validator is not None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(body))
        if error is not None:
            where = _where(error.absolute_path)
            # jsonschema quotes the whole value; a client that sent 100 kB gets back a prefix.
            message = error.message.replace(repr(error.instance), quote(error.instance))
            raise BadRequest(f"Invalid input for field '{where}': {message}")
    return body


def _not_a_number(name: str) -> Any:
    raise BadRequest(f"Malformed request body: {name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(f"Invalid input: the number {quote(text)} is out of range.")
    return value


def _int64(text: str) -> int:
    value = int(text) if len(text) <= 20 else _INT64  # no conversion of a 4,000-digit number
    if not -_INT64 <= value < _INT64:
        raise BadRequest(f"Invalid input: the integer {quote(text)} is out of range (64 bits at most).")
    return value


def _check_tree(body: Any, data: bytes) -> None:
    """Depth and text checks over the parsed body, walked without recursion and only when the
    raw body could fail them (cheap tests on the bytes first: this runs on every request)."""
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH:
        level, depth = [body], 0
        while level:
            depth += 1
            if depth > MAX_DEPTH:
                raise BadRequest(f"Malformed request body: nested deeper than {MAX_DEPTH} levels.")
            inner: list[Any] = []
            for value in level:
                inner.extend(v for v in (value.values() if isinstance(value, dict) else value)
                             if isinstance(v, (dict, list)))
            level = inner
    if _SURROGATE_ESCAPE.search(data):  # lone surrogates come only from \u escapes
        _check_text(body)


def _check_text(body: Any) -> None:
    """Refuse the first lone surrogate; each entry is (value, parent entry, key), so that the
    path is built only for the message."""
    stack: list[tuple[Any, Any, Any]] = [(body, None, None)]
    while stack:
        entry = stack.pop()
        value = entry[0]
        if isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    _not_text(key, entry)
                stack.append((item, entry, key))
        elif isinstance(value, list):
            stack.extend((item, entry, index) for index, item in enumerate(value))
        elif isinstance(value, str) and _SURROGATE.search(value):
            _not_text(value, entry)


def _not_text(text: str, entry: tuple[Any, Any, Any]) -> None:
    path = []
    while entry[1] is not None:
        path.append(entry[2])
        entry = entry[1]
    raise BadRequest(f"Invalid input for field '{_where(reversed(path))}': {quote(text)} holds a lone UTF-16 "
                     "surrogate, which is not Unicode text.")


def _where(path: Iterable[Any]) -> str:
    """A field's place in the body for a message ("server/networks/0/uuid"), long keys cut."""
    names = [repr(p)[1:-1] if isinstance(p, str) else str(p) for p in path]
    return "/".join(n if len(n) <= QUOTE_LIMIT else n[:QUOTE_LIMIT] + "..." for n in names) or "body"

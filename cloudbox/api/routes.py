"""Routes as a table: each service lists its endpoints with the access rule beside the handler.

A handler is ``async def handler(call: Call, **path_params)`` and returns a
``Reply`` (or a dict, meaning 200 with that JSON body).  ``access`` is
"public" (no token needed) or "token" (a valid X-Auth-Token); finer rules
that depend on the resource are checked by the handler against ``call.auth``.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

import jsonschema

from cloudbox.errors import BadRequest


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


def parse_json(data: bytes, validator: jsonschema.Validator | None) -> Any:
    if not data.strip():
        if validator is None:
            return None
        raise BadRequest("The request body is empty; a JSON document is required.")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Malformed request body: not valid JSON ({exc}).") from None
    if validator is not None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(body))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "body"
            raise BadRequest(f"Invalid input for field '{where}': {error.message}")
    return body

"""Building blocks for response schemas (JSON Schema 2020-12, as OpenAPI 3.1 uses).

Objects list the fields a client may rely on as required and leave others allowed: a new
field is no break, a missing or mistyped one is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
NSTR: Schema = {"type": ["string", "null"]}
INT: Schema = {"type": "integer"}
NINT: Schema = {"type": ["integer", "null"]}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
ANY_OBJ: Schema = {"type": "object"}
STRS: Schema = {"type": "array", "items": STR}
STR_MAP: Schema = {"type": "object", "additionalProperties": STR}
EMPTY_LIST: Schema = {"type": "array", "maxItems": 0}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None, *,
        extra: Schema | None = None) -> Schema:
    """An object with ``required`` fields, ``optional`` ones, and (if given) what any other field must be."""
    schema: Schema = {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}
    if extra is not None:
        schema["additionalProperties"] = extra
    return schema


def loose(schema: Schema) -> Schema:
    """The same object with no field required (a view cut down by Neutron's ``fields``)."""
    return {k: v for k, v in schema.items() if k != "required"}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def wrap(key: str, item: Schema) -> Schema:
    """``{key: item}``, the envelope every OpenStack API puts around one resource."""
    return obj({key: item})


def enum(*values: Any) -> Schema:
    return {"enum": list(values)}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


@dataclass(frozen=True)
class Raw:
    """A response body that is not JSON (image data, a database snapshot, a web page)."""

    media_type: str


Body = Schema | Raw | None  # a JSON schema, raw bytes of a media type, or no body at all


@dataclass(frozen=True)
class Doc:
    """What the OpenAPI document says about one route beyond its route-table entry."""

    responses: dict[int, Body] = field(default_factory=dict)  # success statuses and their bodies
    errors: tuple[int, ...] = ()  # error statuses beyond the ones every route of its kind can answer
    anonymous: bool = False  # reads no token and checks no role: never 401, 403 or 503
    headers: tuple[Schema, ...] = ()  # header parameters (OpenAPI parameter objects)
    request_media: tuple[str, ...] = ()  # media types of the request body, when not application/json


def header(name: str, schema: Schema, *, required: bool = False, description: str = "") -> Schema:
    return {"name": name, "in": "header", "required": required, "schema": schema, "description": description}

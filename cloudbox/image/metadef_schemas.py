"""Metadata definitions as JSON schemas: the documents Glance publishes at /v2/schemas/metadefs/*,
and the request shapes the metadefs routes check bodies against (the same definitions, without
the attributes only the server sets)."""

from __future__ import annotations

import copy
from typing import Any

NAME_LENGTH = 80  # namespaces, objects, properties and resource types
TAG_LENGTH = 255
DESCRIPTION_LENGTH = 500
PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string", None)
# Names are path segments of the API (/namespaces/{namespace}/objects/{name}): one with a slash
# could be made but never shown, changed or deleted.
NAME_PATTERN = "^[^/]+$"

_STRING_ARRAY = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
_COUNT = {"type": "integer", "minimum": 0}
_READ_ONLY = ("created_at", "updated_at", "self", "schema")


def _stamp(what: str) -> dict[str, Any]:
    return {"type": "string", "readOnly": True, "format": "date-time",
            "description": f"Date and time of {what} (READ-ONLY)"}


# One property definition: a JSON-schema fragment describing a key of a resource's metadata.
PROPERTY: dict[str, Any] = {
    "type": "object",
    "required": ["title", "type"],
    "properties": {
        "name": {"type": "string", "maxLength": NAME_LENGTH, "pattern": NAME_PATTERN},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": _STRING_ARRAY,
        "type": {"type": ["string", "null"], "enum": list(PROPERTY_TYPES)},
        "required": _STRING_ARRAY,
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": _COUNT,
        "minLength": _COUNT,
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": [t for t in PROPERTY_TYPES if t not in ("array", None)]},
                "enum": {"type": "array"},
            },
        },
        "maxItems": _COUNT,
        "minItems": _COUNT,
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    },
    "additionalProperties": False,
}

_PROPERTIES = {"type": "object", "additionalProperties": PROPERTY,
               "propertyNames": {"minLength": 1, "maxLength": NAME_LENGTH, "pattern": NAME_PATTERN}}

ASSOCIATION: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": NAME_LENGTH, "pattern": NAME_PATTERN,
                 "description": "Resource type names should be aligned with Heat resource types "
                                "whenever possible: https://docs.openstack.org/heat/latest/"
                                "template_guide/openstack.html"},
        "prefix": {"type": "string", "maxLength": NAME_LENGTH,
                   "description": "Specifies the prefix to use for the given resource type. Any properties "
                                  "in the namespace should be prefixed with this prefix when being applied "
                                  "to the specified resource type. Must include prefix separator (e.g. a "
                                  "colon :)."},
        "properties_target": {"type": "string", "maxLength": NAME_LENGTH,
                              "description": "Some resource types allow more than one key / value pair per "
                                             "instance. For example, Cinder allows user and image metadata "
                                             "on volumes. Only the image properties metadata is evaluated "
                                             "by Nova (scheduling or drivers). This property allows a "
                                             "namespace target to remove the ambiguity."},
        "created_at": _stamp("resource type association"),
        "updated_at": _stamp("the last resource type association modification"),
    },
    "additionalProperties": False,
}

OBJECT: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": NAME_LENGTH, "pattern": NAME_PATTERN},
        "description": {"type": "string"},
        "required": _STRING_ARRAY,
        "properties": _PROPERTIES,
        "schema": {"type": "string", "readOnly": True},
        "self": {"type": "string", "readOnly": True},
        "created_at": _stamp("object creation"),
        "updated_at": _stamp("the last object modification"),
    },
    "additionalProperties": False,
}

TAG: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": TAG_LENGTH, "pattern": NAME_PATTERN},
        "created_at": _stamp("tag creation"),
        "updated_at": _stamp("the last tag modification"),
    },
    "additionalProperties": False,
}

NAMESPACE: dict[str, Any] = {
    "type": "object",
    "required": ["namespace"],
    "properties": {
        "namespace": {"type": "string", "minLength": 1, "maxLength": NAME_LENGTH, "pattern": NAME_PATTERN,
                      "description": "The unique namespace text."},
        "display_name": {"type": "string", "maxLength": NAME_LENGTH,
                         "description": "The user friendly name for the namespace. Used by UI if available."},
        "description": {"type": "string", "maxLength": DESCRIPTION_LENGTH,
                        "description": "Provides a user friendly description of the namespace."},
        "visibility": {"type": "string", "enum": ["public", "private"],
                       "description": "Scope of namespace accessibility."},
        "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
        "owner": {"type": "string", "maxLength": 255, "description": "Owner of the namespace."},
        "created_at": _stamp("namespace creation"),
        "updated_at": _stamp("the last namespace modification"),
        "schema": {"type": "string", "readOnly": True},
        "self": {"type": "string", "readOnly": True},
        "resource_type_associations": {"type": "array", "items": ASSOCIATION},
        "properties": _PROPERTIES,
        "objects": {"type": "array", "items": OBJECT},
        "tags": {"type": "array", "items": TAG},
    },
    "additionalProperties": False,
}


def _writable(schema: dict[str, Any]) -> dict[str, Any]:
    """A request shape: the document without what the server alone sets."""
    shape = copy.deepcopy(schema)
    for key in _READ_ONLY:
        shape["properties"].pop(key, None)
    for key in ("objects", "tags"):
        if key in shape["properties"]:
            shape["properties"][key]["items"] = _writable(shape["properties"][key]["items"])
    if "resource_type_associations" in shape["properties"]:
        shape["properties"]["resource_type_associations"]["items"] = _writable(ASSOCIATION)
    return shape


CREATE_NAMESPACE = _writable(NAMESPACE)
CREATE_OBJECT = _writable(OBJECT)
CREATE_TAG = _writable(TAG)
CREATE_ASSOCIATION = _writable(ASSOCIATION)
CREATE_PROPERTY: dict[str, Any] = {**copy.deepcopy(PROPERTY), "required": ["name", "title", "type"]}
CREATE_TAGS: dict[str, Any] = {
    "type": "object", "required": ["tags"],
    "properties": {"tags": {"type": "array", "items": CREATE_TAG}},
    "additionalProperties": False,
}


def _named(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, **copy.deepcopy(schema), "definitions": {"property": PROPERTY}}


def _listed(name: str, key: str, item: dict[str, Any], of: str) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            key: {"type": "array", "items": item},
            "first": {"type": "string"}, "next": {"type": "string"}, "schema": {"type": "string"},
        },
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
        "description": f"A list of {of}.",
    }


# GET /v2/schemas/metadefs/<name>
SCHEMAS = {
    "namespace": lambda: _named("namespace", NAMESPACE),
    "namespaces": lambda: _listed("namespaces", "namespaces", NAMESPACE, "metadata definition namespaces"),
    "resource_type": lambda: _named("resource_type_association", ASSOCIATION),
    "resource_types": lambda: _listed("resource_type_associations", "resource_type_associations", ASSOCIATION,
                                      "resource type associations"),
    "object": lambda: _named("object", OBJECT),
    "objects": lambda: _listed("objects", "objects", OBJECT, "metadata definition objects"),
    "property": lambda: _named("property", {**PROPERTY, "required": ["name", "title", "type"]}),
    "properties": lambda: {"name": "properties", "properties": {
        "properties": {"type": "object", "additionalProperties": PROPERTY}, "schema": {"type": "string"}},
        "links": [{"rel": "describedby", "href": "{schema}"}], "definitions": {"property": PROPERTY}},
    "tag": lambda: _named("tag", TAG),
    "tags": lambda: _listed("tags", "tags", TAG, "metadata definition tags"),
}

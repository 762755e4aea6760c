"""Request shapes of the image API as JSON schemas, and Glance's published schema documents."""

from __future__ import annotations

from typing import Any

from cloudbox.image import core, imports

_NULLABLE_STRING = {"type": ["null", "string"], "maxLength": 255}
_READ_ONLY = {"description": "Read-only: setting it is refused with 403."}

CREATE_IMAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 36},
        "name": _NULLABLE_STRING,
        "owner": _NULLABLE_STRING,
        "visibility": {"enum": list(core.VISIBILITIES)},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "disk_format": {"enum": [None, *core.DISK_FORMATS]},
        "container_format": {"enum": [None, *core.CONTAINER_FORMATS]},
        "min_disk": {"type": "integer", "minimum": 0},
        "min_ram": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255},
                 "maxItems": core.MAX_TAGS},
        **{name: _READ_ONLY for name in core.READ_ONLY if name != "id"},
        **{name: {"description": "Reserved: refused with 403."} for name in core.RESERVED},
    },
    "propertyNames": {"minLength": 1, "maxLength": 255},
    "additionalProperties": {"type": "string", "maxLength": 65535},
}

# Operations come in two dialects (see core.parse_patch), told apart by the media type.
PATCH_IMAGE: dict[str, Any] = {"type": "array", "items": {"type": "object"}}

# POST /v2/images/{id}/import: the method, and for multi-store clouds where to put the data.
IMPORT: dict[str, Any] = {
    "type": "object",
    "required": ["method"],
    "properties": {
        "method": {"type": "object", "required": ["name"],
                   "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255},
                                  "uri": {"type": "string", "maxLength": 2048}}},
        "stores": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255}, "maxItems": 16},
        "all_stores": {"type": "boolean"},
        "all_stores_must_succeed": {"type": "boolean"},
    },
}

# POST /v2/tasks (Glance's older task API).
CREATE_TASK: dict[str, Any] = {
    "type": "object",
    "required": ["type", "input"],
    "properties": {"type": {"type": "string", "maxLength": 255}, "input": {"type": "object"}},
    "additionalProperties": False,
}

ADD_MEMBER: dict[str, Any] = {
    "type": "object",
    "required": ["member"],
    "properties": {"member": {"type": "string", "minLength": 1, "maxLength": 255}},
}

UPDATE_MEMBER: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"enum": list(core.MEMBER_STATUSES)}},
}


# --- Glance's schema documents (GET /v2/schemas/...) ------------------------------------
def image_schema() -> dict[str, Any]:
    string = {"type": ["null", "string"], "readOnly": True}
    return {
        "name": "image",
        "additionalProperties": {"type": "string"},
        "properties": {
            "id": {"type": "string", "description": "An identifier for the image",
                   "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "name": {"type": ["null", "string"], "maxLength": 255, "description": "Descriptive name for the image"},
            "status": {"type": "string", "readOnly": True, "enum": list(core.STATUSES),
                       "description": "Status of the image"},
            "visibility": {"type": "string", "enum": list(core.VISIBILITIES),
                           "description": "Scope of image accessibility"},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {**string, "maxLength": 32, "description": "md5 hash of image contents."},
            "os_hash_algo": {**string, "maxLength": 64, "description": "Algorithm to calculate the os_hash_value"},
            "os_hash_value": {**string, "maxLength": 128, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"},
            "owner": {"type": ["null", "string"], "maxLength": 255, "description": "Owner of the image"},
            "size": {"type": ["null", "integer"], "readOnly": True, "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": True, "description": "Virtual size of image in bytes"},
            "container_format": {"type": ["null", "string"], "enum": [None, *core.CONTAINER_FORMATS],
                                 "description": "Format of the container"},
            "disk_format": {"type": ["null", "string"], "enum": [None, *core.DISK_FORMATS],
                            "description": "Format of the disk"},
            "created_at": {"type": "string", "readOnly": True, "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": True, "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                     "description": "List of strings related to the image"},
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
            "self": {"type": "string", "readOnly": True, "description": "An image self url"},
            "file": {"type": "string", "readOnly": True, "description": "An image file url"},
            "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
            "stores": {"type": "string", "readOnly": True,
                       "description": "Store in which image data resides.  Only present when the operator has "
                                      "enabled multiple stores.  May be a comma-separated list of store identifiers."},
        },
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "schema": {"type": "string", "readOnly": True},
            "status": {"type": "string", "enum": list(core.MEMBER_STATUSES), "description": "The status of this image member"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
        },
    }


def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {"members": {"type": "array", "items": member_schema()}, "schema": {"type": "string"}},
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


SCHEMAS = {"image": image_schema, "images": images_schema, "member": member_schema, "members": members_schema,
           "task": imports.task_schema, "tasks": imports.tasks_schema}

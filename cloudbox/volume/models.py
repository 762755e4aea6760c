"""Request shapes of the volume API as JSON schemas (the deeper checks are core's)."""

from __future__ import annotations

from typing import Any

_TEXT = {"type": ["string", "null"], "maxLength": 255}
_LONG_TEXT = {"type": ["string", "null"], "maxLength": 65535}
_ID = {"type": ["string", "null"], "maxLength": 255}
_SIZE = {"type": ["integer", "string", "null"]}
_METADATA = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255},
             "propertyNames": {"minLength": 1, "maxLength": 255}}
_OPTIONAL_METADATA = {**_METADATA, "type": ["object", "null"]}  # openstacksdk sends null for none


def _wrapped(key: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "required": [key],
            "properties": {key: {"type": "object", "required": list(required), "properties": properties}}}


CREATE_VOLUME = _wrapped("volume", {
    "name": _TEXT, "description": _LONG_TEXT, "display_name": _TEXT, "display_description": _LONG_TEXT,
    "size": _SIZE, "availability_zone": _TEXT, "volume_type": _ID, "snapshot_id": _ID, "source_volid": _ID,
    "imageRef": _ID, "backup_id": _ID, "metadata": _OPTIONAL_METADATA, "multiattach": {"type": ["boolean", "null"]},
    "consistencygroup_id": _ID, "group_id": _ID,
})
UPDATE_VOLUME = _wrapped("volume", {"name": _TEXT, "description": _LONG_TEXT, "display_name": _TEXT,
                                    "display_description": _LONG_TEXT, "metadata": _METADATA})
ACTION: dict[str, Any] = {"type": "object", "minProperties": 1, "maxProperties": 1}
METADATA = {"type": "object", "required": ["metadata"], "properties": {"metadata": _METADATA}}
META_ITEM = {"type": "object", "required": ["meta"], "properties": {"meta": _METADATA}}
CREATE_SNAPSHOT = _wrapped("snapshot", {
    "volume_id": _ID, "name": _TEXT, "description": _LONG_TEXT,
    "display_name": _TEXT, "display_description": _LONG_TEXT, "force": {"type": ["boolean", "string"]},
    "metadata": _OPTIONAL_METADATA}, ("volume_id",))  # a null or empty volume_id is Cinder's 404
UPDATE_SNAPSHOT = _wrapped("snapshot", {"name": _TEXT, "description": _LONG_TEXT, "display_name": _TEXT,
                                        "display_description": _LONG_TEXT})
CREATE_TYPE = _wrapped("volume_type", {
    "name": {"type": "string", "minLength": 1, "maxLength": 255}, "description": _LONG_TEXT,
    "os-volume-type-access:is_public": {"type": ["boolean", "string"]}, "is_public": {"type": ["boolean", "string"]},
    "extra_specs": _OPTIONAL_METADATA}, ("name",))
UPDATE_TYPE = _wrapped("volume_type", {"name": {"type": "string", "minLength": 1, "maxLength": 255},
                                       "description": _LONG_TEXT, "is_public": {"type": ["boolean", "string"]}})
EXTRA_SPECS = {"type": "object", "required": ["extra_specs"], "properties": {"extra_specs": _METADATA}}
TYPE_ACTION: dict[str, Any] = {"type": "object", "minProperties": 1, "maxProperties": 1}
QUOTA_SET = {"type": "object", "required": ["quota_set"], "properties": {"quota_set": {"type": "object"}}}
QUOTA_CLASS_SET = {"type": "object", "required": ["quota_class_set"],
                   "properties": {"quota_class_set": {"type": "object"}}}
DEFAULT_TYPE = {"type": "object", "required": ["default_type"],
                "properties": {"default_type": {"type": "object", "required": ["volume_type"],
                                                "properties": {"volume_type": {"type": "string", "maxLength": 255}}}}}

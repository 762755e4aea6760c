"""Request shapes of the compute API, as JSON schemas."""

from __future__ import annotations

NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^\S(.*\S)?$"}
META = {
    "type": "object",
    "patternProperties": {r"^.{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
TAG = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": r"^[^,/]*$"}

SERVER_CREATE = {
    "type": "object",
    "required": ["server"],
    "properties": {
        "server": {
            "type": "object",
            "required": ["name", "flavorRef"],
            "properties": {
                "name": NAME,
                "imageRef": {"type": "string", "maxLength": 255},
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "key_name": {"type": "string", "maxLength": 255},
                "user_data": {"type": "string", "maxLength": 65535 * 4 // 3 + 4},
                "metadata": META,
                "networks": {"oneOf": [
                    {"type": "string", "enum": ["auto", "none"]},
                    {"type": "array", "items": {"type": "object"}},
                ]},
                "availability_zone": {"type": "string", "maxLength": 255},
                "config_drive": {"type": ["boolean", "string"]},
                "security_groups": {"type": "array", "items": {"type": "object"}},
                "min_count": {"type": ["integer", "string"]},
                "max_count": {"type": ["integer", "string"]},
                "return_reservation_id": {"type": ["boolean", "string"]},
                "description": {"type": ["string", "null"], "maxLength": 255},
                "tags": {"type": "array", "items": TAG, "maxItems": 50},
                "adminPass": {"type": "string"},
                "hostname": {"type": "string", "maxLength": 255},
                "block_device_mapping_v2": {"type": "array"},
                "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
            },
        },
        "os:scheduler_hints": {"type": "object"},
        "OS-SCH-HNT:scheduler_hints": {"type": "object"},
    },
}
SERVER_UPDATE = {
    "type": "object", "required": ["server"],
    "properties": {"server": {"type": "object", "minProperties": 1, "properties": {
        "name": NAME, "description": {"type": ["string", "null"], "maxLength": 255},
        "hostname": {"type": "string", "maxLength": 255}, "accessIPv4": {"type": "string"},
        "accessIPv6": {"type": "string"}, "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
    }}},
}
SERVER_ACTION = {"type": "object", "minProperties": 1, "maxProperties": 1}
METADATA = {"type": "object", "required": ["metadata"], "properties": {"metadata": META}}
METADATA_ITEM = {"type": "object", "required": ["meta"],
                 "properties": {"meta": {"allOf": [META, {"minProperties": 1, "maxProperties": 1}]}}}
TAGS = {"type": "object", "required": ["tags"], "properties": {"tags": {"type": "array", "items": TAG, "maxItems": 50}}}

FLAVOR_CREATE = {
    "type": "object", "required": ["flavor"],
    "properties": {"flavor": {"type": "object", "required": ["name", "ram", "vcpus", "disk"], "properties": {
        "name": NAME, "id": {"type": ["string", "null"], "maxLength": 255, "pattern": r"^[\w.\- ]*$"},
        "ram": {"type": ["integer", "string"], "pattern": "^[0-9]{1,10}$", "minimum": 1, "maximum": 2**31 - 1},
        "vcpus": {"type": ["integer", "string"], "pattern": "^[0-9]{1,10}$", "minimum": 1, "maximum": 2**31 - 1},
        "disk": {"type": ["integer", "string"], "pattern": "^[0-9]{1,10}$", "minimum": 0, "maximum": 2**31 - 1},
        "OS-FLV-EXT-DATA:ephemeral": {"type": ["integer", "string"], "minimum": 0},
        "swap": {"type": ["integer", "string"], "minimum": 0},
        "rxtx_factor": {"type": ["number", "string"]},
        "os-flavor-access:is_public": {"type": ["boolean", "string"]},
        "description": {"type": ["string", "null"], "maxLength": 65535},
    }}},
}
FLAVOR_UPDATE = {"type": "object", "required": ["flavor"], "properties": {"flavor": {
    "type": "object", "required": ["description"],
    "properties": {"description": {"type": ["string", "null"], "maxLength": 65535}}}}}
EXTRA_SPECS = {"type": "object", "required": ["extra_specs"], "properties": {"extra_specs": META}}
FLAVOR_ACTION = {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False, "properties": {
    "addTenantAccess": {"type": "object", "required": ["tenant"], "properties": {"tenant": {"type": "string"}}},
    "removeTenantAccess": {"type": "object", "required": ["tenant"], "properties": {"tenant": {"type": "string"}}},
}}
KEYPAIR_CREATE = {
    "type": "object", "required": ["keypair"],
    "properties": {"keypair": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[a-zA-Z0-9 _.@-]+$"},
        "public_key": {"type": "string", "maxLength": 16384},
        "type": {"enum": ["ssh", "x509"]}, "user_id": {"type": "string"},
    }}},
}
QUOTA_UPDATE = {"type": "object", "required": ["quota_set"], "properties": {"quota_set": {
    "type": "object", "properties": {k: {"type": ["integer", "string"]} for k in (
        "instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups", "server_group_members",
        "force")}, "additionalProperties": {"type": ["integer", "string"]}}}}
SERVER_GROUP_CREATE = {
    "type": "object", "required": ["server_group"],
    "properties": {"server_group": {"type": "object", "required": ["name"], "properties": {
        "name": NAME, "policy": {"enum": ["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]},
        "policies": {"type": "array", "items": {"enum": ["affinity", "anti-affinity", "soft-affinity",
                                                          "soft-anti-affinity"]}, "minItems": 1, "maxItems": 1},
        "rules": {"type": "object"},
    }}},
}

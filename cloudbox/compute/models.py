"""Request shapes of the compute API: JSON schemas of bodies, and the parsed requests the
service takes.

Create bodies refuse fields they do not know (``additionalProperties: false``), as Nova's
schemas do; each accepts every field Nova defines for it at some microversion we serve, so
the openstack CLI and openstacksdk keep working whatever version they negotiate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudbox.compute.boot_volumes import BootRequest

NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^\S(.*\S)?$"}
META = {
    "type": "object",
    "patternProperties": {r"^.{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
TAG = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": r"^[^,/]*$"}
BOOLEAN = {"type": ["boolean", "string"]}  # Nova takes "true", "False", "1"... too
COUNT = {"type": ["integer", "string"], "pattern": "^[0-9]{1,10}$", "minimum": 1, "maximum": 2**31 - 1}
SQL_FLOAT_MAX = 3.40282e38  # Nova's bound on rxtx_factor (a single-precision SQL float)

SCHEDULER_HINTS = {"type": "object"}  # Nova lets hints carry any key (filters of its own)
NETWORK = {
    "type": "object", "additionalProperties": False,
    "properties": {"uuid": {"type": "string"}, "port": {"type": ["string", "null"]},
                   "fixed_ip": {"type": "string"}, "tag": {"type": "string", "maxLength": 60}},
}
# Block device mappings (boot_volumes.py reads them): Nova's item schemas. tag (2.32) and
# volume_type (2.67) are checked against the microversion there.
BDM_LEGACY_PROPERTIES = {
    "virtual_name": {"type": "string", "maxLength": 255},
    "volume_id": {"type": "string", "minLength": 1, "maxLength": 255},
    "snapshot_id": {"type": "string", "minLength": 1, "maxLength": 255},
    "volume_size": {"type": ["integer", "string", "null"], "pattern": "^[0-9]+$", "minimum": 0,
                    "maximum": 2**31 - 1},
    "delete_on_termination": BOOLEAN,
    "device_name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9._/-]*$"},
    "no_device": {},
    "connection_info": {"type": "string", "maxLength": 16777215},
}
BDM_LEGACY = {"type": "object", "properties": BDM_LEGACY_PROPERTIES, "additionalProperties": False}
BDM_V2 = {"type": "object", "additionalProperties": False, "properties": {
    **BDM_LEGACY_PROPERTIES,
    "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
    "uuid": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9._-]*$"},
    "image_id": {"type": "string"},
    "destination_type": {"type": "string", "enum": ["local", "volume"]},
    "guest_format": {"type": "string", "maxLength": 255},
    "device_type": {"type": "string", "maxLength": 255},
    "disk_bus": {"type": "string", "maxLength": 255},
    "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
    "tag": {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"},
    "volume_type": {"type": ["string", "null"], "maxLength": 255},
}}
SERVER_CREATE = {
    "type": "object",
    "required": ["server"],
    "additionalProperties": False,
    "properties": {
        "server": {
            "type": "object",
            "required": ["name", "flavorRef"],
            "additionalProperties": False,
            "properties": {
                "name": NAME,
                "imageRef": {"type": "string", "maxLength": 255},
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "key_name": {"type": "string", "maxLength": 255},
                "user_data": {"type": ["string", "null"], "maxLength": 65535 * 4 // 3 + 4},
                "metadata": META,
                "networks": {"oneOf": [
                    {"type": "string", "enum": ["auto", "none"]},
                    {"type": "array", "items": NETWORK},
                ]},
                "availability_zone": {"type": "string", "maxLength": 255},
                "config_drive": BOOLEAN,
                "security_groups": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "properties": {"name": {"type": "string"}}}},
                "min_count": COUNT,
                "max_count": COUNT,
                "return_reservation_id": BOOLEAN,
                "description": {"type": ["string", "null"], "maxLength": 255},
                "tags": {"type": "array", "items": TAG, "maxItems": 50},
                "adminPass": {"type": "string"},
                "hostname": {"type": "string", "maxLength": 255},
                "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
                "block_device_mapping": {"type": "array", "items": BDM_LEGACY},
                "block_device_mapping_v2": {"type": "array", "items": BDM_V2},
                # Known to Nova, accepted and not used by cloudbox (no files or certificates at
                # boot; placement is the scheduler's).
                "accessIPv4": {"type": "string"},
                "accessIPv6": {"type": "string"},
                "personality": {"type": "array"},
                "trusted_image_certificates": {"type": ["array", "null"]},
                "host": {"type": "string", "maxLength": 255},
                "hypervisor_hostname": {"type": "string", "maxLength": 255},
            },
        },
        "os:scheduler_hints": SCHEDULER_HINTS,
        "OS-SCH-HNT:scheduler_hints": SCHEDULER_HINTS,
    },
}
SERVER_UPDATE = {
    "type": "object", "required": ["server"], "additionalProperties": False,
    "properties": {"server": {"type": "object", "additionalProperties": False, "properties": {
        "name": NAME, "description": {"type": ["string", "null"], "maxLength": 255},
        "hostname": {"type": "string", "maxLength": 255}, "accessIPv4": {"type": "string"},
        "accessIPv6": {"type": "string"}, "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
    }}},
}
SERVER_ACTION = {"type": "object", "minProperties": 1, "maxProperties": 1}
REBUILD = {
    "type": "object", "required": ["imageRef"],
    "properties": {
        "imageRef": {"type": "string"}, "name": NAME, "metadata": META,
        "description": {"type": ["string", "null"], "maxLength": 255},
        "user_data": {"type": ["string", "null"]}, "key_name": {"type": ["string", "null"], "maxLength": 255},
        "adminPass": {"type": "string"}, "preserve_ephemeral": {"type": "boolean"},
        "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
    },
}
METADATA = {"type": "object", "required": ["metadata"], "properties": {"metadata": META}}
METADATA_ITEM = {"type": "object", "required": ["meta"],
                 "properties": {"meta": {"allOf": [META, {"minProperties": 1, "maxProperties": 1}]}}}
TAGS = {"type": "object", "required": ["tags"], "properties": {"tags": {"type": "array", "items": TAG, "maxItems": 50}}}

FLAVOR_CREATE = {
    "type": "object", "required": ["flavor"], "additionalProperties": False,
    "properties": {"flavor": {
        "type": "object", "required": ["name", "ram", "vcpus", "disk"], "additionalProperties": False,
        "properties": {
            "name": NAME,
            "id": {"type": ["string", "integer", "null"], "maxLength": 255, "pattern": r"^[\w.\- ]*$"},
            "ram": {"type": ["integer", "string"], "pattern": "^[0-9]{1,10}$", "minimum": 1, "maximum": 2**31 - 1},
            "vcpus": {"type": ["integer", "string"], "pattern": "^[0-9]{1,10}$", "minimum": 1, "maximum": 2**31 - 1},
            "disk": {"type": ["integer", "string"], "pattern": "^[0-9]{1,10}$", "minimum": 0, "maximum": 2**31 - 1},
            "OS-FLV-EXT-DATA:ephemeral": {"type": ["integer", "string"], "minimum": 0},
            "swap": {"type": ["integer", "string"], "minimum": 0},
            # A positive float (Nova's rule); NaN passes a schema's bounds, the handler refuses it.
            "rxtx_factor": {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$",
                            "exclusiveMinimum": 0, "maximum": SQL_FLOAT_MAX},
            "os-flavor-access:is_public": BOOLEAN,
            "description": {"type": ["string", "null"], "maxLength": 65535},
        },
    }},
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
    "type": "object", "required": ["keypair"], "additionalProperties": False,
    "properties": {"keypair": {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[a-zA-Z0-9 _.@-]+$"},
        "public_key": {"type": "string", "maxLength": 16384},
        "type": {"enum": ["ssh", "x509"]}, "user_id": {"type": "string"},
    }}},
}
QUOTA_UPDATE = {"type": "object", "required": ["quota_set"], "properties": {"quota_set": {
    "type": "object", "properties": {**{k: {"type": ["integer", "string"]} for k in (
        "instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups", "server_group_members")},
        "force": {"type": ["boolean", "string"]}}, "additionalProperties": {"type": ["integer", "string"]}}}}
GROUP_POLICIES = ["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]
SERVER_GROUP_CREATE = {
    "type": "object", "required": ["server_group"], "additionalProperties": False,
    "properties": {"server_group": {
        "type": "object", "required": ["name"], "additionalProperties": False, "properties": {
            "name": NAME, "policy": {"enum": GROUP_POLICIES},
            "policies": {"type": "array", "items": {"enum": GROUP_POLICIES}, "minItems": 1, "maxItems": 1},
            "rules": {"type": "object"},
        }}},
}


@dataclass(frozen=True)
class ServerRequest:
    """A create-server request once parsed: what the service checks and records."""

    name: str
    flavor_ref: str
    image_ref: str
    networks: str | list[dict[str, Any]]  # "auto", "none" or Nova's list of {uuid, port, fixed_ip}
    security_groups: tuple[str, ...] = ("default",)
    key_name: str | None = None
    user_data: str | None = None  # base64, checked
    availability_zone: str | None = None  # without Nova's ":host" suffix
    metadata: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    group_id: str | None = None  # os:scheduler_hints group
    min_count: int = 1
    max_count: int = 1
    config_drive: bool = False
    hostname: str | None = None
    description: str | None = None
    access_ipv4: str = ""  # accessIPv4/accessIPv6: addresses the user gives, shown as given
    access_ipv6: str = ""
    # Its disks (boot_volumes.parse): the image root, or a root volume, and more volumes.
    boot: BootRequest | None = None


@dataclass(frozen=True)
class ServerQuery:
    """Filters of a server listing (every field optional; project None means every project)."""

    project_id: str | None = None
    marker: str | None = None
    name: str | None = None  # Nova's regular expressions, matched as core.regex_matcher does
    ip: str | None = None  # ...on a server's IPv4 addresses (fixed and floating)
    ip6: str | None = None  # ...on its IPv6 addresses
    status: str | None = None
    image_id: str | None = None
    flavor_id: str | None = None
    host: str | None = None
    availability_zone: str | None = None
    changes_since: str | None = None
    tags: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    not_tags: tuple[str, ...] = ()

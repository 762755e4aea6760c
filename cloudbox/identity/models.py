"""Request shapes of the identity API, as JSON schemas (validation and OpenAPI both use them)."""

from __future__ import annotations

from typing import Any

NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^\S(.*\S)?$"}
NAME64 = {**NAME, "maxLength": 64}  # Keystone's limit on the names of domains and projects
ID = {"type": "string", "minLength": 1, "maxLength": 64}
OPT_ID = {"type": ["string", "null"], "maxLength": 64}
TEXT = {"type": ["string", "null"], "maxLength": 4096}
BOOL = {"type": "boolean"}
REF = {
    "type": "object",
    "properties": {"id": ID, "name": NAME},
    "anyOf": [{"required": ["id"]}, {"required": ["name"]}],
}
SCOPED_REF = {
    "type": "object",
    "properties": {"id": ID, "name": NAME, "domain": REF},
    "anyOf": [{"required": ["id"]}, {"required": ["name", "domain"]}],
}


def wrap(key: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A body of the form {key: {...}}, Keystone's envelope."""
    inner: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        inner["required"] = list(required)
    else:
        inner["minProperties"] = 1
    return {"type": "object", "properties": {key: inner}, "required": [key]}


AUTH = {
    "type": "object",
    "required": ["auth"],
    "properties": {
        "auth": {
            "type": "object",
            "required": ["identity"],
            "properties": {
                "identity": {
                    "type": "object",
                    "required": ["methods"],
                    "properties": {
                        "methods": {
                            "type": "array", "minItems": 1,
                            "items": {"enum": ["password", "token", "application_credential"]},
                        },
                        "password": {
                            "type": "object", "required": ["user"],
                            "properties": {
                                "user": {
                                    "type": "object", "required": ["password"],
                                    "properties": {
                                        "id": ID, "name": NAME, "domain": REF,
                                        "password": {"type": "string", "maxLength": 4096},
                                    },
                                    "anyOf": [{"required": ["id"]}, {"required": ["name", "domain"]}],
                                }
                            },
                        },
                        "token": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                        "application_credential": {
                            "type": "object", "required": ["secret"],
                            "properties": {
                                "id": ID, "name": NAME, "secret": {"type": "string", "maxLength": 4096},
                                "user": {
                                    "type": "object",
                                    "properties": {"id": ID, "name": NAME, "domain": REF},
                                },
                            },
                            "anyOf": [{"required": ["id"]}, {"required": ["name", "user"]}],
                        },
                    },
                },
                "scope": {
                    "oneOf": [
                        {"type": "string", "enum": ["unscoped"]},
                        {
                            "type": "object",
                            "properties": {
                                "project": SCOPED_REF,
                                "domain": REF,
                                "system": {"type": "object", "properties": {"all": BOOL}},
                                "OS-TRUST:trust": {"type": "object"},
                            },
                            "maxProperties": 1,
                        },
                    ]
                },
            },
        }
    },
}

DOMAIN_CREATE = wrap("domain", {"name": NAME64, "description": TEXT, "enabled": BOOL, "id": ID}, ("name",))
DOMAIN_UPDATE = wrap("domain", {"name": NAME64, "description": TEXT, "enabled": BOOL})

# Keystone's tags: no "/" (a tag is a path segment) and no "," (lists are filtered comma-separated).
TAG = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[^/,]+$"}
TAGS = {"type": "array", "maxItems": 80, "items": TAG}
PROJECT_CREATE = wrap(
    "project",
    {"name": NAME64, "description": TEXT, "enabled": BOOL, "domain_id": OPT_ID, "parent_id": OPT_ID,
     "is_domain": BOOL, "tags": TAGS},
    ("name",),
)
PROJECT_UPDATE = wrap("project", {"name": NAME64, "description": TEXT, "enabled": BOOL, "tags": TAGS})
PROJECT_TAGS = {"type": "object", "properties": {"tags": TAGS}, "required": ["tags"]}

PASSWORD = {"type": ["string", "null"], "maxLength": 4096}
USER_CREATE = wrap(
    "user",
    {"name": NAME, "password": PASSWORD, "enabled": BOOL, "domain_id": OPT_ID,
     "default_project_id": OPT_ID, "description": TEXT, "email": TEXT},
    ("name",),
)
USER_UPDATE = wrap(
    "user",
    {"name": NAME, "password": PASSWORD, "enabled": BOOL, "default_project_id": OPT_ID,
     "description": TEXT, "email": TEXT},
)
USER_PASSWORD = wrap(
    "user",
    {"password": {"type": "string", "minLength": 1, "maxLength": 4096},
     "original_password": {"type": "string", "maxLength": 4096}},
    ("password", "original_password"),
)

GROUP_CREATE = wrap("group", {"name": NAME, "description": TEXT, "domain_id": OPT_ID}, ("name",))
GROUP_UPDATE = wrap("group", {"name": NAME, "description": TEXT})

ROLE_CREATE = wrap("role", {"name": NAME, "description": TEXT, "domain_id": OPT_ID}, ("name",))
ROLE_UPDATE = wrap("role", {"name": NAME, "description": TEXT})

REGION_CREATE = wrap("region", {"id": ID, "description": TEXT, "parent_region_id": OPT_ID})
REGION_CREATE["properties"]["region"].pop("minProperties")
REGION_UPDATE = wrap("region", {"description": TEXT, "parent_region_id": OPT_ID})
REGION_PUT = {"type": "object", "properties": {"region": REGION_CREATE["properties"]["region"]}, "required": ["region"]}

SERVICE_CREATE = wrap(
    "service", {"type": NAME, "name": {"type": "string", "maxLength": 255}, "description": TEXT, "enabled": BOOL},
    ("type",),
)
SERVICE_UPDATE = wrap(
    "service", {"type": NAME, "name": {"type": "string", "maxLength": 255}, "description": TEXT, "enabled": BOOL}
)

INTERFACE = {"enum": ["public", "internal", "admin"]}
URL = {"type": "string", "minLength": 1, "maxLength": 2048, "pattern": r"^https?://"}
ENDPOINT_CREATE = wrap(
    "endpoint",
    {"service_id": ID, "interface": INTERFACE, "url": URL, "region_id": OPT_ID, "region": OPT_ID,
     "enabled": BOOL},
    ("service_id", "interface", "url"),
)
ENDPOINT_UPDATE = wrap(
    "endpoint",
    {"service_id": ID, "interface": INTERFACE, "url": URL, "region_id": OPT_ID, "region": OPT_ID,
     "enabled": BOOL},
)

APP_CREDENTIAL_CREATE = wrap(
    "application_credential",
    {
        "name": NAME, "description": TEXT, "secret": {"type": ["string", "null"], "minLength": 1, "maxLength": 4096},
        "expires_at": {"type": ["string", "null"], "maxLength": 64}, "unrestricted": BOOL,
        "roles": {"type": "array", "items": REF},
        "access_rules": {"type": "array", "maxItems": 0},
    },
    ("name",),
)

BLOB = {"type": "string", "minLength": 1, "maxLength": 65536}
CREDENTIAL_CREATE = wrap(
    "credential",
    {"user_id": ID, "project_id": OPT_ID, "type": {"type": "string", "minLength": 1, "maxLength": 255},
     "blob": BLOB},
    ("user_id", "type", "blob"),
)
CREDENTIAL_UPDATE = wrap(
    "credential",
    {"user_id": ID, "project_id": OPT_ID, "type": {"type": "string", "minLength": 1, "maxLength": 255},
     "blob": BLOB},
)
EC2_CREATE = {"type": "object", "properties": {"tenant_id": ID}, "required": ["tenant_id"]}

POLICY_TYPE = {"type": "string", "minLength": 1, "maxLength": 255}
POLICY_CREATE = wrap("policy", {"type": POLICY_TYPE, "blob": BLOB}, ("type", "blob"))
POLICY_UPDATE = wrap("policy", {"type": POLICY_TYPE, "blob": BLOB})

ENDPOINT_FILTERS = {
    "type": "object",
    "properties": {"service_id": ID, "region_id": ID, "interface": INTERFACE},
    "additionalProperties": False,
}
ENDPOINT_GROUP_CREATE = wrap(
    "endpoint_group", {"name": NAME, "description": TEXT, "filters": ENDPOINT_FILTERS}, ("name", "filters"))
ENDPOINT_GROUP_UPDATE = wrap("endpoint_group", {"name": NAME, "description": TEXT, "filters": ENDPOINT_FILTERS})

CONSUMER_CREATE = {"type": "object", "properties": {"consumer": {"type": "object", "properties": {"description": TEXT}}},
                   "required": ["consumer"]}
CONSUMER_UPDATE = wrap("consumer", {"description": TEXT, "secret": {"type": "string"}})

# A domain's configuration: {"config": {...}}, checked further against the options a domain may set.
DOMAIN_CONFIG = {"type": "object", "properties": {"config": {"type": "object", "minProperties": 1}},
                 "required": ["config"]}

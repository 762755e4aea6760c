"""Pure logic of Keystone's other resources: users' and projects' extra attributes, credentials
(EC2 ones among them), policies, endpoint groups, OAuth1 consumers and domain-specific
configuration, and their Keystone JSON shapes.  No database, clock or randomness here."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from cloudbox.errors import BadRequest, Forbidden, NotFound
from cloudbox.identity.core import AuthContext, require

# --- extra attributes -------------------------------------------------------------------------
# Keystone keeps any attribute it does not know on users and projects and hands it back (v2-era
# clients set "project_id" on users, for one).  Bounded, so a body cannot grow a row without end;
# names of our own columns are never taken as extra attributes.
MAX_EXTRA_BYTES = 8192
MAX_EXTRA_KEYS = 32
_COLUMNS = frozenset({"extra", "created_at", "password_hash", "password_changed_at"})
USER_FIELDS = _COLUMNS | {"id", "name", "password", "enabled", "domain_id", "default_project_id", "description",
                          "email", "options", "links", "password_expires_at", "federated"}
PROJECT_FIELDS = _COLUMNS | {"id", "name", "description", "enabled", "domain_id", "parent_id", "is_domain",
                             "tags", "options", "links"}


def extra_attributes(body: dict[str, Any], known: Iterable[str], current: dict[str, Any] | None = None
                     ) -> dict[str, Any] | None:
    """The attributes of ``body`` not in ``known``, merged over ``current``; None if there are none
    and nothing is kept already (so an update leaves the column alone)."""
    known = frozenset(known)
    given = {k: v for k, v in body.items() if k not in known}
    if not given:
        return None
    merged = {**(current or {}), **given}
    if len(merged) > MAX_EXTRA_KEYS:
        raise BadRequest(f"At most {MAX_EXTRA_KEYS} extra attributes are kept; this would make {len(merged)}.")
    if any(len(k) > 255 for k in merged):
        raise BadRequest("An attribute's name is at most 255 characters.")
    if len(json.dumps(merged, sort_keys=True)) > MAX_EXTRA_BYTES:
        raise BadRequest(f"Extra attributes take at most {MAX_EXTRA_BYTES} bytes as JSON.")
    return merged


def check_tag(tag: str) -> None:
    """A project tag as Keystone takes one: 1 to 255 characters, no "/" and no ","."""
    if not 0 < len(tag) <= 255 or "/" in tag or "," in tag:
        raise BadRequest("A tag is 1 to 255 characters, without \"/\" or \",\".")


# --- credentials -------------------------------------------------------------------------------
EC2 = "ec2"


def ec2_credential_id(access: str) -> str:
    """As Keystone: an EC2 credential's id is the SHA-256 of its access key, so the access key
    alone finds it (an S3 request signed with it names nothing else)."""
    return hashlib.sha256(access.encode()).hexdigest()


def ec2_blob(access: str, secret: str) -> str:
    return json.dumps({"access": access, "secret": secret, "trust_id": None, "app_cred_id": None,
                       "access_token_id": None}, sort_keys=True)


def parse_ec2_blob(blob: str) -> dict[str, Any]:
    """The access and secret of an EC2 credential's blob: a JSON object holding "access"."""
    try:
        data = json.loads(blob)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("access"), str) or not data["access"]:
        raise BadRequest("The blob of an ec2 credential must be a JSON object with an \"access\" key.")
    return data


def check_ec2_blob_update(current: str, new: str) -> None:
    """As Keystone: an ec2 credential's new blob may change its keys, never what it is bound to
    (a trust, an application credential, an OAuth access token)."""
    old, fresh = parse_ec2_blob(current), parse_ec2_blob(new)
    for key in ("trust_id", "app_cred_id", "access_token_id"):
        if old.get(key) != fresh.get(key):
            raise BadRequest(f"An ec2 credential's {key} cannot change; make a new credential instead.")


def may_see_credential(ctx: AuthContext, row: dict[str, Any], write: bool) -> None:
    """A user's own credentials are theirs; cloud admins (and readers, to read) anyone's."""
    if row["user_id"] == ctx.user_id:
        return
    require(ctx.is_cloud_admin if write else ctx.is_cloud_reader, "identity:credential")


def render_credential(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {"id": row["id"], "user_id": row["user_id"], "project_id": row["project_id"], "type": row["type"],
            "blob": row["blob"], "links": {"self": f"{base}/credentials/{row['id']}"}}


def render_ec2(row: dict[str, Any], base: str) -> dict[str, Any]:
    blob = json.loads(row["blob"])
    return {"user_id": row["user_id"], "tenant_id": row["project_id"], "access": blob["access"],
            "secret": blob.get("secret"), "trust_id": blob.get("trust_id"),
            "links": {"self": f"{base}/users/{row['user_id']}/credentials/OS-EC2/{blob['access']}"}}


# --- policies, endpoint groups, consumers ----------------------------------------------------------
def render_policy(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {"id": row["id"], "type": row["type"], "blob": row["blob"], "links": {"self": f"{base}/policies/{row['id']}"}}


ENDPOINT_FILTERS = ("service_id", "region_id", "interface")


def check_endpoint_filters(filters: dict[str, Any]) -> dict[str, str]:
    unknown = sorted(set(filters) - set(ENDPOINT_FILTERS))
    if unknown:
        raise BadRequest(f"An endpoint group filters by {', '.join(ENDPOINT_FILTERS)} only, not {', '.join(unknown)}.")
    if filters.get("interface") not in (None, "public", "internal", "admin"):
        raise BadRequest("interface must be public, internal or admin.")
    return dict(filters)


def render_endpoint_group(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "description": row["description"], "filters": row["filters"],
            "links": {"self": f"{base}/OS-EP-FILTER/endpoint_groups/{row['id']}"}}


def render_consumer(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {"id": row["id"], "description": row["description"],
            "links": {"self": f"{base}/OS-OAUTH1/consumers/{row['id']}"}}


# --- domain-specific configuration --------------------------------------------------------------
# The groups and options Keystone lets a domain set, with the values a domain without its own
# has.  cloudbox keeps every domain's users in its own database: a configuration is stored,
# validated and served, and changes nothing about where a domain's users come from.
DEFAULT_CONFIG: dict[str, dict[str, Any]] = {
    "identity": {"driver": "sql", "list_limit": None},
    "ldap": {
        "url": "ldap://localhost", "user": None, "suffix": "cn=example,cn=com", "query_scope": "one",
        "page_size": 0, "alias_dereferencing": "default", "debug_level": None, "chase_referrals": None,
        "user_tree_dn": None, "user_filter": None, "user_objectclass": "inetOrgPerson",
        "user_id_attribute": "cn", "user_name_attribute": "sn", "user_mail_attribute": "mail",
        "user_description_attribute": "description", "user_pass_attribute": "userPassword",
        "user_enabled_attribute": "enabled", "user_enabled_invert": False, "user_enabled_mask": 0,
        "user_enabled_default": "True", "user_attribute_ignore": ["default_project_id"],
        "user_default_project_id_attribute": None, "user_enabled_emulation": False,
        "user_enabled_emulation_dn": None, "user_enabled_emulation_use_group_config": False,
        "user_additional_attribute_mapping": [], "group_tree_dn": None, "group_filter": None,
        "group_objectclass": "groupOfNames", "group_id_attribute": "cn", "group_name_attribute": "ou",
        "group_members_are_ids": False, "group_member_attribute": "member",
        "group_desc_attribute": "description", "group_attribute_ignore": [],
        "group_additional_attribute_mapping": [], "tls_cacertfile": None, "tls_cacertdir": None,
        "use_tls": False, "tls_req_cert": "demand", "use_pool": True, "pool_size": 10, "pool_retry_max": 3,
        "pool_retry_delay": 0.1, "pool_connection_timeout": -1, "pool_connection_lifetime": 600,
        "use_auth_pool": True, "auth_pool_size": 100, "auth_pool_connection_lifetime": 60,
    },
}
# Stored, never shown.
SENSITIVE_OPTIONS: dict[str, frozenset[str]] = {"identity": frozenset(), "ldap": frozenset({"password"})}


def invalid_config(reason: str) -> Forbidden:
    return Forbidden(f"Invalid domain specific configuration: {reason}")


def check_group(group: str, option: str | None = None) -> None:
    if group not in DEFAULT_CONFIG:
        raise invalid_config(f"group {group!r} is not one a domain may configure ({', '.join(DEFAULT_CONFIG)}).")
    if option is not None and option not in DEFAULT_CONFIG[group] and option not in SENSITIVE_OPTIONS[group]:
        raise invalid_config(f"option {option!r} is not one of group {group!r} that a domain may configure.")


def check_config(config: Any) -> dict[str, dict[str, Any]]:
    """A configuration as a request gives it: groups of options a domain may set, each a JSON
    scalar or a list of scalars."""
    if not isinstance(config, dict) or not config:
        raise BadRequest("config must be an object of groups, each an object of options.")
    for group, options in config.items():
        if not isinstance(options, dict) or not options:
            raise BadRequest(f"Group {group!r} of config must be an object of options.")
        for option, value in options.items():
            check_group(group, option)
            items = value if isinstance(value, list) else [value]
            if not all(v is None or isinstance(v, (str, int, float, bool)) for v in items):
                raise BadRequest(f"Option {group}.{option} must be a string, number, boolean, null or a list of them.")
    return config


def merge_config(current: dict[str, dict[str, Any]], changes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {group: dict(options) for group, options in current.items()}
    for group, options in changes.items():
        out.setdefault(group, {}).update(options)
    return out


def without(config: dict[str, dict[str, Any]], group: str, option: str | None) -> dict[str, dict[str, Any]]:
    """The configuration without one group, or one option of it (NotFound if it has none)."""
    if group not in config or (option is not None and option not in config[group]):
        what = f"option {option!r} of group {group!r}" if option else f"group {group!r}"
        raise NotFound(f"Could not find the domain's configuration {what}.")
    out = {g: dict(o) for g, o in config.items()}
    if option is None:
        del out[group]
    else:
        del out[group][option]
        if not out[group]:
            del out[group]
    return out


def visible_config(config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A configuration as it is shown: sensitive options (an LDAP password) left out."""
    out: dict[str, dict[str, Any]] = {}
    for group, options in config.items():
        shown = {k: v for k, v in options.items() if k not in SENSITIVE_OPTIONS.get(group, frozenset())}
        if shown:
            out[group] = shown
    return out


def config_part(config: dict[str, dict[str, Any]], group: str | None, option: str | None) -> dict[str, Any]:
    """What GET shows of a configuration: the whole, one group ({group: {...}}) or one option
    ({option: value}); NotFound when it holds no such part."""
    shown = visible_config(config)
    if group is None:
        return shown
    check_group(group, option)
    if group not in shown or (option is not None and option not in shown[group]):
        what = f"option {option!r} of group {group!r}" if option else f"group {group!r}"
        raise NotFound(f"Could not find the domain's configuration {what}.")
    if option is None:
        return {group: shown[group]}
    return {option: shown[group][option]}

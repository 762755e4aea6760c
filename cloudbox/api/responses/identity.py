"""Keystone v3 response bodies, by route (paths under /identity/v3)."""

from __future__ import annotations

from cloudbox.api.responses.shapes import (
    ANY_OBJ, BOOL, NSTR, STR, STRS, Doc, Schema, array, enum, header, obj, wrap,
)

P = "/identity/v3"

LINK_SELF = obj({"self": STR})
LIST_LINKS = obj({"self": STR, "previous": NSTR, "next": NSTR})
REF = obj({"id": STR, "name": STR})
OPTIONS = ANY_OBJ

DOMAIN = obj({"id": STR, "name": STR, "description": STR, "enabled": BOOL, "tags": STRS, "options": OPTIONS,
              "links": LINK_SELF})
# A project that is a domain (is_domain) has no domain and no parent.
PROJECT = obj({"id": STR, "name": STR, "domain_id": NSTR, "description": STR, "enabled": BOOL,
               "parent_id": NSTR, "is_domain": BOOL, "tags": STRS, "options": OPTIONS, "links": LINK_SELF})
USER = obj({"id": STR, "name": STR, "domain_id": STR, "enabled": BOOL, "password_expires_at": NSTR,
            "options": OPTIONS, "links": LINK_SELF},
           {"default_project_id": STR, "description": STR, "email": STR})
GROUP = obj({"id": STR, "name": STR, "domain_id": STR, "description": STR, "links": LINK_SELF})
ROLE = obj({"id": STR, "name": STR, "domain_id": NSTR, "description": STR, "options": OPTIONS,
            "links": LINK_SELF})
REGION = obj({"id": STR, "description": STR, "parent_region_id": NSTR, "links": LINK_SELF})
SERVICE = obj({"id": STR, "type": STR, "name": STR, "description": STR, "enabled": BOOL, "links": LINK_SELF})
INTERFACE = enum("public", "internal", "admin")
ENDPOINT = obj({"id": STR, "service_id": STR, "interface": INTERFACE, "region_id": NSTR, "region": NSTR,
                "url": STR, "enabled": BOOL, "links": LINK_SELF})
APP_CREDENTIAL = obj({"id": STR, "name": STR, "description": STR, "user_id": STR, "project_id": STR,
                      "expires_at": NSTR, "unrestricted": BOOL, "roles": array(REF), "access_rules": array(ANY_OBJ),
                      "links": LINK_SELF})
CATALOG = array(obj({"id": STR, "type": STR, "name": STR, "endpoints": array(obj({
    "id": STR, "interface": INTERFACE, "region": NSTR, "region_id": NSTR, "url": STR}))}))
TOKEN = wrap("token", obj(
    {"methods": STRS, "user": obj({"id": STR, "name": STR, "domain": REF, "password_expires_at": NSTR}),
     "audit_ids": STRS, "issued_at": STR, "expires_at": STR},
    {"roles": array(REF), "project": obj({"id": STR, "name": STR, "domain": REF}), "is_domain": BOOL,
     "is_admin_project": BOOL, "domain": REF, "system": obj({"all": BOOL}),
     "application_credential": obj({"id": STR, "name": STR}), "catalog": CATALOG},
))
VERSION = obj({"id": STR, "status": STR, "updated": STR, "links": array(obj({"rel": STR, "href": STR})),
               "media-types": array(obj({"base": STR, "type": STR}))})
ROLE_REF = obj({"id": STR, "name": STR, "links": LINK_SELF})
NAMED_REF = obj({"id": STR}, {"name": STR, "domain": obj({"id": STR, "name": NSTR})})
ASSIGNMENT = obj(
    {"role": NAMED_REF, "scope": obj({}, {"project": NAMED_REF, "domain": NAMED_REF, "system": obj({"all": BOOL}),
                                          "OS-INHERIT:inherited_to": enum("projects")}),
     "links": obj({"assignment": STR})},
    {"user": NAMED_REF, "group": NAMED_REF},
)
SUBJECT_TOKEN = header("X-Subject-Token", STR, required=True, description="The token to validate, check or revoke")

PLURAL = {
    "domain": ("domains", DOMAIN), "project": ("projects", PROJECT), "user": ("users", USER),
    "group": ("groups", GROUP), "role": ("roles", ROLE), "region": ("regions", REGION),
    "service": ("services", SERVICE), "endpoint": ("endpoints", ENDPOINT),
}


def listing(key: str, item: Schema) -> Schema:
    return obj({key: array(item), "links": LIST_LINKS})


def _resources() -> dict[tuple[str, str], Doc]:
    docs: dict[tuple[str, str], Doc] = {}
    for singular, (plural, item) in PLURAL.items():
        one = wrap(singular, item)
        docs[("GET", f"{P}/{plural}")] = Doc({200: listing(plural, item)})
        docs[("POST", f"{P}/{plural}")] = Doc({201: one})
        docs[("GET", f"{P}/{plural}/{{{singular}_id}}")] = Doc({200: one})
        docs[("PATCH", f"{P}/{plural}/{{{singular}_id}}")] = Doc({200: one})
        docs[("DELETE", f"{P}/{plural}/{{{singular}_id}}")] = Doc({204: None})
    return docs


def _grants() -> dict[tuple[str, str], Doc]:
    """Role grants: /{projects,domains}/{id}/{users,groups}/{id}/roles, /system/..., OS-INHERIT/..."""
    docs: dict[tuple[str, str], Doc] = {}
    roles = Doc({200: listing("roles", ROLE)})
    bases = [f"{P}/{target}s/{{{target}_id}}/{actor}s/{{{actor}_id}}/roles"
             for target in ("project", "domain") for actor in ("user", "group")]
    bases += [f"{P}/system/{actor}s/{{{actor}_id}}/roles" for actor in ("user", "group")]
    for base in bases:
        docs[("GET", base)] = roles
        for method in ("PUT", "HEAD", "GET", "DELETE"):
            docs[(method, base + "/{role_id}")] = Doc({204: None})
    for target in ("domain", "project"):
        for actor in ("user", "group"):
            base = f"{P}/OS-INHERIT/{target}s/{{{target}_id}}/{actor}s/{{{actor}_id}}/roles"
            if target == "domain":
                docs[("GET", base + "/inherited_to_projects")] = roles
            for method in ("PUT", "HEAD", "GET", "DELETE"):
                docs[(method, base + "/{role_id}/inherited_to_projects")] = Doc({204: None})
    return docs


CREDENTIAL = obj({"id": STR, "user_id": STR, "project_id": NSTR, "type": STR, "blob": STR, "links": LINK_SELF})
EC2 = obj({"user_id": STR, "tenant_id": STR, "access": STR, "secret": STR, "trust_id": NSTR, "links": LINK_SELF})
POLICY = obj({"id": STR, "type": STR, "blob": STR, "links": LINK_SELF})
ENDPOINT_GROUP = obj({"id": STR, "name": STR, "description": STR, "filters": ANY_OBJ, "links": LINK_SELF})
CONSUMER = obj({"id": STR, "description": STR, "links": LINK_SELF})
CONFIG = wrap("config", ANY_OBJ)


def _crud(path: str, key: str, item: Schema, plural: str, id_name: str) -> dict[tuple[str, str], Doc]:
    one = wrap(key, item)
    return {
        ("GET", f"{P}{path}"): Doc({200: listing(plural, item)}),
        ("POST", f"{P}{path}"): Doc({201: one}),
        ("GET", f"{P}{path}/{{{id_name}}}"): Doc({200: one}),
        ("PATCH", f"{P}{path}/{{{id_name}}}"): Doc({200: one}),
        ("DELETE", f"{P}{path}/{{{id_name}}}"): Doc({204: None}),
    }


def _extensions() -> dict[tuple[str, str], Doc]:
    """Credentials, EC2 credentials, policies, endpoint groups, consumers, domain configuration,
    project tags and regions by id."""
    docs = {
        **_crud("/credentials", "credential", CREDENTIAL, "credentials", "credential_id"),
        **_crud("/policies", "policy", POLICY, "policies", "policy_id"),
        **_crud("/OS-EP-FILTER/endpoint_groups", "endpoint_group", ENDPOINT_GROUP, "endpoint_groups",
                "endpoint_group_id"),
        **_crud("/OS-OAUTH1/consumers", "consumer", CONSUMER, "consumers", "consumer_id"),
    }
    docs[("POST", f"{P}/OS-OAUTH1/consumers")] = Doc({201: wrap("consumer", {"allOf": [CONSUMER, obj({"secret": STR})]})})
    docs[("HEAD", f"{P}/OS-EP-FILTER/endpoint_groups/{{endpoint_group_id}}")] = Doc({200: None})
    docs[("GET", f"{P}/OS-EP-FILTER/endpoint_groups/{{endpoint_group_id}}/endpoints")] = Doc(
        {200: listing("endpoints", ENDPOINT)})
    ec2 = f"{P}/users/{{user_id}}/credentials/OS-EC2"
    docs[("POST", ec2)] = Doc({201: wrap("credential", EC2)})
    docs[("GET", ec2)] = Doc({200: listing("credentials", EC2)})
    docs[("GET", ec2 + "/{access}")] = Doc({200: wrap("credential", EC2)})
    docs[("DELETE", ec2 + "/{access}")] = Doc({204: None})
    for tail in ("/default", "/{group}/default", "/{group}/{option}/default"):
        docs[("GET", f"{P}/domains/config{tail}")] = Doc({200: CONFIG})
    for tail in ("", "/{group}", "/{group}/{option}"):
        config = f"{P}/domains/{{domain_id}}/config{tail}"
        docs[("GET", config)] = Doc({200: CONFIG})
        docs[("PATCH", config)] = Doc({200: CONFIG})
        docs[("DELETE", config)] = Doc({204: None})
    docs[("PUT", f"{P}/domains/{{domain_id}}/config")] = Doc({200: CONFIG, 201: CONFIG})
    tags = f"{P}/projects/{{project_id}}/tags"
    docs[("GET", tags)] = Doc({200: obj({"tags": STRS})})
    docs[("PUT", tags)] = Doc({200: obj({"tags": STRS})})
    docs[("DELETE", tags)] = Doc({204: None})
    for method, status in (("GET", 204), ("HEAD", 204), ("PUT", 201), ("DELETE", 204)):
        docs[(method, tags + "/{tag}")] = Doc({status: None})
    docs[("PUT", f"{P}/regions/{{region_id}}")] = Doc({201: wrap("region", REGION)})
    docs[("GET", f"{P}/roles/{{prior_role_id}}/implies/{{implied_role_id}}")] = Doc({200: wrap("role_inference", obj(
        {"prior_role": ROLE_REF, "implies": ROLE_REF}))})
    return docs


def docs() -> dict[tuple[str, str], Doc]:
    out = {
        ("GET", P): Doc({200: wrap("version", VERSION)}, anonymous=True),
        ("GET", "/identity"): Doc({300: wrap("versions", obj({"values": array(VERSION)}))}, anonymous=True),
        # Public, but wrong credentials answer 401 and a scope the user may not have 401 too.
        ("POST", f"{P}/auth/tokens"): Doc({201: TOKEN}),
        # A request signed with an EC2 credential's secret: a wrong signature or key answers 401.
        ("POST", f"{P}/ec2tokens"): Doc({200: TOKEN}),
        ("POST", f"{P}/s3tokens"): Doc({200: TOKEN}),
        # A subject token that is invalid, expired or revoked answers 404.
        ("GET", f"{P}/auth/tokens"): Doc({200: TOKEN}, errors=(404,), headers=(SUBJECT_TOKEN,)),
        ("HEAD", f"{P}/auth/tokens"): Doc({200: None}, errors=(404,), headers=(SUBJECT_TOKEN,)),
        ("DELETE", f"{P}/auth/tokens"): Doc({204: None}, errors=(404,), headers=(SUBJECT_TOKEN,)),
        ("GET", f"{P}/auth/catalog"): Doc({200: obj({"catalog": CATALOG, "links": LINK_SELF})}),
        ("GET", f"{P}/auth/projects"): Doc({200: listing("projects", PROJECT)}),
        ("GET", f"{P}/auth/domains"): Doc({200: listing("domains", DOMAIN)}),
        ("GET", f"{P}/auth/system"): Doc({200: obj({"system": array(obj({"all": BOOL})), "links": LINK_SELF})}),
        ("POST", f"{P}/users/{{user_id}}/password"): Doc({204: None}),
        ("GET", f"{P}/users/{{user_id}}/projects"): Doc({200: listing("projects", PROJECT)}),
        ("GET", f"{P}/users/{{user_id}}/groups"): Doc({200: listing("groups", GROUP)}),
        ("GET", f"{P}/groups/{{group_id}}/users"): Doc({200: listing("users", USER)}),
        ("PUT", f"{P}/groups/{{group_id}}/users/{{user_id}}"): Doc({204: None}),
        ("HEAD", f"{P}/groups/{{group_id}}/users/{{user_id}}"): Doc({204: None}),
        ("DELETE", f"{P}/groups/{{group_id}}/users/{{user_id}}"): Doc({204: None}),
        ("GET", f"{P}/role_assignments"): Doc({200: listing("role_assignments", ASSIGNMENT)}),
        ("GET", f"{P}/roles/{{prior_role_id}}/implies"): Doc({200: wrap("role_inference", obj(
            {"prior_role": ROLE_REF, "implies": array(ROLE_REF)}))}),
        ("PUT", f"{P}/roles/{{prior_role_id}}/implies/{{implied_role_id}}"): Doc({201: wrap("role_inference", obj(
            {"prior_role": ROLE_REF, "implies": ROLE_REF}))}),
        ("HEAD", f"{P}/roles/{{prior_role_id}}/implies/{{implied_role_id}}"): Doc({204: None}),
        ("DELETE", f"{P}/roles/{{prior_role_id}}/implies/{{implied_role_id}}"): Doc({204: None}),
        ("GET", f"{P}/role_inferences"): Doc({200: obj({"role_inferences": array(obj(
            {"prior_role": ROLE_REF, "implies": array(ROLE_REF)}))})}),
        ("GET", f"{P}/users/{{user_id}}/application_credentials"): Doc(
            {200: listing("application_credentials", APP_CREDENTIAL)}),
        ("POST", f"{P}/users/{{user_id}}/application_credentials"): Doc({201: wrap("application_credential", {
            "allOf": [APP_CREDENTIAL, obj({"secret": STR})]})}),
        ("GET", f"{P}/users/{{user_id}}/application_credentials/{{app_cred_id}}"): Doc(
            {200: wrap("application_credential", APP_CREDENTIAL)}),
        ("DELETE", f"{P}/users/{{user_id}}/application_credentials/{{app_cred_id}}"): Doc({204: None}),
    }
    out.update(_resources())
    out.update(_grants())
    out.update(_extensions())
    return out


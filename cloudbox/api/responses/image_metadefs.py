"""Glance v2 metadata definitions (/image/v2/metadefs) response bodies, by route."""

from __future__ import annotations

from cloudbox.api.responses.shapes import ANY_OBJ, BOOL, STR, Doc, array, enum, header, obj

P = "/image/v2"
NS = f"{P}/metadefs/namespaces/{{namespace}}"

ASSOCIATION = obj({"name": STR, "created_at": STR, "updated_at": STR}, {"prefix": STR, "properties_target": STR})
TAG = obj({"name": STR, "created_at": STR, "updated_at": STR})
PROPERTY = obj({"name": STR, "title": STR}, {"type": {"type": ["string", "null"]}}, extra={})
OBJECT = obj({"name": STR, "properties": ANY_OBJ, "created_at": STR, "updated_at": STR, "self": STR, "schema": STR},
             {"description": STR, "required": array(STR)})
NAMESPACE = obj(
    {"namespace": STR, "visibility": enum("public", "private"), "protected": BOOL, "created_at": STR,
     "updated_at": STR, "self": STR, "schema": STR},
    {"display_name": STR, "description": STR, "owner": STR, "resource_type_associations": array(ASSOCIATION),
     "properties": ANY_OBJ, "objects": array(ANY_OBJ), "tags": array(obj({"name": STR}))},
)
APPEND = header("X-Openstack-Append", STR, description="true: add the tags to the namespace's instead of "
                                                       "replacing them")


def docs() -> dict[tuple[str, str], Doc]:
    obj_path, prop = f"{NS}/objects/{{object_name}}", f"{NS}/properties/{{property_name}}"
    tag = f"{NS}/tags/{{tag_name}}"
    return {
        ("GET", f"{P}/metadefs/namespaces"): Doc({200: obj({"namespaces": array(NAMESPACE), "first": STR,
                                                            "schema": STR}, {"next": STR})}),
        ("POST", f"{P}/metadefs/namespaces"): Doc({201: NAMESPACE}),
        ("GET", NS): Doc({200: NAMESPACE}),
        ("PUT", NS): Doc({200: NAMESPACE}),
        ("DELETE", NS): Doc({204: None}),
        ("GET", f"{NS}/objects"): Doc({200: obj({"objects": array(OBJECT), "schema": STR})}),
        ("POST", f"{NS}/objects"): Doc({201: OBJECT}),
        ("DELETE", f"{NS}/objects"): Doc({204: None}),
        ("GET", obj_path): Doc({200: OBJECT}),
        ("PUT", obj_path): Doc({200: OBJECT}),
        ("DELETE", obj_path): Doc({204: None}),
        ("GET", f"{NS}/properties"): Doc({200: obj({"properties": ANY_OBJ, "schema": STR})}),
        ("POST", f"{NS}/properties"): Doc({201: PROPERTY}),
        ("DELETE", f"{NS}/properties"): Doc({204: None}),
        ("GET", prop): Doc({200: PROPERTY}),
        ("PUT", prop): Doc({200: PROPERTY}),
        ("DELETE", prop): Doc({204: None}),
        ("GET", f"{NS}/tags"): Doc({200: obj({"tags": array(TAG)})}),
        ("POST", f"{NS}/tags"): Doc({201: obj({"tags": array(obj({"name": STR}))})}, headers=(APPEND,)),
        ("DELETE", f"{NS}/tags"): Doc({204: None}),
        ("POST", tag): Doc({201: TAG}),
        ("GET", tag): Doc({200: TAG}),
        ("PUT", tag): Doc({200: TAG}),
        ("DELETE", tag): Doc({204: None}),
        ("GET", f"{P}/metadefs/resource_types"): Doc({200: obj({"resource_types": array(
            obj({"name": STR, "created_at": STR, "updated_at": STR}))})}),
        ("GET", f"{NS}/resource_types"): Doc({200: obj({"resource_type_associations": array(ASSOCIATION)})}),
        ("POST", f"{NS}/resource_types"): Doc({201: ASSOCIATION}),
        ("DELETE", f"{NS}/resource_types/{{resource_type}}"): Doc({204: None}),
        ("GET", f"{P}/schemas/metadefs/{{name}}"): Doc({200: obj({"name": STR}, {"properties": ANY_OBJ})}),
    }

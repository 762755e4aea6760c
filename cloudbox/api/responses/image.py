"""Glance v2 response bodies, by route (paths under /image/v2)."""

from __future__ import annotations

from cloudbox.api.responses import image_imports, image_metadefs
from cloudbox.api.responses.shapes import (
    ANY_OBJ, BOOL, INT, NINT, NSTR, STR, STRS, Doc, Raw, array, enum, nullable, obj,
)

P = "/image/v2"
# Glance's JSON-patch media types: an update sent as anything else answers 415.
PATCH_MEDIA = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")

STATUS = enum("queued", "saving", "active", "killed", "deleted", "pending_delete", "deactivated", "uploading",
              "importing")
VISIBILITY = enum("public", "private", "shared", "community")
IMAGE = obj(
    {"id": STR, "name": NSTR, "status": STATUS, "visibility": VISIBILITY, "protected": BOOL, "os_hidden": BOOL,
     "checksum": NSTR, "os_hash_algo": NSTR, "os_hash_value": NSTR, "owner": NSTR, "size": NINT,
     "virtual_size": NINT, "min_disk": INT, "min_ram": INT, "disk_format": NSTR, "container_format": NSTR,
     "created_at": STR, "updated_at": STR, "tags": STRS, "self": STR, "file": STR, "schema": STR},
    # Glance's image schema: any further property is a string set by the owner.
    extra=STR,
)
MEMBER = obj({"image_id": STR, "member_id": STR, "status": enum("pending", "accepted", "rejected"),
              "created_at": STR, "updated_at": STR, "schema": STR})
VERSIONS = obj({"versions": array(obj({"id": STR, "status": STR, "links": array(obj({"rel": STR, "href": STR}))}))})


def docs() -> dict[tuple[str, str], Doc]:
    image = f"{P}/images/{{image_id}}"
    return {
        ("GET", P): Doc({300: VERSIONS}, anonymous=True),
        ("GET", "/image"): Doc({300: VERSIONS}, anonymous=True),
        ("GET", f"{P}/images"): Doc({200: obj({"images": array(IMAGE), "first": STR, "schema": STR},
                                              {"next": STR})}),
        ("POST", f"{P}/images"): Doc({201: IMAGE}),
        ("GET", image): Doc({200: IMAGE}),
        ("PATCH", image): Doc({200: IMAGE}, errors=(415,), request_media=PATCH_MEDIA),
        ("DELETE", image): Doc({204: None}),
        ("POST", f"{image}/actions/deactivate"): Doc({204: None}),
        ("POST", f"{image}/actions/reactivate"): Doc({204: None}),
        # Data is application/octet-stream only (415 otherwise); an image without data yet answers 204.
        ("PUT", f"{image}/file"): Doc({204: None}, errors=(415,)),
        ("GET", f"{image}/file"): Doc({200: Raw("application/octet-stream"), 204: None}),
        ("PUT", f"{image}/tags/{{tag}}"): Doc({204: None}),
        ("DELETE", f"{image}/tags/{{tag}}"): Doc({204: None}),
        ("GET", f"{image}/members"): Doc({200: obj({"members": array(MEMBER), "schema": STR})}),
        ("POST", f"{image}/members"): Doc({200: MEMBER}),
        ("GET", f"{image}/members/{{member_id}}"): Doc({200: MEMBER}),
        ("PUT", f"{image}/members/{{member_id}}"): Doc({200: MEMBER}),
        ("DELETE", f"{image}/members/{{member_id}}"): Doc({204: None}),
        ("GET", f"{P}/schemas/{{name}}"): Doc({200: obj({"name": STR}, {"properties": ANY_OBJ,
                                                                         "links": nullable(array(ANY_OBJ))})}),
        **image_imports.docs(),
        **image_metadefs.docs(),
    }

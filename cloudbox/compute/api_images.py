"""Nova's image proxy (/images and their metadata, up to 2.35; 404 from 2.36): the image service
answers with the caller's credentials, rendered in Nova's shape (status ACTIVE/SAVING/..., minRam,
metadata = the image's properties)."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute.api import Version, route
from cloudbox.compute.api_proxies import proxy_only
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, Forbidden, NotFound
from cloudbox.image import core as image_core

STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING",
          "uploading": "SAVING", "deleted": "DELETED", "pending_delete": "DELETED", "killed": "ERROR"}
PROGRESS = {"queued": 25, "saving": 50, "uploading": 50, "importing": 50, "active": 100}
FILTERS = ("name", "status", "changes-since", "server", "type", "minRam", "minDisk", "limit", "marker")
META_MAX = 128  # Nova's metadata_items quota on image metadata


def nova_date(stamp: str | None) -> str | None:
    return stamp[:19] + "Z" if stamp else None


def links(call: Call, image_id: str) -> list[dict[str, str]]:
    host = call.request.host_url.rstrip("/")
    return [{"rel": "self", "href": f"{call.base}/images/{image_id}"},
            {"rel": "bookmark", "href": f"{host}/compute/images/{image_id}"},
            {"rel": "alternate", "type": "application/vnd.openstack.image", "href": f"{host}/image/images/{image_id}"}]


def nova_image(call: Call, image: dict[str, Any], detail: bool = True) -> dict[str, Any]:
    if not detail:
        return {"id": image["id"], "name": image["name"], "links": links(call, image["id"])}
    props = dict(image["properties"])
    view: dict[str, Any] = {
        "id": image["id"], "name": image["name"], "minRam": image["min_ram"] or 0, "minDisk": image["min_disk"] or 0,
        "metadata": props, "created": nova_date(image["created_at"]), "updated": nova_date(image["updated_at"]),
        "status": STATUS.get(image["status"], "UNKNOWN"), "progress": PROGRESS.get(image["status"], 0),
        "OS-EXT-IMG-SIZE:size": image["size"], "links": links(call, image["id"]),
    }
    if props.get("instance_uuid"):
        server = props["instance_uuid"]
        view["server"] = {"id": server, "links": [{"rel": "self", "href": f"{call.base}/servers/{server}"}]}
    return view


def glance_query(call: Call) -> MultiDict:
    """Nova's filters in Glance's spelling (server and type are properties Nova sets on snapshots)."""
    query: MultiDict = MultiDict()
    q = call.query
    if q.get("name"):
        query.add("name", q["name"])
    if q.get("status"):
        query.add("status", q["status"].lower())
    if q.get("server"):
        query.add("instance_uuid", q["server"].rsplit("/", 1)[-1])
    if q.get("type"):
        query.add("image_type", q["type"])
    if q.get("changes-since"):
        query.add("updated_at", f"gte:{q['changes-since']}")
    return query


def at_least(call: Call, name: str) -> int:
    raw = call.query.get(name)
    try:
        return int(raw) if raw not in (None, "") else 0
    except ValueError:
        raise BadRequest(f"{name} must be a whole number.") from None


async def _list(svc: ComputeService, call: Call, version: Version, detail: bool) -> Any:
    proxy_only(version, "/images", "image")
    limit, marker = call.page()
    min_ram, min_disk = at_least(call, "minRam"), at_least(call, "minDisk")
    opts = image_core.parse_list_options(glance_query(call))
    found = await svc.images.list(call.auth, opts, marker, limit if not (min_ram or min_disk) else 10_000)
    found = [i for i in found if (i["min_ram"] or 0) >= min_ram and (i["min_disk"] or 0) >= min_disk][:limit]
    body: dict[str, Any] = {"images": [nova_image(call, i, detail) for i in found]}
    if len(found) == limit and found:
        body["images_links"] = [{"rel": "next", "href": f"{call.base}/images{'/detail' if detail else ''}"
                                                        f"?limit={limit}&marker={found[-1]['id']}"}]
    return body


async def list_images(svc: ComputeService, call: Call, version: Version) -> Any:
    return await _list(svc, call, version, False)


async def list_images_detail(svc: ComputeService, call: Call, version: Version) -> Any:
    return await _list(svc, call, version, True)


async def visible(svc: ComputeService, call: Call, image_id: str) -> dict[str, Any]:
    try:
        return await svc.images.get(call.auth, image_id)
    except NotFound:
        raise NotFound("Image not found.") from None


async def show_image(svc: ComputeService, call: Call, version: Version, image_id: str) -> Any:
    proxy_only(version, "/images", "image")
    return {"image": nova_image(call, await visible(svc, call, image_id))}


async def delete_image(svc: ComputeService, call: Call, version: Version, image_id: str) -> Reply:
    proxy_only(version, "/images", "image")
    await visible(svc, call, image_id)
    await svc.images.delete(call.auth, image_id)
    return Reply(None, 204)


# --- metadata: the image's properties --------------------------------------------------------------
def check_meta(meta: Any) -> dict[str, str]:
    if not isinstance(meta, dict):
        raise BadRequest("Malformed request body: metadata must be an object.")
    for key, value in meta.items():
        if not key or len(key) > 255 or not isinstance(value, str) or len(value) > 255:
            raise BadRequest("Metadata keys and values are strings of at most 255 characters (keys not empty).")
        if key in image_core.CORE:
            raise BadRequest(f"Metadata key {key[:60]} names an image attribute, not a property.")
    return meta


async def write_properties(svc: ComputeService, call: Call, image: dict[str, Any], new: dict[str, str]) -> dict[str, str]:
    """Make the image's properties ``new`` with one Glance patch (checked by the image service)."""
    if len(new) > META_MAX:
        raise Forbidden(f"Quota exceeded for metadata items: at most {META_MAX}.")
    old = image["properties"]

    def path(key: str) -> str:  # a JSON pointer to a top-level key (RFC 6901 escapes)
        return "/" + key.replace("~", "~0").replace("/", "~1")

    patch: list[dict[str, Any]] = [{"op": "remove", "path": path(k)} for k in old if k not in new]
    patch += [{"op": "replace" if k in old else "add", "path": path(k), "value": v}
              for k, v in new.items() if old.get(k) != v]
    if patch:
        image = await svc.images.update(call.auth, image["id"], image_core.parse_patch(patch))
    return dict(image["properties"])


async def list_meta(svc: ComputeService, call: Call, version: Version, image_id: str) -> Any:
    proxy_only(version, "/images", "image")
    return {"metadata": dict((await visible(svc, call, image_id))["properties"])}


async def merge_meta(svc: ComputeService, call: Call, version: Version, image_id: str) -> Any:
    proxy_only(version, "/images", "image")
    image = await visible(svc, call, image_id)
    meta = check_meta(call.body.get("metadata"))
    return {"metadata": await write_properties(svc, call, image, {**image["properties"], **meta})}


async def replace_meta(svc: ComputeService, call: Call, version: Version, image_id: str) -> Any:
    proxy_only(version, "/images", "image")
    image = await visible(svc, call, image_id)
    meta = check_meta(call.body.get("metadata"))
    return {"metadata": await write_properties(svc, call, image, dict(meta))}


async def show_meta(svc: ComputeService, call: Call, version: Version, image_id: str, key: str) -> Any:
    proxy_only(version, "/images", "image")
    props = (await visible(svc, call, image_id))["properties"]
    if key not in props:
        raise NotFound(f"Image has no metadata item {key[:80]}.")
    return {"meta": {key: props[key]}}


async def set_meta(svc: ComputeService, call: Call, version: Version, image_id: str, key: str) -> Any:
    proxy_only(version, "/images", "image")
    meta = check_meta(call.body.get("meta"))
    if len(meta) != 1:
        raise BadRequest("Request body contains too many items.")
    if key not in meta:
        raise BadRequest("Request body and URI mismatch.")
    image = await visible(svc, call, image_id)
    props = await write_properties(svc, call, image, {**image["properties"], **meta})
    return {"meta": {key: props[key]}}


async def delete_meta(svc: ComputeService, call: Call, version: Version, image_id: str, key: str) -> Reply:
    proxy_only(version, "/images", "image")
    image = await visible(svc, call, image_id)
    if key not in image["properties"]:
        raise NotFound(f"Image has no metadata item {key[:80]}.")
    await write_properties(svc, call, image, {k: v for k, v in image["properties"].items() if k != key})
    return Reply(None, 204)


META_BODY = {"type": "object", "required": ["metadata"], "properties": {"metadata": {"type": "object"}}}
META_ITEM_BODY = {"type": "object", "required": ["meta"], "properties": {"meta": {"type": "object"}}}


def routes(svc: ComputeService) -> list[Route]:
    image = "/images/{image_id}"
    return [
        route(svc, "GET", "/images", list_images, query=FILTERS),
        route(svc, "GET", "/images/detail", list_images_detail, query=FILTERS),
        route(svc, "GET", image, show_image),
        route(svc, "DELETE", image, delete_image, status=204),
        route(svc, "GET", f"{image}/metadata", list_meta),
        route(svc, "POST", f"{image}/metadata", merge_meta, body=META_BODY),
        route(svc, "PUT", f"{image}/metadata", replace_meta, body=META_BODY),
        route(svc, "GET", f"{image}/metadata/{{key}}", show_meta),
        route(svc, "PUT", f"{image}/metadata/{{key}}", set_meta, body=META_ITEM_BODY),
        route(svc, "DELETE", f"{image}/metadata/{{key}}", delete_meta, status=204),
    ]

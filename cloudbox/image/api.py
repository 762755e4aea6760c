"""Glance v2 routes at /image/v2: images, their data, tags, members, actions and schemas; the
route tables of imports and tasks (api_imports.py) and metadata definitions (api_metadefs.py)."""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from quart import Response, request

from cloudbox.api import streaming
from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.errors import NotFound, UnsupportedMediaType
from cloudbox.image import api_imports, api_metadefs, core, imports, models
from cloudbox.image.service import ImageService

PREFIX = "/image/v2"
ROOT = "/image"
DOWNLOAD_CHUNK = 1 << 20


def mount_versions(app: Any) -> None:
    """GET /image and /image/: Glance's version document (where clients discover /image/v2/)."""

    async def image_versions() -> Response:
        """The image API's versions document."""
        body = core.version_list(request.host_url.rstrip("/") + ROOT)
        return Response(json.dumps(body), status=300, content_type="application/json")

    app.add_url_rule(ROOT, endpoint="image:versions", view_func=image_versions, methods=["GET"])
    app.add_url_rule(ROOT + "/", endpoint="image:versions/", view_func=image_versions, methods=["GET"])


def data_response(image: dict[str, Any], file: BinaryIO, *, with_md5: bool) -> Any:
    """An image's data as a streamed 200: for downloads (with Glance's Content-MD5) and for the
    copies other nodes fetch (cluster/api.py)."""
    headers = {"Content-Length": str(image["size"])}
    if with_md5:
        headers["Content-MD5"] = image["checksum"]
    return streaming.file_response(file, "application/octet-stream", headers, DOWNLOAD_CHUNK)


def build(svc: ImageService) -> ApiSpec:
    def render(image: dict[str, Any]) -> dict[str, Any]:
        return core.render_image(image)

    async def versions(call: Call) -> Reply:
        return Reply(core.version_list(call.base[: -len("/v2")]), 300)

    # --- images -------------------------------------------------------------------------
    async def list_images(call: Call) -> Any:
        opts = core.parse_list_options(call.query)
        limit = core.parse_limit(call.query.get("limit"), call.max_limit)
        rows = await svc.list(call.auth, opts, call.query.get("marker") or None, limit)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"images": [render(r) for r in rows],
                **core.list_links(call.query, rows[-1]["id"] if more and rows else None)}

    async def create_image(call: Call) -> Reply:
        image = await svc.create(call.auth, call.body)
        # As Glance, say how data can reach the image and where it may go.
        return Reply(render(image), 201, {"Location": f"{call.base}/images/{image['id']}",
                                          "OpenStack-image-import-methods": ",".join(imports.METHODS),
                                          "OpenStack-image-store-ids": ",".join(s["id"] for s in imports.STORES)})

    async def show_image(call: Call, image_id: str) -> Any:
        return render(await svc.get(call.auth, image_id))

    async def update_image(call: Call, image_id: str) -> Any:
        if call.request.mimetype not in core.PATCH_MEDIA_TYPES:
            raise UnsupportedMediaType(
                f"Image updates are JSON patches: send Content-Type {core.PATCH_MEDIA_TYPES[0]}, "
                f"not {call.request.mimetype or 'none'}.")
        return render(await svc.update(call.auth, image_id, core.parse_patch(call.body, call.request.mimetype)))

    async def delete_image(call: Call, image_id: str) -> Reply:
        await svc.delete(call.auth, image_id)
        return Reply(None, 204)

    async def deactivate(call: Call, image_id: str) -> Reply:
        await svc.deactivate(call.auth, image_id)
        return Reply(None, 204)

    async def reactivate(call: Call, image_id: str) -> Reply:
        await svc.reactivate(call.auth, image_id)
        return Reply(None, 204)

    # --- data ---------------------------------------------------------------------------
    async def upload(call: Call, image_id: str) -> Reply:
        await api_imports.receive_data(call, lambda chunks, size: svc.upload(call.auth, image_id, chunks, size))
        return Reply(None, 204)

    async def download(call: Call, image_id: str) -> Any:
        image, file = await svc.open_data(call.auth, image_id)
        if file is None:
            return Reply(None, 204)
        return data_response(image, file, with_md5=True)

    # --- tags -----------------------------------------------------------------------------
    async def add_tag(call: Call, image_id: str, tag: str) -> Reply:
        await svc.add_tag(call.auth, image_id, tag)
        return Reply(None, 204)

    async def remove_tag(call: Call, image_id: str, tag: str) -> Reply:
        await svc.remove_tag(call.auth, image_id, tag)
        return Reply(None, 204)

    # --- members --------------------------------------------------------------------------
    async def list_members(call: Call, image_id: str) -> Any:
        rows = await svc.members(call.auth, image_id)
        return {"members": [core.render_member(m) for m in rows], "schema": "/v2/schemas/members"}

    async def add_member(call: Call, image_id: str) -> Any:
        return core.render_member(await svc.add_member(call.auth, image_id, call.body["member"]))

    async def show_member(call: Call, image_id: str, member_id: str) -> Any:
        return core.render_member(await svc.get_member(call.auth, image_id, member_id))

    async def update_member(call: Call, image_id: str, member_id: str) -> Any:
        member = await svc.update_member(call.auth, image_id, member_id, call.body["status"])
        return core.render_member(member)

    async def remove_member(call: Call, image_id: str, member_id: str) -> Reply:
        await svc.remove_member(call.auth, image_id, member_id)
        return Reply(None, 204)

    # --- schemas -----------------------------------------------------------------------------
    async def show_schema(call: Call, name: str) -> Any:
        if name not in models.SCHEMAS:
            raise NotFound(f"No schema named {name!r}; there are {', '.join(models.SCHEMAS)}.")
        return models.SCHEMAS[name]()

    image = "/images/{image_id}"
    routes = [
        Route("GET", "", versions, access="public", summary="Glance's versions (discovery)", status=300),
        Route("GET", "/images", list_images, summary="List images", query=core.LIST_PARAMS),
        Route("POST", "/images", create_image, summary="Create an image", body=models.CREATE_IMAGE, status=201),
        Route("GET", image, show_image, summary="Show an image"),
        Route("PATCH", image, update_image, summary="Update an image (JSON patch)", body=models.PATCH_IMAGE),
        Route("DELETE", image, delete_image, summary="Delete an image", status=204),
        Route("PUT", image + "/file", upload, summary="Upload image data (streamed)", raw_body=True, status=204),
        Route("GET", image + "/file", download, summary="Download image data (streamed)"),
        Route("POST", image + "/actions/deactivate", deactivate, summary="Deactivate an image", status=204),
        Route("POST", image + "/actions/reactivate", reactivate, summary="Reactivate an image", status=204),
        Route("PUT", image + "/tags/{tag}", add_tag, summary="Add a tag", status=204),
        Route("DELETE", image + "/tags/{tag}", remove_tag, summary="Remove a tag", status=204),
        Route("GET", image + "/members", list_members, summary="List members of a shared image"),
        Route("POST", image + "/members", add_member, summary="Share an image with a project", body=models.ADD_MEMBER),
        Route("GET", image + "/members/{member_id}", show_member, summary="Show an image member"),
        Route("PUT", image + "/members/{member_id}", update_member, summary="Accept or reject a shared image",
              body=models.UPDATE_MEMBER),
        Route("DELETE", image + "/members/{member_id}", remove_member, summary="Stop sharing with a project",
              status=204),
        Route("GET", "/schemas/{name}", show_schema, summary="Glance's JSON schemas (image, images, member, members)"),
        *api_imports.routes(svc.imports),
        *api_metadefs.routes(svc.metadefs),
    ]
    return ApiSpec("image", PREFIX, "glance", routes, catalog=("image", "glance"))

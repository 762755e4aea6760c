"""Cinder v3 at /volume/v3: volumes and snapshots here, types, quotas, limits and zones in
api_types.py; the version documents at /volume and /volume/v3.

Every route is served twice: as clients reach it through a catalog endpoint without a
project (``/volume/v3/volumes``, Cinder 3.67 and openstacksdk) and with the project in the path
(``/volume/v3/{project_id}/volumes``, Cinder's older endpoints and python-cinderclient).
Each answer carries ``OpenStack-API-Version: volume 3.x``; asking beyond MAX_VERSION is a 406.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from quart import Response, request

from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.errors import BadRequest, NotFound
from cloudbox.volume import api_attach, api_backups, api_groups, api_transfers, api_types, core, models, views
from cloudbox.volume.api_pages import paged
from cloudbox.volume.service import VolumeService

PREFIX = "/volume/v3"
ROOT = "/volume"
SCOPE = "/{project_scope}"  # the project in the path, as Cinder's older endpoints carry it
Handler = Callable[..., Awaitable[Any]]


def mount_versions(app: Any) -> None:
    """GET /volume and /volume/: the versions document (300, as Cinder), where clients discover v3."""

    async def volume_versions() -> Response:
        base = request.host_url.rstrip("/") + PREFIX
        return Response(json.dumps({"versions": [core.version_document(base)]}), status=300,
                        content_type="application/json")

    app.add_url_rule(ROOT, endpoint="volume:versions", view_func=volume_versions, methods=["GET"])
    app.add_url_rule(ROOT + "/", endpoint="volume:versions/", view_func=volume_versions, methods=["GET"])


def scoped(method: str, path: str, handler: Handler, **options: Any) -> list[Route]:
    """The route at ``path`` and at ``/{project_scope}`` + ``path``, with the microversion answered."""

    async def endpoint(call: Call, project_scope: str | None = None, **params: str) -> Reply:
        version = core.requested_version(call.request.headers)
        if project_scope is not None and call.auth is not None and project_scope != call.auth.project_id \
                and not call.auth.is_cloud_admin:
            raise BadRequest(f"Malformed request url: project {project_scope[:40]} is not the token's project.")
        result = await handler(call, **params)
        reply = result if isinstance(result, Reply) else Reply(result)
        reply.headers.update({"OpenStack-API-Version": f"volume {version[0]}.{version[1]}",
                              "Vary": "OpenStack-API-Version"})
        return reply

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return [Route(method, path, endpoint, **options), Route(method, SCOPE + path, endpoint, **options)]


def version_of(call: Call) -> tuple[int, int]:
    return core.requested_version(call.request.headers)


def is_admin(call: Call) -> bool:
    return bool(call.auth and call.auth.is_cloud_admin)


def build(svc: VolumeService) -> ApiSpec:
    async def versions(call: Call) -> Reply:
        return Reply({"versions": [core.version_document(call.base)]}, 200)

    def render(volume: dict[str, Any], call: Call, extended: bool = True) -> dict[str, Any]:
        return views.volume(call.base, volume, admin=is_admin(call), version=version_of(call), extended=extended)

    # --- volumes ----------------------------------------------------------------------------------
    async def list_page(call: Call, detail: bool) -> Any:
        opts = core.parse_list_options(call.query, core.VOLUME_SORT, core.VOLUME_FILTERS)
        limit, marker = call.page()
        all_projects = core.parse_bool(call.query.get("all_tenants", "0"), "all_tenants")
        rows = await svc.list(call.auth, opts, marker, limit, all_projects)
        path = "/volumes/detail" if detail else "/volumes"
        body = paged(call, rows, limit, "volumes", path,
                     (lambda v: render(v, call)) if detail else (lambda v: views.volume_summary(call.base, v)))
        if core.requested_version(call.request.headers) >= (3, 45) and \
                core.parse_bool(call.query.get("with_count", "false"), "with_count"):
            body["count"] = await svc.count(call.auth, opts, all_projects)
        return body

    async def list_volumes(call: Call) -> Any:
        return await list_page(call, False)

    async def list_volumes_detail(call: Call) -> Any:
        return await list_page(call, True)

    async def volume_summary(call: Call) -> Any:
        all_projects = core.parse_bool(call.query.get("all_tenants", "0"), "all_tenants")
        return {"volume-summary": await svc.summary(call.auth, all_projects)}

    async def create_volume(call: Call) -> Reply:
        body = dict(call.body["volume"])
        for old, new in (("display_name", "name"), ("display_description", "description")):
            if body.get(old) is not None and body.get(new) is None:
                body[new] = body[old]
        volume = await svc.create(call.auth, body)
        return Reply({"volume": render(volume, call, extended=False)}, 202)

    async def show_volume(call: Call, volume_id: str) -> Any:
        return {"volume": render(await svc.get(call.auth, volume_id), call)}

    async def update_volume(call: Call, volume_id: str) -> Any:
        fields = call.body["volume"]
        changes = {k: fields[k] for k in ("name", "description", "metadata") if k in fields}
        for old, new in (("display_name", "name"), ("display_description", "description")):
            if old in fields and new not in changes:
                changes[new] = fields[old]
        if not changes:
            raise BadRequest("Invalid input received: give name, description or metadata to update.")
        return {"volume": render(await svc.update(call.auth, volume_id, changes), call, extended=False)}

    async def delete_volume(call: Call, volume_id: str) -> Reply:
        cascade = core.parse_bool(call.query.get("cascade", "false"), "cascade")
        force = core.parse_bool(call.query.get("force", "false"), "force")
        await svc.delete(call.auth, volume_id, cascade=cascade, force=force)
        return Reply(None, 202)

    async def volume_action(call: Call, volume_id: str) -> Reply:
        (name, args), = call.body.items()
        args = args if isinstance(args, dict) else {}
        if name == "os-extend":
            await svc.extend(call.auth, volume_id, args.get("new_size"), attached=version_of(call) >= (3, 42))
        elif name == "os-set_bootable":
            await svc.set_bootable(call.auth, volume_id, args.get("bootable"))
            return Reply(None, 200)
        elif name == "os-update_readonly_flag":
            await svc.set_readonly(call.auth, volume_id, args.get("readonly"))
        elif name == "os-reset_status":
            await svc.reset_status(call.auth, volume_id, args)
        elif name == "os-force_delete":
            await svc.delete(call.auth, volume_id, cascade=True, force=True)
        elif name == "os-retype":
            if not isinstance(args.get("new_type"), str):
                raise BadRequest("Invalid input received: os-retype needs new_type.")
            await svc.retype(call.auth, volume_id, args["new_type"])
        elif name == "os-show_image_metadata":
            return Reply({"metadata": await svc.image_metadata(call.auth, volume_id)}, 200)
        elif name == "os-set_image_metadata":
            metadata = await svc.image_metadata(call.auth, volume_id, changes=args.get("metadata"))
            return Reply({"metadata": metadata}, 200)
        elif name == "os-unset_image_metadata":
            if not isinstance(args.get("key"), str):
                raise BadRequest("Invalid input received: os-unset_image_metadata needs the key to remove.")
            await svc.image_metadata(call.auth, volume_id, remove=args["key"])
            return Reply(None, 200)
        elif name in api_attach.ACTIONS:
            return await api_attach.volume_action(svc, call, volume_id, name, args)
        else:
            raise BadRequest(f"There is no such action: {name[:60]} (this cloud serves os-extend, "
                             "os-set_bootable, os-update_readonly_flag, os-reset_status, os-force_delete, "
                             "os-retype, os-show/set/unset_image_metadata, the attach actions and "
                             "os-volume_upload_image).")
        return Reply(None, 202)

    # --- snapshots --------------------------------------------------------------------------------
    async def snapshots_page(call: Call, detail: bool) -> Any:
        opts = core.parse_list_options(call.query, core.SNAPSHOT_SORT, core.SNAPSHOT_FILTERS)
        limit, marker = call.page()
        all_projects = core.parse_bool(call.query.get("all_tenants", "0"), "all_tenants")
        rows = await svc.list_snapshots(call.auth, opts, marker, limit, all_projects)
        version = version_of(call)
        return paged(call, rows, limit, "snapshots", "/snapshots/detail" if detail else "/snapshots",
                     lambda s: views.snapshot(s, version=version, detail=detail))

    async def list_snapshots(call: Call) -> Any:
        return await snapshots_page(call, False)

    async def list_snapshots_detail(call: Call) -> Any:
        return await snapshots_page(call, True)

    async def create_snapshot(call: Call) -> Reply:
        snap = await svc.create_snapshot(call.auth, call.body["snapshot"], version=version_of(call))
        return Reply({"snapshot": views.snapshot(snap, version=version_of(call), detail=False)}, 202)

    async def show_snapshot(call: Call, snapshot_id: str) -> Any:
        return {"snapshot": views.snapshot(await svc.get_snapshot(call.auth, snapshot_id), version=version_of(call))}

    async def update_snapshot(call: Call, snapshot_id: str) -> Any:
        fields = call.body["snapshot"]
        changes = {k: fields[k] for k in ("name", "description") if k in fields}
        for old, new in (("display_name", "name"), ("display_description", "description")):
            if old in fields and new not in changes:
                changes[new] = fields[old]
        if not changes:
            raise BadRequest("Invalid input received: give name or description to update.")
        snap = await svc.update_snapshot(call.auth, snapshot_id, changes)
        return {"snapshot": views.snapshot(snap, version=version_of(call), detail=False)}

    async def delete_snapshot(call: Call, snapshot_id: str) -> Reply:
        await svc.delete_snapshot(call.auth, snapshot_id)
        return Reply(None, 202)

    async def snapshot_action(call: Call, snapshot_id: str) -> Reply:
        (name, args), = call.body.items()
        args = args if isinstance(args, dict) else {}
        if name == "os-reset_status":
            await svc.reset_snapshot_status(call.auth, snapshot_id, args.get("status"))
        elif name == "os-force_delete":
            await svc.force_delete_snapshot(call.auth, snapshot_id)
        elif name == "os-update_snapshot_status":
            await svc.update_snapshot_status(call.auth, snapshot_id, args)
        else:
            raise BadRequest(f"There is no such snapshot action: {name[:60]}.")
        return Reply(None, 202)

    # --- user messages (3.3) ------------------------------------------------------------------------
    def need_messages_api(call: Call) -> None:
        if version_of(call) < (3, 3):
            raise NotFound("The messages API needs microversion 3.3 or later (OpenStack-API-Version: volume 3.3).")

    async def list_messages(call: Call) -> Any:
        need_messages_api(call)
        limit, marker = call.page()
        rows = await svc.list_messages(call.auth, marker, limit)
        return paged(call, rows, limit, "messages", "/messages", lambda m: views.message(call.base, m))

    async def show_message(call: Call, message_id: str) -> Any:
        need_messages_api(call)
        return {"message": views.message(call.base, await svc.get_message(call.auth, message_id))}

    async def delete_message(call: Call, message_id: str) -> Reply:
        need_messages_api(call)
        await svc.delete_message(call.auth, message_id)
        return Reply(None, 204)

    # --- metadata of volumes and snapshots ------------------------------------------------------------
    def metadata_routes(kind: str, collection: str, key: str) -> list[Route]:
        base = f"/{collection}/{{{key}}}/metadata"

        async def show_metadata(call: Call, **ids: str) -> Any:
            return {"metadata": await svc.metadata(call.auth, kind, ids[key])}

        async def merge_metadata(call: Call, **ids: str) -> Any:
            return {"metadata": await svc.set_metadata(call.auth, kind, ids[key], call.body["metadata"],
                                                       replace=False)}

        async def replace_metadata(call: Call, **ids: str) -> Any:
            return {"metadata": await svc.set_metadata(call.auth, kind, ids[key], call.body["metadata"],
                                                       replace=True)}

        async def show_item(call: Call, meta_key: str, **ids: str) -> Any:
            metadata = await svc.metadata(call.auth, kind, ids[key])
            if meta_key not in metadata:
                from cloudbox.errors import NotFound

                raise NotFound(f"{kind.capitalize()} {ids[key]} has no metadata with key {meta_key}.")
            return {"meta": {meta_key: metadata[meta_key]}}

        async def set_item(call: Call, meta_key: str, **ids: str) -> Any:
            meta = call.body["meta"]
            if list(meta) != [meta_key]:
                raise BadRequest("Invalid input received: the body's one key must be the key in the path.")
            metadata = await svc.set_metadata(call.auth, kind, ids[key], meta, replace=False)
            return {"meta": {meta_key: metadata[meta_key]}}

        async def delete_item(call: Call, meta_key: str, **ids: str) -> Reply:
            await svc.delete_metadata(call.auth, kind, ids[key], meta_key)
            return Reply(None, 200)

        return [
            *scoped("GET", base, show_metadata, summary=f"Show a {kind}'s metadata"),
            *scoped("POST", base, merge_metadata, summary=f"Add or change {kind} metadata", body=models.METADATA),
            *scoped("PUT", base, replace_metadata, summary=f"Replace a {kind}'s metadata", body=models.METADATA),
            *scoped("GET", base + "/{meta_key}", show_item, summary=f"Show one {kind} metadata item"),
            *scoped("PUT", base + "/{meta_key}", set_item, summary=f"Set one {kind} metadata item",
                    body=models.META_ITEM),
            *scoped("DELETE", base + "/{meta_key}", delete_item, summary=f"Delete one {kind} metadata item"),
        ]

    volume = "/volumes/{volume_id}"
    snapshot = "/snapshots/{snapshot_id}"
    routes = [
        Route("GET", "", versions, access="public", summary="Cinder v3's version document"),
        *scoped("GET", "/volumes", list_volumes, summary="List volumes", query=core.LIST_PARAMS),
        *scoped("GET", "/volumes/detail", list_volumes_detail, summary="List volumes with details",
                query=core.LIST_PARAMS),
        *scoped("GET", "/volumes/summary", volume_summary, summary="Count, size and metadata of the volumes (3.12)",
                query=("all_tenants",)),
        *scoped("POST", "/volumes", create_volume, summary="Create a volume", body=models.CREATE_VOLUME, status=202),
        *scoped("GET", volume, show_volume, summary="Show a volume"),
        *scoped("PUT", volume, update_volume, summary="Update a volume", body=models.UPDATE_VOLUME),
        *scoped("DELETE", volume, delete_volume, summary="Delete a volume", query=("cascade", "force"), status=202),
        *scoped("POST", volume + "/action", volume_action, summary="A volume action (os-extend, ...)",
                body=models.ACTION, status=202),
        *metadata_routes("volume", "volumes", "volume_id"),
        *scoped("GET", "/snapshots", list_snapshots, summary="List snapshots", query=core.LIST_PARAMS),
        *scoped("GET", "/snapshots/detail", list_snapshots_detail, summary="List snapshots with details",
                query=core.LIST_PARAMS),
        *scoped("POST", "/snapshots", create_snapshot, summary="Create a snapshot", body=models.CREATE_SNAPSHOT,
                status=202),
        *scoped("GET", snapshot, show_snapshot, summary="Show a snapshot"),
        *scoped("PUT", snapshot, update_snapshot, summary="Update a snapshot", body=models.UPDATE_SNAPSHOT),
        *scoped("DELETE", snapshot, delete_snapshot, summary="Delete a snapshot", status=202),
        *scoped("POST", snapshot + "/action", snapshot_action, summary="A snapshot action (admins)",
                body=models.ACTION, status=202),
        *metadata_routes("snapshot", "snapshots", "snapshot_id"),
        *scoped("GET", "/messages", list_messages, summary="User messages: why a volume or snapshot failed (3.3)",
                query=("limit", "marker")),
        *scoped("GET", "/messages/{message_id}", show_message, summary="Show a user message (3.3)"),
        *scoped("DELETE", "/messages/{message_id}", delete_message, summary="Delete a user message (3.3)",
                status=204),
        *api_types.routes(svc, scoped),
        *api_attach.routes(svc, scoped),
        *api_transfers.routes(svc, scoped),
        *api_groups.routes(svc, scoped),
        *api_backups.routes(svc, scoped),
    ]
    return ApiSpec("volume", PREFIX, "nova", routes, catalog=("block-storage", "cinder"))


def alias() -> ApiSpec:
    """The same endpoint listed under the older catalog type ``volumev3`` (no routes of its own)."""
    return ApiSpec("volumev3", PREFIX, "nova", [], catalog=("volumev3", "cinderv3"))

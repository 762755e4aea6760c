"""Cinder v3 routes of volume backups: /backups (create, list, detail, show, update 3.9+, delete),
/backups/{id}/restore, and the admins' actions os-reset_status and os-force_delete."""

from __future__ import annotations

from typing import Any, Callable

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import BadRequest, NotFound
from cloudbox.volume import core
from cloudbox.volume.api_pages import paged
from cloudbox.volume.views import _links

OBJECT = {"type": "object"}
CREATE = {"type": "object", "required": ["backup"], "properties": {"backup": OBJECT}}
UPDATE = {"type": "object", "required": ["backup"], "properties": {"backup": OBJECT}}
RESTORE = {"type": "object", "required": ["restore"], "properties": {"restore": {"type": ["object", "null"]}}}
ACTION = {"type": "object", "minProperties": 1, "maxProperties": 1}
IMPORT = {"type": "object", "required": ["backup-record"], "properties": {"backup-record": OBJECT}}


def backup(base: str, row: dict[str, Any], version: tuple[int, int], admin: bool,
           detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row["id"], "name": row["name"], "links": _links(base, "backups", row["id"])}
    if not detail:
        return out
    out.update(status=row["status"], size=row["size"], object_count=row["object_count"],
               availability_zone=row["availability_zone"], container=row["container"],
               created_at=row["created_at"], updated_at=row["updated_at"], description=row["description"],
               fail_reason=row["fail_reason"], volume_id=row["volume_id"], is_incremental=row["is_incremental"],
               has_dependent_backups=row["has_dependent_backups"], snapshot_id=row["snapshot_id"],
               data_timestamp=row["data_timestamp"])
    if version >= (3, 18) and admin:
        out["os-backup-project-attr:project_id"] = row["project_id"]
    if version >= (3, 43):
        out["metadata"] = row["metadata"]
    if version >= (3, 56):
        out["user_id"] = row["user_id"]
    if version >= (3, 64):
        out["encryption_key_id"] = None  # no encryption types here
    return out


def routes(svc: Any, scoped: Callable[..., list[Route]]) -> list[Route]:
    backups = svc.backups

    def render(call: Call, row: dict[str, Any], detail: bool = True) -> dict[str, Any]:
        admin = bool(call.auth and call.auth.is_cloud_admin)
        return backup(call.base, row, core.requested_version(call.request.headers), admin, detail)

    async def list_page(call: Call, detail: bool) -> Any:
        limit, marker = call.page()
        all_projects = core.parse_bool(call.query.get("all_tenants", "0"), "all_tenants")
        rows = await backups.list(call.auth, marker, limit, all_projects)
        body = paged(call, rows, limit, "backups", "/backups/detail" if detail else "/backups",
                     lambda r: render(call, r, detail))
        if core.requested_version(call.request.headers) >= (3, 45) and \
                core.parse_bool(call.query.get("with_count", "false"), "with_count"):
            body["count"] = await backups.count(call.auth, all_projects)
        return body

    async def list_backups(call: Call) -> Any:
        return await list_page(call, False)

    async def list_backups_detail(call: Call) -> Any:
        return await list_page(call, True)

    async def create_backup(call: Call) -> Reply:
        body = call.body["backup"]
        if not isinstance(body, dict):
            raise BadRequest("Invalid input received: backup must be an object.")
        row = await backups.create(call.auth, body)
        return Reply({"backup": render(call, {**row, "has_dependent_backups": False}, detail=False)}, 202)

    async def show_backup(call: Call, backup_id: str) -> Any:
        return {"backup": render(call, await backups.get(call.auth, backup_id))}

    async def update_backup(call: Call, backup_id: str) -> Any:
        if core.requested_version(call.request.headers) < (3, 9):
            raise NotFound("Updating a backup needs microversion 3.9 or later (OpenStack-API-Version: volume 3.9).")
        body = call.body["backup"]
        if not isinstance(body, dict):
            raise BadRequest("Invalid input received: backup must be an object.")
        await backups.update(call.auth, backup_id, body)
        out = render(call, await backups.get(call.auth, backup_id), detail=False)  # Cinder's: id, links, name
        if core.requested_version(call.request.headers) >= (3, 43):
            out["metadata"] = (await backups.get(call.auth, backup_id))["metadata"]
        return {"backup": out}

    async def delete_backup(call: Call, backup_id: str) -> Reply:
        force = core.parse_bool(call.query.get("force", "false"), "force")
        await backups.delete(call.auth, backup_id, force)
        return Reply(None, 202)

    async def restore_backup(call: Call, backup_id: str) -> Reply:
        body = call.body.get("restore") or {}
        if not isinstance(body, dict):
            raise BadRequest("Invalid input received: restore must be an object.")
        return Reply({"restore": await backups.restore(call.auth, backup_id, body)}, 202)

    async def backup_action(call: Call, backup_id: str) -> Reply:
        ((name, args),) = call.body.items()
        if name == "os-reset_status":
            if not isinstance(args, dict):
                raise BadRequest("Invalid input received: os-reset_status takes {\"status\": ...}.")
            await backups.reset_status(call.auth, backup_id, args.get("status"))
        elif name == "os-force_delete":
            await backups.delete(call.auth, backup_id, True)
        else:
            raise BadRequest(f"Invalid input received: there is no backup action {name[:60]}.")
        return Reply(None, 202)

    async def export_record(call: Call, backup_id: str) -> Any:
        return {"backup-record": await backups.export_record(call.auth, backup_id)}

    async def import_record(call: Call) -> Reply:
        body = call.body["backup-record"]
        if not isinstance(body, dict):
            raise BadRequest("Invalid input received: backup-record must be an object.")
        row = await backups.import_record(call.auth, body)
        return Reply({"backup": render(call, row, detail=False)}, 201)

    one = "/backups/{backup_id}"
    return [
        *scoped("GET", "/backups", list_backups, summary="List backups", query=("limit", "marker", "all_tenants",
                                                                               "with_count")),
        *scoped("GET", "/backups/detail", list_backups_detail, summary="List backups with details",
                query=("limit", "marker", "all_tenants", "with_count")),
        *scoped("POST", "/backups", create_backup, summary="Back up a volume (full or incremental)", body=CREATE,
                status=202),
        *scoped("GET", one, show_backup, summary="Show a backup"),
        *scoped("GET", one + "/export_record", export_record, summary="A backup's record, to import (admins)"),
        *scoped("POST", "/backups/import_record", import_record, summary="Import an exported backup record (admins)",
                body=IMPORT, status=201),
        *scoped("PUT", one, update_backup, summary="Rename or describe a backup (3.9)", body=UPDATE),
        *scoped("DELETE", one, delete_backup, summary="Delete a backup", query=("force",), status=202),
        *scoped("POST", one + "/restore", restore_backup, summary="Restore a backup into a new or existing volume",
                body=RESTORE, status=202),
        *scoped("POST", one + "/action", backup_action, summary="A backup action (admins: reset status, force delete)",
                body=ACTION, status=202),
    ]

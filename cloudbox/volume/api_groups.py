"""Cinder v3 routes of generic volume groups: group types and their specs (3.11+), groups
(3.13+; from a source 3.14+; reset_status 3.20+) and group snapshots (3.14+; reset_status 3.19+)."""

from __future__ import annotations

from typing import Any, Callable

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import BadRequest, NotFound
from cloudbox.volume import core
from cloudbox.volume.api_pages import paged
from cloudbox.volume.store_groups import GROUP_TYPE_SORT

SPECS = {"type": "object", "required": ["group_specs"], "properties": {"group_specs": {"type": "object"}}}
OBJECT = {"type": "object"}
ACTION = {"type": "object", "minProperties": 1, "maxProperties": 1}


def group_type(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "description": row["description"], "is_public": row["is_public"],
            "group_specs": row["group_specs"]}


def shown_status(stored: str, members: list[str], made_from_source: bool) -> str:
    """A group made from a source is creating until its copies are made (then as stored); a group
    snapshot is creating while a snapshot of it is, in error when one failed."""
    if stored != "available":
        return stored
    if "creating" in members and made_from_source:
        return "creating"
    if any(m.startswith("error") for m in members) and not made_from_source:
        return "error"
    return stored


def group(base: str, row: dict[str, Any], version: tuple[int, int], detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row["id"], "name": row["name"]}
    if detail:
        made = bool(row["source_group_id"] or row["group_snapshot_id"])
        out.update(description=row["description"], status=shown_status(row["status"], row["volume_statuses"], made),
                   availability_zone=row["availability_zone"], created_at=row["created_at"],
                   group_type=row["group_type_id"], group_snapshot_id=row["group_snapshot_id"],
                   source_group_id=row["source_group_id"], volume_types=row["volume_type_ids"])
        if version >= (3, 25):
            out["volumes"] = row["volumes"]
        if version >= (3, 38):
            out["replication_status"] = "disabled"
    return out


def group_snapshot(row: dict[str, Any], detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row["id"], "name": row["name"]}
    if detail:
        statuses = row["snapshot_statuses"]
        status = shown_status(row["status"], statuses, False)
        if status == "available" and "creating" in statuses:
            status = "creating"
        out.update(created_at=row["created_at"], group_id=row["group_id"], status=status,
                   description=row["description"], group_type_id=row["group_type_id"])
    return out


def routes(svc: Any, scoped: Callable[..., list[Route]]) -> list[Route]:
    groups = svc.groups

    def version(call: Call, least: tuple[int, int], what: str) -> tuple[int, int]:
        asked = core.requested_version(call.request.headers)
        if asked < least:
            raise NotFound(f"The {what} API needs microversion {least[0]}.{least[1]} or later "
                           f"(OpenStack-API-Version: volume {least[0]}.{least[1]}).")
        return asked

    def types_version(call: Call) -> None:
        version(call, (3, 11), "group types")

    # --- group types ------------------------------------------------------------------------------------
    async def list_types(call: Call) -> Any:
        types_version(call)
        raw = call.query.get("is_public")
        is_public = None if raw in (None, "", "None", "none") else core.parse_bool(raw, "is_public")
        sort = core.parse_list_options(call.query, GROUP_TYPE_SORT, {}).sort if (
            call.query.get("sort") or call.query.get("sort_key")) else []
        return {"group_types": [group_type(r) for r in await groups.list_types(call.auth, is_public, sort)]}

    async def create_type(call: Call) -> Reply:
        types_version(call)
        return Reply({"group_type": group_type(await groups.create_type(call.auth, call.body["group_type"]))}, 202)

    async def show_type(call: Call, type_id: str) -> Any:
        types_version(call)
        if type_id == "default":
            raise NotFound("Default group type could not be found: this cloud sets none.")
        return {"group_type": group_type(await groups.get_type(call.auth, type_id))}

    async def update_type(call: Call, type_id: str) -> Any:
        types_version(call)
        return {"group_type": group_type(await groups.update_type(call.auth, type_id, call.body["group_type"]))}

    async def delete_type(call: Call, type_id: str) -> Reply:
        types_version(call)
        await groups.delete_type(call.auth, type_id)
        return Reply(None, 202)

    async def list_specs(call: Call, type_id: str) -> Any:
        types_version(call)
        return {"group_specs": (await groups.get_type(call.auth, type_id))["group_specs"]}

    async def set_specs(call: Call, type_id: str) -> Reply:
        types_version(call)
        asked = call.body["group_specs"]
        specs = (await groups.update_type(call.auth, type_id, specs=asked))["group_specs"]
        return Reply({"group_specs": {k: specs[k] for k in asked}}, 202)

    async def show_spec(call: Call, type_id: str, key: str) -> Any:
        types_version(call)
        specs = (await groups.get_type(call.auth, type_id))["group_specs"]
        if key not in specs:
            raise NotFound(f"Group type {type_id} has no group spec with key {key}.")
        return {key: specs[key]}

    async def set_spec(call: Call, type_id: str, key: str) -> Any:
        types_version(call)
        if list(call.body) != [key]:
            raise BadRequest("Invalid input received: the body's one key must be the key in the path.")
        return {key: (await groups.update_type(call.auth, type_id, specs=call.body))["group_specs"][key]}

    async def delete_spec(call: Call, type_id: str, key: str) -> Reply:
        types_version(call)
        await groups.update_type(call.auth, type_id, remove=(key,))
        return Reply(None, 202)

    # --- groups ---------------------------------------------------------------------------------------
    async def create_group(call: Call) -> Reply:
        version(call, (3, 13), "groups")
        made = await groups.create(call.auth, call.body["group"])
        return Reply({"group": {"id": made["id"], "name": made["name"]}}, 202)

    async def groups_action(call: Call) -> Reply:
        version(call, (3, 14), "create-from-src")
        (name, args), = call.body.items()
        if name != "create-from-src" or not isinstance(args, dict):
            raise BadRequest(f"There is no such groups action: {str(name)[:60]} (create-from-src).")
        made = await groups.create_from_source(call.auth, args)
        return Reply({"group": {"id": made["id"], "name": made["name"]}}, 202)

    async def groups_page(call: Call, detail: bool) -> Any:
        at = version(call, (3, 13), "groups")
        limit, marker = call.page()
        all_projects = core.parse_bool(call.query.get("all_tenants", "0"), "all_tenants")
        rows = await groups.list(call.auth, marker, limit, all_projects)
        return paged(call, rows, limit, "groups", "/groups/detail" if detail else "/groups",
                     lambda r: group(call.base, r, at, detail))

    async def list_groups(call: Call) -> Any:
        return await groups_page(call, False)

    async def list_groups_detail(call: Call) -> Any:
        return await groups_page(call, True)

    async def show_group(call: Call, group_id: str) -> Any:
        at = version(call, (3, 13), "groups")
        return {"group": group(call.base, await groups.get(call.auth, group_id), at)}

    async def update_group(call: Call, group_id: str) -> Reply:
        version(call, (3, 13), "groups")
        await groups.update(call.auth, group_id, call.body["group"])
        return Reply(None, 202)

    async def group_action(call: Call, group_id: str) -> Reply:
        (name, args), = call.body.items()
        args = args if isinstance(args, dict) else {}
        if name == "delete":
            version(call, (3, 13), "groups")
            await groups.delete(call.auth, group_id, args.get("delete-volumes", False))
        elif name == "reset_status":
            version(call, (3, 20), "group reset_status")
            await groups.reset_status(call.auth, group_id, args.get("status"))
        else:
            raise BadRequest(f"There is no such group action: {str(name)[:60]} (delete, reset_status).")
        return Reply(None, 202)

    # --- group snapshots ----------------------------------------------------------------------------------
    async def create_snapshot(call: Call) -> Reply:
        version(call, (3, 14), "group snapshots")
        made = await groups.create_snapshot(call.auth, call.body["group_snapshot"])
        return Reply({"group_snapshot": {"id": made["id"], "name": made["name"],
                                         "group_type_id": made["group_type_id"]}}, 202)

    async def snapshots_page(call: Call, detail: bool) -> Any:
        version(call, (3, 14), "group snapshots")
        limit, marker = call.page()
        all_projects = core.parse_bool(call.query.get("all_tenants", "0"), "all_tenants")
        rows = await groups.list_snapshots(call.auth, marker, limit, all_projects)
        return paged(call, rows, limit, "group_snapshots", "/group_snapshots/detail" if detail else "/group_snapshots",
                     lambda r: group_snapshot(r, detail))

    async def list_snapshots(call: Call) -> Any:
        return await snapshots_page(call, False)

    async def list_snapshots_detail(call: Call) -> Any:
        return await snapshots_page(call, True)

    async def show_snapshot(call: Call, group_snapshot_id: str) -> Any:
        version(call, (3, 14), "group snapshots")
        return {"group_snapshot": group_snapshot(await groups.get_snapshot(call.auth, group_snapshot_id))}

    async def delete_snapshot(call: Call, group_snapshot_id: str) -> Reply:
        version(call, (3, 14), "group snapshots")
        await groups.delete_snapshot(call.auth, group_snapshot_id)
        return Reply(None, 202)

    async def snapshot_action(call: Call, group_snapshot_id: str) -> Reply:
        version(call, (3, 19), "group snapshot reset_status")
        (name, args), = call.body.items()
        if name != "reset_status" or not isinstance(args, dict):
            raise BadRequest(f"There is no such group snapshot action: {str(name)[:60]} (reset_status).")
        await groups.reset_status(call.auth, group_snapshot_id, args.get("status"), snapshot=True)
        return Reply(None, 202)

    kind, spec = "/group_types/{type_id}", "/group_types/{type_id}/group_specs"
    one, snap = "/groups/{group_id}", "/group_snapshots/{group_snapshot_id}"
    paging = ("limit", "marker", "all_tenants")
    return [
        *scoped("GET", "/group_types", list_types, summary="List group types (3.11)",
                query=("is_public", "sort", "sort_key", "sort_dir")),
        *scoped("POST", "/group_types", create_type, summary="Create a group type (admins)",
                body={"type": "object", "required": ["group_type"], "properties": {"group_type": OBJECT}},
                status=202),
        *scoped("GET", kind, show_type, summary="Show a group type"),
        *scoped("PUT", kind, update_type, summary="Update a group type (admins)",
                body={"type": "object", "required": ["group_type"], "properties": {"group_type": OBJECT}}),
        *scoped("DELETE", kind, delete_type, summary="Delete a group type (admins)", status=202),
        *scoped("GET", spec, list_specs, summary="A group type's specs"),
        *scoped("POST", spec, set_specs, summary="Set group specs (admins)", body=SPECS, status=202),
        *scoped("GET", spec + "/{key}", show_spec, summary="Show one group spec"),
        *scoped("PUT", spec + "/{key}", set_spec, summary="Set one group spec (admins)", body=OBJECT),
        *scoped("DELETE", spec + "/{key}", delete_spec, summary="Delete one group spec (admins)", status=202),
        *scoped("POST", "/groups", create_group, summary="Create a group of volumes (3.13)",
                body={"type": "object", "required": ["group"], "properties": {"group": OBJECT}}, status=202),
        *scoped("POST", "/groups/action", groups_action, summary="Create a group from a group or group snapshot",
                body=ACTION, status=202),
        *scoped("GET", "/groups", list_groups, summary="List groups (3.13)", query=paging),
        *scoped("GET", "/groups/detail", list_groups_detail, summary="List groups with details (3.13)",
                query=paging),
        *scoped("GET", one, show_group, summary="Show a group"),
        *scoped("PUT", one, update_group, summary="Rename a group, add or remove volumes",
                body={"type": "object", "required": ["group"], "properties": {"group": OBJECT}}, status=202),
        *scoped("POST", one + "/action", group_action, summary="Delete a group, or reset its status (admins)",
                body=ACTION, status=202),
        *scoped("POST", "/group_snapshots", create_snapshot, summary="Snapshot every volume of a group (3.14)",
                body={"type": "object", "required": ["group_snapshot"], "properties": {"group_snapshot": OBJECT}},
                status=202),
        *scoped("GET", "/group_snapshots", list_snapshots, summary="List group snapshots (3.14)", query=paging),
        *scoped("GET", "/group_snapshots/detail", list_snapshots_detail, summary="List group snapshots with details",
                query=paging),
        *scoped("GET", snap, show_snapshot, summary="Show a group snapshot"),
        *scoped("DELETE", snap, delete_snapshot, summary="Delete a group snapshot and its snapshots", status=202),
        *scoped("POST", snap + "/action", snapshot_action, summary="Reset a group snapshot's status (admins)",
                body=ACTION, status=202),
    ]

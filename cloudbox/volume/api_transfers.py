"""Cinder v3 routes of volume transfers: /os-volume-transfer (every microversion) and
/volume-transfers (3.55+, with no_snapshots; 3.57 adds the projects and ``accepted``)."""

from __future__ import annotations

from typing import Any, Callable

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import NotFound
from cloudbox.volume import core
from cloudbox.volume.api_pages import paged

NEW_API = (3, 55)
CREATE = {"type": "object", "required": ["transfer"], "properties": {"transfer": {
    "type": "object", "required": ["volume_id"],
    "properties": {"volume_id": {"type": "string", "maxLength": 255}, "name": {"type": ["string", "null"],
                                                                               "maxLength": 255},
                   "no_snapshots": {"type": ["boolean", "string"]}}}}}
ACCEPT = {"type": "object", "required": ["accept"], "properties": {"accept": {
    "type": "object", "required": ["auth_key"], "properties": {"auth_key": {"type": "string", "maxLength": 255}}}}}


def view(base: str, row: dict[str, Any], version: tuple[int, int], *, detail: bool = True) -> dict[str, Any]:
    """A transfer as Cinder shows it at ``version`` (the summary: id, name, volume, links)."""
    href = f"{base}/os-volume-transfer/{row['id']}"
    out: dict[str, Any] = {"id": row["id"], "name": row["name"], "volume_id": row["volume_id"],
                           "links": [{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}]}
    if detail:
        out["created_at"] = row["created_at"]
        if version >= NEW_API:
            out["no_snapshots"] = row["no_snapshots"]
        if version >= (3, 57):
            out.update(source_project_id=row["project_id"], destination_project_id=None, accepted=False)
    return out


def routes(svc: Any, scoped: Callable[..., list[Route]]) -> list[Route]:
    transfers = svc.transfers

    def version(call: Call, new_api: bool) -> tuple[int, int]:
        asked = core.requested_version(call.request.headers)
        if new_api and asked < NEW_API:
            raise NotFound("The volume-transfers API needs microversion 3.55 or later "
                           "(OpenStack-API-Version: volume 3.55); /os-volume-transfer serves every version.")
        return asked

    def family(prefix: str, new_api: bool) -> list[Route]:
        async def create(call: Call) -> Reply:
            at = version(call, new_api)
            row, key = await transfers.create(call.auth, call.body["transfer"])
            return Reply({"transfer": {**view(call.base, row, at), "auth_key": key}}, 202)

        async def page(call: Call, detail: bool) -> Any:
            at = version(call, new_api)
            limit, marker = call.page()
            all_projects = core.parse_bool(call.query.get("all_tenants", "0"), "all_tenants")
            rows = await transfers.list(call.auth, marker, limit, all_projects)
            return paged(call, rows, limit, "transfers", prefix + ("/detail" if detail else ""),
                         lambda r: view(call.base, r, at, detail=detail))

        async def list_transfers(call: Call) -> Any:
            return await page(call, False)

        async def list_transfers_detail(call: Call) -> Any:
            return await page(call, True)

        async def show(call: Call, transfer_id: str) -> Any:
            at = version(call, new_api)
            return {"transfer": view(call.base, await transfers.get(call.auth, transfer_id), at)}

        async def delete(call: Call, transfer_id: str) -> Reply:
            version(call, new_api)
            await transfers.delete(call.auth, transfer_id)
            return Reply(None, 202)

        async def accept(call: Call, transfer_id: str) -> Reply:
            version(call, new_api)
            row = await transfers.accept(call.auth, transfer_id, call.body["accept"].get("auth_key"))
            return Reply({"transfer": view(call.base, row, (3, 0), detail=False)}, 202)

        for handler in (create, list_transfers, list_transfers_detail, show, delete, accept):
            handler.__name__ = f"{handler.__name__}_{prefix.strip('/').replace('-', '_')}"
        one = prefix + "/{transfer_id}"
        query = ("limit", "marker", "all_tenants")
        return [
            *scoped("POST", prefix, create, summary="Offer a volume to another project", body=CREATE, status=202),
            *scoped("GET", prefix, list_transfers, summary="The project's volume transfers", query=query),
            *scoped("GET", prefix + "/detail", list_transfers_detail, summary="The project's volume transfers, "
                    "with details", query=query),
            *scoped("GET", one, show, summary="Show a volume transfer"),
            *scoped("DELETE", one, delete, summary="Withdraw a volume transfer", status=202),
            *scoped("POST", one + "/accept", accept, summary="Accept a volume into the caller's project",
                    body=ACCEPT, status=202),
        ]

    return [*family("/os-volume-transfer", False), *family("/volume-transfers", True)]

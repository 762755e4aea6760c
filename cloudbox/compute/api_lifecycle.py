"""Nova's lifecycle actions (rescue, unrescue, shelve, shelveOffload, unshelve, resize,
confirmResize, revertResize, migrate) for POST /servers/{id}/action, and the migrations they
record: GET /os-migrations (admin) and GET /servers/{id}/migrations (in-progress live
migrations, Nova's from 2.23: none here).  The work itself is in ``lifecycle``."""

from __future__ import annotations

import datetime
from typing import Any, Awaitable, Callable

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute.api import Version, route
from cloudbox.compute.api_servers import ref
from cloudbox.compute.lifecycle import rescue_password
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, NotFound
from cloudbox.identity.core import require


def _only(action: str, args: dict[str, Any], allowed: set[str]) -> None:
    extra = set(args) - allowed
    if extra:
        raise BadRequest(f"Invalid input for field/attribute {action}. Additional properties are not allowed "
                         f"({', '.join(sorted(extra))[:120]} unexpected)")


async def rescue(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                 args: dict[str, Any]) -> Reply:
    """Nova's rescue: 200 with the adminPass (given, or made)."""
    _only("rescue", args, {"adminPass", "rescue_image_ref"})
    image_ref = args.get("rescue_image_ref")
    if image_ref is not None and (not isinstance(image_ref, str) or not image_ref):
        raise BadRequest("rescue_image_ref must be an image id.")
    password = rescue_password(args.get("adminPass"))
    await svc.lifecycle.rescue(call.auth, server, image_ref)
    return Reply({"adminPass": password}, 200)


async def unrescue(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                   args: dict[str, Any]) -> Reply:
    await svc.lifecycle.unrescue(server)
    return Reply(None, 202)


async def shelve(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                 args: dict[str, Any]) -> Reply:
    await svc.lifecycle.shelve(call.auth, server)
    return Reply(None, 202)


async def shelve_offload(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                         args: dict[str, Any]) -> Reply:
    require(call.auth.is_cloud_admin, "os_compute_api:os-shelve:shelve_offload")
    await svc.lifecycle.shelve_offload(server)
    return Reply(None, 202)


async def unshelve(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                   args: dict[str, Any]) -> Reply:
    """null, or from 2.77 an availability_zone, from 2.91 also a host (admins) or a zone of null (any)."""
    raw = call.body["unshelve"]
    zone: tuple[bool, str | None] = (False, None)
    host = None
    if raw is not None:
        if version < (2, 77):
            raise BadRequest("Invalid input for field/attribute unshelve. Value: must be null before 2.77.")
        _only("unshelve", args, {"availability_zone", "host"} if version >= (2, 91) else {"availability_zone"})
        if version < (2, 91) and "availability_zone" not in args:
            raise BadRequest("Invalid input for field/attribute unshelve: 'availability_zone' is a required property")
        if "availability_zone" in args:
            value = args["availability_zone"]
            if not (isinstance(value, str) and 1 <= len(value) <= 255) and not (value is None and version >= (2, 91)):
                raise BadRequest("availability_zone must be a zone's name" + (" or null." if version >= (2, 91) else "."))
            zone = (True, value)
        if "host" in args:
            host = args["host"]
            if not isinstance(host, str) or not 1 <= len(host) <= 255:
                raise BadRequest("host must be a compute host's name.")
            require(call.auth.is_cloud_admin, "os_compute_api:os-shelve:unshelve_to_host")
    await svc.lifecycle.unshelve(server, zone, host)
    return Reply(None, 202)


async def resize(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                 args: dict[str, Any]) -> Reply:
    _only("resize", args, {"flavorRef", "OS-DCF:diskConfig"})
    flavor_ref = args.get("flavorRef")
    if isinstance(flavor_ref, int) and not isinstance(flavor_ref, bool):
        flavor_ref = str(flavor_ref)
    if not isinstance(flavor_ref, str) or not flavor_ref.strip():
        raise BadRequest("Invalid input for field/attribute flavorRef: resize needs a flavorRef.")
    if args.get("OS-DCF:diskConfig", "AUTO") not in ("AUTO", "MANUAL"):
        raise BadRequest("OS-DCF:diskConfig must be AUTO or MANUAL.")
    await svc.lifecycle.resize(call.auth, server, ref(flavor_ref))
    return Reply(None, 202)


async def confirm_resize(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                         args: dict[str, Any]) -> Reply:
    await svc.lifecycle.confirm_resize(server)
    return Reply(None, 204)


async def revert_resize(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                        args: dict[str, Any]) -> Reply:
    await svc.lifecycle.revert_resize(server)
    return Reply(None, 202)


async def migrate(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                  args: dict[str, Any]) -> Reply:
    """A cold migration (a project manager or an admin; a named host, from 2.56, admins only)."""
    require(call.auth.can_manage_project(server["project_id"]), "os_compute_api:os-migrate-server:migrate")
    if args and version < (2, 56):
        raise BadRequest("Invalid input for field/attribute migrate. Value: must be null before 2.56.")
    _only("migrate", args, {"host"})
    host = args.get("host")
    if host is not None:
        if not isinstance(host, str) or not 1 <= len(host) <= 255:
            raise BadRequest("host must be a compute host's name.")
        require(call.auth.is_cloud_admin, "os_compute_api:os-migrate-server:migrate:host")
    await svc.lifecycle.migrate(call.auth, server, host)
    return Reply(None, 202)


Action = Callable[[ComputeService, Call, Version, dict[str, Any], dict[str, Any]], Awaitable[Reply]]


def image_backed_only(action: str, handler: Action) -> Action:
    """An action cloudbox does only for a server whose root disk is its image (boot_volumes_service)."""
    async def checked(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                      args: dict[str, Any]) -> Reply:
        await svc.boot_volumes.refuse_volume_backed(server, action)
        return await handler(svc, call, version, server, args)

    return checked


ACTIONS = {
    "rescue": image_backed_only("rescue", rescue), "unrescue": unrescue,
    "shelve": image_backed_only("shelve", shelve), "shelveOffload": image_backed_only("shelveOffload", shelve_offload),
    "unshelve": unshelve, "resize": resize, "confirmResize": confirm_resize,
    "revertResize": revert_resize, "migrate": image_backed_only("migrate", migrate),
}


# --- migrations -----------------------------------------------------------------------------------
def _time(value: str | None) -> str | None:
    """Nova shows a migration's times without a zone ("2026-12-07T01:30:04.438759")."""
    return value[:-1] if value and value.endswith("Z") else value


def migration_view(row: dict[str, Any], version: Version) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"], "status": row["status"], "instance_uuid": row["server_id"],
        "source_node": row["source_compute"], "source_compute": row["source_compute"],
        "dest_node": row["dest_compute"], "dest_compute": row["dest_compute"], "dest_host": row["dest_host"],
        "old_instance_type_id": row["old_instance_type_id"], "new_instance_type_id": row["new_instance_type_id"],
        "created_at": _time(row["created_at"]), "updated_at": _time(row["updated_at"]),
    }
    if version >= (2, 23):
        out["migration_type"] = row["migration_type"]
    if version >= (2, 59):
        out["uuid"] = row["uuid"]
    if version >= (2, 80):
        out.update(user_id=row["user_id"], project_id=row["project_id"])
    return out


def _moment(value: str, name: str) -> str:
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {value[:60]}. "
                         "It is not a valid date-time.") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


async def list_migrations(svc: ComputeService, call: Call, version: Version) -> Any:
    require(call.auth.is_cloud_reader, "os_compute_api:os-migrations:index")
    q = call.query
    filters: dict[str, Any] = {}
    for param, column in (("instance_uuid", "server_id"), ("status", "status"), ("host", "host"),
                          ("source_compute", "source_compute"), ("migration_type", "migration_type")):
        if q.get(param):
            filters[column] = q[param]
    if version >= (2, 80):
        for param in ("user_id", "project_id"):
            if q.get(param):
                filters[param] = q[param]
    limit, marker = (call.page() if version >= (2, 59) else (1000, None))
    if version >= (2, 59) and q.get("changes-since"):
        filters["changes-since"] = _moment(q["changes-since"], "changes-since")
    if version >= (2, 66) and q.get("changes-before"):
        filters["changes-before"] = _moment(q["changes-before"], "changes-before")
    rows = await svc.lifecycle.migrations(filters, marker, limit + 1)
    body: dict[str, Any] = {"migrations": [migration_view(r, version) for r in rows[:limit]]}
    if version >= (2, 59) and len(rows) > limit and rows[:limit]:
        body["migrations_links"] = [{"rel": "next", "href": f"{call.base}/os-migrations?limit={limit}"
                                                             f"&marker={rows[limit - 1]['uuid']}"}]
    return body


async def server_migrations(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    """In-progress live migrations of a server (Nova's, from 2.23): cloudbox makes none."""
    if version < (2, 23):
        raise NotFound("The resource could not be found.")
    require(call.auth.is_cloud_admin, "os_compute_api:servers:migrations:index")
    await svc.visible_server(call.auth, server_id)
    return {"migrations": []}


async def server_migration(svc: ComputeService, call: Call, version: Version, server_id: str,
                           migration_id: str) -> Any:
    if version < (2, 23):
        raise NotFound("The resource could not be found.")
    require(call.auth.is_cloud_admin, "os_compute_api:servers:migrations:show")
    await svc.visible_server(call.auth, server_id)
    raise NotFound(f"In-progress live migration {migration_id[:40]} is not found for server {server_id[:40]}.")


def routes(svc: ComputeService) -> list[Route]:
    return [
        route(svc, "GET", "/os-migrations", list_migrations,
              summary="Migrations that resize and migrate recorded (admin)"),
        route(svc, "GET", "/servers/{server_id}/migrations", server_migrations,
              summary="A server's in-progress live migrations (2.23)"),
        route(svc, "GET", "/servers/{server_id}/migrations/{migration_id}", server_migration,
              summary="One in-progress live migration of a server (2.23)"),
    ]

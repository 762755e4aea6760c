"""Nova v2.1 server actions (POST /servers/{id}/action): power actions, reboot, rebuild,
createImage, createBackup, evacuate, lock/unlock, os-resetState, trigger_crash_dump, changePassword,
the network proxies' actions, os-getConsoleOutput, and the lifecycle actions of ``api_lifecycle``
(rescue, shelve, resize, migrate and their counterparts).  One handler per action; ``server_action``
dispatches on the body's one key."""

from __future__ import annotations

import secrets
from typing import Any, Awaitable, Callable

import jsonschema

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute import api_consoles, api_floating, api_lifecycle, api_proxies, api_records, core, models, views
from cloudbox.compute.api import Version, forwarded, route
from cloudbox.compute.api_servers import ref, render
from cloudbox.compute.service import ComputeService
from cloudbox.compute.states import POWER_ACTIONS
from cloudbox.errors import BadRequest, Conflict
from cloudbox.identity.core import require

ActionHandler = Callable[[ComputeService, Call, Version, dict[str, Any], dict[str, Any]], Awaitable[Reply]]
REBUILD_VALIDATOR = jsonschema.Draft202012Validator(models.REBUILD)


async def power(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                args: dict[str, Any]) -> Reply:
    """os-start, os-stop, pause, unpause, suspend, resume"""
    (action,) = call.body
    await svc.power_action(server, action)
    return Reply(None, 202)


async def reboot(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                 args: dict[str, Any]) -> Reply:
    kind = str(args.get("type", "")).upper()
    if kind not in ("SOFT", "HARD"):
        raise BadRequest("reboot needs type SOFT or HARD.")
    await svc.reboot(server, hard=kind == "HARD")
    return Reply(None, 202)


async def create_image(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                       args: dict[str, Any]) -> Reply:
    name = args.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("createImage needs a name.")
    metadata = args.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadRequest("metadata must be an object.")
    image_id = await svc.snapshot(call.auth, server, name, metadata)
    headers = {"Location": f"{call.request.host_url.rstrip('/')}/image/v2/images/{image_id}"}
    return Reply({"image_id": image_id} if version >= (2, 45) else None, 202, headers)


async def create_backup(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                        args: dict[str, Any]) -> Reply:
    """A snapshot with rotation: Nova's name, backup_type and rotation (a whole number, 0 keeps none)."""
    name, backup_type, rotation = args.get("name"), args.get("backup_type"), args.get("rotation")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest("createBackup needs a name.")
    if not isinstance(backup_type, str) or not backup_type or len(backup_type) > 255:
        raise BadRequest("createBackup needs a backup_type.")
    try:
        rotation = int(rotation) if not isinstance(rotation, bool) else None
    except (TypeError, ValueError):
        rotation = None
    if rotation is None or not 0 <= rotation <= 2**31 - 1:
        raise BadRequest("createBackup's rotation must be a whole number, 0 or more.")
    metadata = args.get("metadata") or {}
    if not isinstance(metadata, dict) or set(args) - {"name", "backup_type", "rotation", "metadata"}:
        raise BadRequest("createBackup takes name, backup_type, rotation and metadata (an object).")
    image_id = await svc.snapshot(call.auth, server, name, metadata, (backup_type, rotation))
    headers = {"Location": f"{call.request.host_url.rstrip('/')}/image/v2/images/{image_id}"} if rotation else {}
    return Reply({"image_id": image_id} if version >= (2, 45) else None, 202, headers)


async def rebuild(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                  args: dict[str, Any]) -> Reply:
    image_ref = ref(args.get("imageRef"))
    if not image_ref:
        raise BadRequest("rebuild needs an imageRef.")
    error = jsonschema.exceptions.best_match(REBUILD_VALIDATOR.iter_errors(args))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "rebuild"
        raise BadRequest(f"Invalid input for field '{where}': {error.message[:200]}")
    changes = {key: args[key] for key in ("name", "metadata", "description") if key in args}
    if "user_data" in args and version >= (2, 57):
        changes["user_data"] = core.check_user_data(args["user_data"])
    if "key_name" in args and version >= (2, 54):
        changes["key_name"] = args["key_name"]
    updated = await svc.rebuild(call.auth, server, image_ref, changes)
    body = views.rebuilt_server(render(call, version, updated), version, updated.get("user_data"))
    body["adminPass"] = args.get("adminPass") or secrets.token_urlsafe(9)
    return Reply({"server": body}, 202)


async def evacuate(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                   args: dict[str, Any]) -> Reply:
    """Rebuild a server of a down host on another host (from its image: no shared storage)."""
    require(call.auth.is_cloud_admin, "os_compute_api:os-evacuate")
    target = args.get("host")
    if target is not None and not isinstance(target, str):
        raise BadRequest("evacuate's host must be a host name.")
    await svc.boot_volumes.refuse_volume_backed(server, "evacuate")  # its root would stay on the down node
    await svc.evacuate(server, target)
    return Reply(None, 202)


async def security_group(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                         args: dict[str, Any]) -> Reply:
    """addSecurityGroup, removeSecurityGroup: the group on every port of the server (network service)."""
    (action,) = call.body
    return await api_proxies.change_server_group(svc, call, server, args.get("name"), action == "addSecurityGroup")


async def lock(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
               args: dict[str, Any]) -> Reply:
    """Nova's lock: only an admin may change a locked server; a reason from 2.73."""
    require(call.auth.can_write_project(server["project_id"]), "os_compute_api:os-lock-server:lock")
    reason = args.get("locked_reason")
    if args and version < (2, 73):
        raise BadRequest("lock takes no arguments before microversion 2.73.")
    if set(args) - {"locked_reason"} or (reason is not None and (not isinstance(reason, str) or len(reason) > 255)):
        raise BadRequest("lock takes only locked_reason, a string of at most 255 characters.")
    locked_by = "admin" if call.auth.is_cloud_admin and call.auth.project_id != server["project_id"] else "owner"
    await svc.set_lock(server, True, locked_by, reason)
    return Reply(None, 202)


async def unlock(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                 args: dict[str, Any]) -> Reply:
    """Nova's unlock: a lock an admin set is lifted by an admin only (unlock_override)."""
    require(call.auth.can_write_project(server["project_id"]), "os_compute_api:os-lock-server:unlock")
    if server.get("locked_by") == "admin" and not call.auth.is_cloud_admin:
        require(False, "os_compute_api:os-lock-server:unlock:unlock_override")
    await svc.set_lock(server, False, None, None)
    return Reply(None, 202)


async def reset_state(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                      args: dict[str, Any]) -> Reply:
    require(call.auth.is_cloud_admin, "os_compute_api:os-admin-actions:reset_state")
    state = args.get("state")
    if state not in ("active", "error"):
        raise BadRequest("os-resetState needs state active or error.")
    await svc.reset_state(server, state)
    return Reply(None, 202)


async def inject_network_info(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                              args: dict[str, Any]) -> Reply:
    """Nova's injectNetworkInfo: nothing to inject (guests take their addresses from DHCP and the
    config drive, as with Nova's libvirt driver, where it does nothing either)."""
    require(call.auth.is_cloud_admin, "os_compute_api:os-admin-actions:inject_network_info")
    return Reply(None, 202)


async def not_soft_deleted(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                           args: dict[str, Any]) -> Reply:
    """restore and forceDelete act on soft-deleted servers; cloudbox deletes at once (Nova with
    reclaim_instance_interval = 0), so no server is ever soft-deleted: Nova's 409."""
    (action,) = call.body
    raise Conflict(f"Cannot '{action}' instance {server['id']} while it is in vm_state {server['vm_state']}")


async def trigger_crash_dump(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                             args: dict[str, Any]) -> Reply:
    if version < (2, 17):
        raise BadRequest("There is no such action: trigger_crash_dump (from microversion 2.17).")
    if call.body["trigger_crash_dump"] is not None:
        raise BadRequest("trigger_crash_dump takes null.")
    await svc.trigger_crash_dump(server)
    return Reply(None, 202)


async def change_password(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                          args: dict[str, Any]) -> Reply:
    """Nova sets a password through the QEMU guest agent; cloudbox's guests have none, so a valid
    request is Nova's 409 for an instance whose agent is not enabled."""
    password = args.get("adminPass")
    if not isinstance(password, str) or set(args) - {"adminPass"}:
        raise BadRequest("changePassword needs adminPass, a string, and nothing else.")
    if server["status"] != "ACTIVE" or server["task_state"] is not None:
        raise Conflict(f"Cannot 'changePassword' instance {server['id']} while it is in vm_state {server['vm_state']}")
    raise Conflict(f"Failed to set admin password on {server['id']} because the QEMU guest agent is not enabled.")


LIVE_MIGRATE = {"type": "object", "required": ["block_migration"], "properties": {
    "block_migration": {"type": ["boolean", "string"], "enum": [True, False, "auto", "true", "false", "True", "False"]},
    "host": {"type": ["string", "null"], "maxLength": 255}, "disk_over_commit": {"type": ["boolean", "string"]},
    "force": {"type": ["boolean", "string"]}}}


async def live_migrate(svc: ComputeService, call: Call, version: Version, server: dict[str, Any],
                       args: dict[str, Any]) -> Reply:
    """os-migrateLive is Nova's; cloudbox has no live migration between nodes yet (guests move
    stopped, by migrate), so a valid request gets the 400 Nova gives when no host can take the
    guest live, after the same checks of role, body and state."""
    require(call.auth.is_cloud_admin, "os_compute_api:os-migrate-server:migrate_live")
    try:
        jsonschema.validate(args, LIVE_MIGRATE)
    except jsonschema.ValidationError as exc:
        raise BadRequest(f"Invalid input for os-migrateLive: {exc.message[:200]}") from None
    if server["status"] not in ("ACTIVE", "PAUSED") or server["task_state"] is not None:
        raise Conflict(f"Cannot 'os-migrateLive' instance {server['id']} while it is in vm_state "
                       f"{server['vm_state']}")
    raise BadRequest("Migration pre-check error: live migration is not available in this cloud "
                     "(move the server with migrate: it is stopped and started on its new host).")


ACTIONS: dict[str, ActionHandler] = {
    **{action: power for action in POWER_ACTIONS},
    "reboot": reboot, "createImage": create_image, "createBackup": create_backup, "rebuild": rebuild,
    "evacuate": evacuate, "lock": lock, "unlock": unlock, "os-resetState": reset_state,
    "trigger_crash_dump": trigger_crash_dump, "changePassword": change_password,
    "injectNetworkInfo": inject_network_info, "restore": not_soft_deleted, "forceDelete": not_soft_deleted,
    "addFloatingIp": api_floating.add_fip, "removeFloatingIp": api_floating.remove_fip,
    "addFixedIp": api_floating.add_fixed_ip, "removeFixedIp": api_floating.remove_fixed_ip,
    "os-migrateLive": live_migrate,
    "addSecurityGroup": security_group, "removeSecurityGroup": security_group,
    **api_lifecycle.ACTIONS,
}


async def console_output(svc: ComputeService, call: Call, server_id: str, args: dict[str, Any]) -> Reply:
    server = await svc.visible_server(call.auth, server_id)
    require(call.auth.can_write_project(server["project_id"]), "os_compute_api:os-console-output")
    length = args.get("length")
    try:
        length = int(length) if length not in (None, "", -1, "-1") else None
    except (TypeError, ValueError):
        raise BadRequest("length must be a whole number.") from None
    if length is not None and length < 0:
        raise BadRequest("length must not be negative.")
    if (reply := await forwarded(svc, call, server)) is not None:
        return reply
    return Reply({"output": await svc.console_output(server, length)})


async def server_action(svc: ComputeService, call: Call, version: Version, server_id: str) -> Reply:
    (action, args), = call.body.items()
    if args is not None and not isinstance(args, dict):
        raise BadRequest(f"The argument of action {action[:60]} must be an object or null.")
    if action == "os-getConsoleOutput":
        return await console_output(svc, call, server_id, args or {})
    if action in api_consoles.ACTIONS:  # answered here, whichever node runs the guest
        return await api_consoles.legacy_action(svc, call, version, server_id, action, args or {})
    # The server first (a missing one is a 404 whatever the action, as in Nova), then the action.
    # A locked server refuses changes to non-admins, but not its own unlock (nor a second lock).
    server = await svc.visible_server(call.auth, server_id, write=action not in ("lock", "unlock"))
    handler = ACTIONS.get(action)
    if handler is None:
        raise BadRequest(f"There is no such action: {action[:60]}")
    # An evacuation is decided here: the server's host is down, it cannot answer.
    if action != "evacuate" and (reply := await forwarded(svc, call, server)) is not None:
        return reply
    reply = await handler(svc, call, version, server, args or {})
    await api_records.action_accepted(svc, call, server, action)
    return reply


def routes(svc: ComputeService) -> list[Route]:
    return [
        route(svc, "POST", "/servers/{server_id}/action", server_action, body=models.SERVER_ACTION, status=202,
              summary="Server actions: os-start, os-stop, reboot, pause, unpause, suspend, resume, "
                      "createImage, createBackup, rebuild, evacuate, lock, unlock, os-resetState, "
                      "trigger_crash_dump, changePassword, injectNetworkInfo, restore, forceDelete, "
                      "addSecurityGroup, removeSecurityGroup, addFloatingIp, removeFloatingIp, "
                      "addFixedIp, removeFixedIp, os-getConsoleOutput, os-getVNCConsole and "
                      "os-getSerialConsole (to 2.5), rescue, unrescue, shelve, shelveOffload, unshelve, "
                      "resize, confirmResize, revertResize, migrate; "
                      "os-migrateLive is refused (no live migration)"),
        *api_lifecycle.routes(svc),
    ]

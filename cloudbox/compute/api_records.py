"""Compute's records: instance actions (os-instance-actions), the server password
(os-server-password, and the guest's POST to the metadata service), server diagnostics and
the instance usage audit log.

Instance actions are recorded by the API once a request is accepted (one small command, so a
boot costs one more commit); their compute event finishes when the service settles the
server's task (a post-commit listener on the server's update, so the service itself does not
know about records) or deletes the server.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import weakref
from typing import TYPE_CHECKING, Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.clock import iso, parse_iso
from cloudbox.compute import commands as c
from cloudbox.compute import commands_records as cr
from cloudbox.compute import core, records, store
from cloudbox.compute.api import Version, forwarded, route
from cloudbox.compute.driver.diagnostics import guest_stats
from cloudbox.compute.resources import stamp
from cloudbox.errors import BadRequest, CloudboxError, Conflict, NotFound
from cloudbox.identity.core import require
from cloudbox.network import store as network_store

if TYPE_CHECKING:
    from cloudbox.compute.service import ComputeService

log = logging.getLogger("cloudbox.compute")

PASSWORD_MAX = 1020  # Nova's metadata API: four chunks of 255 characters (an RSA-encrypted password fits)
PASSWORD_VERSIONS = frozenset(core.OPENSTACK_VERSIONS[1:]) | {"latest"}  # password came with 2013-04-04
_attached: weakref.WeakSet[Any] = weakref.WeakSet()


# --- recording ---------------------------------------------------------------------------------
async def record(svc: ComputeService, call: Call, servers: list[dict[str, Any]], action: str) -> None:
    """Record ``action`` of this request on each of ``servers`` (all of one project)."""
    if not servers:
        return
    first = servers[0]
    try:
        await svc.engine.propose(cr.RecordActions(
            tuple(s["id"] for s in servers), call.request_id, action, first["project_id"], call.auth.user_id,
            stamp(), records.EVENTS.get(action), first.get("host")))
    except CloudboxError as exc:  # the action was accepted: a lost record must not fail it
        log.warning("instance action not recorded", extra={"action": action, "why": exc.message})


async def action_accepted(svc: ComputeService, call: Call, server: dict[str, Any], action: str) -> None:
    """Record that ``action`` was accepted for ``server`` (the instance action Nova lists)."""
    name = records.ACTION_NAMES.get(action)
    if name is not None:
        await record(svc, call, [server], name)


def attach(svc: ComputeService) -> None:
    """Hook the records into a compute service once: events finish when the service settles a
    server's task, and the metadata listeners take the guests' password posts."""
    if svc in _attached:
        return
    _attached.add(svc)

    def on_commit(cmd: Any, result: Any) -> None:
        if not svc.engine.from_here or not svc.running:
            return  # the node that settled the server finishes its events, once
        if isinstance(cmd, c.UpdateServer) and "task_state" in cmd.changes and cmd.changes["task_state"] is None:
            fault = cmd.changes.get("fault")
            failed = bool(fault) or (isinstance(result, dict) and result.get("status") == "ERROR")
            details = str(fault.get("message", ""))[:1000] if isinstance(fault, dict) else None
            svc.spawn(finish_events, svc, cmd.id, cmd.changes.get("updated_at") or stamp(),
                      "Error" if failed else "Success", details)
        elif isinstance(cmd, c.DeleteServer):
            svc.spawn(finish_events, svc, cmd.id, stamp(), "Success", None)

    svc.engine.add_listener(on_commit)
    metadata = getattr(svc.guests.dataplane, "metadata", None)
    if metadata is not None and hasattr(metadata, "first"):
        metadata.first = functools.partial(guest_password, svc)


async def finish_events(svc: ComputeService, server_id: str, when: str, result: str, details: str | None) -> None:
    if await svc.engine.read(records.open_events, server_id):
        await svc.engine.propose(cr.FinishEvents(server_id, when, result, svc.host, details))


# --- os-instance-actions ---------------------------------------------------------------------
async def actions_owner(svc: ComputeService, call: Call, version: Version, server_id: str) -> str:
    """The project whose actions the caller may read on ``server_id`` (404 otherwise): the live
    server's, or from 2.21 a deleted server's (its actions outlive it)."""
    try:
        return (await svc.visible_server(call.auth, server_id))["project_id"]
    except NotFound:
        if version < (2, 21):
            raise
    owner = await svc.engine.read(records.action_owner, server_id)
    if owner is None or not (call.auth.can_read_project(owner) or call.auth.can_write_project(owner)):
        raise NotFound(f"Instance {server_id[:80]} could not be found.")
    return owner


def _time_filter(call: Call, name: str) -> str | None:
    raw = call.query.get(name)
    if raw is None:
        return None
    try:
        return iso(parse_iso(raw), micro=True)  # compute's stored form, so times compare as text
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {name}: {raw[:40]!r} is not a date-time.") from None


async def list_actions(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    await actions_owner(svc, call, version, server_id)
    if version < (2, 58):  # no paging nor filters before 2.58: every action
        rows = await svc.engine.read(functools.partial(records.list_actions, limit=call.max_limit), server_id)
        return {"instanceActions": [records.render_action(r, version) for r in rows[:call.max_limit]]}
    allowed = {"limit", "marker", "changes-since"} | ({"changes-before"} if version >= (2, 66) else set())
    unknown = sorted(set(call.query) - allowed)
    if unknown:
        raise BadRequest(f"Invalid input for query parameters {unknown[0][:40]}: additional properties are not "
                         f"allowed.")
    limit, marker = call.page()
    since, before = _time_filter(call, "changes-since"), _time_filter(call, "changes-before")
    if since and before and before < since:
        raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    rows = await svc.engine.read(functools.partial(records.list_actions, limit=limit, marker=marker, since=since,
                                                   before=before), server_id)
    body: dict[str, Any] = {"instanceActions": [records.render_action(r, version) for r in rows[:limit]]}
    if len(rows) > limit and limit:
        params = "&".join(f"{k}={v}" for k, v in call.query.items() if k not in ("limit", "marker"))
        href = (f"{call.base}/servers/{server_id}/os-instance-actions?limit={limit}&marker={rows[limit - 1]['request_id']}"
                + (f"&{params}" if params else ""))
        body["links"] = [{"rel": "next", "href": href}]
    return body


async def show_action(svc: ComputeService, call: Call, version: Version, server_id: str, request_id: str) -> Any:
    await actions_owner(svc, call, version, server_id)
    action = await svc.engine.read(records.get_action, server_id, request_id)
    if action is None:
        raise NotFound(f"Action {request_id[:80]} not found")
    return {"instanceAction": records.render_action_detail(action, version, call.auth.is_cloud_admin)}


# --- os-server-password ----------------------------------------------------------------------
async def show_password(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    server = await svc.visible_server(call.auth, server_id)
    return {"password": await svc.engine.read(records.server_password, server["id"])}


async def clear_password(svc: ComputeService, call: Call, version: Version, server_id: str) -> Reply:
    """Nova's clear: the stored password goes, so the guest may post a new one."""
    server = await svc.visible_server(call.auth, server_id)
    require(call.auth.can_write_project(server["project_id"]), "os_compute_api:os-server-password:clear")
    await svc.engine.propose(cr.SetPassword(server["id"], "", once=False))
    return Reply(None, 204)


async def guest_password(svc: ComputeService, method: str, network_id: str, source_ip: str, path: str,
                         body: bytes) -> tuple[int, str, bytes] | None:
    """The metadata service's /openstack/<version>/password, as Nova's: a GET answers the password
    the guest posted (empty if none); a POST stores what the guest sends (its password, encrypted
    with its key pair's public key) once, then 409.  None: not this path (the usual answer)."""
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    if len(segments) != 3 or segments[0] != "openstack" or segments[2] != "password" \
            or segments[1] not in PASSWORD_VERSIONS:
        return None
    port = await svc.engine.read(network_store.compute_port_at, network_id, source_ip)
    try:
        server = await svc.get(port["device_id"]) if port else None
    except NotFound:
        server = None
    if server is None or port is None or server["project_id"] != port["project_id"] \
            or port["id"] not in {p["port_id"] for p in server["ports"]}:
        return None  # the usual answer: no server has this address
    if method != "POST":
        return 200, "text/plain", (await svc.engine.read(records.server_password, server["id"])).encode()
    if len(body) > PASSWORD_MAX:
        return 400, "text/plain", b"Request is too large.\n"
    try:
        password = body.decode("utf-8")
    except UnicodeDecodeError:
        return 400, "text/plain", b"The password must be text (base64 of the encrypted password).\n"
    try:
        await svc.engine.propose(cr.SetPassword(server["id"], password, once=True))
    except Conflict:
        return 409, "text/plain", b"The password was posted already.\n"
    except NotFound:
        return None
    return 200, "text/plain", b""


# --- server diagnostics ----------------------------------------------------------------------
async def server_diagnostics(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-server-diagnostics")
    server = await svc.visible_server(call.auth, server_id)
    if not server["host"] or server["status"] == "BUILD":
        raise Conflict(f"Instance {server['id']} has not been scheduled to a host yet or is still building.")
    if (reply := await forwarded(svc, call, server)) is not None:
        return reply
    svc.require_running()
    stats = await guest_stats(svc.driver, server["id"])
    if stats is None:
        raise Conflict(f"Instance {server['id']} has no guest on its host {server['host']}.")
    accel = svc.host_info.accel if svc.host_info else "tcg"
    uptime = None
    if server["launched_at"]:
        uptime = max(0, int(dt.datetime.now(dt.timezone.utc).timestamp() - parse_iso(server["launched_at"])))
    return records.render_diagnostics(stats, version, hypervisor="kvm" if accel == "kvm" else "qemu",
                                      config_drive=bool(server["config_drive"]), uptime=uptime)


# --- os-instance_usage_audit_log ---------------------------------------------------------------
async def list_audit_logs(svc: ComputeService, call: Call, version: Version) -> Any:
    require(call.auth.is_cloud_admin, "os_compute_api:os-instance-usage-audit-log:list")
    hosts = [h["name"] for h in await svc.engine.read(store.compute_hosts)]
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return {"instance_usage_audit_logs": records.render_audit_log(hosts, now)}


async def show_audit_log(svc: ComputeService, call: Call, version: Version, before: str) -> Any:
    """The audit log of the last month before ``before`` ("YYYY-MM-DD HH:MM:SS[.ffffff]", as Nova takes it)."""
    require(call.auth.is_cloud_admin, "os_compute_api:os-instance-usage-audit-log:show")
    try:
        when = dt.datetime.strptime(before, "%Y-%m-%d %H:%M:%S.%f" if "." in before else "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BadRequest(f"Invalid timestamp for date {before[:40]}") from None
    hosts = [h["name"] for h in await svc.engine.read(store.compute_hosts)]
    return {"instance_usage_audit_log": records.render_audit_log(hosts, when)}


def routes(svc: ComputeService) -> list[Route]:
    attach(svc)
    server = "/servers/{server_id}"
    return [
        route(svc, "GET", f"{server}/os-instance-actions", list_actions,
              query=("limit", "marker", "changes-since", "changes-before"),
              summary="A server's instance actions, newest first (a deleted server's from 2.21)"),
        route(svc, "GET", f"{server}/os-instance-actions/{{request_id}}", show_action,
              summary="One instance action with its events"),
        route(svc, "GET", f"{server}/os-server-password", show_password,
              summary="The password the guest posted to the metadata service (encrypted; empty if none)"),
        route(svc, "DELETE", f"{server}/os-server-password", clear_password, status=204),
        route(svc, "GET", f"{server}/diagnostics", server_diagnostics,
              summary="The guest's counters from its hypervisor (admin)"),
        route(svc, "GET", "/os-instance_usage_audit_log", list_audit_logs),
        route(svc, "GET", "/os-instance_usage_audit_log/{before}", show_audit_log),
    ]

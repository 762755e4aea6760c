"""Compute's records: the queries of instance actions (run with ``engine.read``) and the pure views
of instance actions, their events and the instance usage audit log, by microversion.

Nova's rules kept here (nova/api/openstack/compute/instance_actions.py):

| microversion | what changes                                                                |
|--------------|-----------------------------------------------------------------------------|
| 2.21         | actions of a deleted server are still listed and shown                      |
| 2.51         | events shown to the server's readers too (before: to admins only)            |
| 2.58         | ``updated_at``; the list pages (limit, marker) and filters on changes-since  |
| 2.62         | events show ``hostId`` to all, ``host`` to admins                            |
| 2.66         | the list filters on changes-before too                                      |
| 2.84         | events show ``details`` to admins                                           |

``traceback`` is an admin's only, at every microversion.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlite_utils

from cloudbox.compute.views import host_id
from cloudbox.errors import BadRequest

Version = tuple[int, int]

# Nova's action name for each server action (the body's key); an action not named here is not
# recorded (Nova records none for the network proxies' actions, nor for the console output).
ACTION_NAMES = {
    "os-start": "start", "os-stop": "stop", "reboot": "reboot", "pause": "pause", "unpause": "unpause",
    "suspend": "suspend", "resume": "resume", "rebuild": "rebuild", "evacuate": "evacuate",
    "createImage": "createImage", "createBackup": "createBackup", "lock": "lock", "unlock": "unlock",
    "os-resetState": "resetState", "trigger_crash_dump": "trigger_crash_dump", "changePassword": "changePassword",
    "resize": "resize", "confirmResize": "confirmResize", "revertResize": "revertResize", "migrate": "migrate",
    "os-migrateLive": "live-migration", "shelve": "shelve", "shelveOffload": "shelveOffload",
    "unshelve": "unshelve", "rescue": "rescue", "unrescue": "unrescue",
}
# The event the compute host runs for an action (Nova names it after the compute manager's method);
# an action without one (lock, unlock, resetState) is the API's alone.
EVENTS = {
    "create": "compute__do_build_and_run_instance", "delete": "compute_terminate_instance",
    "start": "compute_start_instance", "stop": "compute_stop_instance", "reboot": "compute_reboot_instance",
    "pause": "compute_pause_instance", "unpause": "compute_unpause_instance",
    "suspend": "compute_suspend_instance", "resume": "compute_resume_instance",
    "rebuild": "compute_rebuild_instance", "evacuate": "compute_rebuild_instance",
    "createImage": "compute_snapshot_instance", "createBackup": "compute_backup_instance",
    "trigger_crash_dump": "compute_trigger_crash_dump", "resize": "compute_prep_resize",
    "migrate": "compute_prep_resize", "confirmResize": "compute_confirm_resize",
    "revertResize": "compute_revert_resize", "shelve": "compute_shelve_instance",
    "shelveOffload": "compute_shelve_offload_instance", "unshelve": "compute_unshelve_instance",
    "rescue": "compute_rescue_instance", "unrescue": "compute_unrescue_instance",
    "live-migration": "compute_live_migration",
}
ACTION_ORDER = "ORDER BY start_time DESC, rowid DESC"


# --- queries -------------------------------------------------------------------------------------
def action_owner(db: sqlite_utils.Database, server_id: str) -> str | None:
    """The project of a server's recorded actions (a deleted server keeps them), or None."""
    row = db.execute("SELECT project_id FROM instance_actions WHERE server_id = ? LIMIT 1", [server_id]).fetchone()
    return row[0] if row else None


def list_actions(db: sqlite_utils.Database, server_id: str, *, limit: int, marker: str | None = None,
                 since: str | None = None, before: str | None = None) -> list[dict[str, Any]]:
    """A server's actions, newest first: ``limit`` + 1 rows (the extra one means more), after
    the action ``marker`` (a request id), updated at or after ``since`` and at or before ``before``."""
    clauses, params = ["server_id = ?"], [server_id]
    if marker is not None:
        mark = db.execute("SELECT start_time, rowid FROM instance_actions WHERE server_id = ? AND request_id = ?",
                          [server_id, marker]).fetchone()
        if mark is None:
            raise BadRequest(f"Marker {marker[:80]} could not be found.")
        clauses.append("(start_time, rowid) < (?, ?)")
        params += [mark[0], mark[1]]
    if since is not None:
        clauses.append("updated_at >= ?")
        params.append(since)
    if before is not None:
        clauses.append("updated_at <= ?")
        params.append(before)
    sql = f"SELECT * FROM instance_actions WHERE {' AND '.join(clauses)} {ACTION_ORDER} LIMIT ?"
    return [dict(r) for r in db.query(sql, params + [limit + 1])]


def get_action(db: sqlite_utils.Database, server_id: str, request_id: str) -> dict[str, Any] | None:
    """One action with its ``events`` (newest first), or None."""
    rows = list(db.query("SELECT * FROM instance_actions WHERE server_id = ? AND request_id = ?",
                         [server_id, request_id]))
    if not rows:
        return None
    action = dict(rows[0])
    action["events"] = [dict(r) for r in db.query(
        "SELECT * FROM instance_action_events WHERE server_id = ? AND request_id = ? ORDER BY start_time DESC, event",
        [server_id, request_id])]
    return action


def open_events(db: sqlite_utils.Database, server_id: str) -> int:
    """How many of a server's events have not finished."""
    return int(db.execute("SELECT count(*) FROM instance_action_events WHERE server_id = ? AND finish_time IS NULL",
                          [server_id]).fetchone()[0])


def server_password(db: sqlite_utils.Database, server_id: str) -> str:
    row = db.execute("SELECT password FROM servers WHERE id = ?", [server_id]).fetchone()
    return row[0] if row else ""


# --- views ---------------------------------------------------------------------------------------
def nova_time(stamp: str | None) -> str | None:
    """Compute's stored times as Nova writes an action's: no zone letter (UTC)."""
    return stamp[:-1] if stamp and stamp.endswith("Z") else stamp


def render_action(row: dict[str, Any], version: Version) -> dict[str, Any]:
    body = {"action": row["action"], "instance_uuid": row["server_id"], "request_id": row["request_id"],
            "user_id": row["user_id"], "project_id": row["project_id"], "start_time": nova_time(row["start_time"]),
            "message": row["message"]}
    if version >= (2, 58):
        body["updated_at"] = nova_time(row["updated_at"])
    return body


def render_event(row: dict[str, Any], project_id: str, version: Version, admin: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"event": row["event"], "start_time": nova_time(row["start_time"]),
                            "finish_time": nova_time(row["finish_time"]), "result": row["result"]}
    if admin:
        body["traceback"] = None
    if version >= (2, 62):
        if admin:
            body["host"] = row["host"] or ""
        body["hostId"] = host_id(row["host"], project_id)
    if version >= (2, 84) and admin:
        body["details"] = row["details"]
    return body


def render_action_detail(action: dict[str, Any], version: Version, admin: bool) -> dict[str, Any]:
    """One action as Nova shows it: its events to admins, and to the server's readers from 2.51."""
    body = render_action(action, version)
    if admin or version >= (2, 51):
        body["events"] = [render_event(e, action["project_id"], version, admin) for e in action["events"]]
    return body


def audit_period(before: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The last whole month that ended before ``before`` (Nova's default audit period)."""
    end = dt.datetime(before.year, before.month, 1)
    if end >= before:
        end = dt.datetime(end.year - (end.month == 1), 12 if end.month == 1 else end.month - 1, 1)
    begin = dt.datetime(end.year - (end.month == 1), 12 if end.month == 1 else end.month - 1, 1)
    return begin, end


def render_audit_log(hosts: list[str], before: dt.datetime) -> dict[str, Any]:
    """Nova's instance usage audit log for the last month before ``before``.  cloudbox runs no
    usage audit task (usage is computed from the servers' rows when asked), so no host has a
    log for the period: each is listed as not run, as Nova lists a host whose task did not run."""
    begin, end = audit_period(before)
    done = "ALL" if not hosts else f"0 of {len(hosts)}"
    return {
        "hosts_not_run": sorted(hosts), "log": {}, "num_hosts": len(hosts), "num_hosts_done": 0,
        "num_hosts_not_run": len(hosts), "num_hosts_running": 0, "overall_status": f"{done} hosts done. 0 errors.",
        "period_beginning": str(begin), "period_ending": str(end), "total_errors": 0, "total_instances": 0,
    }


# --- server diagnostics ------------------------------------------------------------------------
NOVA_STATES = {"running": "running", "paused": "paused", "shutoff": "shutdown", "crashed": "crashed",
               "suspended": "suspended"}


def render_diagnostics(stats: Any, version: Version, *, hypervisor: str, config_drive: bool,
                       uptime: int | None) -> dict[str, Any]:
    """A guest's counters (driver.diagnostics.GuestStats) as Nova's libvirt driver reports them:
    a flat dict before 2.48 (memory in KiB), the standard format from 2.48 (memory in MiB)."""
    if version < (2, 48):
        flat: dict[str, Any] = {f"cpu{i}_time": t for i, t in enumerate(stats.cpu_times_ns) if t is not None}
        flat["memory"] = stats.max_memory_kib
        flat.update({f"memory-{k}": v for k, v in sorted(stats.memory_stats.items())})
        for d in stats.disks:
            flat.update({f"{d.device}_read": d.read_bytes, f"{d.device}_read_req": d.read_requests,
                         f"{d.device}_write": d.write_bytes, f"{d.device}_write_req": d.write_requests,
                         f"{d.device}_errors": d.errors})
        for n in stats.nics:
            flat.update({f"{n.device}_rx": n.rx_octets, f"{n.device}_rx_drop": n.rx_drop,
                         f"{n.device}_rx_errors": n.rx_errors, f"{n.device}_rx_packets": n.rx_packets,
                         f"{n.device}_tx": n.tx_octets, f"{n.device}_tx_drop": n.tx_drop,
                         f"{n.device}_tx_errors": n.tx_errors, f"{n.device}_tx_packets": n.tx_packets})
        return flat
    return {
        "state": NOVA_STATES.get(stats.state, "shutdown"), "driver": "libvirt", "hypervisor": hypervisor,
        "hypervisor_os": "linux", "uptime": uptime, "config_drive": config_drive,
        "num_cpus": len(stats.cpu_times_ns), "num_nics": len(stats.nics), "num_disks": len(stats.disks),
        "memory_details": {"maximum": stats.max_memory_kib // 1024, "used": stats.memory_kib // 1024},
        "cpu_details": [{"id": i, "time": t, "utilisation": None} for i, t in enumerate(stats.cpu_times_ns)],
        "nic_details": [{"mac_address": n.mac_address, "rx_octets": n.rx_octets, "rx_errors": n.rx_errors,
                         "rx_drop": n.rx_drop, "rx_packets": n.rx_packets, "rx_rate": None,
                         "tx_octets": n.tx_octets, "tx_errors": n.tx_errors, "tx_drop": n.tx_drop,
                         "tx_packets": n.tx_packets, "tx_rate": None} for n in stats.nics],
        "disk_details": [{"read_bytes": d.read_bytes, "read_requests": d.read_requests,
                          "write_bytes": d.write_bytes, "write_requests": d.write_requests,
                          "errors_count": d.errors} for d in stats.disks],
    }

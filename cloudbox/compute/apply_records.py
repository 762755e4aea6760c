"""Apply of compute's records commands (commands_records.py): instance actions, server passwords and
quota resets."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.compute import commands_records as r
from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.state.migrations import Handler


def _apply_record_actions(db: sqlite_utils.Database, cmd: r.RecordActions) -> Any:
    for server_id in cmd.server_ids:
        db.execute(
            "INSERT OR IGNORE INTO instance_actions (server_id, request_id, action, project_id, user_id, start_time,"
            " updated_at, message) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            [server_id, cmd.request_id, cmd.action, cmd.project_id, cmd.user_id, cmd.start_time, cmd.start_time])
        if cmd.event is None:
            continue
        # An action whose task settled (or whose server went) before this record: its event is over.
        server = db.execute("SELECT task_state, status FROM servers WHERE id = ?", [server_id]).fetchone()
        over = server is None or server[0] is None
        result = None if not over else "Error" if server is not None and server[1] == "ERROR" else "Success"
        db.execute(
            "INSERT OR IGNORE INTO instance_action_events (server_id, request_id, event, start_time, finish_time,"
            " result, host, details) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            [server_id, cmd.request_id, cmd.event, cmd.start_time, cmd.start_time if over else None,
             result, cmd.host])
        if result == "Error":
            db.execute("UPDATE instance_actions SET message = 'Error' WHERE server_id = ? AND request_id = ?",
                       [server_id, cmd.request_id])
    return None


def _apply_finish_events(db: sqlite_utils.Database, cmd: r.FinishEvents) -> Any:
    open_actions = [row[0] for row in db.execute(
        "SELECT DISTINCT request_id FROM instance_action_events WHERE server_id = ? AND finish_time IS NULL",
        [cmd.server_id])]
    db.execute("UPDATE instance_action_events SET finish_time = ?, result = ?, host = coalesce(host, ?),"
               " details = ? WHERE server_id = ? AND finish_time IS NULL",
               [cmd.finish_time, cmd.result, cmd.host, cmd.details, cmd.server_id])
    for request_id in open_actions:
        # Nova marks an action whose event failed with the message "Error".
        db.execute("UPDATE instance_actions SET updated_at = ?, message = CASE WHEN ? = 'Error' THEN 'Error'"
                   " ELSE message END WHERE server_id = ? AND request_id = ?",
                   [cmd.finish_time, cmd.result, cmd.server_id, request_id])
    return len(open_actions)


def _apply_set_password(db: sqlite_utils.Database, cmd: r.SetPassword) -> Any:
    row = db.execute("SELECT password FROM servers WHERE id = ?", [cmd.server_id]).fetchone()
    if row is None:
        raise NotFound(f"Instance {cmd.server_id} could not be found.")
    if cmd.once and row[0]:
        raise Conflict("The server's password was posted already.")
    db.execute("UPDATE servers SET password = ? WHERE id = ?", [cmd.password, cmd.server_id])
    return None


def _apply_reset_quota(db: sqlite_utils.Database, cmd: r.ResetQuota) -> Any:
    if ":" in cmd.project_id:  # quota classes' rows; no project id has a colon
        raise BadRequest(f"{cmd.project_id[:80]} is not a project id.")
    db.execute("DELETE FROM quotas WHERE project_id = ?", [cmd.project_id])
    return None


HANDLERS: dict[type, Handler] = {
    r.RecordActions: _apply_record_actions,
    r.FinishEvents: _apply_finish_events,
    r.SetPassword: _apply_set_password,
    r.ResetQuota: _apply_reset_quota,
}

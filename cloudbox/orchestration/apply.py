"""apply(db, command) of every orchestration command: the state checks decided here, the same
on every node (ids, times and event ids come inside the commands)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.orchestration import commands as c
from cloudbox.orchestration import store as s
from cloudbox.state.migrations import Handler

STACKS, RESOURCES, EVENTS = "orchestration_stacks", "orchestration_resources", "orchestration_events"
PLANS = "orchestration_plans"
PARTS = ("template", "environment", "files", "parameters")


def _event(db: sqlite_utils.Database, stack_id: str, event_id: str, name: str, physical_id: str, kind: str,
           action: str, status: str, reason: str, at: str) -> None:
    seq = list(db.query(f"SELECT event_seq FROM {STACKS} WHERE id = ?", [stack_id]))[0]["event_seq"] + 1
    db[STACKS].update(stack_id, {"event_seq": seq})
    db[EVENTS].insert({"id": event_id, "stack_id": stack_id, "seq": seq, "resource_name": name,
                       "physical_id": physical_id, "resource_type": kind, "action": action, "status": status,
                       "reason": reason, "created_at": at})


def _create_stack(db: sqlite_utils.Database, cmd: c.CreateStack) -> dict[str, Any]:
    row = cmd.row
    if list(db.query(f"SELECT 1 FROM {STACKS} WHERE project_id = ? AND name = ?", [row["project_id"], row["name"]])):
        raise Conflict(f"The Stack ({row['name']}) already exists.")
    db[STACKS].insert(s.encode({**row, "event_seq": 0}))
    _event(db, row["id"], cmd.event_id, row["name"], row["id"], "OS::Heat::Stack", row["action"], row["status"],
           row["status_reason"], row["created_at"])
    return s.must_stack(db, row["id"])


def _stack_state(db: sqlite_utils.Database, cmd: c.StackState) -> dict[str, Any]:
    stack = s.must_stack(db, cmd.id)
    current = f"{stack['action']}_{stack['status']}"
    if cmd.expect and current not in cmd.expect:
        raise Conflict(f"Stack {stack['name']} is {current}, not {' or '.join(cmd.expect)}.")
    changes = {**(cmd.changes or {}), "action": cmd.action, "status": cmd.status, "status_reason": cmd.reason,
               "updated_at": cmd.at}
    db[STACKS].update(cmd.id, s.encode(changes))
    _event(db, cmd.id, cmd.event_id, stack["name"], cmd.id, "OS::Heat::Stack", cmd.action, cmd.status, cmd.reason,
           cmd.at)
    return s.must_stack(db, cmd.id)


def _resource_state(db: sqlite_utils.Database, cmd: c.ResourceState) -> dict[str, Any]:
    s.must_stack(db, cmd.stack_id)
    changes = dict(cmd.changes or {})
    found = list(db.query(f"SELECT id FROM {RESOURCES} WHERE id = ?", [cmd.row_id]))
    if found:
        db[RESOURCES].update(cmd.row_id, s.encode({**changes, "action": cmd.action, "status": cmd.status,
                                                   "status_reason": cmd.reason, "updated_at": cmd.at}))
    else:
        if s.get_resource(db, cmd.stack_id, cmd.name) is not None:
            raise Conflict(f"Stack {cmd.stack_id} already has a resource {cmd.name}.")
        db[RESOURCES].insert(s.encode({
            "id": cmd.row_id, "stack_id": cmd.stack_id, "name": cmd.name, "type": cmd.type, "physical_id": "",
            "properties": {}, "attributes": {}, "data": {}, **changes, "action": cmd.action, "status": cmd.status,
            "status_reason": cmd.reason, "created_at": cmd.at, "updated_at": None}))
    row = s.get_resource(db, cmd.stack_id, cmd.name)
    assert row is not None
    if cmd.event_id:
            _event(db, cmd.stack_id, cmd.event_id, cmd.name, row["physical_id"], cmd.type, cmd.action, cmd.status,
               cmd.reason, cmd.at)
    return row


def _signal(db: sqlite_utils.Database, cmd: c.SignalResource) -> dict[str, Any]:
    row = s.get_resource(db, cmd.stack_id, cmd.name)
    if row is None:
        raise NotFound(f"The Resource ({cmd.name}) could not be found.")
    data = {**row["data"], "signals": [*row["data"].get("signals", []), cmd.signal]}
    db[RESOURCES].update(row["id"], s.encode({"data": data, "updated_at": cmd.at}))
    status = cmd.signal.get("status", "SUCCESS")
    _event(db, cmd.stack_id, cmd.event_id, cmd.name, row["physical_id"], row["type"], "SIGNAL", "COMPLETE",
           f"Signal: status:{status} reason:{cmd.signal.get('reason', '')}", cmd.at)
    return {**row, "data": data}


POLICY_KEEP = 10  # a ScalingPolicy's last signals kept in its row (its events keep the rest)


def _signal_bounded(db: sqlite_utils.Database, cmd: c.SignalBounded) -> dict[str, Any]:
    """SignalResource within its bound (commands.SignalBounded): what apply refuses changes nothing."""
    row = s.get_resource(db, cmd.stack_id, cmd.name)
    if row is None:
        raise NotFound(f"The Resource ({cmd.name}) could not be found.")
    signals = list(row["data"].get("signals", []))
    data = dict(row["data"])
    if row["type"] == "OS::Heat::ScalingPolicy":
        if "scaled_at" in cmd.signal:
            data.update({"scaled_at": cmd.signal["scaled_at"], "idle": 0})
        elif int(data.get("idle", 0)) >= cmd.limit:
            raise BadRequest(f"Request limit exceeded: {cmd.name} took {cmd.limit} signals that scaled nothing "
                             "since it last scaled.")
        else:
            data["idle"] = int(data.get("idle", 0)) + 1
        data["signals"] = [*signals, cmd.signal][-POLICY_KEEP:]
    else:
        same = [i for i, kept in enumerate(signals) if cmd.signal.get("id") and kept.get("id") == cmd.signal["id"]]
        if same:  # Heat's handle overwrites the signal of an id it holds
            signals[same[0]] = cmd.signal
        elif len(signals) >= cmd.limit:
            raise BadRequest(f"Request limit exceeded: {cmd.name} holds {len(signals)} signals, its bound; a "
                             "signal with the id of one it holds replaces that one.")
        else:
            signals.append(cmd.signal)
        data["signals"] = signals
    db[RESOURCES].update(row["id"], s.encode({"data": data, "updated_at": cmd.at}))
    status = cmd.signal.get("status", "SUCCESS")
    _event(db, cmd.stack_id, cmd.event_id, cmd.name, row["physical_id"], row["type"], "SIGNAL", "COMPLETE",
           f"Signal: status:{status} reason:{cmd.signal.get('reason', '')}", cmd.at)
    return {**row, "data": data}


def _remove_resource(db: sqlite_utils.Database, cmd: c.RemoveResource) -> None:
    db.execute(f"DELETE FROM {RESOURCES} WHERE id = ? AND stack_id = ?", [cmd.row_id, cmd.stack_id])


def _purge_stack(db: sqlite_utils.Database, cmd: c.PurgeStack) -> None:
    if s.get_stack(db, cmd.id) is None:
        raise NotFound(f"The Stack ({cmd.id}) could not be found.")
    for table in (EVENTS, RESOURCES, PLANS):
        db.execute(f"DELETE FROM {table} WHERE stack_id = ?", [cmd.id])
    db.execute(f"DELETE FROM {STACKS} WHERE id = ?", [cmd.id])


def _claim_stack(db: sqlite_utils.Database, cmd: c.ClaimStack) -> dict[str, Any]:
    stack = s.must_stack(db, cmd.id)
    if stack["status"] != "IN_PROGRESS" or stack["runner"] != cmd.runner_from:
        raise Conflict(f"Stack {stack['name']} is no longer {cmd.runner_from}'s to take over "
                       f"(runner {stack['runner'] or 'none'}, {stack['action']}_{stack['status']}).")
    db[STACKS].update(cmd.id, {"runner": cmd.runner_to})
    _event(db, cmd.id, cmd.event_id, stack["name"], cmd.id, "OS::Heat::Stack", stack["action"], "IN_PROGRESS",
           f"Stack {stack['action']} continued by node {cmd.runner_to} (node {cmd.runner_from} is down)", cmd.at)
    return s.must_stack(db, cmd.id)


def _create_plan(db: sqlite_utils.Database, cmd: c.CreatePlan) -> dict[str, Any]:
    s.must_stack(db, cmd.row["stack_id"])
    db[PLANS].insert(s.encode(cmd.row))
    plan = s.get_plan(db, cmd.row["id"])
    assert plan is not None
    return plan


def _apply_plan(db: sqlite_utils.Database, cmd: c.ApplyPlan) -> dict[str, Any]:
    plan = s.get_plan(db, cmd.id)
    if plan is None or plan["stack_id"] != cmd.stack_id:
        raise NotFound(f"The plan {cmd.id[:40]} could not be found.")
    stack = s.must_stack(db, cmd.stack_id)
    if stack["status"] == "IN_PROGRESS":
        raise Conflict(f"Stack {stack['name']} is {stack['action']}_IN_PROGRESS: wait for it to end.")
    if stack["event_seq"] != plan["stack_version"]:
        raise Conflict(f"Stack {stack['name']} changed since plan {plan['id']} was made (version "
                       f"{plan['stack_version']}, now {stack['event_seq']}): make a new plan.")
    changes = {**plan["changes"], "previous": {k: stack[k] for k in PARTS}, "runner": cmd.runner,
               "action": "UPDATE", "status": "IN_PROGRESS", "status_reason": "Stack UPDATE started (stored plan)",
               "updated_at": cmd.at}
    db[STACKS].update(cmd.stack_id, s.encode(changes))
    _event(db, cmd.stack_id, cmd.event_id, stack["name"], cmd.stack_id, "OS::Heat::Stack", "UPDATE", "IN_PROGRESS",
           f"Stack UPDATE started (plan {plan['id']})", cmd.at)
    db.execute(f"DELETE FROM {PLANS} WHERE id = ?", [cmd.id])
    return s.must_stack(db, cmd.stack_id)


def _delete_plan(db: sqlite_utils.Database, cmd: c.DeletePlan) -> None:
    if s.get_plan(db, cmd.id) is None:
        raise NotFound(f"The plan {cmd.id[:40]} could not be found.")
    db.execute(f"DELETE FROM {PLANS} WHERE id = ? AND stack_id = ?", [cmd.id, cmd.stack_id])


HANDLERS: dict[type, Handler] = {
    c.ClaimStack: _claim_stack,
    c.CreatePlan: _create_plan,
    c.ApplyPlan: _apply_plan,
    c.DeletePlan: _delete_plan,
    c.CreateStack: _create_stack,
    c.StackState: _stack_state,
    c.ResourceState: _resource_state,
    c.RemoveResource: _remove_resource,
    c.SignalResource: _signal,
    c.SignalBounded: _signal_bounded,
    c.PurgeStack: _purge_stack,
}

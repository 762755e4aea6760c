"""Staging, imports and tasks in the database: the reads the import service makes, and apply for
its commands (the image_tasks table is migration 3 of store.py; the state machine is in imports.py)."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.image import commands as c
from cloudbox.image import imports as i
from cloudbox.image.store import get, must_get
from cloudbox.state.migrations import Handler


# --- reads -----------------------------------------------------------------------------------
def _task(row: dict[str, Any]) -> dict[str, Any]:
    task = dict(row)
    task["input"] = json.loads(task["input"])
    task["result"] = json.loads(task["result"]) if task["result"] is not None else None
    return task


def get_task(db: sqlite_utils.Database, task_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM image_tasks WHERE id = ?", [task_id]))
    return _task(rows[0]) if rows else None


def image_tasks(db: sqlite_utils.Database, image_id: str) -> list[dict[str, Any]]:
    return [_task(r) for r in db.query("SELECT * FROM image_tasks WHERE image_id = ? ORDER BY created_at, id",
                                       [image_id])]


def list_tasks(db: sqlite_utils.Database, owner: str | None, sees_all: bool, filters: dict[str, str],
               sort: tuple[str, str], marker: str | None, limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` + 1 tasks of ``owner`` (every owner's when ``sees_all``), after ``marker``."""
    clauses, params = ["1"], []
    if not sees_all:
        clauses.append("owner = ?")
        params.append(owner or "")
    for column, value in filters.items():
        clauses.append(f"{column} = ?")
        params.append(value)
    key, direction = sort
    beyond, order = (">", "ASC") if direction == "asc" else ("<", "DESC")
    if marker:
        found = get_task(db, marker)
        if found is None or not (sees_all or found["owner"] == owner):
            raise BadRequest(f"Marker task {marker} could not be found.")
        clauses.append(f"({key} {beyond} ? OR ({key} = ? AND id {beyond} ?))")
        params.extend([found[key], found[key], marker])
    return [_task(r) for r in db.query(
        f"SELECT * FROM image_tasks WHERE {' AND '.join(clauses)} ORDER BY {key} {order}, id {order} LIMIT ?",
        [*params, limit + 1])]


# --- apply -----------------------------------------------------------------------------------
def _save_image(db: sqlite_utils.Database, image_id: str, changes: dict[str, Any], properties: dict[str, Any],
                at: str) -> None:
    row = {**changes, "properties": json.dumps(properties, sort_keys=True, separators=(",", ":")), "updated_at": at}
    db["images"].update(image_id, row)


def _set_task(db: sqlite_utils.Database, task_id: str, **changes: Any) -> None:
    if "result" in changes and changes["result"] is not None:
        changes["result"] = json.dumps(changes["result"], sort_keys=True, separators=(",", ":"))
    db["image_tasks"].update(task_id, changes)


def _apply_begin_stage(db: sqlite_utils.Database, cmd: c.BeginStage) -> dict[str, Any]:
    image = must_get(db, cmd.id)
    if image["status"] != "queued":
        raise Conflict(f"Image status transition from {image['status']} to uploading is not allowed: data can be "
                       "staged only for a queued image.")
    _save_image(db, cmd.id, {"status": "uploading", "upload_id": cmd.upload_id, "store_node": cmd.node},
                image["properties"], cmd.at)
    return must_get(db, cmd.id)


def _apply_finish_stage(db: sqlite_utils.Database, cmd: c.FinishStage) -> dict[str, Any]:
    image = must_get(db, cmd.id)
    if image["status"] != "uploading" or image["upload_id"] != cmd.upload_id:
        raise Conflict(f"The staging of image {cmd.id} is no longer current (status {image['status']}).")
    _save_image(db, cmd.id, {}, {**image["properties"], i.STAGE_HOST: image["store_node"]}, cmd.at)
    return must_get(db, cmd.id)


def _apply_start_import(db: sqlite_utils.Database, cmd: c.StartImport) -> dict[str, Any]:
    task = dict(cmd.task)
    image = must_get(db, task["image_id"])
    properties = dict(image["properties"])
    if properties.get(i.IMPORT_TASK):
        raise Conflict(f"Image {image['id']} has an import task in progress ({properties[i.IMPORT_TASK]}).")
    changes: dict[str, Any] = {}
    if cmd.method == "glance-direct":
        if image["status"] != "uploading" or not properties.get(i.STAGE_HOST):
            raise Conflict(f"Image {image['id']} needs to be staged before the glance-direct method can be used "
                           f"(its status is {image['status']}).")
        if not image["disk_format"] or not image["container_format"]:
            raise BadRequest("Properties disk_format, container_format must be set prior to importing data.")
        changes["status"] = "importing"
    elif image["status"] != "active":
        raise Conflict(f"Image {image['id']} is {image['status']}: only active images can be copied.")
    properties.update({i.IMPORT_TASK: task["id"], i.IMPORTING: ",".join(cmd.stores), i.FAILED: ""})
    _save_image(db, image["id"], changes, properties, cmd.at)
    # Finished tasks live out their time here, so that the table stays as small as the recent past.
    db.execute("DELETE FROM image_tasks WHERE expires_at IS NOT NULL AND expires_at < ?", [cmd.at])
    db["image_tasks"].insert({**task, "input": json.dumps(task["input"], sort_keys=True, separators=(",", ":")),
                              "result": None})
    return must_get(db, image["id"])


def _apply_process_task(db: sqlite_utils.Database, cmd: c.ProcessTask) -> dict[str, Any]:
    task = get_task(db, cmd.id)
    if task is None:
        raise NotFound(f"No task with ID {cmd.id}.")
    if task["status"] != "pending":
        raise Conflict(f"Task {cmd.id} is {task['status']}, not pending.")
    _set_task(db, cmd.id, status="processing", updated_at=cmd.at)
    return get_task(db, cmd.id) or {}


def _end(db: sqlite_utils.Database, cmd: c.FinishImport | c.FailImport) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The image (None once deleted) and the task that ``cmd`` ends; the task must still run."""
    task = get_task(db, cmd.task_id)
    if task is None or task["status"] not in ("pending", "processing"):
        raise Conflict(f"Task {cmd.task_id} is no longer running.")
    image = get(db, cmd.image_id)
    if image is not None and image["properties"].get(i.IMPORT_TASK) != cmd.task_id:
        image = None  # the image moved on (deleted and made again with its id): leave it be
    return image, task


def _apply_finish_import(db: sqlite_utils.Database, cmd: c.FinishImport) -> dict[str, Any] | None:
    image, task = _end(db, cmd)
    if image is None:
        _set_task(db, cmd.task_id, status="failure", message="The image was deleted during the import.",
                  updated_at=cmd.at, expires_at=cmd.expires_at)
        return None
    properties = {k: v for k, v in image["properties"].items() if k not in (i.IMPORT_TASK, i.STAGE_HOST)}
    properties[i.IMPORTING] = ""
    changes: dict[str, Any] = {}
    if image["status"] == "importing":
        changes = {"status": "active", "size": cmd.size, "virtual_size": cmd.virtual_size, "checksum": cmd.checksum,
                   "os_hash_algo": cmd.os_hash_algo, "os_hash_value": cmd.os_hash_value, "upload_id": None}
    _save_image(db, image["id"], changes, properties, cmd.at)
    _set_task(db, cmd.task_id, status="success", updated_at=cmd.at, expires_at=cmd.expires_at)
    return must_get(db, image["id"])


def _apply_fail_import(db: sqlite_utils.Database, cmd: c.FailImport) -> dict[str, Any] | None:
    image, task = _end(db, cmd)
    _set_task(db, cmd.task_id, status="failure", message=cmd.message, updated_at=cmd.at, expires_at=cmd.expires_at)
    if image is None:
        return None
    properties = {k: v for k, v in image["properties"].items() if k not in (i.IMPORT_TASK, i.STAGE_HOST)}
    properties.update({i.IMPORTING: "", i.FAILED: ",".join(task["input"].get("backend") or [])})
    changes: dict[str, Any] = {}
    if image["status"] == "importing":
        changes = {"status": "queued", "upload_id": None, "store_node": None}
    _save_image(db, image["id"], changes, properties, cmd.at)
    return must_get(db, image["id"])


HANDLERS: dict[type, Handler] = {
    c.BeginStage: _apply_begin_stage,
    c.FinishStage: _apply_finish_stage,
    c.StartImport: _apply_start_import,
    c.ProcessTask: _apply_process_task,
    c.FinishImport: _apply_finish_import,
    c.FailImport: _apply_fail_import,
}

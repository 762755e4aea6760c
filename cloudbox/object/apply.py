"""apply(db, command) of every object command: existence checks and the container counters,
the same on every node (times and data ids come inside the commands)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.errors import Conflict, NotFound
from cloudbox.object import commands as c
from cloudbox.object import core
from cloudbox.object import store as s
from cloudbox.state.migrations import Handler


def _touch_account(db: sqlite_utils.Database, account: str, at: float) -> dict[str, Any]:
    row = s.get_account(db, account)
    if row is None:
        db["object_accounts"].insert(s.encode({"account": account, "metadata": {}, "created_at": at,
                                               "updated_at": at}))
        row = s.get_account(db, account)
        assert row is not None
    return row


def _must_container(db: sqlite_utils.Database, account: str, name: str) -> dict[str, Any]:
    row = s.get_container(db, account, name)
    if row is None:
        raise NotFound(f"Container {name} not found")
    return row


def _update_account(db: sqlite_utils.Database, cmd: c.UpdateAccount) -> None:
    row = _touch_account(db, cmd.account, cmd.at)
    metadata = core.merged_metadata(row["metadata"], cmd.set, cmd.remove)
    core.check_stored_metadata(metadata, "x-account-meta-")
    db["object_accounts"].update(cmd.account, s.encode({"metadata": metadata, "updated_at": cmd.at}))


def _put_container(db: sqlite_utils.Database, cmd: c.PutContainer) -> bool:
    _touch_account(db, cmd.account, cmd.at)
    row = s.get_container(db, cmd.account, cmd.name)
    metadata = core.merged_metadata(row["metadata"] if row else {}, cmd.set, cmd.remove)
    core.check_stored_metadata(metadata, "x-container-meta-")
    if row is None:
        db["object_containers"].insert(s.encode({
            "account": cmd.account, "name": cmd.name, "metadata": metadata, "object_count": 0, "bytes_used": 0,
            "created_at": cmd.at, "updated_at": cmd.at}))
        return True
    db["object_containers"].update((cmd.account, cmd.name), s.encode({"metadata": metadata, "updated_at": cmd.at}))
    return False


def _update_container(db: sqlite_utils.Database, cmd: c.UpdateContainer) -> None:
    row = _must_container(db, cmd.account, cmd.name)
    metadata = core.merged_metadata(row["metadata"], cmd.set, cmd.remove)
    core.check_stored_metadata(metadata, "x-container-meta-")
    db["object_containers"].update((cmd.account, cmd.name), s.encode({"metadata": metadata, "updated_at": cmd.at}))


def _delete_container(db: sqlite_utils.Database, cmd: c.DeleteContainer) -> None:
    row = _must_container(db, cmd.account, cmd.name)
    if row["object_count"]:
        raise Conflict("There was a conflict when trying to complete your request.")
    db["object_containers"].delete((cmd.account, cmd.name))


def _count(db: sqlite_utils.Database, account: str, container: str, objects: int, size: int) -> None:
    db.execute("UPDATE object_containers SET object_count = object_count + ?, bytes_used = bytes_used + ?"
               " WHERE account = ? AND name = ?", [objects, size, account, container])


def version_name(name: str, last_modified: float) -> str:
    """Where a version of ``name`` goes in a versions container (Swift's legacy naming: the
    versions of one name sort together, oldest first)."""
    return f"{len(name.encode()):03x}{name}/{last_modified:016.5f}"


def _move(db: sqlite_utils.Database, row: dict[str, Any], container: str, name: str) -> None:
    """Move an object's row (its bytes stay: same data id) to another container and name."""
    db["object_objects"].delete((row["account"], row["container"], row["name"]))
    _count(db, row["account"], row["container"], -1, -row["size"])
    replaced = s.get_object(db, row["account"], container, name)
    if replaced is not None:  # a version of the same second: the newer wins
        db["object_objects"].delete((row["account"], container, name))
        _count(db, row["account"], container, -1, -replaced["size"])
    db["object_objects"].insert(s.encode({**row, "container": container, "name": name}))
    _count(db, row["account"], container, 1, row["size"])


def _put_object(db: sqlite_utils.Database, cmd: c.PutObject) -> str | None:
    row = dict(cmd.row)
    container = _must_container(db, row["account"], row["container"])
    old = s.get_object(db, row["account"], row["container"], row["name"])
    core.check_quota(container["metadata"], container["bytes_used"], container["object_count"],
                     row["size"] - (old["size"] if old and not cmd.archive else 0), 0 if old and not cmd.archive else 1)
    if old is not None and cmd.archive and s.get_container(db, row["account"], cmd.archive) is not None:
        _move(db, old, cmd.archive, version_name(old["name"], old["last_modified"]))
        old = None
    if old is not None:
        db["object_objects"].delete((row["account"], row["container"], row["name"]))
        _count(db, row["account"], row["container"], -1, -old["size"])
    db["object_objects"].insert(s.encode(row))
    _count(db, row["account"], row["container"], 1, row["size"])
    return old["data_id"] if old is not None and old["data_id"] != row["data_id"] else None


def _update_object(db: sqlite_utils.Database, cmd: c.UpdateObject) -> None:
    row = s.get_object(db, cmd.account, cmd.container, cmd.name)
    if row is None:
        raise NotFound("The resource could not be found.")
    headers = {k: v for k, v in {**row["headers"], **cmd.headers}.items() if v != ""}
    delete_at = int(headers["x-delete-at"]) if headers.get("x-delete-at") else None
    db["object_objects"].update((cmd.account, cmd.container, cmd.name),
                                s.encode({"metadata": dict(cmd.metadata), "headers": headers, "delete_at": delete_at}))


def _delete_object(db: sqlite_utils.Database, cmd: c.DeleteObject) -> str | None:
    row = s.get_object(db, cmd.account, cmd.container, cmd.name)
    if row is None or (cmd.data_id and row["data_id"] != cmd.data_id):
        raise NotFound("The resource could not be found.")
    archive = s.get_container(db, cmd.account, cmd.archive) if cmd.archive else None
    if archive is not None and not cmd.restore:  # history mode: the deleted object is kept as a version
        _move(db, row, cmd.archive, version_name(row["name"], row["last_modified"]))
        return None
    db["object_objects"].delete((cmd.account, cmd.container, cmd.name))
    _count(db, cmd.account, cmd.container, -1, -row["size"])
    if archive is not None:  # stack mode: the newest version comes back
        newest = s.newest_version(db, cmd.account, cmd.archive, f"{len(cmd.name.encode()):03x}{cmd.name}/")
        if newest is not None:
            _move(db, newest, cmd.container, cmd.name)
    return row["data_id"]


def _place_object(db: sqlite_utils.Database, cmd: c.PlaceObject) -> bool:
    row = s.get_object(db, cmd.account, cmd.container, cmd.name)
    if row is None or row["data_id"] != cmd.data_id or cmd.node_id in row["nodes"]:
        return False
    db["object_objects"].update((cmd.account, cmd.container, cmd.name),
                                s.encode({"nodes": sorted({*row["nodes"], cmd.node_id})}))
    return True


HANDLERS: dict[type, Handler] = {
    c.PlaceObject: _place_object,
    c.UpdateAccount: _update_account,
    c.PutContainer: _put_container,
    c.UpdateContainer: _update_container,
    c.DeleteContainer: _delete_container,
    c.PutObject: _put_object,
    c.UpdateObject: _update_object,
    c.DeleteObject: _delete_object,
}

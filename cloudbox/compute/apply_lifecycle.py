"""Apply of compute's lifecycle commands (commands_lifecycle.py) and the queries of migrations."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.compute import commands_lifecycle as c
from cloudbox.compute import store
from cloudbox.errors import Conflict
from cloudbox.state.migrations import Handler

RESIZE_STATUSES = ("ACTIVE", "SHUTOFF")
VM_STATE_OF = {"ACTIVE": "active", "SHUTOFF": "stopped"}


def growth(old: dict[str, Any], new: dict[str, Any]) -> dict[str, int]:
    """The quota a resize from flavor ``old`` to ``new`` takes more of (cores, ram)."""
    more = {"cores": new["vcpus"] - old["vcpus"], "ram": new["ram"] - old["ram"]}
    return {k: v for k, v in more.items() if v > 0}


def _flavor_number(db: sqlite_utils.Database, flavor_id: str) -> int | None:
    """Nova shows a migration's flavors by their internal integer id: ours is the flavor's rowid."""
    row = store.one(db, "SELECT rowid AS n FROM flavors WHERE id = ?", [flavor_id])
    return row["n"] if row else None


def _apply_start_resize(db: sqlite_utils.Database, cmd: c.StartResize) -> dict[str, Any]:
    server = store.must_server(db, cmd.server_id)
    if server["task_state"] is not None:
        raise Conflict(f"Cannot 'resize' instance {server['id']} while it is in task_state {server['task_state']}")
    if server["status"] not in RESIZE_STATUSES:
        raise Conflict(f"Cannot 'resize' instance {server['id']} while it is in vm_state {server['vm_state']}")
    old = server["flavor"]
    store.check_quota(store.project_usage(db, server["project_id"]), growth(old, cmd.flavor), cmd.quota)
    m = cmd.migration
    migration_id = db["migrations"].insert({
        "uuid": m["uuid"], "server_id": server["id"], "project_id": server["project_id"], "user_id": m["user_id"],
        "migration_type": m["migration_type"], "status": "pre-migrating", "source_compute": server["host"],
        "dest_compute": m["dest_compute"], "dest_host": m["dest_host"],
        "old_instance_type_id": _flavor_number(db, old["id"]),
        "new_instance_type_id": _flavor_number(db, cmd.flavor["id"]),
        "created_at": cmd.at, "updated_at": None,
    }).last_pk
    lifecycle = {"old_flavor": old, "old_vm_state": VM_STATE_OF[server["status"]], "migration_id": migration_id,
                 "source_host": server["host"]}
    db["servers"].update(server["id"], store.encode({
        "flavor": cmd.flavor, "lifecycle": lifecycle, "status": "RESIZE", "task_state": "resize_prep",
        "updated_at": cmd.at}))
    return store.must_server(db, server["id"])


def _apply_update_migration(db: sqlite_utils.Database, cmd: c.UpdateMigration) -> Any:
    if store.one(db, "SELECT id FROM migrations WHERE id = ?", [cmd.id]) is not None:
        db["migrations"].update(cmd.id, dict(cmd.changes))
    return None


HANDLERS: dict[type, Handler] = {
    c.StartResize: _apply_start_resize,
    c.UpdateMigration: _apply_update_migration,
}


# --- queries ------------------------------------------------------------------------------------
def get_migration(db: sqlite_utils.Database, migration_id: int) -> dict[str, Any] | None:
    return store.one(db, "SELECT * FROM migrations WHERE id = ?", [migration_id])


def list_migrations(db: sqlite_utils.Database, filters: dict[str, Any], marker: str | None,
                    limit: int) -> list[dict[str, Any]]:
    """Migrations newest first (Nova's created_at desc, id desc), filtered by equal columns
    (``filters``: column → value; "host" matches either end; "changes-since"/"changes-before"
    bound updated_at or created_at), one page after ``marker`` (a migration uuid)."""
    where, params = [], []
    for key, value in filters.items():
        if key == "host":
            where.append("(source_compute = ? OR dest_compute = ?)")
            params += [value, value]
        elif key == "changes-since":
            where.append("COALESCE(updated_at, created_at) >= ?")
            params.append(value)
        elif key == "changes-before":
            where.append("COALESCE(updated_at, created_at) <= ?")
            params.append(value)
        elif key == "status" and isinstance(value, (list, tuple)):
            where.append(f"status IN ({', '.join('?' for _ in value)})")
            params += list(value)
        else:
            where.append(f"{key} = ?")
            params.append(value)
    if marker is not None:
        at = store.one(db, "SELECT created_at, id FROM migrations WHERE uuid = ?", [marker])
        if at is None:
            return []
        where.append("(created_at < ? OR (created_at = ? AND id < ?))")
        params += [at["created_at"], at["created_at"], at["id"]]
    sql = "SELECT * FROM migrations" + (f" WHERE {' AND '.join(where)}" if where else "")
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    return [dict(r) for r in db.query(sql, params + [limit])]


def migration_marker_exists(db: sqlite_utils.Database, marker: str) -> bool:
    return store.one(db, "SELECT id FROM migrations WHERE uuid = ?", [marker]) is not None

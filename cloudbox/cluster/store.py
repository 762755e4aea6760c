"""Cluster tables: the members of the cloud and the join tokens.

``cluster_nodes`` holds one row per node (a single node has its own row too):
where its API and tunnel endpoint are and whether it runs an etcd member.
Whether a node is *up* is not state: the cluster service knows it from etcd
leases (``ClusterService.up_nodes``).  ``heartbeat_at`` and ``capacity`` only
moved with the heartbeat commands of logs written before that; they are kept so
those logs replay.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from cloudbox.clock import parse_iso
from cloudbox.cluster import commands as c
from cloudbox.errors import Conflict, NotFound
from cloudbox.state.db import insert_row
from cloudbox.state.migrations import Handler, StoreSpec

MIGRATIONS = [
    """
    CREATE TABLE cluster_nodes (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, api_url TEXT NOT NULL, peer_url TEXT NOT NULL,
        tunnel_ip TEXT NOT NULL, etcd_member INTEGER NOT NULL DEFAULT 0,
        joined_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL, capacity TEXT NOT NULL DEFAULT '{}');
    CREATE TABLE cluster_join_tokens (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL,
        created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT);
    """,
    # The peer URL of a node's etcd member ('' for clients): nodes may share an address.
    "ALTER TABLE cluster_nodes ADD COLUMN etcd_peer_url TEXT NOT NULL DEFAULT ''",
    # Command schemas the cluster finished upgrading to (cluster.upgrade.finish).
    """
    CREATE TABLE cluster_upgrades (
        schema INTEGER PRIMARY KEY, at TEXT NOT NULL, forced_over TEXT NOT NULL DEFAULT '[]');
    """,
]


def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    out["capacity"] = json.loads(out["capacity"])
    out["etcd_member"] = bool(out["etcd_member"])
    return out


def nodes(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every member, by name."""
    return [_decode(r) for r in db.query("SELECT * FROM cluster_nodes ORDER BY name")]  # type: ignore[misc]


def get_node(db: sqlite_utils.Database, key: str) -> dict[str, Any]:
    """A member by id or name."""
    rows = list(db.query("SELECT * FROM cluster_nodes WHERE id = ? OR name = ?", [key, key]))
    if not rows:
        raise NotFound(f"No cluster node {key!r}.")
    return _decode(rows[0])  # type: ignore[return-value]


def token(db: sqlite_utils.Database, token_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM cluster_join_tokens WHERE id = ?", [token_id]))
    return rows[0] if rows else None


def cluster_schema(db: sqlite_utils.Database) -> int:
    """The command schema the cluster finished upgrading to (1: never upgraded)."""
    row = db.execute("SELECT max(schema) FROM cluster_upgrades").fetchone()
    return int(row[0]) if row and row[0] is not None else 1


def _insert_node(db: sqlite_utils.Database, row: dict[str, Any], *, replace: bool) -> None:
    values = {**row, "capacity": json.dumps(row.get("capacity") or {}, sort_keys=True),
              "etcd_member": int(bool(row.get("etcd_member")))}
    clash = list(db.query("SELECT id FROM cluster_nodes WHERE name = ? AND id != ?", [row["name"], row["id"]]))
    if clash:
        raise Conflict(f"A cluster node named {row['name']!r} exists already.")
    if not replace and list(db.query("SELECT id FROM cluster_nodes WHERE id = ?", [row["id"]])):
        raise Conflict(f"Cluster node {row['id']} exists already.")
    insert_row(db.conn, "cluster_nodes", values, replace=True)


def _apply_register_node(db: sqlite_utils.Database, cmd: c.RegisterNode) -> Any:
    _insert_node(db, cmd.row, replace=True)
    return get_node(db, cmd.row["id"])


def _apply_create_join_token(db: sqlite_utils.Database, cmd: c.CreateJoinToken) -> Any:
    conn = db.conn
    if conn.execute("SELECT 1 FROM cluster_nodes WHERE name = ?", (cmd.name,)).fetchone():
        raise Conflict(f"A cluster node named {cmd.name!r} exists already.")
    row = {"id": cmd.id, "name": cmd.name, "secret_hash": cmd.secret_hash,
           "created_at": cmd.created_at, "expires_at": cmd.expires_at, "used_at": None}
    insert_row(conn, "cluster_join_tokens", row)
    return row  # the row as written (read back, it is the same)


def _apply_consume_join_token(db: sqlite_utils.Database, cmd: c.ConsumeJoinToken) -> Any:
    row = token(db, cmd.id)
    if row is None:
        raise Conflict("The join token is unknown to this cluster.")
    if row["used_at"] is not None:
        raise Conflict("The join token was used already; ask for a new one with `cloudbox cluster add`.")
    if parse_iso(cmd.at) > parse_iso(row["expires_at"]):
        raise Conflict("The join token has expired; ask for a new one with `cloudbox cluster add`.")
    if cmd.row["name"] != row["name"]:
        raise Conflict(f"The join token is for node {row['name']!r}, not {cmd.row['name']!r}.")
    db.execute("UPDATE cluster_join_tokens SET used_at = ? WHERE id = ?", [cmd.at, cmd.id])
    _insert_node(db, cmd.row, replace=False)
    return get_node(db, cmd.row["id"])


def _apply_heartbeat(db: sqlite_utils.Database, cmd: c.Heartbeat) -> Any:
    """No longer proposed (liveness lives in etcd leases); logs written before still replay."""
    found = db.execute("UPDATE cluster_nodes SET heartbeat_at = ?, capacity = ? WHERE id = ?",
                       [cmd.at, json.dumps(cmd.capacity, sort_keys=True), cmd.node_id]).rowcount
    if not found:
        raise NotFound(f"No cluster node {cmd.node_id}.")
    return None


def _apply_remove_node(db: sqlite_utils.Database, cmd: c.RemoveNode) -> Any:
    node = get_node(db, cmd.node_id)
    db.execute("DELETE FROM cluster_nodes WHERE id = ?", [cmd.node_id])
    return node


def _apply_finish_upgrade(db: sqlite_utils.Database, cmd: c.FinishUpgrade) -> Any:
    """Idempotent: the first record of a schema stands (two nodes may finish the same upgrade)."""
    db.execute("INSERT OR IGNORE INTO cluster_upgrades (schema, at, forced_over) VALUES (?, ?, ?)",
               [cmd.schema, cmd.at, json.dumps(list(cmd.forced_over))])
    return cluster_schema(db)


HANDLERS: dict[type, Handler] = {
    c.RegisterNode: _apply_register_node,
    c.CreateJoinToken: _apply_create_join_token,
    c.ConsumeJoinToken: _apply_consume_join_token,
    c.Heartbeat: _apply_heartbeat,
    c.RemoveNode: _apply_remove_node,
    c.FinishUpgrade: _apply_finish_upgrade,
}


STORE = StoreSpec("cluster", MIGRATIONS, c, (__name__,))

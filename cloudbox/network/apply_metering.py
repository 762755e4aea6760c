"""apply() of metering labels and their rules (Neutron's metering API; what the rules count is
not measured: see DESIGN.md)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cloudbox.errors import Conflict
from cloudbox.network import commands as c
from cloudbox.network import core_pools
from cloudbox.network.store import get, insert, must_get, rows
from cloudbox.state.migrations import Handler


def _apply_create_label(db: sqlite_utils.Database, cmd: c.CreateMeteringLabel) -> dict[str, Any]:
    if get(db, "metering_labels", cmd.row["id"]):
        raise Conflict(f"Metering label {cmd.row['id']} exists already.")
    insert(db, "metering_labels", cmd.row)
    return must_get(db, "metering_labels", cmd.row["id"])


def _apply_delete_label(db: sqlite_utils.Database, cmd: c.DeleteMeteringLabel) -> None:
    must_get(db, "metering_labels", cmd.id)
    db.execute("DELETE FROM metering_labels WHERE id = ?", [cmd.id])  # its rules cascade


def _apply_create_rule(db: sqlite_utils.Database, cmd: c.CreateMeteringLabelRule) -> dict[str, Any]:
    row = cmd.row
    must_get(db, "metering_labels", row["metering_label_id"])
    if get(db, "metering_label_rules", row["id"]):
        raise Conflict(f"Metering label rule {row['id']} exists already.")
    for other in rows(db, "SELECT * FROM metering_label_rules WHERE metering_label_id = ?", [row["metering_label_id"]]):
        if core_pools.metering_overlap(row, other):
            raise Conflict(f"Metering label rule with remote_ip_prefix {row['remote_ip_prefix']} (source "
                           f"{row['source_ip_prefix']}, destination {row['destination_ip_prefix']}) overlaps "
                           f"rule {other['id']} of label {row['metering_label_id']}.")
    insert(db, "metering_label_rules", row)
    return must_get(db, "metering_label_rules", row["id"])


def _apply_delete_rule(db: sqlite_utils.Database, cmd: c.DeleteMeteringLabelRule) -> None:
    must_get(db, "metering_label_rules", cmd.id)
    db.execute("DELETE FROM metering_label_rules WHERE id = ?", [cmd.id])


HANDLERS: dict[type, Handler] = {
    c.CreateMeteringLabel: _apply_create_label,
    c.DeleteMeteringLabel: _apply_delete_label,
    c.CreateMeteringLabelRule: _apply_create_rule,
    c.DeleteMeteringLabelRule: _apply_delete_rule,
}

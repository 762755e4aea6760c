"""Apply and queries of Keystone's other resources: project tags, credentials (EC2 ones among
them), policies, endpoint groups, OAuth1 consumers and domain configurations.  Their rows are
created, changed and deleted by the generic commands of ``store.py``; what needs more than a
row's worth of care lives here."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from cloudbox.errors import BadRequest, NotFound
from cloudbox.identity import commands as c
from cloudbox.identity.store import decode_row, get, must_get, page
from cloudbox.state.migrations import Handler

MAX_PROJECT_TAGS = 80  # Keystone's limit


def _apply_tag_project(db: sqlite_utils.Database, cmd: c.TagProject) -> Any:
    """One tag added or removed in apply, so two requests tagging at once both count."""
    project = must_get(db, "project", cmd.project_id)
    tags: list[str] = list(project["tags"])
    if cmd.add and cmd.tag not in tags:
        if len(tags) >= MAX_PROJECT_TAGS:
            raise BadRequest(f"A project holds at most {MAX_PROJECT_TAGS} tags.")
        tags.append(cmd.tag)
    elif not cmd.add:
        if cmd.tag not in tags:
            raise NotFound(f"Could not find tag: {cmd.tag}.")
        tags.remove(cmd.tag)
    db["projects"].update(cmd.project_id, {"tags": json.dumps(tags, sort_keys=True)})
    return tags


HANDLERS: dict[type, Handler] = {
    c.TagProject: _apply_tag_project,
}


# --- queries -------------------------------------------------------------------------------
def credentials_page(db: sqlite_utils.Database, filters: dict[str, Any], *, marker: str | None,
                     limit: int) -> list[dict[str, Any]]:
    """One page of credentials (``limit`` + 1) by user and type, in id order."""
    return page(db, "credential", filters, marker=marker, limit=limit)


def ec2_by_access(db: sqlite_utils.Database, access: str, credential_id: str) -> dict[str, Any] | None:
    """The EC2 credential of an access key: the one whose id is the key's hash, else (its blob
    was changed to another key, which Keystone allows) the one whose blob holds the key."""
    row = get(db, "credential", credential_id)
    if row is not None and row["type"] == "ec2" and _access(row) == access:
        return row
    rows = db.query("SELECT * FROM credentials WHERE type = 'ec2' AND json_valid(blob)"
                    " AND json_extract(blob, '$.access') = ? ORDER BY id LIMIT 1", [access])
    return next((decode_row(r) for r in rows), None)


def _access(row: dict[str, Any]) -> str | None:
    try:
        blob = json.loads(row["blob"])
    except ValueError:
        return None
    return blob.get("access") if isinstance(blob, dict) else None


def endpoints_matching(db: sqlite_utils.Database, filters: dict[str, str]) -> list[dict[str, Any]]:
    """The endpoints an endpoint group's filters select (every filter must match)."""
    clauses = [f"{column} = ?" for column in sorted(filters)]
    where = " AND ".join(clauses) or "1"
    params = [filters[column] for column in sorted(filters)]
    return [decode_row(r) for r in db.query(f"SELECT * FROM endpoints WHERE {where} ORDER BY id", params)]  # type: ignore[misc]

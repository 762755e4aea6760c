"""How orchestration rows become Heat's JSON (pure)."""

from __future__ import annotations

from typing import Any


def stack_url(base: str, stack: dict[str, Any]) -> str:
    return f"{base}/{stack['project_id']}/stacks/{stack['name']}/{stack['id']}"


def status(row: dict[str, Any]) -> str:
    return f"{row['action']}_{row['status']}"


def stack(base: str, row: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"], "stack_name": row["name"], "description": row.get("description") or "",
        "creation_time": row["created_at"], "updated_time": row.get("updated_at"), "deletion_time": None,
        "stack_status": status(row), "stack_status_reason": row["status_reason"],
        "links": [{"href": stack_url(base, row), "rel": "self"}], "project": row["project_id"],
        "stack_owner": None, "stack_user_project_id": row["project_id"], "parent": row.get("parent_id"),
        "tags": row.get("tags") or None,
    }
    if detail:
        parameters = dict(row.get("shown_parameters") or {})
        parameters.update({"OS::stack_name": row["name"], "OS::stack_id": row["id"],
                           "OS::project_id": row["project_id"]})
        out.update({
            "parameters": parameters, "disable_rollback": bool(row["disable_rollback"]),
            "timeout_mins": row.get("timeout_mins"), "template_description": row.get("description") or "",
            "capabilities": [], "notification_topics": [],
        })
        if row.get("outputs") is not None:
            out["outputs"] = row["outputs"]
    return out


def preview(base: str, stack_row: dict[str, Any], resources: list[dict[str, Any]]) -> dict[str, Any]:
    out = stack(base, {**stack_row, "action": "INIT", "status": "COMPLETE", "status_reason": ""}, detail=True)
    for key in ("stack_status", "stack_status_reason", "updated_time", "deletion_time"):
        out.pop(key, None)
    out["resources"] = [{
        **r, "logical_resource_id": r["resource_name"], "physical_resource_id": "",
        "resource_action": "INIT", "resource_status": "COMPLETE", "resource_status_reason": "",
        "resource_identity": {"stack_name": stack_row["name"], "stack_id": stack_row["id"],
                              "tenant": stack_row["project_id"], "path": f"/resources/{r['resource_name']}"},
        "stack_name": stack_row["name"], "stack_identity": {"stack_name": stack_row["name"],
                                                            "stack_id": stack_row["id"],
                                                            "tenant": stack_row["project_id"], "path": ""},
        "updated_time": stack_row["created_at"],
    } for r in resources]
    return out


def resource(base: str, stack_row: dict[str, Any], row: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    url = stack_url(base, stack_row)
    out: dict[str, Any] = {
        "resource_name": row["name"], "logical_resource_id": row["name"], "physical_resource_id": row["physical_id"],
        "resource_type": row["type"], "resource_status": status(row), "resource_status_reason": row["status_reason"],
        "creation_time": row["created_at"], "updated_time": row.get("updated_at") or row["created_at"],
        "required_by": row.get("required_by", []),
        "links": [{"href": f"{url}/resources/{row['name']}", "rel": "self"}, {"href": url, "rel": "stack"}],
    }
    if detail:
        attributes = {k: v for k, v in row["attributes"].items() if k != "show"}
        out.update({"attributes": attributes, "description": "", "metadata": {}})
    return out


def event(base: str, stack_row: dict[str, Any], row: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    url = stack_url(base, stack_row)
    resource_url = f"{url}/resources/{row['resource_name']}"
    out: dict[str, Any] = {
        "id": row["id"], "event_time": row["created_at"], "resource_name": row["resource_name"],
        "logical_resource_id": row["resource_name"], "physical_resource_id": row["physical_id"],
        "resource_status": f"{row['action']}_{row['status']}", "resource_status_reason": row["reason"],
        "links": [{"href": f"{resource_url}/events/{row['id']}", "rel": "self"},
                  {"href": resource_url, "rel": "resource"}, {"href": url, "rel": "stack"}],
    }
    if detail:
        out.update({"resource_type": row["resource_type"], "resource_properties": {}})
    return out

"""Interoperable image import and tasks (Glance 2.6+), pure: the methods and stores this cloud
offers, import requests checked, and the JSON shapes of tasks and the discovery documents.

An import moves through these states (the image's status, and the task Glance shows for it):

| method        | request                     | image                       | task                          |
|---------------|-----------------------------|-----------------------------|-------------------------------|
| glance-direct | PUT /images/{id}/stage      | queued → uploading          | (none yet)                    |
| glance-direct | POST /images/{id}/import    | uploading → importing       | pending → processing          |
| glance-direct | data checked and stored     | importing → active          | success                       |
| glance-direct | data refused, node restarts | importing → queued          | failure (os_glance_failed_import) |
| copy-image    | POST /images/{id}/import    | active (stays)              | pending → success             |

The cloud has one store: image data is kept by the node that received it and copied to the
other nodes that boot it. So copy-image always finds the image in every store already.
web-download and glance-download are off: a node fetches nothing from outside networks.
"""

from __future__ import annotations

from typing import Any, Mapping

from cloudbox.errors import BadRequest, Conflict
from cloudbox.image.core import STORE_ID

STORES = ({"id": STORE_ID, "default": True,
           "description": "Image data on the cloud's nodes: kept by the node that received it, copied to "
                          "the nodes that boot it"},)
METHODS = ("glance-direct", "copy-image")
REFUSED_METHODS = {
    "web-download": "the cloud's nodes do not reach outside networks",
    "glance-download": "the cloud's nodes do not reach outside networks (nor another region's image service)",
}
TASK_TYPE = "api_image_import"
TASK_TTL_SECONDS = 48 * 3600  # Glance's task_time_to_live: finished tasks are kept this long
TASK_STATUSES = ("pending", "processing", "success", "failure")
TASK_SORT_KEYS = ("created_at", "updated_at", "id", "type", "status")
# The image's own properties that say how its import goes (reserved: users cannot set them).
IMPORT_TASK, IMPORTING, FAILED, STAGE_HOST = ("os_glance_import_task", "os_glance_importing_to_stores",
                                              "os_glance_failed_import", "os_glance_stage_host")


def info_import() -> dict[str, Any]:
    refused = "; ".join(f"{name} is off: {why}" for name, why in REFUSED_METHODS.items())
    return {"import-methods": {"description": f"Import methods available. {refused}.", "type": "array",
                               "value": list(METHODS)}}


def info_stores() -> dict[str, Any]:
    return {"stores": [dict(store) for store in STORES]}


def import_request(body: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(method, stores) of an import request (already shaped by models.IMPORT); refused methods
    and unknown stores are refused here, before anything changes."""
    method = body["method"]["name"]
    if method in REFUSED_METHODS:
        raise BadRequest(f"Import method {method} is not enabled on this cloud: {REFUSED_METHODS[method]}. "
                         f"Enabled methods: {', '.join(METHODS)}.")
    if method not in METHODS:
        raise BadRequest(f"Unknown import method name {method!r}; this cloud offers {', '.join(METHODS)}.")
    stores = body.get("stores")
    if stores is not None and body.get("all_stores"):
        raise BadRequest("all_stores cannot be combined with stores: name the stores, or ask for all of them.")
    for store in stores or ():
        if store not in {s["id"] for s in STORES}:
            raise Conflict(f"Unknown store {store!r}; this cloud's stores are "
                           f"{', '.join(s['id'] for s in STORES)}.")
    wanted = tuple(stores) if stores else tuple(s["id"] for s in STORES)
    return method, wanted


def import_targets(method: str, wanted: tuple[str, ...], image: Mapping[str, Any]) -> tuple[str, ...]:
    """The stores an import still has to fill: copy-image skips those that hold the image (all)."""
    if method == "copy-image":
        held = set(image_stores(image))
        return tuple(s for s in wanted if s not in held)
    return wanted


def image_stores(image: Mapping[str, Any]) -> list[str]:
    return [STORE_ID] if image["status"] in ("active", "deactivated") else []


def task_row(*, id: str, image_id: str, body: Mapping[str, Any], stores: tuple[str, ...], ctx: Any,
             request_id: str, at: str) -> dict[str, Any]:
    return {
        "id": id, "type": TASK_TYPE, "status": "pending", "owner": ctx.project_id,
        "user_id": ctx.user_id, "request_id": request_id, "image_id": image_id,
        "input": {"image_id": image_id, "import_req": dict(body), "backend": list(stores)},
        "result": None, "message": "", "created_at": at, "updated_at": at, "expires_at": None,
    }


# --- JSON shapes ----------------------------------------------------------------------------
def render_task(task: Mapping[str, Any], *, whole: bool = True) -> dict[str, Any]:
    """A task as Glance shows it; a list leaves out its input, result and message."""
    body = {
        "id": task["id"], "type": task["type"], "status": task["status"], "owner": task["owner"],
        "created_at": task["created_at"], "updated_at": task["updated_at"], "expires_at": task["expires_at"],
        "self": f"/v2/tasks/{task['id']}", "schema": "/v2/schemas/task",
    }
    if whole:
        body.update({"input": task["input"], "result": task["result"], "message": task["message"],
                     "image_id": task["image_id"], "request_id": task["request_id"], "user_id": task["user_id"]})
    return body


def task_schema() -> dict[str, Any]:
    string = {"type": "string"}
    return {
        "name": "task",
        "properties": {
            "id": {**string, "description": "An identifier for the task"},
            "type": {**string, "enum": ["import", TASK_TYPE],
                     "description": "The type of task represented by this content"},
            "status": {**string, "enum": list(TASK_STATUSES), "description": "The current status of this task"},
            "input": {"type": "object", "description": "The parameters required by task, JSON blob"},
            "result": {"type": ["null", "object"], "description": "The result of current task, JSON blob"},
            "owner": {**string, "description": "An identifier for the owner of this task"},
            "message": {**string, "description": "Human-readable informative message only included when appropriate "
                                                 "(usually on failure)"},
            "image_id": {**string, "readOnly": True, "description": "Image associated with the task"},
            "request_id": {**string, "readOnly": True, "description": "Request ID associated with the task"},
            "user_id": {**string, "readOnly": True, "description": "User associated with the task"},
            "expires_at": {"type": ["null", "string"], "description": "Datetime when this resource would be "
                                                                      "subject to removal"},
            "created_at": {**string, "description": "Datetime when this resource was created"},
            "updated_at": {**string, "description": "Datetime when this resource was updated"},
            "self": {**string, "readOnly": True},
            "schema": {**string, "readOnly": True},
        },
        "links": [{"rel": "self", "href": "{self}"}, {"rel": "describedby", "href": "{schema}"}],
    }


def tasks_schema() -> dict[str, Any]:
    return {
        "name": "tasks",
        "properties": {"tasks": {"type": "array", "items": task_schema()}, "schema": {"type": "string"},
                       "first": {"type": "string"}, "next": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }

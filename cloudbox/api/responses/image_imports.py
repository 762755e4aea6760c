"""Glance v2 interoperable import and tasks (/image/v2/info, .../stage, .../import, /tasks) response bodies."""

from __future__ import annotations

from cloudbox.api.responses.shapes import ANY_OBJ, BOOL, STR, STRS, Doc, array, enum, nullable, obj

P = "/image/v2"
NSTR = {"type": ["string", "null"]}
TASK_LISTED = obj({"id": STR, "type": STR, "status": enum("pending", "processing", "success", "failure"),
                   "owner": NSTR, "created_at": STR, "updated_at": STR, "expires_at": NSTR, "self": STR,
                   "schema": STR})
TASK = obj({**TASK_LISTED["properties"], "input": ANY_OBJ, "result": nullable(ANY_OBJ), "message": STR},
           {"image_id": NSTR, "request_id": NSTR, "user_id": NSTR})
STORE = obj({"id": STR, "description": STR}, {"default": BOOL, "read-only": STR})


def docs() -> dict[tuple[str, str], Doc]:
    image = f"{P}/images/{{image_id}}"
    return {
        ("GET", f"{P}/info/import"): Doc({200: obj({"import-methods": obj({"description": STR, "type": STR,
                                                                           "value": STRS})})}),
        ("GET", f"{P}/info/stores"): Doc({200: obj({"stores": array(STORE)})}),
        # Staged data is application/octet-stream only (415 otherwise).
        ("PUT", f"{image}/stage"): Doc({204: None}, errors=(415,)),
        ("POST", f"{image}/import"): Doc({202: None}),
        ("GET", f"{image}/tasks"): Doc({200: obj({"tasks": array(TASK)})}),
        ("GET", f"{P}/tasks"): Doc({200: obj({"tasks": array(TASK_LISTED), "first": STR, "schema": STR},
                                             {"next": STR})}),
        ("POST", f"{P}/tasks"): Doc({201: TASK}),
        ("GET", f"{P}/tasks/{{task_id}}"): Doc({200: TASK}),
    }

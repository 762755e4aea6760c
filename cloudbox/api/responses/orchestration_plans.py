"""Stored plans of stack updates (/cloudbox/v1/orchestration/stacks/{stack_id}/plans)."""

from __future__ import annotations

from cloudbox.api.responses.orchestration import PLAN
from cloudbox.api.responses.shapes import BOOL, INT, STR, Doc, array, obj, wrap

P = "/cloudbox/v1/orchestration/stacks/{stack_id}/plans"
STORED = obj({"id": STR, "stack_id": STR, "stack_name": STR, "stack_version": INT, "stale": BOOL, "created_at": STR,
              "resource_changes": PLAN["properties"]["resource_changes"],
              "links": array(obj({"href": STR, "rel": STR}))})


def docs() -> dict[tuple[str, str], Doc]:
    return {
        ("POST", P): Doc({201: wrap("plan", STORED)}),
        ("GET", P): Doc({200: obj({"plans": array(STORED)})}),
        ("GET", P + "/{plan_id}"): Doc({200: wrap("plan", STORED)}),
        # 409: the stack changed since the plan was made (its version moved), or it is in progress.
        ("POST", P + "/{plan_id}/apply"): Doc({202: None}),
        ("DELETE", P + "/{plan_id}"): Doc({204: None}),
    }

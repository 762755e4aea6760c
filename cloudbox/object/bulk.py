"""Bulk delete (``POST /AUTH_<project>?bulk-delete``): a text body of URL-quoted
``/<container>/<object>`` or ``/<container>`` lines, each deleted as if alone (its own
authorization), answered with Swift's report as text or JSON."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, Awaitable, Callable

from cloudbox.errors import BadRequest, CloudboxError, NotFound, PayloadTooLarge

BULK_DELETE_LIMIT = 10000  # lines of one request
MAX_LINE = 3 * 1024 + 2  # a quoted /container/object name


async def read_lines(body: Any) -> list[str]:
    data = bytearray()
    async for chunk in body:
        data += chunk
        if len(data) > BULK_DELETE_LIMIT * MAX_LINE:
            raise PayloadTooLarge("Maximum Bulk Deletes: 10000 per request")
    lines = [line.strip() for line in bytes(data).decode("utf-8", "replace").splitlines() if line.strip()]
    if len(lines) > BULK_DELETE_LIMIT:
        raise PayloadTooLarge(f"Maximum Bulk Deletes: {BULK_DELETE_LIMIT} per request")
    if not lines:
        raise BadRequest("Invalid bulk delete.")
    return lines


async def run(lines: list[str], delete: Callable[[str, str | None], Awaitable[None]]) -> dict[str, Any]:
    """Delete each line's container or object through ``delete(container, object or None)``."""
    deleted = missing = 0
    errors: list[list[str]] = []
    for line in lines:
        path = urllib.parse.unquote(line).lstrip("/")
        container, _, name = path.partition("/")
        try:
            if not container:
                raise BadRequest("Invalid bulk delete.")
            await delete(container, name or None)
            deleted += 1
        except NotFound:
            missing += 1
        except CloudboxError as exc:
            errors.append([urllib.parse.quote("/" + path), f"{exc.status} {exc.title}"])
    status = "400 Bad Request" if errors else "200 OK"
    return {"Number Deleted": deleted, "Number Not Found": missing, "Response Body": "",
            "Response Status": status, "Errors": errors}


def render(report: dict[str, Any], accept: str) -> tuple[str, str]:
    """(body, content type) of a report: JSON when asked for, else Swift's plain text."""
    if "json" in accept:
        return json.dumps(report), "application/json; charset=utf-8"
    lines = [f"{k}: {v}" for k, v in report.items() if k != "Errors"]
    lines.append("Errors:")
    lines += [f"{path}, {status}" for path, status in report["Errors"]]
    return "\n".join(lines) + "\n", "text/plain; charset=utf-8"

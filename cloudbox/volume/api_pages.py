"""One page of a Cinder list, with Cinder's next link (shared by the volume API's lists)."""

from __future__ import annotations

import urllib.parse
from typing import Any, Callable

from cloudbox.api.routes import Call


def paged(call: Call, rows: list[dict[str, Any]], limit: int, key: str, path: str,
          render: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """A page with Cinder's next link: given whenever the page is full, even when it is the
    last (the next page is then empty), as Cinder's collection links are."""
    rows, links = call.paged(rows, limit, path)
    body: dict[str, Any] = {key: [render(r) for r in rows]}
    next_link = links["next"]
    if next_link is None and rows and len(rows) == limit:
        query = {k: v for k, v in call.query.items() if k != "marker"}
        query["marker"] = rows[-1]["id"]
        query.setdefault("limit", str(limit))
        next_link = call.base + path + "?" + urllib.parse.urlencode(query)
    if next_link:
        body[f"{key}_links"] = [{"rel": "next", "href": next_link}]
    return body

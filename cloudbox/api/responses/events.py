"""Response bodies of the live event stream (/cloudbox/v1/events, cloudbox.events)."""

from __future__ import annotations

from cloudbox.api.responses.shapes import Doc, Raw

P = "/cloudbox/v1"


def docs() -> dict[tuple[str, str], Doc]:
    return {
        # Server-sent events while the token lasts: "event: change" (service, type, id, project_id,
        # action, status), "event: node" (administrators), "event: resync", "event: expired", and
        # ": keep-alive" comments. 406 unless asked with "Accept: text/event-stream"; 429 past the
        # streams one user may hold on a node.
        ("GET", f"{P}/events"): Doc({200: Raw("text/event-stream")}, errors=(406, 429)),
    }

"""GET /cloudbox/v1/events: the dashboard's live event stream (text/event-stream).

Authenticated by X-Auth-Token like every route (the page reads it with fetch, so the token
stays out of URLs and logs).  The client must ask for ``Accept: text/event-stream``: a client
that asks for anything (curl's and most libraries' ``*/*``) would otherwise hang reading a body
that never ends, so it gets 406 and a message saying how to ask.
"""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import ApiSpec, Call, Route
from cloudbox.errors import Forbidden, NotAcceptable
from cloudbox.events.hub import EventHub

PREFIX = "/cloudbox/v1"
MEDIA = "text/event-stream"


def accepts_stream(accept: str) -> bool:
    """Whether an Accept header names text/event-stream (with a q above 0)."""
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        if media.lower() != MEDIA:
            continue
        q = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
        try:
            if float(q) > 0:
                return True
        except ValueError:
            return False
    return False


def build(hub: EventHub) -> ApiSpec:
    async def events(call: Call) -> Any:
        from quart import Response

        if not accepts_stream(call.request.headers.get("Accept", "")):
            raise NotAcceptable(f"The event stream answers {MEDIA} only; ask with 'Accept: {MEDIA}'.")
        auth = call.auth
        if not (auth.is_cloud_reader or auth.project_id):
            raise Forbidden("The event stream needs a token scoped to a project (or an administrator's).")
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        if call.request.method == "HEAD":  # the answer's head only: a stream would hold the connection
            return Response(b"", status=200, content_type=MEDIA, headers=headers)
        response = Response(hub.body(hub.open(auth)), status=200, content_type=MEDIA, headers=headers)
        response.timeout = None  # it lasts as long as the token
        return response

    return ApiSpec("events", PREFIX, "cloudbox", [
        Route("GET", "/events", events, summary="Live changes the token may see (server-sent events)"),
    ])

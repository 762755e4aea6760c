"""The cloud's own public APIs, called in-process as a stack's owner.

Heat acts on the cloud through the other services' public APIs under the user's delegated
authority (a trust). Here the engine mints a short-lived token for the stack's user and project
(``IdentityService.mint``: the roles the user holds *now*, so a template can do no more than its
user) and sends each request straight into the node's ASGI app, without a socket: the request is
parsed, authorised, quota-checked and applied by exactly the code that serves a client.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

import trio
from quart.globals import _cv_app, _cv_request

from cloudbox.errors import BadRequest, CloudboxError, Conflict, Forbidden, NotFound, OverQuota, Unavailable

MAX_BODY = 16 * 1024 * 1024  # bytes of an answer kept (listings of a large project stay far below)
TOKEN_LIFE = 3600.0  # seconds; a token is minted per stack action and again when it nears its end


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class ApiError(CloudboxError):
    """A call the cloud refused: its status and message, as the owner would have seen them."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def error_class(status: int) -> type[CloudboxError]:
    return {400: BadRequest, 403: Forbidden, 404: NotFound, 409: Conflict, 413: OverQuota,
            503: Unavailable}.get(status, BadRequest)


def message_of(body: Any) -> str:
    """The message of any OpenStack API's error body."""
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
        if "message" in body:
            return str(body["message"])
    return str(body)[:300]


class LocalApi:
    """Requests into the node's app as one user in one project."""

    def __init__(self, app: Any, token: str, host: str) -> None:
        self.app = app
        self.token = token
        self.host = host

    async def call(self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None, ok: tuple[int, ...] = (200, 201, 202, 204)) -> Answer:
        raw = b"" if body is None else json.dumps(body).encode()
        head = {"x-auth-token": self.token, "accept": "application/json", "host": self.host,
                "content-length": str(len(raw)), **{k.lower(): v for k, v in (headers or {}).items()}}
        if body is not None:
            head["content-type"] = "application/json"
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method, "scheme": "https", "path": urllib.parse.unquote(path),
            "raw_path": path.encode(), "root_path": "",
            "query_string": urllib.parse.urlencode(query or {}).encode(),
            "headers": [(k.encode(), v.encode()) for k, v in head.items()],
            "server": (self.host.rsplit(":", 1)[0], int(self.host.rsplit(":", 1)[1]) if ":" in self.host else 443),
            "client": ("127.0.0.1", 0), "extensions": {},
        }
        sent, answered = False, trio.Event()

        async def receive() -> dict[str, Any]:
            # The body once; then the "client" stays until the answer is out (a disconnect
            # before it would cancel the request, as a real client's going away does).
            nonlocal sent
            if sent:
                await answered.wait()
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        status, out_headers, chunks = 500, {}, []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, out_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                out_headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                if sum(len(c) for c in chunks) < MAX_BODY:
                    chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        # A call made while serving a request (a create checking names) gets a context of its
        # own: sharing the outer request's app context would share its ``g`` (request id, auth).
        app_token, request_token = _cv_app.set(None), _cv_request.set(None)  # type: ignore[arg-type]
        try:
            await self.app(scope, receive, send)
            answered.set()
        finally:
            _cv_request.reset(request_token)
            _cv_app.reset(app_token)
        data = b"".join(chunks)
        try:
            parsed = json.loads(data) if data.strip() else None
        except ValueError:
            parsed = data.decode(errors="replace")
        answer = Answer(status, parsed, out_headers)
        if status not in ok:
            raise error_class(status)(f"{method} {path.split('?')[0]}: {message_of(parsed)}")
        return answer

    async def get(self, path: str, **query: str) -> Any:
        return (await self.call("GET", path, query=query or None)).body

    async def post(self, path: str, body: Any, **kw: Any) -> Any:
        return (await self.call("POST", path, body, **kw)).body

    async def put(self, path: str, body: Any, **kw: Any) -> Any:
        return (await self.call("PUT", path, body, **kw)).body

    async def delete(self, path: str, *, gone_ok: bool = True) -> None:
        """DELETE; a 404 means it is gone already (a delete resumed after a crash)."""
        await self.call("DELETE", path, ok=(200, 202, 204, 404) if gone_ok else (200, 202, 204))


async def api_as(identity: Any, app: Any, host: str, user_id: str, project_id: str,
                 clock: Callable[[], float] = time.time) -> LocalApi:
    """A LocalApi acting as ``user_id`` in ``project_id`` with the roles the user holds now."""
    from cloudbox.identity.core import TokenPayload
    from cloudbox.identity.service import new_audit_id

    now = clock()
    payload = TokenPayload(user_id=user_id, methods=("token",), scope_type="project", scope_id=project_id,
                           issued_at=now, expires_at=now + TOKEN_LIFE, audit_ids=(new_audit_id(),))
    ctx = await identity.mint(payload)
    return LocalApi(app, ctx.token, host)

"""One quart-trio app that mounts every service's route table under its prefix."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Awaitable, Callable

from quart import Response, g, request, send_from_directory
from quart.routing import QuartRule
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from cloudbox import logs
from cloudbox.api import errors as api_errors
from cloudbox.api import streaming
from cloudbox.api.routes import FORWARDED_BY, ApiSpec, Call, Reply, Route, parse_json, url_rule
from cloudbox.errors import (
    BadRequest, CloudboxError, InternalError, MethodNotAllowed, NotAcceptable, NotFound, PayloadTooLarge,
    RangeNotSatisfiable, RequestTimeout, Unauthorized, UnsupportedMediaType,
)

log = logging.getLogger("cloudbox.api")
Authenticate = Callable[[str], Awaitable[Any]]

WEB_DIR_CANDIDATES = (Path(__file__).resolve().parents[2] / "web", Path("/usr/share/cloudbox/web"))
# Other statuses werkzeug or quart raise, by class; any other is a BadRequest or InternalError.
_HTTP_ERRORS: dict[int, type[CloudboxError]] = {
    400: BadRequest, 406: NotAcceptable, 408: RequestTimeout, 415: UnsupportedMediaType, 416: RangeNotSatisfiable,
}
_RULE_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")

REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _json_response(body: Any, status: int, headers: dict[str, str]) -> Response:
    if body is None:
        return Response(b"", status=status, headers=headers)
    if isinstance(body, (bytes, str)):
        return Response(body, status=status, headers=headers)
    return Response(
        json.dumps(body, separators=(",", ":")), status=status, headers=headers,
        content_type="application/json",
    )


def _body_refused_unread(request: Any) -> bool:
    """An HTTP/1.1 request refused before its body was read (no such route or method, no token).

    hypercorn answers it, but when the reply goes out before the body has come in, the connection
    is not made ready for the next request (that request got no answer, about one time in ten):
    close it after the reply instead, and say so."""
    if not request.http_version.startswith("1") or g.get("body_read"):
        return False
    length = request.headers.get("Content-Length", "")
    return (length not in ("", "0")) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


# The web UI's own files: ES modules must be served as JavaScript (whatever the host's mime.types
# says), and the page may load and connect only to the node that served it.
WEB_TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
             ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml",
             ".json": "application/json", ".wasm": "application/wasm"}
WEB_CSP = ("default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'self'; "
           "form-action 'self'; frame-ancestors 'self'")
# xterm.js (the serial console page) styles its rows with <style> elements it makes: inline styles,
# never scripts, are let through on that page alone.
WEB_CSP_TERMINAL = WEB_CSP + "; style-src 'self' 'unsafe-inline'"


# Text files go gzipped to a browser that takes it (the dashboard's first load is ~3x lighter); each
# is compressed once per modification and kept (the UI's own files and the console pages' packages).
_GZIP_TYPES = (".js", ".mjs", ".css", ".html", ".svg", ".json")
# The node's idle memory is tight: a file over _GZIP_MAX_FILE goes plain (streamed from disk), and the
# compressed copies kept are at most _GZIP_CACHE_BYTES, the least recently asked for dropped first.
_GZIP_MAX_FILE = 1 << 20
_GZIP_CACHE_BYTES = 1 << 20
_gzipped: OrderedDict[Path, tuple[float, bytes]] = OrderedDict()


def _gzip_web_file(response: Response, web_dir: Path, name: str) -> Response:
    response.headers["Vary"] = "Accept-Encoding"
    if (response.status_code != 200 or Path(name).suffix.lower() not in _GZIP_TYPES
            or "gzip" not in request.headers.get("Accept-Encoding", "").lower()):
        return response
    import gzip

    path = web_dir / name  # send_from_directory answered 200: a file inside web_dir
    info = path.stat()
    if info.st_size > _GZIP_MAX_FILE:
        return response
    cached = _gzipped.get(path)
    if cached is None or cached[0] != info.st_mtime:
        cached = _gzipped[path] = (info.st_mtime, gzip.compress(path.read_bytes(), 6))
        _gzipped.move_to_end(path)  # kept below: the eviction takes the oldest others first
        while sum(len(body) for _, body in _gzipped.values()) > _GZIP_CACHE_BYTES and len(_gzipped) > 1:
            _gzipped.popitem(last=False)
    _gzipped.move_to_end(path)
    # The same content in another encoding: a weak validator (RFC 9110 8.8.1).
    etag = response.headers.get("ETag", "")
    headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding", "Last-Modified": response.headers.get("Last-Modified", "")}
    if etag:
        headers["ETag"] = etag if etag.startswith("W/") else "W/" + etag
    return Response(cached[1], status=200, headers={k: v for k, v in headers.items() if v})


def _web_headers(response: Response, name: str) -> Response:
    content_type = WEB_TYPES.get(Path(name).suffix.lower())
    if content_type:
        response.headers["Content-Type"] = content_type
    response.headers["Content-Security-Policy"] = WEB_CSP_TERMINAL if name == "console/serial.html" else WEB_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"  # revalidated (ETag): a new version shows at once
    return response


class LazyBuilderRule(QuartRule):
    """A route whose URL builders are compiled when a URL is first built from it.

    werkzeug compiles two builder functions for every rule as it adds it (about 2.5 KB of code
    objects a rule: 1.1 MiB of a node's idle memory for its ~500 rules, issue 14); cloudbox builds
    no URL from its rules (no url_for), so most are never compiled.  At the first build the rule
    compiles werkzeug's own builder and keeps it in its place."""

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        return _build_once_unknown if append_unknown else _build_once  # shared: no closure per rule


def _build_once(rule: LazyBuilderRule, **values: Any) -> tuple[str, str]:
    builder = rule._build = QuartRule._compile_builder(rule, False).__get__(rule, None)
    return builder(**values)


def _build_once_unknown(rule: LazyBuilderRule, **values: Any) -> tuple[str, str]:
    builder = rule._build_unknown = QuartRule._compile_builder(rule, True).__get__(rule, None)
    return builder(**values)


def create_app(
    specs: list[ApiSpec],
    *,
    authenticate: Authenticate,
    max_body_bytes: int,
    max_limit: int,
    extra_routes: Callable[[QuartTrio], None] | None = None,
) -> QuartTrio:
    app = QuartTrio("cloudbox", static_folder=None)
    app.url_rule_class = LazyBuilderRule
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    # Raw-body routes (uploads) stream their bodies: no JSON limit, bounded memory.
    streaming.enable(app, [(r.method, s.prefix + r.path) for s in specs for r in s.routes if r.raw_body])

    def style_for(path: str) -> str:
        for spec in specs:
            if path == spec.prefix or path.startswith(spec.prefix + "/"):
                return spec.style
        return "cloudbox"

    def error_response(error: CloudboxError, style: str, request_id: str) -> Response:
        body, status = api_errors.render(error, style)
        headers = {"x-openstack-request-id": request_id}
        if status == 401:
            headers["WWW-Authenticate"] = 'Keystone uri="%s"' % (request.host_url.rstrip("/") + "/identity/v3")
        if status == 413 or streaming.unread_body(request) or _body_refused_unread(request):
            # The body was left unread, so the server drops the connection after this reply;
            # say so, or the client reuses the connection and its next request fails.
            headers["Connection"] = "close"
        return _json_response(body, status, headers)

    def mount(spec: ApiSpec, path: str, routes: dict[str, Route]) -> None:
        async def dispatch(**params: str) -> Response:
            # werkzeug serves HEAD for every GET rule; without a HEAD route of its own, HEAD runs
            # the GET handler and hypercorn drops the body.
            route = routes.get(request.method) or routes["GET"]
            request_id = g.request_id
            auth = None
            token = request.headers.get("X-Auth-Token")
            if route.access != "public":
                if not token:
                    raise Unauthorized("The request you have made requires authentication.")
                auth = g.auth = await authenticate(token)
            elif token:
                # A public route does not need the token: a stale one is ignored, not refused.
                try:
                    auth = g.auth = await authenticate(token)
                except Unauthorized:
                    auth = None
            body = None
            if not route.raw_body and request.method in ("POST", "PUT", "PATCH"):
                data = await request.get_data(cache=False)
                g.body_read = True
                body = parse_json(data, spec.validators.get((route.method, route.path)))
            call = Call(
                request=request, auth=auth, body=body, query=request.args,
                base=request.host_url.rstrip("/") + spec.prefix, request_id=request_id,
                max_limit=max_limit,
            )
            result = await route.handler(call, **params)
            if isinstance(result, Response):  # a streamed reply (downloads) goes out as built
                return result
            reply = result if isinstance(result, Reply) else Reply(result)
            return _json_response(reply.body, reply.status, reply.headers)

        dispatch.__name__ = f"{spec.name}:{path}"
        rule = url_rule(spec.prefix + path) if path else spec.prefix
        # A path parameter keeps its slashes as sent ("a//b" is a Swift object name, not "a/b").
        options = {"merge_slashes": False} if "<path:" in rule else {}
        app.add_url_rule(rule, endpoint=dispatch.__name__, view_func=dispatch, methods=list(routes), **options)
        if not path:  # version documents link to "<prefix>/" (Keystone's self link ends in a slash)
            app.add_url_rule(rule + "/", endpoint=dispatch.__name__, view_func=dispatch, methods=list(routes))

    for spec in specs:
        by_path: dict[str, dict[str, Route]] = {}
        for route in spec.routes:
            by_path.setdefault(route.path, {})[route.method] = route
        for path, routes in by_path.items():
            mount(spec, path, routes)

    @app.before_request
    async def start_request() -> None:
        # A call forwarded by a peer keeps the request id the client was given, so the answer,
        # the logs and what is recorded under it (instance actions) agree on both nodes.
        incoming = request.headers.get("x-openstack-request-id", "")
        forwarded = request.headers.get(FORWARDED_BY) and REQUEST_ID.fullmatch(incoming)
        g.request_id = incoming if forwarded else "req-" + str(uuid.uuid4())
        g.started = time.perf_counter()
        g.auth = None
        logs.request_id.set(g.request_id)

    @app.after_request
    async def finish_request(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers["x-openstack-request-id"] = request_id
            auth = g.get("auth")
            log.info(
                "%s %s %d", request.method, request.path, response.status_code,
                extra={
                    "request_id": request_id,
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - g.started) * 1000, 2),
                    "user_id": auth.user_id if auth else None,
                    "project_id": auth.project_id if auth else None,
                },
            )
        return response

    @app.errorhandler(CloudboxError)
    async def on_cloudbox_error(error: CloudboxError) -> Response:
        return error_response(error, style_for(request.path), g.get("request_id", ""))

    @app.errorhandler(HTTPException)
    async def on_http_error(error: HTTPException) -> Response:
        # What werkzeug and quart raise themselves (routing, body limits, static files).
        if error.code == 404:
            mapped: CloudboxError = NotFound(f"The resource could not be found: {request.path}")
        elif error.code == 405:
            mapped = MethodNotAllowed(f"The method {request.method} is not allowed for {request.path}.")
            reply = error_response(mapped, style_for(request.path), g.get("request_id", ""))
            allowed = sorted(getattr(error, "valid_methods", None) or [])
            if allowed:  # RFC 9110: a 405 names the methods the resource has
                reply.headers["Allow"] = ", ".join(allowed)
            return reply
        elif error.code == 413:
            mapped = PayloadTooLarge(f"The request body is larger than the limit of {max_body_bytes} bytes.")
        else:
            code = error.code or 500
            mapped = _HTTP_ERRORS.get(code, BadRequest if code < 500 else InternalError)(error.description or None)
        return error_response(mapped, style_for(request.path), g.get("request_id", ""))

    @app.errorhandler(Exception)
    async def on_unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            InternalError("An unexpected error prevented the server from fulfilling your request."),
            style_for(request.path), g.get("request_id", ""),
        )

    openapi: list[bytes] = []  # built at the first request for it, and kept encoded

    @app.route("/openapi.json", methods=["GET"])
    async def openapi_document() -> Response:
        if not openapi:
            openapi.append(json.dumps(_openapi(app, specs), separators=(",", ":")).encode())
        return _json_response(openapi[0], 200, {"Content-Type": "application/json"})

    web_dir = next((d for d in WEB_DIR_CANDIDATES if d.is_dir()), None)
    if web_dir is not None:
        @app.route("/", methods=["GET"])
        async def web_index() -> Response:
            return _web_headers(_gzip_web_file(await send_from_directory(web_dir, "index.html"), web_dir, "index.html"),
                                "index.html")

        @app.route("/ui/<path:name>", methods=["GET"])
        async def web_file(name: str) -> Response:
            return _web_headers(_gzip_web_file(await send_from_directory(web_dir, name), web_dir, name), name)

    if extra_routes:
        extra_routes(app)
    return app


def _openapi(app: QuartTrio, specs: list[ApiSpec]) -> dict[str, Any]:
    """The OpenAPI document: every route served, also those mounted outside the route tables.
    Imported and built on demand: its modules and schemas held 2 MiB that few nodes are asked for."""
    from cloudbox.api.openapi import add_plain_routes, build_openapi

    doc = build_openapi(specs)
    plain = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        summary = (view.__doc__ or view.__name__.replace("_", " ")).strip().splitlines()[0]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            plain.append((_RULE_PARAM.sub(r"{\1}", rule.rule), method, summary))
    add_plain_routes(doc, plain)
    return doc

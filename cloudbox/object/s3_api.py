"""The S3 API: Amazon's clients (boto3, awscli, curl with a presigned URL) on the object store.

How it is served: on the node's HTTPS port, beside the OpenStack APIs, as an ASGI layer in
front of the app (``S3Gateway.wrap``), at two addresses:
- path-style under ``/s3``: ``https://node:8443/s3/<bucket>/<key>`` (the catalog's ``s3``
  endpoint; boto3 and awscli take ``--endpoint-url https://node:8443/s3``);
- virtual-hosted-style when the ``s3_domain`` setting is set: ``https://<bucket>.<s3_domain>:8443/<key>``
  (and path-style from that domain's root: ``https://<s3_domain>:8443/<bucket>/<key>``).
S3's request shapes (sub-resources in the query, XML bodies, SigV4 instead of tokens, its own
error bodies) have little in common with the route table's JSON, so S3 is dispatched here from
its own table (``s3_routes.ROUTES``: method, level, sub-resource → handler) and never reaches
quart, so it is not in /openapi.json (S3 has no OpenAPI description; its clients are the test).
The modules: ``s3_auth`` (SigV4), ``s3_chunked`` (aws-chunked bodies, checksums), ``s3_xml``
(documents and errors), ``s3_handlers`` (buckets and objects), ``s3_multipart``,
``s3_versions``, ``s3_common`` (what the handlers share).

Who may do what: a request is signed (SigV4, header or presigned) with an EC2 credential; the
credential's project is the S3 account, so a bucket is a Swift container of that project and
another project's buckets cannot be named at all.  Reads need a reader role on the project,
writes a member role.  Anonymous requests are refused (AccessDenied).

Every fault answers S3's XML error and changes nothing; one the code did not expect is logged
and answered as InternalError, never breaking the connection or the node.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping

import trio

from cloudbox import logs
from cloudbox.errors import CloudboxError, Unauthorized
from cloudbox.identity.core import AuthContext
from cloudbox.object import s3_auth, s3_xml
from cloudbox.object.s3_chunked import body_checker
from cloudbox.object.s3_xml import S3Error

log = logging.getLogger("cloudbox.object.s3")

PREFIX = "/s3"
MAX_SMALL_BODY = s3_xml.MAX_XML_BYTES  # XML bodies (configuration, delete, complete) are read whole
Signer = Callable[[str], Awaitable[tuple[AuthContext, str]]]
Headers = list[tuple[bytes, bytes]]


@dataclass
class S3Request:
    """One S3 request, parsed: what handlers read."""

    method: str
    raw_path: str  # as sent, for the signature
    bucket: str
    key: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lowercase names; repeated headers joined by ","
    receive: Callable[[], Awaitable[dict[str, Any]]]
    base_url: str  # where the bucket's objects are: for Location and listings
    request_id: str
    ctx: AuthContext | None = None
    signer: s3_auth.Signer | None = None
    payload_hash: str = s3_auth.UNSIGNED
    body_started: bool = False
    body_done: bool = False

    @property
    def account(self) -> str:
        assert self.ctx is not None and self.ctx.project_id
        return self.ctx.project_id

    @property
    def owner(self) -> tuple[str, str]:
        assert self.ctx is not None and self.ctx.project is not None
        return self.ctx.project["id"], self.ctx.project["name"]

    def arg(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.query)

    async def _raw(self) -> AsyncIterator[bytes]:
        self.body_started = True
        while not self.body_done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise S3Error("IncompleteBody", "The client went away before the body ended.")
            data = message.get("body", b"")
            self.body_done = not message.get("more_body", False)
            if data:
                yield data

    def declared_length(self) -> int | None:
        """The payload's length: x-amz-decoded-content-length for aws-chunked, else Content-Length."""
        text = self.headers.get("x-amz-decoded-content-length" if self.payload_hash.startswith("STREAMING-")
                                else "content-length")
        if text is None:
            return None
        if not s3_xml.is_number(text.strip()):
            raise S3Error("InvalidArgument", "Content-Length must be a number of bytes.")
        return int(text)

    async def body(self) -> AsyncIterator[bytes]:
        """The payload, decoded (aws-chunked) and checked (signatures, checksums, length) as it
        streams: the last step raises if any check fails, so storage never commits it."""
        length = None if self.payload_hash.startswith("STREAMING-") else self.declared_length()
        checker = body_checker(self.headers, self.payload_hash, self.signer, length)
        async for data in self._raw():
            # A checksum computed in Python (crc32c or crc64nvme without awscrt) would hold the
            # event loop for milliseconds per chunk: then it runs in a worker thread.
            pieces = await trio.to_thread.run_sync(checker.feed, data) if checker.slow else checker.feed(data)
            for piece in pieces:
                yield piece
        checker.end()

    async def small_body(self) -> bytes:
        """A body read whole (XML documents): at most MAX_SMALL_BODY bytes."""
        out = bytearray()
        async for piece in self.body():
            out += piece
            if len(out) > MAX_SMALL_BODY:
                raise S3Error("MalformedXML", f"The XML you provided is larger than {MAX_SMALL_BODY} bytes.")
        return bytes(out)


@dataclass
class S3Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    close: Callable[[], None] | None = None  # run once the stream is done or abandoned


Handler = Callable[[Any, S3Request], Awaitable[S3Response]]


@dataclass(frozen=True)
class S3Route:
    """One entry of the table: a handler for a method on the service, a bucket or an object,
    chosen by the sub-resource the query names (None: none of the known ones)."""

    method: str
    level: str  # "service", "bucket" or "object"
    subresource: str | None
    handler: Handler
    write: bool


_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
SUBRESOURCES = ("uploads", "uploadId", "delete", "versioning", "location", "versions", "acl", "tagging",
                "policy", "cors", "lifecycle", "website", "logging", "notification", "replication",
                "encryption", "object-lock", "accelerate", "requestPayment", "ownershipControls",
                "publicAccessBlock", "retention", "legal-hold", "torrent", "restore", "select", "attributes")


def catalog_spec() -> Any:
    """The catalog's ``s3`` endpoint: no routes of the route table (the gateway serves them)."""
    from cloudbox.api.routes import ApiSpec

    return ApiSpec("s3", PREFIX, "s3", [], catalog=("s3", "s3"))


def check_bucket_name(name: str) -> None:
    """S3's rules for a new bucket's name: 3-63 of a-z 0-9 . -, a letter or digit at each end,
    not an IP address, no "..": the name must also be a DNS label for virtual hosting."""
    if not _BUCKET_NAME.fullmatch(name) or ".." in name or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        raise S3Error("InvalidBucketName", "The specified bucket is not valid.", BucketName=name)


class S3Gateway:
    """The S3 API of a node: an ASGI layer that takes S3's requests and passes the rest on."""

    def __init__(self, objects: Any, signer: Signer, *, region: str, domain: str = "",
                 read_barrier: Callable[[], Awaitable[None]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.objects = objects
        self.signer = signer
        self.region = region
        self.domain = domain.lower().strip(".")
        self.read_barrier = read_barrier
        self.clock = clock

    @property
    def routes(self) -> list[S3Route]:
        # Imported at the first S3 request (its handlers import this module): a node serves
        # without them until then (0.6 MiB of Python objects).
        from cloudbox.object import s3_routes

        return s3_routes.ROUTES

    def wrap(self, inner: Any) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                where = self._address(scope)
                if where is not None:
                    await self.handle(scope, receive, send, *where)
                    return
            await inner(scope, receive, send)

        return app

    def _address(self, scope: dict[str, Any]) -> tuple[str, str, str] | None:
        """(bucket, key, base path) of an S3 request, or None for the node's other APIs."""
        path = scope.get("path", "")
        if self.domain:
            host = _header(scope, b"host").lower()
            host = "" if host.startswith("[") else host.rsplit(":", 1)[0]  # an IPv6 literal names no bucket
            if host.endswith("." + self.domain):
                bucket = host[: -len(self.domain) - 1]
                return bucket, path[1:], ""
            if host == self.domain:  # the domain itself: ListBuckets, or path-style from its root
                bucket, _, key = path[1:].partition("/")
                return bucket, key, ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            rest = path[len(PREFIX) + 1:]
            bucket, _, key = rest.partition("/")
            return bucket, key, PREFIX
        return None

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any, bucket: str, key: str, base: str) -> None:
        request_id = "req-" + str(uuid.uuid4())
        logs.request_id.set(request_id)
        raw_path = scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or scope["path"]
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            low = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[low] = headers[low] + "," + text if low in headers else text
        host = headers.get("host", "")
        request = S3Request(
            method=scope["method"], raw_path=raw_path, bucket=bucket, key=key,
            query=s3_auth.parse_query(scope.get("query_string", b"").decode("latin-1")), headers=headers,
            receive=receive, base_url=f"{scope.get('scheme', 'https')}://{host}{base}", request_id=request_id)
        resource = "/" + bucket + ("/" + key if key else "")
        try:
            response = await self.dispatch(request)
        except S3Error as exc:
            response = self.error(exc, request, resource)
        except CloudboxError as exc:  # a storage refusal no handler named: its status, in S3's words
            response = self.error(_as_s3(exc), request, resource)
        except Exception:
            log.exception("S3 request failed", extra={"method": request.method, "path": raw_path[:200]})
            response = self.error(S3Error("InternalError", "We encountered an internal error. Please try again."),
                                  request, resource)
        await self.send(send, request, response)

    def error(self, exc: S3Error, request: S3Request, resource: str) -> S3Response:
        if exc.status == 304:
            return S3Response(304, {})
        body = None if request.method == "HEAD" else s3_xml.error_body(exc, resource, request.request_id)
        return S3Response(exc.status, {"Content-Type": "application/xml"}, body)

    async def dispatch(self, request: S3Request) -> S3Response:
        await self.authenticate(request)
        level = "object" if request.key else "bucket" if request.bucket else "service"
        sub = next((name for name in SUBRESOURCES if request.has(name)), None)
        route = self._route(request.method, level, sub)
        ctx = request.ctx
        assert ctx is not None
        allowed = ctx.can_write_project(request.account) if route.write else ctx.can_read_project(request.account)
        if not allowed:
            raise S3Error("AccessDenied", "Access Denied")
        if not route.write and self.read_barrier is not None:
            await self.read_barrier()
        return await route.handler(self, request)

    def _route(self, method: str, level: str, sub: str | None) -> S3Route:
        for route in self.routes:
            if route.method == method and route.level == level and route.subresource == sub:
                return route
        if sub is not None and any(r.level == level and r.subresource == sub for r in self.routes):
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")
        if sub is not None:
            raise S3Error("NotImplemented", f"The {sub} sub-resource is not implemented.")
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")

    async def authenticate(self, request: S3Request) -> None:
        if not s3_auth.is_signed(request.headers, request.query):
            raise S3Error("AccessDenied", "Anonymous access is not allowed; sign the request with an EC2 "
                          "credential (openstack ec2 credentials create).")
        claim = s3_auth.parse_request(request.method, request.headers, request.query, self.clock())
        try:
            ctx, secret = await self._signer(claim.access_key)
        except Unauthorized as exc:
            raise S3Error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
                          AWSAccessKeyId=claim.access_key) from exc
        request.signer = s3_auth.verify(claim, secret, request.method, request.raw_path, request.query,
                                        request.headers.items())
        request.ctx = ctx
        request.payload_hash = claim.payload_hash

    async def _signer(self, access_key: str) -> tuple[AuthContext, str]:
        """The credential of an access key; one made on another node a moment ago may not have
        reached this node's state yet, so a miss waits for the state to catch up and looks again."""
        try:
            return await self.signer(access_key)
        except Unauthorized:
            if self.read_barrier is None:
                raise
        await self.read_barrier()
        return await self.signer(access_key)

    async def send(self, send: Any, request: S3Request, response: S3Response) -> None:
        headers = {"x-amz-request-id": request.request_id, "x-openstack-request-id": request.request_id,
                   **response.headers}
        if request.body_started and not request.body_done or (not request.body_started and _has_body(request)):
            # The body was left unread: the connection cannot carry another request.
            headers["Connection"] = "close"
        if response.stream is None:
            body = response.body or b""
            headers.setdefault("Content-Length", str(len(body)))
        raw: Headers = [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers.items()]
        try:
            await send({"type": "http.response.start", "status": response.status, "headers": raw})
            if response.stream is None or request.method == "HEAD":
                await send({"type": "http.response.body", "body": b"" if request.method == "HEAD" else body})
                return
            async for chunk in response.stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            if response.close is not None:
                with trio.CancelScope(shield=True):
                    response.close()


def _header(scope: Mapping[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _has_body(request: S3Request) -> bool:
    length = request.headers.get("content-length", "0")
    return length not in ("", "0") or "chunked" in request.headers.get("transfer-encoding", "").lower()


_CODES = {400: "InvalidRequest", 401: "AccessDenied", 403: "AccessDenied", 404: "NoSuchKey",
          405: "MethodNotAllowed", 409: "InvalidRequest", 411: "MissingContentLength", 412: "PreconditionFailed",
          413: "EntityTooLarge", 416: "InvalidRange", 422: "BadDigest", 503: "ServiceUnavailable"}


def _as_s3(exc: CloudboxError) -> S3Error:
    return S3Error(_CODES.get(exc.status, "InternalError"), exc.message)

"""Swift v1 object routes: GET/HEAD (ranges, conditions), PUT (streamed; X-Copy-From), POST,
DELETE and COPY."""

from __future__ import annotations

import functools
import json
import mimetypes
import urllib.parse
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable

from quart import Response

from cloudbox.api import streaming
from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import BadRequest, CloudboxError, NotFound, PayloadTooLarge
from cloudbox.object import acl, core, formpost, large, staticweb, views
from cloudbox.object.service import ObjectReader, ObjectService

OBJECT = "/AUTH_{account}/{container}/{object:path}"
DRAIN_LIMIT = 1 << 20  # bytes of a refused upload read and dropped, so the client reads the refusal
DRAIN_SECONDS = 5.0

Authorize = Callable[..., Awaitable[None]]  # api.Access: (call, account, op, container, object)


def _declared_length(call: Call) -> int | None:
    """Content-Length; None when the body is chunked (or HTTP/2 without a length); 411 when neither."""
    length = call.request.content_length
    if length is not None:
        return int(length)
    chunked = "chunked" in call.request.headers.get("Transfer-Encoding", "").lower()
    if not chunked and call.request.http_version.startswith("1"):
        raise core.LengthRequired("Missing Content-Length header.")
    return None


def _content_type(call: Call, name: str) -> str:
    given = call.request.headers.get("Content-Type", "")
    detect = call.request.headers.get("X-Detect-Content-Type", "").lower() in ("true", "1", "yes")
    if given and not detect:
        return given
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _live(info: core.ObjectInfo, now: float) -> core.ObjectInfo:
    """The object, or a 404 once its X-Delete-At has passed (the expirer may not have run yet)."""
    delete_at = info.headers.get("x-delete-at")
    if delete_at and int(delete_at) <= now:
        raise NotFound("The resource could not be found.")
    return info


def versions_in(metadata: dict[str, str]) -> tuple[str, bool]:
    """(versions container, stack mode?) of a container's metadata; ("", False) if versioning is off."""
    if metadata.get("x-versions-location"):
        return metadata["x-versions-location"], True
    return metadata.get("x-history-location", ""), False


def object_routes(svc: ObjectService, authorize: Authorize) -> tuple[list[Route], Any]:
    async def refused_body(call: Call) -> None:
        await streaming.drain(call.request.body, DRAIN_LIMIT, DRAIN_SECONDS)

    async def copy(call: Call, account: str, source: tuple[str, str], src_account: str,
                   target: tuple[str, str]) -> Reply:
        await authorize(call, src_account, acl.OBJECT_READ, source[0])
        headers = call.request.headers
        now = svc.now()
        source_info = _live(await svc.head_object(src_account, *source), now)
        meta, _ = core.user_metadata(headers, "x-object-meta-")
        core.check_metadata(meta, "X-Object-Meta-")
        fresh = headers.get("X-Fresh-Metadata", "").lower() in ("true", "1", "yes")
        content_type = headers.get("Content-Type") if "Content-Type" in headers else None
        stored = core.stored_object_headers(headers, now)
        manifest = call.query.get("multipart-manifest") == "get"
        if not manifest and (large.is_slo(source_info) or large.is_dlo(source_info)):
            info = await copy_large(src_account, source, account, target, source_info, meta, stored, content_type,
                                    fresh)
        else:
            info = await svc.copy_object(account, source[0], source[1], target[0], target[1], metadata=meta,
                                         headers=stored, content_type=content_type, fresh_metadata=fresh,
                                         src_account=src_account)
        return Reply(None, 201, {
            "ETag": info.etag, "Last-Modified": core.http_date(info.last_modified), "Content-Length": "0",
            "X-Copied-From": urllib.parse.quote(f"{source[0]}/{source[1]}"),
            "X-Copied-From-Last-Modified": core.http_date(source_info.last_modified),
            **({"X-Copied-From-Account": urllib.parse.quote("AUTH_" + src_account)} if src_account != account else {}),
        })

    async def copy_large(src_account: str, source: tuple[str, str], account: str, target: tuple[str, str],
                         source_info: core.ObjectInfo, meta: dict[str, str], stored: dict[str, str],
                         content_type: str | None, fresh: bool) -> core.ObjectInfo:
        """A large object copied as what it reads as: one plain object of its segments' bytes."""
        async with await svc.open_object(src_account, *source) as reader:
            big = await whole_of(src_account, reader)
        kept = {} if fresh else {k: v for k, v in source_info.headers.items()
                                 if k not in ("x-object-manifest", "x-static-large-object", "x-delete-at")}
        return await svc.put_object(account, target[0], target[1], large.stream(svc, src_account, big, 0, big.size),
                                    content_type=content_type or source_info.content_type,
                                    metadata={**({} if fresh else source_info.metadata), **meta},
                                    headers={**kept, **stored}, size=big.size)

    async def whole_of(account: str, reader: ObjectReader) -> large.Large:
        if large.is_slo(reader.info):
            return await large.slo(reader)
        return await large.dlo(svc, account, reader.info.headers["x-object-manifest"])

    def _account_header(call: Call, name: str, default: str) -> str:
        value = call.request.headers.get(name)
        if value is None:
            return default
        value = urllib.parse.unquote(value.strip())
        if not value.startswith("AUTH_") or len(value) <= 5 or "/" in value:
            raise core.PreconditionFailed(f"{name} must name an account (AUTH_<project_id>)")
        return value[5:]

    async def versions_of(account: str, container: str) -> tuple[str, bool]:
        """(versions container, stack mode?) of a container with versioning on; ("", False) if off."""
        try:
            metadata = (await svc.head_container(account, container)).metadata
        except NotFound:
            return "", False
        return versions_in(metadata)

    # --- handlers -------------------------------------------------------------------------------
    async def whole(call: Call, account: str, reader: ObjectReader) -> large.Large | None:
        """The large object a manifest stands for (None: a plain object, or the manifest asked for)."""
        info = reader.info
        if call.query.get("multipart-manifest") == "get":
            return None
        if large.is_slo(info) or large.is_dlo(info):
            return await whole_of(account, reader)
        return None

    async def object_get(call: Call, account: str, container: str, object: str) -> Any:
        await authorize(call, account, acl.OBJECT_READ, container, object)
        site = await website(call, account, container)
        if site is None:
            return await object_read(call, account, container, object)
        serve = functools.partial(serve_plain, account, container)
        if object.endswith("/"):
            try:
                return await object_read(call, account, container, object)
            except NotFound:
                return await staticweb.directory(svc, call, account, container, object, site, serve)
        try:
            return await object_read(call, account, container, object)
        except NotFound:
            if await svc.list_objects(account, container, prefix=object + "/", limit=1):
                return staticweb.redirect(call.request.path + "/")  # a directory: its index or listing
            return await staticweb.error_page(svc, account, container, site, serve)

    async def website(call: Call, account: str, container: str) -> dict[str, str] | None:
        """The container's metadata when this request is a static website visit (staticweb.py)."""
        if call.auth is not None and "X-Web-Mode" not in call.request.headers:
            return None
        try:
            metadata = (await svc.head_container(account, container)).metadata
        except NotFound:
            return None
        return metadata if staticweb.applies(call, metadata) else None

    async def serve_plain(account: str, container: str, name: str, status: int) -> Response:
        reader = await svc.open_object(account, container, name)
        return _stream(reader.chunks(0, reader.info.size), status, views.object_headers(reader.info))

    async def object_read(call: Call, account: str, container: str, object: str) -> Any:
        reader = await svc.open_object(account, container, object)
        try:
            info = _live(reader.info, svc.now())
            big = await whole(call, account, reader)
            if big is None and large.is_slo(info):  # the manifest itself, as stored
                manifest = await large.read_manifest(reader)
                headers = {**views.object_headers(info, size=len(manifest)),
                           "Content-Type": "application/json; charset=utf-8"}
                return Reply(manifest, 200, headers)
            size = info.size if big is None else big.size
            etag = info.etag if big is None else big.etag
            headers = views.object_headers(info, size=size, etag=etag if big is not None else None)
            status = core.check_conditions(call.request.headers, etag, info.last_modified)
            if status is not None:
                reader.close()
                return _not_modified(status, info)
            ranges = core.parse_range(call.request.headers.get("Range"), size)
            if ranges == []:
                reader.close()
                return Reply("<html><h1>Requested Range Not Satisfiable</h1><p>The Range requested is not "
                             "available.</p></html>", 416,
                             {"Content-Range": f"bytes */{size}", "Content-Type": "text/html; charset=UTF-8"})
            if ranges is not None and len(ranges) > 1 and big is None:
                return _byteranges(svc, reader, ranges, headers)
            if ranges is None or len(ranges) > 1:
                start, end, code = 0, size, 200
            else:
                (start, end), code = ranges[0], 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
                headers["Content-Length"] = str(end - start)
        except BaseException:
            reader.close()
            raise
        if "filename" in call.query or "inline" in call.query:  # TempURL's download hints
            name = call.query.get("filename") or object.rsplit("/", 1)[-1]
            kind = "inline" if "inline" in call.query else "attachment"
            headers["Content-Disposition"] = f"{kind}; filename*=UTF-8''{urllib.parse.quote(name)}"
        if big is not None:
            reader.close()
            return _stream(large.stream(svc, account, big, start, end), code, headers)
        return _stream(reader.chunks(start, end), code, headers)

    async def object_head(call: Call, account: str, container: str, object: str) -> Any:
        await authorize(call, account, acl.OBJECT_READ, container, object)
        info = _live(await svc.head_object(account, container, object), svc.now())
        etag = info.etag
        headers = views.object_headers(info)
        if large.is_dlo(info) and call.query.get("multipart-manifest") != "get":
            big = await large.dlo(svc, account, info.headers["x-object-manifest"])
            etag = big.etag
            headers = views.object_headers(info, size=big.size, etag=etag)
        elif large.is_slo(info):
            headers["ETag"] = f'"{etag}"'
        status = core.check_conditions(call.request.headers, etag, info.last_modified)
        if status is not None:
            return _not_modified(status, info)
        response = Response(b"", status=200, headers=headers)
        response.headers["Content-Length"] = headers["Content-Length"]
        return response

    async def object_put(call: Call, account: str, container: str, object: str) -> Reply:
        try:
            await authorize(call, account, acl.OBJECT_WRITE, container, object)
            core.check_object_name(object)
            headers = call.request.headers
            length = _declared_length(call)
            if "X-Copy-From" in headers:
                if length:
                    raise BadRequest("Copy requests require a zero byte body")
                source = core.split_path(headers["X-Copy-From"], "X-Copy-From")
                src_account = _account_header(call, "X-Copy-From-Account", account)
                return await copy(call, account, source, src_account, (container, object))
            if length is not None and length > core.MAX_FILE_SIZE:
                raise PayloadTooLarge("Your request is too large.")
            meta, _ = core.user_metadata(headers, "x-object-meta-")
            core.check_metadata(meta, "X-Object-Meta-")
            now = svc.now()
            stored = core.stored_object_headers(headers, now)
            if headers.get("If-None-Match", "").strip() == "*":
                try:
                    _live(await svc.head_object(account, container, object), now)
                    raise core.PreconditionFailed("Precondition Failed")
                except NotFound:
                    pass
            if call.query.get("multipart-manifest") == "put":
                info = await large.put_slo(svc, account, container, object, await _small_body(call), metadata=meta,
                                           content_type=_content_type(call, object), headers=stored)
                return Reply(None, 201, {"ETag": f'"{info.etag}"', "Content-Length": "0",
                                         "Last-Modified": core.http_date(info.last_modified)})
            # one read of the container for its quota and versioning, and put_object's own check
            target = await svc.head_container(account, container)
            if length:  # refused before the bytes come in when the size is known
                core.check_quota(target.metadata, target.bytes_used, target.object_count, length, 0)
            archive, _ = versions_in(target.metadata)
            info = await svc.put_object(account, container, object, call.request.body,
                                        content_type=_content_type(call, object), metadata=meta, headers=stored,
                                        size=length, etag=headers.get("ETag"), archive=archive,
                                        container_checked=True)
        except CloudboxError:
            await refused_body(call)
            raise
        return Reply(None, 201, {"ETag": info.etag, "Last-Modified": core.http_date(info.last_modified),
                                 "Content-Length": "0"})

    async def object_post(call: Call, account: str, container: str, object: str) -> Reply:
        if formpost.is_form(call):  # signed by a temp-url key instead of a token
            return await formpost.handle(svc, call, account, container, object)
        await authorize(call, account, acl.OBJECT_WRITE, container, object)
        headers = call.request.headers
        meta, _ = core.user_metadata(headers, "x-object-meta-")
        core.check_metadata(meta, "X-Object-Meta-")
        now = svc.now()
        _live(await svc.head_object(account, container, object), now)
        await svc.update_object(account, container, object, meta, core.stored_object_headers(headers, now))
        return Reply("<html><h1>Accepted</h1><p>The request is accepted for processing.</p></html>", 202,
                     {"Content-Type": "text/html; charset=UTF-8"})

    async def object_delete(call: Call, account: str, container: str, object: str) -> Reply:
        await authorize(call, account, acl.OBJECT_WRITE, container, object)
        if call.query.get("multipart-manifest") == "delete":
            report = await large.delete_slo(svc, account, container, object)
            if "json" in call.request.headers.get("Accept", ""):
                return Reply(json.dumps(report), 200, {"Content-Type": "application/json; charset=utf-8"})
            text = "".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}\n" for k, v in report.items())
            return Reply(text, 200, {"Content-Type": "text/plain; charset=utf-8"})
        archive, restore = await versions_of(account, container)
        await svc.delete_object(account, container, object, archive=archive, restore=restore)
        return Reply(None, 204)

    async def object_copy(call: Call, account: str, container: str, object: str) -> Reply:
        headers = call.request.headers
        if "Destination" not in headers:
            raise core.PreconditionFailed("Destination header required")
        target = core.split_path(headers["Destination"], "Destination")
        target_account = _account_header(call, "Destination-Account", account)
        await authorize(call, target_account, acl.OBJECT_WRITE, target[0])
        return await copy(call, target_account, (container, object), account, target)

    return [
        Route("GET", OBJECT, object_get, access="public", summary="Download an object (ranges, conditions)",
              query=("multipart-manifest",)),
        Route("HEAD", OBJECT, object_head, access="public", summary="Show an object's metadata",
              query=("multipart-manifest",)),
        Route("PUT", OBJECT, object_put, access="public", summary="Upload an object (streamed), or copy one",
              status=201, raw_body=True, query=("multipart-manifest",)),
        Route("POST", OBJECT, object_post, access="public", summary="Replace an object's metadata", status=202,
              raw_body=True),
        Route("DELETE", OBJECT, object_delete, access="public", summary="Delete an object", status=204,
              query=("multipart-manifest",)),
        Route("COPY", OBJECT, object_copy, access="public", summary="Copy an object to Destination", status=201),
    ], (website, serve_plain)


async def _small_body(call: Call) -> bytes:
    """A request body held in memory (an SLO manifest): at most large.SLO_MAX_MANIFEST bytes."""
    data = bytearray()
    async for chunk in call.request.body:
        data += chunk
        if len(data) > large.SLO_MAX_MANIFEST:
            raise PayloadTooLarge(f"The manifest is larger than {large.SLO_MAX_MANIFEST} bytes.")
    return bytes(data)


def _not_modified(status: int, info: core.ObjectInfo) -> Reply:
    """The answer to a conditional request that stops: 304 with the validators, or Swift's 412."""
    if status == 412:
        raise core.PreconditionFailed("A precondition of the request was not met.")
    return Reply(None, 304, {"ETag": info.etag, "Last-Modified": core.http_date(info.last_modified)})


def _byteranges(svc: ObjectService, reader: ObjectReader, ranges: list[tuple[int, int]],
                headers: dict[str, str]) -> Response:
    """A 206 of several ranges: a multipart/byteranges body, each part read from the same version
    of the object (its data id), whatever happens to the name meanwhile."""
    boundary = uuid.uuid4().hex
    size, content_type = reader.info.size, reader.info.content_type
    heads = [(f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {start}-{end - 1}/{size}"
              "\r\n\r\n").encode() for start, end in ranges]
    tail = f"--{boundary}--\r\n".encode()
    length = sum(len(h) + (end - start) + 2 for h, (start, end) in zip(heads, ranges)) + len(tail)

    async def parts() -> AsyncIterator[bytes]:
        for index, (head, (start, end)) in enumerate(zip(heads, ranges)):
            part = reader if index == 0 else await svc.reopen(reader)
            yield head
            async for chunk in part.chunks(start, end):
                yield chunk
            yield b"\r\n"
        yield tail

    return _stream(parts(), 206, {**headers, "Content-Type": f"multipart/byteranges;boundary={boundary}",
                                  "Content-Length": str(length)})


def _stream(chunks: AsyncIterator[bytes], status: int, headers: dict[str, str]) -> Response:
    response = Response(chunks, status=status, headers=headers)
    response.timeout = None  # a large object may take longer to send than quart's default
    return response

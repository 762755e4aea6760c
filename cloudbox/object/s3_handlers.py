"""S3's operations on the service, buckets and objects, on the object service (DESIGN.md).

A bucket is a container of the credential's project; an object is an object of it, its
``x-amz-meta-*`` headers its user metadata.  Each handler parses, calls the object service and
renders S3's answer; storage refusals become S3's codes here, where it is known whether a 404
was the bucket's or the key's.  Versions are ``s3_versions``'s, multipart uploads
``s3_multipart``'s; ``s3_routes.ROUTES`` is the table the gateway serves.
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import AsyncIterator

from cloudbox.errors import CloudboxError, Conflict, NotFound
from cloudbox.object import core, large, s3_versions, s3_xml
from cloudbox.object.s3_api import S3Gateway, S3Request, S3Response, check_bucket_name
from cloudbox.object.s3_common import (
    SEGMENTS, STORED, VERSIONING, XML, bucket_info, check_acl, check_key, declared_length, iso, max_arg, metadata_of,
    no_such_bucket, no_such_key, store,
)
from cloudbox.object.s3_xml import S3Error
from cloudbox.object.service import ObjectReader

RESPONSE_OVERRIDES = {"response-content-type": "Content-Type", "response-content-language": "Content-Language",
                      "response-expires": "Expires", "response-cache-control": "Cache-Control",
                      "response-content-disposition": "Content-Disposition",
                      "response-content-encoding": "Content-Encoding"}


def object_headers(info: core.ObjectInfo) -> dict[str, str]:
    headers = {"ETag": s3_xml.quoted(info.etag), "Last-Modified": core.http_date(info.last_modified),
               "Content-Type": info.content_type, "Accept-Ranges": "bytes"}
    for name, value in info.metadata.items():
        headers["x-amz-meta-" + name] = value
    for name in STORED:
        if name in info.headers:
            headers[name.title()] = info.headers[name]
    return headers


async def whole(gw: S3Gateway, request: S3Request, reader: ObjectReader, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes [start, end) of an object as S3 sees it: an SLO (a completed multipart upload) is its
    parts' bytes in order, read from the parts."""
    if large.is_slo(reader.info):
        return large.stream(gw.objects, request.account, await large.slo(reader), start, end)
    return reader.chunks(start, end)


def version_header(bucket: core.ContainerInfo, version: str | None) -> dict[str, str]:
    """x-amz-version-id, answered by a bucket that has (or had) versioning."""
    return {"x-amz-version-id": version} if version and bucket.metadata.get(VERSIONING) else {}


# --- service and buckets ----------------------------------------------------------------------------
async def list_buckets(gw: S3Gateway, request: S3Request) -> S3Response:
    containers = await gw.objects.list_containers(request.account, limit=core.ACCOUNT_LISTING_LIMIT)
    buckets = [(c.name, iso(c.created_at)) for c in containers
               if isinstance(c, core.ContainerInfo) and SEGMENTS[0] not in c.name]
    return S3Response(200, XML, s3_xml.list_buckets(*request.owner, buckets))


async def create_bucket(gw: S3Gateway, request: S3Request) -> S3Response:
    check_bucket_name(request.bucket)
    check_acl(request)
    s3_xml.parse_location_constraint(await request.small_body())
    if not await gw.objects.create_container(request.account, request.bucket):
        raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded "
                      "and you already own it.", BucketName=request.bucket)
    return S3Response(200, {"Location": "/" + request.bucket})


async def head_bucket(gw: S3Gateway, request: S3Request) -> S3Response:
    await bucket_info(gw, request)
    return S3Response(200, {"x-amz-bucket-region": gw.region})


async def delete_bucket(gw: S3Gateway, request: S3Request) -> S3Response:
    await bucket_info(gw, request)
    try:
        await gw.objects.delete_container(request.account, request.bucket)
    except Conflict as exc:
        raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty",
                      BucketName=request.bucket) from exc
    except NotFound as exc:
        raise no_such_bucket(request.bucket) from exc
    await drop_segments(gw, request, request.bucket + SEGMENTS)
    await drop_segments(gw, request, s3_versions.versions_container(request.bucket))
    return S3Response(204)


async def drop_segments(gw: S3Gateway, request: S3Request, container: str) -> None:
    """With its bucket go the parts of the multipart uploads never completed, and its versions."""
    try:
        while names := [i.name for i in await gw.objects.list_objects(request.account, container, limit=1000)]:
            for name in names:
                await gw.objects.delete_object(request.account, container, name)
        await gw.objects.delete_container(request.account, container)
    except NotFound:
        pass


async def bucket_location(gw: S3Gateway, request: S3Request) -> S3Response:
    await bucket_info(gw, request)
    return S3Response(200, XML, s3_xml.location(gw.region))


async def get_versioning(gw: S3Gateway, request: S3Request) -> S3Response:
    info = await bucket_info(gw, request)
    return S3Response(200, XML, s3_xml.versioning(info.metadata.get(VERSIONING)))


def _swift_marker(marker: str, delimiter: str) -> str:
    """Where Swift's listing goes on after a key or a common prefix S3 returned last."""
    return core.after_subdir(marker) if delimiter and marker.endswith(delimiter) else marker


async def _listing(gw: S3Gateway, request: S3Request, prefix: str, delimiter: str, marker: str,
                   max_keys: int) -> s3_xml.Listing:
    await bucket_info(gw, request)
    if max_keys == 0:
        return s3_xml.Listing([], [], False, None)
    items = await gw.objects.list_objects(request.account, request.bucket, prefix=prefix, delimiter=delimiter,
                                          marker=_swift_marker(marker, delimiter), limit=max_keys + 1)
    truncated = len(items) > max_keys
    items = items[:max_keys]
    entries = [s3_xml.Entry(i.name, i.size, i.etag, iso(i.last_modified)) for i in items
               if isinstance(i, core.ObjectInfo)]
    prefixes = [i.name for i in items if isinstance(i, core.Subdir)]
    return s3_xml.Listing(entries, prefixes, truncated, items[-1].name if truncated and items else None)


async def list_objects(gw: S3Gateway, request: S3Request) -> S3Response:
    prefix, delimiter = request.arg("prefix", "") or "", request.arg("delimiter", "") or ""
    encoding = request.arg("encoding-type", "") or ""
    max_keys = max_arg(request, "max-keys")
    if request.arg("list-type") == "2":
        token = request.arg("continuation-token")
        start_after = request.arg("start-after", "") or ""
        marker = start_after
        if token is not None:
            try:
                marker = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
            except (ValueError, UnicodeDecodeError) as exc:  # binascii.Error is a ValueError
                raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                              ArgumentName="continuation-token") from exc
        listing = await _listing(gw, request, prefix, delimiter, marker, max_keys)
        next_token = (base64.urlsafe_b64encode(listing.next_marker.encode()).decode()
                      if listing.truncated and listing.next_marker is not None else None)
        body = s3_xml.list_objects(request.bucket, listing, prefix=prefix, delimiter=delimiter, max_keys=max_keys,
                                   encoding=encoding, owner=request.owner, v2=True, start_after=start_after,
                                   continuation=token, next_continuation=next_token,
                                   fetch_owner=request.arg("fetch-owner") == "true")
    elif request.arg("list-type") not in (None, "1"):
        raise S3Error("InvalidArgument", "list-type is 1 or 2.", ArgumentName="list-type")
    else:
        marker = request.arg("marker", "") or ""
        listing = await _listing(gw, request, prefix, delimiter, marker, max_keys)
        body = s3_xml.list_objects(request.bucket, listing, prefix=prefix, delimiter=delimiter, max_keys=max_keys,
                                   encoding=encoding, owner=request.owner, v2=False, marker=marker)
    return S3Response(200, XML, body)


async def get_acl(gw: S3Gateway, request: S3Request) -> S3Response:
    """GetBucketAcl and GetObjectAcl: the owning project's FULL_CONTROL, the only ACL there is."""
    await bucket_info(gw, request)
    if request.key:
        container, name, _ = await s3_versions.locate(gw, request, request.bucket, request.key,
                                                       request.arg("versionId"))
        try:
            await gw.objects.head_object(request.account, container, name)
        except NotFound as exc:
            raise no_such_key(request.key) from exc
    return S3Response(200, XML, s3_xml.access_control_policy(*request.owner))


async def put_acl(gw: S3Gateway, request: S3Request) -> S3Response:
    """PutBucketAcl and PutObjectAcl: only the private ACL (a canned one in x-amz-acl) is taken."""
    check_acl(request)
    body = await request.small_body()
    if body.strip() or "x-amz-acl" not in request.headers:
        raise S3Error("NotImplemented", "Only a private canned ACL (x-amz-acl) is served.")
    await get_acl(gw, request)
    return S3Response(200)


# --- objects ----------------------------------------------------------------------------------
async def put_object(gw: S3Gateway, request: S3Request) -> S3Response:
    if "x-amz-copy-source" in request.headers:
        return await copy_object(gw, request)
    check_key(request.key)
    check_acl(request)
    bucket = await bucket_info(gw, request)
    size = declared_length(request)
    meta, stored = metadata_of(request)
    checksum = _checksum_to_keep(request)
    info = await store(gw, request, request.bucket, request.key, request.body(), size=size,
                       content_type=request.headers.get("content-type", ""), metadata=meta,
                       headers={**stored, **checksum}, archive=s3_versions.archive_of(bucket))
    return S3Response(200, {"ETag": s3_xml.quoted(info.etag), **checksum,
                            **version_header(bucket, s3_versions.version_id(info))})


def _checksum_to_keep(request: S3Request) -> dict[str, str]:
    """The additional checksum a PUT carries (header or trailer) is kept and answered back: it is
    checked before the object is stored, so it is the object's. (A trailer's value is known only
    once the body is stored, so that one is checked but not kept.)"""
    trailer = request.headers.get("x-amz-trailer", "").strip().lower()
    if trailer.startswith("x-amz-checksum-"):
        return {}
    return {k: v for k, v in request.headers.items()
            if k.startswith("x-amz-checksum-") and k not in ("x-amz-checksum-algorithm", "x-amz-checksum-type")}


def source_of(request: S3Request) -> tuple[str, str, str | None]:
    """The (bucket, key, version id) of x-amz-copy-source: "[/]bucket/key[?versionId=...]", URL-encoded."""
    text, _, query = request.headers["x-amz-copy-source"].partition("?")
    text = urllib.parse.unquote(text).lstrip("/")
    bucket, _, key = text.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                      "sourcebucket/sourcekey", ArgumentName="x-amz-copy-source")
    return bucket, key, dict(urllib.parse.parse_qsl(query)).get("versionId")


async def open_source(gw: S3Gateway, request: S3Request) -> ObjectReader:
    """A reader of the object (or version) x-amz-copy-source names, its copy conditions checked."""
    bucket, key, version = source_of(request)
    container, name, _ = await s3_versions.locate(gw, request, bucket, key, version)
    try:
        reader = await gw.objects.open_object(request.account, container, name)
    except NotFound as exc:
        await bucket_info(gw, request, bucket)
        raise no_such_key(key) from exc
    try:
        check_copy_conditions(request, reader.info)
    except BaseException:
        reader.close()
        raise
    return reader


def check_copy_conditions(request: S3Request, info: core.ObjectInfo) -> None:
    conditions = {name: request.headers[f"x-amz-copy-source-{header}"]
                  for name, header in (("If-Match", "if-match"), ("If-None-Match", "if-none-match"),
                                       ("If-Modified-Since", "if-modified-since"),
                                       ("If-Unmodified-Since", "if-unmodified-since"))
                  if f"x-amz-copy-source-{header}" in request.headers}
    if conditions and core.check_conditions(conditions, info.etag, info.last_modified) is not None:
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                      Condition="x-amz-copy-source-If-*")


async def copy_object(gw: S3Gateway, request: S3Request) -> S3Response:
    """CopyObject: the source's bytes streamed into a new object (kept as a version of the key it
    replaces, in a versioned bucket), with the source's metadata or the request's."""
    check_key(request.key)
    check_acl(request)
    directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.", ArgumentName="x-amz-metadata-directive")
    src_bucket, src_key, src_version = source_of(request)
    if (src_bucket, src_key, src_version) == (request.bucket, request.key, None) and directive == "COPY":
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to "
                      "itself without changing the object's metadata, storage class, website redirect location "
                      "or encryption attributes.")
    bucket = await bucket_info(gw, request)
    replace = directive == "REPLACE"
    meta, stored = metadata_of(request) if replace else ({}, {})
    async with await open_source(gw, request) as reader:
        await request.small_body()  # a copy has no body; read what there is so the connection stays usable
        source = reader.info
        info = await store(
            gw, request, request.bucket, request.key, await whole(gw, request, reader, 0, source.size),
            size=source.size,
            content_type=request.headers.get("content-type", "") if replace else source.content_type,
            metadata=meta if replace else dict(source.metadata),
            headers=stored if replace else {k: v for k, v in source.headers.items() if k in STORED},
            etag_override=source.etag, archive=s3_versions.archive_of(bucket))
    return S3Response(200, {**XML, **version_header(bucket, s3_versions.version_id(info))},
                      s3_xml.copy_result(info.etag, iso(info.last_modified)))


def _range(request: S3Request, size: int) -> tuple[int, int] | None:
    """The one byte range S3 serves (several ranges: the whole object, as S3 does)."""
    header = request.headers.get("range")
    ranges = core.parse_range(header, size)
    if ranges == [] or (header and ranges is None and size == 0 and header.strip().startswith("bytes=")):
        raise S3Error("InvalidRange", "The requested range is not satisfiable", ActualObjectSize=str(size),
                      RangeRequested=header or "")
    if ranges is None or len(ranges) != 1:
        return None
    return ranges[0]


def _conditions(request: S3Request, info: core.ObjectInfo) -> None:
    names = {"if-match": "If-Match", "if-none-match": "If-None-Match", "if-modified-since": "If-Modified-Since",
             "if-unmodified-since": "If-Unmodified-Since"}
    asked = {names[k]: v for k, v in request.headers.items() if k in names}
    status = core.check_conditions(asked, info.etag, info.last_modified) if asked else None
    if status == 304:
        raise S3Error("NotModified", "Not Modified")
    if status == 412:
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                      Condition="If-Match" if "If-Match" in asked else "If-Unmodified-Since")


async def get_object(gw: S3Gateway, request: S3Request) -> S3Response:
    if request.arg("partNumber") not in (None, "1"):
        raise S3Error("InvalidArgument", "Only partNumber 1 of an object is served.", ArgumentName="partNumber")
    bucket = await bucket_info(gw, request)
    container, name, _ = await s3_versions.locate(gw, request, request.bucket, request.key, request.arg("versionId"))
    try:
        reader = await gw.objects.open_object(request.account, container, name)
    except NotFound as exc:
        raise no_such_key(request.key) from exc
    try:
        info = reader.info
        if info.headers.get(s3_versions.MARKER) == "true":
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.",
                          Method=request.method, ResourceType="DeleteMarker")
        _conditions(request, info)
        headers = {**object_headers(info), **version_header(bucket, s3_versions.version_id(info))}
        span = _range(request, info.size)
        if request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED" and span is None:
            headers.update({k: v for k, v in info.headers.items() if k.startswith("x-amz-checksum-")})
        for query_name, header in RESPONSE_OVERRIDES.items():
            value = request.arg(query_name)
            if value is not None:
                headers[header] = value
        if span is None:
            start, end, status = 0, info.size, 200
        else:
            (start, end), status = span, 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
        headers["Content-Length"] = str(end - start)
    except BaseException:
        reader.close()
        raise
    if request.method == "HEAD":
        reader.close()
        return S3Response(status, headers, b"")
    if large.is_slo(info):
        try:
            stream = await whole(gw, request, reader, start, end)
        finally:
            reader.close()
        return S3Response(status, headers, stream=stream)
    return S3Response(status, headers, stream=reader.chunks(start, end), close=reader.close)


async def delete_object(gw: S3Gateway, request: S3Request) -> S3Response:
    """204 whether or not the key was there, as S3 answers."""
    bucket = await bucket_info(gw, request)
    version, marker = await s3_versions.delete_version(gw, request, request.key, request.arg("versionId"), bucket)
    return S3Response(204, {**version_header(bucket, version), **({"x-amz-delete-marker": "true"} if marker else {})})


async def delete_objects(gw: S3Gateway, request: S3Request) -> S3Response:
    bucket = await bucket_info(gw, request)
    if "content-md5" not in request.headers and not any(k.startswith("x-amz-checksum-") for k in request.headers):
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    objects, quiet = s3_xml.parse_delete(await request.small_body())
    deleted: list[tuple[str, str | None, bool]] = []
    errors: list[tuple[str, str, str]] = []
    for key, version in objects:
        try:
            gone, marker = await s3_versions.delete_version(gw, request, key, version, bucket)
        except S3Error as exc:
            errors.append((key, exc.code, exc.message))
            continue
        except CloudboxError as exc:
            errors.append((key, "InternalError" if exc.status >= 500 else "InvalidArgument", exc.message))
            continue
        deleted.append((key, gone, marker))
    return S3Response(200, XML, s3_xml.delete_result(deleted, errors, quiet=quiet))

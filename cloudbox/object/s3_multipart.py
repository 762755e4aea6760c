"""S3's multipart uploads on the object service.

An upload lives in the container ``<bucket>+segments`` of the same project (Swift's own s3api
does the same; no S3 bucket name has a "+"):
- ``<upload id>``: the upload's marker, an object whose bytes are the key (a key may be 1,024
  bytes, more than a metadata value holds) and whose metadata, content type and stored headers
  are the ones the final object gets; header ``x-s3-key-sha256`` says which key it is for;
- ``<upload id>/<part number, 5 digits>``: each part, an ordinary object (its ETag the md5).
Complete writes the object as an SLO manifest of its parts (header ``x-s3-upload``: the upload id;
no part's bytes are written again) with S3's multipart ETag, md5 of the parts' binary md5s, then
"-" and the number of parts; then the marker and the parts not used go. The parts used stay as
long as the object or a kept version of it does (``s3_common.drop_parts``). S3 reads, copies and
ranges such an object whole (``large.stream``), in a cluster each part from its own copies.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import AsyncIterator

from cloudbox.errors import NotFound
from cloudbox.object import core, s3_xml, views
from cloudbox.object import s3_common as c
from cloudbox.object import s3_handlers as h
from cloudbox.object import s3_versions
from cloudbox.object.s3_api import S3Gateway, S3Request, S3Response
from cloudbox.object.s3_xml import S3Error

MIN_PART = 5 << 20  # every part but the last
MAX_PART_NUMBER = 10000
KEY_HASH = "x-s3-key-sha256"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART = re.compile(r"[0-9a-f]{32}/(\d{5})")


def segments(request: S3Request) -> str:
    return request.bucket + c.SEGMENTS


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _part_name(upload_id: str, number: int) -> str:
    return f"{upload_id}/{number:05d}"


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                   "upload may have been aborted or completed.", UploadId=upload_id)


async def upload_marker(gw: S3Gateway, request: S3Request) -> tuple[str, core.ObjectInfo]:
    """The upload the query's uploadId names, for the request's key; NoSuchUpload otherwise."""
    upload_id = request.arg("uploadId") or ""
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise no_such_upload(upload_id)
    await c.bucket_info(gw, request)
    try:
        info = await gw.objects.head_object(request.account, segments(request), upload_id)
    except NotFound as exc:
        raise no_such_upload(upload_id) from exc
    if info.headers.get(KEY_HASH) != _key_hash(request.key):
        raise no_such_upload(upload_id)
    return upload_id, info


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def initiate(gw: S3Gateway, request: S3Request) -> S3Response:
    c.check_key(request.key)
    c.check_acl(request)
    await c.bucket_info(gw, request)
    meta, stored = c.metadata_of(request)
    await request.small_body()
    await gw.objects.create_container(request.account, segments(request))
    upload_id = uuid.uuid4().hex
    key = request.key.encode("utf-8", "surrogatepass")
    await gw.objects.put_object(request.account, segments(request), upload_id, _one(key), size=len(key),
                                content_type=request.headers.get("content-type", ""), metadata=meta,
                                headers={**stored, KEY_HASH: _key_hash(request.key)})
    return S3Response(200, c.XML, s3_xml.initiate_multipart(request.bucket, request.key, upload_id))


def _part_number(request: S3Request) -> int:
    text = request.arg("partNumber") or ""
    if not s3_xml.is_number(text) or not 1 <= int(text) <= MAX_PART_NUMBER:
        raise S3Error("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, "
                      "inclusive", ArgumentName="partNumber", ArgumentValue=text[:20])
    return int(text)


async def upload_part(gw: S3Gateway, request: S3Request) -> S3Response:
    number = _part_number(request)
    upload_id, _ = await upload_marker(gw, request)
    name = _part_name(upload_id, number)
    if "x-amz-copy-source" in request.headers:
        return await _copy_part(gw, request, name)
    info = await c.store(gw, request, segments(request), name, request.body(), size=c.declared_length(request))
    return S3Response(200, {"ETag": s3_xml.quoted(info.etag)})


async def _copy_part(gw: S3Gateway, request: S3Request, name: str) -> S3Response:
    """UploadPartCopy: the part's bytes are (a range of) another object's."""
    async with await h.open_source(gw, request) as reader:
        start, end = 0, reader.info.size
        wanted = request.headers.get("x-amz-copy-source-range")
        if wanted is not None:
            span = core.parse_range(wanted, reader.info.size)
            if not span or len(span) != 1 or not wanted.strip().startswith("bytes=") or "-" not in wanted \
                    or wanted.strip().endswith("-"):
                raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form "
                              "bytes=first-last where first and last are the zero-based offsets of the first and "
                              "last bytes to copy", ArgumentName="x-amz-copy-source-range")
            start, end = span[0]
        await request.small_body()
        info = await c.store(gw, request, segments(request), name, await h.whole(gw, request, reader, start, end),
                             size=end - start)
    return S3Response(200, c.XML, s3_xml.copy_result(info.etag, c.iso(info.last_modified), part=True))


async def _parts(gw: S3Gateway, request: S3Request, upload_id: str, after: int = 0,
                 limit: int = MAX_PART_NUMBER) -> list[tuple[int, core.ObjectInfo]]:
    items = await gw.objects.list_objects(request.account, segments(request), prefix=upload_id + "/",
                                          marker=_part_name(upload_id, after) if after else "", limit=limit)
    found = []
    for item in items:
        match = _PART.fullmatch(item.name) if isinstance(item, core.ObjectInfo) else None
        if match:
            found.append((int(match[1]), item))
    return found


async def list_parts(gw: S3Gateway, request: S3Request) -> S3Response:
    upload_id, _ = await upload_marker(gw, request)
    marker_text = request.arg("part-number-marker", "0") or "0"
    if not s3_xml.is_number(marker_text):
        raise S3Error("InvalidArgument", "part-number-marker must be an integer.", ArgumentName="part-number-marker")
    max_parts = c.max_arg(request, "max-parts")
    found = await _parts(gw, request, upload_id, int(marker_text), max_parts + 1)
    parts = [s3_xml.Part(n, i.size, i.etag, c.iso(i.last_modified)) for n, i in found[:max_parts]]
    return S3Response(200, c.XML, s3_xml.list_parts(request.bucket, request.key, upload_id, parts,
                                                    marker=int(marker_text), max_parts=max_parts,
                                                    truncated=len(found) > max_parts, owner=request.owner))


def multipart_etag(etags: list[str]) -> str:
    return hashlib.md5(b"".join(bytes.fromhex(e) for e in etags)).hexdigest() + f"-{len(etags)}"


async def complete(gw: S3Gateway, request: S3Request) -> S3Response:
    upload_id, marker = await upload_marker(gw, request)
    wanted = s3_xml.parse_complete(await request.small_body())
    stored = {n: info for n, info in await _parts(gw, request, upload_id)}
    chosen: list[core.ObjectInfo] = []
    for number, etag in wanted:
        info = stored.get(number)
        if info is None or info.etag != etag.lower():
            raise S3Error("InvalidPart", "One or more of the specified parts could not be found. The part may not "
                          "have been uploaded, or the specified entity tag may not match the part's entity tag.",
                          UploadId=upload_id, PartNumber=str(number), ETag=etag)
        chosen.append(info)
    for number_info in chosen[:-1]:
        if number_info.size < MIN_PART:
            raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.",
                          ProposedSize=str(number_info.size), MinSizeAllowed=str(MIN_PART))
    container = segments(request)
    # The object is a manifest of its parts (an SLO, which Swift's API reads whole too): completing
    # writes none of their bytes again. The parts stay, and go when the object goes (s3_common).
    manifest = json.dumps([{"name": f"/{container}/{info.name}", "hash": info.etag, "bytes": info.size,
                            "content_type": info.content_type,
                            "last_modified": views.listing_time(info.last_modified)} for info in chosen]).encode()
    etag = multipart_etag([info.etag for info in chosen])
    headers = {k: v for k, v in marker.headers.items() if k != KEY_HASH}
    headers.update({"x-static-large-object": "True", c.UPLOAD: upload_id})
    bucket = await c.bucket_info(gw, request)
    final = await c.store(gw, request, request.bucket, request.key, _one(manifest), size=len(manifest),
                          content_type=marker.content_type, metadata=dict(marker.metadata), headers=headers,
                          etag_override=etag, size_override=sum(i.size for i in chosen),
                          archive=s3_versions.archive_of(bucket))
    kept = frozenset(info.name for info in chosen)
    await _drop(gw, request, upload_id, keep=kept)
    location = f"{request.base_url}/{request.bucket}/{request.key}"
    return S3Response(200, {**c.XML, **h.version_header(bucket, s3_versions.version_id(final))},
                      s3_xml.complete_multipart(location, request.bucket, request.key, final.etag))


async def _drop(gw: S3Gateway, request: S3Request, upload_id: str, keep: frozenset[str] = frozenset()) -> None:
    """Remove an upload's parts (but those in ``keep``), then its marker (so a retried abort still
    finds what is left)."""
    for _, info in await _parts(gw, request, upload_id):
        if info.name in keep:
            continue
        try:
            await gw.objects.delete_object(request.account, segments(request), info.name)
        except NotFound:
            pass
    try:
        await gw.objects.delete_object(request.account, segments(request), upload_id)
    except NotFound:
        pass


async def abort(gw: S3Gateway, request: S3Request) -> S3Response:
    upload_id, _ = await upload_marker(gw, request)
    await _drop(gw, request, upload_id)
    return S3Response(204)


async def list_uploads(gw: S3Gateway, request: S3Request) -> S3Response:
    """The uploads begun and neither completed nor aborted, by upload id (each one's key read
    from its marker)."""
    await c.bucket_info(gw, request)
    prefix = request.arg("prefix", "") or ""
    max_uploads = c.max_arg(request, "max-uploads")
    try:
        items = await gw.objects.list_objects(request.account, segments(request), delimiter="/",
                                              limit=core.CONTAINER_LISTING_LIMIT)
    except NotFound:
        items = []
    uploads: list[tuple[str, str, str]] = []
    for item in items:
        if not isinstance(item, core.ObjectInfo) or not _UPLOAD_ID.fullmatch(item.name):
            continue
        try:
            async with await gw.objects.open_object(request.account, segments(request), item.name) as reader:
                key = b"".join([chunk async for chunk in reader.chunks()]).decode("utf-8", "surrogatepass")
        except NotFound:
            continue
        if key.startswith(prefix):
            uploads.append((key, item.name, c.iso(item.last_modified)))
    uploads.sort()
    return S3Response(200, c.XML, s3_xml.list_uploads(request.bucket, uploads[:max_uploads], prefix=prefix,
                                                      max_uploads=max_uploads, truncated=len(uploads) > max_uploads,
                                                      owner=request.owner))

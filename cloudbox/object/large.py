"""Large objects, read as one object: DLO (``X-Object-Manifest: <container>/<prefix>``: every object
under the prefix, in listing order, when read) and SLO (``multipart-manifest=put``: a manifest
object naming its segments, checked when it is written).

An SLO's row holds the whole: its size is the segments' total and its ETag the md5 of their
ETags (Swift's), while its file holds the manifest as Swift stores it (what
``multipart-manifest=get`` returns): ``[{"name": "/<container>/<object>", "hash", "bytes",
"content_type", "last_modified", "range"?}]``. Segments are plain objects of the same account.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any, AsyncIterator

from cloudbox.errors import BadRequest, NotFound, PayloadTooLarge
from cloudbox.object import core, views
from cloudbox.object.service import ObjectReader, ObjectService

SLO_MAX_SEGMENTS = 1000
SLO_MAX_MANIFEST = 8 << 20  # bytes of a manifest (as sent, and as stored)
DLO_PAGE = core.CONTAINER_LISTING_LIMIT


@dataclass(frozen=True)
class Segment:
    container: str
    name: str
    etag: str
    start: int  # the part of the segment used: [start, end)
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Large:
    segments: list[Segment]
    size: int
    etag: str


def is_slo(info: core.ObjectInfo) -> bool:
    return info.headers.get("x-static-large-object", "").lower() in ("true", "1", "yes")


def is_dlo(info: core.ObjectInfo) -> bool:
    return bool(info.headers.get("x-object-manifest"))


def _etag_of(etags: list[str]) -> str:
    return hashlib.md5("".join(etags).encode(), usedforsecurity=False).hexdigest()


async def dlo(svc: ObjectService, account: str, manifest: str) -> Large:
    container, _, prefix = urllib.parse.unquote(manifest).lstrip("/").partition("/")
    segments: list[Segment] = []
    marker = ""
    while True:
        try:
            page = await svc.list_objects(account, container, prefix=prefix, marker=marker, limit=DLO_PAGE)
        except NotFound:
            break
        segments += [Segment(container, o.name, o.etag, 0, o.size) for o in page if isinstance(o, core.ObjectInfo)]
        if len(page) < DLO_PAGE:
            break
        marker = page[-1].name
    return Large(segments, sum(s.length for s in segments), _etag_of([s.etag for s in segments]))


async def read_manifest(reader: ObjectReader) -> bytes:
    data = bytearray()
    async for chunk in reader.chunks(0, None):
        data += chunk
        if len(data) > SLO_MAX_MANIFEST:
            break
    return bytes(data)


async def slo(reader: ObjectReader) -> Large:
    entries = json.loads(await read_manifest(reader))
    segments = []
    for entry in entries:
        container, _, name = entry["name"].lstrip("/").partition("/")
        start, end = 0, entry["bytes"]
        if entry.get("range"):
            start, end = _range(entry["range"], entry["bytes"])
        segments.append(Segment(container, name, entry["hash"], start, end))
    return Large(segments, reader.info.size, reader.info.etag)


def _range(spec: str, size: int) -> tuple[int, int]:
    ranges = core.parse_range("bytes=" + str(spec), size)
    if not ranges or len(ranges) != 1:
        raise BadRequest(f"Invalid range {core.quote(spec)} for a segment of {size} bytes")
    return ranges[0]


async def stream(svc: ObjectService, account: str, large: Large, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes [start, end) of the whole; a segment changed since the manifest ends the stream early
    (the client sees a short body, as with Swift)."""
    position = 0
    for segment in large.segments:
        low, high = max(start, position), min(end, position + segment.length)
        if low < high:
            async with await svc.open_object(account, segment.container, segment.name) as reader:
                if reader.info.etag != segment.etag:
                    return
                offset = segment.start - position
                async for chunk in reader.chunks(low + offset, high + offset):
                    yield chunk
        position += segment.length
        if position >= end:
            return


async def put_slo(svc: ObjectService, account: str, container: str, name: str, body: bytes, *,
                  content_type: str, metadata: dict[str, str], headers: dict[str, str]) -> core.ObjectInfo:
    """Check a manifest sent with ``multipart-manifest=put`` and store it (400 with Swift's list of
    errors when a segment is missing or differs)."""
    try:
        entries = json.loads(body)
    except ValueError:
        raise BadRequest("Manifest must be valid JSON.") from None
    if not isinstance(entries, list) or not entries:
        raise BadRequest("Manifest must be a non-empty list of segments.")
    if len(entries) > SLO_MAX_SEGMENTS:
        raise PayloadTooLarge(f"Too many segments; max {SLO_MAX_SEGMENTS}")
    stored: list[dict[str, Any]] = []
    errors: list[str] = []
    for index, entry in enumerate(entries):
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or set(entry) - {"path", "etag", "size_bytes", "range"}:
            raise BadRequest(f"Index {index}: segments need a path and may have etag, size_bytes and range.")
        try:
            seg_container, seg_name = core.split_path(path, "path")
        except core.PreconditionFailed:
            raise BadRequest(f"Index {index}: path does not refer to an object: {core.quote(path)}") from None
        try:
            info = await svc.head_object(account, seg_container, seg_name)
        except NotFound:
            errors.append(f"{path}, 404 Not Found")
            continue
        etag, size = entry.get("etag"), entry.get("size_bytes")
        if etag not in (None, "") and str(etag).strip('"') != info.etag:
            errors.append(f"{path}, Etag Mismatch")
        if size not in (None, "") and (not isinstance(size, int) or size != info.size):
            errors.append(f"{path}, Size Mismatch")
        if is_slo(info) or is_dlo(info):
            errors.append(f"{path}, Segments of segments are not supported here")
        item = {"name": f"/{seg_container}/{seg_name}", "hash": info.etag, "bytes": info.size,
                "content_type": info.content_type, "last_modified": views.listing_time(info.last_modified)}
        if entry.get("range"):
            _range(entry["range"], info.size)
            item["range"] = str(entry["range"])
        stored.append(item)
    if errors:
        raise BadRequest("Errors:\n" + "\n".join(errors))
    lengths = [(_range(s["range"], s["bytes"]) if "range" in s else (0, s["bytes"])) for s in stored]
    total = sum(end - start for start, end in lengths)
    manifest = json.dumps(stored).encode()

    async def one_chunk() -> AsyncIterator[bytes]:
        yield manifest

    return await svc.put_object(account, container, name, one_chunk(), content_type=content_type,
                                metadata=metadata, headers={**headers, "x-static-large-object": "True"},
                                etag_override=_etag_of([s["hash"] for s in stored]), size_override=total)


async def delete_slo(svc: ObjectService, account: str, container: str, name: str) -> dict[str, Any]:
    """``multipart-manifest=delete``: the segments, then the manifest; Swift's bulk-delete report."""
    async with await svc.open_object(account, container, name) as reader:
        if not is_slo(reader.info):
            raise BadRequest("Not an SLO manifest")
        large = await slo(reader)
    deleted = missing = 0
    for segment in large.segments:
        try:
            await svc.delete_object(account, segment.container, segment.name)
            deleted += 1
        except NotFound:
            missing += 1
    await svc.delete_object(account, container, name)
    return {"Number Deleted": deleted + 1, "Number Not Found": missing, "Response Body": "",
            "Response Status": "200 OK", "Errors": []}

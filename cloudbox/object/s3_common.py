"""What S3's handlers share: its names for the object service's refusals, the bucket and key
lookups, the checks of keys, lengths and metadata, and storing a body (``store``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, AsyncIterator

from cloudbox.errors import CloudboxError, NotFound, PayloadTooLarge
from cloudbox.object import core
from cloudbox.object.s3_api import S3Gateway, S3Request
from cloudbox.object.s3_xml import S3Error, is_number

MAX_KEYS = 1000
SEGMENTS = "+segments"  # multipart parts live in "<bucket>+segments" (no bucket name has a "+")
VERSIONING = "x-container-sysmeta-s3-versioning"
# Object headers S3 stores and answers (besides Content-Type and the user metadata).
STORED = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
XML = {"Content-Type": "application/xml"}
# On a completed multipart object (an SLO manifest of its parts): its upload id. The parts stay in
# "<bucket>+segments" as long as the object (or a kept version of it) does, and go with it.
UPLOAD = "x-s3-upload"


def iso(seconds: float) -> str:
    """S3's timestamps in XML: milliseconds and a Z."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", BucketName=bucket)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", Key=key)


async def bucket_info(gw: S3Gateway, request: S3Request, bucket: str | None = None) -> core.ContainerInfo:
    name = bucket if bucket is not None else request.bucket
    try:
        return await gw.objects.head_container(request.account, name)
    except NotFound as exc:
        raise no_such_bucket(name) from exc
    except CloudboxError as exc:  # a name Swift refuses (too long, a "/"): no such bucket either
        raise no_such_bucket(name) from exc


async def object_info(gw: S3Gateway, request: S3Request, bucket: str, key: str) -> core.ObjectInfo:
    try:
        return await gw.objects.head_object(request.account, bucket, key)
    except NotFound as exc:
        await bucket_info(gw, request, bucket)
        raise no_such_key(key) from exc


def metadata_of(request: S3Request) -> tuple[dict[str, str], dict[str, str]]:
    """The user metadata and the stored headers a PUT (or a copy that replaces them) sets."""
    meta = {k[len("x-amz-meta-"):]: v for k, v in request.headers.items() if k.startswith("x-amz-meta-")}
    stored = {k: v for k, v in request.headers.items() if k in STORED}
    if "content-encoding" in stored:  # aws-chunked is how the body travelled, not what it is
        kept = [e.strip() for e in stored["content-encoding"].split(",") if e.strip() and e.strip() != "aws-chunked"]
        stored["content-encoding"] = ",".join(kept)
        if not kept:
            del stored["content-encoding"]
    try:
        core.check_metadata(meta, "x-object-meta-")
    except CloudboxError as exc:
        raise S3Error("InvalidArgument", exc.message) from exc
    return meta, stored


def max_arg(request: S3Request, name: str, default: int = MAX_KEYS) -> int:
    text = request.arg(name)
    if text is None:
        return default
    if not is_number(text):
        raise S3Error("InvalidArgument", f"{name} must be a non-negative integer.", ArgumentName=name)
    return min(int(text), MAX_KEYS)


PRIVATE_ACLS = ("private", "bucket-owner-full-control", "bucket-owner-read")


def check_acl(request: S3Request) -> None:
    """Buckets and objects are their project's alone: a canned ACL or grant that would share them
    is refused rather than ignored (a client that asked for public-read must not think it got it)."""
    canned = request.headers.get("x-amz-acl")
    if canned is not None and canned.strip().lower() not in PRIVATE_ACLS:
        raise S3Error("NotImplemented", f"Only private ACLs are served; {canned[:40]!r} would share the object.",
                      Header="x-amz-acl")
    if any(k.startswith("x-amz-grant-") for k in request.headers):
        raise S3Error("NotImplemented", "ACL grants are not served; buckets and objects are their project's.",
                      Header="x-amz-grant-*")


def check_key(key: str) -> None:
    if len(key.encode("utf-8", "surrogatepass")) > core.MAX_OBJECT_NAME_LENGTH:
        raise S3Error("KeyTooLongError", "Your key is too long")


def declared_length(request: S3Request) -> int:
    length = request.declared_length()
    if length is None:
        raise S3Error("MissingContentLength", "You must provide the Content-Length HTTP header.")
    if length > core.MAX_FILE_SIZE:
        raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                      MaxSizeAllowed=str(core.MAX_FILE_SIZE))
    return length


async def drop_parts(gw: S3Gateway, account: str, bucket: str, info: core.ObjectInfo | None) -> None:
    """The parts of a completed multipart object that is gone (deleted, or replaced and not kept
    as a version); nothing for any other object."""
    upload = info.headers.get(UPLOAD, "") if info is not None else ""
    if len(upload) != 32 or not all(ch in "0123456789abcdef" for ch in upload):
        return
    container = bucket + SEGMENTS
    try:
        items = await gw.objects.list_objects(account, container, prefix=upload + "/",
                                              limit=core.CONTAINER_LISTING_LIMIT)
    except NotFound:
        return
    for item in items:
        if isinstance(item, core.ObjectInfo):
            try:
                await gw.objects.delete_object(account, container, item.name)
            except NotFound:
                pass


async def store(gw: S3Gateway, request: S3Request, bucket: str, key: str, body: AsyncIterator[bytes], *,
                size: int | None, **extra: Any) -> core.ObjectInfo:
    """put_object, with the storage layer's refusals in S3's words; a multipart object it replaces
    (not kept as a version) takes its parts with it."""
    replaced = None
    if not extra.get("archive"):
        try:
            replaced = await gw.objects.head_object(request.account, bucket, key)
        except NotFound:
            pass
    try:
        info = await gw.objects.put_object(request.account, bucket, key, body, size=size, **extra)
        if replaced is not None and replaced.data_id != info.data_id:
            await drop_parts(gw, request.account, bucket, replaced)
        return info
    except NotFound as exc:
        raise no_such_bucket(bucket) from exc
    except PayloadTooLarge as exc:
        raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size") from exc
    except core.Unprocessable as exc:
        raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.") from exc

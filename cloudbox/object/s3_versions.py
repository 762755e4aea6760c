"""S3's bucket versioning on Swift's versioned writes (the object service's ``archive``).

A versioned bucket is a container whose ``X-History-Location`` is ``<bucket>+versions`` (so Swift's
API keeps versions of the same bucket the same way): a PUT over a key, or a DELETE of it, moves
the replaced object's row into that container (its bytes stay where they are), named as Swift
names versions, ``<3 hex digits: the key's length in bytes><key>/<last modified, 016.5f>``.
An object's version id is its last-modified time in that same form, so the current object and
its older versions are found by id without any other table.  Deleting a version by id deletes
it for good; deleting the current one by id brings the newest older one back (Swift's stack
mode), as S3 makes the previous version current.

A DELETE without a version id keeps the object as a version and puts a delete marker (an empty
kept version flagged ``x-s3-delete-marker``) over it; deleting that marker by its id makes the
newest kept version current again, as a copy under a new version id (S3 keeps the id).
Differences from S3 kept small and said: that new id; an object written
before versioning was enabled has a version id like any other (S3 would say "null"; "null" is
taken as the current object too); Suspended stops keeping versions.
"""

from __future__ import annotations

import dataclasses
import re
from typing import AsyncIterator

from cloudbox.errors import NotFound
from cloudbox.object import core, s3_xml
from cloudbox.object import s3_common as h
from cloudbox.object.apply import version_name
from cloudbox.object.s3_api import S3Gateway, S3Request, S3Response
from cloudbox.object.s3_xml import S3Error

VERSIONS = "+versions"
HISTORY = "x-history-location"
MARKER = "x-s3-delete-marker"  # a kept version that is a delete marker
_VERSION_ID = re.compile(r"\d{10}\.\d{5}")
MAX_VERSIONS = core.CONTAINER_LISTING_LIMIT  # versions a listing looks at, per side


def versions_container(bucket: str) -> str:
    return bucket + VERSIONS


def version_id(info: core.ObjectInfo) -> str:
    return f"{info.last_modified:016.5f}"


def archive_of(info: core.ContainerInfo) -> str:
    """The container replaced objects move to, or "" when the bucket keeps no versions."""
    return versions_container(info.name) if info.metadata.get(h.VERSIONING) == "Enabled" else ""


def no_such_version(key: str, version: str) -> S3Error:
    return S3Error("NoSuchVersion", "The specified version does not exist.", Key=key, VersionId=version[:64])


async def put_versioning(gw: S3Gateway, request: S3Request) -> S3Response:
    await h.bucket_info(gw, request)
    status = s3_xml.parse_versioning(await request.small_body())
    if status == "Enabled":
        await gw.objects.create_container(request.account, versions_container(request.bucket))
        await gw.objects.update_container(request.account, request.bucket, {
            h.VERSIONING: status, HISTORY: versions_container(request.bucket)})
    else:
        await gw.objects.update_container(request.account, request.bucket, {h.VERSIONING: status}, [HISTORY])
    return S3Response(200)


async def locate(gw: S3Gateway, request: S3Request, bucket: str, key: str,
                 version: str | None) -> tuple[str, str, bool]:
    """(container, name, whether it is the current object) of a key's version in a bucket of the
    request's account; NoSuchVersion when there is no such version."""
    if version in (None, "null"):
        return bucket, key, True
    if not _VERSION_ID.fullmatch(version):
        raise no_such_version(key, version)
    try:
        current = await gw.objects.head_object(request.account, bucket, key)
        if version_id(current) == version:
            return bucket, key, True
    except NotFound:
        pass
    name = version_name(key, float(version))
    try:
        await gw.objects.head_object(request.account, versions_container(bucket), name)
    except NotFound as exc:
        await h.bucket_info(gw, request, bucket)
        raise no_such_version(key, version) from exc
    return versions_container(bucket), name, False


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing: a delete marker's body


async def _mark_deleted(gw: S3Gateway, request: S3Request, key: str) -> str:
    """A delete marker: an empty kept version flagged ``x-s3-delete-marker``, newest of its key."""
    marker = f"{gw.clock():016.5f}"
    await gw.objects.put_object(request.account, versions_container(request.bucket), version_name(key, float(marker)),
                                _nothing(), size=0, headers={MARKER: "true"})
    return marker


async def _restore_newest(gw: S3Gateway, request: S3Request, key: str) -> None:
    """With a key's delete marker gone, its newest kept version is current again, as in S3 (here
    as a copy of it, so under a new version id, and the kept one goes)."""
    try:
        await gw.objects.head_object(request.account, request.bucket, key)
        return  # the key has a current object: nothing to bring back
    except NotFound:
        pass
    kept = versions_container(request.bucket)
    prefix = f"{len(key.encode('utf-8', 'surrogatepass')):03x}{key}/"
    items = await gw.objects.list_objects(request.account, kept, prefix=prefix, limit=MAX_VERSIONS)
    newest = [i for i in items if isinstance(i, core.ObjectInfo) and _parse_version_name(i.name)]
    if not newest or newest[-1].headers.get(MARKER) == "true":
        return
    async with await gw.objects.open_object(request.account, kept, newest[-1].name) as reader:
        info = reader.info
        await h.store(gw, request, request.bucket, key, reader.chunks(), size=info.size,
                      content_type=info.content_type, metadata=dict(info.metadata), headers=dict(info.headers),
                      etag_override=info.etag)
    await gw.objects.delete_object(request.account, kept, info.name)


async def delete_version(gw: S3Gateway, request: S3Request, key: str, version: str | None,
                         bucket: core.ContainerInfo) -> tuple[str | None, bool]:
    """Delete a key or one version of it: (the version id deleted or made, whether that is a
    delete marker).  Without a version id, a versioned bucket keeps the object as a version and
    puts a delete marker over it; an unversioned one just deletes it."""
    archive = archive_of(bucket)
    if version is None:
        try:
            gone = await gw.objects.delete_object(request.account, request.bucket, key, archive=archive)
            if not archive:
                await h.drop_parts(gw, request.account, request.bucket, gone)
        except NotFound:
            pass
        return (await _mark_deleted(gw, request, key), True) if archive else (None, False)
    container, name, current = await locate(gw, request, request.bucket, key, version)
    if current:
        try:  # the previous version (if any) becomes current, as S3 does
            gone = await gw.objects.delete_object(request.account, container, name,
                                                  archive=versions_container(request.bucket), restore=True)
            await h.drop_parts(gw, request.account, request.bucket, gone)
        except NotFound:
            pass
        return version, False
    try:
        info = await gw.objects.delete_object(request.account, container, name)
        await h.drop_parts(gw, request.account, request.bucket, info)
    except NotFound:
        return version, False
    marker = info.headers.get(MARKER) == "true"
    if marker:
        await _restore_newest(gw, request, key)
    return version, marker


def _parse_version_name(name: str) -> tuple[str, str] | None:
    raw = name.encode("utf-8", "surrogatepass")
    try:
        length = int(raw[:3], 16)
    except ValueError:
        return None
    key, rest = raw[3:3 + length], raw[3 + length:]
    if not rest.startswith(b"/") or not _VERSION_ID.fullmatch(rest[1:].decode("ascii", "replace")):
        return None
    return key.decode("utf-8", "surrogatepass"), rest[1:].decode()


async def list_versions(gw: S3Gateway, request: S3Request) -> S3Response:
    """Every version of every key under the prefix: the current objects and the kept ones, by key,
    newest first (looked at in memory: at most MAX_VERSIONS of each)."""
    await h.bucket_info(gw, request)
    prefix, delimiter = request.arg("prefix", "") or "", request.arg("delimiter", "") or ""
    key_marker, version_marker = request.arg("key-marker", "") or "", request.arg("version-id-marker", "") or ""
    max_keys = h.max_arg(request, "max-keys")
    if version_marker and not _VERSION_ID.fullmatch(version_marker):
        raise S3Error("InvalidArgument", "Invalid version id specified", ArgumentName="version-id-marker")
    found: list[s3_xml.Entry] = []
    for item in await gw.objects.list_objects(request.account, request.bucket, prefix=prefix, limit=MAX_VERSIONS):
        if isinstance(item, core.ObjectInfo):
            found.append(s3_xml.Entry(item.name, item.size, item.etag, h.iso(item.last_modified),
                                      version_id(item), True))
    try:
        kept = await gw.objects.list_objects(request.account, versions_container(request.bucket), limit=MAX_VERSIONS)
    except NotFound:
        kept = []
    for item in kept:
        parsed = _parse_version_name(item.name) if isinstance(item, core.ObjectInfo) else None
        if parsed is not None and parsed[0].startswith(prefix) and isinstance(item, core.ObjectInfo):
            found.append(s3_xml.Entry(parsed[0], item.size, item.etag, h.iso(item.last_modified), parsed[1], False,
                                      item.headers.get(MARKER) == "true"))
    found.sort(key=lambda e: (e.key, -float(e.version_id or 0)))
    # The newest entry of each key is its latest (a kept one when the key has no current object).
    found = [dataclasses.replace(e, is_latest=i == 0 or found[i - 1].key != e.key) for i, e in enumerate(found)]
    if key_marker:
        found = [e for e in found if e.key > key_marker or (
            e.key == key_marker and version_marker and float(e.version_id or 0) < float(version_marker or 0))]
    entries: list[s3_xml.Entry] = []
    prefixes: list[str] = []
    truncated = False
    for entry in found:
        rolled = None
        if delimiter:
            cut = entry.key.find(delimiter, len(prefix))
            rolled = entry.key[:cut + len(delimiter)] if cut >= 0 else None
        if rolled is not None and prefixes and prefixes[-1] == rolled:
            continue
        if len(entries) + len(prefixes) == max_keys:
            truncated = True
            break
        if rolled is not None:
            prefixes.append(rolled)
        else:
            entries.append(entry)
    last = entries[-1] if entries else None
    listing = s3_xml.Listing(entries, prefixes, truncated, last.key if truncated and last else None)
    body = s3_xml.list_versions(request.bucket, listing, prefix=prefix, delimiter=delimiter, max_keys=max_keys,
                                encoding=request.arg("encoding-type", "") or "", owner=request.owner,
                                key_marker=key_marker, version_marker=version_marker,
                                next_version_marker=last.version_id if truncated and last else None)
    return S3Response(200, h.XML, body)

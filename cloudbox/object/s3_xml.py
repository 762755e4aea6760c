"""S3's XML: its error bodies, the documents it answers (listings, multipart, versioning) and
the few it reads (bucket configuration, multi-object delete, multipart completion).

Pure: strings and dataclasses in, bytes out.  Every S3 error is an ``S3Error`` whose code
(S3's own, e.g. ``NoSuchBucket``) fixes its HTTP status through ``STATUS``; the API renders it
with ``error_body`` and nothing else renders errors.  Bodies a client sends are parsed only
when small and without a DOCTYPE, so no entity expansion can grow them.
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterable, Sequence

from cloudbox.errors import CloudboxError

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_XML_BYTES = 2 << 20  # a Delete of 1000 keys of 1024 bytes fits
MAX_DELETE_KEYS = 1000

# S3's error codes, each with the status AWS answers it with.
STATUS: dict[str, int] = {
    "AccessDenied": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "BucketAlreadyExists": 409,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidDigest": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "KeyTooLongError": 400,
    "MalformedXML": 400,
    "MethodNotAllowed": 405,
    "MissingContentLength": 411,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NoSuchVersion": 404,
    "NotImplemented": 501,
    "PreconditionFailed": 412,
    "RequestTimeTooSkewed": 403,
    "ServiceUnavailable": 503,
    "SignatureDoesNotMatch": 403,
    "XAmzContentSHA256Mismatch": 400,
    "NotModified": 304,
}


class S3Error(CloudboxError):
    """An error as S3 reports it: a code from ``STATUS`` (which gives the status), a message,
    and extra elements some codes carry (e.g. the key a NoSuchKey names)."""

    def __init__(self, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = STATUS[code]
        self.title = code
        self.extra = extra


@dataclass(frozen=True)
class Entry:
    """An object as listings show it."""

    key: str
    size: int
    etag: str  # without quotes
    last_modified: str  # ISO 8601 with milliseconds and a Z
    version_id: str | None = None
    is_latest: bool = True
    delete_marker: bool = False


@dataclass(frozen=True)
class Part:
    number: int
    size: int
    etag: str
    last_modified: str


def _element(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def _document(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _root(tag: str) -> ET.Element:
    return ET.Element(tag, xmlns=NS)


_NUMBER = re.compile(r"[0-9]{1,19}")


def is_number(text: str) -> bool:
    """Whether ``text`` is a non-negative integer in ASCII digits (str.isdigit takes "²" too)."""
    return bool(_NUMBER.fullmatch(text))


def quoted(etag: str) -> str:
    return f'"{etag}"'


def error_body(error: S3Error, resource: str, request_id: str) -> bytes:
    root = ET.Element("Error")
    _element(root, "Code", error.code)
    _element(root, "Message", error.message)
    for key, value in error.extra.items():
        _element(root, key, value)
    _element(root, "Resource", resource)
    _element(root, "RequestId", request_id)
    return _document(root)


def list_buckets(owner_id: str, owner_name: str, buckets: Iterable[tuple[str, str]]) -> bytes:
    """ListAllMyBucketsResult of (name, creation date) pairs."""
    root = _root("ListAllMyBucketsResult")
    _owner(root, owner_id, owner_name)
    holder = _element(root, "Buckets")
    for name, created in buckets:
        bucket = _element(holder, "Bucket")
        _element(bucket, "Name", name)
        _element(bucket, "CreationDate", created)
    return _document(root)


def _owner(parent: ET.Element, owner_id: str, owner_name: str, tag: str = "Owner") -> None:
    owner = _element(parent, tag)
    _element(owner, "ID", owner_id)
    _element(owner, "DisplayName", owner_name)


@dataclass(frozen=True)
class Listing:
    """What a listing found: entries, common prefixes, and where a truncated one goes on."""

    entries: Sequence[Entry]
    prefixes: Sequence[str]
    truncated: bool
    next_marker: str | None  # the last key or prefix returned, when truncated


def list_objects(bucket: str, listing: Listing, *, prefix: str, delimiter: str, max_keys: int, encoding: str,
                 owner: tuple[str, str], v2: bool, marker: str = "", start_after: str = "",
                 continuation: str | None = None, next_continuation: str | None = None,
                 fetch_owner: bool = True) -> bytes:
    """ListBucketResult of ListObjects (V1) or ListObjectsV2."""
    encode = _encoder(encoding)
    root = _root("ListBucketResult")
    _element(root, "Name", bucket)
    _element(root, "Prefix", encode(prefix))
    if v2:
        if start_after:
            _element(root, "StartAfter", encode(start_after))
        if continuation is not None:
            _element(root, "ContinuationToken", continuation)
        if next_continuation is not None:
            _element(root, "NextContinuationToken", next_continuation)
        _element(root, "KeyCount", len(listing.entries) + len(listing.prefixes))
    else:
        _element(root, "Marker", encode(marker))
        if listing.truncated and delimiter and listing.next_marker is not None:
            _element(root, "NextMarker", encode(listing.next_marker))
    _paging(root, max_keys, delimiter, encoding, listing.truncated, encode)
    for entry in listing.entries:
        item = _element(root, "Contents")
        _element(item, "Key", encode(entry.key))
        _element(item, "LastModified", entry.last_modified)
        _element(item, "ETag", quoted(entry.etag))
        _element(item, "Size", entry.size)
        if fetch_owner or not v2:
            _owner(item, *owner)
        _element(item, "StorageClass", "STANDARD")
    _prefixes(root, listing.prefixes, encode)
    return _document(root)


def list_versions(bucket: str, listing: Listing, *, prefix: str, delimiter: str, max_keys: int, encoding: str,
                  owner: tuple[str, str], key_marker: str, version_marker: str,
                  next_version_marker: str | None) -> bytes:
    """ListVersionsResult: every version and delete marker, newest first within a key."""
    encode = _encoder(encoding)
    root = _root("ListVersionsResult")
    _element(root, "Name", bucket)
    _element(root, "Prefix", encode(prefix))
    _element(root, "KeyMarker", encode(key_marker))
    _element(root, "VersionIdMarker", version_marker)
    if listing.truncated and listing.next_marker is not None:
        _element(root, "NextKeyMarker", encode(listing.next_marker))
        _element(root, "NextVersionIdMarker", next_version_marker or "null")
    _paging(root, max_keys, delimiter, encoding, listing.truncated, encode)
    for entry in listing.entries:
        item = _element(root, "DeleteMarker" if entry.delete_marker else "Version")
        _element(item, "Key", encode(entry.key))
        _element(item, "VersionId", entry.version_id or "null")
        _element(item, "IsLatest", "true" if entry.is_latest else "false")
        _element(item, "LastModified", entry.last_modified)
        if not entry.delete_marker:
            _element(item, "ETag", quoted(entry.etag))
            _element(item, "Size", entry.size)
            _element(item, "StorageClass", "STANDARD")
        _owner(item, *owner)
    _prefixes(root, listing.prefixes, encode)
    return _document(root)


def _paging(root: ET.Element, max_keys: int, delimiter: str, encoding: str, truncated: bool,
            encode: "_Encode") -> None:
    _element(root, "MaxKeys", max_keys)
    if delimiter:
        _element(root, "Delimiter", encode(delimiter))
    if encoding:
        _element(root, "EncodingType", encoding)
    _element(root, "IsTruncated", "true" if truncated else "false")


def _prefixes(root: ET.Element, prefixes: Iterable[str], encode: "_Encode") -> None:
    for common in prefixes:
        _element(_element(root, "CommonPrefixes"), "Prefix", encode(common))


class _Encode:
    def __init__(self, url: bool) -> None:
        self.url = url

    def __call__(self, text: str) -> str:
        return urllib.parse.quote(text, safe="/") if self.url else text


def _encoder(encoding: str) -> _Encode:
    if encoding not in ("", "url"):
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", ArgumentName="encoding-type")
    return _Encode(encoding == "url")


def location(region: str) -> bytes:
    root = _root("LocationConstraint")
    # us-east-1 is answered as an empty constraint, as S3 does.
    if region != "us-east-1":
        root.text = region
    return _document(root)


def versioning(status: str | None) -> bytes:
    root = _root("VersioningConfiguration")
    if status:
        _element(root, "Status", status)
    return _document(root)


def initiate_multipart(bucket: str, key: str, upload_id: str) -> bytes:
    root = _root("InitiateMultipartUploadResult")
    _element(root, "Bucket", bucket)
    _element(root, "Key", key)
    _element(root, "UploadId", upload_id)
    return _document(root)


def complete_multipart(location_url: str, bucket: str, key: str, etag: str) -> bytes:
    root = _root("CompleteMultipartUploadResult")
    _element(root, "Location", location_url)
    _element(root, "Bucket", bucket)
    _element(root, "Key", key)
    _element(root, "ETag", quoted(etag))
    return _document(root)


def list_parts(bucket: str, key: str, upload_id: str, parts: Sequence[Part], *, marker: int, max_parts: int,
               truncated: bool, owner: tuple[str, str]) -> bytes:
    root = _root("ListPartsResult")
    _element(root, "Bucket", bucket)
    _element(root, "Key", key)
    _element(root, "UploadId", upload_id)
    _owner(root, *owner, tag="Initiator")
    _owner(root, *owner)
    _element(root, "StorageClass", "STANDARD")
    _element(root, "PartNumberMarker", marker)
    if parts:
        _element(root, "NextPartNumberMarker", parts[-1].number)
    _element(root, "MaxParts", max_parts)
    _element(root, "IsTruncated", "true" if truncated else "false")
    for part in parts:
        item = _element(root, "Part")
        _element(item, "PartNumber", part.number)
        _element(item, "LastModified", part.last_modified)
        _element(item, "ETag", quoted(part.etag))
        _element(item, "Size", part.size)
    return _document(root)


def list_uploads(bucket: str, uploads: Sequence[tuple[str, str, str]], *, prefix: str, max_uploads: int,
                 truncated: bool, owner: tuple[str, str]) -> bytes:
    """ListMultipartUploadsResult of (key, upload id, initiated) triples."""
    root = _root("ListMultipartUploadsResult")
    _element(root, "Bucket", bucket)
    _element(root, "KeyMarker", "")
    _element(root, "UploadIdMarker", "")
    if truncated and uploads:
        _element(root, "NextKeyMarker", uploads[-1][0])
        _element(root, "NextUploadIdMarker", uploads[-1][1])
    _element(root, "Prefix", prefix)
    _element(root, "MaxUploads", max_uploads)
    _element(root, "IsTruncated", "true" if truncated else "false")
    for key, upload_id, initiated in uploads:
        item = _element(root, "Upload")
        _element(item, "Key", key)
        _element(item, "UploadId", upload_id)
        _owner(item, *owner, tag="Initiator")
        _owner(item, *owner)
        _element(item, "StorageClass", "STANDARD")
        _element(item, "Initiated", initiated)
    return _document(root)


def access_control_policy(owner_id: str, owner_name: str) -> bytes:
    """The one ACL this store has: the owning project holds FULL_CONTROL, nobody else anything."""
    root = _root("AccessControlPolicy")
    _owner(root, owner_id, owner_name)
    grant = _element(_element(root, "AccessControlList"), "Grant")
    grantee = ET.SubElement(grant, "Grantee", {"xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
                                               "xsi:type": "CanonicalUser"})
    _element(grantee, "ID", owner_id)
    _element(grantee, "DisplayName", owner_name)
    _element(grant, "Permission", "FULL_CONTROL")
    return _document(root)


def copy_result(etag: str, last_modified: str, *, part: bool = False) -> bytes:
    root = _root("CopyPartResult" if part else "CopyObjectResult")
    _element(root, "LastModified", last_modified)
    _element(root, "ETag", quoted(etag))
    return _document(root)


def delete_result(deleted: Sequence[tuple[str, str | None, bool]], errors: Sequence[tuple[str, str, str]],
                  *, quiet: bool) -> bytes:
    """DeleteResult: (key, version id, was a delete marker made) per deleted key (omitted when
    quiet), and (key, code, message) per key that could not be deleted."""
    root = _root("DeleteResult")
    if not quiet:
        for key, version_id, marker in deleted:
            item = _element(root, "Deleted")
            _element(item, "Key", key)
            if version_id:
                _element(item, "VersionId" if not marker else "DeleteMarkerVersionId", version_id)
            if marker:
                _element(item, "DeleteMarker", "true")
    for key, code, message in errors:
        item = _element(root, "Error")
        _element(item, "Key", key)
        _element(item, "Code", code)
        _element(item, "Message", message)
    return _document(root)


# --- what clients send ----------------------------------------------------------------------
def parse(body: bytes, root_tag: str) -> ET.Element:
    """A client's XML document whose root is ``root_tag`` (with or without S3's namespace)."""
    if len(body) > MAX_XML_BYTES:
        raise S3Error("MalformedXML", f"The XML you provided is larger than {MAX_XML_BYTES} bytes.")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise S3Error("MalformedXML", "The XML you provided may not declare a DOCTYPE or entities.")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate "
                      "against our published schema.") from exc
    if _local(root.tag) != root_tag:
        raise S3Error("MalformedXML", f"The XML you provided has root <{_local(root.tag)}>, not <{root_tag}>.")
    return root


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(node: ET.Element, tag: str) -> list[ET.Element]:
    return [child for child in node if _local(child.tag) == tag]


def _text(node: ET.Element, tag: str) -> str | None:
    found = _children(node, tag)
    return (found[0].text or "") if found else None


def parse_location_constraint(body: bytes) -> str | None:
    if not body.strip():
        return None
    return _text(parse(body, "CreateBucketConfiguration"), "LocationConstraint")


def parse_delete(body: bytes) -> tuple[list[tuple[str, str | None]], bool]:
    """The (key, version id) pairs of a multi-object Delete, and whether it is quiet."""
    root = parse(body, "Delete")
    objects = []
    for item in _children(root, "Object"):
        key = _text(item, "Key")
        if not key:
            raise S3Error("MalformedXML", "Each Object of a Delete names its Key.")
        objects.append((key, _text(item, "VersionId") or None))
    if not objects:
        raise S3Error("MalformedXML", "A Delete names at least one Object.")
    if len(objects) > MAX_DELETE_KEYS:
        raise S3Error("MalformedXML", f"A Delete names at most {MAX_DELETE_KEYS} objects.")
    return objects, (_text(root, "Quiet") or "").strip().lower() == "true"


def parse_complete(body: bytes) -> list[tuple[int, str]]:
    """The (part number, etag without quotes) list of a CompleteMultipartUpload, in order."""
    root = parse(body, "CompleteMultipartUpload")
    parts = []
    for item in _children(root, "Part"):
        number, etag = _text(item, "PartNumber"), _text(item, "ETag")
        if number is None or etag is None or not is_number(number.strip()):
            raise S3Error("MalformedXML", "Each Part names its PartNumber and ETag.")
        parts.append((int(number), etag.strip().strip('"')))
    if not parts:
        raise S3Error("MalformedXML", "The XML you provided names no Part.")
    numbers = [n for n, _ in parts]
    if numbers != sorted(set(numbers)):
        raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order; parts must be "
                      "ordered by part number.")
    return parts


def parse_versioning(body: bytes) -> str:
    """The Status of a VersioningConfiguration: Enabled or Suspended."""
    status = _text(parse(body, "VersioningConfiguration"), "Status")
    if status not in ("Enabled", "Suspended"):
        raise S3Error("MalformedXML", "A VersioningConfiguration's Status is Enabled or Suspended.")
    return status

"""Pure logic of the object service: Swift's limits, name and metadata checks, the info types,
listing roll-ups, Range and conditional requests. No I/O here."""

from __future__ import annotations

import email.utils
import urllib.parse
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from cloudbox.errors import BadRequest, CloudboxError, PayloadTooLarge, quote

# Swift's documented defaults (GET /info advertises them).
MAX_FILE_SIZE = 5 * 1024 ** 3  # one object: 5 GiB
MAX_META_NAME_LENGTH = 128
MAX_META_VALUE_LENGTH = 256
MAX_META_COUNT = 90
MAX_META_OVERALL_SIZE = 4096
MAX_HEADER_SIZE = 8192
MAX_OBJECT_NAME_LENGTH = 1024
CONTAINER_LISTING_LIMIT = 10000
ACCOUNT_LISTING_LIMIT = 10000
MAX_ACCOUNT_NAME_LENGTH = 256
MAX_CONTAINER_NAME_LENGTH = 256
EXTRA_HEADER_COUNT = 0
MAX_DELETE_AT = 10 ** 10  # seconds (year 2286): a later X-Delete-At is refused, not stored

LIMITS = {
    "max_file_size": MAX_FILE_SIZE, "max_meta_name_length": MAX_META_NAME_LENGTH,
    "max_meta_value_length": MAX_META_VALUE_LENGTH, "max_meta_count": MAX_META_COUNT,
    "max_meta_overall_size": MAX_META_OVERALL_SIZE, "max_header_size": MAX_HEADER_SIZE,
    "max_object_name_length": MAX_OBJECT_NAME_LENGTH, "container_listing_limit": CONTAINER_LISTING_LIMIT,
    "account_listing_limit": ACCOUNT_LISTING_LIMIT, "max_account_name_length": MAX_ACCOUNT_NAME_LENGTH,
    "max_container_name_length": MAX_CONTAINER_NAME_LENGTH, "extra_header_count": EXTRA_HEADER_COUNT,
    "valid_api_versions": ["v1"], "strict_cors_mode": True,
}

# Stored headers of an object besides its user metadata (Swift keeps these too).
OBJECT_HEADERS = ("content-encoding", "content-disposition", "x-object-manifest", "x-static-large-object",
                  "x-delete-at", "content-language", "cache-control", "expires")


class PreconditionFailed(CloudboxError):
    status = 412
    title = "Precondition Failed"


class LengthRequired(CloudboxError):
    status = 411
    title = "Length Required"


class Unprocessable(CloudboxError):
    status = 422
    title = "Unprocessable Entity"


@dataclass(frozen=True)
class ObjectInfo:
    account: str
    container: str
    name: str
    size: int
    etag: str
    content_type: str
    last_modified: float
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    data_id: str = ""
    nodes: tuple[str, ...] = ()  # the nodes that keep its bytes


@dataclass(frozen=True)
class ContainerInfo:
    account: str
    name: str
    object_count: int
    bytes_used: int
    created_at: float
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountInfo:
    account: str
    container_count: int
    object_count: int
    bytes_used: int
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True)
class Subdir:
    name: str


# --- names ------------------------------------------------------------------------------------
def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"Invalid UTF8 or contains NULL in {what} name") from None


def _check_name(name: str, what: str, limit: int) -> str:
    raw = _utf8(name, what.lower())
    if not name:
        raise BadRequest(f"{what} name is required")
    if "\x00" in name:
        raise BadRequest("Invalid UTF8 or contains NULL")
    if len(raw) > limit:
        raise BadRequest(f"{what} name length of {len(raw)} longer than {limit}")
    return name


def check_container_name(name: str) -> str:
    if "/" in name:
        raise BadRequest("Container name may not contain '/'")
    return _check_name(name, "Container", MAX_CONTAINER_NAME_LENGTH)


def check_object_name(name: str) -> str:
    return _check_name(name, "Object", MAX_OBJECT_NAME_LENGTH)


# --- metadata ---------------------------------------------------------------------------------
def check_metadata(meta: Mapping[str, str], prefix: str) -> None:
    """Swift's per-request metadata limits on ``x-<type>-meta-*`` items (names without prefix)."""
    total = 0
    for key, value in meta.items():
        if not key:
            raise BadRequest("Metadata name cannot be empty")
        if len(key.encode()) > MAX_META_NAME_LENGTH:
            raise BadRequest(f"Metadata name too long: {quote(prefix + key)}; max {MAX_META_NAME_LENGTH}")
        if len(value.encode()) > MAX_META_VALUE_LENGTH:
            raise BadRequest(f"Metadata value longer than {MAX_META_VALUE_LENGTH}: {quote(prefix + key)}")
        total += len(key.encode()) + len(value.encode())
    if len(meta) > MAX_META_COUNT:
        raise BadRequest(f"Too many metadata items; max {MAX_META_COUNT}")
    if total > MAX_META_OVERALL_SIZE:
        raise BadRequest(f"Total metadata too large; max {MAX_META_OVERALL_SIZE}")


def merged_metadata(current: Mapping[str, str], changes: Mapping[str, str], removed: Iterable[str]) -> dict[str, str]:
    """``current`` with ``changes`` set and ``removed`` (and empty values) dropped."""
    out = dict(current)
    out.update(changes)
    for key in removed:
        out.pop(key, None)
    return {k: v for k, v in out.items() if v != ""}


def check_stored_metadata(meta: Mapping[str, str], prefix: str) -> None:
    """The limits on what a container or account holds after an update (Swift checks the whole)."""
    user = {k[len(prefix):]: v for k, v in meta.items() if k.startswith(prefix)}
    check_metadata(user, prefix)


# --- listings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ListOptions:
    prefix: str = ""
    delimiter: str = ""
    marker: str = ""
    end_marker: str = ""
    limit: int = CONTAINER_LISTING_LIMIT
    reverse: bool = False


def list_options(query: Mapping[str, str], page_limit: int) -> ListOptions:
    raw = query.get("limit")
    limit = page_limit
    if raw not in (None, ""):
        try:
            limit = int(raw)
        except ValueError:
            raise PreconditionFailed(f"Value of limit must be a positive integer, not {quote(raw)}") from None
        if limit < 0:
            raise PreconditionFailed("Value of limit must be a positive integer")
        if limit > page_limit:
            raise PreconditionFailed(f"Maximum limit is {page_limit}")
    delimiter = query.get("delimiter", "")
    if len(delimiter) > 1:
        raise PreconditionFailed("Bad delimiter")
    for name in ("prefix", "delimiter", "marker", "end_marker", "path"):
        value = query.get(name, "")
        if "\x00" in value or len(value.encode("utf-8", "surrogatepass")) > MAX_OBJECT_NAME_LENGTH:
            raise PreconditionFailed(f"Bad {name}")
    reverse = query.get("reverse", "").strip().lower() in ("true", "1", "yes", "on", "t", "y")
    return ListOptions(prefix=query.get("prefix", ""), delimiter=delimiter, marker=query.get("marker", ""),
                       end_marker=query.get("end_marker", ""), limit=limit, reverse=reverse)


def after_subdir(subdir: str) -> str:
    """The smallest name after every name that starts with ``subdir`` (its delimiter included)."""
    return subdir + "\U0010ffff"


# --- ranges and conditions ------------------------------------------------------------------------
_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges ``(start, end exclusive)`` a Range header asks of an object of ``size``;
    None: serve the whole object (no header, or one that is not a valid bytes range, as Swift does);
    []: none is satisfiable (a 416)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        match = _RANGE.match(part)
        if not match or (not match[1] and not match[2]):
            return None
        first, last = match[1], match[2]
        if first:
            start = int(first)
            end = int(last) + 1 if last else size
            if last and int(last) < start:
                return None
            if start >= size:
                continue
            ranges.append((start, min(end, size)))
        else:
            suffix = int(last)
            if suffix == 0:
                continue
            ranges.append((max(0, size - suffix), size))
    if len(ranges) > 100:
        return None
    return ranges


def _etags(header: str) -> list[str]:
    return [t.strip().strip('"') for t in header.split(",") if t.strip()]


def _date(header: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed.tzinfo else None


def check_conditions(headers: Mapping[str, str], etag: str, last_modified: float) -> int | None:
    """The status a conditional request ends in (304 or 412), or None to go on."""
    if_match = headers.get("If-Match")
    if if_match is not None:
        tags = _etags(if_match)
        if "*" not in tags and etag not in tags:
            return 412
    if_none = headers.get("If-None-Match")
    if if_none is not None:
        tags = _etags(if_none)
        if "*" in tags or etag in tags:
            return 304
    modified = int(last_modified)  # HTTP dates have whole seconds
    since = headers.get("If-Modified-Since")
    if since is not None and if_none is None:
        when = _date(since)
        if when is not None and modified <= when:
            return 304
    unmodified = headers.get("If-Unmodified-Since")
    if unmodified is not None and if_match is None:
        when = _date(unmodified)
        if when is not None and modified > when:
            return 412
    return None


def http_date(seconds: float) -> str:
    return email.utils.formatdate(int(seconds), usegmt=True)


def user_metadata(headers: Mapping[str, str], prefix: str) -> tuple[dict[str, str], list[str]]:
    """(items set, names removed) from ``X-<Type>-Meta-*`` and ``X-Remove-<Type>-Meta-*`` headers;
    names lowercased without the prefix, values stripped (an empty value removes too)."""
    kind = prefix[len("x-"):]
    remove_prefix = "x-remove-" + kind
    changes: dict[str, str] = {}
    removed: list[str] = []
    for key, value in headers.items():
        low = key.lower()
        if low.startswith(prefix):
            name = low[len(prefix):]
            changes[name] = value.strip()
        elif low.startswith(remove_prefix):
            removed.append(low[len(remove_prefix):])
    return changes, removed


def headers_dict(raw: Any) -> dict[str, str]:
    """Request headers as a plain dict (a werkzeug Headers object or a mapping)."""
    return {k: v for k, v in raw.items()}


def _delete_at(headers: Mapping[str, str], now: float) -> str | None:
    """X-Delete-At (or X-Delete-After, from ``now``) as whole seconds; None when neither is sent."""
    at, after = headers.get("X-Delete-At"), headers.get("X-Delete-After")
    if after is not None:
        try:
            seconds = int(after)
        except ValueError:
            raise BadRequest("Non-integer X-Delete-After") from None
        if seconds <= 0:
            raise BadRequest("X-Delete-After in past")
        if int(now) + seconds >= MAX_DELETE_AT:
            raise BadRequest("X-Delete-After is too far in the future")
        return str(int(now) + seconds)
    if at is not None:
        try:
            when = int(at)
        except ValueError:
            raise BadRequest("Non-integer X-Delete-At") from None
        if when <= now:
            raise BadRequest("X-Delete-At in past")
        if when >= MAX_DELETE_AT:
            raise BadRequest("X-Delete-At is too far in the future")
        return str(when)
    return None


def stored_object_headers(headers: Mapping[str, str], now: float) -> dict[str, str]:
    """The headers an object keeps from a PUT or POST besides its user metadata ("" removes one)."""
    out: dict[str, str] = {}
    for name in ("content-encoding", "content-disposition", "content-language", "cache-control", "expires"):
        value = headers.get(name)
        if value is not None:
            out[name] = value.strip()
    manifest = headers.get("X-Object-Manifest")
    if manifest is not None:
        container, _, prefix = urllib.parse.unquote(manifest.strip()).lstrip("/").partition("/")
        if not container or "/" not in manifest.lstrip("/") or "\x00" in manifest:
            raise BadRequest("X-Object-Manifest must be in the format container/prefix")
        check_container_name(container)
        out["x-object-manifest"] = manifest.strip().lstrip("/")
    delete_at = _delete_at(headers, now)
    if delete_at is not None:
        out["x-delete-at"] = delete_at
    elif "X-Remove-Delete-At" in headers:
        out["x-delete-at"] = ""
    return out


def split_path(value: str, what: str) -> tuple[str, str]:
    """``container/object`` of X-Copy-From, Destination and manifests (URL-quoted, maybe with a
    leading slash) as its two names."""
    path = urllib.parse.unquote(value.strip()).lstrip("/")
    container, _, name = path.partition("/")
    if not container or not name:
        raise PreconditionFailed(f"{what} header must be of the form <container name>/<object name>")
    return check_container_name(container), check_object_name(name)


QUOTA_BYTES, QUOTA_COUNT = "x-container-meta-quota-bytes", "x-container-meta-quota-count"


def check_quota(metadata: Mapping[str, str], bytes_used: int, object_count: int, adding_bytes: int,
                adding_objects: int) -> None:
    """Swift's container quotas (X-Container-Meta-Quota-Bytes / -Count): 413 past either."""
    for key, used, adding in ((QUOTA_BYTES, bytes_used, adding_bytes), (QUOTA_COUNT, object_count, adding_objects)):
        limit = metadata.get(key, "")
        if limit.isdigit() and adding > 0 and used + adding > int(limit):
            raise PayloadTooLarge("Upload exceeds quota.")

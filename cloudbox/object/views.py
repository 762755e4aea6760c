"""Pure: the object service's rows as Swift's headers and its plain / JSON / XML listings."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Iterable
from xml.sax.saxutils import escape, quoteattr

from cloudbox.object import core


def timestamp(seconds: float) -> str:
    """Swift's X-Timestamp: seconds with 5 decimals."""
    return f"{seconds:016.5f}"


def listing_time(seconds: float) -> str:
    """A listing's last_modified: ISO 8601 in UTC with microseconds and no zone, as Swift writes it."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


ACCOUNT_OWNER_ONLY = ("x-account-access-control", "x-account-meta-temp-url-key", "x-account-meta-temp-url-key-2")


def account_headers(info: core.AccountInfo, *, owner: bool = True) -> dict[str, str]:
    headers = {
        "X-Account-Container-Count": str(info.container_count), "X-Account-Object-Count": str(info.object_count),
        "X-Account-Bytes-Used": str(info.bytes_used), "X-Timestamp": timestamp(info.created_at),
        "X-Put-Timestamp": timestamp(info.created_at),
    }
    headers.update(_title_all({k: v for k, v in info.metadata.items() if owner or k not in ACCOUNT_OWNER_ONLY}))
    return headers


# What only the account's own project sees of a container (Swift hides them from ACL grantees).
OWNER_ONLY = ("x-container-read", "x-container-write", "x-container-meta-temp-url-key",
              "x-container-meta-temp-url-key-2")


def container_headers(info: core.ContainerInfo, *, owner: bool = True) -> dict[str, str]:
    headers = {
        "X-Container-Object-Count": str(info.object_count), "X-Container-Bytes-Used": str(info.bytes_used),
        "X-Timestamp": timestamp(info.created_at), "X-Put-Timestamp": timestamp(info.created_at),
    }
    headers.update(_title_all({k: v for k, v in info.metadata.items() if owner or k not in OWNER_ONLY}))
    return headers


def object_headers(info: core.ObjectInfo, *, size: int | None = None, etag: str | None = None) -> dict[str, str]:
    """The headers of a GET or HEAD of an object (``size``/``etag``: a large object's own)."""
    headers = {
        "Content-Type": info.content_type, "ETag": f'"{etag}"' if etag else info.etag,
        "Content-Length": str(info.size if size is None else size),
        "Last-Modified": core.http_date(info.last_modified), "X-Timestamp": timestamp(info.last_modified),
        "Accept-Ranges": "bytes",
    }
    for name, value in info.metadata.items():
        headers[_title("x-object-meta-" + name)] = value
    for name, value in info.headers.items():
        headers[_title(name)] = value
    return headers


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _title_all(metadata: dict[str, str]) -> dict[str, str]:
    return {_title(k): v for k, v in metadata.items()}


def listing_format(query_format: str | None, accept: str | None) -> str:
    """plain, json or xml: the ``format`` query parameter, else the Accept header, else plain."""
    wanted = (query_format or "").strip().lower()
    if wanted in ("json", "xml", "plain"):
        return wanted
    if wanted:
        return "plain"
    accept = (accept or "").lower()
    if "application/json" in accept:
        return "json"
    if "application/xml" in accept or "text/xml" in accept:
        return "xml"
    return "plain"


MEDIA = {"plain": "text/plain; charset=utf-8", "json": "application/json; charset=utf-8",
         "xml": "application/xml; charset=utf-8"}


def _listing(root: str, name: str, tag: str, items: list[Any], fields: Callable[[Any], dict[str, Any]],
             fmt: str) -> str:
    """A Swift listing in ``fmt``: each entry a JSON object or an XML element of ``fields(entry)``
    (in that order), a common prefix as a subdir; plain text is one name a line."""
    if fmt == "json":
        return json.dumps([{"subdir": e.name} if isinstance(e, core.Subdir) else fields(e) for e in items])
    if fmt == "xml":
        parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} name={quoteattr(name)}>']
        for e in items:
            if isinstance(e, core.Subdir):
                parts.append(f"<subdir name={quoteattr(e.name)}><name>{escape(e.name)}</name></subdir>")
            else:
                inner = "".join(f"<{key}>{escape(str(value))}</{key}>" for key, value in fields(e).items())
                parts.append(f"<{tag}>{inner}</{tag}>")
        parts.append(f"</{root}>")
        return "".join(parts)
    return "".join(e.name + "\n" for e in items)


def container_listing(account: str, entries: Iterable[core.ContainerInfo | core.Subdir], fmt: str) -> str:
    return _listing("account", account, "container", list(entries), lambda e: {
        "name": e.name, "count": e.object_count, "bytes": e.bytes_used,
        "last_modified": listing_time(e.created_at)}, fmt)


def object_listing(container: str, entries: Iterable[core.ObjectInfo | core.Subdir], fmt: str) -> str:
    return _listing("container", container, "object", list(entries), lambda e: {
        "name": e.name, "hash": e.etag, "bytes": e.size, "content_type": e.content_type,
        "last_modified": listing_time(e.last_modified)}, fmt)

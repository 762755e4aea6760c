"""Static websites from public containers (Swift's staticweb): for a request without a token (or
with ``X-Web-Mode: true``) to a container readable by anyone (``.r:*``), the container's
``X-Container-Meta-Web-Index`` is served for the container and each pseudo-directory,
``Web-Listings: true`` lists a directory without one as HTML (``Web-Listings-CSS`` styles it), and
``Web-Error: <suffix>`` serves ``404<suffix>`` for names that do not exist."""

from __future__ import annotations

import html
import urllib.parse
from typing import Any, Mapping

from cloudbox.api.routes import Call, Reply
from cloudbox.errors import NotFound
from cloudbox.object import acl, core

META = "x-container-meta-web-"


def applies(call: Call, metadata: Mapping[str, str]) -> bool:
    """Whether a request is a website visit: no token (or X-Web-Mode), a public container, and
    the container configured as a site."""
    visitor = call.auth is None or call.request.headers.get("X-Web-Mode", "").lower() in ("true", "1", "yes")
    public = ".r:*" in acl.entries(metadata.get("x-container-read"))
    configured = any(metadata.get(META + k) for k in ("index", "listings", "error"))
    return visitor and public and configured


def redirect(location: str) -> Reply:
    return Reply(None, 301, {"Location": location, "Content-Length": "0"})


def listing_page(path: str, prefix: str, entries: list[Any], css: str) -> Reply:
    """A directory listing as HTML (names relative to the directory, escaped)."""
    title = html.escape(f"Listing of {path}")
    rows = []
    if prefix:
        rows.append('<tr class="item parent"><td class="colname"><a href="../">../</a></td><td></td><td></td></tr>')
    for entry in entries:
        name = entry.name[len(prefix):]
        link = html.escape(urllib.parse.quote(name))
        if isinstance(entry, core.Subdir):
            rows.append(f'<tr class="item subdir"><td class="colname"><a href="{link}">{html.escape(name)}</a>'
                        "</td><td>&nbsp;</td><td>&nbsp;</td></tr>")
        else:
            rows.append(f'<tr class="item"><td class="colname"><a href="{link}">{html.escape(name)}</a></td>'
                        f'<td class="colsize">{entry.size}</td><td class="coldate">'
                        f"{core.http_date(entry.last_modified)}</td></tr>")
    style = f'<link rel="stylesheet" type="text/css" href="{html.escape(css)}" />' if css else ""
    body = (f"<!DOCTYPE html><html><head><title>{title}</title>{style}</head><body><h1 id=\"title\">{title}</h1>"
            '<table id="listing"><tr id="heading"><th class="colname">Name</th><th class="colsize">Size</th>'
            f'<th class="coldate">Date</th></tr>{"".join(rows)}</table></body></html>')
    return Reply(body, 200, {"Content-Type": "text/html; charset=UTF-8"})


async def directory(svc: Any, call: Call, account: str, container: str, prefix: str,
                    metadata: Mapping[str, str], serve: Any) -> Any:
    """The answer for a directory (the container, or a name ending in "/"): its index object,
    else its listing, else the error page."""
    index = metadata.get(META + "index")
    if index:
        try:
            await svc.head_object(account, container, prefix + index)
            return await serve(prefix + index, 200)
        except NotFound:
            pass
    if metadata.get(META + "listings", "").lower() in ("true", "1", "yes", "on"):
        entries = await svc.list_objects(account, container, prefix=prefix, delimiter="/")
        if entries or not prefix:
            return listing_page(call.request.path, prefix, entries, metadata.get(META + "listings-css", ""))
    return await error_page(svc, account, container, metadata, serve)


async def error_page(svc: Any, account: str, container: str, metadata: Mapping[str, str], serve: Any) -> Any:
    suffix = metadata.get(META + "error")
    if suffix:
        try:
            await svc.head_object(account, container, "404" + suffix)
            return await serve("404" + suffix, 404)
        except NotFound:
            pass
    raise NotFound("The resource could not be found.")

"""Form post (Swift's formpost): a browser uploads files straight into a container with an HTML
form signed by the account's or container's temp-url key; no token.

The form is ``multipart/form-data`` POSTed to ``/AUTH_<project>/<container>[/<prefix>]``; its
fields ``redirect``, ``max_file_size``, ``max_file_count``, ``expires`` and ``signature`` come
before the files, and the signature is the HMAC (sha256 or sha512, hex or ``<digest>:<base64>``)
of ``"<path>\\n<redirect>\\n<max_file_size>\\n<max_file_count>\\n<expires>"``. Each file streams
into the object ``<prefix><filename>`` (never whole in memory). The answer is a 303 to
``redirect?status=..&message=..`` when one was given, else the status itself.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, AsyncIterator

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from cloudbox.api.routes import Call, Reply
from cloudbox.errors import BadRequest, CloudboxError, NotFound, PayloadTooLarge, Unauthorized
from cloudbox.object import core, tempurl

MAX_FIELD = 8192  # bytes of one form field
MAX_PARTS = 1000
ATTRIBUTES = ("redirect", "max_file_size", "max_file_count", "expires", "signature")


def is_form(call: Call) -> bool:
    return call.request.headers.get("Content-Type", "").lower().startswith("multipart/form-data")


async def _events(body: Any, decoder: MultipartDecoder) -> AsyncIterator[Any]:
    async for chunk in body:
        decoder.receive_data(chunk)
        while not isinstance(event := decoder.next_event(), NeedData):
            yield event
            if isinstance(event, Epilogue):
                return
    decoder.receive_data(None)
    while not isinstance(event := decoder.next_event(), (NeedData, Epilogue)):
        yield event


async def _field(events: AsyncIterator[Any]) -> str:
    value = bytearray()
    async for event in events:
        value += event.data
        if len(value) > MAX_FIELD:
            raise BadRequest("A form field is too long.")
        if not event.more_data:
            break
    return value.decode("utf-8", "replace")


async def handle(svc: Any, call: Call, account: str, container: str, prefix: str) -> Reply:
    """Store the form's files; the answer Swift gives (303 to the redirect, or the status)."""
    attributes: dict[str, str] = {}
    try:
        boundary = call.request.mimetype_params.get("boundary", "")
        if not boundary:
            raise BadRequest("The form has no boundary.")
        events = _events(call.request.body, MultipartDecoder(boundary.encode(), max_parts=MAX_PARTS))
        stored = 0
        async for event in events:
            if isinstance(event, Field):
                attributes[event.name] = await _field(events)
            elif isinstance(event, File):
                if stored == 0:
                    await _check(svc, call, account, container, attributes)
                if stored >= int(attributes["max_file_count"]):
                    raise BadRequest("max file count exceeded")
                stored += 1
                await _store(svc, account, container, prefix + (event.filename or event.name), events,
                             int(attributes["max_file_size"]), event.headers.get("Content-Type", ""))
        if stored == 0:
            await _check(svc, call, account, container, attributes)
        return _answer(attributes, 201, "")
    except CloudboxError as exc:
        if isinstance(exc, Unauthorized) or not attributes.get("redirect"):
            raise
        return _answer(attributes, exc.status, exc.message)
    except ValueError as exc:  # the multipart decoder's refusals
        if attributes.get("redirect"):
            return _answer(attributes, 400, f"Invalid form: {exc}")
        raise BadRequest(f"Invalid form: {exc}") from None


async def _check(svc: Any, call: Call, account: str, container: str, attributes: dict[str, str]) -> None:
    missing = [a for a in ("max_file_size", "max_file_count", "expires", "signature") if a not in attributes]
    if missing:
        raise Unauthorized(f"FormPost: missing {', '.join(missing)}")
    for name in ("max_file_size", "max_file_count", "expires"):
        if not attributes[name].isdigit():
            raise BadRequest(f"FormPost: {name} must be a whole number")
    keys = tempurl.keys_of((await svc.head_account(account)).metadata, "x-account-meta-")
    try:
        keys += tempurl.keys_of((await svc.head_container(account, container)).metadata, "x-container-meta-")
    except NotFound:
        pass
    message = "\n".join([attributes.get("redirect", ""), attributes["max_file_size"],
                         attributes["max_file_count"], attributes["expires"]])
    if int(attributes["expires"]) < svc.clock():
        raise Unauthorized("FormPost: Form Expired")
    if not tempurl.signed(message, call.request.path, attributes["signature"], keys):
        raise Unauthorized("FormPost: Invalid Signature")


async def _store(svc: Any, account: str, container: str, name: str, events: AsyncIterator[Any], limit: int,
                 content_type: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        size = 0
        async for event in events:
            if isinstance(event, Data):
                size += len(event.data)
                if size > limit:
                    raise PayloadTooLarge("max_file_size exceeded")
                yield event.data
                if not event.more_data:
                    return

    await svc.put_object(account, container, core.check_object_name(name), chunks(),
                         content_type=content_type or "application/octet-stream")


def _answer(attributes: dict[str, str], status: int, message: str) -> Reply:
    redirect = attributes.get("redirect")
    if redirect:
        query = urllib.parse.urlencode({"status": status, "message": message})
        sep = "&" if "?" in redirect else "?"
        return Reply(None, 303, {"Location": f"{redirect}{sep}{query}", "Content-Length": "0"})
    return Reply(f"<html><h1>{status}</h1><p>FormPost: {message or 'files stored'}</p></html>", status,
                 {"Content-Type": "text/html; charset=UTF-8"})

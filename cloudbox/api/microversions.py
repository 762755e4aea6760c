"""OpenStack microversions, as every versioned API reads them from a request."""

from __future__ import annotations

from typing import Mapping

from cloudbox.errors import BadRequest, NotAcceptable

Version = tuple[int, int]


def parse(text: str | None, lowest: Version, highest: Version) -> Version:
    """The microversion ``text`` asks for: none is ``lowest``, "latest" is ``highest``; a malformed
    one is a 400 and one outside the range a 406."""
    if not text:
        return lowest
    text = text.strip().lower()
    if text == "latest":
        return highest
    try:
        major, minor = (int(p) for p in text.split("."))
    except ValueError:
        raise BadRequest(f"Invalid format for API version: {text[:40]!r}.") from None
    if not lowest <= (major, minor) <= highest:
        raise NotAcceptable(f"Version {text[:40]} is not supported by the API. Minimum is {lowest[0]}.{lowest[1]} "
                            f"and maximum is {highest[0]}.{highest[1]}.")
    return major, minor


def from_header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The version ``OpenStack-API-Version`` gives for a service called one of ``names`` (None: none)."""
    for part in (headers.get("OpenStack-API-Version") or "").split(","):
        service, _, ver = part.strip().partition(" ")
        if service.lower() in names:
            return ver
    return None

"""The one error of the HOT library: a 400 whose message names the template path."""

from __future__ import annotations

from collections.abc import Sequence

from cloudbox.errors import BadRequest


class HotError(BadRequest):
    """A template, environment or parameter the user must fix (HTTP 400).

    ``path`` is the template path of the problem (``["resources", "server",
    "properties", "flavor"]``); the message already names it the way Heat does
    (``resources.server.properties.flavor: <reason>``) so python-heatclient shows
    the user where to look.
    """

    title = "Bad Request"

    def __init__(self, message: str, path: Sequence[str | int] = (), *,
                 named: bool = False) -> None:
        self.path = [str(p) for p in path]
        self.reason = message
        self.named = named  # the message names the place itself (Heat's parameter errors)
        if self.path and not named:
            message = f"{'.'.join(self.path)}: {message}"
        super().__init__(message)


def at(path: Sequence[str | int], error: HotError) -> HotError:
    """``error`` again, with ``path`` in front of the path it already names."""
    return HotError(error.reason, [*path, *error.path], named=error.named)

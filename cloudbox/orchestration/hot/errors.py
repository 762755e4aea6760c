"""The one error of the HOT library: a 400 whose message names the template path."""

from __future__ import annotations

from collections.abc import Sequence

from cloudbox.errors import BadRequest


# Heat's exception class for a message, for an error body's "type" (python-heatclient shows
# the message; scripts that read the type find Heat's names).
_HEAT_TYPES = (
    ("The template version is invalid", "InvalidTemplateVersion"),
    ("The template section is invalid", "InvalidTemplateSection"),
    ("Circular Dependency Found", "CircularDependencyException"),
    ("The specified reference", "InvalidTemplateReference"),
    ("The Referenced Attribute", "InvalidTemplateAttribute"),
    ("was not defined in template", "UnknownUserParameter"),
    ("was not provided.", "UserParameterMissing"),
    ("parameters are immutable", "ImmutableParameterModified"),
    ("is restricted for resource", "ResourceActionRestricted"),
)


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

    @property
    def heat_type(self) -> str:
        """The name of the exception Heat raises for this error."""
        return next((kind for text, kind in _HEAT_TYPES if text in self.reason), "StackValidationFailed")


def at(path: Sequence[str | int], error: HotError) -> HotError:
    """``error`` again, with ``path`` in front of the path it already names."""
    return HotError(error.reason, [*path, *error.path], named=error.named)

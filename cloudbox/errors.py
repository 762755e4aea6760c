"""The one exception hierarchy of cloudbox.

Every error a request can meet is a ``CloudboxError`` subclass carrying its HTTP
status on the class; raise the class that says what went wrong, never a bare
``CloudboxError`` with a status set on the instance. ``cloudbox.api.errors``
turns them into the error body of the OpenStack API the request was for; nothing
else renders errors. Messages that quote what a client sent use ``quote`` so that
a 100 kB value comes back as a short prefix.
"""

from __future__ import annotations

QUOTE_LIMIT = 40  # characters of a client's value that an error message repeats


class CloudboxError(Exception):
    """The base: an error with an HTTP status. Raise a subclass."""

    status: int = 500
    title: str = "Internal Server Error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title


class BadRequest(CloudboxError):
    status = 400
    title = "Bad Request"


class Unauthorized(CloudboxError):
    status = 401
    title = "Unauthorized"


class Forbidden(CloudboxError):
    status = 403
    title = "Forbidden"


class OverQuota(Forbidden):
    title = "Quota Exceeded"


class NotFound(CloudboxError):
    status = 404
    title = "Not Found"


class MethodNotAllowed(CloudboxError):
    status = 405
    title = "Method Not Allowed"


class NotAcceptable(CloudboxError):
    status = 406
    title = "Not Acceptable"


class RequestTimeout(CloudboxError):
    status = 408
    title = "Request Timeout"


class Conflict(CloudboxError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(CloudboxError):
    status = 413
    title = "Request Entity Too Large"


class UnsupportedMediaType(CloudboxError):
    status = 415
    title = "Unsupported Media Type"


class RangeNotSatisfiable(CloudboxError):
    status = 416
    title = "Requested Range Not Satisfiable"


class InternalError(CloudboxError):
    """A fault that should never happen (a bug, or state the code does not expect); a 500."""

    status = 500
    title = "Internal Server Error"


class Unavailable(CloudboxError):
    status = 503
    title = "Service Unavailable"


class SetupError(Exception):
    """A problem a person running the CLI must fix (missing data dir, port in use...)."""


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to a short prefix when long."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."

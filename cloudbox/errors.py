"""The one exception hierarchy of cloudbox.

Every error a request can meet is a ``CloudboxError`` subclass carrying its
HTTP status.  ``cloudbox.api.errors`` turns them into the error body of the
OpenStack API the request was for; nothing else renders errors.
"""

from __future__ import annotations


class CloudboxError(Exception):
    status: int = 500
    title: str = "Internal Server Error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title

    def to_dict(self) -> dict:
        return {"error": type(self).__name__, "message": self.message}

    @staticmethod
    def from_dict(data: dict) -> "CloudboxError":
        cls = ERROR_CLASSES.get(data.get("error", ""), CloudboxError)
        return cls(data.get("message"))


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


class Conflict(CloudboxError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(CloudboxError):
    status = 413
    title = "Request Entity Too Large"


class UnsupportedMediaType(CloudboxError):
    status = 415
    title = "Unsupported Media Type"


class Unavailable(CloudboxError):
    status = 503
    title = "Service Unavailable"


ERROR_CLASSES: dict[str, type[CloudboxError]] = {
    cls.__name__: cls
    for cls in (
        CloudboxError,
        BadRequest,
        Unauthorized,
        Forbidden,
        OverQuota,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unavailable,
    )
}


class SetupError(Exception):
    """A problem a person running the CLI must fix (missing data dir, port in use...)."""


class NotAcceptable(CloudboxError):
    status = 406
    title = "Not Acceptable"

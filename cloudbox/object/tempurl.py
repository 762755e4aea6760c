"""Pure: Swift's TempURL signatures (sha256 and sha512; sha1 is not served).

A signed URL carries ``temp_url_sig`` and ``temp_url_expires`` (and ``temp_url_prefix`` for a
signature over every object under a prefix). The signature is the HMAC of
``"<METHOD>\\n<expires>\\n<path>"`` (``prefix:<path>`` for prefixes) with one of the account's or
the container's keys (``X-Account-Meta-Temp-URL-Key``/``-Key-2``, the same for containers), as hex
digits or ``<digest>:<base64>``. The path is the URL's (``/object-store/v1/AUTH_<project>/...``)
or Swift's usual ``/v1/AUTH_<project>/...`` form of it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Iterable, Mapping

from cloudbox.errors import Unauthorized

DIGESTS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_HEX_LENGTHS = {64: "sha256", 128: "sha512"}
KEY_HEADERS = ("temp-url-key", "temp-url-key-2")
METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")


def _signature(sig: str) -> tuple[str, bytes]:
    """(digest name, raw signature) of a temp_url_sig; Unauthorized when it is neither form."""
    try:
        if ":" in sig:
            name, _, encoded = sig.partition(":")
            if name not in DIGESTS:
                raise ValueError(name)
            encoded = encoded.replace("-", "+").replace("_", "/")
            return name, base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        if len(sig) in _HEX_LENGTHS:
            return _HEX_LENGTHS[len(sig)], binascii.unhexlify(sig)
    except (ValueError, binascii.Error):
        pass
    raise Unauthorized("Temp URL invalid")


def keys_of(metadata: Mapping[str, str], prefix: str) -> list[str]:
    """The temp-url keys in an account's (``x-account-meta-``) or container's metadata."""
    return [metadata[prefix + k] for k in KEY_HEADERS if metadata.get(prefix + k)]


def check(query: Mapping[str, str], method: str, path: str, object_name: str, keys: Iterable[str],
          now: float) -> None:
    """Raise Unauthorized unless the query signs ``method`` on ``path`` with one of ``keys``
    before its expiry. ``path`` is the request's full path; ``object_name`` the object's name."""
    sig, expires = query.get("temp_url_sig", ""), query.get("temp_url_expires", "")
    try:
        expiry = int(expires)
    except ValueError:
        raise Unauthorized("Temp URL invalid") from None
    if expiry < now:
        raise Unauthorized("Temp URL expired")
    digest_name, given = _signature(sig)
    paths = [path]
    if path.startswith("/object-store/v1/"):
        paths.append(path[len("/object-store"):])
    prefix = query.get("temp_url_prefix")
    if prefix is not None:
        if not object_name.startswith(prefix):
            raise Unauthorized("Temp URL invalid")
        cut = len(path) - len(object_name)
        paths = ["prefix:" + p[:len(p) - len(path) + cut] + prefix for p in paths]
    # A HEAD is allowed by a signature for GET, HEAD or PUT (Swift's rule).
    methods = ("GET", "HEAD", "PUT") if method == "HEAD" else (method,)
    for key in keys:
        for candidate in paths:
            for signed_method in methods:
                message = f"{signed_method}\n{expires}\n{candidate}".encode()
                expected = hmac.new(key.encode(), message, DIGESTS[digest_name]).digest()
                if hmac.compare_digest(expected, given):
                    return
    raise Unauthorized("Temp URL invalid")


def signed(message: str, path: str, sig: str, keys: Iterable[str]) -> bool:
    """Whether ``sig`` is the HMAC of ``"<path>\n" + message`` with one of ``keys`` (form post's
    signature; the path in either of its forms)."""
    try:
        digest_name, given = _signature(sig)
    except Unauthorized:
        return False
    paths = [path] + ([path[len("/object-store"):]] if path.startswith("/object-store/v1/") else [])
    for key in keys:
        for candidate in paths:
            expected = hmac.new(key.encode(), f"{candidate}\n{message}".encode(), DIGESTS[digest_name]).digest()
            if hmac.compare_digest(expected, given):
                return True
    return False

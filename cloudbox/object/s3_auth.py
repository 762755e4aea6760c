"""AWS Signature Version 4 as S3 checks it: in the Authorization header or in a presigned URL.

Pure and in two steps, because the secret must be looked up in between:
``parse_request`` reads who claims to sign what (the access key, the credential scope, the
signed headers, the payload hash) and refuses what is malformed, stale or expired;
``verify`` rebuilds the canonical request exactly as AWS documents it, signs it with the
secret of that access key and compares.  What a streamed (aws-chunked) body needs to check its
chunk signatures goes on in the returned ``Signer``.

The canonical request:
    method \\n canonical URI \\n canonical query \\n canonical headers \\n signed headers \\n payload hash
- the URI is the path as sent, decoded and encoded again with only A-Z a-z 0-9 - . _ ~ kept
  ("/" too), and no normalisation (S3 signs the path as is: "a//b" and "a/../b" stay);
- the query's names and values are encoded the same way ("/" too), sorted by name then value;
  a presigned URL's X-Amz-Signature is left out;
- each signed header is "name:value" with the name lowercased and the value trimmed, inner
  runs of spaces made one, several values joined by ",".
The payload hash is x-amz-content-sha256 as sent (a hex SHA-256, UNSIGNED-PAYLOAD or one of
the STREAMING-* forms); a presigned URL signs UNSIGNED-PAYLOAD.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import Iterable, Mapping

from cloudbox.object.s3_xml import S3Error, is_number

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
MAX_SKEW = 15 * 60  # seconds between the signer's clock and ours
MAX_EXPIRES = 7 * 24 * 3600  # a presigned URL lives at most a week
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_HEX64 = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_SPACES = re.compile(r"\s+")
_UNRESERVED = "-._~"  # with letters and digits: what URI encoding keeps


@dataclass(frozen=True)
class Claim:
    """What a request says about its signature, before the secret is known."""

    access_key: str
    date: str  # yyyymmdd of the scope
    region: str
    service: str
    amz_date: str  # yyyymmddThhmmssZ
    signed_headers: tuple[str, ...]
    signature: str
    payload_hash: str  # as signed: hex, UNSIGNED-PAYLOAD or STREAMING-*
    presigned: bool

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class Signer:
    """What checking a streamed body's chunk signatures needs: the signing key, the scope, the
    request's date and its signature (the first chunk's "previous signature")."""

    key: bytes
    scope: str
    amz_date: str
    seed: str

    def chunk_signature(self, previous: str, chunk_sha256: str) -> str:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, previous, EMPTY_SHA256,
                             chunk_sha256])
        return hmac.new(self.key, to_sign.encode(), hashlib.sha256).hexdigest()

    def trailer_signature(self, previous: str, trailer: bytes) -> str:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", self.amz_date, self.scope, previous,
                             hashlib.sha256(trailer).hexdigest()])
        return hmac.new(self.key, to_sign.encode(), hashlib.sha256).hexdigest()


def uri_encode(text: str, *, keep_slash: bool) -> str:
    return urllib.parse.quote(text, safe=_UNRESERVED + ("/" if keep_slash else ""))


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """The decoded (name, value) pairs of a raw query string, in order ("a" alone is ("a", ""))."""
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((urllib.parse.unquote(name), urllib.parse.unquote(value)))
    return pairs


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((uri_encode(n, keep_slash=False), uri_encode(v, keep_slash=False)) for n, v in pairs)
    return "&".join(f"{n}={v}" for n, v in encoded)


def canonical_headers(headers: Iterable[tuple[str, str]], signed: Iterable[str]) -> str:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(_SPACES.sub(" ", value.strip()))
    lines = []
    for name in signed:
        if name not in values:
            raise S3Error("AccessDenied", f"The signed header {name!r} is not in the request.")
        lines.append(f"{name}:{','.join(values[name])}\n")
    return "".join(lines)


def canonical_request(method: str, raw_path: str, query: Iterable[tuple[str, str]],
                      headers: Iterable[tuple[str, str]], signed: tuple[str, ...], payload_hash: str) -> str:
    uri = uri_encode(urllib.parse.unquote(raw_path) or "/", keep_slash=True)
    return "\n".join([method, uri, canonical_query(query), canonical_headers(headers, signed),
                      ";".join(signed), payload_hash])


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def amz_time(amz_date: str) -> float:
    """The unix time of an ISO 8601 basic date (yyyymmddThhmmssZ); AccessDenied when it is none."""
    try:
        return float(calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")))
    except ValueError as exc:
        raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header") from exc


def is_signed(headers: Mapping[str, str], query: Iterable[tuple[str, str]]) -> bool:
    """Whether a request carries any AWS signature at all (else it is anonymous)."""
    return "authorization" in headers or any(n in ("X-Amz-Signature", "Signature") for n, _ in query)


def parse_request(method: str, headers: Mapping[str, str], query: list[tuple[str, str]], now: float) -> Claim:
    """The signature claim of a request (``headers`` keyed by lowercase name), checked for form,
    for the clock (15 minutes either way) and, presigned, for expiry."""
    names = {n for n, _ in query}
    if "X-Amz-Signature" in names or "X-Amz-Algorithm" in names:
        return _parse_presigned(dict(query), now)
    if "Signature" in names and "AWSAccessKeyId" in names:
        raise S3Error("InvalidRequest", "Signature Version 2 is not supported; use AWS4-HMAC-SHA256.")
    authorization = headers.get("authorization", "")
    if not authorization.startswith(ALGORITHM + " "):
        if authorization.startswith("AWS "):
            raise S3Error("InvalidRequest", "The authorization mechanism you have provided is not supported. "
                          "Please use AWS4-HMAC-SHA256.")
        raise S3Error("AuthorizationHeaderMalformed", "The authorization header is malformed; it must start "
                      f"with {ALGORITHM}.")
    fields: dict[str, str] = {}
    for part in authorization[len(ALGORITHM) + 1:].split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value.strip()
    missing = [f for f in ("Credential", "SignedHeaders", "Signature") if f not in fields]
    if missing:
        raise S3Error("AuthorizationHeaderMalformed", f"The authorization header is malformed; it lacks {missing[0]}.")
    amz_date = headers.get("x-amz-date") or _http_date_as_amz(headers.get("date", ""))
    payload_hash = headers.get("x-amz-content-sha256", "")
    if not payload_hash:
        raise S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    if payload_hash not in (UNSIGNED, *STREAMING) and not _HEX64.fullmatch(payload_hash):
        raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-"
                      "AWS4-HMAC-SHA256-PAYLOAD(-TRAILER), STREAMING-UNSIGNED-PAYLOAD-TRAILER or a SHA-256 "
                      "in hex.", ArgumentName="x-amz-content-sha256")
    claim = _claim(fields["Credential"], fields["SignedHeaders"], fields["Signature"], amz_date, payload_hash,
                   presigned=False, error="AuthorizationHeaderMalformed")
    skew = amz_time(claim.amz_date) - now
    if abs(skew) > MAX_SKEW:
        raise S3Error("RequestTimeTooSkewed", "The difference between the request time and the current time "
                      "is too large.", RequestTime=claim.amz_date,
                      ServerTime=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)),
                      MaxAllowedSkewMilliseconds=str(MAX_SKEW * 1000))
    return claim


def _parse_presigned(params: dict[str, str], now: float) -> Claim:
    error = "AuthorizationQueryParametersError"
    for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                 "X-Amz-Signature"):
        if name not in params:
            raise S3Error(error, f"Query-string authentication version 4 requires the X-Amz-Algorithm, "
                          f"X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires "
                          f"parameters; {name} is missing.")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise S3Error(error, f"X-Amz-Algorithm only supports \"{ALGORITHM}\".")
    expires = params["X-Amz-Expires"]
    if not is_number(expires) or not 0 < int(expires) <= MAX_EXPIRES:
        raise S3Error(error, f"X-Amz-Expires must be a number of seconds from 1 to {MAX_EXPIRES}.")
    claim = _claim(params["X-Amz-Credential"], params["X-Amz-SignedHeaders"], params["X-Amz-Signature"],
                   params["X-Amz-Date"], UNSIGNED, presigned=True, error=error)
    signed_at = amz_time(claim.amz_date)
    if signed_at - now > MAX_SKEW:
        raise S3Error("AccessDenied", "Request is not valid yet")
    if now > signed_at + int(expires):
        raise S3Error("AccessDenied", "Request has expired", **{
            "X-Amz-Expires": expires,
            "Expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(signed_at + int(expires))),
            "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})
    return claim


def _claim(credential: str, signed_headers: str, signature: str, amz_date: str, payload_hash: str, *,
           presigned: bool, error: str) -> Claim:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise S3Error(error, f"The credential {credential[:120]!r} is malformed; expected "
                      "\"<access key>/<yyyymmdd>/<region>/s3/aws4_request\".")
    access_key, date, region, service = parts[:4]
    if service != "s3":
        raise S3Error(error, f"The credential is scoped to the service {service!r}; this is s3.")
    if not _AMZ_DATE.fullmatch(amz_date):
        raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    amz_time(amz_date)  # a real date too
    if date != amz_date[:8]:
        raise S3Error(error, f"The credential's date {date!r} is not the request's date {amz_date[:8]!r}.")
    signed = tuple(signed_headers.split(";"))
    if not signed_headers or list(signed) != sorted(set(signed)) or signed != tuple(s.lower() for s in signed):
        raise S3Error(error, "SignedHeaders must be lowercase header names, sorted, joined by \";\".")
    if "host" not in signed:
        raise S3Error(error, "The host header must be signed.")
    if not _HEX64.fullmatch(signature):
        raise S3Error("SignatureDoesNotMatch", "The signature is not 64 hex digits.")
    return Claim(access_key, date, region, service, amz_date, signed, signature, payload_hash, presigned)


def _http_date_as_amz(value: str) -> str:
    try:
        parsed = time.strptime(value.strip(), "%a, %d %b %Y %H:%M:%S GMT")
    except ValueError:
        return ""
    return time.strftime("%Y%m%dT%H%M%SZ", parsed)


def verify(claim: Claim, secret: str, method: str, raw_path: str, query: list[tuple[str, str]],
           headers: Iterable[tuple[str, str]]) -> Signer:
    """Check the request's signature with the access key's secret; SignatureDoesNotMatch unless
    it is the one AWS's algorithm gives."""
    if claim.presigned:
        query = [(n, v) for n, v in query if n != "X-Amz-Signature"]
    canonical = canonical_request(method, raw_path, query, headers, claim.signed_headers, claim.payload_hash)
    to_sign = string_to_sign(claim.amz_date, claim.scope, canonical)
    key = signing_key(secret, claim.date, claim.region, claim.service)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, claim.signature):
        raise S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                      "signature you provided. Check your key and signing method.",
                      AWSAccessKeyId=claim.access_key, StringToSign=to_sign, CanonicalRequest=canonical)
    return Signer(key, claim.scope, claim.amz_date, claim.signature)


def presign(secret: str, access_key: str, method: str, host: str, raw_path: str, *, amz_date: str,
            region: str = "us-east-1", expires: int = 3600, query: Iterable[tuple[str, str]] = ()) -> str:
    """A presigned URL's path and query (what our tests and Keystone's s3tokens compare against)."""
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    params = [*query, ("X-Amz-Algorithm", ALGORITHM), ("X-Amz-Credential", f"{access_key}/{scope}"),
              ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(expires)), ("X-Amz-SignedHeaders", "host")]
    canonical = canonical_request(method, raw_path, params, [("host", host)], ("host",), UNSIGNED)
    signature = hmac.new(signing_key(secret, amz_date[:8], region, "s3"),
                         string_to_sign(amz_date, scope, canonical).encode(), hashlib.sha256).hexdigest()
    return raw_path + "?" + canonical_query([*params, ("X-Amz-Signature", signature)])

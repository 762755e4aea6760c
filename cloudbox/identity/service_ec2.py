"""Keystone's EC2 and S3 token endpoints (POST /v3/ec2tokens and /v3/s3tokens), and the
credential lookup S3 requests are checked with.

An EC2 credential (OS-EC2) binds an access key and its secret to a user on a project.  A
request signed with that secret proves the user: ``ec2_token`` checks the signature of a
request as the signer described it (Signature Version 2 or 4, in its headers or its query),
``s3_token`` checks a signature over a string to sign that a service (Swift's s3api) hands
over.  Both answer a token scoped to the credential's project.  ``signer`` gives the S3 API
the credential's context and secret; the S3 API checks its own signatures.

The signature checks are pure functions at the top; the service part reads the credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
from typing import TYPE_CHECKING, Any, Mapping

from cloudbox.errors import BadRequest, Unauthorized
from cloudbox.identity import store_extensions
from cloudbox.identity import core_extensions as x
from cloudbox.identity.core import AuthContext, TokenPayload
from cloudbox.object import s3_auth
from cloudbox.object.s3_xml import S3Error

if TYPE_CHECKING:
    from cloudbox.identity.service import IdentityService

MISMATCH = "Credential signature mismatch."
METHOD = "ec2credential"


def _hmac(secret: str | bytes, text: str, digest: str = "sha256") -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, text.encode(), digest).digest()


def _matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def v2_signature(secret: str, verb: str, host: str, path: str, params: Mapping[str, str]) -> str:
    """EC2's Signature Version 2: HMAC of the verb, the host, the path and the sorted query."""
    method = params.get("SignatureMethod", "HmacSHA256")
    digest = {"HmacSHA256": "sha256", "HmacSHA1": "sha1"}.get(method)
    if digest is None:
        raise BadRequest(f"SignatureMethod must be HmacSHA256 or HmacSHA1, not {method[:40]!r}.")
    query = "&".join(f"{urllib.parse.quote(k, safe='-_~')}={urllib.parse.quote(str(v), safe='-_~')}"
                     for k, v in sorted(params.items()) if k != "Signature")
    to_sign = "\n".join([verb, host.lower(), path, query])
    return base64.b64encode(_hmac(secret, to_sign, digest)).decode()


def v4_signature(secret: str, verb: str, host: str, path: str, params: Mapping[str, str],
                 headers: Mapping[str, str], body_hash: str) -> tuple[str, str]:
    """(expected, given) SigV4 signatures of a request described by its parts, signed in its
    Authorization header or in its query (X-Amz-*)."""
    lower = {k.lower(): v for k, v in headers.items()}
    lower.setdefault("host", host)
    if "X-Amz-Algorithm" in params:
        credential, signed, given = (params.get(k, "") for k in ("X-Amz-Credential", "X-Amz-SignedHeaders",
                                                                  "X-Amz-Signature"))
        amz_date = params.get("X-Amz-Date", "")
        query = [(k, v) for k, v in params.items() if k != "X-Amz-Signature"]
    else:
        fields = {}
        for part in lower.get("authorization", "").partition(" ")[2].split(","):
            name, _, value = part.strip().partition("=")
            fields[name] = value
        credential, signed, given = (fields.get(k, "") for k in ("Credential", "SignedHeaders", "Signature"))
        amz_date = lower.get("x-amz-date", "")
        query = list(params.items())
    scope = credential.split("/")
    if len(scope) != 5 or not amz_date:
        raise Unauthorized("The request's SigV4 credential or date is malformed.")
    payload = lower.get("x-amz-content-sha256") or body_hash or s3_auth.EMPTY_SHA256
    if "X-Amz-Algorithm" in params and scope[3] == "s3":
        payload = s3_auth.UNSIGNED
    try:
        canonical = s3_auth.canonical_request(verb, path, query, lower.items(), tuple(signed.split(";")), payload)
    except S3Error as exc:
        raise Unauthorized(exc.message) from exc
    to_sign = s3_auth.string_to_sign(amz_date, "/".join(scope[1:]), canonical)
    key = s3_auth.signing_key(secret, scope[1], scope[2], scope[3])
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), given


def s3_string_signature(secret: str, string_to_sign: str) -> str:
    """The signature of an S3 string to sign: SigV4's hex HMAC with the key of its scope, or
    Signature Version 1's base64 HMAC-SHA1 of the string."""
    lines = string_to_sign.split("\n")
    if lines[0] == s3_auth.ALGORITHM:
        if len(lines) != 4 or len(lines[2].split("/")) != 4:
            raise BadRequest("An AWS4-HMAC-SHA256 string to sign has four lines, the third its scope.")
        date, region, service, _ = lines[2].split("/")
        key = s3_auth.signing_key(secret, date, region, service)
        return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(_hmac(secret, string_to_sign, "sha1")).decode()


def _text_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, (str, int, float)) for v in value.values()):
        raise BadRequest(f"credentials.{what} must be an object of strings.")
    return {str(k): str(v) for k, v in value.items()}


class Ec2Tokens:
    def __init__(self, identity: "IdentityService") -> None:
        self.identity = identity

    async def signer(self, access: str) -> tuple[AuthContext, str]:
        """The context (scoped to its project, with no token) and the secret of an access key;
        Unauthorized for an unknown key, a disabled user or project, or a user without a role."""
        row = await self.identity.read(store_extensions.ec2_by_access, access, x.ec2_credential_id(access))
        if row is None or not row.get("project_id"):
            raise Unauthorized("EC2 access key not found.")
        blob = x.parse_ec2_blob(row["blob"])
        if blob.get("trust_id") or blob.get("access_token_id"):
            raise Unauthorized("EC2 credentials bound to a trust or an OAuth token are not supported.")
        secret = blob.get("secret")
        if not isinstance(secret, str) or not secret:
            raise Unauthorized("The EC2 credential has no secret.")
        now = self.identity.clock()
        payload = TokenPayload(
            user_id=row["user_id"], methods=(METHOD,), scope_type="project", scope_id=row["project_id"],
            issued_at=now, expires_at=now + self.identity.settings.token_expiration,
            audit_ids=(_audit_id(),), app_cred_id=blob.get("app_cred_id") or None)
        return await self.identity.mint(payload, token=False), secret

    async def _token(self, ctx: AuthContext) -> AuthContext:
        return await self.identity.mint(ctx.payload)

    async def ec2_token(self, credentials: dict[str, Any]) -> AuthContext:
        """POST /ec2tokens: a token for a request signed with an EC2 credential."""
        access, given = credentials.get("access"), credentials.get("signature")
        if not isinstance(access, str) or not access:
            raise BadRequest("credentials.access is required.")
        params = _text_map(credentials.get("params"), "params")
        headers = _text_map(credentials.get("headers"), "headers")
        verb, host, path = (str(credentials.get(k) or "") for k in ("verb", "host", "path"))
        ctx, secret = await self.signer(access)
        v4 = "X-Amz-Algorithm" in params or {k.lower(): v for k, v in headers.items()}.get(
            "authorization", "").startswith(s3_auth.ALGORITHM)
        if v4:
            expected, given = v4_signature(secret, verb or "GET", host, path or "/", params, headers,
                                           str(credentials.get("body_hash") or ""))
        else:
            if not isinstance(given, str) or not given:
                raise BadRequest("credentials.signature is required.")
            if params.get("SignatureVersion", "2") != "2":
                raise Unauthorized("Only EC2 Signature Versions 2 and 4 are supported.")
            expected = v2_signature(secret, verb or "GET", host, path or "/", params)
        if not isinstance(given, str) or not _matches(expected, given):
            raise Unauthorized(MISMATCH)
        return await self._token(ctx)

    async def s3_token(self, credentials: dict[str, Any]) -> AuthContext:
        """POST /s3tokens: a token for an S3 request whose string to sign (base64, in
        ``token``) was signed with an EC2 credential's secret."""
        access, token, given = (credentials.get(k) for k in ("access", "token", "signature"))
        if not all(isinstance(v, str) and v for v in (access, token, given)):
            raise BadRequest("credentials.access, credentials.token and credentials.signature are required.")
        try:
            string_to_sign = base64.b64decode(str(token), validate=True).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("credentials.token is the base64 of the string to sign.") from exc
        ctx, secret = await self.signer(str(access))
        if not _matches(s3_string_signature(secret, string_to_sign), str(given)):
            raise Unauthorized(MISMATCH)
        return await self._token(ctx)


def _audit_id() -> str:
    return secrets.token_urlsafe(16)[:22]  # as the service's new_audit_id (it imports this module)

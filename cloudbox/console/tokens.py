"""Console tokens: sealed claims any node can open, spent once on the guest's node.

A token is Fernet (AES-CBC and HMAC-SHA256) over a small JSON document: the server, the
protocol, the compute host that runs the guest, when it was issued, when it expires and a
random nonce.  The key is derived (HKDF) from the cluster CA's private key, which every node
holds and no guest or client sees, so any node can open a token another node issued, and a
changed or guessed token does not open.  Pure: the caller passes the clock and the nonce.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PROTOCOLS = ("vnc", "serial")
TOKEN_TTL = 600  # seconds to connect (Nova's [consoleauth] token_ttl)
MAX_TOKEN_LENGTH = 1024  # a longer one is refused before any decoding
_INFO = b"cloudbox console tokens v1"


class BadToken(Exception):
    """A token that does not open, has expired, or says something impossible."""


@dataclass(frozen=True)
class Claims:
    server_id: str
    protocol: str  # "vnc" or "serial"
    host: str  # the compute host running the guest when the token was issued
    issued_at: int  # seconds since the epoch
    expires_at: int
    nonce: str  # hex; what the guest's node records as spent

    def to_bytes(self) -> bytes:
        return json.dumps([1, self.server_id, self.protocol, self.host, self.issued_at, self.expires_at,
                           self.nonce], separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Claims":
        try:
            version, server_id, protocol, host, issued_at, expires_at, nonce = json.loads(data)
        except (ValueError, TypeError) as exc:
            raise BadToken("malformed claims") from exc
        if version != 1 or protocol not in PROTOCOLS or not all(
                isinstance(v, str) for v in (server_id, host, nonce)) or not all(
                isinstance(v, int) for v in (issued_at, expires_at)):
            raise BadToken("malformed claims")
        return cls(server_id, protocol, host, issued_at, expires_at, nonce)


def derive_key(secret: bytes) -> bytes:
    """The Fernet key of console tokens, from a cluster-wide secret (the CA's private key)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
    return base64.urlsafe_b64encode(raw)


def seal(key: bytes, claims: Claims) -> str:
    """The token: URL-safe, without Fernet's '=' padding (it travels in a query string)."""
    return Fernet(key).encrypt_at_time(claims.to_bytes(), claims.issued_at).decode().rstrip("=")


def open_token(key: bytes, token: str, now: float) -> Claims:
    """The claims of a token that opens and has not expired at ``now`` (BadToken otherwise)."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise BadToken("no such token")
    padded = token + "=" * (-len(token) % 4)
    try:
        claims = Claims.from_bytes(Fernet(key).decrypt(padded.encode()))
    except (InvalidToken, ValueError, TypeError) as exc:
        raise BadToken("no such token") from exc
    if claims.expires_at <= now:
        raise BadToken("the token has expired")
    return claims

"""Checking an S3 request body as it streams: the aws-chunked decoder and the checksums.

Sans-IO like h11: ``feed(data)`` takes the bytes as they arrive and returns the payload bytes
that may go on to storage, ``end()`` says whether the body was whole and right.  The storage
layer is handed an iterator that raises when ``end()`` does, so a body that fails a check is
never committed.

aws-chunked (Content-Encoding: aws-chunked; x-amz-content-sha256 names the variant):
    <size in hex>[;chunk-signature=<64 hex>]\\r\\n <size bytes> \\r\\n   ... repeated, then
    0[;chunk-signature=<64 hex>]\\r\\n  [<trailer name>:<value>\\r\\n ...]  \\r\\n
- STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk (the last, empty one too) is signed, each
  signature chained on the previous one (the first on the request's signature); a chunk's
  bytes go on as they arrive and its signature is checked when it ends: the storage layer
  commits nothing before the body's last check, so a bad chunk leaves no object behind;
- STREAMING-UNSIGNED-PAYLOAD-TRAILER (what boto3 and awscli send by default): chunks are not
  signed; a trailer (named in x-amz-trailer) carries a checksum of the payload;
- STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: both, the trailer signed by
  x-amz-trailer-signature.
Every checksum S3 takes is checked: x-amz-checksum-crc32 / crc32c / crc64nvme / sha1 / sha256,
in a header or a trailer; Content-MD5; and a hex x-amz-content-sha256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import zlib
from typing import Any, Callable, Mapping

from cloudbox.object.s3_auth import STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, Signer
from cloudbox.object.s3_xml import S3Error, is_number

MAX_LINE = 4096  # a chunk header or a trailer line
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SIZE = re.compile(r"[0-9a-fA-F]{1,16}")


def _crc_table(poly: int) -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc_table(0x82F63B78)
_CRC64NVME = _crc_table(0x9A6C9329AC4BC9B5)


_UNLOADED: Any = object()
_crt: Any = _UNLOADED  # awscrt's checksums module, None without awscrt; looked for at first use


def _native() -> Any:
    """AWS's common runtime computes crc32c and crc64nvme in C (botocore uses it for them too).
    Imported at the first such checksum: its library maps 4.4 MiB a node otherwise never uses."""
    global _crt
    if _crt is _UNLOADED:
        try:
            from awscrt import checksums
        except ImportError:  # pragma: no cover - depends on what is installed
            checksums = None
        _crt = checksums
    return _crt


class _Crc:
    """A reflected CRC without a C implementation in the standard library (crc32c, crc64nvme):
    awscrt's when it is installed, else table-driven Python (a few MB/s: ``slow``, so the
    request's body is checked in a worker thread and the event loop is not held)."""

    def __init__(self, table: list[int], width: int, native: Callable[[bytes, int], int] | None) -> None:
        self.table, self.width, self.native = table, width, native
        self.mask = (1 << (8 * width)) - 1
        self.crc = self.mask
        self.slow = native is None
        self.total = 0  # the native form carries the finished CRC (0 to start)

    def update(self, data: bytes) -> None:
        if self.native is not None:
            self.total = self.native(data, self.total)
            return
        crc, table = self.crc, self.table
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self.crc = crc

    def digest(self) -> bytes:
        value = self.total if self.native is not None else self.crc ^ self.mask
        return value.to_bytes(self.width, "big")


class _Crc32:
    def __init__(self) -> None:
        self.crc = 0

    def update(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)

    def digest(self) -> bytes:
        return self.crc.to_bytes(4, "big")


ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")


class Checksum:
    """One of S3's additional checksums over the payload, as base64 of its big-endian bytes."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        if algorithm == "crc32":
            self._state: _Crc32 | _Crc | "hashlib._Hash" = _Crc32()
        elif algorithm == "crc32c":
            self._state = _Crc(_CRC32C, 4, _native().crc32c if _native() else None)
        elif algorithm == "crc64nvme":
            self._state = _Crc(_CRC64NVME, 8, _native().crc64nvme if _native() else None)
        elif algorithm in ("sha1", "sha256"):
            self._state = hashlib.new(algorithm)
        else:
            raise S3Error("InvalidRequest", f"The checksum algorithm {algorithm!r} is not one of "
                          f"{', '.join(ALGORITHMS)}.")

    @property
    def slow(self) -> bool:
        return isinstance(self._state, _Crc) and self._state.slow

    def update(self, data: bytes) -> None:
        self._state.update(data)

    def value(self) -> str:
        return base64.b64encode(self._state.digest()).decode()

    def check(self, expected: str) -> None:
        if not hmac.compare_digest(self.value(), expected.strip()):
            raise S3Error("BadDigest", f"The {self.algorithm.upper()} you specified did not match the "
                          "calculated checksum.")


def checksum_header(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """The (algorithm, value) of an x-amz-checksum-<algorithm> header, if the request has one."""
    found = [(name[len("x-amz-checksum-"):], value) for name, value in headers.items()
             if name.startswith("x-amz-checksum-") and name != "x-amz-checksum-algorithm"
             and name != "x-amz-checksum-type"]
    if len(found) > 1:
        raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types "
                      "are not allowed.")
    return found[0] if found else None


class BodyCheck:
    """The checks of a body that is not aws-chunked: its length, a hex x-amz-content-sha256,
    Content-MD5 and an x-amz-checksum-* header."""

    def __init__(self, headers: Mapping[str, str], payload_hash: str, length: int | None) -> None:
        self.length = length
        self.seen = 0
        self.sha256 = hashlib.sha256() if _HEX64.fullmatch(payload_hash) else None
        self.payload_hash = payload_hash
        self.md5_expected = _content_md5(headers)
        self.md5 = hashlib.md5() if self.md5_expected is not None else None
        pair = checksum_header(headers)
        self.checksum = Checksum(pair[0]) if pair else None
        self.checksum_expected = pair[1] if pair else ""

    @property
    def slow(self) -> bool:
        """Whether feeding it takes long enough to belong in a worker thread."""
        return self.checksum is not None and self.checksum.slow

    def feed(self, data: bytes) -> list[bytes]:
        self.seen += len(data)
        if self.length is not None and self.seen > self.length:
            raise S3Error("InvalidRequest", "The body is longer than its Content-Length.")
        for state in (self.sha256, self.md5, self.checksum):
            if state is not None:
                state.update(data)
        return [data] if data else []

    def end(self) -> None:
        if self.length is not None and self.seen != self.length:
            raise S3Error("IncompleteBody", "You did not provide the number of bytes specified by the "
                          "Content-Length HTTP header.")
        if self.sha256 is not None and self.sha256.hexdigest() != self.payload_hash:
            raise S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not "
                          "match what was computed.")
        if self.md5 is not None and self.md5.digest() != self.md5_expected:
            raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.")
        if self.checksum is not None:
            self.checksum.check(self.checksum_expected)


def _content_md5(headers: Mapping[str, str]) -> bytes | None:
    value = headers.get("content-md5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified is not valid.")
    return digest


class ChunkedDecoder:
    """An aws-chunked body decoded and checked as it streams (see the module's rules)."""

    def __init__(self, headers: Mapping[str, str], payload_hash: str, signer: Signer | None) -> None:
        if payload_hash not in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
            raise S3Error("InvalidArgument", f"{payload_hash[:64]!r} is not an aws-chunked payload.")
        self.signed = payload_hash != STREAMING_UNSIGNED_TRAILER
        if self.signed and signer is None:
            raise S3Error("AccessDenied", "A signed aws-chunked body needs a signed request.")
        self.signer = signer
        self.previous = signer.seed if signer else ""
        self.trailer_expected = payload_hash != STREAMING_SIGNED
        names = [n.strip().lower() for n in headers.get("x-amz-trailer", "").split(",") if n.strip()]
        if len(names) > 1 or any(not n.startswith("x-amz-checksum-") for n in names):
            raise S3Error("InvalidRequest", "x-amz-trailer names one x-amz-checksum-<algorithm> header.")
        if self.trailer_expected and not names:
            raise S3Error("InvalidRequest", "A body with a trailer needs an x-amz-trailer header naming it.")
        self.trailer_name = names[0] if names else None
        self.checksum = Checksum(self.trailer_name[len("x-amz-checksum-"):]) if self.trailer_name else None
        self.plain = BodyCheck({k: v for k, v in headers.items() if k != self.trailer_name}, "UNSIGNED-PAYLOAD", None)
        declared = headers.get("x-amz-decoded-content-length")
        if declared is not None and not is_number(declared):
            raise S3Error("InvalidArgument", "x-amz-decoded-content-length must be a number of bytes.")
        self.decoded_length = int(declared) if declared is not None else None
        self.buffer = bytearray()
        self.state = "size"  # size -> data -> crlf -> size ... -> trailer -> done
        self.remaining = 0
        self.chunk_signature = ""
        self.chunk_sha256 = hashlib.sha256()
        self.trailers: dict[str, str] = {}
        self.trailer_lines: list[str] = []
        self.total = 0

    @property
    def slow(self) -> bool:
        return (self.checksum is not None and self.checksum.slow) or self.plain.slow

    def feed(self, data: bytes) -> list[bytes]:
        if self.state == "done" and data:
            raise S3Error("InvalidRequest", "Bytes follow the end of the aws-chunked body.")
        self.buffer += data
        out: list[bytes] = []
        while self._step(out):
            pass
        return out

    def _line(self) -> str | None:
        end = self.buffer.find(b"\r\n")
        if end < 0:
            if len(self.buffer) > MAX_LINE:
                raise S3Error("IncompleteBody", "An aws-chunked header line is too long.")
            return None
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 2]
        try:
            return line.decode("ascii")
        except UnicodeDecodeError as exc:
            raise S3Error("IncompleteBody", "An aws-chunked header line is not ASCII.") from exc

    def _step(self, out: list[bytes]) -> bool:
        """Make one step of progress with what is buffered; False when more bytes are needed."""
        if self.state == "size":
            line = self._line()
            if line is None:
                return False
            self._start_chunk(line)
            return True
        if self.state == "data":
            if not self.buffer:
                return False
            piece = bytes(self.buffer[:self.remaining])
            del self.buffer[:len(piece)]
            self.remaining -= len(piece)
            if self.signed:
                self.chunk_sha256.update(piece)
            self._emit(piece, out)
            if self.remaining == 0:
                if self.signed:
                    self._check_chunk(self.chunk_sha256.hexdigest())
                    self.chunk_sha256 = hashlib.sha256()
                self.state = "crlf"
            return True
        if self.state == "crlf":
            if len(self.buffer) < 2:
                return False
            if self.buffer[:2] != b"\r\n":
                raise S3Error("IncompleteBody", "An aws-chunked chunk is longer than its size says.")
            del self.buffer[:2]
            self.state = "size"
            return True
        if self.state == "trailer":
            line = self._line()
            if line is None:
                return False
            if line == "":
                self._finish_trailer()
                return True
            name, sep, value = line.partition(":")
            if not sep:
                raise S3Error("IncompleteBody", "An aws-chunked trailer line is not \"name:value\".")
            self.trailers[name.strip().lower()] = value.strip()
            if name.strip().lower() != "x-amz-trailer-signature":
                self.trailer_lines.append(f"{name.strip().lower()}:{value.strip()}\n")
            return True
        return False

    def _start_chunk(self, line: str) -> None:
        size_text, _, extension = line.partition(";")
        size_text = size_text.strip(" \t")  # spaces and tabs only: str.strip() also drops \x1c-\x1f, int() does not
        if not _SIZE.fullmatch(size_text):
            raise S3Error("IncompleteBody", f"An aws-chunked chunk size is not hexadecimal: {line[:40]!r}.")
        size = int(size_text, 16)
        if self.signed:
            name, _, signature = extension.partition("=")
            if name.strip() != "chunk-signature" or not _HEX64.fullmatch(signature.strip()):
                raise S3Error("IncompleteBody", "Each chunk of a signed aws-chunked body carries chunk-signature.")
            self.chunk_signature = signature.strip()
        if size == 0:
            if self.signed:
                self._check_chunk(hashlib.sha256(b"").hexdigest())
            self.state = "trailer"
            return
        self.remaining = size
        self.state = "data"

    def _check_chunk(self, sha256_hex: str) -> None:
        assert self.signer is not None
        expected = self.signer.chunk_signature(self.previous, sha256_hex)
        if not hmac.compare_digest(expected, self.chunk_signature):
            raise S3Error("SignatureDoesNotMatch", "The signature of an aws-chunked chunk does not match.")
        self.previous = expected

    def _emit(self, piece: bytes, out: list[bytes]) -> None:
        self.total += len(piece)
        if self.decoded_length is not None and self.total > self.decoded_length:
            raise S3Error("IncompleteBody", "The body is longer than x-amz-decoded-content-length.")
        if self.checksum is not None:
            self.checksum.update(piece)
        out.extend(self.plain.feed(piece))

    def _finish_trailer(self) -> None:
        if self.trailer_name is not None:
            if self.trailer_name not in self.trailers:
                raise S3Error("IncompleteBody", f"The trailer {self.trailer_name} named in x-amz-trailer is missing.")
            if self.signed:
                signature = self.trailers.get("x-amz-trailer-signature", "")
                assert self.signer is not None
                expected = self.signer.trailer_signature(self.previous, "".join(self.trailer_lines).encode())
                if not hmac.compare_digest(expected, signature):
                    raise S3Error("SignatureDoesNotMatch", "The signature of the aws-chunked trailer does not match.")
        self.state = "done"

    def end(self) -> dict[str, str]:
        """The trailers of a whole, checked body; an S3Error for a cut or wrong one."""
        if self.state == "trailer" and not self.buffer and self.trailer_name in self.trailers:
            self._finish_trailer()  # a client that ends its trailers without the last empty line
        if self.state != "done" or self.buffer:
            raise S3Error("IncompleteBody", "The aws-chunked body ended before its last chunk.")
        if self.decoded_length is not None and self.total != self.decoded_length:
            raise S3Error("IncompleteBody", "The body is shorter than x-amz-decoded-content-length.")
        if self.checksum is not None and self.trailer_name is not None:
            self.checksum.check(self.trailers[self.trailer_name])
        self.plain.end()
        return self.trailers


def body_checker(headers: Mapping[str, str], payload_hash: str, signer: Signer | None,
                 length: int | None) -> BodyCheck | ChunkedDecoder:
    """The checker of a request's body: aws-chunked when its payload hash says STREAMING-*."""
    if payload_hash.startswith("STREAMING-"):
        return ChunkedDecoder(headers, payload_hash, signer)
    return BodyCheck(headers, payload_hash, length)

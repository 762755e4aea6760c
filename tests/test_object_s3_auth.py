"""SigV4 (header and presigned), the aws-chunked decoder, checksums and S3's XML: pure, no server.

Known answers are AWS's documented examples (its S3 SigV4 pages, key AKIAIOSFODNN7EXAMPLE);
the rest signs requests with botocore itself, the signer boto3 and awscli use."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
import zlib

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cloudbox.object import s3_auth, s3_chunked, s3_xml
from cloudbox.object.s3_auth import amz_time, parse_query
from cloudbox.object.s3_xml import S3Error

ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_DATE = "20130524T000000Z"
NOW = amz_time(AWS_DATE)


# AWS's documented GET Object request (a Range, signed in the header).
GET_OBJECT = {
    "Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9",
    "x-amz-content-sha256": s3_auth.EMPTY_SHA256, "x-amz-date": AWS_DATE,
    "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS}/20130524/us-east-1/s3/aws4_request,"
                     "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                     "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"}


def check(method: str, raw_path: str, raw_query: str, headers: dict[str, str], now: float = NOW,
          secret: str = SECRET) -> s3_auth.Signer:
    query = parse_query(raw_query)
    lower = {k.lower(): v for k, v in headers.items()}
    claim = s3_auth.parse_request(method, lower, query, now)
    assert claim.access_key == ACCESS or claim.access_key == "AKID"
    return s3_auth.verify(claim, secret, method, raw_path, query, lower.items())


def test_aws_documented_get_object_with_range() -> None:
    headers = GET_OBJECT
    check("GET", "/test.txt", "", headers)
    with pytest.raises(S3Error) as caught:
        check("GET", "/test.txt", "", {**headers, "Range": "bytes=0-10"})
    assert caught.value.code == "SignatureDoesNotMatch" and caught.value.status == 403
    with pytest.raises(S3Error) as caught:
        check("GET", "/test.txt", "", headers, secret="another secret")
    assert caught.value.code == "SignatureDoesNotMatch"


def test_aws_documented_presigned_url_and_its_expiry() -> None:
    query = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"
             "%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
             "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    headers = {"Host": "examplebucket.s3.amazonaws.com"}
    check("GET", "/test.txt", query, headers, now=NOW + 86400)
    with pytest.raises(S3Error) as caught:
        check("GET", "/test.txt", query, headers, now=NOW + 86401)
    assert (caught.value.code, caught.value.status, caught.value.message) == ("AccessDenied", 403, "Request has expired")
    for expires in ("604801", "%C2%B2", "0"):
        with pytest.raises(S3Error) as caught:
            check("GET", "/test.txt", query.replace("Expires=86400", f"Expires={expires}"), headers)
        assert caught.value.code == "AuthorizationQueryParametersError"
    with pytest.raises(S3Error) as caught:  # the signature covers the method
        check("PUT", "/test.txt", query, headers)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_our_presign_is_what_we_verify() -> None:
    url = s3_auth.presign(SECRET, ACCESS, "GET", "h:8443", "/s3/b/k%20%C3%A9", amz_date=AWS_DATE, expires=60)
    path, _, query = url.partition("?")
    check("GET", path, query, {"host": "h:8443"}, now=NOW + 30)


def test_the_clock_may_differ_by_fifteen_minutes() -> None:
    headers = GET_OBJECT
    check("GET", "/test.txt", "", headers, now=NOW + 900)
    check("GET", "/test.txt", "", headers, now=NOW - 900)
    for now in (NOW + 901, NOW - 901):
        with pytest.raises(S3Error) as caught:
            check("GET", "/test.txt", "", headers, now=now)
        assert (caught.value.code, caught.value.status) == ("RequestTimeTooSkewed", 403)


@pytest.mark.parametrize("path, query", [
    ("/s3/bucket/plain.txt", ""),
    ("/s3/bucket/" + urllib.parse.quote("dir/ünïcode key+plus=eq&amp;%/x", safe="/~"), ""),
    ("/s3/bucket", "list-type=2&prefix=a%2Fb&delimiter=%2F&max-keys=3"),
    ("/s3/bucket", "uploads"),
    ("/s3/bucket/k", "partNumber=3&uploadId=abc~def"),
    ("/s3/bucket/a//b/../c", "versionId=null"),
])
def test_botocore_header_signatures_verify(path: str, query: str) -> None:
    url = "https://cloud.example:8443" + path + ("?" + query if query else "")
    request = AWSRequest("PUT", url, data=b"hello", headers={"Content-Type": "text/plain", "X-Amz-Meta-A": "  x  y "})
    S3SigV4Auth(Credentials("AKID", "secret"), "s3", "region-1").add_auth(request)
    prepared = request.prepare()
    raw_path, _, raw_query = prepared.url.split("8443", 1)[1].partition("?")
    headers = {k: v for k, v in prepared.headers.items()}
    headers["host"] = "cloud.example:8443"
    now = amz_time(headers["X-Amz-Date"])
    signer = check("PUT", raw_path, raw_query, headers, now=now, secret="secret")
    assert signer.scope.endswith("/region-1/s3/aws4_request")
    with pytest.raises(S3Error):
        check("PUT", raw_path + "x", raw_query, headers, now=now, secret="secret")


def test_botocore_presigned_urls_verify() -> None:
    request = AWSRequest("GET", "https://cloud.example:8443/s3/b/some%20key?versionId=v1")
    S3SigV4QueryAuth(Credentials("AKID", "secret"), "s3", "us-east-1", expires=120).add_auth(request)
    raw_path, _, raw_query = request.url.split("8443", 1)[1].partition("?")
    date = dict(parse_query(raw_query))["X-Amz-Date"]
    check("GET", raw_path, raw_query, {"host": "cloud.example:8443"}, now=amz_time(date) + 120, secret="secret")
    with pytest.raises(S3Error) as caught:
        check("GET", raw_path, raw_query, {"host": "cloud.example:8443"}, now=amz_time(date) + 121, secret="secret")
    assert caught.value.message == "Request has expired"


@pytest.mark.parametrize("authorization, code", [
    ("AWS AKID:c2lnbmF0dXJl", "InvalidRequest"),
    ("Bearer x", "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request", "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/ec2/aws4_request,SignedHeaders=host,Signature=" + "0" * 64,
     "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AKID/20130525/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + "0" * 64,
     "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,SignedHeaders=x-amz-date,Signature="
     + "0" * 64, "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=zz",
     "SignatureDoesNotMatch"),
])
def test_malformed_authorization_is_a_clear_error(authorization: str, code: str) -> None:
    headers = {"authorization": authorization, "x-amz-date": AWS_DATE, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    with pytest.raises(S3Error) as caught:
        s3_auth.parse_request("GET", headers, [], NOW)
    assert caught.value.code == code and 400 <= caught.value.status < 500


@pytest.mark.parametrize("date", ["20131399T000000Z", "20130524T256000Z", "2013-05-24T00:00:00Z"])
def test_impossible_dates_are_refused(date: str) -> None:
    header = {"authorization": f"AWS4-HMAC-SHA256 Credential=AKID/{date[:8]}/us-east-1/s3/aws4_request,"
              "SignedHeaders=host,Signature=" + "0" * 64, "x-amz-date": date, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    query = [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", f"AKID/{date[:8]}/us-east-1/s3/aws4_request"),
             ("X-Amz-Date", date), ("X-Amz-Expires", "60"), ("X-Amz-SignedHeaders", "host"),
             ("X-Amz-Signature", "0" * 64)]
    for headers, params in ((header, []), ({}, query)):
        with pytest.raises(S3Error) as caught:
            s3_auth.parse_request("GET", headers, params, NOW)
        assert 400 <= caught.value.status < 500


# --- aws-chunked ----------------------------------------------------------------------------------
def _aws_chunked_example() -> tuple[s3_auth.Signer, dict[str, str]]:
    """AWS's documented STREAMING-AWS4-HMAC-SHA256-PAYLOAD example: 65536 + 1024 bytes of "a"."""
    headers = {
        "host": "s3.amazonaws.com", "x-amz-date": AWS_DATE, "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": s3_auth.STREAMING_SIGNED, "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560", "content-length": "66824",
        "authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS}/20130524/us-east-1/s3/aws4_request,"
                         "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                         "x-amz-decoded-content-length;x-amz-storage-class,"
                         "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"}
    return check("PUT", "/examplebucket/chunkObject.txt", "", headers), headers


CHUNK_SIGNATURES = ("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9")


def _signed_body(signatures: tuple[str, ...] = CHUNK_SIGNATURES) -> bytes:
    return (b"10000;chunk-signature=" + signatures[0].encode() + b"\r\n" + b"a" * 65536 + b"\r\n"
            + b"400;chunk-signature=" + signatures[1].encode() + b"\r\n" + b"a" * 1024 + b"\r\n"
            + b"0;chunk-signature=" + signatures[2].encode() + b"\r\n\r\n")


def decode(decoder: s3_chunked.BodyCheck | s3_chunked.ChunkedDecoder, body: bytes, step: int) -> bytes:
    out = b""
    for at in range(0, len(body), step):
        out += b"".join(decoder.feed(body[at:at + step]))
    decoder.end()
    return out


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_aws_documented_signed_chunks_decode_whatever_the_reads(step: int) -> None:
    signer, headers = _aws_chunked_example()
    body = _signed_body()
    assert len(body) == 66824
    if step == 1:
        body_step = 997  # byte by byte is slow; a prime keeps the cuts everywhere
    else:
        body_step = step
    assert decode(s3_chunked.ChunkedDecoder(headers, s3_auth.STREAMING_SIGNED, signer), body, body_step) == b"a" * 66560


def test_a_changed_chunk_or_a_cut_body_is_refused() -> None:
    signer, headers = _aws_chunked_example()
    body = _signed_body()
    tampered = body.replace(b"a" * 10, b"b" * 10, 1)
    with pytest.raises(S3Error) as caught:
        decode(s3_chunked.ChunkedDecoder(headers, s3_auth.STREAMING_SIGNED, signer), tampered, 8192)
    assert caught.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as caught:
        decode(s3_chunked.ChunkedDecoder(headers, s3_auth.STREAMING_SIGNED, signer), body[:-40], 8192)
    assert caught.value.code == "IncompleteBody"
    reordered = _signed_body((CHUNK_SIGNATURES[1], CHUNK_SIGNATURES[0], CHUNK_SIGNATURES[2]))
    with pytest.raises(S3Error):
        decode(s3_chunked.ChunkedDecoder(headers, s3_auth.STREAMING_SIGNED, signer), reordered, 8192)


def _unsigned_trailer_body(data: bytes, algorithm: str, value: str, chunk: int = 5000) -> bytes:
    """As botocore's AwsChunkedWrapper writes it."""
    out = b""
    for at in range(0, len(data), chunk):
        piece = data[at:at + chunk]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n" + f"x-amz-checksum-{algorithm}:{value}\r\n".encode() + b"\r\n"


def _expected(algorithm: str, data: bytes) -> str:
    if algorithm == "crc32":
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    if algorithm in ("sha1", "sha256"):
        return base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    raise AssertionError(algorithm)


@pytest.mark.parametrize("algorithm", ["crc32", "sha1", "sha256"])
def test_unsigned_trailer_checksums_are_checked(algorithm: str) -> None:
    data = bytes(range(256)) * 80
    headers = {"x-amz-trailer": f"x-amz-checksum-{algorithm}", "x-amz-decoded-content-length": str(len(data))}
    good = _unsigned_trailer_body(data, algorithm, _expected(algorithm, data))
    decoder = s3_chunked.ChunkedDecoder(headers, s3_auth.STREAMING_UNSIGNED_TRAILER, None)
    assert decode(decoder, good, 333) == data
    bad = _unsigned_trailer_body(data, algorithm, _expected(algorithm, data + b"x"))
    with pytest.raises(S3Error) as caught:
        decode(s3_chunked.ChunkedDecoder(headers, s3_auth.STREAMING_UNSIGNED_TRAILER, None), bad, 333)
    assert (caught.value.code, caught.value.status) == ("BadDigest", 400)
    short = {**headers, "x-amz-decoded-content-length": str(len(data) + 1)}
    with pytest.raises(S3Error) as caught:
        decode(s3_chunked.ChunkedDecoder(short, s3_auth.STREAMING_UNSIGNED_TRAILER, None), good, 333)
    assert caught.value.code == "IncompleteBody"


def test_crc32c_and_crc64nvme_known_values() -> None:
    # The check values of both CRCs ("123456789"), as their specifications give them.
    crc32c = s3_chunked.Checksum("crc32c")
    crc32c.update(b"123456789")
    assert base64.b64decode(crc32c.value()).hex() == "e3069283"
    crc64 = s3_chunked.Checksum("crc64nvme")
    crc64.update(b"12345")
    crc64.update(b"6789")
    assert base64.b64decode(crc64.value()).hex() == "ae8b14860a799888"
    with pytest.raises(S3Error):
        s3_chunked.Checksum("md4")
    # The table-driven Python CRCs (used without awscrt) agree with the check values too.
    python32c = s3_chunked._Crc(s3_chunked._CRC32C, 4, None)
    python64 = s3_chunked._Crc(s3_chunked._CRC64NVME, 8, None)
    for crc in (python32c, python64):
        crc.update(b"1234")
        crc.update(b"56789")
    assert python32c.digest().hex() == "e3069283" and python64.digest().hex() == "ae8b14860a799888"
    assert python32c.slow and python64.slow


def test_botocore_writes_what_we_decode() -> None:
    from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum
    import io

    data = b"xyz" * 100_000
    wrapper = AwsChunkedWrapper(io.BytesIO(data), checksum_cls=Crc32Checksum,
                                checksum_name="x-amz-checksum-crc32")
    body = wrapper.read()
    headers = {"x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": str(len(data))}
    assert decode(s3_chunked.ChunkedDecoder(headers, s3_auth.STREAMING_UNSIGNED_TRAILER, None), body, 65536) == data


def test_signed_trailer() -> None:
    signer = s3_auth.Signer(s3_auth.signing_key("s", "20130524", "us-east-1", "s3"),
                            "20130524/us-east-1/s3/aws4_request", AWS_DATE, "1" * 64)
    data = b"hello world"
    first = signer.chunk_signature(signer.seed, hashlib.sha256(data).hexdigest())
    last = signer.chunk_signature(first, s3_auth.EMPTY_SHA256)
    trailer = f"x-amz-checksum-crc32:{_expected('crc32', data)}"
    trailer_signature = signer.trailer_signature(last, (trailer + "\n").encode())
    body = (b"b;chunk-signature=" + first.encode() + b"\r\n" + data + b"\r\n0;chunk-signature=" + last.encode()
            + b"\r\n" + trailer.encode() + b"\r\nx-amz-trailer-signature:" + trailer_signature.encode() + b"\r\n\r\n")
    headers = {"x-amz-trailer": "x-amz-checksum-crc32"}
    assert decode(s3_chunked.ChunkedDecoder(headers, s3_auth.STREAMING_SIGNED_TRAILER, signer), body, 3) == data
    forged = body.replace(trailer_signature.encode(), b"0" * 64)
    with pytest.raises(S3Error) as caught:
        decode(s3_chunked.ChunkedDecoder(headers, s3_auth.STREAMING_SIGNED_TRAILER, signer), forged, 3)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_plain_bodies_check_sha256_md5_and_checksum_headers() -> None:
    data = b"some bytes"
    sha = hashlib.sha256(data).hexdigest()
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    headers = {"content-md5": md5, "x-amz-checksum-sha1": _expected("sha1", data)}
    assert decode(s3_chunked.BodyCheck(headers, sha, len(data)), data, 3) == data
    for wrong, code in [((headers, "0" * 64, len(data)), "XAmzContentSHA256Mismatch"),
                        (({"content-md5": base64.b64encode(b"x" * 16).decode()}, sha, len(data)), "BadDigest"),
                        (({"x-amz-checksum-sha1": _expected("sha1", b"")}, sha, len(data)), "BadDigest"),
                        (({}, sha, len(data) + 1), "IncompleteBody")]:
        with pytest.raises(S3Error) as caught:
            decode(s3_chunked.BodyCheck(*wrong), data, 4)
        assert caught.value.code == code
    with pytest.raises(S3Error) as caught:
        s3_chunked.BodyCheck({"content-md5": "not base64!"}, "UNSIGNED-PAYLOAD", None)
    assert caught.value.code == "InvalidDigest"


# --- XML --------------------------------------------------------------------------------------------
def test_error_body_is_s3s() -> None:
    body = s3_xml.error_body(S3Error("NoSuchKey", "The specified key does not exist.", Key="a<b"), "/b/a<b", "req-1")
    assert body == (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified '
                    b'key does not exist.</Message><Key>a&lt;b</Key><Resource>/b/a&lt;b</Resource>'
                    b'<RequestId>req-1</RequestId></Error>')


def test_client_xml_parsing_refuses_entities_and_bad_orders() -> None:
    parts = s3_xml.parse_complete(b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                                  b'<Part><ETag>"abc"</ETag><PartNumber>1</PartNumber></Part>'
                                  b'<Part><ETag>def</ETag><PartNumber>3</PartNumber></Part></CompleteMultipartUpload>')
    assert parts == [(1, "abc"), (3, "def")]
    with pytest.raises(S3Error) as caught:
        s3_xml.parse_complete(b"<CompleteMultipartUpload><Part><ETag>a</ETag><PartNumber>2</PartNumber></Part>"
                              b"<Part><ETag>b</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>")
    assert caught.value.code == "InvalidPartOrder"
    bomb = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><Delete><Object><Key>&a;</Key></Object></Delete>'
    for body in (bomb, b"<Delete><Object>", b"<Other/>", b"<Delete/>"):
        with pytest.raises(S3Error) as caught:
            s3_xml.parse_delete(body)
        assert caught.value.code == "MalformedXML"
    assert s3_xml.parse_delete(b"<Delete><Quiet>true</Quiet><Object><Key>k</Key><VersionId>v</VersionId></Object>"
                               b"</Delete>") == ([("k", "v")], True)


# --- whatever a client sends, only S3's errors -----------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PAYLOADS = [s3_auth.STREAMING_UNSIGNED_TRAILER, s3_auth.STREAMING_SIGNED, s3_auth.STREAMING_SIGNED_TRAILER]
SIGNER = s3_auth.Signer(b"k" * 32, "20130524/us-east-1/s3/aws4_request", AWS_DATE, "0" * 64)


@pytest.mark.parametrize("size_line", [b"\x1c0\r\n", b"\x1f5\r\n", b"0\x1c\r\n", b"+5\r\n", b"0x5\r\n"])
def test_a_chunk_size_with_anything_but_hex_digits_is_an_s3_error(size_line: bytes) -> None:
    """Found by the test below: ``str.strip`` drops \\x1c-\\x1f, which ``int`` does not accept."""
    decoder = s3_chunked.ChunkedDecoder({"x-amz-trailer": "x-amz-checksum-crc32"}, s3_auth.STREAMING_UNSIGNED_TRAILER,
                                        SIGNER)
    with pytest.raises(S3Error) as caught:
        decoder.feed(size_line)
    assert caught.value.code == "IncompleteBody"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PAYLOADS), st.lists(st.binary(max_size=200) | st.sampled_from(
    [b"0\r\n", b"\r\n", b"5;chunk-signature=" + b"a" * 64 + b"\r\n", b"x-amz-checksum-crc32:AAAAAA==\r\n",
     b"ffffffffffffffff\r\n", b"3\r\nabc\r\n"]), max_size=12))
def test_the_chunked_decoder_raises_only_s3_errors(payload: str, pieces: list[bytes]) -> None:
    headers = {"x-amz-trailer": "x-amz-checksum-crc32"}
    try:
        decoder = s3_chunked.ChunkedDecoder(headers, payload, SIGNER)
        for piece in pieces:
            decoder.feed(piece)
        decoder.end()
    except S3Error as exc:
        assert 400 <= exc.status < 500


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["authorization", "x-amz-date", "x-amz-content-sha256", "date", "host"]),
                       st.text(max_size=120) | st.sampled_from([GET_OBJECT["Authorization"], AWS_DATE,
                                                               "UNSIGNED-PAYLOAD", "20131399T000000Z"])),
       st.lists(st.tuples(st.sampled_from(["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                                           "X-Amz-SignedHeaders", "X-Amz-Signature", "Signature",
                                           "AWSAccessKeyId", "x"]), st.text(max_size=60)), max_size=8))
def test_signature_parsing_raises_only_s3_errors(headers: dict[str, str], query: list[tuple[str, str]]) -> None:
    try:
        claim = s3_auth.parse_request("GET", headers, query, NOW)
        s3_auth.verify(claim, SECRET, "GET", "/b/k", query, headers.items())
    except S3Error as exc:
        assert 400 <= exc.status < 500


def test_slow_checksums_are_checked_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without awscrt, crc32c is Python's: the body's checks then run off the event loop."""
    import trio

    from cloudbox.object.s3_api import S3Request

    monkeypatch.setattr(s3_chunked, "_crt", None)
    data = b"abc" * 50_000
    crc = s3_chunked._Crc(s3_chunked._CRC32C, 4, None)
    crc.update(data)
    good = base64.b64encode(crc.digest()).decode()
    in_threads: list[int] = []
    real = trio.to_thread.run_sync

    async def counted(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        in_threads.append(len(args[0]))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(trio.to_thread, "run_sync", counted)

    async def upload(checksum: str) -> bytes:
        messages = [{"type": "http.request", "body": data[:70_000], "more_body": True},
                    {"type": "http.request", "body": data[70_000:], "more_body": False}]

        async def receive() -> dict[str, object]:
            return messages.pop(0)

        request = S3Request("PUT", "/s3/b/k", "b", "k", [], {"x-amz-checksum-crc32c": checksum,
                                                             "content-length": str(len(data))},
                            receive, "https://h/s3", "req-1")
        return b"".join([piece async for piece in request.body()])

    assert trio.run(upload, good) == data
    assert in_threads == [70_000, len(data) - 70_000]
    with pytest.raises(S3Error) as caught:
        trio.run(upload, "AAAAAA==")
    assert caught.value.code == "BadDigest"

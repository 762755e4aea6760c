"""S3 with the real clients: boto3, awscli and curl (a presigned URL), on credentials made by
`openstack ec2 credentials create`, against one running node.  Bad signatures, expired URLs,
another project's buckets and a reader's writes get S3's XML error and change nothing."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterator

import boto3
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from cloudbox.object import s3_auth
from tests.cloud import Cloud
from tests.identity_helpers import Ident, Team, unique

MiB = 1 << 20


def ec2_credentials(cloud: Cloud, user: str, password: str, project: str) -> dict[str, str]:
    """`openstack ec2 credentials create`, as a user would make the keys for ~/.aws/credentials."""
    env = cloud.openstack_env(OS_USERNAME=user, OS_PASSWORD=password, OS_PROJECT_NAME=project)
    proc = subprocess.run([str(Path(sys.executable).parent / "openstack"), "ec2", "credentials", "create",
                           "-f", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    return {"access": made["access"], "secret": made["secret"]}


def s3_client(cloud: Cloud, keys: dict[str, str], **config: Any) -> Any:
    return boto3.client("s3", endpoint_url=cloud.url + "/s3", aws_access_key_id=keys["access"],
                        aws_secret_access_key=keys["secret"], region_name="RegionOne", verify=cloud.ca,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config))


class Tenant:
    """A project with a member and a reader, each with EC2 keys and a boto3 client."""

    def __init__(self, cloud: Cloud, team: Team) -> None:
        self.team = team
        name = team.project["name"]
        self.keys = ec2_credentials(cloud, team.member["name"], team.password, name)
        self.reader_keys = ec2_credentials(cloud, team.reader["name"], team.password, name)
        self.s3 = s3_client(cloud, self.keys)
        self.reader = s3_client(cloud, self.reader_keys)


@pytest.fixture(scope="module")
def tenant(cloud: Cloud, team: Team) -> Tenant:
    return Tenant(cloud, team)


@pytest.fixture(scope="module")
def stranger(cloud: Cloud, ident: Ident) -> Iterator[Tenant]:
    """Another project, with its own keys."""
    team = Team(ident)
    yield Tenant(cloud, team)
    team.reader_client.close()
    team.member_client.close()


def error_code(call: Any, *args: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def keys_of(s3: Any, bucket: str, **kwargs: Any) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kwargs)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_buckets_and_objects_with_boto3(tenant: Tenant) -> None:
    s3 = tenant.s3
    bucket = unique("bkt")
    s3.create_bucket(Bucket=bucket)
    assert error_code(s3.create_bucket, Bucket=bucket) == ("BucketAlreadyOwnedByYou", 409)
    assert error_code(s3.create_bucket, Bucket="Not_A_Bucket") == ("InvalidBucketName", 400)
    s3.head_bucket(Bucket=bucket)
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    data = os.urandom(300_000)
    sent: list[str] = []
    s3.meta.events.register("before-send.s3.PutObject",
                            lambda request, **_: sent.append(request.headers["x-amz-content-sha256"].decode()))
    put = s3.put_object(Bucket=bucket, Key="dir/a b+é.bin", Body=data, ContentType="application/x-test",
                        Metadata={"colour": "blue"})
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    # boto3 sends PutObject over HTTPS as aws-chunked with a CRC32 trailer; SHA-256 when asked.
    assert sent == [s3_auth.STREAMING_UNSIGNED_TRAILER]
    for algorithm in ("SHA256", "SHA1", "CRC32C", "CRC64NVME"):  # the last two: botocore with awscrt
        s3.put_object(Bucket=bucket, Key="sum", Body=b"x" * 100_000, ChecksumAlgorithm=algorithm)
        assert s3.get_object(Bucket=bucket, Key="sum")["Body"].read() == b"x" * 100_000
    s3.delete_object(Bucket=bucket, Key="sum")
    got = s3.get_object(Bucket=bucket, Key="dir/a b+é.bin")
    assert got["Body"].read() == data
    assert got["ContentType"] == "application/x-test" and got["Metadata"] == {"colour": "blue"}
    ranged = s3.get_object(Bucket=bucket, Key="dir/a b+é.bin", Range="bytes=100-199")
    assert ranged["Body"].read() == data[100:200] and ranged["ContentRange"] == f"bytes 100-199/{len(data)}"
    assert error_code(s3.get_object, Bucket=bucket, Key="dir/a b+é.bin", Range=f"bytes={len(data)}-") == (
        "InvalidRange", 416)
    head = s3.head_object(Bucket=bucket, Key="dir/a b+é.bin")
    assert head["ContentLength"] == len(data) and head["ETag"] == put["ETag"]
    assert error_code(s3.get_object, Bucket=bucket, Key="dir/a b+é.bin", IfNoneMatch=put["ETag"]) == ("304", 304)
    for key in ("dir/b", "dir/sub/c", "top", "zz/1", "zz/2"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert keys_of(s3, bucket, PaginationConfig={"PageSize": 2}) == [
        "dir/a b+é.bin", "dir/b", "dir/sub/c", "top", "zz/1", "zz/2"]
    listed = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [c["Prefix"] for c in listed["CommonPrefixes"]] == ["dir/", "zz/"]
    assert [c["Key"] for c in listed["Contents"]] == ["top"]
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/",
                                                             PaginationConfig={"PageSize": 1}))
    assert [p.get("CommonPrefixes", [{}])[0].get("Prefix") or p["Contents"][0]["Key"] for p in pages] == [
        "dir/", "top", "zz/"]
    v1 = s3.list_objects(Bucket=bucket, Prefix="dir/", Marker="dir/b")
    assert [c["Key"] for c in v1["Contents"]] == ["dir/sub/c"]
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "dir/a b+é.bin"})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    assert s3.get_object(Bucket=bucket, Key="copy")["Metadata"] == {"colour": "blue"}
    s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/copy", MetadataDirective="REPLACE",
                   Metadata={"colour": "red"})
    assert s3.head_object(Bucket=bucket, Key="copy")["Metadata"] == {"colour": "red"}
    assert error_code(s3.delete_bucket, Bucket=bucket) == ("BucketNotEmpty", 409)
    # The only ACL is the project's own; one that would share an object is refused, not ignored.
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
    assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"] == tenant.team.project["id"]
    assert s3.get_object_acl(Bucket=bucket, Key="top")["Grants"][0]["Permission"] == "FULL_CONTROL"
    s3.put_object(Bucket=bucket, Key="top", Body=b"top", ACL="private")
    assert error_code(s3.put_object, Bucket=bucket, Key="public", Body=b"x", ACL="public-read") == (
        "NotImplemented", 501)
    assert error_code(s3.put_bucket_acl, Bucket=bucket, ACL="public-read") == ("NotImplemented", 501)
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    assert "public" not in keys_of(s3, bucket)
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys_of(s3, bucket)]})
    assert len(deleted["Deleted"]) == 7 and not deleted.get("Errors")
    s3.delete_object(Bucket=bucket, Key="never-there")
    assert keys_of(s3, bucket) == []
    s3.delete_bucket(Bucket=bucket)
    assert error_code(s3.head_bucket, Bucket=bucket) == ("404", 404)
    assert error_code(s3.list_objects_v2, Bucket=bucket) == ("NoSuchBucket", 404)


def test_multipart_upload_with_boto3(tenant: Tenant) -> None:
    s3 = tenant.s3
    bucket = unique("mpu")
    s3.create_bucket(Bucket=bucket)
    parts = [os.urandom(5 * MiB), os.urandom(1234)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big", ContentType="video/x-test",
                                        Metadata={"kind": "multi"})["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=n + 1, Body=body)["ETag"]
             for n, body in enumerate(parts)]
    listed = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(1, etags[0], 5 * MiB), (2, etags[1], 1234)]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    assert error_code(s3.complete_multipart_upload, Bucket=bucket, Key="big", UploadId=upload,
                      MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etags[1]}]}) == ("InvalidPart", 400)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": etag} for n, etag in enumerate(etags)]})
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-2"
    assert done["ETag"] == f'"{expected}"'
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["Body"].read() == b"".join(parts) and got["ETag"] == f'"{expected}"'
    assert got["ContentType"] == "video/x-test" and got["Metadata"] == {"kind": "multi"}
    assert error_code(s3.list_parts, Bucket=bucket, Key="big", UploadId=upload) == ("NoSuchUpload", 404)
    small = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    tags = [s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=n, Body=b"x")["ETag"]
            for n in (1, 2)]
    assert error_code(s3.complete_multipart_upload, Bucket=bucket, Key="small", UploadId=small, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": t} for n, t in zip((1, 2), tags)]}) == ("EntityTooSmall", 400)
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=small)
    assert error_code(s3.upload_part, Bucket=bucket, Key="small", UploadId=small, PartNumber=3, Body=b"y") == (
        "NoSuchUpload", 404)
    assert keys_of(s3, bucket) == ["big"]
    copy = s3.create_multipart_upload(Bucket=bucket, Key="copied")["UploadId"]
    part = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=copy, PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": "big"}, CopySourceRange="bytes=10-5242889")
    s3.complete_multipart_upload(Bucket=bucket, Key="copied", UploadId=copy, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == b"".join(parts)[10:5242890]


def test_awscli_cp_sync_and_multipart(cloud: Cloud, tenant: Tenant, tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "HOME": str(tmp_path),
           "AWS_ACCESS_KEY_ID": tenant.keys["access"], "AWS_SECRET_ACCESS_KEY": tenant.keys["secret"],
           "AWS_DEFAULT_REGION": "RegionOne", "AWS_CA_BUNDLE": cloud.ca, "AWS_MAX_ATTEMPTS": "1"}
    aws = str(Path(sys.executable).parent / "aws")

    def run(*args: str) -> str:
        proc = subprocess.run([aws, "--endpoint-url", cloud.url + "/s3", *args], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    bucket = unique("cli")
    run("s3", "mb", f"s3://{bucket}")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * MiB))  # past awscli's 8 MiB threshold: a multipart upload
    run("s3", "cp", str(big), f"s3://{bucket}/big.bin")
    back = tmp_path / "back.bin"
    run("s3", "cp", f"s3://{bucket}/big.bin", str(back))
    assert back.read_bytes() == big.read_bytes()
    url = run("s3", "presign", f"s3://{bucket}/big.bin", "--expires-in", "60").strip()
    fetched = subprocess.run(["curl", "-sS", "--fail", "--cacert", cloud.ca, url], capture_output=True, timeout=120)
    assert fetched.returncode == 0 and hashlib.md5(fetched.stdout).digest() == hashlib.md5(big.read_bytes()).digest()
    tree = tmp_path / "tree"
    for name in ("a.txt", "sub/b.txt", "sub/deeper/c.txt"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(name * 100)
    run("s3", "sync", str(tree), f"s3://{bucket}/tree")
    (tree / "a.txt").write_text("changed")
    assert "upload: " in run("s3", "sync", str(tree), f"s3://{bucket}/tree")
    mirror = tmp_path / "mirror"
    run("s3", "sync", f"s3://{bucket}/tree", str(mirror))
    assert sorted(str(p.relative_to(mirror)) for p in mirror.rglob("*") if p.is_file()) == [
        "a.txt", "sub/b.txt", "sub/deeper/c.txt"]
    assert (mirror / "a.txt").read_text() == "changed"
    upload = json.loads(run("s3api", "create-multipart-upload", "--bucket", bucket, "--key", "parts"))["UploadId"]
    part = tmp_path / "part"
    part.write_bytes(b"p" * 1000)
    etag = json.loads(run("s3api", "upload-part", "--bucket", bucket, "--key", "parts", "--upload-id", upload,
                          "--part-number", "1", "--body", str(part)))["ETag"]
    listed = json.loads(run("s3api", "list-parts", "--bucket", bucket, "--key", "parts", "--upload-id", upload))
    assert [p["ETag"] for p in listed["Parts"]] == [etag]
    (tmp_path / "parts.json").write_text(json.dumps({"Parts": [{"PartNumber": 1, "ETag": etag}]}))
    run("s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "parts", "--upload-id", upload,
        "--multipart-upload", f"file://{tmp_path / 'parts.json'}")
    assert "parts" in run("s3", "ls", f"s3://{bucket}")
    run("s3", "rb", "--force", f"s3://{bucket}")
    assert bucket not in run("s3", "ls")


def test_presigned_urls_with_curl(cloud: Cloud, tenant: Tenant, tmp_path: Path) -> None:
    s3 = tenant.s3
    bucket = unique("pre")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="shared file.txt", Body=b"for curl")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared file.txt"}, ExpiresIn=300)
    out = subprocess.run(["curl", "-sS", "--cacert", cloud.ca, "-w", "\n%{http_code}", url], capture_output=True,
                         timeout=60)
    assert out.stdout == b"for curl\n200", out
    # A URL signed two hours ago for one hour: expired.
    signed = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 7200))
    host = cloud.url.split("://", 1)[1]
    old = s3_auth.presign(tenant.keys["secret"], tenant.keys["access"], "GET", host,
                          f"/s3/{bucket}/shared%20file.txt", amz_date=signed, expires=3600)
    out = subprocess.run(["curl", "-sS", "--cacert", cloud.ca, "-w", "\n%{http_code}", cloud.url + old],
                         capture_output=True, timeout=60)
    body, _, status = out.stdout.rpartition(b"\n")
    assert status == b"403"
    error = ET.fromstring(body)
    assert error.findtext("Code") == "AccessDenied" and error.findtext("Message") == "Request has expired"
    # A presigned PUT works too, and a tampered one changes nothing.
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "uploaded"}, ExpiresIn=300)
    (tmp_path / "f").write_bytes(b"uploaded by curl")
    out = subprocess.run(["curl", "-sS", "--cacert", cloud.ca, "-T", str(tmp_path / "f"), "-o", "/dev/null", "-w",
                          "%{http_code}", put_url.replace("uploaded", "elsewhere")], capture_output=True, timeout=60)
    assert out.stdout == b"403"
    out = subprocess.run(["curl", "-sS", "--cacert", cloud.ca, "-T", str(tmp_path / "f"), "-o", "/dev/null", "-w",
                          "%{http_code}", put_url], capture_output=True, timeout=60)
    assert out.stdout == b"200"
    assert keys_of(s3, bucket) == ["shared file.txt", "uploaded"]


def test_bad_signatures_other_projects_and_readers_change_nothing(cloud: Cloud, tenant: Tenant,
                                                                  stranger: Tenant) -> None:
    s3 = tenant.s3
    bucket = unique("mine")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    wrong = s3_client(cloud, {"access": tenant.keys["access"], "secret": "not-the-secret"})
    assert error_code(wrong.put_object, Bucket=bucket, Key="k2", Body=b"x") == ("SignatureDoesNotMatch", 403)
    assert error_code(wrong.list_buckets) == ("SignatureDoesNotMatch", 403)
    unknown = s3_client(cloud, {"access": "no-such-key", "secret": "x"})
    assert error_code(unknown.list_buckets) == ("InvalidAccessKeyId", 403)
    # Another project's credentials cannot name this project's buckets.
    assert bucket not in [b["Name"] for b in stranger.s3.list_buckets()["Buckets"]]
    assert error_code(stranger.s3.get_object, Bucket=bucket, Key="k") == ("NoSuchBucket", 404)
    assert error_code(stranger.s3.put_object, Bucket=bucket, Key="k", Body=b"theirs") == ("NoSuchBucket", 404)
    assert error_code(stranger.s3.delete_bucket, Bucket=bucket) == ("NoSuchBucket", 404)
    # A reader reads, and may not write.
    assert tenant.reader.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert error_code(tenant.reader.put_object, Bucket=bucket, Key="k", Body=b"w") == ("AccessDenied", 403)
    assert error_code(tenant.reader.delete_object, Bucket=bucket, Key="k") == ("AccessDenied", 403)
    assert keys_of(s3, bucket) == ["k"] and s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def _signed(cloud: Cloud, keys: dict[str, str], method: str, path: str, body: bytes = b"",
            headers: dict[str, str] | None = None, host: str | None = None) -> tuple[str, dict[str, str]]:
    netloc = host or cloud.url.split("://", 1)[1]
    request = AWSRequest(method, f"https://{netloc}{path}", data=body, headers=headers or {})
    S3SigV4Auth(Credentials(keys["access"], keys["secret"]), "s3", "RegionOne").add_auth(request)
    return path, {**dict(request.headers.items()), "Host": netloc}


def _xml_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/xml"
    assert ET.fromstring(r.content).findtext("Code") == code


@pytest.mark.parametrize("headers, status, code", [
    ({}, 403, "AccessDenied"),
    ({"Authorization": "AWS AKID:c2ln"}, 400, "InvalidRequest"),
    ({"Authorization": "AWS4-HMAC-SHA256 garbage"}, 400, "AuthorizationHeaderMalformed"),
    ({"Authorization": "AWS4-HMAC-SHA256 Credential=a/20200101/r/s3/aws4_request,SignedHeaders=host,Signature="
      + "0" * 64, "x-amz-date": "20200101T000000Z", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
     403, "RequestTimeTooSkewed"),
])
def test_unsigned_or_malformed_requests_get_xml_errors(cloud: Cloud, headers: dict[str, str], status: int,
                                                       code: str) -> None:
    with cloud.client() as client:
        _xml_error(client.get("/s3/", headers=headers), status, code)
        _xml_error(client.put("/s3/some-bucket/key", headers=headers, content=b"x" * 1000), status, code)
        assert client.get("/identity/v3").status_code == 200  # the connection and the node still serve


def test_bodies_that_fail_their_checks_are_not_stored(cloud: Cloud, tenant: Tenant) -> None:
    bucket = unique("chk")
    tenant.s3.create_bucket(Bucket=bucket)
    path, headers = _signed(cloud, tenant.keys, "PUT", f"/s3/{bucket}/k", b"signed body")
    with cloud.client() as client:
        _xml_error(client.put(path, headers=headers, content=b"other body!"), 400, "XAmzContentSHA256Mismatch")
        path, headers = _signed(cloud, tenant.keys, "PUT", f"/s3/{bucket}/k", b"abc",
                                {"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})
        _xml_error(client.put(path, headers=headers, content=b"abc"), 400, "BadDigest")
        chunked = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"  # abc's CRC32 is not 0
        request = AWSRequest("PUT", f"{cloud.url}/s3/{bucket}/k", data=chunked, headers={
            "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "3",
            "x-amz-trailer": "x-amz-checksum-crc32"})
        auth = S3SigV4Auth(Credentials(tenant.keys["access"], tenant.keys["secret"]), "s3", "RegionOne")
        auth.payload = lambda request: s3_auth.STREAMING_UNSIGNED_TRAILER  # type: ignore[method-assign]
        auth.add_auth(request)
        _xml_error(client.put(path, headers=dict(request.headers.items()), content=chunked), 400, "BadDigest")
        _xml_error(client.get(f"/s3/{bucket}/k", headers=_signed(cloud, tenant.keys, "GET", f"/s3/{bucket}/k")[1]),
                   404, "NoSuchKey")
    assert keys_of(tenant.s3, bucket) == []


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_virtual_hosted_buckets(new_cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    new_cloud.init("--set", "s3_domain=s3.cloud.test")
    new_cloud.start()
    ident = Ident(new_cloud)
    team = Team(ident)
    keys = ec2_credentials(new_cloud, team.member["name"], team.password, team.project["name"])
    s3_client(new_cloud, keys).create_bucket(Bucket="vhost")
    host = f"vhost.s3.cloud.test:{new_cloud.port}"
    with new_cloud.client() as client:
        path, headers = _signed(new_cloud, keys, "PUT", "/dir/key.txt", b"virtual", host=host)
        assert client.put(path, headers=headers, content=b"virtual").status_code == 200
        path, headers = _signed(new_cloud, keys, "GET", "/?list-type=2", host=host)
        listing = ET.fromstring(client.get(path, headers=headers).content)
        ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
        assert [k.text for k in listing.findall("s3:Contents/s3:Key", ns)] == ["dir/key.txt"]
        # The domain itself: ListBuckets at its root, and path-style below it.
        root = f"s3.cloud.test:{new_cloud.port}"
        path, headers = _signed(new_cloud, keys, "GET", "/", host=root)
        buckets = ET.fromstring(client.get(path, headers=headers).content)
        assert [b.text for b in buckets.findall("s3:Buckets/s3:Bucket/s3:Name", ns)] == ["vhost"]
        path, headers = _signed(new_cloud, keys, "GET", "/vhost/dir/key.txt", host=root)
        assert client.get(path, headers=headers).content == b"virtual"
    assert s3_client(new_cloud, keys).get_object(Bucket="vhost", Key="dir/key.txt")["Body"].read() == b"virtual"
    # boto3 itself, virtual-hosted: <bucket>.s3.cloud.test resolved to this node (the node's certificate
    # names its address, not the domain, so this client does not check it).
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *args, **kwargs: real(
        "127.0.0.1" if str(host).endswith("cloud.test") else host, *args, **kwargs))
    virtual = boto3.client("s3", endpoint_url=f"https://s3.cloud.test:{new_cloud.port}", verify=False,
                           aws_access_key_id=keys["access"], aws_secret_access_key=keys["secret"],
                           region_name="RegionOne", config=Config(s3={"addressing_style": "virtual"}))
    sent: list[str] = []
    virtual.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    virtual.put_object(Bucket="vhost", Key="by boto3", Body=b"hosted")
    assert sent == [f"https://vhost.s3.cloud.test:{new_cloud.port}/by%20boto3"]
    assert virtual.get_object(Bucket="vhost", Key="by boto3")["Body"].read() == b"hosted"
    assert keys_of(virtual, "vhost") == ["by boto3", "dir/key.txt"]
    assert "vhost" in [b["Name"] for b in virtual.list_buckets()["Buckets"]]
    ident.admin.close()
    ident.anon.close()


ODD_REQUESTS = [
    # (method, path and query, headers, body, status, code)
    ("PUT", "/{b}/k?partNumber=1&uploadId=..%2F..%2Fetc", {}, b"x", 404, "NoSuchUpload"),
    ("PUT", "/{b}/k?partNumber=abc&uploadId=" + "0" * 32, {}, b"x", 400, "InvalidArgument"),
    ("GET", "/{b}/k?uploadId=" + "f" * 32, {}, b"", 404, "NoSuchUpload"),
    ("POST", "/{b}?delete", {"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="},
     b'<!DOCTYPE d [<!ENTITY a "a">]><Delete><Object><Key>&a;</Key></Object></Delete>', 400, "BadDigest"),
    ("POST", "/{b}?delete", {}, b"<Delete><Object><Key>k</Key></Object></Delete>", 400, "InvalidRequest"),
    ("GET", "/{b}?list-type=2&continuation-token=%2A%2A%2A", {}, b"", 400, "InvalidArgument"),
    ("GET", "/{b}?max-keys=-1", {}, b"", 400, "InvalidArgument"),
    ("GET", "/{b}?max-keys=%C2%B2", {}, b"", 400, "InvalidArgument"),  # "²" is a digit to str.isdigit
    ("PUT", "/{b}/k?partNumber=%C2%B2&uploadId=" + "0" * 32, {}, b"x", 400, "InvalidArgument"),
    ("GET", "/{b}?versions&key-marker=k&version-id-marker=abc", {}, b"", 400, "InvalidArgument"),
    ("GET", "/{b}?encoding-type=base64", {}, b"", 400, "InvalidArgument"),
    ("GET", "/{b}?list-type=9", {}, b"", 400, "InvalidArgument"),
    ("GET", "/{b}?policy", {}, b"", 501, "NotImplemented"),
    ("PUT", "/{b}?versioning", {}, b"<VersioningConfiguration><Status>Maybe</Status></VersioningConfiguration>",
     400, "MalformedXML"),
    ("PUT", "/{b}/copy", {"x-amz-copy-source": "nobucket"}, b"", 400, "InvalidArgument"),
    ("PUT", "/{b}/copy", {"x-amz-copy-source": "/{b}/missing"}, b"", 404, "NoSuchKey"),
    ("PUT", "/{b}/copy", {"x-amz-copy-source": "/{b}/k?versionId=v9"}, b"", 404, "NoSuchVersion"),
    ("PUT", "/{b}/" + "k" * 1100, {}, b"x", 400, "KeyTooLongError"),
    ("PUT", "/{b}/k", {"Content-MD5": "not base64"}, b"x", 400, "InvalidDigest"),
    ("PATCH", "/{b}/k", {}, b"", 405, "MethodNotAllowed"),
    ("GET", "/{b}/k?versionId=v1", {}, b"", 404, "NoSuchVersion"),
    ("DELETE", "/{b}?uploads", {}, b"", 405, "MethodNotAllowed"),
    ("PUT", "/UPPER", {}, b"", 400, "InvalidBucketName"),
    ("PUT", "/" + "b" * 300, {}, b"", 400, "InvalidBucketName"),
    ("GET", "/" + "b" * 300 + "/k", {}, b"", 404, "NoSuchBucket"),
]


@pytest.mark.parametrize("method, target, headers, body, status, code", ODD_REQUESTS)
def test_odd_signed_requests_get_xml_errors_and_change_nothing(cloud: Cloud, tenant: Tenant, method: str,
                                                               target: str, headers: dict[str, str], body: bytes,
                                                               status: int, code: str) -> None:
    bucket = "odd-" + tenant.team.project["id"][:8]
    try:
        tenant.s3.create_bucket(Bucket=bucket)
        tenant.s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    except ClientError:
        pass  # made by an earlier case
    path = "/s3" + target.replace("{b}", bucket)
    headers = {k: v.replace("{b}", bucket) for k, v in headers.items()}
    signed_path, signed = _signed(cloud, tenant.keys, method, path, body, headers)
    with cloud.client() as client:
        _xml_error(client.request(method, signed_path, headers=signed, content=body), status, code)
    assert keys_of(tenant.s3, bucket) == ["k"]
    assert tenant.s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"


def _signed_stream(cloud: Cloud, keys: dict[str, str], path: str, chunks: list[bytes]) -> tuple[dict[str, str], bytes]:
    """A PUT whose body is STREAMING-AWS4-HMAC-SHA256-PAYLOAD (as the AWS SDKs for Java and Go send
    it): the seed signed by botocore, each chunk's signature chained on it."""
    size = sum(len(c) for c in chunks)
    framed = sum(len(b"%x;chunk-signature=" % len(c)) + 64 + 4 + len(c) for c in [*chunks, b""])
    request = AWSRequest("PUT", cloud.url + path, headers={
        "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(size), "Content-Length": str(framed)})
    auth = S3SigV4Auth(Credentials(keys["access"], keys["secret"]), "s3", "RegionOne")
    auth.payload = lambda request: s3_auth.STREAMING_SIGNED  # type: ignore[method-assign]
    auth.add_auth(request)
    headers = dict(request.headers.items())
    seed = headers["Authorization"].rsplit("Signature=", 1)[1]
    date = headers["X-Amz-Date"]
    signer = s3_auth.Signer(s3_auth.signing_key(keys["secret"], date[:8], "RegionOne", "s3"),
                            f"{date[:8]}/RegionOne/s3/aws4_request", date, seed)
    body, previous = b"", seed
    for chunk in [*chunks, b""]:
        previous = signer.chunk_signature(previous, hashlib.sha256(chunk).hexdigest())
        body += b"%x;chunk-signature=%s\r\n%s\r\n" % (len(chunk), previous.encode(), chunk)
    assert len(body) == framed
    return headers, body


def test_signed_aws_chunked_bodies(cloud: Cloud, tenant: Tenant) -> None:
    bucket = unique("sig")
    tenant.s3.create_bucket(Bucket=bucket)
    chunks = [os.urandom(64 * 1024), os.urandom(64 * 1024), b"tail"]
    headers, body = _signed_stream(cloud, tenant.keys, f"/s3/{bucket}/signed", chunks)
    with cloud.client() as client:
        r = client.put(f"/s3/{bucket}/signed", headers=headers, content=body)
        assert r.status_code == 200, r.text
        assert r.headers["etag"] == f'"{hashlib.md5(b"".join(chunks)).hexdigest()}"'
        headers, body = _signed_stream(cloud, tenant.keys, f"/s3/{bucket}/forged", chunks)
        forged = body.replace(chunks[1][:100], bytes(100), 1)
        _xml_error(client.put(f"/s3/{bucket}/forged", headers=headers, content=forged), 403, "SignatureDoesNotMatch")
    assert tenant.s3.get_object(Bucket=bucket, Key="signed")["Body"].read() == b"".join(chunks)
    assert keys_of(tenant.s3, bucket) == ["signed"]


def test_bucket_versioning(tenant: Tenant) -> None:
    s3 = tenant.s3
    bucket = unique("ver")
    s3.create_bucket(Bucket=bucket)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"two")["VersionId"]
    assert v1 != v2
    got = s3.get_object(Bucket=bucket, Key="doc")
    assert got["Body"].read() == b"two" and got["VersionId"] == v2
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId=v1)["Body"].read() == b"one"
    assert s3.head_object(Bucket=bucket, Key="doc", VersionId=v1)["ContentLength"] == 3
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions] == [("doc", v2, True), ("doc", v1, False)]
    assert error_code(s3.get_object, Bucket=bucket, Key="doc", VersionId="1234567890.12345") == ("NoSuchVersion", 404)
    assert error_code(s3.get_object, Bucket=bucket, Key="doc", VersionId="../x") == ("NoSuchVersion", 404)
    # Deleting the current version by its id makes the previous one current again.
    s3.delete_object(Bucket=bucket, Key="doc", VersionId=v2)
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"one"
    # A delete without an id keeps the object as a version under a delete marker.
    gone = s3.delete_object(Bucket=bucket, Key="doc")
    assert gone["DeleteMarker"] is True
    marker = gone["VersionId"]
    assert error_code(s3.get_object, Bucket=bucket, Key="doc") == ("NoSuchKey", 404)
    assert keys_of(s3, bucket) == []
    listed = s3.list_object_versions(Bucket=bucket)
    assert [(m["Key"], m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]] == [("doc", marker, True)]
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in listed["Versions"]] == [("doc", v1, False)]
    assert error_code(s3.get_object, Bucket=bucket, Key="doc", VersionId=marker) == ("MethodNotAllowed", 405)
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId=v1)["Body"].read() == b"one"
    restored = s3.copy_object(Bucket=bucket, Key="restored", CopySource={"Bucket": bucket, "Key": "doc",
                                                                         "VersionId": v1})["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="restored")["Body"].read() == b"one"
    # Deleting the marker brings the newest kept version back (under a new id here).
    assert s3.delete_object(Bucket=bucket, Key="doc", VersionId=marker)["DeleteMarker"] is True
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"one"
    listed = s3.list_object_versions(Bucket=bucket, Prefix="doc")
    assert "DeleteMarkers" not in listed and [v["IsLatest"] for v in listed["Versions"]] == [True]
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "restored", "VersionId": restored},
                                                                   {"Key": "doc"}]})
    assert {(d["Key"], d.get("VersionId"), d.get("DeleteMarker", False)) for d in deleted["Deleted"]} == {
        ("restored", restored, False), ("doc", None, True)}
    assert keys_of(s3, bucket) == []
    assert [v["Key"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]] == ["doc"]
    s3.put_object(Bucket=bucket, Key="restored", Body=b"one")
    # Suspended: an overwrite replaces the object, no version is kept.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    s3.put_object(Bucket=bucket, Key="restored", Body=b"new")
    listed = s3.list_object_versions(Bucket=bucket)
    assert [(v["Key"], v["IsLatest"]) for v in listed["Versions"]] == [("doc", False), ("restored", True)]
    assert [m["Key"] for m in listed["DeleteMarkers"]] == ["doc"]
    s3.delete_object(Bucket=bucket, Key="restored")
    assert [v["Key"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]] == ["doc"]
    s3.delete_bucket(Bucket=bucket)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


QUERY_WORDS = ["uploads", "uploadId", "partNumber", "versionId", "versioning", "versions", "delete", "location",
               "list-type", "prefix", "delimiter", "marker", "max-keys", "continuation-token", "start-after",
               "encoding-type", "key-marker", "version-id-marker", "part-number-marker", "max-parts", "acl"]
HEADER_WORDS = ["range", "if-match", "if-none-match", "if-modified-since", "x-amz-copy-source",
                "x-amz-copy-source-range", "x-amz-metadata-directive", "content-md5", "x-amz-checksum-crc32",
                "x-amz-meta-a", "content-type", "x-amz-checksum-mode", "x-amz-trailer"]
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=30) | st.sampled_from(
    ["1", "0", "bytes=0-1", "bytes=5-", "2", "../x", "*", "COPY", "REPLACE", "ENABLED", "url", "/"])


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"]),
       key=st.sampled_from(["", "k", "dir/k", "ünï", "a" * 300]),
       query=st.lists(st.tuples(st.sampled_from(QUERY_WORDS), TEXT), max_size=4),
       headers=st.dictionaries(st.sampled_from(HEADER_WORDS), TEXT.filter(str.isascii), max_size=4),
       body=st.binary(max_size=64) | st.sampled_from([b"<Delete><Object><Key>k</Key></Object></Delete>",
                                                      b"<CompleteMultipartUpload/>"]))
def test_random_signed_requests_never_fault(cloud: Cloud, tenant: Tenant, method: str, key: str,
                                            query: list[tuple[str, str]], headers: dict[str, str],
                                            body: bytes) -> None:
    bucket = "rnd-" + tenant.team.project["id"][:8]
    try:
        tenant.s3.create_bucket(Bucket=bucket)
    except ClientError:
        pass
    path = f"/s3/{bucket}/" + urllib.parse.quote(key, safe="/")
    if query:
        path += "?" + "&".join(f"{urllib.parse.quote(n)}={urllib.parse.quote(v, safe='')}" for n, v in query)
    headers = {k: v.strip() for k, v in headers.items()}
    signed_path, signed = _signed(cloud, tenant.keys, method, path, body, headers)
    with cloud.client() as client:
        r = client.request(method, signed_path, headers=signed, content=body)
    assert r.status_code < 500 or r.status_code == 501, r.text
    if r.status_code >= 400 and method != "HEAD":
        assert ET.fromstring(r.content).findtext("Code")

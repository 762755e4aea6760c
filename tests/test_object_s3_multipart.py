"""S3 multipart objects kept as manifests of their parts: completing writes none of the parts'
bytes again, and the object reads, ranges, copies, versions and deletes as one whole, its parts
going with it."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from tests.cloud import Cloud
from tests.identity_helpers import Team, unique
from tests.test_object_s3 import MiB, Tenant, error_code, keys_of



def stored_bytes(cloud: Cloud) -> int:
    """Bytes of every object file on the node's disk."""
    return sum(p.stat().st_size for p in (cloud.data_dir / "objects" / "data").rglob("*") if p.is_file())


def upload(s3: Any, bucket: str, key: str, parts: list[bytes]) -> tuple[str, list[str]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n + 1, Body=body)["ETag"]
             for n, body in enumerate(parts)]
    return upload_id, etags


def complete(s3: Any, bucket: str, key: str, upload_id: str, etags: list[str]) -> dict[str, Any]:
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": etag} for n, etag in enumerate(etags)]})


def segment_names(tenant: Tenant, bucket: str) -> list[str]:
    """The objects left in the bucket's parts container (read through Swift, as its owner)."""
    client = tenant.team.member_client
    r = client.get(f"/object-store/v1/AUTH_{tenant.team.project['id']}/{bucket}+segments")
    return r.text.split() if r.status_code == 200 else []


def test_completing_writes_no_part_again_and_the_parts_go_with_the_object(cloud: Cloud, team: Team) -> None:
    tenant = Tenant(cloud, team)
    s3 = tenant.s3
    bucket = unique("mpm")
    s3.create_bucket(Bucket=bucket)
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(MiB + 17)]
    whole = b"".join(parts)
    upload_id, etags = upload(s3, bucket, "big", parts)
    before = stored_bytes(cloud)
    done = complete(s3, bucket, "big", upload_id, etags)
    # Only the manifest was written (a few hundred bytes), not the 11 MiB of parts again.
    assert 0 < stored_bytes(cloud) - before < 64 * 1024
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert done["ETag"] == f'"{expected}"'

    head = s3.head_object(Bucket=bucket, Key="big")
    assert head["ContentLength"] == len(whole) and head["ETag"] == f'"{expected}"'
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == whole
    # A range across the first two parts' border, and one inside the last part.
    span = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")
    assert span["Body"].read() == whole[5 * MiB - 10:5 * MiB + 10] and span["ContentRange"].endswith(f"/{len(whole)}")
    assert s3.get_object(Bucket=bucket, Key="big", Range="bytes=-5")["Body"].read() == whole[-5:]
    assert keys_of(s3, bucket) == ["big"]

    # A copy is an object of its own: it outlives the original, whose parts go when it is deleted.
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "big"})
    assert len(segment_names(tenant, bucket)) == 3
    s3.delete_object(Bucket=bucket, Key="big")
    assert segment_names(tenant, bucket) == []
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == whole
    assert error_code(s3.get_object, Bucket=bucket, Key="big") == ("NoSuchKey", 404)

    # Replaced by a plain PUT (no versioning): the parts go too.
    upload_id, etags = upload(s3, bucket, "again", parts[:1] + [b"tail"])
    complete(s3, bucket, "again", upload_id, etags)
    assert len(segment_names(tenant, bucket)) == 2
    s3.put_object(Bucket=bucket, Key="again", Body=b"small")
    assert segment_names(tenant, bucket) == []
    assert s3.get_object(Bucket=bucket, Key="again")["Body"].read() == b"small"


def test_a_kept_version_keeps_its_parts(cloud: Cloud, team: Team) -> None:
    tenant = Tenant(cloud, team)
    s3 = tenant.s3
    bucket = unique("mpv")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    parts = [os.urandom(5 * MiB), os.urandom(300)]
    upload_id, etags = upload(s3, bucket, "k", parts)
    first = complete(s3, bucket, "k", upload_id, etags)["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"second")
    # The multipart version is kept, and so are its parts: it still reads whole.
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=first)["Body"].read() == b"".join(parts)
    assert len(segment_names(tenant, bucket)) == 2
    s3.delete_object(Bucket=bucket, Key="k", VersionId=first)
    assert segment_names(tenant, bucket) == []
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"

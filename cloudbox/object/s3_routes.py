"""The S3 API's table: for each method on the service, a bucket or an object and the
sub-resource its query names, the handler and whether it writes (a member's role) or reads
(a reader's)."""

from __future__ import annotations

from cloudbox.object import s3_handlers as h
from cloudbox.object import s3_multipart, s3_versions
from cloudbox.object.s3_api import S3Route


def _routes() -> list[S3Route]:
    table = [
        ("GET", "service", None, h.list_buckets, False),
        ("PUT", "bucket", None, h.create_bucket, True),
        ("HEAD", "bucket", None, h.head_bucket, False),
        ("DELETE", "bucket", None, h.delete_bucket, True),
        ("GET", "bucket", None, h.list_objects, False),
        ("GET", "bucket", "location", h.bucket_location, False),
        ("GET", "bucket", "versioning", h.get_versioning, False),
        ("PUT", "bucket", "versioning", s3_versions.put_versioning, True),
        ("GET", "bucket", "versions", s3_versions.list_versions, False),
        ("POST", "bucket", "delete", h.delete_objects, True),
        ("GET", "bucket", "uploads", s3_multipart.list_uploads, False),
        ("GET", "bucket", "acl", h.get_acl, False),
        ("PUT", "bucket", "acl", h.put_acl, True),
        ("GET", "object", "acl", h.get_acl, False),
        ("PUT", "object", "acl", h.put_acl, True),
        ("PUT", "object", None, h.put_object, True),
        ("GET", "object", None, h.get_object, False),
        ("HEAD", "object", None, h.get_object, False),
        ("DELETE", "object", None, h.delete_object, True),
        ("POST", "object", "uploads", s3_multipart.initiate, True),
        ("PUT", "object", "uploadId", s3_multipart.upload_part, True),
        ("GET", "object", "uploadId", s3_multipart.list_parts, False),
        ("POST", "object", "uploadId", s3_multipart.complete, True),
        ("DELETE", "object", "uploadId", s3_multipart.abort, True),
    ]
    return [S3Route(*row) for row in table]


ROUTES = _routes()

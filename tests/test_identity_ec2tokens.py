"""Keystone's POST /v3/ec2tokens and /v3/s3tokens: requests signed (by botocore, as EC2 and S3
clients sign them) with an EC2 credential's secret get a token of the credential's project;
a wrong signature or key is a 401 and a malformed body a 400."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth, SigV2Auth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.identity_helpers import V, Ident, Team, assert_error


@pytest.fixture(scope="module")
def ec2(team: Team) -> dict[str, Any]:
    r = team.member_client.post(f"{V}/users/{team.member['id']}/credentials/OS-EC2",
                                json={"tenant_id": team.project["id"]})
    assert r.status_code == 201, r.text
    return r.json()["credential"]


def _described(request: AWSRequest, host: str) -> dict[str, Any]:
    """A signed request as an EC2 API server describes it to Keystone."""
    url, _, query = request.url.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    from urllib.parse import unquote

    return {"host": host, "verb": request.method, "path": url.split(host, 1)[1] or "/",
            "params": {unquote(k): unquote(v) for k, v in params.items()},
            "headers": {k: v for k, v in request.headers.items()},
            "body_hash": hashlib.sha256(request.body or b"").hexdigest()}


def _token_is_the_members(ident: Ident, team: Team, r: Any) -> None:
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert token["methods"] == ["ec2credential"]
    assert token["user"]["id"] == team.member["id"] and token["project"]["id"] == team.project["id"]
    assert {role["name"] for role in token["roles"]} >= {"member", "reader"}
    check = ident.admin.get(f"{V}/auth/tokens", headers={"X-Subject-Token": r.headers["X-Subject-Token"]})
    assert check.status_code == 200 and check.json()["token"]["project"]["id"] == team.project["id"]


def test_sigv4_in_the_header(ident: Ident, team: Team, ec2: dict[str, Any]) -> None:
    request = AWSRequest("GET", "https://ec2.example:8788/?Action=DescribeInstances&Version=2016-11-15")
    SigV4Auth(Credentials(ec2["access"], ec2["secret"]), "ec2", "RegionOne").add_auth(request)
    described = _described(request, "ec2.example:8788")
    _token_is_the_members(ident, team, ident.anon.post(f"{V}/ec2tokens", json={"credentials": {
        "access": ec2["access"], "signature": "", **described}}))
    described["params"]["Action"] = "TerminateInstances"
    assert_error(ident.anon.post(f"{V}/ec2tokens", json={"credentials": {"access": ec2["access"], **described}}),
                 401, "signature mismatch")


def test_sigv4_presigned_and_sigv2(ident: Ident, team: Team, ec2: dict[str, Any]) -> None:
    request = AWSRequest("GET", "https://ec2.example/?Action=DescribeRegions")
    SigV4QueryAuth(Credentials(ec2["access"], ec2["secret"]), "ec2", "RegionOne", expires=60).add_auth(request)
    _token_is_the_members(ident, team, ident.anon.post(f"{V}/ec2tokens", json={"ec2Credentials": {
        "access": ec2["access"], **_described(request, "ec2.example")}}))
    request = AWSRequest("GET", "https://ec2.example/", params={"Action": "DescribeRegions"})
    SigV2Auth(Credentials(ec2["access"], ec2["secret"])).add_auth(request)
    params = {k: str(v) for k, v in request.params.items()}
    body = {"access": ec2["access"], "signature": params["Signature"], "host": "ec2.example", "verb": "GET",
            "path": "/", "params": params, "headers": {}}
    _token_is_the_members(ident, team, ident.anon.post(f"{V}/ec2tokens", json={"credentials": body}))
    wrong = {**body, "signature": base64.b64encode(b"x" * 32).decode()}
    assert_error(ident.anon.post(f"{V}/ec2tokens", json={"credentials": wrong}), 401)


def test_s3tokens_sigv4_and_v1(ident: Ident, team: Team, ec2: dict[str, Any]) -> None:
    request = AWSRequest("GET", "https://s3.example/bucket/key", headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    auth = S3SigV4Auth(Credentials(ec2["access"], ec2["secret"]), "s3", "RegionOne")
    auth.add_auth(request)
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    signature = auth.signature(string_to_sign, request)
    body = {"access": ec2["access"], "token": base64.b64encode(string_to_sign.encode()).decode(),
            "signature": signature}
    _token_is_the_members(ident, team, ident.anon.post(f"{V}/s3tokens", json={"credentials": body}))
    assert_error(ident.anon.post(f"{V}/s3tokens", json={"credentials": {**body, "signature": "0" * 64}}), 401)
    v1 = "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/bucket/key"
    v1_signature = base64.b64encode(hmac.new(ec2["secret"].encode(), v1.encode(), "sha1").digest()).decode()
    _token_is_the_members(ident, team, ident.anon.post(f"{V}/s3tokens", json={"credentials": {
        "access": ec2["access"], "token": base64.b64encode(v1.encode()).decode(), "signature": v1_signature}}))


@pytest.mark.parametrize("path, credentials, status", [
    ("/ec2tokens", {"access": "no-such-access-key", "signature": "x", "host": "h", "verb": "GET", "path": "/",
                    "params": {}}, 401),
    ("/s3tokens", {"access": "no-such-access-key", "token": "QQ==", "signature": "x"}, 401),
    ("/ec2tokens", {"signature": "x"}, 400),
    ("/s3tokens", {"access": "a", "token": "not base64!", "signature": "x"}, 400),
    ("/ec2tokens", {"access": "a", "params": ["not", "a", "map"]}, 400),
    ("/s3tokens", "not an object", 400),
])
def test_bad_requests_are_clear_errors(ident: Ident, path: str, credentials: Any, status: int) -> None:
    assert_error(ident.anon.post(V + path, json={"credentials": credentials}), status)


def test_a_deleted_credential_no_longer_signs(ident: Ident, team: Team) -> None:
    r = team.member_client.post(f"{V}/users/{team.member['id']}/credentials/OS-EC2",
                                json={"tenant_id": team.project["id"]})
    credential = r.json()["credential"]
    v1 = "GET\n\n\n\n/b"
    body = {"access": credential["access"], "token": base64.b64encode(v1.encode()).decode(),
            "signature": base64.b64encode(hmac.new(credential["secret"].encode(), v1.encode(), "sha1").digest()).decode()}
    assert ident.anon.post(f"{V}/s3tokens", json={"credentials": body}).status_code == 200
    r = team.member_client.delete(f"{V}/users/{team.member['id']}/credentials/OS-EC2/{credential['access']}")
    assert r.status_code == 204
    assert_error(ident.anon.post(f"{V}/s3tokens", json={"credentials": body}), 401, "not found")

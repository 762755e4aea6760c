"""The identity API's shape over HTTPS against a running node (Keystone v3 at /identity/v3): error
bodies, bad input, request ids, limits, the OpenAPI document, version documents and HEAD.

The resources are tested by family in test_identity_tokens.py, _projects.py, _users.py, _roles.py
and _catalog.py.  Tests share the session ``cloud`` and keep out of each other's way by naming
everything they make with a unique suffix; a test that needs other settings starts a ``new_cloud``
of its own."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Iterator

import pytest

from tests.cloud import Cloud
from tests.identity_helpers import REQUEST_ID, V, Ident, Team, assert_error, names, password_auth, unique


def test_error_body_shape(ident: Ident, team: Team) -> None:
    project = ident.create("project", name=unique("proj"))
    cases = [
        (ident.admin.post(V + "/projects", content=b"{"), 400),
        (ident.anon.get(V + "/users"), 401),
        (team.member_client.get(V + "/users"), 403),
        (ident.admin.get(V + "/users/" + uuid.uuid4().hex), 404),
        (ident.admin.get(V + "/no/such/thing"), 404),
        (ident.admin.put(V + "/users"), 405),
        (ident.admin.post(V + "/projects", json={"project": {"name": project["name"]}}), 409),
        (ident.admin.post(V + "/projects", content=b" " * (2 << 20)), 413),
    ]
    for r, status in cases:
        assert_error(r, status)
        assert r.headers["content-type"] == "application/json"


def test_malformed_json_is_400_and_creates_nothing(ident: Ident) -> None:
    name = unique("proj")
    for raw in (b'{"project": {"name": "%s"' % name.encode(), b"\xff\xfe", b"project=" + name.encode()):
        r = ident.admin.post(V + "/projects", content=raw, headers={"Content-Type": "application/json"})
        assert_error(r, 400, "not valid JSON")
    assert_error(ident.admin.post(V + "/projects", content=b""), 400, "empty")
    assert_error(ident.anon.post(V + "/auth/tokens", content=b'{"auth": '), 400, "not valid JSON")
    assert ident.lookup("project", name=name) == []


def test_body_over_max_body_bytes_is_413_and_creates_nothing(ident: Ident) -> None:
    limit = 1 << 20

    def padded(name: str, size: int) -> bytes:
        doc = b'{"project": {"name": "%s"}}' % name.encode()
        return doc + b" " * (size - len(doc))  # valid JSON, valid body: only its size is wrong

    too_big = unique("big")
    r = ident.admin.post(V + "/projects", content=padded(too_big, limit + 1), headers={"Content-Type": "application/json"})
    assert_error(r, 413, str(limit))
    # The server did not read the body, so it closes the connection and must say so.
    assert r.headers["connection"] == "close"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming too
        body = padded(too_big, 3 * limit)
        for i in range(0, len(body), 64 * 1024):
            yield body[i:i + 64 * 1024]

    r = ident.admin.post(V + "/projects", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(r, 413)
    assert ident.lookup("project", name=too_big) == []  # same client: the closed connection is not reused

    just_fits = unique("fits")
    r = ident.admin.post(V + "/projects", content=padded(just_fits, limit), headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert [p["name"] for p in ident.lookup("project", name=just_fits)] == [just_fits]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/projects", {"project": {"description": "no name"}}, "'project'"),
    ("/projects", {"project": {"name": 5}}, "project/name"),
    ("/projects", {"project": {"name": "NAME", "enabled": "yes"}}, "project/enabled"),
    ("/projects", {"project": {"name": "NAME", "tags": "a,b"}}, "project/tags"),
    ("/projects", {"project": {"name": " padded "}}, "project/name"),
    ("/projects", {"project": []}, "'project'"),
    ("/projects", ["project"], "'body'"),
    ("/users", {"user": {"name": "NAME", "password": 1234}}, "user/password"),
    ("/users", {"user": {"name": "NAME", "enabled": 1}}, "user/enabled"),
    ("/groups", {"group": {"name": ["NAME"]}}, "group/name"),
    ("/roles", {"role": {}}, "'role'"),
    ("/domains", {"domain": {"name": "NAME", "description": 7}}, "domain/description"),
    ("/endpoints", {"endpoint": {"service_id": "x", "interface": "sideways", "url": "https://e"}}, "endpoint/interface"),
    ("/endpoints", {"endpoint": {"service_id": "x", "interface": "public", "url": "ftp://e"}}, "endpoint/url"),
    ("/auth/tokens", {"auth": {"identity": {}}}, "auth/identity"),
    ("/auth/tokens", {"auth": {"identity": {"methods": ["kerberos"]}}}, "auth/identity/methods/0"),
])
def test_schema_violations_name_the_field(ident: Ident, path: str, body: Any, field: str) -> None:
    name = unique("bad")
    template = json.dumps(body)
    r = ident.admin.post(V + path, content=template.replace("NAME", name), headers={"Content-Type": "application/json"})
    message = assert_error(r, 400)["message"]
    assert field in message, message
    if "NAME" in template:  # a body that names something: that something was not made
        assert ident.lookup(path.strip("/")[:-1], name=name) == []


def test_every_response_carries_a_request_id(ident: Ident, cloud: Cloud) -> None:
    admin, anon = ident.admin, ident.anon
    doomed = ident.create("group", name=unique("rid"))
    responses = [
        admin.delete(f"{V}/groups/{doomed['id']}"),
        anon.get("/cloudbox/v1/health"),
        anon.get("/identity"),
        anon.get(V),
        anon.get("/openapi.json"),
        admin.get(V + "/projects"),
        admin.head(V + "/projects"),
        admin.head(V + "/auth/tokens", headers={"X-Subject-Token": admin.headers["X-Auth-Token"]}),
        admin.post(V + "/projects", json={"project": {"name": unique("rid")}}),
        admin.put(f"{V}/projects/{uuid.uuid4().hex}/users/{uuid.uuid4().hex}/roles/{uuid.uuid4().hex}"),
        admin.post(V + "/projects", content=b"not json"),
        anon.post(V + "/auth/tokens", json=password_auth("admin", "wrong")),
        anon.get(V + "/users"),
        anon.head(V + "/users"),
        admin.get(V + "/users/" + uuid.uuid4().hex),
        admin.head(V + "/users/" + uuid.uuid4().hex),
        anon.get("/no/such/path"),
        anon.post("/no/such/path", content=b"{}"),
        anon.get(V + "/no/such/path"),
        anon.delete(V + "/projects"),
        anon.request("OPTIONS", V + "/users"),
        admin.post(V + "/projects", content=b" " * (2 << 20)),
    ]
    statuses = {r.status_code for r in responses}
    assert {200, 201, 204, 300, 400, 401, 404, 405, 413} <= statuses
    ids = []
    for r in responses:
        request_id = r.headers.get("x-openstack-request-id", "")
        assert REQUEST_ID.match(request_id), (r.request.method, r.request.url, r.status_code, r.headers)
        ids.append(request_id)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("limit", ["abc", "-1", "1.5", "3x"])
def test_bad_limit_is_400(ident: Ident, limit: str) -> None:
    for path in ("/projects", "/users", "/roles", "/endpoints"):
        assert_error(ident.admin.get(V + path, params={"limit": limit}), 400, "limit")


def test_openapi_lists_every_route_served(cloud: Cloud, ident: Ident) -> None:
    from cloudbox.node import DataDir
    from cloudbox.server import Node
    from cloudbox.settings import Settings

    node = Node(DataDir(cloud.data_dir), Settings.load(cloud.data_dir))  # wired like `cloudbox serve`, not opened
    app = node.app()
    served: set[tuple[str, str]] = set()
    served_head: set[str] = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        # OPTIONS is served for every route unless a route answers it itself (Swift's CORS).
        automatic = {"OPTIONS"} if getattr(rule, "provide_automatic_options", True) else set()
        served |= {(path, m) for m in rule.methods - {"HEAD"} - automatic}
        if "HEAD" in rule.methods:
            served_head.add(path)
    assert ("/identity/v3/auth/tokens", "POST") in served and len(served) > 100

    r = ident.anon.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, m.upper()) for path, ops in doc["paths"].items() for m in ops}
    assert served - {(p, m) for p, m in documented if m != "HEAD"} == set(), "served but not documented"
    assert {(p, m) for p, m in documented if m != "HEAD"} - served == set(), "documented but not served"
    assert {p for p, m in documented if m == "HEAD"} <= served_head
    operation_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert doc["paths"]["/identity/v3/users"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == ["user"]


def test_version_documents_and_their_links(ident: Ident, cloud: Cloud) -> None:
    r = ident.anon.get("/identity")
    assert r.status_code == 300
    [version] = r.json()["versions"]["values"]
    assert version["id"].startswith("v3.") and version["status"] == "stable"
    self_link = next(link["href"] for link in version["links"] if link["rel"] == "self")
    assert self_link == cloud.auth_url + "/"
    for url in (self_link, cloud.auth_url):  # keystoneauth follows the self link
        r = ident.anon.get(url)
        assert r.status_code == 200, (url, r.text)
        assert r.json()["version"]["id"] == version["id"]


def test_head_works_on_every_kind_of_get(ident: Ident, team: Team) -> None:
    for client, path in [
        (ident.anon, "/cloudbox/v1/health"), (ident.anon, V), (ident.admin, V + "/projects"),
        (ident.admin, V + "/auth/catalog"), (ident.admin, f"{V}/projects/{team.project['id']}"),
        (ident.admin, V + "/role_assignments"),
    ]:
        r = client.head(path)
        assert r.status_code == 200, (path, r.status_code)
        assert r.content == b""
        assert r.headers["content-type"] == "application/json"
    # HEAD answers with the headers GET would send.
    assert int(ident.anon.head(V).headers["content-length"]) == len(ident.anon.get(V).content)
    assert ident.anon.head(V + "/projects").status_code == 401
    assert team.member_client.head(V + "/users").status_code == 403

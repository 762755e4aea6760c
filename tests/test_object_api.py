"""The Swift v1 API (/object-store/v1/AUTH_<project>) over real HTTPS against a running node.

Tests share the session ``cloud``; each makes its own projects (``Tenant``) and containers.
"""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.cloud import Cloud
from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)

S = "/object-store/v1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def swift_error(r: httpx.Response, status: int, fragment: str = "") -> None:
    """Swift's error: a short HTML page (never JSON), at the expected status."""
    assert r.status_code == status, (r.status_code, r.text)
    if r.request.method != "HEAD":
        assert r.text.startswith("<html>") and fragment in r.text, r.text


def account(tenant: Tenant) -> str:
    return f"{S}/AUTH_{tenant.project_id}"


def test_catalog_and_info(cloud: Cloud, alpha: Tenant):
    token = alpha.member.headers["X-Auth-Token"]
    r = alpha.member.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token})
    (swift,) = [s for s in r.json()["token"]["catalog"] if s["type"] == "object-store"]
    assert swift["name"] == "swift"
    assert {e["url"] for e in swift["endpoints"]} == {f"{cloud.url}{account(alpha)}"}
    with cloud.client() as anonymous:
        info = anonymous.get("/info")
    assert info.status_code == 200
    body = info.json()
    assert body["swift"]["max_file_size"] == 5 * 1024 ** 3
    assert body["swift"]["container_listing_limit"] == 10000


def test_container_and_object_round_trip(alpha: Tenant):
    c, base = unique("c"), account(alpha)
    client = alpha.member
    assert client.put(f"{base}/{c}", headers={"X-Container-Meta-Color": "blue"}).status_code == 201
    assert client.put(f"{base}/{c}").status_code == 202
    data = b"0123456789" * 100_000
    r = client.put(f"{base}/{c}/dir/a b.txt", content=data,
                   headers={"Content-Type": "text/plain", "X-Object-Meta-Kind": "test"})
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == hashlib.md5(data).hexdigest()
    r = client.get(f"{base}/{c}/dir/a b.txt")
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-Type"].startswith("text/plain") and r.headers["X-Object-Meta-Kind"] == "test"
    r = client.head(f"{base}/{c}/dir/a b.txt")
    assert r.status_code == 200 and r.headers["Content-Length"] == str(len(data)) and not r.content
    r = client.get(f"{base}/{c}/dir/a b.txt", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    r = client.get(f"{base}/{c}/dir/a b.txt", headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = client.get(f"{base}/{c}/dir/a b.txt", headers={"Range": f"bytes={len(data)}-"})
    swift_error(r, 416)
    assert r.headers["Content-Range"] == f"bytes */{len(data)}"
    r = client.get(f"{base}/{c}/dir/a b.txt", headers={"Range": "bytes=0-2,10-12,-2"})
    assert r.status_code == 206 and r.headers["Content-Type"].startswith("multipart/byteranges;boundary=")
    boundary = r.headers["Content-Type"].split("boundary=")[1]
    parts = [p for p in r.content.split(b"--" + boundary.encode()) if p not in (b"", b"--\r\n")]
    assert [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts] == [data[0:3], data[10:13], data[-2:]]
    assert b"Content-Range: bytes 10-12/" in parts[1] and int(r.headers["Content-Length"]) == len(r.content)
    etag = hashlib.md5(data).hexdigest()
    assert client.get(f"{base}/{c}/dir/a b.txt", headers={"If-None-Match": etag}).status_code == 304
    swift_error(client.get(f"{base}/{c}/dir/a b.txt", headers={"If-Match": "nope"}), 412)
    modified = r.headers["Last-Modified"]
    assert client.get(f"{base}/{c}/dir/a b.txt", headers={"If-Modified-Since": modified}).status_code == 304
    for name in ("e", "dir/sub/x", "ü/y"):
        assert client.put(f"{base}/{c}/{name}", content=name.encode()).status_code == 201
    r = client.get(f"{base}/{c}")
    assert r.status_code == 200 and r.text == "dir/a b.txt\ndir/sub/x\ne\nü/y\n"
    assert r.headers["X-Container-Object-Count"] == "4" and r.headers["X-Container-Meta-Color"] == "blue"
    r = client.get(f"{base}/{c}", params={"format": "json", "delimiter": "/"})
    assert r.json() == [{"subdir": "dir/"}, r.json()[1], {"subdir": "ü/"}]
    assert r.json()[1]["name"] == "e" and r.json()[1]["hash"] == hashlib.md5(b"e").hexdigest()
    r = client.get(f"{base}/{c}", params={"prefix": "dir/", "delimiter": "/", "reverse": "true"},
                   headers={"Accept": "application/xml"})
    root = ET.fromstring(r.content)
    assert root.tag == "container" and [e.findtext("name") for e in root] == ["dir/sub/", "dir/a b.txt"]
    r = client.get(f"{base}/{c}", params={"marker": "dir/sub/x", "end_marker": "ü", "limit": 5})
    assert r.text == "e\n"
    swift_error(client.get(f"{base}/{c}", params={"limit": 10001}), 412)
    r = client.get(base, params={"format": "json", "prefix": c})
    assert [x["name"] for x in r.json()] == [c] and r.json()[0]["count"] == 4
    r = client.head(base)
    assert r.status_code == 204 and int(r.headers["X-Account-Object-Count"]) >= 4
    r = client.post(f"{base}/{c}/e", headers={"X-Object-Meta-New": "1"})
    assert r.status_code == 202
    assert client.head(f"{base}/{c}/e").headers["X-Object-Meta-New"] == "1"
    r = client.request("COPY", f"{base}/{c}/e", headers={"Destination": f"{c}/e2"})
    assert r.status_code == 201 and client.get(f"{base}/{c}/e2").content == b"e"
    r = client.put(f"{base}/{c}/e3", headers={"X-Copy-From": f"/{c}/dir/a b.txt"})
    assert r.status_code == 201 and r.headers["ETag"] == etag
    swift_error(client.delete(f"{base}/{c}"), 409)
    for name in ("dir/a b.txt", "e", "e2", "e3", "dir/sub/x", "ü/y"):
        assert client.delete(f"{base}/{c}/{name}").status_code == 204
    swift_error(client.get(f"{base}/{c}/e"), 404, "Not Found")
    assert client.get(f"{base}/{c}").status_code == 204
    assert client.delete(f"{base}/{c}").status_code == 204
    swift_error(client.head(f"{base}/{c}"), 404)


def test_other_projects_and_anonymous_are_refused(cloud: Cloud, alpha: Tenant, beta: Tenant):
    c, base = unique("c"), account(alpha)
    assert alpha.member.put(f"{base}/{c}").status_code == 201
    assert alpha.member.put(f"{base}/{c}/o", content=b"secret").status_code == 201
    swift_error(beta.member.get(f"{base}/{c}/o"), 403)
    swift_error(beta.member.get(base), 403)
    swift_error(beta.member.put(f"{base}/{c}/o", content=b"overwrite"), 403)
    swift_error(beta.member.put(f"{base}/{unique('c')}"), 403)
    swift_error(alpha.reader.put(f"{base}/{c}/o", content=b"overwrite"), 403)
    assert alpha.reader.get(f"{base}/{c}/o").content == b"secret"
    with cloud.client() as anonymous:
        swift_error(anonymous.get(f"{base}/{c}/o"), 401)
        swift_error(anonymous.get(f"{base}/{c}/o", headers={"X-Auth-Token": "not-a-token"}), 401)
    assert alpha.member.get(f"{base}/{c}/o").content == b"secret"


def test_container_acls(cloud: Cloud, alpha: Tenant, beta: Tenant):
    c, base = unique("c"), account(alpha)
    assert alpha.member.put(f"{base}/{c}").status_code == 201
    assert alpha.member.put(f"{base}/{c}/o", content=b"shared").status_code == 201
    with cloud.client() as anonymous:
        swift_error(anonymous.get(f"{base}/{c}/o"), 401)
        assert alpha.member.post(f"{base}/{c}", headers={"X-Container-Read": ".r:*"}).status_code == 204
        assert anonymous.get(f"{base}/{c}/o").content == b"shared"
        swift_error(anonymous.get(f"{base}/{c}"), 401)  # objects, not the listing
        assert alpha.member.post(f"{base}/{c}", headers={"X-Container-Read": ".r:*,.rlistings"}).status_code == 204
        assert anonymous.get(f"{base}/{c}").text == "o\n"
        swift_error(anonymous.put(f"{base}/{c}/x", content=b"x"), 401)
    swift_error(beta.member.put(f"{base}/{c}/x", content=b"x"), 403)
    grant = f"{beta.project_id}:*"
    assert alpha.member.post(f"{base}/{c}", headers={"X-Container-Write": grant}).status_code == 204
    assert beta.member.put(f"{base}/{c}/x", content=b"x").status_code == 201
    swift_error(beta.member.delete(f"{base}/{c}"), 403)  # a write grant is for objects only
    assert alpha.member.post(f"{base}/{c}", headers={"X-Remove-Container-Write": "x"}).status_code == 204
    swift_error(beta.member.put(f"{base}/{c}/x", content=b"x"), 403)


@pytest.mark.parametrize("path, headers, status, fragment", [
    ("/" + "c" * 257, {}, 400, "Container name length"),
    ("/{c}/" + "o" * 1025, {}, 400, "Object name length"),
    ("/{c}/o", {"X-Object-Meta-" + "k" * 129: "v"}, 400, "Metadata name too long"),
    ("/{c}/o", {"X-Object-Meta-K": "v" * 257}, 400, "Metadata value"),
    ("/{c}/o", {"ETag": "0" * 32}, 422, ""),
    ("/{c}/o", {"X-Delete-At": "1"}, 400, "X-Delete-At in past"),
    ("/{c}/o", {"X-Delete-After": "soon"}, 400, "Non-integer"),
    ("/{c}/o", {"X-Delete-After": "9" * 30}, 400, "too far"),
    ("/{c}/o", {"X-Delete-At": "9" * 30}, 400, "too far"),
    ("/{c}/o", {"X-Copy-From": "nocontainer"}, 412, "X-Copy-From"),
    ("/{c}/o", {"X-Object-Manifest": "nocontainer"}, 400, "X-Object-Manifest"),
    ("/missing-container/o", {}, 404, ""),
    ("/{c}/o", {"X-Copy-From": "{c}/o", "Content-Length": "4"}, 400, "zero byte body"),
])
def test_bad_puts_are_refused_and_change_nothing(alpha: Tenant, path: str, headers: dict[str, str], status: int,
                                                 fragment: str):
    c, base = unique("c"), account(alpha)
    assert alpha.member.put(f"{base}/{c}").status_code == 201
    before = alpha.member.get(base, params={"format": "json"}).json()
    body = b"" if "X-Copy-From" in headers and "Content-Length" not in headers else b"body"
    r = alpha.member.put(base + path.format(c=c), content=body, headers=headers)
    swift_error(r, status, fragment)
    assert alpha.member.get(base, params={"format": "json"}).json() == before
    assert alpha.member.get(f"{base}/{c}").status_code == 204


def test_object_over_5_gib_is_refused_before_reading(cloud: Cloud, alpha: Tenant):
    c, base = unique("c"), account(alpha)
    assert alpha.member.put(f"{base}/{c}").status_code == 201
    host, port = cloud.url.split("//")[1].rsplit(":", 1)
    token = alpha.member.headers["X-Auth-Token"]
    with socket.create_connection((host, int(port))) as raw, \
            cloud.ssl_context().wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall((f"PUT {base}/{c}/big HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n"
                     f"Content-Length: {5 * 1024 ** 3 + 1}\r\n\r\n").encode() + b"x" * 1000)
        answer = tls.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert alpha.member.get(f"{base}/{c}").status_code == 204


def test_delete_after_expires_the_object(alpha: Tenant):
    c, base = unique("c"), account(alpha)
    assert alpha.member.put(f"{base}/{c}").status_code == 201
    assert alpha.member.put(f"{base}/{c}/o", content=b"x", headers={"X-Delete-After": "1"}).status_code == 201
    assert alpha.member.head(f"{base}/{c}/o").headers["X-Delete-At"]
    from tests.cloud import wait_for

    wait_for(lambda: alpha.member.head(f"{base}/{c}/o").status_code == 404, 15, "the object to expire", every=0.2)
    wait_for(lambda: alpha.member.get(f"{base}/{c}").status_code == 204, 30, "the expirer to delete it", every=0.5)


def test_metadata_of_account_and_json_listing_empty(alpha: Tenant):
    base = account(alpha)
    assert alpha.member.post(base, headers={"X-Account-Meta-Owner": "me"}).status_code == 204
    assert alpha.member.head(base).headers["X-Account-Meta-Owner"] == "me"
    assert alpha.member.post(base, headers={"X-Remove-Account-Meta-Owner": "x"}).status_code == 204
    assert "X-Account-Meta-Owner" not in alpha.member.head(base).headers
    c = unique("c")
    assert alpha.member.put(f"{base}/{c}").status_code == 201
    r = alpha.member.get(f"{base}/{c}", params={"format": "json"})
    assert r.status_code == 200 and json.loads(r.text) == []


def test_static_and_dynamic_large_objects(alpha: Tenant):
    c, segs, base = unique("c"), unique("segs"), account(alpha)
    client = alpha.member
    assert client.put(f"{base}/{c}").status_code == 201
    assert client.put(f"{base}/{segs}").status_code == 201
    parts = [bytes([65 + i]) * (1000 + i) for i in range(3)]
    etags = []
    for i, part in enumerate(parts):
        r = client.put(f"{base}/{segs}/big/{i:03d}", content=part)
        etags.append(r.headers["ETag"])
    whole = b"".join(parts)
    # DLO: every object under the prefix, read as one.
    assert client.put(f"{base}/{c}/dlo", content=b"", headers={"X-Object-Manifest": f"{segs}/big/"}).status_code == 201
    r = client.get(f"{base}/{c}/dlo")
    assert r.status_code == 200 and r.content == whole
    assert r.headers["ETag"] == '"%s"' % hashlib.md5("".join(etags).encode()).hexdigest()
    assert client.head(f"{base}/{c}/dlo").headers["Content-Length"] == str(len(whole))
    r = client.get(f"{base}/{c}/dlo", headers={"Range": "bytes=990-2010"})
    assert r.status_code == 206 and r.content == whole[990:2011]
    # SLO: a manifest of checked segments.
    manifest = [{"path": f"/{segs}/big/{i:03d}", "etag": etags[i], "size_bytes": len(parts[i])} for i in range(3)]
    r = client.put(f"{base}/{c}/slo", params={"multipart-manifest": "put"}, content=json.dumps(manifest))
    assert r.status_code == 201, r.text
    r = client.get(f"{base}/{c}/slo")
    assert r.content == whole and r.headers["X-Static-Large-Object"] == "True"
    r = client.get(f"{base}/{c}/slo", headers={"Range": "bytes=-1500"})
    assert r.status_code == 206 and r.content == whole[-1500:]
    listed = {o["name"]: o for o in client.get(f"{base}/{c}", params={"format": "json"}).json()}
    assert listed["slo"]["bytes"] == len(whole)
    stored = client.get(f"{base}/{c}/slo", params={"multipart-manifest": "get"}).json()
    assert [s["name"] for s in stored] == [m["path"] for m in manifest]
    r = client.request("COPY", f"{base}/{c}/slo", headers={"Destination": f"{c}/flat"})
    assert r.status_code == 201 and client.get(f"{base}/{c}/flat").content == whole
    assert "X-Static-Large-Object" not in client.head(f"{base}/{c}/flat").headers
    # A manifest naming a missing segment or a wrong etag is refused, and nothing is stored.
    bad = [{"path": f"/{segs}/nope", "etag": None, "size_bytes": None},
           {"path": f"/{segs}/big/000", "etag": "0" * 32, "size_bytes": None}]
    r = client.put(f"{base}/{c}/bad", params={"multipart-manifest": "put"}, content=json.dumps(bad))
    swift_error(r, 400, "Etag Mismatch")
    assert "404 Not Found" in r.text
    swift_error(client.head(f"{base}/{c}/bad"), 404)
    swift_error(client.put(f"{base}/{c}/bad", params={"multipart-manifest": "put"}, content=b"{not json"), 400)
    r = client.delete(f"{base}/{c}/slo", params={"multipart-manifest": "delete"}, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["Number Deleted"] == 4
    assert client.get(f"{base}/{segs}").status_code == 204
    assert client.get(f"{base}/{c}/dlo").content == b""


def _signed(method: str, expires: int, path: str, key: str, digest: str = "sha256") -> str:
    import hmac

    return hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(), digest).hexdigest()


def test_temp_urls(cloud: Cloud, alpha: Tenant):
    import time

    c, base = unique("c"), account(alpha)
    assert alpha.member.put(f"{base}/{c}").status_code == 201
    assert alpha.member.put(f"{base}/{c}/dir/o", content=b"temp").status_code == 201
    key = uuid.uuid4().hex
    assert alpha.member.post(base, headers={"X-Account-Meta-Temp-URL-Key": key}).status_code == 204
    path = f"{base}/{c}/dir/o"
    expires = int(time.time()) + 60
    with cloud.client() as anonymous:
        for digest in ("sha256", "sha512"):
            r = anonymous.get(path, params={"temp_url_sig": _signed("GET", expires, path, key, digest),
                                            "temp_url_expires": expires, "filename": "x.txt"})
            assert r.status_code == 200 and r.content == b"temp", r.text
            assert r.headers["Content-Disposition"] == "attachment; filename*=UTF-8''x.txt"
        # Swift's /v1/... form of the path, base64 form of the signature.
        import base64
        import hmac

        raw = hmac.new(key.encode(), f"HEAD\n{expires}\n{path[len('/object-store'):]}".encode(), "sha512").digest()
        r = anonymous.head(path, params={"temp_url_sig": "sha512:" + base64.urlsafe_b64encode(raw).decode().rstrip("="),
                                         "temp_url_expires": expires})
        assert r.status_code == 200
        sig = _signed("GET", expires, path, key)
        swift_error(anonymous.put(path, params={"temp_url_sig": sig, "temp_url_expires": expires}, content=b"x"),
                    401, "Temp URL invalid")
        swift_error(anonymous.get(path, params={"temp_url_sig": sig, "temp_url_expires": expires + 1}), 401)
        past = int(time.time()) - 1
        swift_error(anonymous.get(path, params={"temp_url_sig": _signed("GET", past, path, key),
                                                "temp_url_expires": past}), 401, "Temp URL expired")
        swift_error(anonymous.get(path, params={"temp_url_sig": "nonsense", "temp_url_expires": expires}), 401)
        put_sig = _signed("PUT", expires, f"{base}/{c}/new", key, "sha512")
        r = anonymous.put(f"{base}/{c}/new", params={"temp_url_sig": put_sig, "temp_url_expires": expires},
                          content=b"uploaded")
        assert r.status_code == 201
        prefix_sig = _signed("GET", expires, f"prefix:{base}/{c}/dir/", key)
        r = anonymous.get(path, params={"temp_url_sig": prefix_sig, "temp_url_expires": expires,
                                        "temp_url_prefix": "dir/"})
        assert r.content == b"temp"
        swift_error(anonymous.get(f"{base}/{c}/new", params={"temp_url_sig": prefix_sig, "temp_url_expires": expires,
                                                             "temp_url_prefix": "dir/"}), 401)
    assert alpha.member.get(f"{base}/{c}/new").content == b"uploaded"


def test_bulk_delete_and_what_grantees_see(alpha: Tenant, beta: Tenant):
    c, other, base = unique("c"), unique("c"), account(alpha)
    client = alpha.member
    assert client.put(f"{base}/{c}", headers={"X-Container-Meta-Temp-URL-Key": "k",
                                              "X-Container-Read": f"{beta.project_id}:*"}).status_code == 201
    assert client.put(f"{base}/{other}").status_code == 201
    for name in ("a", "b c", "d/é"):
        assert client.put(f"{base}/{c}/{name}", content=b"x").status_code == 201
    seen = beta.member.head(f"{base}/{c}")
    assert seen.status_code == 204 and "X-Container-Meta-Temp-Url-Key" not in seen.headers
    assert "X-Container-Read" not in seen.headers
    assert client.head(f"{base}/{c}").headers["X-Container-Read"] == f"{beta.project_id}:*"
    body = "\n".join(["/" + c + "/a", f"/{c}/b%20c", f"/{c}/d/%C3%A9", f"/{c}/missing", f"/{other}"])
    r = beta.member.post(base, params={"bulk-delete": ""}, content=body, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["Number Deleted"] == 0 and len(r.json()["Errors"]) == 5
    r = client.post(base, params={"bulk-delete": ""}, content=body, headers={"Accept": "application/json"})
    report = r.json()
    assert (report["Number Deleted"], report["Number Not Found"], report["Errors"]) == (4, 1, [])
    assert client.get(f"{base}/{c}").status_code == 204 and client.head(f"{base}/{other}").status_code == 404
    r = client.post(base, params={"bulk-delete": ""}, content=f"/{c}\n/{c}/x\n")
    assert r.status_code == 200 and r.text.startswith("Number Deleted: 1\nNumber Not Found: 1\n")


@pytest.mark.parametrize("mode", ["X-Versions-Location", "X-History-Location"])
def test_object_versioning(alpha: Tenant, mode: str):
    c, archive, base = unique("c"), unique("v"), account(alpha)
    client = alpha.member
    assert client.put(f"{base}/{archive}").status_code == 201
    assert client.put(f"{base}/{c}", headers={mode: archive}).status_code == 201
    assert client.head(f"{base}/{c}").headers[mode] == archive
    for body in (b"one", b"two", b"three"):
        assert client.put(f"{base}/{c}/o", content=body).status_code == 201
    assert client.get(f"{base}/{c}/o").content == b"three"
    versions = client.get(f"{base}/{archive}", params={"format": "json"}).json()
    assert [v["name"].startswith("001o/") for v in versions] == [True, True]
    assert [client.get(f"{base}/{archive}/{v['name']}").content for v in versions] == [b"one", b"two"]
    assert client.delete(f"{base}/{c}/o").status_code == 204
    if mode == "X-Versions-Location":  # stack: the newest version comes back
        assert client.get(f"{base}/{c}/o").content == b"two"
        assert client.delete(f"{base}/{c}/o").status_code == 204
        assert client.get(f"{base}/{c}/o").content == b"one"
        assert client.delete(f"{base}/{c}/o").status_code == 204
        swift_error(client.get(f"{base}/{c}/o"), 404)
        assert client.get(f"{base}/{archive}").status_code == 204
    else:  # history: the deleted object is kept too
        swift_error(client.get(f"{base}/{c}/o"), 404)
        assert len(client.get(f"{base}/{archive}", params={"format": "json"}).json()) == 3
    swift_error(client.post(f"{base}/{c}", headers={"X-Versions-Location": "a", "X-History-Location": "b"}), 400)
    assert client.post(f"{base}/{c}", headers={f"X-Remove-{mode[2:]}": "x"}).status_code == 204
    assert mode not in client.head(f"{base}/{c}").headers


def test_names_are_names_whatever_their_bytes_and_chunked_uploads(alpha: Tenant):
    import urllib.parse

    c, base = unique("c"), account(alpha)
    client = alpha.member
    assert client.put(f"{base}/{c}").status_code == 201
    names = ["a?b", "100%", "sp ace", "ü/ß", "../../x", "x//y", "trailing/", ".", "#frag", "a\\b"]


    def url(name: str) -> str:  # every byte escaped, dots too, so that the client changes nothing
        return f"{base}/{c}/" + urllib.parse.quote(name, safe="").replace(".", "%2E")

    for name in names:
        r = client.put(url(name), content=name.encode())
        assert r.status_code == 201, (name, r.status_code, r.text)
    for name in names:
        assert client.get(url(name)).content == name.encode(), name
    assert client.get(f"{base}/{c}", params={"format": "json"}).json() == sorted(
        client.get(f"{base}/{c}", params={"format": "json"}).json(), key=lambda o: o["name"].encode())
    listed = [o["name"] for o in client.get(f"{base}/{c}", params={"format": "json"}).json()]
    assert sorted(listed) == sorted(names)

    def chunks():
        yield b"chunk-one,"
        yield b"chunk-two"

    r = client.put(f"{base}/{c}/chunked", content=chunks())  # Transfer-Encoding: chunked, no length
    assert r.status_code == 201 and client.get(f"{base}/{c}/chunked").content == b"chunk-one,chunk-two"


def test_container_quotas(alpha: Tenant):
    c, base = unique("c"), account(alpha)
    client = alpha.member
    assert client.put(f"{base}/{c}", headers={"X-Container-Meta-Quota-Bytes": "10",
                                              "X-Container-Meta-Quota-Count": "2"}).status_code == 201
    assert client.put(f"{base}/{c}/a", content=b"123456").status_code == 201
    swift_error(client.put(f"{base}/{c}/b", content=b"123456"), 413, "Upload exceeds quota")
    assert client.put(f"{base}/{c}/a", content=b"1234").status_code == 201
    assert client.post(f"{base}/{c}", headers={"X-Container-Meta-Quota-Bytes": "100"}).status_code == 204
    assert client.put(f"{base}/{c}/b", content=b"x").status_code == 201
    swift_error(client.put(f"{base}/{c}/c", content=b"x"), 413, "Upload exceeds quota")
    swift_error(client.post(f"{base}/{c}", headers={"X-Container-Meta-Quota-Count": "lots"}), 400)
    listed = client.get(f"{base}/{c}", params={"format": "json"}).json()
    assert [o["name"] for o in listed] == ["a", "b"]


def test_account_acls(alpha: Tenant, beta: Tenant):
    c, base = unique("c"), account(alpha)
    owner, other = alpha.member, beta.member
    assert owner.put(f"{base}/{c}").status_code == 201
    assert owner.put(f"{base}/{c}/o", content=b"mine").status_code == 201
    swift_error(other.get(f"{base}/{c}/o"), 403)
    grant = f"{beta.project_id}:*"

    def set_acl(value: str) -> httpx.Response:
        return owner.post(base, headers={"X-Account-Access-Control": value})

    assert set_acl(json.dumps({"read-only": [grant]})).status_code == 204
    assert other.get(f"{base}/{c}/o").content == b"mine" and c in other.get(base).text
    assert "X-Account-Access-Control" not in other.head(base).headers
    swift_error(other.put(f"{base}/{c}/new", content=b"x"), 403)
    assert set_acl(json.dumps({"read-write": [grant]})).status_code == 204
    assert other.put(f"{base}/{c}/new", content=b"x").status_code == 201
    assert other.put(f"{base}/{unique('c')}").status_code == 201
    swift_error(other.post(base, headers={"X-Account-Meta-X": "1"}), 403)
    assert set_acl(json.dumps({"admin": [grant]})).status_code == 204
    assert other.post(base, headers={"X-Account-Meta-X": "1"}).status_code == 204
    swift_error(set_acl("not json"), 400, "JSON")
    swift_error(set_acl(json.dumps({"superuser": [grant]})), 400)
    assert json.loads(owner.head(base).headers["X-Account-Access-Control"]) == {"admin": [grant]}
    assert owner.post(base, headers={"X-Remove-Account-Access-Control": "x"}).status_code == 204
    swift_error(other.get(f"{base}/{c}/o"), 403)


def test_cors(cloud: Cloud, alpha: Tenant):
    c, base = unique("c"), account(alpha)
    client = alpha.member
    assert client.put(f"{base}/{c}", headers={
        "X-Container-Meta-Access-Control-Allow-Origin": "https://app.example",
        "X-Container-Meta-Access-Control-Max-Age": "600"}).status_code == 201
    assert client.put(f"{base}/{c}/o", content=b"x", headers={"X-Object-Meta-Color": "red"}).status_code == 201
    with cloud.client() as browser:
        r = browser.options(f"{base}/{c}/o", headers={"Origin": "https://app.example",
                                                      "Access-Control-Request-Method": "GET",
                                                      "Access-Control-Request-Headers": "x-auth-token"})
        assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert r.headers["Access-Control-Max-Age"] == "600" and "GET" in r.headers["Access-Control-Allow-Methods"]
        swift_error(browser.options(f"{base}/{c}/o", headers={"Origin": "https://evil.example",
                                                              "Access-Control-Request-Method": "GET"}), 401)
        assert browser.options(f"{base}/{c}").status_code == 200  # no Origin: not a preflight
    r = client.get(f"{base}/{c}/o", headers={"Origin": "https://app.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "x-object-meta-color" in r.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Origin" not in client.get(f"{base}/{c}/o",
                                                           headers={"Origin": "https://evil.example"}).headers


def test_static_website(cloud: Cloud, alpha: Tenant):
    c, base = unique("site"), account(alpha)
    client = alpha.member
    assert client.put(f"{base}/{c}", headers={"X-Container-Read": ".r:*", "X-Container-Meta-Web-Index": "index.html",
                                              "X-Container-Meta-Web-Error": "error.html"}).status_code == 201
    for name, body in (("index.html", "<h1>home</h1>"), ("docs/index.html", "<h1>docs</h1>"),
                       ("404error.html", "<h1>lost</h1>"), ("files/a.txt", "a"), ("files/b <x>.txt", "b")):
        assert client.put(f"{base}/{c}/{name}", content=body.encode(), headers={"Content-Type": "text/html"}).status_code == 201
    with cloud.client() as visitor:
        r = visitor.get(f"{base}/{c}")
        assert r.status_code == 301 and r.headers["Location"].endswith(f"/{c}/")
        assert visitor.get(f"{base}/{c}/").text == "<h1>home</h1>"
        assert visitor.get(f"{base}/{c}/docs/").text == "<h1>docs</h1>"
        r = visitor.get(f"{base}/{c}/docs")
        assert r.status_code == 301 and r.headers["Location"].endswith("/docs/")
        r = visitor.get(f"{base}/{c}/nothing-here")
        assert r.status_code == 404 and r.text == "<h1>lost</h1>"
        assert visitor.get(f"{base}/{c}/files/").status_code == 404  # no index there, listings off
        assert client.post(f"{base}/{c}", headers={"X-Container-Meta-Web-Listings": "true"}).status_code == 204
        r = visitor.get(f"{base}/{c}/files/")
        assert r.status_code == 200 and "a.txt" in r.text and "b &lt;x&gt;.txt" in r.text
    # With a token the container is an API container again.
    assert client.get(f"{base}/{c}").status_code == 200
    assert "index.html" in client.get(f"{base}/{c}").text


def test_form_post(cloud: Cloud, alpha: Tenant):
    import hmac
    import time

    c, base = unique("c"), account(alpha)
    client = alpha.member
    key = uuid.uuid4().hex
    assert client.put(f"{base}/{c}", headers={"X-Container-Meta-Temp-URL-Key": key}).status_code == 201
    path = f"{base}/{c}/uploads/"
    expires = str(int(time.time()) + 60)

    def form(redirect: str = "", max_size: str = "100", count: str = "2", when: str = expires) -> dict[str, str]:
        message = f"{path}\n{redirect}\n{max_size}\n{count}\n{when}"
        sig = hmac.new(key.encode(), message.encode(), "sha256").hexdigest()
        fields = {"max_file_size": max_size, "max_file_count": count, "expires": when, "signature": sig}
        return {**fields, "redirect": redirect} if redirect else fields

    with cloud.client() as browser:
        r = browser.post(path, data=form(), files={"file1": ("a.txt", b"alpha", "text/plain"),
                                                   "file2": ("b.txt", b"beta", "text/plain")})
        assert r.status_code == 201, r.text
        r = browser.post(path, data=form("https://app.example/done"), files={"f": ("c.txt", b"x" * 101)})
        assert r.status_code == 303 and "status=413" in r.headers["Location"]
        r = browser.post(path, data=form("https://app.example/done"), files={"f": ("c.txt", b"gamma")})
        assert r.status_code == 303 and r.headers["Location"] == "https://app.example/done?status=201&message="
        bad = {**form(), "signature": "0" * 64}
        swift_error(browser.post(path, data=bad, files={"f": ("d.txt", b"d")}), 401, "Invalid Signature")
        past = str(int(time.time()) - 1)
        swift_error(browser.post(path, data=form(when=past), files={"f": ("d.txt", b"d")}), 401, "Expired")
        three = {f"f{i}": (f"e{i}.txt", b"e") for i in range(3)}
        swift_error(browser.post(path, data=form(), files=three), 400, "max file count")
    listed = client.get(f"{base}/{c}", params={"prefix": "uploads/"}).text.split()
    assert listed[:3] == ["uploads/a.txt", "uploads/b.txt", "uploads/c.txt"]
    assert client.get(f"{base}/{c}/uploads/a.txt").content == b"alpha"
    assert "uploads/d.txt" not in listed

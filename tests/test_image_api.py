"""The image API (Glance v2 at /image/v2) over real HTTPS against a running node.

Tests share the session ``cloud``; each makes its own projects and images and
finds them again by unique names or tags.  Image files are made by qemu-img.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.cloud import Cloud

V = "/image/v2"
K = "/identity/v3"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTETS = {"Content-Type": "application/octet-stream"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def glance_error(r: httpx.Response, status: int, *fragments: str) -> str:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == status
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    return error["message"]


class Tenant:
    """A project with a `member` user and a `reader` user, and their clients."""

    def __init__(self, cloud: Cloud, admin: httpx.Client) -> None:
        roles = {r["name"]: r["id"] for r in admin.get(K + "/roles").json()["roles"]}
        r = admin.post(K + "/projects", json={"project": {"name": unique("img-project")}})
        assert r.status_code == 201, r.text
        self.project_id = r.json()["project"]["id"]
        password = unique("pw")
        self.clients = {}
        for role in ("member", "reader"):
            name = unique(f"img-{role}")
            r = admin.post(K + "/users", json={"user": {"name": name, "password": password}})
            assert r.status_code == 201, r.text
            user_id = r.json()["user"]["id"]
            r = admin.put(f"{K}/projects/{self.project_id}/users/{user_id}/roles/{roles[role]}")
            assert r.status_code == 204, r.text
            token = cloud.token(name, password, project=None)
            body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                             "scope": {"project": {"id": self.project_id}}}}
            r = admin.post(K + "/auth/tokens", json=body)
            assert r.status_code == 201, r.text
            self.clients[role] = cloud.client(r.headers["X-Subject-Token"])
        self.member = self.clients["member"]
        self.reader = self.clients["reader"]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Iterator[httpx.Client]:
    client = cloud.client(cloud.token())
    yield client
    client.close()


@pytest.fixture(scope="module")
def alpha(cloud: Cloud, admin: httpx.Client) -> Iterator[Tenant]:
    tenant = Tenant(cloud, admin)
    yield tenant
    tenant.close()


@pytest.fixture(scope="module")
def beta(cloud: Cloud, admin: httpx.Client) -> Iterator[Tenant]:
    tenant = Tenant(cloud, admin)
    yield tenant
    tenant.close()


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", unique("img"))
    fields.setdefault("disk_format", "qcow2")
    fields.setdefault("container_format", "bare")
    r = client.post(V + "/images", json=fields)
    assert r.status_code == 201, r.text
    return r.json()


def upload(client: httpx.Client, image_id: str, data: Any) -> httpx.Response:
    return client.put(f"{V}/images/{image_id}/file", content=data, headers=OCTETS)


def show(client: httpx.Client, image_id: str) -> dict[str, Any]:
    r = client.get(f"{V}/images/{image_id}")
    assert r.status_code == 200, r.text
    return r.json()


def store_files(cloud: Cloud) -> list[str]:
    return sorted(os.listdir(cloud.data_dir / "images"))


# --- data ----------------------------------------------------------------------------------
@pytest.mark.parametrize("disk_format", ["qcow2", "raw"])
def test_upload_download_round_trip(cloud: Cloud, alpha: Tenant, tmp_path: Path, disk_format: str):
    path = tmp_path / f"guest.{disk_format}"
    qemu_img("create", "-f", disk_format, str(path), "16M")
    if disk_format == "raw":
        path.write_bytes(os.urandom(1 << 20) + b"\0" * (15 << 20))
    data = path.read_bytes()
    image = create(alpha.member, disk_format=disk_format)
    assert image["status"] == "queued" and image["size"] is None and image["checksum"] is None
    assert alpha.member.get(f"{V}/images/{image['id']}/file").status_code == 204  # no data yet

    r = upload(alpha.member, image["id"], data)
    assert r.status_code == 204, r.text
    stored = show(alpha.member, image["id"])
    assert stored["status"] == "active"
    assert stored["size"] == len(data)
    assert stored["checksum"] == hashlib.md5(data).hexdigest()
    assert stored["os_hash_algo"] == "sha512"
    assert stored["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert stored["virtual_size"] == 16 << 20
    assert image["id"] in store_files(cloud)

    r = alpha.reader.get(f"{V}/images/{image['id']}/file")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Content-MD5"] == stored["checksum"]
    assert r.headers["Content-Type"] == "application/octet-stream"
    # A second upload to an active image is refused; readers cannot upload at all.
    glance_error(upload(alpha.member, image["id"], data), 409, "queued")
    other = create(alpha.member)
    glance_error(upload(alpha.reader, other["id"], data), 403)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_large_upload_and_download_stream_without_growing_memory(cloud: Cloud, alpha: Tenant, tmp_path: Path):
    size = 200 << 20
    path = tmp_path / "big.raw"
    qemu_img("create", "-f", "raw", str(path), str(size))  # sparse: costs no disk here
    image = create(alpha.member, disk_format="raw")
    pid = cloud.proc.pid
    before = _rss_kib(pid)
    with path.open("rb") as f:
        r = alpha.member.put(f"{V}/images/{image['id']}/file", content=f, headers=OCTETS, timeout=120)
    assert r.status_code == 204, r.text
    after_upload = _rss_kib(pid)

    digest, received = hashlib.sha512(), 0
    with alpha.member.stream("GET", f"{V}/images/{image['id']}/file", timeout=120) as r:
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == size
        for chunk in r.iter_bytes():
            digest.update(chunk)
            received += len(chunk)
    after_download = _rss_kib(pid)
    stored = show(alpha.member, image["id"])
    assert received == size == stored["size"] == stored["virtual_size"]
    assert digest.hexdigest() == stored["os_hash_value"]
    # 200 MiB went through; the server holds a few MiB of buffers (measured: +3 to +13 MiB), not the image.
    assert after_upload - before < 32 << 10, (before, after_upload)
    assert after_download - before < 32 << 10, (before, after_download)
    assert alpha.member.delete(f"{V}/images/{image['id']}").status_code == 204
    assert image["id"] not in store_files(cloud)


def _refused(cloud: Cloud, client: httpx.Client, image: dict[str, Any], data: bytes, *fragments: str) -> None:
    glance_error(upload(client, image["id"], data), 400, *fragments)
    after = show(client, image["id"])
    assert after["status"] == "queued"
    assert after["size"] is None and after["checksum"] is None and after["virtual_size"] is None
    assert client.get(f"{V}/images/{image['id']}/file").status_code == 204
    assert not [f for f in store_files(cloud) if image["id"] in f]  # neither the data nor a temp file


def test_upload_that_is_not_its_disk_format_is_refused(cloud: Cloud, alpha: Tenant, tmp_path: Path):
    image = create(alpha.member, disk_format="qcow2")
    _refused(cloud, alpha.member, image, os.urandom(256 << 10), "qcow2")

    qcow2 = tmp_path / "real.qcow2"
    qemu_img("create", "-f", "qcow2", str(qcow2), "8M")
    raw = create(alpha.member, disk_format="raw")
    _refused(cloud, alpha.member, raw, qcow2.read_bytes(), "is not raw", "qcow2")

    iso = create(alpha.member, disk_format="iso")
    _refused(cloud, alpha.member, iso, b"\0" * (64 << 10), "iso")

    # After a refusal the image takes a good upload.
    assert upload(alpha.member, image["id"], qcow2.read_bytes()).status_code == 204
    assert show(alpha.member, image["id"])["status"] == "active"


def test_qcow2_with_backing_file_or_data_file_is_refused(cloud: Cloud, alpha: Tenant, tmp_path: Path):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-f", "qcow2", str(base), "8M")
    child = tmp_path / "child.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", str(child), "8M")
    _refused(cloud, alpha.member, create(alpha.member), child.read_bytes(), "backing file")

    external = tmp_path / "external.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}", str(external), "8M")
    _refused(cloud, alpha.member, create(alpha.member), external.read_bytes(), "external data file")


def test_upload_needs_formats_and_octet_stream(alpha: Tenant):
    image = create(alpha.member, disk_format=None, container_format=None)
    glance_error(upload(alpha.member, image["id"], b"x" * 512), 400, "disk_format")
    r = alpha.member.put(f"{V}/images/{image['id']}/file", content=b"{}", headers={"Content-Type": "application/json"})
    glance_error(r, 415)
    assert show(alpha.member, image["id"])["status"] == "queued"
    sized = create(alpha.member)
    r = alpha.member.put(f"{V}/images/{sized['id']}/file", content=_small_qcow2(),
                         headers={**OCTETS, "X-OpenStack-Image-Size": str(1 << 60)})
    glance_error(r, 413, "storage media is full")
    assert show(alpha.member, sized["id"])["status"] == "queued"


# --- metadata ----------------------------------------------------------------------------------
def test_create_defaults_and_read_only_attributes(alpha: Tenant):
    image = create(alpha.member, tags=["b", "a", "b"], hw_disk_bus="virtio", min_ram=256)
    assert image["visibility"] == "shared" and image["protected"] is False and image["os_hidden"] is False
    assert image["owner"] == alpha.project_id
    assert image["tags"] == ["a", "b"] and image["hw_disk_bus"] == "virtio" and image["min_ram"] == 256
    assert image["self"] == f"/v2/images/{image['id']}" and image["schema"] == "/v2/schemas/image"
    given = str(uuid.uuid4())
    assert create(alpha.member, id=given)["id"] == given
    r = alpha.member.post(V + "/images", json={"id": given, "name": "again"})
    glance_error(r, 409)
    glance_error(alpha.member.post(V + "/images", json={"name": "x", "status": "active"}), 403, "read-only")
    glance_error(alpha.member.post(V + "/images", json={"name": "x", "size": 5}), 403, "read-only")
    glance_error(alpha.member.post(V + "/images", json={"disk_format": "exe"}), 400)
    glance_error(alpha.member.post(V + "/images", json={"custom": 5}), 400)
    glance_error(alpha.member.post(V + "/images", json={"visibility": "public"}), 403, "publicize_image")
    glance_error(alpha.reader.post(V + "/images", json={"name": "x"}), 403)
    glance_error(alpha.member.get(f"{V}/images/{uuid.uuid4()}"), 404)
    glance_error(alpha.member.get(f"{V}/images/not-a-uuid"), 404)


def test_json_patch_updates(alpha: Tenant):
    image = create(alpha.member, disk_format=None, foo="1", bar="2")
    ops = [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/baz", "value": "3"},
        {"op": "replace", "path": "/foo", "value": "10"},
        {"op": "remove", "path": "/bar"},
        {"op": "replace", "path": "/min_disk", "value": 2},
        {"op": "replace", "path": "/protected", "value": True},
        {"op": "replace", "path": "/os_hidden", "value": True},
        {"op": "replace", "path": "/tags", "value": ["t2", "t1"]},
        {"op": "replace", "path": "/disk_format", "value": "raw"},
        {"op": "replace", "path": "/visibility", "value": "private"},
    ]
    r = alpha.member.patch(f"{V}/images/{image['id']}", json=ops, headers=PATCH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "renamed" and body["foo"] == "10" and body["baz"] == "3" and "bar" not in body
    assert body["min_disk"] == 2 and body["protected"] is True and body["os_hidden"] is True
    assert body["tags"] == ["t1", "t2"] and body["disk_format"] == "raw" and body["visibility"] == "private"
    assert show(alpha.member, image["id"]) == body

    url = f"{V}/images/{image['id']}"
    glance_error(alpha.member.patch(url, json=ops, headers={"Content-Type": "application/json"}), 415)
    glance_error(alpha.member.patch(url, json=[{"op": "replace", "path": "/nope", "value": "1"}], headers=PATCH), 409)
    glance_error(alpha.member.patch(url, json=[{"op": "remove", "path": "/name"}], headers=PATCH), 403)
    glance_error(alpha.member.patch(url, json=[{"op": "replace", "path": "/checksum", "value": "x"}], headers=PATCH),
                 403, "read-only")
    glance_error(alpha.member.patch(url, json=[{"op": "replace", "path": "/min_ram", "value": "lots"}], headers=PATCH), 400)
    glance_error(alpha.member.patch(url, json=[{"op": "replace", "path": "/visibility", "value": "public"}],
                                    headers=PATCH), 403, "publicize_image")
    glance_error(alpha.reader.patch(url, json=[{"op": "add", "path": "/x", "value": "1"}], headers=PATCH), 403)
    # A refused patch changed nothing, not even part of it.
    r = alpha.member.patch(url, json=[{"op": "add", "path": "/new", "value": "1"},
                                      {"op": "remove", "path": "/absent"}], headers=PATCH)
    glance_error(r, 409)
    assert show(alpha.member, image["id"]) == body


def test_json_patch_in_the_v2_0_dialect_and_reserved_properties(alpha: Tenant):
    """Tempest patches with the v2.0 media type ({"replace": "/name", ...}); os_glance_* is Glance's own."""
    image = create(alpha.member, foo="1")
    url = f"{V}/images/{image['id']}"
    v20 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}
    r = alpha.member.patch(url, json=[{"replace": "/name", "value": "renamed"}, {"remove": "/foo"}], headers=v20)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed" and "foo" not in r.json()
    glance_error(alpha.member.patch(url, json=[{"op": "replace", "path": "/name", "value": "x"}], headers=v20),
                 400, "exactly one member")
    glance_error(alpha.member.patch(url, json=[{"add": "/os_glance_foo", "value": "bar"}], headers=v20),
                 403, "reserved")
    glance_error(alpha.member.post(V + "/images", json={"name": "x", "os_glance_foo": "bar"}), 403, "reserved")
    assert show(alpha.member, image["id"]) == r.json()


def test_admin_on_any_project_names_owners_and_publishes(cloud: Cloud, admin: httpx.Client, alpha: Tenant):
    """Tempest's dynamic admin: the admin role on a fresh project administers images (the persona
    rule lives in AuthContext; the image service only asks it)."""
    roles = {r["name"]: r["id"] for r in admin.get(K + "/roles").json()["roles"]}
    project = admin.post(K + "/projects", json={"project": {"name": unique("img-admins")}}).json()["project"]
    name, password = unique("img-admin"), unique("pw")
    user = admin.post(K + "/users", json={"user": {"name": name, "password": password}}).json()["user"]
    assert admin.put(f"{K}/projects/{project['id']}/users/{user['id']}/roles/{roles['admin']}").status_code == 204
    with cloud.client(cloud.token(name, password, project=project["name"])) as other_admin:
        owner = uuid.uuid4().hex  # any owner, even one that is no project here (as Glance allows)
        image = create(other_admin, owner=owner)
        assert image["owner"] == owner
        r = other_admin.patch(f"{V}/images/{image['id']}", json=[{"op": "replace", "path": "/owner",
                                                                    "value": alpha.project_id}], headers=PATCH)
        assert r.status_code == 200 and r.json()["owner"] == alpha.project_id, r.text
        public = create(other_admin, visibility="public")
        listed = alpha.reader.get(V + "/images", params={"limit": 1000}).json()["images"]
        assert public["id"] in {i["id"] for i in listed}
    glance_error(alpha.member.post(V + "/images", json={"name": "x", "owner": owner}), 403, "another owner")


def test_tags(alpha: Tenant):
    image = create(alpha.member)
    tag = unique("tag")
    url = f"{V}/images/{image['id']}/tags"
    assert alpha.member.put(f"{url}/{tag}").status_code == 204
    assert alpha.member.put(f"{url}/{tag}").status_code == 204  # idempotent
    assert alpha.member.put(f"{url}/second").status_code == 204
    assert show(alpha.member, image["id"])["tags"] == sorted([tag, "second"])
    listed = alpha.member.get(V + "/images", params={"tag": tag}).json()["images"]
    assert [i["id"] for i in listed] == [image["id"]]
    assert alpha.member.get(V + "/images", params=[("tag", tag), ("tag", "absent")]).json()["images"] == []
    assert alpha.member.delete(f"{url}/{tag}").status_code == 204
    glance_error(alpha.member.delete(f"{url}/{tag}"), 404)
    glance_error(alpha.reader.put(f"{url}/{tag}"), 403)
    assert show(alpha.member, image["id"])["tags"] == ["second"]


def test_protected_image_cannot_be_deleted(cloud: Cloud, alpha: Tenant):
    image = create(alpha.member, protected=True)
    assert upload(alpha.member, image["id"], _small_qcow2()).status_code == 204
    glance_error(alpha.member.delete(f"{V}/images/{image['id']}"), 403, "protected")
    assert image["id"] in store_files(cloud)
    r = alpha.member.patch(f"{V}/images/{image['id']}", json=[{"op": "replace", "path": "/protected", "value": False}],
                           headers=PATCH)
    assert r.status_code == 200
    glance_error(alpha.reader.delete(f"{V}/images/{image['id']}"), 403)
    assert alpha.member.delete(f"{V}/images/{image['id']}").status_code == 204
    glance_error(alpha.member.get(f"{V}/images/{image['id']}"), 404)
    assert image["id"] not in store_files(cloud)


_QCOW2: list[bytes] = []


def _small_qcow2() -> bytes:
    if not _QCOW2:
        path = Path(f"/tmp/cloudbox-test-{uuid.uuid4().hex}.qcow2")
        qemu_img("create", "-f", "qcow2", str(path), "4M")
        _QCOW2.append(path.read_bytes())
        path.unlink()
    return _QCOW2[0]


def test_deactivate_and_reactivate(admin: httpx.Client, alpha: Tenant):
    image = create(alpha.member)
    url = f"{V}/images/{image['id']}"
    glance_error(alpha.member.post(url + "/actions/deactivate"), 400, "queued")
    assert upload(alpha.member, image["id"], _small_qcow2()).status_code == 204
    assert alpha.member.post(url + "/actions/deactivate").status_code == 204
    assert show(alpha.member, image["id"])["status"] == "deactivated"
    glance_error(alpha.member.get(url + "/file"), 403, "deactivated")
    assert admin.get(url + "/file").status_code == 200  # admins still may read it
    glance_error(alpha.reader.post(url + "/actions/reactivate"), 403)
    assert alpha.member.post(url + "/actions/reactivate").status_code == 204
    assert alpha.member.get(url + "/file").content == _small_qcow2()


# --- sharing -------------------------------------------------------------------------------------
def _listed(client: httpx.Client, **params: Any) -> set[str]:
    r = client.get(V + "/images", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return {i["id"] for i in r.json()["images"]}


def test_visibility_and_members_across_projects(admin: httpx.Client, alpha: Tenant, beta: Tenant):
    private = create(alpha.member, visibility="private")
    shared = create(alpha.member)
    community = create(alpha.member, visibility="community")
    public = create(admin, visibility="public")
    a, b = alpha.member, beta.member

    # The owner sees its own images (community ones too); the other project sees public only.
    assert {private["id"], shared["id"], community["id"], public["id"]} <= _listed(a)
    seen_by_b = _listed(b)
    assert public["id"] in seen_by_b
    assert not {private["id"], shared["id"], community["id"]} & seen_by_b
    glance_error(b.get(f"{V}/images/{private['id']}"), 404)
    glance_error(b.get(f"{V}/images/{shared['id']}"), 404)
    # Community images: shown by id, listed only when asked for.
    assert show(b, community["id"])["visibility"] == "community"
    assert community["id"] in _listed(b, visibility="community")
    assert community["id"] in _listed(b, visibility="all")
    assert _listed(b, visibility="private") & {private["id"]} == set()
    assert private["id"] in _listed(a, visibility="private")

    # Sharing: members only for shared images; the member sees the image, lists it once accepted.
    members = f"{V}/images/{shared['id']}/members"
    glance_error(a.post(f"{V}/images/{private['id']}/members", json={"member": beta.project_id}), 403, "shared")
    glance_error(alpha.reader.post(members, json={"member": beta.project_id}), 403)
    glance_error(b.post(members, json={"member": beta.project_id}), 404)
    r = a.post(members, json={"member": beta.project_id})
    assert r.status_code == 200, r.text
    member = r.json()
    assert member["status"] == "pending" and member["member_id"] == beta.project_id
    assert member["image_id"] == shared["id"] and member["schema"] == "/v2/schemas/member"
    glance_error(a.post(members, json={"member": beta.project_id}), 409)

    assert show(b, shared["id"])["id"] == shared["id"]
    assert shared["id"] not in _listed(b)
    assert shared["id"] in _listed(b, member_status="pending")
    assert shared["id"] in _listed(b, member_status="all")
    assert [m["member_id"] for m in b.get(members).json()["members"]] == [beta.project_id]

    glance_error(a.put(f"{members}/{beta.project_id}", json={"status": "accepted"}), 403)  # not the owner's call
    glance_error(beta.reader.put(f"{members}/{beta.project_id}", json={"status": "accepted"}), 403)
    glance_error(b.put(f"{members}/{beta.project_id}", json={"status": "maybe"}), 400)
    r = b.put(f"{members}/{beta.project_id}", json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert shared["id"] in _listed(b)
    assert shared["id"] in _listed(b, visibility="shared")
    assert b.get(f"{members}/{beta.project_id}").json()["status"] == "accepted"

    # A member reads but does not write the image.
    glance_error(b.patch(f"{V}/images/{shared['id']}", json=[{"op": "add", "path": "/x", "value": "1"}],
                         headers=PATCH), 403)
    glance_error(b.delete(f"{V}/images/{shared['id']}"), 403)
    glance_error(b.delete(f"{members}/{beta.project_id}"), 403)

    r = b.put(f"{members}/{beta.project_id}", json={"status": "rejected"})
    assert r.status_code == 200
    assert shared["id"] not in _listed(b)
    assert shared["id"] in _listed(b, member_status="rejected")

    assert a.delete(f"{members}/{beta.project_id}").status_code == 204
    glance_error(b.get(f"{V}/images/{shared['id']}"), 404)
    assert a.get(members).json()["members"] == []

    # The cloud admin sees everything.
    assert {private["id"], shared["id"], community["id"], public["id"]} <= _listed(admin)
    assert show(admin, private["id"])["owner"] == alpha.project_id


# --- lists ----------------------------------------------------------------------------------------
def test_paging_sorting_and_filters(alpha: Tenant):
    tag = unique("page")
    made = [create(alpha.member, name=f"{tag}-{i}", tags=[tag], min_ram=i, disk_format="raw" if i % 2 else "qcow2")
            for i in range(7)]
    hidden = create(alpha.member, name=f"{tag}-hidden", tags=[tag], os_hidden=True)

    seen, url, pages = [], f"{V}/images?tag={tag}&limit=3&sort_key=name&sort_dir=asc", 0
    while url:
        r = alpha.member.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["schema"] == "/v2/schemas/images" and body["first"].startswith("/v2/images?")
        assert len(body["images"]) <= 3
        seen += [i["name"] for i in body["images"]]
        url = V + body["next"][len("/v2"):] if "next" in body else None  # as openstacksdk follows it
        pages += 1
    assert seen == sorted(i["name"] for i in made) and pages == 3

    newest_first = [i["id"] for i in alpha.member.get(V + "/images", params={"tag": tag}).json()["images"]]
    assert set(newest_first) == {i["id"] for i in made}
    by_ram = alpha.member.get(V + "/images", params={"tag": tag, "sort": "min_ram:desc"}).json()["images"]
    assert [i["min_ram"] for i in by_ram] == [6, 5, 4, 3, 2, 1, 0]
    raw = alpha.member.get(V + "/images", params={"tag": tag, "disk_format": "raw"}).json()["images"]
    assert sorted(i["min_ram"] for i in raw) == [1, 3, 5]
    names = alpha.member.get(V + "/images", params={"tag": tag, "name": f"in:{tag}-1,{tag}-2"}).json()["images"]
    assert sorted(i["name"] for i in names) == [f"{tag}-1", f"{tag}-2"]
    assert _listed(alpha.member, tag=tag, os_hidden="true") == {hidden["id"]}
    assert _listed(alpha.member, tag=tag, status="active") == set()
    assert _listed(alpha.member, tag=tag, size_min=1) == set()
    assert _listed(alpha.member, tag=tag, owner=alpha.project_id) == {i["id"] for i in made}

    glance_error(alpha.member.get(V + "/images", params={"marker": str(uuid.uuid4())}), 400, "Marker")
    glance_error(alpha.member.get(V + "/images", params={"sort_key": "secret"}), 400)
    glance_error(alpha.member.get(V + "/images", params={"limit": "many"}), 400)


def test_property_filter_and_size_filters(alpha: Tenant):
    prop = unique("v")
    image = create(alpha.member, role=prop)
    assert upload(alpha.member, image["id"], _small_qcow2()).status_code == 204
    assert _listed(alpha.member, role=prop) == {image["id"]}
    size = len(_small_qcow2())
    assert _listed(alpha.member, role=prop, size_min=size, size_max=size) == {image["id"]}
    assert _listed(alpha.member, role=prop, size_min=size + 1) == set()
    quoted = create(alpha.member, **{"it's": prop})
    assert _listed(alpha.member, **{"it's": prop}) == {quoted["id"]}  # names are data, never SQL
    glance_error(alpha.member.get(V + "/images", params={'a"b': "1"}), 400)


# --- documents ----------------------------------------------------------------------------------------
def test_versions_and_schemas(cloud: Cloud, alpha: Tenant):
    with cloud.client() as anon:
        for path in ("/image", "/image/", "/image/v2", "/image/v2/"):
            r = anon.get(path)
            assert r.status_code == 300, (path, r.text)
            versions = r.json()["versions"]
            current = [v for v in versions if v["status"] == "CURRENT"]
            assert len(current) == 1 and current[0]["id"].startswith("v2.")
            assert current[0]["links"][0]["href"] == cloud.url + "/image/v2/"
    for name in ("image", "images", "member", "members"):
        r = alpha.reader.get(f"{V}/schemas/{name}")
        assert r.status_code == 200 and r.json()["name"] == name
    assert "disk_format" in alpha.reader.get(V + "/schemas/image").json()["properties"]
    glance_error(alpha.reader.get(V + "/schemas/nope"), 404)
    with cloud.client() as anon:
        glance_error(anon.get(V + "/images"), 401)


def test_keystoneauth_discovers_the_image_endpoint(cloud: Cloud):
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = v3.Password(auth_url=cloud.auth_url, username="admin", password=cloud.password, project_name="admin",
                       user_domain_id="default", project_domain_id="default")
    sess = ks_session.Session(auth=auth, verify=cloud.ca)
    data = sess.get_endpoint_data(service_type="image", interface="public", min_version="2", max_version="2.latest")
    assert data.api_version[0] == 2
    assert data.url.rstrip("/") == cloud.url + "/image/v2"

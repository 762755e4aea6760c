"""Glance's interoperable image import over real HTTPS against a running node: discovery, staging,
glance-direct and copy-image imports, the tasks that report on them, and refusals that change nothing."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from cloudbox.api.responses import doc_for
from tests.cloud import Cloud
from tests.test_image_api import (OCTETS, V, Tenant, _rss_kib, admin, create, glance_error, qemu_img, show,
                                  store_files, upload)
from tests.test_image_api import alpha as tenant

__all__ = ["admin", "tenant"]  # fixtures shared with the image API's tests


def stage(client: httpx.Client, image_id: str, data: Any) -> httpx.Response:
    return client.put(f"{V}/images/{image_id}/stage", content=data, headers=OCTETS)


def start(client: httpx.Client, image_id: str, name: str = "glance-direct", **fields: Any) -> httpx.Response:
    return client.post(f"{V}/images/{image_id}/import", json={"method": {"name": name}, **fields})


def wait_image(client: httpx.Client, image_id: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    """The image once ``done(image)`` holds (an import runs in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        image = show(client, image_id)
        if done(image):
            return image
        assert time.monotonic() < deadline, f"image {image_id} never got there: {image}"
        time.sleep(0.05)


def documented(method: str, path: str, r: httpx.Response) -> None:
    body = doc_for(method, V + path).responses[r.status_code]
    jsonschema.validate(r.json(), body, cls=jsonschema.Draft202012Validator)


def test_discovery_says_what_this_cloud_offers(tenant: Tenant):
    r = tenant.reader.get(f"{V}/info/import")
    assert r.status_code == 200, r.text
    documented("GET", "/info/import", r)
    methods = r.json()["import-methods"]
    assert methods["value"] == ["glance-direct", "copy-image"]
    assert "web-download is off" in methods["description"] and "outside networks" in methods["description"]
    r = tenant.reader.get(f"{V}/info/stores")
    documented("GET", "/info/stores", r)
    assert [s["id"] for s in r.json()["stores"]] == ["local"] and r.json()["stores"][0]["default"] is True
    r = tenant.member.post(V + "/images", json={"name": "x", "disk_format": "raw", "container_format": "bare"})
    assert r.headers["OpenStack-image-import-methods"] == "glance-direct,copy-image"
    assert r.headers["OpenStack-image-store-ids"] == "local"


def test_glance_direct_stages_then_imports(cloud: Cloud, tenant: Tenant, tmp_path: Path):
    path = tmp_path / "disk.qcow2"
    qemu_img("create", "-f", "qcow2", str(path), "16M")
    data = path.read_bytes()
    image = create(tenant.member, ramdisk_id="00000000-1111-2222-3333-444455556666")
    url = f"{V}/images/{image['id']}"
    glance_error(start(tenant.member, image["id"]), 409, "staged")  # nothing staged yet
    assert stage(tenant.member, image["id"], data).status_code == 204
    staged = show(tenant.member, image["id"])
    assert staged["status"] == "uploading" and staged["os_glance_stage_host"] and "stores" not in staged
    glance_error(stage(tenant.member, image["id"], data), 409)
    glance_error(upload(tenant.member, image["id"], data), 409)
    glance_error(start(tenant.reader, image["id"]), 403)

    r = start(tenant.member, image["id"])
    assert r.status_code == 202, r.text
    active = wait_image(tenant.member, image["id"], lambda i: i["status"] == "active")
    assert active["stores"] == "local" and active["size"] == len(data) and active["virtual_size"] == 16 << 20
    assert active["checksum"] == hashlib.md5(data).hexdigest()
    assert active["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert active["os_glance_importing_to_stores"] == "" and active["os_glance_failed_import"] == ""
    assert "os_glance_import_task" not in active and "os_glance_stage_host" not in active
    assert tenant.member.get(f"{url}/file").content == data
    assert store_files(cloud).count(image["id"]) == 1 and not [f for f in store_files(cloud) if f.startswith(".")]

    tasks = tenant.member.get(f"{url}/tasks")
    documented("GET", "/images/{image_id}/tasks", tasks)
    [task] = tasks.json()["tasks"]
    assert task["status"] == "success" and task["type"] == "api_image_import"
    assert task["request_id"] == r.headers["x-openstack-request-id"]
    assert task["input"]["import_req"]["method"]["name"] == "glance-direct" and task["image_id"] == image["id"]
    assert task["expires_at"] > task["updated_at"]
    shown = tenant.member.get(f"{V}/tasks/{task['id']}")
    documented("GET", "/tasks/{task_id}", shown)
    assert shown.json() == task
    listed = tenant.reader.get(f"{V}/tasks", params={"status": "success", "limit": 1000})
    documented("GET", "/tasks", listed)
    assert task["id"] in {t["id"] for t in listed.json()["tasks"]}
    assert "input" not in listed.json()["tasks"][0]


def test_a_refused_import_queues_the_image_again_and_drops_the_data(cloud: Cloud, tenant: Tenant):
    image = create(tenant.member, disk_format="qcow2")
    assert stage(tenant.member, image["id"], os.urandom(64 << 10)).status_code == 204
    assert start(tenant.member, image["id"]).status_code == 202
    failed = wait_image(tenant.member, image["id"], lambda i: i["status"] == "queued")
    assert failed["os_glance_failed_import"] == "local" and failed["os_glance_importing_to_stores"] == ""
    assert failed["size"] is None and "os_glance_stage_host" not in failed
    [task] = tenant.member.get(f"{V}/images/{image['id']}/tasks").json()["tasks"]
    assert task["status"] == "failure" and "qcow2" in task["message"]
    assert not [f for f in store_files(cloud) if image["id"] in f]
    # Queued again, it takes a stage and an import anew.
    assert stage(tenant.member, image["id"], os.urandom(1024)).status_code == 204
    assert show(tenant.member, image["id"])["status"] == "uploading"
    assert tenant.member.delete(f"{V}/images/{image['id']}").status_code == 204
    assert not [f for f in store_files(cloud) if image["id"] in f]  # the staged data went with it


def test_bad_import_requests_change_nothing(admin: httpx.Client, tenant: Tenant):
    image = create(tenant.member, disk_format="raw")
    assert stage(tenant.member, image["id"], os.urandom(4096)).status_code == 204
    for method, fields, status, fragment in (
            ("web-download", {"method": {"name": "web-download", "uri": "http://example.com/x"}}, 400, "outside"),
            ("glance-download", {}, 400, "not enabled"), ("bogus", {}, 400, "Unknown import method"),
            ("glance-direct", {"stores": ["elsewhere"]}, 409, "Unknown store"),
            ("glance-direct", {"stores": ["local"], "all_stores": True}, 400, "all_stores")):
        glance_error(start(tenant.member, image["id"], method, **fields), status, fragment)
    glance_error(tenant.member.post(f"{V}/images/{image['id']}/import", json={"method": {}}), 400)
    glance_error(tenant.member.post(f"{V}/images/{image['id']}/import", json={}), 400)
    glance_error(start(tenant.member, image["id"], "copy-image"), 403, "copy_image")
    glance_error(start(admin, image["id"], "copy-image"), 409, "only active images")
    assert show(tenant.member, image["id"])["status"] == "uploading"
    assert tenant.member.get(f"{V}/images/{image['id']}/tasks").json()["tasks"] == []
    r = tenant.member.put(f"{V}/images/{image['id']}/stage", content=b"x", headers={"Content-Type": "text/plain"})
    glance_error(r, 415)


def test_copy_image_finds_every_store_holding_the_image(admin: httpx.Client, tenant: Tenant):
    image = create(tenant.member, disk_format="raw")
    assert upload(tenant.member, image["id"], os.urandom(2048)).status_code == 204
    r = start(admin, image["id"], "copy-image", all_stores=True, all_stores_must_succeed=False)
    assert r.status_code == 202, r.text
    done = wait_image(admin, image["id"], lambda i: i.get("os_glance_importing_to_stores") == ""
                      and "os_glance_import_task" not in i)
    assert done["os_glance_failed_import"] == "" and done["status"] == "active" and done["stores"] == "local"
    [task] = admin.get(f"{V}/images/{image['id']}/tasks").json()["tasks"]
    assert task["status"] == "success" and task["input"]["backend"] == []


def test_the_task_api_refuses_imports_from_urls(admin: httpx.Client, tenant: Tenant):
    task = {"type": "import", "input": {"import_from": "http://example.com/cirros.qcow2", "import_from_format": "qcow2",
                                        "image_properties": {"disk_format": "qcow2", "container_format": "bare"}}}
    glance_error(admin.post(f"{V}/tasks", json=task), 400, "outside networks")
    glance_error(tenant.member.post(f"{V}/tasks", json=task), 403)
    glance_error(admin.post(f"{V}/tasks", json={**task, "type": "export"}), 400, "Invalid type")
    glance_error(admin.post(f"{V}/tasks", json={"type": "import"}), 400)
    glance_error(tenant.member.get(f"{V}/tasks/00000000-0000-0000-0000-000000000000"), 404)
    glance_error(tenant.member.get(f"{V}/tasks", params={"status": "done"}), 400)
    for name in ("task", "tasks"):
        assert tenant.reader.get(f"{V}/schemas/{name}").json()["name"] == name


@pytest.mark.parametrize("size", [160 << 20])
def test_a_large_stage_streams_without_growing_memory(cloud: Cloud, tenant: Tenant, tmp_path: Path, size: int):
    path = tmp_path / "big.raw"
    qemu_img("create", "-f", "raw", str(path), str(size))  # sparse: costs no disk here
    image = create(tenant.member, disk_format="raw")
    before = _rss_kib(cloud.proc.pid)
    with path.open("rb") as f:
        assert stage(tenant.member, image["id"], f).status_code == 204
    assert start(tenant.member, image["id"]).status_code == 202
    active = wait_image(tenant.member, image["id"], lambda i: i["status"] == "active", timeout=120)
    assert active["size"] == size and active["virtual_size"] == size
    assert _rss_kib(cloud.proc.pid) - before < 32 << 10  # buffers, not the data
    assert tenant.member.delete(f"{V}/images/{image['id']}").status_code == 204

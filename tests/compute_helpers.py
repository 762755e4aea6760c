"""Shared steps of the compute tests: images, projects and users, waiting for server states."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.cloud import Cloud

LATEST = {"OpenStack-API-Version": "compute 2.96"}


def make_qcow2(path: Path, size: str = "64M") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def upload_image(client: httpx.Client, path: Path, name: str | None = None, disk_format: str = "qcow2",
                 visibility: str = "private") -> dict[str, Any]:
    r = client.post("/image/v2/images", json={"name": name or f"img-{uuid.uuid4().hex[:8]}",
                                              "disk_format": disk_format, "container_format": "bare",
                                              "visibility": visibility})
    assert r.status_code == 201, r.text
    image = r.json()
    with open(path, "rb") as f:
        r = client.put(f"/image/v2/images/{image['id']}/file", content=f.read(),
                       headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    return client.get(f"/image/v2/images/{image['id']}").json()


def new_project_user(cloud: Cloud, admin: httpx.Client, role: str = "member") -> tuple[str, str, str]:
    """A project and a user holding ``role`` on it; returns (project id, user name, token)."""
    suffix = uuid.uuid4().hex[:8]
    project = admin.post("/identity/v3/projects", json={"project": {"name": f"p-{suffix}"}}).json()["project"]
    user = admin.post("/identity/v3/users", json={"user": {"name": f"u-{suffix}", "password": "pw"}}).json()["user"]
    roles = {r["name"]: r["id"] for r in admin.get("/identity/v3/roles").json()["roles"]}
    r = admin.put(f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{roles[role]}")
    assert r.status_code == 204
    return project["id"], user["name"], cloud.token(user["name"], "pw", project=project["name"])


def boot(client: httpx.Client, image_id: str, flavor: str = "42", name: str | None = None,
         **extra: Any) -> dict[str, Any]:
    body = {"server": {"name": name or f"s-{uuid.uuid4().hex[:8]}", "imageRef": image_id, "flavorRef": flavor,
                       "networks": "auto", **extra}}
    r = client.post("/compute/v2.1/servers", json=body, headers=LATEST)
    assert r.status_code == 202, r.text
    return r.json()["server"]


def wait_server(client: httpx.Client, server_id: str, statuses: set[str], timeout: float = 120,
                task_done: bool = True) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    server: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = client.get(f"/compute/v2.1/servers/{server_id}", headers=LATEST)
        assert r.status_code == 200, r.text
        server = r.json()["server"]
        if server["status"] in statuses and (not task_done or server["OS-EXT-STS:task_state"] is None):
            return server
        if server["status"] == "ERROR" and "ERROR" not in statuses:
            raise AssertionError(f"server {server_id} went to ERROR: {server.get('fault')}")
        time.sleep(0.2)
    raise AssertionError(f"server {server_id} stayed {server.get('status')}/{server.get('OS-EXT-STS:task_state')}, "
                         f"wanted {statuses}: {server.get('fault')}")


def wait_gone(client: httpx.Client, server_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(f"/compute/v2.1/servers/{server_id}").status_code == 404:
            return
        time.sleep(0.2)
    raise AssertionError(f"server {server_id} was not deleted")

"""Shared steps of the compute tests: images, projects and users, waiting for server states."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.cloud import Cloud, GaveUp, wait_for

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


def member_with_network(cloud: Cloud, name: str, cidr: str) -> tuple[str, httpx.Client, dict[str, Any]]:
    """A new project's member (``new_project_user``) with a network ``name`` and an IPv4 subnet
    ``cidr`` on it; returns (project id, the member's client, the network)."""
    with cloud.client(cloud.token()) as admin:
        project, _user, token = new_project_user(cloud, admin)
    member = cloud.client(token)
    net = member.post("/network/v2.0/networks", json={"network": {"name": name}}).json()["network"]
    assert member.post("/network/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": cidr}}).status_code == 201
    return project, member, net


def boot(client: httpx.Client, image_id: str, flavor: str = "42", name: str | None = None,
         **extra: Any) -> dict[str, Any]:
    body = {"server": {"name": name or f"s-{uuid.uuid4().hex[:8]}", "imageRef": image_id, "flavorRef": flavor,
                       "networks": "auto", **extra}}
    r = client.post("/compute/v2.1/servers", json=body, headers=LATEST)
    assert r.status_code == 202, r.text
    return r.json()["server"]


def wait_server(client: httpx.Client, server_id: str, statuses: set[str], timeout: float = 120,
                task_done: bool = True) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def settled() -> dict[str, Any] | None:
        r = client.get(f"/compute/v2.1/servers/{server_id}", headers=LATEST)
        if r.status_code != 200:
            raise GaveUp(f"server {server_id}: {r.status_code} {r.text}")
        seen.update(server := r.json()["server"])
        if server["status"] in statuses and (not task_done or server["OS-EXT-STS:task_state"] is None):
            return server
        if server["status"] == "ERROR" and "ERROR" not in statuses:
            raise GaveUp(f"server {server_id} went to ERROR: {server.get('fault')}")
        return None

    return wait_for(settled, timeout, lambda: f"server {server_id} to be {statuses}; it stayed "
                    f"{seen.get('status')}/{seen.get('OS-EXT-STS:task_state')}: {seen.get('fault')}")


def wait_gone(client: httpx.Client, server_id: str, timeout: float = 60) -> None:
    wait_for(lambda: client.get(f"/compute/v2.1/servers/{server_id}").status_code == 404, timeout,
             f"server {server_id} to be deleted")


def boot_ten_with_room_for_eight(cloud: Cloud, admin: httpx.Client, image_id: str,
                                 timeout: float = 120) -> list[dict[str, Any]]:
    """Ten boots at once, by a new project, of a flavor of which the host has room for eight;
    returns the ten servers once each is ACTIVE or ERROR."""
    import threading

    hv = admin.get("/compute/v2.1/os-hypervisors/detail",
                   headers={"OpenStack-API-Version": "compute 2.1"}).json()["hypervisors"][0]
    reserved = admin.get("/cloudbox/v1/status").json()["settings"]["reserved_host_memory_mb"]
    free = hv["memory_mb"] - reserved - hv["memory_mb_used"]
    assert free > 8 * 64, "not enough host memory for this test"
    flavor = admin.post("/compute/v2.1/flavors", json={"flavor": {
        "name": f"eighth-{uuid.uuid4().hex[:6]}", "ram": free // 8, "vcpus": 1, "disk": 1}}).json()["flavor"]
    project, _, token = new_project_user(cloud, admin)
    admin.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"instances": 20, "cores": 20, "ram": -1}})
    ids: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        with cloud.client(token) as c:
            sid = boot(c, image_id, flavor=flavor["id"])["id"]
            with lock:
                ids.append(sid)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 10
    return [wait_server(admin, sid, {"ACTIVE", "ERROR"}, timeout=timeout) for sid in ids]

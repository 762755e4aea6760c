"""Volumes in a two-node cluster (tests/cluster_net.py, fake hypervisor and data plane): a volume
lives on the node that made it, and a request that reaches the other node is carried out by the
volume's own node (its worker), with no forwarding."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.cloud import wait_for as wait_until
from tests.cluster_net import Node, joined_cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root"),
]
V = "/volume/v3"


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory):
    with joined_cluster(tmp_path_factory, "cluster-volume") as nodes:
        yield nodes


def volume(node: Node, volume_id: str) -> dict[str, Any] | None:
    with node.admin() as c:
        r = c.get(f"{V}/volumes/{volume_id}")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        return r.json()["volume"]


def volume_file(node: Node, volume_id: str) -> Path:
    return node.data_dir / "volumes" / f"volume-{volume_id}.raw"


def test_the_volume_node_does_the_disk_work_asked_of_another(two: list[Node]):
    n1, n2 = two
    with n2.admin() as c:
        r = c.post(f"{V}/volumes", json={"volume": {"size": 1, "name": "on-node2"}})
        assert r.status_code == 202, r.text
        vid = r.json()["volume"]["id"]
    made = wait_until(lambda: (lambda v: v if v and v["status"] == "available" else None)(volume(n1, vid)), 60,
                      "the volume to be available, seen from node 1")
    assert made["os-vol-host-attr:host"].startswith(n2.name + "@")
    assert volume_file(n2, vid).exists() and not volume_file(n1, vid).exists()
    # Extended and deleted through node 1: node 2's worker does it.
    with n1.admin() as c:
        r = c.post(f"{V}/volumes/{vid}/action", json={"os-extend": {"new_size": 2}})
        assert r.status_code == 202, r.text
    wait_until(lambda: (lambda v: v and v["status"] == "available" and v["size"] == 2)(volume(n1, vid)), 60,
               "the extend to finish")
    assert volume_file(n2, vid).stat().st_size == 2 << 30
    with n1.admin() as c:
        assert c.delete(f"{V}/volumes/{vid}").status_code == 202
    wait_until(lambda: volume(n2, vid) is None, 60, "the volume to go")
    assert not volume_file(n2, vid).exists()


def test_services_connections_and_uploads_across_nodes(two: list[Node]):
    n1, n2 = two
    with n1.admin() as c:
        services = c.get(f"{V}/os-services", params={"binary": "cinder-volume"}).json()["services"]
        assert {s["host"]: s["state"] for s in services} == {f"{n1.name}@dir": "up", f"{n2.name}@dir": "up"}
    with n2.admin() as c:
        r = c.post(f"{V}/volumes", json={"volume": {"size": 1, "name": "attach-on-node2"}})
        assert r.status_code == 202, r.text
        vid = r.json()["volume"]["id"]
    wait_until(lambda: (lambda v: v and v["status"] == "available")(volume(n1, vid)), 60, "the volume")
    headers = {"OpenStack-API-Version": "volume 3.44"}
    action = f"{V}/volumes/{vid}/action"
    with n1.admin() as c:
        # Node 1 does not know node 2's path; a guest on node 1 would need the NBD export (not built).
        r = c.post(action, json={"os-initialize_connection": {"connector": {"host": n2.name}}}, headers=headers)
        assert r.status_code == 503 and "ask that node" in r.text, r.text
        r = c.post(action, json={"os-initialize_connection": {"connector": {"host": n1.name}}}, headers=headers)
        assert r.status_code == 503 and "NBD" in r.text, r.text
    with n2.admin() as c:
        r = c.post(action, json={"os-initialize_connection": {"connector": {"host": n2.name}}}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["connection_info"]["data"]["device_path"] == str(volume_file(n2, vid))
    # An upload asked of node 1 is written by node 2's worker.
    with n1.admin() as c:
        r = c.post(action, json={"os-volume_upload_image": {"image_name": "from-node2"}})
        assert r.status_code == 202, r.text
        image_id = r.json()["os-volume_upload_image"]["image_id"]
    wait_until(lambda: (lambda v: v and v["status"] == "available")(volume(n1, vid)), 60, "the upload to finish")

    def image_status() -> str:
        with n1.admin() as c:
            return c.get(f"/image/v2/images/{image_id}").json()["status"]

    wait_until(lambda: image_status() == "active", 60, "the image to be active")
    with n1.admin() as c:
        assert c.delete(f"{V}/volumes/{vid}").status_code == 202

"""Boot from volume in a two-node cluster (tests/cluster_net.py, fake hypervisor): the scheduler
places the server on the node that keeps its boot volume (os-vol-host-attr:host), whichever node
took the request."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.cloud import wait_for
from tests.cluster_net import Node, joined_cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root"),
]
V = "/volume/v3"
LATEST = {"OpenStack-API-Version": "compute 2.96"}


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory):
    with joined_cluster(tmp_path_factory, "cluster-bfv") as nodes:
        yield nodes


def bootable_volume(node: Node) -> str:
    """A blank volume made on ``node``, marked bootable (the fake hypervisor boots anything)."""
    with node.admin() as c:
        r = c.post(f"{V}/volumes", json={"volume": {"size": 1, "name": "boot"}})
        assert r.status_code == 202, r.text
        vid = r.json()["volume"]["id"]
        wait_for(lambda: c.get(f"{V}/volumes/{vid}").json()["volume"]["status"] == "available", 60,
                 "the volume to be made")
        r = c.post(f"{V}/volumes/{vid}/action", json={"os-set_bootable": {"bootable": True}})
        assert r.status_code == 200, r.text
        assert c.get(f"{V}/volumes/{vid}").json()["volume"]["os-vol-host-attr:host"].startswith(node.name + "@")
    return vid


def active(node: Node, server_id: str) -> dict[str, Any]:
    with node.admin() as c:
        def done() -> dict[str, Any] | None:
            server = c.get(f"/compute/v2.1/servers/{server_id}", headers=LATEST).json()["server"]
            assert server["status"] != "ERROR", server.get("fault")
            return server if server["status"] == "ACTIVE" else None

        return wait_for(done, 90, f"server {server_id} to be ACTIVE")


@pytest.mark.parametrize("keeper, asked", [(1, 0), (0, 1)])
def test_the_server_runs_where_its_boot_volume_is(two: list[Node], keeper: int, asked: int):
    vid = bootable_volume(two[keeper])
    with two[asked].admin() as c:
        r = c.post("/compute/v2.1/servers", headers=LATEST, json={"server": {
            "name": "bfv-placed", "flavorRef": "42", "networks": "none", "block_device_mapping_v2": [
                {"uuid": vid, "boot_index": 0, "source_type": "volume", "destination_type": "volume",
                 "delete_on_termination": True}]}})
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
    server = active(two[asked], sid)
    assert server["OS-EXT-SRV-ATTR:host"] == two[keeper].name
    assert server["os-extended-volumes:volumes_attached"] == [{"id": vid, "delete_on_termination": True}]
    with two[asked].admin() as c:
        assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
        wait_for(lambda: c.get(f"{V}/volumes/{vid}").status_code == 404, 90, "the volume to go with its server")

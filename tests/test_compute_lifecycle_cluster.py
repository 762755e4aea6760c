"""Cold migration between two nodes (tests/cluster_net.py's nodes, fake hypervisor, real disks):
the scheduler picks the other host, the server's disk follows it through the image service,
revertResize brings it back, confirmResize leaves it there and the source drops its files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_net import Node, joined_cluster, wait_until
from tests.compute_helpers import LATEST

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root"),
]


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory):
    with joined_cluster(tmp_path_factory, "cluster-migrate") as nodes:
        yield nodes


def server(node: Node, sid: str) -> dict[str, Any]:
    with node.admin() as c:
        r = c.get(f"/compute/v2.1/servers/{sid}", headers=LATEST)
        assert r.status_code == 200, r.text
        return r.json()["server"]


def settled(node: Node, sid: str, status: str, timeout: float = 90) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        s = server(node, sid)
        assert s["status"] != "ERROR", s.get("fault")
        return s if s["status"] == status and s["OS-EXT-STS:task_state"] is None else None

    return wait_until(check, timeout, f"server {sid} to be {status}")


def act(node: Node, sid: str, body: dict, version: str = "2.96") -> int:
    with node.admin() as c:
        r = c.post(f"/compute/v2.1/servers/{sid}/action", json=body,
                   headers={"OpenStack-API-Version": f"compute {version}"})
        print(body, r.status_code, r.text)  # shown when the test fails
        return r.status_code


def test_cold_migration_moves_the_disk_reverts_and_confirms(two: list[Node], tmp_path: Path):
    n1, n2 = two
    def both_up() -> bool | None:
        for node in two:
            with node.admin() as c:
                states = [h["state"] for h in c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"]]
            if states != ["up", "up"]:
                return None
        return True

    wait_until(both_up, 60, "both hosts to be up, as each node sees them")
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    with n1.admin() as c:
        image = c.post("/image/v2/images", json={"name": "mig", "disk_format": "qcow2", "container_format": "bare",
                                                  "visibility": "public"}).json()
        assert c.put(f"/image/v2/images/{image['id']}/file", content=disk.read_bytes(),
                     headers={"Content-Type": "application/octet-stream"}).status_code == 204
        r = c.post("/compute/v2.1/servers", json={"server": {
            "name": "mover", "flavorRef": "42", "imageRef": image["id"], "networks": "none"}})
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
    source = settled(n1, sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    other = "node2" if source == "node1" else "node1"
    nodes = {"node1": n1, "node2": n2}
    source_dir = nodes[source].data_dir / "instances" / sid
    assert (source_dir / "disk").exists()

    # Migrate, then revert: back on its host, ACTIVE.
    assert act(n1, sid, {"migrate": None}) == 202
    moved = settled(n2, sid, "VERIFY_RESIZE")
    assert moved["OS-EXT-SRV-ATTR:host"] == other
    assert (nodes[other].data_dir / "instances" / sid / "disk").exists() and (source_dir / "disk").exists()
    assert act(n2, sid, {"revertResize": None}) == 202
    back = settled(n1, sid, "ACTIVE")
    assert back["OS-EXT-SRV-ATTR:host"] == source
    wait_until(lambda: not (nodes[other].data_dir / "instances" / sid).exists() or None, 30,
               "the destination to drop its files")

    # Migrate to the named host (2.56), then confirm: it stays there, the source drops its files.
    assert act(n2, sid, {"migrate": {"host": source}}, "2.56") == 400  # its own host
    assert act(n2, sid, {"migrate": {"host": other}}, "2.56") == 202
    assert settled(n1, sid, "VERIFY_RESIZE")["OS-EXT-SRV-ATTR:host"] == other
    assert act(n1, sid, {"confirmResize": None}) == 204
    assert settled(n2, sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == other
    wait_until(lambda: not source_dir.exists() or None, 30, "the source to drop its files")
    with n1.admin() as c:
        migrations = c.get(f"/compute/v2.1/os-migrations?instance_uuid={sid}", headers=LATEST).json()["migrations"]
        assert [(m["migration_type"], m["status"], m["source_compute"], m["dest_compute"]) for m in migrations] == [
            ("migration", "confirmed", source, other), ("migration", "reverted", source, other)]
        # no transfer image is left behind
        assert [i["name"] for i in c.get("/image/v2/images").json()["images"] if i["name"].endswith("-migrating")] == []
        assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204

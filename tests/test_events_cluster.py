"""The live event stream across a two-node cluster (tests/cluster_net.py's nodes, fake drivers):
a change committed through node 1 reaches a stream on node 2 (node 2's follower applies the
command and calls its listeners), a server's BUILD → ACTIVE too, and an administrator's stream on
node 1 sees node 2 go down when it stops, while node 2's own streams end with it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cloudbox.cluster.liveness import TICK
from cloudbox.events.hub import NODE_TICK
from tests.cluster_net import joined_cluster
from tests.compute_helpers import boot, make_qcow2, upload_image
from tests.events_reader import EventReader

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root"),
]


def test_changes_through_one_node_reach_streams_on_another(tmp_path_factory: pytest.TempPathFactory,
                                                           tmp_path: Path) -> None:
    with joined_cluster(tmp_path_factory, "cluster-events") as (first, second):
        second.wait_healthy(60)
        ids = {m["name"]: m["id"] for m in first.cluster_list()}
        with EventReader(second.url, str(second.ca), second.token()) as on_second, \
                EventReader(first.url, str(first.ca), first.token()) as on_first:
            assert on_second.status == 200 and on_first.status == 200
            with first.admin() as admin:
                r = admin.post("/network/v2.0/networks", json={"network": {"name": "through-node1"}})
                assert r.status_code == 201, r.text
                network = r.json()["network"]["id"]
                image = upload_image(admin, make_qcow2(tmp_path / "tiny.qcow2", "1M"), "events-cluster")
                server = boot(admin, image["id"], networks="none")
            on_second.wait_change(type="network", id=network, action="create")
            on_second.wait_change(type="server", id=server["id"], action="create")
            on_second.wait_change(type="server", id=server["id"], status="ACTIVE", timeout=120)

            second.stop()
            # Node 2 ends its streams as it stops, instead of holding its shutdown for them.
            assert on_second.ended.wait(15), "node 2's stream outlived the node"
            # Node 2 gave its lease back as it stopped: node 1 reads that within a tick, and the
            # hub looks every NODE_TICK.
            on_first.wait(lambda r: [e for e in r.seen("node") if e["id"] == ids["node2"] and e["status"] == "down"],
                          "node 2 to be reported down", timeout=TICK + NODE_TICK + 15)

"""The live event stream across a cluster (tests/cluster_net.py's nodes, fake drivers): a change
committed through node 1 reaches a stream on node 2 (node 2's follower applies the command and
calls its listeners), a server's BUILD → ACTIVE too, and an administrator's stream on node 1 sees
node 3 go down when it stops, while node 3's own streams end with it.  Three nodes, because two
etcd members lose their quorum when one stops, and with it the liveness that says who is down."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cloudbox.cluster.liveness import LEASE_TTL, TICK
from cloudbox.events.hub import NODE_TICK
from tests.cluster_net import Node, joined_cluster
from tests.compute_helpers import boot, make_qcow2, upload_image
from tests.events_reader import EventReader

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root"),
]


def test_changes_through_one_node_reach_streams_on_another(tmp_path_factory: pytest.TempPathFactory,
                                                           tmp_path: Path) -> None:
    with joined_cluster(tmp_path_factory, "cluster-events", count=3) as (first, second, third):
        ids = {m["name"]: m["id"] for m in first.cluster_list()}
        member_token = _member_token(first)
        with EventReader(second.url, str(second.ca), second.token()) as on_second, \
                EventReader(first.url, str(first.ca), first.token()) as on_first, \
                EventReader(third.url, str(third.ca), third.token()) as on_third, \
                EventReader(first.url, str(first.ca), member_token) as member:
            assert on_second.status == on_first.status == on_third.status == 200
            with first.admin() as admin:
                r = admin.post("/network/v2.0/networks", json={"network": {"name": "through-node1"}})
                assert r.status_code == 201, r.text
                network = r.json()["network"]["id"]
                image = upload_image(admin, make_qcow2(tmp_path / "tiny.qcow2", "1M"), "events-cluster")
                server = boot(admin, image["id"], networks="none")
            on_second.wait_change(type="network", id=network, action="create")
            on_second.wait_change(type="server", id=server["id"], action="create")
            on_second.wait_change(type="server", id=server["id"], status="ACTIVE", timeout=120)

            third.stop()
            # Node 3 ends its streams as it stops, instead of holding its shutdown for them.
            assert on_third.ended.wait(15), "node 3's stream outlived the node"
            # Node 3 gives its lease back as it stops (else the lease runs out within LEASE_TTL): node 1
            # reads that within a tick, and the hub looks every NODE_TICK.
            down = on_first.wait(lambda r: [e for e in r.seen("node") if e["id"] == ids["node3"]
                                            and e["status"] == "down"],
                                 "node 3 to be reported down", timeout=LEASE_TTL + TICK + NODE_TICK + 10)
            assert down[0]["name"] == "node3" and down[0]["action"] == "update"
            with first.client(member_token) as client:
                r = client.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "events-member-key"}})
                assert r.status_code == 200, r.text
            on_second.wait(lambda r: [e for e in r.seen("node") if e["id"] == ids["node3"] and e["status"] == "down"],
                           "node 2 to report node 3 down too", timeout=LEASE_TTL + TICK + NODE_TICK + 10)
            member.wait_change(type="keypair", id="events-member-key")  # its stream is live, and ordered:
            assert not member.seen("node")  # a member sees no nodes


def _member_token(node: Node) -> str:
    """A token of a new user holding the member role on a new project."""
    with node.admin() as admin:
        project = admin.post("/identity/v3/projects", json={"project": {"name": "events-p"}}).json()["project"]
        user = admin.post("/identity/v3/users", json={"user": {"name": "events-u", "password": "pw"}}).json()["user"]
        roles = {r["name"]: r["id"] for r in admin.get("/identity/v3/roles").json()["roles"]}
        r = admin.put(f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{roles['member']}")
        assert r.status_code == 204, r.text
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "events-u", "domain": {"id": "default"}, "password": "pw"}}},
        "scope": {"project": {"id": project["id"]}}}}
    with node.client() as client:
        r = client.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]

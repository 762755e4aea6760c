"""Issue #5 across nodes, with the fake hypervisor and data plane (tests/cluster_net.py's nodes):
the scheduler places servers on every node, images follow the servers, calls on a server of
another node are carried out by that node, a node that is killed is down within its lease's TTL
and its servers can be evacuated, a node that missed compacted history catches up from a peer's
snapshot, and `cluster remove` refuses a node that still has servers unless forced.

Node 3's wall clock runs SKEW seconds behind the others' all along (issue 12, fault 10): liveness
compares no timestamps, so it must not notice; and an idle cluster writes nothing to etcd.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from cloudbox.clock import parse_iso
from cloudbox.cluster.liveness import LEASE_TTL, TICK
from tests.cluster_net import Node, Underlay, wait_converged, wait_until
from tests.compute_helpers import LATEST

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root"),
]

# s: a killed node's lease runs out at most LEASE_TTL after its last refresh; etcd's leader checks
# leases twice a second and, when the killed node led etcd, a new leader renews every lease once
# (its election, ~2 s, and etcd's 1 s election timeout); then each node reads who is up every TICK.
DOWN_WITHIN = LEASE_TTL + 3 + TICK
SKEW = -90.0  # s: node 3's wall clock (the old heartbeats called a node down after 20 s)


def server(node: Node, sid: str) -> dict[str, Any]:
    with node.admin() as c:
        r = c.get(f"/compute/v2.1/servers/{sid}", headers=LATEST)
        assert r.status_code == 200, r.text
        return r.json()["server"]


def wait_status(node: Node, sid: str, status: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until(lambda: (lambda s: s if s["status"] == status and s["OS-EXT-STS:task_state"] is None
                               else None)(server(node, sid)), timeout, f"server {sid} to be {status}")


def etcdctl(node: Node, *args: str) -> str:
    d = node.data_dir / "pki"
    return node.underlay.exec(node.n, "etcdctl", f"--endpoints=https://{node.ip}:2379", f"--cacert={d / 'ca.pem'}",
                              f"--cert={d / 'node.pem'}", f"--key={d / 'node.key'}", *args).stdout


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory):
    net = Underlay(3, tmp_path_factory.mktemp("cluster-compute"),
                   logs_to=tmp_path_factory.getbasetemp() / "cluster-compute-logs")
    try:
        net.up()
        first = net.node(1)
        first.init()
        first.serve()
        nodes = [first]
        for n in (2, 3):
            joiner = net.node(n)
            joiner.password = first.password
            joiner.clock_offset = SKEW if n == 3 else 0.0
            joiner.join(first.cluster_add(f"node{n}"))
            nodes.append(joiner)
        yield nodes
    finally:
        net.down()


def up_views(nodes: list[Node]) -> dict[str, dict[str, bool]]:
    """node name -> {member name: up} as `cluster list` on that node shows it."""
    return {node.name: {m["name"]: m["up"] for m in node.cluster_list()} for node in nodes}


def hypervisor_states(node: Node) -> dict[str, str]:
    with node.admin() as c:
        return {h["hypervisor_hostname"]: h["state"] for h in c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"]}


def etcd_revision(node: Node) -> int:
    return json.loads(etcdctl(node, "endpoint", "status", "-w", "json"))[0]["Status"]["header"]["revision"]


def test_a_skewed_clock_changes_no_liveness_and_an_idle_cluster_writes_nothing(three: list[Node]):
    n1, n2, n3 = three
    # Node 3's clock is off: what it writes as "now" is SKEW seconds behind node 1's.
    own = next(m for m in n3.cluster_list() if m["name"] == "node3")["heartbeat_at"]
    assert abs(parse_iso(own) - time.time() - SKEW) < 10, f"node 3 does not run with its skewed clock: it says {own}"
    everyone_up = {node.name: {"node1": True, "node2": True, "node3": True} for node in three}
    wait_until(lambda: up_views(three) == everyone_up, 30, "every node to see all three up")
    states = wait_converged(three, 30)
    revision, etcd_before = states[0]["applied_revision"], etcd_revision(n1)
    # Longer than a lease lives and than the old heartbeats' limit: nothing changes, nothing is written.
    began = time.monotonic()
    while time.monotonic() - began < 2 * LEASE_TTL + TICK:
        assert up_views(three) == everyone_up
        assert set(hypervisor_states(n1).values()) == {"up"} and set(hypervisor_states(n3).values()) == {"up"}
        time.sleep(1)
    after = [node.cluster_state()["applied_revision"] for node in three]
    assert after == [revision] * 3, f"the idle cluster's log grew: revision {revision} -> {after}"
    assert etcd_revision(n1) == etcd_before, "the idle cluster wrote to etcd"


def test_servers_spread_images_follow_and_calls_reach_the_owner(three: list[Node]):
    n1, n2, n3 = three
    with n1.admin() as c:
        image = c.post("/image/v2/images", json={"name": "tiny", "disk_format": "raw", "container_format": "bare",
                                                  "visibility": "public"}).json()
        data = os.urandom(3 << 20)
        r = c.put(f"/image/v2/images/{image['id']}/file", content=data,
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        group = c.post("/compute/v2.1/os-server-groups", headers={"OpenStack-API-Version": "compute 2.64"},
                       json={"server_group": {"name": "apart", "policy": "anti-affinity"}}).json()["server_group"]
    ids = []
    with n2.admin() as c:  # scheduled by node 2, whichever node runs them
        for i in range(3):
            r = c.post("/compute/v2.1/servers", json={
                "server": {"name": f"s{i}", "flavorRef": "42", "imageRef": image["id"], "networks": "none"},
                "os:scheduler_hints": {"group": group["id"]}})
            assert r.status_code == 202, r.text
            ids.append(r.json()["server"]["id"])
    hosts = {wait_status(n3, sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"]: sid for sid in ids}
    assert set(hosts) == {"node1", "node2", "node3"}, hosts
    # Nodes 2 and 3 booted from an image node 1 keeps: each has a checked copy of it now.
    for node in (n2, n3):
        assert (node.data_dir / "images" / image["id"]).read_bytes() == data
    # Through any node: an image's data, and actions on a server of another node.
    with n3.admin() as c:
        r = c.get(f"/image/v2/images/{image['id']}/file")
        assert r.status_code == 200 and r.content == data
        r = c.post(f"/compute/v2.1/servers/{hosts['node2']}/action", json={"os-stop": None})
        assert r.status_code == 202, r.text
    assert wait_status(n1, hosts["node2"], "SHUTOFF")["OS-EXT-SRV-ATTR:host"] == "node2"
    with n1.admin() as c:
        r = c.post(f"/compute/v2.1/servers/{hosts['node2']}/action", json={"os-start": None})
        assert r.status_code == 202, r.text
        started = r.headers["x-openstack-request-id"]
    wait_status(n2, hosts["node2"], "ACTIVE")
    # The owner answered the forwarded call under the id the client was given: its action has it.
    with n1.admin() as c:
        actions = c.get(f"/compute/v2.1/servers/{hosts['node2']}/os-instance-actions").json()["instanceActions"]
    assert {a["action"]: a["request_id"] for a in actions}["start"] == started
    # A node that has servers is not removed unless forced.
    proc = n1.cli("cluster", "remove", "node3", "--data-dir", str(n1.data_dir), check=False)
    assert proc.returncode != 0 and "still has 1 server" in proc.stderr, proc.stderr
    assert {m["name"] for m in n1.cluster_list()} == {"node1", "node2", "node3"}


def test_a_silent_node_is_down_its_servers_evacuate_and_it_catches_up(three: list[Node]):
    n1, n2, n3 = three
    servers = n1.admin().get("/compute/v2.1/servers/detail", headers=LATEST).json()["servers"]
    by_host = {s["OS-EXT-SRV-ATTR:host"]: s["id"] for s in servers}
    sid = by_host["node3"]
    # The three are an anti-affinity group: node 1's goes, so that node 3's has a place to go.
    with n1.admin() as c:
        assert c.delete(f"/compute/v2.1/servers/{by_host['node1']}").status_code == 204
    wait_until(lambda: n2.admin().get(f"/compute/v2.1/servers/{by_host['node1']}").status_code == 404, 30,
               "node 1's server to be deleted")
    n3.kill9()
    killed = time.monotonic()

    def down() -> bool:  # on both nodes left: each reads who is up on its own tick
        s = server(n1, sid)
        return (all(hypervisor_states(node).get("node3") == "down" for node in (n1, n2))
                and s["status"] == "UNKNOWN" and s["host_status"] == "DOWN")

    wait_until(down, DOWN_WITHIN + 5, "node 3 and its server to be shown down on nodes 1 and 2")
    took = time.monotonic() - killed
    print(f"node 3 was shown down {took:.1f} s after kill -9 (lease TTL {LEASE_TTL} s)")
    assert took <= DOWN_WITHIN
    assert {m["name"]: m["up"] for m in n1.cluster_list()} == {"node1": True, "node2": True, "node3": False}

    # Evacuate (admin, node 2 answering): rebuilt on a live node, same id.
    with n2.admin() as c:
        r = c.post(f"/compute/v2.1/servers/{sid}/action", json={"evacuate": {}})
        assert r.status_code == 202, r.text
    moved = wait_status(n1, sid, "ACTIVE")
    assert moved["OS-EXT-SRV-ATTR:host"] == "node1"  # node 2 runs a member of its anti-affinity group
    with n1.admin() as c:  # a live node's server cannot be evacuated
        r = c.post(f"/compute/v2.1/servers/{sid}/action", json={"evacuate": {}})
        assert r.status_code == 409, r.text

    # Writes go on with two of three; then etcd forgets the history node 3 missed.
    made = []
    with n1.admin() as c:
        for i in range(5):
            r = c.post("/identity/v3/projects", json={"project": {"name": f"while-down-{i}-{time.time_ns()}"}})
            assert r.status_code == 201, r.text
            made.append(r.json()["project"]["id"])
    revision = n1.cluster_state()["applied_revision"]
    assert "compacted revision" in etcdctl(n1, "compact", str(revision))

    n3.serve()
    states = wait_converged(three, 60)
    assert len({s["applied_revision"] for s in states}) == 1
    assert all(s["hashes"] == states[0]["hashes"] for s in states)
    assert "caught up from a snapshot" in n3.log_file.read_text()
    with n3.admin() as c:
        for pid in made:
            assert c.get(f"/identity/v3/projects/{pid}").status_code == 200
        assert c.get(f"/compute/v2.1/servers/{sid}", headers=LATEST).json()["server"]["status"] == "ACTIVE"
    wait_until(lambda: all(m["up"] for m in n1.cluster_list()), 30, "node 3 to be up again")

    # Out it goes, forced: its etcd member too, and its lease.
    n1.cli("cluster", "remove", "node3", "--data-dir", str(n1.data_dir), "--force")
    assert {m["name"] for m in n1.cluster_list()} == {"node1", "node2"}
    members = n1.etcd()["members"]
    assert sorted(members) == ["node1", "node2"], members
    wait_until(lambda: "removed from the cluster" in n3.log_file.read_text(), 10, "node 3 to notice its removal")
    wait_until(lambda: not n3.etcd_pids(), 10, "node 3's etcd to stop")
    with n1.admin() as c:
        assert c.post("/identity/v3/projects", json={"project": {"name": f"after-{time.time_ns()}"}}).status_code == 201

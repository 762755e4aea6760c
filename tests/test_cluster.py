"""Issue #5's acceptance: a cloud of three nodes replicated through etcd, each node a real
`cloudbox serve` in its own network namespace on a private bridge (tests/cluster_net.py).

Order: the harness checks itself, then one three-node cluster (module fixture) is formed and
used by (a) replication, (c) a partition of node 3, (b) kill -9 of the etcd leader under
writes, and last (d) refused joins, which also joins and removes a fourth node.

Run as root:  python -m pytest -p no:cacheprovider tests/test_cluster.py -x -q   (about 1.5 min;
the nodes run from .venv when it exists; their logs are kept in <pytest basetemp>/cluster-logs)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cloud import wait_for
from tests.cluster_net import (
    Node, Underlay, all_projects, altered, decode_token, edit_token, error_message, etcd_leader,
    sh, wait_converged,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root"),
]

NODES = 9  # 1-3: the cluster; 4-8: would-be members of the join tests; 9: test e (LAB)
VISIBLE_WITHIN = 1.0  # s: how long node 3 may take to show a write node 1 acknowledged
RESUME_WITHIN = 10.0  # s: the longest pause in acknowledged writes when the etcd leader dies
REFUSE_WITHIN = 5.0  # s: a write on a node cut off from the majority gets 503 within this
ETCD_STABLE_FOR = 15.0  # s: after a restart, each etcd process must still be the same this long after


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def visible_soon(node: Node, path: str, check: Any = None, within: float = VISIBLE_WITHIN) -> dict[str, Any]:
    """GET ``path`` through ``node`` at once and, if it is not there yet, again every 50 ms for at
    most ``within`` s. The contract only promises "applied before the answer" on the node that
    took the write; another node follows the log, so we allow it this short catch-up and no more."""
    start = time.monotonic()
    last = ""
    with node.admin() as c:
        def shown() -> dict[str, Any] | None:
            nonlocal last
            r = c.get(path)
            if r.status_code == 200 and (check is None or check(r.json())):
                return r.json()
            last = f"{r.status_code} {r.text[:300]}"
            return None

        found = wait_for(shown, within, lambda: f"node{node.n} to show {path} within {within} s of the write: {last}",
                         every=0.05)
    print(f"node{node.n} showed {path} {time.monotonic() - start:.3f} s after the write returned")
    return found


def create_project(node: Node, name: str, timeout: float = 15) -> httpx.Response:
    with node.admin(timeout=timeout) as c:
        return c.post("/identity/v3/projects", json={"project": {"name": name}})


def assert_same_hashes(states: list[dict[str, Any]]) -> None:
    first = states[0]
    assert first["hashes"], f"no table hashes in {first}"
    for other in states[1:]:
        differ = sorted(t for t in set(first["hashes"]) | set(other["hashes"])
                        if first["hashes"].get(t) != other["hashes"].get(t))
        assert not differ, (f"at revision {first['applied_revision']} {first['node']} and {other['node']} "
                            f"differ in tables {differ}")


def member_keys(members: list[dict[str, Any]]) -> list[tuple]:
    """What a refused join must not change in `cluster list` (up and capacity move by themselves)."""
    return sorted((m["name"], m["id"], m["role"], str(m["address"])) for m in members)


# --- the harness ------------------------------------------------------------------------------

def test_harness_brings_up_namespaces_and_a_single_node(tmp_path: Path):
    # What a crashed earlier run would leave: a namespace with a process in it, and a link.
    subprocess.run(["ip", "netns", "add", "cbt-0-9"], check=True)
    subprocess.run(["ip", "link", "add", "cbt0v9", "type", "veth", "peer", "name", "cbt0p9"], check=True)
    stale = subprocess.Popen(["ip", "netns", "exec", "cbt-0-9", "sleep", "600"], start_new_session=True)
    net = Underlay(3, tmp_path / "nodes")
    try:
        net.up()
        stale.wait(5)  # killed by up()
        assert "cbt-0-9" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert subprocess.run(["ip", "link", "show", "cbt0v9"], capture_output=True).returncode != 0
        for n in (1, 2, 3):
            assert f"inet {net.ip(n)}/24" in net.exec(n, "ip", "-4", "addr", "show", "eth0").stdout
            assert "UP" in net.exec(n, "ip", "link", "show", "lo").stdout
            net.exec(n, "ping", "-c1", "-W2", "10.210.0.254")
        net.exec(2, "ping", "-c1", "-W2", net.ip(3))

        node = net.node(1)
        node.init()
        node.serve()
        health = node.health()  # from the test process, across the bridge
        assert health and health["status"] == "ok", health
        assert health["node"] == "node1"  # the namespace's own hostname
        assert node.pid() in net.pids(1), "cloudbox serve does not run in its namespace"
        assert node.get_json("/cloudbox/v1/nodes")["nodes"]

        net.partition(1)
        assert net.exec(2, "ping", "-c1", "-W1", net.ip(1), check=False).returncode != 0
        assert net.exec(1, "ping", "-c1", "-W1", net.ip(3), check=False).returncode != 0
        assert node.health() is not None, "a partition must not cut the host off"
        net.heal(1)
        net.exec(2, "ping", "-c1", "-W2", net.ip(1))

        node.kill9()
        wait_for(lambda: not net.pids(1), 5, "namespace 1 to be empty after kill -9")
        node.serve()  # a restart after kill -9 serves again
        assert node.health()["status"] == "ok"
    finally:
        net.down()
    assert net.leftovers() == []


def test_harness_partition_cuts_a_plain_etcd_member_off(tmp_path: Path):
    """The underlay carries what cloudbox's etcd needs, and a partition really takes a member out of
    the quorum while the host still reaches it: three plain etcd members (no TLS, no cloudbox)."""
    net = Underlay(3, tmp_path / "nodes")
    peers = ",".join(f"e{n}=http://{net.ip(n)}:2380" for n in (1, 2, 3))

    def etcdctl(n: int, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("etcdctl", f"--endpoints=http://{net.ip(n)}:2379", "--dial-timeout=2s",
                  "--command-timeout=3s", *args, check=check, timeout=15)

    try:
        net.up()
        for n in (1, 2, 3):
            ip = net.ip(n)
            net.spawn(n, "etcd", "--name", f"e{n}", "--data-dir", str(tmp_path / "nodes" / f"etcd{n}"),
                      "--listen-client-urls", f"http://{ip}:2379", "--advertise-client-urls", f"http://{ip}:2379",
                      "--listen-peer-urls", f"http://{ip}:2380", "--initial-advertise-peer-urls", f"http://{ip}:2380",
                      "--initial-cluster", peers, "--initial-cluster-state", "new",
                      "--initial-cluster-token", "cbt-selftest", log=tmp_path / f"etcd{n}.log")
        wait_for(lambda: etcdctl(1, "put", "k", "v0", check=False).returncode == 0, 30, "etcd to form")
        assert len(etcdctl(3, "member", "list").stdout.splitlines()) == 3

        net.partition(3)
        # No quorum on node 3. (Another key: etcd may still commit this timed-out put after the heal.)
        assert etcdctl(3, "put", "cut-off", "x", check=False).returncode != 0
        wait_for(lambda: etcdctl(1, "put", "k", "v1", check=False).returncode == 0, 15,
                 "the majority to take writes")
        assert etcdctl(3, "get", "k", "--consistency=s", "--print-value-only").stdout.strip() == "v0"
        net.heal(3)
        seen: list[str] = []

        def caught_up() -> bool:
            proc = etcdctl(3, "get", "k", "--print-value-only", check=False)
            seen[:] = [proc.stdout.strip(), proc.stderr.strip()[-300:]]
            return proc.stdout.strip() == "v1"

        try:
            wait_for(caught_up, 15, "node 3 to catch up after the heal")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last get through node 3: {seen}") from None
    finally:
        net.down()
    assert net.leftovers() == []


# --- one cluster for a-d ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory):
    underlay = Underlay(NODES, tmp_path_factory.mktemp("cluster"),
                        logs_to=tmp_path_factory.getbasetemp() / "cluster-logs")
    try:
        underlay.up()
        yield underlay
    finally:
        underlay.down()  # logs stay in <pytest basetemp>/cluster-logs


@dataclass
class Cluster:
    nodes: list[Node]
    join_refusals: list[str]  # joins the cluster refused while it was forming (test a fails on them)


JOIN_ATTEMPTS = 4


@pytest.fixture(scope="module")
def formed(net: Underlay) -> Cluster:
    """node 1 made by `init`, nodes 2 and 3 by `join` with tokens from `cluster add`, one right
    after the other. A refused join is recorded (test a fails on it) and retried with a new token
    after a pause, so that tests b-d still run against a cluster."""
    first = net.node(1)
    first.init()
    first.serve()
    nodes = [first]
    refusals: list[str] = []
    for n in (2, 3):
        joiner = net.node(n)
        joiner.password = first.password  # one cloud, one admin
        for attempt in range(JOIN_ATTEMPTS):
            token = first.cluster_add(f"node{n}")
            proc = joiner.join(token, check=False)
            if proc.returncode == 0:
                break
            refusals.append(f"node{n} attempt {attempt + 1}: {proc.stderr.strip()}")
            if joiner.data_dir.exists():
                refusals.append(f"node{n}: the refused join left {sorted(p.name for p in joiner.data_dir.iterdir())}")
                shutil.rmtree(joiner.data_dir)
            time.sleep(3)
        else:
            raise AssertionError("join kept being refused:\n" + "\n".join(refusals))
        assert joiner.health() is not None, f"`cloudbox join` exited 0 but node{n} does not serve:\n{proc.stdout}"
        nodes.append(joiner)
    for node in nodes:
        node.wait_healthy(30)
    return Cluster(nodes, refusals)


@pytest.fixture
def cluster(formed: Cluster) -> list[Node]:
    return formed.nodes


def test_a_three_nodes_join_and_replicate(formed: Cluster, net: Underlay):
    cluster = formed.nodes
    n1, n2, n3 = cluster
    names = sorted(node.name for node in cluster)
    assert names == ["node1", "node2", "node3"], names

    def three_up() -> list[dict[str, Any]] | None:
        members = n1.cluster_list()
        return members if len(members) == 3 and all(m["up"] for m in members) else None

    members = wait_for(three_up, 30, "`cluster list` to show three members up")
    assert sorted(m["name"] for m in members) == names
    for m in members:
        node = next(x for x in cluster if x.name == m["name"])
        assert m["role"] == "voter", f"{m['name']}: one of the first three nodes must be an etcd voter: {m}"
        assert node.ip in str(m["address"]), m
    assert member_keys(n3.cluster_list()) == member_keys(members), "node 3 lists other members than node 1"

    etcd = n2.etcd()
    assert sorted(etcd["members"]) == names and etcd["leader"] in names, etcd
    assert len(n3.get_json("/cloudbox/v1/nodes")["nodes"]) == 3
    for node in cluster:  # etcd on IP:2379 (clients) and IP:2380 (peers), in the node's namespace
        listening = net.exec(node.n, "ss", "-ltnH").stdout
        for port in (2379, 2380):
            assert f"{node.ip}:{port}" in listening, f"node{node.n}: no etcd on {node.ip}:{port}:\n{listening}"

    # Writes through node 1, read through node 3 right after each call returns.
    with n1.admin() as c:
        r = c.post("/identity/v3/projects", json={"project": {"name": unique("repl-project")}})
        assert r.status_code == 201, r.text
        project = r.json()["project"]
        seen = visible_soon(n3, f"/identity/v3/projects/{project['id']}")
        assert seen["project"]["name"] == project["name"]

        r = c.post("/network/v2.0/networks", json={"network": {"name": unique("repl-net")}})
        assert r.status_code == 201, r.text
        network = r.json()["network"]
        seen = visible_soon(n3, f"/network/v2.0/networks/{network['id']}")
        assert seen["network"]["name"] == network["name"]

        r = c.post("/image/v2/images", json={"name": unique("repl-image"), "disk_format": "raw",
                                             "container_format": "bare"})
        assert r.status_code == 201, r.text
        image = r.json()
        data = os.urandom(4096)
        r = c.put(f"/image/v2/images/{image['id']}/file", content=data,
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        seen = visible_soon(n3, f"/image/v2/images/{image['id']}", lambda b: b.get("status") == "active")
        assert seen["name"] == image["name"] and seen["size"] == len(data)
        assert seen["checksum"] == hashlib.md5(data).hexdigest()

    assert_same_hashes(wait_converged(cluster, 30))
    assert not formed.join_refusals, "joins made one after the other were refused:\n" + "\n".join(formed.join_refusals)


def test_c_partition_of_node_3(cluster: list[Node], net: Underlay):
    n1, n2, n3 = cluster
    for node in cluster:
        node.token()  # tokens made before the partition
    r = create_project(n1, unique("before-partition"))
    assert r.status_code == 201, r.text
    before = r.json()["project"]
    visible_soon(n3, f"/identity/v3/projects/{before['id']}", within=5)

    during: list[tuple[str, str]] = []  # (id, name) acknowledged through nodes 1 and 2
    net.partition(3)
    try:
        # Every kind of write through node 3: 503 within REFUSE_WITHIN s, with a message.
        refused_project, refused_network = unique("cut-off"), unique("cut-off")
        writes = [
            ("POST", "/identity/v3/projects", {"project": {"name": refused_project}}),
            ("POST", "/network/v2.0/networks", {"network": {"name": refused_network}}),
            ("PATCH", f"/identity/v3/projects/{before['id']}", {"project": {"description": "cut off"}}),
            ("DELETE", f"/identity/v3/projects/{before['id']}", None),
        ]
        with n3.admin(timeout=REFUSE_WITHIN + 10) as c:
            for method, path, body in writes:
                start = time.monotonic()
                r = c.request(method, path, json=body)
                took = time.monotonic() - start
                print(f"partitioned node 3: {method} {path} -> {r.status_code} in {took:.2f} s: {error_message(r)}")
                assert r.status_code == 503, f"{method} {path} through partitioned node 3: {r.status_code} {r.text[:300]}"
                assert took <= REFUSE_WITHIN + 1, f"{method} {path}: 503 after {took:.1f} s"
                assert error_message(r), f"{method} {path}: 503 without a message: {r.text[:300]}"

        # Writes through nodes 1 and 2 succeed (if node 3 led etcd, a new leader needs a moment).
        for node in (n1, n2):
            for _ in range(3):
                name = unique(f"during-partition-{node.n}")
                r = wait_for(lambda: (x := create_project(node, name)).status_code == 201 and x,
                             RESUME_WITHIN, f"a write through node{node.n} while node 3 is cut off")
                during.append((r.json()["project"]["id"], name))

        # Reads through node 3 keep working (its own, possibly stale, state).
        with n3.admin(timeout=REFUSE_WITHIN) as c:
            start = time.monotonic()
            r = c.get(f"/identity/v3/projects/{before['id']}")
            assert r.status_code == 200 and r.json()["project"]["name"] == before["name"], r.text
            assert c.get("/identity/v3/projects").status_code == 200
            assert c.get("/network/v2.0/networks").status_code == 200
            assert c.get("/cloudbox/v1/cluster/state").status_code == 200
            assert time.monotonic() - start < REFUSE_WITHIN
    finally:
        net.heal(3)

    states = wait_converged(cluster, 60)
    assert_same_hashes(states)
    on_3 = all_projects(n3)
    missing = [(pid, name) for pid, name in during if on_3.get(pid) != name]
    assert not missing, f"node 3 lacks writes made during its partition: {missing}"
    # A 503 means "not done": none of the refused writes may take effect after the heal (etcd
    # itself commits a put that timed out on a cut-off member once the member is back).
    assert on_3.get(before["id"]) == before["name"], "the DELETE refused with 503 happened after all"
    assert refused_project not in on_3.values(), "the project POST refused with 503 was created after the heal"
    nets = n1.get_json(f"/network/v2.0/networks?name={refused_network}")["networks"]
    assert not nets, "the network POST refused with 503 was created after the heal"


@dataclass
class Ack:
    at: float  # monotonic time of the 201
    sent: float  # when the request was sent
    project_id: str
    name: str
    via: int  # node number


def test_b_kill_9_the_etcd_leader_under_writes(cluster: list[Node], net: Underlay):
    wait_converged(cluster, 30)
    leader = etcd_leader(cluster)
    writers_via = [node for node in cluster if node is not leader]
    assert leader.etcd_pids(), f"no etcd runs in node{leader.n}'s namespace: {leader.processes()}"
    for node in writers_via:
        node.token()

    acks: list[Ack] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(node: Node) -> None:
        with node.admin(timeout=RESUME_WITHIN + 5) as c:
            while not stop.is_set():
                name = unique(f"kill-{node.n}")
                sent = time.monotonic()
                try:
                    r = c.post("/identity/v3/projects", json={"project": {"name": name}})
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"node{node.n}: {exc!r}")
                    time.sleep(0.05)
                    continue
                if r.status_code == 201:
                    with lock:
                        acks.append(Ack(time.monotonic(), sent, r.json()["project"]["id"], name, node.n))
                else:
                    with lock:
                        failures.append(f"node{node.n}: {r.status_code} {r.text[:200]}")
                    time.sleep(0.05)

    def acks_of(n: int, after: float = 0.0) -> list[Ack]:
        with lock:
            return [a for a in acks if a.via == n and a.sent > after]

    threads = [threading.Thread(target=writer, args=(node,), daemon=True) for node in writers_via]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: all(len(acks_of(node.n)) >= 10 for node in writers_via), 20,
                 "both writers to get 10 acknowledgements before the kill")
        killed_at = time.monotonic()
        leader.kill9()
        # etcd is a child of `cloudbox serve` and dies with it: nothing is left in the namespace.
        wait_for(lambda: not net.pids(leader.n), 5,
                 f"node{leader.n}'s namespace to be empty after kill -9 (left: {leader.processes()})")
        # Keep writing until both writers have 10 writes sent and acknowledged after the kill.
        wait_for(lambda: all(len(acks_of(node.n, after=killed_at)) >= 10 for node in writers_via),
                 RESUME_WITHIN + 15, "writes through both other nodes to resume after the kill")
    finally:
        stop.set()
        for t in threads:
            t.join(RESUME_WITHIN + 10)
    stopped_at = time.monotonic()

    # The longest pause in each writer's acknowledgements around the kill: from its last ack
    # before the kill to the end, each gap between consecutive acks.
    for node in writers_via:
        times = sorted(a.at for a in acks_of(node.n))
        window = [t for t in times if t <= killed_at][-1:] + [t for t in times if t > killed_at]
        gaps = [b - a for a, b in zip(window, window[1:])]
        worst = max(gaps)
        print(f"node{node.n}: {len(times)} acks, longest pause {worst:.2f} s around the kill of node{leader.n}")
        assert worst < RESUME_WITHIN, (f"writes through node{node.n} paused {worst:.1f} s after the leader "
                                       f"(node{leader.n}) died; errors: {failures[-5:]}")

    leader.serve()
    # The restarted node is a full member again: its etcd answers through it, with a leader.
    back = wait_for(lambda: (e := leader.etcd()) and e.get("leader") and e, 30,
                    f"etcd through the restarted node{leader.n} to name a leader")
    assert sorted(back["members"]) == sorted(node.name for node in cluster), back
    restarted_at = time.monotonic()
    etcd_before = {node.n: node.etcd_pids() for node in cluster}
    assert etcd_before[leader.n], f"node{leader.n} restarted without its etcd: {leader.processes()}"
    states = wait_converged(cluster, 60)
    assert_same_hashes(states)
    with lock:
        acknowledged = list(acks)
    for node in cluster:
        present = all_projects(node)
        lost = [(a.project_id, a.name, a.via) for a in acknowledged if present.get(a.project_id) != a.name]
        assert not lost, f"node{node.n} lacks {len(lost)} of {len(acknowledged)} acknowledged projects: {lost[:5]}"
    assert stopped_at - killed_at < 60

    # Each etcd keeps running: none died or was restarted behind our back, also not once the
    # threads that started them are gone (trio's idle worker threads exit after 10 s, and a
    # child started with a parent-death signal from such a thread gets it then).
    time.sleep(max(0.0, restarted_at + ETCD_STABLE_FOR - time.monotonic()))
    etcd_after = {node.n: node.etcd_pids() for node in cluster}
    assert etcd_after == etcd_before, f"etcd processes changed after the restart (node: pids): {etcd_before} -> {etcd_after}"


def test_d_refused_joins_leave_no_trace(cluster: list[Node], net: Underlay):
    n1 = cluster[0]
    names = sorted(node.name for node in cluster)

    def refused(n: int, token: str, words: tuple[str, ...]) -> str:
        joiner = net.node(n)
        assert not joiner.data_dir.exists()
        members, etcd = member_keys(n1.cluster_list()), sorted(n1.etcd()["members"])
        proc = joiner.join(token, check=False, timeout=60)
        message = proc.stderr.strip()
        print(f"join from node{n}: exit {proc.returncode}: {message}")
        assert proc.returncode != 0, f"node{n}: join should be refused but exited 0:\n{proc.stdout}"
        assert message, f"node{n}: join refused without a message on stderr:\n{proc.stdout}"
        assert any(w in message.lower() for w in words), f"node{n}: the message does not say why ({words}): {message}"
        assert "Traceback" not in message, message
        assert not joiner.data_dir.exists() or not any(joiner.data_dir.iterdir()), \
            f"node{n}: a refused join left {sorted(p.name for p in joiner.data_dir.iterdir())}"
        assert member_keys(n1.cluster_list()) == members, "a refused join changed `cluster list`"
        assert sorted(n1.etcd()["members"]) == etcd, "a refused join changed the etcd members"
        assert not net.pids(n), f"a refused join left processes: {net.node(n).processes()}"
        return message

    # A token naming another CA: the joiner must refuse the cluster before sending its secret.
    token7 = n1.cluster_add("node7")
    fields = decode_token(token7)
    assert "fingerprint" in fields and "secret" in fields, f"join token fields: {sorted(fields)}"
    wrong = hashlib.sha256(b"another CA").hexdigest()
    refused(4, edit_token(token7, fingerprint=wrong), ("fingerprint", "certificate", " ca"))

    # An expired token.
    token5 = n1.cluster_add("node5", "--ttl", "1")
    time.sleep(2)
    refused(5, token5, ("expire",))

    # A token whose secret is wrong.
    token6 = n1.cluster_add("node6")
    refused(6, edit_token(token6, secret=altered(decode_token(token6)["secret"])),
            ("secret", "token", "denied", "refused", "unauthori", "invalid"))

    # The token of the first case was not used up by the refused attempt: node 7 joins with it
    # (a fourth node: a client of etcd, not a voter) ...
    node7 = net.node(7)
    node7.password = n1.password
    node7.join(token7)
    members = wait_for(lambda: (m := n1.cluster_list()) and len(m) == 4 and m, 30, "node 7 in `cluster list`")
    [seventh] = [m for m in members if m["name"] == "node7"]
    assert seventh["role"] == "client", seventh
    assert sorted(n1.etcd()["members"]) == names

    # ... and then nobody can use it again.
    refused(8, token7, ("used", "already"))

    node7.stop()
    n1.cluster_remove("node7", "--force")
    assert sorted(m["name"] for m in n1.cluster_list()) == names


LAB = 9  # test e's namespace: two nodes and a foreign etcd on one address


def test_e_two_nodes_share_an_address_beside_another_etcd(net: Underlay, tmp_path: Path):
    """etcd's ports are node settings: on one address a foreign etcd holds the default ports
    2379/2380, and two cloudbox nodes with etcd ports of their own form a cluster beside it (the
    joiner's member is added with its own ports; it reaches the first member where etcd says)."""
    ip = net.ip(LAB)
    net.spawn(LAB, "etcd", "--name", "foreign", "--data-dir", str(tmp_path / "foreign"),
              "--listen-client-urls", f"http://{ip}:2379", "--advertise-client-urls", f"http://{ip}:2379",
              "--listen-peer-urls", f"http://{ip}:2380", "--initial-advertise-peer-urls", f"http://{ip}:2380",
              "--initial-cluster", f"foreign=http://{ip}:2380", log=tmp_path / "foreign.log")

    def foreign(*args: str) -> subprocess.CompletedProcess:
        return sh("etcdctl", f"--endpoints=http://{ip}:2379", "--dial-timeout=2s", *args, check=False, timeout=15)

    wait_for(lambda: foreign("put", "its-own", "kept").returncode == 0, 30, "the foreign etcd to serve")

    a = net.node(LAB)
    a.init("--name", "lab-a", "--set", "etcd_client_port=12379", "--set", "etcd_peer_port=12380")
    a.serve()
    b = net.node(LAB, "b", api_port=8543)
    b.password = a.password
    b.join(a.cluster_add("lab-b"), "--set", "etcd_client_port=22379", "--set", "etcd_peer_port=22380")
    b.wait_healthy(30)

    pki = a.data_dir / "pki"
    listed = net.exec(LAB, "etcdctl", f"--endpoints=https://{ip}:12379", f"--cacert={pki / 'ca.pem'}",
                      f"--cert={pki / 'node.pem'}", f"--key={pki / 'node.key'}", "member", "list").stdout
    urls = sorted(u.strip() for line in listed.splitlines() for u in line.split(",")[3:5])
    assert urls == [f"https://{ip}:{p}" for p in (12379, 12380, 22379, 22380)], listed
    # b learned a's member where etcd says it is, not at the default ports.
    joined = json.loads((b.data_dir / "cluster.json").read_text())
    assert f"https://{ip}:12379" in joined["endpoints"] and f"=https://{ip}:12380" in joined["initial_cluster"], joined
    assert (joined["client_url"], joined["peer_url"]) == (f"https://{ip}:22379", f"https://{ip}:22380"), joined
    listening = net.exec(LAB, "ss", "-ltnH").stdout
    for port in (2379, 2380, 12379, 12380, 22379, 22380):
        assert f"{ip}:{port}" in listening, f"nothing listens on {ip}:{port}:\n{listening}"

    wait_for(lambda: sorted((m["name"], m["up"]) for m in b.cluster_list()) == [("lab-a", True), ("lab-b", True)],
             30, "both lab nodes up in `cluster list`")
    r = create_project(a, unique("lab"))
    assert r.status_code == 201, r.text
    visible_soon(b, f"/identity/v3/projects/{r.json()['project']['id']}")

    # A third node on the address with the default ports is refused before it asks the cluster.
    c = net.node(LAB, "c", api_port=8643)
    proc = c.join(a.cluster_add("lab-c"), check=False, timeout=60)
    assert proc.returncode != 0 and "etcd_client_port" in proc.stderr, proc.stderr
    assert not c.data_dir.exists() or not any(c.data_dir.iterdir())
    assert sorted(m["name"] for m in a.cluster_list()) == ["lab-a", "lab-b"]
    # The foreign etcd kept its data and got none of the cloud's.
    assert foreign("get", "its-own", "--print-value-only").stdout.strip() == "kept"
    assert foreign("get", "/cloudbox", "--prefix", "--keys-only").stdout.strip() == ""

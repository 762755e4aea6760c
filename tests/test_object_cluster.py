"""Objects on a three-node cluster (tests/cluster_net.py): each object's bytes on three nodes, a
listing on any node has what another node acknowledged, a write survives a node killed in the
middle of a stream of PUTs, and the replicator restores the missing copies when it returns and
replaces a corrupted one."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.cloud import wait_for
from tests.cluster_net import Node, joined_cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root"),
]


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory):
    with joined_cluster(tmp_path_factory, "cluster-object", count=3) as nodes:
        yield nodes


def account(node: Node) -> str:
    with node.admin() as c:
        token = c.headers["X-Auth-Token"]
        project = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["project"]
    return f"/object-store/v1/AUTH_{project['id']}"


def copies(nodes: list[Node], data: bytes) -> list[int]:
    """The nodes (by number) whose object store holds a file with exactly these bytes."""
    digest = hashlib.md5(data).hexdigest()
    found = []
    for node in nodes:
        for path in (node.data_dir / "objects" / "data").rglob("*"):
            if path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() == digest:
                found.append(node.n)
                break
    return found


def test_objects_are_kept_on_three_nodes_and_survive_one(three: list[Node]):
    first, second, third = three
    base = account(first)
    with first.admin() as one, second.admin() as two, third.admin() as tri:
        assert one.put(f"{base}/c").status_code == 201
        data = os.urandom(200_000)
        assert one.put(f"{base}/c/o", content=data).status_code == 201
        # Listed and readable on every node at once: the row is in the state, the bytes on three disks.
        assert tri.get(f"{base}/c").text == "o\n"
        assert two.get(f"{base}/c/o").content == data and tri.get(f"{base}/c/o").content == data
        # Acknowledged at two durable copies: the third may land just after the 201.
        wait_for(lambda: copies(three, data) == [1, 2, 3], 30, "the third copy", every=0.2)

        # Node 3 dies in the middle of a stream of PUTs: each acknowledged object is readable from the others.
        acked: dict[str, bytes] = {}
        for i in range(30):
            body = os.urandom(10_000 + i)
            if i == 5:
                third.kill9()
            r = one.put(f"{base}/c/stream-{i}", content=body)
            if r.status_code == 201:
                acked[f"stream-{i}"] = body
            else:
                assert r.status_code == 503, r.text
        assert len(acked) >= 25
        for name, body in acked.items():
            assert one.get(f"{base}/c/{name}").content == body
            assert two.get(f"{base}/c/{name}").content == body
            wait_for(lambda: len(copies([first, second], body)) == 2, 30, "both copies", every=0.2)

    # Node 3 returns: the replicator gives every object its three copies again.
    third.serve()
    wait_for(lambda: all(copies(three, body) == [1, 2, 3] for body in acked.values()), 90,
             "three copies of every acknowledged object", every=1)

    # A copy corrupted on disk is found by the auditor and replaced with a good one.
    victim = next(p for p in (second.data_dir / "objects" / "data").rglob("*")
                  if p.is_file() and p.read_bytes() == data)
    victim.write_bytes(b"x" * len(data))
    wait_for(lambda: victim.exists() and victim.read_bytes() == data, 90, "the corrupted copy to be repaired", every=1)
    with third.admin() as tri:
        assert tri.get(f"{base}/c/o").content == data

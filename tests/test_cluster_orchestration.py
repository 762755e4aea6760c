"""Issue 18 across nodes (tests/cluster_net.py's nodes, fake drivers): node 3 is killed -9 while
it drives a stack create; once its lease ran out a live node takes the stack over (exactly once:
one "continued by node" event) and the create completes, keeping what node 3 had made."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from cloudbox.cluster.liveness import LEASE_TTL, TICK
from tests.cluster_net import Node, joined_cluster, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root"),
]

DOWN_WITHIN = LEASE_TTL + 3 + TICK  # s: as tests/test_cluster_compute.py explains
TEMPLATE = {"heat_template_version": "2021-04-16", "resources": {
    "one": {"type": "OS::Heat::TestResource", "properties": {"value": "1"}},
    "two": {"type": "OS::Heat::TestResource", "properties": {"value": "2", "wait_secs": 6}, "depends_on": ["one"]},
    "three": {"type": "OS::Heat::TestResource", "properties": {"value": "3"}, "depends_on": ["two"]},
}}


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory):
    with joined_cluster(tmp_path_factory, "cluster-orchestration", 3) as nodes:
        yield nodes


def resources(node: Node, base: str) -> dict[str, dict[str, Any]]:
    with node.admin() as c:
        return {r["resource_name"]: r for r in c.get(base + "/resources").json()["resources"]}


def test_a_killed_nodes_stack_is_continued_by_a_live_node(three: list[Node]):
    n1, n2, n3 = three
    with n3.admin() as c:
        project = c.get("/identity/v3/projects", params={"name": "admin"}).json()["projects"][0]["id"]
        heat = f"/orchestration/v1/{project}"
        r = c.post(heat + "/stacks", json={"stack_name": "left", "template": TEMPLATE})
        assert r.status_code == 201, r.text
    stack_id = r.json()["stack"]["id"]
    base = f"{heat}/stacks/left/{stack_id}"
    wait_until(lambda: resources(n1, base).get("two", {}).get("resource_status") == "CREATE_IN_PROGRESS", 30,
               "node 3 to be making the second resource")
    made_by_3 = resources(n1, base)["one"]["physical_resource_id"]
    n3.kill9()
    killed = time.monotonic()

    def ended() -> dict[str, Any] | None:
        with n2.admin() as c:
            stack = c.get(base).json()["stack"]
        return stack if not stack["stack_status"].endswith("IN_PROGRESS") else None

    stack = wait_until(ended, DOWN_WITHIN + 30, "a live node to continue the stack to its end")
    print(f"the stack ended {time.monotonic() - killed:.1f} s after node 3's kill -9")
    assert stack["stack_status"] == "CREATE_COMPLETE", stack
    rows = resources(n1, base)
    assert {n: r["resource_status"] for n, r in rows.items()} == {n: "CREATE_COMPLETE" for n in ("one", "two", "three")}
    assert rows["one"]["physical_resource_id"] == made_by_3
    with n1.admin() as c:
        events = c.get(base + "/events", params={"limit": 200}).json()["events"]
    taken = [e["resource_status_reason"] for e in events if "continued by node" in e["resource_status_reason"]]
    assert len(taken) == 1, taken

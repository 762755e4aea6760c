"""Issue 19 (upgrades): a mixed cluster of three real nodes on etcd (tests/cluster_net.py), one of
them "older" (started with CLOUDBOX_TEST_COMMAND_SCHEMA=1: it speaks command schema 1, as the
release before versioned commands).

The cluster keeps working with it; the newer nodes do not send the command of schema 2 until it is
upgraded (409 naming it); forced anyway, the old node stops at that entry, loudly (health,
`cloudbox status`, its log), keeps serving reads and refuses writes, while the others go on with
equal state hashes; restarted without the cap ("upgraded"), it applies from there and all three
hold the same state again.

Run as root:  python -m pytest -p no:cacheprovider tests/test_cluster_upgrade.py -x -q
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from typing import Any

import httpx
import pytest

from cloudbox.state.commands import SCHEMA_CAP_ENV
from tests.cloud import wait_for
from tests.cluster_net import PYTHON, ROOT, Node, clean_env, error_message, joined_cluster, wait_converged

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root"),
]


def restart(node: Node, schema_cap: int | None) -> None:
    """Stop ``node`` and serve it again, speaking at most command schema ``schema_cap`` (None: all)."""
    node.stop()
    env = clean_env(node.home)
    if schema_cap is not None:
        env[SCHEMA_CAP_ENV] = str(schema_cap)
    argv = node.underlay.command(node.n, PYTHON, "-m", "cloudbox", "serve", "--data-dir", str(node.data_dir),
                                 "--background")
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"node{node.n}: serve failed:\n{proc.stdout}\n{proc.stderr}\n{node.log_tail()}"


def create_project(node: Node) -> httpx.Response:
    with node.admin() as c:
        return c.post("/identity/v3/projects", json={"project": {"name": f"upgrade-{uuid.uuid4().hex[:10]}"}})


def upgrade_view(node: Node) -> dict[str, Any]:
    return node.get_json("/cloudbox/v1/cluster/upgrade")


def same_hashes(states: list[dict[str, Any]]) -> None:
    first = states[0]
    assert first["hashes"]
    for other in states[1:]:
        differ = sorted(t for t in set(first["hashes"]) | set(other["hashes"])
                        if first["hashes"].get(t) != other["hashes"].get(t))
        assert not differ, f"{first['node']} and {other['node']} differ in {differ}"


def test_a_mixed_cluster_keeps_working_and_the_old_node_catches_up_after_its_upgrade(tmp_path_factory):
    started = time.monotonic()
    with joined_cluster(tmp_path_factory, "upgrade", count=3) as nodes:
        n1, n2, n3 = nodes
        formed = time.monotonic()
        restart(n3, schema_cap=1)  # node 3 runs "the previous release"
        assert n3.health()["command_schema"] == 1
        wait_for(lambda: upgrade_view(n1)["lowest_nodes"] == "node3" and upgrade_view(n1), 15,
                 "node 1 to see that node 3 speaks only schema 1")
        view = upgrade_view(n1)
        assert (view["finished_schema"], view["lowest_schema"], view["this_node"]["command_schema"]) == (1, 1, 2)
        schemas = {m["name"]: m["command_schema"] for m in n1.get_json("/cloudbox/v1/nodes")["nodes"]}
        assert schemas == {"node1": 2, "node2": 2, "node3": 1}
        status = n1.cli("status", "--data-dir", str(n1.data_dir)).stdout
        assert "command schema 2" in status.splitlines()[4], status  # node 1's own line
        node_lines = {line.split()[0]: line for line in status.splitlines() if line.startswith("  node")}
        assert "command schema 1" in node_lines["node3"] and "command schema 2" in node_lines["node2"], status

        # The newer nodes do not send what node 3 cannot apply; everything else works on every node.
        with n1.admin() as c:
            r = c.post("/cloudbox/v1/cluster/upgrade", json={})
        assert r.status_code == 409 and "node3" in error_message(r), r.text
        for node in nodes:
            r = create_project(node)
            assert r.status_code == 201, f"node{node.n}: {r.status_code} {r.text}"
        before = r.json()["project"]
        same_hashes(wait_converged(nodes, 30))

        # Forced anyway: node 3 stops at that entry, says so, serves reads, refuses writes.
        with n1.admin() as c:
            r = c.post("/cloudbox/v1/cluster/upgrade", json={"force": True})
        assert r.status_code == 200 and r.json()["finished_schema"] == 2, r.text
        health = wait_for(lambda: (h := n3.health()) and h.get("stalled") and h, 15, "node 3 to stop at the entry")
        assert health["status"] == "degraded" and health["stalled"]["command"] == "cluster.upgrade.finish", health
        stall_at = health["stalled"]["revision"]
        assert n3.get_json(f"/identity/v3/projects/{before['id']}")["project"]["name"] == before["name"]
        t0 = time.monotonic()
        r = create_project(n3)
        assert r.status_code == 503 and "stopped applying the cluster's log" in error_message(r), r.text
        assert time.monotonic() - t0 < 2, "a stopped node must refuse writes at once"
        assert "does not understand" in n3.log_file.read_text(errors="replace")
        status = n3.cli("status", "--data-dir", str(n3.data_dir), check=False)
        assert status.returncode == 1 and "STOPPED" in status.stdout, status.stdout
        restart(n3, schema_cap=1)  # restarted before its upgrade: it comes back stopped at the same entry
        health = wait_for(lambda: (h := n3.health()) and h.get("stalled") and h, 15, "node 3 to stop there again")
        assert health["stalled"]["revision"] == stall_at, health
        assert n3.get_json(f"/identity/v3/projects/{before['id']}")["project"]["name"] == before["name"]

        r = create_project(n1)
        assert r.status_code == 201, r.text
        after = r.json()["project"]
        states = wait_converged([n1, n2], 30)
        same_hashes(states)
        assert n3.cluster_state()["applied_revision"] < states[0]["applied_revision"]
        with n3.admin() as c:
            assert c.get(f"/identity/v3/projects/{after['id']}").status_code == 404

        # The upgrade: node 3 restarted by a release that speaks schema 2 applies from where it stopped.
        upgraded = time.monotonic()
        restart(n3, schema_cap=None)
        health = n3.wait_healthy(30)
        assert health["command_schema"] == 2 and "stalled" not in health
        same_hashes(wait_converged(nodes, 30))
        caught_up = time.monotonic() - upgraded
        assert n3.get_json(f"/identity/v3/projects/{after['id']}")["project"]["name"] == after["name"]
        wait_for(lambda: upgrade_view(n1)["lowest_schema"] == 2, 15, "node 1 to see every node at schema 2")
        assert upgrade_view(n3)["finished_schema"] == 2
        r = create_project(n3)
        assert r.status_code == 201, r.text
        same_hashes(wait_converged(nodes, 30))
        print(f"cluster formed in {formed - started:.1f} s; node 3 upgraded and caught up in {caught_up:.1f} s; "
              f"test body {time.monotonic() - formed:.1f} s")

"""Versioned commands (issue 19, rolling upgrades), on the state engine alone: a node stops, loudly
and without skipping, at a log entry it does not understand, serves reads meanwhile, refuses its own
writes, and after its upgrade applies from there to the same state as the others; a command is not
proposed while some node of the cluster cannot apply it.  The same on three real nodes and etcd is
tests/test_cluster_upgrade.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
import trio

from cloudbox.cluster import commands as cluster_commands
from cloudbox.cluster import service as cluster_service
from cloudbox.cluster import store as cluster_store
from cloudbox.errors import InternalError, Unavailable
from cloudbox.state import commands as cmds
from cloudbox.state.engine import StateEngine, replay
from tests.cloud import run_cli
from tests.test_commit_path import STORE, Append, NodeLog, SharedLog, rows, run_in, wait_applied

STORES = [STORE, cluster_store.STORE]


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[callable]:
    """``cap(n)``: this process speaks at most command schema n (as an older release); undone after."""

    def set_cap(n: int | None) -> None:
        if n is None:
            monkeypatch.delenv(cmds.SCHEMA_CAP_ENV, raising=False)
        else:
            monkeypatch.setenv(cmds.SCHEMA_CAP_ENV, str(n))
        cmds.known_schema.cache_clear()

    yield set_cap
    set_cap(None)


def finish(schema: int = 2) -> cluster_commands.FinishUpgrade:
    return cluster_commands.FinishUpgrade(schema, "2026-12-07T12:00:00Z", ())


def test_schema_1_texts_are_unchanged_and_newer_ones_carry_their_version():
    assert cmds.encode(Append(1, 2)) == '{"args":{"n":2,"writer":1},"type":"commitpath.append"}'
    text = cmds.encode(finish())
    assert json.loads(text)["v"] == 2 and cmds.decode(text) == finish()
    assert cmds.known_schema() == cmds.COMMAND_SCHEMA == 2


def test_what_a_node_does_not_understand_is_refused_by_name(cap):
    unknown = '{"args":{},"type":"compute.teleport"}'
    with pytest.raises(cmds.NotUnderstood, match="compute.teleport' is unknown to this node") as exc:
        cmds.decode(unknown)
    assert (exc.value.kind, exc.value.version, exc.value.known) == ("compute.teleport", 1, 2)
    newer_shape = '{"args":{"n":2,"writer":1},"type":"commitpath.append","v":3}'
    with pytest.raises(cmds.NotUnderstood, match="of schema 3, newer"):
        cmds.decode(newer_shape)
    with pytest.raises(InternalError, match="undecodable") as broken:
        cmds.decode('{"args": 1}')
    assert not isinstance(broken.value, cmds.NotUnderstood)
    cap(1)  # an older release: the kind of schema 2 is unknown to it
    with pytest.raises(cmds.NotUnderstood, match="cluster.upgrade.finish' is unknown"):
        cmds.decode(cmds.encode(finish()))
    assert cmds.decode(cmds.encode(Append(1, 2))) == Append(1, 2)


async def test_a_node_stops_at_what_it_does_not_understand_and_catches_up_after_its_upgrade(tmp_path: Path, cap):
    shared = SharedLog()
    new = StateEngine(tmp_path / "new.db", STORES)
    new.open(create=True)
    new.log = NodeLog(shared, "new")
    async with trio.open_nursery() as nursery:
        await nursery.start(run_in, new, trio.CancelScope())
        await new.propose(Append(1, 1))
        new.cluster_schema, new.schema_laggards = 1, "old"  # the old node is a member
        with pytest.raises(Unavailable, match="needs command schema 2, but old speaks only 1"):
            await new.propose(finish())
        assert await new.propose(finish(), ungated=True) == 2  # the operator forced it
        await new.propose(Append(1, 2))
        await wait_applied(new, shared.revision)
        nursery.cancel_scope.cancel()
    stall_at = shared.events[1].revision
    assert rows(new) == [(1, 1), (1, 2)]

    cap(1)  # the old node follows the same log from the start
    old_path = tmp_path / "old.db"
    old = StateEngine(old_path, STORES)
    old.open(create=True)
    old.log = NodeLog(shared, "old")
    async with trio.open_nursery() as nursery:
        await nursery.start(run_in, old, trio.CancelScope())
        with trio.fail_after(20):
            while old.stalled is None:
                await old.applied.wait()
        assert old.applied_revision == shared.events[0].revision
        assert old.stalled["revision"] == stall_at and old.stalled["command"] == "cluster.upgrade.finish"
        assert "upgrade it" in old.stalled["message"]
        assert rows(old) == [(1, 1)]  # reads of the state before it, nothing after it
        with pytest.raises(Unavailable, match="stopped applying the cluster's log at revision"):
            await old.propose(Append(2, 1))
        shared.put(json.dumps({"origin": "new", "batch": "b", "commands": [cmds.encode(Append(1, 3))]}).encode())
        await trio.sleep(0.2)  # a later entry does not move it past the one it stopped at
        assert old.applied_revision == shared.events[0].revision and rows(old) == [(1, 1)]
        nursery.cancel_scope.cancel()
    old.close()

    cap(None)  # the upgrade: restarted by a release that speaks schema 2
    upgraded = await restarted(old_path, shared)
    assert upgraded.stalled is None
    assert rows(upgraded) == [(1, 1), (1, 2), (1, 3)]
    assert upgraded.read_sync(cluster_store.cluster_schema) == 2
    new.close()  # the new node applies the last entry too (it stopped before it was put)
    new = await restarted(tmp_path / "new.db", shared)
    assert upgraded.table_hashes() == new.table_hashes()
    assert replay(upgraded.log_entries(), tmp_path / "replayed.db", STORES) == upgraded.table_hashes()
    upgraded.close()
    new.close()


async def restarted(path: Path, shared: SharedLog) -> StateEngine:
    """A node restarted on its database: it follows the log until it applied all of it."""
    engine = StateEngine(path, STORES)
    engine.open()
    engine.log = NodeLog(shared, path.stem)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_in, engine, trio.CancelScope())
        await wait_applied(engine, shared.revision)
        nursery.cancel_scope.cancel()
    return engine


def test_a_node_alone_refuses_what_it_does_not_speak(tmp_path: Path, cap):
    engine = StateEngine(tmp_path / "alone.db", STORES)
    engine.open(create=True)
    engine.running = True
    try:
        engine._admit(finish(), False)  # alone, the cluster is this node: schema 2
        cap(1)
        with pytest.raises(Unavailable, match="This node speaks command schema 1; cluster.upgrade.finish needs 2"):
            engine._admit(finish(), True)
    finally:
        engine.running = False
        engine.close()


def test_one_node_shows_its_versions_and_finishes_an_upgrade_once(new_cloud):
    new_cloud.init()
    new_cloud.start()
    with new_cloud.client(new_cloud.token()) as c:
        health = c.get("/cloudbox/v1/health").json()
        assert (health["status"], health["command_schema"]) == ("ok", 2) and "stalled" not in health
        me = c.get("/cloudbox/v1/nodes").json()["nodes"][0]
        assert (me["version"], me["command_schema"]) == (health["version"], 2)
        view = c.get("/cloudbox/v1/cluster/upgrade").json()
        assert (view["finished_schema"], view["lowest_schema"], view["stalled"]) == (1, 2, None)
        fresh = run_cli("status", "--data-dir", str(new_cloud.data_dir)).stdout
        assert "no upgrade recorded; the cluster's nodes speak at least command schema 2" in fresh, fresh
        for bad in ({"force": "yes"}, {"bogus": 1}):
            r = c.post("/cloudbox/v1/cluster/upgrade", json=bad)
            assert r.status_code == 400, r.text
        r = c.post("/cloudbox/v1/cluster/upgrade", json={})
        assert r.status_code == 200 and r.json()["finished_schema"] == 2, r.text
        seq = c.get("/cloudbox/v1/cluster/state").json()["applied_seq"]
        r = c.post("/cloudbox/v1/cluster/upgrade", json={})
        assert r.status_code == 200 and r.json()["finished_schema"] == 2, r.text
        assert c.get("/cloudbox/v1/cluster/state").json()["applied_seq"] == seq, "finished twice"

        # A node of an older release may no longer join; the refusal uses up nothing.
        r = c.post("/cloudbox/v1/cluster/join-tokens", json={"name": "old-node"})
        assert r.status_code == 201, r.text
        token = cluster_service.decode_token(r.json()["join_token"]["token"])
        join = {"token_id": token["id"], "secret": token["secret"], "name": "old-node", "csr": "not a csr",
                "address": "127.0.0.1"}
        r = c.post("/cloudbox/v1/cluster/join", json=join)  # an older joiner says no schema: 1
        assert r.status_code == 409 and "finished its upgrade to schema 2" in r.text, r.text
        r = c.post("/cloudbox/v1/cluster/join", json={**join, "command_schema": 2, "package": "x"})
        assert r.status_code == 400 and "CSR" in r.text, r.text  # past the version check; the token still good
    status = run_cli("status", "--data-dir", str(new_cloud.data_dir)).stdout
    assert f"(version {health['version']}, command schema 2)" in status, status
    assert "finished its upgrade to command schema 2" in status, status
    assert [line.split()[-1] for line in status.splitlines() if line.startswith("  ") and "cloudbox " in line] == ["2"]
    new_cloud.stop()

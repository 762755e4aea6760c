"""Replay the log of a real server, and kill -9 a server while clients write."""

from __future__ import annotations

import signal
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudbox.errors import CloudboxError
from cloudbox.services import STORES
from cloudbox.state import db as dbmod
from cloudbox.state.engine import replay
from tests.cloud import Cloud, wait_for
from tests.test_command_registry import replay_in_fresh_interpreter


def _live_log_and_hashes(path) -> tuple[list[str], dict[str, str]]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one snapshot for both
        entries = [r[0] for r in conn.execute("SELECT body FROM _log ORDER BY seq")]
        hashes = dbmod.table_hashes(conn)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return entries, hashes


async def refused_without_change(engine: Any, path: Path, cmd: Any, fragment: str) -> None:
    """``cmd`` is refused with a message naming ``fragment``, and no table of ``path`` changed."""
    before = _live_log_and_hashes(path)[1]
    with pytest.raises(CloudboxError) as caught:
        await engine.propose(cmd)
    assert fragment in caught.value.message
    assert _live_log_and_hashes(path)[1] == before


def test_replaying_the_log_rebuilds_the_database_exactly(new_cloud: Cloud, tmp_path):
    new_cloud.init()
    new_cloud.start()
    admin = new_cloud.client(new_cloud.token())
    p = admin.post("/identity/v3/projects", json={"project": {"name": "replay-p"}}).json()["project"]
    u = admin.post("/identity/v3/users", json={"user": {"name": "replay-u", "password": "pw",
                                                        "default_project_id": p["id"]}}).json()["user"]
    roles = {r["name"]: r["id"] for r in admin.get("/identity/v3/roles").json()["roles"]}
    assert admin.put(f"/identity/v3/projects/{p['id']}/users/{u['id']}/roles/{roles['member']}").status_code == 204
    g = admin.post("/identity/v3/groups", json={"group": {"name": "replay-g"}}).json()["group"]
    assert admin.put(f"/identity/v3/groups/{g['id']}/users/{u['id']}").status_code == 204
    user_token = new_cloud.token("replay-u", "pw", project="replay-p")
    assert admin.delete("/identity/v3/auth/tokens", headers={"X-Subject-Token": user_token}).status_code == 204
    assert admin.patch(f"/identity/v3/users/{u['id']}", json={"user": {"password": "pw2"}}).status_code == 200
    assert admin.post("/identity/v3/projects", json={"project": {"name": "replay-p"}}).status_code == 409
    assert admin.post("/cloudbox/v1/token-keys/rotate").status_code == 200
    assert admin.delete(f"/identity/v3/groups/{g['id']}").status_code == 204

    entries, live = _live_log_and_hashes(new_cloud.data_dir / "state.db")
    assert len(entries) > 20
    assert "revocations" in live and "token_keys" in live
    assert replay(entries, tmp_path / "replayed.db", STORES) == live
    # The node made its external network at start: the log holds network commands, and an
    # interpreter that imported nothing but the list of stores decodes and replays them too.
    assert any('"type":"network.' in e for e in entries)
    assert replay_in_fresh_interpreter(entries, tmp_path) == live


def test_kill_9_loses_no_acknowledged_write(new_cloud: Cloud):
    new_cloud.init()
    new_cloud.start()
    token = new_cloud.token()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer() -> None:
        with new_cloud.client(token) as client:
            while not stop.is_set():
                name = "crash-" + uuid.uuid4().hex[:12]
                try:
                    r = client.post("/identity/v3/projects", json={"project": {"name": name}})
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 201:
                    with lock:
                        acked.append(r.json()["project"]["id"])

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acked) >= 150, 30, "the writers to have 150 writes acknowledged", every=0.05)
    finally:
        new_cloud.proc.send_signal(signal.SIGKILL)  # mid-write: clients are still sending
        new_cloud.proc.wait()
        stop.set()
        for t in threads:
            t.join()
    assert len(acked) >= 150, "the writers made too little progress to test anything"

    conn = sqlite3.connect(new_cloud.data_dir / "state.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    new_cloud.start()
    admin = new_cloud.client(new_cloud.token())
    present: set[str] = set()
    url = "/identity/v3/projects?limit=200"
    while url:
        body = admin.get(url).json()
        present.update(p["id"] for p in body["projects"])
        url = body["links"]["next"]
    missing = set(acked) - present
    assert not missing, f"{len(missing)} acknowledged projects were lost"
    conn = sqlite3.connect(new_cloud.data_dir / "state.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

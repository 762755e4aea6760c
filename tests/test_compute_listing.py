"""Server lists answered from a kept encoding: the same answer only in the same state, for the
same caller's view; any commit, or another view, makes a fresh one."""

from __future__ import annotations

import json
from types import SimpleNamespace

from cloudbox.compute import listing
from tests.cloud import Cloud
from tests.compute_helpers import LATEST, boot, make_qcow2, new_project_user, upload_image, wait_server


def test_answers_are_kept_per_state_and_key():
    answers = listing.Answers()
    engine = SimpleNamespace(last_seq=7, applied_revision=0)
    state = listing.Answers.state(engine, None)
    assert answers.get(state, "k") is None
    answers.put(state, "k", b"one")
    assert answers.get(state, "k") == b"one"
    assert answers.get(state, "other") is None
    engine.last_seq = 8  # a commit: nothing kept before it is answered again
    later = listing.Answers.state(engine, None)
    assert answers.get(later, "k") is None
    answers.put(later, "k", b"two")
    assert answers.get(later, "k") == b"two" and answers.get(state, "k") is None
    # The hosts that are up are part of the state (a node going down changes no row).
    assert listing.Answers.state(engine, {"a"}) != listing.Answers.state(engine, {"a", "b"})
    assert listing.Answers.state(engine, set()) != later
    for i in range(listing.KEPT + 1):  # bounded: past KEPT keys the kept answers start over
        answers.put(later, i, b"x")
    assert answers.get(later, "k") is None and answers.get(later, listing.KEPT) == b"x"


def test_encode_is_the_api_encoding():
    body = {"servers": [{"name": "é ☃", "n": 1, "none": None, "l": [True]}]}
    assert listing.encode(body) == json.dumps(body, separators=(",", ":")).encode()


def test_lists_follow_every_commit_and_each_caller_sees_its_own(cloud: Cloud, tmp_path):
    with cloud.client(cloud.token()) as admin:
        image = upload_image(admin, make_qcow2(tmp_path / "d.qcow2"), visibility="public")
        project, _, member_token = new_project_user(cloud, admin)
        with cloud.client(member_token) as member:
            sid = boot(member, image["id"])["id"]
            wait_server(member, sid, {"ACTIVE"})
            first = member.get("/compute/v2.1/servers/detail", headers=LATEST)
            again = member.get("/compute/v2.1/servers/detail", headers=LATEST)
            assert first.status_code == again.status_code == 200
            assert first.headers["content-type"] == "application/json"
            assert first.content == again.content
            assert [s["id"] for s in first.json()["servers"]] == [sid]
            # The admin asks in the same state: admins' attributes, never the member's answer.
            seen = admin.get(f"/compute/v2.1/servers/detail?all_tenants=1&project_id={project}", headers=LATEST)
            assert seen.status_code == 200
            assert seen.json()["servers"][0]["OS-EXT-SRV-ATTR:host"] is not None
            assert "OS-EXT-SRV-ATTR:host" not in first.json()["servers"][0]
            # Another microversion, another answer (2.1 has no tags, no description).
            old = member.get("/compute/v2.1/servers/detail")
            assert old.headers["OpenStack-API-Version"] == "compute 2.1"
            assert "tags" not in old.json()["servers"][0] and "tags" in first.json()["servers"][0]
            # A rename is seen by the very next list.
            r = member.put(f"/compute/v2.1/servers/{sid}", json={"server": {"name": "renamed"}}, headers=LATEST)
            assert r.status_code == 200, r.text
            names = [s["name"] for s in member.get("/compute/v2.1/servers/detail", headers=LATEST).json()["servers"]]
            assert names == ["renamed"]
            assert [s["name"] for s in member.get("/compute/v2.1/servers").json()["servers"]] == ["renamed"]
            # A page and its next link are the page's own.
            paged = member.get("/compute/v2.1/servers/detail?limit=0", headers=LATEST).json()
            assert paged["servers"] == []
            member.delete(f"/compute/v2.1/servers/{sid}")

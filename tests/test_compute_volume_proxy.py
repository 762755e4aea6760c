"""Nova's volume proxies (os-volumes, os-snapshots, to 2.35) over real HTTPS against a running node
with the real volume service: Nova's camelCase shapes, paging by limit and offset, refusals that
change nothing, another project's volume unseen, and 404 from 2.36 on."""

from __future__ import annotations

from typing import Any

import httpx

from tests.cloud import Cloud, wait_for
from tests.test_fuzz import _document, _matches
from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)
from tests.test_volume_api import V, unique

C = "/compute/v2.1"
OLD = {"OpenStack-API-Version": "compute 2.35"}
KEYS = {"id", "status", "size", "availabilityZone", "createdAt", "displayName", "displayDescription",
        "volumeType", "snapshotId", "metadata", "attachments"}


def proxied(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("size", 1)
    fields.setdefault("display_name", unique("pv"))
    r = client.post(f"{C}/os-volumes", json={"volume": fields}, headers=OLD)
    assert r.status_code == 200, r.text
    volume = r.json()["volume"]
    assert set(volume) == KEYS, volume

    def available() -> dict[str, Any] | None:
        shown = client.get(f"{C}/os-volumes/{volume['id']}", headers=OLD)
        assert shown.status_code == 200, shown.text
        return shown.json()["volume"] if shown.json()["volume"]["status"] == "available" else None

    return wait_for(available, 60, "the volume to be available", every=0.1)


def count(client: httpx.Client) -> int:
    return len(client.get(f"{V}/volumes").json()["volumes"])


def test_volume_create_show_list_delete(alpha: Tenant, beta: Tenant):
    volume = proxied(alpha.member, metadata={"Type": "work"}, display_description="d")
    assert volume["attachments"] == [{}]  # Nova's shape for a volume attached nowhere
    assert (volume["size"], volume["metadata"], volume["displayDescription"]) == (1, {"Type": "work"}, "d")
    # the same volume in the volume service's own API
    assert alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]["name"] == volume["displayName"]
    for path in ("os-volumes", "os-volumes/detail"):
        listed = alpha.member.get(f"{C}/{path}", headers=OLD).json()["volumes"]
        assert volume["id"] in [v["id"] for v in listed]
        assert all(set(v) == KEYS for v in listed)
    assert beta.member.get(f"{C}/os-volumes/{volume['id']}", headers=OLD).status_code == 404
    assert beta.member.delete(f"{C}/os-volumes/{volume['id']}", headers=OLD).status_code == 404
    r = alpha.member.delete(f"{C}/os-volumes/{volume['id']}", headers=OLD)
    assert r.status_code == 202, r.text
    wait_for(lambda: alpha.member.get(f"{C}/os-volumes/{volume['id']}", headers=OLD).status_code == 404, 60,
             "the volume to go")


def test_paging_by_limit_and_offset(alpha: Tenant):
    made = [proxied(alpha.member)["id"] for _ in range(3)]
    everything = [v["id"] for v in alpha.member.get(f"{C}/os-volumes/detail", headers=OLD).json()["volumes"]]
    assert set(made) <= set(everything)
    page = alpha.member.get(f"{C}/os-volumes/detail?limit=2&offset=1", headers=OLD).json()["volumes"]
    assert [v["id"] for v in page] == everything[1:3]
    page = alpha.member.get(f"{C}/os-volumes?limit=1", headers=OLD).json()["volumes"]
    assert [v["id"] for v in page] == everything[:1]
    assert alpha.member.get(f"{C}/os-volumes?offset=-1", headers=OLD).status_code == 400


def test_bad_input_is_refused_and_makes_nothing(alpha: Tenant):
    before = count(alpha.member)
    for body in ({"volume": {"size": 0}}, {"volume": {"size": "#$%"}}, {"volume": {"display_name": "x"}},
                 {"volume": {"size": 1, "bogus": 1}}, {}):
        r = alpha.member.post(f"{C}/os-volumes", json=body, headers=OLD)
        assert r.status_code == 400, (body, r.text)
    assert count(alpha.member) == before
    for path in ("os-volumes/" + "f" * 8, "os-volumes/", "os-snapshots/nope"):
        assert alpha.member.get(f"{C}/{path}", headers=OLD).status_code == 404, path
    assert alpha.member.delete(f"{C}/os-volumes/", headers=OLD).status_code in (404, 405)


def test_snapshot_create_show_list_delete(alpha: Tenant):
    volume = proxied(alpha.member)
    r = alpha.member.post(f"{C}/os-snapshots", headers=OLD, json={"snapshot": {
        "volume_id": volume["id"], "force": False, "display_name": "snap", "display_description": "why"}})
    assert r.status_code == 200, r.text
    snap = r.json()["snapshot"]
    assert set(snap) == {"id", "volumeId", "status", "size", "createdAt", "displayName", "displayDescription"}
    assert (snap["volumeId"], snap["size"], snap["displayName"]) == (volume["id"], 1, "snap")
    wait_for(lambda: alpha.member.get(f"{C}/os-snapshots/{snap['id']}", headers=OLD).json()["snapshot"]["status"]
             == "available", 60, "the snapshot")
    for path in ("os-snapshots", "os-snapshots/detail"):
        assert snap["id"] in [s["id"] for s in alpha.member.get(f"{C}/{path}", headers=OLD).json()["snapshots"]]
    assert alpha.member.delete(f"{C}/os-snapshots/{snap['id']}", headers=OLD).status_code == 202
    wait_for(lambda: alpha.member.get(f"{C}/os-snapshots/{snap['id']}", headers=OLD).status_code == 404, 60,
             "the snapshot to go")


def test_removed_at_2_36(alpha: Tenant):
    new = {"OpenStack-API-Version": "compute 2.36"}
    before = count(alpha.member)
    assert alpha.member.get(f"{C}/os-volumes", headers=new).status_code == 404
    assert alpha.member.post(f"{C}/os-volumes", json={"volume": {"size": 1}}, headers=new).status_code == 404
    assert alpha.member.get(f"{C}/os-snapshots", headers=new).status_code == 404
    assert count(alpha.member) == before


def test_answers_match_the_document(cloud: Cloud, alpha: Tenant):
    document = _document(cloud)
    volume = proxied(alpha.member)
    _matches(document, "GET", f"{C}/os-volumes/{{volume_id}}", 200,
             alpha.member.get(f"{C}/os-volumes/{volume['id']}", headers=OLD).json())
    _matches(document, "GET", f"{C}/os-volumes/detail", 200,
             alpha.member.get(f"{C}/os-volumes/detail", headers=OLD).json())
    r = alpha.member.post(f"{C}/os-snapshots", headers=OLD, json={"snapshot": {"volume_id": volume["id"]}})
    _matches(document, "POST", f"{C}/os-snapshots", 200, r.json())
    _matches(document, "GET", f"{C}/os-snapshots", 200, alpha.member.get(f"{C}/os-snapshots", headers=OLD).json())

"""API behaviour the guest acceptance (test_volume_tutorial.py) relies on, checked fast without
guests: the real CLI's `volume snapshot create --force` of an in-use volume."""

from __future__ import annotations

import httpx

from tests.cloud import Cloud, wait_for

V = "/volume/v3"


def at(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"volume {version}"}


def test_snapshot_of_an_in_use_volume_by_microversion(new_cloud: Cloud):
    """Cinder 3.66: an in-use volume is snapshotted without force (openstackclient then stops
    sending it); force false is a 400 from 3.66; before 3.66 an in-use volume needs force."""
    new_cloud.init()
    new_cloud.start()
    admin: httpx.Client = new_cloud.client(new_cloud.token())
    vid = admin.post(f"{V}/volumes", json={"volume": {"size": 1}}).json()["volume"]["id"]
    wait_for(lambda: admin.get(f"{V}/volumes/{vid}").json()["volume"]["status"] == "available", 60, "the volume")
    assert admin.post(f"{V}/volumes/{vid}/action", json={"os-reset_status": {"status": "in-use"}}).status_code == 202

    def snapshot(version: str, **extra: object) -> httpx.Response:
        return admin.post(f"{V}/snapshots", json={"snapshot": {"volume_id": vid, **extra}}, headers=at(version))

    r = snapshot("3.65")
    assert r.status_code == 400 and "force" in r.text, r.text
    r = snapshot("3.66", force=False)
    assert r.status_code == 400 and "3.66" in r.text, r.text
    made = [snapshot("3.65", force=True), snapshot("3.66"), snapshot("3.71", force=True)]
    assert [r.status_code for r in made] == [202, 202, 202], [r.text for r in made]
    listed = admin.get(f"{V}/snapshots").json()["snapshots"]
    assert sorted(s["id"] for s in listed) == sorted(r.json()["snapshot"]["id"] for r in made)
    admin.close()

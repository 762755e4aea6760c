"""Volume transfers between projects (Cinder's os-volume-transfer, and volume-transfers at 3.55+),
over HTTPS against the shared node: offer, list, withdraw, accept with the key (quota and
ownership move), and bad input that changes nothing."""

from __future__ import annotations

import httpx

from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)
from tests.test_volume_api import V, create, fault, wait_snapshot

NEW = {"OpenStack-API-Version": "volume 3.57"}


def usage(admin: httpx.Client, project_id: str) -> dict[str, int]:
    body = admin.get(f"{V}/os-quota-sets/{project_id}", params={"usage": "true"}).json()["quota_set"]
    return {k: body[k]["in_use"] for k in ("volumes", "gigabytes", "snapshots")}


def test_offer_withdraw_and_accept_move_the_volume(alpha: Tenant, beta: Tenant, admin: httpx.Client):
    volume = create(alpha.member, size=2)
    r = alpha.member.post(f"{V}/snapshots", json={"snapshot": {"volume_id": volume["id"]}})
    snapshot = wait_snapshot(alpha.member, r.json()["snapshot"]["id"])
    # an offer, withdrawn: the volume is available again
    r = alpha.member.post(f"{V}/os-volume-transfer", json={"transfer": {"volume_id": volume["id"], "name": "t"}})
    assert r.status_code == 202, r.text
    offer = r.json()["transfer"]
    assert set(offer) == {"id", "name", "volume_id", "links", "created_at", "auth_key"}
    assert alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]["status"] == "awaiting-transfer"
    fault(alpha.member.delete(f"{V}/volumes/{volume['id']}"), 400)  # not while offered
    listed = alpha.reader.get(f"{V}/os-volume-transfer").json()["transfers"]
    assert [t["id"] for t in listed] == [offer["id"]] and "created_at" not in listed[0]
    assert beta.member.get(f"{V}/os-volume-transfer").json()["transfers"] == []
    fault(beta.member.get(f"{V}/os-volume-transfer/{offer['id']}"), 404)
    fault(alpha.reader.delete(f"{V}/os-volume-transfer/{offer['id']}"), 403)
    assert alpha.member.delete(f"{V}/os-volume-transfer/{offer['id']}").status_code == 202
    assert alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]["status"] == "available"
    fault(beta.member.post(f"{V}/os-volume-transfer/{offer['id']}/accept",
                           json={"accept": {"auth_key": offer["auth_key"]}}), 404)
    # the new API (3.55+; 3.57 shows the projects); a wrong key moves nothing
    fault(alpha.member.get(f"{V}/volume-transfers"), 404, "3.55")
    r = alpha.member.post(f"{V}/volume-transfers", json={"transfer": {"volume_id": volume["id"]}}, headers=NEW)
    assert r.status_code == 202, r.text
    offer = r.json()["transfer"]
    assert (offer["source_project_id"], offer["accepted"], offer["no_snapshots"]) == (alpha.project_id, False, False)
    before_alpha, before_beta = usage(admin, alpha.project_id), usage(admin, beta.project_id)
    accept = f"{V}/volume-transfers/{offer['id']}/accept"
    fault(beta.member.post(accept, json={"accept": {"auth_key": "0" * 16}}, headers=NEW), 400, "auth key")
    fault(beta.member.post(accept, json={"accept": {}}, headers=NEW), 400)
    fault(beta.reader.post(accept, json={"accept": {"auth_key": offer["auth_key"]}}, headers=NEW), 403)
    assert usage(admin, beta.project_id) == before_beta
    r = beta.member.post(accept, json={"accept": {"auth_key": offer["auth_key"]}}, headers=NEW)
    assert r.status_code == 202, r.text
    assert r.json()["transfer"]["volume_id"] == volume["id"]
    moved = beta.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]
    assert (moved["status"], moved["os-vol-tenant-attr:tenant_id"]) == ("available", beta.project_id)
    fault(alpha.member.get(f"{V}/volumes/{volume['id']}"), 404)
    assert beta.member.get(f"{V}/snapshots/{snapshot['id']}").status_code == 200
    gb = volume["size"] + snapshot["size"]
    assert usage(admin, beta.project_id) == {"volumes": before_beta["volumes"] + 1,
                                             "gigabytes": before_beta["gigabytes"] + gb,
                                             "snapshots": before_beta["snapshots"] + 1}
    assert usage(admin, alpha.project_id) == {"volumes": before_alpha["volumes"] - 1,
                                              "gigabytes": before_alpha["gigabytes"] - gb,
                                              "snapshots": before_alpha["snapshots"] - 1}
    fault(beta.member.post(accept, json={"accept": {"auth_key": offer["auth_key"]}}, headers=NEW), 404)


def test_bad_offers_change_nothing(alpha: Tenant, beta: Tenant):
    volume = create(alpha.member)
    for body in ({"transfer": {}}, {"transfer": {"volume_id": 5}}, {"transfer": {"volume_id": volume["id"],
                                                                                  "no_snapshots": "maybe"}}):
        fault(alpha.member.post(f"{V}/os-volume-transfer", json=body), 400)
    fault(beta.member.post(f"{V}/os-volume-transfer", json={"transfer": {"volume_id": volume["id"]}}), 404)
    fault(alpha.reader.post(f"{V}/os-volume-transfer", json={"transfer": {"volume_id": volume["id"]}}), 403)
    assert alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]["status"] == "available"
    assert alpha.member.get(f"{V}/os-volume-transfer").json()["transfers"] == []
    fault(alpha.member.get(f"{V}/os-volume-transfer", params={"marker": volume["id"]}), 404, "marker")

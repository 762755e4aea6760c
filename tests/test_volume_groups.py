"""Generic volume groups (Cinder 3.11+ group types, 3.13+ groups, 3.14+ group snapshots) over
HTTPS against the shared node: types and specs, groups of volumes, snapshots of a group, groups
made from a group or a group snapshot, resets, and bad input that changes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.cloud import wait_for
from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)
from tests.test_volume_api import V, fault, unique, wait_gone, wait_volume

AT = {"OpenStack-API-Version": "volume 3.25"}


def wait_group(client: httpx.Client, path: str, key: str, status: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = client.get(path, headers=AT).json()[key]
        return found if found["status"] == status else None

    return wait_for(done, 60, f"{path} to be {status}", every=0.1)


def test_group_types_and_specs(admin: httpx.Client, alpha: Tenant):
    fault(admin.get(f"{V}/group_types"), 404, "3.11")
    name = unique("gt")
    r = admin.post(f"{V}/group_types", headers=AT, json={"group_type": {
        "name": name, "description": "d", "is_public": False, "group_specs": {"a": "1"}}})
    assert r.status_code == 202, r.text
    kind = r.json()["group_type"]
    assert (kind["name"], kind["is_public"], kind["group_specs"]) == (name, False, {"a": "1"})
    fault(admin.post(f"{V}/group_types", headers=AT, json={"group_type": {"name": name}}), 409)
    fault(alpha.member.post(f"{V}/group_types", headers=AT, json={"group_type": {"name": unique("x")}}), 403)
    fault(alpha.member.get(f"{V}/group_types/{kind['id']}", headers=AT), 404)  # private: admins only
    private = [t["name"] for t in admin.get(f"{V}/group_types", params={"is_public": "false"},
                                                headers=AT).json()["group_types"]]
    assert name in private
    assert name not in [t["name"] for t in alpha.member.get(f"{V}/group_types", headers=AT).json()["group_types"]]
    specs = f"{V}/group_types/{kind['id']}/group_specs"
    r = admin.post(specs, headers=AT, json={"group_specs": {"b": "2"}})
    assert r.status_code == 202 and r.json() == {"group_specs": {"b": "2"}}
    assert admin.put(specs + "/b", headers=AT, json={"b": "3"}).json() == {"b": "3"}
    assert admin.get(specs, headers=AT).json() == {"group_specs": {"a": "1", "b": "3"}}
    fault(admin.put(specs + "/b", headers=AT, json={"c": "3"}), 400)
    assert admin.delete(specs + "/a", headers=AT).status_code == 202
    fault(admin.get(specs + "/a", headers=AT), 404)
    fault(admin.delete(specs + "/a", headers=AT), 404)
    r = admin.put(f"{V}/group_types/{kind['id']}", headers=AT, json={"group_type": {"name": name + "-2"}})
    assert r.status_code == 200 and r.json()["group_type"]["name"] == name + "-2"
    fault(admin.put(f"{V}/group_types/{kind['id']}", headers=AT, json={"group_type": {}}), 400)
    assert admin.delete(f"{V}/group_types/{kind['id']}", headers=AT).status_code == 202
    fault(admin.get(f"{V}/group_types/{kind['id']}", headers=AT), 404)


def test_groups_snapshots_and_copies(admin: httpx.Client, alpha: Tenant, beta: Tenant):
    kind = admin.post(f"{V}/types", json={"volume_type": {"name": unique("gvt")}}).json()["volume_type"]
    gtype = admin.post(f"{V}/group_types", headers=AT, json={"group_type": {"name": unique("gt")}}).json()["group_type"]
    fault(alpha.member.post(f"{V}/groups", json={"group": {"group_type": gtype["id"], "volume_types": [kind["id"]]}}),
          404, "3.13")
    r = alpha.member.post(f"{V}/groups", headers=AT, json={"group": {
        "name": "g1", "group_type": gtype["id"], "volume_types": [kind["id"]]}})
    assert r.status_code == 202, r.text
    group = r.json()["group"]
    path = f"{V}/groups/{group['id']}"
    assert wait_group(alpha.member, path, "group", "available")["volume_types"] == [kind["id"]]
    fault(beta.member.get(path, headers=AT), 404)
    # volumes in the group: only of its types
    fault(alpha.member.post(f"{V}/volumes", headers=AT, json={"volume": {"size": 1, "group_id": group["id"]}}), 400)
    members = []
    for _ in range(2):
        r = alpha.member.post(f"{V}/volumes", headers=AT, json={"volume": {
            "size": 1, "volume_type": kind["id"], "group_id": group["id"]}})
        assert r.status_code == 202 and r.json()["volume"]["group_id"] == group["id"], r.text
        members.append(wait_volume(alpha.member, r.json()["volume"]["id"], {"available"}))
    assert sorted(alpha.member.get(path, headers=AT).json()["group"]["volumes"]) == sorted(m["id"] for m in members)
    # remove one and add it back; refused changes change nothing
    assert alpha.member.put(path, headers=AT, json={"group": {"remove_volumes": members[1]["id"],
                                                               "name": "g1b"}}).status_code == 202
    shown = alpha.member.get(path, headers=AT).json()["group"]
    assert (shown["name"], shown["volumes"]) == ("g1b", [members[0]["id"]])
    fault(alpha.member.put(path, headers=AT, json={"group": {"remove_volumes": members[1]["id"]}}), 400)
    fault(alpha.member.put(path, headers=AT, json={"group": {"add_volumes": "nope"}}), 400)
    fault(alpha.member.put(path, headers=AT, json={"group": {}}), 400)
    assert alpha.member.put(path, headers=AT, json={"group": {"add_volumes": members[1]["id"]}}).status_code == 202
    assert len(alpha.member.get(path, headers=AT).json()["group"]["volumes"]) == 2
    # a snapshot of the group: one snapshot per volume
    r = alpha.member.post(f"{V}/group_snapshots", headers=AT, json={"group_snapshot": {"group_id": group["id"],
                                                                                       "name": "gs"}})
    assert r.status_code == 202, r.text
    gsnap = r.json()["group_snapshot"]
    spath = f"{V}/group_snapshots/{gsnap['id']}"
    wait_group(alpha.member, spath, "group_snapshot", "available")
    snaps = alpha.member.get(f"{V}/snapshots/detail", headers=AT).json()["snapshots"]
    assert sorted(s["volume_id"] for s in snaps if s["group_snapshot_id"] == gsnap["id"]) == \
        sorted(m["id"] for m in members)
    # groups copied from the snapshot and from the group
    copies = []
    for source in ({"group_snapshot_id": gsnap["id"]}, {"source_group_id": group["id"]}):
        r = alpha.member.post(f"{V}/groups/action", headers=AT, json={"create-from-src": {"name": "copy", **source}})
        assert r.status_code == 202, r.text
        copy = wait_group(alpha.member, f"{V}/groups/{r.json()['group']['id']}", "group", "available")
        assert len(copy["volumes"]) == 2
        for volume_id in copy["volumes"]:
            wait_volume(alpha.member, volume_id, {"available"})
            assert alpha.member.get(f"{V}/volumes/{volume_id}", headers=AT).json()["volume"]["group_id"] == copy["id"]
        copies.append(copy)
    fault(alpha.member.post(f"{V}/groups/action", headers=AT, json={"create-from-src": {}}), 400)
    # resets (admins), then deletes: a group with snapshots or volumes is refused unless asked
    for status in ("creating", "error", "available"):
        assert admin.post(path + "/action", headers=AT, json={"reset_status": {"status": status}}).status_code == 202
        assert alpha.member.get(path, headers=AT).json()["group"]["status"] == status
    fault(alpha.member.post(path + "/action", headers=AT, json={"reset_status": {"status": "error"}}), 403)
    fault(admin.post(path + "/action", headers=AT, json={"reset_status": {"status": "bogus"}}), 400)
    fault(alpha.member.post(path + "/action", headers=AT, json={"delete": {"delete-volumes": True}}), 400, "snapshot")
    assert admin.post(spath + "/action", headers=AT, json={"reset_status": {"status": "error"}}).status_code == 202
    assert alpha.member.delete(spath, headers=AT).status_code == 202
    wait_gone(alpha.member, spath)
    fault(alpha.member.post(path + "/action", headers=AT, json={"delete": {}}), 400, "volumes")
    for target in [group, *copies]:
        r = alpha.member.post(f"{V}/groups/{target['id']}/action", headers=AT, json={"delete": {"delete-volumes": True}})
        assert r.status_code == 202, r.text
    for volume in members:
        wait_gone(alpha.member, f"{V}/volumes/{volume['id']}")
    assert alpha.member.get(f"{V}/groups", headers=AT).json()["groups"] == []
    assert admin.delete(f"{V}/group_types/{gtype['id']}", headers=AT).status_code == 202

"""More of what Tempest's volume tests found, kept as regular tests: the read-only flag among the
metadata, volume image metadata actions, statuses an admin resets staying as set (the worker
leaves them), os-update_snapshot_status, Cinder's paging (next link on a full page, offset,
display_name), a deactivated image, and user messages for a type no backend can serve.
"""

from __future__ import annotations

import httpx

from tests.cloud import Cloud
from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)
from tests.test_volume_api import V, create, fault, unique, wait_gone, wait_snapshot, wait_volume

MESSAGES = {"OpenStack-API-Version": "volume 3.3"}


def action(client: httpx.Client, volume_id: str, name: str, args: object) -> httpx.Response:
    return client.post(f"{V}/volumes/{volume_id}/action", json={name: args})


def test_readonly_flag_shows_among_the_metadata(alpha: Tenant):
    volume = create(alpha.member, metadata={"owner": "me"})
    assert volume["metadata"] == {"owner": "me"}  # not shown before it is ever set
    for flag in (True, False):
        assert action(alpha.member, volume["id"], "os-update_readonly_flag", {"readonly": flag}).status_code == 202
        shown = alpha.reader.get(f"{V}/volumes/{volume['id']}").json()["volume"]
        assert shown["metadata"] == {"owner": "me", "readonly": str(flag)}
    # replacing the user's metadata keeps the flag (it is admin metadata)
    r = alpha.member.put(f"{V}/volumes/{volume['id']}/metadata", json={"metadata": {"a": "b"}})
    assert r.status_code == 200 and r.json()["metadata"] == {"a": "b"}
    assert alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]["metadata"] == {"a": "b", "readonly": "False"}


def test_image_metadata_actions(alpha: Tenant, beta: Tenant):
    volume = create(alpha.member)
    r = action(alpha.member, volume["id"], "os-set_image_metadata", {"metadata": {"kernel_id": "k", "ramdisk_id": "r"}})
    assert r.status_code == 200 and r.json()["metadata"] == {"kernel_id": "k", "ramdisk_id": "r"}
    shown = alpha.reader.get(f"{V}/volumes/{volume['id']}").json()["volume"]
    assert shown["volume_image_metadata"] == {"kernel_id": "k", "ramdisk_id": "r"}
    assert action(alpha.member, volume["id"], "os-unset_image_metadata", {"key": "ramdisk_id"}).status_code == 200
    r = action(alpha.reader, volume["id"], "os-show_image_metadata", {})
    assert r.status_code == 200 and r.json() == {"metadata": {"kernel_id": "k"}}
    # bad input and other projects: a clear 4xx, nothing changes
    fault(action(alpha.member, volume["id"], "os-unset_image_metadata", {"key": "nope"}), 404, "nope")
    fault(action(alpha.member, volume["id"], "os-unset_image_metadata", {}), 400, "key")
    fault(action(alpha.member, volume["id"], "os-set_image_metadata", {"metadata": {"k": 5}}), 400)
    fault(action(alpha.member, volume["id"], "os-set_image_metadata", {"metadata": "x"}), 400)
    fault(action(alpha.reader, volume["id"], "os-set_image_metadata", {"metadata": {"k": "v"}}), 403)
    fault(action(beta.member, volume["id"], "os-set_image_metadata", {"metadata": {"k": "v"}}), 404)
    r = action(alpha.member, volume["id"], "os-show_image_metadata", {})
    assert r.json() == {"metadata": {"kernel_id": "k"}}


def test_reset_statuses_stay_as_set_until_forced(alpha: Tenant, admin: httpx.Client):
    volume = create(alpha.member)
    r = alpha.member.post(f"{V}/snapshots", json={"snapshot": {"volume_id": volume["id"]}})
    snap = wait_snapshot(alpha.member, r.json()["snapshot"]["id"])
    path = f"{V}/snapshots/{snap['id']}"
    for status in ("deleting", "creating"):
        assert admin.post(path + "/action", json={"os-reset_status": {"status": status}}).status_code == 202
        # the worker is woken by every commit: a second command proves it has passed over the row
        assert admin.post(path + "/action", json={"os-reset_status": {"status": status}}).status_code == 202
        assert alpha.member.get(path).json()["snapshot"]["status"] == status
    # os-update_snapshot_status: from creating to error, with the progress reported
    r = alpha.member.post(path + "/action", json={"os-update_snapshot_status": {"status": "error", "progress": "80%"}})
    assert r.status_code == 202, r.text
    shown = alpha.member.get(path).json()["snapshot"]
    assert (shown["status"], shown["os-extended-snapshot-attributes:progress"]) == ("error", "80%")
    fault(alpha.member.post(path + "/action", json={"os-update_snapshot_status": {"status": "available"}}), 400,
          "error")  # an errored snapshot is not creating
    fault(alpha.member.post(path + "/action", json={"os-update_snapshot_status": {"status": "bogus"}}), 400)
    fault(alpha.member.post(path + "/action", json={"os-update_snapshot_status": {"status": "error",
                                                                                  "progress": 5}}), 400)
    assert alpha.member.get(path).json()["snapshot"]["status"] == "error"
    # a volume reset to deleting stays too; a force delete deletes both
    vpath = f"{V}/volumes/{volume['id']}"
    assert admin.post(vpath + "/action", json={"os-reset_status": {"status": "deleting"}}).status_code == 202
    assert admin.post(path + "/action", json={"os-reset_status": {"status": "deleting"}}).status_code == 202
    assert alpha.member.get(vpath).json()["volume"]["status"] == "deleting"
    assert admin.post(path + "/action", json={"os-force_delete": {}}).status_code == 202
    wait_gone(alpha.member, path)
    assert admin.post(vpath + "/action", json={"os-force_delete": {}}).status_code == 202
    wait_gone(alpha.member, vpath)


def test_paging_offset_and_display_name_sort(alpha: Tenant):
    tag = unique("page")
    ids = [create(alpha.member, name=f"{tag}-{i}")["id"] for i in range(2)]
    # a full page has a next link even when it is the last; the page after is empty and has none
    body = alpha.member.get(f"{V}/volumes", params={"name~": tag, "limit": 2}).json()
    assert sorted(v["id"] for v in body["volumes"]) == sorted(ids)
    (link,) = body["volumes_links"]
    after = alpha.member.get(link["href"].removeprefix(alpha.member.base_url.scheme + "://" +
                                                      alpha.member.base_url.netloc.decode())).json()
    assert after == {"volumes": []}
    offset = alpha.member.get(f"{V}/volumes/detail", params={"name~": tag, "offset": 1}).json()["volumes"]
    assert len(offset) == 1
    names = [v["name"] for v in alpha.member.get(f"{V}/volumes/detail", params={
        "name~": tag, "sort_key": "display_name", "sort_dir": "asc"}).json()["volumes"]]
    assert names == [f"{tag}-0", f"{tag}-1"]
    for bad in ("-1", "x", "²"):
        fault(alpha.member.get(f"{V}/snapshots", params={"offset": bad}), 400, "offset")


def test_deactivated_image_is_a_bad_request(cloud: Cloud, alpha: Tenant, admin: httpx.Client):
    image = admin.post("/image/v2/images", json={"name": unique("img"), "disk_format": "raw",
                                                 "container_format": "bare", "visibility": "public"}).json()
    r = admin.put(f"/image/v2/images/{image['id']}/file", content=b"\0" * 1024,
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    assert admin.post(f"/image/v2/images/{image['id']}/actions/deactivate").status_code == 204
    before = len(alpha.member.get(f"{V}/volumes").json()["volumes"])
    fault(alpha.member.post(f"{V}/volumes", json={"volume": {"size": 1, "imageRef": image["id"]}}), 400, "deactivated")
    assert len(alpha.member.get(f"{V}/volumes").json()["volumes"]) == before


def test_a_type_no_backend_serves_makes_an_error_and_a_message(alpha: Tenant, beta: Tenant, admin: httpx.Client):
    name = unique("bogus-type")
    r = admin.post(f"{V}/types", json={"volume_type": {"name": name, "extra_specs": {
        "vendor_name": "nobody", "storage_protocol": "<in> iSCSI", "anything": "else"}}})
    assert r.status_code == 200, r.text
    r = alpha.member.post(f"{V}/volumes", json={"volume": {"size": 1, "volume_type": name}})
    assert r.status_code == 202, r.text
    volume = wait_volume(alpha.member, r.json()["volume"]["id"], {"error"})
    assert "error" not in volume  # the reason is a message, as Cinder's
    fault(alpha.member.get(f"{V}/messages"), 404, "3.3")
    messages = alpha.member.get(f"{V}/messages", headers=MESSAGES).json()["messages"]
    (message,) = [m for m in messages if m["resource_uuid"] == volume["id"]]
    assert message["event_id"] == "VOLUME_VOLUME_001_002" and message["resource_type"] == "VOLUME"
    assert "vendor_name=nobody" in message["user_message"] and "anything" not in message["user_message"]
    shown = alpha.reader.get(f"{V}/messages/{message['id']}", headers=MESSAGES).json()["message"]
    assert shown == message
    assert all(m["resource_uuid"] != volume["id"] for m in
               beta.member.get(f"{V}/messages", headers=MESSAGES).json()["messages"])
    fault(beta.member.get(f"{V}/messages/{message['id']}", headers=MESSAGES), 404)
    fault(beta.member.delete(f"{V}/messages/{message['id']}", headers=MESSAGES), 404)
    fault(alpha.reader.delete(f"{V}/messages/{message['id']}", headers=MESSAGES), 403)
    assert alpha.member.delete(f"{V}/messages/{message['id']}", headers=MESSAGES).status_code == 204
    fault(alpha.member.get(f"{V}/messages/{message['id']}", headers=MESSAGES), 404)
    assert alpha.member.delete(f"{V}/volumes/{volume['id']}").status_code == 202
    # a type asking what the backend is (Tempest's vendor_name and storage_protocol) is served
    kind = admin.post(f"{V}/types", json={"volume_type": {"name": unique("good-type"), "extra_specs": {
        "vendor_name": "cloudbox", "storage_protocol": "local/nbd", "multiattach": "<is> True"}}}).json()
    assert create(alpha.member, volume_type=kind["volume_type"]["name"])["status"] == "available"


def test_force_detach_of_an_errored_volume_makes_it_available(alpha: Tenant, admin: httpx.Client):
    volume = create(alpha.member)
    server = "0c6a4d52-6a5e-4e7e-9c0e-5d1b2c3d4e5f"
    r = action(alpha.member, volume["id"], "os-attach", {"instance_uuid": server, "mountpoint": "/dev/vdb"})
    assert r.status_code == 202, r.text
    (attachment,) = alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]["attachments"]
    assert action(admin, volume["id"], "os-reset_status", {"status": "error"}).status_code == 202
    fault(action(alpha.member, volume["id"], "os-force_detach", {"attachment_id": attachment["attachment_id"]}), 403)
    r = action(admin, volume["id"], "os-force_detach", {"connector": None,
                                                         "attachment_id": attachment["attachment_id"]})
    assert r.status_code == 202, r.text
    shown = alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]
    assert (shown["status"], shown["attachments"]) == ("available", [])
    # a detach with nothing attached is Cinder's 202 and changes nothing
    assert action(alpha.member, volume["id"], "os-detach", {}).status_code == 202
    assert alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]["status"] == "available"

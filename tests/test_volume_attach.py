"""Attaching volumes as Nova drives Cinder, over real HTTPS against a running node (dir driver):
the attachments API (3.27+) and the legacy actions, their status machine and refusals (a clear
4xx and nothing changes), multiattach from the type, QoS specs reaching the connection_info,
with_count, os-services and uploading a volume into an image."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.cloud import Cloud, wait_for
from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)
from tests.test_volume_api import V, create, fault, unique, volume_file, wait_gone, wait_volume

H = {"OpenStack-API-Version": "volume 3.44"}


def status(client: httpx.Client, volume_id: str) -> str:
    return client.get(f"{V}/volumes/{volume_id}").json()["volume"]["status"]


def host_of(admin: httpx.Client, volume_id: str) -> str:
    return admin.get(f"{V}/volumes/{volume_id}").json()["volume"]["os-vol-host-attr:host"].split("@")[0]


def action(client: httpx.Client, volume_id: str, name: str, args: Any = None) -> httpx.Response:
    return client.post(f"{V}/volumes/{volume_id}/action", json={name: args}, headers=H)


def read_head(client: httpx.Client, path: str, size: int) -> bytes:
    """The first ``size`` bytes of a download (the image service serves no ranges)."""
    data = bytearray()
    with client.stream("GET", path) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            data += chunk
            if len(data) >= size:
                break
    return bytes(data[:size])


def test_attachments_api_status_machine(cloud: Cloud, alpha: Tenant, beta: Tenant, admin: httpx.Client):
    volume = create(alpha.member)
    vid, server, other = volume["id"], str(uuid.uuid4()), str(uuid.uuid4())
    host = host_of(admin, vid)
    fault(alpha.member.post(f"{V}/attachments", json={"attachment": {"volume_uuid": vid}}), 404, "3.27")

    r = alpha.member.post(f"{V}/attachments", json={"attachment": {"volume_uuid": vid, "instance_uuid": server}},
                          headers=H)
    assert r.status_code == 200, r.text
    attachment = r.json()["attachment"]
    assert (attachment["status"], attachment["instance"], attachment["volume_id"]) == ("reserved", server, vid)
    assert attachment["connection_info"] is None and attachment["attach_mode"] == "rw"
    assert status(alpha.member, vid) == "reserved"
    aid = attachment["id"]

    # Refusals change nothing: a second server (not multiattach), deleting, a stranger, bad input.
    r = alpha.member.post(f"{V}/attachments", json={"attachment": {"volume_uuid": vid, "instance_uuid": other}},
                          headers=H)
    fault(r, 400, "not multiattach")
    fault(alpha.member.delete(f"{V}/volumes/{vid}"), 400, "detach it first")
    fault(beta.member.get(f"{V}/attachments/{aid}", headers=H), 404)
    fault(beta.member.delete(f"{V}/attachments/{aid}", headers=H), 404)
    fault(alpha.reader.delete(f"{V}/attachments/{aid}", headers=H), 403)
    fault(alpha.member.put(f"{V}/attachments/{aid}", json={"attachment": {"connector": "x"}}, headers=H), 400)
    fault(alpha.member.post(f"{V}/attachments/{aid}/action", json={"os-complete": None}, headers=H), 400,
          "no connector")
    fault(alpha.member.put(f"{V}/attachments/{aid}", json={"attachment": {"connector": {"host": "elsewhere"}}},
                           headers=H), 503, "NBD")
    assert status(alpha.member, vid) == "reserved"
    assert alpha.member.get(f"{V}/attachments/{aid}", headers=H).json()["attachment"]["status"] == "reserved"

    # The connector of the volume's own node: the file itself.
    connector = {"host": host, "mountpoint": "/dev/vdb", "initiator": "iqn.test"}
    r = alpha.member.put(f"{V}/attachments/{aid}", json={"attachment": {"connector": connector}}, headers=H)
    assert r.status_code == 200, r.text
    info = r.json()["attachment"]["connection_info"]
    assert info["driver_volume_type"] == "local" and info["serial"] == vid
    assert info["data"]["device_path"] == str(volume_file(cloud, vid))
    assert (info["data"]["format"], info["data"]["disk_type"], info["data"]["access_mode"]) == ("raw", "file", "rw")
    assert info["data"]["qos_specs"] is None
    assert status(alpha.member, vid) == "attaching"
    r = alpha.member.post(f"{V}/attachments/{aid}/action", json={"os-complete": None}, headers=H)
    assert r.status_code == 204, r.text
    shown = alpha.member.get(f"{V}/volumes/{vid}").json()["volume"]
    assert shown["status"] == "in-use"
    (attached,) = shown["attachments"]
    assert attached["server_id"] == server and attached["attachment_id"] == aid and attached["host_name"] == host
    assert attached["device"] == "/dev/vdb" and attached["attached_at"] and attached["volume_id"] == vid

    listed = alpha.member.get(f"{V}/attachments", params={"volume_id": vid}, headers=H).json()["attachments"]
    assert listed == [{"id": aid, "status": "attached", "instance": server, "volume_id": vid}]
    detail = alpha.member.get(f"{V}/attachments/detail", params={"instance_id": server}, headers=H).json()
    assert [a["id"] for a in detail["attachments"]] == [aid] and detail["attachments"][0]["attached_at"]
    assert beta.member.get(f"{V}/attachments", headers=H).json()["attachments"] == []
    r = alpha.member.post(f"{V}/attachments", json={"attachment": {"volume_uuid": vid, "instance_uuid": other}},
                          headers=H)
    fault(r, 400, "not multiattach")

    r = alpha.member.delete(f"{V}/attachments/{aid}", headers=H)
    assert r.status_code == 200 and r.json() == {"attachments": []}
    shown = alpha.member.get(f"{V}/volumes/{vid}").json()["volume"]
    assert shown["status"] == "available" and shown["attachments"] == []
    fault(alpha.member.get(f"{V}/attachments/{aid}", headers=H), 404)

    # Reserve with a connector in one call (Nova's new flow at 3.54: attaching at once).
    r = alpha.member.post(f"{V}/attachments", json={"attachment": {"volume_uuid": vid, "instance_uuid": server,
                                                                   "connector": connector, "mode": "ro"}}, headers=H)
    assert r.status_code == 200, r.text
    assert r.json()["attachment"]["status"] == "attaching"
    assert r.json()["attachment"]["connection_info"]["data"]["access_mode"] == "ro"
    assert status(alpha.member, vid) == "attaching"
    alpha.member.delete(f"{V}/attachments/{r.json()['attachment']['id']}", headers=H)
    assert status(alpha.member, vid) == "available"
    assert alpha.member.delete(f"{V}/volumes/{vid}").status_code == 202


def test_legacy_attach_actions(cloud: Cloud, alpha: Tenant, admin: httpx.Client):
    volume = create(alpha.member)
    vid, server = volume["id"], str(uuid.uuid4())
    assert action(alpha.member, vid, "os-reserve").status_code == 202
    assert status(alpha.member, vid) == "attaching"
    fault(action(alpha.member, vid, "os-reserve"), 400, "attaching")
    assert action(alpha.member, vid, "os-unreserve").status_code == 202
    assert status(alpha.member, vid) == "available"
    fault(action(alpha.member, vid, "os-begin_detaching"), 409)
    fault(action(alpha.member, vid, "os-attach", {"mountpoint": "/dev/vdc"}), 400, "instance_uuid")
    fault(action(alpha.member, vid, "os-attach", {"instance_uuid": "nope"}), 400, "UUID")
    assert status(alpha.member, vid) == "available"

    r = action(alpha.member, vid, "os-attach", {"instance_uuid": server, "mountpoint": "/dev/vdc", "mode": "rw"})
    assert r.status_code == 202, r.text
    shown = alpha.member.get(f"{V}/volumes/{vid}").json()["volume"]
    assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == server
    assert shown["attachments"][0]["device"] == "/dev/vdc"
    fault(action(alpha.member, vid, "os-attach", {"instance_uuid": str(uuid.uuid4())}), 400, "not multiattach")
    assert action(alpha.member, vid, "os-begin_detaching").status_code == 202
    assert status(alpha.member, vid) == "detaching"
    assert action(alpha.member, vid, "os-roll_detaching").status_code == 202
    assert status(alpha.member, vid) == "in-use"

    r = action(alpha.member, vid, "os-initialize_connection", {"connector": {"host": host_of(admin, vid)}})
    assert r.status_code == 200, r.text
    assert r.json()["connection_info"]["data"]["device_path"] == str(volume_file(cloud, vid))
    fault(action(alpha.member, vid, "os-initialize_connection", {"connector": None}), 400, "connector")
    assert action(alpha.member, vid, "os-terminate_connection", {"connector": {"host": "x"}}).status_code == 202
    fault(action(alpha.member, vid, "os-force_detach", {}), 403)
    fault(action(alpha.member, vid, "os-detach", {"attachment_id": str(uuid.uuid4())}), 404)
    assert status(alpha.member, vid) == "in-use"
    attachment_id = alpha.member.get(f"{V}/volumes/{vid}").json()["volume"]["attachments"][0]["attachment_id"]
    assert action(alpha.member, vid, "os-detach", {"attachment_id": attachment_id}).status_code == 202
    assert status(alpha.member, vid) == "available"

    attach = {"instance_uuid": server, "mountpoint": "/dev/vdc"}
    assert action(alpha.member, vid, "os-attach", attach).status_code == 202
    assert action(admin, vid, "os-force_detach", {}).status_code == 202
    shown = alpha.member.get(f"{V}/volumes/{vid}").json()["volume"]
    assert shown["status"] == "available" and shown["attachments"] == []
    # An admin's reset to detached forgets the attachments.
    attach = {"instance_uuid": server, "mountpoint": "/dev/vdc"}
    assert action(alpha.member, vid, "os-attach", attach).status_code == 202
    fault(action(admin, vid, "os-reset_status", {"status": "available", "attach_status": "gone"}), 400,
          "attach_status")
    assert status(alpha.member, vid) == "in-use"
    r = action(admin, vid, "os-reset_status", {"status": "available", "attach_status": "detached"})
    assert r.status_code == 202, r.text
    shown = alpha.member.get(f"{V}/volumes/{vid}").json()["volume"]
    assert shown["status"] == "available" and shown["attachments"] == []
    assert alpha.member.get(f"{V}/attachments", params={"volume_id": vid}, headers=H).json()["attachments"] == []
    # Forced deletes: refused while attached, taken for a volume reset to attaching with no attachment.
    assert action(alpha.member, vid, "os-attach", {"instance_uuid": server}).status_code == 202
    fault(action(admin, vid, "os-force_delete", {}), 400, "still has attachments")
    assert action(admin, vid, "os-force_detach", {}).status_code == 202
    assert action(admin, vid, "os-reset_status", {"status": "attaching"}).status_code == 202
    fault(alpha.member.delete(f"{V}/volumes/{vid}"), 400, "detach it first")
    assert action(admin, vid, "os-force_delete", {}).status_code == 202
    wait_gone(alpha.member, f"{V}/volumes/{vid}")


def test_multiattach_comes_from_the_type(alpha: Tenant, admin: httpx.Client):
    name = unique("multi")
    r = admin.post(f"{V}/types", json={"volume_type": {"name": name, "extra_specs": {"multiattach": "<is> True"}}})
    assert r.status_code == 200, r.text
    volume = create(alpha.member, volume_type=name)
    plain = create(alpha.member, multiattach=True)  # the request's flag does not make it multiattach
    assert volume["multiattach"] is True and plain["multiattach"] is False
    servers = [str(uuid.uuid4()) for _ in range(2)]
    for server in servers:
        r = action(alpha.member, volume["id"], "os-attach", {"instance_uuid": server, "mountpoint": "/dev/vdb"})
        assert r.status_code == 202, r.text
    fault(action(alpha.member, volume["id"], "os-attach", {"instance_uuid": servers[0]}), 400, "already attached")
    shown = alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]
    assert shown["status"] == "in-use" and {a["server_id"] for a in shown["attachments"]} == set(servers)
    fault(action(alpha.member, volume["id"], "os-detach", {}), 400, "give attachment_id")
    first = shown["attachments"][0]["attachment_id"]
    assert action(alpha.member, volume["id"], "os-detach", {"attachment_id": first}).status_code == 202
    assert status(alpha.member, volume["id"]) == "in-use"
    assert action(admin, volume["id"], "os-force_detach", {}).status_code == 202
    assert status(alpha.member, volume["id"]) == "available"
    for made in (volume, plain):
        assert alpha.member.delete(f"{V}/volumes/{made['id']}").status_code == 202


def test_qos_specs_reach_the_connection_info(cloud: Cloud, alpha: Tenant, admin: httpx.Client):
    name = unique("qos")
    r = admin.post(f"{V}/qos-specs", json={"qos_specs": {"name": name, "consumer": "front-end",
                                                         "read_iops_sec": "100", "total_bytes_sec": 1048576}})
    assert r.status_code == 200, r.text
    qos = r.json()["qos_specs"]
    assert qos["consumer"] == "front-end" and qos["specs"] == {"read_iops_sec": "100", "total_bytes_sec": "1048576"}
    qid = qos["id"]
    fault(admin.post(f"{V}/qos-specs", json={"qos_specs": {"name": name}}), 409, "already exists")
    fault(admin.post(f"{V}/qos-specs", json={"qos_specs": {"name": unique("q"), "consumer": "middle"}}), 400,
          "consumer")
    fault(admin.post(f"{V}/qos-specs", json={"qos_specs": {"name": unique("q"), "read_iops_sec": "fast"}}), 400,
          "whole number")
    fault(alpha.member.post(f"{V}/qos-specs", json={"qos_specs": {"name": unique("q")}}), 403)
    fault(alpha.member.get(f"{V}/qos-specs"), 403)
    r = admin.put(f"{V}/qos-specs/{qid}", json={"qos_specs": {"write_iops_sec": "50"}})
    assert r.status_code == 200 and r.json() == {"qos_specs": {"write_iops_sec": "50"}}
    assert admin.put(f"{V}/qos-specs/{qid}/delete_keys", json={"keys": ["total_bytes_sec"]}).status_code == 202
    fault(admin.put(f"{V}/qos-specs/{qid}/delete_keys", json={"keys": ["nothing"]}), 400, "no key")
    shown = admin.get(f"{V}/qos-specs/{qid}").json()["qos_specs"]
    assert shown["specs"] == {"read_iops_sec": "100", "write_iops_sec": "50"}
    assert qid in [q["id"] for q in admin.get(f"{V}/qos-specs").json()["qos_specs"]]

    kind = admin.post(f"{V}/types", json={"volume_type": {"name": unique("limited")}}).json()["volume_type"]
    fault(admin.get(f"{V}/qos-specs/{qid}/associate"), 400, "vol_type_id")
    fault(admin.get(f"{V}/qos-specs/{qid}/associate", params={"vol_type_id": str(uuid.uuid4())}), 404)
    assert admin.get(f"{V}/qos-specs/{qid}/associate", params={"vol_type_id": kind["id"]}).status_code == 202
    assert admin.get(f"{V}/types/{kind['id']}").json()["volume_type"]["qos_specs_id"] == qid
    assert admin.get(f"{V}/qos-specs/{qid}/associations").json() == {
        "qos_associations": [{"association_type": "volume_type", "name": kind["name"], "id": kind["id"]}]}
    fault(admin.delete(f"{V}/qos-specs/{qid}"), 400, "still associated")

    volume = create(alpha.member, volume_type=kind["name"])
    r = action(alpha.member, volume["id"], "os-initialize_connection",
               {"connector": {"host": host_of(admin, volume["id"])}})
    assert r.status_code == 200, r.text
    assert r.json()["connection_info"]["data"]["qos_specs"] == {"read_iops_sec": "100", "write_iops_sec": "50"}
    # Back-end limits are the storage's business, not the guest's iotune.
    assert admin.put(f"{V}/qos-specs/{qid}", json={"qos_specs": {"consumer": "back-end"}}).status_code == 200
    r = action(alpha.member, volume["id"], "os-initialize_connection",
               {"connector": {"host": host_of(admin, volume["id"])}})
    assert r.json()["connection_info"]["data"]["qos_specs"] is None

    assert admin.get(f"{V}/qos-specs/{qid}/disassociate", params={"vol_type_id": kind["id"]}).status_code == 202
    assert admin.get(f"{V}/types/{kind['id']}").json()["volume_type"]["qos_specs_id"] is None
    admin.get(f"{V}/qos-specs/{qid}/associate", params={"vol_type_id": kind["id"]})
    assert admin.delete(f"{V}/qos-specs/{qid}", params={"force": "true"}).status_code == 202
    fault(admin.get(f"{V}/qos-specs/{qid}"), 404)
    assert admin.get(f"{V}/types/{kind['id']}").json()["volume_type"]["qos_specs_id"] is None
    assert alpha.member.delete(f"{V}/volumes/{volume['id']}").status_code == 202


def test_with_count_and_os_services(cloud: Cloud, alpha: Tenant, admin: httpx.Client):
    tag = unique("count")
    made = [create(alpha.member, metadata={"tag": tag}) for _ in range(3)]
    params = {"with_count": "true", "limit": 1, "metadata": str({"tag": tag})}
    body = alpha.member.get(f"{V}/volumes", params=params, headers={"OpenStack-API-Version": "volume 3.45"}).json()
    assert body["count"] == 3 and len(body["volumes"]) == 1
    assert "count" not in alpha.member.get(f"{V}/volumes", params=params).json()  # before 3.45
    services = admin.get(f"{V}/os-services", headers={"OpenStack-API-Version": "volume 3.49"}).json()["services"]
    binaries = {s["binary"]: s for s in services}
    assert set(binaries) == {"cinder-scheduler", "cinder-volume"}
    assert binaries["cinder-volume"]["host"].endswith("@dir") and binaries["cinder-volume"]["state"] == "up"
    assert binaries["cinder-volume"]["backend_state"] == "up" and binaries["cinder-volume"]["status"] == "enabled"
    only = admin.get(f"{V}/os-services", params={"binary": "cinder-volume"}).json()["services"]
    assert [s["binary"] for s in only] == ["cinder-volume"]
    fault(alpha.member.get(f"{V}/os-services"), 403)
    volume_host = binaries["cinder-volume"]["host"]
    r = admin.put(f"{V}/os-services/enable", json={"host": volume_host, "binary": "cinder-volume"})
    assert r.status_code == 200 and r.json()["status"] == "enabled", r.text
    fault(admin.put(f"{V}/os-services/enable", json={"host": "nowhere", "binary": "cinder-volume"}), 404)
    fault(admin.put(f"{V}/os-services/disable", json={"host": "nowhere", "binary": "cinder-volume"}), 404)
    fault(admin.put(f"{V}/os-services/disable", json={"host": volume_host, "binary": "cinder-volume"}), 400,
          "not supported")
    fault(admin.put(f"{V}/os-services/freeze", json={"host": "nowhere"}), 400)
    fault(alpha.member.put(f"{V}/os-services/enable", json={"host": volume_host, "binary": "cinder-volume"}), 403)
    pools = admin.get(f"{V}/scheduler-stats/get_pools", params={"detail": "true"}).json()["pools"]
    assert [p["name"] for p in pools] == [binaries["cinder-volume"]["host"] + "#dir"]
    assert pools[0]["capabilities"]["volume_backend_name"] == "dir"
    fault(alpha.member.get(f"{V}/scheduler-stats/get_pools"), 403)
    # What `openstack volume backup/transfer/group/message list` ask: none exist here.
    # (transfers and messages are served since; they answer at the microversion that added them)
    for path, key, version in (("/backups/detail", "backups", "3.0"), ("/volume-transfers/detail", "transfers", "3.55"),
                               ("/groups/detail", "groups", "3.13"), ("/messages", "messages", "3.3")):
        assert alpha.member.get(f"{V}{path}", headers={"OpenStack-API-Version": f"volume {version}"}).json() == {key: []}
    filters = alpha.member.get(f"{V}/resource_filters").json()["resource_filters"]
    assert "status" in next(f["filters"] for f in filters if f["resource"] == "volume")
    for volume in made:
        alpha.member.delete(f"{V}/volumes/{volume['id']}")


def test_upload_volume_to_image(cloud: Cloud, alpha: Tenant):
    volume = create(alpha.member)
    vid = volume["id"]
    with open(volume_file(cloud, vid), "r+b") as f:
        f.seek(1 << 20)
        f.write(b"marker-of-the-volume")
    fault(action(alpha.member, vid, "os-volume_upload_image", {"disk_format": "raw"}), 400, "image_name")
    fault(action(alpha.member, vid, "os-volume_upload_image", {"image_name": "x", "disk_format": "iso9"}), 400,
          "disk_format")
    r = action(alpha.member, vid, "os-volume_upload_image", {"image_name": unique("from-volume"), "disk_format": "raw",
                                                             "container_format": "bare"})
    assert r.status_code == 202, r.text
    answer = r.json()["os-volume_upload_image"]
    assert answer["status"] == "uploading" and answer["id"] == vid and answer["disk_format"] == "raw"
    assert answer["volume_type"]["name"] == "__DEFAULT__" and answer["size"] == 1
    image_id = answer["image_id"]
    assert wait_volume(alpha.member, vid, {"available", "error"})["status"] == "available"

    def active() -> dict[str, Any] | None:
        image = alpha.member.get(f"/image/v2/images/{image_id}").json()
        return image if image["status"] == "active" else None

    image = wait_for(active, 60, "the image to be active", every=0.1)
    assert image["disk_format"] == "raw" and image["size"] == 1 << 30 and image["min_disk"] == 1
    assert read_head(alpha.member, f"/image/v2/images/{image_id}/file", (1 << 20) + 20)[1 << 20:] == \
        b"marker-of-the-volume"

    # In use: refused without force (nothing made), taken with force and back to in-use.
    action(alpha.member, vid, "os-attach", {"instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb"})
    images_before = len(alpha.member.get("/image/v2/images").json()["images"])
    fault(action(alpha.member, vid, "os-volume_upload_image", {"image_name": "busy"}), 400, "force")
    assert len(alpha.member.get("/image/v2/images").json()["images"]) == images_before
    r = action(alpha.member, vid, "os-volume_upload_image", {"image_name": unique("forced"), "force": True})
    assert r.status_code == 202, r.text
    assert wait_volume(alpha.member, vid, {"in-use", "error"})["status"] == "in-use"
    forced = r.json()["os-volume_upload_image"]["image_id"]
    wait_for(lambda: alpha.member.get(f"/image/v2/images/{forced}").json()["status"] == "active", 60, "forced image")
    action(alpha.member, vid, "os-force_detach", {})


def test_bad_input_is_a_clear_4xx(alpha: Tenant, admin: httpx.Client):
    volume = create(alpha.member)
    vid, nobody = volume["id"], str(uuid.uuid4())
    cases: list[tuple[httpx.Client, str, str, Any]] = [
        (alpha.member, "POST", "/attachments", {"attachment": {"volume_uuid": nobody}}),
        (alpha.member, "POST", "/attachments", {"attachment": {"volume_uuid": vid, "instance_uuid": "x"}}),
        (alpha.member, "POST", "/attachments", {"attachment": {"volume_uuid": vid, "connector": [1]}}),
        (alpha.member, "POST", "/attachments", {"attachment": {"volume_uuid": vid, "connector": {"host": 5}}}),
        (alpha.member, "POST", "/attachments", {"attachment": {"volume_uuid": vid, "mode": "rx"}}),
        (alpha.member, "POST", "/attachments", {"attachment": []}),
        (alpha.member, "PUT", f"/attachments/{nobody}", {"attachment": {"connector": {"host": "h"}}}),
        (alpha.member, "POST", f"/attachments/{nobody}/action", {"os-complete": None}),
        (alpha.member, "POST", f"/attachments/{nobody}/action", {"os-other": None}),
        (alpha.member, "DELETE", f"/attachments/{nobody}", None),
        (alpha.member, "GET", "/attachments?marker=" + nobody, None),
        (alpha.member, "POST", f"/volumes/{vid}/action", {"os-attach": {"instance_uuid": nobody, "mode": "x"}}),
        (alpha.member, "POST", f"/volumes/{vid}/action", {"os-attach": {"host_name": "h", "mountpoint": 7}}),
        (alpha.member, "POST", f"/volumes/{vid}/action", {"os-detach": {"attachment_id": nobody}}),
        # (os-detach with nothing attached is Cinder's 202: tests/test_volume_tempest_actions.py)
        (alpha.member, "POST", f"/volumes/{vid}/action", {"os-roll_detaching": None}),
        (alpha.member, "POST", f"/volumes/{vid}/action", {"os-unreserve": None}),
        (alpha.member, "POST", f"/volumes/{vid}/action", {"os-initialize_connection": {"connector": "h"}}),
        (alpha.member, "POST", f"/volumes/{vid}/action", {"os-volume_upload_image": "img"}),
        (alpha.member, "POST", f"/volumes/{vid}/action", {"os-volume_upload_image": {"image_name": ["x"]}}),
        (alpha.member, "POST", f"/volumes/{vid}/action",
         {"os-volume_upload_image": {"image_name": "x", "container_format": "ovf"}}),
        (alpha.member, "POST", f"/volumes/{vid}/action",
         {"os-volume_upload_image": {"image_name": "x", "force": "maybe"}}),
        (admin, "POST", "/qos-specs", {"qos_specs": {"name": "x" * 300}}),
        (admin, "POST", "/qos-specs", {"qos_specs": {"name": unique("q"), "read_iops_sec": {"a": 1}}}),
        (admin, "POST", "/qos-specs", {"qos_specs": {"name": unique("q"), "total_iops_sec": "-1"}}),
        (admin, "POST", "/qos-specs", {"qos_specs": {"name": unique("q"), "consumer": None}}),
        (admin, "PUT", f"/qos-specs/{nobody}", {"qos_specs": {"read_iops_sec": "1"}}),
        (admin, "PUT", f"/qos-specs/{nobody}", {"qos_specs": {}}),
        (admin, "PUT", f"/qos-specs/{nobody}/delete_keys", {"keys": "read_iops_sec"}),
        (admin, "PUT", f"/qos-specs/{nobody}/delete_keys", {"keys": [1]}),
        (admin, "DELETE", f"/qos-specs/{nobody}", None),
        (admin, "GET", f"/qos-specs/{nobody}/associations", None),
        (admin, "GET", f"/qos-specs/{nobody}/disassociate_all", None),
        (admin, "GET", "/qos-specs?marker=" + nobody, None),
        (admin, "PUT", "/os-services/frobnicate", {"host": "x"}),
        (admin, "PUT", "/os-services/enable", [1, 2]),
    ]
    for client, method, path, body in cases:
        r = client.request(method, V + path, json=body, headers=H) if body is not None else \
            client.request(method, V + path, headers=H)
        assert 400 <= r.status_code < 500, (method, path, body, r.status_code, r.text)
        (fault_body,) = r.json().values()
        assert fault_body["message"], (method, path, r.text)
    shown = alpha.member.get(f"{V}/volumes/{vid}").json()["volume"]
    assert shown["status"] == "available" and shown["attachments"] == []
    assert alpha.member.delete(f"{V}/volumes/{vid}").status_code == 202

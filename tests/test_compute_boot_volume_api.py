"""Boot from volume through Nova's API over real HTTPS (in-memory hypervisor, dir volumes): the
volume made from an image and awaited, an existing volume as the root, legacy mappings, extra blank
volumes, delete_on_termination, Nova's 400s (nothing made), createImage of a volume-backed server
and booting its image, and the refused rebuild. The guest's real root disk is in
test_compute_boot_volume_libvirt.py."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cloud import Cloud, wait_for
from tests.compute_helpers import LATEST, wait_gone, wait_server
from tests.test_image_api import Tenant, admin, alpha  # noqa: F401 (fixtures)
from tests.test_volume_api import V, create, upload_image, wait_volume

S = "/compute/v2.1/servers"


def server_body(**fields: Any) -> dict[str, Any]:
    return {"server": {"name": f"bfv-{uuid.uuid4().hex[:8]}", "flavorRef": "42", "networks": "none", **fields}}


def from_image(image_id: str, size: int = 1, **extra: Any) -> dict[str, Any]:
    """What `openstack server create --boot-from-volume SIZE --image X` sends."""
    return server_body(imageRef="", block_device_mapping_v2=[
        {"uuid": image_id, "boot_index": 0, "source_type": "image", "destination_type": "volume",
         "volume_size": size, **extra}])


def from_volume(volume_id: str, **extra: Any) -> dict[str, Any]:
    """What `openstack server create --volume V` sends."""
    return server_body(block_device_mapping_v2=[
        {"uuid": volume_id, "boot_index": 0, "source_type": "volume", "destination_type": "volume", **extra}])


def boot(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(S, json=body, headers=LATEST)
    assert r.status_code == 202, r.text
    return wait_server(client, r.json()["server"]["id"], {"ACTIVE"})


def refused(client: httpx.Client, body: dict[str, Any], *fragments: str, status: int = 400) -> None:
    before = client.get(f"{S}/detail", headers=LATEST).json()["servers"]
    volumes = client.get(f"{V}/volumes").json()["volumes"]
    r = client.post(S, json=body, headers=LATEST)
    assert r.status_code == status, r.text
    message = r.json()["badRequest"]["message"] if status == 400 else r.text
    for fragment in fragments:
        assert fragment in message, message
    assert client.get(f"{S}/detail", headers=LATEST).json()["servers"] == before
    assert client.get(f"{V}/volumes").json()["volumes"] == volumes


def attached(server: dict[str, Any]) -> list[dict[str, Any]]:
    return server["os-extended-volumes:volumes_attached"]


def delete(client: httpx.Client, server_id: str) -> None:
    assert client.delete(f"{S}/{server_id}").status_code == 204
    wait_gone(client, server_id)


@pytest.fixture(scope="module")
def image(alpha: Tenant, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return upload_image(alpha.member, tmp_path_factory.mktemp("bfv"))


def test_boot_from_a_volume_made_from_an_image(alpha: Tenant, image: dict[str, Any]):
    client = alpha.member
    server = boot(client, from_image(image["id"]))
    assert server["image"] == "" and len(attached(server)) == 1
    (mapping,) = attached(server)
    assert mapping["delete_on_termination"] is False
    volume = client.get(f"{V}/volumes/{mapping['id']}").json()["volume"]
    assert (volume["status"], volume["size"], volume["bootable"]) == ("in-use", 1, "true")
    assert [a["server_id"] for a in volume["attachments"]] == [server["id"]]
    assert volume["attachments"][0]["device"] == "/dev/vda"
    assert volume["volume_image_metadata"]["image_id"] == image["id"]
    r = client.get(f"{S}/{server['id']}/os-volume_attachments", headers=LATEST)
    assert r.status_code == 200 and [a["device"] for a in r.json()["volumeAttachments"]] == ["/dev/vda"]

    # delete_on_termination false: the volume stays, available, and boots again (--volume).
    delete(client, server["id"])
    assert wait_volume(client, mapping["id"], {"available"})["attachments"] == []
    again = boot(client, from_volume(mapping["id"], delete_on_termination=True))
    assert attached(again) == [{"id": mapping["id"], "delete_on_termination": True}]
    assert again["image"] == ""
    # delete_on_termination true: the volume goes with the server.
    delete(client, again["id"])
    wait_for(lambda: client.get(f"{V}/volumes/{mapping['id']}").status_code == 404, 60,
             "the volume deleted on termination to go")


def test_legacy_mapping_and_extra_blank_volumes(alpha: Tenant, admin: httpx.Client, image: dict[str, Any]):
    client = alpha.member
    root = wait_volume(client, create(client, imageRef=image["id"], size=1)["id"], {"available"})
    # Legacy v1: the volume on vda boots; flavor disk 0 is fine for a volume-backed server.
    r = admin.post("/compute/v2.1/flavors", json={"flavor": {"name": f"disk0-{uuid.uuid4().hex[:6]}", "ram": 64,
                                                            "vcpus": 1, "disk": 0}})
    assert r.status_code == 200, r.text
    flavor = r.json()["flavor"]["id"]
    server = boot(client, {"server": {**server_body()["server"], "flavorRef": flavor, "imageRef": "",
                                      "block_device_mapping": [{"device_name": "vda", "volume_id": root["id"],
                                                                "delete_on_termination": "false"}]}})
    assert [v["id"] for v in attached(server)] == [root["id"]]
    delete(client, server["id"])
    wait_volume(client, root["id"], {"available"})

    # An image root and two blank volumes (one on a named device): vdb, vdc.
    server = boot(client, server_body(imageRef=image["id"], block_device_mapping_v2=[
        {"uuid": image["id"], "boot_index": 0, "source_type": "image", "destination_type": "local"},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 1, "delete_on_termination": True},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 2, "device_name": "/dev/vdb"}]))
    assert server["image"]["id"] == image["id"] and len(attached(server)) == 2
    devices = {a["volumeId"]: a["device"] for a in client.get(
        f"{S}/{server['id']}/os-volume_attachments", headers=LATEST).json()["volumeAttachments"]}
    sizes = {v["id"]: client.get(f"{V}/volumes/{v['id']}").json()["volume"]["size"] for v in attached(server)}
    assert sorted((devices[v], sizes[v]) for v in devices) == [("/dev/vdb", 2), ("/dev/vdc", 1)]
    kept = next(v["id"] for v in attached(server) if not v["delete_on_termination"])
    delete(client, server["id"])
    wait_volume(client, kept, {"available"})
    assert client.delete(f"{V}/volumes/{kept}").status_code == 202


def test_bad_mappings_are_refused_and_make_nothing(alpha: Tenant, admin: httpx.Client, image: dict[str, Any],
                                                   tmp_path: Path):
    client = alpha.member
    volume = wait_volume(client, create(client, imageRef=image["id"], size=1)["id"], {"available"})
    blank = create(client)
    refused(client, server_body(imageRef=""), "Missing imageRef attribute")
    refused(client, server_body(block_device_mapping_v2=[
        {"uuid": volume["id"], "boot_index": 0, "source_type": "volume", "destination_type": "volume"},
        {"uuid": blank["id"], "boot_index": 0, "source_type": "volume", "destination_type": "volume"}]),
        "Block Device Mapping is Invalid: Boot sequence")
    unknown = str(uuid.uuid4())
    refused(client, from_volume(unknown), f"Block Device Mapping is Invalid: failed to get volume {unknown}.")
    refused(client, from_image(unknown), f"Block Device Mapping is Invalid: failed to get image {unknown}.")
    refused(client, from_volume(blank["id"]), f"Block Device {blank['id']} is not bootable.")
    refused(client, from_image(image["id"], size=0), "need to have a non-zero size specified")
    refused(client, server_body(block_device_mapping_v2=[
        {"uuid": volume["id"], "boot_index": 0, "source_type": "volume", "destination_type": "volume"},
        {"source_type": "blank", "destination_type": "local", "guest_format": "swap", "volume_size": 1}]),
        "ephemeral and swap disks")
    refused(client, server_body(imageRef=image["id"], block_device_mapping=[{"device_name": "vda",
                                                                             "volume_id": volume["id"]}],
                                block_device_mapping_v2=[{"uuid": volume["id"], "source_type": "volume",
                                                          "boot_index": 0}]),
            "Using different block_device_mapping syntaxes")
    refused(client, {"server": {**from_volume(volume["id"])["server"], "max_count": 2}},
            "Cannot attach one or more volumes to multiple instances")
    # A volume in use by a server is not available to boot another.
    server = boot(client, from_volume(volume["id"]))
    refused(client, from_volume(volume["id"]), f"Invalid volume: volume '{volume['id']}' status must be "
                                               f"'available'. Currently in 'in-use'")
    # Rebuild of a volume-backed server with another image: Nova's 400 (it does not reimage volumes).
    other = upload_image(client, tmp_path)
    r = client.post(f"{S}/{server['id']}/action", json={"rebuild": {"imageRef": other["id"]}}, headers=LATEST)
    assert r.status_code == 400 and "Unable to rebuild with a different image for a volume-backed server" in r.text
    assert client.get(f"{S}/{server['id']}", headers=LATEST).json()["server"]["status"] == "ACTIVE"
    # What would copy or move an image disk it has not: rescue is Nova's 400, the others cloudbox's 409.
    for action, body, status in (("rescue", {}, 400), ("shelve", None, 409), ("migrate", None, 409),
                                 ("createBackup", {"name": "b", "backup_type": "daily", "rotation": 1}, 400)):
        r = client.post(f"{S}/{server['id']}/action", json={action: body}, headers=LATEST)
        assert r.status_code == status, (action, r.text)
    # A resize (on its host) defines the guest again on the same volume, and so does a revert.
    # (Its root disk is the volume: a flavor with a smaller disk, or none, is fine.)
    small = admin.post("/compute/v2.1/flavors", json={"flavor": {"name": f"d0-{uuid.uuid4().hex[:6]}", "ram": 64,
                                                                 "vcpus": 1, "disk": 0}}).json()["flavor"]["id"]
    for flavor, then in (("2", "confirmResize"), (small, "revertResize")):
        r = client.post(f"{S}/{server['id']}/action", json={"resize": {"flavorRef": flavor}}, headers=LATEST)
        assert r.status_code == 202, r.text
        wait_server(client, server["id"], {"VERIFY_RESIZE"})
        assert client.post(f"{S}/{server['id']}/action", json={then: None}, headers=LATEST).status_code in (202, 204)
        resized = wait_server(client, server["id"], {"ACTIVE"})
        assert attached(resized) == [{"id": volume["id"], "delete_on_termination": False}]
    assert resized["flavor"]["original_name"] == "m1.small"  # confirmed to it, then reverted to it
    # With the image its volume came from, a rebuild defines the guest again on the same volume.
    r = client.post(f"{S}/{server['id']}/action", json={"rebuild": {"imageRef": image["id"]}}, headers=LATEST)
    assert r.status_code == 202, r.text
    rebuilt = wait_server(client, server["id"], {"ACTIVE"})
    assert attached(rebuilt) == [{"id": volume["id"], "delete_on_termination": False}]
    assert rebuilt["image"] == ""  # still booted from its volume, as Nova shows it
    delete(client, server["id"])


def test_snapshot_of_a_volume_backed_server_boots(alpha: Tenant, image: dict[str, Any]):
    client = alpha.member
    server = boot(client, from_image(image["id"], delete_on_termination=True))
    (root,) = attached(server)
    r = client.post(f"{S}/{server['id']}/action", json={"createImage": {"name": "bfv-snap", "metadata": {"k": "v"}}},
                    headers=LATEST)
    assert r.status_code == 202, r.text
    image_id = r.json()["image_id"]

    def active() -> dict[str, Any] | None:
        found = client.get(f"/image/v2/images/{image_id}").json()
        return found if found["status"] == "active" else None

    snap = wait_for(active, 120, "the volume-backed server's image to be active")
    assert snap["size"] == 0 and snap["bdm_v2"] == "True" and snap["k"] == "v"
    assert snap["root_device_name"] == "/dev/vda"
    (mapping,) = json.loads(snap["block_device_mapping"])
    assert (mapping["source_type"], mapping["destination_type"], mapping["boot_index"]) == ("snapshot", "volume", 0)
    snapshot = client.get(f"{V}/snapshots/{mapping['snapshot_id']}").json()["snapshot"]
    assert (snapshot["volume_id"], snapshot["status"]) == (root["id"], "available")
    wait_server(client, server["id"], {"ACTIVE"})  # the task ended

    # Booting the image makes a volume from the snapshot and boots it.
    again = boot(client, server_body(imageRef=image_id))
    (made,) = attached(again)
    assert made["id"] != root["id"]
    volume = client.get(f"{V}/volumes/{made['id']}").json()["volume"]
    assert volume["snapshot_id"] == mapping["snapshot_id"] and volume["status"] == "in-use"
    assert made["delete_on_termination"] is True  # the image's mapping keeps the original's flag
    # `openstack server create --snapshot S`: a volume of the snapshot's size made from it.
    third = boot(client, server_body(block_device_mapping_v2=[
        {"uuid": mapping["snapshot_id"], "boot_index": 0, "source_type": "snapshot", "destination_type": "volume",
         "delete_on_termination": False}]))
    (from_snapshot,) = attached(third)
    volume = client.get(f"{V}/volumes/{from_snapshot['id']}").json()["volume"]
    assert (volume["snapshot_id"], volume["size"], volume["status"]) == (mapping["snapshot_id"], 1, "in-use")
    delete(client, third["id"])
    wait_volume(client, from_snapshot["id"], {"available"})
    assert client.delete(f"{V}/volumes/{from_snapshot['id']}").status_code == 202
    for sid in (again["id"], server["id"]):
        delete(client, sid)
    wait_for(lambda: client.get(f"{V}/volumes/{made['id']}").status_code == 404, 60, "the made volume to go")
    # The first root was to go with its server too, but a volume with snapshots is not deleted
    # (Cinder's rule; Nova's delete logs it and goes on): it stays, available.
    wait_volume(client, root["id"], {"available"})


def test_a_server_whose_volumes_cannot_be_made_fails_and_leaves_none(cloud: Cloud, admin: httpx.Client,
                                                                    image: dict[str, Any]):
    """Over the volume quota (one volume): the first volume is made, the second refused; the server
    goes to ERROR saying why and the first volume is deleted again, as Nova's failed build leaves it."""
    tenant = Tenant(cloud, admin)
    try:
        r = admin.put(f"{V}/os-quota-sets/{tenant.project_id}", json={"quota_set": {"volumes": 1}})
        assert r.status_code == 200, r.text
        client = tenant.member
        public = admin.patch(f"/image/v2/images/{image['id']}", json=[
            {"op": "replace", "path": "/visibility", "value": "public"}],
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert public.status_code == 200, public.text
        r = client.post(S, headers=LATEST, json=server_body(imageRef=image["id"], block_device_mapping_v2=[
            {"source_type": "blank", "destination_type": "volume", "volume_size": 1},
            {"source_type": "blank", "destination_type": "volume", "volume_size": 1}]))
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
        failed = wait_server(client, sid, {"ERROR"})
        assert "aborted: VolumeLimitExceeded" in failed["fault"]["message"], failed["fault"]
        assert attached(failed) == []
        wait_for(lambda: client.get(f"{V}/volumes").json()["volumes"] == [], 60, "the made volume to be deleted")
        delete(client, sid)
    finally:
        tenant.close()


def test_several_servers_each_get_their_own_volume(alpha: Tenant, image: dict[str, Any]):
    client = alpha.member
    body = from_image(image["id"], delete_on_termination=True)
    body["server"]["max_count"] = 2
    r = client.post(S, json=body, headers=LATEST)
    assert r.status_code == 202, r.text
    name = body["server"]["name"]
    found = client.get(f"{S}/detail", params={"name": name}, headers=LATEST).json()["servers"]
    servers = [wait_server(client, s["id"], {"ACTIVE"}) for s in found]
    volumes = {v["id"] for s in servers for v in attached(s)}
    assert len(servers) == 2 and len(volumes) == 2 and all(s["image"] == "" for s in servers)
    for server in servers:
        delete(client, server["id"])
    for volume_id in volumes:
        wait_for(lambda: client.get(f"{V}/volumes/{volume_id}").status_code == 404, 60, "the volumes to go")


def test_a_build_cut_by_kill_9_resumes_on_restart(new_cloud: Cloud, tmp_path: Path):
    """kill -9 of the node right after the create was accepted (the build waits for the volume
    being made): after the restart the build goes on where it was, and the server runs on one
    volume, attached once (the in-memory hypervisor loses its guests, so the kill must come
    before the guest is defined: the volume copy of the image is what it interrupts)."""
    import signal

    new_cloud.init()
    new_cloud.start()
    with new_cloud.client(new_cloud.token()) as admin:
        image = upload_image(admin, tmp_path, visibility="public")
        r = admin.post(S, json=from_image(image["id"]), headers=LATEST)
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
    new_cloud.stop(signal.SIGKILL)
    new_cloud.start()
    with new_cloud.client(new_cloud.token()) as admin:
        server = wait_server(admin, sid, {"ACTIVE"})
        (mapping,) = attached(server)
        volumes = admin.get(f"{V}/volumes/detail", params={"all_tenants": 1}).json()["volumes"]
        assert [(v["id"], v["status"], len(v["attachments"])) for v in volumes] == [(mapping["id"], "in-use", 1)]

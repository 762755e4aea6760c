"""Volumes in real guests: our test guest booted by libvirt's embedded QEMU driver (TCG), a dir
driver volume hot-plugged with the real `openstack` CLI verbatim (`openstack server add volume
test vol1`, `openstack server remove volume test vol1`), checked in libvirt's own records of the
domain (the live status XML and the persistent definition it keeps under the node's root):
the disk is there with its serial while attached, survives a hard reboot and a stop/start, a
stopped server takes a disk into its definition, the guest releases it at detach, and deleting
the server detaches or deletes its volumes per delete_on_termination.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cloud import Cloud, wait_for
from tests.compute_helpers import wait_gone
from tests.test_compute_libvirt import console, qemu_running, real_node, stop_and_clean
from tests.test_openstack_cli import openstack
from tests.test_volume_api import V, volume_file

pytestmark = pytest.mark.slow
S = "/compute/v2.1/servers"


@pytest.fixture(scope="module")
def node(tmp_path_factory, guest_image):
    node = real_node(tmp_path_factory.mktemp("real-volumes") / "data")
    node.start(timeout=120)
    yield node
    admin = node.client(node.token())
    for s in admin.get(f"{S}?all_tenants=1").json().get("servers", []):
        admin.delete(f"{S}/{s['id']}")
    for s in admin.get(f"{S}?all_tenants=1").json().get("servers", []):
        wait_gone(admin, s["id"])
    stop_and_clean(node)


def disks(node: Cloud, server_id: str, live: bool = True) -> dict[str, dict[str, str]]:
    """The volume disks libvirt records for the domain (serial → target and source): its live
    status (<root>/run/qemu) or its persistent definition (<root>/etc/qemu)."""
    where = node.data_dir / "libvirt" / ("run" if live else "etc") / "qemu" / f"cloudbox-{server_id}.xml"
    if not where.exists():
        return {}
    root = ET.parse(where).getroot()
    found = {}
    for disk in root.iter("disk"):
        serial, target, source = disk.findtext("serial"), disk.find("target"), disk.find("source")
        if serial:
            found[serial] = {"target": target.get("dev") if target is not None else "",
                             "file": source.get("file", "") if source is not None else ""}
    return found


def volume_status(node: Cloud, vid: str) -> str:
    with node.client(node.token()) as admin:
        return admin.get(f"{V}/volumes/{vid}").json()["volume"]["status"]


def show(node: Cloud, *args: str) -> dict:
    return json.loads(openstack(node, *args, "-f", "json").stdout)


def server_status(node: Cloud, name: str) -> str:
    return show(node, "server", "show", name)["status"]


def test_add_and_remove_volume_in_a_running_guest(node: Cloud, guest_image: Path):
    openstack(node, "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
              "--file", str(guest_image), "cirros")
    server = show(node, "server", "create", "test", "--flavor", "m1.tiny", "--image", "cirros", "--wait")
    sid = server["id"]
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(node, "test"), 180, "the guest to finish booting")
    vol1 = show(node, "volume", "create", "vol1", "--size", "1")
    wait_for(lambda: volume_status(node, vol1["id"]) == "available", 60, "vol1 to be available")

    openstack(node, "server", "add", "volume", "test", "vol1")  # verbatim, as in the issue
    assert volume_status(node, vol1["id"]) == "in-use"
    live = disks(node, sid)
    assert live == {vol1["id"]: {"target": "vdb", "file": str(volume_file(node, vol1["id"]))}}
    assert disks(node, sid, live=False) == live  # and in the definition: a reboot keeps it
    attached = show(node, "server", "show", "test")["volumes_attached"]
    assert vol1["id"] in json.dumps(attached)
    shown = show(node, "volume", "show", "vol1")
    assert shown["status"] == "in-use" and sid in json.dumps(shown["attachments"])
    listed = json.loads(openstack(node, "server", "volume", "list", "test", "-f", "json").stdout)
    assert [(a["Volume ID"], a["Device"]) for a in listed] == [(vol1["id"], "/dev/vdb")]

    # A hard reboot (QEMU restarted from the definition) keeps the disk.
    openstack(node, "server", "reboot", "--hard", "--wait", "test")
    assert vol1["id"] in disks(node, sid)
    # A stopped server takes a disk into its definition; the start brings both.
    openstack(node, "server", "stop", "test")
    wait_for(lambda: server_status(node, "test") == "SHUTOFF", 120, "SHUTOFF")
    vol2 = show(node, "volume", "create", "vol2", "--size", "1")
    wait_for(lambda: volume_status(node, vol2["id"]) == "available", 60, "vol2 to be available")
    openstack(node, "server", "add", "volume", "test", "vol2")
    assert volume_status(node, vol2["id"]) == "in-use"
    assert set(disks(node, sid, live=False)) == {vol1["id"], vol2["id"]}
    openstack(node, "server", "start", "test")
    wait_for(lambda: server_status(node, "test") == "ACTIVE", 120, "ACTIVE")
    assert {k: d["target"] for k, d in disks(node, sid).items()} == {vol1["id"]: "vdb", vol2["id"]: "vdc"}

    # The guest releases the disk (ACPI hot-unplug; asked again while it still boots); the volume
    # is available again.
    openstack(node, "server", "remove", "volume", "test", "vol1")  # verbatim
    wait_for(lambda: volume_status(node, vol1["id"]) == "available", 240, "vol1 to be detached")
    assert set(disks(node, sid)) == {vol2["id"]} and set(disks(node, sid, live=False)) == {vol2["id"]}
    assert show(node, "volume", "show", "vol1")["attachments"] == []

    # A third volume, delete_on_termination; deleting the server detaches vol2 and deletes it.
    vol3 = show(node, "volume", "create", "vol3", "--size", "1")
    wait_for(lambda: volume_status(node, vol3["id"]) == "available", 60, "vol3 to be available")
    with node.client(node.token()) as admin:
        r = admin.post(f"{S}/{sid}/os-volume_attachments", headers={"OpenStack-API-Version": "compute 2.79"},
                       json={"volumeAttachment": {"volumeId": vol3["id"], "delete_on_termination": True}})
        assert r.status_code == 200, r.text
    assert set(disks(node, sid)) == {vol2["id"], vol3["id"]}
    openstack(node, "server", "delete", "--wait", "test")
    assert not qemu_running(sid)
    wait_for(lambda: volume_status(node, vol2["id"]) == "available", 60, "vol2 to be detached")
    with node.client(node.token()) as admin:
        wait_for(lambda: admin.get(f"{V}/volumes/{vol3['id']}").status_code == 404, 60, "vol3 to be deleted")
    assert volume_file(node, vol2["id"]).exists()


def test_a_detach_asked_while_the_guest_boots_is_asked_again(node: Cloud, guest_image: Path):
    """Tempest attaches and detaches as soon as a server is ACTIVE, while its guest still boots: the
    unplug request that comes before the guest's kernel handles ACPI hot-plug is lost, so it is sent
    again, and the volume comes back available."""
    from tests.compute_helpers import boot, upload_image, wait_server
    from tests.test_volume_api import create, wait_volume

    with node.client(node.token()) as admin:
        image = upload_image(admin, guest_image, name="early-guest")
        created = boot(admin, image["id"], flavor="1")
        sid = created["id"]
        wait_server(admin, sid, {"ACTIVE"})
        vol = create(admin)
        r = admin.post(f"{S}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vol["id"]}})
        assert r.status_code == 200, r.text
        assert admin.delete(f"{S}/{sid}/os-volume_attachments/{vol['id']}").status_code == 202
        wait_volume(admin, vol["id"], {"available"}, timeout=240)
        assert vol["id"] not in disks(node, sid) and vol["id"] not in disks(node, sid, live=False)
        assert admin.delete(f"{S}/{sid}").status_code == 204
        wait_gone(admin, sid)


def test_rescue_resize_and_shelve_keep_a_volume(node: Cloud, guest_image: Path):
    """Every definition a lifecycle action makes carries the attached volume: a rescue (the guest's
    own disk is vdb meanwhile, so the volume shows as vdc), a resize and its confirm, a shelve to
    offloaded and the unshelve."""
    from tests.compute_helpers import boot, upload_image, wait_server
    from tests.test_volume_api import create

    def act(admin, sid: str, body: dict, status: str) -> None:
        r = admin.post(f"{S}/{sid}/action", json=body)
        assert r.status_code in (200, 202, 204), r.text
        wait_server(admin, sid, {status}, timeout=240)

    with node.client(node.token()) as admin:
        image = upload_image(admin, guest_image, name="lifecycle-guest")
        bigger = admin.post("/compute/v2.1/flavors", json={"flavor": {
            "name": "vol-bigger", "ram": 320, "vcpus": 1, "disk": 1}}).json()["flavor"]["id"]
        sid = boot(admin, image["id"], flavor="1")["id"]
        wait_server(admin, sid, {"ACTIVE"})
        vol = create(admin)
        r = admin.post(f"{S}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vol["id"]}})
        assert r.status_code == 200, r.text

        act(admin, sid, {"rescue": None}, "RESCUE")
        assert disks(node, sid)[vol["id"]]["target"] == "vdc"
        act(admin, sid, {"unrescue": None}, "ACTIVE")
        assert disks(node, sid)[vol["id"]]["target"] == "vdb"
        act(admin, sid, {"resize": {"flavorRef": bigger}}, "VERIFY_RESIZE")
        assert vol["id"] in disks(node, sid)
        act(admin, sid, {"confirmResize": None}, "ACTIVE")
        assert vol["id"] in disks(node, sid) and vol["id"] in disks(node, sid, live=False)
        act(admin, sid, {"shelve": None}, "SHELVED_OFFLOADED")
        assert volume_status(node, vol["id"]) == "in-use"
        act(admin, sid, {"unshelve": None}, "ACTIVE")
        assert disks(node, sid)[vol["id"]]["target"] == "vdb" and volume_status(node, vol["id"]) == "in-use"
        assert admin.delete(f"{S}/{sid}").status_code == 204
        wait_gone(admin, sid)
        assert volume_status(node, vol["id"]) == "available"

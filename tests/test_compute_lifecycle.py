"""Nova's lifecycle actions over the API with the in-memory hypervisor (real disks, fake guests):
rescue/unrescue, shelve/unshelve, resize/confirm/revert, migrate, os-migrations; the state
machine, Nova's errors (409 in the wrong state, 400 for bad arguments, 403 by policy, locked
servers).  The same actions on real libvirt guests: test_compute_lifecycle_libvirt.py."""

from __future__ import annotations

import uuid

import pytest

from tests.cloud import Cloud, wait_for
from tests.compute_helpers import LATEST, boot, make_qcow2, new_project_user, upload_image, wait_gone, wait_server

V = lambda v: {"OpenStack-API-Version": f"compute {v}"}  # noqa: E731


@pytest.fixture(scope="module")
def setup(cloud: Cloud, tmp_path_factory):
    admin = cloud.client(cloud.token())
    image = upload_image(admin, make_qcow2(tmp_path_factory.mktemp("img") / "disk.qcow2"), visibility="public")
    flavors = {}
    for key, (vcpus, ram, disk) in {"small": (1, 64, 1), "big": (2, 96, 2), "zero": (1, 64, 0)}.items():
        r = admin.post("/compute/v2.1/flavors", json={"flavor": {
            "name": f"lc-{key}-{uuid.uuid4().hex[:6]}", "ram": ram, "vcpus": vcpus, "disk": disk}})
        assert r.status_code == 200, r.text
        flavors[key] = r.json()["flavor"]["id"]
    project, _, token = new_project_user(cloud, admin)
    member = cloud.client(token)
    return admin, member, image, flavors, project


def act(client, sid: str, body: dict, version: str = "2.96"):
    return client.post(f"/compute/v2.1/servers/{sid}/action", json=body, headers=V(version))


def active(client, image, flavor) -> str:
    sid = boot(client, image["id"], flavor=flavor)["id"]
    wait_server(client, sid, {"ACTIVE"})
    return sid


def test_rescue_and_unrescue(cloud: Cloud, setup):
    admin, member, image, flavors, _ = setup
    sid = active(member, image, flavors["small"])
    assert act(member, sid, {"unrescue": None}).status_code == 409  # not rescued
    r = act(member, sid, {"rescue": {"adminPass": "s3cret"}})
    assert r.status_code == 200 and r.json() == {"adminPass": "s3cret"}, r.text
    server = wait_server(member, sid, {"RESCUE"})
    assert server["OS-EXT-STS:vm_state"] == "rescued"
    for body in ({"rescue": None}, {"reboot": {"type": "SOFT"}}, {"os-stop": None}, {"shelve": None},
                 {"resize": {"flavorRef": flavors["big"]}}, {"rebuild": {"imageRef": image["id"]}}):
        assert act(member, sid, body).status_code == 409, body
    assert act(member, sid, {"unrescue": None}).status_code == 202
    server = wait_server(member, sid, {"ACTIVE"})
    assert server["OS-EXT-STS:vm_state"] == "active"
    # a generated password; a rescue image that does not exist; arguments Nova does not take
    r = act(member, sid, {"rescue": None})
    assert r.status_code == 200 and len(r.json()["adminPass"]) >= 8
    wait_server(member, sid, {"RESCUE"})
    act(member, sid, {"unrescue": None})
    wait_server(member, sid, {"ACTIVE"})
    assert act(member, sid, {"rescue": {"rescue_image_ref": str(uuid.uuid4())}}).status_code == 400
    assert act(member, sid, {"rescue": {"bogus": 1}}).status_code == 400
    assert member.get(f"/compute/v2.1/servers/{sid}").json()["server"]["status"] == "ACTIVE"


def test_rescue_refused_when_paused_locked_or_missing(cloud: Cloud, setup):
    admin, member, image, flavors, _ = setup
    sid = active(member, image, flavors["small"])
    assert act(member, sid, {"pause": None}).status_code == 202
    wait_server(member, sid, {"PAUSED"})
    assert act(member, sid, {"rescue": None}).status_code == 409
    assert act(member, sid, {"unpause": None}).status_code == 202
    wait_server(member, sid, {"ACTIVE"})
    assert act(admin, sid, {"lock": None}).status_code == 202
    assert act(member, sid, {"rescue": None}).status_code == 409  # locked by an admin
    assert act(member, sid, {"shelve": None}).status_code == 409
    assert act(admin, sid, {"unlock": None}).status_code == 202
    assert act(member, str(uuid.uuid4()), {"rescue": None}).status_code == 404


def test_shelve_offload_and_unshelve(cloud: Cloud, setup):
    admin, member, image, flavors, project = setup
    server = boot(member, image["id"], flavor=flavors["small"])
    sid = server["id"]
    wait_server(member, sid, {"ACTIVE"})
    name = member.get(f"/compute/v2.1/servers/{sid}").json()["server"]["name"]
    assert act(member, sid, {"unshelve": None}).status_code == 409  # not shelved
    assert act(member, sid, {"shelve": None}).status_code == 202
    server = wait_server(member, sid, {"SHELVED_OFFLOADED"})
    assert server["OS-EXT-STS:vm_state"] == "shelved_offloaded"
    shown = admin.get(f"/compute/v2.1/servers/{sid}", headers=LATEST).json()["server"]
    assert shown["OS-EXT-SRV-ATTR:host"] is None
    images = member.get(f"/image/v2/images?name={name}-shelved").json()["images"]
    assert len(images) == 1 and images[0]["status"] == "active"
    # the host's resources are released: nothing placed there counts this server
    hv = admin.get("/compute/v2.1/os-hypervisors/detail", headers=V("2.1")).json()["hypervisors"][0]
    assert hv["running_vms"] == len(admin.get("/compute/v2.1/servers?all_tenants=1&host=" +
                                              hv["service"]["host"]).json()["servers"])
    assert act(member, sid, {"shelveOffload": None}).status_code == 403  # admins only
    assert act(admin, sid, {"shelveOffload": None}).status_code == 409  # offloaded already
    assert act(member, sid, {"os-start": None}).status_code == 409
    # unshelve's body: null before 2.77, a zone from 2.77, a host (admins) from 2.91
    assert act(member, sid, {"unshelve": {"availability_zone": "nova"}}, "2.76").status_code == 400
    assert act(member, sid, {"unshelve": {"availability_zone": "nowhere"}}, "2.77").status_code == 400
    assert act(member, sid, {"unshelve": {"host": "x"}}, "2.77").status_code == 400
    assert act(member, sid, {"unshelve": {"host": "x"}}, "2.91").status_code == 403
    assert act(admin, sid, {"unshelve": {"host": "no-such-host"}}, "2.91").status_code == 400
    host = admin.get("/compute/v2.1/os-hypervisors/detail", headers=V("2.1")).json()["hypervisors"][0]
    assert act(admin, sid, {"unshelve": {"host": host["service"]["host"], "availability_zone": "elsewhere"}},
               "2.91").status_code == 400
    assert act(member, sid, {"unshelve": {"availability_zone": "nova"}}, "2.77").status_code == 202
    server = wait_server(member, sid, {"ACTIVE"})
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    # unpinned (2.91: a zone of null), it shows its host's zone once it runs again
    assert act(member, sid, {"shelve": None}).status_code == 202
    wait_server(member, sid, {"SHELVED_OFFLOADED"})
    assert act(admin, sid, {"unshelve": {"availability_zone": None, "host": host["service"]["host"]}},
               "2.91").status_code == 202
    server = wait_server(member, sid, {"ACTIVE"})
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    wait_for(lambda: member.get(f"/image/v2/images/{images[0]['id']}").status_code == 404, 30,
             "the shelved image to be deleted")
    # a paused server shelves too; deleting a shelved server deletes its image
    assert act(member, sid, {"pause": None}).status_code == 202
    wait_server(member, sid, {"PAUSED"})
    assert act(member, sid, {"shelve": None}).status_code == 202
    wait_server(member, sid, {"SHELVED_OFFLOADED"})
    shelved = member.get(f"/image/v2/images?name={name}-shelved").json()["images"]
    assert member.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
    wait_gone(member, sid)
    wait_for(lambda: member.get(f"/image/v2/images/{shelved[0]['id']}").status_code == 404, 30,
             "the deleted server's shelved image to go")


def test_resize_confirm_revert_and_quota(cloud: Cloud, setup):
    admin, member, image, flavors, project = setup
    sid = active(member, image, flavors["small"])
    before = admin.get(f"/compute/v2.1/os-quota-sets/{project}/detail").json()["quota_set"]["cores"]["in_use"]
    for bad, code in (({"flavorRef": flavors["small"]}, 400), ({"flavorRef": str(uuid.uuid4())}, 400),
                      ({"flavorRef": None}, 400), ({}, 400), ({"flavorRef": flavors["zero"]}, 400),
                      ({"flavorRef": flavors["big"], "x": 1}, 400)):
        assert act(member, sid, {"resize": bad}).status_code == code, bad
    assert act(member, sid, {"confirmResize": None}).status_code == 409
    assert act(member, sid, {"revertResize": None}).status_code == 409
    assert act(member, sid, {"resize": {"flavorRef": flavors["big"]}}).status_code == 202
    server = wait_server(member, sid, {"VERIFY_RESIZE"})
    assert server["flavor"]["vcpus"] == 2 and server["OS-EXT-STS:vm_state"] == "resized"
    after = admin.get(f"/compute/v2.1/os-quota-sets/{project}/detail").json()["quota_set"]["cores"]["in_use"]
    assert after == before + 1  # quotas follow the new flavor
    assert act(member, sid, {"resize": {"flavorRef": flavors["small"]}}).status_code == 409
    assert act(member, sid, {"revertResize": None}).status_code == 202
    server = wait_server(member, sid, {"ACTIVE"})
    assert server["flavor"]["vcpus"] == 1
    assert admin.get(f"/compute/v2.1/os-quota-sets/{project}/detail").json()["quota_set"]["cores"]["in_use"] == before
    # the disk only grows
    assert act(member, sid, {"resize": {"flavorRef": flavors["big"]}}).status_code == 202
    wait_server(member, sid, {"VERIFY_RESIZE"})
    assert act(member, sid, {"confirmResize": None}).status_code == 204
    server = wait_server(member, sid, {"ACTIVE"})
    assert server["flavor"]["vcpus"] == 2
    assert act(member, sid, {"resize": {"flavorRef": flavors["small"]}}).status_code == 400
    # migrations recorded: a resize reverted, a resize confirmed (newest first)
    mine = admin.get(f"/compute/v2.1/os-migrations?instance_uuid={sid}", headers=V("2.80")).json()["migrations"]
    assert [m["status"] for m in mine] == ["confirmed", "reverted"]
    assert all(m["migration_type"] == "resize" and m["project_id"] == project and m["uuid"] for m in mine)
    old = admin.get(f"/compute/v2.1/os-migrations?instance_uuid={sid}").json()["migrations"][0]
    assert set(old) == {"id", "status", "instance_uuid", "source_node", "source_compute", "dest_node",
                        "dest_compute", "dest_host", "old_instance_type_id", "new_instance_type_id",
                        "created_at", "updated_at"}
    assert isinstance(old["old_instance_type_id"], int) and old["old_instance_type_id"] != old["new_instance_type_id"]
    assert member.get("/compute/v2.1/os-migrations").status_code == 403
    page = admin.get(f"/compute/v2.1/os-migrations?instance_uuid={sid}&limit=1", headers=V("2.59")).json()
    assert len(page["migrations"]) == 1 and page["migrations_links"]
    rest = admin.get(f"/compute/v2.1/os-migrations?instance_uuid={sid}&marker={page['migrations'][0]['uuid']}",
                     headers=V("2.59")).json()["migrations"]
    assert [m["status"] for m in rest] == ["reverted"]
    assert admin.get(f"/compute/v2.1/os-migrations?marker={uuid.uuid4()}", headers=V("2.59")).status_code == 400
    # a server's in-progress live migrations: none, from 2.23, for admins
    assert admin.get(f"/compute/v2.1/servers/{sid}/migrations", headers=V("2.23")).json() == {"migrations": []}
    assert admin.get(f"/compute/v2.1/servers/{sid}/migrations", headers=V("2.22")).status_code == 404
    assert member.get(f"/compute/v2.1/servers/{sid}/migrations", headers=V("2.23")).status_code == 403


def test_resize_a_stopped_server_stays_stopped_and_quota_is_enforced(cloud: Cloud, setup):
    admin, member, image, flavors, project = setup
    sid = active(member, image, flavors["small"])
    assert act(member, sid, {"os-stop": None}).status_code == 202
    wait_server(member, sid, {"SHUTOFF"})
    assert act(member, sid, {"resize": {"flavorRef": flavors["big"]}}).status_code == 202
    server = wait_server(member, sid, {"VERIFY_RESIZE"})
    assert server["OS-EXT-STS:power_state"] == 4
    assert act(member, sid, {"confirmResize": None}).status_code == 204
    wait_server(member, sid, {"SHUTOFF"})
    # over the cores quota: 403, nothing changes
    usage = admin.get(f"/compute/v2.1/os-quota-sets/{project}/detail").json()["quota_set"]["cores"]["in_use"]
    other = active(member, image, flavors["small"])
    admin.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"cores": usage + 1}})
    try:
        assert act(member, other, {"resize": {"flavorRef": flavors["big"]}}).status_code == 403
        assert member.get(f"/compute/v2.1/servers/{other}").json()["server"]["status"] == "ACTIVE"
    finally:
        admin.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"cores": 20}})


def test_migrate_on_one_node_is_no_valid_host(cloud: Cloud, setup):
    admin, member, image, flavors, _ = setup
    sid = active(member, image, flavors["small"])
    assert act(member, sid, {"migrate": None}).status_code == 403  # a member may not
    r = act(admin, sid, {"migrate": None})
    assert r.status_code == 400 and "No valid host" in r.text
    assert act(admin, sid, {"migrate": {"host": "x"}}, "2.55").status_code == 400
    assert act(admin, sid, {"migrate": {"host": "no-such-host"}}, "2.56").status_code == 400
    assert member.get(f"/compute/v2.1/servers/{sid}").json()["server"]["status"] == "ACTIVE"


def test_rebuild_of_a_stopped_server_stays_stopped_and_answers_user_data_from_2_57(cloud: Cloud, setup):
    admin, member, image, flavors, _ = setup
    sid = active(member, image, flavors["small"])
    assert act(member, sid, {"os-stop": None}).status_code == 202
    wait_server(member, sid, {"SHUTOFF"})
    r = act(member, sid, {"rebuild": {"imageRef": image["id"], "user_data": "IyEvYmluL3No"}}, "2.57")
    assert r.status_code == 202 and r.json()["server"]["user_data"] == "IyEvYmluL3No"
    server = wait_server(member, sid, {"SHUTOFF"})
    assert server["OS-EXT-STS:vm_state"] == "stopped" and server["OS-EXT-STS:power_state"] == 4
    r = act(member, sid, {"rebuild": {"imageRef": image["id"]}}, "2.56")
    assert r.status_code == 202 and "user_data" not in r.json()["server"]
    wait_server(member, sid, {"SHUTOFF"})
    r = act(admin, sid, {"rebuild": {"imageRef": image["id"]}}, "2.75")  # an admin's answer: user_data alone
    assert r.status_code == 202 and "OS-EXT-SRV-ATTR:user_data" not in r.json()["server"]
    assert r.json()["server"]["user_data"] == "IyEvYmluL3No" and "OS-EXT-SRV-ATTR:host" in r.json()["server"]
    wait_server(member, sid, {"SHUTOFF"})


def test_resize_beyond_the_hosts_room_is_no_valid_host(cloud: Cloud, setup):
    admin, member, image, flavors, project = setup
    sid = active(member, image, flavors["small"])
    huge = admin.post("/compute/v2.1/flavors", json={"flavor": {
        "name": f"lc-huge-{uuid.uuid4().hex[:6]}", "ram": 1 << 30, "vcpus": 1, "disk": 1}}).json()["flavor"]["id"]
    r = act(member, sid, {"resize": {"flavorRef": huge}})
    assert r.status_code == 403, r.text  # the quota first, as Nova checks it
    admin.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"ram": -1}})
    r = act(member, sid, {"resize": {"flavorRef": huge}})
    assert r.status_code == 400 and "No valid host" in r.text, r.text
    server = member.get(f"/compute/v2.1/servers/{sid}", headers=LATEST).json()["server"]
    assert server["status"] == "ACTIVE" and server["flavor"]["ram"] == 64


def test_a_rescue_domain_boots_its_rescue_disk_and_keeps_its_metadata():
    """The rescue disk is vda (it boots), the server's own disk vdb; the domain's metadata survives."""
    import xml.etree.ElementTree as ET

    from cloudbox.compute.core import parse_domain_metadata, render_domain_xml
    from cloudbox.compute.driver import DomainSpec
    from cloudbox.compute.driver.real import with_extra_disks

    spec = DomainSpec(uuid=str(uuid.uuid4()), name="cloudbox-x", vcpus=1, memory_mb=64, root_disk="/i/disk.rescue",
                      console_log="/i/console.log", accel="tcg", config_drive="/i/config.iso",
                      metadata={"server_id": "x", "host": "h"}, extra_disks=("/i/disk",))
    xml = with_extra_disks(render_domain_xml(spec), spec.extra_disks)
    disks = [(d.get("device"), d.find("source").get("file"), d.find("target").get("dev"))
             for d in ET.fromstring(xml).find("devices").findall("disk")]
    assert disks == [("disk", "/i/disk.rescue", "vda"), ("disk", "/i/disk", "vdb"), ("cdrom", "/i/config.iso", "hdd")]
    assert parse_domain_metadata(xml) == {"server_id": "x", "host": "h"}
    assert with_extra_disks(render_domain_xml(spec), ()) == render_domain_xml(spec)

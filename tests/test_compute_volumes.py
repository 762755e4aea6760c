"""Volumes attached to servers (Nova's os-volume_attachments) over real HTTPS against a running
node: the in-memory hypervisor, the real volume service (dir driver).  Attach and detach with
Nova's answers, statuses and refusals (a refusal changes nothing on either service), devices,
tags and delete_on_termination by microversion, server show's volumes_attached, and a server's
delete detaching its volumes and deleting those marked delete_on_termination.

The same against real libvirt guests (the disk in the live XML) is test_compute_volumes_libvirt.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.cloud import Cloud, wait_for
from tests.compute_helpers import boot, make_qcow2, upload_image, wait_gone, wait_server
from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)
from tests.test_volume_api import V, create, fault, unique, volume_file, wait_volume

S = "/compute/v2.1/servers"


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest.fixture(scope="module")
def image(admin: httpx.Client, alpha: Tenant, tmp_path_factory) -> dict[str, Any]:
    # These tests leave volumes behind in alpha: room for them beyond the default quota of 10.
    r = admin.put(f"{V}/os-quota-sets/{alpha.project_id}", json={"quota_set": {"volumes": 200, "gigabytes": 400}})
    assert r.status_code == 200, r.text
    return upload_image(admin, make_qcow2(tmp_path_factory.mktemp("img") / "disk.qcow2"), visibility="public")


def server_of(tenant: Tenant, image: dict[str, Any]) -> str:
    created = boot(tenant.member, image["id"])
    wait_server(tenant.member, created["id"], {"ACTIVE"})
    return created["id"]


def attach(client: httpx.Client, sid: str, vid: str, version: str = "2.79", **fields: Any) -> httpx.Response:
    return client.post(f"{S}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vid, **fields}},
                       headers=mv(version))


def attachments(client: httpx.Client, sid: str, version: str = "2.79") -> list[dict[str, Any]]:
    r = client.get(f"{S}/{sid}/os-volume_attachments", headers=mv(version))
    assert r.status_code == 200, r.text
    return r.json()["volumeAttachments"]


def volume(client: httpx.Client, vid: str) -> dict[str, Any]:
    return client.get(f"{V}/volumes/{vid}").json()["volume"]


def detach(client: httpx.Client, sid: str, vid: str) -> None:
    r = client.delete(f"{S}/{sid}/os-volume_attachments/{vid}")
    assert r.status_code == 202, r.text
    wait_volume(client, vid, {"available"})
    wait_for(lambda: all(a["volumeId"] != vid for a in attachments(client, sid)), 30, "the mapping to go")


def test_attach_show_list_detach(alpha: Tenant, image: dict[str, Any]):
    sid = server_of(alpha, image)
    first, second, third = (create(alpha.member) for _ in range(3))
    r = attach(alpha.member, sid, first["id"])
    assert r.status_code == 200, r.text
    made = r.json()["volumeAttachment"]
    assert made == {"id": first["id"], "serverId": sid, "volumeId": first["id"], "device": "/dev/vdb",
                    "tag": None, "delete_on_termination": False}
    shown = volume(alpha.member, first["id"])  # in-use when the attach answers, as Tempest expects
    assert shown["status"] == "in-use"
    assert [(a["server_id"], a["device"]) for a in shown["attachments"]] == [(sid, "/dev/vdb")]
    # The next free device, or the one asked for; a tag from 2.49 (shown from 2.70)
    r = attach(alpha.member, sid, second["id"], "2.49", device="/dev/vdf", tag="data")
    assert r.status_code == 200 and r.json()["volumeAttachment"]["device"] == "/dev/vdf", r.text
    assert "tag" not in r.json()["volumeAttachment"]
    r = attach(alpha.member, sid, third["id"], "2.1", device="/dev/vdf")  # taken: the next free one
    assert r.json()["volumeAttachment"] == {"id": third["id"], "serverId": sid, "volumeId": third["id"],
                                            "device": "/dev/vdc"}

    listed = attachments(alpha.reader, sid, "2.89")  # by device
    assert [(a["device"], a["volumeId"], a["tag"]) for a in listed] == [
        ("/dev/vdb", first["id"], None), ("/dev/vdc", third["id"], None), ("/dev/vdf", second["id"], "data")]
    assert all("id" not in a and a["attachment_id"] and a["bdm_uuid"] for a in listed)
    assert {a["attachment_id"] for a in listed} == {volume(alpha.member, v["id"])["attachments"][0]["attachment_id"]
                                                    for v in (first, second, third)}
    page = alpha.member.get(f"{S}/{sid}/os-volume_attachments?limit=1&offset=1").json()["volumeAttachments"]
    assert [a["volumeId"] for a in page] == [third["id"]]
    fault(alpha.member.get(f"{S}/{sid}/os-volume_attachments?offset=-1"), 400)
    r = alpha.reader.get(f"{S}/{sid}/os-volume_attachments/{second['id']}", headers=mv("2.70"))
    assert r.json()["volumeAttachment"]["tag"] == "data"

    server = alpha.member.get(f"{S}/{sid}", headers=mv("2.3")).json()["server"]
    assert sorted(v["id"] for v in server["os-extended-volumes:volumes_attached"]) == sorted(
        v["id"] for v in (first, second, third))
    assert all(v["delete_on_termination"] is False for v in server["os-extended-volumes:volumes_attached"])
    old = alpha.member.get(f"{S}/detail", headers=mv("2.1")).json()["servers"]
    [mine] = [s for s in old if s["id"] == sid]
    assert all(set(v) == {"id"} for v in mine["os-extended-volumes:volumes_attached"])

    detach(alpha.member, sid, second["id"])
    assert {a["volumeId"] for a in attachments(alpha.member, sid)} == {first["id"], third["id"]}
    fault(alpha.member.get(f"{S}/{sid}/os-volume_attachments/{second['id']}"), 404, "not attached")
    # a detached volume goes to another server, and back
    other = server_of(alpha, image)
    assert attach(alpha.member, other, second["id"]).status_code == 200
    detach(alpha.member, other, second["id"])
    for vid in (first["id"], third["id"]):
        detach(alpha.member, sid, vid)
    actions = alpha.member.get(f"{S}/{sid}/os-instance-actions").json()["instanceActions"]
    assert {"attach_volume", "detach_volume"} <= {a["action"] for a in actions}


def unchanged(client: httpx.Client, sid: str, vid: str, status: str, mapped: set[str]) -> None:
    assert volume(client, vid)["status"] == status
    assert {a["volumeId"] for a in attachments(client, sid)} == mapped


def test_refusals_change_nothing(cloud: Cloud, alpha: Tenant, beta: Tenant, admin: httpx.Client,
                                 image: dict[str, Any]):
    sid = server_of(alpha, image)
    vol = create(alpha.member)
    vid = vol["id"]
    fault(attach(alpha.member, sid, str(uuid.uuid4())), 404, "could not be found")
    fault(attach(alpha.member, str(uuid.uuid4()), vid), 404)
    fault(attach(alpha.member, sid, "not-a-uuid"), 400)
    fault(attach(alpha.member, sid, vid, device="vdb"), 400)
    fault(attach(alpha.member, sid, vid, "2.48", tag="t"), 400, "tag")
    fault(attach(alpha.member, sid, vid, "2.78", delete_on_termination=True), 400, "delete_on_termination")
    fault(attach(alpha.reader, sid, vid), 403)
    fault(attach(beta.member, sid, vid), 404)  # another project's server
    beta_vol = create(beta.member)
    fault(attach(alpha.member, sid, beta_vol["id"]), 404)  # another project's volume
    unchanged(alpha.member, sid, vid, "available", set())

    assert attach(alpha.member, sid, vid).status_code == 200
    fault(attach(alpha.member, sid, vid), 400, "already attached")
    other = server_of(alpha, image)
    fault(attach(alpha.member, other, vid), 400)  # in-use, not multiattach
    unchanged(alpha.member, sid, vid, "in-use", {vid})
    unchanged(alpha.member, other, vid, "in-use", set())
    fault(alpha.member.delete(f"{S}/{other}/os-volume_attachments/{vid}"), 404, "not attached")
    fault(alpha.reader.delete(f"{S}/{sid}/os-volume_attachments/{vid}"), 403)
    fault(beta.member.delete(f"{S}/{sid}/os-volume_attachments/{vid}"), 404)
    unchanged(alpha.member, sid, vid, "in-use", {vid})

    # a multiattach volume only from 2.60
    kind = unique("multi")
    r = admin.post(f"{V}/types", json={"volume_type": {"name": kind, "extra_specs": {"multiattach": "<is> True"}}})
    assert r.status_code == 200, r.text
    multi = create(alpha.member, volume_type=kind)
    fault(attach(alpha.member, other, multi["id"], "2.59"), 400, "2.60")
    unchanged(alpha.member, other, multi["id"], "available", set())
    assert attach(alpha.member, other, multi["id"], "2.60").status_code == 200
    assert attach(alpha.member, sid, multi["id"], "2.60").status_code == 200
    assert {a["server_id"] for a in volume(alpha.member, multi["id"])["attachments"]} == {sid, other}
    r = alpha.member.delete(f"{S}/{sid}/os-volume_attachments/{multi['id']}")
    assert r.status_code == 202
    wait_for(lambda: {a["server_id"] for a in volume(alpha.member, multi["id"])["attachments"]} == {other}, 30,
             "the first server's attachment to go")
    assert volume(alpha.member, multi["id"])["status"] == "in-use"
    detach(alpha.member, other, multi["id"])

    # server states Nova refuses: locked (non-admin), building, shelved_offloaded
    assert alpha.member.post(f"{S}/{sid}/action", json={"lock": None}).status_code == 202
    spare = create(alpha.member)
    fault(attach(alpha.member, sid, spare["id"]), 409, "locked")
    fault(alpha.member.delete(f"{S}/{sid}/os-volume_attachments/{vid}"), 409, "locked")
    assert alpha.member.post(f"{S}/{sid}/action", json={"unlock": None}).status_code == 202
    building = boot(alpha.member, image["id"])["id"]
    r = attach(alpha.member, building, spare["id"])
    assert r.status_code in (200, 409), r.text  # the fake hypervisor may have built it already
    if r.status_code == 200:
        detach(alpha.member, building, spare["id"])
    assert alpha.member.post(f"{S}/{other}/action", json={"shelve": None}).status_code == 202
    wait_server(alpha.member, other, {"SHELVED_OFFLOADED"})
    fault(attach(alpha.member, other, spare["id"], "2.19"), 409, "shelved_offloaded")  # from 2.20 only
    unchanged(alpha.member, other, spare["id"], "available", set())
    fault(attach(alpha.member, other, multi["id"], "2.60"), 400, "shelved-offloaded")
    unchanged(alpha.member, other, multi["id"], "available", set())
    detach(alpha.member, sid, vid)


def test_a_shelved_offloaded_server_takes_a_volume_from_2_20_and_has_it_when_unshelved(alpha: Tenant,
                                                                                       image: dict[str, Any]):
    sid = server_of(alpha, image)
    assert alpha.member.post(f"{S}/{sid}/action", json={"shelve": None}).status_code == 202
    wait_server(alpha.member, sid, {"SHELVED_OFFLOADED"})
    vol, other = create(alpha.member), create(alpha.member)
    assert attach(alpha.member, sid, vol["id"], "2.20").status_code == 200
    assert attach(alpha.member, sid, other["id"], "2.20").status_code == 200
    assert volume(alpha.member, vol["id"])["status"] == "in-use"
    fault(alpha.member.delete(f"{S}/{sid}/os-volume_attachments/{other['id']}", headers=mv("2.19")), 409)
    r = alpha.member.delete(f"{S}/{sid}/os-volume_attachments/{other['id']}", headers=mv("2.20"))
    assert r.status_code == 202, r.text
    wait_volume(alpha.member, other["id"], {"available"})
    assert alpha.member.post(f"{S}/{sid}/action", json={"unshelve": None}).status_code == 202
    wait_server(alpha.member, sid, {"ACTIVE"})
    assert [a["volumeId"] for a in attachments(alpha.member, sid)] == [vol["id"]]
    assert volume(alpha.member, vol["id"])["status"] == "in-use"
    detach(alpha.member, sid, vol["id"])


def test_a_stopped_server_takes_and_keeps_volumes_through_actions(alpha: Tenant, image: dict[str, Any]):
    sid = server_of(alpha, image)
    assert alpha.member.post(f"{S}/{sid}/action", json={"os-stop": None}).status_code == 202
    wait_server(alpha.member, sid, {"SHUTOFF"})
    vol = create(alpha.member)
    assert attach(alpha.member, sid, vol["id"]).status_code == 200
    assert volume(alpha.member, vol["id"])["status"] == "in-use"
    for body, status in (({"os-start": None}, "ACTIVE"), ({"reboot": {"type": "HARD"}}, "ACTIVE"),
                         ({"rebuild": {"imageRef": image["id"]}}, "ACTIVE")):
        assert alpha.member.post(f"{S}/{sid}/action", json=body).status_code == 202
        wait_server(alpha.member, sid, {status})
        assert [a["volumeId"] for a in attachments(alpha.member, sid)] == [vol["id"]]
        assert volume(alpha.member, vol["id"])["status"] == "in-use"
    detach(alpha.member, sid, vol["id"])


def test_update_delete_on_termination_and_swap(alpha: Tenant, admin: httpx.Client, image: dict[str, Any]):
    sid = server_of(alpha, image)
    vol, new = create(alpha.member), create(alpha.member)
    assert attach(alpha.member, sid, vol["id"]).status_code == 200
    path = f"{S}/{sid}/os-volume_attachments/{vol['id']}"
    body = {"volumeAttachment": {"volumeId": vol["id"], "delete_on_termination": True}}
    fault(alpha.member.put(path, json=body, headers=mv("2.84")), 400)
    r = alpha.member.put(path, json=body, headers=mv("2.85"))
    assert r.status_code == 202, r.text
    assert attachments(alpha.member, sid)[0]["delete_on_termination"] is True
    fault(alpha.member.put(path, json={"volumeAttachment": {"volumeId": vol["id"], "device": "/dev/vdz"}},
                           headers=mv("2.85")), 400, "device")
    swap = {"volumeAttachment": {"volumeId": new["id"]}}
    fault(alpha.member.put(path, json=swap), 403)
    # (an admin's swap: tests/test_compute_volume_swap.py)
    fault(admin.put(f"{S}/{sid}/os-volume_attachments/{new['id']}", json={"volumeAttachment": {
        "volumeId": vol["id"]}}), 404)
    assert volume(alpha.member, new["id"])["status"] == "available"
    assert volume(alpha.member, vol["id"])["status"] == "in-use"
    assert alpha.member.delete(f"{S}/{sid}").status_code == 204
    wait_gone(alpha.member, sid)
    wait_for(lambda: alpha.member.get(f"{V}/volumes/{vol['id']}").status_code == 404, 30, "the volume to go")


def test_deleting_a_server_detaches_its_volumes_and_deletes_those_marked(alpha: Tenant, image: dict[str, Any]):
    sid = server_of(alpha, image)
    kept, dropped = create(alpha.member), create(alpha.member)
    assert attach(alpha.member, sid, kept["id"]).status_code == 200
    assert attach(alpha.member, sid, dropped["id"], delete_on_termination=True).status_code == 200
    shown = alpha.member.get(f"{S}/{sid}", headers=mv("2.3")).json()["server"]
    assert {v["id"]: v["delete_on_termination"] for v in shown["os-extended-volumes:volumes_attached"]} == {
        kept["id"]: False, dropped["id"]: True}
    assert alpha.member.delete(f"{S}/{sid}").status_code == 204
    wait_gone(alpha.member, sid)
    assert wait_volume(alpha.member, kept["id"], {"available"})["attachments"] == []
    wait_for(lambda: alpha.member.get(f"{V}/volumes/{dropped['id']}").status_code == 404, 30, "the volume to go")


def test_an_attach_the_volume_node_cannot_serve_is_undone(cloud: Cloud, alpha: Tenant, image: dict[str, Any]):
    """The volume's data is missing: the volume service cannot give a connection (503); the
    reservation and the mapping made before are undone."""
    sid = server_of(alpha, image)
    vol = create(alpha.member)
    data = volume_file(cloud, vol["id"])
    hidden = data.with_name(data.name + ".hidden")
    data.rename(hidden)
    try:
        fault(attach(alpha.member, sid, vol["id"]), 503, "no data")
    finally:
        hidden.rename(data)
    unchanged(alpha.member, sid, vol["id"], "available", set())
    assert volume(alpha.member, vol["id"])["attachments"] == []
    assert attach(alpha.member, sid, vol["id"]).status_code == 200  # and it attaches once it can
    detach(alpha.member, sid, vol["id"])


@pytest.mark.parametrize("version", [None, "2.1", "2.latest"])
def test_the_openstack_cli_adds_lists_sets_and_removes_volumes(cloud: Cloud, admin: httpx.Client,
                                                               image: dict[str, Any], version: str | None):
    """`openstack server add volume` / `server volume list` / `server volume set` / `server remove
    volume` as typed, at the microversion the CLI negotiates and at the oldest and newest."""
    import json

    from tests.test_openstack_cli import openstack

    pinned = ("--os-compute-api-version", version) if version else ()
    n = uuid.uuid4().hex[:6]

    def cli(*args: str) -> Any:
        out = openstack(cloud, *pinned, *args, "-f", "json").stdout
        return json.loads(out) if out.strip() else {}

    server = cli("server", "create", "--flavor", "m1.nano", "--image", image["id"], "--wait", f"cli-{n}")
    vol = cli("volume", "create", "--size", "1", f"clivol-{n}")
    wait_volume(admin, vol["id"], {"available"})
    extra = ("--tag", "db", "--enable-delete-on-termination") if version == "2.latest" else ()
    added = cli("server", "add", "volume", "--device", "/dev/vdc", *extra, f"cli-{n}", f"clivol-{n}")
    assert added["Device"] == "/dev/vdc" and added["Volume ID"] == vol["id"], added
    assert volume(admin, vol["id"])["status"] == "in-use"
    listed = cli("server", "volume", "list", f"cli-{n}")
    assert [(a["Volume ID"], a["Device"]) for a in listed] == [(vol["id"], "/dev/vdc")]
    if version == "2.latest":
        assert listed[0]["Tag"] == "db" and listed[0]["Delete On Termination?"] is True
        openstack(cloud, *pinned, "server", "volume", "set", "--preserve-on-termination", f"cli-{n}", vol["id"])
        assert cli("server", "volume", "list", f"cli-{n}")[0]["Delete On Termination?"] is False
    openstack(cloud, *pinned, "server", "remove", "volume", f"cli-{n}", f"clivol-{n}")
    wait_volume(admin, vol["id"], {"available"})
    assert cli("server", "volume", "list", f"cli-{n}") == []
    openstack(cloud, "server", "delete", "--wait", f"cli-{n}")
    assert volume(admin, vol["id"])["status"] == "available"

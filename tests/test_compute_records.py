"""Compute's records over real HTTPS (in-memory hypervisor): instance actions and their events,
the server password, diagnostics, the usage audit log, and the small Nova answers around them
(quota revert, the tenant filter without all_tenants, server_groups from 2.71)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from cloudbox.compute import views
from tests.cloud import Cloud, wait_for
from tests.compute_helpers import boot, make_qcow2, new_project_user, upload_image, wait_gone, wait_server

V = lambda text: {"OpenStack-API-Version": f"compute {text}"}  # noqa: E731


@pytest.fixture(scope="module")
def image(cloud: Cloud, tmp_path_factory):
    admin = cloud.client(cloud.token())
    yield upload_image(admin, make_qcow2(tmp_path_factory.mktemp("img") / "disk.qcow2"), visibility="public")
    admin.close()


@pytest.fixture(scope="module")
def owner(cloud: Cloud, image):
    """A member of a fresh project with one ACTIVE server, and a reader of that project."""
    admin = cloud.client(cloud.token())
    project, _, token = new_project_user(cloud, admin)
    reader_user = f"r-{uuid.uuid4().hex[:8]}"
    user = admin.post("/identity/v3/users", json={"user": {"name": reader_user, "password": "pw"}}).json()["user"]
    roles = {r["name"]: r["id"] for r in admin.get("/identity/v3/roles").json()["roles"]}
    admin.put(f"/identity/v3/projects/{project}/users/{user['id']}/roles/{roles['reader']}")
    name = admin.get(f"/identity/v3/projects/{project}").json()["project"]["name"]
    member, reader = cloud.client(token), cloud.client(cloud.token(reader_user, "pw", project=name))
    r = member.post("/compute/v2.1/servers", headers=V("2.96"), json={"server": {
        "name": "rec", "imageRef": image["id"], "flavorRef": "42", "networks": "auto"}})
    assert r.status_code == 202, r.text
    assert r.headers["x-compute-request-id"] == r.headers["x-openstack-request-id"]
    server = wait_server(member, r.json()["server"]["id"], {"ACTIVE"})
    yield admin, member, reader, server, r.headers["x-compute-request-id"]
    for client in (admin, member, reader):
        client.close()


def actions_path(server_id: str) -> str:
    return f"/compute/v2.1/servers/{server_id}/os-instance-actions"


def wait_finished(client, server_id: str, request_id: str, version: str = "2.96") -> dict:
    def finished():
        action = client.get(f"{actions_path(server_id)}/{request_id}", headers=V(version)).json()["instanceAction"]
        return action if action["events"] and all(e["finish_time"] for e in action["events"]) else None
    return wait_for(finished, 30, f"the events of {request_id} to finish")


def test_create_and_reboot_are_listed_with_their_events(owner):
    admin, member, reader, server, create_id = owner
    r = member.post(f"/compute/v2.1/servers/{server['id']}/action", json={"reboot": {"type": "HARD"}})
    assert r.status_code == 202
    reboot_id = r.headers["x-openstack-request-id"]
    wait_server(member, server["id"], {"ACTIVE"})
    r = reader.get(actions_path(server["id"]))
    assert r.status_code == 200, r.text
    listed = r.json()["instanceActions"]
    assert [(a["action"], a["request_id"]) for a in listed] == [("reboot", reboot_id), ("create", create_id)]
    assert set(listed[0]) == {"action", "instance_uuid", "request_id", "user_id", "project_id", "start_time",
                              "message"}
    assert listed[1]["instance_uuid"] == server["id"] and listed[1]["project_id"] == server["tenant_id"]
    assert listed[1]["user_id"] == server["user_id"] and listed[1]["message"] is None

    # Before 2.51 a reader sees no events; an admin does, with the traceback field.
    shown = reader.get(f"{actions_path(server['id'])}/{create_id}").json()["instanceAction"]
    assert "events" not in shown and shown["action"] == "create"
    event = wait_finished(admin, server["id"], create_id, "2.1")["events"][0]
    assert event["event"] == "compute__do_build_and_run_instance" and event["result"] == "Success"
    assert "traceback" in event and "host" not in event

    # 2.51: the reader sees events (no traceback); 2.62: hostId to all, host to admins; 2.84 details to admins.
    events = wait_finished(reader, server["id"], reboot_id, "2.84")["events"]
    assert [(e["event"], e["result"]) for e in events] == [("compute_reboot_instance", "Success")]
    assert set(events[0]) == {"event", "start_time", "finish_time", "result", "hostId"}
    assert events[0]["hostId"] == server["hostId"]
    as_admin = admin.get(f"{actions_path(server['id'])}/{reboot_id}", headers=V("2.84")).json()["instanceAction"]
    assert set(as_admin["events"][0]) == {"event", "start_time", "finish_time", "result", "traceback", "host",
                                          "hostId", "details"}
    assert as_admin["updated_at"] == as_admin["events"][0]["finish_time"]
    assert reader.get(f"{actions_path(server['id'])}/req-{uuid.uuid4()}").status_code == 404
    assert reader.get(actions_path(str(uuid.uuid4()))).status_code == 404


def test_a_failed_build_is_an_error_event(owner, image):
    """A build that finds no host ends its event in Error; the action says "Error", the event's
    details (admins, 2.84) say why."""
    admin, member, reader, server, _ = owner
    project = server["tenant_id"]
    assert admin.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"ram": -1}}).status_code == 200
    huge = admin.post("/compute/v2.1/flavors", json={"flavor": {
        "name": f"huge-{uuid.uuid4().hex[:6]}", "ram": 1 << 24, "vcpus": 1, "disk": 1}}).json()["flavor"]
    r = member.post("/compute/v2.1/servers", headers=V("2.96"), json={"server": {
        "name": "too-big", "imageRef": image["id"], "flavorRef": huge["id"], "networks": "none"}})
    assert r.status_code == 202, r.text
    sid, request_id = r.json()["server"]["id"], r.headers["x-openstack-request-id"]
    wait_server(member, sid, {"ERROR"})
    action = wait_finished(admin, sid, request_id)
    assert action["message"] == "Error" and action["events"][0]["result"] == "Error"
    assert action["events"][0]["details"]
    assert "details" not in wait_finished(reader, sid, request_id)["events"][0]
    member.delete(f"/compute/v2.1/servers/{sid}")
    wait_gone(member, sid)
    admin.delete(f"/compute/v2.1/os-quota-sets/{project}")


def test_paging_and_filters_from_2_58(owner):
    admin, member, reader, server, create_id = owner
    for action in ({"lock": None}, {"unlock": None}):
        assert member.post(f"/compute/v2.1/servers/{server['id']}/action", json=action).status_code == 202
    everything = reader.get(actions_path(server["id"]), headers=V("2.58")).json()["instanceActions"]
    assert [a["action"] for a in everything[:2]] == ["unlock", "lock"] and everything[-1]["request_id"] == create_id
    assert all(a["updated_at"] for a in everything)
    r = reader.get(actions_path(server["id"]), headers=V("2.58"), params={"limit": 1})
    assert [a["action"] for a in r.json()["instanceActions"]] == ["unlock"]
    assert f"marker={everything[0]['request_id']}" in r.json()["links"][0]["href"]
    page = reader.get(actions_path(server["id"]), headers=V("2.58"),
                      params={"limit": 1, "marker": everything[0]["request_id"]}).json()["instanceActions"]
    assert [a["action"] for a in page] == ["lock"]
    later = reader.get(actions_path(server["id"]), headers=V("2.58"),
                       params={"changes-since": everything[1]["updated_at"]}).json()["instanceActions"]
    assert [a["action"] for a in later] == ["unlock", "lock"]
    earlier = reader.get(actions_path(server["id"]), headers=V("2.66"),
                         params={"changes-before": everything[-1]["updated_at"]}).json()["instanceActions"]
    assert [a["request_id"] for a in earlier] == [create_id]
    for version, params in (("2.58", {"marker": "req-none"}), ("2.58", {"foo": "bar"}), ("2.58", {"changes-since": "yesterday"}),
                            ("2.58", {"changes-before": everything[0]["updated_at"]}), ("2.58", {"limit": -1}),
                            ("2.66", {"changes-since": everything[0]["updated_at"],
                                      "changes-before": everything[-1]["updated_at"]})):
        r = reader.get(actions_path(server["id"]), headers=V(version), params=params)
        assert r.status_code == 400, (params, r.text)


def test_a_deleted_servers_actions_from_2_21(cloud: Cloud, owner, image):
    admin, member, reader, _server, _ = owner
    server = wait_server(member, boot(member, image["id"])["id"], {"ACTIVE"})
    r = member.delete(f"/compute/v2.1/servers/{server['id']}")
    assert r.status_code == 204
    wait_gone(member, server["id"])
    assert reader.get(actions_path(server["id"]), headers=V("2.20")).status_code == 404
    listed = reader.get(actions_path(server["id"]), headers=V("2.21")).json()["instanceActions"]
    assert [a["action"] for a in listed] == ["delete", "create"]
    assert listed[0]["request_id"] == r.headers["x-openstack-request-id"]
    delete = wait_finished(admin, server["id"], listed[0]["request_id"], "2.21")
    assert delete["events"][0]["event"] == "compute_terminate_instance"
    # Another project's member sees nothing of them.
    _, _, stranger = new_project_user(cloud, admin)
    with cloud.client(stranger) as other:
        assert other.get(actions_path(server["id"]), headers=V("2.21")).status_code == 404


def test_server_password(owner):
    admin, member, reader, server, _ = owner
    path = f"/compute/v2.1/servers/{server['id']}/os-server-password"
    r = reader.get(path)
    assert r.status_code == 200 and r.json() == {"password": ""}
    assert reader.delete(path).status_code == 403
    assert member.delete(path).status_code == 204
    assert member.get(f"/compute/v2.1/servers/{uuid.uuid4()}/os-server-password").status_code == 404


def test_diagnostics(owner):
    admin, member, reader, server, _ = owner
    path = f"/compute/v2.1/servers/{server['id']}/diagnostics"
    assert member.get(path).status_code == 403
    flat = admin.get(path, headers=V("2.47"))
    assert flat.status_code == 200, flat.text
    ram = server["flavor"]["ram"]
    assert flat.json()["memory"] == ram * 1024 and flat.json()["vda_read"] == 0
    std = admin.get(path, headers=V("2.48")).json()
    assert (std["state"], std["driver"], std["hypervisor"], std["num_cpus"], std["num_disks"]) == (
        "running", "libvirt", "qemu", 1, 1)
    assert std["memory_details"] == {"maximum": ram, "used": ram} and std["num_nics"] == len(std["nic_details"])
    assert std["uptime"] >= 0 and std["config_drive"] is False


def test_usage_audit_log(owner):
    admin, member, *_ = owner
    assert member.get("/compute/v2.1/os-instance_usage_audit_log").status_code == 403
    log = admin.get("/compute/v2.1/os-instance_usage_audit_log").json()["instance_usage_audit_logs"]
    assert log["num_hosts"] == log["num_hosts_not_run"] >= 1 and log["log"] == {}
    r = admin.get("/compute/v2.1/os-instance_usage_audit_log/2026-03-15%2010%3A00%3A00")
    shown = r.json()["instance_usage_audit_log"]
    assert (shown["period_beginning"], shown["period_ending"]) == ("2026-02-01 00:00:00", "2026-03-01 00:00:00")
    january = admin.get("/compute/v2.1/os-instance_usage_audit_log/2026-01-01 00:00:00.5").json()
    assert january["instance_usage_audit_log"]["period_beginning"] == "2025-12-01 00:00:00"
    assert admin.get("/compute/v2.1/os-instance_usage_audit_log/invalid_time").status_code == 400
    assert member.get("/compute/v2.1/os-instance_usage_audit_log/invalid_time").status_code == 403
    assert dt.datetime.strptime(log["period_ending"], "%Y-%m-%d %H:%M:%S").day == 1


def test_quota_revert_to_defaults(owner):
    admin, member, *_ = owner
    project = owner[3]["tenant_id"]
    path = f"/compute/v2.1/os-quota-sets/{project}"
    default_ram = admin.get(path).json()["quota_set"]["ram"]
    assert admin.put(path, json={"quota_set": {"ram": 5120}}).json()["quota_set"]["ram"] == 5120
    assert member.delete(path).status_code == 403
    assert admin.get(path).json()["quota_set"]["ram"] == 5120
    assert admin.delete(path).status_code == 202
    assert admin.get(path).json()["quota_set"]["ram"] == default_ram
    assert admin.delete("/compute/v2.1/os-quota-sets/quota-class:default").status_code == 400


def test_tenant_filter_needs_all_tenants(owner):
    admin, member, reader, server, _ = owner
    project = server["tenant_id"]
    names = lambda r: {s["id"] for s in r.json()["servers"]}  # noqa: E731
    assert server["id"] not in names(admin.get("/compute/v2.1/servers/detail", params={"tenant_id": project}))
    assert server["id"] in names(admin.get("/compute/v2.1/servers/detail",
                                           params={"tenant_id": project, "all_tenants": ""}))
    # A member naming another project gets its own project's servers, as in Nova.
    assert server["id"] in names(member.get("/compute/v2.1/servers", params={"project_id": str(uuid.uuid4())}))


def test_server_groups_in_show_update_and_rebuild(owner, image):
    admin, member, reader, server, _ = owner
    path = f"/compute/v2.1/servers/{server['id']}"
    assert member.get(path, headers=V("2.71")).json()["server"]["server_groups"] == []
    assert "server_groups" not in member.get(path, headers=V("2.70")).json()["server"]
    assert member.get(path).json()["server"]["progress"] == 0  # ACTIVE: Nova shows progress
    assert member.put(path, headers=V("2.75"), json={"server": {}}).json()["server"]["server_groups"] == []
    # Before 2.75 an update answers the basic server (no extended attributes), as Nova's.
    basic = member.put(path, headers=V("2.74"), json={"server": {}}).json()["server"]
    assert basic["server_groups"] == [] and "OS-EXT-STS:vm_state" not in basic and "key_name" not in basic
    assert all(set(a) == {"addr", "version"} for entries in basic["addresses"].values() for a in entries)
    assert "OS-EXT-STS:vm_state" in member.put(path, headers=V("2.75"), json={"server": {}}).json()["server"]
    # changes-since is a date-time (Nova's 400 otherwise), compared as a time whatever its zone.
    assert member.get("/compute/v2.1/servers", params={"changes-since": "2011/01/01"}).status_code == 400
    since = member.get("/compute/v2.1/servers", params={"changes-since": "2000-01-01T02:00:00+02:00"})
    assert server["id"] in {s["id"] for s in since.json()["servers"]}
    listed = member.get("/compute/v2.1/servers/detail", headers=V("2.75")).json()["servers"]
    assert all("server_groups" not in s for s in listed)
    group = member.post("/compute/v2.1/os-server-groups", headers=V("2.64"), json={
        "server_group": {"name": "g", "policy": "affinity"}}).json()["server_group"]
    r = member.post("/compute/v2.1/servers", headers=V("2.75"), json={
        "server": {"name": "grouped", "imageRef": image["id"], "flavorRef": "42", "networks": "none"},
        "os:scheduler_hints": {"group": group["id"]}})
    assert r.status_code == 202, r.text
    sid = wait_server(member, r.json()["server"]["id"], {"ACTIVE"})["id"]
    r = member.post(f"/compute/v2.1/servers/{sid}/action", headers=V("2.75"), json={"rebuild": {
        "imageRef": image["id"]}})
    assert r.status_code == 202, r.text
    assert r.json()["server"]["server_groups"] == [group["id"]]
    rebuilt = views.rebuilt_server(admin.get(f"/compute/v2.1/servers/{sid}", headers=V("2.75")).json()["server"],
                                   (2, 75), None)
    assert "OS-EXT-SRV-ATTR:user_data" not in rebuilt and rebuilt["user_data"] is None
    assert "OS-EXT-STS:vm_state" not in views.rebuilt_server(rebuilt, (2, 74), None)
    wait_server(member, sid, {"ACTIVE"})
    # A rebuild answers its key from 2.54 (it may change it), not before; its user_data from 2.57.
    at_2_54 = member.post(f"/compute/v2.1/servers/{sid}/action", headers=V("2.54"), json={"rebuild": {
        "imageRef": image["id"]}})
    assert at_2_54.status_code == 202 and at_2_54.json()["server"]["key_name"] is None
    assert "user_data" not in at_2_54.json()["server"]
    wait_server(member, sid, {"ACTIVE"})
    at_2_53 = member.post(f"/compute/v2.1/servers/{sid}/action", headers=V("2.53"), json={"rebuild": {
        "imageRef": image["id"]}})
    assert at_2_53.status_code == 202 and "key_name" not in at_2_53.json()["server"]
    wait_server(member, sid, {"ACTIVE"})
    assert member.post(f"/compute/v2.1/servers/{sid}/action", json={"os-stop": None}).status_code == 202
    assert "progress" not in wait_server(member, sid, {"SHUTOFF"})  # as Nova: no progress once stopped
    member.delete(f"/compute/v2.1/servers/{sid}")


def test_records_replay_to_the_same_tables(cloud: Cloud, owner, tmp_path):
    """The records' commands (actions, event finishes, passwords, quota resets) apply the same on replay."""
    from cloudbox.services import STORES
    from cloudbox.state.engine import replay
    from tests.test_durability import _live_log_and_hashes

    entries, live = _live_log_and_hashes(cloud.data_dir / "state.db")
    for kind in ("compute.action.record", "compute.action.finish", "compute.server.password", "compute.quota.reset"):
        assert any(f'"type":"{kind}"' in e for e in entries), kind
    assert replay(entries, tmp_path / "replayed.db", STORES) == live


def test_the_cli_lists_and_shows_server_events(cloud: Cloud, owner):
    """`openstack server event list/show` (the real CLI, admin, its default microversion) read them."""
    import json

    from tests.test_openstack_cli import openstack

    _admin, _member, _reader, server, create_id = owner
    events = json.loads(openstack(cloud, "server", "event", "list", server["id"], "-f", "json").stdout)
    assert create_id in {e["Request ID"] for e in events} and "create" in {e["Action"] for e in events}
    shown = json.loads(openstack(cloud, "server", "event", "show", server["id"], create_id, "-f", "json").stdout)
    assert shown["action"] == "create" and shown["request_id"] == create_id

"""Nova's proxy APIs over real HTTPS (in-memory hypervisor): answers built from the network service."""

from __future__ import annotations

import ipaddress
import time
import uuid

import pytest

from tests.cloud import Cloud
from tests.compute_helpers import boot, make_qcow2, upload_image, wait_gone, wait_server

V21 = {"OpenStack-API-Version": "compute 2.1"}
V236 = {"OpenStack-API-Version": "compute 2.36"}


@pytest.fixture(scope="module")
def server(cloud: Cloud, tmp_path_factory):
    admin = cloud.client(cloud.token())
    image = upload_image(admin, make_qcow2(tmp_path_factory.mktemp("img") / "disk.qcow2"), visibility="public")
    created = boot(admin, image["id"])
    yield admin, wait_server(admin, created["id"], {"ACTIVE"})
    admin.delete(f"/compute/v2.1/servers/{created['id']}")
    wait_gone(admin, created["id"])


def test_server_ips(server):
    admin, srv = server
    r = admin.get(f"/compute/v2.1/servers/{srv['id']}/ips")
    assert r.status_code == 200, r.text
    [(net, entries)] = r.json()["addresses"].items()
    assert entries == [{"version": a["version"], "addr": a["addr"]} for a in srv["addresses"][net]]
    assert admin.get(f"/compute/v2.1/servers/{srv['id']}/ips/{net}").json() == {net: entries}
    assert admin.get(f"/compute/v2.1/servers/{srv['id']}/ips/nonet").status_code == 404
    assert admin.get(f"/compute/v2.1/servers/{uuid.uuid4()}/ips").status_code == 404


def test_security_group_proxies(server):
    admin, srv = server
    r = admin.get(f"/compute/v2.1/servers/{srv['id']}/os-security-groups")
    assert r.status_code == 200, r.text
    assert [g["name"] for g in r.json()["security_groups"]] == ["default"]
    default = r.json()["security_groups"][0]
    assert all(rule["parent_group_id"] == default["id"] for rule in default["rules"])

    name = f"sg-{uuid.uuid4().hex[:6]}"
    r = admin.post("/compute/v2.1/os-security-groups", headers=V21,
                   json={"security_group": {"name": name, "description": "web"}})
    assert r.status_code == 200, r.text
    group = r.json()["security_group"]
    assert (group["name"], group["description"], group["rules"]) == (name, "web", [])
    assert admin.post("/compute/v2.1/os-security-groups", headers=V236,
                      json={"security_group": {"name": name, "description": "web"}}).status_code == 404
    bad = admin.post("/compute/v2.1/os-security-groups", headers=V21,
                     json={"security_group": {"name": " ", "description": "x"}})
    assert bad.status_code == 400

    r = admin.post("/compute/v2.1/os-security-group-rules", headers=V21, json={"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}})
    assert r.status_code == 200, r.text
    rule = r.json()["security_group_rule"]
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"], rule["ip_range"]) == ("tcp", 22, 22,
                                                                                          {"cidr": "10.0.0.0/8"})
    bad = admin.post("/compute/v2.1/os-security-group-rules", headers=V21, json={"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 30, "to_port": 20}})
    assert bad.status_code == 400
    # Nova's 400s: a duplicate rule (the network service's conflict), a parent id that is no UUID.
    again = admin.post("/compute/v2.1/os-security-group-rules", headers=V21, json={"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}})
    assert again.status_code == 400, again.text
    bad = admin.post("/compute/v2.1/os-security-group-rules", headers=V21, json={"security_group_rule": {
        "parent_group_id": "not-a-uuid", "ip_protocol": "tcp", "from_port": 22, "to_port": 22}})
    assert bad.status_code == 400
    assert admin.delete(f"/compute/v2.1/os-security-groups/{default['id']}", headers=V21).status_code == 400
    spaced = admin.post("/compute/v2.1/os-security-groups", headers=V21,
                        json={"security_group": {"name": f" {name} b ", "description": "d"}}).json()["security_group"]
    assert spaced["name"] == f" {name} b "
    assert admin.delete(f"/compute/v2.1/os-security-groups/{spaced['id']}", headers=V21).status_code == 202
    shown = admin.get(f"/compute/v2.1/os-security-groups/{group['id']}", headers=V21).json()["security_group"]
    assert [r["id"] for r in shown["rules"]] == [rule["id"]]
    assert group["id"] in {g["id"] for g in admin.get("/compute/v2.1/os-security-groups", headers=V21)
                           .json()["security_groups"]}

    action = f"/compute/v2.1/servers/{srv['id']}/action"
    assert admin.post(action, json={"addSecurityGroup": {"name": name}}).status_code == 202
    # A group in use cannot be deleted: Nova's 400.
    assert admin.delete(f"/compute/v2.1/os-security-groups/{group['id']}", headers=V21).status_code == 400
    names = {g["name"] for g in admin.get(f"/compute/v2.1/servers/{srv['id']}/os-security-groups")
             .json()["security_groups"]}
    assert names == {"default", name}
    assert admin.post(action, json={"addSecurityGroup": {"name": name}}).status_code == 400
    assert admin.post(action, json={"addSecurityGroup": {"name": "no-such-group"}}).status_code == 404
    assert admin.post(action, json={"removeSecurityGroup": {"name": name}}).status_code == 202
    assert admin.post(action, json={"removeSecurityGroup": {"name": name}}).status_code == 404
    names = {g["name"] for g in admin.get(f"/compute/v2.1/servers/{srv['id']}/os-security-groups")
             .json()["security_groups"]}
    assert names == {"default"}
    # Without any group the server shows no security_groups (Nova reads them from its ports).
    assert admin.post(action, json={"removeSecurityGroup": {"name": "default"}}).status_code == 202
    assert "security_groups" not in admin.get(f"/compute/v2.1/servers/{srv['id']}").json()["server"]
    assert admin.post(action, json={"addSecurityGroup": {"name": "default"}}).status_code == 202
    assert admin.get(f"/compute/v2.1/servers/{srv['id']}").json()["server"]["security_groups"] == [{"name": "default"}]

    assert admin.delete(f"/compute/v2.1/os-security-group-rules/{rule['id']}", headers=V21).status_code == 202
    assert admin.delete(f"/compute/v2.1/os-security-groups/{group['id']}", headers=V21).status_code == 202
    assert admin.get(f"/compute/v2.1/os-security-groups/{group['id']}", headers=V21).status_code == 404



def test_lock_and_unlock(cloud: Cloud, server):
    """A lock an admin set stops the owner's changes (409) and only an admin lifts it (403)."""
    from tests.compute_helpers import new_project_user

    admin, srv = server
    _, _, member = new_project_user(cloud, admin)
    with cloud.client(member) as owner:
        mine = wait_server(owner, boot(owner, srv["image"]["id"])["id"], {"ACTIVE"})
        action = f"/compute/v2.1/servers/{mine['id']}/action"
        v273 = {"OpenStack-API-Version": "compute 2.73"}
        assert admin.post(action, json={"lock": {"locked_reason": "x"}}, headers=V21).status_code == 400
        assert admin.post(action, json={"lock": {"locked_reason": "maintenance"}}, headers=v273).status_code == 202
        shown = owner.get(f"/compute/v2.1/servers/{mine['id']}", headers=v273).json()["server"]
        assert (shown["locked"], shown["locked_reason"]) == (True, "maintenance")
        assert owner.post(action, json={"os-stop": None}).status_code == 409
        assert owner.post(action, json={"unlock": None}).status_code == 403
        assert admin.post(action, json={"unlock": None}).status_code == 202
        shown = owner.get(f"/compute/v2.1/servers/{mine['id']}", headers=v273).json()["server"]
        assert (shown["locked"], shown["locked_reason"]) == (False, None)
        assert owner.post(action, json={"lock": {}}).status_code == 202
        assert owner.post(action, json={"unlock": {}}).status_code == 202
        assert owner.delete(f"/compute/v2.1/servers/{mine['id']}").status_code == 204
        wait_gone(owner, mine["id"])


def test_extensions(server):
    admin, _ = server
    listed = admin.get("/compute/v2.1/extensions").json()["extensions"]
    assert {"Hosts", "Keypairs", "SecurityGroups"} <= {e["name"] for e in listed}
    assert admin.get("/compute/v2.1/extensions/os-consoles").json()["extension"]["alias"] == "os-consoles"
    assert admin.get("/compute/v2.1/extensions/os-nothing").status_code == 404


def test_floating_ip_proxies(server):
    admin, srv = server
    pool = admin.get("/network/v2.0/networks?router:external=true").json()["networks"][0]["name"]
    r = admin.post("/compute/v2.1/os-floating-ips", headers=V21, json={"pool": pool})
    assert r.status_code == 200, r.text
    fip = r.json()["floating_ip"]
    assert (fip["pool"], fip["fixed_ip"], fip["instance_id"]) == (pool, None, None)
    assert admin.post("/compute/v2.1/os-floating-ips", headers=V21, json={"pool": "no-such-pool"}).status_code == 404
    assert admin.get("/compute/v2.1/os-floating-ips", headers=V236).status_code == 404
    assert fip["id"] in {f["id"] for f in admin.get("/compute/v2.1/os-floating-ips", headers=V21)
                         .json()["floating_ips"]}

    action = f"/compute/v2.1/servers/{srv['id']}/action"
    assert admin.post(action, headers=V21, json={"removeFloatingIp": {"address": fip["ip"]}}).status_code == 409
    assert admin.post(action, headers=V21, json={"addFloatingIp": {"address": fip["ip"]}}).status_code == 202
    second = admin.post("/compute/v2.1/os-floating-ips", headers=V21, json={"pool": pool}).json()["floating_ip"]
    r = admin.post(action, headers=V21, json={"addFloatingIp": {"address": second["ip"]}})
    assert r.status_code == 400, r.text  # the fixed IP has a floating IP already
    assert admin.delete(f"/compute/v2.1/os-floating-ips/{second['id']}", headers=V21).status_code == 202
    shown = admin.get(f"/compute/v2.1/os-floating-ips/{fip['id']}", headers=V21).json()["floating_ip"]
    fixed = [a["addr"] for net in srv["addresses"].values() for a in net if a["OS-EXT-IPS:type"] == "fixed"]
    assert shown["instance_id"] == srv["id"] and shown["fixed_ip"] in fixed
    assert admin.post(action, headers={"OpenStack-API-Version": "compute 2.44"},
                      json={"removeFloatingIp": {"address": fip["ip"]}}).status_code == 400
    assert admin.post(action, headers=V21, json={"removeFloatingIp": {"address": fip["ip"]}}).status_code == 202
    assert admin.get(f"/compute/v2.1/os-floating-ips/{fip['id']}", headers=V21).json()["floating_ip"][
        "instance_id"] is None
    assert admin.delete(f"/compute/v2.1/os-floating-ips/{fip['id']}", headers=V21).status_code == 202
    assert admin.get(f"/compute/v2.1/os-floating-ips/{fip['id']}", headers=V21).status_code == 404


def test_fixed_ip_actions_and_no_live_migration(server):
    """addFixedIp/removeFixedIp (to 2.43) change the addresses of the server's port on a network;
    os-migrateLive is Nova's action, refused with its pre-check 400 (no live migration here)."""
    admin, srv = server
    action = f"/compute/v2.1/servers/{srv['id']}/action"
    [port] = admin.get(f"/network/v2.0/ports?device_id={srv['id']}").json()["ports"]
    before = [ip["ip_address"] for ip in port["fixed_ips"]]
    r = admin.post(action, headers=V21, json={"addFixedIp": {"networkId": port["network_id"]}})
    assert r.status_code == 202, r.text
    after = [ip["ip_address"] for ip in admin.get(f"/network/v2.0/ports/{port['id']}").json()["port"]["fixed_ips"]]
    [added] = set(after) - set(before)
    assert after[:len(before)] == before
    assert admin.post(action, headers=V21, json={"addFixedIp": {"networkId": str(uuid.uuid4())}}).status_code == 400
    assert admin.post(action, headers={"OpenStack-API-Version": "compute 2.44"},
                      json={"addFixedIp": {"networkId": port["network_id"]}}).status_code == 400
    assert admin.post(action, headers=V21, json={"removeFixedIp": {"address": "192.0.2.99"}}).status_code == 400
    assert admin.post(action, headers=V21, json={"removeFixedIp": {"address": added}}).status_code == 202
    assert [ip["ip_address"] for ip in admin.get(f"/network/v2.0/ports/{port['id']}").json()["port"]["fixed_ips"]] \
        == before
    r = admin.post(action, json={"os-migrateLive": {"host": None, "block_migration": "auto"}},
                   headers={"OpenStack-API-Version": "compute 2.30"})
    assert r.status_code == 400 and "live migration is not available" in r.json()["badRequest"]["message"]
    assert admin.post(action, json={"os-migrateLive": {"host": None}}).status_code == 400  # no block_migration


def test_image_proxy(server):
    admin, srv = server
    image_id = srv["image"]["id"]
    r = admin.get(f"/compute/v2.1/images/{image_id}", headers=V21)
    assert r.status_code == 200, r.text
    image = r.json()["image"]
    assert (image["status"], image["progress"], image["minRam"]) == ("ACTIVE", 100, 0)
    assert admin.get(f"/compute/v2.1/images/{image_id}", headers=V236).status_code == 404
    assert image_id in {i["id"] for i in admin.get("/compute/v2.1/images/detail", headers=V21).json()["images"]}
    listed = admin.get("/compute/v2.1/images", headers=V21, params={"name": image["name"]}).json()["images"]
    assert [i["id"] for i in listed] == [image_id] and set(listed[0]) == {"id", "name", "links"}

    meta = f"/compute/v2.1/images/{image_id}/metadata"
    r = admin.post(meta, headers=V21, json={"metadata": {"os_distro": "cirros", "color": "red"}})
    assert r.status_code == 200, r.text
    assert {"os_distro": "cirros", "color": "red"}.items() <= r.json()["metadata"].items()
    assert admin.put(f"{meta}/color", headers=V21, json={"meta": {"color": "blue"}}).json() == {"meta": {"color": "blue"}}
    assert admin.put(f"{meta}/color", headers=V21, json={"meta": {"other": "x"}}).status_code == 400
    assert admin.get(f"{meta}/color", headers=V21).json() == {"meta": {"color": "blue"}}
    assert admin.delete(f"{meta}/color", headers=V21).status_code == 204
    assert admin.get(f"{meta}/color", headers=V21).status_code == 404
    before = admin.get(meta, headers=V21).json()["metadata"]
    assert admin.post(meta, headers=V21, json={"metadata": {"name": "x"}}).status_code == 400
    assert admin.get(meta, headers=V21).json()["metadata"] == before
    assert admin.get(f"/image/v2/images/{image_id}").json()["os_distro"] == "cirros"
    assert admin.delete(f"{meta}/os_distro", headers=V21).status_code == 204


def test_hosts_and_networks(cloud: Cloud, server):
    from tests.compute_helpers import new_project_user

    admin, srv = server
    hosts = admin.get("/compute/v2.1/os-hosts", headers=V21).json()["hosts"]
    compute = [h for h in hosts if h["service"] == "compute"]
    assert compute and {h["service"] for h in hosts} == {"compute", "scheduler"}
    zone = compute[0]["zone"]
    assert compute[0] in admin.get("/compute/v2.1/os-hosts", params={"zone": zone}, headers=V21).json()["hosts"]
    assert admin.get("/compute/v2.1/os-hosts", params={"zone": "xxx"}, headers=V21).json()["hosts"] == []
    name = compute[0]["host_name"]
    shown = admin.get(f"/compute/v2.1/os-hosts/{name}", headers=V21).json()["host"]
    assert [r["resource"]["project"] for r in shown] == ["(total)", "(used_now)", "(used_max)"]
    assert shown[1]["resource"]["cpu"] >= 1  # the module's server runs there
    assert admin.get("/compute/v2.1/os-hosts/nope", headers=V21).status_code == 404
    assert admin.get("/compute/v2.1/os-hosts", headers={"OpenStack-API-Version": "compute 2.43"}).status_code == 404
    assert admin.put(f"/compute/v2.1/os-hosts/{name}", json={"status": "bogus"}, headers=V21).status_code == 400
    assert admin.put(f"/compute/v2.1/os-hosts/{name}", json={}, headers=V21).status_code == 400
    assert admin.put("/compute/v2.1/os-hosts/nope", json={"status": "enable"}, headers=V21).status_code == 404
    assert admin.put(f"/compute/v2.1/os-hosts/{name}", json={"status": "enable"}, headers=V21).status_code == 501
    assert admin.get("/compute/v2.1/os-hosts/nope/reboot", headers=V21).status_code == 404
    assert admin.get(f"/compute/v2.1/os-hosts/{name}/reboot", headers=V21).status_code == 501
    _, _, member = new_project_user(cloud, admin)
    with cloud.client(member) as m:
        assert m.get("/compute/v2.1/os-hosts", headers=V21).status_code == 403
        assert m.get(f"/compute/v2.1/os-hosts/{name}/reboot", headers=V21).status_code == 403

    [net] = srv["addresses"]
    networks = admin.get("/compute/v2.1/os-networks", headers=V21).json()["networks"]
    mine = [n for n in networks if n["label"] == net]
    assert mine and mine[0]["cidr"] is None
    assert admin.get(f"/compute/v2.1/os-networks/{mine[0]['id']}", headers=V21).json()["network"]["label"] == net
    assert admin.get(f"/compute/v2.1/os-networks/{uuid.uuid4()}", headers=V21).status_code == 404
    assert admin.get("/compute/v2.1/os-networks", headers=V236).status_code == 404
    # os-tenant-networks: the same networks with the CIDR of their first subnet, until 2.35
    tenant = {n["label"]: n for n in admin.get("/compute/v2.1/os-tenant-networks", headers=V21).json()["networks"]}
    ip = srv["addresses"][net][0]["addr"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(tenant[net]["cidr"])
    shown = admin.get(f"/compute/v2.1/os-tenant-networks/{tenant[net]['id']}", headers=V21).json()["network"]
    assert shown == tenant[net]
    assert admin.get(f"/compute/v2.1/os-tenant-networks/{uuid.uuid4()}", headers=V21).status_code == 404
    assert admin.get("/compute/v2.1/os-tenant-networks", headers=V236).status_code == 404


def test_quota_classes(cloud: Cloud, server):
    """The default class is every project's default (one without its own limits)."""
    from tests.compute_helpers import new_project_user

    admin, _ = server
    cls = "/compute/v2.1/os-quota-class-sets/default"
    before = admin.get(cls).json()["quota_class_set"]
    assert before["id"] == "default" and before["instances"] >= 1
    project, _, member = new_project_user(cloud, admin)
    with cloud.client(member) as m:
        assert m.get(cls).status_code == 403
        assert m.put(cls, json={"quota_class_set": {"instances": 3}}).status_code == 403
    r = admin.put(cls, json={"quota_class_set": {"instances": before["instances"] + 7}})
    assert r.status_code == 200, r.text
    assert r.json()["quota_class_set"]["instances"] == before["instances"] + 7
    try:
        assert admin.get(f"/compute/v2.1/os-quota-sets/{project}").json()["quota_set"]["instances"] == \
            before["instances"] + 7
        assert admin.get(f"/compute/v2.1/os-quota-sets/{project}/defaults").json()["quota_set"]["instances"] == \
            before["instances"] + 7
        assert admin.put(cls, json={"quota_class_set": {"instances": "many"}}).status_code == 400
        assert admin.put(cls, json={"quota_class_set": {"bogus": 1}}).status_code == 400
    finally:
        admin.put(cls, json={"quota_class_set": {"instances": before["instances"]}})
    assert admin.get(f"/compute/v2.1/os-quota-sets/{project}").json()["quota_set"]["instances"] == before["instances"]


def test_crash_dump_and_password(server):
    admin, srv = server
    action = f"/compute/v2.1/servers/{srv['id']}/action"
    v217 = {"OpenStack-API-Version": "compute 2.17"}
    assert admin.post(action, json={"trigger_crash_dump": None}, headers=V21).status_code == 400
    assert admin.post(action, json={"trigger_crash_dump": None}, headers=v217).status_code == 202
    assert "NMI" in admin.post(action, json={"os-getConsoleOutput": {}}).json()["output"]
    # No guest agent: Nova's 409; a malformed request is still a 400.
    assert admin.post(action, json={"changePassword": {"adminPass": "n3w"}}).status_code == 409
    assert admin.post(action, json={"changePassword": {"adminPass": 5}}).status_code == 400
    assert admin.post(action, json={"noSuchAction": None}).status_code == 400


def test_reset_state(cloud: Cloud, server):
    """An admin's reset to error and back (that the reconciler leaves it in error: test_compute_service)."""
    from tests.compute_helpers import new_project_user

    admin, srv = server
    action = f"/compute/v2.1/servers/{srv['id']}/action"
    assert admin.post(action, json={"os-resetState": {"state": "bogus"}}).status_code == 400
    assert admin.post(f"/compute/v2.1/servers/{uuid.uuid4()}/action",
                      json={"os-resetState": {"state": "error"}}).status_code == 404
    _, _, member = new_project_user(cloud, admin)
    with cloud.client(member) as m:
        assert m.post(action, json={"os-resetState": {"state": "error"}}).status_code == 404
    assert admin.post(action, json={"os-resetState": {"state": "error"}}).status_code == 202
    shown = admin.get(f"/compute/v2.1/servers/{srv['id']}").json()["server"]
    assert (shown["status"], shown["OS-EXT-STS:vm_state"], shown["OS-EXT-STS:task_state"]) == ("ERROR", "error", None)
    assert srv["id"] in {s["id"] for s in admin.get("/compute/v2.1/servers", params={"status": "ERROR"})
                         .json()["servers"]}
    assert admin.post(action, json={"os-resetState": {"state": "active"}}).status_code == 202
    assert admin.get(f"/compute/v2.1/servers/{srv['id']}").json()["server"]["status"] == "ACTIVE"


def test_create_backup_rotates(server):
    """Three daily backups with rotation 2 leave the newest two; metadata may name the image_type
    of a createImage (Nova applies it last)."""
    from tests.cloud import wait_for

    admin, srv = server
    action = f"/compute/v2.1/servers/{srv['id']}/action"
    latest = {"OpenStack-API-Version": "compute 2.45"}
    for bad in ({"name": "b", "backup_type": "daily"}, {"name": "b", "backup_type": "daily", "rotation": -1},
                {"name": "b", "rotation": 1}, {"backup_type": "daily", "rotation": 1}):
        assert admin.post(action, json={"createBackup": bad}).status_code == 400, bad
    made: list[str] = []
    for n in range(3):
        # Images' created_at are whole seconds (Glance's): backups within one second are unordered.
        if made:
            created = admin.get(f"/image/v2/images/{made[-1]}").json()["created_at"]
            wait_for(lambda c=created: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) > c or None, 5,
                     "the next second")
        r = admin.post(action, json={"createBackup": {"name": f"b{n}", "backup_type": "daily", "rotation": 2}},
                       headers=latest)
        assert r.status_code == 202, r.text
        made.append(r.json()["image_id"])
        wait_for(lambda i=made[-1]: admin.get(f"/image/v2/images/{i}").json().get("status") == "active"
                 or None, 60, f"backup {n} active")
        wait_server(admin, srv["id"], {"ACTIVE"})

    def backups() -> list[str]:
        found = admin.get("/image/v2/images", params={"backup_type": "daily", "instance_uuid": srv["id"]})
        return sorted(i["id"] for i in found.json()["images"])

    wait_for(lambda: backups() == sorted(made[1:]) or None, 60, "the oldest backup rotated out")
    shown = admin.get(f"/image/v2/images/{made[2]}").json()
    assert (shown["image_type"], shown["backup_type"]) == ("backup", "daily")
    r = admin.post(action, json={"createImage": {"name": "s", "metadata": {"image_type": "test"}}}, headers=latest)
    assert r.status_code == 202, r.text
    assert admin.get(f"/image/v2/images/{r.json()['image_id']}").json()["image_type"] == "test"
    wait_server(admin, srv["id"], {"ACTIVE"})
    for image_id in (*made[1:], r.json()["image_id"]):
        admin.delete(f"/image/v2/images/{image_id}")


def test_older_quotas_follow_the_microversion(cloud: Cloud, server):
    from tests.compute_helpers import new_project_user

    admin, _ = server
    project, _, _ = new_project_user(cloud, admin)
    url = f"/compute/v2.1/os-quota-sets/{project}"
    at = {v: {"OpenStack-API-Version": f"compute {v}"} for v in ("2.1", "2.36", "2.57")}
    shown = admin.get(url, headers=at["2.1"]).json()["quota_set"]
    assert (shown["floating_ips"], shown["security_group_rules"], shown["injected_files"]) == (10, 20, 5)
    shown = admin.get(url, headers=at["2.36"]).json()["quota_set"]
    assert "floating_ips" not in shown and shown["injected_files"] == 5
    shown = admin.get(url, headers=at["2.57"]).json()["quota_set"]
    assert not {"floating_ips", "injected_files"} & set(shown)
    assert admin.put(url, json={"quota_set": {"floating_ips": 3}}, headers=at["2.36"]).status_code == 400
    r = admin.put(url, json={"quota_set": {"floating_ips": 3}}, headers=at["2.1"])
    assert r.status_code == 200 and r.json()["quota_set"]["floating_ips"] == 3
    assert admin.get(f"{url}/defaults", headers=at["2.1"]).json()["quota_set"]["floating_ips"] == 10


def test_small_admin_actions(server):
    admin, srv = server
    action = f"/compute/v2.1/servers/{srv['id']}/action"
    assert admin.post(action, json={"injectNetworkInfo": None}).status_code == 202
    assert admin.post(action, json={"restore": None}).status_code == 409  # never soft-deleted here
    assert admin.post(action, json={"forceDelete": None}).status_code == 409
    assert admin.post(f"/compute/v2.1/servers/{uuid.uuid4()}/action", json={"migrate": None}).status_code == 404
    assert admin.get(f"/compute/v2.1/servers/{srv['id']}").json()["server"]["status"] == "ACTIVE"


def test_empty_server_update_and_quota_force(cloud: Cloud, server):
    from tests.compute_helpers import new_project_user

    admin, srv = server
    r = admin.put(f"/compute/v2.1/servers/{srv['id']}", json={"server": {}})
    assert r.status_code == 200 and r.json()["server"]["name"] == srv["name"]
    project, _, _ = new_project_user(cloud, admin)
    r = admin.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"force": True, "instances": 4}})
    assert r.status_code == 200 and r.json()["quota_set"]["instances"] == 4

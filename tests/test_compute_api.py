"""The Nova-compatible API over real HTTPS, with the in-memory hypervisor (fast, every rule).

The same behaviours against real libvirt guests are in test_compute_libvirt.py.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.cloud import Cloud, wait_for
from tests.compute_helpers import LATEST, boot, boot_ten_with_room_for_eight, make_qcow2, new_project_user, upload_image, wait_gone, wait_server


@pytest.fixture(scope="module")
def setup(cloud: Cloud, tmp_path_factory):
    admin = cloud.client(cloud.token())
    image = upload_image(admin, make_qcow2(tmp_path_factory.mktemp("img") / "disk.qcow2"), visibility="public")
    return admin, image


def test_default_flavors_and_version_negotiation(cloud: Cloud, setup):
    admin, _ = setup
    r = admin.get("/compute/v2.1/flavors/detail")
    names = {f["name"]: f for f in r.json()["flavors"]}
    assert {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge", "m1.nano"} <= set(names)
    assert (names["m1.tiny"]["vcpus"], names["m1.tiny"]["ram"], names["m1.tiny"]["disk"]) == (1, 512, 1)
    assert r.headers["OpenStack-API-Version"] == "compute 2.1"
    r = admin.get("/compute/v2.1/flavors/1", headers={"OpenStack-API-Version": "compute 2.61"})
    assert r.headers["OpenStack-API-Version"] == "compute 2.61" and r.json()["flavor"]["extra_specs"] == {}
    r = admin.get("/compute/v2.1/flavors/1", headers={"X-OpenStack-Nova-API-Version": "latest"})
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.96"
    assert admin.get("/compute/v2.1/flavors", headers={"OpenStack-API-Version": "compute 3.0"}).status_code == 406
    assert admin.get("/compute/v2.1/flavors", headers={"OpenStack-API-Version": "compute x"}).status_code == 400
    doc = admin.get("/compute/v2.1").json()["version"]
    assert doc["version"] == "2.96" and doc["min_version"] == "2.1"
    versions = admin.get("/compute").json()["versions"]
    assert [(v["id"], v["status"]) for v in versions] == [("v2.0", "SUPPORTED"), ("v2.1", "CURRENT")]
    # The legacy v2 endpoint answers as v2.1 at microversion 2.1, whatever version is asked.
    assert admin.get("/compute/v2/").json()["version"]["id"] == "v2.0"
    r = admin.get("/compute/v2/flavors/1", headers={"OpenStack-API-Version": "compute 2.61"})
    assert r.status_code == 200 and "extra_specs" not in r.json()["flavor"]
    assert admin.get("/compute/v2/no-such-thing").status_code == 404


def test_flavor_management_is_for_admins(cloud: Cloud, setup):
    admin, _ = setup
    _, _, member = new_project_user(cloud, admin)
    name = f"f-{uuid.uuid4().hex[:6]}"
    body = {"flavor": {"name": name, "ram": 256, "vcpus": 1, "disk": 1}}
    with cloud.client(member) as m:
        assert m.post("/compute/v2.1/flavors", json=body).status_code == 403
    r = admin.post("/compute/v2.1/flavors", json=body, headers={"OpenStack-API-Version": "compute 2.55"})
    assert r.status_code == 200, r.text
    fid = r.json()["flavor"]["id"]
    assert admin.post("/compute/v2.1/flavors", json=body).status_code == 409
    r = admin.post(f"/compute/v2.1/flavors/{fid}/os-extra_specs", json={"extra_specs": {"hw:cpu_policy": "shared"}})
    assert r.json() == {"extra_specs": {"hw:cpu_policy": "shared"}}
    assert admin.get(f"/compute/v2.1/flavors/{fid}/os-extra_specs/hw:cpu_policy").json() == {"hw:cpu_policy": "shared"}
    r = admin.put(f"/compute/v2.1/flavors/{fid}", json={"flavor": {"description": "small"}},
                  headers={"OpenStack-API-Version": "compute 2.55"})
    assert r.json()["flavor"]["description"] == "small"
    assert admin.delete(f"/compute/v2.1/flavors/{fid}").status_code == 202
    assert admin.get(f"/compute/v2.1/flavors/{fid}").status_code == 404
    bad = admin.post("/compute/v2.1/flavors", json={"flavor": {"name": "x", "ram": -1, "vcpus": 1, "disk": 1}})
    assert bad.status_code == 400


def test_flavor_is_public_spellings(cloud: Cloud, setup):
    """Nova's strict booleans, in the create body and in the admins' list filter."""
    admin, _ = setup
    names = {}
    for spelling, public in (("False", False), ("TRUE", True)):
        names[public] = f"f-{uuid.uuid4().hex[:6]}"
        r = admin.post("/compute/v2.1/flavors", json={"flavor": {
            "name": names[public], "ram": "64", "vcpus": 1, "disk": 0, "os-flavor-access:is_public": spelling}})
        assert r.status_code == 200, r.text
        assert r.json()["flavor"]["os-flavor-access:is_public"] is public
    for spelling, public in (("f", False), ("no", False), ("0", False), ("t", True), ("yes", True), ("1", True)):
        listed = {f["name"] for f in admin.get(f"/compute/v2.1/flavors/detail?is_public={spelling}").json()["flavors"]}
        assert names[public] in listed and names[not public] not in listed
    assert admin.get("/compute/v2.1/flavors?is_public=maybe").status_code == 400
    before = admin.get("/compute/v2.1/flavors?is_public=none").json()["flavors"]
    r = admin.post("/compute/v2.1/flavors", json={"flavor": {
        "name": "x-maybe", "ram": 64, "vcpus": 1, "disk": 0, "os-flavor-access:is_public": "maybe"}})
    assert r.status_code == 400
    assert admin.get("/compute/v2.1/flavors?is_public=none").json()["flavors"] == before


def test_keypairs_import_and_generate(cloud: Cloud, setup):
    admin, _ = setup
    name = f"k-{uuid.uuid4().hex[:6]}"
    r = admin.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": name}}, headers=LATEST | {"OpenStack-API-Version": "compute 2.10"})
    assert r.status_code == 201, r.text
    generated = r.json()["keypair"]
    assert generated["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert generated["public_key"].startswith("ssh-rsa ")
    assert len(generated["fingerprint"].split(":")) == 16
    imported = f"k-{uuid.uuid4().hex[:6]}"
    r = admin.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": imported, "public_key": generated["public_key"]}})
    assert r.status_code == 200 and "private_key" not in r.json()["keypair"]
    assert r.json()["keypair"]["fingerprint"] == generated["fingerprint"]
    assert admin.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": imported, "public_key": generated["public_key"]}}).status_code == 409
    bad = admin.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "bad", "public_key": "ssh-rsa AAAA"}})
    assert bad.status_code == 400
    listed = {k["keypair"]["name"] for k in admin.get("/compute/v2.1/os-keypairs").json()["keypairs"]}
    assert {name, imported} <= listed and "bad" not in listed
    assert admin.delete(f"/compute/v2.1/os-keypairs/{name}").status_code == 202
    assert admin.get(f"/compute/v2.1/os-keypairs/{name}").status_code == 404


def test_keypair_import_keeps_the_key_as_sent(cloud: Cloud, setup):
    """A .pub file's trailing newline stays (Ansible compares what it sent with what it reads)."""
    admin, _ = setup
    key = admin.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": f"g-{uuid.uuid4().hex[:6]}"}}).json()
    sent = key["keypair"]["public_key"].strip() + " me@host\n"
    name = f"pub-{uuid.uuid4().hex[:6]}"
    r = admin.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": name, "public_key": sent}})
    assert r.status_code == 200, r.text
    assert r.json()["keypair"]["public_key"] == sent
    assert r.json()["keypair"]["fingerprint"] == key["keypair"]["fingerprint"]
    assert admin.get(f"/compute/v2.1/os-keypairs/{name}").json()["keypair"]["public_key"] == sent


def test_server_lifecycle(cloud: Cloud, setup):
    admin, image = setup
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    created = boot(admin, image["id"], metadata={"role": "web"}, user_data=user_data)
    assert created["adminPass"] and created["links"][0]["href"].endswith(created["id"])
    server = wait_server(admin, created["id"], {"ACTIVE"})
    assert server["OS-EXT-STS:vm_state"] == "active" and server["OS-EXT-STS:power_state"] == 1
    assert server["flavor"]["original_name"] == "m1.nano" and server["flavor"]["ram"] == 128
    assert server["image"]["id"] == image["id"]
    # networks "auto" and the project has none: Neutron's auto-allocated topology is made for it.
    [addr] = server["addresses"]["auto_allocated_network"]
    assert addr["OS-EXT-IPS:type"] == "fixed" and addr["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e")
    ports = admin.get(f"/network/v2.0/ports?device_id={server['id']}").json()["ports"]
    assert [p["fixed_ips"][0]["ip_address"] for p in ports] == [addr["addr"]]
    assert ports[0]["device_owner"].startswith("compute:") and ports[0]["status"] == "ACTIVE"
    # No config drive unless asked for (the metadata service serves the same data).
    assert server["metadata"] == {"role": "web"} and server["config_drive"] == ""
    assert server["OS-EXT-SRV-ATTR:host"]
    sid = server["id"]

    def act(body: dict, expect: str) -> None:
        r = admin.post(f"/compute/v2.1/servers/{sid}/action", json=body)
        assert r.status_code == 202, r.text
        assert wait_server(admin, sid, {expect})["status"] == expect

    act({"os-stop": None}, "SHUTOFF")
    assert admin.post(f"/compute/v2.1/servers/{sid}/action", json={"os-stop": None}).status_code == 409
    act({"os-start": None}, "ACTIVE")
    act({"reboot": {"type": "SOFT"}}, "ACTIVE")
    act({"reboot": {"type": "HARD"}}, "ACTIVE")
    act({"pause": None}, "PAUSED")
    act({"unpause": None}, "ACTIVE")
    act({"suspend": None}, "SUSPENDED")
    act({"resume": None}, "ACTIVE")
    assert admin.post(f"/compute/v2.1/servers/{sid}/action", json={"reboot": {"type": "SIDEWAYS"}}).status_code == 400
    assert admin.post(f"/compute/v2.1/servers/{sid}/action", json={"fly": {}}).status_code == 400
    out = admin.post(f"/compute/v2.1/servers/{sid}/action", json={"os-getConsoleOutput": {"length": 5}})
    assert out.status_code == 200 and "output" in out.json()

    r = admin.put(f"/compute/v2.1/servers/{sid}", json={"server": {"name": "renamed", "description": "d"}},
                  headers=LATEST)
    assert r.json()["server"]["name"] == "renamed" and r.json()["server"]["description"] == "d"
    assert admin.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
    wait_gone(admin, sid)


def test_metadata_and_tags(cloud: Cloud, setup):
    admin, image = setup
    sid = boot(admin, image["id"])["id"]
    wait_server(admin, sid, {"ACTIVE"})
    base = f"/compute/v2.1/servers/{sid}"
    assert admin.post(f"{base}/metadata", json={"metadata": {"a": "1"}}).json() == {"metadata": {"a": "1"}}
    assert admin.post(f"{base}/metadata", json={"metadata": {"b": "2"}}).json() == {"metadata": {"a": "1", "b": "2"}}
    assert admin.put(f"{base}/metadata/c", json={"meta": {"c": "3"}}).json() == {"meta": {"c": "3"}}
    assert admin.put(f"{base}/metadata/c", json={"meta": {"d": "3"}}).status_code == 400
    assert admin.get(f"{base}/metadata/a").json() == {"meta": {"a": "1"}}
    assert admin.delete(f"{base}/metadata/a").status_code == 204
    assert admin.get(f"{base}/metadata/a").status_code == 404
    assert admin.put(f"{base}/metadata", json={"metadata": {"z": "9"}}).json() == {"metadata": {"z": "9"}}
    assert admin.put(f"{base}/tags/blue", headers=LATEST).status_code == 201
    assert admin.put(f"{base}/tags", json={"tags": ["red", "green"]}, headers=LATEST).json() == {"tags": ["red", "green"]}
    assert admin.get(f"{base}/tags/red", headers=LATEST).status_code == 204
    assert admin.get(f"{base}/tags/blue", headers=LATEST).status_code == 404
    assert admin.get(f"{base}/tags", headers={"OpenStack-API-Version": "compute 2.25"}).status_code == 404
    listed = admin.get("/compute/v2.1/servers/detail?tags=red", headers=LATEST).json()["servers"]
    assert sid in {s["id"] for s in listed}
    assert sid not in {s["id"] for s in admin.get("/compute/v2.1/servers?not-tags=red,green", headers=LATEST).json()["servers"]}
    admin.delete(base)
    wait_gone(admin, sid)


def test_list_filters_and_paging(cloud: Cloud, setup):
    admin, image = setup
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    ids = [boot(admin, image["id"], name=f"{prefix}-{i}")["id"] for i in range(5)]
    for sid in ids:
        wait_server(admin, sid, {"ACTIVE"})
    seen, url = [], f"/compute/v2.1/servers/detail?name=^{prefix}&limit=2"
    while url:
        body = admin.get(url).json()
        assert len(body["servers"]) <= 2
        seen += [s["id"] for s in body["servers"]]
        url = next((l["href"] for l in body.get("servers_links", []) if l["rel"] == "next"), None)
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert admin.get("/compute/v2.1/servers?limit=x").status_code == 400
    assert admin.get("/compute/v2.1/servers?marker=nonexistent").status_code == 400
    # Names and addresses match Nova's regular expressions (searched, RE2: linear time, so a
    # pattern that backtracks exponentially in other engines answers like any other).
    assert admin.get("/compute/v2.1/servers?name=(a%2B)%2B$").json()["servers"] == []
    assert len(admin.get(f"/compute/v2.1/servers?name={prefix}-1$").json()["servers"]) == 1
    r = admin.get(f"/compute/v2.1/servers?name=^{prefix}-[0-2]$")
    assert len(r.json()["servers"]) == 3
    assert admin.get("/compute/v2.1/servers?name=(").status_code == 400
    detail = {s["id"]: s for s in admin.get(f"/compute/v2.1/servers/detail?name=^{prefix}").json()["servers"]}
    addr = next(a["addr"] for net in detail[ids[0]]["addresses"].values() for a in net)
    by_ip = admin.get(f"/compute/v2.1/servers?ip=^{addr.replace('.', '[.]')}$").json()["servers"]
    assert [s["id"] for s in by_ip] == [ids[0]]
    assert admin.get("/compute/v2.1/servers?ip=^203[.]0[.]113[.]").json()["servers"] == []
    assert admin.get("/compute/v2.1/servers?ip6=.").json()["servers"] == [], "no server has an IPv6 address"
    for sid in ids:
        admin.delete(f"/compute/v2.1/servers/{sid}")
    for sid in ids:
        wait_gone(admin, sid)


def test_bad_requests_create_nothing(cloud: Cloud, setup):
    admin, image = setup
    project, _, token = new_project_user(cloud, admin)
    with cloud.client(token) as c:
        def attempt(server: dict, status: int = 400) -> None:
            body = {"server": {"name": "bad", "imageRef": image["id"], "flavorRef": "42", "networks": "auto", **server}}
            r = c.post("/compute/v2.1/servers", json=body, headers=LATEST)
            assert r.status_code == status, r.text

        attempt({"flavorRef": "nope"})
        attempt({"imageRef": str(uuid.uuid4())})
        attempt({"key_name": "nope"})
        attempt({"user_data": "not base64 !!"})
        attempt({"availability_zone": "nowhere"})
        attempt({"name": ""})
        attempt({"networks": [{"uuid": str(uuid.uuid4())}]})
        attempt({"max_count": 1001})  # one request makes at most 1000, whatever the quota
        attempt({"min_count": "9999999999"})
        attempt({"min_count": 0})
        attempt({"min_count": 3, "max_count": 2})
        assert c.post("/compute/v2.1/servers", content=b"{bad json", headers=LATEST).status_code == 400
        r = c.post("/compute/v2.1/servers", json={"server": {"name": "x", "imageRef": image["id"], "flavorRef": "42"}},
                   headers=LATEST)
        assert r.status_code == 400 and "networks" in r.text
        assert c.get("/compute/v2.1/servers").json()["servers"] == []


def test_quota_refuses_and_changes_nothing(cloud: Cloud, setup):
    admin, image = setup
    project, _, token = new_project_user(cloud, admin)
    r = admin.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"instances": 1, "cores": 5}})
    assert r.status_code == 200 and r.json()["quota_set"]["instances"] == 1
    with cloud.client(token) as c:
        first = boot(c, image["id"])
        r = c.post("/compute/v2.1/servers", json={"server": {"name": "two", "imageRef": image["id"], "flavorRef": "42",
                                                             "networks": "auto"}}, headers=LATEST)
        assert r.status_code == 403 and "Quota exceeded for instances" in r.text
        servers = c.get("/compute/v2.1/servers").json()["servers"]
        assert [s["id"] for s in servers] == [first["id"]]
        limits = c.get("/compute/v2.1/limits").json()["limits"]["absolute"]
        assert limits["maxTotalInstances"] == 1 and limits["totalInstancesUsed"] == 1
        detail = c.get(f"/compute/v2.1/os-quota-sets/{project}/detail").json()["quota_set"]
        assert detail["instances"] == {"limit": 1, "in_use": 1, "reserved": 0}
        assert c.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"instances": 50}}).status_code == 403
        c.delete(f"/compute/v2.1/servers/{first['id']}")
        wait_gone(c, first["id"])


def test_unplaceable_server_ends_in_error_and_frees_nothing_else(cloud: Cloud, setup):
    admin, image = setup
    hosts = admin.get("/compute/v2.1/os-hypervisors/detail", headers={"OpenStack-API-Version": "compute 2.1"}).json()
    before = hosts["hypervisors"][0]["memory_mb_used"]
    name = f"huge-{uuid.uuid4().hex[:6]}"
    flavor = admin.post("/compute/v2.1/flavors", json={"flavor": {"name": name, "ram": 50000, "vcpus": 1, "disk": 1}}).json()["flavor"]
    sid = boot(admin, image["id"], flavor=flavor["id"])["id"]
    server = wait_server(admin, sid, {"ERROR"})
    assert server["fault"]["message"].startswith("No valid host was found")
    assert "RAM" in server["fault"]["message"]
    assert server["OS-EXT-SRV-ATTR:host"] is None
    after = admin.get("/compute/v2.1/os-hypervisors/detail", headers={"OpenStack-API-Version": "compute 2.1"}).json()
    assert after["hypervisors"][0]["memory_mb_used"] == before
    admin.delete(f"/compute/v2.1/servers/{sid}")
    wait_gone(admin, sid)


def test_tenants_do_not_see_each_other(cloud: Cloud, setup):
    admin, image = setup
    _, _, token_a = new_project_user(cloud, admin)
    _, _, token_b = new_project_user(cloud, admin)
    _, _, reader = new_project_user(cloud, admin, role="reader")
    with cloud.client(token_a) as a, cloud.client(token_b) as b, cloud.client(reader) as r:
        sid = boot(a, image["id"])["id"]
        wait_server(a, sid, {"ACTIVE"})
        assert b.get(f"/compute/v2.1/servers/{sid}").status_code == 404
        assert b.delete(f"/compute/v2.1/servers/{sid}").status_code == 404
        assert b.post(f"/compute/v2.1/servers/{sid}/action", json={"os-stop": None}).status_code == 404
        assert sid not in {s["id"] for s in b.get("/compute/v2.1/servers").json()["servers"]}
        assert b.get("/compute/v2.1/servers?all_tenants=1").json()["servers"] == []
        assert r.post("/compute/v2.1/servers", json={"server": {"name": "x", "imageRef": image["id"],
                                                                "flavorRef": "42", "networks": "auto"}},
                      headers=LATEST).status_code == 403
        assert sid in {s["id"] for s in admin.get("/compute/v2.1/servers?all_tenants=1").json()["servers"]}
        a.delete(f"/compute/v2.1/servers/{sid}")
        wait_gone(a, sid)


def test_concurrent_boots_never_overcommit(cloud: Cloud, setup):
    """Ten boots at once on a host with room for eight: exactly eight become ACTIVE."""
    admin, image = setup
    final = boot_ten_with_room_for_eight(cloud, admin, image["id"])
    ids = [s["id"] for s in final]
    assert sorted(s["status"] for s in final).count("ACTIVE") == 8
    for s in final:
        if s["status"] == "ERROR":
            assert s["fault"]["message"].startswith("No valid host")
    for sid in ids:
        admin.delete(f"/compute/v2.1/servers/{sid}")
    for sid in ids:
        wait_gone(admin, sid)


def test_hypervisors_zones_limits_and_groups(cloud: Cloud, setup):
    admin, image = setup
    [hv] = admin.get("/compute/v2.1/os-hypervisors/detail", headers={"OpenStack-API-Version": "compute 2.1"}).json()["hypervisors"]
    assert hv["hypervisor_type"] in ("QEMU", "KVM") and json.loads(hv["cpu_info"])["accel"] in ("tcg", "kvm")
    latest = admin.get("/compute/v2.1/os-hypervisors/detail", headers=LATEST).json()["hypervisors"][0]
    assert len(latest["id"]) == 36
    v2_60 = admin.get("/compute/v2.1/os-hypervisors/detail", headers={"OpenStack-API-Version": "compute 2.60"})
    assert v2_60.json()["hypervisors"][0]["cpu_info"]["accel"] in ("tcg", "kvm")  # an object from 2.28 to 2.87
    v2_1 = {"OpenStack-API-Version": "compute 2.1"}
    up = admin.get(f"/compute/v2.1/os-hypervisors/{hv['id']}/uptime", headers=v2_1).json()["hypervisor"]
    assert " up " in up["uptime"] and "load average" in up["uptime"]
    assert admin.get(f"/compute/v2.1/os-hypervisors/{hv['id']}/uptime", headers=LATEST).status_code == 404
    name = hv["hypervisor_hostname"]
    found = admin.get(f"/compute/v2.1/os-hypervisors/{name[1:]}/search", headers=v2_1).json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in found] == [name]
    assert admin.get("/compute/v2.1/os-hypervisors/no-such-host/search", headers=v2_1).status_code == 404
    assert admin.get(f"/compute/v2.1/os-hypervisors?hypervisor_hostname_pattern={name}",
                     headers=LATEST).json()["hypervisors"][0]["hypervisor_hostname"] == name
    old_services = admin.get("/compute/v2.1/os-services", headers=v2_1).json()["services"]
    assert all(isinstance(s["id"], int) and "forced_down" not in s for s in old_services)
    computes = admin.get("/compute/v2.1/os-services?binary=nova-compute", headers=LATEST).json()["services"]
    assert [s["binary"] for s in computes] == ["nova-compute"] and computes[0]["forced_down"] is False
    assert admin.get("/compute/v2.1/os-services?binary=nova-compute&host=elsewhere").json()["services"] == []
    usage = "/compute/v2.1/os-simple-tenant-usage?start=2026-01-02T00:00:00&end=2026-01-01T00:00:00"
    assert admin.get(usage).status_code == 400
    assert "totalKeyPairsUsed" not in admin.get("/compute/v2.1/limits").json()["limits"]["absolute"]
    assert admin.get(f"/compute/v2.1/os-hypervisors/{latest['id']}", headers=LATEST).json()["hypervisor"]["hypervisor_hostname"] == hv["hypervisor_hostname"]
    zones = admin.get("/compute/v2.1/os-availability-zone").json()["availabilityZoneInfo"]
    assert [z["zoneName"] for z in zones] == ["nova"]
    stats = admin.get("/compute/v2.1/os-hypervisors/statistics").json()["hypervisor_statistics"]
    assert stats["count"] == 1
    g = admin.post("/compute/v2.1/os-server-groups", json={"server_group": {"name": "g", "policy": "anti-affinity"}},
                   headers=LATEST).json()["server_group"]
    one = admin.post("/compute/v2.1/servers", headers=LATEST, json={
        "server": {"name": "g1", "imageRef": image["id"], "flavorRef": "42", "networks": "auto"},
        "os:scheduler_hints": {"group": g["id"]}}).json()["server"]
    two = admin.post("/compute/v2.1/servers", headers=LATEST, json={
        "server": {"name": "g2", "imageRef": image["id"], "flavorRef": "42", "networks": "auto"},
        "os:scheduler_hints": {"group": g["id"]}}).json()["server"]
    states = {wait_server(admin, s["id"], {"ACTIVE", "ERROR"})["status"] for s in (one, two)}
    assert states == {"ACTIVE", "ERROR"}, "anti-affinity on one host: exactly one of two fits"
    members = admin.get(f"/compute/v2.1/os-server-groups/{g['id']}", headers=LATEST).json()["server_group"]["members"]
    assert set(members) == {one["id"], two["id"]}
    for s in (one, two):
        admin.delete(f"/compute/v2.1/servers/{s['id']}")
        wait_gone(admin, s["id"])
    assert admin.delete(f"/compute/v2.1/os-server-groups/{g['id']}").status_code == 204


def test_aggregates_set_a_hosts_zone(cloud: Cloud, setup):
    admin, image = setup
    [hv] = admin.get("/compute/v2.1/os-hypervisors").json()["hypervisors"]
    host = hv["hypervisor_hostname"]
    name = f"agg-{uuid.uuid4().hex[:6]}"
    agg = admin.post("/compute/v2.1/os-aggregates", json={"aggregate": {"name": name, "availability_zone": "az-x"}},
                     headers=LATEST).json()["aggregate"]
    assert agg["availability_zone"] == "az-x" and len(agg["uuid"]) == 36
    assert "hosts" not in agg and "metadata" not in agg, "Nova's create answers without them"
    assert admin.post("/compute/v2.1/os-aggregates", json={"aggregate": {"name": name}}).status_code == 409
    for beyond in ("9" * 30, str(2**63), "0", "-1"):  # no such id: 404, not SQLite's overflow
        assert admin.get(f"/compute/v2.1/os-aggregates/{beyond}").status_code == 404
        assert admin.delete(f"/compute/v2.1/os-aggregates/{beyond}").status_code == 404
    r = admin.post(f"/compute/v2.1/os-aggregates/{agg['id']}/action", json={"add_host": {"host": host}})
    assert r.json()["aggregate"]["hosts"] == [host]
    assert admin.post(f"/compute/v2.1/os-aggregates/{agg['id']}/action", json={"add_host": {"host": "nohost"}}).status_code == 404
    zones = {z["zoneName"] for z in admin.get("/compute/v2.1/os-availability-zone").json()["availabilityZoneInfo"]}
    assert zones == {"az-x"}
    sid = boot(admin, image["id"], availability_zone="az-x")["id"]
    assert wait_server(admin, sid, {"ACTIVE"})["OS-EXT-AZ:availability_zone"] == "az-x"
    admin.delete(f"/compute/v2.1/servers/{sid}")
    wait_gone(admin, sid)
    assert admin.delete(f"/compute/v2.1/os-aggregates/{agg['id']}").status_code == 400  # still has a host
    admin.post(f"/compute/v2.1/os-aggregates/{agg['id']}/action", json={"remove_host": {"host": host}})
    assert admin.delete(f"/compute/v2.1/os-aggregates/{agg['id']}").status_code == 200
    zones = {z["zoneName"] for z in admin.get("/compute/v2.1/os-availability-zone").json()["availabilityZoneInfo"]}
    assert zones == {"nova"}
    _, _, member = new_project_user(cloud, admin)
    with cloud.client(member) as m:
        assert m.get("/compute/v2.1/os-aggregates").status_code == 403


def test_rebuild_replaces_the_disk_from_a_new_image(cloud: Cloud, setup, tmp_path):
    admin, image = setup
    other = upload_image(admin, make_qcow2(tmp_path / "other.qcow2", "32M"), visibility="public")
    sid = boot(admin, image["id"])["id"]
    wait_server(admin, sid, {"ACTIVE"})
    r = admin.post(f"/compute/v2.1/servers/{sid}/action", headers=LATEST,
                   json={"rebuild": {"imageRef": other["id"], "name": "rebuilt", "metadata": {"v": "2"}}})
    assert r.status_code == 202, r.text
    assert r.json()["server"]["status"] == "REBUILD" and r.json()["server"]["adminPass"]
    assert "OS-EXT-STS:vm_state" in r.json()["server"] and "key_name" in r.json()["server"]
    server = wait_server(admin, sid, {"ACTIVE"})
    assert server["image"]["id"] == other["id"] and server["name"] == "rebuilt" and server["metadata"] == {"v": "2"}
    # Before 2.75 Nova's rebuild answer has no extended attributes.
    r = admin.post(f"/compute/v2.1/servers/{sid}/action", headers={"OpenStack-API-Version": "compute 2.1"},
                   json={"rebuild": {"imageRef": other["id"]}})
    assert r.status_code == 202, r.text
    assert not {k for k in r.json()["server"] if k.startswith(("OS-EXT-", "OS-SRV-USG"))}
    assert not {"key_name", "config_drive", "security_groups"} & set(r.json()["server"])
    assert all(set(a) == {"addr", "version"} for net in r.json()["server"]["addresses"].values() for a in net)
    server = wait_server(admin, sid, {"ACTIVE"})
    bad = admin.post(f"/compute/v2.1/servers/{sid}/action", json={"rebuild": {"imageRef": str(uuid.uuid4())}})
    assert bad.status_code == 400
    assert admin.get("/cloudbox/v1/status").json()["compute"]["ghosts"] == []
    admin.delete(f"/compute/v2.1/servers/{sid}")
    wait_gone(admin, sid)


def test_image_properties_steer_the_scheduler(cloud: Cloud, setup, tmp_path):
    admin, _ = setup
    arm = upload_image(admin, make_qcow2(tmp_path / "arm.qcow2", "16M"), visibility="public")
    r = admin.patch(f"/image/v2/images/{arm['id']}", content=b'[{"op": "add", "path": "/hw_architecture", "value": "aarch64"}]',
                    headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert r.status_code == 200, r.text
    sid = boot(admin, arm["id"])["id"]
    server = wait_server(admin, sid, {"ERROR"})
    assert "architecture aarch64" in server["fault"]["message"]
    admin.delete(f"/compute/v2.1/servers/{sid}")
    wait_gone(admin, sid)


def test_malformed_actions_and_oversized_numbers_are_400_and_change_nothing(cloud: Cloud, setup):
    admin, image = setup
    sid = boot(admin, image["id"])["id"]
    before = wait_server(admin, sid, {"ACTIVE"})
    base = f"/compute/v2.1/servers/{sid}/action"
    for body in ({"reboot": "HARD"}, {"createImage": "x"}, {"rebuild": {"imageRef": image["id"], "name": None}},
                 {"rebuild": {"imageRef": image["id"], "metadata": ["a"]}},
                 {"rebuild": {"imageRef": image["id"], "name": 123}},
                 {"rebuild": {"imageRef": image["id"], "user_data": "!!"}}):
        r = admin.post(base, json=body, headers=LATEST)
        assert r.status_code == 400, (body, r.text)
    after = admin.get(f"/compute/v2.1/servers/{sid}", headers=LATEST).json()["server"]
    assert (after["name"], after["metadata"], after["status"]) == (before["name"], before["metadata"], "ACTIVE")
    project = admin.get("/identity/v3/projects?name=admin").json()["projects"][0]["id"]
    assert admin.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"instances": 10**20}}).status_code == 400
    assert admin.post("/compute/v2.1/flavors", json={"flavor": {"name": "big", "ram": 10**20, "vcpus": 1, "disk": 1}}).status_code == 400
    agg = admin.post("/compute/v2.1/os-aggregates", json={"aggregate": {"name": f"a-{uuid.uuid4().hex[:6]}"}}).json()["aggregate"]
    assert admin.put(f"/compute/v2.1/os-aggregates/{agg['id']}", json={"aggregate": {"hosts": ["x"]}}).status_code == 400
    assert admin.post("/compute/v2.1/flavors/1/action", json={"foo": {"tenant": project}}).status_code == 400
    admin.delete(f"/compute/v2.1/os-aggregates/{agg['id']}")
    admin.delete(f"/compute/v2.1/servers/{sid}")
    wait_gone(admin, sid)


def test_multi_create_below_min_count_takes_nothing(cloud: Cloud, setup):
    """min_count beyond what the quota leaves room for: refused whole (Nova's message), nothing
    made even for a moment; a range the quota cuts short makes as many as fit."""
    admin, image = setup
    project, _, token = new_project_user(cloud, admin)
    admin.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"instances": 2}})
    with cloud.client(token) as c:
        r = c.post("/compute/v2.1/servers", headers=LATEST, json={"server": {
            "name": "multi", "imageRef": image["id"], "flavorRef": "42", "networks": "auto",
            "min_count": 3, "max_count": 3}})
        assert r.status_code == 403, r.text
        assert r.json()["forbidden"]["message"] == ("Quota exceeded for instances: Requested 3, but already used 0 "
                                                    "of 2 instances")
        r = c.post("/compute/v2.1/servers", headers=LATEST, json={"server": {
            "name": "multi", "imageRef": image["id"], "flavorRef": "42", "networks": "auto",
            "min_count": 3, "max_count": 5}})
        assert r.status_code == 403 and "Requested 3-5, but already used 0 of 2 instances" in r.text
        # Nothing was recorded, so nothing was ever scheduled, given ports or deleted again.
        usage = c.get(f"/compute/v2.1/os-simple-tenant-usage/{project}").json()["tenant_usage"]
        assert usage == {} and c.get("/compute/v2.1/servers").json()["servers"] == []
        assert c.get("/network/v2.0/ports").json()["ports"] == []
        r = c.post("/compute/v2.1/servers", headers=LATEST, json={"server": {
            "name": "multi", "imageRef": image["id"], "flavorRef": "42", "networks": "auto",
            "min_count": 1, "max_count": 3}})
        assert r.status_code == 202
        booted = c.get("/compute/v2.1/servers").json()["servers"]
        assert sorted(s["name"] for s in booted) == ["multi-1", "multi-2"]
        for s in booted:
            c.delete(f"/compute/v2.1/servers/{s['id']}")
        for s in booted:
            wait_gone(c, s["id"])


def test_security_groups_named_at_boot_are_checked_before_anything_is_made(cloud: Cloud, setup):
    admin, image = setup
    _, _, token_a = new_project_user(cloud, admin)
    _, _, token_b = new_project_user(cloud, admin)
    with cloud.client(token_a) as a, cloud.client(token_b) as b:
        theirs = b.post("/network/v2.0/security-groups", json={"security_group": {"name": "web"}}).json()["security_group"]
        for group in (theirs["id"], "web", "no-such-group"):
            body = {"server": {"name": "sg", "imageRef": image["id"], "flavorRef": "42", "networks": "auto",
                               "security_groups": [{"name": group}]}}
            r = a.post("/compute/v2.1/servers", json=body, headers=LATEST)
            assert r.status_code == 400, r.text
            assert f"Security group {group} not found" in r.json()["badRequest"]["message"]
        assert a.get("/compute/v2.1/servers").json()["servers"] == []
        assert a.get("/network/v2.0/ports").json()["ports"] == []
        mine = a.post("/network/v2.0/security-groups", json={"security_group": {"name": "web"}}).json()["security_group"]
        server = boot(a, image["id"], security_groups=[{"name": "web"}])
        assert wait_server(a, server["id"], {"ACTIVE"})["security_groups"] == [{"name": "web"}]
        [port] = a.get(f"/network/v2.0/ports?device_id={server['id']}").json()["ports"]
        assert port["security_groups"] == [mine["id"]]
        a.delete(f"/compute/v2.1/servers/{server['id']}")
        wait_gone(a, server["id"])


def test_create_bodies_with_unknown_fields_are_refused(cloud: Cloud, setup):
    """As Nova's schemas do (additionalProperties: false): 400, and nothing made."""
    admin, image = setup
    name = f"u-{uuid.uuid4().hex[:6]}"
    server = {"name": name, "imageRef": image["id"], "flavorRef": "42", "networks": "auto"}
    for path, body in (
        ("/servers", {"server": {**server, "colour": "blue"}}),
        ("/servers", {"server": server, "extra": 1}),
        ("/servers", {"server": {**server, "networks": [{"uuid": str(uuid.uuid4()), "speed": 10}]}}),
        ("/servers", {"server": {**server, "security_groups": [{"name": "default", "id": "x"}]}}),
        ("/flavors", {"flavor": {"name": name, "ram": 64, "vcpus": 1, "disk": 1, "gpus": 1}}),
        ("/os-keypairs", {"keypair": {"name": name, "colour": "blue"}}),
        ("/os-server-groups", {"server_group": {"name": name, "policy": "affinity", "size": 3}}),
        ("/os-aggregates", {"aggregate": {"name": name}, "hosts": []}),
    ):
        r = admin.post(f"/compute/v2.1{path}", json=body, headers=LATEST)
        assert r.status_code == 400, (path, r.text)
        assert "Additional properties are not allowed" in r.text, r.text
    assert name not in {s["name"] for s in admin.get("/compute/v2.1/servers").json()["servers"]}
    assert name not in {f["name"] for f in admin.get("/compute/v2.1/flavors?is_public=none").json()["flavors"]}
    assert admin.get(f"/compute/v2.1/os-keypairs/{name}").status_code == 404
    groups = admin.get("/compute/v2.1/os-server-groups", headers=LATEST).json()["server_groups"]
    assert name not in {g["name"] for g in groups}
    assert name not in {a["name"] for a in admin.get("/compute/v2.1/os-aggregates").json()["aggregates"]}


def test_rxtx_factor_must_be_a_positive_finite_number(cloud: Cloud, setup):
    """NaN, infinities, zero and negatives are 400 and make nothing; every listing stays JSON."""
    admin, _ = setup
    name = f"rx-{uuid.uuid4().hex[:6]}"
    template = '{"flavor": {"name": "%s", "ram": 64, "vcpus": 1, "disk": 1, "rxtx_factor": %s}}'
    for value in ("NaN", "Infinity", "-Infinity", "1e999", '"inf"', '"nan"', '"1e999"', "0", "-1", "-0.5",
                  "3.5e38", '"abc"', "true", "null"):
        r = admin.post("/compute/v2.1/flavors", content=(template % (name, value)).encode(),
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (value, r.status_code, r.text)
    for path in ("/compute/v2.1/flavors/detail?is_public=none", "/compute/v2.1/flavors?is_public=none"):
        listing = json.loads(admin.get(path).text, parse_constant=lambda c: pytest.fail(f"{c} in {path}"))
        assert name not in {f["name"] for f in listing["flavors"]}
    r = admin.post("/compute/v2.1/flavors", json={"flavor": {"name": name, "ram": 64, "vcpus": 1, "disk": 1,
                                                             "rxtx_factor": "2.5"}})
    assert r.status_code == 200 and r.json()["flavor"]["rxtx_factor"] == 2.5
    assert admin.delete(f"/compute/v2.1/flavors/{r.json()['flavor']['id']}").status_code == 202


def test_stop_then_start_at_once_ends_active(cloud: Cloud, setup):
    """The README's `openstack server stop x; openstack server start x`: both accepted."""
    admin, image = setup
    sid = boot(admin, image["id"])["id"]
    wait_server(admin, sid, {"ACTIVE"})
    for _ in range(3):
        assert admin.post(f"/compute/v2.1/servers/{sid}/action", json={"os-stop": None}).status_code == 202
        r = admin.post(f"/compute/v2.1/servers/{sid}/action", json={"os-start": None})
        assert r.status_code == 202, r.text
        server = wait_server(admin, sid, {"ACTIVE"})
        assert server["OS-EXT-STS:power_state"] == 1
    admin.delete(f"/compute/v2.1/servers/{sid}")
    wait_gone(admin, sid)


def test_a_failed_snapshot_leaves_no_image(cloud: Cloud, setup):
    admin, image = setup
    sid = boot(admin, image["id"])["id"]
    wait_server(admin, sid, {"ACTIVE"})
    images_before = {i["id"] for i in admin.get("/image/v2/images").json()["images"]}
    # Metadata becomes the image's properties: it cannot mark the image protected (which would
    # keep a failed snapshot's image from being deleted), relabel its format or choose its id.
    for metadata in ({"protected": "true"}, {"disk_format": "raw"}, {"id": str(uuid.uuid4())}, {"owner": "x"}):
        r = admin.post(f"/compute/v2.1/servers/{sid}/action", json={"createImage": {"name": "snap",
                                                                                   "metadata": metadata}})
        assert r.status_code == 400 and next(iter(metadata)) in r.json()["badRequest"]["message"], r.text
    assert admin.get(f"/compute/v2.1/servers/{sid}", headers=LATEST).json()["server"]["OS-EXT-STS:task_state"] is None
    (cloud.data_dir / "instances" / sid / "disk").unlink()  # the copy of the disk now fails
    r = admin.post(f"/compute/v2.1/servers/{sid}/action", json={"createImage": {"name": "snap"}}, headers=LATEST)
    assert r.status_code == 202, r.text
    image_id = r.json()["image_id"]
    wait_server(admin, sid, {"ACTIVE"})  # the snapshot's task is over
    assert admin.get(f"/image/v2/images/{image_id}").status_code == 404
    assert {i["id"] for i in admin.get("/image/v2/images").json()["images"]} == images_before
    admin.delete(f"/compute/v2.1/servers/{sid}")
    wait_gone(admin, sid)


def test_server_group_and_key_pair_quotas_come_from_the_project(cloud: Cloud, setup):
    admin, _ = setup
    project, _, token = new_project_user(cloud, admin)
    admin.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {"server_groups": 0, "key_pairs": 1}})
    with cloud.client(token) as c:
        r = c.post("/compute/v2.1/os-server-groups", json={"server_group": {"name": "g", "policy": "affinity"}},
                   headers=LATEST)
        assert r.status_code == 403 and "server_groups" in r.text
        assert c.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "k1"}}).status_code == 200
        r = c.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "k2"}})
        assert r.status_code == 403 and "key_pairs" in r.text
        assert [k["keypair"]["name"] for k in c.get("/compute/v2.1/os-keypairs").json()["keypairs"]] == ["k1"]


def test_usage_counts_server_hours(cloud: Cloud, setup):
    admin, image = setup
    project, _, token = new_project_user(cloud, admin)
    with cloud.client(token) as c:
        sid = boot(c, image["id"])["id"]
        wait_server(c, sid, {"ACTIVE"})
        usage = c.get(f"/compute/v2.1/os-simple-tenant-usage/{project}").json()["tenant_usage"]
        assert usage["tenant_id"] == project
        assert [s["instance_id"] for s in usage["server_usages"]] == [sid]
        assert usage["server_usages"][0]["memory_mb"] == 128 and usage["total_hours"] >= 0
        assert c.get("/compute/v2.1/os-simple-tenant-usage").status_code == 403
        c.delete(f"/compute/v2.1/servers/{sid}")
        wait_gone(c, sid)
    everyone = admin.get("/compute/v2.1/os-simple-tenant-usage").json()["tenant_usages"]
    assert isinstance(everyone, list)
    assert admin.get("/compute/v2.1/os-simple-tenant-usage?start=yesterday").status_code == 400


def test_servers_on_chosen_networks_ports_and_floating_ips(cloud: Cloud, setup):
    """Nova's `networks`: by network (with a fixed IP), by port; bad ones refused; ports follow the server."""
    admin, image = setup
    _, _, token = new_project_user(cloud, admin)
    with cloud.client(token) as c:
        net = c.post("/network/v2.0/networks", json={"network": {"name": "chosen"}}).json()["network"]
        subnet = c.post("/network/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "ip_version": 4, "cidr": "192.168.7.0/24"}}).json()["subnet"]
        router = c.post("/network/v2.0/routers", json={"router": {
            "name": "r", "external_gateway_info": {"network_id": c.get(
                "/network/v2.0/networks?router:external=true").json()["networks"][0]["id"]}}}).json()["router"]
        r = c.put(f"/network/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]})
        assert r.status_code == 200, r.text
        mine = c.post("/network/v2.0/ports", json={"port": {"network_id": net["id"], "name": "mine"}}).json()["port"]
        ports_before = {p["id"] for p in c.get("/network/v2.0/ports").json()["ports"]}
        servers_before = c.get("/compute/v2.1/servers").json()["servers"]

        # Bad choices are refused before anything is made.
        for networks, status in (([{"uuid": str(uuid.uuid4())}], 400), ([{"port": str(uuid.uuid4())}], 400),
                                 ([{"uuid": net["id"], "fixed_ip": "10.9.9.9"}], 400)):
            body = {"server": {"name": "bad", "imageRef": image["id"], "flavorRef": "42", "networks": networks}}
            r = c.post("/compute/v2.1/servers", json=body, headers=LATEST)
            assert r.status_code == status, (networks, r.status_code, r.text)
        assert c.get("/compute/v2.1/servers").json()["servers"] == servers_before
        assert {p["id"] for p in c.get("/network/v2.0/ports").json()["ports"]} == ports_before

        by_net = boot(c, image["id"], networks=[{"uuid": net["id"], "fixed_ip": "192.168.7.50"}])
        by_port = boot(c, image["id"], networks=[{"port": mine["id"]}])
        s1 = wait_server(c, by_net["id"], {"ACTIVE"})
        s2 = wait_server(c, by_port["id"], {"ACTIVE"})
        assert [a["addr"] for a in s1["addresses"]["chosen"]] == ["192.168.7.50"]
        assert [a["addr"] for a in s2["addresses"]["chosen"]] == [mine["fixed_ips"][0]["ip_address"]]
        # A port in use cannot be given to a second server.
        body = {"server": {"name": "again", "imageRef": image["id"], "flavorRef": "42", "networks": [{"port": mine["id"]}]}}
        assert c.post("/compute/v2.1/servers", json=body, headers=LATEST).status_code == 409

        # A floating IP shows among the server's addresses.
        made = c.get(f"/network/v2.0/ports?device_id={s1['id']}").json()["ports"]
        ext = c.get("/network/v2.0/networks?router:external=true").json()["networks"][0]["id"]
        fip = c.post("/network/v2.0/floatingips", json={"floatingip": {
            "floating_network_id": ext, "port_id": made[0]["id"]}}).json()["floatingip"]
        addresses = c.get(f"/compute/v2.1/servers/{s1['id']}").json()["server"]["addresses"]["chosen"]
        assert {(a["addr"], a["OS-EXT-IPS:type"]) for a in addresses} == {
            ("192.168.7.50", "fixed"), (fip["floating_ip_address"], "floating")}

        # Deleting the servers deletes the port compute made and gives back the one passed in.
        for s in (s1, s2):
            c.delete(f"/compute/v2.1/servers/{s['id']}")
        for s in (s1, s2):
            wait_gone(c, s["id"])
        assert c.get(f"/network/v2.0/ports/{made[0]['id']}").status_code == 404
        kept = c.get(f"/network/v2.0/ports/{mine['id']}").json()["port"]
        assert kept["device_id"] == "" and kept["status"] == "DOWN"
        assert c.get(f"/network/v2.0/floatingips/{fip['id']}").json()["floatingip"]["port_id"] is None


def test_access_addresses_are_kept_as_given(cloud: Cloud, setup):
    """accessIPv4/accessIPv6: given at create or update, shown in canonical form (Tempest checks them)."""
    admin, image = setup
    created = boot(admin, image["id"], accessIPv4="1.1.1.1", accessIPv6="2001:0db8:0000::0001")
    shown = admin.get(f"/compute/v2.1/servers/{created['id']}", headers=LATEST).json()["server"]
    assert (shown["accessIPv4"], shown["accessIPv6"]) == ("1.1.1.1", "2001:db8::1")
    r = admin.put(f"/compute/v2.1/servers/{created['id']}", json={"server": {"accessIPv4": "192.0.2.7"}})
    assert r.status_code == 200 and r.json()["server"]["accessIPv4"] == "192.0.2.7", r.text
    for bad in ({"accessIPv4": "2001:db8::1"}, {"accessIPv6": "1.1.1.1"}, {"accessIPv4": "not-an-ip"}):
        r = admin.put(f"/compute/v2.1/servers/{created['id']}", json={"server": bad})
        assert r.status_code == 400, r.text
    shown = admin.get(f"/compute/v2.1/servers/{created['id']}", headers=LATEST).json()["server"]
    assert (shown["accessIPv4"], shown["accessIPv6"]) == ("192.0.2.7", "2001:db8::1")
    wait_server(admin, created["id"], {"ACTIVE"})
    assert admin.delete(f"/compute/v2.1/servers/{created['id']}").status_code == 204


def test_server_external_events_are_for_services(cloud: Cloud, setup):
    """Nova's external events: the ``service`` role only; each event answered on its own (200 for a
    server with a host, 404 for none; 207 when they differ, 404 when every one is missing)."""
    admin, image = setup
    server = boot(admin, image["id"])
    wait_server(admin, server["id"], {"ACTIVE"})
    _, _, token = new_project_user(cloud, admin, role="service")
    service = cloud.client(token)
    missing = str(uuid.uuid4())
    url = "/compute/v2.1/os-server-external-events"
    one = {"events": [{"name": "network-changed", "server_uuid": server["id"]}]}
    assert admin.post(url, json=one).status_code == 403, "admin alone is not a service"
    r = service.post(url, json=one)
    assert r.status_code == 200 and r.json()["events"] == [{**one["events"][0], "status": "completed", "code": 200}]
    mixed = service.post(url, json={"events": [*one["events"], {"name": "network-vif-plugged", "server_uuid": missing}]})
    assert mixed.status_code == 207 and [e["code"] for e in mixed.json()["events"]] == [200, 404]
    assert service.post(url, json={"events": [{"name": "network-changed", "server_uuid": missing}]}).status_code == 404
    assert service.post(url, json={"events": [{"name": "power-update", "server_uuid": server["id"],
                                               "tag": "POWER_ON"}]}).status_code == 400, "2.76 and later only"
    assert service.post(url, json={"events": [{"name": "no-such-event", "server_uuid": server["id"]}]}).status_code == 400
    admin.delete(f"/compute/v2.1/servers/{server['id']}")
    wait_gone(admin, server["id"])

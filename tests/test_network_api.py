"""The Neutron-compatible API over real HTTPS: every resource, policy across projects, quotas,
bad input, paging and filters, and the real openstack CLI and openstacksdk."""

from __future__ import annotations

import ipaddress
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.cloud import Cloud
from tests.compute_helpers import new_project_user
from tests.test_openstack_cli import openstack

N = "/network/v2.0"


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.content else None


def err(r: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: wanted {status}, got {r.status_code} {r.text}"
    body = r.json()["NeutronError"]
    assert set(body) == {"type", "message", "detail"}
    for word in words:
        assert word in body["message"], body["message"]
    return body


def make_net(c: httpx.Client, cidr: str | None = "192.168.0.0/24", **extra: Any) -> tuple[dict, dict | None]:
    net = ok(c.post(f"{N}/networks", json={"network": {"name": f"n-{uuid.uuid4().hex[:6]}", **extra}}), 201)["network"]
    if cidr is None:
        return net, None
    sub = ok(c.post(f"{N}/subnets", json={"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}}),
             201)["subnet"]
    return net, sub


def drop_network(admin: httpx.Client, network_id: str) -> None:
    """Delete a network and the ports on it: a shared network left behind would make Nova's
    `networks: auto` ambiguous for every project of the cloud the other tests share."""
    for port in ok(admin.get(f"{N}/ports", params={"network_id": network_id}))["ports"]:
        if port["device_owner"] != "network:dhcp":
            ok(admin.delete(f"{N}/ports/{port['id']}"), 204)
    ok(admin.delete(f"{N}/networks/{network_id}"), 204)


@pytest.fixture(scope="module")
def admin(cloud: Cloud):
    with cloud.client(cloud.token()) as client:
        yield client


@pytest.fixture(scope="module")
def projects(cloud: Cloud, admin: httpx.Client):
    """Two member projects, A and B: (project id, client) each."""
    out = []
    for _ in range(2):
        project_id, _, token = new_project_user(cloud, admin)
        out.append((project_id, cloud.client(token)))
    yield out
    for _, client in out:
        client.close()


@pytest.fixture(scope="module")
def external(admin: httpx.Client) -> dict:
    """An external network with a subnet (the cloud's own if one exists)."""
    found = ok(admin.get(f"{N}/networks", params={"router:external": "true"}))["networks"]
    if found and found[0]["subnets"]:
        return found[0]
    net = ok(admin.post(f"{N}/networks", json={"network": {
        "name": "ext-test", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": f"ext-{uuid.uuid4().hex[:6]}"}}), 201)["network"]
    ok(admin.post(f"{N}/subnets", json={"subnet": {"network_id": net["id"], "cidr": "198.51.100.0/24",
                                                    "enable_dhcp": False}}), 201)
    return ok(admin.get(f"{N}/networks/{net['id']}"))["network"]


def test_discovery(admin: httpx.Client):
    versions = ok(admin.get("/network"))
    assert versions["versions"][0]["id"] == "v2.0" and versions["versions"][0]["links"][0]["href"].endswith("/network/v2.0/")
    assert ok(admin.get("/network/"))["versions"] == versions["versions"]
    assert "networks" in {r["collection"] for r in ok(admin.get(f"{N}/"))["resources"]}
    aliases = {e["alias"] for e in ok(admin.get(f"{N}/extensions"))["extensions"]}
    assert {"router", "external-net", "security-group", "quotas", "port-security", "binding", "provider",
            "standard-attr-tag", "auto-allocated-topology", "extraroute"} <= aliases
    assert ok(admin.get(f"{N}/extensions/router"))["extension"]["alias"] == "router"
    err(admin.get(f"{N}/extensions/qos"), 404)  # not served, so not named
    assert ok(admin.get(f"{N}/service-providers"))["service_providers"] == [
        {"service_type": "L3_ROUTER_NAT", "name": "single_node", "default": True}]
    err(admin.get(f"{N}/nothing-here"), 404)
    catalog = ok(admin.get("/identity/v3/auth/catalog"))["catalog"]
    assert "network" in {entry["type"] for entry in catalog}


def test_networks_subnets_ports(projects: list):
    _, a = projects[0]
    net, sub = make_net(a)
    assert net["provider:network_type"] if "provider:network_type" in net else True
    assert "provider:segmentation_id" not in net  # admin-only attribute
    assert sub["gateway_ip"] == "192.168.0.1" and sub["allocation_pools"] == [{"start": "192.168.0.2", "end": "192.168.0.254"}]
    shown = ok(a.get(f"{N}/networks/{net['id']}"))["network"]
    assert shown["subnets"] == [sub["id"]] and shown["revision_number"] == 1 and shown["mtu"] == 1450
    dhcp = ok(a.get(f"{N}/ports", params={"network_id": net["id"], "device_owner": "network:dhcp"}))["ports"]
    assert [ip["ip_address"] for ip in dhcp[0]["fixed_ips"]] == ["192.168.0.2"]

    port = ok(a.post(f"{N}/ports", json={"port": {"network_id": net["id"], "name": "p1"}}), 201)["port"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "192.168.0.3"}]
    assert port["mac_address"].startswith("fa:16:3e:") and port["status"] == "DOWN"
    assert len(port["security_groups"]) == 1 and port["tenant_id"] == port["project_id"]
    fixed = ok(a.post(f"{N}/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "192.168.0.50"}]}}),
               201)["port"]
    assert fixed["fixed_ips"][0]["ip_address"] == "192.168.0.50"
    err(a.post(f"{N}/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "192.168.0.50"}]}}),
        409, "already allocated")
    err(a.post(f"{N}/subnets", json={"subnet": {"network_id": net["id"], "cidr": "192.168.0.128/25"}}), 400, "overlaps")
    updated = ok(a.put(f"{N}/ports/{port['id']}", json={"port": {"name": "renamed", "fixed_ips": [{"subnet_id": sub["id"]}]}}))
    assert updated["port"]["name"] == "renamed" and updated["port"]["fixed_ips"] == port["fixed_ips"]
    assert updated["port"]["revision_number"] == port["revision_number"] + 1
    moved = ok(a.put(f"{N}/ports/{port['id']}", json={"port": {"fixed_ips": [{"ip_address": "192.168.0.60"}]}}))["port"]
    assert moved["fixed_ips"][0]["ip_address"] == "192.168.0.60"
    ok(a.put(f"{N}/subnets/{sub['id']}", json={"subnet": {"name": "s1", "dns_nameservers": ["192.0.2.53"]}}))
    err(a.put(f"{N}/subnets/{sub['id']}", json={"subnet": {"cidr": "10.0.0.0/24"}}), 400)

    err(a.delete(f"{N}/networks/{net['id']}"), 409, "still in use")
    err(a.delete(f"{N}/subnets/{sub['id']}"), 409)
    for p in (port, fixed):
        ok(a.delete(f"{N}/ports/{p['id']}"), 204)
    ok(a.delete(f"{N}/subnets/{sub['id']}"), 204)
    assert ok(a.get(f"{N}/ports", params={"network_id": net["id"]}))["ports"] == []  # the DHCP port went with it
    ok(a.delete(f"{N}/networks/{net['id']}"), 204)
    err(a.get(f"{N}/networks/{net['id']}"), 404, "could not be found")

    # IPv6 subnets are refused with a reason until guests can configure themselves on one (no RAs yet).
    v6net, _ = make_net(a, None)
    for body in ({"cidr": "2001:db8::/64", "ip_version": 6, "ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac"},
                 {"cidr": "2001:db8::/64", "ip_version": 6}):
        err(a.post(f"{N}/subnets", json={"subnet": {"network_id": v6net["id"], **body}}), 400,
            "IPv6 subnets are not supported yet", "router advertisements")
    assert ok(a.get(f"{N}/subnets", params={"network_id": v6net["id"]}))["subnets"] == []


def test_projects_are_isolated_and_may_overlap(admin: httpx.Client, projects: list, external: dict):
    (pa, a), (pb, b) = projects
    net_a, sub_a = make_net(a, "192.168.0.0/24")
    net_b, sub_b = make_net(b, "192.168.0.0/24")
    assert sub_a["cidr"] == sub_b["cidr"]
    port_a = ok(a.post(f"{N}/ports", json={"port": {"network_id": net_a["id"]}}), 201)["port"]
    router_a = ok(a.post(f"{N}/routers", json={"router": {"name": "ra"}}), 201)["router"]
    group_a = ok(a.post(f"{N}/security-groups", json={"security_group": {"name": "ga"}}), 201)["security_group"]
    fip_a = ok(a.post(f"{N}/floatingips", json={"floatingip": {"floating_network_id": external["id"]}}), 201)["floatingip"]
    for collection, item in (("networks", net_a), ("subnets", sub_a), ("ports", port_a), ("routers", router_a),
                             ("security-groups", group_a), ("floatingips", fip_a)):
        err(b.get(f"{N}/{collection}/{item['id']}"), 404)
        singular = {"security-groups": "security_group", "floatingips": "floatingip"}.get(collection, collection[:-1])
        err(b.put(f"{N}/{collection}/{item['id']}", json={singular: {"description": "mine"}}), 404)
        err(b.delete(f"{N}/{collection}/{item['id']}"), 404)
        ids = {x["id"] for x in ok(b.get(f"{N}/{collection}"))[collection.replace("-", "_")]}
        assert item["id"] not in ids
        assert item["id"] in {x["id"] for x in ok(admin.get(f"{N}/{collection}"))[collection.replace("-", "_")]}
    err(b.post(f"{N}/ports", json={"port": {"network_id": net_a["id"]}}), 404)
    err(b.post(f"{N}/subnets", json={"subnet": {"network_id": net_a["id"], "cidr": "10.9.0.0/24"}}), 404)
    err(b.put(f"{N}/routers/{router_a['id']}/add_router_interface", json={"subnet_id": sub_b["id"]}), 404)
    err(b.put(f"{N}/floatingips/{fip_a['id']}", json={"floatingip": {"port_id": None}}), 404)
    err(b.post(f"{N}/security-group-rules", json={"security_group_rule": {
        "security_group_id": group_a["id"], "direction": "ingress"}}), 404)
    # A shared network: B sees it and may put ports on it, but not change it.
    shared, _ = make_net(admin, "10.77.0.0/24", shared=True)
    assert shared["id"] in {n["id"] for n in ok(b.get(f"{N}/networks"))["networks"]}
    ok(b.post(f"{N}/ports", json={"port": {"network_id": shared["id"]}}), 201)
    err(b.put(f"{N}/networks/{shared['id']}", json={"network": {"name": "hijack"}}), 403)
    # The external network is visible (with its subnet) but takes no tenant ports.
    assert external["id"] in {n["id"] for n in ok(b.get(f"{N}/networks"))["networks"]}
    assert ok(b.get(f"{N}/subnets", params={"network_id": external["id"]}))["subnets"]
    err(b.post(f"{N}/ports", json={"port": {"network_id": external["id"]}}), 403)
    # Tenants may not make provider or external networks.
    err(a.post(f"{N}/networks", json={"network": {"name": "x", "router:external": True}}), 403)
    err(a.post(f"{N}/networks", json={"network": {"name": "x", "provider:network_type": "flat",
                                                  "provider:physical_network": "p"}}), 403)
    err(a.post(f"{N}/networks", json={"network": {"name": "x", "shared": True}}), 403)
    err(a.post(f"{N}/networks", json={"network": {"name": "x", "project_id": pb}}), 403)
    drop_network(admin, shared["id"])


def test_routers_and_floating_ips(admin: httpx.Client, projects: list, external: dict):
    _, a = projects[0]
    net, sub = make_net(a, "10.20.0.0/24")
    other, other_sub = make_net(a, "10.21.0.0/24")
    router = ok(a.post(f"{N}/routers", json={"router": {"name": "r1"}}), 201)["router"]
    assert router["external_gateway_info"] is None and router["status"] == "ACTIVE"
    err(a.put(f"{N}/routers/{router['id']}", json={"router": {"external_gateway_info": {
        "network_id": external["id"], "enable_snat": False}}}), 403)
    err(a.put(f"{N}/routers/{router['id']}", json={"router": {"external_gateway_info": {"network_id": net["id"]}}}),
        400, "not a valid external network")
    router = ok(a.put(f"{N}/routers/{router['id']}", json={"router": {"external_gateway_info": {
        "network_id": external["id"]}}}))["router"]
    gateway = router["external_gateway_info"]
    assert gateway["network_id"] == external["id"] and gateway["enable_snat"] is True
    assert len(gateway["external_fixed_ips"]) == 1
    info = ok(a.put(f"{N}/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}))
    assert info["subnet_id"] == sub["id"] and info["id"] == router["id"]
    interface = ok(a.get(f"{N}/ports/{info['port_id']}"))["port"]
    assert interface["device_owner"] == "network:router_interface"
    assert interface["fixed_ips"][0]["ip_address"] == "10.20.0.1"
    err(a.put(f"{N}/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}), 400, "already has")
    err(a.put(f"{N}/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"], "port_id": "x"}), 400)
    err(a.delete(f"{N}/ports/{info['port_id']}"), 409, "router_interface")
    # Extra routes: the nexthop must be on an attached subnet.
    routed = ok(a.put(f"{N}/routers/{router['id']}", json={"router": {"routes": [
        {"destination": "172.30.0.0/16", "nexthop": "10.20.0.9"}]}}))["router"]
    assert routed["routes"] == [{"destination": "172.30.0.0/16", "nexthop": "10.20.0.9"}]
    err(a.put(f"{N}/routers/{router['id']}", json={"router": {"routes": [
        {"destination": "172.31.0.0/16", "nexthop": "10.99.0.9"}]}}), 400, "not connected")
    ok(a.put(f"{N}/routers/{router['id']}/add_extraroutes", json={"router": {"routes": [
        {"destination": "172.31.0.0/16", "nexthop": "10.20.0.10"}]}}))
    err(a.put(f"{N}/routers/{router['id']}/remove_router_interface", json={"subnet_id": sub["id"]}), 409, "routes")
    # A route to an attached subnet itself is Neutron's to take (Tempest sets them); null clears them.
    routed = ok(a.put(f"{N}/routers/{router['id']}", json={"router": {"routes": [
        {"destination": "10.20.0.0/24", "nexthop": "10.20.0.2"}]}}))["router"]
    assert routed["routes"] == [{"destination": "10.20.0.0/24", "nexthop": "10.20.0.2"}]
    assert ok(a.put(f"{N}/routers/{router['id']}", json={"router": {"routes": None}}))["router"]["routes"] == []

    port = ok(a.post(f"{N}/ports", json={"port": {"network_id": net["id"]}}), 201)["port"]
    stray = ok(a.post(f"{N}/ports", json={"port": {"network_id": other["id"]}}), 201)["port"]
    fip = ok(a.post(f"{N}/floatingips", json={"floatingip": {"floating_network_id": external["id"]}}), 201)["floatingip"]
    assert fip["status"] == "DOWN" and fip["port_id"] is None and fip["floating_ip_address"]
    err(a.post(f"{N}/floatingips", json={"floatingip": {"floating_network_id": net["id"]}}), 400, "external network")
    err(a.post(f"{N}/floatingips", json={"floatingip": {"floating_network_id": external["id"],
                                                         "floating_ip_address": "198.51.100.77"}}), 403)
    err(a.put(f"{N}/floatingips/{fip['id']}", json={"floatingip": {"port_id": stray["id"]}}), 404, "not reachable")
    bound = ok(a.put(f"{N}/floatingips/{fip['id']}", json={"floatingip": {"port_id": port["id"]}}))["floatingip"]
    assert bound["router_id"] == router["id"] and bound["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    assert bound["port_details"]["network_id"] == net["id"] and bound["status"] == "ACTIVE"
    err(a.put(f"{N}/routers/{router['id']}/remove_router_interface", json={"subnet_id": sub["id"]}), 409, "floating")
    err(a.put(f"{N}/routers/{router['id']}", json={"router": {"external_gateway_info": {}}}), 409)
    err(a.delete(f"{N}/routers/{router['id']}"), 409)
    listed = ok(a.get(f"{N}/floatingips", params={"port_id": port["id"]}))["floatingips"]
    assert [f["id"] for f in listed] == [fip["id"]]
    # Deleting the port lets go of the floating IP.
    ok(a.delete(f"{N}/ports/{port['id']}"), 204)
    assert ok(a.get(f"{N}/floatingips/{fip['id']}"))["floatingip"]["port_id"] is None
    ok(a.delete(f"{N}/floatingips/{fip['id']}"), 204)
    err(a.get(f"{N}/floatingips/{fip['id']}"), 404)
    # By port: a free port becomes an interface and is deleted with it.
    free = ok(a.post(f"{N}/ports", json={"port": {"network_id": other["id"], "fixed_ips": [{"subnet_id": other_sub["id"]}]}}),
              201)["port"]
    info2 = ok(a.put(f"{N}/routers/{router['id']}/add_router_interface", json={"port_id": free["id"]}))
    assert info2["port_id"] == free["id"] and info2["subnet_id"] == other_sub["id"]
    ok(a.put(f"{N}/routers/{router['id']}/remove_router_interface", json={"port_id": free["id"]}))
    err(a.get(f"{N}/ports/{free['id']}"), 404)
    ok(a.put(f"{N}/routers/{router['id']}/remove_router_interface", json={"subnet_id": sub["id"]}))
    err(a.put(f"{N}/routers/{router['id']}/remove_router_interface", json={"subnet_id": sub["id"]}), 404)
    cleared = ok(a.put(f"{N}/routers/{router['id']}", json={"router": {"external_gateway_info": None}}))["router"]
    assert cleared["external_gateway_info"] is None
    ok(a.delete(f"{N}/routers/{router['id']}"), 204)
    ok(a.delete(f"{N}/ports/{stray['id']}"), 204)


def test_no_project_can_borrow_anothers_addresses_or_devices(admin: httpx.Client, projects: list, cloud: Cloud):
    """Attributes that would let one project speak for another's addresses, take its router or
    its servers' ports are the network owner's or the cloud's (found by review, each tried here)."""
    (a_id, a), (_b_id, b) = projects
    shared, shared_sub = make_net(admin, "10.77.0.0/24", shared=True)
    own, own_sub = make_net(b, "10.78.0.0/24")
    router_a = ok(a.post(f"{N}/routers", json={"router": {"name": "ra"}}), 201)["router"]
    # A member on a shared network cannot switch off anti-spoofing, add address pairs or pick addresses...
    for extra in ({"port_security_enabled": False}, {"allowed_address_pairs": [{"ip_address": "0.0.0.0/0"}]},
                  {"fixed_ips": [{"subnet_id": shared_sub["id"], "ip_address": "10.77.0.1"}]},
                  {"mac_address": "fa:16:3e:00:00:01"}):
        err(a.post(f"{N}/ports", json={"port": {"network_id": shared["id"], **extra}}), 403)
    port = ok(a.post(f"{N}/ports", json={"port": {"network_id": shared["id"]}}), 201)["port"]
    err(a.put(f"{N}/ports/{port['id']}", json={"port": {"port_security_enabled": False}}), 403)
    err(a.put(f"{N}/ports/{port['id']}", json={"port": {"binding:host_id": None}}), 403)
    # ...nor plug its router into a shared subnet (it would take the gateway address).
    err(a.put(f"{N}/routers/{router_a['id']}/add_router_interface", json={"subnet_id": shared_sub["id"]}), 403)
    # Devices of the cloud: router interfaces, DHCP, servers' ports are not made or re-pointed by members.
    for owner in ("network:router_interface", "network:dhcp", "compute:nova"):
        err(b.post(f"{N}/ports", json={"port": {"network_id": own["id"], "device_owner": owner,
                                                  "device_id": router_a["id"]}}), 403)
    assert a.get(f"{N}/routers/{router_a['id']}").json()["router"]["status"] == "ACTIVE"
    drop_network(admin, shared["id"])
def test_security_groups_and_rules(projects: list):
    _, a = projects[0]
    groups = ok(a.get(f"{N}/security-groups"))["security_groups"]
    default = next(g for g in groups if g["name"] == "default")
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"]) for r in default["security_group_rules"]}
    assert rules == {("egress", "IPv4", None), ("egress", "IPv6", None), ("ingress", "IPv4", default["id"]),
                     ("ingress", "IPv6", default["id"])}
    err(a.delete(f"{N}/security-groups/{default['id']}"), 409, "default")
    err(a.post(f"{N}/security-groups", json={"security_group": {"name": "default"}}), 409)
    web = ok(a.post(f"{N}/security-groups", json={"security_group": {"name": "web", "description": "w"}}), 201)["security_group"]
    assert len(web["security_group_rules"]) == 2 and web["stateful"] is True
    body = {"security_group_id": web["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
            "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}
    rule = ok(a.post(f"{N}/security-group-rules", json={"security_group_rule": body}), 201)["security_group_rule"]
    assert (rule["protocol"], rule["ethertype"], rule["port_range_min"]) == ("tcp", "IPv4", 22)
    err(a.post(f"{N}/security-group-rules", json={"security_group_rule": {**body, "protocol": "6"}}), 409,
        "already exists")
    err(a.post(f"{N}/security-group-rules", json={"security_group_rule": {**body, "port_range_min": 30}}), 400)
    err(a.post(f"{N}/security-group-rules", json={"security_group_rule": {**body, "remote_group_id": web["id"]}}), 400)
    err(a.post(f"{N}/security-group-rules", json={"security_group_rule": {**body, "remote_ip_prefix": None,
                                                                          "remote_group_id": str(uuid.uuid4())}}), 404)
    shown = ok(a.get(f"{N}/security-groups/{web['id']}"))["security_group"]
    assert rule["id"] in {r["id"] for r in shown["security_group_rules"]}
    assert shown["revision_number"] == 1
    listed = ok(a.get(f"{N}/security-group-rules", params={"security_group_id": web["id"], "direction": "ingress"}))
    assert [r["id"] for r in listed["security_group_rules"]] == [rule["id"]]
    ok(a.put(f"{N}/security-groups/{web['id']}", json={"security_group": {"name": "web2"}}))
    err(a.put(f"{N}/security-groups/{default['id']}", json={"security_group": {"name": "other"}}), 409)

    net, _ = make_net(a, "10.30.0.0/24")
    port = ok(a.post(f"{N}/ports", json={"port": {"network_id": net["id"], "security_groups": [web["id"]]}}), 201)["port"]
    assert port["security_groups"] == [web["id"]]
    err(a.delete(f"{N}/security-groups/{web['id']}"), 409, "in use")
    err(a.put(f"{N}/ports/{port['id']}", json={"port": {"port_security_enabled": False}}), 409)
    plain = ok(a.put(f"{N}/ports/{port['id']}", json={"port": {"port_security_enabled": False, "security_groups": []}}))
    assert plain["port"]["security_groups"] == [] and plain["port"]["port_security_enabled"] is False
    err(a.put(f"{N}/ports/{port['id']}", json={"port": {"allowed_address_pairs": [{"ip_address": "10.30.0.99"}]}}), 409)
    secured = ok(a.put(f"{N}/ports/{port['id']}", json={"port": {
        "port_security_enabled": True, "allowed_address_pairs": [{"ip_address": "10.30.0.99"}]}}))["port"]
    assert secured["allowed_address_pairs"] == [{"ip_address": "10.30.0.99", "mac_address": port["mac_address"]}]
    err(a.post(f"{N}/ports", json={"port": {"network_id": net["id"], "port_security_enabled": False,
                                            "security_groups": [web["id"]]}}), 400)
    ok(a.delete(f"{N}/ports/{port['id']}"), 204)
    ok(a.delete(f"{N}/security-group-rules/{rule['id']}"), 204)
    ok(a.delete(f"{N}/security-groups/{web['id']}"), 204)


def test_quotas(cloud: Cloud, admin: httpx.Client):
    project, _, token = new_project_user(cloud, admin)
    other, _, _ = new_project_user(cloud, admin)
    with cloud.client(token) as member:
        quota = ok(member.get(f"{N}/quotas/{project}"))["quota"]
        assert (quota["network"], quota["subnet"], quota["port"], quota["router"], quota["floatingip"],
                quota["security_group"], quota["security_group_rule"]) == (100, 100, 500, 10, 50, 10, 100)
        err(member.get(f"{N}/quotas/{other}"), 403)
        err(member.put(f"{N}/quotas/{project}", json={"quota": {"network": 50}}), 403)
        err(member.get(f"{N}/quotas"), 403)
        set_to = ok(admin.put(f"{N}/quotas/{project}", json={"quota": {"network": 1, "router": 0}}))["quota"]
        assert set_to["network"] == 1 and set_to["router"] == 0 and set_to["port"] == 500
        make_net(member, None)
        err(member.post(f"{N}/networks", json={"network": {"name": "two"}}), 409, "Quota exceeded")
        err(member.post(f"{N}/routers", json={"router": {"name": "r"}}), 409, "Quota exceeded")
        details = ok(member.get(f"{N}/quotas/{project}/details.json"))["quota"]
        assert details["network"] == {"limit": 1, "used": 1, "reserved": 0}
        assert ok(member.get(f"{N}/quotas/{project}/details"))["quota"] == details
        assert ok(member.get(f"{N}/quotas/{project}/default"))["quota"]["network"] == 100
        assert project in {q["project_id"] for q in ok(admin.get(f"{N}/quotas"))["quotas"]}
        err(admin.put(f"{N}/quotas/{project}", json={"quota": {"networks": 5}}), 400)
        err(admin.put(f"{N}/quotas/{project}", json={"quota": {"network": 0, "check_limit": True}}), 400)
        ok(admin.delete(f"{N}/quotas/{project}"), 204)
        assert ok(member.get(f"{N}/quotas/{project}"))["quota"]["network"] == 100
        make_net(member, None)


def test_bad_input_changes_nothing(projects: list):
    _, a = projects[0]
    before = {k: len(ok(a.get(f"{N}/{k}"))[k]) for k in ("networks", "subnets", "ports")}
    net, sub = make_net(a, "10.40.0.0/24")
    after_setup = {k: len(ok(a.get(f"{N}/{k}"))[k]) for k in ("networks", "subnets", "ports")}
    assert after_setup == {"networks": before["networks"] + 1, "subnets": before["subnets"] + 1,
                           "ports": before["ports"] + 1}
    bad = [
        ("networks", {"network": {"name": "x", "bogus": 1}}),
        ("networks", {"network": {"name": 7}}),
        ("networks", {"net": {}}),
        ("subnets", {"subnet": {"network_id": net["id"], "cidr": "10.50.0.5/24"}}),
        ("subnets", {"subnet": {"network_id": net["id"], "cidr": "nonsense"}}),
        ("subnets", {"subnet": {"network_id": net["id"], "cidr": "10.50.0.0/24", "allocation_pools": [
            {"start": "10.50.0.10", "end": "10.50.1.10"}]}}),
        ("ports", {"port": {"network_id": net["id"], "mac_address": "zz:zz"}}),
        ("ports", {"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.99.0.5"}]}}),
        ("ports", {"port": {"network_id": net["id"], "fixed_ips": [{"subnet_id": "nope"}]}}),
        ("ports", {"port": {"network_id": net["id"], "allowed_address_pairs": [{"ip_address": "x"}]}}),
    ]
    for collection, body in bad:
        err(a.post(f"{N}/{collection}", json=body), 400)
    r = a.post(f"{N}/networks", content=b"{not json", headers={"Content-Type": "application/json"})
    err(r, 400)
    err(a.get(f"{N}/networks", params={"shared": "perhaps"}), 400)
    err(a.get(f"{N}/networks", params={"sort_key": "nonsense"}), 400)
    err(a.get(f"{N}/networks", params={"limit": "-1"}), 400)
    err(a.get(f"{N}/networks", params={"marker": str(uuid.uuid4())}), 400)
    err(a.post(f"{N}/ports", json={"port": {"network_id": str(uuid.uuid4())}}), 404)
    assert {k: len(ok(a.get(f"{N}/{k}"))[k]) for k in ("networks", "subnets", "ports")} == after_setup
    assert ok(a.get(f"{N}/subnets/{sub['id']}"))["subnet"]["revision_number"] == 0


def test_paging_sorting_filters_fields_and_tags(projects: list):
    _, a = projects[1]
    tag = uuid.uuid4().hex[:8]
    names = [f"page-{tag}-{i}" for i in range(5)]
    made = [ok(a.post(f"{N}/networks", json={"network": {"name": n}}), 201)["network"] for n in names]
    ok(a.put(f"{N}/networks/{made[0]['id']}/tags", json={"tags": [tag, "red"]}))
    ok(a.put(f"{N}/networks/{made[1]['id']}/tags/{tag}"), 201)
    assert ok(a.get(f"{N}/networks/{made[0]['id']}/tags"))["tags"] == sorted([tag, "red"])
    ok(a.get(f"{N}/networks/{made[0]['id']}/tags/red"), 204)
    err(a.get(f"{N}/networks/{made[1]['id']}/tags/red"), 404)
    shown = ok(a.get(f"{N}/networks/{made[0]['id']}"))["network"]
    assert shown["tags"] == sorted([tag, "red"]) and shown["revision_number"] == 1
    tagged = ok(a.get(f"{N}/networks", params={"tags": tag}))["networks"]
    assert {n["id"] for n in tagged} == {made[0]["id"], made[1]["id"]}
    assert [n["id"] for n in ok(a.get(f"{N}/networks", params={"tags": f"{tag},red"}))["networks"]] == [made[0]["id"]]
    assert {n["id"] for n in ok(a.get(f"{N}/networks", params={"tags-any": f"{tag},red"}))["networks"]} == {
        made[0]["id"], made[1]["id"]}
    untagged = {n["id"] for n in ok(a.get(f"{N}/networks", params={"not-tags": tag}))["networks"]}
    assert made[0]["id"] not in untagged and made[2]["id"] in untagged
    ok(a.delete(f"{N}/networks/{made[0]['id']}/tags/red"), 204)
    err(a.delete(f"{N}/networks/{made[0]['id']}/tags/red"), 404)
    ok(a.delete(f"{N}/networks/{made[0]['id']}/tags"), 204)
    assert ok(a.get(f"{N}/networks/{made[0]['id']}"))["network"]["tags"] == []

    picked = ok(a.get(f"{N}/networks", params=[("name", names[1]), ("name", names[3])]))["networks"]
    assert sorted(n["name"] for n in picked) == [names[1], names[3]]
    slim = ok(a.get(f"{N}/networks", params=[("name", names[2]), ("fields", "id"), ("fields", "name")]))["networks"]
    assert slim == [{"id": made[2]["id"], "name": names[2]}]
    ordered = ok(a.get(f"{N}/networks", params={"sort_key": "name", "sort_dir": "desc"}))["networks"]
    mine = [n["name"] for n in ordered if n["name"] in names]
    assert mine == sorted(names, reverse=True)

    seen: list[str] = []
    url: str | None = f"{N}/networks?limit=2&sort_key=name&sort_dir=asc"
    while url:
        body = ok(a.get(url))
        assert len(body["networks"]) <= 2
        seen += [n["name"] for n in body["networks"]]
        links = [link["href"] for link in body.get("networks_links", []) if link["rel"] == "next"]
        url = links[0] if links else None
    assert [s for s in seen if s in names] == names and len(seen) == len(set(seen))


def test_ip_availability_and_auto_allocated_topology(admin: httpx.Client, projects: list):
    _, a = projects[0]
    net, sub = make_net(a, "10.60.0.0/29")
    ok(a.post(f"{N}/ports", json={"port": {"network_id": net["id"]}}), 201)
    err(a.get(f"{N}/network-ip-availabilities/{net['id']}"), 403)
    avail = ok(admin.get(f"{N}/network-ip-availabilities/{net['id']}"))["network_ip_availability"]
    assert (avail["total_ips"], avail["used_ips"]) == (5, 2)
    assert avail["subnet_ip_availability"][0]["subnet_id"] == sub["id"]
    listed = ok(admin.get(f"{N}/network-ip-availabilities", params={"network_id": net["id"]}))
    assert [x["network_id"] for x in listed["network_ip_availabilities"]] == [net["id"]]


def test_openstack_cli_and_sdk(new_cloud: Cloud):
    new_cloud.init()
    new_cloud.start()
    admin = new_cloud.openstack_env()

    def cli(*args: str, env: dict[str, str] | None = None) -> Any:
        out = openstack(new_cloud, *args, "-f", "json", env=env or admin).stdout
        return json.loads(out) if out.strip() else None

    existing = {n["Name"]: n for n in cli("network", "list", "--external")}
    if "public" in existing:  # the node made its external network at start
        public = cli("network", "show", "public")
        public_cidr = cli("subnet", "show", public["subnets"][0])["cidr"]
    else:
        public = cli("network", "create", "--external", "--provider-network-type", "flat",
                     "--provider-physical-network", "public", "--default", "public")
        public_cidr = "203.0.113.0/24"
        cli("subnet", "create", "--network", "public", "--subnet-range", public_cidr, "--no-dhcp", "public-subnet")
    assert public["router:external"] in (True, "External")
    openstack(new_cloud, "project", "create", "demo")
    openstack(new_cloud, "user", "create", "--project", "demo", "--password", "secret", "alice")
    openstack(new_cloud, "role", "add", "--project", "demo", "--user", "alice", "member")
    alice = new_cloud.openstack_env(OS_USERNAME="alice", OS_PASSWORD="secret", OS_PROJECT_NAME="demo")

    net = cli("network", "create", "private", env=alice)
    subnet = cli("subnet", "create", "--network", "private", "--subnet-range", "192.168.0.0/24", "private-subnet", env=alice)
    assert subnet["gateway_ip"] == "192.168.0.1"
    router = cli("router", "create", "r1", env=alice)
    openstack(new_cloud, "router", "set", "--external-gateway", "public", "r1", env=alice)
    openstack(new_cloud, "router", "add", "subnet", "r1", "private-subnet", env=alice)
    shown = cli("router", "show", "r1", env=alice)
    assert "public" in json.dumps(shown["external_gateway_info"]) or public["id"] in json.dumps(shown["external_gateway_info"])
    port = cli("port", "create", "--network", "private", "p1", env=alice)
    fip = cli("floating", "ip", "create", "public", env=alice)
    assert ipaddress.ip_address(fip["floating_ip_address"]) in ipaddress.ip_network(public_cidr)
    openstack(new_cloud, "floating", "ip", "set", "--port", "p1", fip["floating_ip_address"], env=alice)
    rule = cli("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "default", env=alice)
    assert rule["port_range_min"] == 22 and rule["protocol"] == "tcp"
    networks = cli("network", "list", env=alice)
    assert {"private", "public"} <= {n["Name"] for n in networks}
    quota = cli("quota", "show", env=alice)
    assert json.dumps(quota)  # the CLI merged compute and network quotas
    assert "networks" in json.dumps(quota) or "network" in json.dumps(quota)
    assert port["id"] in {p["ID"] for p in cli("port", "list", "--network", "private", env=alice)}
    cli("security", "group", "list", env=alice)
    cli("subnet", "list", env=alice)
    cli("router", "list", env=alice)

    # openstacksdk for the same resources.
    import openstack as sdk

    conn = sdk.connect(auth_url=new_cloud.auth_url, username="alice", password="secret", project_name="demo",
                       user_domain_name="Default", project_domain_name="Default", cacert=new_cloud.ca,
                       load_yaml_config=False, load_envvars=False)
    found = conn.network.find_network("private", ignore_missing=False)
    assert found.id == net["id"] and found.subnet_ids == [subnet["id"]]
    sdk_net = conn.network.create_network(name="sdk-net")
    sdk_sub = conn.network.create_subnet(network_id=sdk_net.id, cidr="10.8.0.0/24", ip_version=4)
    sdk_port = conn.network.create_port(network_id=sdk_net.id, name="sdk-port")
    assert sdk_port.fixed_ips[0]["subnet_id"] == sdk_sub.id
    assert {p.id for p in conn.network.ports(network_id=sdk_net.id)} >= {sdk_port.id}
    assert conn.network.get_quota(conn.current_project_id).networks == 100
    assert conn.network.find_extension("router") is not None
    conn.network.delete_port(sdk_port)
    conn.network.delete_subnet(sdk_sub)
    conn.network.delete_network(sdk_net)
    conn.close()

    openstack(new_cloud, "floating", "ip", "unset", "--port", fip["floating_ip_address"], env=alice)
    openstack(new_cloud, "floating", "ip", "delete", fip["floating_ip_address"], env=alice)
    openstack(new_cloud, "port", "delete", port["id"], env=alice)
    openstack(new_cloud, "router", "remove", "subnet", "r1", "private-subnet", env=alice)
    openstack(new_cloud, "router", "unset", "--external-gateway", "r1", env=alice)
    openstack(new_cloud, "router", "delete", router["id"], env=alice)
    openstack(new_cloud, "subnet", "delete", "private-subnet", env=alice)
    openstack(new_cloud, "network", "delete", "private", env=alice)
    assert "private" not in {n["Name"] for n in cli("network", "list", env=alice)}
    topology = cli("network", "auto", "allocated", "topology", "create", env=alice)
    assert topology["id"]
    assert "auto_allocated_network" in {n["Name"] for n in cli("network", "list", env=alice)}


def test_bulk_create_and_extra_dhcp_options_over_http(projects: list):
    _, a = projects[0]
    nets = ok(a.post(f"{N}/networks", json={"networks": [{"name": "bulk-a"}, {"name": "bulk-b"}]}), 201)["networks"]
    assert [n["name"] for n in nets] == ["bulk-a", "bulk-b"]
    subnets = ok(a.post(f"{N}/subnets", json={"subnets": [
        {"network_id": nets[0]["id"], "cidr": "10.61.0.0/24", "ip_version": 4},
        {"network_id": nets[1]["id"], "cidr": "10.62.0.0/24", "ip_version": 4}]}), 201)["subnets"]
    assert {s["network_id"] for s in subnets} == {n["id"] for n in nets}
    opts = [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}, {"opt_name": "tftp-server", "opt_value": "10.61.0.9"}]
    ports = ok(a.post(f"{N}/ports", json={"ports": [{"network_id": nets[0]["id"], "extra_dhcp_opts": opts},
                                                    {"network_id": nets[1]["id"]}]}), 201)["ports"]
    assert [o["opt_name"] for o in ports[0]["extra_dhcp_opts"]] == ["bootfile-name", "tftp-server"]
    assert ports[1]["extra_dhcp_opts"] == []
    updated = ok(a.put(f"{N}/ports/{ports[0]['id']}", json={"port": {"extra_dhcp_opts": [
        {"opt_name": "tftp-server", "opt_value": None}]}}))["port"]
    assert updated["extra_dhcp_opts"] == [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4}]
    # Bad bodies: an empty list, both forms, an item the single create would refuse, a bad option.
    names = lambda: {n["name"] for n in ok(a.get(f"{N}/networks"))["networks"]}  # noqa: E731
    before = names()
    err(a.post(f"{N}/networks", json={"networks": []}), 400)
    err(a.post(f"{N}/networks", json={"networks": [{"name": "x"}], "network": {"name": "y"}}), 400)
    err(a.post(f"{N}/networks", json={"networks": [{"name": "bulk-c"}, {"name": "bulk-d", "bogus": 1}]}), 400)
    err(a.post(f"{N}/ports", json={"port": {"network_id": nets[0]["id"], "extra_dhcp_opts": [
        {"opt_name": "x", "opt_value": "a\nb"}]}}), 400, "extra_dhcp_opts")
    assert names() == before
    ok(a.delete(f"{N}/ports/{ports[0]['id']}"), 204)
    ok(a.delete(f"{N}/ports/{ports[1]['id']}"), 204)
    for net in nets:
        ok(a.delete(f"{N}/networks/{net['id']}"), 204)


def test_pools_scopes_metering_and_agents_over_http(admin: httpx.Client, projects: list):
    _, a = projects[0]
    scope = ok(a.post(f"{N}/address-scopes", json={"address_scope": {"name": "s", "ip_version": 4}}),
               201)["address_scope"]
    pool = ok(a.post(f"{N}/subnetpools", json={"subnetpool": {
        "name": "p", "prefixes": ["10.63.0.0/16"], "default_prefixlen": 26, "address_scope_id": scope["id"]}}),
        201)["subnetpool"]
    assert (pool["prefixes"], pool["default_prefixlen"], pool["address_scope_id"]) == (["10.63.0.0/16"], 26, scope["id"])
    ok(a.put(f"{N}/subnetpools/{pool['id']}/tags/red"), 201)
    assert ok(a.get(f"{N}/subnetpools", params={"tags": "red"}))["subnetpools"][0]["id"] == pool["id"]
    net = ok(a.post(f"{N}/networks", json={"network": {"name": "pooled"}}), 201)["network"]
    subnet = ok(a.post(f"{N}/subnets", json={"subnet": {"network_id": net["id"], "subnetpool_id": pool["id"],
                                                         "ip_version": 4}}), 201)["subnet"]
    assert (subnet["cidr"], subnet["subnetpool_id"]) == ("10.63.0.0/26", pool["id"])
    assert ok(a.get(f"{N}/networks/{net['id']}"))["network"]["ipv4_address_scope"] == scope["id"]
    err(a.post(f"{N}/subnetpools", json={"subnetpool": {"prefixes": []}}), 400)
    err(a.delete(f"{N}/subnetpools/{pool['id']}"), 409)
    ok(a.delete(f"{N}/subnets/{subnet['id']}"), 204)
    ok(a.delete(f"{N}/subnetpools/{pool['id']}"), 204)
    err(a.get(f"{N}/subnetpools/{pool['id']}"), 404)
    ok(a.delete(f"{N}/address-scopes/{scope['id']}"), 204)

    err(a.post(f"{N}/metering/metering-labels", json={"metering_label": {"name": "l"}}), 403)
    label = ok(admin.post(f"{N}/metering/metering-labels", json={"metering_label": {"name": "l"}}), 201)["metering_label"]
    rule = ok(admin.post(f"{N}/metering/metering-label-rules", json={"metering_label_rule": {
        "metering_label_id": label["id"], "remote_ip_prefix": "10.0.0.0/24", "direction": "egress"}}),
        201)["metering_label_rule"]
    assert ok(admin.get(f"{N}/metering/metering-label-rules/{rule['id']}"))["metering_label_rule"]["excluded"] is False
    assert ok(admin.get(f"{N}/metering/metering-labels", params={"id": "33"}))["metering_labels"] == []
    assert ok(a.get(f"{N}/metering/metering-labels"))["metering_labels"] == []
    err(admin.put(f"{N}/metering/metering-labels/{label['id']}", json={"metering_label": {"name": "x"}}), 405)
    ok(admin.delete(f"{N}/metering/metering-labels/{label['id']}"), 204)
    err(admin.get(f"{N}/metering/metering-label-rules/{rule['id']}"), 404)

    assert ok(a.get(f"{N}/agents"))["agents"] == []
    agents = ok(admin.get(f"{N}/agents", params={"agent_type": "DHCP Agent"}))["agents"]
    assert len(agents) == 1 and agents[0]["alive"] is True and agents[0]["agent_type"] == "DHCP agent"
    ok(admin.post(f"{N}/agents/{agents[0]['id']}/dhcp-networks", json={"network_id": net["id"]}), 201)
    assert [x["id"] for x in ok(admin.get(f"{N}/networks/{net['id']}/dhcp-agents"))["agents"]] == [agents[0]["id"]]
    assert net["id"] in {n["id"] for n in ok(admin.get(f"{N}/agents/{agents[0]['id']}/dhcp-networks"))["networks"]}
    ok(admin.delete(f"{N}/agents/{agents[0]['id']}/dhcp-networks/{net['id']}"), 204)
    assert ok(admin.get(f"{N}/networks/{net['id']}/dhcp-agents"))["agents"] == []
    ok(a.delete(f"{N}/networks/{net['id']}"), 204)


def test_admin_of_any_project_makes_resources_for_another(cloud: Cloud, admin: httpx.Client, external: dict,
                                                         projects: list):
    """Tempest's dynamic admin: the admin role on a fresh project, creating with project_id or tenant_id."""
    other, b = projects[1]
    _, _, token = new_project_user(cloud, admin, role="admin")
    with cloud.client(token) as boss:
        net = ok(boss.post(f"{N}/networks", json={"network": {"name": "for-b", "project_id": other}}), 201)["network"]
        sub = ok(boss.post(f"{N}/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.64.0.0/24",
                                                             "tenant_id": other}}), 201)["subnet"]
        port = ok(boss.post(f"{N}/ports", json={"port": {"network_id": net["id"], "project_id": other}}), 201)["port"]
        router = ok(boss.post(f"{N}/routers", json={"router": {"tenant_id": other, "external_gateway_info": {
            "network_id": external["id"]}}}), 201)["router"]
        ok(boss.put(f"{N}/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}))
        fip = ok(boss.post(f"{N}/floatingips", json={"floatingip": {
            "floating_network_id": external["id"], "project_id": other, "port_id": port["id"]}}), 201)["floatingip"]
        group = ok(boss.post(f"{N}/security-groups", json={"security_group": {"name": "g", "project_id": other}}),
                   201)["security_group"]
        pool = ok(boss.post(f"{N}/subnetpools", json={"subnetpool": {"prefixes": ["10.65.0.0/16"],
                                                                      "project_id": other}}), 201)["subnetpool"]
        made = {"networks": net, "subnets": sub, "ports": port, "routers": router, "floatingips": fip,
                "security-groups": group, "subnetpools": pool}
        for collection, item in made.items():
            assert (item["project_id"], item["tenant_id"]) == (other, other), collection
            # ...and they are the other project's: its members see them.
            ok(b.get(f"{N}/{collection}/{item['id']}"))
        err(boss.post(f"{N}/networks", json={"network": {"project_id": other, "tenant_id": "x"}}), 400, "do not match")
    # A member may not.
    _, a = projects[0]
    err(a.post(f"{N}/networks", json={"network": {"name": "nope", "project_id": other}}), 403)
    ok(admin.delete(f"{N}/floatingips/{fip['id']}"), 204)
    ok(admin.put(f"{N}/routers/{router['id']}/remove_router_interface", json={"subnet_id": sub["id"]}))
    ok(admin.delete(f"{N}/routers/{router['id']}"), 204)
    drop_network(admin, net["id"])
    ok(admin.delete(f"{N}/subnetpools/{pool['id']}"), 204)
    ok(admin.delete(f"{N}/security-groups/{group['id']}"), 204)

"""Neutron's extensions beyond the core resources, on the service and a real state engine: bulk
create (all or nothing), extra DHCP options (and what dnsmasq is told), subnet pools and address
scopes, metering labels and rules, and the agents of the cluster's nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound
from cloudbox.network import core, render, store
from cloudbox.network.service import NetworkService
from cloudbox.services import STORES
from cloudbox.state.engine import replay
from tests.test_network_core import ADMIN, Ctx, service  # noqa: F401 - the fixture
from tests.test_network_render import Rows

ALICE = Ctx("alice")


async def count(svc: NetworkService, table: str) -> int:
    return len((await svc.list(ADMIN, table, MultiDict(), 1000, None))[0])


# --- bulk create ----------------------------------------------------------------------------------------
async def test_bulk_create_makes_every_item_or_none(service: NetworkService, tmp_path: Path):
    nets = await service.create_bulk(ALICE, "networks", [{"name": "a"}, {"name": "b", "admin_state_up": False}])
    assert [n["name"] for n in nets] == ["a", "b"] and nets[1]["admin_state_up"] is False
    subnets = await service.create_bulk(ALICE, "subnets", [
        {"network_id": nets[0]["id"], "cidr": "10.1.0.0/24"}, {"network_id": nets[1]["id"], "cidr": "10.2.0.0/24"}])
    assert [s["cidr"] for s in subnets] == ["10.1.0.0/24", "10.2.0.0/24"]
    ports = await service.create_bulk(ALICE, "ports", [{"network_id": nets[0]["id"]}, {"network_id": nets[0]["id"]}])
    assert [p["fixed_ips"][0]["ip_address"] for p in ports] == ["10.1.0.3", "10.1.0.4"]
    assert ports[0]["security_groups"] == ports[1]["security_groups"]  # one default group, made once

    # The second item is refused in apply (the address is the first one's): neither port exists.
    before = await count(service, "ports")
    with pytest.raises(Conflict, match="already allocated"):
        await service.create_bulk(ALICE, "ports", [
            {"network_id": nets[1]["id"], "fixed_ips": [{"ip_address": "10.2.0.9"}]},
            {"network_id": nets[1]["id"], "fixed_ips": [{"ip_address": "10.2.0.9"}]}])
    assert await count(service, "ports") == before
    # Refused before proposing (the second names a network bob does not see): nothing made either.
    bob_net = await service.create_network(Ctx("bob"), {"name": "bobs"})
    subnets_before = await count(service, "subnets")
    with pytest.raises(NotFound):
        await service.create_bulk(Ctx("bob"), "subnets", [{"network_id": bob_net["id"], "cidr": "10.9.0.0/24"},
                                                         {"network_id": nets[0]["id"], "cidr": "10.8.0.0/24"}])
    assert await count(service, "subnets") == subnets_before
    # A quota counts every item of the request.
    await service.set_quota(ADMIN, "alice", {"network": 3})
    with pytest.raises(Conflict, match="Quota exceeded"):
        await service.create_bulk(ALICE, "networks", [{"name": "c"}, {"name": "d"}])
    assert await count(service, "networks") == 3
    assert replay(service.engine.log_entries(), tmp_path / "replayed.db", STORES) == service.engine.table_hashes()


# --- extra DHCP options ------------------------------------------------------------------------------------
def test_dhcp_options_merge_as_neutron_does():
    opts = core.dhcp_options([], [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
                                  {"opt_name": "tftp-server", "opt_value": "10.0.0.9", "ip_version": 4},
                                  {"opt_name": "66", "opt_value": "x", "ip_version": "6"}])
    assert opts == [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
                    {"opt_name": "tftp-server", "opt_value": "10.0.0.9", "ip_version": 4},
                    {"opt_name": "66", "opt_value": "x", "ip_version": 6}]
    # Named again: a new value, or gone with null; an option not named is kept.
    opts = core.dhcp_options(opts, [{"opt_name": "bootfile-name", "opt_value": "grub.efi"},
                                    {"opt_name": "tftp-server", "opt_value": None}])
    assert [(o["opt_name"], o["opt_value"]) for o in opts] == [("bootfile-name", "grub.efi"), ("66", "x")]
    assert core.dhcp_options([], [{"opt_name": "router", "opt_value": ""}])[0]["opt_value"] == ""
    for bad in ({"opt_name": "a,b", "opt_value": "x"}, {"opt_name": "", "opt_value": "x"},
                {"opt_name": "x", "opt_value": "1\ndhcp-range=evil"}, {"opt_name": "x", "opt_value": ""},
                {"opt_name": "x", "opt_value": "y", "ip_version": 5}, {"opt_name": "x"},
                {"opt_name": "x", "opt_value": "y", "other": 1}, "bootfile-name"):
        with pytest.raises(BadRequest, match="extra_dhcp_opts"):
            core.dhcp_options([], [bad])


async def test_ports_keep_their_dhcp_options(service: NetworkService):
    net = await service.create_network(ALICE, {"name": "n"})
    await service.create_subnet(ALICE, {"network_id": net["id"], "cidr": "10.3.0.0/24"})
    port = await service.create_port(ALICE, {"network_id": net["id"], "extra_dhcp_opts": [
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}]})
    assert port["extra_dhcp_opts"] == [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4}]
    port = await service.update_port(ALICE, port["id"], {"name": "x", "extra_dhcp_opts": [
        {"opt_name": "server-ip-address", "opt_value": "10.3.0.1"}]})
    assert [o["opt_name"] for o in port["extra_dhcp_opts"]] == ["bootfile-name", "server-ip-address"]
    assert (await service.show(ALICE, "ports", port["id"]))["extra_dhcp_opts"] == port["extra_dhcp_opts"]
    with pytest.raises(BadRequest):
        await service.update_port(ALICE, port["id"], {"extra_dhcp_opts": [{"opt_name": "x y", "opt_value": "1"}]})


def test_dnsmasq_is_told_each_ports_options_under_its_own_tag():
    rows = Rows()
    rows.db.execute("ALTER TABLE ports ADD COLUMN extra_dhcp_opts TEXT NOT NULL DEFAULT '[]'")
    net, subnet = rows.network("10.0.0.0/24")
    plain = rows.port(net, subnet, "10.0.0.5")
    booted = rows.port(net, subnet, "10.0.0.6")
    rows.db.execute("UPDATE ports SET extra_dhcp_opts = ? WHERE id = ?", (
        '[{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},'
        ' {"opt_name": "150", "opt_value": "10.0.0.9", "ip_version": 4},'
        ' {"opt_name": "bootfile-name", "opt_value": "v6.efi", "ip_version": 6}]', booted))
    (network,) = rows.plan("n").networks
    tag = f"port-{booted[:11]}"
    hosts = render.dnsmasq_hosts(network.dhcp).splitlines()
    assert any(line.endswith(",10.0.0.5,host-10-0-0-5") and "set:" not in line for line in hosts), plain
    assert any(line.endswith(f",set:{tag},10.0.0.6,host-10-0-0-6") for line in hosts)
    assert render.dnsmasq_opts(network.dhcp) == f"tag:{tag},option:bootfile-name,pxelinux.0\ntag:{tag},150,10.0.0.9\n"
    assert "dhcp-optsfile=/run/x/opts" in render.dnsmasq_config(network.id, network.dhcp, 1450, "/run/x")


# --- subnet pools and address scopes ----------------------------------------------------------------------
def test_free_blocks_and_pool_bounds():
    from cloudbox.network import core_pools

    assert core_pools.lowest_free_block(["10.0.0.0/16"], [], 24) == "10.0.0.0/24"
    assert core_pools.lowest_free_block(["10.0.0.0/16"], ["10.0.0.0/24", "10.0.1.128/25"], 24) == "10.0.2.0/24"
    assert core_pools.lowest_free_block(["10.0.0.0/16"], ["10.0.0.0/17"], 17) == "10.0.128.0/17"
    assert core_pools.lowest_free_block(["10.0.0.0/24", "10.1.0.0/24"], ["10.0.0.0/24"], 25) == "10.1.0.0/25"
    assert core_pools.lowest_free_block(["10.0.0.0/24"], ["10.0.0.0/24"], 26) is None
    assert core_pools.lowest_free_block(["10.0.0.0/24"], [], 16) is None  # larger than the pool
    fields = core_pools.pool_fields({"prefixes": ["10.0.1.0/24", "10.0.0.0/24"]})
    assert fields["prefixes"] == ["10.0.0.0/23"] and fields["ip_version"] == 4
    assert (fields["min_prefixlen"], fields["default_prefixlen"], fields["max_prefixlen"]) == (23, 23, 32)
    with pytest.raises(BadRequest, match="only grow"):
        core_pools.pool_fields({"prefixes": ["10.0.0.0/24"]}, {**fields, "id": "p"})
    with pytest.raises(BadRequest, match="Illegal prefix bounds"):
        core_pools.pool_fields({"prefixes": ["10.0.0.0/8"], "min_prefixlen": 24, "default_prefixlen": 16})
    with pytest.raises(BadRequest, match="more than one IP version"):
        core_pools.pool_fields({"prefixes": ["10.0.0.0/8", "fd00::/48"]})


async def test_subnets_take_their_cidr_from_a_pool(service: NetworkService, tmp_path: Path):
    pool = await service.pools.create_subnetpool(ALICE, {"name": "p", "prefixes": ["10.20.0.0/16"],
                                                         "default_prefixlen": 24, "default_quota": 512})
    assert pool["min_prefixlen"] == 16 and pool["project_id"] == "alice" and not pool["shared"]
    net = await service.create_network(ALICE, {"name": "n"})
    first = await service.create_subnet(ALICE, {"network_id": net["id"], "subnetpool_id": pool["id"]})
    second = await service.create_subnet(ALICE, {"network_id": net["id"], "subnetpool_id": pool["id"],
                                                 "prefixlen": 25, "name": "half"})
    assert (first["cidr"], first["gateway_ip"], first["subnetpool_id"]) == ("10.20.0.0/24", "10.20.0.1", pool["id"])
    assert (second["cidr"], second["name"]) == ("10.20.1.0/25", "half")
    # The pool's quota counts the project's addresses: 256 + 128 used, another /24 is too many.
    other = await service.create_network(ALICE, {"name": "o"})
    with pytest.raises(Conflict, match="quota"):
        await service.create_subnet(ALICE, {"network_id": other["id"], "subnetpool_id": pool["id"]})
    with pytest.raises(BadRequest, match="prefix length 8"):
        await service.create_subnet(ALICE, {"network_id": other["id"], "subnetpool_id": pool["id"], "prefixlen": 8})
    with pytest.raises(BadRequest, match="not within"):
        await service.create_subnet(ALICE, {"network_id": other["id"], "subnetpool_id": pool["id"],
                                            "cidr": "10.99.0.0/24"})
    with pytest.raises(BadRequest, match="same subnet pool"):  # one network's IPv4 subnets share a pool
        await service.create_subnet(ALICE, {"network_id": net["id"], "cidr": "10.30.0.0/24"})
    # Others do not see the pool; a shared one (admin only) they use, and the default one by asking.
    with pytest.raises(NotFound):
        await service.create_subnet(Ctx("bob"), {"network_id": (await service.create_network(Ctx("bob"), {}))["id"],
                                                 "subnetpool_id": pool["id"]})
    with pytest.raises(Forbidden):
        await service.pools.create_subnetpool(ALICE, {"prefixes": ["10.40.0.0/16"], "shared": True})
    shared = await service.pools.create_subnetpool(ADMIN, {"prefixes": ["10.40.0.0/16"], "shared": True,
                                                           "is_default": True, "default_prefixlen": 26})
    bob_net = await service.create_network(Ctx("bob"), {"name": "b"})
    bobs = await service.create_subnet(Ctx("bob"), {"network_id": bob_net["id"], "use_default_subnet_pool": True})
    assert (bobs["cidr"], bobs["subnetpool_id"]) == ("10.40.0.0/26", shared["id"])
    with pytest.raises(Conflict, match="default subnetpool"):
        await service.pools.create_subnetpool(ADMIN, {"prefixes": ["10.50.0.0/16"], "is_default": True})
    # A pool in use stays; its prefixes grow, never shrink; its tags are Neutron's tags.
    with pytest.raises(Conflict, match="allocated"):
        await service.pools.delete_subnetpool(ALICE, pool["id"])
    grown = await service.pools.update_subnetpool(ALICE, pool["id"], {"prefixes": ["10.20.0.0/16", "10.21.0.0/16"],
                                                                      "name": "grown"})
    assert grown["prefixes"] == ["10.20.0.0/15"] and grown["name"] == "grown" and grown["revision_number"] == 1
    with pytest.raises(BadRequest, match="only grow"):
        await service.pools.update_subnetpool(ALICE, pool["id"], {"prefixes": ["10.20.0.0/16"]})
    assert await service.edit_tags(ALICE, "subnetpools", pool["id"], "add", ("t1",)) == ["t1"]
    await service.delete_subnet(ALICE, second["id"])
    await service.delete_subnet(ALICE, first["id"])
    await service.pools.delete_subnetpool(ALICE, pool["id"])
    assert replay(service.engine.log_entries(), tmp_path / "replayed.db", STORES) == service.engine.table_hashes()


async def test_address_scopes_keep_their_pools_apart(service: NetworkService):
    scope = await service.pools.create_address_scope(ALICE, {"name": "s", "ip_version": 4})
    assert scope == {"id": scope["id"], "name": "s", "project_id": "alice", "tenant_id": "alice", "ip_version": 4,
                     "shared": False}
    a = await service.pools.create_subnetpool(ALICE, {"prefixes": ["10.60.0.0/16"], "address_scope_id": scope["id"]})
    with pytest.raises(BadRequest, match="overlap"):
        await service.pools.create_subnetpool(ALICE, {"prefixes": ["10.60.128.0/17"], "address_scope_id": scope["id"]})
    outside = await service.pools.create_subnetpool(ALICE, {"prefixes": ["10.60.128.0/17"]})  # no scope: fine
    with pytest.raises(BadRequest, match="overlap"):
        await service.pools.update_subnetpool(ALICE, outside["id"], {"address_scope_id": scope["id"]})
    v6 = await service.pools.create_address_scope(ALICE, {"name": "six", "ip_version": 6})
    with pytest.raises(BadRequest, match="IP versions"):
        await service.pools.update_subnetpool(ALICE, outside["id"], {"address_scope_id": v6["id"]})
    net = await service.create_network(ALICE, {"name": "n"})
    await service.create_subnet(ALICE, {"network_id": net["id"], "subnetpool_id": a["id"], "prefixlen": 24})
    shown = await service.show(ALICE, "networks", net["id"])
    assert (shown["ipv4_address_scope"], shown["ipv6_address_scope"]) == (scope["id"], None)
    with pytest.raises(Conflict, match="subnet pools"):
        await service.pools.delete_address_scope(ALICE, scope["id"])
    with pytest.raises(NotFound):
        await service.pools.update_address_scope(Ctx("bob"), scope["id"], {"name": "mine"})
    assert (await service.pools.update_address_scope(ALICE, scope["id"], {"name": "t"}))["name"] == "t"


# --- metering ----------------------------------------------------------------------------------------------
async def test_metering_labels_and_rules_are_the_admins(service: NetworkService):
    with pytest.raises(Forbidden):
        await service.pools.create_metering_label(ALICE, {"name": "l"})
    label = await service.pools.create_metering_label(ADMIN, {"name": "l", "description": "d"})
    assert label == {"id": label["id"], "name": "l", "description": "d", "project_id": "admin-project",
                     "tenant_id": "admin-project", "shared": False}
    rule = await service.pools.create_metering_label_rule(ADMIN, {
        "metering_label_id": label["id"], "remote_ip_prefix": "10.0.0.0/24", "direction": "ingress"})
    assert (rule["excluded"], rule["source_ip_prefix"], rule["remote_ip_prefix"]) == (False, None, "10.0.0.0/24")
    with pytest.raises(Conflict, match="overlaps"):
        await service.pools.create_metering_label_rule(ADMIN, {"metering_label_id": label["id"],
                                                               "remote_ip_prefix": "10.0.0.128/25"})
    await service.pools.create_metering_label_rule(ADMIN, {"metering_label_id": label["id"], "excluded": True,
                                                           "remote_ip_prefix": "10.0.0.128/25"})
    for bad in ({}, {"remote_ip_prefix": "10.0.0.0/8", "source_ip_prefix": "10.0.0.0/8"},
                {"remote_ip_prefix": "nonsense"}, {"remote_ip_prefix": "10.1.0.0/16", "direction": "up"}):
        with pytest.raises(BadRequest):
            await service.pools.create_metering_label_rule(ADMIN, {"metering_label_id": label["id"], **bad})
    with pytest.raises(NotFound):
        await service.pools.create_metering_label_rule(ADMIN, {"metering_label_id": "nope",
                                                               "remote_ip_prefix": "10.0.0.0/8"})
    # Members see none of it; the admin lists by id (no such id: nothing).
    assert (await service.list(ALICE, "metering_labels", MultiDict(), 10, None))[0] == []
    assert (await service.list(ADMIN, "metering_labels", MultiDict([("id", "33")]), 10, None))[0] == []
    assert len((await service.list(ADMIN, "metering_label_rules", MultiDict(), 10, None))[0]) == 2
    await service.pools.delete_metering_label(ADMIN, label["id"])
    assert (await service.list(ADMIN, "metering_label_rules", MultiDict(), 10, None))[0] == []


# --- agents ----------------------------------------------------------------------------------------------------
async def test_each_node_shows_three_agents_alive_while_up(service: NetworkService):
    assert (await service.agents.list_agents(ALICE, MultiDict(), 100, None)) == ([], None)  # the admins' only
    found, _ = await service.agents.list_agents(ADMIN, MultiDict(), 100, None)
    assert sorted(a["agent_type"] for a in found) == ["DHCP agent", "L3 agent", "Metadata agent"]
    assert {(a["host"], a["alive"], a["admin_state_up"]) for a in found} == {("host-1", True, True)}
    dhcp = next(a for a in found if a["agent_type"] == "DHCP agent")
    assert dhcp["binary"] == "neutron-dhcp-agent" and not any(k.startswith("_") for k in dhcp)
    # Tempest asks for "DHCP Agent": compared without case, as Neutron's database does.
    assert [a["id"] for a in (await service.agents.list_agents(
        ADMIN, MultiDict([("agent_type", "DHCP Agent")]), 100, None))[0]] == [dhcp["id"]]
    assert (await service.agents.show_agent(ADMIN, dhcp["id"]))["id"] == dhcp["id"]
    with pytest.raises(NotFound):
        await service.agents.show_agent(ALICE, dhcp["id"])
    page, marker = await service.agents.list_agents(ADMIN, MultiDict(), 2, None)
    assert len(page) == 2 and marker == page[1]["id"]
    assert len((await service.agents.list_agents(ADMIN, MultiDict(), 2, marker))[0]) == 1

    # A second member, down: its agents are listed, not alive.
    from cloudbox.cluster import commands as cluster_commands
    from tests.test_network_reconciler import member_row

    await service.engine.propose(cluster_commands.RegisterNode(member_row("node-1", "host-1", "192.0.2.1", 1.7e9)))
    await service.engine.propose(cluster_commands.RegisterNode(member_row("node-2", "host-2", "192.0.2.2", 1.7e9)))

    async def up() -> frozenset[str]:
        return frozenset({"node-1"})

    service.agents.up_nodes = up
    found, _ = await service.agents.list_agents(ADMIN, MultiDict([("alive", "false")]), 100, None)
    assert {(a["host"], a["alive"]) for a in found} == {("host-2", False)} and len(found) == 3
    assert found[0]["heartbeat_timestamp"] == "2023-11-14 22:13:20"


async def test_a_networks_dhcp_server_moves_between_agents(service: NetworkService):
    net = await service.create_network(ALICE, {"name": "n"})
    (dhcp,) = (await service.agents.list_agents(ADMIN, MultiDict([("agent_type", "DHCP agent")]), 10, None))[0]
    assert await service.agents.network_dhcp_agents(ADMIN, net["id"]) == []  # no subnet: nothing to serve
    await service.agents.add_dhcp_network(ADMIN, dhcp["id"], net["id"])
    assert [n["id"] for n in await service.agents.dhcp_networks(ADMIN, dhcp["id"])] == [net["id"]]
    with pytest.raises(Conflict, match="already hosted"):
        await service.agents.add_dhcp_network(ADMIN, dhcp["id"], net["id"])
    await service.create_subnet(ALICE, {"network_id": net["id"], "cidr": "10.70.0.0/24"})
    assert [a["id"] for a in await service.agents.network_dhcp_agents(ADMIN, net["id"])] == [dhcp["id"]]
    with pytest.raises(Forbidden):
        await service.agents.remove_dhcp_network(ALICE, dhcp["id"], net["id"])
    await service.agents.remove_dhcp_network(ADMIN, dhcp["id"], net["id"])
    assert await service.agents.dhcp_networks(ADMIN, dhcp["id"]) == []
    with pytest.raises(Conflict, match="not hosted"):
        await service.agents.remove_dhcp_network(ADMIN, dhcp["id"], net["id"])
    l3 = (await service.agents.list_agents(ADMIN, MultiDict([("agent_type", "L3 agent")]), 10, None))[0][0]
    with pytest.raises(BadRequest, match="not a DHCP agent"):
        await service.agents.dhcp_networks(ADMIN, l3["id"])
    await service.delete_network(ALICE, net["id"])  # its pin goes with it


def test_an_admins_pin_places_a_dhcp_server_while_its_node_is_up():
    from cloudbox.network.hostplan import Member, placement, rendezvous

    members = [Member("a", "host-a", "192.0.2.1"), Member("b", "host-b", "192.0.2.2")]
    natural = rendezvous("net", ["a", "b"])
    other = "b" if natural == "a" else "a"
    assert placement(members, "a").dhcp_owner("net") == natural
    assert placement(members, "a", {"net": other}).dhcp_owner("net") == other
    assert placement(members, "a", {"net": ""}).dhcp_owner("net") is None  # taken off every agent
    down = [m if m.id != other else Member(m.id, m.name, m.tunnel_ip, up=False) for m in members]
    assert placement(down, "a", {"net": other}).dhcp_owner("net") == natural  # fails over
    alone = [Member("a", "host-a", "192.0.2.1")]
    assert placement(alone, "a", {"net": "a"}).dhcp_owner("net") == "a"
    assert placement(alone, "a", {"net": ""}).dhcp_owner("net") is None


def test_a_network_taken_off_its_agent_has_no_dhcp_server_in_the_plan():
    rows = Rows()
    rows.db.execute("CREATE TABLE dhcp_network_pins (network_id TEXT PRIMARY KEY, node_id TEXT NOT NULL)")
    net, _ = rows.network("10.0.0.0/24")
    assert rows.plan("n").networks[0].dhcp is not None
    rows.db.execute("INSERT INTO dhcp_network_pins VALUES (?, '')", (net,))
    assert rows.plan("n").networks == ()


# --- what Tempest expects of the core resources ---------------------------------------------------------------
async def test_an_external_network_goes_with_its_unassociated_floating_ips(service: NetworkService):
    public = await service.create_network(ADMIN, {"name": "ext", "router:external": True})
    await service.create_subnet(ADMIN, {"network_id": public["id"], "cidr": "203.0.113.0/24", "enable_dhcp": False})
    loose = await service.create_floatingip(ADMIN, {"floating_network_id": public["id"]})
    # An associated one holds the network: a router takes the network as its gateway, a port its address.
    net = await service.create_network(ADMIN, {"name": "inside"})
    subnet = await service.create_subnet(ADMIN, {"network_id": net["id"], "cidr": "10.71.0.0/24"})
    router = await service.create_router(ADMIN, {"external_gateway_info": {"network_id": public["id"]}})
    await service.add_interface(ADMIN, router["id"], {"subnet_id": subnet["id"]})
    port = await service.create_port(ADMIN, {"network_id": net["id"]})
    held = await service.create_floatingip(ADMIN, {"floating_network_id": public["id"], "port_id": port["id"]})
    with pytest.raises(Conflict, match="ports still in use"):
        await service.delete_network(ADMIN, public["id"])
    assert (await service.show(ADMIN, "floatingips", held["id"]))["port_id"] == port["id"]
    # The refused delete undid the unassociated one's removal too.
    assert (await service.show(ADMIN, "floatingips", loose["id"]))["id"] == loose["id"]
    await service.delete_floatingip(ADMIN, held["id"])
    await service.remove_interface(ADMIN, router["id"], {"subnet_id": subnet["id"]})
    await service.delete_router(ADMIN, router["id"])
    await service.delete_network(ADMIN, public["id"])
    with pytest.raises(NotFound):
        await service.show(ADMIN, "floatingips", loose["id"])
    assert await count(service, "ports") == 2  # the inside network's DHCP port and the port

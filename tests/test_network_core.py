"""The network service without HTTP: pure IPAM and validation (core), then the service and its
apply on a real state engine (ports for servers, DHCP ports, replay)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
from werkzeug.datastructures import MultiDict

from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from cloudbox.network import core, store
from cloudbox.network.service import NetworkService
from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine, replay


# --- IPAM -----------------------------------------------------------------------------------------
def test_default_pools_leave_out_the_gateway():
    net = core.parse_cidr("192.168.0.0/24")
    assert core.default_pools(net, "192.168.0.1") == [{"start": "192.168.0.2", "end": "192.168.0.254"}]
    assert core.default_pools(net, None) == [{"start": "192.168.0.1", "end": "192.168.0.254"}]
    assert core.default_pools(net, "192.168.0.100") == [
        {"start": "192.168.0.1", "end": "192.168.0.99"}, {"start": "192.168.0.101", "end": "192.168.0.254"}]
    v6 = core.parse_cidr("2001:db8::/64")
    assert core.default_pools(v6, "2001:db8::1") == [{"start": "2001:db8::2", "end": "2001:db8::ffff:ffff:ffff:ffff"}]


def test_lowest_free_address_walks_the_pools_in_order():
    pools = [{"start": "10.0.0.2", "end": "10.0.0.4"}, {"start": "10.0.0.10", "end": "10.0.0.11"}]
    assert core.lowest_free(pools, []) == "10.0.0.2"
    assert core.lowest_free(pools, ["10.0.0.2", "10.0.0.3"]) == "10.0.0.4"
    assert core.lowest_free(pools, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10"]) == "10.0.0.11"
    assert core.lowest_free(pools, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10", "10.0.0.11"]) is None
    assert core.pool_size(pools) == 5


def test_pools_are_checked():
    net = core.parse_cidr("10.0.0.0/24")
    with pytest.raises(BadRequest, match="overlapping"):
        core.validate_pools(net, [{"start": "10.0.0.2", "end": "10.0.0.9"}, {"start": "10.0.0.5", "end": "10.0.0.20"}], None)
    with pytest.raises(BadRequest, match="spans beyond"):
        core.validate_pools(net, [{"start": "10.0.0.2", "end": "10.0.1.9"}], None)
    with pytest.raises(BadRequest, match="network or broadcast"):
        core.validate_pools(net, [{"start": "10.0.0.2", "end": "10.0.0.255"}], None)
    with pytest.raises(Conflict, match="Gateway ip 10.0.0.5 conflicts"):
        core.validate_pools(net, [{"start": "10.0.0.2", "end": "10.0.0.9"}], "10.0.0.5")
    with pytest.raises(BadRequest, match="start is after its end"):
        core.validate_pools(net, [{"start": "10.0.0.9", "end": "10.0.0.2"}], None)


def test_cidrs_and_addresses():
    with pytest.raises(BadRequest, match="'10.0.0.0/24' is recommended"):
        core.parse_cidr("10.0.0.5/24")
    with pytest.raises(BadRequest):
        core.parse_cidr("10.0.0.0")
    with pytest.raises(BadRequest):
        core.parse_cidr("banana/24")
    assert str(core.parse_cidr("10.0.0.5/24", strict=False)) == "10.0.0.0/24"
    assert core.overlaps("10.0.0.0/16", "10.0.5.0/24") and not core.overlaps("10.0.0.0/24", "10.0.1.0/24")
    assert not core.overlaps("10.0.0.0/8", "::/0")
    assert core.eui64("2001:db8::/64", "fa:16:3e:00:00:01") == "2001:db8::f816:3eff:fe00:1"
    assert core.new_mac(b"\x01\xab\xff") == "fa:16:3e:01:ab:ff"
    assert core.normalize_mac("FA-16-3E-00-00-01") == "fa:16:3e:00:00:01"
    with pytest.raises(BadRequest, match="unicast"):
        core.normalize_mac("01:00:5e:00:00:01")
    assert core.lowest_free_segment([]) == 1
    assert core.lowest_free_segment([1, 2, 4]) == 3


def test_subnet_rows():
    row = core.subnet_row({"cidr": "192.168.0.0/24"}, id="s", project_id="p", network_id="n", at="t")
    assert (row["gateway_ip"], row["enable_dhcp"], row["ip_version"]) == ("192.168.0.1", True, 4)
    assert row["allocation_pools"] == [{"start": "192.168.0.2", "end": "192.168.0.254"}]
    row = core.subnet_row({"cidr": "192.168.0.0/24", "gateway_ip": None, "dns_nameservers": ["8.8.8.8"],
                           "host_routes": [{"destination": "10.0.0.0/8", "nexthop": "192.168.0.254"}]},
                          id="s", project_id="p", network_id="n", at="t")
    assert row["gateway_ip"] is None and row["allocation_pools"][0]["start"] == "192.168.0.1"
    v6 = core.subnet_row({"cidr": "2001:db8::/64", "ip_version": 6, "ipv6_address_mode": "slaac",
                          "ipv6_ra_mode": "slaac"}, id="s", project_id="p", network_id="n", at="t")
    assert v6["gateway_ip"] == "2001:db8::1"
    bad = [
        ({"cidr": "192.168.0.0/24", "ip_version": 6}, "does not match"),
        ({"cidr": "192.168.0.0/24", "gateway_ip": "10.0.0.1"}, "not in the subnet"),
        ({"cidr": "192.168.0.0/24", "gateway_ip": "192.168.0.255"}, "broadcast"),
        ({"cidr": "192.168.0.0/24", "ipv6_address_mode": "slaac"}, "IPv4"),
        ({"cidr": "2001:db8::/80", "ip_version": 6, "ipv6_address_mode": "slaac"}, "/64"),
        ({"cidr": "2001:db8::/64", "ip_version": 6, "ipv6_address_mode": "slaac", "ipv6_ra_mode": "dhcpv6-stateful"},
         "must be the same"),
        ({"cidr": "192.168.0.0/24", "dns_nameservers": ["8.8.8.8", "8.8.8.8"]}, "Duplicate nameserver"),
        ({"cidr": "192.168.0.0/24", "host_routes": [{"destination": "10.0.0.0/8"}]}, "destination and a nexthop"),
        ({"cidr": "192.168.0.0/31"}, "too small"),
        ({}, "cidr must be given"),
    ]
    for body, message in bad:
        with pytest.raises(BadRequest, match=message):
            core.subnet_row(body, id="s", project_id="p", network_id="n", at="t")


# --- security group rules ---------------------------------------------------------------------------
def rule(**body: Any) -> dict[str, Any]:
    return core.rule_row({"security_group_id": "g", "direction": "ingress", **body}, id="r", project_id="p", at="t")


def test_rules_are_validated_and_normalised():
    tcp = rule(protocol="TCP", port_range_min=22, port_range_max=22, remote_ip_prefix="10.1.2.3/8")
    assert (tcp["protocol"], tcp["ethertype"], tcp["remote_ip_prefix"]) == ("tcp", "IPv4", "10.0.0.0/8")
    assert rule(protocol="6")["protocol"] == "6" and rule(protocol="any")["protocol"] is None
    assert rule(protocol=17, port_range_min=53, port_range_max=53)["port_range_max"] == 53
    assert rule(protocol="icmp", port_range_min=8, port_range_max=0)["port_range_min"] == 8
    bad = [
        (dict(port_range_min=22), "Must also specify protocol"),
        (dict(protocol="tcp", port_range_min=30, port_range_max=20), "port_range_min must be <="),
        (dict(protocol="tcp", port_range_min=0, port_range_max=20), "Invalid value for port 0"),
        # Neutron's messages, as Tempest's negative tests match them
        (dict(protocol="tcp", port_range_min=-16, port_range_max=80), "Invalid value for port -16"),
        (dict(protocol="tcp", port_range_min=80, port_range_max=65536), "Invalid value for port 65536"),
        (dict(protocol="tcp", port_range_max=6), "port_range_min must be <= port_range_max"),
        (dict(protocol=17, port_range_min=53), "port_range_min must be <= port_range_max"),
        (dict(protocol="icmp", port_range_min=1, port_range_max=256), "Invalid value for ICMP code"),
        (dict(protocol="icmp", port_range_min=-1, port_range_max=25), "Invalid value"),
        (dict(protocol="icmp", port_range_min=300, port_range_max=1), "Invalid value for ICMP type"),
        (dict(protocol="icmp", port_range_max=6), r"ICMP type \(port-range-min\) is missing"),
        (dict(protocol="icmp", port_range_max=3), "ICMP type"),
        (dict(protocol="gre", port_range_min=3), "Invalid protocol gre for port range"),
        (dict(protocol="banana"), "not supported"),
        (dict(protocol="300"), "not supported"),
        (dict(protocol="icmpv6"), "IPv4 is not supported"),
        (dict(remote_ip_prefix="::/0"), "Conflicting value ethertype"),
        (dict(remote_ip_prefix="0.0.0.0/0", remote_group_id="g"), "Only remote_ip_prefix or remote_group_id"),
        (dict(direction="sideways"), "direction"),
        (dict(ethertype="IPv5"), "ethertype"),
    ]
    for body, message in bad:
        with pytest.raises(BadRequest, match=message):
            rule(**body)


def test_protocol_names_and_numbers_are_one_protocol():
    assert core.protocol_number("tcp") == core.protocol_number("6") == core.protocol_number(6) == 6
    assert core.protocol_number("TCP ") == 6 and core.protocol_number("ipv6-icmp") == core.protocol_number("icmpv6") == 58
    for anything in (None, "", "any", "0", 0):
        assert core.protocol_number(anything) is None
    # On an IPv6 rule ICMP is ICMPv6 (Neutron takes "icmp" and "1" there).
    assert {core.protocol_number(p, "IPv6") for p in ("icmp", "1", "icmpv6", "ipv6-icmp", "58")} == {58}
    assert core.protocol_number("icmp", "IPv4") == 1
    with pytest.raises(BadRequest, match="not supported"):
        core.protocol_number("banana")
    assert core.protocol_spellings("6") == core.protocol_spellings("tcp") == ["6", "tcp"]
    assert core.protocol_spellings("58") == ["58", "icmpv6", "ipv6-icmp"]
    assert rule(protocol="0")["protocol"] is None  # "any or 0"
    q = core.parse_list_query(MultiDict([("protocol", "6")]), core.FILTERS["security_group_rules"])
    assert [v for _, v in q.equals] == [["6", "tcp"]]


def test_rule_identity_treats_anywhere_as_no_prefix():
    assert core.rule_key(rule(remote_ip_prefix="0.0.0.0/0")) == core.rule_key(rule())
    assert core.rule_key(rule(protocol="tcp")) == core.rule_key(rule(protocol="6"))
    assert core.rule_key(rule(protocol="tcp")) != core.rule_key(rule(protocol="udp"))
    v6 = [core.rule_key(rule(protocol=p, ethertype="IPv6")) for p in ("icmp", "1", "icmpv6", "ipv6-icmp", "58")]
    assert len(set(v6)) == 1
    assert core.rule_key(rule(protocol="any")) == core.rule_key(rule(protocol="0")) == core.rule_key(rule())


def test_default_group_rules():
    rules = core.default_group_rules("g", "p", ["1", "2", "3", "4"], "t")
    assert [(r["direction"], r["ethertype"], r["remote_group_id"]) for r in rules] == [
        ("egress", "IPv4", None), ("egress", "IPv6", None), ("ingress", "IPv4", "g"), ("ingress", "IPv6", "g")]
    assert len(core.default_group_rules("g", "p", ["1", "2"], "t", with_ingress=False)) == 2


# --- ports' inputs, tags, list queries -----------------------------------------------------------------
def test_fixed_ips_pairs_and_tags():
    assert core.fixed_ip_requests([{"subnet_id": "s"}, {"ip_address": "10.0.0.5"}]) == [
        {"subnet_id": "s"}, {"ip_address": "10.0.0.5"}]
    for bad in ([{}], [{"ip_address": "x"}], [{"ip_address": "10.0.0.5"}, {"ip_address": "10.0.0.5"}], [{"foo": 1}]):
        with pytest.raises(BadRequest):
            core.fixed_ip_requests(bad)
    pairs = core.address_pairs([{"ip_address": "10.0.0.0/24"}, {"ip_address": "10.0.0.9", "mac_address": "fa:16:3e:00:00:09"}],
                               "fa:16:3e:00:00:01")
    assert pairs == [{"ip_address": "10.0.0.0/24", "mac_address": "fa:16:3e:00:00:01"},
                     {"ip_address": "10.0.0.9", "mac_address": "fa:16:3e:00:00:09"}]
    with pytest.raises(BadRequest, match="duplicate address pair"):
        core.address_pairs([{"ip_address": "10.0.0.9"}, {"ip_address": "10.0.0.9"}], "fa:16:3e:00:00:01")
    assert core.clean_tags(["b", "a", "b"]) == ["a", "b"]
    with pytest.raises(BadRequest):
        core.clean_tags(["a,b"])


def test_list_queries():
    fields = core.FILTERS["networks"]
    q = core.parse_list_query(MultiDict([("name", "a"), ("name", "b"), ("shared", "False"), ("bogus", "x"),
                                         ("sort_key", "name"), ("sort_dir", "desc"), ("fields", "id"),
                                         ("fields", "name"), ("tags", "x,y"), ("not-tags-any", "z")]), fields)
    assert [(s.column, v) for s, v in q.equals] == [("name", ["a", "b"]), ("shared", [0])]
    assert q.sort == [("name", "desc"), ("id", "desc")] and q.fields == ["id", "name"]
    assert q.tags_all == ["x", "y"] and q.not_tags_any == ["z"]
    assert core.parse_list_query(MultiDict(), fields).sort == [("id", "asc")]
    for bad in ([("shared", "maybe")], [("sort_key", "subnets")], [("sort_key", "name"), ("sort_dir", "up")],
                [("mtu", "big")], [("mtu", str(2**63))]):
        with pytest.raises(BadRequest):
            core.parse_list_query(MultiDict(bad), fields)
    q = core.parse_list_query(MultiDict([("fixed_ips", "ip_address=10.0.0.5")]), core.FILTERS["ports"])
    assert q.fixed_ips == [("ip_address", "10.0.0.5")]
    assert core.select_fields({"id": 1, "name": 2, "x": 3}, ["id", "name", "nope"]) == {"id": 1, "name": 2}


def test_every_filter_names_a_column_of_its_table(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    try:
        for table, fields in core.FILTERS.items():
            columns = {r[1] for r in engine.read_sync(lambda db: db.execute(f"PRAGMA table_info({table})").fetchall())}
            assert "tags" in columns, table  # every listed table takes the tag filters
            for name, spec in fields.items():
                assert spec.column in columns, f"{table}?{name}= names {spec.column}, which {table} lacks"
    finally:
        engine.close()


# --- the service on a real state engine -------------------------------------------------------------------
@dataclass(frozen=True)
class Ctx:
    project_id: str | None
    is_cloud_admin: bool = False
    is_cloud_reader: bool = False

    def can_write_project(self, project_id: str) -> bool:
        return self.is_cloud_admin or project_id == self.project_id


ADMIN = Ctx("admin-project", is_cloud_admin=True)


@pytest.fixture
async def service(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    svc = NetworkService(engine, None, "node-1", "host-1")
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await nursery.start(svc.run)
        yield svc
        nursery.cancel_scope.cancel()
    engine.close()


async def _network(svc: NetworkService, ctx: Ctx, cidr: str = "10.0.0.0/24", **extra: Any) -> tuple[dict, dict]:
    net = await svc.create_network(ctx, {"name": f"net-{cidr}", **extra})
    sub = await svc.create_subnet(ctx, {"network_id": net["id"], "cidr": cidr, "ip_version": 4})
    return net, sub


async def test_servers_get_ports_in_order_and_give_them_back(service: NetworkService):
    alice = Ctx("alice")
    a, _ = await _network(service, alice, "10.0.0.0/24")
    b, sub_b = await _network(service, alice, "10.0.1.0/24")
    own = await service.create_port(alice, {"network_id": b["id"], "name": "mine"})
    requested = [{"uuid": a["id"]}, {"port": own["id"]}, {"uuid": b["id"], "fixed_ip": "10.0.1.50"}]
    await service.check_requested_networks("alice", False, requested)
    ports = await service.allocate_for_server("srv", "alice", "host-1", requested, [{"name": "default"}], "")
    assert [p["network_id"] for p in ports] == [a["id"], b["id"], b["id"]]
    assert ports[1]["id"] == own["id"] and ports[2]["fixed_ips"][0]["ip_address"] == "10.0.1.50"
    assert {p["device_id"] for p in ports} == {"srv"} and {p["device_owner"] for p in ports} == {"compute:nova"}
    assert ports[0]["binding:host_id"] == "host-1" and ports[0]["security_groups"]
    # A retried build gets the same ports.
    again = await service.allocate_for_server("srv", "alice", "host-1", requested, ["default"], "")
    assert [p["id"] for p in again] == [p["id"] for p in ports]
    with pytest.raises(Conflict, match="still in use"):
        await service.check_requested_networks("alice", False, [{"port": own["id"]}])
    with pytest.raises(Conflict, match="already in use"):
        await service.check_requested_networks("alice", False, [{"uuid": b["id"], "fixed_ip": "10.0.1.50"}])
    addresses = await service.read(store.server_addresses, ["srv", "other"])
    assert addresses["other"] == {}
    assert [a["addr"] for a in addresses["srv"]["net-10.0.1.0/24"]] == [ports[1]["fixed_ips"][0]["ip_address"], "10.0.1.50"]
    data = await service.read(store.network_data, "srv")
    assert [link["id"] for link in data["links"]] == ["tap" + p["id"][:11] for p in ports]
    assert data["networks"][0]["netmask"] == "255.255.255.0"
    assert data["networks"][0]["routes"] == [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}]
    await service.set_port_status(ports[0]["id"], "ACTIVE")
    assert (await service.show(alice, "ports", ports[0]["id"]))["status"] == "ACTIVE"

    await service.deallocate_for_server("srv")
    kept = await service.show(alice, "ports", own["id"])
    assert (kept["device_id"], kept["device_owner"]) == ("", "")
    with pytest.raises(NotFound):
        await service.show(alice, "ports", ports[0]["id"])
    assert await service.read(store.server_ports, "srv") == []
    await service.deallocate_for_server("srv")  # twice is fine

    # A port of another project, seen by alice because it sits on her network, is not hers to take.
    bob = Ctx("bob")
    shared, _ = await _network(service, alice, "10.0.2.0/24")
    await service.update_network(ADMIN, shared["id"], {"shared": True})
    bobs = await service.create_port(bob, {"network_id": shared["id"]})
    with pytest.raises(BadRequest, match="not usable by project alice"):
        await service.allocate_for_server("thief", "alice", "host-1", [{"port": bobs["id"]}], ["default"], "")
    assert (await service.show(bob, "ports", bobs["id"]))["device_id"] == ""


async def test_requested_networks_are_refused_as_nova_does(service: NetworkService):
    alice, bob = Ctx("alice"), Ctx("bob")
    net, _ = await _network(service, alice)
    empty = await service.create_network(alice, {"name": "empty"})
    with pytest.raises(BadRequest, match="could not be found"):
        await service.check_requested_networks("bob", False, [{"uuid": net["id"]}])
    with pytest.raises(BadRequest, match="requires a subnet"):
        await service.check_requested_networks("alice", False, [{"uuid": empty["id"]}])
    with pytest.raises(Conflict, match="Multiple possible networks"):
        await service.check_requested_networks("alice", False, "auto")
    with pytest.raises(BadRequest, match="Unable to automatically allocate"):
        await service.check_requested_networks("bob", False, "auto")
    await service.check_requested_networks("bob", False, "none")
    assert await service.allocate_for_server("s0", "bob", "host-1", "none", [], "nova") == []
    await service.ensure_external_network("203.0.113.0/24", project_id="admin-project")
    public = (await service.list(ADMIN, "networks", MultiDict([("router:external", "true")]), 10, None))[0][0]
    with pytest.raises(Forbidden):
        await service.check_requested_networks("bob", False, [{"uuid": public["id"]}])
    await service.check_requested_networks("bob", False, "auto")
    # "auto" without a network of its own: the project gets the auto-allocated topology.
    ports = await service.allocate_for_server("s1", "bob", "host-1", "auto", [], "az1")
    assert ports[0]["device_owner"] == "compute:az1"
    nets = (await service.list(bob, "networks", MultiDict([("name", "auto_allocated_network")]), 10, None))[0]
    assert [n["id"] for n in nets] == [ports[0]["network_id"]]
    routers = (await service.list(bob, "routers", MultiDict(), 10, None))[0]
    assert routers[0]["external_gateway_info"]["network_id"] == public["id"]
    # ensure_external_network twice changes nothing.
    await service.ensure_external_network("203.0.113.0/24")
    assert len((await service.list(ADMIN, "networks", MultiDict([("router:external", "true")]), 10, None))[0]) == 1


async def test_segments_dhcp_ports_and_replay(service: NetworkService, tmp_path: Path):
    alice = Ctx("alice")
    nets = [await service.create_network(ADMIN, {"name": f"n{i}"}) for i in range(3)]
    assert [n["provider:segmentation_id"] for n in nets] == [1, 2, 3]
    await service.delete_network(ADMIN, nets[1]["id"])
    assert (await service.create_network(ADMIN, {"name": "again"}))["provider:segmentation_id"] == 2
    net = await service.create_network(alice, {"name": "dhcp"})
    s1 = await service.create_subnet(alice, {"network_id": net["id"], "cidr": "10.5.0.0/24"})
    s2 = await service.create_subnet(alice, {"network_id": net["id"], "cidr": "10.6.0.0/24", "gateway_ip": "10.6.0.254"})
    dhcp = (await service.list(alice, "ports", MultiDict([("device_owner", "network:dhcp")]), 10, None))[0]
    assert len(dhcp) == 1 and dhcp[0]["device_id"] == f"dhcp{net['id']}"
    assert [ip["ip_address"] for ip in dhcp[0]["fixed_ips"]] == ["10.5.0.2", "10.6.0.1"]
    await service.delete_subnet(alice, s2["id"])
    dhcp = await service.show(alice, "ports", dhcp[0]["id"])
    assert [ip["subnet_id"] for ip in dhcp["fixed_ips"]] == [s1["id"]]
    entries = service.engine.log_entries()
    assert replay(entries, tmp_path / "replayed.db", STORES) == service.engine.table_hashes()


async def test_the_external_network_owner_comes_from_identitys_public_method(tmp_path: Path):
    """The owner is asked of identity (a method handed over at start-up), not read from its tables:
    here the identity tables are empty, yet `public` belongs to the project the method names."""
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    asked: list[str] = []

    async def admin_project() -> str:
        asked.append("admin")
        return "the-admin-project"

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            without = NetworkService(engine, None, "node-1", "host-1")
            with pytest.raises(Unavailable):  # nobody to own it, and nothing made
                await without.ensure_external_network("203.0.113.0/24")
            assert await engine.read(store.external_networks) == []
            svc = NetworkService(engine, None, "node-1", "host-1", admin_project=admin_project)
            await svc.ensure_external_network("203.0.113.0/24")
            (public,) = await engine.read(store.external_networks)
            assert (public["name"], public["project_id"], asked) == ("public", "the-admin-project", ["admin"])
            nursery.cancel_scope.cancel()
    finally:
        engine.close()


@dataclass(frozen=True)
class ReaderCtx(Ctx):
    """A project's reader: sees the project, writes nothing."""

    def can_write_project(self, project_id: str) -> bool:
        return False


async def test_a_readers_listing_writes_nothing_and_the_first_write_makes_the_default_group(service: NetworkService):
    reader, member = ReaderCtx("carol"), Ctx("carol")
    before, entries = service.engine.table_hashes(), len(service.engine.log_entries())
    assert (await service.list(reader, "security_groups", MultiDict(), 10, None))[0] == []
    assert (await service.list(reader, "security_group_rules", MultiDict(), 10, None))[0] == []
    assert service.engine.table_hashes() == before and len(service.engine.log_entries()) == entries
    with pytest.raises(Forbidden):
        await service.create_network(reader, {"name": "no"})
    assert service.engine.table_hashes() == before
    # The member's first write (a network) makes the group; the reader then sees it, still writing nothing.
    await service.create_network(member, {"name": "first"})
    after = service.engine.table_hashes()
    (group,) = (await service.list(reader, "security_groups", MultiDict(), 10, None))[0]
    assert group["name"] == "default" and len(group["security_group_rules"]) == 4
    assert service.engine.table_hashes() == after
    await service.create_network(member, {"name": "second"})  # one default group, however many writes
    assert len((await service.list(reader, "security_groups", MultiDict(), 10, None))[0]) == 1


async def test_a_members_listing_of_a_new_project_shows_its_default_group(service: NetworkService):
    """`openstack server create --security-group default` looks the group up before anything else."""
    (group,) = (await service.list(Ctx("erin"), "security_groups", MultiDict({"name": "default"}), 10, None))[0]
    assert group["name"] == "default" and group["project_id"] == "erin"
    assert len((await service.list(Ctx("erin"), "security_groups", MultiDict(), 10, None))[0]) == 1


async def test_rules_given_by_protocol_name_or_number_match_each_other(service: NetworkService):
    dave = Ctx("dave")
    group = await service.create_security_group(dave, {"name": "g"})
    base = {"security_group_id": group["id"], "direction": "ingress", "port_range_min": 22, "port_range_max": 22}
    by_name = await service.create_rule(dave, {**base, "protocol": "tcp"})
    with pytest.raises(Conflict, match="already exists"):
        await service.create_rule(dave, {**base, "protocol": "6"})
    by_number = await service.create_rule(dave, {**base, "protocol": "17"})
    icmp6 = await service.create_rule(dave, {"security_group_id": group["id"], "direction": "ingress",
                                             "ethertype": "IPv6", "protocol": "icmp"})
    for same in ("ipv6-icmp", "58", "icmpv6"):
        with pytest.raises(Conflict, match="already exists"):
            await service.create_rule(dave, {"security_group_id": group["id"], "direction": "ingress",
                                             "ethertype": "IPv6", "protocol": same})

    async def listed(protocol: str) -> list[str]:
        found = (await service.list(dave, "security_group_rules", MultiDict([("protocol", protocol),
                 ("security_group_id", group["id"])]), 10, None))[0]
        return [r["id"] for r in found]

    assert await listed("6") == await listed("tcp") == [by_name["id"]]
    assert await listed("udp") == await listed("17") == [by_number["id"]]
    assert await listed("icmp") == await listed("1") == [icmp6["id"]]
    assert await listed("banana") == []
    assert (by_name["protocol"], by_number["protocol"]) == ("tcp", "17")  # shown as the client spelled them


async def test_ipv6_subnets_are_refused_with_the_reason(service: NetworkService):
    erin = Ctx("erin")
    net = await service.create_network(erin, {"name": "v6"})
    before = service.engine.table_hashes()
    for body in ({"ip_version": 6, "cidr": "2001:db8::/64"},
                 {"ip_version": 6, "cidr": "2001:db8::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}):
        with pytest.raises(BadRequest, match="IPv6 subnets are not supported yet.*router advertisements"):
            await service.create_subnet(erin, {"network_id": net["id"], **body})
    with pytest.raises(BadRequest, match="IPv6 subnets are not supported yet"):
        await service.ensure_external_network("2001:db8:1::/64", project_id="admin-project")
    assert service.engine.table_hashes() == before

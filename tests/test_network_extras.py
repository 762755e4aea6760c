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

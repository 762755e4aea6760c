"""The boot path's data-plane side: binding a port makes that port's objects and nothing else
(no full pass over the host), with the fake driver and against the real host."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from cloudbox.errors import NotFound
from cloudbox.network import store
from cloudbox.network.driver.fake import FakeNetworkDriver
from cloudbox.network.driver.real import LinuxNetworkDriver
from tests.test_network_core import Ctx
from tests.test_network_dataplane import leftover_links, needs_root, running_cloud, sh
from tests.test_network_render import Rows


async def tenant_network(service: Any, cidr: str) -> dict[str, Any]:
    net = await service.create_network(Ctx("alice"), {"name": "n"})
    await service.create_subnet(Ctx("alice"), {"network_id": net["id"], "cidr": cidr, "ip_version": 4})
    return net


async def test_bind_binds_its_port_alone_without_a_pass(tmp_path: Path) -> None:
    driver = FakeNetworkDriver("node-b")
    async with running_cloud(tmp_path, driver, "node-b", "host-1") as (service, plane, nursery):
        net = await tenant_network(service, "10.83.0.0/24")
        await plane.reconcile()
        passes, plans = plane.passes, list(driver.plans)
        (first,) = await service.allocate_for_server("s1", "alice", "host-1", [{"uuid": net["id"]}], ["default"], "nova")
        (second,) = await service.allocate_for_server("s2", "alice", "host-1", [{"uuid": net["id"]}], ["default"], "nova")
        nic = await plane.bind(first["id"])
        # No pass ran for the bind: the driver bound that one port, with a plan read afresh
        # (holding both ports: the ruleset is the host's), and made no other tap.
        assert plane.passes == passes and driver.plans == plans
        assert [ports for ports, _ in driver.bound] == [(first["id"],)]
        bound_plan = driver.bound[0][1]
        assert {p.id for p in bound_plan.ports} >= {first["id"], second["id"]}
        assert driver.taps == {nic.tap}
        assert (await service.read(store.must_get, "ports", first["id"]))["status"] == "ACTIVE"
        assert (await service.read(store.must_get, "ports", second["id"]))["status"] != "ACTIVE"
        # An unbound port stays out of the next bind's plan until bound again.
        await plane.unbind(first["id"])
        await plane.bind(second["id"])
        assert driver.bound[-1][1].port(first["id"]) is None
        with pytest.raises(NotFound):
            await plane.bind("no-such-port")


async def test_binds_waiting_meanwhile_go_in_one_batch(tmp_path: Path) -> None:
    driver = FakeNetworkDriver("node-c")
    async with running_cloud(tmp_path, driver, "node-c", "host-1") as (service, plane, nursery):
        net = await tenant_network(service, "10.85.0.0/24")
        ports = [(await service.allocate_for_server(f"s{i}", "alice", "host-1", [{"uuid": net["id"]}],
                                                    ["default"], "nova"))[0]["id"] for i in range(4)]
        nics: dict[str, Any] = {}
        failures: list[BaseException] = []

        async def bind(port_id: str) -> None:
            try:
                nics[port_id] = await plane.bind(port_id)
            except NotFound as exc:
                failures.append(exc)

        async with trio.open_nursery() as binds:
            async with plane._lock:  # a pass holds the lock: the binds queue up behind it
                for port_id in [*ports, "no-such-port"]:
                    binds.start_soon(bind, port_id)
                await trio.testing.wait_all_tasks_blocked()
        # One driver call bound the four (the unknown port failed alone); each bind got its NIC.
        assert [set(batch) for batch, _ in driver.bound] == [set(ports)]
        assert sorted(nics) == sorted(ports) and all(nics[p].tap == "tap" + p[:11] for p in ports)
        assert len(failures) == 1 and "no-such-port" in str(failures[0])
        for port_id in ports:
            assert (await service.read(store.must_get, "ports", port_id))["status"] == "ACTIVE"
        assert plane._bound == {} and plane._to_bind == set()


@needs_root
def test_real_bind_port_makes_that_ports_tap_only(tmp_path: Path) -> None:
    node_id = f"b{secrets.token_hex(3)}-node"
    driver = LinuxNetworkDriver(node_id)
    rows = Rows(host="h")
    net, subnet = rows.network("10.84.0.0/24")
    a = rows.port(net, subnet, "10.84.0.5")
    first = rows.plan(node_id)
    b = rows.port(net, subnet, "10.84.0.6")
    c = rows.port(net, subnet, "10.84.0.7")
    second = rows.plan(node_id)

    async def scenario() -> None:
        await driver.apply(first.without_ports([]))
        nics = await driver.bind_ports(second, (b,))
        assert nics[b].tap == second.port(b).tap
        with pytest.raises(NotFound):
            await driver.bind_ports(second, ("no-such-port",))

    try:
        trio.run(scenario)
        links = sh("ip", "-o", "link", "show").stdout
        assert second.port(a).tap in links and second.port(b).tap in links
        assert second.port(c).tap not in links  # in the plan, not bound: not made
        ruleset = sh("nft", "list", "ruleset").stdout
        assert second.port(b).tap in ruleset  # its rules are in force
        hosts = (driver.run_dir / "dhcp" / net / "hosts").read_text()
        assert second.port(b).mac in hosts  # its DHCP entry too
    finally:
        trio.run(driver.teardown_all)
    assert leftover_links(node_id) == []

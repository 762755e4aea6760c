"""The boot path's data-plane side: binding a port makes that port's objects and nothing else
(no full pass over the host), with the fake driver and against the real host."""

from __future__ import annotations

import secrets
import threading
import uuid
from pathlib import Path
from typing import Any

import libvirt
import pytest
import trio
import trio.testing

from cloudbox.compute import core, disks
from cloudbox.compute.driver import RUNNING, DomainSpec, NicSpec, confinement
from cloudbox.compute.driver.fake import FakeDriver, forget_host
from cloudbox.compute.driver.real import with_extra_disks
from cloudbox.compute.guests import Guests
from cloudbox.errors import NotFound
from cloudbox.network import store
from cloudbox.network.driver.fake import FakeNetworkDriver
from cloudbox.network.driver.real import LinuxNetworkDriver
from tests.cloud import wait_for_async
from tests.test_compute_service import Images, Ports, server_row
from tests.test_network_core import Ctx
from tests.test_network_dataplane import leftover_links, needs_root, sh
from tests.test_network_reconciler import port_status, running_cloud
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
        # The bind queued its port's ACTIVE, and did not wait for it.
        await wait_for_async(lambda: port_status(service, first["id"], "ACTIVE"), 10, "the bound port to be ACTIVE")
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
            await wait_for_async(lambda: port_status(service, port_id, "ACTIVE"), 10, f"port {port_id} to be ACTIVE")
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


# --- the domain: what the driver no longer works out for itself ------------------------------

async def test_a_fresh_overlays_chain_is_the_one_qemu_img_reads(tmp_path: Path) -> None:
    """spawn states the new overlay's backing chain itself (no qemu-img run per boot): it must be
    exactly what qemu-img reads from the overlay, a backing file under the cached image included."""
    guests = Guests(FakeDriver(), tmp_path / "instances", "h", None, None)  # type: ignore[arg-type]
    lower, base = tmp_path / "lower.qcow2", tmp_path / "base.qcow2"
    await trio.run_process(["qemu-img", "create", "-q", "-f", "qcow2", str(lower), "64M"])
    await trio.run_process(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(lower), "-F", "qcow2", str(base)])
    overlay = tmp_path / "disk"
    await disks.create_overlay(base, "qcow2", overlay, 1)
    stated = ((str(base.resolve()), "qcow2"), *await guests.base_chain(base, "qcow2"))
    assert stated == tuple(await disks.backing_chain(overlay))
    assert await guests.base_chain(base, "qcow2") is await guests.base_chain(base, "qcow2")  # read once


def test_the_domain_xml_the_driver_defines_passes_libvirts_schema() -> None:
    """The driver defines without libvirt's schema check (tens of ms a boot): the renderer's
    output, backing chains and a second disk included, is checked here instead (libvirt's test
    driver validates against the same schema)."""
    spec = DomainSpec(uuid=str(uuid.uuid4()), name="cloudbox-x", vcpus=2, memory_mb=256, root_disk="/d/disk",
                      console_log="/d/console.log", accel="tcg", config_drive="/d/config.iso",
                      nics=(NicSpec(mac="fa:16:3e:00:00:01", tap="tapabc", mtu=1450),),
                      metadata={"server_id": "x", "project_id": "p", "host": "h"}, extra_disks=("/d/rescued",))
    xml = with_extra_disks(core.render_domain_xml(spec), spec.extra_disks)
    xml = confinement.with_backing_chains(xml, {"/d/disk": [("/d/_base/img", "qcow2"), ("/d/_base/lower", "raw")],
                                                "/d/rescued": [("/d/_base/img", "qcow2")]})
    assert xml.count("<backingStore") >= 3
    conn = libvirt.open("test:///default")
    try:
        conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE).undefine()
        with pytest.raises(libvirt.libvirtError, match="(?i)schema|valid"):  # the check does check
            conn.defineXMLFlags(xml.replace("<vcpu", "<vcpus-bogus", 1).replace("</vcpu>", "</vcpus-bogus>", 1),
                                libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    finally:
        conn.close()


async def test_concurrent_builds_are_in_the_drivers_start_at_the_same_time(tmp_path: Path) -> None:
    """Five guests built at once overlap: each waits inside the driver's create until all five
    are there (a lock or a one-at-a-time queue on the way would leave it waiting forever)."""
    count = 5
    image = tmp_path / "image.qcow2"
    await trio.run_process(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"])
    inside: list[str] = []
    all_inside = trio.Event()

    class Meeting(FakeDriver):
        async def create(self, spec: DomainSpec) -> None:
            inside.append(spec.uuid)
            if len(inside) == count:
                all_inside.set()
            await all_inside.wait()
            await super().create(spec)

    driver = Meeting()
    guests = Guests(driver, tmp_path / "instances", "h1", Images(image), Ports())  # type: ignore[arg-type]
    servers = [{**server_row(str(uuid.uuid4()), "h1"), "config_drive": True, "ports": [{"port_id": f"p{i}"}]}
               for i in range(count)]

    async def drive_files() -> dict[str, bytes]:
        return {"openstack/latest/meta_data.json": b"{}"}

    async def record() -> None:
        pass

    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for server in servers:
                    nursery.start_soon(guests.spawn, server, "tcg", drive_files, record)
        assert sorted(inside) == sorted(s["id"] for s in servers)
        assert all([await driver.get_state(s["id"]) == RUNNING for s in servers])
    finally:
        forget_host(driver.uri)


async def test_libvirt_calls_leave_the_default_thread_limiter_to_the_rest_of_the_node(tmp_path: Path) -> None:
    """A guest's start holds its thread for seconds: 40 boots at once in the default limiter (40
    threads) would leave none to the state engine's reads and commits."""
    from cloudbox.compute.driver.real import LibvirtDriver

    driver = LibvirtDriver(f"qemu:///embed?root={tmp_path / 'lv'}", tmp_path / "instances")
    token = trio.lowlevel.current_trio_token()
    inside, release = trio.Event(), threading.Event()

    def slow_call() -> None:
        token.run_sync_soon(inside.set)
        release.wait(60)

    default = trio.to_thread.current_default_thread_limiter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver._run, slow_call, "a start")
        await inside.wait()
        assert default.borrowed_tokens == 0
        release.set()

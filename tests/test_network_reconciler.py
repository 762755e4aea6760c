"""The network reconciler (DataPlane): commits in, passes and binds out, with a fake driver and on the host.

The host test builds a router, a DHCP server and a floating IP from API-level calls and checks them
with packets from a namespace "guest"; the helpers for that come from the data-plane tests.
"""

from __future__ import annotations

import datetime
import secrets
import time
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from cloudbox.cluster import commands as cluster_commands
from cloudbox.errors import NotFound, Unavailable
from cloudbox.network import dataplane, store
from cloudbox.network.dataplane import DataPlane
from cloudbox.network.driver import NetworkDriverError
from cloudbox.network.driver.fake import FakeNetworkDriver
from cloudbox.network.driver.real import LinuxNetworkDriver
from cloudbox.network.hostplan import HostPlan, rendezvous
from cloudbox.network.render import table_name
from cloudbox.network.service import NetworkService
from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine
from tests.cloud import wait_for_async
from tests.test_network_core import Ctx
from tests.test_network_dataplane import dhcp_lease, leftover_links, needs_root, ping, sh


@asynccontextmanager
async def running_cloud(tmp_path: Path, driver: Any, node_id: str, host_name: str, **settings: Any):
    """State engine + network service + data plane, as server.py wires them."""
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    service = NetworkService(engine, None, node_id, host_name)
    settings.setdefault("external_bridge", "cbxext0")
    settings.setdefault("external_interface", "")
    plane = DataPlane(engine, node_id, host_name, SimpleNamespace(**settings), driver, service, interval=3600)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            await nursery.start(service.run)
            yield service, plane, nursery
            nursery.cancel_scope.cancel()
    finally:
        engine.close()


class FlakyDriver(FakeNetworkDriver):
    """Fails the passes it is told to: the node must go on."""

    def __init__(self) -> None:
        super().__init__("flaky")
        self.failures = 1

    async def apply(self, plan: HostPlan) -> None:
        if self.failures:
            self.failures -= 1
            raise NetworkDriverError("bridge on fire")
        await super().apply(plan)


async def test_dataplane_binds_unbinds_and_follows_commits_with_a_fake_driver(tmp_path: Path) -> None:
    driver = FlakyDriver()
    async with running_cloud(tmp_path, driver, "fake-node", "host-1") as (service, plane, nursery):
        await nursery.start(plane.run)  # the first pass fails: logged, and the node starts anyway
        assert plane.last_error and "bridge on fire" in plane.last_error and driver.plans == []
        alice = Ctx("alice")
        net = await service.create_network(alice, {"name": "n"})
        subnet = await service.create_subnet(alice, {"network_id": net["id"], "cidr": "10.80.0.0/24",
                                                     "ip_version": 4})
        # A commit wakes the loop: the next pass sees the network and its DHCP port.
        await wait_for_async(lambda: driver.plan is not None and driver.plan.networks
                             and driver.plan.networks[0].dhcp is not None, 10, "a pass to plan the DHCP server")
        assert plane.last_error is None
        # The ports of the DHCP server and of a router this node runs go ACTIVE after their pass
        # (Tempest waits for a router interface to be ACTIVE before it removes it).
        router = await service.create_router(alice, {"name": "r"})
        interface = await service.add_interface(alice, router["id"], {"subnet_id": subnet["id"]})
        dhcp_port = driver.plan.networks[0].dhcp.port_id
        await plane.reconcile()
        for port_id in (dhcp_port, interface["port_id"]):
            assert (await service.read(store.must_get, "ports", port_id))["status"] == "ACTIVE"
        await service.remove_interface(alice, router["id"], {"subnet_id": subnet["id"]})
        await plane.reconcile()  # its port is gone meanwhile: nothing to mark, no error
        (port,) = await service.allocate_for_server("srv", "alice", "host-1", [{"uuid": net["id"]}], ["default"], "nova")
        nic = await plane.bind(port["id"])
        assert (nic.tap, nic.mac, nic.mtu) == ("tap" + port["id"][:11], port["mac_address"], 1450)
        assert nic.tap in driver.taps
        # Its ACTIVE was queued, not waited for: what the caller proposes next commits after it.
        await service.create_network(alice, {"name": "after the bind"})
        assert (await service.read(store.must_get, "ports", port["id"]))["status"] == "ACTIVE"
        passes = plane.passes
        await plane.unbind(port["id"])
        assert nic.tap not in driver.taps
        assert (await service.read(store.must_get, "ports", port["id"]))["status"] == "DOWN"
        await plane.reconcile()
        assert plane.passes > passes and driver.plan.port(port["id"]) is None  # still bound in the rows: left out
        with pytest.raises(NotFound):
            await plane.bind("no-such-port")


async def test_a_pass_waits_for_the_binds_of_builds_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataplane, "BIND_QUIET", 0.01)
    monkeypatch.setattr(dataplane, "BIND_WAIT_MAX", 3600.0)
    driver = FakeNetworkDriver("fake-node")
    async with running_cloud(tmp_path, driver, "fake-node", "host-1") as (service, plane, nursery):
        await nursery.start(plane.run)
        alice = Ctx("alice")
        net = await network_with_subnet(service, "10.81.0.0/24")
        await wait_for_async(lambda: driver.plan.networks, 10, "a pass to plan the network")
        # A build on another host: no bind here to wait for.
        await service.allocate_for_server("elsewhere", "alice", "host-2", [{"uuid": net["id"]}], ["default"], "nova")
        # A build here: its port's bind comes next, and a pass (woken by a commit) waits for it.
        (port,) = await service.allocate_for_server("srv", "alice", "host-1", [{"uuid": net["id"]}], ["default"],
                                                    "nova")
        await wait_for_async(lambda: plane.passes_deferred == 1, 10, "the loop's pass to wait for the bind")
        passes = plane.passes
        await service.create_network(alice, {"name": "other"})
        assert plane.passes == passes and plane.passes_deferred == 1
        await plane.bind(port["id"])
        plane.started([port["id"]])  # its guest's start ended (compute says so)
        await wait_for_async(lambda: plane.passes > passes and len(driver.plan.networks) == 1
                             and driver.plan.port(port["id"]) is not None, 10, "the pass after the bind")


async def test_a_pass_waits_for_the_guests_starting_on_ports_bound_here(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataplane, "BIND_QUIET", 0.01)
    monkeypatch.setattr(dataplane, "GUEST_WAIT_MAX", 3600.0)
    driver = FakeNetworkDriver("fake-node")
    async with running_cloud(tmp_path, driver, "fake-node", "host-1") as (service, plane, nursery):
        await nursery.start(plane.run)
        net = await network_with_subnet(service, "10.83.0.0/24")
        await wait_for_async(lambda: driver.plan.networks, 10, "a pass to plan the network")
        (port,) = await service.allocate_for_server("srv", "alice", "host-1", [{"uuid": net["id"]}], ["default"],
                                                    "nova")
        await plane.bind(port["id"])  # its guest starts now: the pass its commits woke waits for that
        await wait_for_async(lambda: plane.passes_deferred == 1, 10, "the loop's pass to wait for the guest")
        passes = plane.passes
        await service.create_network(Ctx("alice"), {"name": "other"})
        await trio.testing.wait_all_tasks_blocked()  # the waiting pass had its looks meanwhile
        assert plane.passes == passes
        plane.started([port["id"]])
        await wait_for_async(lambda: plane.passes > passes and len(driver.plan.networks) == 1, 10,
                             "the pass after the guest started")


async def test_a_bound_ports_status_that_could_not_be_queued_is_set_by_the_next_pass(tmp_path: Path) -> None:
    driver = FakeNetworkDriver("fake-node")
    async with running_cloud(tmp_path, driver, "fake-node", "host-1") as (service, plane, nursery):
        await nursery.start(plane.run)
        net = await network_with_subnet(service, "10.82.0.0/24")
        (port,) = await service.allocate_for_server("srv", "alice", "host-1", [{"uuid": net["id"]}], ["default"],
                                                    "nova")

        def full(port_ids: list[str]) -> list[Any]:
            raise Unavailable("the state engine cannot take a proposal now")

        service.set_ports_active_nowait = full
        nic = await plane.bind(port["id"])  # bound all the same: the guest may start
        assert nic.tap in driver.taps
        assert (await service.read(store.must_get, "ports", port["id"]))["status"] == "DOWN"
        del service.set_ports_active_nowait
        await plane.reconcile()
        assert (await service.read(store.must_get, "ports", port["id"]))["status"] == "ACTIVE"


async def network_with_subnet(service: NetworkService, cidr: str) -> dict[str, Any]:
    """Alice's network ``n`` with one IPv4 subnet."""
    net = await service.create_network(Ctx("alice"), {"name": "n"})
    await service.create_subnet(Ctx("alice"), {"network_id": net["id"], "cidr": cidr, "ip_version": 4})
    return net


async def port_status(service: NetworkService, port_id: str, status: str) -> bool:
    return (await service.read(store.must_get, "ports", port_id))["status"] == status


def member_row(node_id: str, name: str, tunnel_ip: str, heartbeat: float) -> dict[str, Any]:
    at = datetime.datetime.fromtimestamp(heartbeat, datetime.timezone.utc).isoformat()
    return {"id": node_id, "name": name, "api_url": f"https://{tunnel_ip}:8443",
            "peer_url": f"https://{tunnel_ip}:2380", "tunnel_ip": tunnel_ip, "etcd_member": False, "joined_at": at, "heartbeat_at": at, "capacity": {}}


async def test_dataplane_moves_dhcp_when_a_peer_joins_and_when_it_goes_down(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataplane, "LIVENESS_CHECK", 0.05)
    driver = FakeNetworkDriver("node-a")
    async with running_cloud(tmp_path, driver, "node-a", "host-a") as (service, plane, nursery):
        up = {"node-a"}  # the cluster's answer to "which nodes are up", as the test sets it

        async def up_nodes() -> frozenset[str]:
            return frozenset(up)

        plane.up_nodes = up_nodes
        await nursery.start(plane.run)
        alice = Ctx("alice")
        net = await service.create_network(alice, {"name": "n"})
        await service.create_subnet(alice, {"network_id": net["id"], "cidr": "10.83.0.0/24", "ip_version": 4})
        await wait_for_async(lambda: driver.plan.networks and driver.plan.networks[0].dhcp is not None, 10,
                             "a pass to plan the DHCP server here")
        # A peer that rendezvous hashing prefers for this network's DHCP server joins.
        peer = next(f"node-b{i}" for i in range(100) if rendezvous(net["id"], ["node-a", f"node-b{i}"]) != "node-a")
        up.add(peer)
        for node_id, name, address in (("node-a", "host-a", "192.0.2.1"), (peer, "host-b", "192.0.2.2")):
            await plane.engine.propose(cluster_commands.RegisterNode(member_row(node_id, name, address, time.time())))
        # no network command: the liveness check sees it
        await wait_for_async(lambda: len(driver.plan.members) == 2, 10, "a pass to see both members")
        assert driver.plan.networks == ()  # nothing of the network is needed here any more
        assert driver.tunnels == {}
        # The peer goes down (the cluster says so): the next check brings the DHCP server back here.
        up.discard(peer)
        await wait_for_async(lambda: driver.plan.networks and driver.plan.networks[0].dhcp is not None, 10,
                             "the DHCP server to come back here")
        assert not next(m for m in driver.plan.members if m.id == peer).up


class Listeners:
    """Stands for MetadataListeners: records what sync was told."""

    def __init__(self) -> None:
        self.wanted: dict[str, str] = {}

    async def sync(self, wanted: dict[str, str]) -> None:
        self.wanted = dict(wanted)


@needs_root
async def test_dataplane_on_the_host_from_real_commands(tmp_path: Path) -> None:
    """The whole path: API-level calls -> commands -> tables -> plan -> host, checked with packets."""
    tag = secrets.token_hex(3)
    node_id, host_name, ext_bridge = f"d{tag}-node", f"host-{tag}", f"cbxe{tag}"
    ext_prefix = f"172.30.{secrets.randbelow(250) + 1}"
    driver = LinuxNetworkDriver(node_id)
    listeners = Listeners()
    guest = f"cbxg-{tag}"
    try:
        async with running_cloud(tmp_path, driver, node_id, host_name, external_bridge=ext_bridge) as \
                (service, plane, nursery):
            plane.metadata = listeners
            await service.ensure_external_network(f"{ext_prefix}.0/24", project_id="admin-project")
            await nursery.start(plane.run)
            alice = Ctx("alice")
            net = await service.create_network(alice, {"name": "n"})
            subnet = await service.create_subnet(alice, {"network_id": net["id"], "cidr": "10.81.0.0/24",
                                                         "ip_version": 4})
            public = (await service.read(store.rows, "SELECT id FROM networks WHERE external = 1"))[0]
            router = await service.create_router(alice, {"name": "r", "external_gateway_info":
                                                         {"network_id": public["id"]}})
            await service.add_interface(alice, router["id"], {"subnet_id": subnet["id"]})
            (port,) = await service.allocate_for_server("srv", "alice", host_name, [{"uuid": net["id"]}],
                                                        ["default"], "nova")
            group = port["security_groups"][0]
            await service.update_port(alice, port["id"], {"extra_dhcp_opts": [  # served to this guest alone
                {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}, {"opt_name": "66", "opt_value": "10.81.0.9"}]})
            await service.create_rule(alice, {"security_group_id": group, "direction": "ingress",
                                              "protocol": "icmp", "ethertype": "IPv4"})
            # The guest: a namespace whose veth is named like the port's tap (bind adopts it).
            sh("ip", "netns", "add", guest)
            tap = "tap" + port["id"][:11]
            sh("ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", guest)
            sh("ip", "-n", guest, "link", "set", "eth0", "address", port["mac_address"], "up")
            nic = await plane.bind(port["id"])
            assert nic.tap == tap
            plane.started([port["id"]])  # the "guest" runs already: the loop's passes need not wait
            # Its ACTIVE is queued by the bind, not waited for.
            await wait_for_async(lambda: port_status(service, port["id"], "ACTIVE"), 10, "the port to be ACTIVE")
            assert listeners.wanted == {f"qdhcp-{net['id']}": net["id"]}

            lease = await trio.to_thread.run_sync(dhcp_lease, guest, tmp_path)
            address = port["fixed_ips"][0]["ip_address"]
            assert f"ip={address} " in lease and "router=10.81.0.1" in lease
            assert "bootfile=pxelinux.0 tftp=10.81.0.9" in lease, lease
            sh("ip", "-n", guest, "addr", "add", f"{address}/24", "dev", "eth0")
            sh("ip", "-n", guest, "route", "add", "default", "via", "10.81.0.1")
            # Out through the router. The first packets may meet a pass still running (the port's ACTIVE
            # commit starts one): a guest retries, and so does this check (CI once lost a lone ping here).
            await wait_for_async(lambda: trio.to_thread.run_sync(ping, guest, f"{ext_prefix}.1"), 15,
                                 lambda: "ping out through the router; " + namespaces_seen(guest, router["id"]))

            fip = await service.create_floatingip(alice, {"floating_network_id": public["id"], "port_id": port["id"]})
            floating = fip["floating_ip_address"]
            await wait_for_async(lambda: trio.to_thread.run_sync(
                lambda: sh("ping", "-c", "1", "-W", "1", floating, check=False).returncode == 0), 10,
                "ping through the floating IP")

            await plane.unbind(port["id"])
            assert tap not in sh("ip", "-o", "link", "show").stdout
            assert (await service.read(store.must_get, "ports", port["id"]))["status"] == "DOWN"
    finally:
        sh("ip", "netns", "del", guest, check=False)
        await driver.teardown_all()
    assert leftover_links(node_id) == []
    assert table_name(node_id) not in sh("nft", "list", "tables").stdout
    assert not any(net["id"] in ns or router["id"] in ns for ns in sh("ip", "netns", "list").stdout.split())


def namespaces_seen(guest: str, router_id: str) -> str:
    """What the guest and the router see, for a failure message."""
    commands = [("ip", "-n", guest, "neigh"), ("ip", "-n", f"qrouter-{router_id}", "-o", "addr"),
                ("ip", "-n", f"qrouter-{router_id}", "route"), ("ip", "-n", f"qrouter-{router_id}", "neigh")]
    return "; ".join(" ".join(c[3:]) + ": " + sh(*c, check=False).stdout.strip() for c in commands)

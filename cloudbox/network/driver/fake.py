"""A network driver that touches nothing: it records plans and hands out NicSpecs."""

from __future__ import annotations

from cloudbox.errors import Conflict
from cloudbox.network.driver import nic_spec
from cloudbox.network.hostplan import HostNetworks, HostPlan, PortPlan, VxlanPlan
from cloudbox.nics import NicSpec


# Plans kept for tests to look back on: a node on the fake driver passes on every network commit,
# and keeping them all grew it by 32 KiB per server booted.
KEPT_PLANS = 16


class FakeNetworkDriver:
    def __init__(self, node_id: str = "fake") -> None:
        self.node_id = node_id
        self.plans: list[HostPlan] = []
        self.taps: set[str] = set()  # the taps that would exist on the host
        self.tunnels: dict[str, VxlanPlan] = {}  # the VXLAN links that would exist, by name
        self.networks = HostNetworks()  # what host_networks() reports (tests set it)
        self.bound: list[tuple[tuple[str, ...], HostPlan]] = []  # bind_ports' calls (the last KEPT_PLANS)

    @property
    def plan(self) -> HostPlan | None:
        return self.plans[-1] if self.plans else None

    async def apply(self, plan: HostPlan) -> None:
        self.plans.append(plan)
        del self.plans[:-KEPT_PLANS]
        self.taps = {p.tap for p in plan.ports}
        self.tunnels = {n.vxlan.name: n.vxlan for n in plan.networks if n.vxlan is not None}

    async def ensure_port(self, port: PortPlan) -> NicSpec:
        if self.plan is None or self.plan.port(port.id) != port:
            raise Conflict(f"port {port.id} is not in the applied plan")
        self.taps.add(port.tap)
        return nic_spec(port)

    async def bind_ports(self, plan: HostPlan, port_ids: tuple[str, ...]) -> dict[str, NicSpec]:
        ports = [plan.port(port_id) for port_id in port_ids]
        if None in ports:
            raise Conflict(f"ports {port_ids} are not all in the plan")
        self.bound.append((port_ids, plan))
        del self.bound[:-KEPT_PLANS]
        self.taps.update(port.tap for port in ports if port is not None)
        return {port.id: nic_spec(port) for port in ports if port is not None}

    async def remove_port(self, tap: str) -> None:
        self.taps.discard(tap)

    async def teardown_all(self) -> None:
        await self.apply(HostPlan(node_id=self.node_id, host=""))

    async def host_networks(self) -> HostNetworks:
        return self.networks

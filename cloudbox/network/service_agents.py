"""The agents API (Neutron's ``agent`` and ``dhcp_agent_scheduler`` extensions) as callers see it.

Agents are the cloud's administrators' (Neutron's policy): others list none and find none.
Each node has one DHCP server per network at most, so putting a network on an agent moves its
DHCP server there (while that node is up), and taking it off its agent leaves it without one
until an admin puts it on an agent again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Collection

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.identity.core import require
from cloudbox.network import agents, core, reads, store
from cloudbox.network import commands as c

if TYPE_CHECKING:
    from cloudbox.network.service import NetworkService

Row = dict[str, Any]
UpNodes = Callable[[], Awaitable[Collection[str] | None]]

FILTERS = ("id", "agent_type", "binary", "host", "topic", "alive", "admin_state_up", "availability_zone")


class Agents:
    def __init__(self, network: NetworkService, up_nodes: UpNodes | None) -> None:
        self.network = network
        self.up_nodes = up_nodes  # the cluster's answer to "which nodes are up" (None: all are)

    async def _all(self, ctx: Any) -> list[Row]:
        if not (ctx.is_cloud_admin or ctx.is_cloud_reader):
            return []
        up = await self.up_nodes() if self.up_nodes is not None else None
        return await self.network.read(agents.all_agents, self.network.node_id, self.network.host, up)

    async def _one(self, ctx: Any, agent_id: str) -> Row:
        found = next((a for a in await self._all(ctx) if a["id"] == agent_id), None)
        if found is None:
            raise NotFound(f"Agent {agent_id} could not be found.")
        return found

    async def list_agents(self, ctx: Any, args: Any, limit: int, marker: str | None) -> tuple[list[Row], str | None]:
        """One page of agents matching the filters; agent_type compares without case, as Neutron's
        (MySQL's) does: Tempest asks for "DHCP Agent"."""
        found = await self._all(ctx)
        for key in FILTERS:
            wanted = args.getlist(key)
            if not wanted:
                continue
            if key in ("alive", "admin_state_up"):
                values = {core.bool_value(v, key) for v in wanted}
                found = [a for a in found if a[key] in values]
            else:
                values = {v.lower() for v in wanted}
                found = [a for a in found if str(a[key]).lower() in values]
        if marker is not None:
            ids = [a["id"] for a in found]
            if marker not in ids:
                raise BadRequest(f"Marker {marker[:100]} could not be found.")
            found = found[ids.index(marker) + 1:]
        fields = [f for v in args.getlist("fields") for f in v.split(",") if f]
        page = [core.select_fields(agents.public(a), fields) for a in found[:limit]]
        return page, (found[limit - 1]["id"] if len(found) > limit else None)

    async def show_agent(self, ctx: Any, agent_id: str) -> Row:
        return agents.public(await self._one(ctx, agent_id))

    # --- DHCP scheduling -----------------------------------------------------------------------------
    async def _dhcp_agent(self, ctx: Any, agent_id: str) -> Row:
        agent = await self._one(ctx, agent_id)
        if agent["agent_type"] != agents.DHCP:
            raise BadRequest(f"Agent {agent_id} is a {agent['agent_type']}, not a DHCP agent.")
        return agent

    async def dhcp_networks(self, ctx: Any, agent_id: str) -> list[Row]:
        """The networks whose DHCP server the agent's node runs."""
        agent = await self._dhcp_agent(ctx, agent_id)
        rows = [await self.network.read(store.must_get, "networks", n) for n in agent["_networks"]]
        return await self.network.read(reads.render_rows, "networks", rows, True)

    async def network_dhcp_agents(self, ctx: Any, network_id: str) -> list[Row]:
        require(ctx.is_cloud_admin or ctx.is_cloud_reader, "get_dhcp-agents")
        await self.network._visible(ctx, "networks", network_id)
        return [agents.public(a) for a in await self._all(ctx) if network_id in a["_networks"]]

    async def add_dhcp_network(self, ctx: Any, agent_id: str, network_id: str) -> None:
        require(ctx.is_cloud_admin, "create_dhcp-network")
        agent = await self._dhcp_agent(ctx, agent_id)
        await self.network._visible(ctx, "networks", network_id)
        if network_id in agent["_networks"]:
            raise Conflict(f"The network {network_id} has been already hosted by the DHCP Agent {agent_id}.")
        await self.network.propose(c.PinDhcp(network_id, agent["_node"]))

    async def remove_dhcp_network(self, ctx: Any, agent_id: str, network_id: str) -> None:
        require(ctx.is_cloud_admin, "delete_dhcp-network")
        agent = await self._dhcp_agent(ctx, agent_id)
        await self.network._visible(ctx, "networks", network_id)
        if network_id not in agent["_networks"]:
            raise Conflict(f"The network {network_id} is not hosted by the DHCP agent {agent_id}.")
        await self.network.propose(c.PinDhcp(network_id, ""))

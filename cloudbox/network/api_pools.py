"""Neutron v2.0 routes of subnet pools, address scopes, metering labels and rules, and agents
(with the DHCP agent scheduler's)."""

from __future__ import annotations

from typing import Any, Callable

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.network import models
from cloudbox.network.service import NetworkService


V2 = "/v2.0"
DHCP_NETWORK = {"type": "object", "properties": {"network_id": {"type": "string", "maxLength": 64}},
                "required": ["network_id"], "additionalProperties": False}


def routes(svc: NetworkService, crud: Callable[..., list[Route]], next_links: Callable[..., Any]) -> list[Route]:
    p, a = svc.pools, svc.agents

    async def list_agents(call: Call) -> Any:
        limit, marker = call.page()
        found, next_marker = await a.list_agents(call.auth, call.query, limit, marker)
        links = next_links(call, "agents", next_marker, limit)
        return {"agents": found, **({"agents_links": links} if links else {})}

    async def show_agent(call: Call, id: str) -> Any:
        return {"agent": await a.show_agent(call.auth, id)}

    async def dhcp_networks(call: Call, id: str) -> Any:
        return {"networks": await a.dhcp_networks(call.auth, id)}

    async def add_dhcp_network(call: Call, id: str) -> Reply:
        await a.add_dhcp_network(call.auth, id, call.body["network_id"])
        return Reply(None, 201)

    async def remove_dhcp_network(call: Call, id: str, network_id: str) -> Reply:
        await a.remove_dhcp_network(call.auth, id, network_id)
        return Reply(None, 204)

    async def network_dhcp_agents(call: Call, id: str) -> Any:
        return {"agents": await a.network_dhcp_agents(call.auth, id)}

    agent = f"{V2}/agents/{{id}}"
    return [
        Route("GET", f"{V2}/agents", list_agents, query=("limit", "marker", "fields"),
              summary="The agents of the cloud's nodes (DHCP, L3, metadata)"),
        Route("GET", agent, show_agent, query=("fields",), summary="One agent"),
        Route("GET", agent + "/dhcp-networks", dhcp_networks, summary="The networks a DHCP agent serves"),
        Route("POST", agent + "/dhcp-networks", add_dhcp_network, body=DHCP_NETWORK, status=201,
              summary="Move a network's DHCP server to this agent"),
        Route("DELETE", agent + "/dhcp-networks/{network_id}", remove_dhcp_network, status=204,
              summary="Take a network off its DHCP agent (it has no DHCP server until put on one)"),
        Route("GET", f"{V2}/networks/{{id}}/dhcp-agents", network_dhcp_agents,
              summary="The DHCP agent serving a network"),
        *crud("subnetpools", p.create_subnetpool, p.update_subnetpool, p.delete_subnetpool, models.CREATE_SUBNETPOOL,
              models.UPDATE_SUBNETPOOL),
        *crud("address-scopes", p.create_address_scope, p.update_address_scope, p.delete_address_scope,
              models.CREATE_ADDRESS_SCOPE, models.UPDATE_ADDRESS_SCOPE),
        *crud("metering/metering-labels", p.create_metering_label, None, p.delete_metering_label,
              models.CREATE_METERING_LABEL, None),
        *crud("metering/metering-label-rules", p.create_metering_label_rule, None, p.delete_metering_label_rule,
              models.CREATE_METERING_LABEL_RULE, None),
    ]

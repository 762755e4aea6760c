"""Neutron's agents, as cloudbox has them: every node runs a DHCP, an L3 and a metadata part
(the data plane), so the agents list shows three agents per cluster member, alive while the
cluster counts the member up.  What each DHCP and L3 agent hosts is the placement the data
planes follow (hostplan.Placement), so the list tells where each network's DHCP server and each
router run.

Read inside ``engine.read`` (plain functions of a database handle); ids are stable uuid5s of
the node and the part.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any, Collection

from cloudbox.network import core
from cloudbox.network.hostplan import Member, cluster_members, dhcp_pins, placement

DHCP, L3, METADATA = "DHCP agent", "L3 agent", "Metadata agent"
# agent_type -> (binary, topic), as Neutron names them
KINDS = {DHCP: ("neutron-dhcp-agent", "dhcp_agent"), L3: ("neutron-l3-agent", "l3_agent"),
         METADATA: ("neutron-metadata-agent", "N/A")}
NAMESPACE = uuid.UUID("6f1c0d55-93e5-4d8e-9a1b-2f3c7cbd0a11")


def agent_id(node_id: str, agent_type: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{node_id}/{KINDS[agent_type][0]}"))


def _neutron_time(text: str | None) -> str | None:
    """Neutron shows an agent's times as 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    if not text:
        return None
    try:
        at = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _times(db: Any) -> dict[str, tuple[str | None, str | None]]:
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cluster_nodes'").fetchall():
        return {}
    return {r[0]: (_neutron_time(r[1]), _neutron_time(r[2]))
            for r in db.execute("SELECT id, joined_at, heartbeat_at FROM cluster_nodes").fetchall()}


def all_agents(db: Any, node_id: str, host: str, up: Collection[str] | None) -> list[dict[str, Any]]:
    """Every agent of the cloud, with what it hosts: each a Neutron view plus the private keys
    ``_node`` (its node id), ``_networks`` and ``_routers`` (the ids it hosts)."""
    members = cluster_members(db, up) or (Member(id=node_id, name=host, tunnel_ip="", up=True),)
    where = placement(members, node_id, dhcp_pins(db))
    pins = where.dhcp_pins
    with_dhcp = [r[0] for r in db.execute("SELECT DISTINCT network_id FROM subnets WHERE enable_dhcp = 1 "
                                          "ORDER BY network_id").fetchall()]
    routers = [r[0] for r in db.execute("SELECT id FROM routers ORDER BY id").fetchall()]
    times = _times(db)
    out = []
    for member in sorted(members, key=lambda m: m.name):
        networks = sorted({n for n in with_dhcp if where.dhcp_owner(n) == member.id}
                          | {n for n, pin in pins.items() if pin == member.id and where.dhcp_owner(n) == member.id})
        hosted_routers = [r for r in routers if where.owner(r) == member.id]
        created, heartbeat = times.get(member.id, (None, None))
        for kind, (binary, topic) in KINDS.items():
            configurations: dict[str, Any] = {}
            if kind == DHCP:
                configurations = {"networks": len(networks), "dhcp_driver": "dnsmasq", "dhcp_lease_duration": 86400}
            elif kind == L3:
                configurations = {"routers": len(hosted_routers), "agent_mode": "legacy"}
            out.append({
                "id": agent_id(member.id, kind), "agent_type": kind, "binary": binary, "topic": topic,
                "host": member.name, "admin_state_up": True, "alive": member.up, "description": None,
                "availability_zone": core.DEFAULT_AZ if kind in (DHCP, L3) else None,
                "configurations": configurations, "created_at": created, "started_at": created,
                "heartbeat_timestamp": heartbeat, "resources_synced": None, "resource_versions": {},
                "_node": member.id, "_networks": networks if kind == DHCP else [],
                "_routers": hosted_routers if kind == L3 else [],
            })
    return out


def public(agent: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in agent.items() if not k.startswith("_")}

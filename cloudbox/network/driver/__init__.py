"""The contract between the data plane and the host: apply a HostPlan.

``real.py`` drives Linux (pyroute2 for links, namespaces, addresses and routes;
``nft -f`` for rulesets; dnsmasq per DHCP namespace); ``fake.py`` records plans
for unit tests.  Rules every driver keeps:

- ``apply(plan)`` is a full, idempotent sync: it creates what is missing, fixes
  what drifted, adopts what exists (a restart of cloudbox disturbs no traffic),
  replaces each nft table in one transaction, and removes what this node made
  that the plan no longer wants.  Running it twice changes nothing.
- ``ensure_port(port)`` returns only once the port's tap exists, is plugged into
  its bridge and its rules are in force; the port must be in the last applied plan.
- ``bind_ports(plan, port_ids)`` does the same for some ports of a newer plan without a full
  sync: the ruleset of ``plan``, the ports' bridges and DHCP entries, their taps; nothing else.
- ``host_networks()`` reports the host's own addresses and the subnets of the interfaces
  cloudbox did not make (its LANs): what guests may not reach (``hostplan.guarded_destinations``).
- Only objects marked as this node's are ever removed: links carrying the ifalias
  ``cloudbox:<node id>:<kind>:<object id>``, namespaces whose ``lo`` carries it,
  the nft tables named after the node, and dnsmasq run directories of the node.
"""

from __future__ import annotations

from typing import Protocol

from cloudbox.errors import CloudboxError
from cloudbox.network.hostplan import HostNetworks, HostPlan, PortPlan
from cloudbox.nics import NicSpec


class NetworkDriverError(CloudboxError):
    """Some objects of a pass could not be made to match; the rest were."""


class NetworkDriver(Protocol):
    async def apply(self, plan: HostPlan) -> None: ...

    async def ensure_port(self, port: PortPlan) -> NicSpec: ...

    async def bind_ports(self, plan: HostPlan, port_ids: tuple[str, ...]) -> dict[str, NicSpec]: ...

    async def remove_port(self, tap: str) -> None: ...

    async def teardown_all(self) -> None: ...

    async def host_networks(self) -> HostNetworks: ...


def alias(node_id: str, kind: str, object_id: str) -> str:
    """The mark cloudbox leaves on what it makes (links' ifalias)."""
    return f"cloudbox:{node_id}:{kind}:{object_id}"


def nic_spec(port: PortPlan) -> NicSpec:
    return NicSpec(mac=port.mac, tap=port.tap, mtu=port.mtu)

"""The replicated commands of the network service.

Ids, MAC addresses and timestamps are decided by the service before proposing;
apply checks the state (names, overlaps, addresses in use, quotas) and writes.
Addresses and VXLAN segments are chosen in apply (lowest free), which is
deterministic.  ``default_sg`` fields carry the ids of a project's ``default``
security group and its four rules, made by apply if the project has none yet:
{"id": group id, "rule_ids": [4 ids]}.
"""

from __future__ import annotations

import json
from typing import Any

from cloudbox.state.commands import Command, command, encode


# --- networks and subnets -------------------------------------------------------------------
@command("network.network.create")
class CreateNetwork(Command):
    row: dict[str, Any]  # every column; segmentation_id None on vxlan: the lowest free one
    default_sg: dict[str, Any] | None = None  # a project's first write makes its default group


@command("network.network.update")
class UpdateNetwork(Command):
    id: str
    changes: dict[str, Any]
    at: str


@command("network.network.delete")
class DeleteNetwork(Command):
    id: str


@command("network.subnet.create")
class CreateSubnet(Command):
    row: dict[str, Any]
    dhcp_port_id: str  # used when the network has no DHCP port yet
    dhcp_mac: str
    at: str
    # From a subnet pool: {"subnetpool_id", "prefixlen", "request"}; the CIDR (and with it the rest
    # of the row, from the subnet fields of "request") is chosen in apply unless the row has one.
    pool: dict[str, Any] | None = None


@command("network.subnet.update")
class UpdateSubnet(Command):
    id: str
    changes: dict[str, Any]
    dhcp_port_id: str
    dhcp_mac: str
    at: str


@command("network.subnet.delete")
class DeleteSubnet(Command):
    id: str
    at: str


@command("network.bulk.create")
class BulkCreate(Command):
    """Several networks, subnets, ports or security group rules made in one transaction: all, or none."""

    commands: tuple[dict[str, Any], ...]  # each {"type", "args"} of a CreateNetwork, -Subnet, -Port or -SecurityGroupRule


def bulk_item(cmd: Command) -> dict[str, Any]:
    """A create command as an item of BulkCreate (its encoded form, as the log holds it)."""
    return json.loads(encode(cmd))


# --- ports ----------------------------------------------------------------------------------------
@command("network.port.create")
class CreatePort(Command):
    row: dict[str, Any]  # fixed_ips column filled by apply
    fixed_ips: tuple[dict[str, str], ...] | None  # None: one address of the network chosen by apply
    default_sg: dict[str, Any] | None  # given when the port gets the project's default group
    at: str


@command("network.port.update")
class UpdatePort(Command):
    id: str
    changes: dict[str, Any]
    fixed_ips: tuple[dict[str, str], ...] | None  # None: unchanged
    at: str


@command("network.port.delete")
class DeletePort(Command):
    id: str
    at: str


@command("network.port.status")
class SetPortStatus(Command):
    id: str
    status: str
    at: str


# --- routers and floating IPs ---------------------------------------------------------------------
@command("network.router.create")
class CreateRouter(Command):
    row: dict[str, Any]
    gateway: dict[str, Any] | None  # {network_id, enable_snat, external_fixed_ips, port_id, mac}
    at: str


@command("network.router.update")
class UpdateRouter(Command):
    id: str
    changes: dict[str, Any]  # name, description, admin_state_up, routes
    set_gateway: bool  # whether ``gateway`` replaces the router's gateway
    gateway: dict[str, Any] | None
    at: str


@command("network.router.routes")
class EditRoutes(Command):
    id: str
    add: tuple[dict[str, str], ...]
    remove: tuple[dict[str, str], ...]
    at: str


@command("network.router.delete")
class DeleteRouter(Command):
    id: str
    at: str


@command("network.router.interface.add")
class AddRouterInterface(Command):
    router_id: str
    subnet_id: str | None
    port_id: str | None
    new_port_id: str  # the interface port made for a subnet
    mac: str
    at: str


@command("network.router.interface.remove")
class RemoveRouterInterface(Command):
    router_id: str
    subnet_id: str | None
    port_id: str | None
    at: str


@command("network.floatingip.create")
class CreateFloatingIp(Command):
    row: dict[str, Any]  # floating_ip_address may be None (lowest free), port_id/fixed_ip_address may be set
    subnet_id: str | None
    port_mac: str
    at: str


@command("network.floatingip.update")
class UpdateFloatingIp(Command):
    id: str
    changes: dict[str, Any]  # description, port_id, fixed_ip_address
    at: str


@command("network.floatingip.delete")
class DeleteFloatingIp(Command):
    id: str


# --- security groups -------------------------------------------------------------------------------
@command("network.secgroup.create")
class CreateSecurityGroup(Command):
    row: dict[str, Any]
    rule_ids: tuple[str, ...]  # of its two egress rules
    default_sg: dict[str, Any]
    at: str


@command("network.secgroup.default")
class EnsureDefaultSecurityGroup(Command):
    project_id: str
    default_sg: dict[str, Any]
    at: str


@command("network.secgroup.update")
class UpdateSecurityGroup(Command):
    id: str
    changes: dict[str, Any]
    at: str


@command("network.secgroup.delete")
class DeleteSecurityGroup(Command):
    id: str
    by_admin: bool


@command("network.secgroup.rule.create")
class CreateSecurityGroupRule(Command):
    row: dict[str, Any]
    at: str


@command("network.secgroup.rule.delete")
class DeleteSecurityGroupRule(Command):
    id: str
    at: str


# --- tags and quotas -------------------------------------------------------------------------------------
@command("network.tags")
class EditTags(Command):
    table: str
    id: str
    op: str  # replace | add | remove | clear
    tags: tuple[str, ...]
    at: str


@command("network.quota.set")
class SetQuota(Command):
    project_id: str
    limits: dict[str, int]
    check_usage: bool


@command("network.quota.delete")
class DeleteQuota(Command):
    project_id: str


# --- for compute ------------------------------------------------------------------------------------------
@command("network.server.allocate")
class AllocateServerPorts(Command):
    """Make or claim the ports of a server, in order; a server that has ports already keeps them."""

    server_id: str
    project_id: str
    host: str
    device_owner: str
    ports: tuple[dict[str, Any], ...]  # {"port_id"} to claim, or {"new": port row, "fixed_ips": [...] | None}
    default_sg: dict[str, Any] | None
    at: str


@command("network.server.deallocate")
class DeallocateServerPorts(Command):
    server_id: str
    at: str


@command("network.auto_allocate")
class AutoAllocateTopology(Command):
    """The project's network, subnet and router with a gateway, unless it has them already."""

    project_id: str
    external_network_id: str
    network: dict[str, Any]
    subnet: dict[str, Any]
    router: dict[str, Any]
    ids: dict[str, str]  # dhcp_port, dhcp_mac, gateway_port, gateway_mac, interface_port, interface_mac
    at: str


@command("network.auto_allocate.delete")
class DeleteAutoAllocatedTopology(Command):
    project_id: str
    at: str


# --- subnet pools and address scopes ----------------------------------------------------------------
@command("network.subnetpool.create")
class CreateSubnetPool(Command):
    row: dict[str, Any]


@command("network.subnetpool.update")
class UpdateSubnetPool(Command):
    id: str
    changes: dict[str, Any]
    at: str


@command("network.subnetpool.delete")
class DeleteSubnetPool(Command):
    id: str


@command("network.address_scope.create")
class CreateAddressScope(Command):
    row: dict[str, Any]


@command("network.address_scope.update")
class UpdateAddressScope(Command):
    id: str
    changes: dict[str, Any]
    at: str


@command("network.address_scope.delete")
class DeleteAddressScope(Command):
    id: str


# --- metering -------------------------------------------------------------------------------------------
@command("network.metering.label.create")
class CreateMeteringLabel(Command):
    row: dict[str, Any]


@command("network.metering.label.delete")
class DeleteMeteringLabel(Command):
    id: str


@command("network.metering.rule.create")
class CreateMeteringLabelRule(Command):
    row: dict[str, Any]


@command("network.metering.rule.delete")
class DeleteMeteringLabelRule(Command):
    id: str


# --- agents ---------------------------------------------------------------------------------------------
@command("network.dhcp.pin")
class PinDhcp(Command):
    """An admin puts a network's DHCP server on a node's agent (node_id), takes it off every
    agent ('' : no DHCP server), or lets placement choose again (None)."""

    network_id: str
    node_id: str | None

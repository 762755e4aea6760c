"""The network service: Neutron's resources, and the ports of servers for compute.

The API calls the CRUD methods with the caller's AuthContext: they check visibility
(others' resources are NotFound) and policy (Forbidden), build rows with ids, MACs and
timestamps, and propose commands; apply checks what depends on state.  Methods return
Neutron views.  Compute and the data plane use the methods under "for compute".
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Awaitable, Callable, Collection, Mapping, Sequence

import trio

from cloudbox.clock import iso
from cloudbox.errors import BadRequest, Conflict, NotFound, Unavailable
from cloudbox.identity.core import require
from cloudbox.network import commands as c
from cloudbox.network import core, reads, store, views
from cloudbox.network.apply_l2 import port_row
from cloudbox.network.service_agents import Agents
from cloudbox.network.service_pools import Pools
from cloudbox.network.store import Viewer
from cloudbox.state.engine import StateEngine

AUTO_CIDRS = ("10.0.0.0/24", "10.0.1.0/24", "10.10.0.0/24", "192.168.0.0/24", "172.16.0.0/24")


class NetworkService:
    def __init__(self, engine: StateEngine, settings: Any, node_id: str, host: str,
                 clock: Callable[[], float] = time.time, random_bytes: Callable[[int], bytes] = os.urandom,
                 admin_project: Callable[[], Awaitable[str | None]] | None = None,
                 up_nodes: Callable[[], Awaitable[Collection[str] | None]] | None = None) -> None:
        """``admin_project``: identity's public ``admin_project_id`` (the owner of the external
        network ``cloudbox init`` makes); without it that network needs an explicit owner.
        ``up_nodes``: the cluster's answer to which nodes are up (the agents' ``alive``)."""
        self.engine = engine
        self.admin_project = admin_project
        self.settings = settings
        self.node_id = node_id
        self.host = host
        self.clock = clock
        self.random_bytes = random_bytes
        self._running = False
        self.pools = Pools(self)  # subnet pools, address scopes, metering labels
        self.agents = Agents(self, up_nodes)  # the nodes' DHCP, L3 and metadata parts

    @property
    def running(self) -> bool:
        return self._running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Nothing runs in the background: the data plane reconciles the host from the tables."""
        self._running = True
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self._running = False

    # --- plumbing ------------------------------------------------------------------------------
    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.engine.read(fn, *args)

    async def propose(self, cmd: Any) -> Any:
        return await self.engine.propose(cmd)

    def now(self) -> str:
        return iso(self.clock())  # Neutron's: whole seconds, UTC, with a Z

    def new_mac(self) -> str:
        return core.new_mac(self.random_bytes(3))

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    @staticmethod
    def viewer(ctx: Any) -> Viewer:
        return Viewer(ctx.project_id, bool(ctx.is_cloud_admin or ctx.is_cloud_reader))

    def default_sg_ids(self) -> dict[str, Any]:
        return {"id": self.new_id(), "rule_ids": [self.new_id() for _ in range(4)]}

    def _project_for_create(self, ctx: Any, body: Mapping[str, Any], action: str) -> str:
        project, tenant = body.get("project_id"), body.get("tenant_id")
        if project and tenant and project != tenant:
            raise BadRequest("project_id and tenant_id do not match.")
        project = project or tenant or ctx.project_id
        if not project:
            raise BadRequest("A project_id is required: the token is not scoped to a project.")
        if project != ctx.project_id:
            require(ctx.is_cloud_admin, f"{action} for another project")
        require(ctx.can_write_project(project), action)
        return project

    async def _visible(self, ctx: Any, table: str, id: str) -> dict[str, Any]:
        return await self.read(store.visible, table, self.viewer(ctx), id)

    async def _writable(self, ctx: Any, table: str, id: str, action: str) -> dict[str, Any]:
        row = await self._visible(ctx, table, id)
        require(ctx.can_write_project(row["project_id"]) if row["project_id"] else ctx.is_cloud_admin, action)
        return row

    async def view(self, ctx: Any, table: str, row: dict[str, Any]) -> dict[str, Any]:
        return (await self.read(reads.render_rows, table, [row], self.viewer(ctx).admin))[0]

    # --- reading ---------------------------------------------------------------------------------
    async def list(self, ctx: Any, table: str, args: Any, limit: int,
                   marker: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of views and the id to continue after (None on the last page)."""
        query = core.parse_list_query(args, core.FILTERS[table])
        # A reader's read never writes. A project's default group is made by its first write (a
        # network, a port, a group, a server), or when one who may write there lists groups, as
        # Neutron does: `openstack server create --security-group default` looks the group up first.
        if table == "security_groups" and ctx.project_id and ctx.can_write_project(ctx.project_id):
            await self.ensure_default_group(ctx.project_id)
        found, next_marker = await self.read(reads.list_page, table, self.viewer(ctx), query, marker, limit)
        return [core.select_fields(v, query.fields) for v in found], next_marker

    async def show(self, ctx: Any, table: str, id: str, fields: Sequence[str] = ()) -> dict[str, Any]:
        return core.select_fields(await self.read(reads.show_one, table, self.viewer(ctx), id), fields)

    # --- creating, one or several at once -------------------------------------------------------------
    async def create_network(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        return (await self.create_bulk(ctx, "networks", [body]))[0]

    async def create_subnet(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        return (await self.create_bulk(ctx, "subnets", [body]))[0]

    async def create_port(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        return (await self.create_bulk(ctx, "ports", [body]))[0]

    async def create_bulk(self, ctx: Any, table: str, bodies: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Networks, subnets, ports or security group rules, each checked as a single create is; several
        are made by one command, so all of them exist afterwards or none (Neutron's bulk create)."""
        if table == "security_group_rules" and len({body.get("security_group_id") for body in bodies}) > 1:
            # Neutron's SecurityGroupNotSingleGroupRules
            raise BadRequest("Only allowed to update rules for one security profile at a time.")
        make = {"networks": self._network_command, "subnets": self._subnet_command, "ports": self._port_command,
                "security_group_rules": self._rule_command}[table]
        cmds = [await make(ctx, body) for body in bodies]
        if len(cmds) == 1:
            rows = [await self.propose(cmds[0])]
        else:
            rows = await self.propose(c.BulkCreate(tuple(c.bulk_item(cmd) for cmd in cmds)))
        return await self.read(reads.render_rows, table, rows, self.viewer(ctx).admin)

    # --- networks -------------------------------------------------------------------------------------
    async def _network_command(self, ctx: Any, body: Mapping[str, Any]) -> c.CreateNetwork:
        project = self._project_for_create(ctx, body, "create_network")
        for key in ("provider:network_type", "provider:physical_network", "provider:segmentation_id", "shared",
                    "router:external", "is_default"):
            if key in body and body[key] not in (None, False):
                require(ctx.is_cloud_admin, f"create_network:{key}")
        physical = body.get("provider:physical_network")
        kind = body.get("provider:network_type") or ("flat" if physical else "vxlan")
        segment = body.get("provider:segmentation_id")
        if kind == "flat":
            if not physical:
                raise BadRequest("Invalid input for operation: physical_network required for flat provider network.")
            if segment is not None:
                raise BadRequest("Invalid input for operation: segmentation_id specified for flat provider network.")
        elif physical:
            raise BadRequest("Invalid input for operation: provider:physical_network specified for VXLAN network.")
        mtu = body.get("mtu", core.MTU[kind])
        if mtu > core.MTU[kind]:
            raise BadRequest(f"Requested MTU is too big, maximum is {core.MTU[kind]}.")
        at = self.now()
        row = {
            "id": self.new_id(), "project_id": project, "name": body.get("name") or "",
            "description": body.get("description") or "", "admin_state_up": body.get("admin_state_up", True),
            "shared": body.get("shared", False), "external": body.get("router:external", False), "status": "ACTIVE",
            "mtu": mtu, "network_type": kind, "physical_network": physical if kind == "flat" else None,
            "segmentation_id": segment if kind == "vxlan" else None,
            "port_security_enabled": body.get("port_security_enabled", True), "is_default": body.get("is_default", False),
            "tags": core.clean_tags(body.get("tags") or []), "created_at": at, "updated_at": at, "revision_number": 0,
        }
        return c.CreateNetwork(row, self.default_sg_ids())

    async def update_network(self, ctx: Any, network_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        network = await self._writable(ctx, "networks", network_id, "update_network")
        for key in ("shared", "router:external", "is_default"):
            if key in body and body[key] != network[key.replace("router:", "")]:
                require(ctx.is_cloud_admin, f"update_network:{key}")
        if body.get("mtu", 0) > core.MTU[network["network_type"]]:
            raise BadRequest(f"Requested MTU is too big, maximum is {core.MTU[network['network_type']]}.")
        names = {"router:external": "external"}
        changes = {names.get(k, k): v for k, v in body.items() if k not in ("availability_zone_hints", "qos_policy_id",
                                                                          "dns_domain")}
        for key in ("name", "description"):
            if key in changes and changes[key] is None:
                changes[key] = ""
        updated = await self.propose(c.UpdateNetwork(network_id, changes, self.now()))
        return await self.view(ctx, "networks", updated)

    async def delete_network(self, ctx: Any, network_id: str) -> None:
        await self._writable(ctx, "networks", network_id, "delete_network")
        await self.propose(c.DeleteNetwork(network_id))

    # --- subnets -----------------------------------------------------------------------------------------
    async def _subnet_command(self, ctx: Any, body: Mapping[str, Any]) -> c.CreateSubnet:
        network = await self._visible(ctx, "networks", body["network_id"])
        project = self._project_for_create(ctx, body, "create_subnet")
        if network["project_id"] != project:
            require(ctx.is_cloud_admin, "create_subnet on a network of another project")
        core.refuse_ipv6(body.get("ip_version"))
        pool = await self.pools.pool_for_subnet(ctx, body)
        at = self.now()
        if pool is None:
            row = core.subnet_row(body, id=self.new_id(), project_id=project, network_id=network["id"], at=at)
            return c.CreateSubnet(row, self.new_id(), self.new_mac(), at)
        request = {"subnetpool_id": pool["id"], "request": {
            k: v for k, v in body.items() if k not in ("project_id", "tenant_id", "network_id")}}
        if body.get("cidr") is not None:  # checked against the pool in apply
            row = core.subnet_row(body, id=self.new_id(), project_id=project, network_id=network["id"], at=at)
        else:  # the pool's lowest free block, chosen in apply, and the rest of the row with it
            row = {"id": self.new_id(), "project_id": project, "network_id": network["id"], "created_at": at}
        return c.CreateSubnet(row, self.new_id(), self.new_mac(), at, request)

    async def update_subnet(self, ctx: Any, subnet_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        subnet = await self._writable(ctx, "subnets", subnet_id, "update_subnet")
        changes = core.subnet_changes(subnet, body)
        updated = await self.propose(c.UpdateSubnet(subnet_id, changes, self.new_id(), self.new_mac(), self.now()))
        return await self.view(ctx, "subnets", updated)

    async def delete_subnet(self, ctx: Any, subnet_id: str) -> None:
        await self._writable(ctx, "subnets", subnet_id, "delete_subnet")
        await self.propose(c.DeleteSubnet(subnet_id, self.now()))

    # --- ports ------------------------------------------------------------------------------------------------
    async def _groups(self, ctx: Any, project: str, ids: Sequence[str]) -> list[str]:
        out = []
        for group_id in ids:
            group = await self._visible(ctx, "security_groups", group_id)
            if group["project_id"] != project and not ctx.is_cloud_admin:
                raise NotFound(f"Security group {group_id} does not exist")
            if group_id not in out:
                out.append(group_id)
        return out

    def _port_policy(self, ctx: Any, network: dict[str, Any], body: Mapping[str, Any],
                     port: dict[str, Any] | None = None) -> None:
        """Who may set what on a port.  Bindings are the cloud's; what would let a guest speak
        for another address (MAC, addresses, port security, address pairs) belongs to the
        network's owner, as in Neutron, so a member of a shared network cannot switch off
        anti-spoofing there.  Ports of routers, DHCP and servers are made by the cloud itself:
        the host plan, the metadata service and the servers' addresses trust their owner and
        device id, so only an admin may set or change those (stricter than Neutron, which
        keeps router ports in a table of their own)."""
        admin = ctx.is_cloud_admin
        owner_of_network = admin or ctx.project_id == network["project_id"]
        for key in ("binding:host_id", "binding:profile"):
            if key in body:
                require(admin, f"port:{key}")
        for key in ("mac_address", "port_security_enabled", "allowed_address_pairs"):
            if key in body:
                require(owner_of_network, f"port:{key}")
        if any(isinstance(f, Mapping) and f.get("ip_address") for f in body.get("fixed_ips") or []):
            require(owner_of_network, "port:fixed_ips:ip_address")
        if str(body.get("device_owner") or "").startswith(core.CLOUD_OWNED):
            require(admin, "port:device_owner")
        if port is not None and str(port["device_owner"]).startswith(core.CLOUD_OWNED) \
                and ("device_id" in body or "device_owner" in body):
            require(admin, "port:device_id")

    async def _port_command(self, ctx: Any, body: Mapping[str, Any]) -> c.CreatePort:
        network = await self._visible(ctx, "networks", body["network_id"])
        project = self._project_for_create(ctx, body, "create_port")
        if network["project_id"] != project and not network["shared"]:
            require(ctx.is_cloud_admin, "create_port on a network of another project")
        self._port_policy(ctx, network, body)
        security = body.get("port_security_enabled", network["port_security_enabled"])
        groups: list[str] | None = None
        if body.get("security_groups") is not None:
            groups = await self._groups(ctx, project, body["security_groups"])
        if not security:
            if groups:
                raise BadRequest("Port security must be enabled and port must have an IP address in order to use "
                                 "security groups.")
            groups = []
        mac = core.normalize_mac(body["mac_address"]) if body.get("mac_address") else self.new_mac()
        pairs = core.address_pairs(body.get("allowed_address_pairs") or [], mac)
        if pairs and not security:
            raise Conflict("Port Security must be enabled in order to have allowed address pairs on a port.")
        requests = tuple(core.fixed_ip_requests(body["fixed_ips"])) if body.get("fixed_ips") is not None else None
        at = self.now()
        row = port_row(
            id=self.new_id(), project_id=project, network=network, mac=mac, at=at,
            device_id=body.get("device_id") or "", device_owner=body.get("device_owner") or "", name=body.get("name") or "",
            description=body.get("description") or "", admin_state_up=body.get("admin_state_up", True),
            port_security_enabled=security, allowed_address_pairs=pairs, binding_host_id=body.get("binding:host_id") or "",
            binding_profile=body.get("binding:profile") or {}, binding_vnic_type=body.get("binding:vnic_type", "normal"),
            tags=core.clean_tags(body.get("tags") or []),
            extra_dhcp_opts=core.dhcp_options([], body.get("extra_dhcp_opts") or []),
        )
        row["security_groups"] = groups
        default_sg = self.default_sg_ids() if groups is None else None
        return c.CreatePort(row, requests, default_sg, at)

    async def update_port(self, ctx: Any, port_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        port = await self._writable(ctx, "ports", port_id, "update_port")
        network = await self.read(store.must_get, "networks", port["network_id"])
        self._port_policy(ctx, network, body, port)
        names = {"binding:host_id": "binding_host_id", "binding:profile": "binding_profile",
                 "binding:vnic_type": "binding_vnic_type"}
        changes: dict[str, Any] = {}
        for key, value in body.items():
            if key in ("fixed_ips", "extra_dhcp_opts", "qos_policy_id"):
                continue
            changes[names.get(key, key)] = value
        for key, empty in (("name", ""), ("description", ""), ("binding_host_id", ""), ("binding_profile", {}),
                           ("security_groups", [])):
            if key in changes and changes[key] is None:
                changes[key] = empty
        if "mac_address" in changes:
            changes["mac_address"] = core.normalize_mac(changes["mac_address"])
        if changes.get("security_groups"):
            changes["security_groups"] = await self._groups(ctx, port["project_id"], changes["security_groups"])
        if "allowed_address_pairs" in changes:
            changes["allowed_address_pairs"] = core.address_pairs(
                changes["allowed_address_pairs"] or [], changes.get("mac_address", port["mac_address"]))
        if "extra_dhcp_opts" in body:
            changes["extra_dhcp_opts"] = core.dhcp_options(port["extra_dhcp_opts"], body["extra_dhcp_opts"] or [])
        requests = tuple(core.fixed_ip_requests(body["fixed_ips"] or [])) if "fixed_ips" in body else None
        updated = await self.propose(c.UpdatePort(port_id, changes, requests, self.now()))
        return await self.view(ctx, "ports", updated)

    async def delete_port(self, ctx: Any, port_id: str) -> None:
        await self._writable(ctx, "ports", port_id, "delete_port")
        await self.propose(c.DeletePort(port_id, self.now()))

    # --- routers ------------------------------------------------------------------------------------------------
    async def _gateway(self, ctx: Any, info: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not info:
            return None
        if not info.get("network_id"):
            raise BadRequest("Invalid input for external_gateway_info: network_id is required.")
        await self._visible(ctx, "networks", info["network_id"])
        if "enable_snat" in info:
            require(ctx.is_cloud_admin, "create_router:external_gateway_info:enable_snat")
        if info.get("external_fixed_ips"):
            require(ctx.is_cloud_admin, "create_router:external_gateway_info:external_fixed_ips")
        return {"network_id": info["network_id"], "enable_snat": info.get("enable_snat", True),
                "external_fixed_ips": core.fixed_ip_requests(info.get("external_fixed_ips") or []),
                "port_id": self.new_id(), "mac": self.new_mac()}

    async def create_router(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        project = self._project_for_create(ctx, body, "create_router")
        gateway = await self._gateway(ctx, body.get("external_gateway_info"))
        if body.get("routes"):
            raise BadRequest("Routes can be set once the router has interfaces: update the router.")
        at = self.now()
        row = {
            "id": self.new_id(), "project_id": project, "name": body.get("name") or "",
            "description": body.get("description") or "", "admin_state_up": body.get("admin_state_up", True),
            "status": "ACTIVE", "external_network_id": None, "enable_snat": True, "gw_port_id": None, "routes": [],
            "tags": core.clean_tags(body.get("tags") or []), "created_at": at, "updated_at": at, "revision_number": 0,
        }
        return await self.view(ctx, "routers", await self.propose(c.CreateRouter(row, gateway, at)))

    async def update_router(self, ctx: Any, router_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        await self._writable(ctx, "routers", router_id, "update_router")
        changes = {k: v for k, v in body.items() if k in ("name", "description", "admin_state_up")}
        for key in ("name", "description"):
            if key in changes and changes[key] is None:
                changes[key] = ""
        if "routes" in body:
            changes["routes"] = core.static_routes(body["routes"] or [])
        set_gateway = "external_gateway_info" in body
        gateway = await self._gateway(ctx, body.get("external_gateway_info")) if set_gateway else None
        updated = await self.propose(c.UpdateRouter(router_id, changes, set_gateway, gateway, self.now()))
        return await self.view(ctx, "routers", updated)

    async def edit_routes(self, ctx: Any, router_id: str, routes: Sequence[Mapping[str, Any]], add: bool) -> dict[str, Any]:
        await self._writable(ctx, "routers", router_id, "update_router")
        parsed = tuple(core.static_routes(routes))
        cmd = c.EditRoutes(router_id, parsed if add else (), () if add else parsed, self.now())
        return await self.view(ctx, "routers", await self.propose(cmd))

    async def delete_router(self, ctx: Any, router_id: str) -> None:
        await self._writable(ctx, "routers", router_id, "delete_router")
        await self.propose(c.DeleteRouter(router_id, self.now()))

    async def _interface_target(self, ctx: Any, router: dict[str, Any], body: Mapping[str, Any] | None,
                                adding: bool) -> tuple[str | None, str | None]:
        body = body or {}
        subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
        if subnet_id and port_id and adding:
            raise BadRequest("Bad router request: Cannot specify both subnet-id and port-id.")
        if not subnet_id and not port_id:
            raise BadRequest("Bad router request: Either subnet_id or port_id must be specified.")
        if adding and subnet_id:
            subnet = await self._visible(ctx, "subnets", subnet_id)
            network = await self.read(store.must_get, "networks", subnet["network_id"])
            # Not even on a shared network: the interface takes the subnet's gateway address, and
            # with it every other project's traffic on that network.
            if subnet["project_id"] != router["project_id"] or network["project_id"] != router["project_id"]:
                require(ctx.is_cloud_admin, "add_router_interface on a subnet of another project")
        if adding and port_id:
            port = await self._writable(ctx, "ports", port_id, "add_router_interface")
            if port["project_id"] != router["project_id"]:
                require(ctx.is_cloud_admin, "add_router_interface with a port of another project")
        return subnet_id, port_id

    async def add_interface(self, ctx: Any, router_id: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        router = await self._writable(ctx, "routers", router_id, "add_router_interface")
        subnet_id, port_id = await self._interface_target(ctx, router, body, adding=True)
        return await self.propose(c.AddRouterInterface(router_id, subnet_id, port_id, self.new_id(), self.new_mac(),
                                                       self.now()))

    async def remove_interface(self, ctx: Any, router_id: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        router = await self._writable(ctx, "routers", router_id, "remove_router_interface")
        subnet_id, port_id = await self._interface_target(ctx, router, body, adding=False)
        return await self.propose(c.RemoveRouterInterface(router_id, subnet_id, port_id, self.now()))

    # --- floating IPs ------------------------------------------------------------------------------------------------
    async def create_floatingip(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        project = self._project_for_create(ctx, body, "create_floatingip")
        await self._visible(ctx, "networks", body["floating_network_id"])
        if body.get("floating_ip_address"):
            require(ctx.is_cloud_admin, "create_floatingip:floating_ip_address")
            core.parse_ip(body["floating_ip_address"], "floating_ip_address")
        if body.get("port_id"):
            await self._visible(ctx, "ports", body["port_id"])
        if body.get("fixed_ip_address"):
            core.parse_ip(body["fixed_ip_address"], "fixed_ip_address")
        at = self.now()
        row = {
            "id": self.new_id(), "project_id": project, "floating_network_id": body["floating_network_id"],
            "floating_ip_address": body.get("floating_ip_address"), "floating_port_id": self.new_id(),
            "port_id": body.get("port_id"), "fixed_ip_address": body.get("fixed_ip_address"), "router_id": None,
            "status": "DOWN", "description": body.get("description") or "",
            "tags": core.clean_tags(body.get("tags") or []), "created_at": at, "updated_at": at, "revision_number": 0,
        }
        fip = await self.propose(c.CreateFloatingIp(row, body.get("subnet_id"), self.new_mac(), at))
        return await self.view(ctx, "floatingips", fip)

    async def update_floatingip(self, ctx: Any, fip_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        await self._writable(ctx, "floatingips", fip_id, "update_floatingip")
        changes = dict(body)
        if "description" in changes and changes["description"] is None:
            changes["description"] = ""
        if changes.get("port_id"):
            await self._visible(ctx, "ports", changes["port_id"])
        if changes.get("fixed_ip_address"):
            core.parse_ip(changes["fixed_ip_address"], "fixed_ip_address")
        if "fixed_ip_address" in changes and "port_id" not in changes:
            raise BadRequest("Bad floatingip request: fixed_ip_address is given without a port_id.")
        updated = await self.propose(c.UpdateFloatingIp(fip_id, changes, self.now()))
        return await self.view(ctx, "floatingips", updated)

    async def delete_floatingip(self, ctx: Any, fip_id: str) -> None:
        await self._writable(ctx, "floatingips", fip_id, "delete_floatingip")
        await self.propose(c.DeleteFloatingIp(fip_id))

    # --- security groups -----------------------------------------------------------------------------------------------
    async def ensure_default_group(self, project_id: str) -> str:
        """The id of the project's ``default`` security group, made now if it has none."""
        found = await self.read(store.default_group, project_id)
        if found is not None:
            return found["id"]
        group = await self.propose(c.EnsureDefaultSecurityGroup(project_id, self.default_sg_ids(), self.now()))
        return group["id"]

    async def create_security_group(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        project = self._project_for_create(ctx, body, "create_security_group")
        at = self.now()
        row = {
            "id": self.new_id(), "project_id": project, "name": body.get("name") or "",
            "description": body.get("description") or "", "stateful": body.get("stateful", True),
            "tags": core.clean_tags(body.get("tags") or []), "created_at": at, "updated_at": at, "revision_number": 0,
        }
        cmd = c.CreateSecurityGroup(row, (self.new_id(), self.new_id()), self.default_sg_ids(), at)
        return await self.view(ctx, "security_groups", await self.propose(cmd))

    async def update_security_group(self, ctx: Any, group_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        await self._writable(ctx, "security_groups", group_id, "update_security_group")
        changes = {k: (v if v is not None else "") for k, v in body.items()}
        updated = await self.propose(c.UpdateSecurityGroup(group_id, changes, self.now()))
        return await self.view(ctx, "security_groups", updated)

    async def delete_security_group(self, ctx: Any, group_id: str) -> None:
        await self._writable(ctx, "security_groups", group_id, "delete_security_group")
        await self.propose(c.DeleteSecurityGroup(group_id, bool(ctx.is_cloud_admin)))

    async def create_rule(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        return views.rule(await self.propose(await self._rule_command(ctx, body)))

    async def _rule_command(self, ctx: Any, body: Mapping[str, Any]) -> c.CreateSecurityGroupRule:
        group = await self._writable(ctx, "security_groups", body["security_group_id"], "create_security_group_rule")
        owner = body.get("project_id") or body.get("tenant_id")
        if owner and owner != group["project_id"]:
            raise BadRequest(f"A rule belongs to its security group's project {group['project_id']}, not {owner}.")
        if body.get("remote_group_id"):
            await self._visible(ctx, "security_groups", body["remote_group_id"])
        at = self.now()
        row = core.rule_row(body, id=self.new_id(), project_id=group["project_id"], at=at)
        return c.CreateSecurityGroupRule(row, at)

    async def delete_rule(self, ctx: Any, rule_id: str) -> None:
        await self._writable(ctx, "security_group_rules", rule_id, "delete_security_group_rule")
        await self.propose(c.DeleteSecurityGroupRule(rule_id, self.now()))

    # --- tags ---------------------------------------------------------------------------------------------------------
    async def tags(self, ctx: Any, table: str, id: str) -> list[str]:
        return list((await self._visible(ctx, table, id))["tags"])

    async def edit_tags(self, ctx: Any, table: str, id: str, op: str, tags: Sequence[str]) -> list[str]:
        await self._writable(ctx, table, id, f"update_{table}_tags")
        cleaned = tuple(core.clean_tags(list(tags))) if op != "remove" else tuple(tags)
        return await self.propose(c.EditTags(table, id, op, cleaned, self.now()))

    # --- quotas ----------------------------------------------------------------------------------------------------------
    def _quota_reader(self, ctx: Any, project_id: str) -> None:
        require(ctx.is_cloud_admin or ctx.is_cloud_reader or ctx.project_id == project_id, "get_quota")

    async def quota(self, ctx: Any, project_id: str) -> dict[str, int]:
        self._quota_reader(ctx, project_id)
        return await self.read(store.quota_limits, project_id)

    async def quota_details(self, ctx: Any, project_id: str) -> dict[str, Any]:
        self._quota_reader(ctx, project_id)
        limits = await self.read(store.quota_limits, project_id)
        return views.quota_details(limits, await self.read(store.quota_usage, project_id))

    async def list_quotas(self, ctx: Any) -> list[dict[str, Any]]:
        require(ctx.is_cloud_admin or ctx.is_cloud_reader, "get_quota")
        projects = await self.read(store.projects_with_quotas)
        return [views.quota(await self.read(store.quota_limits, p), p) for p in projects]

    async def set_quota(self, ctx: Any, project_id: str, body: Mapping[str, Any]) -> dict[str, int]:
        require(ctx.is_cloud_admin, "update_quota")
        limits = {k: int(v) for k, v in body.items() if k != "check_limit"}
        return await self.propose(c.SetQuota(project_id, limits, bool(body.get("check_limit", False))))

    async def delete_quota(self, ctx: Any, project_id: str) -> None:
        require(ctx.is_cloud_admin, "delete_quota")
        await self.propose(c.DeleteQuota(project_id))

    # --- IP availability ----------------------------------------------------------------------------------------------------
    async def ip_availabilities(self, ctx: Any, args: Any, limit: int,
                                marker: str | None) -> tuple[list[dict[str, Any]], str | None]:
        require(ctx.is_cloud_admin or ctx.is_cloud_reader, "get_network_ip_availability")
        query = core.parse_list_query(args, reads.AVAILABILITY_FILTERS)
        version = args.get("ip_version")
        if version not in (None, "4", "6"):
            raise BadRequest(f"Invalid input for ip_version: {version}.")
        found, next_marker = await self.read(reads.availability_page, query, int(version) if version else None,
                                             marker, limit)
        return [core.select_fields(v, query.fields) for v in found], next_marker

    async def ip_availability(self, ctx: Any, network_id: str) -> dict[str, Any]:
        require(ctx.is_cloud_admin or ctx.is_cloud_reader, "get_network_ip_availability")
        network = await self.read(store.must_get, "networks", network_id)
        return await self.read(reads.availability, network, None)

    # --- auto-allocated topology ------------------------------------------------------------------------------------------------
    async def _default_external(self) -> dict[str, Any]:
        externals = await self.read(store.external_networks)
        defaults = [n for n in externals if n["is_default"]] or (externals if len(externals) == 1 else [])
        if not defaults:
            raise Conflict("Deployment error: No default router:external network.")
        return defaults[0]

    async def auto_allocate(self, project_id: str) -> dict[str, Any]:
        """The project's auto-allocated network and router (made now if it has none)."""
        found = await self.read(reads.topology, project_id)
        if found is not None:
            return found
        external = await self._default_external()
        external_cidrs = [s["cidr"] for s in await self.read(store.subnets_of, external["id"])]
        cidr = next((x for x in AUTO_CIDRS if not any(core.overlaps(x, e) for e in external_cidrs)), None)
        if cidr is None:
            raise Conflict("Deployment error: no private address range is free of the external network's.")
        at = self.now()
        network = {
            "id": self.new_id(), "project_id": project_id, "name": "auto_allocated_network", "description": "",
            "admin_state_up": True, "shared": False, "external": False, "status": "ACTIVE", "mtu": core.MTU["vxlan"],
            "network_type": "vxlan", "physical_network": None, "segmentation_id": None, "port_security_enabled": True,
            "is_default": False, "tags": [], "created_at": at, "updated_at": at, "revision_number": 0,
        }
        subnet = core.subnet_row({"cidr": cidr, "name": "auto_allocated_subnet_v4", "ip_version": 4},
                                 id=self.new_id(), project_id=project_id, network_id=network["id"], at=at)
        router = {
            "id": self.new_id(), "project_id": project_id, "name": "auto_allocated_router", "description": "",
            "admin_state_up": True, "status": "ACTIVE", "external_network_id": None, "enable_snat": True,
            "gw_port_id": None, "routes": [], "tags": [], "created_at": at, "updated_at": at, "revision_number": 0,
        }
        ids = {"dhcp_port": self.new_id(), "dhcp_mac": self.new_mac(), "gateway_port": self.new_id(),
               "gateway_mac": self.new_mac(), "interface_port": self.new_id(), "interface_mac": self.new_mac()}
        return await self.propose(c.AutoAllocateTopology(project_id, external["id"], network, subnet, router, ids, at))

    async def get_auto_allocated_topology(self, ctx: Any, project_id: str, dry_run: bool) -> dict[str, Any]:
        require(ctx.is_cloud_admin or (ctx.project_id == project_id and ctx.can_write_project(project_id)),
                "get_auto_allocated_topology")
        if dry_run:
            await self._default_external()
            return {"id": "dry-run=pass", "project_id": project_id, "tenant_id": project_id}
        topology = await self.auto_allocate(project_id)
        return {"id": topology["network_id"], "project_id": project_id, "tenant_id": project_id}

    async def delete_auto_allocated_topology(self, ctx: Any, project_id: str) -> None:
        require(ctx.is_cloud_admin or (ctx.project_id == project_id and ctx.can_write_project(project_id)),
                "delete_auto_allocated_topology")
        await self.propose(c.DeleteAutoAllocatedTopology(project_id, self.now()))

    # --- for compute and the data plane -----------------------------------------------------------------------------------------------
    async def check_requested_networks(self, project_id: str, is_admin: bool, requested: str | list[dict]) -> None:
        """Refuse, as Nova does, a server create whose ``networks`` cannot be satisfied."""
        await self.read(reads.check_requested, project_id, is_admin, requested)

    async def check_security_groups(self, project_id: str, names: Sequence[str]) -> None:
        """Refuse, as Nova does (400), a server create naming a group the project does not have."""
        for name in names:
            if name != "default" and await self.read(reads.find_group, project_id, name) is None:
                raise BadRequest(f"Security group {name[:255]} not found for project {project_id}.")

    async def bind_ports_to(self, ports: list[dict], host: str) -> None:
        """Point ports at compute host ``host`` (a server rebuilt on another host keeps its ports)."""
        for port in ports:
            if port.get("binding:host_id") != host:
                await self.propose(c.UpdatePort(port["id"], {"binding_host_id": host}, None, self.now()))

    async def allocate_for_server(self, server_id: str, project_id: str, host: str, requested: str | list[dict],
                                  security_groups: list[str], availability_zone: str) -> list[dict]:
        """The server's ports in order: made (device_owner compute:<az>) or claimed; a retry reuses them."""
        existing = await self.read(store.server_ports, server_id)
        if existing:
            return [views.port(p, True) for p in existing]
        if requested == "none" or requested == []:
            return []
        if requested == "auto":
            usable = await self.read(reads.usable_networks, project_id)
            if len(usable) > 1:
                raise Conflict("Multiple possible networks found, use a Network ID to be more specific.")
            network_id = usable[0]["id"] if usable else (await self.auto_allocate(project_id))["network_id"]
            requested = [{"uuid": network_id}]
        if not isinstance(requested, list):
            raise BadRequest(f"Bad networks format: {requested!r}")
        group_ids: list[str] = []
        names = [g.get("name", "") if isinstance(g, dict) else str(g) for g in security_groups or []]  # Nova's {"name"}
        for name in names or ["default"]:
            if name == "default":
                group_id: str | None = await self.ensure_default_group(project_id)
            else:
                group_id = await self.read(reads.find_group, project_id, name)
            if group_id is None:
                raise BadRequest(f"Security group {name} not found for project {project_id}.")
            if group_id not in group_ids:
                group_ids.append(group_id)
        at = self.now()
        items: list[dict[str, Any]] = []
        for entry in requested:
            if entry.get("port"):
                items.append({"port_id": entry["port"]})
                continue
            network = await self.read(store.get, "networks", entry.get("uuid"))
            if network is None:
                raise BadRequest(f"Network {entry.get('uuid')} could not be found.")
            row = port_row(id=self.new_id(), project_id=project_id, network=network, mac=self.new_mac(), at=at,
                           security_groups=group_ids if network["port_security_enabled"] else [])
            fixed = [{"ip_address": str(core.parse_ip(entry["fixed_ip"], "fixed_ip"))}] if entry.get("fixed_ip") else None
            items.append({"new": row, "fixed_ips": fixed})
        cmd = c.AllocateServerPorts(server_id, project_id, host, f"compute:{availability_zone or core.DEFAULT_AZ}",
                                    tuple(items), None, at)
        return [views.port(p, True) for p in await self.propose(cmd)]

    async def deallocate_for_server(self, server_id: str) -> None:
        """Delete the ports made for the server; ports the user passed in are released (kept, unbound)."""
        await self.propose(c.DeallocateServerPorts(server_id, self.now()))

    async def set_port_status(self, port_id: str, status: str) -> None:
        if status not in core.PORT_STATUSES:
            raise BadRequest(f"Port status must be one of {', '.join(core.PORT_STATUSES)}, not {status!r}.")
        port = await self.read(store.must_get, "ports", port_id)
        if port["status"] != status:
            await self.propose(c.SetPortStatus(port_id, status, self.now()))

    def set_ports_active_nowait(self, port_ids: Sequence[str]) -> list[Any]:
        """Queue ACTIVE for these ports without waiting for the commits (the data plane's bind:
        queued before the guest starts, so before the server's own ACTIVE on this node); returns the
        engine's answers to await (``.done``, ``.error``)."""
        return [self.engine.propose_nowait(c.SetPortStatus(port_id, "ACTIVE", self.now())) for port_id in port_ids]

    async def set_ports_active(self, port_ids: Sequence[str]) -> None:
        """The data plane runs these ports' DHCP servers and routers: those not ACTIVE yet become so."""
        for port_id in await self.read(store.not_active, port_ids):
            try:
                await self.propose(c.SetPortStatus(port_id, "ACTIVE", self.now()))
            except NotFound:
                pass  # deleted since the pass read the tables

    async def ensure_external_network(self, cidr: str, project_id: str | None = None) -> None:
        """Make the external network ``public`` with ``public-subnet`` unless an external network exists.

        Owned by ``project_id``, else by the project ``admin`` of domain ``default`` (as
        ``cloudbox init`` makes it), which identity names through ``admin_project``.
        Idempotent: a ``public`` left without its subnet by a crash gets the subnet.
        """
        try:
            await self._ensure_external_network(cidr, project_id)
        except (Conflict, BadRequest):
            # Another node made it at the same moment (both saw none): theirs stands.
            if not await self.read(store.external_networks):
                raise

    async def _ensure_external_network(self, cidr: str, project_id: str | None) -> None:
        net = core.parse_cidr(cidr, "external cidr", strict=False)
        core.refuse_ipv6(net.version)
        externals = await self.read(store.external_networks)
        if externals:
            public = next((n for n in externals if n["name"] == "public"), None)
            if public is None or await self.read(store.subnets_of, public["id"]):
                return
            network_id, owner = public["id"], public["project_id"]
        else:
            owner = project_id or (await self.admin_project() if self.admin_project else None)
            if owner is None:
                raise Unavailable("There is no admin project to own the external network.")
            at = self.now()
            row = {
                "id": self.new_id(), "project_id": owner, "name": "public", "description": "", "admin_state_up": True,
                "shared": False, "external": True, "status": "ACTIVE", "mtu": core.MTU["flat"], "network_type": "flat",
                "physical_network": "public", "segmentation_id": None, "port_security_enabled": True,
                "is_default": True, "tags": [], "created_at": at, "updated_at": at, "revision_number": 0,
            }
            network_id = (await self.propose(c.CreateNetwork(row)))["id"]
        at = self.now()
        subnet = core.subnet_row({"cidr": str(net), "name": "public-subnet", "ip_version": net.version,
                                  "enable_dhcp": False}, id=self.new_id(), project_id=owner, network_id=network_id,
                                 at=at)
        await self.propose(c.CreateSubnet(subnet, self.new_id(), self.new_mac(), at))

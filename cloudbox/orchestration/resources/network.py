"""OS::Neutron::Net, Subnet, Port, Router, RouterInterface, SecurityGroup, FloatingIP and
FloatingIPAssociation: through the network API as the owner, names resolved to ids."""

from __future__ import annotations

from typing import Any

from cloudbox.errors import NotFound
from cloudbox.orchestration.resources.base import (
    Context, Plugin, ResourceFailed, by_tag, dropped_none, find_neutron,
)

NEUTRON = "/network/v2.0"


class Neutron(Plugin):
    """One Neutron collection's thing: create with the owner's tag, show, update, delete."""

    collection: str = ""
    singular: str = ""
    passthrough: tuple[str, ...] = ()  # properties sent as they are
    attribute_keys: tuple[str, ...] = ()

    async def body(self, ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
        body = {k: props[k] for k in self.passthrough if props.get(k) is not None}
        body.update(props.get("value_specs") or {})
        if "name" in self.properties:
            body["name"] = props.get("name") or ctx.physical_name
        return body

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        body = {**await self.body(ctx, props), "tags": [ctx.tag]}
        made = (await ctx.api.post(f"{NEUTRON}/{self.collection}", {self.singular: body}))[self.singular]
        return str(made["id"])

    async def find(self, ctx: Context) -> str | None:
        return await by_tag(ctx.api, self.collection, ctx.tag)

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        body = await self.body(ctx, new)
        wanted = {k: v for k, v in body.items() if k in changed or k in (new.get("value_specs") or {})}
        if wanted:
            await ctx.api.put(f"{NEUTRON}/{self.collection}/{ctx.physical_id}", {self.singular: wanted})

    async def delete(self, ctx: Context) -> None:
        if ctx.physical_id:
            await ctx.api.delete(f"{NEUTRON}/{self.collection}/{ctx.physical_id}")

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        shown = (await ctx.api.get(f"{NEUTRON}/{self.collection}/{ctx.physical_id}"))[self.singular]
        return {"show": shown, **{k: shown.get(k) for k in self.attribute_keys}}


class Net(Neutron):
    type = "OS::Neutron::Net"
    description = "A Neutron network."
    collection, singular = "networks", "network"
    properties = {"name": "string", "admin_state_up": "boolean", "shared": "boolean", "port_security_enabled":
                  "boolean", "value_specs": "map", "dns_domain": "string", "tenant_id": "string", "qos_policy":
                  "string", "tags": "list"}
    passthrough = ("admin_state_up", "shared", "port_security_enabled", "dns_domain")
    update_allowed = frozenset({"name", "admin_state_up", "shared", "port_security_enabled", "value_specs",
                                "dns_domain"})
    attribute_keys = ("name", "status", "subnets", "admin_state_up", "tenant_id", "mtu", "port_security_enabled")
    attribute_names = frozenset({"show", *attribute_keys})


class Subnet(Neutron):
    type = "OS::Neutron::Subnet"
    description = "A Neutron subnet of a network."
    collection, singular = "subnets", "subnet"
    properties = {"name": "string", "network": "string", "network_id": "string", "cidr": "string",
                  "ip_version": "integer", "gateway_ip": "string", "enable_dhcp": "boolean",
                  "dns_nameservers": "list", "allocation_pools": "list", "host_routes": "list",
                  "value_specs": "map", "subnetpool": "string", "prefixlen": "integer", "ipv6_ra_mode": "string",
                  "ipv6_address_mode": "string", "tenant_id": "string", "tags": "list", "segment": "string"}
    passthrough = ("cidr", "gateway_ip", "enable_dhcp", "dns_nameservers", "allocation_pools", "host_routes",
                   "prefixlen", "ipv6_ra_mode", "ipv6_address_mode")
    update_allowed = frozenset({"name", "gateway_ip", "enable_dhcp", "dns_nameservers", "allocation_pools",
                                "host_routes", "value_specs"})
    attribute_keys = ("name", "network_id", "cidr", "gateway_ip", "allocation_pools", "ip_version", "enable_dhcp",
                      "dns_nameservers", "host_routes", "tenant_id")
    attribute_names = frozenset({"show", *attribute_keys})

    async def body(self, ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
        body = await super().body(ctx, props)
        network = props.get("network") or props.get("network_id")
        if network:
            body["network_id"] = (await find_neutron(ctx.api, "networks", "network", str(network)))["id"]
        body["ip_version"] = int(props.get("ip_version") or 4)
        if props.get("subnetpool"):
            body["subnetpool_id"] = (await find_neutron(ctx.api, "subnetpools", "subnetpool",
                                                        str(props["subnetpool"])))["id"]
        return body

    def check(self, name: str, props: dict[str, Any]) -> None:
        super().check(name, props)
        if not (props.get("network") or props.get("network_id")):
            from cloudbox.errors import BadRequest

            raise BadRequest(f"resources.{name}.properties: Property network not assigned")

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        body = {k: v for k, v in (await self.body(ctx, new)).items() if k in changed}
        if body:
            await ctx.api.put(f"{NEUTRON}/subnets/{ctx.physical_id}", {"subnet": body})


async def group_ids(ctx: Context, names: list[Any]) -> list[str]:
    return [(await find_neutron(ctx.api, "security-groups", "security_group", str(g)))["id"] for g in names]


class Port(Neutron):
    type = "OS::Neutron::Port"
    description = "A Neutron port on a network."
    collection, singular = "ports", "port"
    properties = {"name": "string", "network": "string", "network_id": "string", "fixed_ips": "list",
                  "security_groups": "list", "admin_state_up": "boolean", "mac_address": "string",
                  "binding:vnic_type": "string", "port_security_enabled": "boolean", "allowed_address_pairs": "list",
                  "value_specs": "map", "device_id": "string", "device_owner": "string", "qos_policy": "string",
                  "replacement_policy": "string", "dns_name": "string", "tags": "list"}
    passthrough = ("admin_state_up", "mac_address", "binding:vnic_type", "port_security_enabled",
                   "allowed_address_pairs", "device_id", "device_owner", "dns_name")
    update_allowed = frozenset({"name", "security_groups", "admin_state_up", "fixed_ips", "allowed_address_pairs",
                                "port_security_enabled", "value_specs", "device_id", "device_owner",
                                "binding:vnic_type", "dns_name", "replacement_policy"})
    attribute_keys = ("name", "network_id", "fixed_ips", "mac_address", "status", "device_id", "device_owner",
                      "admin_state_up", "security_groups", "allowed_address_pairs", "tenant_id")
    attribute_names = frozenset({"show", "subnets", *attribute_keys})

    async def body(self, ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
        body = await super().body(ctx, props)
        network = props.get("network") or props.get("network_id")
        if network:
            body["network_id"] = (await find_neutron(ctx.api, "networks", "network", str(network)))["id"]
        if props.get("fixed_ips") is not None:
            fixed = []
            for entry in props["fixed_ips"]:
                item = dropped_none({"ip_address": entry.get("ip_address")})
                subnet = entry.get("subnet") or entry.get("subnet_id")
                if subnet:
                    item["subnet_id"] = (await find_neutron(ctx.api, "subnets", "subnet", str(subnet)))["id"]
                fixed.append(item)
            body["fixed_ips"] = fixed
        if props.get("security_groups") is not None:
            body["security_groups"] = await group_ids(ctx, props["security_groups"])
        return body

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        body = {k: v for k, v in (await self.body(ctx, new)).items() if k in changed}
        if body:
            await ctx.api.put(f"{NEUTRON}/ports/{ctx.physical_id}", {"port": body})

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        found = await super().attributes(ctx)
        subnets = []
        for entry in found.get("fixed_ips") or []:
            try:
                subnets.append((await ctx.api.get(f"{NEUTRON}/subnets/{entry['subnet_id']}"))["subnet"])
            except NotFound:
                pass
        return {**found, "subnets": subnets}


class Router(Neutron):
    type = "OS::Neutron::Router"
    description = "A Neutron router, with its gateway on an external network."
    collection, singular = "routers", "router"
    properties = {"name": "string", "external_gateway_info": "map", "admin_state_up": "boolean",
                  "value_specs": "map", "distributed": "boolean", "ha": "boolean", "l3_agent_ids": "list",
                  "tags": "list"}
    passthrough = ("admin_state_up", "distributed", "ha")
    update_allowed = frozenset({"name", "external_gateway_info", "admin_state_up", "value_specs"})
    attribute_keys = ("name", "status", "external_gateway_info", "admin_state_up", "tenant_id")
    attribute_names = frozenset({"show", *attribute_keys})

    async def body(self, ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
        body = await super().body(ctx, props)
        gateway = props.get("external_gateway_info")
        if gateway:
            network = await find_neutron(ctx.api, "networks", "network", str(gateway.get("network")))
            body["external_gateway_info"] = dropped_none({"network_id": network["id"],
                                                          "enable_snat": gateway.get("enable_snat")})
        return body

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        body = {k: v for k, v in (await self.body(ctx, new)).items() if k in changed}
        if "external_gateway_info" in changed and "external_gateway_info" not in body:
            body["external_gateway_info"] = {}
        if body:
            await ctx.api.put(f"{NEUTRON}/routers/{ctx.physical_id}", {"router": body})


class RouterInterface(Plugin):
    type = "OS::Neutron::RouterInterface"
    description = "A subnet or port plugged into a router."
    properties = {"router": "string", "router_id": "string", "subnet": "string", "subnet_id": "string",
                  "port": "string", "port_id": "string"}

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        router = await find_neutron(ctx.api, "routers", "router", str(props.get("router") or props.get("router_id")))
        subnet, port = props.get("subnet") or props.get("subnet_id"), props.get("port") or props.get("port_id")
        if subnet:
            key, value = "subnet_id", (await find_neutron(ctx.api, "subnets", "subnet", str(subnet)))["id"]
        elif port:
            key, value = "port_id", (await find_neutron(ctx.api, "ports", "port", str(port)))["id"]
        else:
            raise ResourceFailed("Either subnet or port should be specified.")
        await ctx.api.put(f"{NEUTRON}/routers/{router['id']}/add_router_interface", {key: value})
        return f"{router['id']}:{key}={value}"

    @staticmethod
    def _parts(physical_id: str) -> tuple[str, str, str]:
        """(router id, "subnet_id" or "port_id", its value) of "ROUTER:KEY=VALUE"."""
        router, _, pair = physical_id.partition(":")
        key, _, value = pair.partition("=")
        return router, key, value

    async def delete(self, ctx: Context) -> None:
        if not ctx.physical_id:
            return
        router, key, value = self._parts(ctx.physical_id)
        await ctx.api.call("PUT", f"{NEUTRON}/routers/{router}/remove_router_interface", {key: value},
                           ok=(200, 404))

    async def check_live(self, ctx: Context) -> None:
        """The router still has the interface (NotFound once it was removed outside the stack)."""
        if not ctx.physical_id:
            return
        router, key, value = self._parts(ctx.physical_id)
        ports = (await ctx.api.get(f"{NEUTRON}/ports", device_id=router))["ports"]
        if not any(p["id"] == value if key == "port_id" else
                   any(ip.get("subnet_id") == value for ip in p.get("fixed_ips", [])) for p in ports):
            raise NotFound(f"Router {router} has no interface with {key} {value}.")


RULE_KEYS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
             "remote_group_id")


def rule_key(rule: dict[str, Any]) -> tuple[Any, ...]:
    """A rule as a comparable tuple (any address is the same as none), for a group's wanted and actual rules."""
    values = [rule.get(k) for k in RULE_KEYS]
    if values[5] in ("0.0.0.0/0", "::/0"):
        values[5] = None
    return tuple(str(v).lower() if v is not None else None for v in values)


class SecurityGroup(Plugin):
    type = "OS::Neutron::SecurityGroup"
    description = "A Neutron security group and its rules."
    properties = {"name": "string", "description": "string", "rules": "list", "tags": "list"}
    update_allowed = frozenset({"name", "description", "rules"})
    attribute_names = frozenset({"show"})

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        body = {"name": props.get("name") or ctx.physical_name, "description": props.get("description") or "",
                "tags": [ctx.tag]}
        group = (await ctx.api.post(f"{NEUTRON}/security-groups", {"security_group": body}))["security_group"]
        ctx.physical_id = group["id"]
        await self._rules(ctx, props.get("rules") or [])
        return str(group["id"])

    async def find(self, ctx: Context) -> str | None:
        return await by_tag(ctx.api, "security-groups", ctx.tag)

    async def _wanted(self, ctx: Context, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Heat's rules as Neutron's: ingress IPv4 by default; Neutron's default egress kept only
        when the template names no egress rule."""
        wanted = []
        for rule in rules:
            item = dropped_none({
                "direction": rule.get("direction") or "ingress", "ethertype": rule.get("ethertype") or "IPv4",
                "protocol": rule.get("protocol"), "port_range_min": rule.get("port_range_min"),
                "port_range_max": rule.get("port_range_max"), "remote_ip_prefix": rule.get("remote_ip_prefix")})
            if rule.get("remote_mode") == "remote_group_id":
                item.pop("remote_ip_prefix", None)
                item["remote_group_id"] = rule.get("remote_group_id") or ctx.physical_id
            elif rule.get("remote_group_id"):
                item["remote_group_id"] = (await find_neutron(ctx.api, "security-groups", "security_group",
                                                              str(rule["remote_group_id"])))["id"]
            wanted.append(item)
        if not any(r["direction"] == "egress" for r in wanted):
            wanted += [{"direction": "egress", "ethertype": "IPv4"}, {"direction": "egress", "ethertype": "IPv6"}]
        return wanted

    async def _rules(self, ctx: Context, rules: list[dict[str, Any]]) -> None:
        wanted = await self._wanted(ctx, rules)
        group = (await ctx.api.get(f"{NEUTRON}/security-groups/{ctx.physical_id}"))["security_group"]
        key = rule_key
        have = {key(r): r["id"] for r in group.get("security_group_rules", [])}
        want = {key(r): r for r in wanted}
        for k, rule_id in have.items():
            if k not in want:
                await ctx.api.delete(f"{NEUTRON}/security-group-rules/{rule_id}")
        for k, rule in want.items():
            if k not in have:
                await ctx.api.post(f"{NEUTRON}/security-group-rules",
                                   {"security_group_rule": {**rule, "security_group_id": ctx.physical_id}})

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        body = {k: new.get(k) or "" for k in ("name", "description") if k in changed}
        if "name" in body and not body["name"]:
            body["name"] = ctx.physical_name
        if body:
            await ctx.api.put(f"{NEUTRON}/security-groups/{ctx.physical_id}", {"security_group": body})
        if "rules" in changed:
            await self._rules(ctx, new.get("rules") or [])

    async def delete(self, ctx: Context) -> None:
        if ctx.physical_id:
            await ctx.api.delete(f"{NEUTRON}/security-groups/{ctx.physical_id}")

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        return {"show": (await ctx.api.get(f"{NEUTRON}/security-groups/{ctx.physical_id}"))["security_group"]}


class FloatingIP(Neutron):
    type = "OS::Neutron::FloatingIP"
    description = "A Neutron floating IP, on a port when one is given."
    collection, singular = "floatingips", "floatingip"
    properties = {"floating_network": "string", "floating_network_id": "string", "port_id": "string",
                  "fixed_ip_address": "string", "floating_ip_address": "string", "value_specs": "map",
                  "floating_subnet": "string", "dns_name": "string", "dns_domain": "string"}
    passthrough = ("fixed_ip_address", "floating_ip_address", "dns_name", "dns_domain")
    update_allowed = frozenset({"port_id", "fixed_ip_address", "value_specs"})
    attribute_keys = ("floating_ip_address", "floating_network_id", "port_id", "fixed_ip_address", "router_id",
                      "tenant_id")
    attribute_names = frozenset({"show", *attribute_keys})

    async def body(self, ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
        body = await super().body(ctx, props)
        network = props.get("floating_network") or props.get("floating_network_id")
        if network:
            body["floating_network_id"] = (await find_neutron(ctx.api, "networks", "network", str(network)))["id"]
        if props.get("port_id"):
            body["port_id"] = (await find_neutron(ctx.api, "ports", "port", str(props["port_id"])))["id"]
        return body

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        body = {"port_id": (await self.body(ctx, new)).get("port_id")}
        if new.get("fixed_ip_address"):
            body["fixed_ip_address"] = new["fixed_ip_address"]
        await ctx.api.put(f"{NEUTRON}/floatingips/{ctx.physical_id}", {"floatingip": body})


class FloatingIPAssociation(Plugin):
    type = "OS::Neutron::FloatingIPAssociation"
    description = "A floating IP put on a port."
    properties = {"floatingip_id": "string", "port_id": "string", "fixed_ip_address": "string"}
    required = frozenset({"floatingip_id", "port_id"})
    update_allowed = frozenset({"floatingip_id", "port_id", "fixed_ip_address"})

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        body = dropped_none({"port_id": props["port_id"], "fixed_ip_address": props.get("fixed_ip_address")})
        await ctx.api.put(f"{NEUTRON}/floatingips/{props['floatingip_id']}", {"floatingip": body})
        return str(props["floatingip_id"])

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        if old.get("floatingip_id") != new.get("floatingip_id"):
            await self.delete(ctx)
        await self.create(ctx, new)

    async def delete(self, ctx: Context) -> None:
        if ctx.physical_id:
            await ctx.api.call("PUT", f"{NEUTRON}/floatingips/{ctx.physical_id}", {"floatingip": {"port_id": None}},
                               ok=(200, 404))

"""Drift: what a stack check finds changed outside the stack, read from the cloud's own database
(through its public APIs, as the stack's owner), property by property.

``observed(row, ctx)`` answers the properties whose value in the cloud is not the stack's, with
the cloud's value. The check then marks the resource CHECK FAILED, stores those values as its
properties (what the stack's next update sees, and so changes back in place: a renamed server is
renamed, a deleted rule is made again) and keeps the stack's own values in ``data[INTENDED]``, so
that a second check compares with the stack's values again. A row so marked is not broken
(``broken``): an update repairs it in place rather than replacing it.

Only what the template sets (and a generated name) is compared: a property the template leaves
to the cloud's default has no value of the stack's to drift from.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from cloudbox.errors import NotFound
from cloudbox.orchestration.resources import PLUGINS, Context
from cloudbox.orchestration.resources.base import find_neutron
from cloudbox.orchestration.resources.network import rule_key

INTENDED = "drift_intended"  # data key: the stack's values of the drifted properties
NOVA, NEUTRON, CINDER = "/compute/v2.1", "/network/v2.0", "/volume/v3"

Reader = Callable[[Context, dict[str, Any]], Awaitable[dict[str, Any]]]


def broken(row: dict[str, Any]) -> bool:
    """A row an update replaces: FAILED, unless only its check found it drifted."""
    return row["status"] == "FAILED" and not (row["action"] == "CHECK" and INTENDED in row["data"])


def intended(row: dict[str, Any]) -> dict[str, Any]:
    """The properties as the stack set them (a drifted row stores the cloud's values instead)."""
    return {**row["properties"], **row["data"].get(INTENDED, {})}


async def observed(row: dict[str, Any], ctx: Context) -> dict[str, Any]:
    reader = READERS.get(row["type"])
    if reader is None or not ctx.physical_id:
        return {}
    return await reader(ctx, intended(row))


def describe(found: dict[str, Any], props: dict[str, Any], ctx: Context) -> str:
    parts = []
    for key in sorted(found):
        if key == "rules":
            parts.append("rules differ from the stack's")
        else:
            wanted = props.get(key) if key != "name" else props.get(key) or ctx.physical_name
            parts.append(f"{key} is {found[key]!r} in the cloud, {wanted!r} in the stack")
    return "drift (changed outside the stack): " + "; ".join(parts)


def _named(found: dict[str, Any], thing: dict[str, Any], props: dict[str, Any], default: str | None) -> None:
    wanted = props.get("name") or default
    if wanted is not None and thing.get("name") != wanted:
        found["name"] = thing.get("name")


def _given(found: dict[str, Any], thing: dict[str, Any], props: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if props.get(key) is not None and thing.get(key) != props[key]:
            found[key] = thing.get(key)


async def _server(ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
    server = (await ctx.api.get(f"{NOVA}/servers/{ctx.physical_id}"))["server"]
    found: dict[str, Any] = {}
    _named(found, server, props, ctx.physical_name)
    wanted = {str(k): str(v) for k, v in (props.get("metadata") or {}).items()}
    if props.get("metadata") is not None and server.get("metadata", {}) != wanted:
        found["metadata"] = server.get("metadata", {})
    return found


async def _security_group(ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
    group = (await ctx.api.get(f"{NEUTRON}/security-groups/{ctx.physical_id}"))["security_group"]
    found: dict[str, Any] = {}
    _named(found, group, props, ctx.physical_name)
    if props.get("description") is not None and group.get("description", "") != props["description"]:
        found["description"] = group.get("description", "")
    wanted = await PLUGINS["OS::Neutron::SecurityGroup"]._wanted(ctx, props.get("rules") or [])  # noqa: SLF001
    have = group.get("security_group_rules", [])
    if {rule_key(r) for r in have} != {rule_key(r) for r in wanted}:
        found["rules"] = [{k: r.get(k) for k in ("direction", "ethertype", "protocol", "port_range_min",
                                                 "port_range_max", "remote_ip_prefix") if r.get(k) is not None}
                          for r in have]
    return found


def _neutron(collection: str, singular: str, *keys: str) -> Reader:
    async def read(ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
        thing = (await ctx.api.get(f"{NEUTRON}/{collection}/{ctx.physical_id}"))[singular]
        found: dict[str, Any] = {}
        _named(found, thing, props, None)
        _given(found, thing, props, *keys)
        return found

    return read


async def _volume(ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
    volume = (await ctx.api.get(f"{CINDER}/volumes/{ctx.physical_id}"))["volume"]
    found: dict[str, Any] = {}
    _named(found, volume, props, None)
    _given(found, volume, props, "size", "description")
    return found


async def _floating(ctx: Context, props: dict[str, Any], floating_id: str) -> dict[str, Any]:
    """Where a floating IP is: on the stack's port (and fixed address), or moved or taken off outside it."""
    floating = (await ctx.api.get(f"{NEUTRON}/floatingips/{floating_id}"))["floatingip"]
    found: dict[str, Any] = {}
    if props.get("port_id"):
        try:  # the template may name the port; the cloud answers its id
            wanted = (await find_neutron(ctx.api, "ports", "port", str(props["port_id"])))["id"]
        except NotFound:
            wanted = None  # the stack's port is gone: wherever the address is now, it drifted
        if floating.get("port_id") != wanted:
            found["port_id"] = floating.get("port_id")
    if props.get("fixed_ip_address") and floating.get("fixed_ip_address") != props["fixed_ip_address"]:
        found["fixed_ip_address"] = floating.get("fixed_ip_address")
    return found


async def _floating_ip(ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
    return await _floating(ctx, props, ctx.physical_id)


async def _floating_association(ctx: Context, props: dict[str, Any]) -> dict[str, Any]:
    return await _floating(ctx, props, str(props.get("floatingip_id") or ctx.physical_id))


READERS: dict[str, Reader] = {
    "OS::Nova::Server": _server,
    "OS::Neutron::SecurityGroup": _security_group,
    "OS::Neutron::Net": _neutron("networks", "network", "admin_state_up", "shared"),
    "OS::Neutron::Subnet": _neutron("subnets", "subnet", "gateway_ip", "enable_dhcp"),
    "OS::Neutron::Port": _neutron("ports", "port", "admin_state_up"),
    "OS::Neutron::Router": _neutron("routers", "router", "admin_state_up"),
    "OS::Cinder::Volume": _volume,
    "OS::Neutron::FloatingIP": _floating_ip,
    "OS::Neutron::FloatingIPAssociation": _floating_association,
}

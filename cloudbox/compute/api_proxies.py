"""Nova's proxy APIs: answers that Nova builds by asking the network service, in Nova's shapes.

``servers/{id}/ips`` and ``servers/{id}/os-security-groups`` are served at every microversion;
``os-security-groups`` and ``os-security-group-rules`` were removed at 2.36 (404 from then on),
as Nova removed its proxies.  Each handler calls the network service's public methods with the
caller's own credentials, so the network service decides what the caller may see and change.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, Iterator

from werkzeug.datastructures import MultiDict

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute.api import Version, project_of, route
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, Conflict, NotFound

PROXY_MAX = (2, 35)  # the last microversion serving Nova's network proxies
MANY = 1000  # one page holds every port of a server, every group of a project


def proxy_only(version: Version, what: str, owner: str = "network") -> None:
    """Nova's proxies to the network and image services answer 404 from 2.36 on (those services
    serve them)."""
    if version > PROXY_MAX:
        raise NotFound(f"{what} is not served at microversion {version[0]}.{version[1]}: "
                       f"use the {owner} service (removed at 2.36).")


@contextlib.contextmanager
def conflict_is_bad_request() -> Iterator[None]:
    """Nova answers the network service's conflicts (a group in use, a duplicate rule, a fixed IP
    with a floating IP already) with 400."""
    try:
        yield
    except Conflict as exc:
        raise BadRequest(str(exc)) from None


def group_id_of(value: Any) -> str:
    """Nova checks a security group id is a UUID before asking the network service (else 400)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise BadRequest(f"Security group id should be uuid: {str(value)[:60]!r}.") from None


# --- servers/{id}/ips ------------------------------------------------------------------------------
def ip_view(addresses: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Nova's ips view: only each address and its version (no OS-EXT-IPS keys)."""
    return {net: [{"version": a["version"], "addr": a["addr"]} for a in entries] for net, entries in addresses.items()}


async def server_ips(svc: ComputeService, call: Call, server_id: str) -> dict[str, list[dict[str, Any]]]:
    server = await svc.visible_server(call.auth, server_id)
    (addressed,) = await svc.addressed([server])
    return ip_view(addressed["addresses"])


async def list_ips(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    return {"addresses": await server_ips(svc, call, server_id)}


async def show_ips(svc: ComputeService, call: Call, version: Version, server_id: str, network: str) -> Any:
    addresses = await server_ips(svc, call, server_id)
    if network not in addresses:
        raise NotFound("Instance is not a member of specified network")
    return {network: addresses[network]}


# --- security groups in Nova's shape ---------------------------------------------------------------
def nova_rule(rule: dict[str, Any], names: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A Neutron ingress rule as Nova shows it: ports -1 when open, a remote group by name."""
    protocol = rule["protocol"]
    if protocol == "icmp" and rule["ethertype"] == "IPv6":
        protocol = "icmpv6"
    view: dict[str, Any] = {
        "id": rule["id"], "parent_group_id": rule["security_group_id"], "ip_protocol": protocol,
        "from_port": -1 if rule["port_range_min"] is None else rule["port_range_min"],
        "to_port": -1 if rule["port_range_max"] is None else rule["port_range_max"],
        "group": {}, "ip_range": {},
    }
    remote = rule.get("remote_group_id")
    if remote:
        group = names.get(remote)
        view["group"] = {"name": group["name"] if group else None,
                         "tenant_id": group["project_id"] if group else rule["project_id"]}
    elif rule.get("remote_ip_prefix"):
        view["ip_range"] = {"cidr": rule["remote_ip_prefix"]}
    return view


def nova_group(group: dict[str, Any], names: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A Neutron security group as Nova shows it: only its ingress rules (Nova's rules are ingress)."""
    rules = [nova_rule(r, names) for r in group["security_group_rules"] if r["direction"] == "ingress"]
    return {"id": group["id"], "name": group["name"], "description": group["description"],
            "tenant_id": group["project_id"], "rules": rules}


async def groups_by_id(svc: ComputeService, call: Call, query: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    found, _ = await svc.network.list(call.auth, "security_groups", MultiDict(query), MANY, None)
    return {g["id"]: g for g in found}


async def server_ports(svc: ComputeService, call: Call, server_id: str) -> list[dict[str, Any]]:
    found, _ = await svc.network.list(call.auth, "ports", MultiDict({"device_id": [server_id]}), MANY, None)
    return found


async def server_groups(svc: ComputeService, call: Call, version: Version, server_id: str) -> Any:
    """The groups of the server's ports (what Nova asks Neutron for; Ansible reads it every run)."""
    server = await svc.visible_server(call.auth, server_id)
    ids = sorted({g for port in await server_ports(svc, call, server["id"]) for g in port["security_groups"]})
    if not ids:
        return {"security_groups": []}
    groups = await groups_by_id(svc, call, {"id": ids})
    return {"security_groups": [nova_group(groups[i], groups) for i in ids if i in groups]}


async def change_server_group(svc: ComputeService, call: Call, server: dict[str, Any], name: Any,
                              add: bool) -> Reply:
    """addSecurityGroup/removeSecurityGroup: every port of the server gains or loses the group."""
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Security group name cannot be empty.")
    found = await groups_by_id(svc, call, {"name": [name]}) or await groups_by_id(svc, call, {"id": [name]})
    mine = [g for g in found.values() if g["project_id"] == server["project_id"]] or list(found.values())
    if not mine:
        raise NotFound(f"Security group {name[:255]} not found for project {server['project_id']}.")
    if len(mine) > 1:
        raise BadRequest(f"Multiple security groups found matching '{name[:255]}'. Use an ID to be more specific.")
    group_id = mine[0]["id"]
    ports = await server_ports(svc, call, server["id"])
    if not ports:
        raise BadRequest(f"Server {server['id']} has no network ports to apply a security group to.")
    if add and all(group_id in p["security_groups"] for p in ports):
        raise BadRequest(f"Security group {name[:255]} is already associated with the instance {server['id']}")
    if not add and not any(group_id in p["security_groups"] for p in ports):
        raise NotFound(f"Security group {name[:255]} not associated with the instance {server['id']}")
    names = {g["id"]: g["name"] for g in (await groups_by_id(svc, call, {})).values()}
    on_ports: list[str] = []
    for port in ports:
        groups = [g for g in port["security_groups"] if g != group_id] + ([group_id] if add else [])
        await svc.network.update_port(call.auth, port["id"], {"security_groups": groups})
        on_ports += [names.get(g, g) for g in groups if names.get(g, g) not in on_ports]
    # The server shows the groups of its ports (none: no security_groups at all, as in Nova).
    await svc.update(server["id"], {"security_groups": on_ports})
    return Reply(None, 202)


async def list_groups(svc: ComputeService, call: Call, version: Version) -> Any:
    proxy_only(version, "os-security-groups")
    query: dict[str, list[str]] = {}
    if not (call.auth.is_cloud_reader and call.query.get("all_tenants") not in (None, "0", "false", "False")):
        query["project_id"] = [project_of(call)]
    groups = await groups_by_id(svc, call, query)
    limit, marker = call.page()
    ordered = sorted(groups.values(), key=lambda g: g["id"])
    if marker:
        ordered = [g for g in ordered if g["id"] > marker]
    return {"security_groups": [nova_group(g, groups) for g in ordered[:limit]]}


async def show_group(svc: ComputeService, call: Call, version: Version, group_id: str) -> Any:
    proxy_only(version, "os-security-groups")
    group_id = group_id_of(group_id)
    group = await svc.network.show(call.auth, "security_groups", group_id)
    return {"security_group": nova_group(group, await remote_groups(svc, call, group))}


async def remote_groups(svc: ComputeService, call: Call, group: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ids = sorted({r["remote_group_id"] for r in group["security_group_rules"] if r.get("remote_group_id")})
    return {group["id"]: group, **(await groups_by_id(svc, call, {"id": ids}) if ids else {})}


def group_fields(body: dict[str, Any]) -> dict[str, str]:
    """Nova's checks of a group's name and description: strings, trimmed, 1..255 characters."""
    fields = {}
    for key in ("name", "description"):
        value = body.get(key)
        if not isinstance(value, str):
            raise BadRequest(f"Security group {key} is not a string or unicode")
        if not value.strip() or len(value) > 255:
            raise BadRequest(f"Security group {key} should not be empty nor longer than 255 characters.")
        fields[key] = value  # kept as sent (leading and trailing spaces too), as Nova keeps it
    return fields


async def create_group(svc: ComputeService, call: Call, version: Version) -> Any:
    proxy_only(version, "os-security-groups")
    fields = group_fields(call.body["security_group"])
    group = await svc.network.create_security_group(call.auth, {**fields, "project_id": project_of(call)})
    return {"security_group": nova_group(group, {group["id"]: group})}


async def update_group(svc: ComputeService, call: Call, version: Version, group_id: str) -> Any:
    proxy_only(version, "os-security-groups")
    group_id = group_id_of(group_id)
    fields = group_fields(call.body["security_group"])
    await svc.network.show(call.auth, "security_groups", group_id)
    group = await svc.network.update_security_group(call.auth, group_id, fields)
    return {"security_group": nova_group(group, await remote_groups(svc, call, group))}


async def delete_group(svc: ComputeService, call: Call, version: Version, group_id: str) -> Reply:
    proxy_only(version, "os-security-groups")
    with conflict_is_bad_request():  # the default group, a group in use
        await svc.network.delete_security_group(call.auth, group_id_of(group_id))
    return Reply(None, 202)


def port_bound(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} is not an integer.") from None
    if not -1 <= number <= 65535:
        raise BadRequest(f"{name} must be between -1 and 65535.")
    return number


async def create_rule(svc: ComputeService, call: Call, version: Version) -> Any:
    """An ingress rule, translated to Neutron's fields as Nova translates it."""
    proxy_only(version, "os-security-group-rules")
    args = call.body["security_group_rule"]
    parent = group_id_of(args.get("parent_group_id"))
    protocol = args.get("ip_protocol")
    protocol = protocol.lower() if isinstance(protocol, str) else protocol
    if protocol not in (None, "tcp", "udp", "icmp"):
        raise BadRequest(f"Invalid IP protocol {str(protocol)[:20]}.")
    low, high = port_bound(args.get("from_port"), "from_port"), port_bound(args.get("to_port"), "to_port")
    if protocol in ("tcp", "udp"):
        if low is None or high is None or low < 1 or high < low:
            raise BadRequest("Invalid port range: from_port and to_port must be 1..65535 and ordered.")
    elif protocol == "icmp":
        low, high = (None if low == -1 else low), (None if high == -1 else high)
        if (low is not None and low > 255) or (high is not None and high > 255):
            raise BadRequest("Invalid ICMP type or code.")
    elif low not in (None, -1) or high not in (None, -1):
        raise BadRequest("Ports need a protocol.")
    else:
        low = high = None
    group_id, cidr = args.get("group_id"), args.get("cidr")
    group_id = group_id_of(group_id) if group_id else None
    if group_id and cidr:
        raise BadRequest("A rule takes either a cidr or a group_id, not both.")
    parent_group = await svc.network.show(call.auth, "security_groups", parent)
    ethertype = "IPv6" if isinstance(cidr, str) and ":" in cidr else "IPv4"
    body = {"security_group_id": parent_group["id"], "direction": "ingress", "ethertype": ethertype,
            "protocol": protocol, "port_range_min": low, "port_range_max": high,
            "remote_group_id": group_id or None, "remote_ip_prefix": None if group_id else (cidr or "0.0.0.0/0")}
    with conflict_is_bad_request():  # a duplicate rule
        rule = await svc.network.create_rule(call.auth, body)
    names = {parent_group["id"]: parent_group}
    if group_id:
        names.update(await groups_by_id(svc, call, {"id": [group_id]}))
    view = nova_rule(rule, names)
    if cidr and view["ip_range"]:
        view["ip_range"] = {"cidr": cidr}  # Nova answers the cidr as asked; the network service keeps its prefix
    return {"security_group_rule": view}


async def delete_rule(svc: ComputeService, call: Call, version: Version, rule_id: str) -> Reply:
    proxy_only(version, "os-security-group-rules")
    await svc.network.delete_rule(call.auth, rule_id)
    return Reply(None, 202)


# --- extensions ------------------------------------------------------------------------------------
# Nova's v2.1 list is fixed: it names every extension merged into v2.1, whatever a deployment serves
# (clients learn what is served from the microversion); cloudbox answers the same names.
EXTENSIONS = (
    ("Multinic", "NMN"), ("DiskConfig", "OS-DCF"), ("ExtendedAvailabilityZone", "OS-EXT-AZ"),
    ("ImageSize", "OS-EXT-IMG-SIZE"), ("ExtendedIps", "OS-EXT-IPS"), ("ExtendedIpsMac", "OS-EXT-IPS-MAC"),
    ("ExtendedServerAttributes", "OS-EXT-SRV-ATTR"), ("ExtendedStatus", "OS-EXT-STS"),
    ("FlavorDisabled", "OS-FLV-DISABLED"), ("FlavorExtraData", "OS-FLV-EXT-DATA"), ("SchedulerHints", "OS-SCH-HNT"),
    ("ServerUsage", "OS-SRV-USG"), ("AdminActions", "os-admin-actions"), ("Aggregates", "os-aggregates"),
    ("AvailabilityZone", "os-availability-zone"), ("ConfigDrive", "os-config-drive"),
    ("ConsoleOutput", "os-console-output"), ("Consoles", "os-consoles"), ("CreateBackup", "os-create-backup"),
    ("Evacuate", "os-evacuate"), ("FlavorAccess", "os-flavor-access"), ("FlavorExtraSpecs", "os-flavor-extra-specs"),
    ("FlavorManage", "os-flavor-manage"), ("FloatingIps", "os-floating-ips"), ("Hosts", "os-hosts"),
    ("Hypervisors", "os-hypervisors"), ("InstanceActions", "os-instance-actions"), ("Keypairs", "os-keypairs"),
    ("LockServer", "os-lock-server"), ("Networks", "os-networks"), ("QuotaClasses", "os-quota-class-sets"),
    ("Quotas", "os-quota-sets"), ("SecurityGroups", "os-security-groups"), ("ServerGroups", "os-server-groups"),
    ("ServerStartStop", "os-server-start-stop"), ("Services", "os-services"),
    ("SimpleTenantUsage", "os-simple-tenant-usage"), ("Extensions", "extensions"), ("Flavors", "flavors"),
    ("Images", "images"), ("ImageMetadata", "image-metadata"), ("Ips", "ips"), ("Limits", "limits"),
    ("Servers", "servers"), ("ServerMetadata", "server-metadata"), ("Versions", "versions"),
)


def extension_view(name: str, alias: str) -> dict[str, Any]:
    return {"name": name, "alias": alias, "description": f"{name} support.", "links": [],
            "namespace": "http://docs.openstack.org/compute/ext/fake_xml", "updated": "2014-12-03T00:00:00Z"}


async def list_extensions(svc: ComputeService, call: Call, version: Version) -> Any:
    return {"extensions": [extension_view(n, a) for n, a in EXTENSIONS]}


async def show_extension(svc: ComputeService, call: Call, version: Version, alias: str) -> Any:
    for name, known in EXTENSIONS:
        if known == alias:
            return {"extension": extension_view(name, known)}
    raise NotFound(f"Extension {alias[:80]} could not be found.")


GROUP_BODY = {"type": "object", "required": ["security_group"], "properties": {"security_group": {"type": "object"}}}
RULE_BODY = {"type": "object", "required": ["security_group_rule"],
             "properties": {"security_group_rule": {"type": "object"}}}


def routes(svc: ComputeService) -> list[Route]:
    return [
        route(svc, "GET", "/extensions", list_extensions),
        route(svc, "GET", "/extensions/{alias}", show_extension),
        route(svc, "GET", "/servers/{server_id}/ips", list_ips),
        route(svc, "GET", "/servers/{server_id}/ips/{network}", show_ips),
        route(svc, "GET", "/servers/{server_id}/os-security-groups", server_groups),
        route(svc, "GET", "/os-security-groups", list_groups, query=("all_tenants", "limit", "marker")),
        route(svc, "POST", "/os-security-groups", create_group, body=GROUP_BODY),
        route(svc, "GET", "/os-security-groups/{group_id}", show_group),
        route(svc, "PUT", "/os-security-groups/{group_id}", update_group, body=GROUP_BODY),
        route(svc, "DELETE", "/os-security-groups/{group_id}", delete_group, status=202),
        route(svc, "POST", "/os-security-group-rules", create_rule, body=RULE_BODY),
        route(svc, "DELETE", "/os-security-group-rules/{rule_id}", delete_rule, status=202),
    ]

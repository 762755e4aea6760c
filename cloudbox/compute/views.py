"""Nova JSON shapes for servers, flavors and key pairs, by microversion. Pure."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any

from cloudbox.api import microversions
from cloudbox.clock import parse_iso

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 96)
PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")
POWER_STATES = {"nostate": 0, "running": 1, "paused": 3, "shutdown": 4, "crashed": 6, "suspended": 7}


def parse_version(text: str | None) -> tuple[int, int]:
    """The microversion a request asked for (headers already narrowed to the compute value)."""
    return microversions.parse(text, MIN_VERSION, MAX_VERSION)


def version_document(base: str, legacy: bool = False) -> dict[str, Any]:
    """The v2.1 version document, or (``legacy``) v2.0's: Nova's v2 endpoint, without microversions."""
    if legacy:
        return {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
                "updated": "2011-01-21T11:33:21Z", "links": [{"rel": "self", "href": base + "/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.compute+json;version=2"}]}
    return {
        "id": "v2.1", "status": "CURRENT", "version": f"{MAX_VERSION[0]}.{MAX_VERSION[1]}",
        "min_version": "2.1", "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": base + "/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    }


def link(base: str, kind: str, id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base}/{kind}/{id}"}, {"rel": "bookmark", "href": f"{base}/{kind}/{id}"}]


def render_flavor(row: dict[str, Any], base: str, version: tuple[int, int]) -> dict[str, Any]:
    body = {
        "id": row["id"], "name": row["name"], "vcpus": row["vcpus"], "ram": row["ram"], "disk": row["disk"],
        "OS-FLV-EXT-DATA:ephemeral": row["ephemeral"], "swap": row["swap"] or "",
        "rxtx_factor": row["rxtx_factor"], "os-flavor-access:is_public": row["is_public"],
        "OS-FLV-DISABLED:disabled": False, "links": link(base, "flavors", row["id"]),
    }
    if version >= (2, 55):
        body["description"] = row["description"]
    if version >= (2, 61):
        body["extra_specs"] = row["extra_specs"]
    return body


def render_server(row: dict[str, Any], base: str, version: tuple[int, int], *, admin: bool,
                  detail: bool = True, server_groups: bool = False) -> dict[str, Any]:
    """A server at ``version``; ``server_groups``: the groups it belongs to from 2.71 (Nova shows
    them in the answers of show, update and rebuild, not in lists)."""
    if not detail:
        return {"id": row["id"], "name": row["name"], "links": link(base, "servers", row["id"])}
    flavor = row["flavor"]
    if version >= (2, 47):
        flavor_view: dict[str, Any] = {
            "vcpus": flavor["vcpus"], "ram": flavor["ram"], "disk": flavor["disk"],
            "ephemeral": flavor.get("ephemeral", 0), "swap": flavor.get("swap", 0),
            "original_name": flavor["name"], "extra_specs": flavor.get("extra_specs", {}),
        }
    else:
        flavor_view = {"id": flavor["id"], "links": link(base, "flavors", flavor["id"])}
    body: dict[str, Any] = {
        # A server whose host stopped heartbeating is shown UNKNOWN until the host is back or it is evacuated.
        "id": row["id"], "name": row["name"], "status": "UNKNOWN" if row.get("host_down") else row["status"],
        "tenant_id": row["project_id"],
        "user_id": row["user_id"], "metadata": row["metadata"], "hostId": _host_id(row),
        "image": {"id": row["image_id"], "links": link(base, "images", row["image_id"])} if row["image_id"] else "",
        "flavor": flavor_view, "created": row["created_at"], "updated": row["updated_at"],
        "addresses": row.get("addresses", {}), "accessIPv4": row.get("access_ipv4") or "", "accessIPv6": row.get("access_ipv6") or "",
        "links": link(base, "servers", row["id"]), "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": row["availability_zone"] or "",
        "config_drive": "True" if row["config_drive"] else "", "key_name": row["key_name"],
        "OS-SRV-USG:launched_at": row["launched_at"], "OS-SRV-USG:terminated_at": None,
        "OS-EXT-STS:task_state": row["task_state"], "OS-EXT-STS:vm_state": row["vm_state"],
        "OS-EXT-STS:power_state": row["power_state"],
        "os-extended-volumes:volumes_attached": [
            {"id": v["id"], **({"delete_on_termination": v["delete_on_termination"]} if version >= (2, 3) else {})}
            for v in row.get("volumes", ())],
        "security_groups": [{"name": g} for g in (row.get("security_groups") if row.get("security_groups")
                                                  is not None else ["default"])],
    }
    if body["status"] in PROGRESS_STATUSES:  # Nova shows progress only while it can mean something
        body["progress"] = 0
    if not body["security_groups"]:
        del body["security_groups"]  # Nova shows none when the server's ports have no group
    if row["status"] == "ERROR" and row["fault"]:
        # Details (host paths, tool output) are for the cloud's admins, as in Nova.
        body["fault"] = row["fault"] if admin else {k: v for k, v in row["fault"].items() if k != "details"}
    if version >= (2, 9):
        body["locked"] = row["locked"]
    if version >= (2, 19):
        body["description"] = row["description"]
    if version >= (2, 26):
        body["tags"] = row["tags"]
    if version >= (2, 63):
        body["trusted_image_certificates"] = None
    if version >= (2, 71) and server_groups:
        body["server_groups"] = [row["server_group_id"]] if row.get("server_group_id") else []
    if version >= (2, 73):
        body["locked_reason"] = row.get("locked_reason")
    if version >= (2, 96):
        body["pinned_availability_zone"] = None
    if version >= (2, 3) and admin:
        body.update({
            "OS-EXT-SRV-ATTR:host": row["host"], "OS-EXT-SRV-ATTR:hypervisor_hostname": row["host"],
            "OS-EXT-SRV-ATTR:instance_name": f"cloudbox-{row['id']}",
            "OS-EXT-SRV-ATTR:hostname": row["hostname"], "OS-EXT-SRV-ATTR:reservation_id": "",
            "OS-EXT-SRV-ATTR:launch_index": 0, "OS-EXT-SRV-ATTR:kernel_id": "",
            "OS-EXT-SRV-ATTR:ramdisk_id": "", "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
            "OS-EXT-SRV-ATTR:user_data": row["user_data"],
        })
    elif admin:
        body.update({"OS-EXT-SRV-ATTR:host": row["host"], "OS-EXT-SRV-ATTR:hypervisor_hostname": row["host"],
                     "OS-EXT-SRV-ATTR:instance_name": f"cloudbox-{row['id']}"})
    if version >= (2, 16):
        body["host_status"] = ("DOWN" if row.get("host_down") else "UP") if admin and row["host"] else ""
    return body


# Before 2.75 Nova answers an update and a rebuild with the basic server: none of the extensions'
# attributes, and addresses without their OS-EXT-IPS keys (2.75 made them the same as show).
CHANGED_HIDDEN = ("config_drive", "key_name", "security_groups", "os-extended-volumes:volumes_attached",
                  "host_status")
CHANGED_HIDDEN_PREFIXES = ("OS-EXT-AZ:", "OS-EXT-STS:", "OS-SRV-USG:", "OS-EXT-SRV-ATTR:")


def changed_server(body: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
    """A rendered server as an update (or rebuild) answers it at ``version``."""
    if version >= (2, 75):
        return body
    out = {k: v for k, v in body.items() if k not in CHANGED_HIDDEN and not k.startswith(CHANGED_HIDDEN_PREFIXES)}
    out["addresses"] = {net: [{"version": a["version"], "addr": a["addr"]} for a in entries]
                        for net, entries in body.get("addresses", {}).items()}
    return out


def rebuilt_server(body: dict[str, Any], version: tuple[int, int], user_data: str | None) -> dict[str, Any]:
    """A rendered server as a rebuild answers it: the basic server before 2.75, with its
    ``key_name`` from 2.54 (a rebuild may change the key), and from 2.57 its ``user_data``
    (rebuild's alone; from 2.75 it replaces an admin's OS-EXT-SRV-ATTR:user_data)."""
    out = changed_server(body, version)
    if version >= (2, 54):
        out["key_name"] = body.get("key_name")
    if version >= (2, 57):
        out.pop("OS-EXT-SRV-ATTR:user_data", None)
        out["user_data"] = user_data
    return out


def _host_id(row: dict[str, Any]) -> str:
    return host_id(row["host"], row["project_id"])


def host_id(host: str | None, project_id: str) -> str:
    """Nova's hostId: a hash of the project and the host, so a project cannot map the cloud's hosts."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def render_keypair(row: dict[str, Any], version: tuple[int, int], *, detail: bool = True) -> dict[str, Any]:
    body = {"name": row["name"], "public_key": row["public_key"], "fingerprint": row["fingerprint"]}
    if version >= (2, 2):
        body["type"] = row["type"]
    if detail:
        body.update({"user_id": row["user_id"], "created_at": row["created_at"], "deleted": False,
                     "deleted_at": None, "updated_at": None, "id": 0})
    return body


def render_flavor_summary(row: dict[str, Any], base: str, version: tuple[int, int]) -> dict[str, Any]:
    body = {"id": row["id"], "name": row["name"], "links": link(base, "flavors", row["id"])}
    if version >= (2, 55):
        body["description"] = row["description"]
    return body


def render_flavor_access(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": r["flavor_id"], "tenant_id": r["project_id"]} for r in rows]}


def render_group(group: dict[str, Any], members: list[str], version: tuple[int, int]) -> dict[str, Any]:
    body: dict[str, Any] = {"id": group["id"], "name": group["name"], "members": members, "metadata": {}}
    if version >= (2, 64):
        body.update({"policy": group["policy"], "rules": {}, "project_id": group["project_id"],
                     "user_id": group["user_id"]})
        body.pop("metadata")
    else:
        body["policies"] = [group["policy"]]
    if (2, 13) <= version < (2, 64):
        body.update({"project_id": group["project_id"], "user_id": group["user_id"]})
    return body


def render_aggregate(agg: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
    body = {
        "id": agg["id"], "name": agg["name"], "availability_zone": agg["availability_zone"],
        "hosts": agg["hosts"], "metadata": agg["metadata"], "created_at": agg["created_at"],
        "updated_at": agg["updated_at"], "deleted": False, "deleted_at": None,
    }
    if version >= (2, 41):
        body["uuid"] = agg["uuid"]
    return body


# --- quotas, limits, usage ---------------------------------------------------------

def render_quota_set(project_id: str | None, limits: dict[str, int], usage: dict[str, int] | None,
                     resources: tuple[str, ...]) -> dict[str, Any]:
    """A quota set: limits only, or (``usage`` given) limit, in_use and reserved per resource."""
    body: dict[str, Any] = {"id": project_id} if project_id is not None else {}
    for key in resources:
        body[key] = limits[key] if usage is None else {"limit": limits[key], "in_use": usage.get(key, 0), "reserved": 0}
    return body


def render_limits(limits: dict[str, int], usage: dict[str, int], version: tuple[int, int]) -> dict[str, Any]:
    absolute = {
        "maxTotalInstances": limits["instances"], "maxTotalCores": limits["cores"],
        "maxTotalRAMSize": limits["ram"], "maxTotalKeypairs": limits["key_pairs"],
        "maxServerMeta": limits["metadata_items"], "maxServerGroups": limits["server_groups"],
        "maxServerGroupMembers": limits["server_group_members"],
        "totalInstancesUsed": usage["instances"], "totalCoresUsed": usage["cores"],
        "totalRAMUsed": usage["ram"], "totalServerGroupsUsed": usage["server_groups"],
        "maxPersonality": 5, "maxPersonalitySize": 10240, "maxImageMeta": 128,
        "maxSecurityGroups": 10, "maxSecurityGroupRules": 20, "maxTotalFloatingIps": 10,
        "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0,
    }
    if version >= (2, 36):
        for key in ("maxSecurityGroups", "maxSecurityGroupRules", "maxTotalFloatingIps",
                    "totalFloatingIpsUsed", "totalSecurityGroupsUsed"):
            absolute.pop(key)
    if version >= (2, 57):
        absolute.pop("maxPersonality")
        absolute.pop("maxPersonalitySize")
    return {"limits": {"absolute": absolute, "rate": []}}


def usage_time(ts: float) -> str:
    """Simple tenant usage's times: UTC with microseconds and no zone, as Nova writes them."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def render_tenant_usages(rows: list[dict[str, Any]], start: float, end: float, now: float) -> list[dict[str, Any]]:
    """Server hours per project between ``start`` and ``end`` (nothing counts after ``now``)."""
    per: dict[str, dict[str, Any]] = {}
    for row in rows:
        began = parse_iso(row["launched_at"] or row["created_at"])
        hours = max(0.0, (min(end, now) - max(start, began)) / 3600)
        u = per.setdefault(row["project_id"], {
            "tenant_id": row["project_id"], "total_hours": 0.0, "total_vcpus_usage": 0.0,
            "total_memory_mb_usage": 0.0, "total_local_gb_usage": 0.0, "server_usages": [],
            "start": usage_time(start), "stop": usage_time(end)})
        f = row["flavor"]
        u["total_hours"] += hours
        u["total_vcpus_usage"] += hours * f["vcpus"]
        u["total_memory_mb_usage"] += hours * f["ram"]
        u["total_local_gb_usage"] += hours * f["disk"]
        u["server_usages"].append({
            "instance_id": row["id"], "name": row["name"], "hours": hours, "vcpus": f["vcpus"],
            "memory_mb": f["ram"], "local_gb": f["disk"], "flavor": f["name"], "state": row["vm_state"],
            "started_at": row["launched_at"] or row["created_at"], "ended_at": None, "uptime": int(hours * 3600),
            "tenant_id": row["project_id"]})
    return list(per.values())


# --- hosts -------------------------------------------------------------------------------

def hypervisor_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "cloudbox-hypervisor:" + name))


def legacy_hypervisor_id(name: str) -> int:
    """Before microversion 2.53 hypervisor ids are integers: a stable one derived from the name."""
    return int(hypervisor_id(name)[:6], 16)


def render_hypervisor(h: dict[str, Any], version: tuple[int, int], detail: bool) -> dict[str, Any]:
    """A compute host (with its ``usage`` and ``state``) as Nova shows a hypervisor."""
    hid: Any = hypervisor_id(h["name"]) if version >= (2, 53) else legacy_hypervisor_id(h["name"])
    body: dict[str, Any] = {"id": hid, "hypervisor_hostname": h["name"], "state": h.get("state", "up"),
                            "status": "enabled" if h["enabled"] else "disabled"}
    if not detail:
        return body
    usage = h["usage"]
    cpu_info = {"arch": "x86_64", "accel": h["accel"], "probe": h["accel_detail"]}  # a JSON string before 2.28
    body.update({
        "hypervisor_type": h["hypervisor_type"], "hypervisor_version": h["hypervisor_version"],
        "host_ip": h["host_ip"], "service": {"host": h["name"], "id": hid, "disabled_reason": None},
    })
    if version < (2, 88):
        body.update({
            "vcpus": h["vcpus"], "memory_mb": h["memory_mb"], "local_gb": h["disk_gb"],
            "vcpus_used": usage["vcpus"], "memory_mb_used": usage["ram_mb"], "local_gb_used": usage["disk_gb"],
            "free_ram_mb": h["memory_mb"] - usage["ram_mb"], "free_disk_gb": h["disk_gb"] - usage["disk_gb"],
            "running_vms": usage["servers"], "current_workload": 0, "disk_available_least": h["disk_gb"],
            "cpu_info": cpu_info if version >= (2, 28) else json.dumps(cpu_info),
        })
    else:
        body["uptime"] = None
    return body


def render_hypervisor_statistics(hosts: list[dict[str, Any]]) -> dict[str, Any]:
    stats = {"count": len(hosts), "vcpus": 0, "memory_mb": 0, "local_gb": 0, "vcpus_used": 0,
             "memory_mb_used": 0, "local_gb_used": 0, "running_vms": 0}
    for h in hosts:
        usage = h["usage"]
        stats["vcpus"] += h["vcpus"]
        stats["memory_mb"] += h["memory_mb"]
        stats["local_gb"] += h["disk_gb"]
        stats["vcpus_used"] += usage["vcpus"]
        stats["memory_mb_used"] += usage["ram_mb"]
        stats["local_gb_used"] += usage["disk_gb"]
        stats["running_vms"] += usage["servers"]
    stats["free_ram_mb"] = stats["memory_mb"] - stats["memory_mb_used"]
    stats["free_disk_gb"] = stats["local_gb"] - stats["local_gb_used"]
    stats["current_workload"] = 0  # no host has tasks queued beyond its guests' own
    stats["disk_available_least"] = stats["local_gb"]
    return {"hypervisor_statistics": stats}


def render_services(hosts: list[dict[str, Any]], version: tuple[int, int], binary: str | None = None,
                    host: str | None = None) -> dict[str, Any]:
    """Each node as Nova's services on it (filtered by ``binary`` and ``host`` as Nova's list is):
    ids are integers before 2.53 and UUIDs from it; ``forced_down`` from 2.11."""
    out = []
    for h in hosts:
        for kind in ("nova-scheduler", "nova-compute"):
            if binary not in (None, kind) or host not in (None, h["name"]):
                continue
            sid = hypervisor_id(kind + h["name"])
            service = {"id": sid if version >= (2, 53) else int(sid[:6], 16), "binary": kind, "host": h["name"],
                       "zone": h["availability_zone"] if kind == "nova-compute" else "internal",
                       "status": "enabled" if h["enabled"] else "disabled",
                       "state": h["state"] if kind == "nova-compute" else "up",
                       "updated_at": h["updated_at"], "disabled_reason": None}
            if version >= (2, 11):
                service["forced_down"] = False
            out.append(service)
    return {"services": out}


def render_zones(hosts: list[dict[str, Any]], detail: bool) -> dict[str, Any]:
    if not detail:
        names = sorted({h["availability_zone"] for h in hosts})
        return {"availabilityZoneInfo": [{"zoneName": z, "zoneState": {"available": True}, "hosts": None}
                                         for z in names]}
    zones: dict[str, dict[str, Any]] = {}
    for h in hosts:
        zones.setdefault(h["availability_zone"], {})[h["name"]] = {"nova-compute": {
            "available": h["enabled"], "active": True, "updated_at": h["updated_at"]}}
    return {"availabilityZoneInfo": [{"zoneName": z, "zoneState": {"available": True}, "hosts": hs}
                                     for z, hs in sorted(zones.items())]}

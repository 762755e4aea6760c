"""Nova v2.1 routes besides servers: flavors, key pairs, limits, quotas, zones, hypervisors,
usage, server groups and services."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from typing import Any, Callable

import trio

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.compute import commands as c
from cloudbox.compute import models, store, views
from cloudbox.compute.service import ComputeService, now_iso
from cloudbox.errors import BadRequest, NotFound
from cloudbox.identity.core import parse_iso, require

Version = tuple[int, int]


def hypervisor_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "cloudbox-hypervisor:" + name))


def legacy_hypervisor_id(name: str) -> int:
    """Before microversion 2.53 hypervisor ids are integers: a stable one derived from the name."""
    return int(hypervisor_id(name)[:6], 16)


def ssh_fingerprint(public_key: str) -> str:
    parts = public_key.split()
    if len(parts) < 2:
        raise BadRequest("Keypair data is invalid: not an OpenSSH public key.")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise BadRequest("Keypair data is invalid: the key is not valid base64.") from None
    digest = hashlib.md5(blob).hexdigest()  # noqa: S324 - Nova's fingerprint format, not security
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def check_public_key(public_key: str) -> None:
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        load_ssh_public_key(public_key.strip().encode())
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"Keypair data is invalid: {exc}") from None


def generate_keypair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public + " Generated-by-cloudbox"


MAX_INT = 2**31 - 1  # Nova's database columns are 32-bit


def _int(value: Any, name: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(f"{name} must be a whole number, not {value!r}.") from None
    if not minimum <= number <= MAX_INT:
        raise BadRequest(f"{name} must be between {minimum} and {MAX_INT}.")
    return number


def routes(svc: ComputeService, nova: Callable[..., Any]) -> list[Route]:
    engine = svc.engine

    # --- flavors --------------------------------------------------------------------------
    async def _flavor(call: Call, flavor_id: str) -> dict[str, Any]:
        flavor = await engine.read(store.get_flavor, flavor_id)
        if flavor is None or not (flavor["is_public"] or call.auth.is_cloud_reader or await engine.read(
                lambda db: bool(list(db.query("SELECT 1 FROM flavor_access WHERE flavor_id = ? AND project_id = ?",
                                               [flavor_id, call.auth.project_id]))))):
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        return flavor

    async def _list_flavors(call: Call, version: Version, detail: bool) -> Any:
        q = call.query
        limit, marker = call.page()
        is_public = q.get("is_public", "true").lower()
        min_ram = _int(q.get("minRam", 0), "minRam")
        min_disk = _int(q.get("minDisk", 0), "minDisk")
        project = call.auth.project_id
        admin = call.auth.is_cloud_reader

        def load(db: Any) -> list[dict[str, Any]]:
            clauses, params = ["ram >= ?", "disk >= ?"], [min_ram, min_disk]
            if is_public in ("none",) and admin:
                pass
            elif is_public in ("false", "0", "no") and admin:
                clauses.append("is_public = 0")
            elif admin and is_public == "true":
                clauses.append("is_public = 1")
            else:
                clauses.append("(is_public = 1 OR id IN (SELECT flavor_id FROM flavor_access WHERE project_id = ?))")
                params.append(project)
            if marker:
                clauses.append("id > ?")
                params.append(marker)
            rows = db.query(f"SELECT * FROM flavors WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?",
                            params + [limit + 1])
            return [store.decode(r) for r in rows]

        rows = await engine.read(load)
        more = len(rows) > limit
        rows = rows[:limit]
        items = [views.render_flavor(r, call.base, version) if detail else
                 {"id": r["id"], "name": r["name"], "links": views.link(call.base, "flavors", r["id"]),
                  **({"description": r["description"]} if version >= (2, 55) else {})} for r in rows]
        body: dict[str, Any] = {"flavors": items}
        if more and rows:
            from urllib.parse import urlencode

            query = {**{k: v for k, v in q.items() if k != "marker"}, "limit": str(limit), "marker": rows[-1]["id"]}
            body["flavors_links"] = [{"rel": "next", "href": f"{call.base}/flavors{'/detail' if detail else ''}?{urlencode(query)}"}]
        return body

    @nova
    async def list_flavors(call: Call, version: Version) -> Any:
        return await _list_flavors(call, version, False)

    @nova
    async def list_flavors_detail(call: Call, version: Version) -> Any:
        return await _list_flavors(call, version, True)

    @nova
    async def show_flavor(call: Call, version: Version, flavor_id: str) -> Any:
        return {"flavor": views.render_flavor(await _flavor(call, flavor_id), call.base, version)}

    @nova
    async def create_flavor(call: Call, version: Version) -> Any:
        require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-manage:create")
        b = call.body["flavor"]
        is_public = b.get("os-flavor-access:is_public", True)
        if isinstance(is_public, str):
            is_public = is_public.lower() in ("true", "1", "yes")
        try:
            rxtx = float(b.get("rxtx_factor", 1.0))
        except (TypeError, ValueError):
            raise BadRequest("rxtx_factor must be a number.") from None
        row = {
            "id": str(b.get("id") or uuid.uuid4()), "name": b["name"], "vcpus": _int(b["vcpus"], "vcpus", 1),
            "ram": _int(b["ram"], "ram", 1), "disk": _int(b["disk"], "disk"),
            "ephemeral": _int(b.get("OS-FLV-EXT-DATA:ephemeral", 0), "ephemeral"),
            "swap": _int(b.get("swap") or 0, "swap"), "rxtx_factor": rxtx, "is_public": bool(is_public),
            "description": b.get("description") if version >= (2, 55) else None, "extra_specs": {},
            "created_at": now_iso(),
        }
        created = await engine.propose(c.CreateFlavor(row))
        return {"flavor": views.render_flavor(created, call.base, version)}

    @nova
    async def update_flavor(call: Call, version: Version, flavor_id: str) -> Any:
        require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-manage:update")
        if version < (2, 55):
            raise NotFound("Updating a flavor needs microversion 2.55 or later.")
        await _flavor(call, flavor_id)
        updated = await engine.propose(c.DescribeFlavor(flavor_id, call.body["flavor"]["description"]))
        return {"flavor": views.render_flavor(updated, call.base, version)}

    @nova
    async def delete_flavor(call: Call, version: Version, flavor_id: str) -> Reply:
        require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-manage:delete")
        await engine.propose(c.DeleteFlavor(flavor_id))
        return Reply(None, 202)

    @nova
    async def list_extra_specs(call: Call, version: Version, flavor_id: str) -> Any:
        return {"extra_specs": (await _flavor(call, flavor_id))["extra_specs"]}

    @nova
    async def add_extra_specs(call: Call, version: Version, flavor_id: str) -> Any:
        require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-extra-specs:create")
        flavor = await _flavor(call, flavor_id)
        specs = {**flavor["extra_specs"], **call.body["extra_specs"]}
        await engine.propose(c.SetFlavorExtraSpecs(flavor_id, specs))
        return {"extra_specs": call.body["extra_specs"]}

    @nova
    async def show_extra_spec(call: Call, version: Version, flavor_id: str, key: str) -> Any:
        specs = (await _flavor(call, flavor_id))["extra_specs"]
        if key not in specs:
            raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
        return {key: specs[key]}

    @nova
    async def set_extra_spec(call: Call, version: Version, flavor_id: str, key: str) -> Any:
        require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-extra-specs:update")
        body = call.body
        if not isinstance(body, dict) or list(body) != [key] or not isinstance(body[key], str):
            raise BadRequest("Request body and URI mismatch")
        flavor = await _flavor(call, flavor_id)
        await engine.propose(c.SetFlavorExtraSpecs(flavor_id, {**flavor["extra_specs"], key: body[key]}))
        return {key: body[key]}

    @nova
    async def delete_extra_spec(call: Call, version: Version, flavor_id: str, key: str) -> Reply:
        require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-extra-specs:delete")
        flavor = await _flavor(call, flavor_id)
        if key not in flavor["extra_specs"]:
            raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
        await engine.propose(c.SetFlavorExtraSpecs(flavor_id, {k: v for k, v in flavor["extra_specs"].items() if k != key}))
        return Reply(None, 200)

    @nova
    async def flavor_access(call: Call, version: Version, flavor_id: str) -> Any:
        require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-access")
        flavor = await _flavor(call, flavor_id)
        if flavor["is_public"]:
            raise NotFound("Access list not available for public flavors.")
        rows = await engine.read(lambda db: [dict(r) for r in db.query(
            "SELECT * FROM flavor_access WHERE flavor_id = ? ORDER BY project_id", [flavor_id])])
        return {"flavor_access": [{"flavor_id": r["flavor_id"], "tenant_id": r["project_id"]} for r in rows]}

    @nova
    async def flavor_action(call: Call, version: Version, flavor_id: str) -> Any:
        require(call.auth.is_cloud_admin, "os_compute_api:os-flavor-access:add_tenant_access")
        (action, args), = call.body.items()
        if action not in ("addTenantAccess", "removeTenantAccess"):
            raise BadRequest(f"There is no such flavor action: {action}")
        await engine.propose(c.FlavorAccess(flavor_id, args["tenant"], action == "addTenantAccess"))
        rows = await engine.read(lambda db: [dict(r) for r in db.query(
            "SELECT * FROM flavor_access WHERE flavor_id = ? ORDER BY project_id", [flavor_id])])
        return {"flavor_access": [{"flavor_id": r["flavor_id"], "tenant_id": r["project_id"]} for r in rows]}

    # --- key pairs -------------------------------------------------------------------------
    def _keypair_user(call: Call, version: Version) -> str:
        user_id = call.query.get("user_id")
        if user_id and user_id != call.auth.user_id:
            if version < (2, 10):
                raise BadRequest("user_id needs microversion 2.10 or later.")
            require(call.auth.is_cloud_admin, "os_compute_api:os-keypairs:index")
            return user_id
        return call.auth.user_id

    @nova
    async def list_keypairs(call: Call, version: Version) -> Any:
        user_id = _keypair_user(call, version)
        limit, marker = call.page()
        rows = await engine.read(lambda db: [dict(r) for r in db.query(
            "SELECT * FROM keypairs WHERE user_id = ? AND name > ? ORDER BY name LIMIT ?",
            [user_id, marker or "", limit + 1])])
        more = len(rows) > limit
        rows = rows[:limit]
        body: dict[str, Any] = {"keypairs": [{"keypair": views.render_keypair(r, version, detail=False)} for r in rows]}
        if more and rows:
            body["keypairs_links"] = [{"rel": "next", "href": f"{call.base}/os-keypairs?limit={limit}&marker={rows[-1]['name']}"}]
        return body

    @nova
    async def create_keypair(call: Call, version: Version) -> Reply:
        b = call.body["keypair"]
        user_id = call.auth.user_id
        if b.get("user_id") and b["user_id"] != user_id:
            require(call.auth.is_cloud_admin and version >= (2, 10), "os_compute_api:os-keypairs:create")
            user_id = b["user_id"]
        # Checked again in apply, against the count there: concurrent creates cannot exceed it.
        limit = (await engine.read(store.quota_limits, call.auth.project_id or "", svc.quota_defaults()))["key_pairs"]
        private = None
        public = b.get("public_key")
        if public:
            public = public.strip()
            check_public_key(public)
        else:
            if version >= (2, 92):
                raise BadRequest("public_key is required at microversion 2.92 and later.")
            private, public = await trio.to_thread.run_sync(generate_keypair)
        row = {"user_id": user_id, "name": b["name"], "public_key": public, "fingerprint": ssh_fingerprint(public),
               "type": b.get("type", "ssh"), "created_at": now_iso()}
        await engine.propose(c.CreateKeypair(row, limit))
        body = views.render_keypair(row, version, detail=False)
        body["user_id"] = user_id
        if private:
            body["private_key"] = private
        return Reply({"keypair": body}, 201 if version >= (2, 2) else 200)

    @nova
    async def show_keypair(call: Call, version: Version, name: str) -> Any:
        user_id = _keypair_user(call, version)
        rows = await engine.read(lambda db: [dict(r) for r in db.query(
            "SELECT * FROM keypairs WHERE user_id = ? AND name = ?", [user_id, name])])
        if not rows:
            raise NotFound(f"Keypair {name} not found for user {user_id}.")
        return {"keypair": views.render_keypair(rows[0], version)}

    @nova
    async def delete_keypair(call: Call, version: Version, name: str) -> Reply:
        user_id = _keypair_user(call, version)
        await engine.propose(c.DeleteKeypair(user_id, name))
        return Reply(None, 204 if version >= (2, 2) else 202)

    # --- limits, quotas, usage -----------------------------------------------------------------
    async def _quota_view(project_id: str) -> tuple[dict[str, int], dict[str, int]]:
        limits = await engine.read(store.quota_limits, project_id, svc.quota_defaults())
        usage = await engine.read(store.project_usage, project_id)
        groups = await engine.read(lambda db: db.execute(
            "SELECT count(*) FROM server_groups WHERE project_id = ?", [project_id]).fetchone()[0])
        usage["server_groups"] = groups
        return limits, usage

    @nova
    async def show_limits(call: Call, version: Version) -> Any:
        project_id = call.query.get("tenant_id") or call.auth.project_id
        if project_id != call.auth.project_id:
            require(call.auth.is_cloud_reader, "os_compute_api:limits:other_project")
        limits, usage = await _quota_view(project_id)
        keypairs = await engine.read(lambda db: db.execute(
            "SELECT count(*) FROM keypairs WHERE user_id = ?", [call.auth.user_id]).fetchone()[0])
        absolute = {
            "maxTotalInstances": limits["instances"], "maxTotalCores": limits["cores"],
            "maxTotalRAMSize": limits["ram"], "maxTotalKeypairs": limits["key_pairs"],
            "maxServerMeta": limits["metadata_items"], "maxServerGroups": limits["server_groups"],
            "maxServerGroupMembers": limits["server_group_members"],
            "totalInstancesUsed": usage["instances"], "totalCoresUsed": usage["cores"],
            "totalRAMUsed": usage["ram"], "totalServerGroupsUsed": usage["server_groups"],
            "maxPersonality": 5, "maxPersonalitySize": 10240, "maxImageMeta": 128,
            "maxSecurityGroups": 10, "maxSecurityGroupRules": 20, "maxTotalFloatingIps": 10,
            "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0, "totalKeyPairsUsed": keypairs,
        }
        if version >= (2, 36):
            for key in ("maxSecurityGroups", "maxSecurityGroupRules", "maxTotalFloatingIps",
                        "totalFloatingIpsUsed", "totalSecurityGroupsUsed"):
                absolute.pop(key)
        if version >= (2, 57):
            absolute.pop("maxPersonality")
            absolute.pop("maxPersonalitySize")
        return {"limits": {"absolute": absolute, "rate": []}}

    def _quota_set(project_id: str, limits: dict[str, int], usage: dict[str, int] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"id": project_id}
        for key in store.QUOTA_RESOURCES:
            if usage is None:
                body[key] = limits[key]
            else:
                body[key] = {"limit": limits[key], "in_use": usage.get(key, 0), "reserved": 0}
        return body

    @nova
    async def show_quota(call: Call, version: Version, project_id: str) -> Any:
        if project_id != call.auth.project_id:
            require(call.auth.is_cloud_reader, "os_compute_api:os-quota-sets:show")
        limits, _usage = await _quota_view(project_id)
        return {"quota_set": _quota_set(project_id, limits, None)}

    @nova
    async def show_quota_detail(call: Call, version: Version, project_id: str) -> Any:
        if project_id != call.auth.project_id:
            require(call.auth.is_cloud_reader, "os_compute_api:os-quota-sets:detail")
        limits, usage = await _quota_view(project_id)
        return {"quota_set": _quota_set(project_id, limits, usage)}

    @nova
    async def show_quota_defaults(call: Call, version: Version, project_id: str) -> Any:
        return {"quota_set": _quota_set(project_id, svc.quota_defaults(), None)}

    @nova
    async def update_quota(call: Call, version: Version, project_id: str) -> Any:
        require(call.auth.is_cloud_admin, "os_compute_api:os-quota-sets:update")
        wanted = {k: _int(v, k, -1) for k, v in call.body["quota_set"].items() if k != "force"}
        unknown = set(wanted) - set(store.QUOTA_RESOURCES)
        if unknown:
            raise BadRequest(f"Unknown quota resources: {', '.join(sorted(unknown))}.")
        await engine.propose(c.SetQuota(project_id, wanted))
        limits, _usage = await _quota_view(project_id)
        body = _quota_set(project_id, limits, None)
        body.pop("id")
        return {"quota_set": body}

    @nova
    async def usage_all(call: Call, version: Version) -> Any:
        require(call.auth.is_cloud_reader, "os_compute_api:os-simple-tenant-usage:list")
        return {"tenant_usages": await _usages(call, None)}

    @nova
    async def usage_project(call: Call, version: Version, project_id: str) -> Any:
        if project_id != call.auth.project_id:
            require(call.auth.is_cloud_reader, "os_compute_api:os-simple-tenant-usage:show")
        usages = await _usages(call, project_id)
        return {"tenant_usage": usages[0] if usages else {}}

    async def _usages(call: Call, project_id: str | None) -> list[dict[str, Any]]:
        now = dt.datetime.now(dt.timezone.utc).timestamp()
        try:
            start = parse_iso(call.query["start"]) if call.query.get("start") else now - 86400
            end = parse_iso(call.query["end"]) if call.query.get("end") else now
        except ValueError:
            raise BadRequest("start and end must be ISO 8601 times.") from None
        rows = await engine.read(lambda db: [store.decode(r) for r in db.query(
            "SELECT * FROM servers" + (" WHERE project_id = ?" if project_id else ""),
            [project_id] if project_id else [])])
        per: dict[str, dict[str, Any]] = {}
        for row in rows:
            began = parse_iso(row["launched_at"] or row["created_at"])
            hours = max(0.0, (min(end, now) - max(start, began)) / 3600)
            u = per.setdefault(row["project_id"], {
                "tenant_id": row["project_id"], "total_hours": 0.0, "total_vcpus_usage": 0.0,
                "total_memory_mb_usage": 0.0, "total_local_gb_usage": 0.0, "server_usages": [],
                "start": views_time(start), "stop": views_time(end)})
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

    # --- zones, hypervisors, services ------------------------------------------------------
    async def _hosts() -> list[dict[str, Any]]:
        def load(db: Any) -> list[dict[str, Any]]:
            hosts = [store.decode(r) for r in db.query("SELECT * FROM compute_hosts ORDER BY name")]
            return [{**h, "availability_zone": store.host_zone(db, h)} for h in hosts]

        hosts = await engine.read(load)
        alive = await svc.alive_hosts()
        return [{**h, "state": "up" if alive is None or h["name"] in alive else "down"} for h in hosts]

    @nova
    async def list_zones(call: Call, version: Version) -> Any:
        zones = sorted({h["availability_zone"] for h in await _hosts()})
        return {"availabilityZoneInfo": [{"zoneName": z, "zoneState": {"available": True}, "hosts": None} for z in zones]}

    @nova
    async def list_zones_detail(call: Call, version: Version) -> Any:
        require(call.auth.is_cloud_reader, "os_compute_api:os-availability-zone:detail")
        hosts = await _hosts()
        zones: dict[str, dict[str, Any]] = {}
        for h in hosts:
            zones.setdefault(h["availability_zone"], {})[h["name"]] = {"nova-compute": {
                "available": h["enabled"], "active": True, "updated_at": h["updated_at"]}}
        return {"availabilityZoneInfo": [{"zoneName": z, "zoneState": {"available": True}, "hosts": hs}
                                         for z, hs in sorted(zones.items())]}

    async def _hypervisor(h: dict[str, Any], version: Version, detail: bool) -> dict[str, Any]:
        hid = hypervisor_id(h["name"]) if version >= (2, 53) else legacy_hypervisor_id(h["name"])
        body: dict[str, Any] = {"id": hid, "hypervisor_hostname": h["name"], "state": h.get("state", "up"),
                                "status": "enabled" if h["enabled"] else "disabled"}
        if not detail:
            return body
        usage = await engine.read(store.host_usage, h["name"])
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
                "cpu_info": {"accel": h["accel"], "probe": h["accel_detail"], "arch": "x86_64"},
            })
        else:
            body["uptime"] = None
        return body

    def _need_reader(call: Call) -> None:
        require(call.auth.is_cloud_reader, "os_compute_api:os-hypervisors")

    @nova
    async def list_hypervisors(call: Call, version: Version) -> Any:
        _need_reader(call)
        return {"hypervisors": [await _hypervisor(h, version, False) for h in await _hosts()]}

    @nova
    async def list_hypervisors_detail(call: Call, version: Version) -> Any:
        _need_reader(call)
        return {"hypervisors": [await _hypervisor(h, version, True) for h in await _hosts()]}

    @nova
    async def show_hypervisor(call: Call, version: Version, hypervisor_id_: str) -> Any:
        _need_reader(call)
        for h in await _hosts():
            if hypervisor_id_ in (hypervisor_id(h["name"]), str(legacy_hypervisor_id(h["name"])), h["name"]):
                return {"hypervisor": await _hypervisor(h, version, True)}
        raise NotFound(f"Hypervisor with ID '{hypervisor_id_}' could not be found.")

    @nova
    async def hypervisor_statistics(call: Call, version: Version) -> Any:
        _need_reader(call)
        hosts = await _hosts()
        stats = {"count": len(hosts), "vcpus": 0, "memory_mb": 0, "local_gb": 0, "vcpus_used": 0,
                 "memory_mb_used": 0, "local_gb_used": 0, "running_vms": 0}
        for h in hosts:
            usage = await engine.read(store.host_usage, h["name"])
            stats["vcpus"] += h["vcpus"]
            stats["memory_mb"] += h["memory_mb"]
            stats["local_gb"] += h["disk_gb"]
            stats["vcpus_used"] += usage["vcpus"]
            stats["memory_mb_used"] += usage["ram_mb"]
            stats["local_gb_used"] += usage["disk_gb"]
            stats["running_vms"] += usage["servers"]
        stats["free_ram_mb"] = stats["memory_mb"] - stats["memory_mb_used"]
        stats["free_disk_gb"] = stats["local_gb"] - stats["local_gb_used"]
        return {"hypervisor_statistics": stats}

    @nova
    async def list_services(call: Call, version: Version) -> Any:
        require(call.auth.is_cloud_reader, "os_compute_api:os-services:list")
        out = []
        for h in await _hosts():
            for binary in ("nova-scheduler", "nova-compute"):
                out.append({"id": hypervisor_id(binary + h["name"]), "binary": binary, "host": h["name"],
                            "zone": h["availability_zone"] if binary == "nova-compute" else "internal",
                            "status": "enabled" if h["enabled"] else "disabled",
                            "state": h["state"] if binary == "nova-compute" else "up",
                            "updated_at": h["updated_at"], "disabled_reason": None, "forced_down": False})
        return {"services": out}

    # --- server groups ---------------------------------------------------------------------
    def _group_view(g: dict[str, Any], members: list[str], version: Version) -> dict[str, Any]:
        body: dict[str, Any] = {"id": g["id"], "name": g["name"], "members": members, "metadata": {}}
        if version >= (2, 64):
            body.update({"policy": g["policy"], "rules": {}, "project_id": g["project_id"], "user_id": g["user_id"]})
            body.pop("metadata")
        else:
            body["policies"] = [g["policy"]]
        if version >= (2, 13) and version < (2, 64):
            body.update({"project_id": g["project_id"], "user_id": g["user_id"]})
        return body

    async def _members(group_id: str) -> list[str]:
        return await engine.read(lambda db: [r["id"] for r in db.query(
            "SELECT id FROM servers WHERE server_group_id = ? ORDER BY id", [group_id])])

    @nova
    async def list_groups(call: Call, version: Version) -> Any:
        project = call.auth.project_id
        everyone = call.auth.is_cloud_reader and call.flag("all_projects")
        limit, marker = call.page()
        rows = await engine.read(lambda db: [dict(r) for r in db.query(
            "SELECT * FROM server_groups WHERE (? OR project_id = ?) AND id > ? ORDER BY id LIMIT ?",
            [int(bool(everyone)), project, marker or "", limit + 1])])
        body: dict[str, Any] = {"server_groups": [_group_view(g, await _members(g["id"]), version) for g in rows[:limit]]}
        if len(rows) > limit and limit:
            body["server_groups_links"] = [{"rel": "next", "href": f"{call.base}/os-server-groups?limit={limit}&marker={rows[limit - 1]['id']}"}]
        return body

    @nova
    async def create_group(call: Call, version: Version) -> Any:
        project = call.auth.project_id
        require(bool(project) and call.auth.can_write_project(project), "os_compute_api:os-server-groups:create")
        b = call.body["server_group"]
        policy = b.get("policy") or (b.get("policies") or [None])[0]
        if policy is None:
            raise BadRequest("A server group needs a policy.")
        limit = (await engine.read(store.quota_limits, project, svc.quota_defaults()))["server_groups"]
        row = {"id": str(uuid.uuid4()), "name": b["name"], "policy": policy, "project_id": project,
               "user_id": call.auth.user_id, "created_at": now_iso()}
        await engine.propose(c.CreateServerGroup(row, limit))
        return {"server_group": _group_view(row, [], version)}

    async def _group(call: Call, group_id: str) -> dict[str, Any]:
        g = await engine.read(store.one, "SELECT * FROM server_groups WHERE id = ?", [group_id])
        if g is None or not (call.auth.is_cloud_reader or g["project_id"] == call.auth.project_id):
            raise NotFound(f"Server group {group_id} could not be found.")
        return g

    @nova
    async def show_group(call: Call, version: Version, group_id: str) -> Any:
        g = await _group(call, group_id)
        return {"server_group": _group_view(g, await _members(group_id), version)}

    @nova
    async def delete_group(call: Call, version: Version, group_id: str) -> Reply:
        g = await _group(call, group_id)
        require(call.auth.can_write_project(g["project_id"]), "os_compute_api:os-server-groups:delete")
        await engine.propose(c.DeleteServerGroup(group_id))
        return Reply(None, 204)

    return [
        Route("GET", "/flavors", list_flavors, query=("is_public", "minRam", "minDisk", "limit", "marker")),
        Route("GET", "/flavors/detail", list_flavors_detail, query=("is_public", "minRam", "minDisk", "limit", "marker")),
        Route("POST", "/flavors", create_flavor, body=models.FLAVOR_CREATE),
        Route("GET", "/flavors/{flavor_id}", show_flavor),
        Route("PUT", "/flavors/{flavor_id}", update_flavor, body=models.FLAVOR_UPDATE),
        Route("DELETE", "/flavors/{flavor_id}", delete_flavor, status=202),
        Route("GET", "/flavors/{flavor_id}/os-extra_specs", list_extra_specs),
        Route("POST", "/flavors/{flavor_id}/os-extra_specs", add_extra_specs, body=models.EXTRA_SPECS),
        Route("GET", "/flavors/{flavor_id}/os-extra_specs/{key}", show_extra_spec),
        Route("PUT", "/flavors/{flavor_id}/os-extra_specs/{key}", set_extra_spec, body={"type": "object"}),
        Route("DELETE", "/flavors/{flavor_id}/os-extra_specs/{key}", delete_extra_spec),
        Route("GET", "/flavors/{flavor_id}/os-flavor-access", flavor_access),
        Route("POST", "/flavors/{flavor_id}/action", flavor_action, body=models.FLAVOR_ACTION),
        Route("GET", "/os-keypairs", list_keypairs, query=("user_id", "limit", "marker")),
        Route("POST", "/os-keypairs", create_keypair, body=models.KEYPAIR_CREATE, status=201),
        Route("GET", "/os-keypairs/{name}", show_keypair, query=("user_id",)),
        Route("DELETE", "/os-keypairs/{name}", delete_keypair, query=("user_id",), status=204),
        Route("GET", "/limits", show_limits, query=("tenant_id",)),
        Route("GET", "/os-quota-sets/{project_id}", show_quota),
        Route("PUT", "/os-quota-sets/{project_id}", update_quota, body=models.QUOTA_UPDATE),
        Route("GET", "/os-quota-sets/{project_id}/detail", show_quota_detail),
        Route("GET", "/os-quota-sets/{project_id}/defaults", show_quota_defaults),
        Route("GET", "/os-simple-tenant-usage", usage_all, query=("start", "end", "detailed")),
        Route("GET", "/os-simple-tenant-usage/{project_id}", usage_project, query=("start", "end")),
        Route("GET", "/os-availability-zone", list_zones),
        Route("GET", "/os-availability-zone/detail", list_zones_detail),
        Route("GET", "/os-hypervisors", list_hypervisors),
        Route("GET", "/os-hypervisors/detail", list_hypervisors_detail),
        Route("GET", "/os-hypervisors/statistics", hypervisor_statistics),
        Route("GET", "/os-hypervisors/{hypervisor_id_}", show_hypervisor),
        Route("GET", "/os-services", list_services),
        Route("GET", "/os-server-groups", list_groups, query=("all_projects", "limit", "marker")),
        Route("POST", "/os-server-groups", create_group, body=models.SERVER_GROUP_CREATE),
        Route("GET", "/os-server-groups/{group_id}", show_group),
        Route("DELETE", "/os-server-groups/{group_id}", delete_group, status=204),
    ]


def views_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")

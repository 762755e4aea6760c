"""Nova v2.1 routes for servers: create, list, show, update, delete, actions, metadata, tags.

Flavors, key pairs, quotas and the other resources are in ``api_resources.py``.
"""

from __future__ import annotations

import base64
import json
import binascii
import re
import secrets
from typing import Any, Awaitable, Callable

import jsonschema

from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.compute import models, store, views
from cloudbox.compute.service import ComputeService, new_server_id, now_iso
from cloudbox.errors import BadRequest, CloudboxError, Conflict, Forbidden, NotFound
from cloudbox.identity.core import require

Version = tuple[int, int]
VERSION_HEADERS = ("OpenStack-API-Version", "X-OpenStack-Nova-API-Version")


def requested_version(headers: Any) -> Version:
    value = headers.get("OpenStack-API-Version")
    if value:
        for part in value.split(","):
            service, _, ver = part.strip().partition(" ")
            if service.lower() == "compute":
                return views.parse_version(ver)
    return views.parse_version(headers.get("X-OpenStack-Nova-API-Version"))


def nova(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Reply]]:
    """Negotiate the microversion, pass it to the handler, and say which one answered."""

    async def handler(call: Call, **params: str) -> Reply:
        version = requested_version(call.request.headers)
        result = await fn(call, version, **params)
        reply = result if isinstance(result, Reply) else Reply(result)
        text = f"{version[0]}.{version[1]}"
        reply.headers.update({
            "OpenStack-API-Version": f"compute {text}", "X-OpenStack-Nova-API-Version": text,
            "Vary": ", ".join(VERSION_HEADERS), "x-compute-request-id": call.request_id,
        })
        return reply

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


def project_of(call: Call) -> str:
    if not call.auth.project_id:
        raise Forbidden("The compute API needs a project-scoped token.")
    return call.auth.project_id


def check_user_data(user_data: str | None) -> str | None:
    if not user_data:
        return None
    try:
        decoded = base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Invalid input for field/attribute user_data: not valid base64.") from None
    if len(decoded) > 65535:
        raise BadRequest("user_data is larger than 65535 bytes.")
    return user_data


REBUILD_VALIDATOR = jsonschema.Draft202012Validator({
    "type": "object", "required": ["imageRef"],
    "properties": {
        "imageRef": {"type": "string"}, "name": models.NAME, "metadata": models.META,
        "description": {"type": ["string", "null"], "maxLength": 255},
        "user_data": {"type": ["string", "null"]}, "key_name": {"type": ["string", "null"], "maxLength": 255},
        "adminPass": {"type": "string"}, "preserve_ephemeral": {"type": "boolean"},
        "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
    },
})


def name_matcher(pattern: str | None) -> Callable[[str], bool] | None:
    """Nova filters names by regular expression; cloudbox takes the common subset safely: a
    literal, case-sensitive substring, with ^ and $ anchoring it (no backtracking to exploit)."""
    if not pattern:
        return None
    start, end = pattern.startswith("^"), pattern.endswith("$") and len(pattern) > 1
    text = pattern[1 if start else 0: -1 if end else None]
    if start and end:
        return lambda name: name == text
    if start:
        return lambda name: name.startswith(text)
    if end:
        return lambda name: name.endswith(text)
    return lambda name: text in name


def _truthy(value: Any) -> bool:
    """Nova's config_drive: a boolean, or a string where "true", "1", "yes" and "on" mean yes."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on", "y", "t")
    return bool(value)


def hostname_for(name: str) -> str:
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return text or "server"


def build(svc: ComputeService) -> ApiSpec:
    node = svc.node

    async def key_data_of(call: Call, key_name: str) -> str:
        rows = await node.engine.read(lambda db: list(db.query(
            "SELECT public_key FROM keypairs WHERE user_id = ? AND name = ?", [call.auth.user_id, key_name])))
        if not rows:
            raise BadRequest("Invalid key_name provided.")
        return rows[0]["public_key"]

    async def visible_server(call: Call, server_id: str, write: bool = False) -> dict[str, Any]:
        try:
            server = await svc.get(server_id)
        except NotFound:
            raise NotFound(f"Instance {server_id} could not be found.") from None
        ctx = call.auth
        if not (ctx.can_read_project(server["project_id"]) or ctx.can_write_project(server["project_id"])):
            raise NotFound(f"Instance {server_id} could not be found.")
        if write:
            require(ctx.can_write_project(server["project_id"]), "os_compute_api:servers:update")
            if server["locked"] and not ctx.is_cloud_admin:
                raise Conflict(f"Instance {server_id} is locked.")
        return server

    def render(call: Call, version: Version, row: dict[str, Any], detail: bool = True) -> dict[str, Any]:
        return views.render_server(row, call.base, version, admin=call.auth.is_cloud_admin, detail=detail)

    async def addressed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows with their ``addresses`` (fixed and floating) from the network service's tables."""
        from cloudbox.network import store as network_store

        found = await node.engine.read(network_store.server_addresses, [r["id"] for r in rows])
        alive = await svc.alive_hosts()
        return [{**r, "addresses": found.get(r["id"], {}),
                 "host_down": alive is not None and r["host"] is not None and r["host"] not in alive} for r in rows]

    # --- version documents ------------------------------------------------------------
    @nova
    async def show_version(call: Call, version: Version) -> Any:
        return {"version": views.version_document(call.base)}

    # --- create -------------------------------------------------------------------------
    @nova
    async def create_server(call: Call, version: Version) -> Reply:
        ctx = call.auth
        project_id = project_of(call)
        require(ctx.can_write_project(project_id), "os_compute_api:servers:create")
        body = call.body["server"]
        hints = call.body.get("os:scheduler_hints") or call.body.get("OS-SCH-HNT:scheduler_hints") or {}
        flavor = await node.engine.read(store.get_flavor, str(body["flavorRef"]).rsplit("/", 1)[-1])
        if flavor is None or not (flavor["is_public"] or ctx.is_cloud_admin or await node.engine.read(
                lambda db: bool(list(db.query("SELECT 1 FROM flavor_access WHERE flavor_id = ? AND project_id = ?",
                                               [flavor["id"], project_id]))))):
            raise BadRequest(f"Flavor {body['flavorRef']} could not be found.")
        image_ref = (body.get("imageRef") or "").rsplit("/", 1)[-1]
        if not image_ref:
            raise BadRequest("imageRef is required: cloudbox boots servers from images (volumes come later).")
        try:
            image = await node.image.active_image(image_ref, ctx)
        except NotFound:
            raise BadRequest(f"Image {image_ref} could not be found.") from None
        if image["status"] != "active":
            raise BadRequest(f"Image {image_ref} is not active.")
        if image.get("min_ram") and flavor["ram"] < image["min_ram"]:
            raise BadRequest("Flavor's memory is too small for requested image.")
        if image.get("min_disk") and flavor["disk"] < image["min_disk"]:
            raise BadRequest("Flavor's disk is too small for requested image.")
        key_data = await key_data_of(call, body["key_name"]) if body.get("key_name") else None
        user_data = check_user_data(body.get("user_data"))
        if version >= (2, 37) and "networks" not in body:
            raise BadRequest("Invalid input for field/attribute server. Value: networks is required at "
                             "microversion 2.37 and later.")
        networks = body.get("networks", "auto")
        if networks == []:
            networks = "auto"  # before 2.37 an empty list asks for the project's networks, as no list does
        await node.network.check_requested_networks(project_id, ctx.is_cloud_admin, networks)
        groups = [str(g.get("name", "")) for g in body.get("security_groups") or [{"name": "default"}]]
        if any(not g for g in groups):
            raise BadRequest("Each security group needs a name.")
        zones = await node.engine.read(lambda db: {store.host_zone(db, dict(r)) for r in db.query(
            "SELECT name, availability_zone FROM compute_hosts")})
        zone = body.get("availability_zone") or None
        if zone:
            zone = zone.split(":", 1)[0]
            if zone not in zones:
                raise BadRequest(f"The requested availability zone is not available: {zone}.")
        metadata = body.get("metadata") or {}
        if len(metadata) > svc.settings.quota_metadata_items:
            raise Forbidden(f"Quota exceeded for metadata_items: at most {svc.settings.quota_metadata_items}.")
        group_id = hints.get("group")
        if group_id:
            group = await node.engine.read(store.one, "SELECT * FROM server_groups WHERE id = ?", [group_id])
            if group is None or group["project_id"] != project_id:
                raise BadRequest(f"Server group {group_id} not found.")
        try:
            min_count = int(body.get("min_count", 1))
            max_count = int(body.get("max_count", min_count))
        except ValueError:
            raise BadRequest("min_count and max_count must be whole numbers.") from None
        if not 1 <= min_count <= max_count:
            raise BadRequest("min_count must be at least 1 and at most max_count.")
        flavor_snapshot = {k: flavor[k] for k in ("id", "name", "vcpus", "ram", "disk", "ephemeral", "swap", "extra_specs")}
        properties = image.get("properties") or {}
        image_props = {k: v for k, v in properties.items()
                       if isinstance(v, str) and k.startswith(("hw_", "img_", "architecture", "hypervisor_type"))}
        created = []
        for index in range(max_count):
            name = body["name"] if max_count == 1 else f"{body['name']}-{index + 1}"
            now = now_iso()
            row = {
                "id": new_server_id(), "name": name, "project_id": project_id, "user_id": ctx.user_id,
                "flavor": flavor_snapshot, "image_id": image["id"], "key_name": body.get("key_name"),
                "key_data": key_data, "user_data": user_data, "host": None,
                "availability_zone": zone or svc.settings.availability_zone,
                "status": "BUILD", "vm_state": "building", "task_state": "scheduling", "power_state": 0,
                "fault": None, "metadata": metadata, "tags": body.get("tags") or [],
                "config_drive": _truthy(body.get("config_drive")) or svc.settings.force_config_drive,
                "hostname": hostname_for(body.get("hostname") or name),
                "description": body.get("description"), "locked": False, "server_group_id": group_id,
                "networks": networks, "ports": [], "security_groups": groups,
                "created_at": now, "updated_at": now, "launched_at": None,
            }
            try:
                created.append(await svc.create_server({**row, "image_properties": image_props}))
            except CloudboxError:
                if len(created) >= min_count:
                    break
                for made in created:  # fewer than min_count: the request takes nothing
                    await svc.delete_server(made["id"])
                raise
        first = created[0]
        if str(body.get("return_reservation_id", "")).lower() in ("true", "1"):
            return Reply({"reservation_id": "r-" + first["id"][:8]}, 202)
        result = {
            "id": first["id"], "links": views.link(call.base, "servers", first["id"]),
            "OS-DCF:diskConfig": "MANUAL", "security_groups": [{"name": g} for g in groups],
            "adminPass": body.get("adminPass") or secrets.token_urlsafe(9),
        }
        return Reply({"server": result}, 202, {"Location": f"{call.base}/servers/{first['id']}"})

    # --- list and show -------------------------------------------------------------------
    async def _list(call: Call, version: Version, detail: bool) -> Any:
        ctx = call.auth
        q = call.query
        all_projects = ctx.is_cloud_reader and call.flag("all_tenants")
        project = q.get("project_id") or q.get("tenant_id")
        if project and not all_projects:
            if project != ctx.project_id:
                require(ctx.is_cloud_reader, "os_compute_api:servers:index:get_all_tenants")
            all_projects = False
        if not all_projects:
            project = project or project_of(call)
            require(ctx.can_read_project(project) or ctx.can_write_project(project), "os_compute_api:servers:index")
        limit, marker = call.page()
        name_match = name_matcher(q.get("name"))
        filters = {k: q.get(k) for k in ("status", "image", "flavor", "host", "availability_zone")}
        tags = [t for t in (q.get("tags") or "").split(",") if t]
        tags_any = [t for t in (q.get("tags-any") or "").split(",") if t]
        not_tags = [t for t in (q.get("not-tags") or "").split(",") if t]
        changes_since = q.get("changes-since")

        def load(db: Any) -> list[dict[str, Any]]:
            clauses, params = [], []
            if project:
                clauses.append("project_id = ?")
                params.append(project)
            if marker:
                mark = store.get_server(db, marker)
                if mark is None:
                    raise BadRequest(f"marker [{marker}] not found")
                clauses.append("(created_at, id) < (?, ?)")
                params += [mark["created_at"], mark["id"]]
            if filters["status"]:
                clauses.append("status = ?")
                params.append(filters["status"].upper())
            if filters["image"]:
                clauses.append("image_id = ?")
                params.append(filters["image"].rsplit("/", 1)[-1])
            if filters["host"] and ctx.is_cloud_admin:
                clauses.append("host = ?")
                params.append(filters["host"])
            if filters["availability_zone"]:
                clauses.append("availability_zone = ?")
                params.append(filters["availability_zone"])
            if changes_since:
                clauses.append("updated_at >= ?")
                params.append(changes_since)
            where = " AND ".join(clauses) or "1"
            out: list[dict[str, Any]] = []
            offset = 0
            while len(out) <= limit:
                batch = [store.decode(r) for r in db.query(
                    f"SELECT * FROM servers WHERE {where} ORDER BY created_at DESC, id DESC LIMIT 200 OFFSET ?",
                    params + [offset])]
                if not batch:
                    break
                offset += len(batch)
                for row in batch:
                    if name_match and not name_match(row["name"]):
                        continue
                    if filters["flavor"] and row["flavor"]["id"] != filters["flavor"].rsplit("/", 1)[-1]:
                        continue
                    if tags and not set(tags) <= set(row["tags"]):
                        continue
                    if tags_any and not set(tags_any) & set(row["tags"]):
                        continue
                    if not_tags and set(not_tags) <= set(row["tags"]):
                        continue
                    out.append(row)
            return out[: limit + 1]

        rows = await node.engine.read(load)
        more = len(rows) > limit
        rows = await addressed(rows[:limit]) if detail else rows[:limit]
        key = "servers"
        body: dict[str, Any] = {key: [render(call, version, r, detail) for r in rows]}
        if more and rows:
            from urllib.parse import urlencode

            query = {k: v for k, v in q.items() if k != "marker"}
            query.update({"limit": str(limit), "marker": rows[-1]["id"]})
            path = "/servers/detail" if detail else "/servers"
            body["servers_links"] = [{"rel": "next", "href": f"{call.base}{path}?{urlencode(query)}"}]
        return body

    @nova
    async def list_servers(call: Call, version: Version) -> Any:
        return await _list(call, version, detail=False)

    @nova
    async def list_servers_detail(call: Call, version: Version) -> Any:
        return await _list(call, version, detail=True)

    @nova
    async def show_server(call: Call, version: Version, server_id: str) -> Any:
        return {"server": render(call, version, (await addressed([await visible_server(call, server_id)]))[0])}

    @nova
    async def update_server(call: Call, version: Version, server_id: str) -> Any:
        server = await visible_server(call, server_id, write=True)
        b = call.body["server"]
        changes: dict[str, Any] = {}
        if "name" in b:
            changes["name"] = b["name"]
        if "description" in b:
            if version < (2, 19):
                raise BadRequest("description needs microversion 2.19 or later.")
            changes["description"] = b["description"]
        if "hostname" in b:
            changes["hostname"] = hostname_for(b["hostname"])
        updated = await svc.update(server["id"], changes) if changes else server
        return {"server": render(call, version, (await addressed([updated]))[0])}

    async def forwarded(call: Call, server: dict[str, Any]) -> Reply | None:
        """A call on a server of another node is answered by that node (None: it is ours)."""
        if server["host"] in (None, svc.host) or call.request.headers.get("X-Cloudbox-Forwarded-By"):
            return None
        status, body, headers = await svc.node.cluster.forward(call.request, call.body, server["host"])
        if headers.get("content-type", "").startswith("application/json") and body:
            return Reply(json.loads(body), status, {"Location": headers["location"]} if "location" in headers else {})
        return Reply(body or None, status)

    @nova
    async def delete_server(call: Call, version: Version, server_id: str) -> Reply:
        server = await visible_server(call, server_id, write=True)
        if server["host"] not in (None, svc.host) and await svc.host_is_down(server["host"]):
            await svc.delete_on_down_host(server["id"])  # Nova's "local delete": the host cleans up on return
            return Reply(None, 204)
        if (reply := await forwarded(call, server)) is not None:
            return reply
        if server["task_state"] != "deleting":
            await svc.delete_server(server["id"])
        return Reply(None, 204)

    # --- actions -------------------------------------------------------------------------
    TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str, str | None]] = {
        # action: (statuses allowed, task_state while it runs, status shown meanwhile, driver state at the end)
        "os-stop": (("ACTIVE", "ERROR", "PAUSED", "SUSPENDED"), "powering-off", None, "shutoff"),
        "os-start": (("SHUTOFF",), "powering-on", None, "running"),
        "pause": (("ACTIVE",), "pausing", None, "paused"),
        "unpause": (("PAUSED",), "unpausing", None, "running"),
        "suspend": (("ACTIVE", "SHUTOFF"), "suspending", None, "suspended"),
        "resume": (("SUSPENDED",), "resuming", None, "running"),
    }

    @nova
    async def server_action(call: Call, version: Version, server_id: str) -> Reply:
        (action, args), = call.body.items()
        if args is not None and not isinstance(args, dict):
            raise BadRequest(f"The argument of action {action} must be an object or null.")
        if action == "os-getConsoleOutput":
            server = await visible_server(call, server_id)
            require(call.auth.can_write_project(server["project_id"]), "os_compute_api:os-console-output")
            length = (args or {}).get("length")
            try:
                length = int(length) if length not in (None, "", -1, "-1") else None
            except (TypeError, ValueError):
                raise BadRequest("length must be a whole number.") from None
            if length is not None and length < 0:
                raise BadRequest("length must not be negative.")
            if (reply := await forwarded(call, server)) is not None:
                return reply
            return Reply({"output": await svc.console_output(server["id"], length)})
        server = await visible_server(call, server_id, write=True)
        if action == "evacuate":
            return await evacuate(call, server, args or {})
        if (reply := await forwarded(call, server)) is not None:
            return reply
        svc.require_running()
        if server["task_state"] is not None:
            raise Conflict(f"Cannot '{action}' instance {server_id} while it is in task_state {server['task_state']}")
        sid = server["id"]
        if action in TRANSITIONS:
            allowed, task, _, final = TRANSITIONS[action]
            if server["status"] not in allowed:
                raise Conflict(f"Cannot '{action}' instance {sid} while it is in vm_state {server['vm_state']}")
            await svc.update(sid, {"task_state": task}, expect=(None,))
            work = {
                "os-stop": lambda: svc.driver.stop(sid), "os-start": lambda: svc.driver.start(sid),
                "pause": lambda: svc.driver.pause(sid), "unpause": lambda: svc.driver.unpause(sid),
                "suspend": lambda: svc.driver.suspend(sid), "resume": lambda: svc.driver.resume(sid),
            }[action]
            await svc.act(sid, task, work, final)
            return Reply(None, 202)
        if action == "reboot":
            kind = str((args or {}).get("type", "")).upper()
            if kind not in ("SOFT", "HARD"):
                raise BadRequest("reboot needs type SOFT or HARD.")
            if server["status"] not in (("ACTIVE",) if kind == "SOFT" else ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "ERROR")):
                raise Conflict(f"Cannot 'reboot' instance {sid} while it is in vm_state {server['vm_state']}")
            task = "rebooting" if kind == "SOFT" else "rebooting_hard"
            await svc.update(sid, {"task_state": task, "status": "REBOOT" if kind == "SOFT" else "HARD_REBOOT"},
                             expect=(None,))

            async def reboot() -> None:
                state = await svc.driver.get_state(sid)
                if state == "running":
                    await svc.driver.reboot(sid, hard=kind == "HARD")
                else:
                    await svc.driver.start(sid)

            await svc.act(sid, task, reboot, "running")
            return Reply(None, 202)
        if action == "createImage":
            return await create_image(call, version, server, args or {})
        if action == "rebuild":
            return await rebuild(call, version, server, args or {})
        raise BadRequest(f"There is no such action: {action}")

    async def evacuate(call: Call, server: dict[str, Any], args: dict[str, Any]) -> Reply:
        """Rebuild a server of a down host on another host (from its image: no shared storage)."""
        require(call.auth.is_cloud_admin, "os_compute_api:os-evacuate")
        target = args.get("host")
        if target is not None and not isinstance(target, str):
            raise BadRequest("evacuate's host must be a host name.")
        if server["host"] is None or not await svc.host_is_down(server["host"]):
            raise Conflict(f"Cannot evacuate server {server['id']}: its compute host {server['host']} is up.")
        await svc.evacuate(server, target)
        return Reply(None, 202)

    async def create_image(call: Call, version: Version, server: dict[str, Any], args: dict[str, Any]) -> Reply:
        name = args.get("name")
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("createImage needs a name.")
        metadata = args.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise BadRequest("metadata must be an object.")
        if server["status"] not in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
            raise Conflict(f"Cannot snapshot instance {server['id']} while it is {server['status']}")
        image_id = await svc.snapshot(call.auth, server, name, metadata)
        headers = {"Location": f"{call.request.host_url.rstrip('/')}/image/v2/images/{image_id}"}
        body = {"image_id": image_id} if version >= (2, 45) else None
        return Reply(body, 202, headers)

    async def rebuild(call: Call, version: Version, server: dict[str, Any], args: dict[str, Any]) -> Reply:
        image_ref = str(args.get("imageRef") or "").rsplit("/", 1)[-1]
        if not image_ref:
            raise BadRequest("rebuild needs an imageRef.")
        try:
            image = await node.image.active_image(image_ref, call.auth)
        except NotFound:
            raise BadRequest(f"Image {image_ref} could not be found.") from None
        if server["status"] not in ("ACTIVE", "SHUTOFF", "ERROR"):
            raise Conflict(f"Cannot 'rebuild' instance {server['id']} while it is {server['status']}")
        error = jsonschema.exceptions.best_match(REBUILD_VALIDATOR.iter_errors(args))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "rebuild"
            raise BadRequest(f"Invalid input for field '{where}': {error.message}")
        changes: dict[str, Any] = {"image_id": image["id"], "status": "REBUILD", "task_state": "rebuilding",
                                   "vm_state": server["vm_state"]}
        for key in ("name", "metadata", "description"):
            if key in args:
                changes[key] = args[key]
        if len(changes.get("metadata") or {}) > svc.settings.quota_metadata_items:
            raise Forbidden(f"Quota exceeded for metadata_items: at most {svc.settings.quota_metadata_items}.")
        if "user_data" in args and version >= (2, 57):
            changes["user_data"] = check_user_data(args["user_data"])
        if "key_name" in args and version >= (2, 54):
            changes["key_name"] = args["key_name"]
            changes["key_data"] = await key_data_of(call, args["key_name"]) if args["key_name"] else None
        updated = await svc.update(server["id"], changes, expect=(None,))
        await svc.rebuild(server["id"])
        body = render(call, version, (await addressed([updated]))[0])
        body["adminPass"] = args.get("adminPass") or secrets.token_urlsafe(9)
        return Reply({"server": body}, 202)

    # --- metadata and tags ------------------------------------------------------------------
    @nova
    async def get_metadata(call: Call, version: Version, server_id: str) -> Any:
        return {"metadata": (await visible_server(call, server_id))["metadata"]}

    async def _set_metadata(call: Call, server_id: str, items: dict[str, str], replace: bool) -> dict[str, Any]:
        server = await visible_server(call, server_id, write=True)
        merged = dict(items) if replace else {**server["metadata"], **items}
        if len(merged) > svc.settings.quota_metadata_items:
            raise Forbidden(f"Quota exceeded for metadata_items: at most {svc.settings.quota_metadata_items}.")
        updated = await svc.update(server["id"], {"metadata": merged})
        return updated["metadata"]

    @nova
    async def update_metadata(call: Call, version: Version, server_id: str) -> Any:
        return {"metadata": await _set_metadata(call, server_id, call.body["metadata"], replace=False)}

    @nova
    async def replace_metadata(call: Call, version: Version, server_id: str) -> Any:
        return {"metadata": await _set_metadata(call, server_id, call.body["metadata"], replace=True)}

    @nova
    async def get_metadata_item(call: Call, version: Version, server_id: str, key: str) -> Any:
        metadata = (await visible_server(call, server_id))["metadata"]
        if key not in metadata:
            raise NotFound("Metadata item was not found")
        return {"meta": {key: metadata[key]}}

    @nova
    async def set_metadata_item(call: Call, version: Version, server_id: str, key: str) -> Any:
        item = call.body["meta"]
        if list(item) != [key]:
            raise BadRequest("Request body and URI mismatch")
        await _set_metadata(call, server_id, item, replace=False)
        return {"meta": item}

    @nova
    async def delete_metadata_item(call: Call, version: Version, server_id: str, key: str) -> Reply:
        server = await visible_server(call, server_id, write=True)
        if key not in server["metadata"]:
            raise NotFound("Metadata item was not found")
        await svc.update(server["id"], {"metadata": {k: v for k, v in server["metadata"].items() if k != key}})
        return Reply(None, 204)

    def _need_tags(version: Version) -> None:
        if version < (2, 26):
            raise NotFound("Server tags need microversion 2.26 or later.")

    @nova
    async def list_tags(call: Call, version: Version, server_id: str) -> Any:
        _need_tags(version)
        return {"tags": (await visible_server(call, server_id))["tags"]}

    @nova
    async def replace_tags(call: Call, version: Version, server_id: str) -> Any:
        _need_tags(version)
        server = await visible_server(call, server_id, write=True)
        tags = list(dict.fromkeys(call.body["tags"]))
        await svc.update(server["id"], {"tags": tags})
        return {"tags": tags}

    @nova
    async def delete_tags(call: Call, version: Version, server_id: str) -> Reply:
        _need_tags(version)
        server = await visible_server(call, server_id, write=True)
        await svc.update(server["id"], {"tags": []})
        return Reply(None, 204)

    @nova
    async def check_tag(call: Call, version: Version, server_id: str, tag: str) -> Reply:
        _need_tags(version)
        if tag not in (await visible_server(call, server_id))["tags"]:
            raise NotFound(f"Tag {tag} could not be found.")
        return Reply(None, 204)

    @nova
    async def add_tag(call: Call, version: Version, server_id: str, tag: str) -> Reply:
        _need_tags(version)
        if not tag or len(tag) > 60 or "," in tag or "/" in tag:
            raise BadRequest("A tag is 1 to 60 characters without ',' or '/'.")
        server = await visible_server(call, server_id, write=True)
        if tag in server["tags"]:
            return Reply(None, 204)
        if len(server["tags"]) >= 50:
            raise BadRequest("A server has at most 50 tags.")
        await svc.update(server["id"], {"tags": server["tags"] + [tag]})
        return Reply(None, 201, {"Location": f"{call.base}/servers/{server_id}/tags/{tag}"})

    @nova
    async def delete_tag(call: Call, version: Version, server_id: str, tag: str) -> Reply:
        _need_tags(version)
        server = await visible_server(call, server_id, write=True)
        if tag not in server["tags"]:
            raise NotFound(f"Tag {tag} could not be found.")
        await svc.update(server["id"], {"tags": [t for t in server["tags"] if t != tag]})
        return Reply(None, 204)

    server_filters = ("name", "status", "image", "flavor", "host", "availability_zone", "all_tenants",
                      "project_id", "tenant_id", "changes-since", "tags", "tags-any", "not-tags", "limit", "marker")
    routes = [
        Route("GET", "", show_version, access="public", summary="Compute v2.1 version document"),
        Route("POST", "/servers", create_server, body=models.SERVER_CREATE, status=202),
        Route("GET", "/servers", list_servers, query=server_filters),
        Route("GET", "/servers/detail", list_servers_detail, query=server_filters),
        Route("GET", "/servers/{server_id}", show_server),
        Route("PUT", "/servers/{server_id}", update_server, body=models.SERVER_UPDATE),
        Route("DELETE", "/servers/{server_id}", delete_server, status=204),
        Route("POST", "/servers/{server_id}/action", server_action, body=models.SERVER_ACTION, status=202,
              summary="Server actions: os-start, os-stop, reboot, pause, unpause, suspend, resume, "
                      "createImage, rebuild, os-getConsoleOutput"),
        Route("GET", "/servers/{server_id}/metadata", get_metadata),
        Route("POST", "/servers/{server_id}/metadata", update_metadata, body=models.METADATA),
        Route("PUT", "/servers/{server_id}/metadata", replace_metadata, body=models.METADATA),
        Route("GET", "/servers/{server_id}/metadata/{key}", get_metadata_item),
        Route("PUT", "/servers/{server_id}/metadata/{key}", set_metadata_item, body=models.METADATA_ITEM),
        Route("DELETE", "/servers/{server_id}/metadata/{key}", delete_metadata_item, status=204),
        Route("GET", "/servers/{server_id}/tags", list_tags),
        Route("PUT", "/servers/{server_id}/tags", replace_tags, body=models.TAGS),
        Route("DELETE", "/servers/{server_id}/tags", delete_tags, status=204),
        Route("GET", "/servers/{server_id}/tags/{tag}", check_tag, status=204),
        Route("PUT", "/servers/{server_id}/tags/{tag}", add_tag, status=201),
        Route("DELETE", "/servers/{server_id}/tags/{tag}", delete_tag, status=204),
    ]
    from cloudbox.compute import api_aggregates, api_resources

    routes += api_resources.routes(svc, nova)
    routes += api_aggregates.routes(svc, nova)
    return ApiSpec("compute", "/compute/v2.1", "nova", routes, catalog=("compute", "nova"))

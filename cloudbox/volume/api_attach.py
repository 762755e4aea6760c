"""Cinder v3 routes of attachments (3.27+), QoS specs and os-services, and the volume actions
of attaching (legacy) and os-volume_upload_image, which api.volume_action hands here."""

from __future__ import annotations

from typing import Any, Callable

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import BadRequest, NotFound
from cloudbox.volume import core, views

ATTACHMENTS_VERSION = (3, 27)
LEGACY_ACTIONS = ("os-reserve", "os-unreserve", "os-begin_detaching", "os-roll_detaching", "os-attach", "os-detach",
                  "os-initialize_connection", "os-terminate_connection", "os-force_detach")
ACTIONS = (*LEGACY_ACTIONS, "os-volume_upload_image", "os-reimage")
REIMAGE_VERSION = (3, 68)

_CONNECTOR = {"type": ["object", "null"]}
_UUID = {"type": ["string", "null"], "maxLength": 255}
CREATE_ATTACHMENT = {"type": "object", "required": ["attachment"], "properties": {"attachment": {
    "type": "object", "required": ["volume_uuid"],
    "properties": {"volume_uuid": {"type": "string", "maxLength": 255}, "instance_uuid": _UUID,
                   "connector": _CONNECTOR, "mode": {"type": ["string", "null"]}}}}}
UPDATE_ATTACHMENT = {"type": "object", "required": ["attachment"], "properties": {"attachment": {
    "type": "object", "required": ["connector"], "properties": {"connector": {"type": "object"}}}}}
ATTACHMENT_ACTION = {"type": "object", "minProperties": 1, "maxProperties": 1}
QOS_CREATE = {"type": "object", "required": ["qos_specs"], "properties": {"qos_specs": {
    "type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 255}}}}}
QOS_UPDATE = {"type": "object", "required": ["qos_specs"], "properties": {"qos_specs": {"type": "object"}}}
QOS_KEYS = {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array"}}}


def version_of(call: Call) -> tuple[int, int]:
    return core.requested_version(call.request.headers)


async def volume_action(svc: Any, call: Call, volume_id: str, name: str, args: dict[str, Any]) -> Reply:
    """The attach actions, os-volume_upload_image and os-reimage of POST /volumes/{id}/action."""
    if name == "os-reimage":
        if version_of(call) < REIMAGE_VERSION:
            raise NotFound("os-reimage needs microversion 3.68 or later (OpenStack-API-Version: volume 3.68).")
        await svc.attach.reimage(call.auth, volume_id, args)
        return Reply(None, 202)
    if name == "os-volume_upload_image":
        answer = await svc.attach.upload_to_image(call.auth, volume_id, args, version_of(call))
        return Reply({"os-volume_upload_image": answer}, 202)
    result = await svc.attach.legacy(call.auth, volume_id, name, args)
    if name == "os-initialize_connection":
        return Reply({"connection_info": result}, 200)
    return Reply(None, 202)


def require_admin(call: Call, action: str) -> None:
    from cloudbox.identity.core import require

    require(bool(call.auth and call.auth.is_cloud_admin), action)


def routes(svc: Any, scoped: Callable[..., list[Route]]) -> list[Route]:
    attach, qos = svc.attach, svc.qos

    def need_attachments_api(call: Call) -> None:
        if version_of(call) < ATTACHMENTS_VERSION:
            raise NotFound("The attachments API needs microversion 3.27 or later "
                           "(OpenStack-API-Version: volume 3.27).")

    def all_projects(call: Call) -> bool:
        return core.parse_bool(call.query.get("all_tenants", "0"), "all_tenants")

    # --- attachments -------------------------------------------------------------------------------
    async def list_page(call: Call, detail: bool) -> Any:
        need_attachments_api(call)
        limit, marker = call.page()
        filters = {column: call.query[name] for name, column in (
            ("volume_id", "volume_id"), ("instance_id", "instance_uuid"), ("status", "attach_status"),
            ("attach_status", "attach_status")) if call.query.get(name)}
        rows = await attach.list(call.auth, filters, marker, limit, all_projects(call))
        rows, links = call.paged(rows, limit, "/attachments/detail" if detail else "/attachments")
        body: dict[str, Any] = {"attachments": [(views.attachment if detail else views.attachment_summary)(r)
                                                for r in rows]}
        if links["next"]:
            body["attachments_links"] = [{"rel": "next", "href": links["next"]}]
        return body

    async def list_attachments(call: Call) -> Any:
        return await list_page(call, False)

    async def list_attachments_detail(call: Call) -> Any:
        return await list_page(call, True)

    async def create_attachment(call: Call) -> Any:
        need_attachments_api(call)
        body = call.body["attachment"]
        row = await attach.reserve(call.auth, body["volume_uuid"], body.get("instance_uuid"), body.get("connector"),
                                   body.get("mode"))
        return {"attachment": views.attachment(row)}

    async def show_attachment(call: Call, attachment_id: str) -> Any:
        need_attachments_api(call)
        return {"attachment": views.attachment(await attach.get(call.auth, attachment_id))}

    async def update_attachment(call: Call, attachment_id: str) -> Any:
        need_attachments_api(call)
        row = await attach.connect(call.auth, attachment_id, call.body["attachment"]["connector"])
        return {"attachment": views.attachment(row)}

    async def attachment_action(call: Call, attachment_id: str) -> Reply:
        need_attachments_api(call)
        (name, _), = call.body.items()
        if name != "os-complete":
            raise BadRequest(f"There is no such attachment action: {str(name)[:60]} (os-complete).")
        await attach.complete(call.auth, attachment_id)
        return Reply(None, 204)

    async def delete_attachment(call: Call, attachment_id: str) -> Any:
        need_attachments_api(call)
        left = await attach.detach(call.auth, attachment_id)
        return {"attachments": [views.attachment_summary(r) for r in left]}

    # --- QoS specs ---------------------------------------------------------------------------------
    async def list_qos(call: Call) -> Any:
        limit, marker = call.page()
        rows = await qos.list(call.auth, marker, limit)
        rows, _ = call.paged(rows, limit, "/qos-specs")
        return {"qos_specs": [views.qos(r) for r in rows]}

    async def create_qos(call: Call) -> Any:
        row = await qos.create(call.auth, call.body["qos_specs"])
        return {"qos_specs": views.qos(row), "links": views.qos_links(call.base, row["id"])}

    async def show_qos(call: Call, qos_id: str) -> Any:
        row = await qos.get(call.auth, qos_id)
        return {"qos_specs": views.qos(row), "links": views.qos_links(call.base, row["id"])}

    async def update_qos(call: Call, qos_id: str) -> Any:
        return {"qos_specs": await qos.update(call.auth, qos_id, call.body["qos_specs"])}

    async def delete_qos(call: Call, qos_id: str) -> Reply:
        await qos.delete(call.auth, qos_id, core.parse_bool(call.query.get("force", "false"), "force"))
        return Reply(None, 202)

    async def delete_qos_keys(call: Call, qos_id: str) -> Reply:
        await qos.delete_keys(call.auth, qos_id, call.body["keys"])
        return Reply(None, 202)

    async def qos_associations(call: Call, qos_id: str) -> Any:
        kinds = await qos.associations(call.auth, qos_id)
        return {"qos_associations": [{"association_type": "volume_type", "name": k["name"], "id": k["id"]}
                                     for k in kinds]}

    def type_param(call: Call) -> str:
        type_id = call.query.get("vol_type_id")
        if not type_id:
            raise BadRequest("Invalid input received: vol_type_id is required.")
        return type_id

    async def associate_qos(call: Call, qos_id: str) -> Reply:
        await qos.associate(call.auth, qos_id, type_param(call), True)
        return Reply(None, 202)

    async def disassociate_qos(call: Call, qos_id: str) -> Reply:
        await qos.associate(call.auth, qos_id, type_param(call), False)
        return Reply(None, 202)

    async def disassociate_all_qos(call: Call, qos_id: str) -> Reply:
        await qos.associate(call.auth, qos_id, None, False)
        return Reply(None, 202)

    # --- os-services -------------------------------------------------------------------------------
    async def list_services(call: Call) -> Any:
        version = version_of(call)
        binary, host = call.query.get("binary"), call.query.get("host")
        out = []
        for s in await qos.services(call.auth):
            if binary not in (None, s["binary"]) or host not in (None, s["host"], s["host"].split("@")[0]):
                continue
            service = {"binary": s["binary"], "host": s["host"], "zone": s["zone"], "status": "enabled",
                       "state": s["state"], "updated_at": s["updated_at"], "disabled_reason": None}
            if s["binary"] == "cinder-volume":
                service.update(replication_status="disabled", active_backend_id=None, frozen=False)
                if version >= (3, 49):
                    service["backend_state"] = s["state"]
            if version >= (3, 7):
                service["cluster"] = None
            out.append(service)
        return {"services": out}

    # --- what `openstack volume ...` lists of features this cloud does not have -----------------------
    def empty(key: str) -> Callable[[Call], Any]:
        async def listed(call: Call) -> Any:
            return {key: []}  # none exist: this cloud makes no backups, transfers, groups or messages

        listed.__name__ = f"list_{key.replace('-', '_')}"
        return listed

    async def resource_filters(call: Call) -> Any:
        return {"resource_filters": [
            {"resource": "volume", "filters": [*core.VOLUME_FILTERS, "metadata"]},
            {"resource": "snapshot", "filters": list(core.SNAPSHOT_FILTERS)},
            {"resource": "attachment", "filters": ["volume_id", "instance_id", "status", "attach_status"]}]}

    async def pools(call: Call) -> Any:
        require_admin(call, "scheduler_extension:scheduler_stats:get_pools")
        detail = core.parse_bool(call.query.get("detail", "false"), "detail")
        out = []
        for s in await qos.services(call.auth):
            if s["binary"] != "cinder-volume":
                continue
            driver = s["host"].split("@")[1]
            pool: dict[str, Any] = {"name": f"{s['host']}#{driver}"}
            if detail:
                pool["capabilities"] = {**core.backend_capabilities(driver), "timestamp": s["updated_at"]}
            out.append(pool)
        return {"pools": out}

    # --- os-hosts and backend capabilities (admins) ---------------------------------------------------
    async def list_hosts(call: Call) -> Any:
        require_admin(call, "volume_extension:hosts")
        return {"hosts": [{"host_name": s["host"], "service": s["binary"], "zone": s["zone"],
                           "service-status": "available" if s["state"] == "up" else "unavailable",
                           "service-state": "enabled", "last-update": s["updated_at"]}
                          for s in await qos.services(call.auth)]}

    async def show_host(call: Call, host: str) -> Any:
        # Cinder's counts are strings here.
        rows = await qos.host_usage(call.auth, host)
        return {"host": [{"resource": {"host": host, **{k: str(v) for k, v in row.items()}}} for row in rows]}

    async def capabilities(call: Call, host: str) -> Any:
        driver = (await qos.backend(call.auth, host))["host"].split("@", 1)[1]
        stats = core.backend_capabilities(driver)
        return {**{k: stats[k] for k in ("volume_backend_name", "storage_protocol", "vendor_name", "driver_version")},
                "pool_name": None, "description": None, "display_name": None,
                "visibility": None, "namespace": f"OS::Storage::Capabilities::{driver}", "replication_targets": [],
                "properties": {
                    "thin_provisioning": {"title": "Thin Provisioning", "type": "boolean",
                                          "description": "Sets thin provisioning."},
                    "qos": {"title": "QoS", "type": "boolean", "description": "Enables QoS."}}}

    absent = [("/consistencygroups", "consistencygroups"),
              ("/consistencygroups/detail", "consistencygroups"),
              ("/clusters", "clusters"), ("/clusters/detail", "clusters")]
    async def service_action(call: Call, service_action: str) -> Any:
        """enable/disable/disable-log-reason, freeze/thaw/failover of a backend: a host this cloud
        does not have is Cinder's 404 (400 for freeze/thaw/failover); a real one cannot be changed."""
        require_admin(call, f"volume_extension:services:{service_action}")
        body = call.body if isinstance(call.body, dict) else {}
        host, binary = body.get("host"), body.get("binary")
        services = await qos.services(call.auth)
        found = [s for s in services if host in (s["host"], s["host"].split("@")[0])
                 and binary in (None, s["binary"])]
        if service_action in ("enable", "disable", "disable-log-reason"):
            if not found:
                raise NotFound(f"Service {str(binary)[:60]} on host {str(host)[:60]} could not be found.")
            if service_action == "enable":
                s = found[0]
                return {"host": s["host"], "binary": s["binary"], "status": "enabled", "disabled": False}
            raise BadRequest("Invalid input received: disabling a volume service is not supported by this cloud "
                             "(each node keeps the volumes it makes).")
        if service_action in ("freeze", "thaw", "failover_host", "failover"):
            if not found:
                raise BadRequest(f"Invalid input received: host {str(host)[:60]} is not a volume backend here.")
            raise BadRequest(f"Invalid input received: {service_action} needs replication, which this cloud "
                             "does not have.")
        raise NotFound(f"There is no os-services action {service_action[:60]}.")

    attachment = "/attachments/{attachment_id}"
    spec = "/qos-specs/{qos_id}"
    return [
        *scoped("PUT", "/os-services/{service_action}", service_action,
                summary="Enable/disable/freeze a volume service (admins; only enable of a real one succeeds)",
                body={"type": "object"}),
        *[route for path, key in absent for route in scoped(
            "GET", path, empty(key), summary=f"{key}: none (this cloud has none)",
            query=("limit", "marker", "all_tenants", "detail", "sort", "with_count"))],
        *scoped("GET", "/resource_filters", resource_filters, summary="The list filters each resource takes (3.33)",
                query=("resource",)),
        *scoped("GET", "/scheduler-stats/get_pools", pools, summary="Each node's storage pool (admins)",
                query=("detail",)),
        *scoped("GET", "/attachments", list_attachments, summary="List attachments (3.27)",
                query=("limit", "marker", "volume_id", "instance_id", "status", "attach_status", "all_tenants")),
        *scoped("GET", "/attachments/detail", list_attachments_detail, summary="List attachments with details (3.27)",
                query=("limit", "marker", "volume_id", "instance_id", "status", "attach_status", "all_tenants")),
        *scoped("POST", "/attachments", create_attachment, summary="Reserve a volume for a server (3.27)",
                body=CREATE_ATTACHMENT),
        *scoped("GET", attachment, show_attachment, summary="Show an attachment (3.27)"),
        *scoped("PUT", attachment, update_attachment, summary="Give an attachment its connector (3.27)",
                body=UPDATE_ATTACHMENT),
        *scoped("POST", attachment + "/action", attachment_action, summary="os-complete an attachment (3.44)",
                body=ATTACHMENT_ACTION, status=204),
        *scoped("DELETE", attachment, delete_attachment, summary="Delete an attachment: detach (3.27)"),
        *scoped("GET", "/qos-specs", list_qos, summary="List QoS specs (admins)", query=("limit", "marker")),
        *scoped("POST", "/qos-specs", create_qos, summary="Create QoS specs (admins)", body=QOS_CREATE),
        *scoped("GET", spec, show_qos, summary="Show QoS specs (admins)"),
        *scoped("PUT", spec, update_qos, summary="Set QoS specs' keys (admins)", body=QOS_UPDATE),
        *scoped("DELETE", spec, delete_qos, summary="Delete QoS specs (admins; force: even if associated)",
                query=("force",), status=202),
        *scoped("PUT", spec + "/delete_keys", delete_qos_keys, summary="Remove QoS specs' keys (admins)",
                body=QOS_KEYS, status=202),
        *scoped("GET", spec + "/associations", qos_associations, summary="The types of QoS specs (admins)"),
        *scoped("GET", spec + "/associate", associate_qos, summary="Associate QoS specs with a type (admins)",
                query=("vol_type_id",), status=202),
        *scoped("GET", spec + "/disassociate", disassociate_qos, summary="Disassociate QoS specs from a type",
                query=("vol_type_id",), status=202),
        *scoped("GET", spec + "/disassociate_all", disassociate_all_qos,
                summary="Disassociate QoS specs from every type", status=202),
        *scoped("GET", "/os-hosts", list_hosts, summary="Volume hosts: each node's backend, the scheduler (admins)"),
        *scoped("GET", "/os-hosts/{host}", show_host, summary="What a backend keeps, in total and per project"),
        *scoped("GET", "/capabilities/{host}", capabilities, summary="A backend's capabilities (admins)"),
        *scoped("GET", "/os-services", list_services, summary="Volume services: each node's backend, the scheduler",
                query=("binary", "host")),
    ]

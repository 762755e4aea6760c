"""Cinder v3 routes of volume types (extra specs, access, default types), quotas, limits,
availability zones and extensions."""

from __future__ import annotations

from typing import Any, Callable

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import BadRequest, NotFound
from cloudbox.volume import core, models, views


# Cinder's API extensions (now folded into v3) that cloudbox serves: (alias, name, what).
EXTENSIONS = (
    ("os-admin-actions", "AdminActions", "Reset status, force delete and force detach (admins)."),
    ("os-availability-zone", "AvailabilityZones", "The availability zones of volumes."),
    ("capabilities", "Capabilities", "A backend's capabilities (admins)."),
    ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes", "Project and progress of snapshots."),
    ("os-hosts", "Hosts", "Volume hosts and what each keeps (admins)."),
    ("qos-specs", "Qos_specs_manage", "QoS specs and their volume types (admins)."),
    ("os-quota-class-sets", "QuotaClasses", "The default quota class."),
    ("os-quota-sets", "Quotas", "Per-project volume quotas."),
    ("scheduler-stats", "Scheduler_stats", "The storage pools of the backends (admins)."),
    ("os-services", "Services", "The volume services."),
    ("os-types-extra-specs", "TypesExtraSpecs", "Extra specs of volume types."),
    ("os-volume-actions", "VolumeActions", "Attach, detach, extend, bootable, read-only and upload actions."),
    ("os-vol-host-attr", "VolumeHostAttribute", "The host of a volume (admins)."),
    ("os-vol-image-meta", "VolumeImageMetadata", "The image properties of volumes made from images."),
    ("os-vol-mig-status-attr", "VolumeMigStatusAttribute", "The migration status of volumes (admins)."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute", "The project of a volume."),
    ("os-volume-type-access", "VolumeTypeAccess", "Private volume types and the projects that may use them."),
)


def routes(svc: Any, scoped: Callable[..., list[Route]]) -> list[Route]:
    types = svc.types

    def admin(call: Call) -> bool:
        return bool(call.auth and call.auth.is_cloud_admin)

    # --- types ----------------------------------------------------------------------------------
    async def list_types(call: Call) -> Any:
        raw = call.query.get("is_public")
        is_public = None if raw in (None, "", "None", "none") else core.parse_bool(raw, "is_public")
        rows = await types.list(call.auth, is_public)
        return {"volume_types": [views.volume_type(r, admin=admin(call)) for r in rows]}

    async def create_type(call: Call) -> Any:
        kind = await types.create(call.auth, call.body["volume_type"])
        return {"volume_type": views.volume_type(kind, admin=True, answer="create")}

    async def show_type(call: Call, type_id: str) -> Any:
        return {"volume_type": views.volume_type(await types.get(call.auth, type_id), admin=admin(call))}

    async def update_type(call: Call, type_id: str) -> Any:
        kind = await types.update(call.auth, type_id, call.body["volume_type"])
        return {"volume_type": views.volume_type(kind, admin=True, answer="update")}

    async def delete_type(call: Call, type_id: str) -> Reply:
        await types.delete(call.auth, type_id)
        return Reply(None, 202)

    async def list_specs(call: Call, type_id: str) -> Any:
        return {"extra_specs": (await types.get(call.auth, type_id))["extra_specs"] if admin(call) else {}}

    async def set_specs(call: Call, type_id: str) -> Any:
        asked = call.body["extra_specs"]
        specs = await types.set_extra_specs(call.auth, type_id, asked)
        return {"extra_specs": {k: specs[k] for k in asked}}  # Cinder answers the specs it was given

    async def show_spec(call: Call, type_id: str, key: str) -> Any:
        specs = (await types.get(call.auth, type_id))["extra_specs"] if admin(call) else {}
        if key not in specs:
            raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
        return {key: specs[key]}

    async def set_spec(call: Call, type_id: str, key: str) -> Any:
        if not isinstance(call.body, dict) or list(call.body) != [key]:
            raise BadRequest("Invalid input received: the body's one key must be the key in the path.")
        return {key: (await types.set_extra_specs(call.auth, type_id, call.body))[key]}

    async def delete_spec(call: Call, type_id: str, key: str) -> Reply:
        await types.set_extra_specs(call.auth, type_id, {}, (key,))
        return Reply(None, 202)

    async def list_access(call: Call, type_id: str) -> Any:
        projects = await types.access(call.auth, type_id)
        return {"volume_type_access": [{"volume_type_id": type_id, "project_id": p} for p in projects]}

    async def type_action(call: Call, type_id: str) -> Reply:
        (name, args), = call.body.items()
        if name not in ("addProjectAccess", "removeProjectAccess") or not isinstance(args, dict):
            raise BadRequest(f"There is no such type action: {str(name)[:60]} (addProjectAccess, "
                             "removeProjectAccess).")
        await types.set_access(call.auth, type_id, args.get("project"), name == "addProjectAccess")
        return Reply(None, 202)

    # --- default types (3.62) ---------------------------------------------------------------------
    async def set_default(call: Call, project_id: str) -> Any:
        row = await types.set_default(call.auth, project_id, call.body["default_type"]["volume_type"])
        return {"default_type": row}

    async def show_default(call: Call, project_id: str) -> Any:
        return {"default_type": await types.get_default(call.auth, project_id)}

    async def list_defaults(call: Call) -> Any:
        return {"default_types": await types.list_defaults(call.auth)}

    async def unset_default(call: Call, project_id: str) -> Reply:
        await types.unset_default(call.auth, project_id)
        return Reply(None, 204)

    # --- quotas, limits, zones ----------------------------------------------------------------------
    async def show_quota(call: Call, project_id: str) -> Any:
        limits, usage = await types.quota(call.auth, project_id)
        with_usage = core.parse_bool(call.query.get("usage", "false"), "usage")
        return views.quota_set(project_id, limits, usage if with_usage else None)

    async def quota_defaults(call: Call, project_id: str) -> Any:
        return views.quota_set(project_id, await types.quota_defaults(call.auth, project_id), None)

    async def update_quota(call: Call, project_id: str) -> Any:
        limits = await types.set_quota(call.auth, project_id, call.body["quota_set"])
        body = views.quota_set(project_id, limits, None)
        del body["quota_set"]["id"]
        return body

    async def delete_quota(call: Call, project_id: str) -> Reply:
        await types.delete_quota(call.auth, project_id)
        return Reply(None, 200)

    async def show_class_quota(call: Call, name: str) -> Any:
        if name != "default":
            raise NotFound(f"Quota class {name[:60]} could not be found; there is only 'default'.")
        limits = await types.quota_defaults(call.auth, call.auth.project_id or "")
        return {"quota_class_set": {"id": name, **limits}}

    async def update_class_quota(call: Call, name: str) -> Any:
        return {"quota_class_set": await types.set_class_quota(call.auth, name, call.body["quota_class_set"])}

    async def limits(call: Call) -> Any:
        limits_, usage = await types.limits(call.auth, call.query.get("project_id"))
        return views.limits(limits_, usage)

    async def zones(call: Call) -> Any:
        return views.zones(types.zones())

    async def extensions(call: Call) -> Any:
        return {"extensions": [{"alias": alias, "name": name, "description": what, "links": [],
                                "updated": "2024-01-01T00:00:00+00:00"} for alias, name, what in EXTENSIONS]}

    kind = "/types/{type_id}"
    quota = "/os-quota-sets/{project_id}"
    return [
        *scoped("GET", "/types", list_types, summary="List volume types", query=("is_public",)),
        *scoped("POST", "/types", create_type, summary="Create a volume type (admins)", body=models.CREATE_TYPE),
        *scoped("GET", kind, show_type, summary="Show a volume type ('default': the caller's default)"),
        *scoped("PUT", kind, update_type, summary="Update a volume type (admins)", body=models.UPDATE_TYPE),
        *scoped("DELETE", kind, delete_type, summary="Delete a volume type (admins)", status=202),
        *scoped("GET", kind + "/extra_specs", list_specs, summary="A volume type's extra specs"),
        *scoped("POST", kind + "/extra_specs", set_specs, summary="Set extra specs (admins)",
                body=models.EXTRA_SPECS),
        *scoped("GET", kind + "/extra_specs/{key}", show_spec, summary="Show one extra spec"),
        *scoped("PUT", kind + "/extra_specs/{key}", set_spec, summary="Set one extra spec (admins)",
                body={"type": "object"}),
        *scoped("DELETE", kind + "/extra_specs/{key}", delete_spec, summary="Delete one extra spec (admins)",
                status=202),
        *scoped("GET", kind + "/os-volume-type-access", list_access, summary="Projects that may use a private type"),
        *scoped("POST", kind + "/action", type_action, summary="Add or remove a project's access to a private type",
                body=models.TYPE_ACTION, status=202),
        *scoped("GET", "/default-types", list_defaults, summary="Projects' default volume types (admins)"),
        *scoped("GET", "/default-types/{project_id}", show_default, summary="A project's default volume type"),
        *scoped("PUT", "/default-types/{project_id}", set_default, summary="Set a project's default volume type",
                body=models.DEFAULT_TYPE),
        *scoped("DELETE", "/default-types/{project_id}", unset_default, summary="Unset a project's default type",
                status=204),
        *scoped("GET", quota, show_quota, summary="A project's volume quotas (usage=true: with usage)",
                query=("usage",)),
        *scoped("GET", quota + "/defaults", quota_defaults, summary="The default volume quotas"),
        *scoped("PUT", quota, update_quota, summary="Set a project's volume quotas (admins)", body=models.QUOTA_SET),
        *scoped("DELETE", quota, delete_quota, summary="Reset a project's volume quotas to the defaults (admins)"),
        *scoped("GET", "/os-quota-class-sets/{name}", show_class_quota, summary="The default quota class"),
        *scoped("PUT", "/os-quota-class-sets/{name}", update_class_quota, summary="Set the default quota class",
                body=models.QUOTA_CLASS_SET),
        *scoped("GET", "/limits", limits, summary="The caller's project's absolute limits and usage",
                query=("project_id",)),
        *scoped("GET", "/os-availability-zone", zones, summary="Availability zones of volumes"),
        *scoped("GET", "/extensions", extensions, summary="The API extensions this cloud serves"),
    ]

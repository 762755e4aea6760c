"""Nova JSON shapes for servers, flavors and key pairs, by microversion. Pure."""

from __future__ import annotations

from typing import Any

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 96)
POWER_STATES = {"nostate": 0, "running": 1, "paused": 3, "shutdown": 4, "crashed": 6, "suspended": 7}


def parse_version(text: str | None) -> tuple[int, int]:
    """The microversion a request asked for (headers already narrowed to the compute value)."""
    from cloudbox.errors import BadRequest

    if not text:
        return MIN_VERSION
    text = text.strip().lower()
    if text == "latest":
        return MAX_VERSION
    try:
        major, minor = (int(p) for p in text.split("."))
    except ValueError:
        raise BadRequest(f"Invalid format for API version: {text!r}.") from None
    if not MIN_VERSION <= (major, minor) <= MAX_VERSION:
        from cloudbox.errors import CloudboxError

        err = CloudboxError(f"Version {text} is not supported by the API. Minimum is 2.1 and maximum is "
                            f"{MAX_VERSION[0]}.{MAX_VERSION[1]}.")
        err.status = 406
        raise err
    return major, minor


def version_document(base: str) -> dict[str, Any]:
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
                  detail: bool = True) -> dict[str, Any]:
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
        "addresses": row.get("addresses", {}), "accessIPv4": "", "accessIPv6": "",
        "links": link(base, "servers", row["id"]), "OS-DCF:diskConfig": "MANUAL", "progress": 0,
        "OS-EXT-AZ:availability_zone": row["availability_zone"] or "",
        "config_drive": "True" if row["config_drive"] else "", "key_name": row["key_name"],
        "OS-SRV-USG:launched_at": row["launched_at"], "OS-SRV-USG:terminated_at": None,
        "OS-EXT-STS:task_state": row["task_state"], "OS-EXT-STS:vm_state": row["vm_state"],
        "OS-EXT-STS:power_state": row["power_state"], "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": g} for g in row.get("security_groups") or ["default"]],
    }
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
    if version >= (2, 73):
        body["locked_reason"] = None
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


def _host_id(row: dict[str, Any]) -> str:
    import hashlib

    if not row["host"]:
        return ""
    return hashlib.sha224((row["project_id"] + row["host"]).encode()).hexdigest()


def render_keypair(row: dict[str, Any], version: tuple[int, int], *, detail: bool = True) -> dict[str, Any]:
    body = {"name": row["name"], "public_key": row["public_key"], "fingerprint": row["fingerprint"]}
    if version >= (2, 2):
        body["type"] = row["type"]
    if detail:
        body.update({"user_id": row["user_id"], "created_at": row["created_at"], "deleted": False,
                     "deleted_at": None, "updated_at": None, "id": 0})
    return body

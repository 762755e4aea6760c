"""Pure rules of the volume service: the status machine, field checks, quotas, list options.

Volume statuses (Cinder's), and who moves them:

| from        | to          | by                                                          |
|-------------|-------------|-------------------------------------------------------------|
| (none)      | creating    | create (API)                                                |
| creating    | available   | the host's worker, once the disk is made                    |
| creating    | error       | the worker, when the disk cannot be made (message kept)     |
| available   | extending   | os-extend (API); the worker grows the disk                  |
| in-use      | extending   | os-extend at 3.42+ (one local attachment: not NBD, not twice) |
| extending   | available, in-use | the worker (size becomes the new size; in-use when attached) or error_extending |
| available, error, error_extending, error_deleting | deleting | delete (API) |
| deleting    | (gone)      | the worker, once the disk is gone; error_deleting otherwise |
| any         | any         | os-reset_status (admins)                                    |

Snapshots: creating → available | error; available, error → deleting → (gone) | error_deleting.
No I/O here: no trio, sqlite or subprocess.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from cloudbox.api import microversions
from cloudbox.errors import BadRequest, PayloadTooLarge

MIN_VERSION = (3, 0)
MAX_VERSION = (3, 71)  # what openstacksdk's volume resources ask for
DEFAULT_TYPE_ID = "2b8d8f5a-5b7e-4f0e-9a57-7c7c3f1d0d01"  # the __DEFAULT__ type made by migration 1
DEFAULT_TYPE_NAME = "__DEFAULT__"
MAX_SIZE_GB = 16384
MAX_METADATA = 128

STATUSES = ("creating", "available", "reserved", "attaching", "detaching", "in-use", "maintenance", "deleting",
            "awaiting-transfer", "error", "error_deleting", "backing-up", "restoring-backup", "error_backing-up",
            "error_restoring", "error_extending", "downloading", "uploading", "retyping", "extending")
SNAPSHOT_STATUSES = ("creating", "available", "backing-up", "deleting", "error", "deleted", "unmanaging",
                     "restoring", "error_deleting")
BUSY = ("creating", "deleting", "extending", "retyping", "attaching", "detaching", "downloading", "uploading")
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
ATTACHED = ("in-use", "attaching", "detaching", "reserved")
QUOTA_RESOURCES = ("volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes", "groups",
                   "per_volume_gigabytes")
PER_TYPE = ("volumes", "gigabytes", "snapshots")


class QuotaExceeded(PayloadTooLarge):
    """Cinder answers an exceeded quota with 413."""

    title = "Request Entity Too Large"


@dataclass(frozen=True)
class Viewer:
    """Whose volumes a caller sees: every project's (admins, with all_tenants) or one."""

    project_id: str | None
    sees_all: bool = False


def parse_version(text: str | None) -> tuple[int, int]:
    return microversions.parse(text, MIN_VERSION, MAX_VERSION)


def requested_version(headers: Mapping[str, str]) -> tuple[int, int]:
    return parse_version(microversions.from_header(headers, ("volume", "block-storage")))


def version_document(base: str) -> dict[str, Any]:
    return {"id": "v3.0", "status": "CURRENT", "version": f"{MAX_VERSION[0]}.{MAX_VERSION[1]}",
            "min_version": "3.0", "updated": "2023-12-01T00:00:00Z",
            "links": [{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": base + "/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


# --- field checks ---------------------------------------------------------------------------
def parse_size(value: Any, what: str = "size") -> int:
    """A size in GB: a whole number (or its text) of 1 to MAX_SIZE_GB."""
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input received: {what} must be a whole number of GB, not {value!r}.")
    try:
        size = int(value)
        if isinstance(value, float) and value != size:
            raise ValueError
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input received: {what} must be a whole number of GB, "
                         f"not {str(value)[:40]!r}.") from None
    if not 1 <= size <= MAX_SIZE_GB:
        raise BadRequest(f"Invalid input received: {what} must be between 1 and {MAX_SIZE_GB} GB, not {size}.")
    return size


def parse_bool(value: Any, what: str) -> bool:
    """Cinder's relaxed booleans: true/false, their text in any case, 1/0, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on", "t", "y"):
        return True
    if text in ("false", "0", "no", "off", "f", "n"):
        return False
    raise BadRequest(f"Invalid input received: {what} must be a boolean, not {str(value)[:40]!r}.")


def check_metadata(metadata: Any) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise BadRequest("Invalid input received: metadata must be an object of strings.")
    if len(metadata) > MAX_METADATA:
        raise BadRequest(f"Invalid input received: at most {MAX_METADATA} metadata items.")
    for key, value in metadata.items():
        if not key or len(key) > 255 or not isinstance(value, str) or len(value) > 255:
            raise BadRequest("Invalid input received: metadata keys are 1-255 characters and values strings "
                             "of up to 255 characters.")
    return dict(metadata)


UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


# --- quotas ------------------------------------------------------------------------------------
def quota_defaults(volumes: int, gigabytes: int, snapshots: int) -> dict[str, int]:
    return {"volumes": volumes, "gigabytes": gigabytes, "snapshots": snapshots, "backups": 10,
            "backup_gigabytes": 1000, "groups": 10, "per_volume_gigabytes": -1}


def check_quota(limits: Mapping[str, int], usage: Mapping[str, int], adding: Mapping[str, int]) -> None:
    """QuotaExceeded when any resource would pass its limit (-1: unlimited)."""
    for resource, delta in adding.items():
        limit = limits.get(resource, -1)
        if delta > 0 and limit >= 0 and usage.get(resource, 0) + delta > limit:
            what = {"volumes": "VolumeLimitExceeded", "snapshots": "SnapshotLimitExceeded"}.get(
                resource.split("_")[0], "VolumeSizeExceedsAvailableQuota")
            raise QuotaExceeded(f"{what}: requested {delta} {resource}, already used {usage.get(resource, 0)} "
                                f"of {limit}.")


def check_quota_limits(body: Mapping[str, Any], known: set[str]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for key, value in body.items():
        if key in ("id", "tenant_id"):
            continue
        if key not in known:
            raise BadRequest(f"Bad key(s) in quota set: {key[:60]}")
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise BadRequest(f"Quota {key} must be a whole number, not {str(value)[:40]!r}.")
        try:
            number = int(value)
        except ValueError:
            raise BadRequest(f"Quota {key} must be a whole number, not {str(value)[:40]!r}.") from None
        if number < -1 or number > 2**31 - 1:
            raise BadRequest(f"Quota {key} must be -1 (unlimited) or a whole number from 0.")
        limits[key] = number
    return limits


# --- lists -------------------------------------------------------------------------------------
VOLUME_SORT = {"id": "id", "name": "coalesce(name, '')", "size": "size", "status": "status",
               "created_at": "created_at", "updated_at": "updated_at", "bootable": "bootable",
               "availability_zone": "availability_zone", "project_id": "project_id"}
SNAPSHOT_SORT = {"id": "id", "name": "coalesce(name, '')", "size": "size", "status": "status",
                 "created_at": "created_at", "updated_at": "updated_at", "volume_id": "volume_id"}
VOLUME_FILTERS = {"name": "name", "status": "status", "bootable": "bootable", "size": "size",
                  "availability_zone": "availability_zone", "volume_type": "volume_type_id",
                  "host": "host", "project_id": "project_id"}
SNAPSHOT_FILTERS = {"name": "name", "status": "status", "volume_id": "volume_id", "project_id": "project_id"}
LIST_PARAMS = ("limit", "marker", "sort", "sort_key", "sort_dir", "all_tenants", "offset", "with_count",
               "metadata", *VOLUME_FILTERS)


@dataclass
class ListOptions:
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc"), ("id", "desc")])
    equals: dict[str, Any] = field(default_factory=dict)
    like: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    offset: int = 0  # rows skipped before the page (Cinder's offset, with or without a marker)


SORT_ALIASES = {"display_name": "name"}  # Cinder takes the v1 names as sort keys too
MAX_OFFSET = 2**31 - 1


def parse_list_options(query: Mapping[str, str], sort_columns: Mapping[str, str],
                       filters: Mapping[str, str]) -> ListOptions:
    opts = ListOptions()
    keys: list[tuple[str, str]] = []
    if query.get("sort"):
        for part in query["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            keys.append((key, direction or "desc"))
    elif query.get("sort_key"):
        keys = [(k.strip(), query.get("sort_dir", "desc")) for k in query["sort_key"].split(",")]
    keys = [(SORT_ALIASES.get(k, k), d) for k, d in keys]
    for key, direction in keys:
        if key not in sort_columns:
            raise BadRequest(f"Invalid input received: sort key {key[:40]!r} is not one of "
                             f"{', '.join(sorted(sort_columns))}.")
        if direction.lower() not in ("asc", "desc"):
            raise BadRequest(f"Invalid input received: sort direction {direction[:20]!r} is not asc or desc.")
    if keys:
        opts.sort = [(k, d.lower()) for k, d in keys]
        if "id" not in [k for k, _ in keys]:
            opts.sort.append(("id", opts.sort[-1][1]))
    for name, column in filters.items():
        raw = query.get(name)
        if raw is None:
            raw = query.get(name + "~")
            if raw is not None:
                opts.like[column] = raw
            continue
        if name == "bootable":
            opts.equals[column] = int(parse_bool(raw, "bootable"))
        elif name == "size":
            try:
                opts.equals[column] = int(raw)
            except ValueError:
                raise BadRequest(f"Invalid input received: size filter {raw[:20]!r} is not a number.") from None
        else:
            opts.equals[column] = raw
    if query.get("offset") not in (None, ""):
        raw = query["offset"]
        if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_OFFSET:
            raise BadRequest(f"Invalid input received: offset {raw[:20]!r} must be a whole number from 0.")
        opts.offset = int(raw)
    if query.get("metadata"):
        text = query["metadata"]
        parsed = None
        if len(text) <= 4096:  # Cinder's filter is a Python dict literal; a bounded one is parsed
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                parsed = None
        if not isinstance(parsed, dict):
            raise BadRequest("Invalid input received: metadata filter must look like {'key': 'value'}.")
        opts.metadata = {str(k): str(v) for k, v in parsed.items()}
    return opts


# --- backends and what a volume type asks of them ----------------------------------------------------
HELD = "status set by an administrator"  # a reset status: the worker leaves the row as it is (Cinder's
# reset changes only the database); any later change of status by the cloud releases it
WORKED_STATUSES = ("creating", "extending", "deleting", "downloading")  # what the worker acts on (so what a reset holds)


def backend_capabilities(driver: str) -> dict[str, Any]:
    """What a node's backend reports (get_pools, the capabilities API) and types are matched against."""
    return {"volume_backend_name": driver, "storage_protocol": "local/nbd", "vendor_name": "cloudbox",
            "driver_version": "1.0", "multiattach": True, "thin_provisioning_support": True, "QoS_support": True}


def _spec_met(wanted: str, have: Any) -> bool:
    """One extra spec against a capability, with Cinder's operators <is>, <in> and <or>."""
    text = wanted.strip()
    if text.startswith("<is>"):
        return str(have).lower() == text[4:].strip().lower()
    if text.startswith("<in>"):
        return text[4:].strip() in str(have)
    if text.startswith("<or>"):
        return str(have) in [part.strip() for part in text[4:].split("<or>")]
    return text == str(have)


def unmet_capabilities(extra_specs: Mapping[str, str], capabilities: Mapping[str, Any]) -> list[str]:
    """The extra specs (unscoped or ``capabilities:``) naming a capability the backend reports with
    another value: a type with any cannot be placed (Cinder's capabilities filter). Specs naming no
    reported capability, or of another scope (``qos:``...), are not the backend's to meet."""
    unmet = []
    for key, wanted in sorted(extra_specs.items()):
        name = key.removeprefix("capabilities:")
        if ":" in name or name not in capabilities:
            continue
        if not _spec_met(str(wanted), capabilities[name]):
            unmet.append(f"{name}={wanted}")
    return unmet


def image_needs_gb(image: Mapping[str, Any]) -> int:
    """The gigabytes a volume needs to hold an image: its min_disk, or its virtual size rounded up."""
    size = image.get("virtual_size") or image.get("size") or 0
    return max(image.get("min_disk") or 0, -(-int(size) // (1 << 30)))


def image_metadata_of(image: Mapping[str, Any]) -> dict[str, str]:
    """Cinder's volume_image_metadata of a volume made from (or reimaged with) an image."""
    return {"image_id": image["id"], "image_name": image.get("name") or "",
            "checksum": image.get("checksum") or "", "disk_format": image["disk_format"],
            "container_format": image.get("container_format") or "bare",
            "min_disk": str(image.get("min_disk") or 0), "min_ram": str(image.get("min_ram") or 0),
            "size": str(image.get("size") or 0),
            **{k: str(v) for k, v in image.get("properties", {}).items() if not k.startswith("os_glance")}}

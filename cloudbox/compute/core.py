"""Pure logic of compute: libvirt domain XML, config-drive content, request rules.

No I/O here: ``render_domain_xml`` turns a ``DomainSpec`` into the XML the
real driver defines, ``parse_domain_metadata`` reads our key/values back out
of a domain's XML (adoption after a restart), and ``config_drive_files`` lays
out the files of an OpenStack config drive exactly as Nova does, so cloud-init,
cirros and cloudbase-init find what they look for.  ``disks.build_config_drive``
writes those files into an ISO9660 image labelled ``config-2``.  The rules of
requests (quota room for a multi-create, name filters, host names, user data) are
here too, as data in and a verdict out.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import xml.etree.ElementTree as ET
from typing import Any, Callable

from cloudbox.compute.driver import DomainSpec
from cloudbox.errors import BadRequest, Conflict, OverQuota

# --- domain XML --------------------------------------------------------------

# Namespace of our element inside the domain's <metadata>; libvirt keeps any
# foreign element there untouched.  Changing it orphans existing domains.
METADATA_NS = "urn:cloudbox:libvirt:domain:1"
METADATA_PREFIX = "cloudbox"
DOMAIN_NAME_PREFIX = "cloudbox-"
MACHINES = ("pc", "q35")

ET.register_namespace(METADATA_PREFIX, METADATA_NS)


def domain_name(uuid: str) -> str:
    return f"{DOMAIN_NAME_PREFIX}{uuid}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def render_domain_xml(spec: DomainSpec, *, machine: str = "pc") -> str:
    """The libvirt domain XML of one server.

    ``machine`` "pc" (i440fx) puts the config drive on IDE, which every small
    guest kernel carries (ata_piix); "q35" puts it on SATA (needs ahci).
    """
    if spec.accel not in ("kvm", "tcg"):
        raise ValueError(f"accel must be 'kvm' or 'tcg', not {spec.accel!r}")
    if machine not in MACHINES:
        raise ValueError(f"machine must be one of {MACHINES}, not {machine!r}")
    if spec.vcpus < 1 or spec.memory_mb < 16:
        raise ValueError("a domain needs at least 1 vCPU and 16 MB of memory")

    domain = ET.Element("domain", {"type": "kvm" if spec.accel == "kvm" else "qemu"})
    _sub(domain, "name", spec.name)
    _sub(domain, "uuid", spec.uuid)
    metadata = _sub(domain, "metadata")
    ours = _sub(metadata, f"{{{METADATA_NS}}}domain")
    for key, value in sorted(spec.metadata.items()):
        _sub(ours, f"{{{METADATA_NS}}}item", str(value), key=str(key))
    _sub(domain, "memory", str(spec.memory_mb), unit="MiB")
    _sub(domain, "currentMemory", str(spec.memory_mb), unit="MiB")
    _sub(domain, "vcpu", str(spec.vcpus), placement="static")

    # SMBIOS: cloud-init's ds-identify recognises OpenStack by the product name.
    sysinfo = _sub(domain, "sysinfo", type="smbios")
    system = _sub(sysinfo, "system")
    for name, value in (
        ("manufacturer", "cloudbox"),
        ("product", "OpenStack Compute"),
        ("serial", spec.uuid),
        ("uuid", spec.uuid),
        ("family", "Virtual Machine"),
    ):
        _sub(system, "entry", value, name=name)

    os_ = _sub(domain, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine=machine)
    _sub(os_, "boot", dev="hd")
    # SeaBIOS prints to the serial console too: the console log shows the boot from its first line.
    _sub(os_, "bios", useserial="yes")
    _sub(os_, "smbios", mode="sysinfo")

    features = _sub(domain, "features")
    _sub(features, "acpi")  # graceful shutdown is an ACPI power-button press
    _sub(features, "apic")

    if spec.accel == "kvm":
        _sub(domain, "cpu", mode="host-passthrough", check="none", migratable="on")
    # TCG keeps QEMU's default CPU model, as Nova does for virt_type=qemu.

    clock = _sub(domain, "clock", offset="utc")
    _sub(clock, "timer", name="rtc", tickpolicy="catchup")
    _sub(clock, "timer", name="pit", tickpolicy="delay")
    _sub(clock, "timer", name="hpet", present="no")

    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    root = _sub(devices, "disk", type="file", device="disk")
    _sub(root, "driver", name="qemu", type="qcow2", discard="unmap")
    _sub(root, "source", file=spec.root_disk)
    _sub(root, "target", dev="vda", bus="virtio")

    if spec.config_drive:
        # A CD-ROM, as Nova does: guests look for the filesystem labelled config-2.
        cdrom = _sub(devices, "disk", type="file", device="cdrom")
        _sub(cdrom, "driver", name="qemu", type="raw")
        _sub(cdrom, "source", file=spec.config_drive)
        if machine == "pc":
            _sub(cdrom, "target", dev="hdd", bus="ide")
        else:
            _sub(cdrom, "target", dev="sda", bus="sata")
        _sub(cdrom, "readonly")

    for nic in spec.nics:
        # The network side made the tap (in the right namespace/bridge); QEMU only attaches to it.
        interface = _sub(devices, "interface", type="ethernet")
        _sub(interface, "mac", address=nic.mac)
        _sub(interface, "target", dev=nic.tap, managed="no")
        _sub(interface, "model", type="virtio")
        _sub(interface, "mtu", size=str(nic.mtu))

    # The serial port is a unix socket (the console proxy's, cloudbox.console) whose output QEMU
    # also appends to the console log, connected or not: `openstack console log show` reads that.
    serial = _sub(devices, "serial", type="unix")
    _sub(serial, "source", mode="bind", path=serial_socket(spec.uuid))
    _sub(serial, "log", file=spec.console_log, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="unix")
    _sub(console, "source", mode="bind", path=serial_socket(spec.uuid))
    _sub(console, "target", type="serial", port="0")
    # VNC on a unix socket only (no TCP port anywhere): libvirt names it in the domain's private
    # directory, which QEMU may write; the live XML says where (console_sockets).
    graphics = _sub(devices, "graphics", type="vnc")
    _sub(graphics, "listen", type="socket")
    video = _sub(devices, "video")
    _sub(video, "model", type="vga")

    _sub(devices, "controller", type="usb", model="none")
    balloon = _sub(devices, "memballoon", model="virtio")
    _sub(balloon, "stats", period="10")
    rng = _sub(devices, "rng", model="virtio")  # guests generate SSH host keys at first boot
    _sub(rng, "backend", "/dev/urandom", model="random")

    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode")


# Serial sockets are bound by libvirt (root) and handed to QEMU as a descriptor, so QEMU needs no
# right on their directory; they live under the short run directory the driver owns
# (driver/real.py SHORT_ROOTS), as an instance directory can be too deep for a socket's path
# (108 bytes).  Server ids are unique, so nodes sharing a machine (tests) never meet here.
SERIAL_SOCKET_DIR = "/run/cloudbox/libvirt/console"


def serial_socket(uuid: str) -> str:
    return f"{SERIAL_SOCKET_DIR}/{uuid}.sock"


def console_sockets(xml: str) -> dict[str, str]:
    """The unix sockets of a running domain's consoles, by protocol ("vnc", "serial"), from its
    live XML; a domain defined before consoles (a file serial port, no graphics) has none."""
    devices = ET.fromstring(xml).find("devices")
    found: dict[str, str] = {}
    if devices is None:
        return found
    for graphics in devices.iterfind("graphics[@type='vnc']"):
        listen = graphics.find("listen[@type='socket']")
        path = graphics.get("socket") or (listen.get("socket") if listen is not None else None)
        if path:
            found.setdefault("vnc", path)
    for serial in devices.iterfind("serial[@type='unix']"):
        source = serial.find("source")
        if source is not None and source.get("mode") == "bind" and source.get("path"):
            found.setdefault("serial", source.get("path", ""))
    return found


def parse_domain_metadata(xml: str) -> dict[str, str]:
    """Our key/values from a domain's XML (or from our metadata element alone); {} if none."""
    root = ET.fromstring(xml)
    tag = f"{{{METADATA_NS}}}domain"
    ours = root if root.tag == tag else root.find(f"metadata/{tag}")
    if ours is None:
        return {}
    return {item.get("key", ""): item.text or "" for item in ours.findall(f"{{{METADATA_NS}}}item")}


# --- lifecycle ------------------------------------------------------------------

# What each driver operation does from each state: the state it leads to.
# A state missing from an operation's row means the operation is refused
# there (409 Conflict).  Where the target equals the current state the
# operation is a no-op, except for the reboots, which always act.
#
#   operation    running    paused     shutoff    suspended  crashed
#   start        -          -          running    running    running
#   stop         shutoff    shutoff    -          shutoff    -
#   reboot       running                                          (soft)
#   hard_reboot  running    running    running    running    running
#   pause        paused     -
#   unpause      running    -
#   suspend      suspended  suspended             -
#   resume       -                                running
LIFECYCLE: dict[str, dict[str, str]] = {
    "start": {"running": "running", "paused": "paused", "shutoff": "running", "suspended": "running", "crashed": "running"},
    "stop": {"running": "shutoff", "paused": "shutoff", "shutoff": "shutoff", "suspended": "shutoff", "crashed": "crashed"},
    "reboot": {"running": "running"},
    "hard_reboot": {"running": "running", "paused": "running", "shutoff": "running", "suspended": "running", "crashed": "running"},
    "pause": {"running": "paused", "paused": "paused"},
    "unpause": {"paused": "running", "running": "running"},
    "suspend": {"running": "suspended", "paused": "suspended", "suspended": "suspended"},
    "resume": {"suspended": "running", "running": "running"},
}
_ALWAYS_ACT = {"reboot", "hard_reboot"}


def plan_lifecycle(operation: str, state: str) -> str | None:
    """The state ``operation`` leads to from ``state``, or None when there is nothing to do.

    Raises Conflict when the operation is not allowed in that state.
    """
    target = LIFECYCLE[operation].get(state)
    if target is None:
        raise Conflict(f"cannot {operation.replace('_', ' ')} a domain that is {state}")
    if target == state and operation not in _ALWAYS_ACT:
        return None
    return target


# --- config drive -------------------------------------------------------------

# Nova's metadata versions, oldest first; each directory of the drive holds
# what that version defined (nova/api/metadata/base.py).
FOLSOM, GRIZZLY, HAVANA, LIBERTY = "2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15"
NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA = "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27", "2020-10-14"
OPENSTACK_VERSIONS = (FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA)
# Nova skips the EC2 versions before 2009-04-04 on config drives (config_drive_skip_versions).
EC2_VERSIONS = ("2009-04-04",)
CONFIG_DRIVE_LABEL = "config-2"

# meta_data.json keys that first appeared in a later version than Folsom.
_META_DATA_SINCE = {
    "random_seed": GRIZZLY,
    "project_id": LIBERTY,
    "devices": NEWTON_ONE,
    "dedicated_cpus": VICTORIA,
}


def build_meta_data(
    *,
    uuid: str,
    name: str,
    hostname: str,
    project_id: str,
    availability_zone: str,
    random_seed: bytes,
    launch_index: int = 0,
    meta: dict[str, str] | None = None,
    keys: list[dict[str, str]] | None = None,
    admin_pass: str | None = None,
    devices: list[dict[str, Any]] | None = None,
    dedicated_cpus: list[int] | None = None,
) -> dict[str, Any]:
    """The newest meta_data.json as Nova writes it.

    ``keys`` holds key pairs as {"name", "type", "data"}; ``random_seed`` is
    decided by the caller (512 random bytes in Nova), so this stays pure.
    """
    data: dict[str, Any] = {"uuid": uuid}
    if meta:
        data["meta"] = dict(meta)
    if admin_pass is not None:
        data["admin_pass"] = admin_pass
    if keys:
        data["public_keys"] = {key["name"]: key["data"] for key in keys}
        data["keys"] = [{"name": key["name"], "type": key.get("type", "ssh"), "data": key["data"]} for key in keys]
    data["hostname"] = hostname
    data["name"] = name
    data["launch_index"] = launch_index
    data["availability_zone"] = availability_zone
    data["random_seed"] = base64.b64encode(random_seed).decode("ascii")
    data["project_id"] = project_id
    data["devices"] = list(devices or [])
    data["dedicated_cpus"] = list(dedicated_cpus or [])
    return data


def build_ec2_meta_data(
    meta_data: dict[str, Any],
    *,
    instance_id: str,
    instance_type: str,
    local_ipv4: str = "",
    public_ipv4: str = "",
    security_groups: list[str] | None = None,
    root_device: str = "/dev/vda",
) -> dict[str, Any]:
    """ec2/<version>/meta-data.json of the same server (EC2's 2009-04-04 keys)."""
    hostname = meta_data.get("hostname", "")
    data: dict[str, Any] = {
        "ami-id": "ami-00000000",
        "ami-launch-index": meta_data.get("launch_index", 0),
        "ami-manifest-path": "FIXME",  # what Nova writes
        "instance-id": instance_id,
        "hostname": hostname,
        "local-ipv4": local_ipv4,
        "reservation-id": "r-00000000",
        "security-groups": list(security_groups or []),
        "local-hostname": hostname,
        "public-hostname": hostname,
        "public-ipv4": public_ipv4,
        "instance-type": instance_type,
        "block-device-mapping": {"ami": "vda", "root": root_device},
        "placement": {"availability-zone": meta_data.get("availability_zone", "")},
        "instance-action": "none",
    }
    keys = meta_data.get("keys") or []
    if keys:
        data["public-keys"] = {"0": {"openssh-key": keys[0]["data"]}}
    return data


def _version_at_least(version: str, since: str) -> bool:
    return version == "latest" or version >= since  # dates compare as strings


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()


def config_drive_files(
    meta_data: dict[str, Any],
    user_data: bytes | None,
    network_data: dict[str, Any],
    vendor_data: dict[str, Any] | None,
    *,
    ec2_meta_data: dict[str, Any] | None = None,
    vendor_data2: dict[str, Any] | None = None,
) -> dict[str, bytes]:
    """Every file of the config drive, by path relative to the drive's root.

    ``meta_data`` is the newest form (see ``build_meta_data``); older version
    directories get it without the keys their version did not have yet.
    ``ec2_meta_data`` (see ``build_ec2_meta_data``) adds the ec2/ tree.
    """
    files: dict[str, bytes] = {}
    if ec2_meta_data is not None:
        for version in (*EC2_VERSIONS, "latest"):
            files[f"ec2/{version}/meta-data.json"] = _dump(ec2_meta_data)
            if user_data is not None:
                files[f"ec2/{version}/user-data"] = user_data
    for version in (*OPENSTACK_VERSIONS, "latest"):
        base = f"openstack/{version}"
        versioned = {
            key: value
            for key, value in meta_data.items()
            if key not in _META_DATA_SINCE or _version_at_least(version, _META_DATA_SINCE[key])
        }
        files[f"{base}/meta_data.json"] = _dump(versioned)
        if user_data is not None:
            files[f"{base}/user_data"] = user_data
        if _version_at_least(version, HAVANA):
            files[f"{base}/vendor_data.json"] = _dump(vendor_data or {})
        if _version_at_least(version, LIBERTY):
            files[f"{base}/network_data.json"] = _dump(network_data)
        if _version_at_least(version, NEWTON_TWO):
            files[f"{base}/vendor_data2.json"] = _dump(vendor_data2 or {})
    return files


# --- requests -------------------------------------------------------------------

USER_DATA_MAX = 65535  # bytes, decoded (Nova's limit)
MAX_SERVERS_PER_REQUEST = 1000  # max_count's bound: an unlimited quota must not let one request flood the log


# Glance's own image attributes (its schema's and reserved names): a snapshot's metadata
# becomes the new image's properties, never one of these.
IMAGE_ATTRIBUTES = frozenset({
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo", "os_hash_value",
    "owner", "size", "virtual_size", "min_disk", "min_ram", "disk_format", "container_format", "created_at",
    "updated_at", "tags", "self", "file", "schema", "location", "locations", "direct_url", "deleted", "deleted_at",
    "stores",
})


def snapshot_properties(metadata: dict[str, Any]) -> dict[str, str]:
    """A createImage's metadata as the image's properties; BadRequest for Glance's own attributes."""
    refused = sorted(k for k in metadata if k in IMAGE_ATTRIBUTES)
    if refused:
        raise BadRequest(f"createImage metadata cannot set the image's own attributes: {', '.join(refused)}.")
    return {k: str(v) for k, v in metadata.items()}


def servers_within_quota(usage: dict[str, int], flavor: dict[str, Any], limits: dict[str, int],
                         min_count: int, max_count: int) -> int:
    """How many of ``max_count`` servers of ``flavor`` the project's quota leaves room for.

    Raises OverQuota when that is fewer than ``min_count``, with Nova's message: for each
    exceeded resource, what was requested and how much of the limit is used already.
    """
    each = {"instances": 1, "cores": flavor["vcpus"], "ram": flavor["ram"]}
    room = max_count
    overs: list[str] = []
    for resource, amount in each.items():
        limit = limits.get(resource, -1)
        if limit < 0 or amount <= 0:
            continue  # unlimited
        fits = max(0, (limit - usage.get(resource, 0)) // amount)
        if fits < min_count:
            overs.append(resource)
        room = min(room, fits)
    if not overs:
        return room
    count = str(min_count) if min_count == max_count else f"{min_count}-{max_count}"
    requested = {"instances": count, "cores": str(max_count * each["cores"]), "ram": str(max_count * each["ram"])}
    listed = ", ".join(overs)
    raise OverQuota(
        f"Quota exceeded for {listed}: Requested {', '.join(requested[r] for r in overs)}, but already used "
        f"{', '.join(str(usage.get(r, 0)) for r in overs)} of {', '.join(str(limits[r]) for r in overs)} {listed}")


def regex_matcher(pattern: str | None, what: str) -> Callable[[str], bool] | None:
    """Nova filters names and addresses by regular expression (a search, not a whole match).
    RE2 matches in linear time, so no pattern a client sends can make a listing backtrack forever."""
    if not pattern:
        return None
    import re2  # at the first filter: RE2's library is ~1.6 MiB of a node's idle memory (issue 14)

    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options=options)
    except re2.error:
        raise BadRequest(f"Invalid regular expression for {what}: {pattern[:40]!r}.") from None
    return lambda text: compiled.search(text) is not None


def ssh_fingerprint(public_key: str) -> str:
    """Nova's fingerprint of an OpenSSH public key: the MD5 of its blob, as colon-separated hex."""
    import hashlib

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
    """BadRequest unless ``public_key`` is an OpenSSH public key."""
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        load_ssh_public_key(public_key.strip().encode())
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"Keypair data is invalid: {str(exc)[:200]}") from None


TRUE_STRINGS = ("1", "t", "true", "on", "y", "yes")
FALSE_STRINGS = ("0", "f", "false", "off", "n", "no")


def strict_bool(value: Any, name: str) -> bool:
    """A boolean as Nova reads one (oslo's strict bool_from_string): a JSON boolean or one of its
    spellings of true and false, any case; anything else is a 400."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in TRUE_STRINGS:
        return True
    if text in FALSE_STRINGS:
        return False
    raise BadRequest(f"Invalid {name} value {str(value)[:40]!r}: not a boolean.")


def truthy(value: Any) -> bool:
    """Nova's config_drive: a boolean, or a string where "true", "1", "yes" and "on" mean yes."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on", "y", "t")
    return bool(value)


def hostname_for(name: str) -> str:
    """A guest host name from a server name: lower-case letters, digits and dashes, at most 63."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return text or "server"


def check_user_data(user_data: str | None) -> str | None:
    """User data as given (base64 text), once it decodes to at most USER_DATA_MAX bytes."""
    if not user_data:
        return None
    try:
        decoded = base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Invalid input for field/attribute user_data: not valid base64.") from None
    if len(decoded) > USER_DATA_MAX:
        raise BadRequest(f"user_data is larger than {USER_DATA_MAX} bytes.")
    return user_data

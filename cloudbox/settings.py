"""Every setting of cloudbox, declared once: name, type, default, help, scope.

A node reads its settings from ``<data-dir>/cloudbox.json`` (written by
``cloudbox init``), then from ``CLOUDBOX_<NAME>`` environment variables, which
win.  ``scope`` says whether a setting must agree across a cluster ("cluster")
or may differ per node ("node"); a test fails when a setting is missing from
README.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cloudbox.errors import SetupError


def parse_bool(value: Any) -> bool:
    """A boolean from JSON or text (true/false, 1/0, yes/no, on/off); ValueError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def port(value: Any) -> int:
    """A TCP port (1-65535) from JSON or text; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a port: {value!r}")
    number = int(value)
    if not 1 <= number <= 65535:
        raise ValueError(f"a port is 1-65535, not {number}")
    return number


@dataclass(frozen=True)
class Setting:
    name: str
    type: Callable[[Any], Any]
    default: Any
    help: str
    scope: str  # "node" or "cluster"


SETTINGS: tuple[Setting, ...] = (
    Setting("listen", str, "0.0.0.0:8443", "Address and port the HTTPS API listens on.", "node"),
    Setting("peer_port", int, 0, "Port of the node-to-node API (mutual TLS with node certificates; snapshots, image copies); 0: the API port + 1.", "node"),
    Setting("advertise", str, "", "Host name or address put in the service catalog (default: the host's first non-loopback address).", "node"),
    Setting("etcd_client_port", port, 2379, "Port of this node's etcd member for clients, on its advertised address (taken when the member is made: at the first join).", "node"),
    Setting("etcd_peer_port", port, 2380, "Port of this node's etcd member for the other members, on its advertised address (taken when the member is made).", "node"),
    Setting("region", str, "RegionOne", "Region name of the service catalog.", "cluster"),
    Setting("log_level", str, "info", "Lowest level of log records written (debug, info, warning, error).", "node"),
    Setting("max_body_bytes", int, 1 << 20, "Largest JSON request body accepted; larger ones get 413.", "node"),
    Setting("token_expiration", int, 3600, "Seconds a token stays valid after it is issued.", "cluster"),
    Setting("token_key_rotation", int, 86400, "Seconds between rotations of the token encryption key.", "cluster"),
    Setting("password_hash_cost", int, 14, "log2 of scrypt's N for password hashes (14 = 16 MiB of memory per hash).", "cluster"),
    Setting("api_max_limit", int, 1000, "Most items one page of a list returns.", "cluster"),
    Setting("libvirt_uri", str, "", "libvirt connection (default: the embedded QEMU driver, qemu:///embed?root=DATA_DIR/libvirt).", "node"),
    Setting("guest_user", str, "libvirt-qemu", "Unprivileged user the embedded driver runs guests' QEMU as (never root); with qemu:///system the host's /etc/libvirt/qemu.conf decides.", "node"),
    Setting("network_driver", str, "linux", "Network data plane: linux (bridges, namespaces, nftables, dnsmasq), or fake (nothing on the host, for tests only).", "node"),
    Setting("external_bridge", str, "cbxext0", "Host bridge of the external network (floating IPs, router gateways).", "node"),
    Setting("external_cidr", str, "172.24.4.0/24", "Address range of the external network `public` made at the first start (the host takes its first address unless external_interface is set).", "cluster"),
    Setting("external_interface", str, "", "Host interface to enslave to the external bridge, for a real uplink (default: none; the host routes and masquerades the external range).", "node"),
    Setting("management_cidrs", str, "auto", "Ranges guests may not reach beyond the external network, besides the host's own addresses (always): CIDRs separated by commas, and `auto` for the subnets of the host's own interfaces (those cloudbox did not make) and 169.254.0.0/16; empty: only the host's addresses.", "cluster"),
    Setting("force_config_drive", bool, False, "Attach a config drive to every server, not only to those that ask for one.", "cluster"),
    Setting("compute_driver", str, "libvirt", "Hypervisor driver: libvirt, or fake (in-memory, for tests only).", "node"),
    Setting("availability_zone", str, "nova", "Availability zone of this node's compute host.", "node"),
    Setting("cpu_allocation_ratio", float, 4.0, "Virtual CPUs the scheduler places per physical CPU.", "cluster"),
    Setting("ram_allocation_ratio", float, 1.0, "Guest RAM the scheduler places per MB of host RAM.", "cluster"),
    Setting("disk_allocation_ratio", float, 1.0, "Guest disk the scheduler places per GB of host disk.", "cluster"),
    Setting("reserved_host_memory_mb", int, 512, "Host RAM (MB) kept for the host itself.", "node"),
    Setting("scheduler_weigher", str, "spread", "How the scheduler ranks hosts that fit: spread (most free RAM first) or pack.", "cluster"),
    Setting("quota_instances", int, 10, "Default per-project quota of servers (-1: unlimited).", "cluster"),
    Setting("quota_cores", int, 20, "Default per-project quota of virtual CPUs.", "cluster"),
    Setting("quota_ram", int, 51200, "Default per-project quota of RAM in MB.", "cluster"),
    Setting("quota_key_pairs", int, 100, "Default per-user quota of key pairs.", "cluster"),
    Setting("quota_metadata_items", int, 128, "Default most metadata items per server.", "cluster"),
    Setting("quota_server_groups", int, 10, "Default per-project quota of server groups.", "cluster"),
    Setting("quota_server_group_members", int, 10, "Default most servers per server group.", "cluster"),
    Setting("volume_driver", str, "dir", "Storage of this node's volumes: dir (files under DATA_DIR/volumes) or lvm (thin volumes in volume_group).", "node"),
    Setting("volume_group", str, "", "LVM volume group the lvm volume driver keeps its thin pool in (made by the operator).", "node"),
    Setting("volume_format", str, "raw", "Format of the dir volume driver's files: raw (sparse) or qcow2.", "node"),
    Setting("storage_availability_zone", str, "nova", "Availability zone of this node's volumes.", "node"),
    Setting("quota_volumes", int, 10, "Default per-project quota of volumes (-1: unlimited).", "cluster"),
    Setting("quota_gigabytes", int, 1000, "Default per-project quota of volume and snapshot GB.", "cluster"),
    Setting("quota_snapshots", int, 10, "Default per-project quota of volume snapshots.", "cluster"),
    Setting("s3_domain", str, "", "Domain of S3's virtual-hosted buckets (<bucket>.<s3_domain>, a wildcard DNS name of the nodes); path-style /s3/<bucket> always works.", "cluster"),
)

BY_NAME = {s.name: s for s in SETTINGS}
CONFIG_FILE = "cloudbox.json"


class Settings:
    """Resolved settings of one node; attribute access by setting name."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    @classmethod
    def resolve(cls, file_values: dict[str, Any], environ: dict[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = file_values.get(setting.name, setting.default)
            env = environ.get(f"CLOUDBOX_{setting.name.upper()}")
            if env is not None:
                raw = env
            try:
                values[setting.name] = parse_bool(raw) if setting.type is bool else setting.type(raw)
            except (TypeError, ValueError) as exc:
                raise SetupError(f"setting {setting.name!r}: {exc}") from exc
        unknown = set(file_values) - set(BY_NAME)
        if unknown:
            raise SetupError(f"unknown settings in {CONFIG_FILE}: {', '.join(sorted(unknown))}")
        return cls(values)

    @classmethod
    def load(cls, data_dir: Path) -> "Settings":
        path = data_dir / CONFIG_FILE
        try:
            file_values = json.loads(path.read_text())
        except FileNotFoundError:
            file_values = {}
        except (OSError, ValueError) as exc:
            raise SetupError(f"cannot read {path}: {exc}") from exc
        return cls.resolve(file_values)

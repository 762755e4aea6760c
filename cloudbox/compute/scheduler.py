"""The scheduler: filters, then weights. Pure: hosts and a request in, a ranked plan out.

Each filter says why it turned a host away; the service logs those reasons
with the decision.  The chosen host's limits travel in the claim command, and
the claim's apply re-checks them against the replicated usage, so two
schedulers racing for the last slot cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class HostState:
    name: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    used_vcpus: int
    used_ram_mb: int
    used_disk_gb: int
    availability_zone: str
    enabled: bool = True
    up: bool = True
    hypervisor_type: str = "QEMU"


@dataclass(frozen=True)
class Ratios:
    cpu: float = 4.0
    ram: float = 1.0
    disk: float = 1.0
    reserved_ram_mb: int = 512


@dataclass(frozen=True)
class Limits:
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class Request:
    vcpus: int
    ram_mb: int
    disk_gb: int
    availability_zone: str | None = None
    image_properties: dict[str, Any] = field(default_factory=dict)
    group_policy: str | None = None  # affinity, anti-affinity, soft-affinity, soft-anti-affinity
    group_hosts: tuple[str, ...] = ()  # hosts already running members of the group
    # Hosts to try first when they pass: the node that keeps a boot-from-volume server's root
    # volume (its guest then reaches the volume locally, not over NBD).
    preferred_hosts: tuple[str, ...] = ()


@dataclass
class Plan:
    """Hosts that passed every filter, best first, with the limits to claim against."""

    ranked: list[tuple[HostState, Limits]]
    rejected: dict[str, str]  # host → the first filter's reason


def limits_for(host: HostState, ratios: Ratios) -> Limits:
    return Limits(
        vcpus=int(host.vcpus * ratios.cpu),
        ram_mb=int(max(host.memory_mb - ratios.reserved_ram_mb, 0) * ratios.ram),
        disk_gb=int(host.disk_gb * ratios.disk),
    )


Filter = Callable[[HostState, Request, Limits], str | None]


def compute_filter(host: HostState, req: Request, limits: Limits) -> str | None:
    if not host.enabled:
        return "compute service disabled"
    if not host.up:
        return "compute service down"
    return None


def availability_zone_filter(host: HostState, req: Request, limits: Limits) -> str | None:
    if req.availability_zone and host.availability_zone != req.availability_zone:
        return f"in zone {host.availability_zone}, not {req.availability_zone}"
    return None


def ram_filter(host: HostState, req: Request, limits: Limits) -> str | None:
    free = limits.ram_mb - host.used_ram_mb
    return None if req.ram_mb <= free else f"RAM: needs {req.ram_mb} MB, {free} MB free"


def core_filter(host: HostState, req: Request, limits: Limits) -> str | None:
    free = limits.vcpus - host.used_vcpus
    return None if req.vcpus <= free else f"vCPU: needs {req.vcpus}, {free} free"


def disk_filter(host: HostState, req: Request, limits: Limits) -> str | None:
    free = limits.disk_gb - host.used_disk_gb
    return None if req.disk_gb <= free else f"disk: needs {req.disk_gb} GB, {free} GB free"


SUPPORTED_ARCHES = {"x86_64", "i686", "amd64"}


def image_properties_filter(host: HostState, req: Request, limits: Limits) -> str | None:
    props = req.image_properties
    arch = props.get("hw_architecture") or props.get("architecture")
    if arch and arch.lower() not in SUPPORTED_ARCHES:
        return f"image wants architecture {arch}"
    hv = props.get("img_hv_type") or props.get("hypervisor_type")
    if hv and hv.lower() not in ("qemu", "kvm"):
        return f"image wants hypervisor {hv}"
    return None


def server_group_filter(host: HostState, req: Request, limits: Limits) -> str | None:
    if req.group_policy == "anti-affinity" and host.name in req.group_hosts:
        return "runs a member of the server's anti-affinity group"
    if req.group_policy == "affinity" and req.group_hosts and host.name not in req.group_hosts:
        return "the server's affinity group runs elsewhere"
    return None


FILTERS: tuple[Filter, ...] = (
    compute_filter, availability_zone_filter, image_properties_filter, ram_filter, core_filter,
    disk_filter, server_group_filter,
)


def schedule(hosts: list[HostState], req: Request, ratios: Ratios, weigher: str = "spread") -> Plan:
    passed: list[tuple[HostState, Limits]] = []
    rejected: dict[str, str] = {}
    for host in hosts:
        limits = limits_for(host, ratios)
        reason = next((r for f in FILTERS if (r := f(host, req, limits)) is not None), None)
        if reason is None:
            passed.append((host, limits))
        else:
            rejected[host.name] = reason

    def free_ram(item: tuple[HostState, Limits]) -> float:
        host, limits = item
        return (limits.ram_mb - host.used_ram_mb) / max(limits.ram_mb, 1)

    def soft_group(item: tuple[HostState, Limits]) -> int:
        host = item[0]
        if req.group_policy == "soft-affinity":
            return 0 if host.name in req.group_hosts else 1
        if req.group_policy == "soft-anti-affinity":
            return 1 if host.name in req.group_hosts else 0
        return 0

    def preferred(item: tuple[HostState, Limits]) -> int:
        return 0 if item[0].name in req.preferred_hosts else 1

    sign = -1 if weigher == "spread" else 1
    passed.sort(key=lambda item: (preferred(item), soft_group(item), sign * free_ram(item), item[0].name))
    return Plan(passed, rejected)


def no_valid_host_message(req: Request, plan: Plan) -> str:
    reasons = "; ".join(f"{host}: {why}" for host, why in sorted(plan.rejected.items())) or "no compute hosts"
    return (f"No valid host was found. There are not enough hosts available for "
            f"{req.vcpus} vCPU, {req.ram_mb} MB RAM, {req.disk_gb} GB disk ({reasons}).")


def request_for(server: dict[str, Any], group: dict[str, Any] | None,
                preferred_hosts: tuple[str, ...] = ()) -> Request:
    """What a server asks of a host: its flavor, zone, image properties and group's policy (and
    the hosts it had best run on: its boot volume's node)."""
    flavor = server["flavor"]
    return Request(
        vcpus=flavor["vcpus"], ram_mb=flavor["ram"], disk_gb=flavor["disk"] + flavor.get("ephemeral", 0),
        availability_zone=server["availability_zone"], image_properties=server.get("image_properties") or {},
        group_policy=group["policy"] if group else None, group_hosts=tuple(group["hosts"]) if group else (),
        preferred_hosts=preferred_hosts,
    )

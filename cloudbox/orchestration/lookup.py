"""custom_constraint checks (nova.flavor, glance.image, neutron.network...): the names and ids
the caller can see, fetched once per request from the cloud's APIs, then checked synchronously
by the HOT library (which is pure)."""

from __future__ import annotations

from typing import Any, Callable

from cloudbox.errors import CloudboxError
from cloudbox.orchestration.local_api import LocalApi

# constraint kind -> (path of the listing, its key, what Heat calls the thing)
LISTINGS: dict[str, tuple[str, str, str]] = {
    "nova.flavor": ("/compute/v2.1/flavors/detail?is_public=None", "flavors", "Flavor"),
    "glance.image": ("/image/v2/images", "images", "Image"),
    "neutron.network": ("/network/v2.0/networks", "networks", "Network"),
    "neutron.subnet": ("/network/v2.0/subnets", "subnets", "Subnet"),
    "neutron.port": ("/network/v2.0/ports", "ports", "Port"),
    "neutron.router": ("/network/v2.0/routers", "routers", "Router"),
    "neutron.security_group": ("/network/v2.0/security-groups", "security_groups", "Security Group"),
    "nova.keypair": ("/compute/v2.1/os-keypairs", "keypairs", "Key pair"),
    "cinder.volume": ("/volume/v3/volumes", "volumes", "Volume"),
    "cinder.snapshot": ("/volume/v3/snapshots", "snapshots", "Snapshot"),
    "cinder.vtype": ("/volume/v3/types", "volume_types", "Volume type"),
    "nova.server": ("/compute/v2.1/servers", "servers", "Server"),
    "nova.host": ("", "", "Host"),
    "ip_addr": ("", "", ""), "net_cidr": ("", "", ""), "mac_addr": ("", "", ""), "iso_8601": ("", "", ""),
    "timezone": ("", "", ""), "cron_expression": ("", "", ""), "dns_name": ("", "", ""),
    "dns_domain": ("", "", ""), "rel_dns_name": ("", "", ""), "expiration": ("", "", ""),
    "test_constr": ("", "", ""),
}


def _kinds(template: Any) -> set[str]:
    if template is None:
        return set()
    return {c.spec for schema in template.parameter_schemas.values() for c in schema.constraints
            if c.kind == "custom_constraint"}


async def prepare(api: LocalApi, template: Any) -> Callable[[str, Any], str | None]:
    """The lookup the template's custom constraints need, its listings read now."""
    known: dict[str, set[str]] = {}
    for kind in _kinds(template):
        path, key, _ = LISTINGS.get(kind, ("", "", ""))
        if not path:
            continue
        route, _, query = path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&")) if query else {}
        try:
            body = await api.get(route, **params)
        except CloudboxError:
            body = {}
        names: set[str] = set()
        for item in body.get(key) or []:
            item = item.get("keypair", item)  # Nova lists key pairs wrapped one by one
            names.update(str(item[k]) for k in ("id", "name") if item.get(k))
        known[kind] = names

    def lookup(kind: str, value: Any) -> str | None:
        if kind not in LISTINGS:
            raise KeyError(kind)
        if kind not in known:
            return None  # a format check (ip_addr...) this cloud does not make
        if str(value) in known[kind]:
            return None
        return f"The {LISTINGS[kind][2]} ({value}) could not be found."

    return lookup

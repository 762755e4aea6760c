"""Pure logic of subnet pools, address scopes and metering rules: validation, and the choice of
a subnet's CIDR from a pool (the lowest free block of the asked size, deterministic)."""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping, Sequence

from cloudbox.errors import BadRequest, Conflict
from cloudbox.network.core import IPNetwork, clean_tags, parse_cidr

# Neutron's defaults: the shortest prefix a pool hands out, and the longest.
MIN_PREFIXLEN = {4: 8, 6: 64}
MAX_PREFIXLEN = {4: 32, 6: 128}


def collapse(cidrs: Iterable[str]) -> list[str]:
    """CIDRs merged where they touch or overlap, in address order (Neutron stores pools so)."""
    nets = [ipaddress.ip_network(c) for c in cidrs]
    out: list[str] = []
    for version in (4, 6):
        out += [str(n) for n in ipaddress.collapse_addresses(n for n in nets if n.version == version)]  # type: ignore[misc]
    return out


def _prefixlen(value: Any, what: str, version: int) -> int:
    try:
        number = int(value)
        if isinstance(value, bool) or isinstance(value, float) and value != number:
            raise ValueError(what)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for {what}. Reason: '{str(value)[:40]}' is not an integer.") from None
    if not 0 <= number <= MAX_PREFIXLEN[version]:
        raise BadRequest(f"Invalid input for {what}. Reason: {number} is not in [0, {MAX_PREFIXLEN[version]}].")
    return number


def pool_fields(body: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The validated columns of a subnet pool from a create (``current`` None) or an update body."""
    out: dict[str, Any] = {}
    if current is None or "prefixes" in body:
        raw = body.get("prefixes")
        if not isinstance(raw, list) or not raw:
            raise BadRequest("Invalid input for prefixes: a subnet pool needs a list of at least one CIDR.")
        nets = [parse_cidr(p, "prefixes", strict=False) for p in raw]
        versions = {n.version for n in nets}
        if len(versions) > 1:
            raise BadRequest("Illegal subnetpool: prefixes of more than one IP version.")
        prefixes = collapse(str(n) for n in nets)
        if current is not None:
            if versions != {current["ip_version"]}:
                raise BadRequest("Illegal update to prefixes: the IP version of a subnet pool cannot change.")
            kept = [ipaddress.ip_network(p) for p in prefixes]
            for old in current["prefixes"]:
                if not any(ipaddress.ip_network(old).subnet_of(k) for k in kept):  # type: ignore[arg-type]
                    raise BadRequest(f"Illegal update to prefixes: {old} was in the pool; prefixes can only grow.")
        out["prefixes"] = prefixes
        out["ip_version"] = versions.pop()
    version = out.get("ip_version") or (current or {}).get("ip_version") or 4
    merged = {**(current or {}), **out}
    for key, default in (("min_prefixlen", MIN_PREFIXLEN[version]), ("max_prefixlen", MAX_PREFIXLEN[version])):
        if body.get(key) is not None:
            out[key] = _prefixlen(body[key], key, version)
        elif current is None:
            out[key] = default
    merged.update(out)
    if body.get("default_prefixlen") is not None:
        out["default_prefixlen"] = _prefixlen(body["default_prefixlen"], "default_prefixlen", version)
    elif current is None:
        out["default_prefixlen"] = merged["min_prefixlen"]
    merged.update(out)
    low, default, high = merged["min_prefixlen"], merged["default_prefixlen"], merged["max_prefixlen"]
    if not low <= default <= high:
        raise BadRequest(f"Illegal prefix bounds: min_prefixlen={low}, default_prefixlen={default}, "
                         f"max_prefixlen={high}; they must be in that order.")
    widest = min(ipaddress.ip_network(p).prefixlen for p in merged["prefixes"])
    if low < widest:
        # A pool of 10.0.0.0/16 cannot hand out a /8: the bounds start at its widest prefix.
        out["min_prefixlen"] = widest
        if merged["default_prefixlen"] < widest:
            out["default_prefixlen"] = widest
        if high < widest:
            raise BadRequest(f"Illegal prefix bounds: max_prefixlen {high} is shorter than every prefix of the pool.")
    if "default_quota" in body:
        quota = body["default_quota"]
        if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int) or quota < 0):
            raise BadRequest("Invalid input for default_quota: a number of addresses, 0 or more, or null.")
        out["default_quota"] = quota
    for key in ("name", "description"):
        if key in body:
            out[key] = body[key] or ""
    if "tags" in body:
        out["tags"] = clean_tags(body["tags"] or [])
    return out


def within(cidr: str, prefixes: Sequence[str]) -> bool:
    net = ipaddress.ip_network(cidr)
    return any(net.version == p.version and net.subnet_of(p)  # type: ignore[arg-type]
               for p in map(ipaddress.ip_network, prefixes))


def lowest_free_block(prefixes: Sequence[str], used: Iterable[str], prefixlen: int) -> str | None:
    """The lowest CIDR of length ``prefixlen`` inside ``prefixes`` that overlaps none of ``used``."""
    taken = sorted((ipaddress.ip_network(u) for u in used), key=lambda n: (n.version, int(n.network_address)))
    for prefix in map(ipaddress.ip_network, prefixes):
        if prefixlen < prefix.prefixlen:
            continue
        size = 1 << (prefix.max_prefixlen - prefixlen)
        candidate, end = int(prefix.network_address), int(prefix.broadcast_address)
        for net in taken:
            if net.version != prefix.version or int(net.broadcast_address) < candidate:
                continue
            if int(net.network_address) > candidate + size - 1:
                break
            # Overlaps: go to the first aligned block after it.
            after = int(net.broadcast_address) + 1
            candidate = -(-after // size) * size
        if candidate + size - 1 <= end:
            block: IPNetwork = ipaddress.ip_network((candidate, prefixlen)) if prefix.version == 4 else \
                ipaddress.IPv6Network((candidate, prefixlen))
            return str(block)
    return None


def subnet_prefixlen(pool: Mapping[str, Any], body: Mapping[str, Any]) -> int:
    """The size a subnet asks of ``pool``: its prefixlen, else the pool's default, within the bounds."""
    if body.get("prefixlen") is None:
        return int(pool["default_prefixlen"])
    number = _prefixlen(body["prefixlen"], "prefixlen", pool["ip_version"])
    if not pool["min_prefixlen"] <= number <= pool["max_prefixlen"]:
        raise BadRequest(f"Unable to allocate subnet with prefix length {number}, minimum allowed prefix is "
                         f"{pool['min_prefixlen']}, maximum allowed prefix is {pool['max_prefixlen']}.")
    return number


def check_quota(pool: Mapping[str, Any], used: Iterable[str], new: str) -> None:
    """A pool's default_quota counts a project's addresses (IPv6: /64s), as Neutron does."""
    quota = pool.get("default_quota")
    if quota is None:
        return

    def size(cidr: str) -> int:
        net = ipaddress.ip_network(cidr)
        return net.num_addresses if net.version == 4 else max(1, net.num_addresses >> 64)

    if sum(size(c) for c in used) + size(new) > quota:
        raise Conflict(f"Per-tenant subnet pool prefix quota exceeded for subnet pool {pool['id']}.")


# --- metering ---------------------------------------------------------------------------------------------
def metering_rule(body: Mapping[str, Any]) -> dict[str, Any]:
    """The validated columns of a metering label rule (Neutron's: a remote prefix, or a source
    and/or a destination prefix, never both kinds)."""
    direction = body.get("direction") or "ingress"
    if direction not in ("ingress", "egress"):
        raise BadRequest(f"Invalid input for direction. Reason: '{str(direction)[:20]}' is not in "
                         "['ingress', 'egress'].")
    prefixes = {k: body.get(k) for k in ("remote_ip_prefix", "source_ip_prefix", "destination_ip_prefix")}
    if prefixes["remote_ip_prefix"] and (prefixes["source_ip_prefix"] or prefixes["destination_ip_prefix"]):
        raise BadRequest("Cannot use 'remote-ip-prefix' in conjunction with 'source-ip-prefix' or "
                         "'destination-ip-prefix'.")
    if not any(prefixes.values()):
        raise BadRequest("You must define at least one of the following parameters 'remote_ip_prefix', or "
                         "'source_ip_prefix' or 'destination_ip_prefix'.")
    out = {k: str(parse_cidr(v, k, strict=False)) if v else None for k, v in prefixes.items()}
    excluded = body.get("excluded", False)
    if not isinstance(excluded, bool):
        raise BadRequest("Invalid input for excluded: a boolean.")
    return {"direction": direction, "excluded": excluded, **out}


def metering_overlap(rule: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Two rules of one label that would count the same packets (same direction and exclusion)."""
    if (rule["direction"], rule["excluded"]) != (other["direction"], other["excluded"]):
        return False
    for key in ("remote_ip_prefix", "source_ip_prefix", "destination_ip_prefix"):
        a, b = rule[key], other[key]
        if (a is None) != (b is None):
            return False
        if a is not None and not ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b)):  # type: ignore[arg-type]
            return False
    return True

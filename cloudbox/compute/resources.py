"""Compute's resources besides servers: flavors, key pairs, quotas and usage, server groups,
aggregates and the compute hosts.  Each method reads the state (``store``) or proposes a
command; checks that depend on the resource (who may see a flavor or a group) are here,
checks of the caller's role are beside the routes (``api_resources``, ``api_hosts``).
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

import trio

from cloudbox.clock import now_iso
from cloudbox.compute import commands as c
from cloudbox.compute import core, store
from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.settings import Settings
from cloudbox.state.engine import StateEngine

if TYPE_CHECKING:
    from cloudbox.cluster.service import ClusterService
    from cloudbox.identity.core import AuthContext


DEFAULT_FLAVORS = [
    # id, name, vcpus, ram MB, disk GB: Nova's classic set, plus devstack's small ones for tiny guests.
    ("1", "m1.tiny", 1, 512, 1), ("2", "m1.small", 1, 2048, 20), ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80), ("5", "m1.xlarge", 8, 16384, 160),
    ("42", "m1.nano", 1, 128, 1), ("84", "m1.micro", 1, 192, 1),
]
MAX_RXTX = 3.40282e38  # Nova's bound (a single-precision SQL float)


def stamp() -> str:
    """The time recorded in compute's rows (ISO 8601 with microseconds, as compute always wrote)."""
    return now_iso(micro=True)


def rxtx_factor(value: Any) -> float:
    """Nova's rxtx_factor: a positive float, finite (NaN and infinities are not JSON either)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise BadRequest("Invalid input for field/attribute rxtx_factor: must be a positive number.") from None
    if not math.isfinite(number) or not 0 < number <= MAX_RXTX:
        raise BadRequest(f"Invalid input for field/attribute rxtx_factor: must be a positive number "
                         f"at most {MAX_RXTX:g}, not {str(value)[:20]}.")
    return number


def generate_keypair() -> tuple[str, str]:
    """A new RSA key pair: (private key PEM, OpenSSH public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public + " Generated-by-cloudbox"


class ComputeResources:
    def __init__(self, engine: StateEngine, settings: Settings, cluster: ClusterService) -> None:
        self.engine = engine
        self.settings = settings
        self.cluster = cluster

    # --- flavors ------------------------------------------------------------------------------
    async def ensure_default_flavors(self) -> None:
        if await self.engine.read(store.count_flavors):
            return
        for fid, name, vcpus, ram, disk in DEFAULT_FLAVORS:
            row = {"id": fid, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk, "ephemeral": 0,
                   "swap": 0, "rxtx_factor": 1.0, "is_public": True, "description": None,
                   "extra_specs": {}, "created_at": stamp()}
            try:
                await self.engine.propose(c.CreateFlavor(row))
            except Conflict:
                pass  # another node made it first

    async def flavor(self, ctx: AuthContext, flavor_id: str) -> dict[str, Any]:
        """A flavor the caller may see: public, shared with their project, or any to a cloud reader."""
        flavor = await self.engine.read(store.get_flavor, flavor_id)
        if flavor is None or not (flavor["is_public"] or ctx.is_cloud_reader or await self.engine.read(
                store.flavor_access_granted, flavor_id, ctx.project_id)):
            raise NotFound(f"Flavor {flavor_id[:80]} could not be found.")
        return flavor

    async def bootable_flavor(self, ctx: AuthContext, project_id: str, flavor_ref: str) -> dict[str, Any]:
        """A flavor a server of ``project_id`` may boot with (BadRequest otherwise, as Nova answers)."""
        flavor = await self.engine.read(store.get_flavor, flavor_ref)
        if flavor is None or not (flavor["is_public"] or ctx.is_cloud_admin or await self.engine.read(
                store.flavor_access_granted, flavor["id"], project_id)):
            raise BadRequest(f"Flavor {flavor_ref[:80]} could not be found.")
        return flavor

    async def list_flavors(self, ctx: AuthContext, *, visibility: str, min_ram: int, min_disk: int, marker: str | None,
                           limit: int) -> list[dict[str, Any]]:
        """``visibility`` "all", "public", "private" (cloud readers) or "project"; ``limit`` + 1 rows."""
        if not ctx.is_cloud_reader:
            visibility = "project"
        return await self.engine.read(lambda db: store.list_flavors(
            db, min_ram=min_ram, min_disk=min_disk, visibility=visibility, project_id=ctx.project_id,
            marker=marker, limit=limit))

    async def create_flavor(self, fields: dict[str, Any]) -> dict[str, Any]:
        """A new flavor from parsed fields (name, vcpus, ram, disk...; an id is made when none is given)."""
        row = {"ephemeral": 0, "swap": 0, "rxtx_factor": 1.0, "is_public": True, "description": None, **fields,
               "extra_specs": {}, "created_at": stamp()}
        row["id"] = str(fields.get("id") or uuid.uuid4())
        row["rxtx_factor"] = rxtx_factor(row["rxtx_factor"])
        return await self.engine.propose(c.CreateFlavor(row))

    async def describe_flavor(self, ctx: AuthContext, flavor_id: str, description: str | None) -> dict[str, Any]:
        await self.flavor(ctx, flavor_id)
        return await self.engine.propose(c.DescribeFlavor(flavor_id, description))

    async def delete_flavor(self, flavor_id: str) -> None:
        await self.engine.propose(c.DeleteFlavor(flavor_id))

    async def set_extra_specs(self, ctx: AuthContext, flavor_id: str, specs: dict[str, str]) -> dict[str, str]:
        """Add or change extra specs (the others stay); returns the flavor's whole set."""
        flavor = await self.flavor(ctx, flavor_id)
        updated = await self.engine.propose(c.SetFlavorExtraSpecs(flavor_id, {**flavor["extra_specs"], **specs}))
        return updated["extra_specs"]

    async def delete_extra_spec(self, ctx: AuthContext, flavor_id: str, key: str) -> None:
        flavor = await self.flavor(ctx, flavor_id)
        if key not in flavor["extra_specs"]:
            raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key[:80]}.")
        specs = {k: v for k, v in flavor["extra_specs"].items() if k != key}
        await self.engine.propose(c.SetFlavorExtraSpecs(flavor_id, specs))

    async def flavor_access(self, ctx: AuthContext, flavor_id: str) -> list[dict[str, Any]]:
        flavor = await self.flavor(ctx, flavor_id)
        if flavor["is_public"]:
            raise NotFound("Access list not available for public flavors.")
        return await self.engine.read(store.flavor_access, flavor_id)

    async def change_flavor_access(self, flavor_id: str, project_id: str, grant: bool) -> list[dict[str, Any]]:
        await self.engine.propose(c.FlavorAccess(flavor_id, project_id, grant))
        return await self.engine.read(store.flavor_access, flavor_id)

    # --- key pairs ----------------------------------------------------------------------------------
    async def list_keypairs(self, user_id: str, marker: str | None, limit: int) -> list[dict[str, Any]]:
        return await self.engine.read(store.list_keypairs, user_id, marker, limit)

    async def keypair(self, user_id: str, name: str) -> dict[str, Any]:
        row = await self.engine.read(store.get_keypair, user_id, name)
        if row is None:
            raise NotFound(f"Keypair {name[:80]} not found for user {user_id}.")
        return row

    async def create_keypair(self, project_id: str | None, user_id: str, name: str, public_key: str | None,
                             kind: str) -> tuple[dict[str, Any], str | None]:
        """Import ``public_key``, or make a new pair when it is None: (row, private key or None)."""
        # Checked again in apply, against the count there: concurrent creates cannot exceed it.
        limit = (await self.quota_limits(project_id or ""))["key_pairs"]
        private = None
        if public_key:
            # Stored exactly as sent (Nova does): a .pub file's trailing newline stays, so tools
            # comparing what they imported with what they read back see no change.
            core.check_public_key(public_key)
        else:
            private, public_key = await trio.to_thread.run_sync(generate_keypair)
        row = {"user_id": user_id, "name": name, "public_key": public_key,
               "fingerprint": core.ssh_fingerprint(public_key), "type": kind, "created_at": stamp()}
        await self.engine.propose(c.CreateKeypair(row, limit))
        return row, private

    async def delete_keypair(self, user_id: str, name: str) -> None:
        await self.engine.propose(c.DeleteKeypair(user_id, name))

    # --- quotas, limits, usage -------------------------------------------------------------------------
    def quota_defaults(self) -> dict[str, int]:
        s = self.settings
        return {"instances": s.quota_instances, "cores": s.quota_cores, "ram": s.quota_ram,
                "key_pairs": s.quota_key_pairs, "metadata_items": s.quota_metadata_items,
                "server_groups": s.quota_server_groups, "server_group_members": s.quota_server_group_members,
                **store.NETWORK_QUOTAS, **store.INJECTED_QUOTAS}

    async def class_quota(self, name: str) -> dict[str, int]:
        """A quota class's limits (the "default" class is every project's default)."""
        return await self.engine.read(store.class_limits, name, self.quota_defaults())

    async def set_class_quota(self, name: str, limits: dict[str, int]) -> dict[str, int]:
        await self.set_quota(store.QUOTA_CLASS + name, limits)
        return await self.class_quota(name)

    async def quota_limits(self, project_id: str) -> dict[str, int]:
        return await self.engine.read(store.quota_limits, project_id, self.quota_defaults())

    async def quota_usage(self, project_id: str) -> tuple[dict[str, int], dict[str, int]]:
        """(limits, usage) of a project."""
        def read(db: Any) -> tuple[dict[str, int], dict[str, int]]:
            usage = store.project_usage(db, project_id)
            usage["server_groups"] = store.count_server_groups(db, project_id)
            return store.quota_limits(db, project_id, self.quota_defaults()), usage

        return await self.engine.read(read)

    async def limits(self, project_id: str, user_id: str) -> tuple[dict[str, int], dict[str, int]]:
        """(limits, usage) of a project, its usage counting the user's key pairs too."""
        limits, usage = await self.quota_usage(project_id)
        usage["key_pairs"] = await self.engine.read(store.count_keypairs, user_id)
        return limits, usage

    async def set_quota(self, project_id: str, limits: dict[str, int]) -> dict[str, int]:
        unknown = set(limits) - set(store.QUOTA_RESOURCES)
        if unknown:
            raise BadRequest(f"Unknown quota resources: {', '.join(sorted(unknown))[:200]}.")
        await self.engine.propose(c.SetQuota(project_id, limits))
        return await self.quota_limits(project_id)

    async def servers_of(self, project_id: str | None) -> list[dict[str, Any]]:
        """The servers of one project, or of all (None): what usage is counted from."""
        return await self.engine.read(store.servers_of, project_id)

    # --- compute hosts ------------------------------------------------------------------------------
    async def alive_hosts(self) -> set[str] | None:
        """Names of the compute hosts whose nodes are up; None when this node is alone."""
        if not self.cluster.clustered:
            return None
        up = {n["id"] for n in await self.cluster.nodes() if n["up"]}
        return {h["name"] for h in await self.engine.read(store.compute_hosts) if h["node_id"] in up}

    async def hosts(self) -> list[dict[str, Any]]:
        """Every compute host with its zone, usage and state ("up" or "down")."""
        hosts = await self.engine.read(store.compute_hosts)
        alive = await self.alive_hosts()
        return [{**h, "state": "up" if alive is None or h["name"] in alive else "down"} for h in hosts]

    # --- server groups ------------------------------------------------------------------------------
    async def list_groups(self, ctx: AuthContext, everyone: bool, marker: str | None,
                          limit: int) -> list[tuple[dict[str, Any], list[str]]]:
        """Groups of the caller's project (every project's with ``everyone``), with their members."""
        def read(db: Any) -> list[tuple[dict[str, Any], list[str]]]:
            groups = store.list_server_groups(db, None if everyone else ctx.project_id, marker, limit)
            return [(g, store.group_members(db, g["id"])) for g in groups]

        return await self.engine.read(read)

    async def group(self, ctx: AuthContext, group_id: str) -> tuple[dict[str, Any], list[str]]:
        def read(db: Any) -> tuple[dict[str, Any] | None, list[str]]:
            return store.get_server_group(db, group_id), store.group_members(db, group_id)

        group, members = await self.engine.read(read)
        if group is None or not (ctx.is_cloud_reader or group["project_id"] == ctx.project_id):
            raise NotFound(f"Server group {group_id[:80]} could not be found.")
        return group, members

    async def create_group(self, ctx: AuthContext, project_id: str, name: str, policy: str) -> dict[str, Any]:
        limit = (await self.quota_limits(project_id))["server_groups"]
        row = {"id": str(uuid.uuid4()), "name": name, "policy": policy, "project_id": project_id,
               "user_id": ctx.user_id, "created_at": stamp()}
        await self.engine.propose(c.CreateServerGroup(row, limit))
        return row

    async def delete_group(self, group_id: str) -> None:
        await self.engine.propose(c.DeleteServerGroup(group_id))

    # --- aggregates ---------------------------------------------------------------------------------
    async def aggregate(self, aggregate_id: str) -> dict[str, Any]:
        try:
            number = int(aggregate_id)
        except ValueError:
            raise NotFound(f"Aggregate {aggregate_id[:80]} could not be found.") from None
        if not 0 < number < 2**63:  # beyond SQLite's integers no aggregate can have that id
            raise NotFound(f"Aggregate {aggregate_id[:80]} could not be found.")
        agg = await self.engine.read(store.get_aggregate, number)
        if agg is None:
            raise NotFound(f"Aggregate {aggregate_id[:80]} could not be found.")
        return agg

    async def list_aggregates(self) -> list[dict[str, Any]]:
        return await self.engine.read(store.list_aggregates)

    async def create_aggregate(self, name: str, zone: str | None) -> dict[str, Any]:
        row = {"uuid": str(uuid.uuid4()), "name": name, "availability_zone": zone,
               "metadata": {"availability_zone": zone} if zone else {}, "hosts": [], "created_at": stamp(),
               "updated_at": None}
        return await self.engine.propose(c.CreateAggregate(row))

    async def update_aggregate(self, aggregate_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change columns, or add_host / remove_host / metadata_merge (see UpdateAggregate)."""
        agg = await self.aggregate(aggregate_id)
        changes = dict(changes)
        if "availability_zone" in changes:
            changes["metadata_merge"] = {**changes.get("metadata_merge", {}),
                                         "availability_zone": changes["availability_zone"]}
        elif "availability_zone" in changes.get("metadata_merge", {}):
            changes["availability_zone"] = changes["metadata_merge"]["availability_zone"]
        return await self.engine.propose(c.UpdateAggregate(agg["id"], {**changes, "updated_at": stamp()}))

    async def delete_aggregate(self, aggregate_id: str) -> None:
        agg = await self.aggregate(aggregate_id)
        await self.engine.propose(c.DeleteAggregate(agg["id"]))

"""Subnet pools, address scopes and metering labels as callers see them.

Each method takes the caller's AuthContext, finds what it names (others' are NotFound), checks
policy (Forbidden), validates the body (core_pools) and proposes one command; apply re-checks
what depends on state.  The API (api_pools.py) calls one method each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from cloudbox.errors import BadRequest, NotFound
from cloudbox.identity.core import require
from cloudbox.network import commands as c
from cloudbox.network import core_pools, store

if TYPE_CHECKING:
    from cloudbox.network.service import NetworkService

Row = dict[str, Any]


class Pools:
    def __init__(self, network: NetworkService) -> None:
        self.network = network

    async def _view(self, ctx: Any, table: str, row: Row) -> Row:
        return await self.network.view(ctx, table, row)

    # --- subnet pools ---------------------------------------------------------------------------------
    async def _scope(self, ctx: Any, scope_id: str | None) -> None:
        if scope_id:
            await self.network._visible(ctx, "address_scopes", scope_id)

    async def create_subnetpool(self, ctx: Any, body: Mapping[str, Any]) -> Row:
        project = self.network._project_for_create(ctx, body, "create_subnetpool")
        for key in ("shared", "is_default"):
            if body.get(key):
                require(ctx.is_cloud_admin, f"create_subnetpool:{key}")
        await self._scope(ctx, body.get("address_scope_id"))
        at = self.network.now()
        row = {"id": self.network.new_id(), "project_id": project, "name": "", "description": "", "tags": [],
               "default_quota": None, **core_pools.pool_fields(body), "shared": bool(body.get("shared")),
               "is_default": bool(body.get("is_default")), "address_scope_id": body.get("address_scope_id"),
               "created_at": at, "updated_at": at, "revision_number": 0}
        return await self._view(ctx, "subnetpools", await self.network.propose(c.CreateSubnetPool(row)))

    async def update_subnetpool(self, ctx: Any, pool_id: str, body: Mapping[str, Any]) -> Row:
        pool = await self.network._writable(ctx, "subnetpools", pool_id, "update_subnetpool")
        if "is_default" in body and body["is_default"] != pool["is_default"]:
            require(ctx.is_cloud_admin, "update_subnetpool:is_default")
        if body.get("address_scope_id") != pool["address_scope_id"]:
            await self._scope(ctx, body.get("address_scope_id"))
        core_pools.pool_fields(body, pool)  # a 400 now; apply checks again against the pool as it is then
        updated = await self.network.propose(c.UpdateSubnetPool(pool_id, dict(body), self.network.now()))
        return await self._view(ctx, "subnetpools", updated)

    async def delete_subnetpool(self, ctx: Any, pool_id: str) -> None:
        await self.network._writable(ctx, "subnetpools", pool_id, "delete_subnetpool")
        await self.network.propose(c.DeleteSubnetPool(pool_id))

    async def pool_for_subnet(self, ctx: Any, body: Mapping[str, Any]) -> Row | None:
        """The pool a subnet asks for (by id, or the default of its IP version), seen by the caller."""
        if body.get("subnetpool_id"):
            pool = await self.network._visible(ctx, "subnetpools", body["subnetpool_id"])
        elif body.get("use_default_subnet_pool"):
            version = body.get("ip_version", 4)
            pool = await self.network.read(store.default_subnetpool, version)
            if pool is None:
                raise BadRequest(f"No default subnet pool of IPv{version} is set: give a cidr or a subnetpool_id.")
        else:
            return None
        if body.get("cidr") is None:
            core_pools.subnet_prefixlen(pool, body)
        elif body.get("prefixlen") is not None:
            raise BadRequest("Bad subnets request: prefixlen is given with a cidr; give one of them.")
        return pool

    # --- address scopes -----------------------------------------------------------------------------------
    async def create_address_scope(self, ctx: Any, body: Mapping[str, Any]) -> Row:
        project = self.network._project_for_create(ctx, body, "create_address_scope")
        if body.get("shared"):
            require(ctx.is_cloud_admin, "create_address_scope:shared")
        at = self.network.now()
        row = {"id": self.network.new_id(), "project_id": project, "name": body.get("name") or "",
               "ip_version": body["ip_version"], "shared": bool(body.get("shared")), "created_at": at,
               "updated_at": at, "revision_number": 0}
        return await self._view(ctx, "address_scopes", await self.network.propose(c.CreateAddressScope(row)))

    async def update_address_scope(self, ctx: Any, scope_id: str, body: Mapping[str, Any]) -> Row:
        scope = await self.network._writable(ctx, "address_scopes", scope_id, "update_address_scope")
        if "shared" in body and body["shared"] != scope["shared"]:
            require(ctx.is_cloud_admin, "update_address_scope:shared")
        changes = {k: (v if v is not None else "") for k, v in body.items()}
        updated = await self.network.propose(c.UpdateAddressScope(scope_id, changes, self.network.now()))
        return await self._view(ctx, "address_scopes", updated)

    async def delete_address_scope(self, ctx: Any, scope_id: str) -> None:
        await self.network._writable(ctx, "address_scopes", scope_id, "delete_address_scope")
        await self.network.propose(c.DeleteAddressScope(scope_id))

    # --- metering labels and rules (the cloud's administrators', as in Neutron) --------------------------------------
    async def create_metering_label(self, ctx: Any, body: Mapping[str, Any]) -> Row:
        require(ctx.is_cloud_admin, "create_metering_label")
        project = self.network._project_for_create(ctx, body, "create_metering_label")
        at = self.network.now()
        row = {"id": self.network.new_id(), "project_id": project, "name": body.get("name") or "",
               "description": body.get("description") or "", "shared": bool(body.get("shared")), "created_at": at,
               "updated_at": at, "revision_number": 0}
        return await self._view(ctx, "metering_labels", await self.network.propose(c.CreateMeteringLabel(row)))

    async def delete_metering_label(self, ctx: Any, label_id: str) -> None:
        require(ctx.is_cloud_admin, "delete_metering_label")
        await self.network._visible(ctx, "metering_labels", label_id)
        await self.network.propose(c.DeleteMeteringLabel(label_id))

    async def create_metering_label_rule(self, ctx: Any, body: Mapping[str, Any]) -> Row:
        require(ctx.is_cloud_admin, "create_metering_label_rule")
        try:
            label = await self.network._visible(ctx, "metering_labels", body["metering_label_id"])
        except NotFound:
            raise NotFound(f"Metering label {body['metering_label_id']} does not exist.") from None
        at = self.network.now()
        row = {"id": self.network.new_id(), "project_id": label["project_id"],
               "metering_label_id": label["id"], **core_pools.metering_rule(body), "created_at": at,
               "updated_at": at, "revision_number": 0}
        return await self._view(ctx, "metering_label_rules", await self.network.propose(c.CreateMeteringLabelRule(row)))

    async def delete_metering_label_rule(self, ctx: Any, rule_id: str) -> None:
        require(ctx.is_cloud_admin, "delete_metering_label_rule")
        await self.network._visible(ctx, "metering_label_rules", rule_id)
        await self.network.propose(c.DeleteMeteringLabelRule(rule_id))

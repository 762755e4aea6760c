"""Keystone's other resources as callers see them: credentials (EC2 ones among them), policies,
endpoint groups, OAuth1 consumers, domain-specific configuration and project tags.

Each method takes the caller's AuthContext, finds what it names (NotFound first), checks the
caller may act on it (Forbidden), and changes state through the service's commands.  Secrets
(EC2 access and secret keys, consumer secrets) are made here, before their command enters the
log.  The API's handlers (api_extensions.py) call one method each.
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from cloudbox.errors import BadRequest, Conflict, Forbidden, NotFound
from cloudbox.identity import commands as c
from cloudbox.identity import core, store, store_extensions
from cloudbox.identity import core_extensions as x
from cloudbox.identity.core import AuthContext, pick, require

if TYPE_CHECKING:
    from cloudbox.identity.service import IdentityService

Row = dict[str, Any]


class Extensions:
    def __init__(self, identity: IdentityService) -> None:
        self.identity = identity

    # --- credentials ----------------------------------------------------------------------------
    async def create_credential(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        """A credential of a user (one's own, or anyone's for a cloud admin); an ec2 one is found
        by its access key, so its id is that key's hash, as Keystone makes it."""
        x.may_see_credential(ctx, {"user_id": body["user_id"]}, write=True)
        row: Row = {"user_id": body["user_id"], "project_id": body.get("project_id"), "type": body["type"],
                    "blob": body["blob"]}
        if body["type"] == x.EC2:
            if not body.get("project_id"):
                raise BadRequest("An ec2 credential needs a project_id.")
            row["id"] = x.ec2_credential_id(x.parse_ec2_blob(body["blob"])["access"])
        return await self.identity.create("credential", row)

    async def credentials(self, ctx: AuthContext, filters: dict[str, Any], marker: str | None,
                          limit: int) -> list[Row]:
        """One page of credentials; below cloud readers, the caller's own only."""
        if not ctx.is_cloud_reader:
            if filters.get("user_id") not in (None, ctx.user_id):
                return []
            filters = {**filters, "user_id": ctx.user_id}
        return await self.identity.read(
            lambda db: store_extensions.credentials_page(db, filters, marker=marker, limit=limit))

    async def credential(self, ctx: AuthContext, credential_id: str) -> Row:
        row = await self.identity.get("credential", credential_id)
        x.may_see_credential(ctx, row, write=False)
        return row

    async def update_credential(self, ctx: AuthContext, credential_id: str, body: dict[str, Any]) -> Row:
        """Only the blob changes (Keystone's rule: id, type, user and project stay)."""
        row = await self.identity.get("credential", credential_id)
        x.may_see_credential(ctx, row, write=True)
        for key in ("type", "user_id", "project_id"):
            if key in body and body[key] != row[key]:
                raise BadRequest(f"A credential's {key} cannot change; make a new credential instead.")
        if "blob" in body and row["type"] == x.EC2:
            x.check_ec2_blob_update(row["blob"], body["blob"])
        return await self.identity.update("credential", row["id"], pick(body, ("blob",)))

    async def delete_credential(self, ctx: AuthContext, credential_id: str) -> None:
        row = await self.identity.get("credential", credential_id)
        x.may_see_credential(ctx, row, write=True)
        await self.identity.delete("credential", row["id"])

    # --- EC2 credentials (OS-EC2) -------------------------------------------------------------------
    async def create_ec2(self, ctx: AuthContext, user_id: str, project_id: str) -> Row:
        """New access and secret keys for a user on a project it holds a role on."""
        await self.identity.get("user", user_id)
        x.may_see_credential(ctx, {"user_id": user_id}, write=True)
        project = await self.identity.get("project", project_id)
        if not await self.identity.read(store.direct_role_ids, user_id, "project", project["id"]):
            raise Forbidden(f"User {user_id} holds no role on project {project_id}.")
        access, secret = uuid.uuid4().hex, uuid.uuid4().hex
        return await self.identity.create("credential", {
            "id": x.ec2_credential_id(access), "user_id": user_id, "project_id": project["id"],
            "type": x.EC2, "blob": x.ec2_blob(access, secret)})

    async def ec2_credentials(self, ctx: AuthContext, user_id: str) -> list[Row]:
        await self.identity.get("user", user_id)
        x.may_see_credential(ctx, {"user_id": user_id}, write=False)
        return await self.identity.read(lambda db: store.find(db, "credential", user_id=user_id, type=x.EC2))

    async def ec2_credential(self, ctx: AuthContext, user_id: str, access: str, *, write: bool = False) -> Row:
        await self.identity.get("user", user_id)
        x.may_see_credential(ctx, {"user_id": user_id}, write=write)
        row = await self.identity.read(store_extensions.ec2_by_access, access, x.ec2_credential_id(access))
        if row is None or row["user_id"] != user_id:
            raise NotFound(f"Could not find credential: {access}.")
        return row

    async def delete_ec2(self, ctx: AuthContext, user_id: str, access: str) -> None:
        row = await self.ec2_credential(ctx, user_id, access, write=True)
        await self.identity.delete("credential", row["id"])

    # --- policies, endpoint groups, consumers: cloud admins write, cloud readers read ---------------
    async def create_policy(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        require(ctx.is_cloud_admin, "identity:create_policy")
        return await self.identity.create("policy", {"type": body["type"], "blob": body["blob"]})

    async def update_policy(self, ctx: AuthContext, policy_id: str, body: dict[str, Any]) -> Row:
        row = await self.identity.get("policy", policy_id)
        require(ctx.is_cloud_admin, "identity:update_policy")
        return await self.identity.update("policy", row["id"], pick(body, ("type", "blob")))

    async def create_endpoint_group(self, ctx: AuthContext, body: dict[str, Any]) -> Row:
        require(ctx.is_cloud_admin, "identity:create_endpoint_group")
        return await self.identity.create("endpoint_group", {
            "name": body["name"], "description": body.get("description") or "",
            "filters": x.check_endpoint_filters(body["filters"])})

    async def update_endpoint_group(self, ctx: AuthContext, group_id: str, body: dict[str, Any]) -> Row:
        row = await self.identity.get("endpoint_group", group_id)
        require(ctx.is_cloud_admin, "identity:update_endpoint_group")
        changes = pick(body, ("name", "description"))
        if "filters" in body:
            changes["filters"] = x.check_endpoint_filters(body["filters"])
        return await self.identity.update("endpoint_group", row["id"], changes)

    async def endpoint_group_endpoints(self, ctx: AuthContext, group_id: str) -> list[Row]:
        row = await self.show(ctx, "endpoint_group", group_id)
        return await self.identity.read(store_extensions.endpoints_matching, row["filters"])

    async def create_consumer(self, ctx: AuthContext, body: dict[str, Any]) -> tuple[Row, str]:
        """An OAuth1 consumer and its secret (shown this once; only its hash is kept)."""
        require(ctx.is_cloud_admin, "identity:create_consumer")
        secret = secrets.token_urlsafe(32)
        row = await self.identity.create("consumer", {"description": body.get("description") or "",
                                                       "secret_hash": core.hash_secret(secret)})
        return row, secret

    async def update_consumer(self, ctx: AuthContext, consumer_id: str, body: dict[str, Any]) -> Row:
        row = await self.identity.get("consumer", consumer_id)
        require(ctx.is_cloud_admin, "identity:update_consumer")
        if "secret" in body:
            raise BadRequest("A consumer's secret cannot be changed.")
        return await self.identity.update("consumer", row["id"], pick(body, ("description",)))

    async def list(self, ctx: AuthContext, entity: str, filters: dict[str, Any], marker: str | None,
                   limit: int) -> list[Row]:
        require(ctx.is_cloud_reader, f"identity:list_{entity}s")
        return await self.identity.read(lambda db: store.page(db, entity, filters, marker=marker, limit=limit))

    async def show(self, ctx: AuthContext, entity: str, id: str) -> Row:
        row = await self.identity.get(entity, id)
        require(ctx.is_cloud_reader, f"identity:get_{entity}")
        return row

    async def delete(self, ctx: AuthContext, entity: str, id: str) -> None:
        row = await self.identity.get(entity, id)
        require(ctx.is_cloud_admin, f"identity:delete_{entity}")
        await self.identity.delete(entity, row["id"])

    # --- domain-specific configuration ---------------------------------------------------------------
    async def _domain_config(self, ctx: AuthContext, domain_id: str, write: bool) -> Row | None:
        domain = await self.identity.get("domain", domain_id)
        require(ctx.is_cloud_admin if write else ctx.is_cloud_reader, "identity:domain_config")
        return await self.identity.read(store.get, "domain_config", domain["id"])

    async def put_domain_config(self, ctx: AuthContext, domain_id: str, config: Any) -> tuple[Row, bool]:
        """Set a domain's whole configuration; True if it had none (made, 201) else replaced (200)."""
        config = x.check_config(config)
        current = await self._domain_config(ctx, domain_id, write=True)
        if current is None:
            try:
                return await self.identity.create("domain_config", {"id": domain_id, "config": config}), True
            except Conflict:  # made meanwhile: replace it as if it had been there
                pass
        return await self.identity.update("domain_config", domain_id, {"config": config}), False

    async def domain_config(self, ctx: AuthContext, domain_id: str, group: str | None = None,
                            option: str | None = None) -> dict[str, Any]:
        current = await self._domain_config(ctx, domain_id, write=False)
        if current is None:
            raise NotFound(f"Could not find a configuration of domain {domain_id}.")
        return x.config_part(current["config"], group, option)

    async def update_domain_config(self, ctx: AuthContext, domain_id: str, config: Any, group: str | None = None,
                                   option: str | None = None) -> dict[str, Any]:
        """Change options of a domain's configuration: any (group None), one group's (the body
        names only that group) or one option (the body names only that option)."""
        if option is not None:
            if not isinstance(config, dict) or set(config) != {option}:
                raise BadRequest(f"The body must set option {option!r} alone.")
            config = {group: config}
        elif group is not None and (not isinstance(config, dict) or set(config) != {group}):
            raise BadRequest(f"The body must configure group {group!r} alone.")
        changes = x.check_config(config)
        current = await self._domain_config(ctx, domain_id, write=True)
        if current is None:
            raise NotFound(f"Could not find a configuration of domain {domain_id}.")
        merged = x.merge_config(current["config"], changes)
        updated = await self.identity.update("domain_config", domain_id, {"config": merged})
        return x.visible_config(updated["config"]) if group is None else x.config_part(updated["config"], group, None)

    async def delete_domain_config(self, ctx: AuthContext, domain_id: str, group: str | None = None,
                                   option: str | None = None) -> None:
        current = await self._domain_config(ctx, domain_id, write=True)
        if current is None:
            raise NotFound(f"Could not find a configuration of domain {domain_id}.")
        if group is None:
            await self.identity.delete("domain_config", domain_id)
            return
        x.check_group(group, option)
        await self.identity.update("domain_config", domain_id, {"config": x.without(current["config"], group, option)})

    def default_config(self, ctx: AuthContext, group: str | None = None, option: str | None = None) -> dict[str, Any]:
        require(ctx.is_cloud_reader, "identity:get_domain_config_default")
        return x.config_part(x.DEFAULT_CONFIG, group, option)

    # --- project tags -----------------------------------------------------------------------------
    async def _project(self, ctx: AuthContext, project_id: str, write: bool) -> Row:
        row = await self.identity.get("project", project_id)
        if write:
            require(ctx.can_manage_project(row["id"]) or core.may_write(ctx, "project", row), "identity:update_project_tags")
        else:
            require(core.may_read(ctx, "project", row), "identity:get_project_tags")
        return row

    async def project_tags(self, ctx: AuthContext, project_id: str) -> list[str]:
        return list((await self._project(ctx, project_id, write=False))["tags"])

    async def check_project_tag(self, ctx: AuthContext, project_id: str, tag: str) -> None:
        if tag not in await self.project_tags(ctx, project_id):
            raise NotFound(f"Could not find tag: {tag}.")

    async def set_project_tags(self, ctx: AuthContext, project_id: str, tags: list[str]) -> list[str]:
        row = await self._project(ctx, project_id, write=True)
        updated = await self.identity.update("project", row["id"], {"tags": list(dict.fromkeys(tags))})
        return list(updated["tags"])

    async def tag_project(self, ctx: AuthContext, project_id: str, tag: str, add: bool) -> None:
        row = await self._project(ctx, project_id, write=True)
        await self.identity.propose(c.TagProject(row["id"], tag, add))

"""The metadata definitions service (Glance's /v2/metadefs): reads for whoever may see a
namespace, changes for cloud administrators only (Glance's default policy)."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Mapping

from cloudbox import clock
from cloudbox.errors import BadRequest
from cloudbox.identity.core import AuthContext, require
from cloudbox.image import apply_metadefs as store
from cloudbox.image import commands as c
from cloudbox.image import metadefs as m
from cloudbox.state.engine import StateEngine


class MetadefService:
    def __init__(self, engine: StateEngine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def now_iso(self) -> str:
        return clock.iso(self.clock())

    async def _change(self, ctx: AuthContext, action: str, cmd: Any) -> Any:
        require(ctx.is_cloud_admin, action)
        return await self.engine.propose(cmd)

    async def _seen(self, ctx: AuthContext, namespace: str) -> None:
        """NotFound unless the caller sees the namespace (one it cannot see does not exist)."""
        await self.engine.read(store.visible_namespace, m.reader_of(ctx), namespace)

    # --- namespaces -----------------------------------------------------------------------
    async def list_namespaces(self, ctx: AuthContext, query: Any, limit: int) -> list[dict[str, Any]]:
        visibility = query.get("visibility")
        if visibility not in (None, "public", "private"):
            raise BadRequest(f"Invalid visibility filter {visibility!r}; use public or private.")
        types = [t for t in (query.get("resource_types") or "").split(",") if t]
        sort = m.sort_options(query, m.NAMESPACE_SORT_KEYS, "created_at")
        return await self.engine.read(store.list_namespaces, m.reader_of(ctx), visibility, types, sort,
                                      query.get("marker") or None, limit)

    async def get_namespace(self, ctx: AuthContext, name: str) -> dict[str, Any]:
        return await self.engine.read(store.whole_namespace, m.reader_of(ctx), name)

    async def create_namespace(self, ctx: AuthContext, body: Mapping[str, Any]) -> dict[str, Any]:
        m.check_counts(body)
        row = m.namespace_row(body, id=str(uuid.uuid4()), owner=ctx.project_id, at=self.now_iso())
        properties = tuple(m.property_row(n, p) for n, p in (body.get("properties") or {}).items())
        objects = tuple(m.object_row(o) for o in body.get("objects") or ())
        tags = tuple(m.unique_tags(body.get("tags") or ()))
        associations = tuple(m.association_row(a) for a in body.get("resource_type_associations") or ())
        return await self._change(ctx, "add_metadef_namespace", c.CreateNamespace(
            row, associations, properties, objects, tags))

    async def update_namespace(self, ctx: AuthContext, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        await self._seen(ctx, name)
        # A PUT replaces the namespace: what it leaves out takes the defaults a create would.
        row = m.namespace_row(body, id="", owner=ctx.project_id, at="")
        changes = {k: row[k] for k in ("namespace", "display_name", "description", "visibility", "protected",
                                        "owner")}
        return await self._change(ctx, "modify_metadef_namespace", c.UpdateNamespace(name, changes, self.now_iso()))

    async def delete_namespace(self, ctx: AuthContext, name: str) -> None:
        await self._seen(ctx, name)
        await self._change(ctx, "delete_metadef_namespace", c.DeleteNamespace(name))

    async def clear(self, ctx: AuthContext, name: str, kind: str) -> None:
        """Delete every object, property or tag of a namespace."""
        await self._seen(ctx, name)
        await self._change(ctx, f"delete_metadef_{kind}", c.ClearNamespace(name, kind, self.now_iso()))

    # --- objects and properties -----------------------------------------------------------------
    async def children(self, ctx: AuthContext, namespace: str, kind: str) -> list[dict[str, Any]]:
        """The objects, properties, tags or resource type associations (``kind``) of a namespace."""
        return await self.engine.read(store.namespace_children, m.reader_of(ctx), namespace, kind)

    async def get_definition(self, ctx: AuthContext, namespace: str, kind: str, name: str,
                             resource_type: str | None = None) -> tuple[dict[str, Any], str | None]:
        """An object or property and the prefix of ``resource_type``'s association (names carry it)."""
        prefix = None
        if resource_type:
            prefix = await self.engine.read(store.property_prefix, m.reader_of(ctx), namespace, resource_type)
            name = m.strip_prefix(name, prefix)
        found = await self.engine.read(store.definition, m.reader_of(ctx), namespace, kind, name)
        return found, prefix

    async def put_definition(self, ctx: AuthContext, namespace: str, kind: str, name: str | None,
                             body: Mapping[str, Any]) -> dict[str, Any]:
        """Create (``name`` None) or replace an object or a property."""
        await self._seen(ctx, namespace)
        if kind == "objects":
            row = m.object_row(body)
        else:
            row = m.property_row(body.get("name") or name or "", body)
        verb = "add" if name is None else "modify"
        return await self._change(ctx, f"{verb}_metadef_{store.SINGULAR[kind]}",
                                  c.PutDefinition(namespace, kind, name, row, self.now_iso()))

    async def remove_definition(self, ctx: AuthContext, namespace: str, kind: str, name: str) -> None:
        await self._seen(ctx, namespace)
        await self._change(ctx, f"delete_metadef_{store.SINGULAR[kind]}",
                           c.RemoveDefinition(namespace, kind, name, self.now_iso()))

    # --- tags --------------------------------------------------------------------------------------
    async def list_tags(self, ctx: AuthContext, namespace: str, query: Any, limit: int) -> list[dict[str, Any]]:
        sort = m.sort_options(query, m.TAG_SORT_KEYS, "created_at")
        return await self.engine.read(store.list_tags, m.reader_of(ctx), namespace, sort,
                                      query.get("marker") or None, limit)

    async def add_tags(self, ctx: AuthContext, namespace: str, names: list[str], *,
                       append: bool) -> list[dict[str, Any]]:
        await self._seen(ctx, namespace)
        return await self._change(ctx, "add_metadef_tags",
                                  c.AddMetadefTags(namespace, tuple(names), not append, self.now_iso()))

    async def rename_tag(self, ctx: AuthContext, namespace: str, name: str, new_name: str) -> dict[str, Any]:
        await self._seen(ctx, namespace)
        return await self._change(ctx, "modify_metadef_tag",
                                  c.RenameMetadefTag(namespace, name, new_name, self.now_iso()))

    # --- resource types ----------------------------------------------------------------------------
    async def resource_types(self, ctx: AuthContext) -> list[dict[str, Any]]:
        return await self.engine.read(store.resource_types)

    async def associate(self, ctx: AuthContext, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        await self._seen(ctx, namespace)
        return await self._change(ctx, "add_metadef_resource_type_association",
                                  c.AddAssociation(namespace, m.association_row(body), self.now_iso()))

    async def dissociate(self, ctx: AuthContext, namespace: str, resource_type: str) -> None:
        await self._seen(ctx, namespace)
        await self._change(ctx, "remove_metadef_resource_type_association",
                           c.RemoveAssociation(namespace, resource_type, self.now_iso()))

"""Glance's metadata definitions API at /image/v2/metadefs: namespaces and their objects,
properties, tags and resource type associations, the resource types, and their schemas."""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import BadRequest, NotFound
from cloudbox.image import core
from cloudbox.image import metadef_schemas as schemas
from cloudbox.image import metadefs as m
from cloudbox.image.service_metadefs import MetadefService

NS = "/metadefs/namespaces/{namespace}"


def _appending(call: Call) -> bool:
    """X-Openstack-Append: true adds tags to a namespace's (else they replace them)."""
    return (call.request.headers.get("X-Openstack-Append") or "").strip().lower() in ("true", "1", "yes")


def routes(svc: MetadefService) -> list[Route]:
    # --- namespaces ----------------------------------------------------------------------------
    async def list_namespaces(call: Call) -> Any:
        limit = core.parse_limit(call.query.get("limit"), call.max_limit)
        rows = await svc.list_namespaces(call.auth, call.query, limit)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"namespaces": [m.render_namespace(ns) for ns in rows],
                **m.list_links("/v2/metadefs/namespaces", call.query, rows[-1]["namespace"] if more and rows else None),
                "schema": m.SCHEMA + "namespaces"}

    async def create_namespace(call: Call) -> Reply:
        ns = await svc.create_namespace(call.auth, call.body)
        return Reply(m.render_namespace(ns, whole=True), 201)

    async def show_namespace(call: Call, namespace: str) -> Any:
        ns = await svc.get_namespace(call.auth, namespace)
        return m.render_namespace(ns, whole=True, resource_type=call.query.get("resource_type"))

    async def update_namespace(call: Call, namespace: str) -> Any:
        return m.render_namespace(await svc.update_namespace(call.auth, namespace, call.body))

    async def delete_namespace(call: Call, namespace: str) -> Reply:
        await svc.delete_namespace(call.auth, namespace)
        return Reply(None, 204)

    def clear(kind: str) -> Any:
        async def handler(call: Call, namespace: str) -> Reply:
            await svc.clear(call.auth, namespace, kind)
            return Reply(None, 204)
        handler.__name__ = f"delete_all_{kind}"
        return handler

    # --- objects -------------------------------------------------------------------------------
    async def list_objects(call: Call, namespace: str) -> Any:
        rows = await svc.children(call.auth, namespace, "objects")
        return {"objects": [m.render_object(namespace, o) for o in rows], "schema": m.SCHEMA + "objects"}

    async def create_object(call: Call, namespace: str) -> Reply:
        row = await svc.put_definition(call.auth, namespace, "objects", None, call.body)
        return Reply(m.render_object(namespace, row), 201)

    async def show_object(call: Call, namespace: str, object_name: str) -> Any:
        row, _ = await svc.get_definition(call.auth, namespace, "objects", object_name)
        return m.render_object(namespace, row)

    async def update_object(call: Call, namespace: str, object_name: str) -> Any:
        return m.render_object(namespace, await svc.put_definition(call.auth, namespace, "objects", object_name,
                                                                   call.body))

    async def delete_object(call: Call, namespace: str, object_name: str) -> Reply:
        await svc.remove_definition(call.auth, namespace, "objects", object_name)
        return Reply(None, 204)

    # --- properties ------------------------------------------------------------------------------
    async def list_properties(call: Call, namespace: str) -> Any:
        rows = await svc.children(call.auth, namespace, "properties")
        return {"properties": {p["name"]: p["body"] for p in rows}, "schema": m.SCHEMA + "properties"}

    async def create_property(call: Call, namespace: str) -> Reply:
        row = await svc.put_definition(call.auth, namespace, "properties", None, call.body)
        return Reply(m.render_property(row), 201)

    async def show_property(call: Call, namespace: str, property_name: str) -> Any:
        row, prefix = await svc.get_definition(call.auth, namespace, "properties", property_name,
                                               call.query.get("resource_type"))
        return m.render_property(row, prefix)

    async def update_property(call: Call, namespace: str, property_name: str) -> Any:
        return m.render_property(await svc.put_definition(call.auth, namespace, "properties", property_name,
                                                          call.body))

    async def delete_property(call: Call, namespace: str, property_name: str) -> Reply:
        await svc.remove_definition(call.auth, namespace, "properties", property_name)
        return Reply(None, 204)

    # --- tags ---------------------------------------------------------------------------------------
    async def list_tags(call: Call, namespace: str) -> Any:
        limit = core.parse_limit(call.query.get("limit"), call.max_limit)
        rows = await svc.list_tags(call.auth, namespace, call.query, limit)
        return {"tags": [m.render_tag(t) for t in rows[:limit]]}

    async def create_tags(call: Call, namespace: str) -> Reply:
        names = m.unique_tags(call.body["tags"])
        rows = await svc.add_tags(call.auth, namespace, names, append=_appending(call))
        return Reply({"tags": [{"name": t["name"]} for t in rows]}, 201)

    async def create_tag(call: Call, namespace: str, tag_name: str) -> Reply:
        if not 0 < len(tag_name) <= schemas.TAG_LENGTH:
            raise BadRequest(f"A tag name has 1 to {schemas.TAG_LENGTH} characters.")
        rows = await svc.add_tags(call.auth, namespace, [tag_name], append=True)
        return Reply(m.render_tag(rows[0]), 201)

    async def show_tag(call: Call, namespace: str, tag_name: str) -> Any:
        row, _ = await svc.get_definition(call.auth, namespace, "tags", tag_name)
        return m.render_tag(row)

    async def update_tag(call: Call, namespace: str, tag_name: str) -> Any:
        return m.render_tag(await svc.rename_tag(call.auth, namespace, tag_name, call.body["name"]))

    async def delete_tag(call: Call, namespace: str, tag_name: str) -> Reply:
        await svc.remove_definition(call.auth, namespace, "tags", tag_name)
        return Reply(None, 204)

    # --- resource types -----------------------------------------------------------------------------
    async def list_resource_types(call: Call) -> Any:
        return {"resource_types": [m.render_resource_type(r) for r in await svc.resource_types(call.auth)]}

    async def list_associations(call: Call, namespace: str) -> Any:
        rows = await svc.children(call.auth, namespace, "associations")
        return {"resource_type_associations": [m.render_association(a) for a in rows]}

    async def associate(call: Call, namespace: str) -> Reply:
        return Reply(m.render_association(await svc.associate(call.auth, namespace, call.body)), 201)

    async def dissociate(call: Call, namespace: str, resource_type: str) -> Reply:
        await svc.dissociate(call.auth, namespace, resource_type)
        return Reply(None, 204)

    async def show_schema(call: Call, name: str) -> Any:
        if name not in schemas.SCHEMAS:
            raise NotFound(f"No schema named metadefs/{name}; there are {', '.join(schemas.SCHEMAS)}.")
        return schemas.SCHEMAS[name]()

    obj, prop, tag = NS + "/objects/{object_name}", NS + "/properties/{property_name}", NS + "/tags/{tag_name}"
    return [
        Route("GET", "/metadefs/namespaces", list_namespaces, summary="List metadata definition namespaces",
              query=("limit", "marker", "sort_key", "sort_dir", "visibility", "resource_types")),
        Route("POST", "/metadefs/namespaces", create_namespace, summary="Create a namespace (admin)",
              body=schemas.CREATE_NAMESPACE, status=201),
        Route("GET", NS, show_namespace, summary="Show a namespace with its definitions", query=("resource_type",)),
        Route("PUT", NS, update_namespace, summary="Replace a namespace's attributes (admin)",
              body=schemas.CREATE_NAMESPACE),
        Route("DELETE", NS, delete_namespace, summary="Delete a namespace (admin)", status=204),
        Route("GET", NS + "/objects", list_objects, summary="List a namespace's objects"),
        Route("POST", NS + "/objects", create_object, summary="Create an object (admin)", body=schemas.CREATE_OBJECT,
              status=201),
        Route("DELETE", NS + "/objects", clear("objects"), summary="Delete every object (admin)", status=204),
        Route("GET", obj, show_object, summary="Show an object"),
        Route("PUT", obj, update_object, summary="Replace an object (admin)", body=schemas.CREATE_OBJECT),
        Route("DELETE", obj, delete_object, summary="Delete an object (admin)", status=204),
        Route("GET", NS + "/properties", list_properties, summary="List a namespace's properties"),
        Route("POST", NS + "/properties", create_property, summary="Create a property (admin)",
              body=schemas.CREATE_PROPERTY, status=201),
        Route("DELETE", NS + "/properties", clear("properties"), summary="Delete every property (admin)",
              status=204),
        Route("GET", prop, show_property, summary="Show a property", query=("resource_type",)),
        Route("PUT", prop, update_property, summary="Replace a property (admin)", body=schemas.CREATE_PROPERTY),
        Route("DELETE", prop, delete_property, summary="Delete a property (admin)", status=204),
        Route("GET", NS + "/tags", list_tags, summary="List a namespace's tags",
              query=("limit", "marker", "sort_key", "sort_dir")),
        Route("POST", NS + "/tags", create_tags, summary="Create tags (admin; X-Openstack-Append to add)",
              body=schemas.CREATE_TAGS, status=201),
        Route("DELETE", NS + "/tags", clear("tags"), summary="Delete every tag (admin)", status=204),
        Route("POST", tag, create_tag, summary="Create a tag (admin)", status=201),
        Route("GET", tag, show_tag, summary="Show a tag"),
        Route("PUT", tag, update_tag, summary="Rename a tag (admin)", body=schemas.CREATE_TAG),
        Route("DELETE", tag, delete_tag, summary="Delete a tag (admin)", status=204),
        Route("GET", "/metadefs/resource_types", list_resource_types, summary="List resource types"),
        Route("GET", NS + "/resource_types", list_associations, summary="List a namespace's resource types"),
        Route("POST", NS + "/resource_types", associate, summary="Associate a resource type (admin)",
              body=schemas.CREATE_ASSOCIATION, status=201),
        Route("DELETE", NS + "/resource_types/{resource_type}", dissociate, summary="Dissociate a resource type "
              "(admin)", status=204),
        Route("GET", "/schemas/metadefs/{name}", show_schema, summary="Glance's metadata definition schemas"),
    ]

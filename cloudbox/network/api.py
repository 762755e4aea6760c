"""Neutron v2.0 routes at /network: versions, /v2.0 root, extensions, networks, subnets, ports,
tags, quotas, IP availability and auto-allocated topologies.

Routers and floating IPs are in ``api_l3.py``, security groups in ``api_secgroups.py``;
``build`` joins them into the one ApiSpec of the service.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Awaitable, Callable

from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.errors import BadRequest, NotFound
from cloudbox.network import core, models, views
from cloudbox.network.service import NetworkService

PREFIX = "/network"
V2 = "/v2.0"
LIST_QUERY = ("limit", "marker", "sort_key", "sort_dir", "fields", "tags", "tags-any", "not-tags", "not-tags-any")

# collection in the URL → (table, singular key of bodies)
COLLECTIONS = {
    "networks": ("networks", "network"), "subnets": ("subnets", "subnet"), "ports": ("ports", "port"),
    "routers": ("routers", "router"), "floatingips": ("floatingips", "floatingip"),
    "security-groups": ("security_groups", "security_group"),
    "security-group-rules": ("security_group_rules", "security_group_rule"),
    "subnetpools": ("subnetpools", "subnetpool"), "address-scopes": ("address_scopes", "address_scope"),
    "metering/metering-labels": ("metering_labels", "metering_label"),
    "metering/metering-label-rules": ("metering_label_rules", "metering_label_rule"),
}
BULK = ("networks", "subnets", "ports", "security_group_rules")  # collections Neutron creates in bulk
TAGGED = ("networks", "subnets", "ports", "routers", "floatingips", "security-groups", "security-group-rules",
          "subnetpools")


def next_links(call: Call, collection: str, next_marker: str | None, limit: int) -> list[dict[str, str]]:
    if next_marker is None:
        return []
    query = [(k, v) for k, v in call.query.items(multi=True) if k not in ("marker", "limit")]
    query += [("limit", str(limit)), ("marker", next_marker)]
    return [{"rel": "next", "href": f"{call.base}{V2}/{collection}?{urllib.parse.urlencode(query)}"}]


def lister(svc: NetworkService, collection: str) -> Callable[[Call], Awaitable[Any]]:
    table, _ = COLLECTIONS[collection]
    key = table

    async def handler(call: Call) -> Any:
        limit, marker = call.page()
        found, next_marker = await svc.list(call.auth, table, call.query, limit, marker)
        body: dict[str, Any] = {key: found}
        links = next_links(call, collection, next_marker, limit)
        if links:
            body[f"{key}_links"] = links
        return body

    handler.__name__ = f"list_{table}"
    handler.__doc__ = f"List {collection} (filters, fields, sorting, paging)"
    return handler


def shower(svc: NetworkService, collection: str) -> Callable[..., Awaitable[Any]]:
    table, singular = COLLECTIONS[collection]

    async def handler(call: Call, id: str) -> Any:
        fields = [f for v in call.query.getlist("fields") for f in v.split(",") if f]
        return {singular: await svc.show(call.auth, table, id, fields)}

    handler.__name__ = f"show_{singular}"
    handler.__doc__ = f"Show one of {collection}"
    return handler


def _one(call: Call, singular: str) -> dict[str, Any]:
    body = call.body or {}
    if singular not in body:
        raise BadRequest(f"Resource body required: send {{\"{singular}\": {{...}}}}.")
    return body[singular]


def build(svc: NetworkService) -> ApiSpec:
    from cloudbox.network import api_l3, api_pools, api_secgroups

    # --- discovery --------------------------------------------------------------------------------
    async def versions(call: Call) -> Any:
        """Neutron's versions document (clients discover /network/v2.0/ here)"""
        return views.versions(call.base)

    async def root(call: Call) -> Any:
        """The collections of the v2.0 API"""
        return views.root(call.base + V2)

    async def list_extensions(call: Call) -> Any:
        return {"extensions": [views.extension(*e) for e in views.EXTENSIONS]}

    async def show_extension(call: Call, alias: str) -> Any:
        for ext in views.EXTENSIONS:
            if ext[0] == alias:
                return {"extension": views.extension(*ext)}
        raise NotFound(f"Extension with alias {alias} does not exist")

    async def list_service_providers(call: Call) -> Any:
        return {"service_providers": [dict(p) for p in views.SERVICE_PROVIDERS]}

    # --- tags ------------------------------------------------------------------------------------------------
    def tag_routes(collection: str) -> list[Route]:
        table = COLLECTIONS[collection][0]

        async def get_tags(call: Call, id: str) -> Any:
            return {"tags": await svc.tags(call.auth, table, id)}

        async def replace_tags(call: Call, id: str) -> Any:
            return {"tags": await svc.edit_tags(call.auth, table, id, "replace", call.body["tags"])}

        async def clear_tags(call: Call, id: str) -> Reply:
            await svc.edit_tags(call.auth, table, id, "clear", ())
            return Reply(None, 204)

        async def check_tag(call: Call, id: str, tag: str) -> Reply:
            if tag not in await svc.tags(call.auth, table, id):
                raise NotFound(f"Tag {tag} could not be found for resource {id}.")
            return Reply(None, 204)

        async def add_tag(call: Call, id: str, tag: str) -> Reply:
            await svc.edit_tags(call.auth, table, id, "add", (tag,))
            return Reply(None, 201)

        async def remove_tag(call: Call, id: str, tag: str) -> Reply:
            await svc.edit_tags(call.auth, table, id, "remove", (tag,))
            return Reply(None, 204)

        base = f"{V2}/{collection}/{{id}}/tags"
        return [
            Route("GET", base, get_tags, summary=f"Tags of one of {collection}"),
            Route("PUT", base, replace_tags, summary=f"Replace the tags of one of {collection}", body=models.TAGS_BODY),
            Route("DELETE", base, clear_tags, summary=f"Remove every tag of one of {collection}", status=204),
            Route("GET", base + "/{tag}", check_tag, summary="Whether it has a tag", status=204),
            Route("PUT", base + "/{tag}", add_tag, summary="Add a tag", status=201),
            Route("DELETE", base + "/{tag}", remove_tag, summary="Remove a tag", status=204),
        ]

    # --- quotas ------------------------------------------------------------------------------------------------
    async def list_quotas(call: Call) -> Any:
        return {"quotas": await svc.list_quotas(call.auth)}

    async def show_quota(call: Call, project_id: str) -> Any:
        return {"quota": await svc.quota(call.auth, project_id)}

    async def default_quota(call: Call, project_id: str) -> Any:
        return {"quota": views.quota(core.DEFAULT_QUOTAS, project_id)}

    async def quota_details(call: Call, project_id: str) -> Any:
        return {"quota": await svc.quota_details(call.auth, project_id)}

    async def update_quota(call: Call, project_id: str) -> Any:
        return {"quota": await svc.set_quota(call.auth, project_id, call.body["quota"])}

    async def delete_quota(call: Call, project_id: str) -> Reply:
        await svc.delete_quota(call.auth, project_id)
        return Reply(None, 204)

    # --- IP availability, auto-allocated topologies ------------------------------------------------------------------
    async def list_availabilities(call: Call) -> Any:
        limit, marker = call.page()
        found, next_marker = await svc.ip_availabilities(call.auth, call.query, limit, marker)
        body: dict[str, Any] = {"network_ip_availabilities": found}
        links = next_links(call, "network-ip-availabilities", next_marker, limit)
        if links:
            body["network_ip_availabilities_links"] = links
        return body

    async def show_availability(call: Call, network_id: str) -> Any:
        return {"network_ip_availability": await svc.ip_availability(call.auth, network_id)}

    async def show_topology(call: Call, project_id: str) -> Any:
        fields = [f for v in call.query.getlist("fields") for f in v.split(",")]
        topology = await svc.get_auto_allocated_topology(call.auth, project_id, "dry-run" in fields)
        return {"auto_allocated_topology": topology}

    async def delete_topology(call: Call, project_id: str) -> Reply:
        await svc.delete_auto_allocated_topology(call.auth, project_id)
        return Reply(None, 204)

    def crud(collection: str, create: Callable[..., Awaitable[Any]], update: Callable[..., Awaitable[Any]] | None,
             delete: Callable[..., Awaitable[Any]], create_body: dict, update_body: dict | None) -> list[Route]:
        """The five routes of a collection (four without ``update``), each calling the service method
        given for it; those in BULK also take a list (``{"networks": [...]}``)."""
        table, singular = COLLECTIONS[collection]
        item = f"{V2}/{collection}/{{id}}"
        bulk = table in BULK

        async def create_one(call: Call) -> Reply:
            if bulk and table in (call.body or {}):
                return Reply({table: await svc.create_bulk(call.auth, table, call.body[table])}, 201)
            return Reply({singular: await create(call.auth, _one(call, singular))}, 201)

        async def update_one(call: Call, id: str) -> Any:
            assert update is not None
            return {singular: await update(call.auth, id, _one(call, singular))}

        async def delete_one(call: Call, id: str) -> Reply:
            await delete(call.auth, id)
            return Reply(None, 204)

        for handler, verb in ((create_one, "create"), (update_one, "update"), (delete_one, "delete")):
            handler.__name__ = f"{verb}_{singular}"
        return [
            Route("GET", f"{V2}/{collection}", lister(svc, collection), query=LIST_QUERY),
            Route("POST", f"{V2}/{collection}", create_one, status=201,
                  summary=f"Create a {singular} (or several: {table})" if bulk else f"Create a {singular}",
                  body=models.with_bulk(create_body, table) if bulk else create_body),
            Route("GET", item, shower(svc, collection), query=("fields",)),
            *([Route("PUT", item, update_one, summary=f"Update a {singular}", body=update_body)] if update else []),
            Route("DELETE", item, delete_one, summary=f"Delete a {singular}", status=204),
        ]

    quota = f"{V2}/quotas/{{project_id}}"
    routes = [
        Route("GET", "", versions, access="public", summary="Neutron's versions document"),
        Route("GET", V2, root, access="public", summary="The collections of the v2.0 API"),
        Route("GET", V2 + "/", root, access="public", summary="The collections of the v2.0 API"),
        Route("GET", f"{V2}/extensions", list_extensions, summary="The API extensions served"),
        Route("GET", f"{V2}/extensions/{{alias}}", show_extension, summary="One API extension"),
        Route("GET", f"{V2}/service-providers", list_service_providers, summary="What provides each network service"),
        *crud("networks", svc.create_network, svc.update_network, svc.delete_network, models.CREATE_NETWORK,
              models.UPDATE_NETWORK),
        *crud("subnets", svc.create_subnet, svc.update_subnet, svc.delete_subnet, models.CREATE_SUBNET,
              models.UPDATE_SUBNET),
        *crud("ports", svc.create_port, svc.update_port, svc.delete_port, models.CREATE_PORT, models.UPDATE_PORT),
        Route("GET", f"{V2}/quotas", list_quotas, summary="Quotas of projects that differ from the defaults"),
        Route("GET", quota, show_quota, summary="A project's network quotas"),
        Route("PUT", quota, update_quota, summary="Set a project's network quotas", body=models.UPDATE_QUOTA),
        Route("DELETE", quota, delete_quota, summary="Reset a project's network quotas to the defaults", status=204),
        Route("GET", quota + "/default", default_quota, summary="The default network quotas"),
        Route("GET", quota + "/details", quota_details, summary="A project's quotas with their usage"),
        Route("GET", quota + "/details.json", quota_details, summary="A project's quotas with their usage"),
        Route("GET", f"{V2}/network-ip-availabilities", list_availabilities, query=LIST_QUERY,
              summary="Addresses used and free per network"),
        Route("GET", f"{V2}/network-ip-availabilities/{{network_id}}", show_availability,
              summary="Addresses used and free on a network"),
        Route("GET", f"{V2}/auto-allocated-topology/{{project_id}}", show_topology, query=("fields",),
              summary="The project's auto-allocated network (made on first use)"),
        Route("DELETE", f"{V2}/auto-allocated-topology/{{project_id}}", delete_topology, status=204,
              summary="Delete the project's auto-allocated network and router"),
        *[r for collection in TAGGED for r in tag_routes(collection)],
        *api_l3.routes(svc, crud),
        *api_secgroups.routes(svc, crud),
        *api_pools.routes(svc, crud, next_links),
    ]
    return ApiSpec("network", PREFIX, "neutron", routes, catalog=("network", "neutron"))

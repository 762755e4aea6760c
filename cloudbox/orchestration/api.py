"""Heat v1 at /orchestration/v1/{tenant_id}: stacks, their resources, events, outputs, template
and environment; validate, resource types, template versions. The version document is at
/orchestration (``mount_versions``).

A stack is named in a path by ``NAME/ID`` (what Heat's links hold). ``GET /stacks/NAME`` (or
``/stacks/ID``) answers 302 to ``/stacks/NAME/ID``: python-heatclient reads the Location to
learn a stack's id; ``DELETE`` by name alone answers the same 302 and deletes nothing (Heat's
answer). The other methods, and the sub-resources, by name alone are answered directly (as the
redirect's target would).
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from quart import Response, request

from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.errors import BadRequest, NotFound
from cloudbox.orchestration import api_software, hot, lookup, views
from cloudbox.orchestration.resources import PLUGINS
from cloudbox.orchestration.service import OrchestrationService

PREFIX = "/orchestration/v1"
ROOT = "/orchestration"
OBJECT = {"type": "object"}
Handler = Callable[..., Awaitable[Any]]


def version_document(base: str) -> dict[str, Any]:
    return {"versions": [{"id": "v1.0", "status": "CURRENT", "links": [{"href": base + "/v1/", "rel": "self"}]}]}


def mount_versions(app: Any) -> None:
    """GET /orchestration: Heat's versions document (300 Multiple Choices, as Heat answers it)."""

    async def orchestration_versions() -> Response:
        base = request.host_url.rstrip("/") + ROOT
        return Response(json.dumps(version_document(base)), status=300, content_type="application/json")

    app.add_url_rule(ROOT, endpoint="orchestration:versions", view_func=orchestration_versions, methods=["GET"])
    app.add_url_rule(ROOT + "/", endpoint="orchestration:versions/", view_func=orchestration_versions,
                     methods=["GET"])


def tenant(method: str, path: str, handler: Handler, **options: Any) -> Route:
    """A route under ``/{tenant_id}``, whose project must be the token's (or the caller an admin)."""

    async def endpoint(call: Call, tenant_id: str, **params: str) -> Any:
        if call.auth.project_id != tenant_id and not call.auth.is_cloud_admin:
            raise NotFound(f"The project {tenant_id[:40]} in the path is not the token's project.")
        return await handler(call, **params)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return Route(method, "/{tenant_id}" + path, endpoint, **options)


def truthy(call: Call, name: str, default: bool = False) -> bool:
    raw = call.query.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("true", "1", "yes", "on", "")


PARAM_TYPES = {"string": ("string", "String"), "integer": ("number", "Number"), "number": ("number", "Number"),
               "boolean": ("boolean", "Boolean"), "list": ("comma_delimited_list", "CommaDelimitedList"),
               "map": ("json", "Json")}


def property_schema(plugin: Any, name: str) -> dict[str, Any]:
    out = {"type": plugin.properties[name], "required": name in plugin.required,
           "update_allowed": name in plugin.update_allowed, "immutable": False, "description": ""}
    if name in plugin.defaults:
        out["default"] = plugin.defaults[name]
    return out


def type_template(type_name: str, plugin: Any, template_type: str) -> dict[str, Any]:
    """Heat's generated template of a type: a parameter per property, an output per attribute."""
    short = type_name.rsplit("::", 1)[-1]
    description = f"Initial template of {short}"
    params, props = {}, {}
    for name in sorted(plugin.properties):
        hot_type, cfn_type = PARAM_TYPES.get(plugin.properties[name], ("string", "String"))
        if template_type == "hot":
            params[name] = {"type": hot_type, "description": ""}
            if name in plugin.defaults:
                params[name]["default"] = plugin.defaults[name]
            props[name] = {"get_param": name}
        else:
            params[name] = {"Type": cfn_type, "Description": ""}
            if name in plugin.defaults:
                params[name]["Default"] = plugin.defaults[name]
            props[name] = {"Ref": name}
    attrs = sorted(plugin.attribute_names)
    if template_type == "hot":
        return {"heat_template_version": "2016-10-14", "description": description, "parameters": params,
                "resources": {short: {"type": type_name, "properties": props}},
                "outputs": {a: {"description": "", "value": {"get_attr": [short, a]}} for a in attrs}}
    return {"HeatTemplateFormatVersion": "2012-12-12", "Description": description, "Parameters": params,
            "Resources": {short: {"Type": type_name, "Properties": props}},
            "Outputs": {a: {"Description": "", "Value": {"Fn::GetAtt": [short, a]}} for a in attrs}}


def known_types(template: Any, env: Any, files: dict[str, Any]) -> None:
    """Every resource's type (after the environment's registry) is one this cloud serves, as create checks."""
    for name, data in template.raw_resources.items():
        kind = env.resource_type(data["type"], name)
        if kind not in PLUGINS and not (hot.is_template_name(kind) and kind in files):
            raise BadRequest(f"resources.{name}<{data['type']}>: The Resource Type ({kind}) could not be found.")


def build(svc: OrchestrationService) -> ApiSpec:
    base_of = lambda call: call.base  # noqa: E731  (links carry /{tenant}/stacks/NAME/ID)

    async def stack_of(call: Call, stack_name: str, stack_id: str | None = None) -> dict[str, Any]:
        if stack_id is None:
            return await svc.find(call.auth, stack_name)
        return await svc.find_named(call.auth, stack_name, stack_id)

    # --- stacks ----------------------------------------------------------------------------------
    async def list_stacks(call: Call) -> Any:
        limit, marker = call.page()
        rows = await svc.queries.list(call.auth, call.query, limit, marker)
        return {"stacks": [views.stack(base_of(call), r) for r in rows[:limit]]}

    async def create_stack(call: Call) -> Reply:
        stack = await svc.create(call.auth, call.body)
        url = views.stack_url(base_of(call), stack)
        return Reply({"stack": {"id": stack["id"], "links": [{"href": url, "rel": "self"}]}}, 201, {"Location": url})

    async def preview_stack(call: Call) -> Any:
        found = await svc.preview(call.auth, call.body)
        return {"stack": views.preview(base_of(call), found["stack"], found["resources"])}

    async def lookup_stack(call: Call, stack_name: str) -> Reply:
        stack = await svc.find(call.auth, stack_name)
        url = views.stack_url(base_of(call), stack)
        if call.request.query_string:
            url += "?" + call.request.query_string.decode()
        return Reply({"code": 302, "title": "Found", "explanation": url}, 302, {"Location": url})

    async def show_stack(call: Call, stack_name: str, stack_id: str) -> Any:
        stack = await stack_of(call, stack_name, stack_id)
        detail = await svc.queries.detail(stack, resolve_outputs=truthy(call, "resolve_outputs", True))
        return {"stack": views.stack(base_of(call), detail, detail=True)}

    def updater(patch: bool) -> Handler:
        async def update_stack(call: Call, stack_name: str, stack_id: str | None = None) -> Reply:
            await svc.update(call.auth, await stack_of(call, stack_name, stack_id), call.body, patch)
            return Reply(None, 202)

        return update_stack

    def update_previewer(patch: bool) -> Handler:
        async def preview_update(call: Call, stack_name: str, stack_id: str) -> Any:
            return await svc.preview_update(call.auth, await stack_of(call, stack_name, stack_id), call.body, patch)

        return preview_update

    async def delete_stack(call: Call, stack_name: str, stack_id: str) -> Reply:
        await svc.delete(call.auth, await stack_of(call, stack_name, stack_id))
        return Reply(None, 204)

    async def abandon_stack(call: Call, stack_name: str, stack_id: str) -> Any:
        return await svc.abandon(call.auth, await stack_of(call, stack_name, stack_id))

    async def stack_template(call: Call, stack_name: str, stack_id: str | None = None) -> Any:
        return (await stack_of(call, stack_name, stack_id))["template"]

    async def stack_environment(call: Call, stack_name: str, stack_id: str | None = None) -> Any:
        env = (await stack_of(call, stack_name, stack_id))["environment"] or {}
        return {"parameters": {}, "parameter_defaults": {}, "resource_registry": {"resources": {}},
                "encrypted_param_names": [], "event_sinks": [], **env}

    async def stack_files(call: Call, stack_name: str, stack_id: str | None = None) -> Any:
        return (await stack_of(call, stack_name, stack_id))["files"]

    # --- outputs ---------------------------------------------------------------------------------
    async def list_outputs(call: Call, stack_name: str, stack_id: str | None = None) -> Any:
        outputs = await svc.queries.outputs(await stack_of(call, stack_name, stack_id))
        return {"outputs": [{"output_key": o["output_key"], "description": o["description"]} for o in outputs]}

    async def show_output(call: Call, stack_name: str, output_key: str, stack_id: str | None = None) -> Any:
        return {"output": await svc.queries.output(await stack_of(call, stack_name, stack_id), output_key)}

    # --- resources -------------------------------------------------------------------------------
    async def list_resources(call: Call, stack_name: str, stack_id: str | None = None) -> Any:
        stack = await stack_of(call, stack_name, stack_id)
        detail = truthy(call, "with_detail")
        rows = await svc.queries.resources(stack)
        wanted = {k: call.query[k] for k in ("name", "type", "status", "action", "id") if call.query.get(k)}
        out = []
        for row in rows:
            view = views.resource(base_of(call), stack, row, detail)
            if ("name" in wanted and row["name"] != wanted["name"]) or \
                    ("type" in wanted and row["type"] != wanted["type"]) or \
                    ("status" in wanted and wanted["status"] not in (row["status"], view["resource_status"])) or \
                    ("action" in wanted and row["action"] != wanted["action"]):
                continue
            out.append(view)
        return {"resources": out}

    async def show_resource(call: Call, stack_name: str, resource_name: str, stack_id: str | None = None) -> Any:
        stack = await stack_of(call, stack_name, stack_id)
        return {"resource": views.resource(base_of(call), stack, await svc.queries.resource(stack, resource_name),
                                           detail=True)}

    async def mark_unhealthy(call: Call, stack_name: str, resource_name: str, stack_id: str | None = None) -> Reply:
        stack = await stack_of(call, stack_name, stack_id)
        await svc.writable(call.auth, stack, "resource:mark_unhealthy")
        await svc.mark_unhealthy(stack, resource_name, call.body)
        return Reply(None, 200)

    async def resource_metadata(call: Call, stack_name: str, resource_name: str, stack_id: str | None = None) -> Any:
        stack = await stack_of(call, stack_name, stack_id)
        row = await svc.queries.resource(stack, resource_name)
        return {"metadata": await api_software.resource_metadata(svc, stack, row)}

    # --- events ----------------------------------------------------------------------------------
    async def list_events(call: Call, stack_name: str, stack_id: str | None = None,
                          resource_name: str | None = None) -> Any:
        stack = await stack_of(call, stack_name, stack_id)
        limit, marker = call.page()
        rows = await svc.queries.events(stack, resource_name, call.query, limit, marker)
        return {"events": [views.event(base_of(call), stack, r) for r in rows[:limit]]}

    async def show_event(call: Call, stack_name: str, stack_id: str, resource_name: str, event_id: str) -> Any:
        stack = await stack_of(call, stack_name, stack_id)
        row = await svc.queries.event(stack, resource_name, event_id)
        return {"event": views.event(base_of(call), stack, row, detail=True)}

    # --- the language ----------------------------------------------------------------------------
    async def validate(call: Call) -> Any:
        body = call.body
        if not body.get("template"):
            raise BadRequest("No template specified" if not body.get("template_url") else
                             "template_url is not supported by this cloud: send the template itself.")
        files = body.get("files") or {}
        template = hot.parse_template(body["template"], files)
        check = await lookup.prepare(svc.caller_api(call.auth), template)
        env = hot.parse_environment(body.get("environment"), files)
        answer = hot.validate(template, env, check, body.get("parameters") or {}, files)
        known_types(template, env, files)
        return answer

    async def resource_types(call: Call) -> Any:
        names = sorted(PLUGINS)
        if call.query.get("name"):
            names = [n for n in names if call.query["name"] in n]
        if truthy(call, "with_description"):
            return {"resource_types": [{"resource_type": n, "description": PLUGINS[n].description} for n in names]}
        return {"resource_types": names}

    def plugin_of(type_name: str) -> Any:
        plugin = PLUGINS.get(type_name)
        if plugin is None:
            raise NotFound(f"The Resource Type ({type_name[:80]}) could not be found.")
        return plugin

    async def resource_type_template(call: Call, type_name: str) -> Any:
        plugin = plugin_of(type_name)
        template_type = (call.query.get("template_type") or "cfn").lower()
        if template_type not in ("hot", "cfn"):
            raise BadRequest(f"Template type is not supported: {template_type[:40]}")
        return type_template(type_name, plugin, template_type)

    async def show_resource_type(call: Call, type_name: str) -> Any:
        plugin = plugin_of(type_name)
        return {
            "resource_type": type_name, "description": plugin.description,
            "support_status": {"status": "SUPPORTED", "version": None, "message": None, "previous_status": None},
            "properties": {name: property_schema(plugin, name) for name in sorted(plugin.properties)},
            "attributes": {name: {"description": ""} for name in sorted(plugin.attribute_names)},
        }

    async def template_versions(call: Call) -> Any:
        return {"template_versions": hot.TEMPLATE_VERSIONS}

    async def template_functions(call: Call, template_version: str) -> Any:
        try:
            found = hot.template_functions(template_version, truthy(call, "with_condition_func"))
        except hot.HotError:
            raise NotFound(f"Template version {template_version[:60]} could not be found.") from None
        return {"template_functions": found}

    async def build_info(call: Call) -> Any:
        return {"api": {"revision": "cloudbox"}, "engine": {"revision": "cloudbox"}}

    async def signal_resource(call: Call, stack_name: str, resource_name: str, stack_id: str | None = None) -> Reply:
        stack = await stack_of(call, stack_name, stack_id)
        await svc.writable(call.auth, stack, "resource:signal")
        await svc.signal(stack, resource_name, call.body)
        return Reply(None, 200)

    async def stack_actions(call: Call, stack_name: str, stack_id: str | None = None) -> Reply:
        await svc.act(call.auth, await stack_of(call, stack_name, stack_id), call.body)
        return Reply(None, 200)

    async def signal_url(call: Call, stack_id: str, handle_id: str) -> Reply:
        await svc.signal_by_url(stack_id, handle_id, call.query.get("signature", ""), call.body)
        return Reply(None, 200)

    named = "/stacks/{stack_name}/{stack_id}"
    by_name = "/stacks/{stack_name}"
    resource = "/resources/{resource_name}"
    routes = [
        tenant("GET", "/stacks", list_stacks, summary="List stacks",
               query=("limit", "marker", "sort_keys", "sort_dir", "global_tenant", "name", "status", "action", "id",
                      "tenant", "show_nested", "show_hidden", "show_deleted", "tags", "tags_any", "not_tags")),
        tenant("GET", "/stacks/detail", list_stacks, summary="List stacks with details",
               query=("limit", "marker", "sort_keys", "sort_dir", "global_tenant", "name", "status")),
        tenant("POST", "/stacks", create_stack, summary="Create a stack", body=OBJECT, status=201),
        tenant("POST", "/stacks/preview", preview_stack, summary="What a create would make", body=OBJECT),
        tenant("GET", by_name, lookup_stack, summary="Find a stack by name or id (302 to NAME/ID)", status=302,
               query=("resolve_outputs",)),
        tenant("PUT", by_name, updater(False), summary="Update a stack (by name or id)", body=OBJECT, status=202),
        tenant("PATCH", by_name, updater(True), summary="Update a stack, keeping what is not sent", body=OBJECT,
               status=202),
        tenant("DELETE", by_name, lookup_stack, summary="Find a stack to delete (302 to NAME/ID, as Heat)", status=302),
        tenant("GET", named, show_stack, summary="Show a stack", query=("resolve_outputs",)),
        tenant("PUT", named, updater(False), summary="Update a stack", body=OBJECT, status=202),
        tenant("PATCH", named, updater(True), summary="Update a stack, keeping what is not sent", body=OBJECT,
               status=202),
        tenant("DELETE", named, delete_stack, summary="Delete a stack", status=204),
        tenant("PUT", named + "/preview", update_previewer(False), summary="The plan of an update", body=OBJECT),
        tenant("PATCH", named + "/preview", update_previewer(True), summary="The plan of an update (existing)",
               body=OBJECT),
        tenant("DELETE", named + "/abandon", abandon_stack, summary="Forget a stack, keeping what it made"),
    ]
    for path in (by_name, named):
        routes += [
            tenant("GET", path + "/template", stack_template, summary="A stack's template"),
            tenant("GET", path + "/environment", stack_environment, summary="A stack's environment"),
            tenant("GET", path + "/files", stack_files, summary="The files sent with a stack"),
            tenant("GET", path + "/outputs", list_outputs, summary="A stack's outputs"),
            tenant("GET", path + "/outputs/{output_key}", show_output, summary="One output's value"),
            tenant("GET", path + "/resources", list_resources, summary="A stack's resources",
                   query=("with_detail", "nested_depth", "name", "type", "status", "action", "id")),
            tenant("GET", path + resource, show_resource, summary="One resource of a stack"),
            tenant("PATCH", path + resource, mark_unhealthy, summary="Mark a resource unhealthy (CHECK_FAILED) or not",
                   body=OBJECT),
            tenant("GET", path + resource + "/metadata", resource_metadata, summary="A resource's metadata"),
            tenant("POST", path + "/actions", stack_actions, summary="Suspend, resume or check a stack", body=OBJECT),
            tenant("GET", path + "/events", list_events, summary="A stack's events",
                   query=("limit", "marker", "sort_dir", "sort_keys", "resource_status", "resource_action",
                          "resource_type", "resource_name", "physical_resource_id", "nested_depth")),
        ]
    routes += [
        tenant("GET", named + resource + "/events", list_events, summary="A resource's events",
               query=("limit", "marker", "sort_dir", "resource_status", "resource_action", "nested_depth")),
        tenant("GET", named + resource + "/events/{event_id}", show_event, summary="One event"),
        tenant("POST", named + resource + "/signal", signal_resource, summary="Signal a resource (a wait handle)"),
        Route("POST", "/signal/{stack_id}/{handle_id}", signal_url, access="public", query=("signature",),
              summary="A wait condition handle's signed URL, called from a guest"),
        tenant("POST", "/validate", validate, summary="Check a template", body=OBJECT),
        tenant("GET", "/resource_types", resource_types, summary="The resource types stacks can hold",
               query=("name", "version", "support_status", "with_description")),
        tenant("GET", "/resource_types/{type_name}", show_resource_type, summary="One resource type's schema"),
        tenant("GET", "/resource_types/{type_name}/template", resource_type_template, query=("template_type",),
               summary="A template made of a resource type's properties and attributes"),
        tenant("GET", "/template_versions", template_versions, summary="The template versions understood"),
        tenant("GET", "/template_versions/{template_version}/functions", template_functions,
               summary="The functions of a template version", query=("with_condition_func",)),
        tenant("GET", "/build_info", build_info, summary="What builds this service"),
    ]
    routes += api_software.routes(svc, tenant)
    return ApiSpec("orchestration", PREFIX, "heat", routes)


def alias() -> ApiSpec:
    """The catalog entry: Heat's URL names the project, as its clients expect it there."""
    return ApiSpec("heat", PREFIX + "/%(project_id)s", "heat", [], catalog=("orchestration", "heat"))

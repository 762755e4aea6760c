"""Heat v1 response bodies, by route (paths under /orchestration/v1/{tenant_id})."""

from __future__ import annotations

from cloudbox.api.responses.shapes import (
    ANY_OBJ, BOOL, NINT, NSTR, STR, STR_MAP, STRS, Doc, array, obj, wrap,
)

P = "/orchestration/v1/{tenant_id}"
LINKS = array(obj({"href": STR, "rel": STR}))
ANY = {}  # an output's value, a template: any JSON
STACK = obj({"id": STR, "stack_name": STR, "description": STR, "creation_time": STR, "updated_time": NSTR,
             "stack_status": STR, "stack_status_reason": STR, "links": LINKS},
            {"deletion_time": NSTR, "project": STR, "stack_owner": NSTR, "stack_user_project_id": STR,
             "parent": NSTR, "tags": {"type": ["array", "null"], "items": STR}})
OUTPUT = obj({"output_key": STR, "description": STR}, {"output_value": ANY, "output_error": STR})
STACK_DETAIL = obj({**STACK["properties"], "parameters": obj({}, extra=ANY), "disable_rollback": BOOL,
                    "timeout_mins": NINT}, {"outputs": array(OUTPUT), "capabilities": array(ANY_OBJ),
                                            "notification_topics": array(ANY_OBJ), "template_description": STR})
PREVIEW = obj({"id": STR, "stack_name": STR, "resources": array(ANY_OBJ), "parameters": obj({}, extra=ANY)})
RESOURCE = obj({"resource_name": STR, "logical_resource_id": STR, "physical_resource_id": STR, "resource_type": STR,
                "resource_status": STR, "resource_status_reason": STR, "creation_time": STR, "updated_time": STR,
                "required_by": STRS, "links": LINKS},
               {"attributes": ANY_OBJ, "description": STR, "metadata": ANY_OBJ})
EVENT = obj({"id": STR, "event_time": STR, "resource_name": STR, "logical_resource_id": STR,
             "physical_resource_id": STR, "resource_status": STR, "resource_status_reason": STR, "links": LINKS},
            {"resource_type": STR, "resource_properties": ANY_OBJ})
CHANGE = obj({"resource_name": STR, "resource_type": STR, "resource_action": STR, "resource_status": STR,
              "physical_resource_id": STR},
             {"changes": array(obj({"property": STR, "in_place": BOOL}, {"old": ANY, "new": ANY})),
              "reason": STR, "resource_identity": ANY_OBJ, "stack_identity": ANY_OBJ, "stack_name": STR})
PLAN = obj({"resource_changes": obj({k: array(CHANGE) for k in ("added", "updated", "replaced", "deleted",
                                                                "unchanged")})})
VALIDATED = obj({"Parameters": ANY_OBJ}, {"Description": STR, "ParameterGroups": array(ANY_OBJ),
                                          "Environment": ANY_OBJ})
ABANDONED = obj({"id": STR, "name": STR, "resources": ANY_OBJ, "template": ANY_OBJ}, {"environment": ANY_OBJ})
TYPE = obj({"resource_type": STR, "properties": ANY_OBJ, "attributes": ANY_OBJ},
           {"description": STR, "support_status": ANY_OBJ})
FOUND = obj({"code": {"const": 302}, "title": STR, "explanation": STR})
VERSIONS = obj({"versions": array(obj({"id": STR, "status": STR, "links": LINKS}))})
CONFIG = obj({"id": STR, "name": STR, "group": STR, "creation_time": STR},
             {"config": ANY, "inputs": array(ANY_OBJ), "outputs": array(ANY_OBJ), "options": ANY_OBJ})
DEPLOYMENT = obj({k: STR for k in ("id", "config_id", "server_id", "action", "status", "status_reason",
                                   "creation_time")} | {"input_values": ANY_OBJ, "output_values": ANY_OBJ,
                                                        "updated_time": NSTR})


def docs() -> dict[tuple[str, str], Doc]:
    named, by_name = "/stacks/{stack_name}/{stack_id}", "/stacks/{stack_name}"
    resource = "/resources/{resource_name}"
    out: dict[tuple[str, str], Doc] = {
        ("GET", "/orchestration"): Doc({300: VERSIONS}, anonymous=True),
        ("GET", "/stacks"): Doc({200: obj({"stacks": array(STACK)})}, errors=(404,)),
        ("GET", "/stacks/detail"): Doc({200: obj({"stacks": array(STACK)})}, errors=(404,)),
        ("POST", "/stacks"): Doc({201: wrap("stack", obj({"id": STR, "links": LINKS}))}, errors=(404,)),
        ("POST", "/stacks/preview"): Doc({200: wrap("stack", PREVIEW)}, errors=(404,)),
        ("GET", by_name): Doc({302: FOUND}),
        ("PUT", by_name): Doc({202: None}),
        ("PATCH", by_name): Doc({202: None}),
        ("DELETE", by_name): Doc({302: FOUND}),  # Heat's: the client deletes the Location
        ("GET", named): Doc({200: wrap("stack", STACK_DETAIL)}),
        ("PUT", named): Doc({202: None}),
        ("PATCH", named): Doc({202: None}),
        ("DELETE", named): Doc({204: None}),
        ("PUT", named + "/preview"): Doc({200: PLAN}),
        ("PATCH", named + "/preview"): Doc({200: PLAN}),
        ("DELETE", named + "/abandon"): Doc({200: ABANDONED}),
        ("GET", named + resource + "/events"): Doc({200: obj({"events": array(EVENT)})}),
        ("GET", named + resource + "/events/{event_id}"): Doc({200: wrap("event", EVENT)}),
        ("POST", named + resource + "/signal"): Doc({200: None}),
        ("POST", "/validate"): Doc({200: VALIDATED}, errors=(404,)),
        ("GET", "/resource_types"): Doc({200: obj({"resource_types": {"type": "array"}})}, errors=(404,)),
        ("GET", "/resource_types/{type_name}"): Doc({200: TYPE}),
        ("GET", "/resource_types/{type_name}/template"): Doc({200: ANY_OBJ}),
        ("GET", "/template_versions"): Doc({200: obj({"template_versions": array(
            obj({"version": STR, "type": STR, "aliases": STRS}))})}, errors=(404,)),
        ("GET", "/template_versions/{template_version}/functions"): Doc({200: obj({"template_functions": array(
            obj({"functions": STR, "description": STR}))})}),
        ("GET", "/build_info"): Doc({200: obj({"api": STR_MAP, "engine": STR_MAP})}, errors=(404,)),
        # software configs and deployments (cloudbox/orchestration/api_software.py)
        ("GET", "/software_configs"): Doc({200: obj({"software_configs": array(CONFIG)})}),
        ("POST", "/software_configs"): Doc({200: wrap("software_config", CONFIG)}),
        ("GET", "/software_configs/{config_id}"): Doc({200: wrap("software_config", CONFIG)}),
        ("DELETE", "/software_configs/{config_id}"): Doc({204: None}),
        ("GET", "/software_deployments"): Doc({200: obj({"software_deployments": array(DEPLOYMENT)})}),
        ("POST", "/software_deployments"): Doc({200: wrap("software_deployment", DEPLOYMENT)}),
        ("GET", "/software_deployments/metadata/{server_id}"): Doc({200: obj({"metadata": array(CONFIG)})}),
        ("GET", "/software_deployments/{deployment_id}"): Doc({200: wrap("software_deployment", DEPLOYMENT)}),
        ("PUT", "/software_deployments/{deployment_id}"): Doc({200: wrap("software_deployment", DEPLOYMENT)}),
        ("DELETE", "/software_deployments/{deployment_id}"): Doc({204: None}),
    }
    for base in (by_name, named):
        out.update({
            ("GET", base + "/template"): Doc({200: ANY_OBJ}),
            ("GET", base + "/environment"): Doc({200: ANY_OBJ}),
            ("GET", base + "/files"): Doc({200: obj({}, extra=STR)}),
            ("GET", base + "/outputs"): Doc({200: obj({"outputs": array(OUTPUT)})}),
            ("GET", base + "/outputs/{output_key}"): Doc({200: wrap("output", OUTPUT)}),
            ("GET", base + "/resources"): Doc({200: obj({"resources": array(RESOURCE)})}),
            ("GET", base + resource): Doc({200: wrap("resource", RESOURCE)}),
            ("PATCH", base + resource): Doc({200: None}, errors=(409,)),  # mark_unhealthy
            ("GET", base + resource + "/metadata"): Doc({200: obj({"metadata": ANY_OBJ})}),
            ("GET", base + "/events"): Doc({200: obj({"events": array(EVENT)})}),
            ("POST", base + "/actions"): Doc({200: None}),
        })
    found = {(method, path if path == "/orchestration" else P + path): doc for (method, path), doc in out.items()}
    found[("POST", "/orchestration/v1/signal/{stack_id}/{handle_id}")] = Doc({200: None}, anonymous=True)
    return found


__all__ = ["docs"]

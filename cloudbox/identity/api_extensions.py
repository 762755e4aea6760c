"""Keystone v3 routes of its other resources: credentials and users' EC2 credentials (OS-EC2),
policies, endpoint groups (OS-EP-FILTER), OAuth1 consumers (OS-OAUTH1; the consumer registry,
not the delegation flow), domain-specific configuration, project tags, and regions made with
the id the path names."""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.identity import core, models
from cloudbox.identity import core_extensions as x
from cloudbox.identity.api_common import Handler, Render, deleter, shower
from cloudbox.identity.service import IdentityService


# --- credentials -------------------------------------------------------------------------------
async def create_credential(svc: IdentityService, call: Call) -> Reply:
    row = await svc.extensions.create_credential(call.auth, call.body["credential"])
    return Reply({"credential": x.render_credential(row, call.base)}, 201)


async def list_credentials(svc: IdentityService, call: Call) -> Any:
    filters = {k: call.query[k] for k in ("user_id", "type") if k in call.query}
    limit, marker = call.page()
    rows = await svc.extensions.credentials(call.auth, filters, marker, limit)
    rows, links = call.paged(rows, limit, "/credentials")
    return {"credentials": [x.render_credential(r, call.base) for r in rows], "links": links}


async def get_credential(svc: IdentityService, call: Call, credential_id: str) -> Any:
    row = await svc.extensions.credential(call.auth, credential_id)
    return {"credential": x.render_credential(row, call.base)}


async def update_credential(svc: IdentityService, call: Call, credential_id: str) -> Any:
    row = await svc.extensions.update_credential(call.auth, credential_id, call.body["credential"])
    return {"credential": x.render_credential(row, call.base)}


async def delete_credential(svc: IdentityService, call: Call, credential_id: str) -> Reply:
    await svc.extensions.delete_credential(call.auth, credential_id)
    return Reply(None, 204)


async def create_ec2(svc: IdentityService, call: Call, user_id: str) -> Reply:
    row = await svc.extensions.create_ec2(call.auth, user_id, call.body["tenant_id"])
    return Reply({"credential": x.render_ec2(row, call.base)}, 201)


async def list_ec2(svc: IdentityService, call: Call, user_id: str) -> Any:
    rows = await svc.extensions.ec2_credentials(call.auth, user_id)
    return {"credentials": [x.render_ec2(r, call.base) for r in rows],
            "links": core.unpaged_links(f"{call.base}/users/{user_id}/credentials/OS-EC2")}


async def get_ec2(svc: IdentityService, call: Call, user_id: str, access: str) -> Any:
    row = await svc.extensions.ec2_credential(call.auth, user_id, access)
    return {"credential": x.render_ec2(row, call.base)}


async def delete_ec2(svc: IdentityService, call: Call, user_id: str, access: str) -> Reply:
    await svc.extensions.delete_ec2(call.auth, user_id, access)
    return Reply(None, 204)


# --- policies, endpoint groups, consumers: listed, shown and deleted alike ---------------------------


def lister(entity: str, plural: str, path: str, render: Render, filters: tuple[str, ...]) -> Handler:
    async def handler(svc: IdentityService, call: Call) -> Any:
        wanted = {k: call.query[k] for k in filters if k in call.query}
        limit, marker = call.page()
        rows = await svc.extensions.list(call.auth, entity, wanted, marker, limit)
        rows, links = call.paged(rows, limit, path)
        return {plural: [render(r, call.base) for r in rows], "links": links}

    handler.__name__ = f"list_{plural}"
    return handler


async def create_policy(svc: IdentityService, call: Call) -> Reply:
    row = await svc.extensions.create_policy(call.auth, call.body["policy"])
    return Reply({"policy": x.render_policy(row, call.base)}, 201)


async def update_policy(svc: IdentityService, call: Call, policy_id: str) -> Any:
    row = await svc.extensions.update_policy(call.auth, policy_id, call.body["policy"])
    return {"policy": x.render_policy(row, call.base)}


async def create_endpoint_group(svc: IdentityService, call: Call) -> Reply:
    row = await svc.extensions.create_endpoint_group(call.auth, call.body["endpoint_group"])
    return Reply({"endpoint_group": x.render_endpoint_group(row, call.base)}, 201)


async def check_endpoint_group(svc: IdentityService, call: Call, endpoint_group_id: str) -> Reply:
    await svc.extensions.show(call.auth, "endpoint_group", endpoint_group_id)
    return Reply(None, 200)


async def update_endpoint_group(svc: IdentityService, call: Call, endpoint_group_id: str) -> Any:
    row = await svc.extensions.update_endpoint_group(call.auth, endpoint_group_id, call.body["endpoint_group"])
    return {"endpoint_group": x.render_endpoint_group(row, call.base)}


async def endpoint_group_endpoints(svc: IdentityService, call: Call, endpoint_group_id: str) -> Any:
    rows = await svc.extensions.endpoint_group_endpoints(call.auth, endpoint_group_id)
    return {"endpoints": [core.render_endpoint(r, call.base) for r in rows],
            "links": core.unpaged_links(f"{call.base}/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/endpoints")}


async def create_consumer(svc: IdentityService, call: Call) -> Reply:
    row, secret = await svc.extensions.create_consumer(call.auth, call.body["consumer"])
    return Reply({"consumer": {**x.render_consumer(row, call.base), "secret": secret}}, 201)


async def update_consumer(svc: IdentityService, call: Call, consumer_id: str) -> Any:
    row = await svc.extensions.update_consumer(call.auth, consumer_id, call.body["consumer"])
    return {"consumer": x.render_consumer(row, call.base)}


# --- domain-specific configuration ------------------------------------------------------------------
async def put_domain_config(svc: IdentityService, call: Call, domain_id: str) -> Reply:
    row, made = await svc.extensions.put_domain_config(call.auth, domain_id, call.body["config"])
    return Reply({"config": x.visible_config(row["config"])}, 201 if made else 200)


async def get_domain_config(svc: IdentityService, call: Call, domain_id: str, group: str | None = None,
                            option: str | None = None) -> Any:
    return {"config": await svc.extensions.domain_config(call.auth, domain_id, group, option)}


async def update_domain_config(svc: IdentityService, call: Call, domain_id: str, group: str | None = None,
                               option: str | None = None) -> Any:
    return {"config": await svc.extensions.update_domain_config(call.auth, domain_id, call.body["config"], group, option)}


async def delete_domain_config(svc: IdentityService, call: Call, domain_id: str, group: str | None = None,
                               option: str | None = None) -> Reply:
    await svc.extensions.delete_domain_config(call.auth, domain_id, group, option)
    return Reply(None, 204)


async def default_config(svc: IdentityService, call: Call, group: str | None = None, option: str | None = None) -> Any:
    return {"config": svc.extensions.default_config(call.auth, group, option)}


# --- project tags and regions by id ---------------------------------------------------------------------
async def list_project_tags(svc: IdentityService, call: Call, project_id: str) -> Any:
    return {"tags": await svc.extensions.project_tags(call.auth, project_id)}


async def set_project_tags(svc: IdentityService, call: Call, project_id: str) -> Any:
    return {"tags": await svc.extensions.set_project_tags(call.auth, project_id, call.body["tags"])}


async def clear_project_tags(svc: IdentityService, call: Call, project_id: str) -> Reply:
    await svc.extensions.set_project_tags(call.auth, project_id, [])
    return Reply(None, 204)


async def check_project_tag(svc: IdentityService, call: Call, project_id: str, tag: str) -> Reply:
    await svc.extensions.check_project_tag(call.auth, project_id, tag)
    return Reply(None, 204)


async def add_project_tag(svc: IdentityService, call: Call, project_id: str, tag: str) -> Reply:
    x.check_tag(tag)
    await svc.extensions.tag_project(call.auth, project_id, tag, add=True)
    return Reply(None, 201, {"Location": f"{call.base}/projects/{project_id}/tags/{tag}"})


async def remove_project_tag(svc: IdentityService, call: Call, project_id: str, tag: str) -> Reply:
    await svc.extensions.tag_project(call.auth, project_id, tag, add=False)
    return Reply(None, 204)


async def put_region(svc: IdentityService, call: Call, region_id: str) -> Reply:
    row = await svc.resources.put_region(call.auth, region_id, call.body["region"])
    return Reply({"region": core.render_region(row, call.base)}, 201)


_EC2 = "/users/{user_id}/credentials/OS-EC2"
_EG = "/OS-EP-FILTER/endpoint_groups"
_OAUTH = "/OS-OAUTH1/consumers"
_CONFIG = "/domains/{domain_id}/config"
ROUTES = [
    Route("POST", "/credentials", create_credential, body=models.CREDENTIAL_CREATE, status=201),
    Route("GET", "/credentials", list_credentials, query=("user_id", "type", "limit", "marker")),
    Route("GET", "/credentials/{credential_id}", get_credential),
    Route("PATCH", "/credentials/{credential_id}", update_credential, body=models.CREDENTIAL_UPDATE),
    Route("DELETE", "/credentials/{credential_id}", delete_credential, status=204),
    Route("POST", _EC2, create_ec2, body=models.EC2_CREATE, status=201),
    Route("GET", _EC2, list_ec2),
    Route("GET", _EC2 + "/{access}", get_ec2),
    Route("DELETE", _EC2 + "/{access}", delete_ec2, status=204),
    Route("POST", "/policies", create_policy, body=models.POLICY_CREATE, status=201),
    Route("GET", "/policies", lister("policy", "policies", "/policies", x.render_policy, ("type",)),
          query=("type", "limit", "marker")),
    Route("GET", "/policies/{policy_id}", shower("policy", x.render_policy, "extensions")),
    Route("PATCH", "/policies/{policy_id}", update_policy, body=models.POLICY_UPDATE),
    Route("DELETE", "/policies/{policy_id}", deleter("policy", "extensions"), status=204),
    Route("POST", _EG, create_endpoint_group, body=models.ENDPOINT_GROUP_CREATE, status=201),
    Route("GET", _EG, lister("endpoint_group", "endpoint_groups", _EG, x.render_endpoint_group, ("name",)),
          query=("name", "limit", "marker")),
    Route("GET", _EG + "/{endpoint_group_id}", shower("endpoint_group", x.render_endpoint_group, "extensions")),
    Route("HEAD", _EG + "/{endpoint_group_id}", check_endpoint_group),
    Route("PATCH", _EG + "/{endpoint_group_id}", update_endpoint_group, body=models.ENDPOINT_GROUP_UPDATE),
    Route("DELETE", _EG + "/{endpoint_group_id}", deleter("endpoint_group", "extensions"), status=204),
    Route("GET", _EG + "/{endpoint_group_id}/endpoints", endpoint_group_endpoints),
    Route("POST", _OAUTH, create_consumer, body=models.CONSUMER_CREATE, status=201),
    Route("GET", _OAUTH, lister("consumer", "consumers", _OAUTH, x.render_consumer, ()), query=("limit", "marker")),
    Route("GET", _OAUTH + "/{consumer_id}", shower("consumer", x.render_consumer, "extensions")),
    Route("PATCH", _OAUTH + "/{consumer_id}", update_consumer, body=models.CONSUMER_UPDATE),
    Route("DELETE", _OAUTH + "/{consumer_id}", deleter("consumer", "extensions"), status=204),
    Route("GET", "/domains/config/default", default_config),
    Route("GET", "/domains/config/{group}/default", default_config),
    Route("GET", "/domains/config/{group}/{option}/default", default_config),
    Route("PUT", _CONFIG, put_domain_config, body=models.DOMAIN_CONFIG, status=201),
    Route("GET", _CONFIG, get_domain_config),
    Route("PATCH", _CONFIG, update_domain_config, body=models.DOMAIN_CONFIG),
    Route("DELETE", _CONFIG, delete_domain_config, status=204),
    Route("GET", _CONFIG + "/{group}", get_domain_config),
    Route("PATCH", _CONFIG + "/{group}", update_domain_config, body=models.DOMAIN_CONFIG),
    Route("DELETE", _CONFIG + "/{group}", delete_domain_config, status=204),
    Route("GET", _CONFIG + "/{group}/{option}", get_domain_config),
    Route("PATCH", _CONFIG + "/{group}/{option}", update_domain_config, body=models.DOMAIN_CONFIG),
    Route("DELETE", _CONFIG + "/{group}/{option}", delete_domain_config, status=204),
    Route("GET", "/projects/{project_id}/tags", list_project_tags),
    Route("PUT", "/projects/{project_id}/tags", set_project_tags, body=models.PROJECT_TAGS),
    Route("DELETE", "/projects/{project_id}/tags", clear_project_tags, status=204),
    Route("GET", "/projects/{project_id}/tags/{tag}", check_project_tag, status=204),
    Route("HEAD", "/projects/{project_id}/tags/{tag}", check_project_tag, status=204),
    Route("PUT", "/projects/{project_id}/tags/{tag}", add_project_tag, status=201),
    Route("DELETE", "/projects/{project_id}/tags/{tag}", remove_project_tag, status=204),
    Route("PUT", "/regions/{region_id}", put_region, body=models.REGION_PUT, status=201),
]

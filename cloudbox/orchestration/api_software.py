"""Heat v1's software configs and deployments at /orchestration/v1/{tenant_id} (``routes``, added by
api.py's ``build``), and a server resource's metadata (its deployments, as Heat puts them there).

Heat answers a create with 200 (not 201) and the object; python-heatclient and the Tempest
plugin expect exactly that.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.orchestration.software import SoftwareService, config_view, deployment_view

OBJECT = {"type": "object"}
SERVER = "OS::Nova::Server"


async def resource_metadata(svc: Any, stack: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """A resource's metadata: a server's holds its deployments (what os-collect-config reads in Heat)."""
    if row["type"] != SERVER or not row["physical_id"]:
        return {}
    return {"deployments": await SoftwareService(svc).server_metadata(stack["project_id"], row["physical_id"])}


def routes(svc: Any, tenant: Callable[..., Route]) -> list[Route]:
    soft = SoftwareService(svc)

    async def list_configs(call: Call) -> Any:
        limit, marker = call.page()
        rows = await soft.list_configs(call.auth, limit, marker)
        return {"software_configs": [config_view(r, detail=False) for r in rows[:limit]]}

    async def create_config(call: Call) -> Any:
        return {"software_config": config_view(await soft.create_config(call.auth, call.body))}

    async def show_config(call: Call, config_id: str) -> Any:
        return {"software_config": config_view(await soft.config(call.auth, config_id))}

    async def delete_config(call: Call, config_id: str) -> Reply:
        await soft.delete_config(call.auth, config_id)
        return Reply(None, 204)

    async def list_deployments(call: Call) -> Any:
        limit, marker = call.page()
        rows = await soft.list_deployments(call.auth, call.query.get("server_id"), limit, marker)
        return {"software_deployments": [deployment_view(r) for r in rows[:limit]]}

    async def create_deployment(call: Call) -> Any:
        return {"software_deployment": deployment_view(await soft.create_deployment(call.auth, call.body))}

    async def show_deployment(call: Call, deployment_id: str) -> Any:
        return {"software_deployment": deployment_view(await soft.deployment(call.auth, deployment_id))}

    async def update_deployment(call: Call, deployment_id: str) -> Any:
        row = await soft.update_deployment(call.auth, deployment_id, call.body)
        return {"software_deployment": deployment_view(row)}

    async def delete_deployment(call: Call, deployment_id: str) -> Reply:
        await soft.delete_deployment(call.auth, deployment_id)
        return Reply(None, 204)

    async def server_metadata(call: Call, server_id: str) -> Any:
        return {"metadata": await soft.metadata(call.auth, server_id)}

    configs, deployments = "/software_configs", "/software_deployments"
    return [
        tenant("GET", configs, list_configs, summary="The project's software configs", query=("limit", "marker")),
        tenant("POST", configs, create_config, summary="Make a software config (immutable)", body=OBJECT),
        tenant("GET", configs + "/{config_id}", show_config, summary="One software config"),
        tenant("DELETE", configs + "/{config_id}", delete_config, summary="Delete a software config no deployment "
               "uses", status=204),
        tenant("GET", deployments, list_deployments, summary="The project's software deployments",
               query=("server_id", "limit", "marker")),
        tenant("POST", deployments, create_deployment, summary="Deploy a config to a server", body=OBJECT),
        tenant("GET", deployments + "/metadata/{server_id}", server_metadata,
               summary="A server's deployments, as its configuration agent reads them"),
        tenant("GET", deployments + "/{deployment_id}", show_deployment, summary="One software deployment"),
        tenant("PUT", deployments + "/{deployment_id}", update_deployment,
               summary="Update a deployment (a server reports its status and outputs)", body=OBJECT),
        tenant("DELETE", deployments + "/{deployment_id}", delete_deployment, summary="Delete a software deployment",
               status=204),
    ]

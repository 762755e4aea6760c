"""Heat's software configs and deployments: the service behind /software_configs and
/software_deployments, and what a server's deployments look like to the server.

A config is a script or document with its inputs and outputs; it never changes (Heat's are
immutable). A deployment puts a config on a server (``server_id``: any text, as Heat keeps it)
with input values, and carries back what the server reported (``output_values``, a status).
Both belong to a project: another project's are a 404, as if they did not exist.

A server's configuration agent reads its deployments (``GET /software_deployments/metadata/
{server_id}``, or the server resource's metadata in its stack), runs each config and reports:
with a token through ``PUT /software_deployments/{id}``, or, from a guest holding no token, through
the signed URL the deployment resource put in the config's inputs (``deploy_signal_id``; the same
``/orchestration/v1/signal/...`` path a wait handle answers, see ``signal``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Mapping

from cloudbox.errors import BadRequest, Forbidden, NotFound
from cloudbox.identity.core import require
from cloudbox.orchestration import commands_software as c
from cloudbox.orchestration import software_store as s
from cloudbox.orchestration.commands import SignalResource

UNGROUPED = "Heat::Ungrouped"
INPUT_TYPES = ("String", "Number", "CommaDelimitedList", "Json", "Boolean")
STATUSES = ("IN_PROGRESS", "COMPLETE", "FAILED")
STANDARD_OUTPUTS = ("deploy_stdout", "deploy_stderr", "deploy_status_code")
DEPLOYMENT_TYPES = frozenset({"OS::Heat::SoftwareDeployment", "OS::Heat::StructuredDeployment"})
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_TEXT = 255


# --- views (pure) --------------------------------------------------------------------------------
def config_view(row: Mapping[str, Any], detail: bool = True) -> dict[str, Any]:
    out = {"id": row["id"], "name": row["name"], "group": row["config_group"], "creation_time": row["created_at"]}
    if detail:
        out.update({"config": row["config"], "inputs": row["inputs"], "outputs": row["outputs"],
                    "options": row["options"]})
    return out


def deployment_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "config_id": row["config_id"], "server_id": row["server_id"],
            "input_values": row["input_values"], "output_values": row["output_values"], "action": row["action"],
            "status": row["status"], "status_reason": row["status_reason"], "creation_time": row["created_at"],
            "updated_time": row["updated_at"]}


def metadata_item(deployment: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """A deployment as its server reads it: the config, each input with its value (the
    deployment's ``input_values`` fill what the config leaves without one)."""
    values = deployment["input_values"] or {}
    inputs = []
    for item in config["inputs"]:
        item = dict(item)
        if "value" not in item:
            item["value"] = values.get(item["name"], item.get("default"))
        inputs.append(item)
    return {**config_view(config), "inputs": inputs}


# --- checks of what a request sends ----------------------------------------------------------------
def _text(body: Mapping[str, Any], key: str, default: str | None = None, required: bool = False,
          limit: int = MAX_TEXT) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{key} is required.")
        return default or ""
    if not isinstance(value, str) or (required and not value) or len(value) > limit:
        raise BadRequest(f"{key} must be a text of 1 to {limit} characters." if required
                         else f"{key} must be a text of at most {limit} characters.")
    return value


def _map(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{key} must be a map.")
    return value


def checked_items(body: Mapping[str, Any], key: str, allowed: Mapping[str, type | tuple[type, ...]]) -> list[dict]:
    """``inputs`` or ``outputs``: a list of maps, each with a name, a known type and only known keys."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{key} must be a list.")
    seen: set[str] = set()
    out = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be a map.")
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            raise BadRequest(f"{where}: unknown key {str(unknown[0])[:40]!r}.")
        name = item.get("name")
        if not isinstance(name, str) or not name or len(name) > MAX_TEXT:
            raise BadRequest(f"{where}.name must be a text of 1 to {MAX_TEXT} characters.")
        if name in seen:
            raise BadRequest(f"{where}: the name {name!r} is given twice.")
        seen.add(name)
        for field, kind in allowed.items():
            if field in item and item[field] is not None and not isinstance(item[field], kind):
                raise BadRequest(f"{where}.{field} has the wrong type.")
        kind = item.get("type") or "String"
        if kind not in INPUT_TYPES:
            raise BadRequest(f"{where}.type must be one of {', '.join(INPUT_TYPES)}, not {str(kind)[:40]!r}.")
        out.append({**item, "type": kind})
    return out


INPUT_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str, "type": str, "description": str, "default": object, "value": object, "replace_on_change": bool}
OUTPUT_KEYS: dict[str, type | tuple[type, ...]] = {"name": str, "type": str, "description": str, "error_output": bool}


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def _new_id(body: Mapping[str, Any]) -> str:
    """A fresh id, or the one the caller chose (cloudbox: a stack's resources choose theirs, so
    that a create cut short by a crash finds what it made)."""
    chosen = body.get("id")
    if chosen is None:
        return str(uuid.uuid4())
    if not isinstance(chosen, str) or not UUID.match(chosen):
        raise BadRequest("id must be a UUID (lower case, with dashes).")
    return chosen


def _status(body: Mapping[str, Any], default: str | None) -> str | None:
    value = body.get("status")
    if value is None:  # not sent, or null: the default
        return default
    if value not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}, not {str(value)[:40]!r}.")
    return str(value)


class SoftwareService:
    """Stateless over the orchestration service (its state engine, clock and node)."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc

    # --- who sees what ----------------------------------------------------------------------------
    @staticmethod
    def _project(ctx: Any, rule: str, write: bool = True) -> str:
        if not ctx.project_id:
            raise Forbidden("Software configs and deployments need a project-scoped token.")
        require(ctx.can_write_project(ctx.project_id) if write else ctx.can_read_project(ctx.project_id), rule)
        return str(ctx.project_id)

    @staticmethod
    def _visible(ctx: Any, row: Mapping[str, Any] | None) -> bool:
        return row is not None and (ctx.can_read_project(row["project_id"]) or ctx.is_cloud_reader)

    async def config(self, ctx: Any, config_id: str) -> dict[str, Any]:
        row = await self.svc.read(s.get_config, config_id)
        if not self._visible(ctx, row):
            raise NotFound(f"Software config with id {config_id[:40]} not found")
        return row

    async def deployment(self, ctx: Any, deployment_id: str) -> dict[str, Any]:
        row = await self.svc.read(s.get_deployment, deployment_id)
        if not self._visible(ctx, row):
            raise NotFound(f"Deployment with id {deployment_id[:40]} not found")
        return row

    # --- configs ----------------------------------------------------------------------------------
    async def create_config(self, ctx: Any, body: Any) -> dict[str, Any]:
        body = _object(body)
        project = self._project(ctx, "software_configs:create")
        config = body.get("config")
        if config is not None and not isinstance(config, (str, dict, list)):
            raise BadRequest("config must be a text (a script) or a map (a structured config).")
        row = {"id": _new_id(body), "project_id": project, "name": _text(body, "name"),
               "config_group": _text(body, "group", UNGROUPED) or UNGROUPED,
               "config": "" if config is None else config, "inputs": checked_items(body, "inputs", INPUT_KEYS),
               "outputs": checked_items(body, "outputs", OUTPUT_KEYS), "options": _map(body, "options"),
               "created_at": self.svc.now()}
        return await self.svc.propose(c.CreateSoftwareConfig(row))

    async def list_configs(self, ctx: Any, limit: int, marker: str | None) -> list[dict[str, Any]]:
        project = self._project(ctx, "software_configs:index", write=False)
        return await self.svc.read(s.list_configs, project, marker, limit)

    async def delete_config(self, ctx: Any, config_id: str) -> None:
        row = await self.config(ctx, config_id)
        require(ctx.can_write_project(row["project_id"]), "software_configs:delete")
        await self.svc.propose(c.DeleteSoftwareConfig(config_id))

    # --- deployments ------------------------------------------------------------------------------
    async def create_deployment(self, ctx: Any, body: Any) -> dict[str, Any]:
        body = _object(body)
        project = self._project(ctx, "software_deployments:create")
        config_id = _text(body, "config_id", required=True)
        await self.config(ctx, config_id)
        at = self.svc.now()
        row = {"id": _new_id(body), "project_id": project, "server_id": _text(body, "server_id", required=True),
               "config_id": config_id, "input_values": _map(body, "input_values"),
               "output_values": _map(body, "output_values"), "action": _text(body, "action", "INIT") or "INIT",
               "status": _status(body, "COMPLETE"), "status_reason": _text(body, "status_reason"),
               "created_at": at, "updated_at": None}
        return await self.svc.propose(c.CreateSoftwareDeployment(row))

    async def list_deployments(self, ctx: Any, server_id: str | None, limit: int,
                               marker: str | None) -> list[dict[str, Any]]:
        project = self._project(ctx, "software_deployments:index", write=False)
        return await self.svc.read(s.list_deployments, project, server_id, marker, limit)

    async def update_deployment(self, ctx: Any, deployment_id: str, body: Any) -> dict[str, Any]:
        body = _object(body)
        row = await self.deployment(ctx, deployment_id)
        require(ctx.can_write_project(row["project_id"]), "software_deployments:update")
        changes: dict[str, Any] = {}
        if body.get("config_id") is not None:
            changes["config_id"] = _text(body, "config_id", required=True)
            await self.config(ctx, changes["config_id"])
        for key in ("input_values", "output_values"):
            if body.get(key) is not None:
                changes[key] = _map(body, key)
        for key in ("action", "status_reason"):
            if body.get(key) is not None:
                changes[key] = _text(body, key)
        status = _status(body, None)
        if status is not None:
            changes["status"] = status
        if not changes:
            return row
        return await self.svc.propose(c.UpdateSoftwareDeployment(deployment_id, changes, self.svc.now()))

    async def delete_deployment(self, ctx: Any, deployment_id: str) -> None:
        row = await self.deployment(ctx, deployment_id)
        require(ctx.can_write_project(row["project_id"]), "software_deployments:delete")
        await self.svc.propose(c.DeleteSoftwareDeployment(deployment_id))

    async def metadata(self, ctx: Any, server_id: str) -> list[dict[str, Any]]:
        """``GET /software_deployments/metadata/{server_id}``: the caller's project's deployments
        of that server, each as its config with its inputs' values."""
        project = self._project(ctx, "software_deployments:metadata", write=False)
        return await self.server_metadata(project, server_id)

    async def server_metadata(self, project_id: str, server_id: str) -> list[dict[str, Any]]:
        pairs = await self.svc.read(s.server_deployments, project_id, server_id)
        return [metadata_item(d, conf) for d, conf in pairs]

    # --- what a server reports ----------------------------------------------------------------------
    async def signal(self, stack: Mapping[str, Any], row: Mapping[str, Any], body: Any) -> str:
        """A signal to a deployment resource (its signed URL, or the resource signal API): the
        server's outputs. A non-zero ``deploy_status_code`` or an ``error_output`` output fails the
        deployment; otherwise it is COMPLETE. Only a deployment in progress takes outputs (a late
        or repeated signal changes nothing). Returns the event's reason."""
        if body is not None and not isinstance(body, dict):
            raise BadRequest("A deployment's signal is a JSON object (deploy_stdout, deploy_stderr, "
                             "deploy_status_code and the config's outputs).")
        details: dict[str, Any] = body or {}
        deployment = await self.svc.read(s.get_deployment, row["physical_id"])
        if deployment is None:
            raise NotFound(f"Deployment with id {row['physical_id'][:40]} not found")
        if deployment["status"] != "IN_PROGRESS":  # (Heat's answer too)
            return f"deployment {deployment['id']} signalled while {deployment['status']}: ignored"
        config = await self.svc.read(s.get_config, deployment["config_id"])
        outputs, failures = dict(deployment["output_values"] or {}), []
        code = details.get("deploy_status_code")
        if code not in (None, "", 0, "0"):
            failures.append(f"deploy_status_code : Deployment exited with non-zero status code: {code}")
        for output in (config or {}).get("outputs") or []:
            if output["name"] in details:
                outputs[output["name"]] = details[output["name"]]
                if output.get("error_output") and details[output["name"]]:
                    failures.append(f"{output['name']} : {details[output['name']]}")
        for key in STANDARD_OUTPUTS:
            outputs[key] = details.get(key)
        status = "FAILED" if failures else "COMPLETE"
        reason = ", ".join(failures)[:MAX_TEXT] if failures else "Outputs received"
        await self.svc.propose(c.UpdateSoftwareDeployment(deployment["id"], {
            "output_values": outputs, "status": status, "status_reason": reason}, self.svc.now()))
        event = f"deployment {deployment['id']} {'failed' if failures else 'succeeded'}"
        await self.svc.propose(SignalResource(stack["id"], row["name"], {
            "status": "FAILURE" if failures else "SUCCESS", "reason": event, "data": None, "id": ""},
            self.svc.now(), str(uuid.uuid4())))
        return event

"""Software configuration resources, kept through the stack owner's own /software_configs and
/software_deployments (api_software.py), as Heat's are:

- SoftwareConfig, CloudConfig, MultipartMime, StructuredConfig: a config row (its id is the
  resource row's, so a create cut short by a crash finds it); the rendered text stays in the
  resource's data for a server's user data (heat.py renders it).
- SoftwareDeployment, StructuredDeployment: a deployment of a config to a server. Each action it
  is asked to run (``actions``) makes a *derived* config: the source's, with its inputs' values and
  Heat's ``deploy_*`` inputs (server, action, stack, resource, signal transport and URL); the
  deployment points at it and the server reads it in its metadata. With NO_SIGNAL the deployment is
  COMPLETE at once; with any other transport it is IN_PROGRESS until the server signals its outputs
  to ``deploy_signal_id``: wait.py's signed URL on the metadata address (a guest holds no token and
  reaches nothing else), answered by service.signal → software.SoftwareService.signal.
- SoftwareDeploymentGroup, StructuredDeploymentGroup: one deployment per entry of ``servers``, as a
  nested stack (group.py's Group).

The deployment's id is chosen from the resource row's (uuid5), so its signed URL can be made before
it exists, and a create cut short by a crash finds what it left and starts again cleanly (a derived
config made just before such a crash, not yet named by the deployment, is left over).
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.orchestration.resources import heat
from cloudbox.orchestration.resources.base import WAIT, Context, Plugin, ResourceFailed, wait_for
from cloudbox.orchestration.resources.group import Group
from cloudbox.orchestration.software import INPUT_KEYS, OUTPUT_KEYS, checked_items
from cloudbox.network.hostplan import METADATA_ADDRESS
from cloudbox.orchestration.resources.wait import signal_url

NAMESPACE = uuid.UUID("6d0c3a5e-3f7e-4c55-9a43-1b8f0d3b2a11")  # ids derived from resource rows
TRANSPORTS = ("CFN_SIGNAL", "TEMP_URL_SIGNAL", "HEAT_SIGNAL", "NO_SIGNAL", "ZAQAR_SIGNAL")
ACTIONS = ("CREATE", "UPDATE", "DELETE", "SUSPEND", "RESUME")
STANDARD = ("deploy_stdout", "deploy_stderr", "deploy_status_code")
GUEST_BASE = f"http://{METADATA_ADDRESS}"  # what a guest reaches (the API serves the same path too)


class AnyName(frozenset):  # type: ignore[type-arg]
    """A deployment answers its config's outputs by name (``get_attr: [deploy, result]``): any
    attribute name is one it may have; the listed ones are what resource_types shows."""

    def __contains__(self, item: object) -> bool:
        return True


def base_of(ctx: Context) -> str:
    return f"/orchestration/v1/{ctx.stack['project_id']}"


def derived_id(row_id: str, what: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{row_id}/{what}"))


# --- configs -------------------------------------------------------------------------------------
class Stored:
    """A config resource that is also a row of /software_configs (the resource row's id is its id)."""

    type: str

    def check(self, name: str, props: dict[str, Any]) -> None:
        """Inputs and outputs as the API takes them: a 400 at create time, before anything is made."""
        super().check(name, props)  # type: ignore[misc]
        for key, allowed in (("inputs", INPUT_KEYS), ("outputs", OUTPUT_KEYS)):
            value = props.get(key)
            if value is None or _has_function(value):
                continue  # checked by the API once resolved
            try:
                checked_items({key: value}, key, allowed)
            except BadRequest as exc:
                raise BadRequest(f"resources.{name}.properties.{exc}") from None

    def body(self, ctx: Context, props: dict[str, Any], text: str) -> dict[str, Any]:
        return {"id": ctx.row_id, "name": ctx.physical_name, "group": props.get("group") or "Heat::Ungrouped",
                "config": text, "inputs": props.get("inputs") or [], "outputs": props.get("outputs") or [],
                "options": props.get("options") or {}}

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        text = self.render(ctx, props)  # type: ignore[attr-defined]
        ctx.data["config"] = text if isinstance(text, str) else json.dumps(text)
        try:
            await ctx.api.post(base_of(ctx) + "/software_configs", self.body(ctx, props, text))
        except Conflict:
            pass  # made before a crash cut the create short: it is this row's
        return ctx.row_id

    async def delete(self, ctx: Context) -> None:
        if ctx.physical_id:
            await ctx.api.delete(f"{base_of(ctx)}/software_configs/{ctx.physical_id}")

    async def check_live(self, ctx: Context) -> None:
        if ctx.physical_id:
            await ctx.api.get(f"{base_of(ctx)}/software_configs/{ctx.physical_id}")


class SoftwareConfig(Stored, heat.SoftwareConfig):
    pass


class CloudConfig(Stored, heat.CloudConfig):
    pass


class MultipartMime(Stored, heat.MultipartMime):
    pass


class StructuredConfig(Stored, heat.SoftwareConfig):
    type = "OS::Heat::StructuredConfig"
    description = "A map (not a script) for a configuration tool; {get_input: NAME} is replaced by deployments."
    properties = {"config": "map", "group": "string", "inputs": "list", "outputs": "list", "options": "map"}

    def render(self, ctx: Context, props: dict[str, Any]) -> Any:  # type: ignore[override]
        return props.get("config") or {}


# --- deployments -----------------------------------------------------------------------------------
def _substitute(value: Any, key: str, inputs: dict[str, Any], strict: bool) -> Any:
    """A structured config with each {KEY: NAME} replaced by the input's value."""
    if isinstance(value, dict):
        if len(value) == 1 and key in value and isinstance(value[key], str):
            if value[key] not in inputs and strict:
                raise ResourceFailed(f"Unknown input {value[key]}")
            return inputs.get(value[key])
        return {k: _substitute(v, key, inputs, strict) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, key, inputs, strict) for v in value]
    return value


class SoftwareDeployment(Plugin):
    type = "OS::Heat::SoftwareDeployment"
    description = "A config deployed to a server; the server reports its outputs (to a signed URL)."
    properties = {"config": "string", "server": "string", "input_values": "map", "actions": "list",
                  "name": "string", "signal_transport": "string"}
    defaults = {"actions": ["CREATE", "UPDATE"], "signal_transport": "CFN_SIGNAL"}
    required = frozenset({"server"})
    update_allowed = frozenset({"config", "input_values", "actions", "name", "signal_transport"})
    attribute_names = AnyName({"show", *STANDARD})

    def check(self, name: str, props: dict[str, Any]) -> None:
        super().check(name, props)
        transport = props.get("signal_transport", "CFN_SIGNAL")
        if isinstance(transport, str) and transport not in TRANSPORTS:
            raise BadRequest(f"resources.{name}.properties.signal_transport: \"{transport[:40]}\" is not an allowed "
                             f"value {list(TRANSPORTS)}")
        actions = props.get("actions")
        if isinstance(actions, list) and any(isinstance(a, str) and a not in ACTIONS for a in actions):
            raise BadRequest(f"resources.{name}.properties.actions: each must be one of {', '.join(ACTIONS)}")
        if not isinstance(props.get("input_values", {}), (dict, type(None))) and \
                not _is_function(props.get("input_values")):
            raise BadRequest(f"resources.{name}.properties.input_values: must be a map")

    # what the structured kinds change
    def render(self, config: Any, inputs: dict[str, Any], props: dict[str, Any]) -> Any:
        return config

    @staticmethod
    def signalled(props: dict[str, Any]) -> bool:
        return (props.get("signal_transport") or "CFN_SIGNAL") != "NO_SIGNAL"

    @staticmethod
    def runs(props: dict[str, Any], action: str) -> bool:
        actions = props.get("actions")
        return action in (actions if isinstance(actions, list) else ["CREATE", "UPDATE"])

    async def _derive(self, ctx: Context, props: dict[str, Any], action: str, deployment_id: str) -> str:
        """The derived config of one action: the source with values and Heat's deploy_* inputs."""
        base = base_of(ctx)
        source: dict[str, Any] = {"group": "Heat::Ungrouped", "config": "", "inputs": [], "outputs": [],
                                  "options": {}}
        if props.get("config"):
            source = (await ctx.api.get(f"{base}/software_configs/{props['config']}"))["software_config"]
        values = dict(props.get("input_values") or {})
        inputs = []
        for item in source.get("inputs") or []:
            item = dict(item)
            item["value"] = values.get(item["name"], item.get("value", item.get("default")))
            inputs.append(item)
        transport = props.get("signal_transport") or "CFN_SIGNAL"
        extra = {"deploy_server_id": str(props["server"]), "deploy_action": action,
                 "deploy_stack_id": f"{ctx.stack['name']}/{ctx.stack['id']}", "deploy_resource_name": ctx.name,
                 "deploy_signal_transport": transport}
        if self.signalled(props):
            url = signal_url(GUEST_BASE, ctx.stack["id"], deployment_id, ctx.data["secret"])
            extra.update({"deploy_signal_transport": "CFN_SIGNAL" if transport in ("HEAT_SIGNAL", "ZAQAR_SIGNAL")
                          else transport, "deploy_signal_id": url, "deploy_signal_verb": "POST"})
        inputs += [{"name": k, "type": "String", "value": v,
                    "description": "cloudbox: what the deployment tells its server"} for k, v in extra.items()]
        all_inputs = {i["name"]: i["value"] for i in inputs}
        config_id = str(uuid.uuid4())  # a fresh one each time: an update cut short by a crash runs again
        body = {"id": config_id, "name": props.get("name") or ctx.physical_name, "group": source.get("group"),
                "config": self.render(source.get("config"), all_inputs, props), "options": source.get("options"),
                "inputs": inputs, "outputs": source.get("outputs") or []}
        await ctx.api.post(f"{base}/software_configs", body)
        return config_id

    async def _deploy(self, ctx: Context, props: dict[str, Any], action: str, deployment_id: str,
                      exists: bool) -> None:
        if self.signalled(props) and not ctx.data.get("secret"):
            ctx.data["secret"] = secrets.token_hex(32)
        # the config it points at now goes once it points at the new one (the row's data is not
        # saved after a suspend or resume: the deployment is what knows)
        old = (await self._read(ctx))["config_id"] if exists else None
        config_id = await self._derive(ctx, props, action, deployment_id)
        waits = self.runs(props, action) and self.signalled(props)
        body = {"config_id": config_id, "server_id": str(props["server"]), "action": action,
                "input_values": props.get("input_values") or {}, "status": "IN_PROGRESS" if waits else "COMPLETE",
                "status_reason": "Deploy data available"}
        if exists:
            await ctx.api.put(f"{base_of(ctx)}/software_deployments/{deployment_id}", body)
        else:
            await ctx.api.post(f"{base_of(ctx)}/software_deployments", {"id": deployment_id, **body})
        ctx.data.update({"config_id": config_id, "waits": waits, "props": props})
        if old and old != config_id:
            await ctx.api.delete(f"{base_of(ctx)}/software_configs/{old}")

    async def find(self, ctx: Context) -> str | None:
        """A deployment a crash cut short lost its secret with it: it and its configs go, and the
        create starts again."""
        await self._remove(ctx, derived_id(ctx.row_id, "deployment"))
        return None

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        deployment_id = derived_id(ctx.row_id, "deployment")
        await self._deploy(ctx, props, "CREATE", deployment_id, exists=False)
        return deployment_id

    async def wait(self, ctx: Context) -> None:
        if not ctx.data.get("waits"):
            return
        timeout = float((ctx.stack.get("timeout_mins") or 0) * 60) or WAIT
        await wait_for(lambda: self._read(ctx), lambda d: d["status"] == "COMPLETE",
                       lambda d: d["status_reason"] or "FAILED" if d["status"] == "FAILED" else None,
                       f"Deployment to server {ctx.name}", timeout)

    async def _read(self, ctx: Context) -> dict[str, Any]:
        return (await ctx.api.get(f"{base_of(ctx)}/software_deployments/{ctx.physical_id}"))["software_deployment"]

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        await self._deploy(ctx, new, "UPDATE", ctx.physical_id, exists=True)
        await self.wait(ctx)

    async def _remove(self, ctx: Context, deployment_id: str) -> None:
        """The deployment, then the config it points at and the one this row last made (they differ
        when a crash cut an update short)."""
        configs = {ctx.data.get("config_id")}
        try:
            configs.add((await ctx.api.get(f"{base_of(ctx)}/software_deployments/{deployment_id}"))
                        ["software_deployment"]["config_id"])
        except NotFound:
            pass
        await ctx.api.delete(f"{base_of(ctx)}/software_deployments/{deployment_id}")
        for config_id in sorted(c for c in configs if c):
            await ctx.api.delete(f"{base_of(ctx)}/software_configs/{config_id}")

    async def _run(self, ctx: Context, action: str) -> None:
        """DELETE, SUSPEND or RESUME: run on the server too when ``actions`` names it (with the
        properties of the last create or update), and wait for its signal."""
        props = ctx.data.get("props")
        if not ctx.physical_id or not isinstance(props, dict) or not self.runs(props, action):
            return
        await self._deploy(ctx, props, action, ctx.physical_id, exists=True)
        await self.wait(ctx)

    async def suspend(self, ctx: Context) -> None:
        await self._run(ctx, "SUSPEND")

    async def resume(self, ctx: Context) -> None:
        await self._run(ctx, "RESUME")

    async def delete(self, ctx: Context) -> None:
        if not ctx.physical_id:
            return
        try:
            await self._run(ctx, "DELETE")
        except NotFound:
            pass  # the deployment went already (a delete resumed after a crash)
        await self._remove(ctx, ctx.physical_id)

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        shown = await self._read(ctx)
        values = dict(shown.get("output_values") or {})
        return {**{k: None for k in STANDARD}, **values, "show": shown}

    async def check_live(self, ctx: Context) -> None:
        if ctx.physical_id:
            await self._read(ctx)


def _has_function(value: Any) -> bool:
    if isinstance(value, dict):
        return _is_function(value) or any(_has_function(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_function(v) for v in value)
    return False


def _is_function(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith(("get_", "Fn::", "str_"))


class StructuredDeployment(SoftwareDeployment):
    type = "OS::Heat::StructuredDeployment"
    description = "A StructuredConfig deployed to a server, its {get_input: NAME} replaced by the inputs' values."
    properties = {**SoftwareDeployment.properties, "input_key": "string", "input_values_validate": "string"}
    defaults = {**SoftwareDeployment.defaults, "input_key": "get_input", "input_values_validate": "LAX"}
    update_allowed = SoftwareDeployment.update_allowed | {"input_key", "input_values_validate"}

    def render(self, config: Any, inputs: dict[str, Any], props: dict[str, Any]) -> Any:
        return _substitute(config, str(props.get("input_key") or "get_input"), inputs,
                           props.get("input_values_validate") == "STRICT")


class DeploymentGroup(Group):
    """One deployment per server of ``servers`` (name → server id), as a nested stack."""

    member: type[SoftwareDeployment] = SoftwareDeployment
    updates_anything = True
    attribute_names = AnyName({"show", "deploy_stdouts", "deploy_stderrs", "deploy_status_codes"})

    def size(self, props: dict[str, Any]) -> int:
        return len(self._servers(props))

    @staticmethod
    def _servers(props: dict[str, Any]) -> dict[str, Any]:
        servers = props.get("servers") or {}
        if not isinstance(servers, dict):
            raise ResourceFailed("servers must be a map of names to server ids")
        return servers

    def template(self, props: dict[str, Any], count: int) -> dict[str, Any]:
        common = {k: v for k, v in props.items() if k in self.member.properties and k != "server" and v is not None}
        resources = {str(key): {"type": self.member.type, "properties": {**common, "server": server}}
                     for key, server in self._servers(props).items()}
        return {"heat_template_version": "2021-04-16", "resources": resources}

    def check(self, name: str, props: dict[str, Any]) -> None:
        super().check(name, props)
        servers = props.get("servers")
        if servers is not None and not isinstance(servers, dict) and not _is_function(servers):
            raise BadRequest(f"resources.{name}.properties.servers: must be a map of names to server ids")

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        rows = await ctx.stacks.child_rows(ctx.data.get("child") or ctx.physical_id)
        names = {k for r in rows for k in r["attributes"] if k != "show"}
        out: dict[str, Any] = {n: {r["name"]: r["attributes"].get(n) for r in rows} for n in sorted(names)}
        for plural, single in (("deploy_stdouts", "deploy_stdout"), ("deploy_stderrs", "deploy_stderr"),
                               ("deploy_status_codes", "deploy_status_code")):
            out[plural] = {r["name"]: r["attributes"].get(single) for r in rows}
        out["show"] = {"refs_map": {r["name"]: r["physical_id"] for r in rows}}
        return out


class SoftwareDeploymentGroup(DeploymentGroup):
    type = "OS::Heat::SoftwareDeploymentGroup"
    description = "A config deployed to each server of a map, with their outputs by server name."
    properties = {**{k: v for k, v in SoftwareDeployment.properties.items() if k != "server"}, "servers": "map"}
    required = frozenset({"servers"})
    update_allowed = frozenset(properties)


class StructuredDeploymentGroup(DeploymentGroup):
    type = "OS::Heat::StructuredDeploymentGroup"
    description = "A StructuredConfig deployed to each server of a map."
    member = StructuredDeployment
    properties = {**{k: v for k, v in StructuredDeployment.properties.items() if k != "server"}, "servers": "map"}
    required = frozenset({"servers"})
    update_allowed = frozenset(properties)


PLUGINS: tuple[Plugin, ...] = (
    SoftwareConfig(), CloudConfig(), MultipartMime(), StructuredConfig(),  # type: ignore[abstract]
    SoftwareDeployment(), StructuredDeployment(), SoftwareDeploymentGroup(), StructuredDeploymentGroup(),
)

"""OS::Nova::Server, OS::Nova::KeyPair, OS::Nova::Flavor: through the compute API as the owner."""

from __future__ import annotations

import base64
from typing import Any

from cloudbox.errors import BadRequest, NotFound
from cloudbox.orchestration.resources.base import (
    UUID, Context, Plugin, dropped_none, find_neutron, wait_for,
)

NOVA = "/compute/v2.1"
VERSION = {"OpenStack-API-Version": "compute 2.52"}  # tags on create and in list filters


async def find_flavor(api: Any, name_or_id: str) -> dict[str, Any]:
    try:
        return (await api.get(f"{NOVA}/flavors/{name_or_id}"))["flavor"]
    except NotFound:
        pass
    for flavor in (await api.get(f"{NOVA}/flavors/detail", is_public="None"))["flavors"]:
        if flavor["name"] == name_or_id:
            return flavor
    raise NotFound(f"Flavor {name_or_id} could not be found.")


async def find_image(api: Any, name_or_id: str) -> dict[str, Any]:
    if UUID.match(name_or_id):
        try:
            return await api.get(f"/image/v2/images/{name_or_id}")
        except NotFound:
            pass
    found = (await api.get("/image/v2/images", name=name_or_id))["images"]
    if len(found) > 1:
        raise BadRequest(f"Multiple images match the name {name_or_id}, use an ID to be more specific.")
    if not found:
        raise NotFound(f"Image {name_or_id} could not be found.")
    return found[0]


class Server(Plugin):
    type = "OS::Nova::Server"
    description = "A Nova server (a virtual machine)."
    properties = {k: "string" for k in ("name", "image", "flavor", "key_name", "user_data", "user_data_format",
                                        "availability_zone", "admin_pass", "flavor_update_policy",
                                        "image_update_policy", "software_config_transport", "diskConfig",
                                        "reservation_id", "admin_user", "user_data_update_policy",
                                        "deployment_swift_data", "description")}
    properties.update({"networks": "list", "security_groups": "list", "metadata": "map", "config_drive": "boolean",
                       "block_device_mapping": "list", "block_device_mapping_v2": "list", "scheduler_hints": "map",
                       "personality": "map", "tags": "list"})
    required = frozenset({"flavor"})
    update_allowed = frozenset({"name", "flavor", "metadata", "flavor_update_policy", "image_update_policy",
                                "user_data_update_policy", "description"})
    attribute_names = frozenset({"show", "first_address", "addresses", "networks", "name", "accessIPv4",
                                 "accessIPv6", "instance_name", "console_urls", "os_collect_config", "tags"})

    async def _networks(self, ctx: Context, entries: list[dict[str, Any]] | None) -> Any:
        if not entries:
            return "auto"
        out = []
        for entry in entries:
            item: dict[str, Any] = {}
            if entry.get("port"):
                item["port"] = entry["port"]
            elif entry.get("network") or entry.get("uuid"):
                item["uuid"] = (await find_neutron(ctx.api, "networks", "network",
                                                   str(entry.get("network") or entry.get("uuid"))))["id"]
            elif entry.get("subnet"):
                subnet = await find_neutron(ctx.api, "subnets", "subnet", str(entry["subnet"]))
                item["uuid"] = subnet["network_id"]
            if entry.get("fixed_ip"):
                item["fixed_ip"] = entry["fixed_ip"]
            if not item:
                raise BadRequest(f"resources.{ctx.name}.properties.networks: give a network, port or subnet")
            out.append(item)
        return out

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        flavor = await find_flavor(ctx.api, str(props["flavor"]))
        server: dict[str, Any] = {"name": props.get("name") or ctx.physical_name, "flavorRef": flavor["id"],
                                  "networks": await self._networks(ctx, props.get("networks")),
                                  "tags": [ctx.tag, *(props.get("tags") or [])],
                                  "metadata": {str(k): str(v) for k, v in (props.get("metadata") or {}).items()}}
        if props.get("image"):
            server["imageRef"] = (await find_image(ctx.api, str(props["image"])))["id"]
        if props.get("block_device_mapping_v2"):
            server["block_device_mapping_v2"] = props["block_device_mapping_v2"]
        if props.get("key_name"):
            server["key_name"] = props["key_name"]
        if props.get("user_data"):
            text = str(props["user_data"])
            text = ctx.configs.get(text, text)  # a SoftwareConfig's id stands for its config, as Heat's
            server["user_data"] = base64.b64encode(text.encode()).decode()
        if props.get("config_drive") is not None:
            server["config_drive"] = bool(props["config_drive"])
        if props.get("admin_pass"):
            server["adminPass"] = props["admin_pass"]
        if props.get("availability_zone"):
            server["availability_zone"] = props["availability_zone"]
        if props.get("security_groups"):
            server["security_groups"] = [{"name": g} for g in props["security_groups"]]
        answer = await ctx.api.post(f"{NOVA}/servers", {"server": server}, headers=VERSION)
        return str(answer["server"]["id"])

    async def find(self, ctx: Context) -> str | None:
        found = (await ctx.api.call("GET", f"{NOVA}/servers", query={"tags": ctx.tag}, headers=VERSION)).body
        return found["servers"][0]["id"] if found["servers"] else None

    async def _show(self, ctx: Context) -> dict[str, Any]:
        return (await ctx.api.call("GET", f"{NOVA}/servers/{ctx.physical_id}", headers=VERSION)).body["server"]

    async def wait(self, ctx: Context, status: str = "ACTIVE") -> None:
        def failed(server: dict[str, Any]) -> str | None:
            if server["status"] == "ERROR":
                return (server.get("fault") or {}).get("message") or "ERROR"
            return None

        await wait_for(lambda: self._show(ctx), lambda s: s["status"] == status, failed,
                       f"Server {ctx.physical_id}")

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        path = f"{NOVA}/servers/{ctx.physical_id}"
        if "name" in changed:
            await ctx.api.put(path, {"server": {"name": new.get("name") or ctx.physical_name}})
        if "metadata" in changed:
            await ctx.api.put(path + "/metadata",
                              {"metadata": {str(k): str(v) for k, v in (new.get("metadata") or {}).items()}})
        if "flavor" in changed:
            flavor = await find_flavor(ctx.api, str(new["flavor"]))
            await ctx.api.post(path + "/action", {"resize": {"flavorRef": flavor["id"]}})
            await self.wait(ctx, "VERIFY_RESIZE")
            await ctx.api.post(path + "/action", {"confirmResize": None})
            await self.wait(ctx)

    async def suspend(self, ctx: Context) -> None:
        if (await self._show(ctx))["status"] != "SUSPENDED":
            await ctx.api.post(f"{NOVA}/servers/{ctx.physical_id}/action", {"suspend": None})
            await self.wait(ctx, "SUSPENDED")

    async def resume(self, ctx: Context) -> None:
        if (await self._show(ctx))["status"] == "SUSPENDED":
            await ctx.api.post(f"{NOVA}/servers/{ctx.physical_id}/action", {"resume": None})
        await self.wait(ctx)

    async def delete(self, ctx: Context) -> None:
        if not ctx.physical_id:
            return
        await ctx.api.delete(f"{NOVA}/servers/{ctx.physical_id}")

        async def read() -> dict[str, Any]:
            try:
                return await self._show(ctx)
            except NotFound:
                return {"status": "DELETED"}

        await wait_for(read, lambda s: s["status"] == "DELETED", lambda s: None, f"Server {ctx.physical_id} delete")

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        server = await self._show(ctx)
        addresses = server.get("addresses") or {}
        networks = {net: [a["addr"] for a in entries] for net, entries in addresses.items()}
        first = next((a["addr"] for entries in addresses.values() for a in entries
                      if a.get("OS-EXT-IPS:type", "fixed") == "fixed"), "")
        return {"show": server, "first_address": first, "addresses": addresses, "networks": networks,
                "name": server["name"], "accessIPv4": server.get("accessIPv4", ""),
                "accessIPv6": server.get("accessIPv6", ""),
                "instance_name": server.get("OS-EXT-SRV-ATTR:instance_name", ""), "console_urls": {},
                "tags": [t for t in server.get("tags", []) if t != ctx.tag]}


class KeyPair(Plugin):
    type = "OS::Nova::KeyPair"
    description = "A Nova key pair: the public key given, or a new pair whose private key is kept."
    properties = {"name": "string", "public_key": "string", "save_private_key": "boolean", "type": "string",
                  "user": "string"}
    required = frozenset({"name"})
    attribute_names = frozenset({"show", "public_key", "private_key"})

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        body = dropped_none({"name": props["name"], "public_key": props.get("public_key"), "type": props.get("type")})
        answer = (await ctx.api.post(f"{NOVA}/os-keypairs", {"keypair": body},
                                     headers={"OpenStack-API-Version": "compute 2.2"}))["keypair"]
        if props.get("save_private_key") and answer.get("private_key"):
            ctx.data["private_key"] = answer["private_key"]
        return str(answer["name"])

    async def find(self, ctx: Context) -> str | None:
        return None  # a key pair's name is its id: a second create of the same name is refused, not doubled

    async def delete(self, ctx: Context) -> None:
        if ctx.physical_id:
            await ctx.api.delete(f"{NOVA}/os-keypairs/{ctx.physical_id}")

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        pair = (await ctx.api.get(f"{NOVA}/os-keypairs/{ctx.physical_id}"))["keypair"]
        return {"show": pair, "public_key": pair.get("public_key", ""), "private_key": ctx.data.get("private_key", "")}


class Flavor(Plugin):
    type = "OS::Nova::Flavor"
    description = "A Nova flavor (admins only, as the compute API decides)."
    properties = {"name": "string", "ram": "integer", "vcpus": "integer", "disk": "integer", "swap": "integer",
                  "ephemeral": "integer", "rxtx_factor": "number", "is_public": "boolean", "extra_specs": "map",
                  "flavorid": "string", "description": "string", "tenants": "list"}
    required = frozenset({"ram", "vcpus"})
    update_allowed = frozenset({"extra_specs", "description"})
    attribute_names = frozenset({"show", "is_public"})

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        body = dropped_none({"name": props.get("name") or ctx.physical_name, "ram": props["ram"],
                             "vcpus": props["vcpus"], "disk": props.get("disk") or 0, "swap": props.get("swap"),
                             "OS-FLV-EXT-DATA:ephemeral": props.get("ephemeral"), "id": props.get("flavorid"),
                             "os-flavor-access:is_public": props.get("is_public", True)})
        flavor = (await ctx.api.post(f"{NOVA}/flavors", {"flavor": body}))["flavor"]
        if props.get("extra_specs"):
            await ctx.api.post(f"{NOVA}/flavors/{flavor['id']}/os-extra_specs",
                               {"extra_specs": {str(k): str(v) for k, v in props["extra_specs"].items()}})
        return str(flavor["id"])

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        if "extra_specs" in changed and new.get("extra_specs"):
            await ctx.api.post(f"{NOVA}/flavors/{ctx.physical_id}/os-extra_specs",
                               {"extra_specs": {str(k): str(v) for k, v in new["extra_specs"].items()}})

    async def delete(self, ctx: Context) -> None:
        if ctx.physical_id:
            await ctx.api.delete(f"{NOVA}/flavors/{ctx.physical_id}")

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        flavor = (await ctx.api.get(f"{NOVA}/flavors/{ctx.physical_id}"))["flavor"]
        return {"show": flavor, "is_public": flavor.get("os-flavor-access:is_public", True)}

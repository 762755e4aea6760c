"""OS::Cinder::Volume and OS::Cinder::VolumeAttachment: through the volume and compute APIs."""

from __future__ import annotations

import json
from typing import Any

from cloudbox.errors import NotFound
from cloudbox.orchestration.resources.base import Context, Plugin, dropped_none, wait_for
from cloudbox.orchestration.resources.compute import NOVA, find_image

CINDER = "/volume/v3"
MARK = "heat_resource"  # the metadata key that finds a volume made just before a crash


class Volume(Plugin):
    type = "OS::Cinder::Volume"
    description = "A Cinder volume (blank, or from an image, a snapshot or another volume)."
    properties = {"size": "integer", "name": "string", "description": "string", "image": "string",
                  "volume_type": "string", "metadata": "map", "availability_zone": "string", "source_volid": "string",
                  "snapshot_id": "string", "backup_id": "string", "read_only": "boolean", "multiattach": "boolean",
                  "scheduler_hints": "map"}
    update_allowed = frozenset({"name", "description", "size", "metadata", "read_only"})
    attribute_names = frozenset({"show", "size", "status", "display_name", "display_description", "volume_type",
                                 "metadata", "bootable", "created_at", "attachments", "attachments_list"})

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        body = dropped_none({"size": props.get("size"), "name": props.get("name") or ctx.physical_name,
                             "description": props.get("description"), "volume_type": props.get("volume_type"),
                             "availability_zone": props.get("availability_zone"),
                             "source_volid": props.get("source_volid"), "snapshot_id": props.get("snapshot_id"),
                             "metadata": {**{str(k): str(v) for k, v in (props.get("metadata") or {}).items()},
                                          MARK: ctx.tag}})
        if props.get("image"):
            body["imageRef"] = (await find_image(ctx.api, str(props["image"])))["id"]
        return str((await ctx.api.post(f"{CINDER}/volumes", {"volume": body}))["volume"]["id"])

    async def find(self, ctx: Context) -> str | None:
        found = (await ctx.api.get(f"{CINDER}/volumes", metadata=json.dumps({MARK: ctx.tag})))["volumes"]
        return found[0]["id"] if found else None

    async def _show(self, ctx: Context) -> dict[str, Any]:
        return (await ctx.api.get(f"{CINDER}/volumes/{ctx.physical_id}"))["volume"]

    async def wait(self, ctx: Context, status: str = "available") -> None:
        await wait_for(lambda: self._show(ctx), lambda v: v["status"] == status,
                       lambda v: v["status"] if v["status"].startswith("error") else None, f"Volume {ctx.physical_id}")

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        path = f"{CINDER}/volumes/{ctx.physical_id}"
        body = {k: new.get(k) for k in ("name", "description") if k in changed}
        if "metadata" in changed:
            body["metadata"] = {**{str(k): str(v) for k, v in (new.get("metadata") or {}).items()}, MARK: ctx.tag}
        if body:
            await ctx.api.put(path, {"volume": body})
        if "size" in changed and new.get("size"):
            await ctx.api.post(path + "/action", {"os-extend": {"new_size": new["size"]}},
                               headers={"OpenStack-API-Version": "volume 3.42"})
            shown = await self._show(ctx)
            await self.wait(ctx, "in-use" if shown.get("attachments") else "available")
        if "read_only" in changed:
            await ctx.api.post(path + "/action", {"os-update_readonly_flag": {"readonly": bool(new.get("read_only"))}})

    async def delete(self, ctx: Context) -> None:
        if not ctx.physical_id:
            return
        await ctx.api.delete(f"{CINDER}/volumes/{ctx.physical_id}")

        async def read() -> dict[str, Any]:
            try:
                return await self._show(ctx)
            except NotFound:
                return {"status": "deleted"}

        await wait_for(read, lambda v: v["status"] == "deleted",
                       lambda v: v["status"] if v["status"] == "error_deleting" else None,
                       f"Volume {ctx.physical_id} delete")

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        volume = await self._show(ctx)
        return {"show": volume, "size": volume["size"], "status": volume["status"],
                "display_name": volume.get("name"), "display_description": volume.get("description"),
                "volume_type": volume.get("volume_type"),
                "metadata": {k: v for k, v in (volume.get("metadata") or {}).items() if k != MARK},
                "bootable": volume.get("bootable"), "created_at": volume.get("created_at"),
                "attachments": volume.get("attachments"), "attachments_list": volume.get("attachments")}


class VolumeAttachment(Plugin):
    type = "OS::Cinder::VolumeAttachment"
    description = "A volume attached to a server."
    properties = {"instance_uuid": "string", "volume_id": "string", "mountpoint": "string"}
    required = frozenset({"instance_uuid", "volume_id"})
    update_allowed = frozenset({"instance_uuid", "volume_id", "mountpoint"})

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        body = dropped_none({"volumeId": props["volume_id"], "device": props.get("mountpoint") or None})
        await ctx.api.post(f"{NOVA}/servers/{props['instance_uuid']}/os-volume_attachments", {"volumeAttachment": body})
        ctx.data.update({"server": props["instance_uuid"], "volume": props["volume_id"]})
        return f"{props['instance_uuid']}:{props['volume_id']}"

    async def find(self, ctx: Context) -> str | None:
        return None  # attaching twice is refused by the volume service; a resumed create asks again

    async def wait(self, ctx: Context) -> None:
        volume = ctx.physical_id.partition(":")[2]
        await wait_for(lambda: ctx.api.get(f"{CINDER}/volumes/{volume}"), lambda v: v["volume"]["status"] == "in-use",
                       lambda v: v["volume"]["status"] if v["volume"]["status"].startswith("error") else None,
                       f"Volume {volume} attachment")

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        await self.delete(ctx)
        ctx.physical_id = await self.create(ctx, new)
        await self.wait(ctx)

    async def check_live(self, ctx: Context) -> None:
        """The volume is still on the server (Nova answers 404 once it was detached outside the stack)."""
        if ctx.physical_id:
            server, _, volume = ctx.physical_id.partition(":")
            await ctx.api.get(f"{NOVA}/servers/{server}/os-volume_attachments/{volume}")

    async def delete(self, ctx: Context) -> None:
        if not ctx.physical_id:
            return
        server, _, volume = ctx.physical_id.partition(":")
        await ctx.api.delete(f"{NOVA}/servers/{server}/os-volume_attachments/{volume}")

        async def read() -> dict[str, Any]:
            try:
                return (await ctx.api.get(f"{CINDER}/volumes/{volume}"))["volume"]
            except NotFound:
                return {"status": "available"}

        await wait_for(read, lambda v: v["status"] != "detaching" and not v.get("attachments"),
                       lambda v: None, f"Volume {volume} detach")

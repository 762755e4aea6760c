"""``svc.attach``: attaching volumes (Cinder's attachments API and legacy actions) and uploads
of volumes into images.

What compute calls (ctx None: compute acts for a request it already authorised), in order:

1. ``reserve(ctx, volume_id, server_id)`` when the server's attach request is accepted (the volume
   becomes reserved; a second server is refused unless the volume is multiattach);
2. ``connect(ctx, attachment_id, connector)`` on the server's node, with its connector
   (``{"host": <node name>, "mountpoint": "/dev/vdb", ...}``): the attachment becomes attaching
   and the answer is the ``connection_info`` to build the libvirt disk from (``local``: a file or
   block device and its format; ``nbd``: the volume node's export, answered once that node's
   worker serves it; ``data.qos_specs``: the front-end limits for ``<iotune>``);
3. ``complete(ctx, attachment_id)`` once the disk is in the guest: attached, the volume in-use;
4. ``detach(ctx, attachment_id)`` after the disk left the guest (or when a reserve/connect
   failed, to roll back): the attachment goes and the volume is available again.
``connection(ctx, attachment_id)`` re-reads the connection_info (a reboot, a reconciler pass).
"""

from __future__ import annotations

import stat
import uuid
from pathlib import Path
from typing import Any, Mapping

import trio

from cloudbox.errors import BadRequest, CloudboxError, Conflict, Unavailable
from cloudbox.identity.core import require
from cloudbox.volume import commands_attach as c
from cloudbox.volume import core
from cloudbox.volume import core_attach as rules
from cloudbox.volume import store, store_attach

EXPORT_WAIT = 30.0  # seconds connect waits for the volume's node to export it (its worker is woken by the commit)

class AttachService:
    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self._export_waits: dict[str, trio.Event] = {}  # attachment id → set when its export may be ready
        svc.engine.add_listener(self._on_commit)

    # --- loading, with authorisation ------------------------------------------------------------
    async def _volume(self, ctx: Any, volume_id: str, action: str) -> dict[str, Any]:
        if ctx is None:
            return await self.svc._view(volume_id)
        return await self.svc._volume(ctx, volume_id, write=action)

    async def _attachment(self, ctx: Any, attachment_id: str, action: str = "") -> dict[str, Any]:
        from cloudbox.volume.service import single_viewer

        viewer = core.Viewer(None, True) if ctx is None else single_viewer(ctx)
        attachment = await self.svc.read(store_attach.visible_attachment, viewer, attachment_id)
        if ctx is not None and action:
            require(ctx.can_write_project(attachment["project_id"]), action)
        return attachment

    async def connection_info(self, volume: Mapping[str, Any], attachment_id: str | None,
                              connector: Mapping[str, Any], mode: str = "rw") -> dict[str, Any]:
        """How the connector's host reaches the volume. A host that is the volume's own node gets
        its file or block device (asked of that node: only it knows the path); another node of
        the cluster gets the volume node's NBD export (export.py), for an attachment: the export
        follows attachments, so the legacy os-initialize_connection (none yet) is refused."""
        qos = rules.front_end_limits(await self.svc.read(store_attach.qos_of_type, volume["volume_type_id"]))
        access = "ro" if volume["readonly"] or mode == "ro" else "rw"
        host = connector.get("host")
        if host not in (None, volume["host"]):
            if attachment_id is None:
                raise Unavailable(f"Volume {volume['id']} is kept on node {volume['host']}; host {str(host)[:60]} "
                                  "reaches it over an NBD export, which follows attachments: attach it with the "
                                  "attachments API (3.27+).")
            address = await self._export_address(volume, str(host))
            return rules.nbd_connection(volume, attachment_id, access, address, rules.NBD_PORT, qos)
        if volume["host"] != self.svc.host:
            raise Unavailable(f"Volume {volume['id']} is kept on node {volume['host']}: ask that node for its "
                              "connection.")
        driver = self.svc.driver

        def locate() -> tuple[Path, str, bool]:
            path = driver.path(volume["id"])
            return path, driver.volume_format(volume["id"]), stat.S_ISBLK(path.stat().st_mode)

        try:
            path, fmt, block = await trio.to_thread.run_sync(locate)
        except Exception as exc:  # the driver's error: the data is not there
            raise Unavailable(f"Volume {volume['id']} has no data on node {volume['host']}: {exc}") from exc
        return rules.local_connection(volume, attachment_id, access, str(path), fmt, block, qos)

    async def _export_address(self, volume: Mapping[str, Any], host: str) -> str:
        """The cluster address of the volume's node, where its NBD exports listen; 503 when the
        connector's host is no node of this cluster or the volume's node is down."""
        cluster = self.svc.cluster
        nodes = await cluster.nodes() if cluster is not None and getattr(cluster, "clustered", False) else []
        by_name = {n["name"]: n for n in nodes}
        if host not in by_name:
            raise Unavailable(f"Volume {volume['id']} is kept on node {volume['host']}; host {host[:60]} is no node "
                              "of this cluster, so it cannot reach the volume's NBD export.")
        keeper = by_name.get(volume["host"])
        if keeper is None or not keeper["up"]:
            raise Unavailable(f"Volume {volume['id']} is kept on node {volume['host']}, which is down: its NBD export "
                              "cannot be reached now.")
        return str(keeper["tunnel_ip"])

    def _on_commit(self, cmd: Any, _result: Any) -> None:
        """Wake a connect waiting for its export (or for nothing any more: detached meanwhile)."""
        ids = (cmd.id,) if isinstance(cmd, c.MarkExported) else cmd.ids if isinstance(cmd, c.DeleteAttachments) else ()
        for attachment_id in ids:
            waiting = self._export_waits.get(attachment_id)
            if waiting is not None:
                waiting.set()

    async def _exported(self, attachment: dict[str, Any]) -> dict[str, Any]:
        """The attachment once the volume's node exports it (nbd), at once otherwise. Waits for
        that node's worker (woken by the commit); 503 when it does not export in EXPORT_WAIT."""
        info = attachment["connection_info"]
        if info.get("driver_volume_type") != "nbd":
            return attachment
        attachment_id = attachment["id"]
        try:
            with trio.move_on_after(EXPORT_WAIT):
                while True:
                    woken = self._export_waits[attachment_id] = trio.Event()
                    row = await self.svc.read(store_attach.get_attachment, attachment_id)
                    if row is None:
                        raise Unavailable(f"Volume attachment {attachment_id} was deleted before its NBD export "
                                          "was ready.")
                    if row["connection_info"].get("data", {}).get("exported"):
                        return row
                    await woken.wait()
        finally:
            self._export_waits.pop(attachment_id, None)
        raise Unavailable(f"The node keeping volume {attachment['volume_id']} did not export it over NBD within "
                          f"{EXPORT_WAIT:.0f} s; detach and try again.")

    # --- the attachments API (3.27+), also what compute calls -------------------------------------
    async def reserve(self, ctx: Any, volume_id: str, server_id: str | None, connector: Any = None,
                      mode: Any = None) -> dict[str, Any]:
        """A new attachment of the volume to ``server_id``: reserved, or attaching with its
        connection_info when a connector is given. Refused (400) when the volume cannot take it."""
        volume = await self._volume(ctx, volume_id, "volume:attachment_create")
        mode = rules.check_mode(mode)
        if server_id is not None and (not isinstance(server_id, str) or not core.UUID.match(server_id)):
            raise BadRequest("Invalid input received: instance_uuid must be a server's UUID.")
        attachment_id = str(uuid.uuid4())
        info: dict[str, Any] = {}
        if connector is not None:
            connector = rules.check_connector(connector)
            info = await self.connection_info(volume, attachment_id, connector, mode)
        at = self.svc.now()
        row = {"id": attachment_id, "volume_id": volume["id"], "project_id": volume["project_id"],
               "instance_uuid": server_id, "attached_host": (connector or {}).get("host"),
               "mountpoint": (connector or {}).get("mountpoint"), "attach_mode": mode, "attach_status": "reserved",
               "connector": connector or {}, "connection_info": info, "created_at": at, "updated_at": at,
               "attach_time": None}
        return await self._exported(await self.svc.propose(c.ReserveAttachment(row, False)))

    async def connect(self, ctx: Any, attachment_id: str, connector: Any) -> dict[str, Any]:
        """Give a reserved attachment its host's connector: attaching; the answer (the attachment)
        carries ``connection_info``."""
        attachment = await self._attachment(ctx, attachment_id, "volume:attachment_update")
        connector = rules.check_connector(connector)
        volume = await self.svc._view(attachment["volume_id"])
        info = await self.connection_info(volume, attachment_id, connector, attachment["attach_mode"])
        return await self._exported(await self.svc.propose(c.UpdateAttachment(
            attachment_id, connector, info, connector.get("mountpoint"), connector.get("host"), self.svc.now())))

    async def complete(self, ctx: Any, attachment_id: str) -> dict[str, Any]:
        """The disk is in the guest: attached, and the volume in-use."""
        await self._attachment(ctx, attachment_id, "volume:attachment_complete")
        return await self.svc.propose(c.CompleteAttachment(attachment_id, self.svc.now()))

    async def detach(self, ctx: Any, attachment_id: str) -> list[dict[str, Any]]:
        """The attachment goes (after the disk left the guest, or to roll back a reserve); the
        volume's status follows what is left. Answers the volume's remaining attachments."""
        attachment = await self._attachment(ctx, attachment_id, "volume:attachment_delete")
        return await self.svc.propose(c.DeleteAttachments(attachment["volume_id"], (attachment_id,),
                                                          self.svc.now()))

    async def connection(self, ctx: Any, attachment_id: str) -> dict[str, Any]:
        """The connection_info of an attachment that has a connector, computed afresh."""
        attachment = await self._attachment(ctx, attachment_id)
        if not attachment["connector"]:
            raise BadRequest(f"Invalid volume attachment: attachment {attachment_id} has no connector yet.")
        volume = await self.svc._view(attachment["volume_id"])
        return await self.connection_info(volume, attachment_id, attachment["connector"], attachment["attach_mode"])

    async def get(self, ctx: Any, attachment_id: str) -> dict[str, Any]:
        return await self._attachment(ctx, attachment_id)

    async def list(self, ctx: Any, filters: dict[str, str], marker: str | None, limit: int,
                   all_projects: bool) -> list[dict[str, Any]]:
        from cloudbox.volume.service import viewer_of

        viewer = viewer_of(ctx, all_projects)
        if viewer.project_id is None and not viewer.sees_all:
            return []
        return await self.svc.read(store_attach.list_attachments, viewer, filters, marker, limit)

    async def of_volumes(self, volume_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        return await self.svc.read(store_attach.attachments_of_many, volume_ids)

    # --- legacy volume actions ---------------------------------------------------------------------
    async def legacy(self, ctx: Any, volume_id: str, name: str, args: Mapping[str, Any]) -> Any:
        """os-reserve, os-unreserve, os-begin_detaching, os-roll_detaching, os-attach, os-detach,
        os-initialize_connection, os-terminate_connection, os-force_detach."""
        svc, at = self.svc, self.svc.now()
        if name == "os-force_detach":
            require(ctx.is_cloud_admin, "volume_extension:volume_admin_actions:force_detach")
        volume = await self._volume(ctx, volume_id, f"volume_extension:volume_actions:{name[3:]}")
        if name == "os-reserve":
            return await svc.propose(c.LegacyReserve(volume_id, at))
        if name == "os-unreserve":
            return await svc.propose(c.SettleVolume(volume_id, ("attaching", "reserved"), at))
        if name == "os-begin_detaching":
            return await svc.propose(store.c.Transition(volume_id, ("in-use",), "detaching", at, {}))
        if name == "os-roll_detaching":
            return await svc.propose(c.SettleVolume(volume_id, ("detaching",), at))
        if name == "os-initialize_connection":
            return await self.connection_info(volume, None, rules.check_connector(args.get("connector")))
        if name == "os-terminate_connection":
            rules.check_connector(args.get("connector"))
            return None  # NBD exports follow attachments: one ends when its attachment goes (os-detach)
        if name == "os-attach":
            server, host = args.get("instance_uuid"), args.get("host_name")
            if server is None and host is None:
                raise BadRequest("Invalid request to attach volume to an invalid target: give instance_uuid or "
                                 "host_name.")
            if server is not None and (not isinstance(server, str) or not core.UUID.match(server)):
                raise BadRequest("Invalid request to attach volume to an invalid target: instance_uuid must be a "
                                 "UUID.")
            mountpoint = args.get("mountpoint")
            if mountpoint is not None and (not isinstance(mountpoint, str) or len(mountpoint) > 255):
                raise BadRequest("Invalid input received: mountpoint must be a string.")
            row = {"id": str(uuid.uuid4()), "volume_id": volume_id, "project_id": volume["project_id"],
                   "instance_uuid": server, "attached_host": host if isinstance(host, str) else None,
                   "mountpoint": mountpoint, "attach_mode": rules.check_mode(args.get("mode")),
                   "attach_status": "attached", "connector": {}, "connection_info": {}, "created_at": at,
                   "updated_at": at, "attach_time": at}
            return await svc.propose(c.ReserveAttachment(row, True))
        if name in ("os-detach", "os-force_detach"):
            attachments = await svc.read(store_attach.attachments_of, volume_id)
            wanted = args.get("attachment_id")
            if wanted is not None:
                ids = (str(wanted),)
            elif name == "os-force_detach" or len(attachments) <= 1:
                ids = tuple(a["id"] for a in attachments)
            else:
                raise BadRequest(f"Invalid volume: volume {volume_id} has {len(attachments)} attachments; give "
                                 "attachment_id.")
            if not ids:
                return None  # detached already: Cinder answers 202 and its manager finds nothing to do
            left = await svc.propose(c.DeleteAttachments(volume_id, ids, at))
            if name == "os-force_detach" and not left and volume["status"] not in rules.FLOW:
                # Cinder's force detach leaves a volume with no attachments available, whatever
                # status an admin had reset it to (error, maintenance...).
                await svc.propose(store.c.Transition(volume_id, (volume["status"],), "available", at, {}))
            return left
        raise BadRequest(f"There is no such action: {name[:60]}.")

    # --- upload to an image (os-volume_upload_image) ------------------------------------------------
    async def reimage(self, ctx: Any, volume_id: str, args: Mapping[str, Any]) -> None:
        """Cinder's os-reimage (3.68): the image (active, one the caller sees, that fits the volume)
        is written over the volume by its node's worker; the volume downloading meanwhile."""
        volume = await self.svc._volume(ctx, volume_id, write="volume:reimage")
        image_id = args.get("image_id")
        if not isinstance(image_id, str) or not image_id:
            raise BadRequest("Invalid input received: os-reimage needs image_id.")
        reserved = core.parse_bool(args.get("reimage_reserved", False), "reimage_reserved")
        try:
            image = await self.svc.images.active_image(image_id, ctx)  # 404 unless the caller sees it
        except Conflict as exc:
            raise BadRequest(f"Invalid image: {exc}") from exc
        needed = core.image_needs_gb(image)
        if needed > volume["size"]:
            raise BadRequest(f"Invalid input received: image {image['id']} needs a volume of at least {needed} GB; "
                             f"volume {volume_id} has {volume['size']} GB.")
        await self.svc.propose(c.ReimageVolume(volume_id, image["id"], core.image_metadata_of(image), reserved,
                                               self.svc.now()))

    async def upload_to_image(self, ctx: Any, volume_id: str, args: Mapping[str, Any],
                              version: tuple[int, int]) -> dict[str, Any]:
        """A queued image is made at once and answered; the volume's node writes its data into it
        (the worker), the volume uploading meanwhile and back to its status after."""
        volume = await self.svc._volume(ctx, volume_id, write="volume_extension:volume_actions:upload_image")
        name = args.get("image_name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise BadRequest("Invalid input received: image_name is required (1-255 characters).")
        force = core.parse_bool(args.get("force", False), "force")
        disk_format = args.get("disk_format") or "raw"
        if disk_format not in rules.UPLOAD_FORMATS:
            raise BadRequest(f"Invalid input received: disk_format must be one of {', '.join(rules.UPLOAD_FORMATS)}, "
                             f"not {str(disk_format)[:40]!r}.")
        container = args.get("container_format") or "bare"
        if container != "bare":
            raise BadRequest("Invalid input received: container_format must be bare.")
        visibility, protected = "private", False
        if version >= (3, 1):
            visibility = args.get("visibility") or "private"
            if visibility not in ("private", "public", "shared", "community"):
                raise BadRequest(f"Invalid input received: visibility {str(visibility)[:40]!r} is not valid.")
            protected = core.parse_bool(args.get("protected", False), "protected")
        # Refused early (nothing made) when the volume cannot be uploaded; apply decides again.
        if volume["status"] == "in-use" and not force:
            raise BadRequest(f"Invalid volume: volume {volume_id} is in-use; upload it with force, or detach it.")
        if volume["status"] not in ("available", "in-use"):
            raise BadRequest(f"Invalid volume: volume {volume_id} is {volume['status']}; only an available volume "
                             "(or an in-use one with force) can be uploaded to an image.")
        body: dict[str, Any] = {"name": name, "disk_format": disk_format, "container_format": container,
                                "visibility": visibility, "protected": protected, "min_disk": volume["size"]}
        image = await self.svc.images.create(ctx, body)
        try:
            await self.svc.propose(c.BeginVolumeUpload(volume_id, image["id"], disk_format, force, self.svc.now()))
        except BaseException:
            with trio.CancelScope(shield=True):
                try:
                    await self.svc.images.discard(image["id"])
                except CloudboxError:
                    pass
            raise
        kind = await self.svc.read(store.get_type, volume["volume_type_id"])
        return {"id": volume_id, "updated_at": self.svc.now(), "status": "uploading",
                "display_description": volume["description"], "size": volume["size"],
                "volume_type": kind, "image_id": image["id"], "container_format": container,
                "disk_format": disk_format, "image_name": name, "visibility": visibility, "protected": protected}

"""``svc.transfers``: volume transfers between projects (Cinder's os-volume-transfer, and
volume-transfers from 3.55).

A project offers an available volume (it awaits the transfer); whoever holds the offer's id and
key accepts it into their project, with its snapshots unless the offer said ``no_snapshots``.
The key is answered once, at the offer; only its salted hash is replicated.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any, Mapping

from cloudbox.errors import BadRequest, Forbidden
from cloudbox.identity.core import require
from cloudbox.volume import commands as c
from cloudbox.volume import core, store

KEY_LENGTH = 16  # Cinder's default auth key length (hex characters)


def key_hash(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()


class TransferService:
    def __init__(self, svc: Any) -> None:
        self.svc = svc

    async def create(self, ctx: Any, body: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """The new offer and its key."""
        volume_id = body.get("volume_id")
        if not isinstance(volume_id, str) or not volume_id:
            raise BadRequest("Invalid input received: a transfer needs the volume_id of its volume.")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 255):
            raise BadRequest("Invalid input received: a transfer's name is text of up to 255 characters.")
        no_snapshots = core.parse_bool(body.get("no_snapshots", False), "no_snapshots")
        volume = await self.svc._volume(ctx, volume_id, write="volume:create_transfer")
        key = secrets.token_hex(KEY_LENGTH // 2)
        salt = secrets.token_hex(8)
        row = {"id": str(uuid.uuid4()), "volume_id": volume["id"], "project_id": volume["project_id"],
               "name": name, "salt": salt, "key_hash": key_hash(salt, key), "no_snapshots": no_snapshots,
               "created_at": self.svc.now()}
        return await self.svc.propose(c.CreateTransfer(row)), key

    async def get(self, ctx: Any, transfer_id: str) -> dict[str, Any]:
        from cloudbox.volume.service import single_viewer

        transfer = await self.svc.read(store.visible_transfer, single_viewer(ctx), transfer_id)
        require(ctx.can_read_project(transfer["project_id"]), "volume:get_transfer")
        return transfer

    async def list(self, ctx: Any, marker: str | None, limit: int, all_projects: bool) -> list[dict[str, Any]]:
        from cloudbox.volume.service import viewer_of

        viewer = viewer_of(ctx, all_projects)
        if viewer.project_id is None and not viewer.sees_all:
            return []
        return await self.svc.read(store.list_transfers, viewer, marker, limit)

    async def delete(self, ctx: Any, transfer_id: str) -> None:
        transfer = await self.get(ctx, transfer_id)
        require(ctx.can_write_project(transfer["project_id"]), "volume:delete_transfer")
        await self.svc.propose(c.DeleteTransfer(transfer_id, self.svc.now()))

    async def accept(self, ctx: Any, transfer_id: str, key: Any) -> dict[str, Any]:
        """Move the volume into the caller's project; a wrong key is Cinder's 400 and moves nothing."""
        project = ctx.project_id
        if not project:
            raise Forbidden("Accepting a transfer needs a project-scoped token.")
        require(ctx.can_write_project(project), "volume:accept_transfer")
        if not isinstance(key, str) or not key or len(key) > 255:
            raise BadRequest("Invalid input received: accept needs the transfer's auth_key.")
        from cloudbox.volume.service import viewer_of

        # Anyone holding the id and key may accept: the offer is found whatever its project.
        transfer = await self.svc.read(store.visible_transfer, viewer_of(None), transfer_id)
        given = key_hash(transfer["salt"], key)
        if not hmac.compare_digest(given, transfer["key_hash"]):
            raise BadRequest(f"Invalid auth key: attempt to transfer {transfer_id} with an invalid auth key.")
        return await self.svc.propose(c.AcceptTransfer(transfer_id, given, project, ctx.user_id,
                                                       self.svc.defaults(), self.svc.now()))

"""The replicated commands of the image service.

Ids, upload ids, timestamps, checksums and sizes are decided by the service
before proposing; apply only checks the image's current state and writes.
"""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("image.create")
class CreateImage(Command):
    row: dict[str, Any]  # every column of ``images``; ``properties`` as a dict
    tags: tuple[str, ...] = ()


@command("image.update")
class UpdateImage(Command):
    """Apply JSON-patch operations, normalised by ``core.parse_patch``, to the image as it is now."""

    id: str
    ops: tuple[dict[str, Any], ...]
    at: str


@command("image.delete")
class DeleteImage(Command):
    id: str


@command("image.upload.begin")
class BeginUpload(Command):
    """queued → saving; the data will be kept on ``node``."""

    id: str
    upload_id: str
    node: str
    at: str


@command("image.upload.finish")
class FinishUpload(Command):
    """saving → active, with what the stored data measured."""

    id: str
    upload_id: str
    size: int
    virtual_size: int | None
    checksum: str
    os_hash_algo: str
    os_hash_value: str
    at: str


@command("image.upload.abort")
class AbortUpload(Command):
    """saving → queued: the upload failed or was refused, and its data is gone."""

    id: str
    upload_id: str
    at: str


@command("image.deactivate")
class Deactivate(Command):
    id: str
    at: str


@command("image.reactivate")
class Reactivate(Command):
    id: str
    at: str


@command("image.tag.add")
class AddTag(Command):
    id: str
    tag: str
    at: str


@command("image.tag.remove")
class RemoveTag(Command):
    id: str
    tag: str
    at: str


@command("image.member.add")
class AddMember(Command):
    image_id: str
    member_id: str
    at: str


@command("image.member.update")
class UpdateMember(Command):
    image_id: str
    member_id: str
    status: str
    at: str


@command("image.member.remove")
class RemoveMember(Command):
    image_id: str
    member_id: str

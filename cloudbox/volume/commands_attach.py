"""Replicated commands of attachments, QoS specs, uploads to images and volume backends.

Imported by commands.py (the store's commands module), so a log decodes with the store alone.
"""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("volume.attachment.reserve")
class ReserveAttachment(Command):
    """A new attachment of ``row['volume_id']``: reserved (no connector) or attaching (with one).

    ``legacy_attached``: os-attach's one-step attach (the attachment is attached at once)."""

    row: dict[str, Any]  # every column of volume_attachments; connector as a dict
    legacy_attached: bool


@command("volume.attachment.update")
class UpdateAttachment(Command):
    """A reserved (or attaching) attachment gets its connector: attaching."""

    id: str
    connector: dict[str, Any]
    connection_info: dict[str, Any]
    mountpoint: str | None
    attached_host: str | None
    at: str


@command("volume.attachment.complete")
class CompleteAttachment(Command):
    """attaching → attached; the volume becomes in-use."""

    id: str
    at: str


@command("volume.attachment.delete")
class DeleteAttachments(Command):
    """The attachments go; the volume's status follows what is left (available when none)."""

    volume_id: str
    ids: tuple[str, ...]
    at: str


@command("volume.attachment.exported")
class MarkExported(Command):
    """The volume's node exports the volume over NBD for this attachment (a guest on another
    node): the guest's node, waiting in connect, may now plug the disk in. Proposed by the
    volume's node's worker; a no-op when the attachment went meanwhile."""

    id: str
    at: str


@command("volume.settle")
class SettleVolume(Command):
    """A volume in one of ``expect`` takes the status its attachments give (os-unreserve,
    os-roll_detaching)."""

    id: str
    expect: tuple[str, ...]
    at: str


@command("volume.legacy_reserve")
class LegacyReserve(Command):
    """os-reserve: available (or in-use when multiattach) → attaching."""

    id: str
    at: str


@command("volume.upload.begin")
class BeginVolumeUpload(Command):
    """available (or in-use with force) → uploading into image ``image_id``."""

    volume_id: str
    image_id: str
    disk_format: str
    force: bool
    at: str


@command("volume.upload.finish")
class FinishVolumeUpload(Command):
    """uploading → the status it had; ``message`` says why when the upload failed."""

    volume_id: str
    message: str
    at: str


@command("volume.reimage", since=2)
class ReimageVolume(Command):
    """Cinder's os-reimage (3.68): available or error (or reserved, with ``reserved``: Nova's
    rebuild of a volume-backed server) → downloading; the volume's node writes ``image_id`` over
    the volume, then it goes back to available (reserved when it has an attachment)."""

    id: str
    image_id: str
    image_metadata: dict[str, str]
    reserved: bool
    at: str


@command("volume.qos.create")
class CreateQos(Command):
    row: dict[str, Any]


@command("volume.qos.update")
class UpdateQos(Command):
    """Set ``values``, remove ``unset`` keys, change the consumer when given."""

    id: str
    values: dict[str, str]
    unset: tuple[str, ...]
    consumer: str | None
    at: str


@command("volume.qos.delete")
class DeleteQos(Command):
    id: str
    force: bool


@command("volume.qos.associate")
class AssociateQos(Command):
    """Associate (or, with ``associate`` false, disassociate) a type; ``type_id`` None: every type."""

    id: str
    type_id: str | None
    associate: bool


@command("volume.backend.register")
class RegisterBackend(Command):
    """A node's volume backend (Cinder's cinder-volume service of that host)."""

    row: dict[str, Any]

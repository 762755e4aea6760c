"""The replicated commands of the volume service.

Ids, timestamps, the host that keeps a volume's data and the quota defaults in
force are decided by the proposer and travel in the command; apply checks the
current state (status, quotas, snapshots, types) and writes, the same on every node.
"""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("volume.create")
class CreateVolume(Command):
    """A new volume in ``creating`` (blank, or from row's image_id / snapshot_id / source_volid)."""

    row: dict[str, Any]  # every column of ``volumes``; metadata as a dict
    defaults: dict[str, int]  # the cloud's default quotas when proposed


@command("volume.transition")
class Transition(Command):
    """Status ``to`` if the volume's status is one of ``expect`` (any, when empty), with ``changes``."""

    id: str
    expect: tuple[str, ...]
    to: str
    at: str
    changes: dict[str, Any]


@command("volume.update")
class UpdateVolume(Command):
    """Name, description, metadata (whole or merged), bootable, readonly."""

    id: str
    changes: dict[str, Any]
    at: str


@command("volume.extend")
class ExtendVolume(Command):
    """available (or in-use when ``attached``: asked at 3.42+) → extending towards ``new_size`` GB,
    inside the gigabytes quota."""

    id: str
    new_size: int
    defaults: dict[str, int]
    at: str
    attached: bool = False  # older log entries: available only


@command("volume.extend.remote", since=2)
class ExtendRemoteVolume(ExtendVolume):
    """ExtendVolume of an in-use volume attached to a guest on another node (over NBD): the
    volume's node grows its export too (older nodes refuse that extend: hence a kind of its own)."""


@command("volume.retype")
class RetypeVolume(Command):
    id: str
    type_id: str
    defaults: dict[str, int]
    at: str


@command("volume.delete")
class DeleteVolume(Command):
    """→ deleting (with its snapshots when ``cascade``); refused while attached or with snapshots."""

    id: str
    cascade: bool
    force: bool
    at: str


@command("volume.purge")
class PurgeVolume(Command):
    """The volume's data is gone: its row goes."""

    id: str


@command("volume.snapshot.create")
class CreateSnapshot(Command):
    row: dict[str, Any]
    force: bool
    defaults: dict[str, int]


@command("volume.snapshot.transition")
class SnapshotTransition(Command):
    id: str
    expect: tuple[str, ...]
    to: str
    at: str
    changes: dict[str, Any]


@command("volume.snapshot.update")
class UpdateSnapshot(Command):
    id: str
    changes: dict[str, Any]
    at: str


@command("volume.snapshot.delete")
class DeleteSnapshot(Command):
    id: str
    at: str


@command("volume.snapshot.purge")
class PurgeSnapshot(Command):
    id: str


@command("volume.type.create")
class CreateType(Command):
    row: dict[str, Any]


@command("volume.type.update")
class UpdateType(Command):
    id: str
    changes: dict[str, Any]
    at: str


@command("volume.type.delete")
class DeleteType(Command):
    id: str


@command("volume.type.extra_specs")
class SetExtraSpecs(Command):
    """Set ``values`` and remove ``unset`` keys of a type's extra specs."""

    id: str
    values: dict[str, str]
    unset: tuple[str, ...]
    at: str


@command("volume.type.access")
class TypeAccess(Command):
    id: str
    project_id: str
    grant: bool


@command("volume.type.default")
class SetDefaultType(Command):
    """A project's default type ('' project: the cloud's); ``type_id`` None removes it."""

    project_id: str
    type_id: str | None


@command("volume.quota.set")
class SetQuota(Command):
    project_id: str  # "class:default" holds the cloud's defaults set by an admin
    limits: dict[str, int]


@command("volume.quota.delete")
class DeleteQuota(Command):
    project_id: str


@command("volume.message.delete")
class DeleteMessage(Command):
    """A user message read and dismissed."""

    id: str


@command("volume.transfer.create")
class CreateTransfer(Command):
    """Offer an available volume to another project: it awaits the transfer."""

    row: dict[str, Any]  # every column of volume_transfers (the key as a salted hash)


@command("volume.transfer.delete")
class DeleteTransfer(Command):
    """Withdraw an offer: the volume is available again."""

    id: str
    at: str


@command("volume.transfer.accept")
class AcceptTransfer(Command):
    """The volume (and its snapshots, unless the offer said not) moves to the accepting project."""

    id: str
    key_hash: str  # of the key the accepter gave, with the offer's salt
    project_id: str
    user_id: str
    defaults: dict[str, int]
    at: str


from cloudbox.volume.commands_attach import *  # noqa: E402,F401,F403 (attachments, QoS, uploads, backends)
from cloudbox.volume.commands_groups import *  # noqa: E402,F401,F403 (group types, groups, group snapshots)
from cloudbox.volume.commands_backups import *  # noqa: E402,F401,F403 (volume backups)

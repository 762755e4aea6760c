"""Replicated commands of volume backups (Cinder's /backups).

Imported by commands.py (the store's commands module), so a log decodes with the store alone.
"""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("volume.backup.create")
class CreateBackup(Command):
    """A backup in ``creating`` of ``row['volume_id']``; with ``row['is_incremental']`` its parent
    is chosen in apply (the volume's newest available backup), so every node picks the same."""

    row: dict[str, Any]  # every column of volume_backups but parent_id
    force: bool  # an in-use volume may be backed up
    defaults: dict[str, int]


@command("volume.backup.import")
class ImportBackup(Command):
    """An exported backup record made a backup again (available; its manifest copied already)."""

    row: dict[str, Any]


@command("volume.backup.transition")
class BackupTransition(Command):
    """Status ``to`` if the backup's status is one of ``expect``, with ``changes``; a backup
    leaving ``creating`` gives its volume back the status it had (``volume_status``)."""

    id: str
    expect: tuple[str, ...]
    to: str
    at: str
    changes: dict[str, Any]


@command("volume.backup.update")
class UpdateBackup(Command):
    id: str
    changes: dict[str, Any]  # name, description, metadata
    at: str


@command("volume.backup.delete")
class DeleteBackup(Command):
    """To ``deleting`` (the worker of its node removes its objects, then purges it); ``force``
    (an admin's os-force_delete) takes any status but deleting."""

    id: str
    force: bool
    at: str


@command("volume.backup.purge")
class PurgeBackup(Command):
    id: str


@command("volume.backup.restore")
class RestoreBackup(Command):
    """The backup to ``restoring`` and the target volume to ``restoring-backup``; with
    ``new_volume`` (a CreateVolume row) the target is made here, its disk by the restore."""

    id: str
    volume_id: str
    new_volume: dict[str, Any] | None
    defaults: dict[str, int]
    at: str


@command("volume.backup.restored")
class FinishRestore(Command):
    """The restore ended: the backup available again; its volume available, or error_restoring
    with ``message``."""

    id: str
    message: str
    at: str
    volume: dict[str, Any] | None = None  # what the backup kept of its volume: metadata, bootable, image metadata

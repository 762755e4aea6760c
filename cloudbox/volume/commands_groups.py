"""Replicated commands of generic volume groups: group types, groups and group snapshots.

Imported by commands.py (the store's commands module), so a log decodes with the store alone.
"""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("volume.group_type.create")
class CreateGroupType(Command):
    row: dict[str, Any]


@command("volume.group_type.update")
class UpdateGroupType(Command):
    """Name, description, is_public; specs merged (``specs``) or removed (``remove``)."""

    id: str
    changes: dict[str, Any]
    specs: dict[str, str]
    remove: tuple[str, ...]
    at: str


@command("volume.group_type.delete")
class DeleteGroupType(Command):
    id: str


@command("volume.group.create")
class CreateGroup(Command):
    """A group, with the volumes made from its source (another group, a group snapshot)."""

    row: dict[str, Any]
    volumes: list[dict[str, Any]]  # rows of volumes, as CreateVolume's
    defaults: dict[str, int]


@command("volume.group.update")
class UpdateGroup(Command):
    id: str
    changes: dict[str, Any]  # name, description
    add: tuple[str, ...]  # volume ids
    remove: tuple[str, ...]
    at: str


@command("volume.group.delete")
class DeleteGroup(Command):
    """The group goes; with ``delete_volumes`` its volumes are deleted, else it must have none."""

    id: str
    delete_volumes: bool
    at: str


@command("volume.group.status")
class GroupStatus(Command):
    """An admin's reset of a group's (or a group snapshot's) status."""

    id: str
    status: str
    at: str
    snapshot: bool = False


@command("volume.group_snapshot.create")
class CreateGroupSnapshot(Command):
    row: dict[str, Any]
    snapshots: list[dict[str, Any]]  # rows of snapshots, as CreateSnapshot's, one per volume
    defaults: dict[str, int]


@command("volume.group_snapshot.delete")
class DeleteGroupSnapshot(Command):
    id: str
    at: str

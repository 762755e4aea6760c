"""The replicated commands of the object service.

Only metadata travels in the log; an object's bytes are on the disks of the nodes its row names
(``nodes``), written and fsynced before its ``object.put`` is proposed. Times (seconds since the
epoch, as Swift's X-Timestamp) and data ids are decided by the proposer.
"""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("object.account.update")
class UpdateAccount(Command):
    """Set and remove account metadata (full lowercased header names); makes the account row."""

    account: str
    set: dict[str, str]
    remove: tuple[str, ...]
    at: float


@command("object.container.put")
class PutContainer(Command):
    """Create a container, or update the metadata of the one that exists; returns True if created."""

    account: str
    name: str
    set: dict[str, str]
    remove: tuple[str, ...]
    at: float


@command("object.container.update")
class UpdateContainer(Command):
    account: str
    name: str
    set: dict[str, str]
    remove: tuple[str, ...]
    at: float


@command("object.container.delete")
class DeleteContainer(Command):
    """Delete an empty container (409 while it holds objects)."""

    account: str
    name: str
    at: float


@command("object.put")
class PutObject(Command):
    """An object whose bytes are durable on ``row['nodes']``; replaces one of the same name.
    Returns the replaced object's data id (its file can go), or None. With ``archive`` (a
    container of the account: versioning), the replaced object moves there instead, named
    ``<len(name) as 3 hex digits><name>/<its X-Timestamp>``."""

    row: dict[str, Any]
    archive: str = ""


@command("object.update")
class UpdateObject(Command):
    """POST: the object's user metadata replaced, and its stored headers changed (empty removes)."""

    account: str
    container: str
    name: str
    metadata: dict[str, str]
    headers: dict[str, str]
    at: float


@command("object.delete")
class DeleteObject(Command):
    """Delete an object; with ``data_id`` only while that version is the current one (the
    expirer's guard against deleting a newer upload). Returns the data id whose file can go
    (None when the object moved to its versions container)."""

    account: str
    container: str
    name: str
    data_id: str
    at: float
    archive: str = ""  # versioning: the container of the versions
    restore: bool = False  # stack mode: the newest version comes back; else (history) the object moves there


@command("object.placed")
class PlaceObject(Command):
    """The replicator made a good copy of ``data_id`` on ``node_id``: add it to the row's nodes
    (nothing when the object changed meanwhile)."""

    account: str
    container: str
    name: str
    data_id: str
    node_id: str

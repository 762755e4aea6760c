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


# --- metadata definitions (apply_metadefs.py) ------------------------------------------------
@command("image.metadef.namespace.create")
class CreateNamespace(Command):
    """A namespace with what its create body defined inside it (rows as metadefs.*_row make them)."""

    row: dict[str, Any]
    associations: tuple[dict[str, Any], ...] = ()
    properties: tuple[dict[str, Any], ...] = ()
    objects: tuple[dict[str, Any], ...] = ()
    tags: tuple[str, ...] = ()


@command("image.metadef.namespace.update")
class UpdateNamespace(Command):
    """Replace a namespace's attributes (a rename too: ``changes["namespace"]``)."""

    namespace: str
    changes: dict[str, Any]
    at: str


@command("image.metadef.namespace.delete")
class DeleteNamespace(Command):
    namespace: str


@command("image.metadef.namespace.clear")
class ClearNamespace(Command):
    """Delete every object, property or tag (``kind``) of a namespace."""

    namespace: str
    kind: str
    at: str


@command("image.metadef.put")
class PutDefinition(Command):
    """Create (``name`` None) or replace (``name``: the current name) an object or a property."""

    namespace: str
    kind: str  # "objects" or "properties"
    name: str | None
    row: dict[str, Any]  # {"name", "body"}
    at: str


@command("image.metadef.remove")
class RemoveDefinition(Command):
    namespace: str
    kind: str  # "objects", "properties" or "tags"
    name: str
    at: str


@command("image.metadef.tags.add")
class AddMetadefTags(Command):
    """Add tags to a namespace; ``replace`` drops its tags first (Glance's POST .../tags)."""

    namespace: str
    names: tuple[str, ...]
    replace: bool
    at: str


@command("image.metadef.tag.rename")
class RenameMetadefTag(Command):
    namespace: str
    name: str
    new_name: str
    at: str


@command("image.metadef.association.add")
class AddAssociation(Command):
    namespace: str
    row: dict[str, Any]  # {"resource_type", "prefix", "properties_target"}
    at: str


@command("image.metadef.association.remove")
class RemoveAssociation(Command):
    namespace: str
    resource_type: str
    at: str


# --- interoperable import and tasks (apply_imports.py) ---------------------------------------
@command("image.stage.begin")
class BeginStage(Command):
    """queued → uploading: data for a later glance-direct import is staged on ``node``."""

    id: str
    upload_id: str
    node: str
    at: str


@command("image.stage.finish")
class FinishStage(Command):
    """The staged data is complete (the image says where: os_glance_stage_host)."""

    id: str
    upload_id: str
    at: str


@command("image.import.start")
class StartImport(Command):
    """An import task begins: glance-direct takes a staged image to importing; copy-image keeps it active."""

    task: dict[str, Any]  # imports.task_row
    method: str
    stores: tuple[str, ...]  # the stores still to fill
    at: str


@command("image.task.process")
class ProcessTask(Command):
    """pending → processing: the node that runs the task took it."""

    id: str
    at: str


@command("image.import.finish")
class FinishImport(Command):
    """The task succeeded; glance-direct's image is active with what its stored data measured."""

    image_id: str
    task_id: str
    size: int | None
    virtual_size: int | None
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    at: str
    expires_at: str


@command("image.import.fail")
class FailImport(Command):
    """The task failed; glance-direct's image is queued again (its staged data is gone)."""

    image_id: str
    task_id: str
    message: str
    at: str
    expires_at: str

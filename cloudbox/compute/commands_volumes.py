"""The replicated commands of servers' block device mappings (Nova's BDMs): the volumes attached to
a server, and the volume a server boots from.

A row (``block_device_mappings``, compute store migration 8) is proposed ``attaching`` once the
volume service reserved the volume for the server, becomes ``attached`` when the disk is in the
guest (with the volume service's ``connection_info``), ``detaching`` while it leaves, and goes
when the volume service forgot the attachment (or with its server).
"""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("compute.bdm.create")
class CreateBlockDevices(Command):
    """New mappings of one server (an attach makes one; a boot from volume may make several).

    Each row: id (uuid), server_id, project_id, volume_id, attachment_id, source_type
    (volume/image/snapshot/blank), destination_type (volume/local), boot_index (0: the root;
    None: not bootable), device_name (/dev/vdb), tag, delete_on_termination, volume_size,
    image_id, snapshot_id, status, connection_info, created_at.  Apply refuses them (404) when the
    server is gone, (409) when ``vm_states`` is given and the server's vm_state is not in it or
    it has a task, (400) when a volume is already mapped to the server and (409) when a device
    name is taken on it."""

    rows: tuple[dict[str, Any], ...]
    vm_states: tuple[str, ...] | None = None  # the server's vm_states that allow them (None: any)


@command("compute.bdm.update")
class UpdateBlockDevice(Command):
    """Columns of one mapping change (status, connection_info, attachment_id, device_name,
    delete_on_termination, volume_size, updated_at); refused (409) when its status is not one of
    ``expect_status`` (None: any)."""

    id: str
    changes: dict[str, Any]
    expect_status: tuple[str, ...] | None = None


@command("compute.bdm.delete")
class DeleteBlockDevices(Command):
    """Mappings go (their volumes were detached at the volume service); absent ones are no error."""

    ids: tuple[str, ...]

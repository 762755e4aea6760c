"""The replicated commands of compute's lifecycle actions: resize and migrate, and their migrations."""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("compute.server.start_resize")
class StartResize(Command):
    """A resize (or a cold migration: the same flavor) begins: the server takes ``flavor`` and
    keeps its old one to revert to, and a migration is recorded.  Apply refuses it (409) unless
    the server is ACTIVE or SHUTOFF with no task, and (403) beyond the project's quota."""

    server_id: str
    flavor: dict[str, Any]
    migration: dict[str, Any]  # uuid, migration_type, source_compute, dest_compute, dest_host, user_id, created_at
    quota: dict[str, int]  # the project's cores and ram limits at proposal (-1: unlimited)
    at: str


@command("compute.migration.update")
class UpdateMigration(Command):
    id: int
    changes: dict[str, Any]  # status, dest_compute, dest_host, updated_at

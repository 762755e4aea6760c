"""The replicated commands of the compute service."""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("compute.flavor.create")
class CreateFlavor(Command):
    row: dict[str, Any]


@command("compute.flavor.delete")
class DeleteFlavor(Command):
    id: str


@command("compute.flavor.describe")
class DescribeFlavor(Command):
    id: str
    description: str | None


@command("compute.flavor.set_extra_specs")
class SetFlavorExtraSpecs(Command):
    id: str
    extra_specs: dict[str, str]  # the whole new set


@command("compute.flavor.access")
class FlavorAccess(Command):
    flavor_id: str
    project_id: str
    grant: bool


@command("compute.keypair.create")
class CreateKeypair(Command):
    row: dict[str, Any]
    limit: int = -1  # the owner's key pair quota at proposal time (-1: unlimited)


@command("compute.keypair.delete")
class DeleteKeypair(Command):
    user_id: str
    name: str


@command("compute.host.report")
class ReportHost(Command):
    """A node reports its hypervisor's capacity (at start and when it changes)."""

    row: dict[str, Any]


@command("compute.server.create")
class CreateServer(Command):
    """One server (logs written before CreateServers; still applied when replayed)."""

    row: dict[str, Any]
    # Effective quota limits of the project at proposal time (-1 = unlimited).
    quota: dict[str, int]


@command("compute.server.create_many")
class CreateServers(Command):
    """The servers of one create request (1 to max_count), made together: as many as the
    project's quota leaves room for, or none (OverQuota) when that is fewer than min_count."""

    rows: tuple[dict[str, Any], ...]
    # Effective quota limits of the project at proposal time (-1 = unlimited).
    quota: dict[str, int]
    min_count: int = 1


@command("compute.server.claim")
class ClaimHost(Command):
    """Place a server on a host, if the host still has room within these limits."""

    server_id: str
    host: str
    limit_vcpus: int
    limit_ram_mb: int
    limit_disk_gb: int
    at: str
    cidr: str | None = None  # unused since the network service; kept so older logs still decode


@command("compute.server.update")
class UpdateServer(Command):
    id: str
    changes: dict[str, Any]
    # Only apply if the server's task_state is one of these (None: always).
    expect_task_states: tuple[str | None, ...] | None = None


@command("compute.server.delete")
class DeleteServer(Command):
    """Forget a server whose host resources are gone."""

    id: str


@command("compute.server_group.create")
class CreateServerGroup(Command):
    row: dict[str, Any]
    limit: int = -1  # the project's server group quota at proposal time (-1: unlimited)


@command("compute.server_group.delete")
class DeleteServerGroup(Command):
    id: str


@command("compute.quota.set")
class SetQuota(Command):
    project_id: str
    limits: dict[str, int]


@command("compute.aggregate.create")
class CreateAggregate(Command):
    row: dict[str, Any]  # uuid, name, availability_zone, metadata, hosts, created_at (the id is the next integer)


@command("compute.aggregate.update")
class UpdateAggregate(Command):
    id: int
    changes: dict[str, Any]  # columns, or add_host / remove_host / metadata_merge


@command("compute.aggregate.delete")
class DeleteAggregate(Command):
    id: int


from cloudbox.compute import commands_records  # noqa: E402,F401 - registers the records' commands
from cloudbox.compute import commands_lifecycle  # noqa: E402,F401 - registers the lifecycle commands
from cloudbox.compute import commands_volumes  # noqa: E402,F401 - registers the block device commands

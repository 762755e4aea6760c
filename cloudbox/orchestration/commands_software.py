"""Replicated commands of Heat's software configs and deployments (imported by commands.py).

A config never changes once made (Heat's are immutable: a new config is a new row); a
deployment names a config and a server and carries the state its server reports back. Ids and
times come from the proposer; apply checks what must hold (a config named by a deployment exists
in its project, a config in use is not deleted).
"""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("orchestration.software_config.create", since=2)
class CreateSoftwareConfig(Command):
    """``row``: every column of ``orchestration_software_configs``."""

    row: dict[str, Any]


@command("orchestration.software_config.delete", since=2)
class DeleteSoftwareConfig(Command):
    id: str


@command("orchestration.software_deployment.create", since=2)
class CreateSoftwareDeployment(Command):
    """``row``: every column of ``orchestration_software_deployments``."""

    row: dict[str, Any]


@command("orchestration.software_deployment.update", since=2)
class UpdateSoftwareDeployment(Command):
    """``changes``: config_id, input_values, output_values, action, status, status_reason."""

    id: str
    changes: dict[str, Any]
    at: str


@command("orchestration.software_deployment.delete", since=2)
class DeleteSoftwareDeployment(Command):
    id: str

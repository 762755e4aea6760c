"""Compute's records: instance actions (os-instance-actions), the server password
(os-server-password), diagnostics and the instance usage audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloudbox.api.routes import Call

if TYPE_CHECKING:
    from cloudbox.compute.service import ComputeService


async def action_accepted(svc: ComputeService, call: Call, server: dict[str, Any], action: str) -> None:
    """Record that ``action`` was accepted for ``server`` (the instance action Nova lists)."""
    # Filled in by the records work (issue 13): until then nothing is recorded.

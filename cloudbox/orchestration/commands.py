"""The replicated commands of the orchestration service (Heat).

Ids, times and event ids are decided by the proposer and travel in the command; apply checks
the state it expects (a stack name free in its project, a stack still in the action it was in)
and writes, the same on every node. Every status change of a stack or of one of its resources
leaves an event (Heat's event list), numbered in apply so that the order is the log's.
"""

from __future__ import annotations

from typing import Any

from cloudbox.orchestration import commands_software  # noqa: F401  (software configs' commands register too)
from cloudbox.state.commands import Command, command


@command("orchestration.stack.create", since=2)
class CreateStack(Command):
    """A new stack in CREATE IN_PROGRESS (``row``: every column of ``orchestration_stacks``)."""

    row: dict[str, Any]
    event_id: str


@command("orchestration.stack.state", since=2)
class StackState(Command):
    """The stack goes to ``action`` ``status`` (with ``changes`` to its columns), if its current
    action/status is one of ``expect`` ("ACTION_STATUS" strings; any when empty)."""

    id: str
    action: str
    status: str
    reason: str
    at: str
    event_id: str
    expect: tuple[str, ...] = ()
    changes: dict[str, Any] | None = None


@command("orchestration.resource.state", since=2)
class ResourceState(Command):
    """A resource of a stack goes to ``action`` ``status``; its row is made on first sight
    (``row_id``, ``type``); ``changes``: physical_id, properties, attributes, data, replaced_by."""

    stack_id: str
    name: str
    row_id: str
    type: str
    action: str
    status: str
    reason: str
    at: str
    event_id: str  # "" for a change that is no event (the physical id learnt mid-create)
    changes: dict[str, Any] | None = None


@command("orchestration.resource.remove", since=2)
class RemoveResource(Command):
    """A resource is gone from its stack (deleted, or replaced and its old self deleted)."""

    stack_id: str
    row_id: str


@command("orchestration.stack.purge", since=2)
class PurgeStack(Command):
    """A deleted stack's rows go (its resources were deleted first)."""

    id: str


@command("orchestration.resource.signal", since=2)
class SignalResource(Command):
    """A signal reached a resource (a WaitConditionHandle's URL was called): appended to its
    data's ``signals`` in apply, so two at once both count."""

    stack_id: str
    name: str
    signal: dict[str, Any]
    at: str
    event_id: str


@command("orchestration.resource.signal.bounded", since=2)
class SignalBounded(SignalResource):
    """A signal kept within a bound, decided in apply so that signals racing each other cannot pass
    it: a WaitConditionHandle keeps at most ``limit`` distinct signal ids (one with an id it holds
    replaces that one, as Heat's does; a new id past the bound is refused, 400); a ScalingPolicy
    keeps its last ``POLICY_KEEP`` signals and the time of its last scaling, and takes at most
    ``limit`` signals that scaled nothing (cooldown, or the group at its bound) since that scaling."""

    limit: int = 1


@command("orchestration.stack.claim", since=2)
class ClaimStack(Command):
    """A live node takes over a stack in progress whose runner is down: applied only while the
    stack's runner is still ``runner_from`` (so of two nodes claiming it, one gets it)."""

    id: str
    runner_from: str
    runner_to: str
    at: str
    event_id: str


@command("orchestration.plan.create", since=2)
class CreatePlan(Command):
    """A stored plan (``row``: every column of ``orchestration_plans``) of the stack's update."""

    row: dict[str, Any]


@command("orchestration.plan.apply", since=2)
class ApplyPlan(Command):
    """The stored plan's update starts (UPDATE IN_PROGRESS, its parts stored, the stack's own kept in
    ``previous``), only while the stack's event_seq is still the plan's stack_version and it is not
    in progress; the plan is used up."""

    id: str
    stack_id: str
    runner: str
    at: str
    event_id: str


@command("orchestration.plan.delete", since=2)
class DeletePlan(Command):
    id: str
    stack_id: str

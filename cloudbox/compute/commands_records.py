"""The replicated commands of compute's records (instance actions and server passwords), and a
project's quota reset (Nova's DELETE of a quota set)."""

from __future__ import annotations

from cloudbox.state.commands import Command, command


@command("compute.action.record")
class RecordActions(Command):
    """One request's instance action on each of its servers (a create of several servers records
    one action per server, with the same request id), with the compute event it starts, if any."""

    server_ids: tuple[str, ...]
    request_id: str
    action: str  # Nova's name: "create", "delete", "reboot", "stop", ...
    project_id: str  # the server's project (Nova records the server's, not the caller's)
    user_id: str  # the caller
    start_time: str
    event: str | None = None  # e.g. "compute_reboot_instance"; None: the action has no event (lock)
    host: str | None = None  # where the event runs


@command("compute.action.finish")
class FinishEvents(Command):
    """The open events of a server ended (its task settled, or the server is gone)."""

    server_id: str
    finish_time: str
    result: str  # "Success" or "Error"
    host: str | None = None  # the host that ran them (a create's event learns its host here)
    details: str | None = None  # why they failed (the server's fault), shown to admins from 2.84


@command("compute.server.password")
class SetPassword(Command):
    """The password a guest posted to the metadata service (``once``: refused when one is set),
    or an owner's clear (empty, not ``once``)."""

    server_id: str
    password: str
    once: bool = True


@command("compute.quota.reset")
class ResetQuota(Command):
    """A project's own limits go: it has the defaults again (Nova's revert to defaults)."""

    project_id: str

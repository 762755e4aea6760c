"""Replicated commands of the cluster: members and join tokens."""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command


@command("cluster.node.register")
class RegisterNode(Command):
    """A node's row (made at its first start, or when it joins): id, name, api_url, tunnel_ip,
    etcd_member, at."""

    row: dict[str, Any]


@command("cluster.token.create")
class CreateJoinToken(Command):
    """A one-time join secret for the node ``name``, valid until ``expires_at``."""

    id: str
    name: str
    secret_hash: str
    created_at: str
    expires_at: str


@command("cluster.token.consume")
class ConsumeJoinToken(Command):
    """Use the token ``id`` at ``at`` (refused when used, expired or unknown) and add the node row."""

    id: str
    at: str
    row: dict[str, Any]


@command("cluster.node.heartbeat")
class Heartbeat(Command):
    """No longer proposed: a node's liveness is its lease in etcd (cluster.liveness), outside the
    log.  Kept so that logs written before replay."""

    node_id: str
    at: str
    capacity: dict[str, Any]


@command("cluster.node.remove")
class RemoveNode(Command):
    node_id: str
    at: str


@command("cluster.upgrade.finish", since=2)
class FinishUpgrade(Command):
    """Record that the cluster speaks command schema ``schema`` from now on (every node did, or the
    operator forced it over the nodes named in ``forced_over``); nodes older than it may not join."""

    schema: int
    at: str
    forced_over: tuple[str, ...] = ()

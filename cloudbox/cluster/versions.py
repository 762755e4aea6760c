"""Which release and command schema every node runs: what makes a rolling upgrade safe (issue 19).

Rules:
- Each node keeps the key ``/cloudbox/versions/<node id>`` in etcd: its package version and
  the command schema it speaks (``cloudbox.state.commands.known_schema``).  No lease: a node
  that is down still counts, since it will come back with what it runs now.  The node puts
  the key when it starts (and again if the key says otherwise); the node that accepts a join
  puts the joiner's, from its join request, so the gap before the joiner starts is covered.
- A member without a key runs a release from before this module: schema 1.
- Every ``tick`` seconds each node reads the prefix and sets the state engine's
  ``cluster_schema`` to the lowest schema among the members (``cluster_nodes`` rows), so a
  command is proposed only when every member can apply it.  Until the first read it stays at
  1 (nothing newer is proposed on a guess).  Alone, a node speaks to itself only.
- Versions are observations, not state: nothing here goes through the command log (an old
  node could not apply a command that records a newer one).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

import trio

from cloudbox import __version__
from cloudbox.cluster.etcd import EtcdClient
from cloudbox.errors import Unavailable
from cloudbox.state import commands as cmds
from cloudbox.state.engine import StateEngine

log = logging.getLogger("cloudbox.cluster")

PREFIX = "/cloudbox/versions/"
TICK = 2.0
RETRY = 0.5
BEFORE = {"package": "unknown (older than version reporting)", "command_schema": 1}

Rows = Callable[[], Awaitable[list[dict[str, Any]]]]


def own() -> dict[str, Any]:
    """This process's release and command schema."""
    return {"package": __version__, "command_schema": cmds.known_schema()}


async def put(client: EtcdClient, node_id: str, version: dict[str, Any]) -> None:
    await client.put(PREFIX + node_id, json.dumps(version, sort_keys=True).encode())


def lowest(rows: list[dict[str, Any]], versions: dict[str, dict[str, Any]]) -> tuple[int, list[str]]:
    """(the lowest command schema among the members ``rows``, the names of the nodes that speak only it)."""
    schemas = {row["name"]: int(versions.get(row["id"], BEFORE)["command_schema"]) for row in rows}
    if not schemas:
        return cmds.known_schema(), []
    low = min(schemas.values())
    return low, sorted(name for name, schema in schemas.items() if schema == low)


class NodeVersions:
    """This node's version key and everyone's versions; ``run`` keeps both while it runs."""

    def __init__(self, engine: StateEngine, node_id: str, rows: Rows) -> None:
        self.engine = engine
        self.node_id = node_id
        self.rows = rows
        self.client: EtcdClient | None = None
        self.versions: dict[str, dict[str, Any]] = {node_id: own()}

    def of(self, node_id: str) -> dict[str, Any]:
        """What ``node_id`` runs (as last read; BEFORE when it never said)."""
        if node_id == self.node_id:
            return own()
        return self.versions.get(node_id, BEFORE)

    def clustered(self, client: EtcdClient) -> None:
        """In a cluster from now on: propose nothing newer than schema 1 until the members are read."""
        self.client = client
        self.engine.cluster_schema, self.engine.schema_laggards = 1, ""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        trouble = ""
        while True:
            try:
                await self.refresh()
                trouble = ""
            except Unavailable as exc:
                if exc.message != trouble:
                    log.warning("cannot read the nodes' versions", extra={"why": exc.message})
                    trouble = exc.message
            except Exception:  # noqa: BLE001 - the version watch must outlast any one failure
                log.exception("reading the nodes' versions failed")
            await trio.sleep(TICK if not trouble else RETRY)

    async def refresh(self) -> None:
        """Read every node's version (putting ours if etcd says otherwise) and set the engine's gate."""
        if self.client is None:
            return
        found = await self.client.get_prefix(PREFIX)
        versions = {}
        for key, value in found.items():
            try:
                versions[key[len(PREFIX):]] = json.loads(value)
            except ValueError:
                continue
        if versions.get(self.node_id) != own():
            await put(self.client, self.node_id, own())
            versions[self.node_id] = own()
        self.versions = versions
        schema, laggards = lowest(await self.rows(), versions)
        schema = min(schema, cmds.known_schema())
        if schema != self.engine.cluster_schema:
            log.info("the cluster's lowest command schema changed",
                     extra={"schema": schema, "was": self.engine.cluster_schema, "nodes": laggards})
        self.engine.schema_laggards = ", ".join(laggards)
        self.engine.cluster_schema = schema

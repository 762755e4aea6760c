"""/cloudbox/v1: health, node status, token key rotation."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import tempfile
from pathlib import Path

import trio

from cloudbox import __version__
from cloudbox.api import streaming
from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.errors import Forbidden, Unauthorized
from cloudbox.identity.core import require
from cloudbox.image import api as image_api
from cloudbox.state.commands import known_schema

if TYPE_CHECKING:
    from cloudbox.server import Node

SNAPSHOT_CHUNK = 1 << 20


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


TOKEN_BODY = {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 63},
                   "ttl": {"type": "integer", "minimum": 1, "maximum": 604800}},
}
JOIN_BODY = {
    "type": "object", "required": ["token_id", "secret", "name", "csr", "address"],
    "properties": {
        **{k: {"type": "string", "minLength": 1, "maxLength": 8192}
           for k in ("token_id", "secret", "name", "csr", "address", "api_url", "peer_url")},
        # what the joiner runs (older joiners send neither: schema 1)
        "package": {"type": "string", "minLength": 1, "maxLength": 64},
        "command_schema": {"type": "integer", "minimum": 1, "maximum": 1000},
        # where the joiner's etcd member will listen (its etcd_client_port / etcd_peer_port settings)
        **{k: {"type": "integer", "minimum": 1, "maximum": 65535} for k in ("etcd_client_port", "etcd_peer_port")},
    },
}
UPGRADE_BODY = {
    "type": "object", "additionalProperties": False,
    "properties": {"force": {"type": "boolean"}},
}
ABORT_BODY = {
    "type": "object", "required": ["token_id", "secret", "node_id"],
    "properties": {k: {"type": "string", "minLength": 1, "maxLength": 256} for k in ("token_id", "secret", "node_id")},
}


def build(node: Node) -> ApiSpec:
    """``node`` is the running Node (see cloudbox.server): name, engine, identity, settings."""

    cluster = node.cluster

    def node_view() -> dict[str, Any]:
        return {
            "id": node.node_id, "name": node.name, "address": node.url,
            "role": "voter" if cluster.config and cluster.config.get("member") else (
                "client" if cluster.clustered else "single"),
            "status": "up", "version": __version__, "command_schema": known_schema(),
            "uptime_seconds": round(time.monotonic() - node.started, 1),
        }

    def member_view(row: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "name": row["name"], "role": row["role"], "address": row["api_url"],
                "tunnel_ip": row["tunnel_ip"], "status": "up" if row["up"] else "down", "up": row["up"],
                "joined_at": row["joined_at"], "heartbeat_at": row["heartbeat_at"], "capacity": row["capacity"],
                "version": row["version"]["package"], "command_schema": row["version"]["command_schema"]}

    def on_peer_port(call: Call) -> bool:
        server = call.request.scope.get("server") or (None, None)
        return server[1] == node.peer_port

    def node_or(call: Call, allowed: Any, action: str) -> None:
        """A member's own node certificate (peer port: root on a node) or a token with the role."""
        if not on_peer_port(call):
            if call.auth is None:
                raise Unauthorized("The request you have made requires authentication.")
            require(allowed(call.auth), action)

    def peer_only(call: Call) -> None:
        """Node-to-node routes answer only on the peer port, whose TLS requires a node certificate."""
        server = call.request.scope.get("server") or (None, None)
        if server[1] != node.peer_port:
            raise Forbidden("This route serves cluster members only, on the peer port with a node certificate.")

    async def health(call: Call) -> Any:
        stalled = node.engine.stalled
        return {
            "status": "ok" if node.engine.running and stalled is None else "degraded",
            "node": node.name,
            "version": __version__,
            "command_schema": known_schema(),
            # the log entry this node does not understand (it serves reads, refuses writes): upgrade it
            **({"stalled": stalled} if stalled is not None else {}),
            "services": {name: ("running" if alive() else "stopped") for name, alive in node.checks.items()},
        }

    async def status(call: Call) -> Any:
        require(call.auth.is_cloud_reader, "cloudbox:status")
        return {
            "node": node_view(),
            "state": {"applied_seq": node.engine.last_seq, "database": str(node.engine.path),
                      "database_bytes": node.engine.path.stat().st_size,
                      "applied_revision": node.engine.applied_revision, "stalled": node.engine.stalled},
            "upgrade": await cluster.upgrade_view(),
            "memory": {"rss_bytes": _rss_bytes()},
            "compute": {
                "running": node.compute.running, "unavailable": node.compute.unavailable or None,
                "accel": node.compute.host_info.accel if node.compute.host_info else None,
                "ghosts": sorted(node.compute.ghosts),
            },
            "settings": node.settings.as_dict(),
        }

    async def list_nodes(call: Call) -> Any:
        node_or(call, lambda a: a.is_cloud_reader, "cloudbox:list_nodes")
        limit, marker = call.page()
        rows = [member_view(r) for r in await cluster.nodes()]
        rows = [n for n in rows if not marker or n["id"] > marker]
        rows.sort(key=lambda n: n["id"])
        rows, links = call.paged(rows[: limit + 1], limit, "/nodes")
        return {"nodes": rows, "links": links}

    async def remove_node(call: Call, node_key: str) -> Reply:
        node_or(call, lambda a: a.is_cloud_admin, "cloudbox:remove_node")
        await cluster.remove(node_key, call.flag("force") or False)
        return Reply(None, 204)

    async def create_join_token(call: Call) -> Any:
        node_or(call, lambda a: a.is_cloud_admin, "cloudbox:create_join_token")
        token = await cluster.create_token(call.body["name"], int(call.body.get("ttl", 3600)))
        return Reply({"join_token": {"token": token, "name": call.body["name"]}}, 201)

    async def ca(call: Call) -> Any:
        from cloudbox import pki  # with cryptography's x509 at the first use: 1.8 MiB at idle (issue 14)

        pem = node.data_dir.ca_cert.read_bytes()
        return {"ca": pem.decode(), "fingerprint": pki.fingerprint(pem)}

    async def join(call: Call) -> Any:
        return Reply(await cluster.accept_join(call.body), 201)

    async def abort_join(call: Call) -> Reply:
        await cluster.abort_join(call.body)
        return Reply(None, 204)

    async def state(call: Call) -> Any:
        node_or(call, lambda a: a.is_cloud_reader, "cloudbox:cluster_state")
        revision, hashes = await trio.to_thread.run_sync(node.engine.state_at)
        return {"node": node.name, "applied_revision": revision, "applied_seq": node.engine.last_seq,
                "hashes": hashes, "clustered": cluster.clustered}

    async def upgrade(call: Call) -> Any:
        node_or(call, lambda a: a.is_cloud_reader, "cloudbox:cluster_upgrade")
        return await cluster.upgrade_view()

    async def finish_upgrade(call: Call) -> Any:
        node_or(call, lambda a: a.is_cloud_admin, "cloudbox:cluster_finish_upgrade")
        return await cluster.finish_upgrade(bool(call.body.get("force", False)))

    async def etcd(call: Call) -> Any:
        node_or(call, lambda a: a.is_cloud_reader, "cloudbox:cluster_etcd")
        return await cluster.etcd_view()

    async def snapshot(call: Call) -> Any:
        peer_only(call)
        tmp = Path(tempfile.mkstemp(prefix=".snapshot-", dir=node.data_dir.root)[1])
        try:
            revision = await trio.to_thread.run_sync(node.engine.snapshot_to, tmp)
            file = open(tmp, "rb")
        finally:
            tmp.unlink(missing_ok=True)  # the open file stays readable

        return streaming.file_response(file, "application/vnd.sqlite3", {"X-Cloudbox-Revision": str(revision)},
                                       SNAPSHOT_CHUNK)

    async def image_data(call: Call, image_id: str) -> Any:
        peer_only(call)
        image, file = await node.image.peer_data(image_id)
        return image_api.data_response(image, file, with_md5=False)

    async def rotate_token_keys(call: Call) -> Any:
        require(call.auth.is_cloud_admin, "cloudbox:rotate_token_keys")
        key_id = await node.identity.rotate_keys()
        return {"token_keys": {"primary": key_id}}

    return ApiSpec(
        "cloudbox", "/cloudbox/v1", "cloudbox",
        [
            Route("GET", "/health", health, access="public", summary="Is this node serving"),
            Route("GET", "/status", status, summary="This node's state, memory and settings"),
            Route("GET", "/nodes", list_nodes, access="public", query=("limit", "marker"), summary="Nodes of the cluster"),
            Route("DELETE", "/nodes/{node_key}", remove_node, access="public", query=("force",), status=204,
                  summary="Take a node out of the cluster"),
            Route("POST", "/cluster/join-tokens", create_join_token, access="public", status=201, body=TOKEN_BODY,
                  summary="A one-time token for `cloudbox join`"),
            Route("GET", "/cluster/ca", ca, access="public", summary="The cluster CA certificate (check its fingerprint)"),
            Route("POST", "/cluster/join", join, access="public", status=201, body=JOIN_BODY,
                  summary="Join with a token: returns the node's certificate and cluster settings"),
            Route("POST", "/cluster/join/abort", abort_join, access="public", status=204, body=ABORT_BODY,
                  summary="Undo a join whose node could not start"),
            Route("GET", "/cluster/state", state, access="public", summary="Applied revision and hashes of every replicated table"),
            Route("GET", "/cluster/upgrade", upgrade, access="public",
                  summary="Command schemas: the cluster's, the lowest of its nodes', this node's"),
            Route("POST", "/cluster/upgrade", finish_upgrade, access="public", body=UPGRADE_BODY,
                  summary="Finish a rolling upgrade: the cluster speaks this node's command schema from now on"),
            Route("GET", "/cluster/etcd", etcd, access="public", summary="etcd's members and leader"),
            Route("GET", "/cluster/snapshot", snapshot, access="public",
                  summary="A consistent copy of the state (peer port, node certificate)"),
            Route("GET", "/cluster/images/{image_id}/data", image_data, access="public",
                  summary="An image's data for another node (peer port, node certificate)"),
            Route("POST", "/token-keys/rotate", rotate_token_keys, summary="Rotate the token encryption key now"),
        ],
        catalog=("cloudbox", "cloudbox"),
    )

"""/cloudbox/v1: health, node status, token key rotation."""

from __future__ import annotations

import os
import time
from typing import Any

from cloudbox import __version__
from cloudbox.api.routes import ApiSpec, Call, Route
from cloudbox.identity.core import require


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def build(node: Any) -> ApiSpec:
    """``node`` is the running Node (see cloudbox.server): name, engine, identity, settings."""

    def node_view() -> dict[str, Any]:
        return {
            "id": node.node_id, "name": node.name, "role": "leader", "address": node.url,
            "status": "up", "version": __version__,
            "uptime_seconds": round(time.monotonic() - node.started, 1),
        }

    async def health(call: Call) -> Any:
        return {
            "status": "ok" if node.engine.running else "degraded",
            "node": node.name,
            "version": __version__,
            "services": {name: ("running" if alive() else "stopped") for name, alive in node.checks.items()},
        }

    async def status(call: Call) -> Any:
        require(call.auth.is_cloud_reader, "cloudbox:status")
        return {
            "node": node_view(),
            "state": {"applied_seq": node.engine.last_seq, "database": str(node.engine.path),
                      "database_bytes": node.engine.path.stat().st_size},
            "memory": {"rss_bytes": _rss_bytes()},
            "compute": {
                "running": node.compute.running, "unavailable": node.compute.unavailable or None,
                "accel": node.compute.host_info.accel if node.compute.host_info else None,
                "ghosts": sorted(node.compute.ghosts),
            },
            "settings": node.settings.as_dict(),
        }

    async def list_nodes(call: Call) -> Any:
        require(call.auth.is_cloud_reader, "cloudbox:list_nodes")
        limit, marker = call.page()
        nodes = [node_view()]
        rows = [n for n in nodes if not marker or n["id"] > marker][: limit + 1]
        rows, links = call.paged(rows, limit, "/nodes")
        return {"nodes": rows, "links": links}

    async def rotate_token_keys(call: Call) -> Any:
        require(call.auth.is_cloud_admin, "cloudbox:rotate_token_keys")
        key_id = await node.identity.rotate_keys()
        return {"token_keys": {"primary": key_id}}

    return ApiSpec(
        "cloudbox", "/cloudbox/v1", "cloudbox",
        [
            Route("GET", "/health", health, access="public", summary="Is this node serving"),
            Route("GET", "/status", status, summary="This node's state, memory and settings"),
            Route("GET", "/nodes", list_nodes, query=("limit", "marker"), summary="Nodes of the cluster"),
            Route("POST", "/token-keys/rotate", rotate_token_keys, summary="Rotate the token encryption key now"),
        ],
        catalog=("cloudbox", "cloudbox"),
    )

"""Response bodies of cloudbox's own API (/cloudbox/v1), the web UI and this document."""

from __future__ import annotations

from cloudbox.api.responses.shapes import (
    ANY_OBJ, BOOL, INT, NSTR, NUM, STR, STRS, Doc, Raw, array, enum, obj, wrap,
)

P = "/cloudbox/v1"

LIST_LINKS = obj({"self": STR, "previous": NSTR, "next": NSTR})
NODE = obj({"id": STR, "name": STR, "role": STR, "address": STR, "tunnel_ip": NSTR, "status": enum("up", "down"),
            "up": BOOL, "joined_at": NSTR, "heartbeat_at": NSTR, "capacity": {"type": ["object", "null"]}})
UPGRADE = obj({"finished_schema": INT, "lowest_schema": INT, "lowest_nodes": STR,
               "this_node": obj({"package": STR, "command_schema": INT}), "stalled": {"type": ["object", "null"]}})


def docs() -> dict[tuple[str, str], Doc]:
    return {
        ("GET", f"{P}/health"): Doc({200: obj({"status": enum("ok", "degraded"), "node": STR, "version": STR,
                                               "services": {"type": "object",
                                                            "additionalProperties": enum("running", "stopped")}})},
                                    anonymous=True),
        ("GET", f"{P}/status"): Doc({200: obj({"node": obj({"id": STR, "name": STR, "address": STR, "role": STR,
                                                            "status": STR, "version": STR, "uptime_seconds": NUM}),
                                               "state": obj({"applied_seq": INT}), "memory": obj({"rss_bytes": INT}),
                                               "compute": ANY_OBJ, "settings": ANY_OBJ})}),
        ("GET", f"{P}/nodes"): Doc({200: obj({"nodes": array(NODE), "links": LIST_LINKS})}),
        ("DELETE", f"{P}/nodes/{{node_key}}"): Doc({204: None}),
        ("POST", f"{P}/cluster/join-tokens"): Doc({201: wrap("join_token", obj({"token": STR, "name": STR}))}),
        ("GET", f"{P}/cluster/ca"): Doc({200: obj({"ca": STR, "fingerprint": STR})}, anonymous=True),
        # Checked against the join token in the body, not an API token: a bad one answers 401 or 403.
        ("POST", f"{P}/cluster/join"): Doc({201: ANY_OBJ}),
        ("POST", f"{P}/cluster/join/abort"): Doc({204: None}),
        ("GET", f"{P}/cluster/state"): Doc({200: obj({"node": STR, "applied_revision": INT, "applied_seq": INT,
                                                      "hashes": {"type": "object", "additionalProperties": STR},
                                                      "clustered": BOOL})}),
        # A rolling upgrade's command schemas (cloudbox.cluster.versions); the POST is refused (409) while a
        # node speaks an older schema, unless forced.
        ("GET", f"{P}/cluster/upgrade"): Doc({200: UPGRADE}),
        ("POST", f"{P}/cluster/upgrade"): Doc({200: UPGRADE}, errors=(409,)),
        ("GET", f"{P}/cluster/etcd"): Doc({200: obj({"clustered": BOOL, "leader": NSTR, "members": STRS})}),
        # Node-to-node routes: on the API port they answer 403 (the peer port asks for a node certificate).
        ("GET", f"{P}/cluster/snapshot"): Doc({200: Raw("application/vnd.sqlite3")}),
        ("GET", f"{P}/cluster/images/{{image_id}}/data"): Doc({200: Raw("application/octet-stream")}),
        ("POST", f"{P}/token-keys/rotate"): Doc({200: wrap("token_keys", obj({"primary": INT}))}),
        ("GET", "/openapi.json"): Doc({200: obj({"openapi": STR, "info": ANY_OBJ, "paths": ANY_OBJ})},
                                      anonymous=True),
        ("GET", "/"): Doc({200: Raw("text/html")}, anonymous=True),
        ("GET", "/ui/{name}"): Doc({200: Raw("*/*")}, errors=(404,), anonymous=True),
    }

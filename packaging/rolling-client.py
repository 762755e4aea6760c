#!/usr/bin/env python3
"""The client of packaging/test-rolling-upgrade.sh (standard library only, any Python 3.9+).

  rolling-client.py writes --nodes URL,URL,... --ca CA --password PW --out SUMMARY.json --stop FILE
      Creates and deletes projects until FILE exists, each write on the next node in turn; a refused
      write (no answer, a 5xx, or any status but the expected one) is logged and retried at once on
      the next node.  SUMMARY.json: counts, the longest stretch of refusals and the longest time
      between two accepted writes (both in seconds), refusals per node.
  rolling-client.py guest --nodes URL --ca CA --password PW --image FILE
      Uploads FILE (qcow2) as an image and boots a server of flavor 42 with no network on the
      cloud; waits until it is ACTIVE; prints "SERVER_ID HOST".
  rolling-client.py server --nodes URL --ca CA --password PW --server ID
      Prints the server's status and host.
  rolling-client.py converge --nodes ... --ca CA --password PW [--timeout S]
      Waits until every node has applied the same revision, then compares their table hashes
      (GET /cloudbox/v1/cluster/state); prints each node's revision and a digest of its hashes;
      exit 1 if they differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from typing import Any


class Api:
    def __init__(self, nodes: list[str], ca: str, password: str, timeout: float) -> None:
        self.nodes = nodes
        self.context = ssl.create_default_context(cafile=ca)
        self.password = password
        self.timeout = timeout
        self.token: str | None = None
        # No proxies: traffic stays between the test's namespaces.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                  urllib.request.HTTPSHandler(context=self.context))

    def call(self, node: str, method: str, path: str, body: Any = None,
             token: bool = True) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body); status 0 when the node did not answer."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(node + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token and self.token:
            req.add_header("X-Auth-Token", self.token)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
        except (OSError, ssl.SSLError) as exc:  # refused, reset, timed out
            return 0, {}, str(exc).encode()

    def login(self, node: str) -> bool:
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": self.password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        status, headers, _ = self.call(node, "POST", "/identity/v3/auth/tokens", auth, token=False)
        if status != 201:
            return False
        self.token = {k.lower(): v for k, v in headers.items()}["x-subject-token"]
        return True


def now() -> float:
    return time.monotonic()


def stamp() -> str:
    return time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"


class Writer:
    """Counts accepted and refused writes and the stretches between accepted ones."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.turn = 0
        self.accepted = 0
        self.refused = 0
        self.refused_by_node: dict[str, int] = {n: 0 for n in api.nodes}
        self.last_accepted = now()
        self.refusing_since: float | None = None
        self.longest_refusal = 0.0
        self.longest_gap = 0.0
        self.gap_at = ""
        self.node_refusing_since: dict[str, float] = {}
        self.node_outage: dict[str, float] = {n: 0.0 for n in api.nodes}

    def next_node(self) -> str:
        node = self.api.nodes[self.turn % len(self.api.nodes)]
        self.turn += 1
        return node

    def write(self, method: str, path: str, body: Any, expect: set[int], give_up: float) -> tuple[int, bytes]:
        """The write on the next node, then on the next, ... until one accepts it (or ``give_up`` s)."""
        started = now()
        while True:
            node = self.next_node()
            status, _headers, text = self.api.call(node, method, path, body)
            if status == 401 and self.api.login(node):
                status, _headers, text = self.api.call(node, method, path, body)
            t = now()
            if status in expect:
                gap = t - self.last_accepted
                if gap > self.longest_gap:
                    self.longest_gap, self.gap_at = gap, stamp()
                if self.refusing_since is not None:
                    self.longest_refusal = max(self.longest_refusal, t - self.refusing_since)
                    print(f"{stamp()} accepted again by {node} after {t - self.refusing_since:.1f} s of refusals",
                          flush=True)
                self.refusing_since = None
                self.last_accepted = t
                self.accepted += 1
                if node in self.node_refusing_since:  # this node answers again
                    down = t - self.node_refusing_since.pop(node)
                    self.node_outage[node] = max(self.node_outage[node], down)

                return status, text
            self.refused += 1
            self.refused_by_node[node] += 1
            self.node_refusing_since.setdefault(node, t)
            if self.refusing_since is None:
                self.refusing_since = t
            print(f"{stamp()} refused: {method} {path} by {node}: {status} {text[:160]!r}", flush=True)
            if t - started > give_up:
                return status, text
            time.sleep(0.1)

    def summary(self) -> dict[str, Any]:
        open_stretch = now() - self.refusing_since if self.refusing_since is not None else 0.0
        return {"accepted": self.accepted, "refused": self.refused, "refused_by_node": self.refused_by_node,
                "longest_node_outage_s": {n: round(s, 1) for n, s in self.node_outage.items()},
                "longest_refusal_s": round(max(self.longest_refusal, open_stretch), 2),
                "longest_gap_s": round(max(self.longest_gap, now() - self.last_accepted), 2),
                "longest_gap_ended_at": self.gap_at, "still_refusing": self.refusing_since is not None}


def writes(args: argparse.Namespace, api: Api) -> int:
    writer = Writer(api)
    deadline = now() + 120
    while not any(api.login(n) for n in api.nodes):
        if now() > deadline:
            print("no node gave a token", file=sys.stderr)
            return 1
        time.sleep(1)
    i = 0
    try:
        while not os.path.exists(args.stop):
            i += 1
            name = f"rolling-{os.getpid()}-{i}"
            status, text = writer.write("POST", "/identity/v3/projects", {"project": {"name": name}}, {201, 409}, 600)
            if status == 409:  # an attempt that got no answer went through: that project stays
                print(f"{stamp()} {name} exists already (an unanswered attempt created it)", flush=True)
                continue
            if status != 201:
                break
            project = json.loads(text)["project"]["id"]
            # 404: the node that takes the delete has not applied the create yet (or a retried
            # delete already went through): it is not a refusal, so retry until it is applied.
            for _ in range(100):
                status, text = writer.write("DELETE", f"/identity/v3/projects/{project}", None, {204, 404}, 600)
                if status != 404:
                    break
                time.sleep(0.05)
            if i % 50 == 0:
                print(f"{stamp()} {writer.accepted} writes accepted, {writer.refused} refused", flush=True)
    finally:
        summary = writer.summary()
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1)
        print(json.dumps(summary), flush=True)
    return 0


def converge(args: argparse.Namespace, api: Api) -> int:
    deadline = now() + args.timeout
    states: list[dict[str, Any]] = []
    while now() < deadline:
        states = []
        for node in api.nodes:
            status, _h, text = api.call(node, "GET", "/cloudbox/v1/cluster/state")
            if status == 401 and api.login(node):
                status, _h, text = api.call(node, "GET", "/cloudbox/v1/cluster/state")
            if status == 200:
                states.append(json.loads(text))
        if len(states) == len(api.nodes) and len({s["applied_revision"] for s in states}) == 1:
            break
        time.sleep(0.2)
    else:
        print(f"the nodes did not reach the same revision in {args.timeout} s: "
              f"{[(s['node'], s['applied_revision']) for s in states]}", file=sys.stderr)
        return 1
    for s in states:
        digest = hashlib.sha256(json.dumps(s["hashes"], sort_keys=True).encode()).hexdigest()[:16]
        print(f"{s['node']}: revision {s['applied_revision']}, {len(s['hashes'])} tables, hashes digest {digest}")
    first = states[0]["hashes"]
    differ = sorted({t for s in states[1:] for t in set(first) | set(s["hashes"])
                     if first.get(t) != s["hashes"].get(t)})
    if differ or not first:
        print(f"state hashes differ in {differ or 'no tables at all'}", file=sys.stderr)
        return 1
    print(f"state hashes equal on all {len(states)} nodes ({len(first)} tables)")
    return 0


def api_json(api: Api, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    status, _h, text = api.call(api.nodes[0], method, path, body)
    if status != expect:
        raise SystemExit(f"{method} {path}: {status} {text[:500]!r}")
    return json.loads(text) if text else None


def guest(args: argparse.Namespace, api: Api) -> int:
    image = api_json(api, "POST", "/image/v2/images", {"name": "rolling-guest", "disk_format": "qcow2",
                                                        "container_format": "bare"}, 201)
    with open(args.image, "rb") as f:
        data = f.read()
    req = urllib.request.Request(f"{api.nodes[0]}/image/v2/images/{image['id']}/file", data=data, method="PUT")
    req.add_header("Content-Type", "application/octet-stream")
    req.add_header("X-Auth-Token", api.token or "")
    with api.opener.open(req, timeout=300) as resp:
        assert resp.status == 204, resp.status
    server = api_json(api, "POST", "/compute/v2.1/servers", {"server": {
        "name": "rolling-guest", "imageRef": image["id"], "flavorRef": "42", "networks": "none"}}, 202)["server"]
    deadline = now() + args.timeout
    while now() < deadline:
        seen = api_json(api, "GET", f"/compute/v2.1/servers/{server['id']}")["server"]
        if seen["status"] == "ACTIVE" and seen.get("OS-EXT-STS:task_state") is None:
            print(server["id"], seen["OS-EXT-SRV-ATTR:host"])
            return 0
        if seen["status"] == "ERROR":
            print(f"the guest went to ERROR: {seen.get('fault')}", file=sys.stderr)
            return 1
        time.sleep(1)
    print(f"the guest is not ACTIVE after {args.timeout} s: {seen['status']}", file=sys.stderr)
    return 1


def server(args: argparse.Namespace, api: Api) -> int:
    seen = api_json(api, "GET", f"/compute/v2.1/servers/{args.server}")["server"]
    print(seen["status"], seen["OS-EXT-SRV-ATTR:host"])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["writes", "converge", "guest", "server"])
    parser.add_argument("--nodes", required=True, help="comma-separated API URLs")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", default="/dev/null")
    parser.add_argument("--stop", default="/nonexistent")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--image")
    parser.add_argument("--server")
    args = parser.parse_args()
    api = Api(args.nodes.split(","), args.ca, args.password, timeout=15)
    if args.mode in ("converge", "guest", "server"):
        deadline = now() + 60
        while not any(api.login(n) for n in api.nodes) and now() < deadline:
            time.sleep(1)
        return {"converge": converge, "guest": guest, "server": server}[args.mode](args, api)
    return writes(args, api)


if __name__ == "__main__":
    sys.exit(main())

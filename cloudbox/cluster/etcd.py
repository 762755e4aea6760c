"""A small async client of etcd's v3 JSON gateway (httpx, mutual TLS with the cluster CA).

Only what the replicated log needs: put, range, watch, compaction, status and
membership.  etcd encodes keys and values as base64 and 64-bit numbers as
strings; this module hides both.
"""

from __future__ import annotations

import base64
import json
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Sequence

if TYPE_CHECKING:
    import httpx

from cloudbox.errors import Unavailable


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text or "")


class Compacted(Exception):
    """The watch asked for revisions that etcd has compacted away."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"etcd compacted its history up to revision {compact_revision}")
        self.compact_revision = compact_revision


@dataclass(frozen=True)
class Event:
    revision: int
    key: bytes
    value: bytes


def tls_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    return ctx


class EtcdClient:
    """Talks to the first endpoint that answers; ``timeout`` bounds every call but watches."""

    def __init__(self, endpoints: Sequence[str], ssl_context: ssl.SSLContext | None, *,
                 timeout: float = 3.0) -> None:
        import httpx  # only a clustered node talks to etcd: a node alone never loads httpx
        if not endpoints:
            raise ValueError("etcd needs at least one endpoint")
        self.endpoints = list(endpoints)
        self._watch_order = list(endpoints)  # the first (this node's own member) is preferred for watches
        self.timeout = timeout
        self._http = httpx.AsyncClient(verify=ssl_context if ssl_context is not None else False,
                                       timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, path: str, body: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        import httpx  # only a clustered node talks to etcd: a node alone never loads httpx
        errors = []
        for endpoint in list(self.endpoints):
            try:
                resp = await self._http.post(endpoint + path, json=body,
                                             timeout=timeout if timeout is not None else self.timeout)
            except httpx.TimeoutException:
                errors.append(f"{endpoint}: no answer within {timeout or self.timeout:g} s")
                continue
            except httpx.HTTPError as exc:
                errors.append(f"{endpoint}: {exc or type(exc).__name__}")
                continue
            if resp.status_code == 200:
                # Prefer the endpoint that answered next time.
                if self.endpoints[0] != endpoint:
                    self.endpoints.remove(endpoint)
                    self.endpoints.insert(0, endpoint)
                return resp.json()
            try:
                message = resp.json().get("message") or resp.text
            except ValueError:
                message = resp.text
            errors.append(f"{endpoint}: {resp.status_code} {message.strip()[:200]}")
        raise Unavailable("etcd did not accept the request (" + "; ".join(errors) + ")")

    # --- keys ------------------------------------------------------------------------------
    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Store ``value`` at ``key`` (attached to ``lease``: deleted when it ends); returns the
        revision of the write."""
        body = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        reply = await self.call("/v3/kv/put", body)
        return int(reply["header"]["revision"])

    async def get_prefix(self, prefix: str) -> dict[str, bytes]:
        """key -> value of every key that starts with ``prefix``; a linearizable read."""
        raw = prefix.encode()
        end = raw[:-1] + bytes([raw[-1] + 1])  # the first key past the prefix
        reply = await self.call("/v3/kv/range", {"key": b64(raw), "range_end": b64(end)})
        return {unb64(kv["key"]).decode(): unb64(kv.get("value")) for kv in reply.get("kvs") or []}

    async def mod_revision(self, key: str) -> int:
        """The revision of the last write to ``key`` (0: none); a linearizable read."""
        reply = await self.call("/v3/kv/range", {"key": b64(key), "keys_only": True})
        kvs = reply.get("kvs") or []
        return int(kvs[0].get("mod_revision") or 0) if kvs else 0

    # --- leases ----------------------------------------------------------------------------
    async def grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds; returns its id."""
        reply = await self.call("/v3/lease/grant", {"TTL": ttl})
        return int(reply["ID"])

    async def keepalive(self, lease: int) -> int:
        """Refresh ``lease``; returns the seconds it has left (0: it has ended, its keys are gone)."""
        reply = await self.call("/v3/lease/keepalive", {"ID": str(lease)})
        return int((reply.get("result") or {}).get("TTL") or 0)

    async def revoke(self, lease: int) -> None:
        """End ``lease`` now (its keys are deleted)."""
        await self.call("/v3/lease/revoke", {"ID": str(lease)})

    async def get(self, key: str) -> tuple[bytes | None, int]:
        """(value or None, the store's current revision); a linearizable read."""
        reply = await self.call("/v3/kv/range", {"key": b64(key)})
        kvs = reply.get("kvs") or []
        return (unb64(kvs[0].get("value")) if kvs else None), int(reply["header"]["revision"])

    async def revision(self) -> int:
        return (await self.get("/cloudbox/none"))[1]

    async def compact(self, revision: int) -> None:
        await self.call("/v3/kv/compaction", {"revision": revision})

    async def watch(self, key: str, start_revision: int) -> AsyncIterator[Event]:
        """Every write to ``key`` from ``start_revision`` on, in revision order; raises
        ``Compacted`` when etcd no longer has ``start_revision``, ``Unavailable`` on a broken stream."""
        import httpx  # only a clustered node talks to etcd: a node alone never loads httpx
        body = {"create_request": {"key": b64(key), "start_revision": start_revision, "progress_notify": True}}
        endpoint = self._watch_order[0]
        try:
            async with self._http.stream("POST", endpoint + "/v3/watch", json=body,
                                         timeout=httpx.Timeout(self.timeout, read=None)) as resp:
                if resp.status_code != 200:
                    raise Unavailable(f"etcd refused the watch: {resp.status_code}")
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    result = json.loads(line).get("result") or {}
                    if result.get("canceled"):
                        compact = int(result.get("compact_revision") or 0)
                        if compact:
                            raise Compacted(compact)
                        raise Unavailable(f"etcd cancelled the watch: {result.get('cancel_reason', '')}")
                    for ev in result.get("events") or []:
                        if ev.get("type") == "DELETE":
                            continue
                        kv = ev["kv"]
                        yield Event(int(kv["mod_revision"]), unb64(kv["key"]), unb64(kv.get("value")))
        except httpx.HTTPError as exc:
            self._watch_order.append(self._watch_order.pop(0))
            raise Unavailable(f"the etcd watch at {endpoint} broke: {exc or type(exc).__name__}") from exc

    async def metrics(self, names: Sequence[str]) -> dict[str, float]:
        """The first endpoint's Prometheus samples whose names start with one of ``names``
        (e.g. its WAL fsync durations), for diagnostics and benchmarks."""
        import httpx  # only a clustered node talks to etcd: a node alone never loads httpx
        endpoint = self.endpoints[0]
        try:
            resp = await self._http.get(endpoint + "/metrics")
        except httpx.HTTPError as exc:
            raise Unavailable(f"etcd's metrics at {endpoint}: {exc or type(exc).__name__}") from exc
        out: dict[str, float] = {}
        for line in resp.text.splitlines():
            if line.startswith(tuple(names)):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    # --- cluster ---------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        """The first answering member's status: its id, the leader's id, the raft term."""
        reply = await self.call("/v3/maintenance/status", {})
        return {"member_id": reply["header"]["member_id"], "leader": reply.get("leader"),
                "raft_term": int(reply.get("raftTerm") or 0), "revision": int(reply["header"].get("revision") or 0)}

    async def members(self) -> list[dict[str, Any]]:
        reply = await self.call("/v3/cluster/member/list", {})
        return [{"id": m["ID"], "name": m.get("name", ""), "peer_urls": m.get("peerURLs", []),
                 "client_urls": m.get("clientURLs", [])} for m in reply.get("members", [])]

"""The live event stream's hub: post-commit changes fanned out to each open stream it may see.

Rules:
- Fed by the state engine's post-commit listener on every node (the follower of a cluster calls
  it for commands proposed on any node), so a stream on node B shows a server made through A.
- Each stream holds at most ``queue_limit`` events.  A stream whose client does not read them
  (the socket is full, the handler waits in ``yield``) drops what it holds and is told
  ``event: resync``: the page re-reads everything.  Memory per stream stays bounded.
- A change is sent only to a token that lists the thing (``mapping.visible``).  A delete whose
  owner no event said (a thing made before this node started, never changed since) goes to the
  cloud's readers, and every other stream gets ``resync``, which names nothing.
- A user holds at most ``per_user`` streams at once (429 beyond).  A stream ends with
  ``event: expired`` when its token expires or is revoked (checked again after each identity
  commit), and without a word when the node stops (the client reconnects).
- ``: keep-alive`` comments every ``keepalive`` seconds keep proxies and the client's reader
  from timing out, and find a peer that went away.
- Admins also get ``event: node`` when a member joins, leaves, goes up or down, or changes role.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import replace
from typing import Any, AsyncIterator

import trio

from cloudbox.cluster import store as cluster_store
from cloudbox.errors import CloudboxError, Unauthorized, Unavailable
from cloudbox.events import mapping
from cloudbox.events.mapping import Change

log = logging.getLogger("cloudbox.events")

QUEUE_LIMIT = 256  # events one stream holds before it is told to resync
PER_USER = 8  # open streams of one user (a browser shows a few tabs; each holds one)
KEEPALIVE = 15.0  # seconds between keep-alive comments
NODE_TICK = 2.0  # seconds between looks at the cluster's members (as often as liveness reads them)
OWNER_CACHE = 20000  # things whose owner the hub remembers (to route their deletes)


class TooManyStreams(CloudboxError):
    status = 429
    title = "Too Many Requests"


def frame(kind: str, body: Any) -> bytes:
    """One server-sent event."""
    return f"event: {kind}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


KEEPALIVE_FRAME = b": keep-alive\n\n"
HELLO_FRAME = b"retry: 3000\n: connected\n\n"


class Owners:
    """Who may see each thing, as the last event that said so: a bounded LRU."""

    def __init__(self, size: int = OWNER_CACHE) -> None:
        self.size = size
        self._known: OrderedDict[tuple[str, str, str], tuple[str | None, str | None, bool, bool]] = OrderedDict()

    def complete(self, change: Change) -> Change:
        """``change`` with its audience from memory when it does not say it; remembers what it says."""
        if change.id is None:
            return change
        key = (change.service, change.type, change.id)
        if change.owned:
            if change.action == "delete":
                self._known.pop(key, None)
            else:
                self._known[key] = (change.project_id, change.user_id, change.public, change.admin_only)
                self._known.move_to_end(key)
                while len(self._known) > self.size:
                    self._known.popitem(last=False)
            return change
        known = self._known.pop(key, None) if change.action == "delete" else self._known.get(key)
        if known is None:
            return change
        project, user, public, admin_only = known
        return replace(change, project_id=project, user_id=user, public=public, admin_only=admin_only)

    def __len__(self) -> int:
        return len(self._known)


class Stream:
    """One open stream: its token, and the events waiting for its client."""

    def __init__(self, auth: Any, limit: int) -> None:
        self.auth = auth
        self.limit = limit
        self.pending: deque[bytes] = deque()
        self.resync = False
        self.recheck = False  # an identity commit: is the token still good, with which roles?
        self.ending = False  # the node stops
        self._wake = trio.Event()

    @property
    def sees_all(self) -> bool:
        return bool(self.auth.is_cloud_reader)

    def sees(self, change: Change) -> bool:
        return mapping.visible(change, self.auth.project_id, self.auth.user_id, self.sees_all)

    def offer(self, data: bytes) -> None:
        if self.resync:
            return  # it will re-read everything anyway
        if len(self.pending) >= self.limit:
            self.pending.clear()
            self.resync = True
        else:
            self.pending.append(data)
        self._wake.set()

    def mark_resync(self) -> None:
        self.pending.clear()
        self.resync = True
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    def ready(self) -> bool:
        return bool(self.pending or self.resync or self.recheck or self.ending)

    async def wait(self) -> None:
        if self.ready():
            return
        self._wake = trio.Event()
        await self._wake.wait()


class StreamBody:
    """The response body of one stream; its slot is given back when it ends, is closed, or is
    dropped unread (a client that went away before the body started)."""

    def __init__(self, hub: "EventHub", stream: Stream) -> None:
        self._messages = hub.messages(stream)
        self._release = weakref.finalize(self, hub.release, stream)

    def __aiter__(self) -> "StreamBody":
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._messages.__anext__()
        except BaseException:
            self._release()
            raise

    async def aclose(self) -> None:
        try:
            await self._messages.aclose()
        finally:
            self._release()


class EventHub:
    def __init__(self, engine: Any, identity: Any, cluster: Any = None, *, queue_limit: int = QUEUE_LIMIT,
                 per_user: int = PER_USER, keepalive: float = KEEPALIVE, node_tick: float = NODE_TICK) -> None:
        self.engine = engine
        self.identity = identity
        self.cluster = cluster
        self.queue_limit = queue_limit
        self.per_user = per_user
        self.keepalive = keepalive
        self.node_tick = node_tick
        self.owners = Owners()
        self.streams: set[Stream] = set()
        self._per_user: dict[str, int] = {}
        self.closing = False
        self.running = False
        engine.add_listener(self.on_commit)

    # --- the feed ------------------------------------------------------------------------------
    def on_commit(self, cmd: Any, result: Any) -> None:
        """The engine's post-commit listener: must not block (it runs in the engine's task)."""
        if cmd.service == "identity":
            for stream in self.streams:
                stream.recheck = True
                stream.poke()
        for change in mapping.changes(cmd, result):
            self.publish(self.owners.complete(change))

    def publish(self, change: Change) -> None:
        if not self.streams:
            return
        data = frame("node" if change.node else "change", change.body())
        unknown_delete = change.action == "delete" and not change.owned and not change.node
        for stream in self.streams:
            if stream.sees(change):
                stream.offer(data)
            elif unknown_delete:
                stream.mark_resync()

    # --- streams -------------------------------------------------------------------------------
    def open(self, auth: Any) -> Stream:
        if self.closing:
            raise Unavailable("The node is stopping; connect to the event stream again in a moment.")
        held = self._per_user.get(auth.user_id, 0)
        if held >= self.per_user:
            raise TooManyStreams(
                f"This user has {held} event streams open on this node, the most it may hold; "
                "close one (another tab or window of the dashboard) and connect again.")
        self._per_user[auth.user_id] = held + 1
        stream = Stream(auth, self.queue_limit)
        self.streams.add(stream)
        return stream

    def release(self, stream: Stream) -> None:
        """Idempotent: the stream's slot and its place in the fan-out go."""
        if stream in self.streams:
            self.streams.discard(stream)
            user = stream.auth.user_id
            left = self._per_user.get(user, 1) - 1
            if left > 0:
                self._per_user[user] = left
            else:
                self._per_user.pop(user, None)

    def body(self, stream: Stream) -> StreamBody:
        return StreamBody(self, stream)

    def held_by(self, user_id: str) -> int:
        return self._per_user.get(user_id, 0)

    def close(self) -> None:
        """The node stops: every stream ends (the clients reconnect, to this node or another)."""
        self.closing = True
        for stream in self.streams:
            stream.ending = True
            stream.poke()

    def _seconds_left(self, auth: Any) -> float:
        return auth.payload.expires_at - getattr(self.identity, "clock", time.time)()

    async def messages(self, stream: Stream) -> AsyncIterator[bytes]:
        """The bytes of one stream, until its token expires, its client goes or the node stops."""
        try:
            yield HELLO_FRAME
            expiry = trio.current_time() + self._seconds_left(stream.auth)
            beat = trio.current_time() + self.keepalive
            while True:
                if trio.current_time() >= expiry:
                    yield frame("expired", {"reason": "expired"})
                    return
                if not stream.ready():
                    with trio.move_on_at(min(beat, expiry)):
                        await stream.wait()
                if stream.ending:
                    return
                if stream.recheck:
                    stream.recheck = False
                    try:
                        stream.auth = await self.identity.authenticate(stream.auth.token)
                    except Unauthorized:
                        yield frame("expired", {"reason": "revoked"})
                        return
                    except CloudboxError as exc:  # the check could not run now: the next commit asks again
                        log.warning("cannot check an event stream's token again: %s", exc.message)
                    expiry = trio.current_time() + self._seconds_left(stream.auth)
                out: list[bytes] = []
                if stream.resync:
                    stream.resync = False
                    out.append(frame("resync", {}))
                while stream.pending:
                    out.append(stream.pending.popleft())
                if out:
                    yield b"".join(out)
                    beat = trio.current_time() + self.keepalive
                elif trio.current_time() >= beat:
                    yield KEEPALIVE_FRAME
                    beat = trio.current_time() + self.keepalive
        finally:
            self.release(stream)

    # --- the cluster's members ------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch the members' health and role while an administrator's stream is open."""
        self.running = True
        task_status.started()
        known: dict[str, dict[str, Any]] | None = None
        try:
            while True:
                await trio.sleep(self.node_tick)
                if self.cluster is None or not any(s.sees_all for s in self.streams):
                    known = None
                    continue
                try:
                    now = await self.node_states()
                except CloudboxError as exc:
                    log.warning("cannot read the cluster's members for the event stream: %s", exc.message)
                    continue
                if known is not None:
                    for node_id, state in now.items():
                        if node_id in known and known[node_id] != state:
                            self.publish_node({**state, "action": "update"})
                known = now
        finally:
            self.running = False

    async def node_states(self) -> dict[str, dict[str, Any]]:
        rows = await self.engine.read(cluster_store.nodes)
        up = await self.cluster.up_nodes()
        clustered = bool(getattr(self.cluster, "clustered", False))
        return {r["id"]: {"id": r["id"], "name": r["name"],
                          "role": "voter" if r["etcd_member"] else ("client" if clustered else "single"),
                          "status": "up" if r["id"] in up else "down"} for r in rows}

    def publish_node(self, body: dict[str, Any]) -> None:
        data = frame("node", body)
        for stream in self.streams:
            if stream.sees_all:
                stream.offer(data)

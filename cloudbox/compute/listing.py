"""Reading servers for the API's answers: a page with everything its views need in one read of the
database, and the encoded answers of server lists kept until the cloud's state changes.

A client waiting for its boots polls GET /servers/detail (the benchmark every 10 ms, the CLI's
--wait every 2 s): each poll used to cost three reads on worker threads, a render of every server
and a JSON encoding. Between two commits the answer cannot change, so it is encoded once.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Hashable, NamedTuple

from cloudbox.compute import store
from cloudbox.compute.apply_volumes import bdms_of_many
from cloudbox.compute.models import ServerQuery
from cloudbox.compute.volumes import attached_view
from cloudbox.network import store as network_store

if TYPE_CHECKING:
    import sqlite_utils

    from cloudbox.compute.service import ComputeService
    from cloudbox.state.engine import StateEngine

KEPT = 8  # answers kept per state: the pollers of one state are few (a page, a filter, a version)


def addressed(db: sqlite_utils.Database, rows: list[dict[str, Any]], alive: set[str] | None) -> list[dict[str, Any]]:
    """The rows with their ``addresses`` (fixed and floating), their volumes and whether their
    host is down (``alive``: the hosts of nodes that are up; None when this node is alone)."""
    ids = [r["id"] for r in rows]
    found = network_store.server_addresses(db, ids) if ids else {}
    volumes = bdms_of_many(db, ids) if ids else {}
    return [{**r, "addresses": found.get(r["id"], {}), "volumes": attached_view(volumes[r["id"]]),
             "host_down": alive is not None and r["host"] is not None and r["host"] not in alive} for r in rows]


def page(db: sqlite_utils.Database, query: ServerQuery, limit: int, detail: bool,
         alive: set[str] | None) -> tuple[list[dict[str, Any]], bool]:
    """One page of servers (``addressed`` when ``detail``) and whether more follow."""
    rows = store.list_servers(db, query, limit, network_store.server_addresses)
    shown = rows[:limit]
    return (addressed(db, shown, alive) if detail else shown), len(rows) > limit


class View(NamedTuple):
    """How the API renders a page: ``render(rows, more)`` gives the answer's body; ``key`` holds
    everything besides the query that the body depends on (version, caller's role, base URL...)."""

    key: Hashable
    render: Callable[[list[dict[str, Any]], bool], Any]


async def answer(svc: ComputeService, query: ServerQuery, limit: int, detail: bool, view: View) -> bytes:
    """A page of servers rendered by ``view`` and encoded: once per state of the database."""
    alive = await svc.alive_hosts() if detail else None
    state = Answers.state(svc.engine, alive)
    key = (query, limit, detail, view.key)
    body = svc.answers.get(state, key)
    if body is None:
        rows, more = await svc.engine.read(page, query, limit, detail, alive)
        body = encode(view.render(rows, more))
        svc.answers.put(state, key, body)
    return body


def encode(body: Any) -> bytes:
    """JSON as the API writes every answer (compact separators, ASCII escapes)."""
    return json.dumps(body, separators=(",", ":")).encode()


class Answers:
    """Encoded answers that stay right while the database holds the same state.

    The state is the engine's position in the command log (every write to the database is an
    applied command; a snapshot restored from a peer moves the position too) with the set of
    live hosts, which changes without a write. A position read before a read of the database
    is never newer than what that read saw, so an answer kept under it is at least as fresh
    as a read made then.
    """

    def __init__(self) -> None:
        self._state: Hashable = None
        self._kept: dict[Hashable, bytes] = {}

    @staticmethod
    def state(engine: StateEngine, alive: set[str] | None) -> Hashable:
        return engine.last_seq, engine.applied_revision, frozenset(alive) if alive is not None else None

    def get(self, state: Hashable, key: Hashable) -> bytes | None:
        return self._kept.get(key) if state == self._state else None

    def put(self, state: Hashable, key: Hashable, body: bytes) -> None:
        if state != self._state:
            self._state, self._kept = state, {}
        elif len(self._kept) >= KEPT:
            self._kept.clear()
        self._kept[key] = body

"""Pure: which nodes keep an object's bytes (rendezvous hashing) and how many must have them."""

from __future__ import annotations

import hashlib
from typing import Iterable

COPIES = 3  # copies of each object, fewer when the cloud has fewer nodes


def rank(data_id: str, node_ids: Iterable[str]) -> list[str]:
    """Nodes by their rendezvous score for ``data_id``, best first: each object gets its own order,
    and a node joining or leaving moves only the objects it wins or held."""
    return sorted(node_ids, key=lambda n: hashlib.sha256(f"{n}/{data_id}".encode()).digest(), reverse=True)


def choose(data_id: str, node_ids: Iterable[str], copies: int = COPIES) -> list[str]:
    return rank(data_id, node_ids)[:copies]


def majority(count: int) -> int:
    """Copies that must be durable before a write is acknowledged (2 of 3, 2 of 2, 1 of 1)."""
    return count // 2 + 1


def wanted(data_id: str, members: Iterable[str], copies: int = COPIES) -> list[str]:
    """Where the copies of an object belong once every member is up: the replicator's target."""
    return choose(data_id, members, copies)

"""What identity keeps in memory: the token cache stays at its bound, shares the rows of one
caller's tokens and lets go of idle ones; password hashing runs at most one per core at once."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import trio

from cloudbox.identity import core
from cloudbox.identity import service as identity_service
from cloudbox.identity.core import AuthContext, TokenPayload
from cloudbox.identity.service import IdentityService
from cloudbox.services import STORES
from cloudbox.settings import Settings
from cloudbox.state.engine import StateEngine
from tests.cloud import wait_for_async


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[IdentityService]:
    """An identity service whose tokens are any string "<user>:<project>", each loaded afresh."""
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    service = IdentityService(engine, Settings.resolve({}, environ={}), clock=Clock())

    class Codec:
        def decode(self, token: str, now: float) -> TokenPayload:
            user, project = token.split(":")
            return TokenPayload(user_id=user, methods=("password",), scope_type="project", scope_id=project,
                                issued_at=now, expires_at=now + 3600, audit_ids=(token,))

    def load(db: Any, token: str, payload: TokenPayload, now: float) -> AuthContext:
        return AuthContext(token=token, payload=payload, user={"id": payload.user_id, "name": "someone"},
                           user_domain={"id": "default"}, project={"id": payload.scope_id},
                           roles=({"id": "r", "name": "member"},), role_names=frozenset({"member"}))

    async def codec() -> Codec:
        return Codec()

    monkeypatch.setattr(service, "_token_codec", codec)
    monkeypatch.setattr(identity_service, "_load_context", load)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        yield service
        nursery.cancel_scope.cancel()
    engine.close()


async def test_the_token_cache_stays_at_its_bound(identity: IdentityService,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity_service, "CACHE_SIZE", 50)
    for i in range(300):
        await identity.authenticate(f"user{i}:p{i % 7}")
    assert len(identity._contexts) == 50
    assert len(identity._callers) <= 50
    # the most recent are the ones kept
    assert list(identity._contexts)[-1] == "user299:p5"


async def test_a_cached_token_is_not_loaded_again(identity: IdentityService) -> None:
    first = await identity.authenticate("alice:p1")
    assert await identity.authenticate("alice:p1") is first
    other_scope = await identity.authenticate("alice:p2")
    assert other_scope.user is not first.user  # another scope: loaded on its own


async def test_a_second_token_of_the_same_caller_holds_no_copies(identity: IdentityService,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    class Codec:  # two distinct tokens that name the same user and project
        def decode(self, token: str, now: float) -> TokenPayload:
            return TokenPayload(user_id="alice", methods=("password",), scope_type="project", scope_id="p1",
                                issued_at=now, expires_at=now + 3600, audit_ids=(token,))

    async def codec() -> Codec:
        return Codec()

    monkeypatch.setattr(identity, "_token_codec", codec)
    one = await identity.authenticate("token-one")
    two = await identity.authenticate("token-two")
    assert (one.token, two.token) == ("token-one", "token-two")
    assert two.payload.audit_ids == ("token-two",)
    assert two.user is one.user and two.project is one.project and two.roles is one.roles


async def test_a_commit_forgets_the_shared_rows(identity: IdentityService) -> None:
    await identity.authenticate("alice:p1")
    assert identity._callers
    identity._on_commit(type("Cmd", (), {"service": "identity"})(), None)
    assert not identity._contexts and not identity._callers


async def test_idle_tokens_are_dropped(identity: IdentityService) -> None:
    clock = identity.clock
    assert isinstance(clock, Clock)
    await identity.authenticate("alice:p1")
    clock.now += identity_service.CACHE_IDLE / 2
    await identity.authenticate("bob:p1")
    identity.drop_idle_contexts(clock.now)
    assert list(identity._contexts) == ["alice:p1", "bob:p1"]
    clock.now += identity_service.CACHE_IDLE / 2 + 1
    identity.drop_idle_contexts(clock.now)
    assert list(identity._contexts) == ["bob:p1"]  # alice's unused for longer than CACHE_IDLE
    await identity.authenticate("bob:p1")  # a hit counts as a use
    clock.now += identity_service.CACHE_IDLE - 1
    identity.drop_idle_contexts(clock.now)
    assert list(identity._contexts) == ["bob:p1"]
    clock.now += 2
    identity.drop_idle_contexts(clock.now)
    assert not identity._contexts and not identity._callers


async def test_password_hashing_runs_one_per_core_at_once(identity: IdentityService,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    lock = threading.Lock()
    running, most = 0, 0
    release = threading.Event()

    def slow_hash(password: str, salt: bytes, cost: int) -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(10)
        with lock:
            running -= 1
        return "scrypt$..."

    monkeypatch.setattr(core, "hash_password", slow_hash)
    cores = os.cpu_count() or 1
    async with trio.open_nursery() as nursery:
        for _ in range(cores + 3):
            nursery.start_soon(identity.hash_password, "pw")
        await wait_for_async(lambda: running == cores, 10, "the first hashes to start")
        await wait_for_async(lambda: identity._scrypt.statistics().tasks_waiting == 3, 10, "the rest to queue")
        release.set()
    assert most == cores

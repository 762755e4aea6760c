"""tests/cloud.py's wait_for and wait_for_async: the value awaited, the message when it never
comes, and GaveUp.  The async variant's timeouts run on trio's autojump clock: no real waiting."""

from __future__ import annotations

import itertools
import time

import pytest
import trio

from tests.cloud import GaveUp, wait_for, wait_for_async


def test_returns_the_first_truthy_value() -> None:
    calls = itertools.count(1)
    assert wait_for(lambda: next(calls) >= 3 and "ready", 5, "the third call", every=0.001) == "ready"
    assert next(calls) == 4  # asked exactly three times


def test_a_timeout_names_what_was_awaited_and_the_last_error() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("not listening yet")

    began = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0.2 s waiting for the port to open "
                                             r"\(last error: ConnectionRefusedError\('not listening yet'\)\)"):
        wait_for(refused, 0.2, "the port to open", every=0.01)
    assert 0.2 <= time.monotonic() - began < 2


def test_the_message_may_say_what_was_last_seen() -> None:
    seen = []
    with pytest.raises(AssertionError, match="status to be ACTIVE; it stayed BUILD"):
        wait_for(lambda: seen.append("BUILD"), 0.05, lambda: f"status to be ACTIVE; it stayed {seen[-1]}",
                 every=0.01)


def test_gave_up_ends_the_wait_at_once() -> None:
    calls = itertools.count(1)

    def doomed() -> bool:
        if next(calls) == 2:
            raise GaveUp("the server went to ERROR")
        return False

    began = time.monotonic()
    with pytest.raises(GaveUp, match="went to ERROR"):
        wait_for(doomed, 60, "the server", every=0.001)
    assert time.monotonic() - began < 5


async def test_async_waits_on_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    ready_at = trio.current_time() + 50

    async def ready() -> str | None:
        await trio.sleep(0)
        return "done" if trio.current_time() >= ready_at else None

    began = time.monotonic()
    assert await wait_for_async(ready, 60, "the fiftieth second", every=1) == "done"
    assert 50 <= trio.current_time() - (ready_at - 50) < 52
    with pytest.raises(AssertionError, match="timed out after 600 s waiting for never"):
        await wait_for_async(lambda: False, 600, "never")
    assert time.monotonic() - began < 5  # ten minutes of trio's time, no real ones


async def test_async_gave_up_ends_the_wait_at_once(autojump_clock: trio.testing.MockClock) -> None:
    def doomed() -> bool:
        raise GaveUp("the process exited")

    began = trio.current_time()
    with pytest.raises(GaveUp):
        await wait_for_async(doomed, 60, "the process")
    assert trio.current_time() == began

"""The one guard for background work (cloudbox.guard; STYLE.md item 12)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from cloudbox import guard
from cloudbox.errors import SetupError


async def test_a_failure_before_start_is_raised_as_it_was() -> None:
    """Start-up must succeed or say why: the CLI sees the error itself, not a group around it."""
    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        raise SetupError("no such disk")

    faults: list[str] = []
    async with trio.open_nursery() as nursery:
        with pytest.raises(SetupError, match="no such disk"):
            await nursery.start(guard.supervise, "disk", run, lambda name, error: faults.append(name))
    assert faults == []


async def test_a_failure_after_start_is_logged_and_the_rest_keeps_running(caplog: pytest.LogCaptureFixture) -> None:
    fail, recorded, sibling_done = trio.Event(), trio.Event(), trio.Event()
    faults: list[tuple[str, BaseException]] = []

    async def run(*, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started("up")
        await fail.wait()
        raise RuntimeError("the disk went away")

    def on_fault(name: str, error: BaseException) -> None:
        faults.append((name, error))
        recorded.set()

    async def sibling() -> None:
        await recorded.wait()
        await trio.lowlevel.checkpoint()  # still scheduled: the nursery was not cancelled
        sibling_done.set()

    async with trio.open_nursery() as nursery:
        assert await nursery.start(guard.supervise, "images", run, on_fault) == "up"
        nursery.start_soon(sibling)
        fail.set()
    assert sibling_done.is_set()
    assert [(name, str(error)) for name, error in faults] == [("images", "the disk went away")]
    assert "images failed; the rest of the node keeps serving" in caplog.text


async def test_a_spawned_task_that_fails_is_logged_and_its_nursery_lives(caplog: pytest.LogCaptureFixture) -> None:
    done = trio.Event()

    async def boom(what: str) -> Any:
        raise ValueError(what)

    async with trio.open_nursery() as nursery:
        guard.spawn(nursery, boom, "a bad row", name="resize")
        guard.spawn(nursery, done.wait)
        await trio.testing.wait_all_tasks_blocked()
        done.set()
    assert "background task resize failed" in caplog.text and "a bad row" in caplog.text


async def test_started_once_passes_the_first_start_only() -> None:
    async def twice(*, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        once = guard.StartedOnce(task_status)
        once.started(1)
        once.started(2)  # a restart: dropped (trio would raise on a second started)
        assert once.done and once.value == 1

    async with trio.open_nursery() as nursery:
        assert await nursery.start(twice) == 1

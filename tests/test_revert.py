"""The shared undo list: steps run newest first on failure, never after success, and a failing
undo neither hides the cause nor stops the other undos."""

from __future__ import annotations

import pytest
import trio

from cloudbox.revert import Revert


def test_sync_steps_undo_in_reverse_on_failure_only():
    done: list[str] = []
    with pytest.raises(RuntimeError, match="step three"):
        with Revert() as revert:
            revert.add(lambda: done.append("one"))
            revert.add(lambda: 1 / 0)  # a broken undo is logged, the next still runs
            revert.add(lambda: done.append("two"))
            raise RuntimeError("step three")
    assert done == ["two", "one"]
    with Revert() as revert:
        revert.add(lambda: done.append("never"))
        revert.success()
    assert done == ["two", "one"]


def test_async_steps_run_even_when_the_change_is_cancelled():
    done: list[str] = []

    async def undo(name: str) -> None:
        await trio.sleep(0)  # an undo that waits still runs inside a cancelled scope (shielded)
        done.append(name)

    async def main() -> None:
        with trio.move_on_after(0.01):
            async with Revert() as revert:
                revert.add(lambda: undo("disk"))
                revert.add(lambda: done.append("sync step"))
                await trio.sleep_forever()

    trio.run(main)
    assert done == ["sync step", "disk"]


def test_async_step_in_a_sync_revert_is_refused_loudly(caplog):
    async def undo() -> None:
        pass

    with pytest.raises(ValueError):
        with Revert() as revert:
            revert.add(undo)
            raise ValueError("boom")
    assert "undo step failed" in caplog.text

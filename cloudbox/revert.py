"""Undo lists for multi-step host changes (a bridge, a veth, a libvirt define, a guest's disk).

Each step that changed the host registers how to take the change back; when the whole
change fails (or is cancelled) the undos run newest first, and once it succeeded they are
dropped.  An undo that fails is logged and the rest still run: it must not hide the cause.

    with Revert() as revert:            # steps are plain functions
        make_bridge(); revert.add(remove_bridge)
        revert.success()

    async with Revert() as revert:      # steps may also be async functions
        await driver.create(spec); revert.add(lambda: driver.destroy(uuid))
        revert.success()
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable

import trio

log = logging.getLogger("cloudbox.revert")


class Revert:
    """Undo steps of one multi-step host change, run in reverse unless ``success()``."""

    def __init__(self) -> None:
        self._steps: list[Callable[[], Any]] = []

    def add(self, step: Callable[[], Any]) -> None:
        self._steps.append(step)

    def success(self) -> None:
        self._steps.clear()

    def __enter__(self) -> "Revert":
        return self

    def __exit__(self, *exc: Any) -> None:
        steps, self._steps = self._steps, []
        for step in reversed(steps):
            try:
                if inspect.isawaitable(result := step()):
                    result.close()  # type: ignore[attr-defined]
                    raise TypeError("an async undo step needs `async with Revert()`")
            except Exception:  # noqa: BLE001 - an undo that fails must not hide the cause
                log.exception("undo step failed")

    async def __aenter__(self) -> "Revert":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        steps, self._steps = self._steps, []
        # Shielded: a change cut short by cancellation is still taken back.
        with trio.CancelScope(shield=True):
            for step in reversed(steps):
                try:
                    result = step()
                    if inspect.isawaitable(result):
                        await result
                except Exception:  # noqa: BLE001 - an undo that fails must not hide the cause
                    log.exception("undo step failed")

"""The one guard for work that runs in the background (STYLE.md item 12).

A fault in background work is logged and recorded; it never cancels the node's root nursery,
so one part's failure does not stop the node.

- ``supervise`` runs a long-lived part of the node (a service's ``run``): a failure before it
  has started is raised, since start-up must succeed or say why not; a failure after that is
  logged and handed to ``on_fault``, and the rest of the node keeps serving.
- ``spawn`` starts a short-lived background task whose failure is logged and dropped.
- ``StartedOnce`` hands the first ``started`` of a part that may run again to its starter.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import trio

log = logging.getLogger("cloudbox.guard")


class StartedOnce:
    """A task status that passes the first ``started`` on and remembers that it came."""

    def __init__(self, status: trio.TaskStatus[Any]) -> None:
        self._status = status
        self.done = False
        self.value: Any = None

    def started(self, value: Any = None) -> None:
        if not self.done:
            self.done, self.value = True, value
            self._status.started(value)


async def supervise(
    name: str,
    run: Callable[..., Awaitable[None]],
    on_fault: Callable[[str, BaseException], None],
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``run(task_status=...)``; once it has started, a failure is logged and handed on."""
    started = StartedOnce(task_status)
    try:
        await run(task_status=started)
    except Exception as exc:  # a plain except: a start-up error must reach the CLI as it was raised
        if not started.done:
            raise
        log.exception("%s failed; the rest of the node keeps serving", name)
        on_fault(name, exc)


def spawn(nursery: trio.Nursery, fn: Callable[..., Awaitable[Any]], *args: Any, name: str = "") -> None:
    """Start ``fn(*args)`` in ``nursery``; its failure is logged, never fatal to the nursery."""
    what = name or getattr(fn, "__name__", repr(fn))

    async def guarded() -> None:
        try:
            await fn(*args)
        except Exception:
            log.exception("background task %s failed", what)

    nursery.start_soon(guarded, name=what)

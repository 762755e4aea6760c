"""A boot's timeline: how long each step from the API's receipt to the running guest took.

The API marks when a create request arrived and when its servers' rows committed; the build
adds its own steps (waiting for its turn, scheduling and claim, ports, the guest's steps) and
logs one line per boot, ``boot timeline``, with every step's ms and the request id, so the
benchmark (and an operator) can see where a boot's time goes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cloudbox import logs

log = logging.getLogger("cloudbox.compute")

KEEP = 4096  # marks of builds that never ran (another node's servers) are dropped past this many


class Timelines:
    def __init__(self) -> None:
        self._marks: dict[str, tuple[float, float, str | None]] = {}

    def received(self) -> float:
        return time.perf_counter()

    def committed(self, server_ids: list[str], received: float) -> None:
        """The servers' rows committed: the API's part of their boots is over."""
        if len(self._marks) > KEEP:
            self._marks.clear()
        now = time.perf_counter()
        for sid in server_ids:
            self._marks[sid] = (received, now, logs.request_id.get())

    def start(self, server_id: str) -> Timeline:
        received, committed, request_id = self._marks.pop(server_id, (None, None, logs.request_id.get()))
        return Timeline(server_id, received, committed, request_id)


class Timeline:
    def __init__(self, server_id: str, received: float | None, committed: float | None,
                 request_id: str | None) -> None:
        self.server_id = server_id
        self.request_id = request_id
        self.steps: dict[str, float] = {}
        self.started = received
        self._mark = time.perf_counter()
        if received is not None and committed is not None:
            self.steps["api"] = round((committed - received) * 1000, 1)
            self.steps["queued"] = round((self._mark - committed) * 1000, 1)

    def step(self, name: str) -> None:
        now = time.perf_counter()
        self.steps[name] = round((now - self._mark) * 1000, 1)
        self._mark = now

    def add(self, steps: dict[str, float]) -> None:
        """Steps timed elsewhere (the guest's), ending now."""
        self.steps.update(steps)
        self._mark = time.perf_counter()

    def log(self, host: str) -> None:
        total = None if self.started is None else round((time.perf_counter() - self.started) * 1000, 1)
        log.info("boot timeline", extra={"server_id": self.server_id, "request_id": self.request_id,
                                         "host": host, "total_ms": total, "steps_ms": self.steps})

"""Memory of a node: keep glibc from holding freed heap, trim it after load peaks, and a debug
mode that shows what holds memory.

Measured with bench/identity.py (issue 14): after a load run the node stayed 67 MiB above idle,
while its Python objects had grown by 0.3 MiB.  The rest was freed C heap that glibc kept:
scrypt's 16 MiB work buffers of password checks, one per worker thread's arena (see
``configure_allocator``).  ``upkeep`` also calls ``malloc_trim(0)`` once the process has grown and
the load has passed.

Debug mode: with ``CLOUDBOX_TRACEMALLOC=<dir>`` in its environment, ``cloudbox serve`` traces
Python allocations from before its imports, and on SIGUSR2 writes a tracemalloc snapshot to
``<dir>/snapshot-<n>.pickle`` (bench/identity.py --trace diffs them).  ``CLOUDBOX_MEMORY_TRIM=off``
turns the trims off, to measure what they bring.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import tracemalloc
from pathlib import Path
from typing import Any, Awaitable, Callable

import trio

from cloudbox import guard

log = logging.getLogger("cloudbox.memory")

TRACE_ENV = "CLOUDBOX_TRACEMALLOC"
TRIM_ENV = "CLOUDBOX_MEMORY_TRIM"  # "off": no trims, to measure what they bring
TRACE_FRAMES = 12
# How often upkeep looks at the resident size, and how much it must have grown since the last trim
# (or start) before trimming: reading /proc/self/statm is cheap; trimming walks every arena.
CHECK_EVERY = 5.0
TRIM_GROWTH = 8 << 20

# glibc's mallopt parameter, and the size from which blocks get their own mapping (its default
# before it starts moving the threshold).
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 << 10

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim  # noqa: B018 - absent outside glibc (musl)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def configure_allocator(mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold (``mallopt(M_MMAP_THRESHOLD)``), which also stops it from moving.

    By default glibc raises the threshold to the size of any mmapped block that is freed (up to
    32 MiB) and its trim threshold to twice that.  One scrypt password check (16 MiB) is enough:
    from then on each check's buffer comes from its worker thread's arena, and the arena keeps
    the 16 MiB after ``free``, as the top of a thread heap below the 32 MiB trim threshold, which
    ``malloc_trim`` does not touch.  With the threshold fixed, big blocks are mapped and unmapped
    each time.  An operator's MALLOC_MMAP_THRESHOLD_ wins.  False where this is not glibc."""
    if _LIBC is None or not hasattr(_LIBC, "mallopt") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return bool(_LIBC.mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(mmap_threshold)))


def rss_bytes() -> int:
    """This process's resident set size."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def trim() -> bool:
    """Give the kernel back the free pages of every malloc arena (glibc's ``malloc_trim(0)``);
    False where the C library has no such call."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(ctypes.c_size_t(0))
    return True


class Trimmer:
    """Decides when to trim: once the process has grown by ``growth`` bytes since the last trim,
    and the growth has stopped (two looks in a row at the same size or less), so a trim comes
    after a load peak rather than in the middle of it."""

    def __init__(self, growth: int = TRIM_GROWTH) -> None:
        self.growth = growth
        self.floor: int | None = None  # the size after the last trim (or the first look)
        self.last: int | None = None
        self.trims = 0

    def look(self, rss: int) -> bool:
        """Note one reading of the resident size; True when a trim is due now."""
        if self.floor is None:
            self.floor = self.last = rss
            return False
        settled = self.last is not None and rss <= self.last
        self.last = rss
        return settled and rss - self.floor >= self.growth

    def trimmed(self, rss: int) -> None:
        self.trims += 1
        self.floor = self.last = rss


async def upkeep(*, every: float = CHECK_EVERY, trimmer: Trimmer | None = None,
                 task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Trim the heap after load peaks; in debug mode also write snapshots on SIGUSR2."""
    trimmer = trimmer or Trimmer()
    trimming = os.environ.get(TRIM_ENV, "on") != "off"
    async with trio.open_nursery() as nursery:
        if tracemalloc.is_tracing():
            await nursery.start(_snapshot_on_signal, Path(os.environ[TRACE_ENV]))
        task_status.started()
        while True:
            await trio.sleep(every)
            if trimming and trimmer.look(rss_bytes()):
                before = trimmer.last or 0
                if not trim():
                    return
                after = rss_bytes()
                trimmer.trimmed(after)
                log.debug("heap trimmed", extra={"rss_before": before, "rss_after": after})


def start_tracing_from_env() -> None:
    """Debug mode: trace Python allocations when CLOUDBOX_TRACEMALLOC names a directory."""
    where = os.environ.get(TRACE_ENV)
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        tracemalloc.start(TRACE_FRAMES)


async def _snapshot_on_signal(where: Path, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    count = 0
    with trio.open_signal_receiver(signal.SIGUSR2) as signals:
        task_status.started()
        async for _ in signals:
            gc.collect()
            count += 1
            path = where / f"snapshot-{count}.pickle"
            tracemalloc.take_snapshot().dump(str(path))
            traced, peak = tracemalloc.get_traced_memory()
            log.info("tracemalloc snapshot written", extra={"path": str(path), "traced": traced, "peak": peak,
                                                           "rss": rss_bytes()})


async def serve_with_upkeep(serve: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Run ``serve(*args)`` (the node) with ``upkeep`` beside it; a fault in upkeep is logged
    and never stops the node; upkeep ends with the node."""
    async with trio.open_nursery() as nursery:
        await nursery.start(guard.supervise, "memory", upkeep, lambda name, exc: None)
        await serve(*args)
        nursery.cancel_scope.cancel()

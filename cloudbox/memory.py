"""Memory of a node: keep glibc from holding freed heap, and a debug mode that shows what
holds memory.

Measured with bench/identity.py (issue 14): after a load run the node stayed 67 MiB above idle,
while its Python objects had grown by 0.3 MiB.  The rest was freed C heap that glibc kept:
scrypt's 16 MiB work buffers of password checks, one per worker thread's arena (see
``configure_allocator``).  Neither ``malloc_trim(0)`` after that load (0.7 MiB back, and nothing of
the scrypt buffers) nor MALLOC_ARENA_MAX=2 (0.9 MiB) helped measurably there.  After a burst of
guest boots a trim does give back much more (``trim_after_growth``).

Debug mode: with ``CLOUDBOX_TRACEMALLOC=<dir>`` in its environment, ``cloudbox serve`` traces
Python allocations from before its imports, and on SIGUSR2 writes a tracemalloc snapshot to
``<dir>/snapshot-<n>.pickle`` (bench/identity.py --trace prints the biggest holders and diffs).
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

log = logging.getLogger("cloudbox.memory")

TRACE_ENV = "CLOUDBOX_TRACEMALLOC"
TRACE_FRAMES = 12

# glibc's mallopt parameters (malloc.h).  Blocks from MMAP_THRESHOLD up get a mapping of their own,
# given back at free: scrypt's 16 MiB work buffers.  Below it they come from the heap and are reused:
# a streamed body's buffers (64 KiB to 2 MiB, api/streaming.py), which as fresh mappings cost a page
# fault and zeroing per page (about 1 s of kernel time per 128 MiB upload).  Up to TRIM_THRESHOLD of
# free heap top is kept for the next ones.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 16 << 20

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018 - a glibc call
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def configure_allocator(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds (``mallopt``), which also stops them from moving: the
    node's one allocator policy, set at start.

    By default glibc raises the threshold to the size of any mmapped block that is freed (up to
    32 MiB) and its trim threshold to twice that.  One scrypt password check (16 MiB) is enough:
    from then on each check's buffer comes from its worker thread's arena, and the arena keeps
    the 16 MiB after ``free``, as the top of a thread heap below the 32 MiB trim threshold, which
    ``malloc_trim`` does not touch.  With the threshold fixed between a body buffer and a scrypt
    buffer, the big ones are mapped and unmapped each time and the body buffers are reused.  An
    operator's MALLOC_MMAP_THRESHOLD_ wins (and MALLOC_TRIM_THRESHOLD_ for the trim threshold).
    False where this is not glibc."""
    if _LIBC is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        _LIBC.mallopt(ctypes.c_int(M_TRIM_THRESHOLD), ctypes.c_int(trim_threshold))
    return bool(_LIBC.mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(mmap_threshold)))


def rss_bytes() -> int:
    """This process's resident set size."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def start_tracing_from_env() -> None:
    """Debug mode: trace Python allocations when CLOUDBOX_TRACEMALLOC names a directory."""
    where = os.environ.get(TRACE_ENV)
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        tracemalloc.start(TRACE_FRAMES)


async def write_snapshots(where: Path, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """On each SIGUSR2, write a tracemalloc snapshot to ``where``."""
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


def trim_heap() -> bool:
    """Collect garbage, then hand the C heap's free pages back to the kernel (``malloc_trim(0)``).

    Start-up leaves freed heap behind (the imports' transient buffers, the first passes' plans):
    at idle 2.7 MiB of a real-driver node's RSS went back this way (issue 14).  False where this
    is not glibc."""
    gc.collect()
    return release_free_heap()


# After a burst of work (servers booted at once, say) glibc keeps the freed heap of the worker
# threads' arenas: up to TRIM_THRESHOLD of free top each, and free pages below live blocks, which
# only malloc_trim gives back.  Measured with bench/compute_memory.py --real-drivers (2 rounds of 20
# guests): 30 s after the load the node held 127.7 MiB, and one malloc_trim(0) gave back 9.2 MiB.
TRIM_EVERY = 10.0  # seconds between looks at the RSS
TRIM_GROWTH = 4 << 20  # trim once the RSS is this much above what the last trim left


def release_free_heap() -> bool:
    """``malloc_trim(0)`` alone: no garbage collection, which would hold the GIL (and so the event
    loop) for a full pass over every object; ctypes releases the GIL for the call."""
    return bool(_LIBC.malloc_trim(ctypes.c_size_t(0))) if _LIBC is not None else False


async def _release_in_a_thread() -> None:
    await trio.to_thread.run_sync(release_free_heap)


async def trim_after_growth(every: float = TRIM_EVERY, growth: int = TRIM_GROWTH,
                            trim: Callable[[], Awaitable[None]] = _release_in_a_thread) -> None:
    """Forever: when the RSS has grown by ``growth`` above its floor, trim once.  The floor is what
    the last trim left, or the lowest RSS seen since: memory really in use costs one trim, not one
    per look, and memory freed meanwhile lowers the mark the next burst is measured from."""
    if _LIBC is None:
        return
    floor = rss_bytes()
    while True:
        await trio.sleep(every)
        before = rss_bytes()
        floor = min(floor, before)
        if before - floor >= growth:
            await trim()
            floor = rss_bytes()
            log.debug("freed heap given back", extra={"rss_before": before, "rss_after": floor})


async def serve_with_debug(serve: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Run ``serve(*args)`` (the node, which reports when it serves); once it serves, trim the heap
    start-up left, and again after each burst of work; in debug mode with the snapshot writer beside it."""
    async with trio.open_nursery() as nursery:
        if tracemalloc.is_tracing():
            await nursery.start(write_snapshots, Path(os.environ[TRACE_ENV]))
        await nursery.start(_serve_to_end, serve, args, nursery.cancel_scope)
        await trio.to_thread.run_sync(trim_heap)
        nursery.start_soon(trim_after_growth)


async def _serve_to_end(serve: Callable[..., Awaitable[Any]], args: tuple[Any, ...], scope: trio.CancelScope,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """``serve`` until it returns, then end the debug mode's snapshot writer with it."""
    await serve(*args, task_status=task_status)
    scope.cancel()

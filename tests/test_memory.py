"""Memory upkeep of a node (cloudbox.memory): freed scrypt buffers go back to the kernel, the trim
policy, and the upkeep task beside the node."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from cloudbox import memory
from tests.cloud import wait_for_async

ROOT = Path(__file__).resolve().parents[1]

# Four threads check passwords (scrypt, 16 MiB each) three times each; prints the growth of RSS.
SCRYPT_IN_THREADS = """
import hashlib, sys, threading
sys.path.insert(0, {root!r})
from cloudbox import memory
if {configure}:
    assert memory.configure_allocator()
start = memory.rss_bytes()
def work():
    for _ in range(3):
        hashlib.scrypt(b"pw", salt=b"s" * 16, n=1 << 14, r=8, p=1, maxmem=256 << 20, dklen=32)
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(memory.rss_bytes() - start)
"""


def scrypt_growth(configure: bool) -> int:
    env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_* of the caller's
    out = subprocess.run([sys.executable, "-c", SCRYPT_IN_THREADS.format(root=str(ROOT), configure=configure)],
                         capture_output=True, text=True, check=True, env=env)
    return int(out.stdout)


@pytest.mark.skipif(memory._LIBC is None, reason="glibc only")
def test_fixed_mmap_threshold_gives_scrypt_buffers_back() -> None:
    # Without it glibc keeps a 16 MiB buffer in each thread's arena after the checks are done.
    assert scrypt_growth(configure=False) >= 32 << 20
    assert scrypt_growth(configure=True) < 8 << 20


def test_operator_threshold_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert memory.configure_allocator() is False


def test_trimmer_waits_for_growth_then_for_the_peak_to_pass() -> None:
    trimmer = memory.Trimmer(growth=10)
    assert trimmer.look(100) is False  # the first look sets the floor
    assert trimmer.look(105) is False  # grown less than 10
    assert trimmer.look(120) is False  # grown enough, but still growing
    assert trimmer.look(130) is False
    assert trimmer.look(130) is True  # settled 30 above the floor
    trimmer.trimmed(104)
    assert (trimmer.floor, trimmer.trims) == (104, 1)
    assert trimmer.look(104) is False  # the new floor: nothing to trim
    assert trimmer.look(110) is False
    assert trimmer.look(109) is False  # settled, but only 5 above the floor


async def test_upkeep_trims_after_a_peak(monkeypatch: pytest.MonkeyPatch,
                                         autojump_clock: trio.testing.MockClock) -> None:
    sizes = iter([100 << 20, 150 << 20, 150 << 20, 101 << 20])
    trims: list[int] = []
    monkeypatch.setattr(memory, "rss_bytes", lambda: next(sizes, 101 << 20))
    monkeypatch.setattr(memory, "trim", lambda: trims.append(1) or True)
    monkeypatch.delenv(memory.TRIM_ENV, raising=False)
    trimmer = memory.Trimmer()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: memory.upkeep(trimmer=trimmer, task_status=task_status))
        await wait_for_async(lambda: trimmer.trims, 60, "a trim")
        nursery.cancel_scope.cancel()
    assert trims == [1]
    assert trimmer.floor == 101 << 20


async def test_a_failing_upkeep_does_not_stop_the_node(monkeypatch: pytest.MonkeyPatch,
                                                       autojump_clock: trio.testing.MockClock) -> None:
    def broken() -> int:
        raise OSError("no /proc")

    monkeypatch.setattr(memory, "rss_bytes", broken)
    served = []

    async def serve(value: str) -> None:
        await trio.sleep(3 * memory.CHECK_EVERY)  # upkeep fails meanwhile
        served.append(value)

    await memory.serve_with_upkeep(serve, "done")
    assert served == ["done"]

"""Memory of a node (cloudbox.memory): freed scrypt buffers go back to the kernel; the debug
mode's snapshots."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import trio

from cloudbox import memory
from cloudbox.network.driver.fake import KEPT_PLANS, FakeNetworkDriver
from cloudbox.network.hostplan import HostPlan
from cloudbox.state import db as dbmod
from tests.cloud import wait_for_async

ROOT = Path(__file__).resolve().parents[1]

# Four threads check passwords (scrypt, 16 MiB each) three times each; prints the growth of RSS.
SCRYPT_IN_THREADS = """
import hashlib, sys, threading
sys.path.insert(0, {root!r})
from cloudbox import memory
from cloudbox.network.driver.fake import KEPT_PLANS, FakeNetworkDriver
from cloudbox.network.hostplan import HostPlan
from cloudbox.state import db as dbmod
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


async def test_debug_mode_writes_a_snapshot_on_sigusr2(tmp_path: Path) -> None:
    tracemalloc.start(1)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(memory.write_snapshots, tmp_path)
            for count in (1, 2):
                os.kill(os.getpid(), signal.SIGUSR2)
                await wait_for_async(lambda: (tmp_path / f"snapshot-{count}.pickle").exists(), 30, f"snapshot {count}")
            nursery.cancel_scope.cancel()
    finally:
        tracemalloc.stop()
    assert tracemalloc.Snapshot.load(str(tmp_path / "snapshot-2.pickle")).traces


async def test_without_debug_mode_the_node_runs_alone_and_the_heap_is_trimmed_once_it_serves(
        monkeypatch: pytest.MonkeyPatch) -> None:
    events = []
    monkeypatch.setattr(memory, "trim_heap", lambda: events.append("trimmed"))

    async def serve(value: str, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        events.append("starting")
        task_status.started()
        await trio.sleep(0.05)  # serving while the trim runs
        events.append(value)

    await memory.serve_with_debug(serve, "done")
    assert events == ["starting", "trimmed", "done"]


@pytest.mark.skipif(memory._LIBC is None, reason="malloc_trim is glibc's")
async def test_the_heap_is_trimmed_after_a_burst_once_per_growth(monkeypatch: pytest.MonkeyPatch,
                                                                 autojump_clock: trio.testing.MockClock) -> None:
    mib = 1 << 20
    rss = [100 * mib]
    trims: list[int] = []

    async def trim() -> None:
        if not trims:
            rss[0] -= 6 * mib  # the first burst's freed heap goes back; the rest later is in use
        trims.append(rss[0])

    monkeypatch.setattr(memory, "rss_bytes", lambda: rss[0])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(memory.trim_after_growth, 1.0, 4 * mib, trim)
        await trio.sleep(1.5)
        rss[0] += 3 * mib  # under the growth: left alone
        await trio.sleep(1.0)
        assert trims == []
        rss[0] += 2 * mib  # 5 MiB up: one trim, down to 99 MiB
        await trio.sleep(1.0)
        assert trims == [99 * mib]
        await trio.sleep(5.0)  # no growth since: no more trims
        assert trims == [99 * mib]
        rss[0] += 10 * mib  # memory really in use: one trim, which finds nothing; 109 MiB is the floor now
        await trio.sleep(6.0)
        assert trims == [99 * mib, 109 * mib]
        rss[0] = 95 * mib  # freed without a trim (the guests' mappings): the floor follows it down
        await trio.sleep(1.0)
        rss[0] += 5 * mib  # so 100 MiB is a burst's growth again
        await trio.sleep(1.0)
        assert trims == [99 * mib, 109 * mib, 100 * mib]
        nursery.cancel_scope.cancel()


@pytest.mark.skipif(memory._LIBC is None, reason="malloc_trim is glibc's")
def test_trim_heap_gives_freed_heap_back() -> None:
    libc = memory._LIBC
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # 32 MiB of 64 KiB blocks (under the mmap threshold: heap), freed below one block kept on top.
    blocks = [libc.malloc(64 << 10) for _ in range(512)]
    for block in blocks:
        ctypes.memset(block, 1, 64 << 10)
    pinned = libc.malloc(64 << 10)
    for block in blocks:
        libc.free(block)
    try:
        assert memory.trim_heap() is True
    finally:
        libc.free(pinned)


def test_pooled_readers_keep_a_small_page_cache(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    dbmod.connect(path).close()
    reader = dbmod.connect(path, readonly=True)
    assert reader.execute("PRAGMA cache_size").fetchone()[0] == -dbmod.READER_CACHE_KIB
    writer = dbmod.connect(path)
    assert writer.execute("PRAGMA cache_size").fetchone()[0] == -2000  # SQLite's default


async def test_the_fake_network_driver_keeps_its_latest_plans() -> None:
    driver = FakeNetworkDriver("n1")
    plans = [HostPlan(node_id="n1", host=f"h{i}") for i in range(3 * KEPT_PLANS)]
    for plan in plans:
        await driver.apply(plan)
    assert driver.plans == plans[-KEPT_PLANS:]
    assert driver.plan is plans[-1]


def test_the_network_driver_imports_pyroute2_without_its_package_init() -> None:
    script = ("import sys\n"
              "import cloudbox.network.driver.real, cloudbox.network.conntrack\n"
              "print('pyroute2.ndb' in sys.modules, 'psutil' in sys.modules)\n"
              "from pyroute2 import NDB, IPRoute\n"  # asking the package itself runs its __init__
              "from cloudbox.network.netlink import IPRoute as Ours\n"
              "print('pyroute2.ndb' in sys.modules, IPRoute is Ours)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True", "True"]


def test_one_threshold_serves_streamed_bodies_and_password_checks() -> None:
    # A streamed body's buffers (up to HIGH_WATER) come from the heap and are reused; scrypt's
    # 16 MiB buffers are mapped and given back (test_fixed_mmap_threshold_gives_scrypt_buffers_back).
    from cloudbox.api import streaming
    assert streaming.HIGH_WATER < memory.MMAP_THRESHOLD < 16 << 20

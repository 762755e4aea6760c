"""Object store benchmark (issue #16) on one node, against baselines measured in the same run.

It starts a fresh single-node cloud in a temporary dir (fake hypervisor), then measures:
- large objects: PUT and GET of --large-mib MiB over HTTPS (one client, streamed), against the
  baseline of writing the same bytes to a file in the same data dir with one fsync at the end, and
  reading that file back (both reads come from the page cache, like the GET's);
- small objects (4 KiB): PUT and GET ops/s and p99 latency for 1 and 32 concurrent clients
  (closed loops, each waiting for its answer) for --seconds each.
The target of the issue is large PUT and GET at >= 0.8 of the baselines. Three nodes are not
measured here (the cluster harness needs root and the test underlay).

Usage: .venv/bin/python bench/object.py [--large-mib 256] [--seconds 5] [--clients 1,32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cloud import Cloud, free_port  # noqa: E402

CHUNK = 1 << 20


def baseline(directory: Path, data: bytes) -> tuple[float, float]:
    """(write+fsync seconds, read seconds) of the same bytes on the same disk."""
    path = directory / "baseline.bin"
    started = time.perf_counter()
    with open(path, "wb") as f:
        for offset in range(0, len(data), CHUNK):
            f.write(data[offset:offset + CHUNK])
        f.flush()
        os.fsync(f.fileno())
    wrote = time.perf_counter() - started
    started = time.perf_counter()
    with open(path, "rb") as f:
        while f.read(CHUNK):
            pass
    read = time.perf_counter() - started
    path.unlink()
    return wrote, read


def large(node: Cloud, base: str, data: bytes) -> tuple[float, float]:
    def body():
        for offset in range(0, len(data), CHUNK):
            yield data[offset:offset + CHUNK]

    with node.client(node.token()) as client:
        client.timeout = httpx.Timeout(600)
        started = time.perf_counter()
        r = client.put(f"{base}/bench/large", content=body(), headers={"Content-Length": str(len(data))})
        put = time.perf_counter() - started
        assert r.status_code == 201, r.text
        started = time.perf_counter()
        with client.stream("GET", f"{base}/bench/large") as r:
            size = sum(len(c) for c in r.iter_bytes(CHUNK))
        get = time.perf_counter() - started
        assert size == len(data)
    return put, get


async def small(node: Cloud, token: str, base: str, clients: int, seconds: float, method: str) -> tuple[float, float]:
    """(ops/s, p99 ms) of 4 KiB PUTs or GETs by ``clients`` closed loops."""
    payload = os.urandom(4096)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        async with httpx.AsyncClient(base_url=node.url, verify=node.ssl_context(), timeout=60,
                                     headers={"X-Auth-Token": token}) as client:
            n = 0
            while time.perf_counter() < deadline:
                name = f"{base}/bench/small-{i}-{n % 50}"
                started = time.perf_counter()
                if method == "PUT":
                    r = await client.put(name, content=payload)
                    assert r.status_code == 201, r.text
                else:
                    r = await client.get(f"{base}/bench/small-{i}-0")
                    assert r.status_code == 200, r.text
                latencies.append(time.perf_counter() - started)
                n += 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(clients):
            nursery.start_soon(loop, i)
    elapsed = time.perf_counter() - started
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else latencies[0] * 1000
    return len(latencies) / elapsed, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", default="1,32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-object-") as tmp:
        node = Cloud(Path(tmp) / "data", free_port())
        node.init()
        node.start()
        try:
            token = node.token()
            with node.client(token) as c:
                project = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["project"]
                base = f"/object-store/v1/AUTH_{project['id']}"
                assert c.put(f"{base}/bench").status_code == 201
            data = os.urandom(args.large_mib * CHUNK)
            wrote, read = baseline(node.data_dir, data)
            put, get = large(node, base, data)
            mib = args.large_mib
            print(f"large {mib} MiB: PUT {mib / put:.0f} MiB/s vs write+fsync {mib / wrote:.0f} MiB/s "
                  f"(ratio {wrote / put:.2f}); GET {mib / get:.0f} MiB/s vs read {mib / read:.0f} MiB/s "
                  f"(ratio {read / get:.2f}); target >= 0.8")
            for clients in (int(x) for x in args.clients.split(",")):
                for method in ("PUT", "GET"):
                    if method == "GET":  # the objects the GETs read exist
                        trio.run(small, node, token, base, clients, 0.2, "PUT")
                    ops, p99 = trio.run(small, node, token, base, clients, args.seconds, method)
                    print(f"small 4 KiB {method} x{clients} clients: {ops:.0f} ops/s, p99 {p99:.1f} ms")
            print(f"load average: {os.getloadavg()}")
        finally:
            node.stop()


if __name__ == "__main__":
    main()

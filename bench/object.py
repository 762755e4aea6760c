"""Object store benchmark (issue #16) on one node, against baselines measured in the same run.

It starts a fresh single-node cloud in a temporary dir (fake hypervisor), then measures:
- large objects: PUT and GET of --large-mib MiB over HTTPS (one client, streamed), against the
  baseline of writing the same bytes to a file in the same data dir with one fsync at the end, and
  reading that file back (both reads come from the page cache, like the GET's);
- small objects (4 KiB): PUT and GET ops/s and p99 latency for 1 and 32 concurrent clients
  (closed loops, each waiting for its answer) for --seconds each.
The target of the issue is large PUT and GET at >= 0.8 of the baselines.  Beside them it measures
the bounds of bench/object_bounds.py: md5 of the same bytes (the ETag every PUT computes) and TLS
over loopback with Python's ssl at both ends (the transport alone), each as a fraction of the
write+fsync baseline, since a PUT cannot be faster than either.

With --nodes 3 (root: the test underlay of tests/cluster_net.py, three namespaces on one bridge)
a three-node cluster is made and every request goes to node 1, which streams each PUT to the
three chosen nodes (rendezvous: all three here) and answers once two have it fsynced; the
baselines are then node 1's disk, so the ratio shows what replication costs on top. All three
nodes share this machine's CPUs and disk, unlike a real cluster.

Each figure is the median of --repeat runs on the same node, with the spread (min-max).

Usage: .venv/bin/python bench/object.py [--large-mib 256] [--seconds 5] [--clients 1,32]
       [--nodes 1|3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.object_bounds import md5_seconds, tls_seconds  # noqa: E402
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


def large(node: Any, base: str, data: bytes) -> tuple[float, float]:
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


async def small(node: Any, token: str, base: str, clients: int, seconds: float, method: str) -> tuple[float, float]:
    """(ops/s, p99 ms) of 4 KiB PUTs or GETs by ``clients`` closed loops."""
    payload = os.urandom(4096)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        async with httpx.AsyncClient(base_url=node.url, verify=ssl.create_default_context(cafile=str(node.ca)),
                                     timeout=60,
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


class _TempDirs:
    """What tests/cluster_net.joined_cluster wants of pytest's tmp_path_factory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=name, dir=self.root))
        return path

    def getbasetemp(self) -> Path:
        return self.root


@contextlib.contextmanager
def nodes_up(count: int, tmp: Path) -> Iterator[Any]:
    """The node every request goes to: alone, or node 1 of a joined three-node cluster."""
    if count == 1:
        node = Cloud(tmp / "data", free_port())
        node.init()
        node.start()
        try:
            yield node
        finally:
            node.stop()
        return
    from tests.cluster_net import joined_cluster
    with joined_cluster(_TempDirs(tmp), "bench-object", count=count) as nodes:
        yield nodes[0]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} [{min(values):.0f}-{max(values):.0f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", default="1,32")
    parser.add_argument("--nodes", type=int, default=1, choices=(1, 3))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-object-") as tmp, nodes_up(args.nodes, Path(tmp)) as node:
        token = node.token()
        with node.client(token) as c:
            project = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["project"]
            base = f"/object-store/v1/AUTH_{project['id']}"
            assert c.put(f"{base}/bench").status_code == 201
        data = os.urandom(args.large_mib * CHUNK)
        mib = args.large_mib
        figures: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            wrote, read = baseline(node.data_dir, data)
            put, get = large(node, base, data)
            md5, tls = md5_seconds(data), tls_seconds(data)
            figures.setdefault("md5", []).append(mib / md5)
            figures.setdefault("md5 ratio", []).append(wrote / md5 * 100)
            figures.setdefault("TLS", []).append(mib / tls)
            figures.setdefault("TLS ratio", []).append(wrote / tls * 100)
            for key, value in (("write+fsync", mib / wrote), ("PUT", mib / put), ("PUT ratio", wrote / put * 100),
                               ("read", mib / read), ("GET", mib / get), ("GET ratio", read / get * 100)):
                figures.setdefault(key, []).append(value)
            for clients in (int(x) for x in args.clients.split(",")):
                for method in ("PUT", "GET"):
                    if method == "GET":  # the objects the GETs read exist
                        trio.run(small, node, token, base, clients, 0.2, "PUT")
                    ops, p99 = trio.run(small, node, token, base, clients, args.seconds, method)
                    figures.setdefault(f"{method} x{clients} ops/s", []).append(ops)
                    figures.setdefault(f"{method} x{clients} p99 ms", []).append(p99)
        print(f"{args.nodes} node(s), {args.repeat} runs, median [min-max]")
        print(f"large {mib} MiB: PUT {spread(figures['PUT'])} MiB/s vs write+fsync {spread(figures['write+fsync'])} "
              f"MiB/s (ratio {spread(figures['PUT ratio'])} %); GET {spread(figures['GET'])} MiB/s vs read "
              f"{spread(figures['read'])} MiB/s (ratio {spread(figures['GET ratio'])} %); target >= 80 %")
        print(f"bounds: md5 alone {spread(figures['md5'])} MiB/s ({spread(figures['md5 ratio'])} % of write+fsync); "
              f"TLS over loopback alone, Python ssl both ends {spread(figures['TLS'])} MiB/s "
              f"({spread(figures['TLS ratio'])} % of write+fsync)")
        for clients in (int(x) for x in args.clients.split(",")):
            for method in ("PUT", "GET"):
                print(f"small 4 KiB {method} x{clients} clients: {spread(figures[f'{method} x{clients} ops/s'])} ops/s, "
                      f"p99 {spread(figures[f'{method} x{clients} p99 ms'])} ms")
        print(f"load average before {load_before}, after {os.getloadavg()} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()

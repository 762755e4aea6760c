"""Identity benchmark: token issue and validate rates and latencies, and idle memory.

Starts a real `cloudbox serve` (HTTPS, on loopback) in a temporary data dir and
measures, from this process:
- the baseline: GET /cloudbox/v1/health, a request that does no work, so the
  ratios below are what identity adds over the HTTP stack itself;
- token validation (GET /identity/v3/auth/tokens with X-Subject-Token);
- token issue by password (an scrypt hash check each) and by token (rescoping);
- resident memory of the idle server, against a bare Python interpreter.

Usage: .venv/bin/python bench/identity.py [--seconds 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cloud import Cloud, free_port  # noqa: E402


class Client:
    """A lean keep-alive HTTPS client (http.client), so client overhead stays small beside the server's."""

    def __init__(self, cloud: Cloud) -> None:
        self.conn = http.client.HTTPSConnection("127.0.0.1", cloud.port, context=cloud.ssl_context())

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        self.conn.request(method, path, data, hdrs)
        resp = self.conn.getresponse()
        resp.read()
        return resp.status, dict(resp.headers)

    def close(self) -> None:
        self.conn.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def latencies(call: Callable[[Client], None], client: Client, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        call(client)
        out.append((time.perf_counter() - start) * 1000)
    return out


def throughput(cloud: Cloud, call: Callable[[Client], None], clients: int, seconds: float) -> float:
    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        client = Client(cloud)
        while time.monotonic() < stop:
            call(client)
            done[i] += 1
        client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cloud = Cloud(Path(tmp) / "data", free_port())
        cloud.init()
        cloud.start()
        try:
            time.sleep(2)
            idle_rss = rss_kib(cloud.proc.pid)
            bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
            time.sleep(1)
            bare_rss = rss_kib(bare.pid)
            bare.kill()

            admin = cloud.token()
            subject = cloud.token()
            body_password = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": cloud.password}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
            body_token = {"auth": {"identity": {"methods": ["token"], "token": {"id": admin}},
                                   "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}

            def health(c: Client) -> None:
                assert c.request("GET", "/cloudbox/v1/health")[0] == 200

            def validate(c: Client) -> None:
                headers = {"X-Auth-Token": admin, "X-Subject-Token": subject}
                assert c.request("GET", "/identity/v3/auth/tokens", headers=headers)[0] == 200

            def issue_password(c: Client) -> None:
                assert c.request("POST", "/identity/v3/auth/tokens", body_password)[0] == 201

            def issue_token(c: Client) -> None:
                assert c.request("POST", "/identity/v3/auth/tokens", body_token)[0] == 201

            results = {}
            client = Client(cloud)
            for name, fn, n in (("health (baseline)", health, args.samples), ("validate", validate, args.samples),
                                ("issue by token", issue_token, args.samples // 4),
                                ("issue by password", issue_password, 100)):
                latencies(fn, client, 20)  # warm up
                lat = latencies(fn, client, n)
                rate = throughput(cloud, fn, args.clients, args.seconds)
                results[name] = (pct(lat, 50), pct(lat, 99), statistics.mean(lat), rate)
            client.close()
            loaded_rss = rss_kib(cloud.proc.pid)
        finally:
            cloud.stop()

    base = results["health (baseline)"]
    print(f"cloudbox identity benchmark ({args.clients} concurrent clients for rates, sequential for latency)")
    print(f"{'operation':<20} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'p50 / baseline':>15} {'rate / baseline':>16}")
    for name, (p50, p99, _mean, rate) in results.items():
        print(f"{name:<20} {p50:8.2f} {p99:8.2f} {rate:9.0f} {p50 / base[0]:15.2f} {rate / base[3]:16.2f}")
    print(f"idle RSS of cloudbox serve: {idle_rss / 1024:.1f} MiB "
          f"({idle_rss / bare_rss:.1f}x a bare Python interpreter's {bare_rss / 1024:.1f} MiB); "
          f"after the run: {loaded_rss / 1024:.1f} MiB")
    print(f"targets: validate p99 < 5 ms: {'met' if results['validate'][1] < 5 else 'NOT met'}; "
          f"idle RSS < 100 MB: {'met' if idle_rss * 1024 < 100e6 else 'NOT met'}")


if __name__ == "__main__":
    main()

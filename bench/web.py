"""Dashboard benchmark: how heavy the first page load is, and how soon a list of 500 servers is usable.

In one run, against a real `cloudbox serve` (fake compute and network drivers) in a temporary data dir:
- page weight: Debian's Chromium (headless, Selenium, empty cache) opens the page; every resource of
  that first load is listed from the browser's own Resource Timing entries with the bytes on the wire
  (encodedBodySize, compressed when the server compresses) and decoded; then the same after sign-in
  (the screens' modules and the API calls of the first screen). For reference, what gzip -6 would
  make of the same files;
- the server list: 500 servers (one POST with min_count = max_count = 500), then the time from opening
  ``/#/servers`` with a session (cache disabled: every module fetched again) until the servers screen
  shows its rows — the browser's own clock (a MutationObserver records ``performance.now()``) — against
  the baseline, `openstack server list` (.venv/bin/openstack: its start-up, token and list) timed by the
  wall clock; medians of --repeat runs, interleaved, and their ratio. Beside them: the dashboard with its
  files cached, the CLI without its image and flavor name look-ups (-n), and the list API call alone
  (GET /servers/detail over a kept-alive connection).
Nothing is asserted.

Usage: .venv/bin/python bench/web.py [--servers 500] [--repeat 5] [--keep-open]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cloud import Cloud, free_port, wait_for  # noqa: E402
from tests.compute_helpers import LATEST, make_qcow2, upload_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OPENSTACK = ROOT / ".venv" / "bin" / "openstack"

# Recorded in the page before its scripts run: when the servers screen first holds ``want`` rows.
WATCH_ROWS = """
window.__rowsAt = null;
const want = %d;
const look = () => {
  const screen = document.querySelector('.screen[data-screen="servers"]');
  if (!screen || window.__rowsAt !== null) return;
  if (screen.querySelectorAll('tbody tr').length >= want) { window.__rowsAt = performance.now(); watcher.disconnect(); }
};
const watcher = new MutationObserver(look);
watcher.observe(document, {childList: true, subtree: true});
"""

RESOURCES = """
return [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')].map((e) => ({
  name: e.name, type: e.initiatorType || 'navigation', encoded: e.encodedBodySize, decoded: e.decodedBodySize,
  transfer: e.transferSize, duration: e.duration}));
"""


def chromium() -> Any:
    """Headless Debian Chromium through chromium-driver, trusting no one's CA but ignoring the node's."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors",
                 "--disable-gpu", "--window-size=1280,900", "--disable-extensions"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def sizes(entries: list[dict[str, Any]], base: str) -> tuple[int, int, list[tuple[str, int, int]]]:
    """(bytes on the wire, bytes decoded, [(path, wire, decoded)]) of the page's own resources."""
    rows = [(urlsplit(e["name"]).path + (f"?{urlsplit(e['name']).query}" if urlsplit(e["name"]).query else ""),
             int(e["encoded"]), int(e["decoded"])) for e in entries if e["name"].startswith(base)]
    return sum(r[1] for r in rows), sum(r[2] for r in rows), rows


def gzip_size(cloud: Cloud, paths: list[str]) -> int:
    """What gzip -6 would send of these static files (for reference when the server does not compress)."""
    total = 0
    with cloud.client() as c:
        for path in paths:
            total += len(gzip.compress(c.get(path).content, 6))
    return total


def make_servers(cloud: Cloud, count: int, tmp: Path) -> str:
    """``count`` servers of a tiny flavor in the admin project, booted in one request; their project's token."""
    token = cloud.token()
    with cloud.client(token) as admin:
        image = upload_image(admin, make_qcow2(tmp / "disk.qcow2"), visibility="public")
        project = admin.get("/identity/v3/auth/projects").json()["projects"][0]["id"]
        r = admin.put(f"/compute/v2.1/os-quota-sets/{project}",
                      json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
        assert r.status_code == 200, r.text
        flavor = admin.post("/compute/v2.1/flavors", json={"flavor": {"name": "bench.web", "ram": 16, "vcpus": 1,
                                                                       "disk": 0}}).json()["flavor"]
        r = admin.post("/compute/v2.1/servers", headers=LATEST, json={"server": {
            "name": "web", "imageRef": image["id"], "flavorRef": flavor["id"], "networks": "none",
            "min_count": count, "max_count": count}})
        assert r.status_code == 202, r.text

        def all_active() -> bool:
            servers = admin.get("/compute/v2.1/servers/detail?limit=1000").json()["servers"]
            if any(s["status"] == "ERROR" for s in servers):
                raise RuntimeError("a server went to ERROR")
            return sum(s["status"] == "ACTIVE" for s in servers) >= count

        wait_for(all_active, 600, f"{count} servers to be ACTIVE", every=0.5)
    return token


RETRIES: list[str] = []  # why a run was done again (printed at the end)


def browser_list(driver: Any, cloud: Cloud, token: str, rows: int, cached: bool = False) -> float:
    """``browser_list_once``, again (up to twice) when the page did not get there: Chromium drops the
    requests in flight whenever a network interface comes or goes on the host, as other work on a
    shared machine makes them (the tests run it in a namespace; here its forwarders would be timed)."""
    for attempt in range(3):
        try:
            return browser_list_once(driver, cloud, token, rows, cached)
        except AssertionError as exc:
            errors = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
            RETRIES.append(f"{exc}; the browser said: {errors[-3:]}")
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def browser_list_once(driver: Any, cloud: Cloud, token: str, rows: int, cached: bool = False) -> float:
    """ms from navigation start until the servers screen shows ``rows`` rows; the HTTP cache off unless
    ``cached`` (then the files are revalidated: the server answers 304 to their ETags)."""
    driver.get_log("browser")  # what earlier pages said is not this run's
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": not cached})
    script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_ROWS % rows})
    try:
        driver.execute_script("sessionStorage.setItem('cloudbox-token', arguments[0]);", token)  # a signed-in tab
        driver.get(cloud.url + f"/?t={time.monotonic_ns()}#/servers")
        return wait_for(lambda: driver.execute_script("return window.__rowsAt;"), 60,
                        f"the servers screen to show {rows} rows", every=0.05)
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def cli_list(cloud: Cloud, count: int, *extra: str) -> float:
    """ms of `openstack server list` (start-up, token, list), the whole command by the wall clock."""
    env = cloud.openstack_env()
    start = time.perf_counter()
    out = subprocess.run([str(OPENSTACK), "server", "list", "-f", "value", "-c", "ID", *extra],
                         env=env, capture_output=True, text=True, timeout=300)
    took = (time.perf_counter() - start) * 1000
    if out.returncode != 0:
        raise RuntimeError(f"openstack server list failed: {out.stderr[-2000:]}")
    listed = len(out.stdout.split())
    if listed < count:
        raise RuntimeError(f"openstack server list showed {listed} servers, not {count}")
    return took


def api_list(cloud: Cloud, token: str) -> float:
    with cloud.client(token) as c:
        c.get("/compute/v2.1/servers/detail?limit=1")  # the connection is open before the clock starts
        start = time.perf_counter()
        r = c.get("/compute/v2.1/servers/detail")
        took = (time.perf_counter() - start) * 1000
        assert r.status_code == 200
    return took


def settled(driver: Any, quiet_ms: int = 500) -> None:
    """Wait until the page fetched nothing new for ``quiet_ms`` (the screens load in parallel after the shell)."""
    seen: list[tuple[int, float]] = []

    def quiet() -> bool:
        seen.append((len(driver.execute_script(RESOURCES)), time.monotonic()))
        first_of_count = next(at for n, at in seen if n == seen[-1][0])
        return (seen[-1][1] - first_of_count) * 1000 >= quiet_ms

    wait_for(quiet, 30, "the page to stop fetching", every=0.1)


def print_weight(title: str, entries: list[dict[str, Any]], cloud: Cloud, detail: bool) -> list[str]:
    wire, decoded, rows = sizes(entries, cloud.url)
    compressed = any(w and w < d for _, w, d in rows)
    print(f"  {title}: {len(rows)} requests, {wire:,} bytes on the wire, {decoded:,} decoded "
          f"({'the server compresses' if compressed else 'the server does not compress'})")
    if detail:
        for path, w, d in rows:
            print(f"      {path:55s} {w:9,} {d:9,}")
    return [path for path, _, _ in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=None,
                        help="rows the servers screen must show to count as ready (default: --servers)")
    parser.add_argument("--quiet", action="store_true", help="no per-file lines")
    args = parser.parse_args()
    rows = args.rows or args.servers

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cbx-bench-web-") as tmp:
        cloud = Cloud(Path(tmp) / "data", free_port())
        cloud.init("--set", "cpu_allocation_ratio=1000", "--set", "ram_allocation_ratio=100",
                   "--set", "disk_allocation_ratio=100")
        cloud.start(timeout=60)
        driver = chromium()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})  # every load is a first one
        try:
            print("cloudbox dashboard benchmark (headless Chromium "
                  f"{driver.capabilities.get('browserVersion', '?')}, fake compute driver)")
            # 1. The first page load, empty cache: what a newcomer's browser fetches for the sign-in page.
            driver.get(cloud.url + "/")
            wait_for(lambda: driver.execute_script("return document.querySelector('#signin') !== null"), 30,
                     "the sign-in form")
            first = driver.execute_script(RESOURCES)
            static = print_weight("first page load (sign-in page)", first, cloud, not args.quiet)
            print(f"      gzip -6 of those files would be {gzip_size(cloud, static):,} bytes")

            # 2. After signing in: the shell's screens and the first screen's API calls.
            token = cloud.token()
            for attempt in range(3):  # again when Chromium dropped a request (a screen module then is missing)
                driver.get_log("browser")
                driver.execute_script("sessionStorage.setItem('cloudbox-token', arguments[0]);", token)
                driver.get(cloud.url + f"/?signed-in={attempt}#/overview")
                wait_for(lambda: driver.execute_script("return document.querySelector('#nav') !== null"), 30, "the shell")
                settled(driver)
                dropped = [e["message"] for e in driver.get_log("browser")
                           if e.get("level") == "SEVERE" and "favicon" not in e["message"]]
                if not dropped:
                    break
                RETRIES.append(f"the signed-in page load: {dropped[-3:]}")
            print_weight("signed in, overview (cache disabled, everything again)", driver.execute_script(RESOURCES),
                         cloud, not args.quiet)

            # 3. 500 servers: the browser's list against the CLI's.
            started = time.perf_counter()
            token = make_servers(cloud, args.servers, Path(tmp))
            print(f"  {args.servers} servers ACTIVE after {time.perf_counter() - started:.1f} s (one request)")
            cli_list(cloud, args.servers)  # warm up: the CLI's modules in the page cache
            browser_list(driver, cloud, token, rows)
            ours, warm, base, bare, raw = [], [], [], [], []
            for _ in range(args.repeat):
                ours.append(browser_list(driver, cloud, token, rows))
                warm.append(browser_list(driver, cloud, token, rows, cached=True))
                base.append(cli_list(cloud, args.servers))
                bare.append(cli_list(cloud, args.servers, "--no-name-lookup"))
                raw.append(api_list(cloud, token))
        finally:
            driver.quit()
            cloud.stop()

    web_ms, cli_ms = statistics.median(ours), statistics.median(base)
    print(f"  host load average (1, 5, 15 min): at the start {' '.join(f'{v:.1f}' for v in load_before)}, "
          f"at the end {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"  time to an interactive list of {args.servers} servers (medians of {args.repeat} runs):")
    print(f"    dashboard: open /#/servers (no cache) until {rows} rows show  {web_ms:8.0f} ms   "
          f"(runs {' '.join(f'{t:.0f}' for t in ours)})")
    print(f"    dashboard again with its files cached (revalidated)          {statistics.median(warm):8.0f} ms   "
          f"(runs {' '.join(f'{t:.0f}' for t in warm)})")
    print(f"    baseline: openstack server list (start-up, token, list) {cli_ms:8.0f} ms   "
          f"(runs {' '.join(f'{t:.0f}' for t in base)})")
    print(f"    the CLI without its image and flavor name look-ups (-n)      {statistics.median(bare):8.0f} ms   "
          f"(runs {' '.join(f'{t:.0f}' for t in bare)})")
    print(f"    the API call alone: GET /servers/detail                  {statistics.median(raw):8.0f} ms")
    print(f"  ratio dashboard / CLI: {web_ms / cli_ms:.2f}")
    for why in RETRIES:
        print(f"  a browser run was done again: {why}")


if __name__ == "__main__":
    main()

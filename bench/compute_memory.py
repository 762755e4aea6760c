"""Memory of a node under a compute load: RSS idle, at the end of the load, and --settle seconds later.

Starts a real `cloudbox serve` (fake compute and network drivers, or with --real-drivers real ones) in a temporary data dir, then
boots --servers servers at once, waits for them to be ACTIVE, lists them, deletes them and waits
for them to be gone, --rounds times.  A node that holds what it no longer needs grows with every
round; the target (issue 14) is the same as bench/identity.py's: back within 1.3x of idle.  With
--trace the server traces Python allocations and the bench prints what grew.

Usage: .venv/bin/python bench/compute_memory.py [--servers 30] [--rounds 3] [--real-drivers] [--trace]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.identity import after_load, describe, memory_kib, print_diff, snapshot, wait_compute_reported  # noqa: E402
from tests.cloud import Cloud, free_port, run_cli  # noqa: E402
from tests.compute_helpers import LATEST, boot, make_qcow2, upload_image, wait_gone, wait_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=30, help="servers booted at once in each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after the load before the last RSS")
    parser.add_argument("--real-drivers", action="store_true",
                        help="QEMU guests (TCG) through libvirt and the Linux network instead of the fake drivers")
    parser.add_argument("--trace", action="store_true",
                        help="debug: the server traces Python allocations; print what grew over the load")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cbx-bench-") as tmp:
        Path(tmp).chmod(0o755)  # QEMU runs as the guest user: without this, compute cannot start
        trace_dir = Path(tmp) / "trace" if args.trace else None
        env = {"CLOUDBOX_TRACEMALLOC": str(trace_dir)} if trace_dir is not None else {}
        cloud = Cloud(Path(tmp) / "data", free_port(), env=env)
        if args.real_drivers:  # as bench/compute.py: QEMU guests (TCG), its own bridge, room for the burst
            cloud.init("--set", f"external_bridge=cbb{cloud.port}",
                       "--set", f"external_cidr=172.25.{cloud.port % 200 + 20}.0/24",
                       "--set", "cpu_allocation_ratio=64", compute="libvirt")
        else:
            cloud.init()
        cloud.start(timeout=600 if args.trace else 120)  # tracing every allocation slows start-up
        try:
            admin = cloud.client(cloud.token())
            image = upload_image(admin, make_qcow2(Path(tmp) / "disk.qcow2"), visibility="public")
            project = admin.get("/identity/v3/auth/projects").json()["projects"][0]["id"]
            unlimited = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
            assert admin.put(f"/compute/v2.1/os-quota-sets/{project}", json=unlimited).status_code == 200
            if args.real_drivers:  # idle as bench/identity.py takes it: 10 s after compute reports
                wait_compute_reported(cloud, 120)
            time.sleep(10 if args.real_drivers else 2)
            idle = memory_kib(cloud.proc.pid)
            snaps = [snapshot(cloud, trace_dir, 1)]
            start = time.perf_counter()
            for _ in range(args.rounds):
                ids = [boot(admin, image["id"], flavor="42")["id"] for _ in range(args.servers)]
                for server_id in ids:
                    wait_server(admin, server_id, {"ACTIVE"}, timeout=300)
                for _ in range(10):
                    assert admin.get("/compute/v2.1/servers/detail", headers=LATEST).status_code == 200
                for server_id in ids:
                    assert admin.delete(f"/compute/v2.1/servers/{server_id}").status_code == 204
                for server_id in ids:
                    wait_gone(admin, server_id, timeout=300)
            took = time.perf_counter() - start
            loaded, settled = after_load(cloud, trace_dir, args.settle, snaps)
        finally:
            cloud.stop()
            if args.real_drivers:
                run_cli("teardown-host-network", "--data-dir", str(cloud.data_dir))

        ratio = settled["VmRSS"] / idle["VmRSS"]
        print(f"{args.rounds} rounds of {args.servers} servers booted, listed and deleted in {took:.0f} s "
              f"({'real' if args.real_drivers else 'fake'} drivers)")
        print(f"  idle:                     {describe(idle)}")
        print(f"  at the end of the load:   {describe(loaded)}")
        print(f"  {args.settle:g} s after the load:    {describe(settled)}")
        print(f"  after / idle: {ratio:.2f}x; target within 1.3x: {'met' if ratio <= 1.3 else 'NOT met'}")
        if trace_dir is not None:
            print_diff(f"idle -> {args.settle:g} s after", snaps[0], snaps[2], 20)


if __name__ == "__main__":
    main()

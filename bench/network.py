"""Network benchmark: what cloudbox's data plane costs per packet, and how fast its API makes networks.

In one run it measures:
- the baseline: iperf3 (TCP, one stream) between two namespaces joined by a plain veth pair;
- a plain Linux bridge between two namespaces (no cloudbox rules; the kernel's br_netfilter is on,
  as cloudbox sets it), to tell the bridge's cost from the rules';
- through cloudbox's data plane, applied by the real LinuxNetworkDriver, with "guests" that are
  namespaces whose eth0 is the peer of a veth named like the port's tap (the driver adopts it, as
  tests/test_network_dataplane.py does):
    (a) guest -> guest on one tenant network, same security group (bridge, anti-spoofing, stateful
        rules, the network's conntrack zone),
    (b) guest -> external host through the router (SNAT to the router's gateway address),
    (c) external host -> guest through a floating IP (DNAT);
  then (a)-(c) again with the node's host nft tables deleted (the router's NAT stays), which
  splits the bridge and routing cost from the security-group cost;
- two real TCG guests (our test guest, m1.nano, a real node with the libvirt driver) on one tenant
  network: busybox dd | nc from one to the other, timed by the sender's clock.  Under TCG emulation
  this measures the emulator far more than the network: information only, beside the above;
- the API, against a real `cloudbox serve` (one client, sequential, keep-alive): 100 networks each
  with a subnet, then 100 ports, with per-call p50/p99; with the fake network driver (no host
  work) and, unless --no-linux-api, with the linux driver, where the data plane reconciles in the
  background: also the time until the host has all the bridges and DHCP namespaces.
All throughput figures are medians of --repeat runs (the runs are interleaved, so that load
from other processes on the machine falls on every path alike); the ratio to the baseline is
our overhead.  Nothing is asserted.

Usage: .venv/bin/python bench/network.py [--seconds 5] [--repeat 2] [--count 100] [--guest-mib 32]
       [--no-guests] [--no-linux-api] [--skip-throughput] [--skip-api]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloudbox.network.render import table_name  # noqa: E402
from tests.cloud import Cloud, free_port, run_cli  # noqa: E402
from tests.test_network_dataplane import Host, sh  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GUEST = ROOT / "firmware" / "build" / "guest.qcow2"
IPERF_PORT = 5201
MTU = 1450  # a tenant network's (VXLAN-sized) MTU: every path below uses it, the baseline too


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


# --- throughput -----------------------------------------------------------------------------

def iperf(server_ns: str, client_ns: str, address: str, seconds: float) -> float:
    """Gbit/s received by ``server_ns`` from ``client_ns`` sending to ``address`` (TCP, one stream)."""
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-p", str(IPERF_PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # until the server listens
            done = subprocess.run(["ip", "netns", "exec", client_ns, "iperf3", "-c", address, "-p", str(IPERF_PORT),
                                   "-t", str(seconds), "-O", "1", "-J"],
                                  capture_output=True, text=True, timeout=seconds + 60)
            result = json.loads(done.stdout or "{}")
            if "error" not in result and done.returncode == 0:
                return result["end"]["sum_received"]["bits_per_second"] / 1e9
            if "refused" not in result.get("error", ""):
                raise RuntimeError(f"iperf3 {client_ns} -> {address}: {result.get('error') or done.stderr}")
            time.sleep(0.05)
        raise RuntimeError(f"iperf3 server in {server_ns} never listened")
    finally:
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def plain_pair(host: Host) -> tuple[str, str]:
    """Two namespaces joined by one veth pair: the baseline."""
    a, b = host.namespace("cbxba"), host.namespace("cbxbb")
    sh("ip", "link", "add", "eth0", "netns", a, "mtu", str(MTU), "type", "veth", "peer", "name", "eth0",
       "netns", b, "mtu", str(MTU))
    for ns, address in ((a, "10.68.0.1/24"), (b, "10.68.0.2/24")):
        sh("ip", "-n", ns, "addr", "add", address, "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
    return a, b


def plain_bridge(host: Host) -> tuple[str, str]:
    """Two namespaces on a Linux bridge of the host that has no rules of ours."""
    tag = secrets.token_hex(3)
    bridge = f"cbxpb{tag}"
    sh("ip", "link", "add", bridge, "type", "bridge")
    host.links.append(bridge)
    sh("ip", "link", "set", bridge, "up")
    out = []
    for i in (1, 2):
        ns = host.namespace(f"cbxp{i}")
        link = f"cbxp{i}{tag}"
        sh("ip", "link", "add", link, "mtu", str(MTU), "type", "veth", "peer", "name", "eth0", "netns", ns, "mtu", str(MTU))
        host.links.append(link)
        sh("ip", "link", "set", link, "master", bridge, "up")
        sh("ip", "-n", ns, "addr", "add", f"10.68.1.{i}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        out.append(ns)
    return out[0], out[1]


def cloudbox_topology(host: Host) -> dict[str, str]:
    """A tenant network with two guests, a router to the external network, a floating IP on guest a,
    an external host; applied by the real driver."""
    rows = host.rows
    ext = rows.network(host.ext_cidr, project="admin", external=True, dhcp=False)
    net, subnet = rows.network("10.69.0.0/24", mtu=MTU)
    a = rows.port(net, subnet, "10.69.0.5")
    b = rows.port(net, subnet, "10.69.0.6")
    router = rows.router("p1", ext, f"{host.ext_prefix}.10", [(net, subnet)])
    floating = f"{host.ext_prefix}.20"
    rows.floating_ip(router, ext, floating, a)
    # The default group lets in its members (a <-> b); iperf3 from outside needs its port opened.
    rows.rule(rows.default_group("p1"), "ingress", "IPv4", "tcp", IPERF_PORT, IPERF_PORT, remote_ip_prefix="0.0.0.0/0")
    plan = host.plan()
    guest_a = host.guest(plan.port(a), "10.69.0.5/24", "10.69.0.1")
    guest_b = host.guest(plan.port(b), "10.69.0.6/24", "10.69.0.1")
    host.apply()
    outside = host.external_host(f"{host.ext_prefix}.100")
    return {"a": guest_a, "b": guest_b, "outside": outside, "floating": floating}


def throughput(args: argparse.Namespace, tmp: Path) -> list[tuple[str, list[float]]]:
    host = Host(tmp)
    try:
        base_a, base_b = plain_pair(host)
        br_a, br_b = plain_bridge(host)
        topo = cloudbox_topology(host)
        ga, gb, outside = topo["a"], topo["b"], topo["outside"]
        ext = f"{host.ext_prefix}.100"
        paths: list[tuple[str, Callable[[], float]]] = [
            ("baseline: plain veth pair", lambda: iperf(base_b, base_a, "10.68.0.2", args.seconds)),
            ("plain Linux bridge, no rules of ours", lambda: iperf(br_b, br_a, "10.68.1.2", args.seconds)),
            ("(a) guest -> guest, same network and group", lambda: iperf(gb, ga, "10.69.0.6", args.seconds)),
            ("(b) guest -> external host, router SNAT", lambda: iperf(outside, gb, ext, args.seconds)),
            ("(c) external host -> floating IP, DNAT", lambda: iperf(ga, outside, topo["floating"], args.seconds)),
        ]
        without = [(f"{name.split(',')[0]}, host nft tables deleted", fn) for name, fn in paths[2:]]
        results: dict[str, list[float]] = {name: [] for name, _ in paths + without}
        iperf(gb, ga, "10.69.0.6", 1)  # warm up (neighbours, iperf3 in the page cache)
        for _ in range(args.repeat):
            for name, fn in paths:
                results[name].append(fn())
            for family in ("bridge", "inet"):
                sh("nft", "delete", "table", family, table_name(host.node_id))
            try:
                for name, fn in without:
                    results[name].append(fn())
            finally:
                host.apply()  # the rules back
        return list(results.items())
    finally:
        host.cleanup()
        left = host.leftovers()
        if left:
            print(f"WARNING: left on the host: {left}", file=sys.stderr)


# --- real guests (TCG) ------------------------------------------------------------------------

# The sink's user data holds its boot until the stream has come (the guest allows a script 300 s).
# Busybox nc half-closes when its stdin ends, and the other end then quits: the sink's stdin is a
# FIFO it holds open itself, which never ends nor gives data.
SINK = """#!/bin/sh
mkfifo /tmp/idle; exec 3<>/tmp/idle
n=$(nc -l -p 5001 <&3 | wc -c); echo "CHECK received $n"
"""

SOURCE = """#!/bin/sh
i=0; while [ $i -lt 120 ]; do ping -c 1 -W 1 {peer} >/dev/null 2>&1 && break; i=$((i+1)); sleep 1; done
i=0; while [ $i -lt 120 ]; do
  S=$(cut -d' ' -f1 /proc/uptime)
  if dd if=/dev/zero bs=64k count={blocks} 2>/dev/null | nc {peer} 5001; then
    E=$(cut -d' ' -f1 /proc/uptime); echo "CHECK sent {blocks} $S $E"; break
  fi
  i=$((i+1)); sleep 1
done
"""


def real_guests(args: argparse.Namespace, tmp: Path) -> str:
    """Two TCG guests on one tenant network; MiB/s of a busybox nc stream from one to the other."""
    from tests.compute_helpers import LATEST, upload_image, wait_gone, wait_server
    from tests.test_compute_libvirt import real_node, stop_and_clean, wait_for

    node = real_node(tmp / "guests")
    node.start(timeout=120)
    try:
        with node.client(node.token()) as admin:
            image = upload_image(admin, GUEST)["id"]
            net = admin.post("/network/v2.0/networks", json={"network": {"name": "bench"}}).json()["network"]
            admin.post("/network/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                                 "cidr": "192.168.77.0/24"}}).raise_for_status()

            def boot(name: str, ip: str, script: str) -> str:
                body = {"server": {"name": name, "imageRef": image, "flavorRef": "42",
                                   "networks": [{"uuid": net["id"], "fixed_ip": ip}],
                                   "user_data": base64.b64encode(script.encode()).decode()}}
                r = admin.post("/compute/v2.1/servers", json=body, headers=LATEST)
                r.raise_for_status()
                return r.json()["server"]["id"]

            def console(sid: str) -> str:
                r = admin.post(f"/compute/v2.1/servers/{sid}/action", json={"os-getConsoleOutput": {}})
                return r.json().get("output", "") if r.status_code == 200 else ""

            sink = boot("sink", "192.168.77.10", SINK)
            source = boot("source", "192.168.77.11", SOURCE.format(peer="192.168.77.10", blocks=args.guest_mib * 16))
            try:
                for sid in (sink, source):
                    wait_server(admin, sid, {"ACTIVE"}, timeout=180)
                wait_for(lambda: "CHECK sent" in console(source), 600, "the source guest to send")
                line = next(x for x in console(source).splitlines() if "CHECK sent" in x)
                start, end = line.split()[-2:]
                took = float(end) - float(start)
                size = args.guest_mib * 1024 * 1024
                try:
                    wait_for(lambda: f"CHECK received {size}" in console(sink), 60, "the sink to count the stream")
                except AssertionError:
                    raise RuntimeError(f"the stream did not arrive whole: sink {console(sink)[-1500:]}\n"
                                       f"source {console(source)[-1500:]}") from None
            finally:
                for sid in (sink, source):
                    admin.delete(f"/compute/v2.1/servers/{sid}")
                for sid in (sink, source):
                    wait_gone(admin, sid, timeout=120)
        return (f"{args.guest_mib} MiB in {took:.2f} s (guest clock): {args.guest_mib / took:.1f} MiB/s "
                f"= {args.guest_mib * 8 * 1.048576 / 1000 / took:.3f} Gbit/s")
    finally:
        stop_and_clean(node)
        kill_orphans(node.data_dir)


# --- the API --------------------------------------------------------------------------------

def host_has(namespaces: list[str], bridges: list[str]) -> bool:
    try:
        present = set(os.listdir("/run/netns"))  # what `ip netns list` shows
    except FileNotFoundError:
        present = set()
    return all(n in present for n in namespaces) and all(os.path.exists(f"/sys/class/net/{b}") for b in bridges)


def dnsmasq_running(network_ids: list[str]) -> int:
    """How many of these networks have their dnsmasq (its command line names the network's directory)."""
    ps = sh("ps", "-eo", "args").stdout
    return sum(1 for n in network_ids if f"/{n}/dnsmasq.conf" in ps)


def api(args: argparse.Namespace, tmp: Path, driver: str) -> dict:
    cloud = Cloud(tmp / f"api-{driver}", free_port())
    extra = []
    if driver == "linux":
        extra = ["--set", "network_driver=linux", "--set", f"external_bridge=cbb{cloud.port}",
                 "--set", f"external_cidr=172.25.{cloud.port % 200 + 20}.0/24"]
    cloud.init(*extra, compute="fake")
    cloud.start(timeout=120)
    out: dict = {}
    try:
        with cloud.client(cloud.token()) as client:
            project = client.get("/identity/v3/projects?name=admin").json()["projects"][0]["id"]
            r = client.put(f"/network/v2.0/quotas/{project}",
                           json={"quota": {"network": -1, "subnet": -1, "port": -1}})
            r.raise_for_status()
            client.get("/network/v2.0/networks").raise_for_status()  # warm up (and the default group)
            nets, net_ms, sub_ms, port_ms = [], [], [], []
            started = time.perf_counter()
            for i in range(args.count):
                t0 = time.perf_counter()
                r = client.post("/network/v2.0/networks", json={"network": {"name": f"bench-{i}"}})
                t1 = time.perf_counter()
                assert r.status_code == 201, r.text
                net = r.json()["network"]["id"]
                r = client.post("/network/v2.0/subnets", json={"subnet": {
                    "network_id": net, "ip_version": 4, "cidr": f"10.{70 + i // 250}.{i % 250}.0/24"}})
                t2 = time.perf_counter()
                assert r.status_code == 201, r.text
                nets.append(net)
                out["nets"] = nets
                net_ms.append((t1 - t0) * 1000)
                sub_ms.append((t2 - t1) * 1000)
            out["networks_s"] = time.perf_counter() - started
            if driver == "linux":
                namespaces = [f"qdhcp-{n}" for n in nets]
                bridges = [f"brq{n[:11]}" for n in nets]
                deadline = time.monotonic() + args.host_timeout
                while not host_has(namespaces, bridges) and time.monotonic() < deadline:
                    time.sleep(0.1)
                out["host_ready"] = host_has(namespaces, bridges)
                out["host_s"] = time.perf_counter() - started
                while dnsmasq_running(nets) < len(nets) and time.monotonic() < deadline:
                    time.sleep(0.25)
                out["dnsmasq_s"] = time.perf_counter() - started
                out["dnsmasq"] = dnsmasq_running(nets)
            started = time.perf_counter()
            for i in range(args.count):
                t0 = time.perf_counter()
                r = client.post("/network/v2.0/ports", json={"port": {"network_id": nets[0], "name": f"bench-{i}"}})
                port_ms.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 201, r.text
            out["ports_s"] = time.perf_counter() - started
            out["calls"] = {"network create": net_ms, "subnet create": sub_ms, "port create": port_ms}
    finally:
        cloud.stop()
        out["orphans"] = kill_orphans(cloud.data_dir)
        if driver == "linux":
            run_cli("teardown-host-network", "--data-dir", str(cloud.data_dir))
            nets = out.get("nets", [])
            left = [n for n in os.listdir("/run/netns") if any(i in n for i in nets)] if os.path.isdir("/run/netns") else []
            left += [f"brq{n[:11]}" for n in nets if os.path.exists(f"/sys/class/net/brq{n[:11]}")]
            if dnsmasq_running(nets):
                left.append(f"{dnsmasq_running(nets)} dnsmasq")
            if left:
                print(f"WARNING: left on the host after teardown-host-network: {left}", file=sys.stderr)
    return out


def kill_orphans(data_dir: Path) -> list[str]:
    """Processes of the stopped node still alive (e.g. a forked pyroute2 helper stuck in a namespace,
    which keeps the namespace and the node's listening sockets open): killed, and reported."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if f"--data-dir {data_dir}" in cmdline:
                    netns = os.readlink(f"/proc/{entry.name}/ns/net")
                    comm = Path(f"/proc/{entry.name}/comm").read_text().strip()
                    os.kill(int(entry.name), 9)
                    found.append(f"pid {entry.name} ({comm!r}, {netns})")
            except OSError:
                continue
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5, help="length of each iperf3 run")
    parser.add_argument("--repeat", type=int, default=2, help="iperf3 runs per path (median reported)")
    parser.add_argument("--count", type=int, default=100, help="networks (with a subnet each) and ports to create")
    parser.add_argument("--host-timeout", type=float, default=120,
                        help="how long to wait for the linux data plane to make every network")
    parser.add_argument("--no-linux-api", action="store_true", help="time the API with the fake network driver only")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--no-guests", action="store_true", help="leave out the two real TCG guests (about a minute)")
    parser.add_argument("--guest-mib", type=int, default=32, help="MiB sent from one TCG guest to the other")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (namespaces, bridges, nft)")

    with tempfile.TemporaryDirectory(prefix="cbx-bench-") as tmp:
        tmp_path = Path(tmp)
        flows = [] if args.skip_throughput else throughput(args, tmp_path)
        guests = None if args.no_guests else real_guests(args, tmp_path)
        apis = {}
        if not args.skip_api:
            apis["fake"] = api(args, tmp_path, "fake")
            if not args.no_linux_api:
                apis["linux"] = api(args, tmp_path, "linux")

    if flows:
        base = statistics.median(flows[0][1])
        print(f"cloudbox network benchmark: iperf3, one TCP stream, {args.seconds:g} s, MTU {MTU}, "
              f"median of {args.repeat} (min-max)")
        print(f"{'path':<62} {'Gbit/s':>7} {'range':>13} {'/ baseline':>10}")
        for name, values in flows:
            med = statistics.median(values)
            print(f"{name:<62} {med:7.2f} {min(values):6.2f}-{max(values):<6.2f} {med / base:10.2f}")
    if guests:
        print(f"real TCG guests, busybox nc between two guests on one network (measures the emulator): {guests}")
    for driver, out in apis.items():
        n = args.count
        print(f"API, network_driver={driver}: {n} networks with a subnet each in {out['networks_s']:.2f} s "
              f"({out['networks_s'] / n * 1000:.1f} ms per pair); {n} ports in {out['ports_s']:.2f} s "
              f"({out['ports_s'] / n * 1000:.1f} ms each)")
        for call, values in out["calls"].items():
            print(f"    {call:<15} p50 {pct(values, 50):7.1f} ms   p99 {pct(values, 99):7.1f} ms")
        if "host_s" in out:
            state = "all" if out["host_ready"] else "NOT all (timed out)"
            print(f"    host: {state} {n} bridges and qdhcp namespaces present {out['host_s']:.2f} s after the first "
                  f"call ({out['host_s'] - out['networks_s']:.2f} s after the last subnet was created); "
                  f"{out['dnsmasq']} dnsmasq running after {out['dnsmasq_s']:.2f} s")
        if out["orphans"]:
            print(f"    NOTE: after `cloud.stop()` these processes of the node were still alive (killed): "
                  f"{', '.join(out['orphans'])}")


if __name__ == "__main__":
    main()

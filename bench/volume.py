"""Volume benchmark (issue 15, acceptance 7): what cloudbox adds to volumes, against baselines run
in the same process.

(a) create and attach: cloudbox: POST /volumes (1 GB) until available, then POST
    os-volume_attachments to a running guest until the volume is in-use (compute marks it so
    once libvirt has plugged the disk in), through a real `cloudbox serve` with libvirt's
    embedded QEMU driver; the baseline: a sparse 1 GB file made and attached live to a running
    domain straight through libvirt in this process (attachDeviceFlags of the same <disk> XML).
(b) NBD throughput: sequential write and read of a volume through its NBD export (export.py's
    qemu-storage-daemon with cluster-CA certificates, TLS, on 127.0.0.1) against the same file
    written and read locally, both by the same tool with the same options: `qemu-img convert`
    (8 requests of 2 MiB in flight, out of order, no zero detection), reading into QEMU's null
    driver, writing with qemu-img's convert default `-t unsafe` (no flush: what is measured is
    the page cache, on both sides). The page cache on where the file is opened: by qemu-img
    locally, by the export daemon (as export.py opens volumes, and as libvirt's default disks
    have it). Also, each with its own local baseline: the same export without TLS (NBD's own
    cost), and the page cache off on both sides (O_DIRECT: the local file with
    cache.direct=on against a TLS export whose daemon opens the file with cache.direct=on).
(c) create of N volumes (100), one after another: POST until available, p50/p99.
Every figure is a median (or a percentile) of runs taken in turn with its baseline, so a load
that comes and goes on this shared host hits both; the conditions are printed with them.

Usage: .venv/bin/python bench/volume.py [--repeat 5] [--size-mb 1024] [--creates 100] [--skip-attach]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.identity import cpu_of  # noqa: E402
from cloudbox import nbd_tls, pki  # noqa: E402
from cloudbox.volume.driver.dir import DirDriver  # noqa: E402
from cloudbox.volume.export import TLS_PRIORITY, ExportDaemon, ExportSpec, daemon_env, export_name  # noqa: E402
from tests.cloud import Cloud, free_port  # noqa: E402
from tests.compute_helpers import LATEST, upload_image  # noqa: E402
from tests.test_volume_nbd_guest import write_node_pki  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GUEST = ROOT / "firmware" / "build" / "guest.qcow2"
POLL = 0.01  # seconds between a client's GETs
# 8 requests in flight, out of order, no zero detection; the source read through the page cache
# (-T writeback), the target written without flushes (-t unsafe): qemu-img convert's defaults, stated.
CONVERT = ("-m", "8", "-W", "-S", "0", "-T", "writeback", "-t", "unsafe")


def wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(POLL)
    raise RuntimeError(f"{what} did not happen in {timeout} s")


# --- (b) NBD throughput -------------------------------------------------------------------------------
def convert(*args: str, server: int | None = None) -> tuple[float, float, float]:
    """(seconds, CPU seconds of qemu-img, of the export daemon ``server``) of one qemu-img convert.
    CPU time depends less on how busy the host is than seconds: it says what each path costs."""
    children, served = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_of(server)
    start = time.perf_counter()
    done = subprocess.run(["qemu-img", "convert", "-n", *args], capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"qemu-img convert {' '.join(args)}: {done.stderr.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return took, client, cpu_of(server) - served


def nbd_opts(port: int, size: int, tls: bool) -> str:
    opts = f"driver=raw,size={size},file.driver=nbd,file.server.type=inet,file.server.host=127.0.0.1," \
           f"file.server.port={port},file.export={export_name(VOLUME)}"
    return opts + (",file.tls-creds=tls0" if tls else "")


VOLUME = "7d0f3b9e-5a1c-4e2f-8b6d-0c9a1e2f3d4b"


def side_daemon(path: str, port: int, tls_dir: Path | None, direct: bool) -> subprocess.Popen:
    """An export of ``path`` started as export.py starts its daemon (its environment, TLS priority,
    block options), but without TLS (``tls_dir`` None) or with the page cache off (``direct``)."""
    args = ["qemu-storage-daemon"]
    if tls_dir is not None:
        args += ["--object", f"tls-creds-x509,id=tls0,dir={tls_dir},endpoint=server,verify-peer=on,"
                             f"priority={TLS_PRIORITY}"]
    cache = ",cache.direct=on" if direct else ""
    args += ["--blockdev", f"driver=file,node-name=f0,filename={path},aio=threads,discard=unmap{cache}",
             "--blockdev", "driver=raw,node-name=v0,file=f0,discard=unmap",
             "--nbd-server", f"addr.type=inet,addr.host=127.0.0.1,addr.port={port}"
             + (",tls-creds=tls0" if tls_dir is not None else ""),
             "--export", f"type=nbd,id=e0,node-name=v0,name={export_name(VOLUME)},writable=on"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=daemon_env())

    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"qemu-storage-daemon on {port} ended: {proc.stderr.read().strip()[-300:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    wait(listening, 30, f"qemu-storage-daemon to listen on {port}")
    return proc


Run = tuple[float, float, float]  # seconds, CPU seconds of qemu-img, of the export daemon


def throughput(work: Path, size_mb: int, repeat: int) -> dict[str, list[Run]]:
    """Each run of local/nbd/plain (no TLS)/direct/nbd-direct × write/read, taken in turn."""
    ca = pki.create_ca("bench", dt.datetime.now(dt.timezone.utc))
    node_a, node_b = work / "a", work / "b"
    write_node_pki(node_a, ca, "node-a", "127.0.0.1")
    write_node_pki(node_b, ca, "node-b", "127.0.0.2")
    client = nbd_tls.write_client_dir(node_b, "node-b")
    driver = DirDriver(node_a, "raw")
    size = size_mb << 20
    driver.create_blank(VOLUME, (size + (1 << 30) - 1) >> 30)
    path = str(driver.path(VOLUME))
    source = work / "source.raw"
    with source.open("wb") as f:  # random data: nothing for a zero detection to skip
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    server_dir = nbd_tls.write_server_dir(node_a)
    daemon = ExportDaemon(node_a / "nbd-exports", server_dir, "127.0.0.1", free_port())
    tls_object = ("--object", f"tls-creds-x509,id=tls0,dir={client},endpoint=client")
    local = f"driver=raw,size={size},file.driver=file,file.filename={path}"
    null = f"driver=null-co,size={size}"
    runs: dict[str, list[Run]] = {}
    sides: list[subprocess.Popen] = []
    try:
        daemon.add(ExportSpec(VOLUME, path, "raw", False, False))  # listening before other ports are picked
        tls_pid = daemon.pid()
        plain_port = free_port()
        sides.append(plain := side_daemon(path, plain_port, None, False))
        direct_port = free_port()
        sides.append(direct := side_daemon(path, direct_port, server_dir, True))
        for n in range(repeat + 1):  # the first round warms caches up and is not counted
            round_: dict[str, Run] = {
                "local write": convert("-U", "-f", "raw", "--target-image-opts", *CONVERT, str(source), local),
                "nbd write": convert(*tls_object, "-f", "raw", "--target-image-opts", *CONVERT, str(source),
                                     nbd_opts(daemon.port, size, True), server=tls_pid),
                "plain write": convert("-f", "raw", "--target-image-opts", *CONVERT, str(source),
                                       nbd_opts(plain_port, size, False), server=plain.pid),
                "local read": convert("-U", "--image-opts", "--target-image-opts", *CONVERT, local, null),
                # The page cache off (O_DIRECT): the disk's own speed, what a guest gets from data not cached.
                "direct write": convert("-U", "-f", "raw", "--target-image-opts", *CONVERT, str(source),
                                        local + ",file.cache.direct=on"),
                "direct read": convert("-U", "--image-opts", "--target-image-opts", *CONVERT,
                                       local + ",file.cache.direct=on", null),
                "nbd read": convert(*tls_object, "--image-opts", "--target-image-opts", *CONVERT,
                                    nbd_opts(daemon.port, size, True), null, server=tls_pid),
                "plain read": convert("--image-opts", "--target-image-opts", *CONVERT,
                                      nbd_opts(plain_port, size, False), null, server=plain.pid),
                "nbd-direct write": convert(*tls_object, "-f", "raw", "--target-image-opts", *CONVERT, str(source),
                                            nbd_opts(direct_port, size, True), server=direct.pid),
                "nbd-direct read": convert(*tls_object, "--image-opts", "--target-image-opts", *CONVERT,
                                           nbd_opts(direct_port, size, True), null, server=direct.pid),
            }
            if n:
                for key, seconds in round_.items():
                    runs.setdefault(key, []).append(seconds)
    finally:
        daemon.stop()
        for side in sides:
            side.terminate()
            side.wait(10)
    return runs


# --- (a) create and attach, (c) creates -----------------------------------------------------------------
def console_ready(path: Path) -> bool:
    return path.exists() and b"CLOUDBOX-GUEST: ready" in path.read_bytes()


class RawDomain:
    """A running guest of our test image straight through libvirt (this process's embedded driver)."""

    def __init__(self, work: Path) -> None:
        from cloudbox.compute import core
        from cloudbox.compute.driver._libvirt import libvirt  # libvirt's own logging quiet, as in the node
        from cloudbox.compute.driver import DomainSpec, confinement
        from cloudbox.compute.driver.real import prepare_embed_root, short_root

        self.libvirt = libvirt
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)], daemon=True).start()
        prepare_embed_root(work / "lv", confinement.guest_identity(confinement.DEFAULT_GUEST_USER))
        self.conn = libvirt.open(f"qemu:///embed?root={short_root(work / 'lv')}")
        self.work = work / "raw"
        self.work.mkdir(mode=0o755)
        disk = self.work / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(GUEST), str(disk)],
                       check=True)
        sid = str(uuid.uuid4())
        self.console = self.work / "console.log"
        spec = DomainSpec(uuid=sid, name=f"cloudbox-{sid}", vcpus=1, memory_mb=128, root_disk=str(disk),
                          console_log=str(self.console), accel="tcg")
        self.dom = self.conn.defineXML(core.render_domain_xml(spec))
        self.dom.create()

    def attach(self) -> tuple[float, str]:
        """A new sparse 1 GB file attached live; (seconds, the disk's XML to detach it)."""
        from cloudbox.compute.driver import VolumeDisk
        from cloudbox.compute.driver.volume_disk import disk_xml
        from cloudbox.volume.core_attach import local_connection

        vid = str(uuid.uuid4())
        path = self.work / f"volume-{vid}.raw"
        start = time.perf_counter()
        with path.open("wb") as f:
            f.truncate(1 << 30)
        xml = disk_xml(VolumeDisk(vid, "vdb", local_connection({"id": vid}, None, "rw", str(path), "raw", False, {})))
        self.dom.attachDeviceFlags(xml, self.libvirt.VIR_DOMAIN_AFFECT_LIVE)
        return time.perf_counter() - start, xml

    def detach(self, xml: str) -> None:
        self.dom.detachDeviceFlags(xml, self.libvirt.VIR_DOMAIN_AFFECT_LIVE)
        wait(lambda: "<serial>" not in self.dom.XMLDesc(0), 120, "the raw disk to leave the guest")

    def close(self) -> None:
        self.dom.destroy()
        self.dom.undefine()
        self.conn.close()


def volume_status(client: Any, vid: str) -> str:
    r = client.get(f"/volume/v3/volumes/{vid}")
    return r.json()["volume"]["status"] if r.status_code == 200 else "gone"


def create_volume(client: Any) -> tuple[str, float, float]:
    """(id, seconds to the POST's answer, seconds to available)."""
    start = time.perf_counter()
    r = client.post("/volume/v3/volumes", json={"volume": {"size": 1}})
    answered = time.perf_counter() - start
    assert r.status_code == 202, r.text
    vid = r.json()["volume"]["id"]
    wait(lambda: volume_status(client, vid) == "available", 120, f"volume {vid} to be available")
    return vid, answered, time.perf_counter() - start


def cloudbox_attach(client: Any, sid: str) -> tuple[float, float, str]:
    """(seconds until in-use, of which until available, the volume's id)."""
    start = time.perf_counter()
    vid, _, made = create_volume(client)
    r = client.post(f"/compute/v2.1/servers/{sid}/os-volume_attachments", headers=LATEST,
                    json={"volumeAttachment": {"volumeId": vid}})
    assert r.status_code == 200, r.text
    wait(lambda: volume_status(client, vid) == "in-use", 120, f"volume {vid} to be in-use")
    return time.perf_counter() - start, made, vid


def cloudbox_detach(client: Any, sid: str, vid: str) -> None:
    assert client.delete(f"/compute/v2.1/servers/{sid}/os-volume_attachments/{vid}").status_code == 202
    wait(lambda: volume_status(client, vid) == "available", 120, f"volume {vid} to be detached")
    client.delete(f"/volume/v3/volumes/{vid}")


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def rate(runs: list[Run], mb: int) -> tuple[float, float, float]:
    """MB/s: median, min, max."""
    rates = sorted(mb / seconds for seconds, _, _ in runs)
    return statistics.median(rates), rates[0], rates[-1]


def cpu(runs: list[Run], mb: int) -> str:
    client = statistics.median(c for _, c, _ in runs) * 1024 / mb
    server = statistics.median(s for _, _, s in runs) * 1024 / mb
    return f"{client + server:.2f} CPU-s/GiB ({client:.2f} + {server:.2f})" if server else f"{client:.2f} CPU-s/GiB"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=1024, help="bytes moved per throughput run (MiB)")
    parser.add_argument("--creates", type=int, default=100)
    parser.add_argument("--skip-attach", action="store_true", help="no guests: only (b) and (c)")
    args = parser.parse_args()
    load_before = loadavg()
    qemu = subprocess.run(["qemu-img", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    with tempfile.TemporaryDirectory(prefix="cbx-bench-volume-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # QEMU runs as the guest user: it must reach the files
        runs = throughput(work, args.size_mb, args.repeat)
        cloud = Cloud(work / "data", free_port())
        compute = "fake" if args.skip_attach else "libvirt"
        cloud.init("--set", "network_driver=fake", "--set", "quota_volumes=-1", "--set", "quota_gigabytes=-1",
                   compute=compute)
        cloud.start(timeout=120)
        raw: RawDomain | None = None
        ours_attach: list[float] = []
        ours_made: list[float] = []
        raw_attach: list[float] = []
        answered: list[float] = []
        created: list[float] = []
        try:
            with cloud.client(cloud.token()) as client:
                if not args.skip_attach:
                    shutil.copyfile(GUEST, work / "guest.qcow2")
                    image = upload_image(client, work / "guest.qcow2")
                    r = client.post("/compute/v2.1/servers", headers=LATEST, json={"server": {
                        "name": "bench", "imageRef": image["id"], "flavorRef": "42", "networks": "none"}})
                    assert r.status_code == 202, r.text
                    sid = r.json()["server"]["id"]
                    raw = RawDomain(work)
                    console = cloud.data_dir / "instances" / sid / "console.log"
                    wait(lambda: console_ready(console) and console_ready(raw.console), 600, "both guests to boot")
                    for n in range(args.repeat + 1):  # in turn; the first round warms up and is not counted
                        took, xml = raw.attach()
                        raw.detach(xml)
                        ours, made, vid = cloudbox_attach(client, sid)
                        cloudbox_detach(client, sid, vid)
                        if n:
                            raw_attach.append(took)
                            ours_attach.append(ours)
                            ours_made.append(made)
                ids = []
                for _ in range(args.creates):
                    vid, answer, took = create_volume(client)
                    ids.append(vid)
                    answered.append(answer)
                    created.append(took)
                for vid in ids:
                    client.delete(f"/volume/v3/volumes/{vid}")
        finally:
            if raw is not None:
                raw.close()
            cloud.stop()

    mb = args.size_mb
    print(f"cloudbox volume benchmark ({os.cpu_count()} cores, load average {load_before} before and "
          f"{loadavg()} after; {qemu}; medians of {args.repeat} runs taken in turn with their baselines)")
    if ours_attach:
        r_ms, o_ms = statistics.median(raw_attach) * 1000, statistics.median(ours_attach) * 1000
        print("  (a) create and attach a 1 GB volume to a running TCG guest (our test guest):")
        print(f"      raw libvirt: sparse file + attachDeviceFlags (live)         {r_ms:8.0f} ms")
        print(f"      cloudbox: POST /volumes .. available, POST attachment .. in-use {o_ms:8.0f} ms "
              f"(available after {statistics.median(ours_made) * 1000:.0f} ms)")
        print(f"      ratio cloudbox / raw libvirt: {o_ms / r_ms:.2f}   cloudbox adds {o_ms - r_ms:.0f} ms")
    else:
        print("  (a) create and attach: skipped (--skip-attach)")
    print(f"  (b) sequential throughput, {mb} MiB per run, the same qemu-img convert options on every path "
          f"({' '.join(CONVERT)}; 2 MiB requests); MB/s median [min-max], CPU seconds per GiB "
          "of qemu-img + the export daemon (less bent by the host's load than MB/s):")
    pairs = (("page cache on both sides", "local", "nbd", "NBD export (TLS)"),
             ("page cache on both sides", "local", "plain", "NBD without TLS"),
             ("O_DIRECT on both sides", "direct", "nbd-direct", "NBD export (TLS)"))
    for op in ("write", "read"):
        for cache, base, path, label in pairs:
            b, n = rate(runs[f"{base} {op}"], mb), rate(runs[f"{path} {op}"], mb)
            ratio = n[0] / b[0]
            verdict = " (target 0.8: met)" if path == "nbd" and ratio >= 0.8 else \
                " (target 0.8: NOT met)" if path == "nbd" else ""
            print(f"      {op:5s} {cache}: local file {b[0]:5.0f} [{b[1]:.0f}-{b[2]:.0f}] MB/s, {cpu(runs[f'{base} {op}'], mb)}; "
                  f"{label} {n[0]:5.0f} [{n[1]:.0f}-{n[2]:.0f}] MB/s, {cpu(runs[f'{path} {op}'], mb)}; "
                  f"ratio {ratio:.2f}{verdict}")
    p50, p99 = percentile(created, 50) * 1000, percentile(created, 99) * 1000
    print(f"  (c) {args.creates} volumes of 1 GB created one after another (POST until available): "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms (the POST answered: p50 {percentile(answered, 50) * 1000:.0f} ms, "
          f"p99 {percentile(answered, 99) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()

"""A real guest (libvirt's embedded QEMU, unprivileged) reads and writes a volume of "another
node" through its NBD export over TLS, without the API: the export daemon of node A's data dir
(127.0.0.1) and the compute driver of node B's data dir (qemu.conf naming B's NBD client
certificates) in one child process (libvirt's embedded driver serves one root per process).
The two-node cluster test through the API is tests/test_volume_nbd_cluster.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cloudbox import pki
from tests.guest_dirs import guest_dir

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("qemu-system-x86_64"),
                                                  reason="needs root, libvirt and QEMU")]

# The guest waits for the volume's disk, says what its first sector holds and writes a line at 4 KiB.
USER_DATA = """#!/bin/sh
(
  i=0; while [ ! -e /sys/block/vdb ] && [ $i -lt 600 ]; do sleep 0.5; i=$((i+1)); done
  echo "NBDTEST read $(dd if=/dev/vdb bs=512 count=1 2>/dev/null | head -n 1)" > /dev/ttyS0
  printf 'NBDTEST-FROM-THE-GUEST\\n' | dd of=/dev/vdb bs=512 seek=8 conv=fsync 2>/dev/null
  echo "NBDTEST wrote $?" > /dev/ttyS0
) </dev/null >/dev/null 2>&1 &
"""

CHILD = r'''
import json, sys, time
from pathlib import Path
import trio
from cloudbox.compute.driver import VolumeDisk
from cloudbox.compute.driver.real import LibvirtDriver
from cloudbox.volume.core_attach import nbd_connection
from tests.nbd_child import boot_guest, console

args = json.loads(sys.argv[1])
data, image, vid = Path(args["data"]), Path(args["image"]), args["volume_id"]


async def main() -> dict:
    driver = LibvirtDriver(f"qemu:///embed?root={data / 'libvirt'}", data / "instances")
    await driver.open()
    out: dict = {"qemu_conf": (data / "libvirt" / "etc" / "qemu.conf").read_text()}
    server, log = await boot_guest(driver, data, image, args["user_data"])
    try:
        await trio.to_thread.run_sync(console, log, "CLOUDBOX-GUEST: ready", 240)
        info = nbd_connection({"id": vid}, "a1", "rw", "127.0.0.1", args["port"], {})
        started = time.monotonic()
        await driver.attach_disk(server, VolumeDisk(vid, "vdb", info))
        out["attach_seconds"] = time.monotonic() - started
        out["disks"] = await driver.volume_disks(server)
        out["live_xml"] = await trio.to_thread.run_sync(lambda: driver._lookup(server).XMLDesc(0))
        out["console"] = await trio.to_thread.run_sync(console, log, "NBDTEST wrote", 240)
        await driver.detach_disk(server, vid, timeout=60)
        out["disks_after"] = await driver.volume_disks(server)
    finally:
        await driver.destroy(server)
        await driver.close()
    return out

print(json.dumps(trio.run(main)))
'''


def write_node_pki(root: Path, ca: pki.KeyPair, name: str, address: str) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    node = pki.create_node_cert(ca, name, [address, name], now)
    (root / "pki").mkdir(parents=True, exist_ok=True, mode=0o700)
    for file, content in (("ca.pem", ca.cert_pem), ("ca.key", ca.key_pem), ("node.pem", node.cert_pem),
                          ("node.key", node.key_pem)):
        (root / "pki" / file).write_bytes(content)
    (root / "node.json").write_text(json.dumps({"id": name, "name": name}))


def test_a_guest_reads_and_writes_a_volume_through_the_nbd_export(tmp_path: Path, guest_image: Path):
    from cloudbox import nbd_tls
    from cloudbox.volume.driver.dir import DirDriver
    from cloudbox.volume.export import ExportDaemon, ExportSpec
    from tests.test_volume_nbd import free_port

    ca = pki.create_ca("nbd", dt.datetime.now(dt.timezone.utc))
    node_a = tmp_path / "a"
    node_b = guest_dir(tmp_path, "nbd", mode=0o700)  # QEMU's user reaches B's files through ACLs, as in a node
    write_node_pki(node_a, ca, "node-a", "127.0.0.1")
    write_node_pki(node_b, ca, "node-b", "127.0.0.2")
    volumes = DirDriver(node_a, "raw")
    vid = "6c1d7a52-8f3e-4b0a-9d41-2a5e3c7b9f10"
    volumes.create_blank(vid, 1)
    with volumes.path(vid).open("r+b") as f:
        f.write(b"MARKER-ON-NODE-A\n")
    daemon = ExportDaemon(node_a / "nbd-exports", nbd_tls.write_server_dir(node_a), "127.0.0.1", free_port())
    try:
        daemon.add(ExportSpec(vid, str(volumes.path(vid)), "raw", False, False))
        args = {"data": str(node_b), "image": str(guest_image), "volume_id": vid, "port": daemon.port,
                "user_data": USER_DATA}
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True,
                              timeout=900, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        daemon.stop()
    client = nbd_tls.client_dir(node_b)
    assert f'nbd_tls_x509_cert_dir = "{client}"' in out["qemu_conf"]
    assert (client.stat().st_mode & 0o777, (client / "client-key.pem").stat().st_mode & 0o777) == (0o750, 0o640)
    assert out["disks"] == {vid: "vdb"} and out["disks_after"] == {}
    assert f"name='volume-{vid}'" in out["live_xml"] or f'name="volume-{vid}"' in out["live_xml"]
    assert "protocol='nbd'" in out["live_xml"] and "tls='yes'" in out["live_xml"]
    assert "NBDTEST read MARKER-ON-NODE-A" in out["console"], out["console"][-2000:]
    assert "NBDTEST wrote 0" in out["console"], out["console"][-2000:]
    with volumes.path(vid).open("rb") as f:
        f.seek(4096)
        assert f.read(23) == b"NBDTEST-FROM-THE-GUEST\n"
    print(f"\nhot-plug of the NBD disk took {out['attach_seconds']:.2f} s")

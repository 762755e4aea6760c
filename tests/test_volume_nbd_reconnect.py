"""A real guest keeps its NBD disk while the export goes away and comes back, and sees the disk
grow when the volume is extended in use (issue 15): the export daemon of node A's data dir
(127.0.0.1) and the compute driver of node B's data dir in one child process, as in
tests/test_volume_nbd_guest.py.

- Reconnect: the daemon is stopped while the guest writes to the disk every 0.3 s, then started
  again with the same export (what node A's reconciler does after a restart). The guest's writes
  that met the absent export paused it (error_policy stop: libvirt 9.0 cannot set QEMU's
  reconnect-delay) and the driver resumed it once QEMU's client reconnected: no write failed.
- Extend, the guest's disk idle: the export grows (ExportDaemon.grow: block_resize, then the
  export made again), the driver's resize_disk makes QEMU's client reconnect (a read through
  QEMU's monitor) and grows the guest's disk, and the guest's kernel reports the new size
  (``disk-resized vdb:<bytes>``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cloudbox import pki
from tests.guest_dirs import guest_dir
from tests.test_volume_nbd_guest import write_node_pki

ROOT = Path(__file__).resolve().parents[1]
GB = 1 << 30
pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("qemu-system-x86_64"),
                                                  reason="needs root, libvirt and QEMU")]

# The guest waits for the volume's disk, then writes a numbered line to it every 0.3 s, 60 times,
# and says on its console how each write ended (dd's exit status: 0, or an I/O error the guest
# saw); then it leaves the disk alone (the extend is done on an idle disk: nothing but the driver
# makes QEMU's NBD client reconnect).
USER_DATA = """#!/bin/sh
(
  i=0; while [ ! -e /sys/block/vdb ] && [ $i -lt 600 ]; do sleep 0.5; i=$((i+1)); done
  i=0
  while [ $i -lt 60 ]; do
    printf 'LOOP-%06d\\n' $i | dd of=/dev/vdb bs=512 seek=8 conv=fsync 2>/dev/null
    echo "NBDLOOP $i $?" > /dev/ttyS0
    i=$((i+1)); sleep 0.3
  done
) </dev/null >/dev/null 2>&1 &
"""

CHILD = r'''
import json, re, sys, time
from pathlib import Path
import trio
from cloudbox.compute.driver import VolumeDisk
from cloudbox.compute.driver.real import LibvirtDriver
from cloudbox.volume.core_attach import nbd_connection
from cloudbox.volume.export import ExportDaemon, ExportSpec
from tests.nbd_child import boot_guest, console

args = json.loads(sys.argv[1])
data, image, vid = Path(args["data"]), Path(args["image"]), args["volume_id"]
GB = 1 << 30


def last_write(text: str) -> int:
    return max(int(n) for n in re.findall(r"NBDLOOP (\d+) ", text))


async def main() -> dict:
    daemon = ExportDaemon(Path(args["run_dir"]), Path(args["tls_dir"]), "127.0.0.1", args["port"])
    spec = ExportSpec(vid, args["volume_path"], "raw", False, False)
    await trio.to_thread.run_sync(daemon.add, spec)
    driver = LibvirtDriver(f"qemu:///embed?root={data / 'libvirt'}", data / "instances")
    await driver.open()
    out: dict = {}
    server, log = await boot_guest(driver, data, image, args["user_data"])
    run = trio.to_thread.run_sync
    try:
        await run(console, log, "CLOUDBOX-GUEST: ready", 240)
        info = nbd_connection({"id": vid}, "a1", "rw", "127.0.0.1", args["port"], {})
        await driver.attach_disk(server, VolumeDisk(vid, "vdb", info))
        out["live_xml"] = await run(lambda: driver._lookup(server).XMLDesc(0))
        text = await run(console, log, r"NBDLOOP 3 ", 120)

        # The export goes away (its node restarts) for 3 s, and comes back under the same name.
        await run(daemon.stop)
        stopped_at = last_write(text)
        await trio.sleep(3)
        out["state_while_away"] = await run(lambda: driver._lookup(server).state())
        out["written_while_away"] = last_write(log.read_text(errors="replace")) - stopped_at
        await run(daemon.add, spec)
        text = await run(console, log, rf"NBDLOOP {stopped_at + 8} ", 60)
        out["state_after"] = await run(lambda: driver._lookup(server).state())

        # Extended in use, the guest idle: the export grows and is made again, the guest's disk follows.
        await run(console, log, r"NBDLOOP 59 ", 120)
        await run(daemon.grow, vid, 2 * GB)
        started = time.monotonic()
        await driver.resize_disk(server, vid, 2 * GB)
        out["resize_seconds"] = time.monotonic() - started
        out["console"] = await run(console, log, rf"disk-resized vdb:{2 * GB}", 60)
    finally:
        await driver.destroy(server)
        await driver.close()
        await run(daemon.stop)
    return out

print(json.dumps(trio.run(main)))
'''


def test_a_guest_keeps_its_nbd_disk_through_an_export_restart_and_sees_it_grow(tmp_path: Path,
                                                                              guest_image: Path):
    from cloudbox import nbd_tls
    from cloudbox.volume.driver.dir import DirDriver
    from tests.test_volume_nbd import free_port

    ca = pki.create_ca("nbd", dt.datetime.now(dt.timezone.utc))
    node_a = tmp_path / "a"
    node_b = guest_dir(tmp_path, "nbd", mode=0o700)
    write_node_pki(node_a, ca, "node-a", "127.0.0.1")
    write_node_pki(node_b, ca, "node-b", "127.0.0.2")
    volumes = DirDriver(node_a, "raw")
    vid = "9e2b6c41-3f7d-4a58-b0c2-7d1e5a9f3b26"
    volumes.create_blank(vid, 1)
    args = {"data": str(node_b), "image": str(guest_image), "volume_id": vid, "port": free_port(),
            "run_dir": str(node_a / "nbd-exports"), "tls_dir": str(nbd_tls.write_server_dir(node_a)),
            "volume_path": str(volumes.path(vid)), "user_data": USER_DATA}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error_policy='stop'" in out["live_xml"] or 'error_policy="stop"' in out["live_xml"]
    failed = re.findall(r"NBDLOOP (\d+) ([1-9]\d*)", out["console"])
    assert failed == [], f"writes that failed in the guest: {failed}"
    assert out["written_while_away"] <= 1, out  # the guest's writes waited for the export
    assert out["state_after"][0] == 1, out["state_after"]  # VIR_DOMAIN_RUNNING: resumed
    assert os.path.getsize(volumes.path(vid)) == 2 * GB
    with volumes.path(vid).open("rb") as f:
        f.seek(4096)
        assert f.read(5) == b"LOOP-"
    print(f"\nwhile away: {out['state_while_away']}; resize took {out['resize_seconds']:.2f} s")

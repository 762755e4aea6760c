"""The libvirt driver's volume disks against real QEMU (TCG), in a child process with a libvirt
root of its own (libvirt's embedded driver serves one root per process): a raw and a qcow2
volume hot-plugged into a running domain (live and in its definition, with serial, backing
chain stated and iotune), a conflicting attach refused, a resize made by QEMU, a stopped
domain's definition changed alone, volumes carried in a DomainSpec at create, and a multiattach
(shareable) volume in two running guests at once.  The guest has no operating system (SeaBIOS waits for a boot disk), so a live unplug, which needs the
guest's consent, is tested with our test guest in test_compute_volumes_libvirt.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from tests.guest_dirs import guest_dir
from tests.test_compute_driver import REAL_OK

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not REAL_OK, reason="needs root, libvirt and QEMU")]

CHILD = textwrap.dedent(
    """
    import json, sys, uuid, trio
    import xml.etree.ElementTree as ET
    from pathlib import Path
    from cloudbox.compute import core, disks
    from cloudbox.compute.driver import DomainSpec, VolumeDisk
    from cloudbox.compute.driver._libvirt import libvirt
    from cloudbox.compute.driver.real import LibvirtDriver
    from cloudbox.errors import Conflict

    def local(vid, path, fmt, qos=None):
        return {"driver_volume_type": "local", "serial": vid, "data": {
            "volume_id": vid, "device_path": str(path), "disk_type": "file", "format": fmt,
            "access_mode": "rw", "discard": True, "qos_specs": qos}}

    async def main(data):
        data = Path(data)
        instances, volumes = data / "instances", data / "volumes"
        volumes.mkdir(parents=True)
        driver = LibvirtDriver(f"qemu:///embed?root={data / 'libvirt'}", instances, accel="tcg")
        await driver.open()
        out = {}
        sid = str(uuid.uuid4())
        try:
            (instances / sid).mkdir(parents=True)
            root = instances / sid / "disk"
            await trio.run_process(["qemu-img", "create", "-q", "-f", "qcow2", str(root), "64M"])
            raw_id, qcow_id = str(uuid.uuid4()), str(uuid.uuid4())
            raw, qcow = volumes / f"volume-{raw_id}.raw", volumes / f"volume-{qcow_id}.qcow2"
            await trio.run_process(["qemu-img", "create", "-q", "-f", "raw", str(raw), "1G"])
            await trio.run_process(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "1G"])
            spec = DomainSpec(uuid=sid, name=core.domain_name(sid), vcpus=1, memory_mb=64, root_disk=str(root),
                              console_log=str(instances / sid / "console.log"), accel="tcg")
            await driver.create(spec)
            raw_disk = VolumeDisk(raw_id, "vdb", local(raw_id, raw, "raw", {"total_iops_sec": "200"}))
            await driver.attach_disk(sid, raw_disk)
            await driver.attach_disk(sid, VolumeDisk(qcow_id, "vdc", local(qcow_id, qcow, "qcow2")))
            try:
                await driver.attach_disk(sid, VolumeDisk(str(uuid.uuid4()), "vdb", local(raw_id, raw, "raw")))
                out["conflict"] = False
            except Conflict:
                out["conflict"] = True
            out["live"] = await driver.volume_disks(sid)
            out["persistent"] = await driver.volume_disks(sid, live=False)
            dom = driver._lookup(sid)
            live = ET.fromstring(dom.XMLDesc(0))
            disk = next(d for d in live.iter("disk") if d.findtext("serial") == raw_id)
            out["iotune"] = disk.findtext("iotune/total_iops_sec")
            qdisk = next(d for d in live.iter("disk") if d.findtext("serial") == qcow_id)
            out["qcow_chain_stated"] = qdisk.find("backingStore") is not None
            # QEMU holds the file's lock (qemu-img resize is refused): it grows the file itself.
            await driver.resize_disk(sid, raw_id, 2 << 30)
            await driver.resize_disk(sid, qcow_id, 3 << 30)
            out["capacity"] = [dom.blockInfo("vdb")[0], dom.blockInfo("vdc")[0], raw.stat().st_size]
            await driver.stop(sid, graceful=False)
            await driver.detach_disk(sid, qcow_id)  # stopped: the definition alone
            out["after_detach"] = await driver.volume_disks(sid, live=False)
            await driver.destroy(sid)
            await driver.create(DomainSpec(**{**spec.__dict__, "volumes": (raw_disk,)}))
            out["created_with"] = await driver.volume_disks(sid)
            out["state"] = await driver.get_state(sid)
            # A multiattach volume (shareable) in a second running guest too.
            other = str(uuid.uuid4())
            (instances / other).mkdir()
            other_root = instances / other / "disk"
            await trio.run_process(["qemu-img", "create", "-q", "-f", "qcow2", str(other_root), "64M"])
            shared = local(raw_id, raw, "raw")
            shared["data"]["multiattach"] = True
            await driver.destroy(sid)
            await driver.create(DomainSpec(**{**spec.__dict__, "volumes": (VolumeDisk(raw_id, "vdb", shared),)}))
            await driver.create(DomainSpec(**{**spec.__dict__, "uuid": other, "name": core.domain_name(other),
                                              "root_disk": str(other_root),
                                              "console_log": str(instances / other / "console.log")}))
            await driver.attach_disk(other, VolumeDisk(raw_id, "vdb", shared))
            out["shared"] = [await driver.volume_disks(sid), await driver.volume_disks(other)]
            await driver.destroy(other)
        finally:
            for domain in await driver.list_domains():  # a failure leaves no guest of this root running
                await driver.destroy(domain.uuid)
            await driver.close()
        return out

    print(json.dumps(trio.run(main, sys.argv[1])))
    """
)


async def test_volume_disks_in_a_real_domain(tmp_path: Path):
    data = guest_dir(tmp_path, "voldrv") / "data"
    data.mkdir(mode=0o700)
    with trio.fail_after(240):
        result = await trio.run_process([sys.executable, "-c", CHILD, str(data)], capture_stdout=True,
                                        capture_stderr=True, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    out = json.loads(result.stdout.decode().strip().splitlines()[-1])
    ids = sorted(out["live"], key=out["live"].get)
    assert sorted(out["live"].values()) == ["vdb", "vdc"] and out["persistent"] == out["live"]
    assert out["conflict"] is True
    assert out["iotune"] == "200" and out["qcow_chain_stated"] is True
    assert out["capacity"] == [2 << 30, 3 << 30, 2 << 30]
    assert out["after_detach"] == {ids[0]: "vdb"}
    assert out["created_with"] == {ids[0]: "vdb"} and out["state"] == "running"
    assert out["shared"] == [{ids[0]: "vdb"}, {ids[0]: "vdb"}]  # both guests hold the shareable volume


def test_child_has_no_stray_qemu() -> None:
    """Nothing of the child's domain is left running (its destroy ran)."""
    found = subprocess.run(["pgrep", "-f", "voldrv"], capture_output=True, text=True).stdout.split()
    assert not found

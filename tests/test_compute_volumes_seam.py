"""The seam of volumes in compute: libvirt <disk> XML from connection_info (checked against
libvirt's schema), the fake driver's volume disks, and the block device mapping table's apply."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest

from cloudbox.compute import core
from cloudbox.compute.driver import DomainSpec, VolumeDisk
from cloudbox.compute.driver.fake import FakeDriver, forget_host
from cloudbox.compute.driver.volume_disk import disk_xml, find_disk, volume_disks, with_volume_disks
from cloudbox.errors import Conflict, Unavailable

VOL = "3f1f2a4e-0000-4000-8000-00000000000a"


def local(path: str = "/v/volume-a", *, block: bool = False, fmt: str = "raw", mode: str = "rw",
          qos: dict[str, str] | None = None) -> dict:
    return {"driver_volume_type": "local", "serial": VOL, "data": {
        "volume_id": VOL, "device_path": path, "disk_type": "block" if block else "file", "format": fmt,
        "access_mode": mode, "discard": True, "qos_specs": qos}}


def nbd() -> dict:
    return {"driver_volume_type": "nbd", "serial": VOL, "data": {
        "volume_id": VOL, "host": "10.0.0.2", "port": 10809, "export_name": f"volume-{VOL}", "tls": True,
        "format": "raw", "access_mode": "rw", "discard": True, "qos_specs": None}}


def test_a_local_file_volume_is_a_file_disk_with_its_serial_format_and_iotune() -> None:
    xml = disk_xml(VolumeDisk(VOL, "vdb", local(fmt="qcow2", qos={"read_iops_sec": "500", "total_bytes_sec": "0",
                                                                   "write_bytes_sec": "1048576"})))
    disk = ET.fromstring(xml)
    assert (disk.get("type"), disk.get("device")) == ("file", "disk")
    assert disk.find("driver").attrib == {"name": "qemu", "type": "qcow2", "discard": "unmap"}
    assert disk.find("source").get("file") == "/v/volume-a"
    assert disk.find("target").attrib == {"dev": "vdb", "bus": "virtio"}
    assert disk.findtext("serial") == VOL
    # a zero limit is no limit (libvirt would refuse it beside others)
    assert {e.tag: e.text for e in disk.find("iotune")} == {"read_iops_sec": "500", "write_bytes_sec": "1048576"}
    assert disk.find("readonly") is None


def test_a_block_volume_read_only_and_an_nbd_volume() -> None:
    disk = ET.fromstring(disk_xml(VolumeDisk(VOL, "vdc", local("/dev/vg/volume-a", block=True, mode="ro"))))
    assert disk.get("type") == "block" and disk.find("source").get("dev") == "/dev/vg/volume-a"
    assert disk.find("readonly") is not None and disk.find("iotune") is None
    shared = local()
    shared["data"]["multiattach"] = True  # compute marks a multiattach volume's connection so
    assert ET.fromstring(disk_xml(VolumeDisk(VOL, "vdb", shared))).find("shareable") is not None
    net = ET.fromstring(disk_xml(VolumeDisk(VOL, "vdb", nbd())))
    source = net.find("source")
    assert net.get("type") == "network"
    assert source.attrib == {"protocol": "nbd", "name": f"volume-{VOL}", "tls": "yes"}
    assert source.find("host").attrib == {"name": "10.0.0.2", "port": "10809"}


@pytest.mark.parametrize("info", [
    {"driver_volume_type": "iscsi", "data": {}},
    {"driver_volume_type": "local", "data": {"device_path": "relative", "format": "raw"}},
    {"driver_volume_type": "local", "data": {"device_path": "/v/a", "format": "vmdk"}},
    {"driver_volume_type": "nbd", "data": {"host": "", "export_name": "x"}},
])
def test_a_connection_the_driver_cannot_use_is_refused(info: dict) -> None:
    with pytest.raises(Unavailable):
        disk_xml(VolumeDisk(VOL, "vdb", info))


def spec(**changes) -> DomainSpec:
    values = dict(uuid=str(uuid.uuid4()), name="cloudbox-x", vcpus=1, memory_mb=128, root_disk="/d/disk",
                  console_log="/d/console.log", accel="tcg")
    values.update(changes)
    return DomainSpec(**values)


def test_domain_xml_with_volumes_passes_libvirts_schema_and_a_boot_volume_replaces_the_image_disk() -> None:
    from cloudbox.compute.driver._libvirt import libvirt

    attached = VolumeDisk(VOL, "vdb", local(qos={"total_iops_sec": "100"}))
    boot_id = str(uuid.uuid4())
    boot = VolumeDisk(boot_id, "vda", {**local("/v/boot", fmt="qcow2"), "serial": boot_id}, boot_index=0)
    with_image = with_volume_disks(core.render_domain_xml(spec()), (attached,))
    assert volume_disks(with_image) == {VOL: "vdb"}
    assert find_disk(with_image, VOL) is not None and find_disk(with_image, boot_id) is None
    from_volume = with_volume_disks(core.render_domain_xml(spec(root_disk="")), (attached, boot), image_root=False)
    domain = ET.fromstring(from_volume)
    assert [d.findtext("serial") for d in domain.iterfind("devices/disk")] == [boot_id, VOL]
    assert domain.find("os/boot") is None and domain.find("devices/disk/boot").get("order") == "1"
    conn = libvirt.open("test:///default")
    try:
        for xml in (with_image, from_volume):
            conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE).undefine()
        nbd_xml = with_volume_disks(core.render_domain_xml(spec()), (VolumeDisk(VOL, "vdb", nbd()),))
        conn.defineXMLFlags(nbd_xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE).undefine()
    finally:
        conn.close()


async def test_fake_driver_attaches_detaches_and_keeps_volume_disks_across_a_redefine() -> None:
    driver = FakeDriver()
    await driver.open()
    try:
        s = spec()
        await driver.create(s)
        disk = VolumeDisk(VOL, "vdb", local())
        await driver.attach_disk(s.uuid, disk)
        assert await driver.volume_disks(s.uuid) == {VOL: "vdb"}
        with pytest.raises(Conflict):
            await driver.attach_disk(s.uuid, disk)
        await driver.resize_disk(s.uuid, VOL, 2 << 30)
        assert driver.disk_size(s.uuid, VOL) == 2 << 30
        await driver.detach_disk(s.uuid, VOL)
        await driver.detach_disk(s.uuid, VOL)  # idempotent
        assert await driver.volume_disks(s.uuid) == {}
        await driver.destroy(s.uuid)
        await driver.create(spec(uuid=s.uuid, volumes=(disk,)))
        assert await driver.volume_disks(s.uuid) == {VOL: "vdb"}
    finally:
        await driver.close()
        forget_host(driver.uri)


def test_a_volume_whose_device_another_disk_holds_moves_to_the_next_free_one() -> None:
    """A rescued guest's own disk is vdb: its volume on vdb shows as the next free device meanwhile."""
    from cloudbox.compute.driver.real import with_extra_disks

    rescue = with_extra_disks(core.render_domain_xml(spec()), ("/d/disk",))
    other = str(uuid.uuid4())
    xml = with_volume_disks(rescue, (VolumeDisk(VOL, "vdb", local()), VolumeDisk(other, "vdc", local("/v/b"))))
    assert volume_disks(xml) == {VOL: "vdd", other: "vdc"}

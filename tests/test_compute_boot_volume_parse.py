"""Block device mappings read and checked as Nova does (cloudbox/compute/boot_volumes.py): pure."""

from __future__ import annotations

import json

import pytest

from cloudbox.compute import boot_volumes as bv
from cloudbox.compute import scheduler
from cloudbox.errors import BadRequest

IMG, VOL, VOL2, SNAP = "img-1", "vol-1", "vol-2", "snap-1"
LATEST = (2, 96)


def parse(server: dict, image_ref: str = "", version: tuple[int, int] = LATEST, max_count: int = 1) -> bv.BootRequest:
    return bv.parse(server, image_ref, version, max_count)


def refused(server: dict, message: str, image_ref: str = "", **kw) -> None:
    with pytest.raises(BadRequest) as info:
        parse(server, image_ref, **kw)
    assert info.value.status == 400
    assert message in info.value.message, info.value.message


def test_plain_image_boots_as_before():
    assert parse({"imageRef": IMG}, IMG) == bv.BootRequest(IMG)
    refused({"imageRef": ""}, "Missing imageRef attribute")
    # What the openstack CLI sends with every --image boot: the image to local at boot_index 0.
    request = parse({"imageRef": IMG, "block_device_mapping_v2": [
        {"uuid": IMG, "boot_index": 0, "source_type": "image", "destination_type": "local",
         "delete_on_termination": True}]}, IMG)
    assert request.image_ref == IMG and not request.volume_backed and request.volumes == ()


def test_boot_from_volume_made_from_an_image():
    """openstack server create --boot-from-volume 1 --image X: imageRef '' and image → volume."""
    request = parse({"imageRef": "", "block_device_mapping_v2": [
        {"uuid": IMG, "boot_index": 0, "source_type": "image", "destination_type": "volume", "volume_size": 1,
         "delete_on_termination": False}]})
    assert request.volume_backed and request.image_ref == ""
    root = request.root
    assert root is not None and (root.source_type, root.uuid, root.volume_size, root.delete_on_termination) == (
        "image", IMG, 1, False)
    assert bv.device_names(request) == ["/dev/vda"]


def test_boot_from_an_existing_volume_with_blank_extras():
    request = parse({"block_device_mapping_v2": [
        {"source_type": "blank", "destination_type": "volume", "volume_size": "2", "boot_index": -1},
        {"uuid": VOL, "boot_index": "0", "source_type": "volume", "destination_type": "volume",
         "delete_on_termination": "true"},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 1, "device_name": "/dev/vdb"},
    ]})
    assert request.volume_backed and [d.source_type for d in request.volumes] == ["volume", "blank", "blank"]
    assert request.volumes[0].delete_on_termination is True
    # The named device keeps its name; the other blank takes the next free letter.
    assert bv.device_names(request) == ["/dev/vda", "/dev/vdc", "/dev/vdb"]


def test_image_with_extra_blank_volume_keeps_the_image_root():
    request = parse({"imageRef": IMG, "block_device_mapping_v2": [
        {"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": -1,
         "delete_on_termination": True}]}, IMG)
    assert not request.volume_backed and request.image_ref == IMG
    assert request.root is not None and request.root.image_root
    assert bv.device_names(request) == ["/dev/vdb"]


def test_legacy_volume_on_the_root_device_boots():
    request = parse({"imageRef": "", "block_device_mapping": [
        {"device_name": "vda", "volume_id": VOL, "delete_on_termination": "1"},
        {"device_name": "/dev/vdb", "snapshot_id": SNAP, "volume_size": 1}]})
    assert request.volume_backed and request.root is not None and request.root.uuid == VOL
    assert request.root.delete_on_termination is True
    assert [(d.source_type, d.boot_index) for d in request.volumes] == [("volume", 0), ("snapshot", None)]
    # Not on the root device: the image boots, the volume is only attached.
    request = parse({"imageRef": IMG, "block_device_mapping": [{"device_name": "vdb", "volume_id": VOL}]}, IMG)
    assert not request.volume_backed and request.root is not None and request.root.image_root
    # Not on the root device and no image: nothing boots.
    refused({"block_device_mapping": [{"device_name": "vdb", "volume_id": VOL}]}, bv.BOOT_SEQUENCE)


@pytest.mark.parametrize("server, message", [
    ({"block_device_mapping": [{"device_name": "vda", "volume_id": VOL}],
      "block_device_mapping_v2": [{"uuid": VOL, "source_type": "volume", "boot_index": 0}]},
     "Using different block_device_mapping syntaxes is not allowed"),
    ({"block_device_mapping_v2": [
        {"uuid": VOL, "boot_index": 0, "source_type": "volume", "destination_type": "volume"},
        {"uuid": VOL2, "boot_index": 0, "source_type": "volume", "destination_type": "volume"}]},
     bv.BOOT_SEQUENCE),
    ({"block_device_mapping_v2": [
        {"uuid": VOL, "boot_index": 1, "source_type": "volume", "destination_type": "volume"}]}, bv.BOOT_SEQUENCE),
    ({"block_device_mapping_v2": [
        {"uuid": VOL, "boot_index": 0, "source_type": "volume", "destination_type": "volume"},
        {"uuid": VOL2, "boot_index": 2, "source_type": "volume", "destination_type": "volume"}]},
     bv.BOOT_SEQUENCE),
    ({"block_device_mapping_v2": [{"uuid": VOL, "boot_index": 0, "source_type": "tape"}]},
     "Invalid source_type field."),
    ({"block_device_mapping_v2": [{"boot_index": 0, "source_type": "volume", "destination_type": "volume"}]},
     "Missing device UUID."),
    ({"block_device_mapping_v2": [{"uuid": VOL, "source_type": "blank", "destination_type": "volume",
                                   "volume_size": 1}]}, "Invalid device UUID."),
    ({"block_device_mapping_v2": [{"uuid": IMG, "boot_index": 0, "source_type": "image",
                                   "destination_type": "volume"}]},
     "Images with destination_type 'volume' need to have a non-zero size specified"),
    ({"block_device_mapping_v2": [{"uuid": VOL, "boot_index": 0, "source_type": "volume", "destination_type":
                                   "volume"}, {"source_type": "blank", "destination_type": "volume"}]},
     "Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size"),
    ({"block_device_mapping_v2": [{"uuid": IMG, "boot_index": 0, "source_type": "image",
                                   "destination_type": "local"}]}, "Mapping image to local is not supported."),
    ({"block_device_mapping_v2": [{"uuid": VOL, "boot_index": 0, "source_type": "volume", "destination_type":
                                   "volume"}, {"source_type": "blank", "destination_type": "local",
                                               "guest_format": "swap", "volume_size": 1}]},
     "ephemeral and swap disks"),
    ({"block_device_mapping_v2": [{"uuid": VOL, "boot_index": "x", "source_type": "volume",
                                   "destination_type": "volume"}]}, "Boot index is invalid."),
    ({"block_device_mapping_v2": [{"uuid": VOL, "boot_index": 0, "source_type": "volume",
                                   "destination_type": "volume", "volume_type": "fast"}]},
     "Specifying volume type to existing volume is not supported."),
    ({"block_device_mapping_v2": [{"uuid": VOL, "boot_index": 0, "source_type": "volume",
                                   "destination_type": "volume", "delete_on_termination": "maybe"}]},
     "delete_on_termination"),
    ({"block_device_mapping_v2": [{"uuid": VOL, "boot_index": 0, "source_type": "volume",
                                   "destination_type": "volume", "disk_bus": "floppy"}]},
     "Unable to attach device with disk bus floppy"),
    ({"block_device_mapping_v2": [
        {"uuid": VOL, "boot_index": 0, "source_type": "volume", "destination_type": "volume"},
        {"uuid": VOL, "source_type": "volume", "destination_type": "volume"}]}, "a volume is mapped twice"),
    ({"block_device_mapping": [{"device_name": "vda", "volume_id": VOL}, {"device_name": "vdb"}]},
     "Unrecognized legacy format."),
    ({"block_device_mapping_v2": [{"uuid": VOL, "boot_index": 0, "source_type": "volume",
                                   "destination_type": "volume", "device_name": "vd a"}]},
     "The supplied device path (vd a) is invalid."),
])
def test_bad_mappings_are_nova_400s(server: dict, message: str):
    refused(server, message)


def test_microversions_and_counts():
    tagged = {"block_device_mapping_v2": [{"uuid": VOL, "boot_index": 0, "source_type": "volume",
                                           "destination_type": "volume", "tag": "root"}]}
    refused(tagged, "tag needs microversion 2.32", version=(2, 31))
    assert parse(tagged, version=(2, 32)).root.tag == "root"  # type: ignore[union-attr]
    refused(tagged, "Cannot attach one or more volumes to multiple instances", max_count=2)
    made = {"block_device_mapping_v2": [{"uuid": IMG, "boot_index": 0, "source_type": "image",
                                         "destination_type": "volume", "volume_size": 1}]}
    assert parse(made, max_count=3).volume_backed  # a volume each is made: fine for several servers
    refused({"imageRef": IMG, "block_device_mapping_v2": [
        {"uuid": VOL, "source_type": "volume", "destination_type": "volume", "device_name": "/dev/vda"}]},
        "The volume cannot be assigned the same device name as the root device vda", image_ref=IMG)


def test_volume_backed_snapshot_image_round_trip():
    """The mappings a volume-backed server's image carries make volumes from its snapshots."""
    bdm = {"boot_index": 0, "device_name": "/dev/vda", "delete_on_termination": False}
    props = bv.snapshot_image_properties([bv.image_mapping(bdm, SNAP, 1)])
    assert props["bdm_v2"] == "True" and json.loads(props["block_device_mapping"])[0]["snapshot_id"] == SNAP
    defined = bv.image_defined(props)
    assert [(d.source_type, d.uuid, d.boot_index, d.volume_size) for d in defined] == [("snapshot", SNAP, 0, 1)]
    # Booting that image: the request's image root gives way to the image's own root.
    request = parse({"imageRef": IMG}, IMG)
    request = bv.check(bv.with_image_defined(bv.BootRequest(IMG, (bv.BlockDevice(
        "image", "local", uuid=IMG, boot_index=0),)), defined))
    assert request.volume_backed and request.root is not None and request.root.uuid == SNAP
    assert bv.image_defined({"block_device_mapping": "[]"}) == []  # legacy (no bdm_v2): ignored
    assert bv.image_defined({"block_device_mapping": "not json", "bdm_v2": "True"}) == []


def test_scheduler_prefers_the_boot_volume_host():
    hosts = [scheduler.HostState(name, 8, 8192, 100, 0, 0, 0, "nova") for name in ("a", "b", "c")]
    req = scheduler.Request(vcpus=1, ram_mb=512, disk_gb=1)
    plan = scheduler.schedule(hosts, req, scheduler.Ratios())
    assert [h.name for h, _ in plan.ranked][0] == "a"
    preferring = scheduler.Request(vcpus=1, ram_mb=512, disk_gb=1, preferred_hosts=("c",))
    assert [h.name for h, _ in scheduler.schedule(hosts, preferring, scheduler.Ratios()).ranked] == ["c", "a", "b"]
    # Only a preference: a full preferred host is passed over, not waited for.
    full = [hosts[0], hosts[1], scheduler.HostState("c", 1, 1024, 100, 1, 512, 0, "nova")]
    assert [h.name for h, _ in scheduler.schedule(full, preferring, scheduler.Ratios()).ranked] == ["a", "b"]

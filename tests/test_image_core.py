"""The image service's pure rules (JSON patch, list options, format checks) and its qemu-img checks.

The format checks run against real files made by qemu-img: every format a
user may declare, and the known attacks (backing file, external data file,
VMDK descriptor naming host files, a raw upload that is really qcow2).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from cloudbox.errors import BadRequest, Conflict, Forbidden
from cloudbox.image import core, disk, formats


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def sample_of(path: Path) -> formats.Sample:
    data = path.read_bytes()
    return formats.Sample(data[: formats.HEAD_BYTES], data[-formats.TAIL_BYTES:], len(data))


def check(path: Path, disk_format: str) -> int | None:
    return disk.inspect(path.resolve(), disk_format, sample_of(path))


# --- formats ------------------------------------------------------------------------
@pytest.mark.parametrize("disk_format, qemu_format", [
    ("qcow2", "qcow2"), ("raw", "raw"), ("vmdk", "vmdk"), ("vdi", "vdi"), ("vhd", "vpc"),
    ("vhdx", "vhdx"), ("ploop", "parallels"),
])
def test_each_format_is_accepted_as_itself_with_its_virtual_size(tmp_path, disk_format, qemu_format):
    path = tmp_path / f"disk.{qemu_format}"
    qemu_img("create", "-f", qemu_format, str(path), "4M")
    size = check(path, disk_format)
    assert size is not None and size >= 4 << 20
    others = [f for f in ("qcow2", "vmdk", "vdi", "vhdx", "ploop", "iso") if f != disk_format]
    for other in others:
        with pytest.raises(BadRequest):
            check(path, other)


def test_raw_data_must_not_be_another_format(tmp_path):
    path = tmp_path / "disk.qcow2"
    qemu_img("create", "-f", "qcow2", str(path), "1M")
    for declared in ("raw", "ami", "ari", "aki"):
        with pytest.raises(BadRequest, match="is not .*it is qcow2"):
            check(path, declared)


def test_qcow2_with_backing_file_or_data_file_is_refused(tmp_path):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-f", "qcow2", str(base), "1M")
    child = tmp_path / "child.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(child))
    with pytest.raises(BadRequest, match="backing file"):
        check(child, "qcow2")
    external = tmp_path / "external.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}", str(external), "1M")
    with pytest.raises(BadRequest, match="external data file"):
        check(external, "qcow2")
    # The header alone is enough to refuse them, before qemu-img opens anything.
    assert formats.qcow2_header_problem(child.read_bytes()[:200]) == "it has a backing file"
    assert formats.qcow2_header_problem(external.read_bytes()[:200]) == "it has an external data file"


def test_vmdk_descriptor_naming_other_files_is_refused(tmp_path):
    path = tmp_path / "flat.vmdk"
    qemu_img("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", str(path), "1M")
    with pytest.raises(BadRequest, match="VMDK descriptor"):
        check(path, "vmdk")


def iso9660() -> bytes:
    """The volume descriptors of an ISO 9660 image: system area, primary descriptor, terminator."""
    sector = 2048
    primary = (b"\x01CD001\x01\x00" + b"CLOUDBOX".ljust(32) + b"TEST".ljust(32)).ljust(sector, b"\x00")
    terminator = b"\xffCD001\x01".ljust(sector, b"\x00")
    return b"\x00" * 16 * sector + primary + terminator + b"\x00" * 14 * sector


def test_iso_must_be_iso9660(tmp_path):
    iso = tmp_path / "cd.iso"
    iso.write_bytes(iso9660())
    assert check(iso, "iso") == iso.stat().st_size
    assert check(iso, "raw") == iso.stat().st_size  # an ISO is fine as raw data
    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"\x00" * 65536)
    with pytest.raises(BadRequest, match="does not match disk_format iso"):
        check(junk, "iso")


def test_random_bytes_are_not_qcow2(tmp_path):
    path = tmp_path / "random"
    path.write_bytes(bytes(range(256)) * 256)
    with pytest.raises(BadRequest):
        check(path, "qcow2")
    assert check(path, "raw") == 65536
    truncated = tmp_path / "truncated.qcow2"
    qemu_img("create", "-f", "qcow2", str(truncated), "1M")
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(BadRequest):
        check(truncated, "qcow2")


# --- JSON patch ------------------------------------------------------------------------
IMAGE = {"id": "i", "status": "active", "disk_format": "qcow2", "container_format": "bare",
         "properties": {"a": "1"}, "tags": ["x"], "name": "n"}


def test_patch_adds_replaces_and_removes():
    ops = core.parse_patch([
        {"op": "replace", "path": "/name", "value": "m"},
        {"op": "add", "path": "/b", "value": "2"},
        {"op": "replace", "path": "/a", "value": "3"},
        {"op": "add", "path": "/tags", "value": ["z", "y", "z"]},
        {"op": "add", "path": "/hw~1disk", "value": "virtio"},
        {"op": "replace", "path": "/min_ram", "value": 512},
    ])
    changes, properties, tags = core.apply_patch(IMAGE, ops)
    assert changes == {"name": "m", "min_ram": 512}
    assert properties == {"a": "3", "b": "2", "hw/disk": "virtio"}
    assert tags == ["y", "z"]
    _, properties, _ = core.apply_patch(IMAGE, core.parse_patch([{"op": "remove", "path": "/a"}]))
    assert properties == {}


@pytest.mark.parametrize("op, error", [
    ({"op": "replace", "path": "/missing", "value": "1"}, Conflict),
    ({"op": "remove", "path": "/missing"}, Conflict),
    ({"op": "remove", "path": "/name"}, Forbidden),
    ({"op": "replace", "path": "/status", "value": "active"}, Forbidden),
    ({"op": "replace", "path": "/locations", "value": []}, Forbidden),
    ({"op": "replace", "path": "/disk_format", "value": "raw"}, Forbidden),  # only while queued
    ({"op": "replace", "path": "/visibility", "value": "everyone"}, BadRequest),
    ({"op": "replace", "path": "/min_disk", "value": -1}, BadRequest),
    ({"op": "replace", "path": "/protected", "value": "yes"}, BadRequest),
    ({"op": "add", "path": "/a/b", "value": "1"}, BadRequest),
    ({"op": "add", "path": "/custom", "value": 5}, BadRequest),
    ({"op": "move", "path": "/name"}, BadRequest),
])
def test_patch_refusals(op, error):
    with pytest.raises(error):
        core.apply_patch(IMAGE, core.parse_patch([op]))


V20 = "application/openstack-images-v2.0-json-patch"


def test_patch_in_the_v2_0_dialect():
    """The older draft's operations name the op as the key ({"replace": "/name"}), as Tempest sends."""
    ops = core.parse_patch([{"replace": "/name", "value": "m"}, {"add": "/b", "value": "2"}, {"remove": "/a"}], V20)
    assert ops == ({"op": "replace", "attr": "name", "value": "m"}, {"op": "add", "attr": "b", "value": "2"},
                   {"op": "remove", "attr": "a"})
    for bad in ({"op": "replace", "path": "/name", "value": "m"}, {"add": "/b", "remove": "/a", "value": "1"}, {},
                {"replace": "name", "value": "m"}):
        with pytest.raises(BadRequest):
            core.parse_patch([bad], V20)
    with pytest.raises(BadRequest):  # and the v2.1 dialect wants "op"
        core.parse_patch([{"replace": "/name", "value": "m"}])


@pytest.mark.parametrize("name", ["os_glance_foo", "os_glance_importing_to_stores", "stores"])
def test_os_glance_properties_are_reserved(name):
    with pytest.raises(Forbidden, match="reserved"):
        core.parse_patch([{"op": "add", "path": f"/{name}", "value": "x"}])
    with pytest.raises(Forbidden, match="reserved"):
        core.new_image({name: "x"}, id="i", owner="p", at="t")
    core.new_image({"os_glancefoo": "x", "glance_os_x": "y"}, id="i", owner="p", at="t")  # only the prefix


def test_patch_needs_admin_to_publicize_or_change_owner():
    assert core.patch_needs_admin(core.parse_patch([{"op": "replace", "path": "/visibility", "value": "public"}]))
    assert core.patch_needs_admin(core.parse_patch([{"op": "replace", "path": "/owner", "value": "p"}]))
    assert not core.patch_needs_admin(core.parse_patch([{"op": "replace", "path": "/visibility", "value": "community"}]))


# --- list options -------------------------------------------------------------------------
def test_sort_spellings():
    assert core.parse_sort([], [], None) == (("created_at", "desc"), ("id", "desc"))
    assert core.parse_sort(["name"], ["asc"], None) == (("name", "asc"), ("created_at", "asc"), ("id", "asc"))
    assert core.parse_sort([], [], "name:asc,size") == (
        ("name", "asc"), ("size", "desc"), ("created_at", "asc"), ("id", "asc"))
    assert core.parse_sort(["name", "size"], ["asc", "desc"], None)[:2] == (("name", "asc"), ("size", "desc"))
    for bad in ((["nope"], [], None), (["name"], ["up"], None), (["name"], [], "name"),
                (["a", "b", "c"], ["asc", "desc"], None)):
        with pytest.raises(BadRequest):
            core.parse_sort(*bad)


def test_list_options_from_a_query():
    opts = core.parse_list_options(MultiDict([
        ("name", "in:a,b"), ("tag", "t1"), ("tag", "t2"), ("size_min", "10"), ("os_hidden", "true"),
        ("created_at", "gt:2020-01-01T00:00:00Z"), ("hw_disk_bus", "virtio"), ("visibility", "all"),
    ]))
    assert opts.equals == {"name": ["a", "b"]}
    assert opts.tags == ("t1", "t2") and opts.size_min == 10 and opts.os_hidden is True
    assert opts.compare == [("created_at", ">", "2020-01-01T00:00:00Z")]
    assert opts.properties == {"hw_disk_bus": "virtio"}
    for bad in ([("visibility", "everyone")], [("member_status", "maybe")], [("size_max", "-1")],
                [("size_max", str(2**63))], [("size_min", "9" * 30)],  # beyond SQLite's integers
                [("created_at", "2020")], [("limit", "x")]):
        with pytest.raises(BadRequest):
            core.parse_list_options(MultiDict(bad))
            core.parse_limit(MultiDict(bad).get("limit"), 1000)


def test_list_links_have_glance_shape():
    links = core.list_links(MultiDict([("limit", "2"), ("marker", "m1"), ("tag", "x")]), "m2")
    assert links == {"first": "/v2/images?limit=2&tag=x", "schema": "/v2/schemas/images",
                     "next": "/v2/images?limit=2&tag=x&marker=m2"}
    assert "next" not in core.list_links(MultiDict(), None)

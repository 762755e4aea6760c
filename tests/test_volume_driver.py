"""The storage driver contract, run against the dir driver (raw and qcow2) and the lvm driver on
a loop device with a volume group of its own (root; skipped without lvm2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from cloudbox.volume.driver import GB, DriverError
from cloudbox.volume.driver.dir import DirDriver
from cloudbox.volume.driver.lvm import LvmDriver, lvm

MARK = b"\xa5" * 4096  # qemu-io writes patterns of one byte


def sh(*args: str) -> str:
    return subprocess.run(list(args), check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def loop_vg(tmp_path: Path) -> Iterator[str]:
    if os.geteuid() != 0 or not shutil.which("vgcreate"):
        pytest.skip("needs root and lvm2")
    targets = subprocess.run(["dmsetup", "targets"], capture_output=True, text=True)
    if targets.returncode != 0 or "thin-pool" not in targets.stdout:
        pytest.skip("this kernel has no device-mapper thin-pool target (dm-thin-pool)")
    backing = tmp_path / "pv.img"
    with open(backing, "wb") as f:
        f.truncate(6 * GB)
    device = sh("losetup", "--find", "--show", str(backing))
    vg = "cbxtest" + uuid.uuid4().hex[:8]
    try:
        lvm("pvcreate", "-y", device)
        lvm("vgcreate", "-y", vg, device)
        yield vg
    finally:
        subprocess.run(["vgremove", "--config", "activation { udev_sync = 0 udev_rules = 0 }", "-y", "-f", vg],
                       capture_output=True)
        subprocess.run(["pvremove", "-y", "-ff", device], capture_output=True)
        subprocess.run(["losetup", "-d", device], capture_output=True)


@pytest.fixture(params=["dir-raw", "dir-qcow2", "lvm"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "lvm":
        vg = request.getfixturevalue("loop_vg")
        drv: Any = LvmDriver(vg)
    else:
        drv = DirDriver(tmp_path / "store", request.param.split("-")[1])
    drv.check()
    return drv


def read(driver: Any, volume_id: str, offset: int, length: int) -> bytes:
    """Bytes a guest would read, through qemu-img (raw or qcow2 alike)."""
    path = driver.path(volume_id)
    fmt = driver.volume_format(volume_id)
    if fmt == "raw":
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)
    out = Path(str(path) + ".read")  # the whole volume as a sparse raw file
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(path), str(out)], check=True,
                   capture_output=True)
    with open(out, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    out.unlink()
    return data


def write(driver: Any, volume_id: str, offset: int, data: bytes, tmp_path: Path) -> None:
    """Write ``data`` (one byte repeated, as qemu-io's patterns are) at ``offset``, as a guest would."""
    assert len(set(data)) == 1
    fmt = driver.volume_format(volume_id)
    subprocess.run(["qemu-io", "-f", fmt, "-c", f"write -P {data[0]} {offset} {len(data)}",
                    str(driver.path(volume_id))], check=True, capture_output=True)


def test_blank_volume_reads_zeros_and_has_its_size(driver: Any, tmp_path: Path):
    vid = str(uuid.uuid4())
    driver.create_blank(vid, 1)
    assert driver.virtual_size(vid) == GB
    assert read(driver, vid, 0, 4096) == b"\0" * 4096
    assert vid in driver.stored()[0]


def test_snapshot_outlives_its_volume_and_clones_carry_data(driver: Any, tmp_path: Path):
    vid, sid, from_snap, from_vol = (str(uuid.uuid4()) for _ in range(4))
    driver.create_blank(vid, 1)
    write(driver, vid, 4096, MARK, tmp_path)
    driver.snapshot(sid, vid)
    driver.create_from_volume(from_vol, 2, vid)
    assert read(driver, from_vol, 4096, len(MARK)) == MARK
    assert driver.virtual_size(from_vol) == 2 * GB
    driver.delete(vid)
    assert vid not in driver.stored()[0]
    driver.create_from_snapshot(from_snap, 1, sid)
    assert read(driver, from_snap, 4096, len(MARK)) == MARK
    driver.delete_snapshot(sid)
    assert sid not in driver.stored()[1]
    driver.delete_snapshot(sid)  # idempotent
    driver.delete(vid)


def test_extend_grows_and_keeps_data(driver: Any, tmp_path: Path):
    vid = str(uuid.uuid4())
    driver.create_blank(vid, 1)
    write(driver, vid, 0, MARK, tmp_path)
    driver.extend(vid, 2)
    assert driver.virtual_size(vid) == 2 * GB
    assert read(driver, vid, 0, len(MARK)) == MARK


def test_deleted_volume_blocks_are_not_readable_by_the_next(driver: Any, tmp_path: Path):
    first = str(uuid.uuid4())
    driver.create_blank(first, 1)
    for offset in (0, 64 << 20, 512 << 20):
        write(driver, first, offset, MARK, tmp_path)
    driver.delete(first)
    second = str(uuid.uuid4())
    driver.create_blank(second, 1)
    for offset in (0, 64 << 20, 512 << 20):
        assert read(driver, second, offset, len(MARK)) == b"\0" * len(MARK)


def test_from_image_converts_and_refuses_what_does_not_fit(driver: Any, tmp_path: Path):
    image = tmp_path / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(image), "64M"], check=True, capture_output=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 4k", str(image)], check=True,
                   capture_output=True)
    vid = str(uuid.uuid4())
    driver.create_from_image(vid, 1, image, "qcow2")
    assert driver.virtual_size(vid) == GB
    assert read(driver, vid, 1 << 20, 4096) == b"\x5a" * 4096
    big = tmp_path / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(big), "2G"], check=True, capture_output=True)
    other = str(uuid.uuid4())
    with pytest.raises(DriverError, match="doesn't fit"):
        driver.create_from_image(other, 1, big, "qcow2")
    assert other not in driver.stored()[0]

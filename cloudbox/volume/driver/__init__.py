"""The storage driver contract: where a node keeps its volumes' and snapshots' data.

Every method is blocking (the service runs them in worker threads) and idempotent where a
crash can interrupt it: ``create_*`` replaces a half-made disk, ``delete*`` of a missing one
does nothing. Sizes are in GB. A snapshot stays readable after its volume is deleted, and a
deleted volume's blocks never show in a later volume (each driver says how in its docstring).
Drivers: ``dir.DirDriver`` (files), ``lvm.LvmDriver`` (LVM thin volumes).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Protocol

GB = 1 << 30


class DriverError(Exception):
    """A disk operation failed; the message says what and is shown on the volume."""


class VolumeDriver(Protocol):
    name: str
    scratch: Path  # where uploads to images are written before the image store takes them

    def check(self) -> None:
        """Raise DriverError when the backing store is unusable (missing VG, unwritable dir)."""

    def create_blank(self, volume_id: str, size_gb: int) -> None: ...

    def create_from_image(self, volume_id: str, size_gb: int, source: Path, source_format: str) -> None:
        """Convert an image's data (qcow2, raw...) into the volume, grown to ``size_gb``."""

    def create_from_volume(self, volume_id: str, size_gb: int, source_id: str) -> None: ...

    def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str) -> None: ...

    def extend(self, volume_id: str, size_gb: int) -> None: ...

    def extend_attached(self, volume_id: str, size_gb: int) -> None:
        """Grow a volume a running guest's QEMU may hold: only what QEMU's block resize (done by
        the guest's node) cannot do itself; never a change of an image QEMU has open."""

    def delete(self, volume_id: str) -> None: ...

    def snapshot(self, snapshot_id: str, volume_id: str) -> None: ...

    def delete_snapshot(self, snapshot_id: str) -> None: ...

    def path(self, volume_id: str) -> Path:
        """A local path QEMU (and qemu-img) can open: a file or a block device."""

    def volume_format(self, volume_id: str) -> str:
        """The format QEMU should open the volume's path as (raw or qcow2)."""

    def virtual_size(self, volume_id: str) -> int:
        """The volume's size in bytes as a guest sees it."""

    def stored(self) -> tuple[set[str], set[str]]:
        """Ids of the volumes and of the snapshots this driver holds."""


def run(*args: str, timeout: float = 3600) -> str:
    """A tool's output, or DriverError with what it said."""
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DriverError(f"{args[0]} failed: {exc}") from exc
    if proc.returncode != 0:
        raise DriverError(f"{' '.join(args[:2])} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc.stdout


def image_virtual_size(source: Path, source_format: str) -> int:
    import json

    info = json.loads(run("qemu-img", "info", "--output=json", "-f", source_format, str(source)))
    return int(info["virtual-size"])


def check_fits(source: Path, source_format: str, size_gb: int) -> None:
    needed = image_virtual_size(source, source_format)
    if needed > size_gb * GB:
        raise DriverError(f"Image virtual size is {(needed + GB - 1) // GB} GB and doesn't fit in a volume of "
                          f"size {size_gb} GB.")


def export_volume(driver: VolumeDriver, volume_id: str, dest: Path, dest_format: str) -> None:
    """Write a volume's data to ``dest`` as ``dest_format`` (an upload to an image): qemu-img reads
    the volume's file or block device; a half-written ``dest`` is removed."""
    try:
        run("qemu-img", "convert", "-q", "-f", driver.volume_format(volume_id), "-O", dest_format,
            str(driver.path(volume_id)), str(dest))
    except DriverError:
        dest.unlink(missing_ok=True)
        raise


def make_driver(kind: str, root: Path, volume_group: str, disk_format: str = "raw") -> VolumeDriver:
    driver: VolumeDriver
    if kind == "dir":
        from cloudbox.volume.driver.dir import DirDriver

        driver = DirDriver(root, disk_format)
    elif kind == "lvm":
        from cloudbox.volume.driver.lvm import LvmDriver

        driver = LvmDriver(volume_group)
    else:
        raise ValueError(f"volume_driver must be dir or lvm, not {kind!r}")
    driver.scratch = Path(root) / "volume-uploads"
    return driver


"""Instance disks: qcow2 overlays on images, standalone snapshots, config drives.

qemu-img runs as a child process under a time limit (a wedged NFS mount or a
huge image must not hang the service); the config drive is an ISO9660 image
written in a worker thread with pycdlib (Rock Ridge for Linux, Joliet for
Windows guests, volume label ``config-2``), so no genisoimage is needed.
Every output is written to a temporary name and renamed into place, so a
crash never leaves a half-written disk under the final name, and is made
0600: guests' QEMU runs as one shared unprivileged user, which libvirt lets
open a guest's own files (by chowning them) only while that guest runs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import trio

from cloudbox.compute.core import CONFIG_DRIVE_LABEL
from cloudbox.errors import CloudboxError

log = logging.getLogger(__name__)

GiB = 1 << 30
QEMU_IMG = "qemu-img"
INFO_TIMEOUT = 60.0
CREATE_TIMEOUT = 120.0
CONVERT_TIMEOUT = 3600.0


class DiskError(CloudboxError):
    title = "Disk operation failed"


async def _qemu_img(*args: str, timeout: float) -> bytes:
    command = [QEMU_IMG, *args]
    try:
        with trio.fail_after(timeout):
            result = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    except trio.TooSlowError as exc:
        raise DiskError(f"{' '.join(command)} took longer than {timeout:.0f} s") from exc
    except OSError as exc:
        raise DiskError(f"cannot run {QEMU_IMG}: {exc}") from exc
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()
        raise DiskError(f"{' '.join(command)} failed: {detail}")
    return result.stdout


async def image_info(path: Path, fmt: str | None = None) -> dict[str, Any]:
    """qemu-img info as a dict (format, virtual-size, backing-filename...).

    ``-U`` reads without taking QEMU's lock, so this works on a disk in use.  Give ``fmt`` for
    tenant data: qemu-img then does not guess the format from the content.
    """
    args = ["info", "-U", "--output=json", *(("-f", fmt) if fmt else ()), str(path)]
    out = await _qemu_img(*args, timeout=INFO_TIMEOUT)
    return json.loads(out)


async def backing_chain(path: Path, fmt: str = "qcow2") -> list[tuple[str, str]]:
    """The (path, format) of each backing file under the image ``path``, nearest first."""
    out = await _qemu_img("info", "-U", "--backing-chain", "--output=json", "-f", fmt, str(path), timeout=INFO_TIMEOUT)
    layers = json.loads(out)
    if isinstance(layers, dict):  # an image without a backing file
        return []
    return [(str(layer["filename"]), str(layer["format"])) for layer in layers[1:]]


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _private(path: Path) -> None:
    os.chmod(path, 0o600)


async def create_overlay(base: Path, base_format: str, path: Path, size_gb: int) -> None:
    """A qcow2 disk at ``path`` backed by the image ``base``.

    Its virtual size is the flavor's ``size_gb`` when that is bigger than the
    image's, else the image's (0 means "the image's size", as in Nova).
    """
    info = await image_info(base, base_format)
    image_bytes = int(info["virtual-size"])
    wanted = size_gb * GiB
    args = ["create", "-q", "-f", "qcow2", "-b", str(base.resolve()), "-F", base_format]
    partial = _partial(path)
    args.append(str(partial))
    if wanted > image_bytes:
        args.append(str(wanted))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        await _qemu_img(*args, timeout=CREATE_TIMEOUT)
        _private(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


async def snapshot_to_qcow2(disk: Path, dest: Path, *, timeout: float = CONVERT_TIMEOUT) -> None:
    """A standalone qcow2 copy of ``disk`` (its backing chain flattened) at ``dest``.

    Reads with ``-U`` so it works while QEMU holds the disk; pause or stop the
    guest first for a consistent copy.
    """
    partial = _partial(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        await _qemu_img("convert", "-U", "-O", "qcow2", str(disk), str(partial), timeout=timeout)
        _private(partial)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)


def _write_iso(path: Path, files: dict[str, bytes]) -> None:
    import pycdlib  # imported here: only nodes that build config drives need it

    iso = pycdlib.PyCdlib()
    # Interchange level 4 (ISO 9660:1999) allows names like "2012-08-10" and
    # "meta_data.json" as they are; Rock Ridge and Joliet carry them too.
    iso.new(interchange_level=4, vol_ident=CONFIG_DRIVE_LABEL, sys_ident="LINUX", joliet=3, rock_ridge="1.09")
    made: set[str] = set()
    for relative in sorted(files):
        parts = [part for part in relative.split("/") if part]
        if not parts or any(part in (".", "..") for part in parts):
            raise ValueError(f"bad config drive path {relative!r}")
        for depth in range(1, len(parts)):
            directory = "/" + "/".join(parts[:depth])
            if directory not in made:
                iso.add_directory(directory, rr_name=parts[depth - 1], joliet_path=directory)
                made.add(directory)
        data = files[relative]
        name = "/" + "/".join(parts)
        iso.add_fp(io.BytesIO(data), len(data), name, rr_name=parts[-1], joliet_path=name)
    try:
        iso.write(str(path))
    finally:
        iso.close()


async def build_config_drive(path: Path, files: dict[str, bytes]) -> None:
    """An ISO9660 image labelled config-2 holding ``files`` (see core.config_drive_files)."""
    partial = _partial(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        await trio.to_thread.run_sync(_write_iso, partial, files)
        _private(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read_config_drive(path: Path) -> dict[str, bytes]:
    """The files of a config drive by their Rock Ridge names (for tests and checks)."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        found: dict[str, bytes] = {}
        for dirpath, _dirs, names in iso.walk(rr_path="/"):
            for name in names:
                rr_path = f"{dirpath.rstrip('/')}/{name}"
                buffer = io.BytesIO()
                iso.get_file_from_iso_fp(buffer, rr_path=rr_path)
                found[rr_path.lstrip("/")] = buffer.getvalue()
        return found
    finally:
        iso.close()


async def grow(path: Path, size_gb: int) -> None:
    """Grow the qcow2 disk at ``path`` to ``size_gb`` (a resize's bigger flavor); never shrinks."""
    info = await image_info(path, "qcow2")
    if size_gb * GiB > int(info["virtual-size"]):
        await _qemu_img("resize", "-q", "-f", "qcow2", str(path), str(size_gb * GiB), timeout=CREATE_TIMEOUT)


async def copy_disk(source: Path, dest: Path) -> None:
    """A copy of an instance disk file (its backing file shared), made whole before it appears."""
    partial = _partial(dest)
    try:
        await trio.to_thread.run_sync(shutil.copy2, source, partial)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)

"""The image store on local disk, and qemu-img: blocking calls, run in worker threads.

Layout: ``<data-dir>/images/<image id>`` holds an active image's data.  An
upload writes ``.tmp-<image id>-<upload id>`` in the same directory and is
renamed into place only after its data passed the format checks, so a crash
never leaves half an image under an image's name.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudbox.errors import BadRequest, PayloadTooLarge, Unavailable
from cloudbox.image import formats

TEMP_PREFIX = ".tmp-"
CHUNK = 1 << 20
QEMU_IMG_TIMEOUT = 60
# qemu-img parses untrusted data: cap its address space and CPU time as Glance does.
QEMU_IMG_LIMITS = ["prlimit", "--as=1073741824", "--cpu=30"]


@dataclass(frozen=True)
class Stored:
    """What the stored data measured."""

    size: int
    checksum: str  # md5, Glance's "checksum"
    os_hash_value: str  # sha512
    virtual_size: int | None


def _full(exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return PayloadTooLarge("Image storage media is full.")
    return Unavailable(f"The image store failed: {exc.strerror or exc}.")


class Writer:
    """Writes one upload to its temp file, hashing as it goes."""

    def __init__(self, path: Path, mode: str = "x+b") -> None:
        self.path = path
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha512 = hashlib.sha512()
        self._head = bytearray()
        try:
            self._file = open(path, mode)
        except OSError as exc:
            raise _full(exc) from exc

    @classmethod
    def adopt(cls, path: Path) -> "Writer":
        """A writer over a file already complete at ``path``: reads it through to hash it."""
        writer = cls(path, "r+b")
        while chunk := writer._file.read(CHUNK):
            writer._account(chunk)
        return writer

    def _account(self, data: bytes) -> None:
        self._md5.update(data)
        self._sha512.update(data)
        if len(self._head) < formats.HEAD_BYTES:
            self._head += data[: formats.HEAD_BYTES - len(self._head)]
        self.size += len(data)

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise _full(exc) from exc
        self._account(data)

    def finish(self) -> tuple[formats.Sample, str, str]:
        """Flush to disk; return the data's sample, md5 and sha512."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.seek(max(0, self.size - formats.TAIL_BYTES))
            tail = self._file.read()
        except OSError as exc:
            raise _full(exc) from exc
        finally:
            self._file.close()
        sample = formats.Sample(bytes(self._head), tail, self.size)
        return sample, self._md5.hexdigest(), self._sha512.hexdigest()

    def close(self) -> None:
        self._file.close()


class ImageFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def check_room(self, size: int) -> None:
        """Refuse an upload of ``size`` bytes that cannot fit, before any of it is written."""
        self.ensure()
        free = shutil.disk_usage(self.root).free
        if size > free:
            raise PayloadTooLarge(f"Image storage media is full: {size} bytes do not fit in the {free} bytes free.")

    def path(self, image_id: str) -> Path:
        return self.root / image_id

    def temp_path(self, image_id: str, upload_id: str) -> Path:
        return self.root / f"{TEMP_PREFIX}{image_id}-{upload_id}"

    def open_writer(self, image_id: str, upload_id: str) -> Writer:
        self.ensure()
        return Writer(self.temp_path(image_id, upload_id))

    def import_file(self, source: Path, image_id: str, upload_id: str) -> Writer:
        """Move (or, across file systems, copy) ``source`` to an upload's temp file, hashing it."""
        self.ensure()
        temp = self.temp_path(image_id, upload_id)
        try:
            os.rename(source, temp)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copyfile(source, temp)
            os.unlink(source)
        return Writer.adopt(temp)

    def commit(self, temp: Path, image_id: str) -> Path:
        final = self.path(image_id)
        os.rename(temp, final)
        self.sync_dir()
        return final

    def sync_dir(self) -> None:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, path: Path) -> bool:
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def listing(self) -> list[str]:
        try:
            return sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []


def upload_of_temp(name: str) -> str | None:
    """The upload id in a temp file's name, or None if it is not a temp file."""
    if not name.startswith(TEMP_PREFIX):
        return None
    return name.rsplit("-", 1)[-1]


def qemu_img_info(path: Path, qemu_format: str) -> dict[str, Any]:
    command = [*QEMU_IMG_LIMITS, "qemu-img", "info", "-f", qemu_format, "--output=json", "--force-share", str(path)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=QEMU_IMG_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BadRequest("qemu-img took too long to read the image data; refusing it.") from exc
    except FileNotFoundError as exc:
        raise Unavailable("qemu-img is not installed on this node (Debian package qemu-utils).") from exc
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit status {proc.returncode}"
        raise BadRequest(f"The image data is not a valid {qemu_format} image: {reason}")
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise BadRequest("qemu-img could not describe the image data.") from exc


def inspect(path: Path, disk_format: str, sample: formats.Sample) -> int | None:
    """Check stored data against its disk_format (magic first, then qemu-img); its virtual size."""
    formats.check_sample(disk_format, sample)
    info = qemu_img_info(path, formats.QEMU_FORMAT[disk_format])
    return formats.check_qemu_info(disk_format, info, str(path))

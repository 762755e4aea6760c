"""What the child processes of the NBD guest tests share (tests/test_volume_nbd_guest.py,
tests/test_volume_nbd_reconnect.py): a TCG guest booted from the test image with user data, and
waiting for its console. Imported by the child (libvirt's embedded driver serves one root per
process), so plain functions only."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

from cloudbox.compute import core, disks
from cloudbox.compute.driver import DomainSpec


def console(path: Path, pattern: str, timeout: float) -> str:
    """The console log once ``pattern`` (a regular expression) is in it; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if re.search(pattern, text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} on the console in {timeout} s:\n{text[-3000:]}")


async def boot_guest(driver: Any, data: Path, image: Path, user_data: str) -> tuple[str, Path]:
    """Create and start a guest (128 MiB, one vCPU, TCG) on a qcow2 overlay of ``image`` with a
    config drive carrying ``user_data``: (its uuid, its console log)."""
    server = str(uuid.uuid4())
    directory = data / "instances" / server
    directory.mkdir(parents=True)
    disk = directory / "disk"
    await disks.create_overlay(image, "qcow2", disk, 1)
    meta = core.build_meta_data(uuid=server, name="nbd", hostname="nbd-guest", project_id="p1",
                                availability_zone="nova", random_seed=b"x" * 64)
    drive = directory / "config.iso"
    await disks.build_config_drive(drive, core.config_drive_files(meta, user_data.encode(), {}, None))
    spec = DomainSpec(uuid=server, name=core.domain_name(server), vcpus=1, memory_mb=128, root_disk=str(disk),
                      console_log=str(directory / "console.log"), accel="tcg", metadata={"project_id": "p1"},
                      config_drive=str(drive))
    await driver.create(spec)
    return server, directory / "console.log"

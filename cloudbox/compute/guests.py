"""The guests of this host: their files, making one from its server's row, and removing it.

A guest is made in steps that each change the host (instance directory, disk overlay,
config drive, bound ports, libvirt domain).  Each step registers its undo; when a later
step fails, or the build is cancelled, the undos run newest first, so a failed build
leaves nothing behind (``cloudbox.revert``).  Removing a guest is idempotent and best
effort: what fails is logged and the reconciler's next pass tries again.

Files of a server live in ``instances/<server id>/`` (disk, config.iso, console.log);
images it boots from are cached in ``instances/_base/<image id>`` (a hard link to the
image store's file when possible).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator

import trio

from cloudbox.compute import disks
from cloudbox.compute.driver import ComputeDriver, DomainSpec, VolumeDisk
from cloudbox.errors import BadRequest
from cloudbox.nics import NicSpec
from cloudbox.revert import Revert

if TYPE_CHECKING:
    from cloudbox.image.service import ImageService
    from cloudbox.network.dataplane import DataPlane

log = logging.getLogger("cloudbox.compute")

CONSOLE_READ = 1 << 20  # most of a console log one request returns
CONSOLE_MAX = 8 << 20  # a console log longer than this is cut to its last CONSOLE_READ bytes
BASE_GRACE = 600  # seconds a cached image stays after its last server is gone
BASE_CHAINS_KEPT = 256  # cached images whose backing chains are remembered


@contextlib.contextmanager
def _one_error() -> Iterator[None]:
    """A nursery's lone error as itself, not in an ExceptionGroup (callers report its message)."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


class Guests:
    def __init__(self, driver: ComputeDriver, instances_dir: Path, host: str, images: ImageService,
                 dataplane: DataPlane) -> None:
        self.driver = driver
        self.instances_dir = instances_dir
        self.host = host
        self.images = images
        self.dataplane = dataplane
        self._base_chains: dict[tuple[str, int, int], tuple[tuple[str, str], ...]] = {}
        # The server's volume disks a definition carries (compute/volumes.py sets it; none without).
        self.volume_disks: Callable[[str], Awaitable[tuple[VolumeDisk, ...]]] | None = None

    def instance_dir(self, server_id: str) -> Path:
        return self.instances_dir / server_id

    def console_log(self, server_id: str) -> Path:
        return self.instance_dir(server_id) / "console.log"

    async def base_image(self, image_id: str) -> tuple[Path, str]:
        """The image's data on this node and its format, cached under instances/_base."""
        path, image = await self.images.image_path(image_id, None)
        fmt = image["disk_format"]
        if fmt not in ("qcow2", "raw"):
            raise BadRequest(f"Image {image_id} has disk_format {fmt}; servers boot from qcow2 or raw images.")
        base_dir = self.instances_dir / "_base"
        base_dir.mkdir(parents=True, exist_ok=True)
        cached = base_dir / image_id
        if not cached.exists():
            tmp = base_dir / f".{image_id}.{secrets.token_hex(4)}"
            try:
                os.link(path, tmp)
            except OSError:
                await trio.to_thread.run_sync(shutil.copyfile, path, tmp)
            os.replace(tmp, cached)
        return cached, fmt

    async def base_chain(self, base: Path, fmt: str) -> tuple[tuple[str, str], ...]:
        """The backing chain under a cached image (read once: a cached image never changes)."""
        st = base.stat()
        key = (str(base), st.st_ino, st.st_mtime_ns)
        if key not in self._base_chains:
            chain = tuple(await disks.backing_chain(base, fmt)) if fmt == "qcow2" else ()
            if len(self._base_chains) >= BASE_CHAINS_KEPT:
                self._base_chains.clear()
            self._base_chains[key] = chain
        return self._base_chains[key]

    async def spawn(self, server: dict[str, Any], accel: str, drive_files: Callable[[], Awaitable[dict[str, bytes]]],
                    record: Callable[[], Awaitable[Any]], start: bool = True) -> dict[str, float]:
        """Make and start the server's guest (define only, unless ``start``), then ``record`` it; the
        time of each step (ms): its ports are bound while its disks are made, so "port" is the
        time the binds took beyond the disk and config drive steps.

        Every step that changed the host is undone if a later one (``record`` included) fails.
        """
        sid = server["id"]
        steps: dict[str, float] = {}
        mark = time.perf_counter()

        def step(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            steps[name] = round((now - mark) * 1000, 1)
            mark = now

        async with Revert() as revert:
            directory = self.instance_dir(sid)
            if not directory.exists():
                directory.mkdir(parents=True)
                revert.add(lambda: shutil.rmtree(directory, ignore_errors=True))
            disk = directory / "disk"
            root_chain = None
            drive = None
            nics: list[NicSpec] = []
            failed: list[Exception] = []

            async def bind_ports(cancel: trio.CancelScope) -> None:
                try:
                    # Shielded: a bind cut short would leave the binds batched with it unanswered.
                    with trio.CancelScope(shield=True):
                        for port in server["ports"]:
                            nics.append(await self.dataplane.bind(port["port_id"]))
                            revert.add(lambda port_id=port["port_id"]: self.dataplane.unbind(port_id))
                except Exception as exc:  # noqa: BLE001 - raised below, as itself
                    failed.append(exc)
                    cancel.cancel()  # no disks for a guest that cannot start

            # The ports are bound while the disks are made: neither needs the other, and with
            # boots at once a bind waits for the batch before it (20 at once: ~0.4 s).
            with _one_error():
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(bind_ports, nursery.cancel_scope)
                    volumes = await self.volume_disks(sid) if self.volume_disks else ()
                    volume_root = any(v.boot_index == 0 for v in volumes)  # booted from a volume: no image disk
                    if not volume_root and not disk.exists():  # an unshelved server's disk is made already
                        base, fmt = await self.base_image(server["image_id"])
                        step("image")
                        await disks.create_overlay(base, fmt, disk, server["flavor"]["disk"])
                        revert.add(lambda: disk.unlink(missing_ok=True))
                        root_chain = ((str(base.resolve()), fmt), *await self.base_chain(base, fmt))
                    step("disk")
                    if server["config_drive"]:
                        drive = directory / "config.iso"
                        await disks.build_config_drive(drive, await drive_files())
                        revert.add(lambda: drive.unlink(missing_ok=True))
                    step("config_drive")
            if failed:
                raise failed[0]
            step("port")  # what the binds took beyond the disks
            spec = self.domain_spec(server, accel, disk, tuple(nics), drive, start=start)
            try:
                await self.driver.create(dataclasses.replace(spec, root_chain=root_chain, volumes=volumes,
                                                             root_disk="" if volume_root else spec.root_disk))
            finally:
                self._started(server)
            revert.add(lambda: self.driver.destroy(sid))
            step("domain")
            await record()
            step("record")
            revert.success()
        return steps

    def domain_spec(self, server: dict[str, Any], accel: str, root: Path, nics: tuple[NicSpec, ...],
                    drive: Path | None, extra_disks: tuple[Path, ...] = (), start: bool = True) -> DomainSpec:
        sid = server["id"]
        return DomainSpec(
            uuid=sid, name=f"cloudbox-{sid}", vcpus=server["flavor"]["vcpus"], memory_mb=server["flavor"]["ram"],
            root_disk=str(root), console_log=str(self.console_log(sid)), accel=accel,
            nics=nics, config_drive=str(drive) if drive else None,
            metadata={"server_id": sid, "project_id": server["project_id"], "host": self.host},
            extra_disks=tuple(str(p) for p in extra_disks), start=start,
        )

    async def redefine(self, server: dict[str, Any], accel: str, *, root: str = "disk",
                       extra_disks: tuple[str, ...] = (), start: bool = True) -> None:
        """Define the server's guest anew from its row (its flavor) over its files here: the
        instance file ``root`` boots, ``extra_disks`` follow it; started unless ``start`` is False.
        Its ports stay bound (binding is idempotent)."""
        sid = server["id"]
        directory = self.instance_dir(sid)
        await self.driver.destroy(sid)
        nics = tuple([await self.dataplane.bind(port["port_id"]) for port in server["ports"]])
        drive = directory / "config.iso"
        spec = self.domain_spec(server, accel, directory / root, nics, drive if drive.exists() else None,
                                tuple(directory / name for name in extra_disks), start)
        volumes = await self.volume_disks(sid) if self.volume_disks else ()
        volume_root = any(v.boot_index == 0 for v in volumes)
        try:
            await self.driver.create(dataclasses.replace(spec, volumes=volumes, root_disk="" if volume_root and
                                                         root == "disk" else spec.root_disk))
        finally:
            self._started(server)

    def _started(self, server: dict[str, Any]) -> None:
        """The data plane's passes, which waited for this guest's start, may run."""
        if server["ports"]:
            self.dataplane.started([port["port_id"] for port in server["ports"]])

    async def remove(self, server_id: str, ports: list[dict[str, Any]]) -> None:
        """Remove the guest, its ports' taps and its files from this host; idempotent, best effort."""
        try:
            await self.driver.destroy(server_id)
        except Exception:  # noqa: BLE001 - the next reconcile pass tries again
            log.exception("could not destroy the domain of %s", server_id)
        for port in ports:
            try:
                await self.dataplane.unbind(port["port_id"])
            except Exception:  # noqa: BLE001
                log.exception("could not unbind port %s of %s", port["port_id"], server_id)
        await self.remove_files(server_id)

    async def remove_files(self, server_id: str) -> None:
        await trio.to_thread.run_sync(lambda: shutil.rmtree(self.instance_dir(server_id), ignore_errors=True))

    def remove_disk(self, server_id: str) -> None:
        """Drop the server's disk overlay (a rebuild makes a new one)."""
        (self.instance_dir(server_id) / "disk").unlink(missing_ok=True)

    async def console_output(self, server_id: str, length: int | None) -> str:
        """The last ``length`` lines of the console log (all of its tail when None)."""
        path = self.console_log(server_id)

        def read() -> str:
            # Only the tail: a chatty guest's log can be large (trim_console keeps it under CONSOLE_MAX).
            try:
                with open(path, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    size = f.tell()
                    f.seek(max(0, size - CONSOLE_READ))
                    text = f.read().decode("utf-8", errors="replace")
            except FileNotFoundError:
                return ""
            lines = text.splitlines(keepends=True)
            return "".join(lines[-length:] if length else lines)

        return await trio.to_thread.run_sync(read)

    def trim_console(self, server_id: str) -> None:
        """Keep a guest from filling the disk through its serial console: QEMU appends (O_APPEND),
        so cutting the file to its tail under it is safe."""
        path = self.console_log(server_id)
        try:
            if path.stat().st_size <= CONSOLE_MAX:
                return
            with open(path, "r+b") as f:
                f.seek(-CONSOLE_READ, os.SEEK_END)
                tail = f.read()
                f.seek(0)
                f.truncate()
                f.write(tail)
            log.info("console log trimmed", extra={"server_id": server_id})
        except FileNotFoundError:
            pass

    def directories(self) -> list[Path]:
        return [p for p in self.instances_dir.iterdir() if p.is_dir()]

    def clean_base(self, in_use: set[str]) -> None:
        """Remove temp files of copies cut short, and cached images no server on this host uses.

        Only files older than BASE_GRACE go: a build that began after the servers were read
        may have just made its cached image.
        """
        cutoff = time.time() - BASE_GRACE
        for path in (self.instances_dir / "_base").iterdir():
            try:
                if path.stat().st_ctime > cutoff:  # ctime: a new hard link counts as new
                    continue
                if path.name.startswith(".") or path.name not in in_use:
                    path.unlink(missing_ok=True)
                    log.info("unused cached image removed", extra={"file": path.name})
            except FileNotFoundError:
                pass

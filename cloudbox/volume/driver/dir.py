"""Volumes as files under the data dir: ``volumes/volume-<id>.<raw|qcow2>``, snapshots as full
copies ``snapshots/snapshot-<id>.<fmt>`` (so a snapshot outlives its volume with no chain).

No data crosses volumes: a new raw volume is a new sparse file (holes read as zeros) and a
qcow2 one a new image with no clusters; a deleted volume's file is unlinked, never reused.
"""

from __future__ import annotations

import os
from pathlib import Path

from cloudbox.volume.driver import GB, DriverError, check_fits, image_virtual_size, run

FORMATS = ("raw", "qcow2")


class DirDriver:
    name = "dir"

    def __init__(self, root: Path, disk_format: str = "raw") -> None:
        if disk_format not in FORMATS:
            raise ValueError(f"disk format must be raw or qcow2, not {disk_format!r}")
        self.root = Path(root)
        self.format = disk_format
        self.volumes = self.root / "volumes"
        self.snapshots = self.root / "snapshots"
        self.scratch = self.root / "volume-uploads"

    def check(self) -> None:
        for folder in (self.volumes, self.snapshots):
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                raise DriverError(f"{folder} is not writable")

    # --- paths --------------------------------------------------------------------------------
    def _find(self, folder: Path, prefix: str, object_id: str) -> Path | None:
        for fmt in FORMATS:
            path = folder / f"{prefix}-{object_id}.{fmt}"
            if path.exists():
                return path
        return None

    def path(self, volume_id: str) -> Path:
        found = self._find(self.volumes, "volume", volume_id)
        if found is None:
            raise DriverError(f"volume {volume_id} has no file")
        return found

    def volume_format(self, volume_id: str) -> str:
        return self.path(volume_id).suffix[1:]

    def _snapshot_path(self, snapshot_id: str) -> Path:
        found = self._find(self.snapshots, "snapshot", snapshot_id)
        if found is None:
            raise DriverError(f"snapshot {snapshot_id} has no file")
        return found

    def _new(self, volume_id: str, fmt: str | None = None) -> tuple[Path, Path]:
        """(temp path, final path) of a volume being made: written aside, renamed when whole."""
        self.check()
        self.delete(volume_id)
        final = self.volumes / f"volume-{volume_id}.{fmt or self.format}"
        temp = final.with_name(final.name + ".part")
        temp.unlink(missing_ok=True)
        return temp, final

    def _commit(self, temp: Path, final: Path) -> None:
        os.replace(temp, final)

    # --- volumes ------------------------------------------------------------------------------
    def create_blank(self, volume_id: str, size_gb: int) -> None:
        temp, final = self._new(volume_id)
        if self.format == "raw":
            with open(temp, "wb") as f:
                f.truncate(size_gb * GB)  # sparse: every block reads as zero until written
        else:
            run("qemu-img", "create", "-q", "-f", "qcow2", str(temp), f"{size_gb}G")
        self._commit(temp, final)

    def create_from_image(self, volume_id: str, size_gb: int, source: Path, source_format: str) -> None:
        check_fits(source, source_format, size_gb)
        temp, final = self._new(volume_id)
        try:
            run("qemu-img", "convert", "-q", "-f", source_format, "-O", self.format, str(source), str(temp))
            run("qemu-img", "resize", "-q", "-f", self.format, str(temp), f"{size_gb}G")
        except DriverError:
            temp.unlink(missing_ok=True)
            raise
        self._commit(temp, final)

    def _copy(self, source: Path, source_format: str, volume_id: str, size_gb: int) -> None:
        temp, final = self._new(volume_id, source_format)
        try:
            # -U: the source may be a volume a running guest holds locked (a clone of an in-use volume)
            run("qemu-img", "convert", "-q", "-U", "-f", source_format, "-O", source_format, str(source), str(temp))
            if size_gb * GB > image_virtual_size(temp, source_format):
                run("qemu-img", "resize", "-q", "-f", source_format, str(temp), f"{size_gb}G")
        except DriverError:
            temp.unlink(missing_ok=True)
            raise
        self._commit(temp, final)

    def create_from_volume(self, volume_id: str, size_gb: int, source_id: str) -> None:
        source = self.path(source_id)
        self._copy(source, source.suffix[1:], volume_id, size_gb)

    def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str) -> None:
        source = self._snapshot_path(snapshot_id)
        self._copy(source, source.suffix[1:], volume_id, size_gb)

    def extend(self, volume_id: str, size_gb: int) -> None:
        path = self.path(volume_id)
        fmt = path.suffix[1:]
        if image_virtual_size(path, fmt) < size_gb * GB:
            run("qemu-img", "resize", "-q", "-f", fmt, str(path), f"{size_gb}G")

    def extend_attached(self, volume_id: str, size_gb: int) -> None:
        """A raw file grows by truncate (QEMU's block resize to the same size is then a no-op, and a
        guest started later sees it); a qcow2 image held by QEMU is left to QEMU's block resize
        (qemu-img cannot take its lock), one no QEMU holds is resized here."""
        path = self.path(volume_id)
        fmt = path.suffix[1:]
        if fmt == "raw":
            if path.stat().st_size < size_gb * GB:
                os.truncate(path, size_gb * GB)
            return
        try:
            self.extend(volume_id, size_gb)
        except DriverError as exc:
            if "lock" not in str(exc):
                raise

    def delete(self, volume_id: str) -> None:
        for fmt in FORMATS:
            for name in (f"volume-{volume_id}.{fmt}", f"volume-{volume_id}.{fmt}.part"):
                (self.volumes / name).unlink(missing_ok=True)

    def virtual_size(self, volume_id: str) -> int:
        return image_virtual_size(self.path(volume_id), self.volume_format(volume_id))

    # --- snapshots ----------------------------------------------------------------------------
    def snapshot(self, snapshot_id: str, volume_id: str) -> None:
        source = self.path(volume_id)
        fmt = source.suffix[1:]
        self.check()
        self.delete_snapshot(snapshot_id)
        final = self.snapshots / f"snapshot-{snapshot_id}.{fmt}"
        temp = final.with_name(final.name + ".part")
        try:  # a full, sparse copy: valid whatever becomes of the volume; -U reads an in-use volume
            # that its guest's QEMU holds locked (crash-consistent, as Cinder's snapshot of one in use)
            run("qemu-img", "convert", "-q", "-U", "-f", fmt, "-O", fmt, str(source), str(temp))
        except DriverError:
            temp.unlink(missing_ok=True)
            raise
        os.replace(temp, final)

    def delete_snapshot(self, snapshot_id: str) -> None:
        for fmt in FORMATS:
            for name in (f"snapshot-{snapshot_id}.{fmt}", f"snapshot-{snapshot_id}.{fmt}.part"):
                (self.snapshots / name).unlink(missing_ok=True)

    def stored(self) -> tuple[set[str], set[str]]:
        def ids(folder: Path, prefix: str) -> set[str]:
            if not folder.is_dir():
                return set()
            out = set()
            for entry in folder.iterdir():
                name = entry.name.removesuffix(".part")
                stem, _, fmt = name.rpartition(".")
                if stem.startswith(prefix + "-") and fmt in FORMATS:
                    out.add(stem[len(prefix) + 1:])
            return out

        return ids(self.volumes, "volume"), ids(self.snapshots, "snapshot")

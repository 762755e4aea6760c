"""Volumes as LVM thin volumes in a volume group the operator names (``volume_group``), in one
thin pool ``cloudbox_pool`` made on first use from the group's free space (as Proxmox's
lvmthin and Cinder's LVM driver with thin provisioning do).

LVs: ``volume-<id>``, snapshots ``snapshot-<id>`` (thin snapshots: they share blocks with their
origin and stay whole when the origin is removed). No data crosses volumes: the pool is made
with zeroing on (``-Z y``), so a block newly given to a thin volume is zeroed before use, and
blocks never written read as zeros; a removed LV's blocks go back to the pool.

No udev runs on these hosts: LVM is told not to wait for it and makes device nodes itself.
"""

from __future__ import annotations

from pathlib import Path

from cloudbox.volume.driver import GB, DriverError, check_fits, run

POOL = "cloudbox_pool"
NO_UDEV = "activation { udev_sync = 0 udev_rules = 0 verify_udev_operations = 1 }"


def lvm(*args: str) -> str:
    return run(args[0], "--config", NO_UDEV, *args[1:])


class LvmDriver:
    name = "lvm"

    def __init__(self, volume_group: str) -> None:
        if not volume_group:
            raise ValueError("the lvm volume driver needs the volume_group setting")
        self.vg = volume_group
        self.scratch = Path("/var/tmp/cloudbox-volume-uploads")  # make_driver puts it under the data dir

    def check(self) -> None:
        lvm("vgs", "--noheadings", self.vg)
        if POOL not in self._lvs():
            lvm("lvcreate", "-y", "--type", "thin-pool", "-Z", "y", "-l", "90%FREE", "-n", POOL, self.vg)

    def _lvs(self) -> dict[str, str]:
        """LV name -> its size in bytes, of the group."""
        out = lvm("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size", self.vg)
        rows = [line.split() for line in out.splitlines() if line.strip()]
        return {r[0]: r[1] for r in rows}

    def path(self, volume_id: str) -> Path:
        return Path("/dev") / self.vg / f"volume-{volume_id}"

    def volume_format(self, volume_id: str) -> str:
        return "raw"

    def _activate(self, name: str) -> None:
        # Thin snapshots (and volumes made from them) are created with activation skipped.
        lvm("lvchange", "-y", "--setactivationskip", "n", f"{self.vg}/{name}")
        lvm("lvchange", "-ay", "-K", f"{self.vg}/{name}")

    def _new(self, volume_id: str, size_gb: int) -> str:
        self.check()
        self.delete(volume_id)
        name = f"volume-{volume_id}"
        lvm("lvcreate", "-y", "-V", f"{size_gb}G", "-T", f"{self.vg}/{POOL}", "-n", name)
        return name

    def create_blank(self, volume_id: str, size_gb: int) -> None:
        self._new(volume_id, size_gb)

    def create_from_image(self, volume_id: str, size_gb: int, source: Path, source_format: str) -> None:
        check_fits(source, source_format, size_gb)
        self._new(volume_id, size_gb)
        try:
            run("qemu-img", "convert", "-q", "-n", "-f", source_format, "-O", "raw", str(source),
                str(self.path(volume_id)))
        except DriverError:
            self.delete(volume_id)
            raise

    def _clone(self, origin: str, volume_id: str, size_gb: int) -> None:
        self.check()
        self.delete(volume_id)
        name = f"volume-{volume_id}"
        lvm("lvcreate", "-y", "-s", "-n", name, f"{self.vg}/{origin}")
        self._activate(name)
        self.extend(volume_id, size_gb)

    def create_from_volume(self, volume_id: str, size_gb: int, source_id: str) -> None:
        self._clone(f"volume-{source_id}", volume_id, size_gb)

    def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str) -> None:
        self._clone(f"snapshot-{snapshot_id}", volume_id, size_gb)

    def extend(self, volume_id: str, size_gb: int) -> None:
        if int(self._lvs().get(f"volume-{volume_id}", 0)) < size_gb * GB:
            lvm("lvextend", "-y", "-L", f"{size_gb}G", f"{self.vg}/volume-{volume_id}")

    def extend_attached(self, volume_id: str, size_gb: int) -> None:
        self.extend(volume_id, size_gb)  # lvextend: QEMU's block resize then reads the device's size

    def delete(self, volume_id: str) -> None:
        self._remove(f"volume-{volume_id}")

    def _remove(self, name: str) -> None:
        if name in self._lvs():
            lvm("lvremove", "-y", f"{self.vg}/{name}")

    def virtual_size(self, volume_id: str) -> int:
        size = self._lvs().get(f"volume-{volume_id}")
        if size is None:
            raise DriverError(f"volume {volume_id} has no LV")
        return int(size)

    def snapshot(self, snapshot_id: str, volume_id: str) -> None:
        self.delete_snapshot(snapshot_id)
        lvm("lvcreate", "-y", "-s", "-n", f"snapshot-{snapshot_id}", f"{self.vg}/volume-{volume_id}")

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._remove(f"snapshot-{snapshot_id}")

    def stored(self) -> tuple[set[str], set[str]]:
        names = self._lvs()
        volumes = {n[len("volume-"):] for n in names if n.startswith("volume-")}
        snapshots = {n[len("snapshot-"):] for n in names if n.startswith("snapshot-")}
        return volumes, snapshots

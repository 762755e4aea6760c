"""The disk work of volume backups, done by the worker of the node that keeps the volume
(DESIGN.md "Who does the disk work"; reconcile.Worker calls ``work`` each pass).

A backup is objects in its owner's object store (cloudbox.object's ObjectService), container
``volumebackups`` unless the request named one, under ``volume_<volume id>/<backup id>/``:
- ``chunk-NNNNNN``: CHUNK_SIZE bytes of the volume (the last may be shorter), zlib-compressed
  (level 1: the volume's bytes are read at disk speed; zstd is not installed here);
- ``manifest``: JSON naming, for every chunk, its offset, length, sha256 of the raw bytes and the
  object that holds it: this backup's own, a parent's (an incremental backup stores only the
  chunks whose sha256 differs from its parent's), or none (a chunk of zeros is not stored).
The manifest is written last and the backup becomes available only after it, so a crash leaves
the backup in ``creating``, which the worker runs again from the start at the next pass (its
objects are overwritten); restores and deletes are run again the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any, AsyncIterator

import trio

from cloudbox import guard
from cloudbox.errors import CloudboxError, NotFound
from cloudbox.volume import commands as c
from cloudbox.volume import store, store_backups as sb
from cloudbox.volume.driver import GB, DriverError, export_volume, run

log = logging.getLogger("cloudbox.volume")
CHUNK_SIZE = 4 << 20
COMPRESSION = "zlib"
MANIFEST = "manifest"
ZEROS = bytes(CHUNK_SIZE)
WAKES = ("volume.backup.create", "volume.backup.restore", "volume.backup.delete")  # work for some node's worker


def prefix(backup: dict[str, Any]) -> str:
    return f"volume_{backup['volume_id']}/{backup['id']}/"


def chunk_name(backup: dict[str, Any], index: int) -> str:
    return f"{prefix(backup)}chunk-{index:06d}"


def read_chunk(path: Path, offset: int, length: int) -> tuple[bytes, str]:
    """The bytes at ``offset`` (zeros past the end of the file) and their sha256."""
    with open(path, "rb") as f:
        data = os.pread(f.fileno(), length, offset)
    data = data.ljust(length, b"\0")
    return data, hashlib.sha256(data).hexdigest()


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def read_object(objects: Any, account: str, container: str, name: str) -> bytes:
    parts = []
    async with await objects.open_object(account, container, name) as reader:
        async for part in reader.chunks():
            parts.append(part)
    return b"".join(parts)


async def read_manifest(objects: Any, backup: dict[str, Any]) -> dict[str, Any]:
    raw = await read_object(objects, backup["project_id"], backup["container"], prefix(backup) + MANIFEST)
    return json.loads(raw)


async def copy_backup(objects: Any, account: str, container: str, manifest_name: str,
                      backup: dict[str, Any]) -> int:
    """Copy an exported backup's chunks and manifest (``account``/``container``/``manifest_name``)
    into ``backup``'s own prefix and account; returns how many objects it wrote."""
    manifest = json.loads(await read_object(objects, account, container, manifest_name))
    await objects.create_container(backup["project_id"], backup["container"])
    copied: dict[str, str] = {}
    for index, entry in enumerate(manifest["chunks"]):
        source = entry["object"]
        if source is None:
            continue
        if source not in copied:
            copied[source] = chunk_name(backup, index)
            await objects.copy_object(backup["project_id"], container, source, backup["container"], copied[source],
                                      src_account=account)
        entry["object"] = copied[source]
    manifest.update(backup_id=backup["id"], parent_id=None)
    body = json.dumps(manifest, sort_keys=True).encode()
    await objects.put_object(backup["project_id"], backup["container"], prefix(backup) + MANIFEST, _body(body),
                             content_type="application/json", size=len(body),
                             metadata={"sha256": hashlib.sha256(body).hexdigest()})
    return len(copied) + 1


async def make_backup(svc: Any, backup: dict[str, Any]) -> int:
    """Write the backup's chunks and manifest; returns how many objects it wrote."""
    objects, account, container = svc.objects, backup["project_id"], backup["container"]
    await objects.create_container(account, container)
    parent_chunks: dict[int, dict[str, Any]] = {}
    if backup["parent_id"]:
        parent = await svc.read(sb.must_backup, backup["parent_id"])
        parent_chunks = {i: ch for i, ch in enumerate((await read_manifest(objects, parent))["chunks"])}
    driver, vid = svc.driver, backup["volume_id"]
    scratch: Path | None = None
    clone = ""  # a backup of a snapshot reads a clone of it (the drivers' public way to its data)
    read_id = vid
    if backup["snapshot_id"]:
        clone = read_id = backup["id"]
        await trio.to_thread.run_sync(driver.create_from_snapshot, clone, backup["size"], backup["snapshot_id"])
    try:
        source = await trio.to_thread.run_sync(driver.path, read_id)
        if await trio.to_thread.run_sync(driver.volume_format, read_id) != "raw":  # qcow2: what the guest sees
            scratch = driver.scratch / f"backup-{backup['id']}.raw"
            await trio.to_thread.run_sync(lambda: driver.scratch.mkdir(parents=True, exist_ok=True))
            await trio.to_thread.run_sync(export_volume, driver, read_id, scratch, "raw")
            source = scratch
        size = backup["size"] * GB
        chunks: list[dict[str, Any]] = []
        written = 0
        for index, offset in enumerate(range(0, size, CHUNK_SIZE)):
            length = min(CHUNK_SIZE, size - offset)
            data, digest = await trio.to_thread.run_sync(read_chunk, source, offset, length)
            entry: dict[str, Any] = {"offset": offset, "length": length, "sha256": digest, "object": None}
            known = parent_chunks.get(index)
            if known is not None and known["sha256"] == digest and known["length"] == length:
                entry["object"] = known["object"]  # unchanged since the parent: its object serves
            elif data != ZEROS[:length]:
                packed = await trio.to_thread.run_sync(zlib.compress, data, 1)
                entry["object"] = chunk_name(backup, index)
                await objects.put_object(account, container, entry["object"], _body(packed),
                                         content_type="application/octet-stream", size=len(packed))
                written += 1
            chunks.append(entry)
        volume = await svc.read(store.must_volume, vid)
        kept = {"metadata": volume["metadata"], "bootable": volume["bootable"],
                "image_metadata": volume["image_metadata"]}
        manifest = {"version": 1, "backup_id": backup["id"], "volume_id": vid, "parent_id": backup["parent_id"],
                    "volume": kept,
                    "size_bytes": size, "chunk_size": CHUNK_SIZE, "compression": COMPRESSION, "chunks": chunks}
        body = json.dumps(manifest, sort_keys=True).encode()
        await objects.put_object(account, container, prefix(backup) + MANIFEST, _body(body),
                                 content_type="application/json", size=len(body),
                                 metadata={"sha256": hashlib.sha256(body).hexdigest()})
        return written + 1
    finally:
        if scratch is not None:
            await trio.to_thread.run_sync(lambda: scratch.unlink(missing_ok=True))
        if clone:
            await trio.to_thread.run_sync(driver.delete, clone)


def write_chunk(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def sync_file(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def restore(svc: Any, backup: dict[str, Any], volume: dict[str, Any]) -> dict[str, Any]:
    """Write the backup's bytes into ``volume`` (made blank first when the restore makes it);
    returns what the backup kept of its volume (metadata, bootable, image metadata)."""
    objects, driver, vid = svc.objects, svc.driver, volume["id"]
    manifest = await read_manifest(objects, backup)
    present = (await trio.to_thread.run_sync(driver.stored))[0]
    if vid not in present:
        await trio.to_thread.run_sync(driver.create_blank, vid, volume["size"])
    target = await trio.to_thread.run_sync(driver.path, vid)
    fmt = await trio.to_thread.run_sync(driver.volume_format, vid)
    scratch: Path | None = None
    if fmt != "raw":  # written raw aside, then converted over the qcow2 volume
        scratch = driver.scratch / f"restore-{backup['id']}.raw"
        await trio.to_thread.run_sync(lambda: driver.scratch.mkdir(parents=True, exist_ok=True))
        await trio.to_thread.run_sync(lambda: scratch.write_bytes(b"") or os.truncate(scratch, volume["size"] * GB))
        target = scratch
    try:
        for entry in manifest["chunks"]:
            if entry["object"] is None:
                data = ZEROS[:entry["length"]]
            else:
                packed = await read_object(objects, backup["project_id"], backup["container"], entry["object"])
                data = await trio.to_thread.run_sync(zlib.decompress, packed)
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise DriverError(f"chunk at {entry['offset']} of backup {backup['id']} does not match its sha256")
            await trio.to_thread.run_sync(write_chunk, target, entry["offset"], data)
        await trio.to_thread.run_sync(sync_file, target)
        if scratch is not None:
            final = await trio.to_thread.run_sync(driver.path, vid)
            await trio.to_thread.run_sync(lambda: run("qemu-img", "convert", "-n", "-f", "raw", "-O", fmt,
                                                      str(scratch), str(final)))
    finally:
        if scratch is not None:
            await trio.to_thread.run_sync(lambda: scratch.unlink(missing_ok=True))
    return dict(manifest.get("volume") or {})


async def remove_objects(svc: Any, backup: dict[str, Any]) -> None:
    """Delete the backup's own objects (its parents' stay: they are theirs)."""
    objects, account, container = svc.objects, backup["project_id"], backup["container"]
    while True:
        try:
            listed = await objects.list_objects(account, container, prefix=prefix(backup), limit=1000)
        except NotFound:
            return  # the container went: nothing is left
        names = [o.name for o in listed if hasattr(o, "size")]
        if not names:
            return
        for name in names:
            try:
                await objects.delete_object(account, container, name)
            except NotFound:
                pass


# --- the worker's part ------------------------------------------------------------------------------
async def _act(worker: Any, backup: dict[str, Any]) -> None:
    svc, bid, status = worker.svc, backup["id"], backup["status"]
    try:
        async with worker.limiter:
            if status == "creating":
                count = await make_backup(svc, backup)
                await svc.propose(c.BackupTransition(bid, ("creating",), "available", svc.now(),
                                                     {"object_count": count, "fail_reason": None}))
            elif status == "deleting":
                await remove_objects(svc, backup)
                await svc.propose(c.PurgeBackup(bid))
            elif status == "restoring":
                volume = await svc.read(store.must_volume, backup["restore_volume_id"])
                try:
                    kept = await restore(svc, backup, volume)
                except (DriverError, CloudboxError, OSError, zlib.error, ValueError) as exc:
                    log.warning("backup %s: restore into %s failed: %s", bid, volume["id"], exc)
                    await svc.propose(c.FinishRestore(bid, f"Restore of backup {bid} failed: {exc}"[:500], svc.now()))
                    return
                await svc.propose(c.FinishRestore(bid, "", svc.now(), kept))
    except (DriverError, CloudboxError, OSError, zlib.error, ValueError) as exc:
        log.warning("backup %s: %s failed: %s", bid, status, exc)
        try:
            await svc.propose(c.BackupTransition(bid, (status,), "error", svc.now(), {"fail_reason": str(exc)[:500]}))
        except CloudboxError:
            pass  # deleted or reset meanwhile
    finally:
        worker.busy.discard("backup:" + bid)
        svc.wake.set()


async def work(worker: Any, nursery: trio.Nursery) -> None:
    """Start the backups, restores and deletes this node has to do (one task each)."""
    if getattr(worker.svc, "objects", None) is None:
        return  # no object store on this node (a test's bare volume service)
    for backup in await worker.svc.read(sb.backup_work, worker.svc.host):
        key = "backup:" + backup["id"]
        if key not in worker.busy:
            worker.busy.add(key)
            guard.spawn(nursery, _act, worker, backup, name=f"volume backup {backup['id']}")

"""`cloudbox backup` and `cloudbox restore`: a node's state and keys in one file.

The archive is a gzipped tar, mode 0600 (it holds the CA key, the node key and the
database with password hashes and token keys):

    cloudbox-backup.json   manifest: format, cloudbox version, node, when, table hashes,
                           sha256 and mode of every other member
    state.db               a consistent copy of the database, taken with SQLite's online
                           backup API in one step (one read transaction: the node may be
                           writing meanwhile; WAL lets it), rows of node-local tables
                           dropped as in a peer snapshot: the restored node observes its
                           own host afresh
    node.json, cloudbox.json, clouds.yaml, admin-openrc.sh, pki/*

Not in it: images, volumes, objects and guests' disks (data, not state: copy
DATA_DIR/images, volumes and objects with the node stopped, or use the clouds' own
backups).  ``restore`` writes a fresh data dir only, after checking every member
against the manifest and the database against its table hashes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import sqlite3
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cloudbox import __version__
from cloudbox.errors import SetupError
from cloudbox.node import DataDir
from cloudbox.state import db as dbmod

FORMAT = 1
MANIFEST = "cloudbox-backup.json"
DATABASE = "state.db"
# Files of the data dir that are the node's identity and keys, relative to it.
FILES = ("node.json", "cloudbox.json", "clouds.yaml", "admin-openrc.sh")
PKI_DIR = "pki"
MAX_MEMBER_BYTES = 1 << 34  # 16 GiB: a bigger member is not ours


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    node_name: str
    hashes: dict[str, str]
    members: list[str]

    @property
    def state_hash(self) -> str:
        return state_hash(self.hashes)


def state_hash(hashes: dict[str, str]) -> str:
    """One digest of every replicated table's hash (what two nodes compare)."""
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()


def copy_database(source: Path, target: Path) -> dict[str, str]:
    """A consistent copy of a live database at ``target`` without node-local rows; its table hashes."""
    dbmod.keep_private(target)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(str(target), isolation_level=None)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)  # pages=-1: the whole file in one step, so one consistent read
        local = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'local\\_%' ESCAPE '\\'")]
        for name in local:
            dst.execute(f'DELETE FROM "{name}"')
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.execute("VACUUM")
        dbmod.check_integrity(dst, target)
        return dbmod.table_hashes(dst)
    except sqlite3.Error as exc:
        raise SetupError(f"cannot copy the database {source}: {exc}") from exc
    finally:
        src.close()
        dst.close()


def _member_files(directory: DataDir) -> list[str]:
    names = [n for n in FILES if (directory.root / n).is_file()]
    pki = directory.root / PKI_DIR
    if pki.is_dir():
        names += sorted(f"{PKI_DIR}/{p.relative_to(pki)}" for p in pki.rglob("*") if p.is_file())
    return names


def backup(directory: DataDir, out: Path) -> BackupInfo:
    """Write the archive of ``directory``'s cloud to ``out`` (replaced atomically; mode 0600)."""
    directory.require_cloud()
    info = directory.node_info()
    out = out.absolute()
    if out.is_dir():
        raise SetupError(f"{out} is a directory; name the backup file")
    if not out.parent.is_dir():
        raise SetupError(f"no directory {out.parent} for the backup file")
    with tempfile.TemporaryDirectory(prefix=".cloudbox-backup-", dir=directory.root) as tmp:
        db_copy = Path(tmp) / DATABASE
        hashes = copy_database(directory.database, db_copy)
        members = [(DATABASE, db_copy)] + [(n, directory.root / n) for n in _member_files(directory)]
        manifest = {
            "format": FORMAT, "cloudbox_version": __version__,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "node": {"id": info.get("id"), "name": info.get("name")}, "source": str(directory.root),
            "state_hash": state_hash(hashes), "hashes": hashes,
            "members": {name: {"sha256": _sha256(path), "mode": stat.S_IMODE(path.stat().st_mode)}
                        for name, path in members},
        }
        fd, tmp_out = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n", 0o600)
                for name, path in members:
                    _add_bytes(tar, name, path.read_bytes(), manifest["members"][name]["mode"])
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp_out, out)
        except BaseException:
            Path(tmp_out).unlink(missing_ok=True)
            raise
    return BackupInfo(out, str(info.get("name")), hashes, [n for n, _ in members])


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    entry = tarfile.TarInfo(name)
    entry.size = len(data)
    entry.mode = mode
    entry.mtime = int(dt.datetime.now(dt.timezone.utc).timestamp())
    tar.addfile(entry, io.BytesIO(data))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _allowed(name: str) -> bool:
    """Only the members a backup writes: no absolute paths, no '..', nothing outside pki/."""
    if name in (MANIFEST, DATABASE) or name in FILES:
        return True
    parts = name.split("/")
    return parts[0] == PKI_DIR and len(parts) >= 2 and all(p not in ("", ".", "..") for p in parts)


def read_archive(archive: Path) -> tuple[dict, dict[str, bytes]]:
    """The manifest and members of a backup, each checked against the manifest."""
    try:
        tar = tarfile.open(archive, mode="r:*")
    except (OSError, tarfile.TarError) as exc:
        raise SetupError(f"{archive} is not a cloudbox backup: {exc}") from exc
    data: dict[str, bytes] = {}
    with tar:
        for entry in tar:
            if not entry.isfile() or not _allowed(entry.name) or entry.size > MAX_MEMBER_BYTES:
                raise SetupError(f"{archive} is not a cloudbox backup: unexpected member {entry.name!r}")
            handle = tar.extractfile(entry)
            assert handle is not None
            data[entry.name] = handle.read()
    try:
        manifest = json.loads(data.pop(MANIFEST))
    except (KeyError, ValueError) as exc:
        raise SetupError(f"{archive} is not a cloudbox backup: no readable {MANIFEST}") from exc
    if manifest.get("format") != FORMAT:
        raise SetupError(f"{archive} is a backup of format {manifest.get('format')!r}; this cloudbox reads {FORMAT}")
    listed = manifest.get("members", {})
    if set(listed) != set(data) or DATABASE not in data or "node.json" not in data:
        raise SetupError(f"{archive} is incomplete: its members do not match its manifest")
    for name, content in data.items():
        if hashlib.sha256(content).hexdigest() != listed[name]["sha256"]:
            raise SetupError(f"{archive} is damaged: {name} does not match its checksum")
    return manifest, data


def restore(archive: Path, directory: DataDir) -> dict:
    """Write the backup's cloud into ``directory``, which must hold no cloud; returns the manifest."""
    manifest, data = read_archive(archive)
    root = directory.root
    if root.exists() and any(root.iterdir()):
        raise SetupError(f"{root} is not empty; restore needs a fresh data dir (remove it, or choose another)")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)
    staged = root / f".{DATABASE}.restoring"
    try:
        _write(staged, data.pop(DATABASE), 0o600)
        conn = sqlite3.connect(str(staged), isolation_level=None)
        try:
            dbmod.check_integrity(conn, staged)
            hashes = dbmod.table_hashes(conn)
        finally:
            conn.close()
        if hashes != manifest["hashes"]:
            raise SetupError(f"{archive}: the database's tables do not match the hashes recorded at backup")
        # node.json last: its presence marks a complete data dir (as `cloudbox init` writes it).
        node_json = data.pop("node.json")
        for name, content in sorted(data.items()):
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write(target, content, _mode(manifest, name))
        os.replace(staged, directory.database)
        dbmod.sync(root)
        _write(directory.node_file, node_json, _mode(manifest, "node.json"))
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return manifest


def _mode(manifest: dict, name: str) -> int:
    """The member's recorded mode, at most rw-r--r-- (a backup grants nothing more)."""
    mode = manifest["members"][name].get("mode")
    return (mode & 0o644) if isinstance(mode, int) and mode & 0o600 == 0o600 else 0o600


def _write(path: Path, content: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, mode)


def database_hashes(path: Path) -> dict[str, str]:
    """Table hashes of a database file, read-only (for a stopped node)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dbmod.table_hashes(conn)
    finally:
        conn.close()

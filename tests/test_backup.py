"""`cloudbox backup` of a serving node and `cloudbox restore` onto a fresh data dir."""

from __future__ import annotations

import json
import stat
import tarfile
from pathlib import Path

import pytest

from cloudbox import backup as bk
from tests.cloud import Cloud, run_cli


def _state(node: Cloud, token: str) -> dict:
    with node.client(token) as c:
        r = c.get("/cloudbox/v1/cluster/state")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.slow
def test_backup_while_serving_then_restore_serves_the_same_state(new_cloud: Cloud, tmp_path: Path):
    new_cloud.init()
    new_cloud.start()
    token = new_cloud.token()
    with new_cloud.client(token) as c:
        r = c.post("/identity/v3/projects", json={"project": {"name": "kept-by-backup"}})
        assert r.status_code == 201, r.text
        project_id = r.json()["project"]["id"]
    archive = tmp_path / "node.backup"
    proc = run_cli("backup", "--data-dir", str(new_cloud.data_dir), str(archive))
    assert f"written to {archive}" in proc.stdout
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    before = _state(new_cloud, token)["hashes"]
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile(bk.MANIFEST))
    assert {"state.db", "node.json", "cloudbox.json", "clouds.yaml", "pki/ca.key", "pki/node.key"} <= names
    assert manifest["hashes"] == before
    assert new_cloud.stop() == 0

    restored = Cloud(tmp_path / "restored", new_cloud.port, password=new_cloud.password)
    proc = run_cli("restore", str(archive), "--data-dir", str(restored.data_dir))
    assert manifest["state_hash"] in proc.stdout
    assert stat.S_IMODE((restored.data_dir / "pki" / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(restored.data_dir.stat().st_mode) == 0o700
    assert (restored.data_dir / "pki" / "ca.pem").read_bytes() == (new_cloud.data_dir / "pki" / "ca.pem").read_bytes()
    assert bk.database_hashes(restored.data_dir / "state.db") == before  # the same state hash
    try:
        restored.start()
        token = restored.token()  # the same password and token keys
        serving = _state(restored, token)["hashes"]
        with restored.client(token) as c:
            assert c.get(f"/identity/v3/projects/{project_id}").status_code == 200
    finally:
        restored.stop()
    # Serving, the node changed only what every start changes: its compute host's report time.
    assert {t: h for t, h in serving.items() if t != "compute_hosts"} == \
        {t: h for t, h in before.items() if t != "compute_hosts"}
    assert _hosts(restored.data_dir) == _hosts(new_cloud.data_dir)

    # Restore refuses a data dir that holds something, and changes nothing there.
    again = run_cli("restore", str(archive), "--data-dir", str(restored.data_dir), check=False)
    assert again.returncode == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr


def test_backup_refuses_a_dir_without_a_cloud(tmp_path: Path):
    proc = run_cli("backup", "--data-dir", str(tmp_path / "none"), str(tmp_path / "b.tar"), check=False)
    assert proc.returncode == 1 and "cloudbox init" in proc.stderr
    assert not (tmp_path / "b.tar").exists()


def _hosts(data_dir: Path) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(f"file:{data_dir / 'state.db'}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [tuple(v for k, v in zip(r.keys(), r) if k != "updated_at")
                for r in conn.execute("SELECT * FROM compute_hosts ORDER BY name")]
    finally:
        conn.close()


def _archive(path: Path, members: dict[str, bytes], manifest: dict | None = None) -> Path:
    import hashlib
    import io

    if manifest is None:
        manifest = {"format": bk.FORMAT, "hashes": {},
                    "members": {n: {"sha256": hashlib.sha256(d).hexdigest(), "mode": 0o600} for n, d in members.items()}}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {bk.MANIFEST: json.dumps(manifest).encode(), **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name", ["../evil", "/etc/evil", "pki/../../evil", "other.txt"])
def test_restore_refuses_members_a_backup_does_not_write(tmp_path: Path, name: str):
    archive = _archive(tmp_path / "bad.tar.gz", {"node.json": b"{}", "state.db": b"", name: b"x"})
    proc = run_cli("restore", str(archive), "--data-dir", str(tmp_path / "new"), check=False)
    assert proc.returncode == 1 and "unexpected member" in proc.stderr
    assert not (tmp_path / "new").exists() and not (tmp_path / "evil").exists()


def test_restore_refuses_a_damaged_or_foreign_file(tmp_path: Path):
    members = {"node.json": b"{}", "state.db": b"not sqlite"}
    good = _archive(tmp_path / "a.tar.gz", members)
    lying = json.loads(json.dumps({"format": bk.FORMAT, "hashes": {}, "members": {
        "node.json": {"sha256": "0" * 64, "mode": 0o600}, "state.db": {"sha256": "0" * 64, "mode": 0o600}}}))
    damaged = _archive(tmp_path / "b.tar.gz", members, lying)
    not_tar = tmp_path / "c.tar"
    not_tar.write_bytes(b"hello")
    for archive, words in ((damaged, "does not match its checksum"), (not_tar, "not a cloudbox backup"),
                           (good, "corrupt")):
        target = tmp_path / f"new-{archive.name}"
        proc = run_cli("restore", str(archive), "--data-dir", str(target), check=False)
        assert proc.returncode == 1, proc.stdout
        assert words in proc.stderr and "Traceback" not in proc.stderr
        assert not (target / "node.json").exists()


def test_backup_of_a_stopped_node_restores_the_same_state(new_cloud: Cloud, tmp_path: Path):
    new_cloud.init()
    archive = tmp_path / "stopped.backup"
    run_cli("backup", "--data-dir", str(new_cloud.data_dir), str(archive))
    target = tmp_path / "fresh"
    target.mkdir()  # an empty dir is fresh enough
    run_cli("restore", str(archive), "--data-dir", str(target))
    assert bk.database_hashes(target / "state.db") == bk.database_hashes(new_cloud.data_dir / "state.db")
    for name in ("node.json", "cloudbox.json", "clouds.yaml", "admin-openrc.sh", "pki/ca.key", "pki/node.pem"):
        assert (target / name).read_bytes() == (new_cloud.data_dir / name).read_bytes(), name
        assert stat.S_IMODE((target / name).stat().st_mode) == stat.S_IMODE((new_cloud.data_dir / name).stat().st_mode)
    assert not list(target.glob(".*"))  # no staging files left

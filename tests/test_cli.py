"""`cloudbox init/serve/status/stop` as a person uses them, errors included."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import yaml

from tests.cloud import Cloud, run_cli


def test_init_creates_the_cloud_and_refuses_to_overwrite(tmp_path: Path):
    data = tmp_path / "data"
    home = tmp_path / "home"
    proc = run_cli("init", "--data-dir", str(data), "--listen", "127.0.0.1:18000", "--advertise", "127.0.0.1",
                   env={"HOME": str(home)})
    assert "https://127.0.0.1:18000" in proc.stdout
    assert "password" in proc.stdout
    for name in ("state.db", "node.json", "cloudbox.json", "clouds.yaml", "admin-openrc.sh",
                 "pki/ca.pem", "pki/ca.key", "pki/node.pem", "pki/node.key"):
        assert (data / name).exists(), name
    assert stat.S_IMODE((data / "pki" / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "clouds.yaml").stat().st_mode) == 0o600
    entry = yaml.safe_load((data / "clouds.yaml").read_text())["clouds"]["cloudbox"]
    assert entry["auth"]["auth_url"] == "https://127.0.0.1:18000/identity/v3"
    assert entry["cacert"] == str(data / "pki" / "ca.pem")
    # The user's clouds.yaml gets the same entry, keeping what else it held.
    user_yaml = home / ".config" / "openstack" / "clouds.yaml"
    assert yaml.safe_load(user_yaml.read_text())["clouds"]["cloudbox"] == entry

    before = (data / "state.db").read_bytes()
    again = run_cli("init", "--data-dir", str(data), "--no-user-config", check=False)
    assert again.returncode == 1
    assert again.stderr.strip().startswith("cloudbox: a cloud already exists")
    assert "Traceback" not in again.stderr
    assert (data / "state.db").read_bytes() == before

    forced = run_cli("init", "--data-dir", str(data), "--listen", "127.0.0.1:18001", "--advertise", "127.0.0.1",
                     "--force", "--no-user-config")
    assert "https://127.0.0.1:18001" in forced.stdout
    assert json.loads((data / "cloudbox.json").read_text())["listen"] == "127.0.0.1:18001"


def test_init_rejects_bad_settings(tmp_path: Path):
    data = tmp_path / "data"
    proc = run_cli("init", "--data-dir", str(data), "--set", "token_expiration=soon", "--no-user-config", check=False)
    assert proc.returncode == 1
    assert "token_expiration" in proc.stderr and "Traceback" not in proc.stderr
    assert not (data / "state.db").exists()
    proc = run_cli("init", "--data-dir", str(data), "--set", "nonsense=1", "--no-user-config", check=False)
    assert proc.returncode == 1 and "nonsense" in proc.stderr


def test_serve_without_a_cloud_says_so(tmp_path: Path):
    proc = run_cli("serve", "--data-dir", str(tmp_path / "nothing"), check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "run `cloudbox init` first" in lines[0]


def test_serve_on_a_port_in_use_says_so(new_cloud: Cloud):
    new_cloud.init()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", new_cloud.port))
        busy.listen()
        proc = run_cli("serve", "--data-dir", str(new_cloud.data_dir), check=False)
    assert proc.returncode == 1
    assert f"port {new_cloud.port} on 127.0.0.1 is already in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_on_a_corrupt_database_says_so(new_cloud: Cloud):
    new_cloud.init()
    db = new_cloud.data_dir / "state.db"
    for extra in ("state.db-wal", "state.db-shm"):
        (new_cloud.data_dir / extra).unlink(missing_ok=True)
    raw = bytearray(db.read_bytes())
    raw[:16] = b"garbage garbage!"  # the SQLite header
    db.write_bytes(bytes(raw))
    proc = run_cli("serve", "--data-dir", str(new_cloud.data_dir), check=False)
    assert proc.returncode == 1
    assert "corrupt" in proc.stderr or "unusable" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_status_stop_and_background_serve(new_cloud: Cloud):
    new_cloud.init()
    down = run_cli("status", "--data-dir", str(new_cloud.data_dir), check=False)
    assert down.returncode == 1 and "not running" in down.stdout
    started = run_cli("serve", "--data-dir", str(new_cloud.data_dir), "--background")
    assert "runs in the background" in started.stdout
    up = run_cli("status", "--data-dir", str(new_cloud.data_dir))
    assert "healthy:   yes" in up.stdout and "identity" in up.stdout
    stopped = run_cli("stop", "--data-dir", str(new_cloud.data_dir))
    assert "stopped" in stopped.stdout
    assert not (new_cloud.data_dir / "serve.pid").exists()
    assert run_cli("status", "--data-dir", str(new_cloud.data_dir), check=False).returncode == 1


def test_sigterm_stops_cleanly(new_cloud: Cloud):
    new_cloud.init()
    new_cloud.start()
    assert new_cloud.stop() == 0
    log = new_cloud.log_path.read_text()
    assert '"msg": "shutting down"' in log and '"msg": "stopped"' in log
    new_cloud.start()  # the port was released: it serves again on it
    assert new_cloud.stop() == 0


def test_init_advertises_the_address_it_listens_on(tmp_path: Path):
    data = tmp_path / "data"
    run_cli("init", "--data-dir", str(data), "--listen", "127.0.0.1:18002", "--no-user-config")
    entry = yaml.safe_load((data / "clouds.yaml").read_text())["clouds"]["cloudbox"]
    assert entry["auth"]["auth_url"] == "https://127.0.0.1:18002/identity/v3"

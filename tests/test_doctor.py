"""`cloudbox doctor`: each check's verdicts, and the command's output and exit status."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Sequence

import pytest

from cloudbox import doctor as dr
from cloudbox.node import DataDir
from cloudbox.settings import Settings
from tests.cloud import Cloud, free_port, run_cli


def _runner(answers: dict[str, tuple[int, str]]):
    """A fake command runner: the first word of the command picks the answer (127: not found)."""
    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        code, out = answers.get(argv[0], (127, ""))
        return subprocess.CompletedProcess(list(argv), code, out, "" if code == 0 else f"{argv[0]} failed")
    return run


def test_time_sync_from_timedatectl_or_chrony():
    assert dr.check_time(_runner({"timedatectl": (0, "yes\n")})).status == dr.OK
    chrony_ok = "Reference ID    : A\nLeap status     : Normal\n"
    assert dr.check_time(_runner({"timedatectl": (0, "no\n"), "chronyc": (0, chrony_ok)})).status == dr.OK
    unsynced = dr.check_time(_runner({"chronyc": (0, "Leap status     : Not synchronised\n")}))
    assert unsynced.status == dr.WARN and "Not synchronised" in unsynced.message
    off = dr.check_time(_runner({"timedatectl": (0, "no\n")}))
    assert off.status == dr.WARN and "set-ntp" in off.fix
    nothing = dr.check_time(_runner({}))
    assert nothing.status == dr.WARN and "chrony" in nothing.fix


def test_kvm_missing_or_unusable_means_tcg(tmp_path: Path):
    missing = dr.check_kvm(tmp_path / "kvm")
    assert missing.status == dr.WARN and "TCG" in missing.message
    not_a_device = tmp_path / "file"
    not_a_device.write_text("")
    assert dr.check_kvm(not_a_device).status == dr.WARN


def test_disk_space_threshold(tmp_path: Path):
    assert dr.check_disk(tmp_path, min_free=1).status in (dr.OK, dr.WARN)
    full = dr.check_disk(tmp_path / "not" / "yet", min_free=1 << 60)
    assert full.status == dr.FAIL and "free" in full.fix


def test_port_free_ours_or_taken():
    port = free_port()
    assert dr.check_port("api port", "127.0.0.1", port, None).status == dr.OK
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        import os
        me = os.getpid()
        assert me in dr.pids_listening(port)
        ours = dr.check_port("api port", "127.0.0.1", port, me)
        assert ours.status == dr.OK and "held by this node" in ours.message
        taken = dr.check_port("api port", "127.0.0.1", port, None)
        assert taken.status == dr.FAIL and f"pid {me}" in taken.message and "listen" in taken.fix
        other = dr.check_port("api port", "127.0.0.1", port, me + 1_000_000)
        assert other.status == dr.FAIL


def test_network_tools_and_bridge(tmp_path: Path):
    settings = Settings.resolve({"network_driver": "linux", "external_bridge": "cbxtest0"}, environ={})
    which_all = lambda name: f"/usr/bin/{name}"  # noqa: E731
    ok = dr.check_network(settings, _runner({"nft": (0, "")}), which_all, tmp_path)
    assert [f.status for f in ok] == [dr.OK, dr.OK]
    (tmp_path / "cbxtest0").mkdir()  # an interface of that name, but no bridge
    bad = dr.check_network(settings, _runner({}), lambda name: None if name == "dnsmasq" else "/x", tmp_path)
    assert {f.check: f.status for f in bad} == {"network": dr.FAIL, "nftables": dr.FAIL, "bridges": dr.FAIL}
    assert "dnsmasq" in bad[0].message
    fake = Settings.resolve({"network_driver": "fake"}, environ={})
    assert [f.status for f in dr.check_network(fake, _runner({}))] == [dr.OK]


def test_libvirt_embedded_needs_the_qemu_driver(tmp_path: Path):
    embedded = Settings.resolve({}, environ={})
    assert dr.check_libvirt(embedded, _runner({}), driver_dirs=[tmp_path]).status == dr.FAIL
    (tmp_path / "libvirt_driver_qemu.so").write_bytes(b"")
    assert dr.check_libvirt(embedded, _runner({}), driver_dirs=[tmp_path]).status == dr.OK
    system = Settings.resolve({"libvirt_uri": "qemu:///system"}, environ={})
    down = dr.check_libvirt(system, _runner({}))
    assert down.status == dr.FAIL and "libvirtd" in down.fix
    assert dr.check_libvirt(system, _runner({"virsh": (0, "Running hypervisor: QEMU 7.2.0")})).status == dr.OK


def test_etcd_verdicts():
    assert dr.check_etcd(False, None, None, lambda n: "/usr/bin/etcd").status == dr.OK
    assert dr.check_etcd(False, None, None, lambda n: None).status == dr.WARN
    assert dr.check_etcd(True, None, "does not answer").status == dr.FAIL
    no_leader = dr.check_etcd(True, {"leader": None, "members": ["a", "b", "c"]}, None)
    assert no_leader.status == dr.FAIL and "majority" in no_leader.fix
    assert dr.check_etcd(True, {"leader": "a", "members": ["a", "b"]}, None).status == dr.OK


def test_database_damage_is_a_failure(tmp_path: Path):
    directory = DataDir(tmp_path)
    assert dr.check_database(directory).status == dr.FAIL  # no cloud
    (tmp_path / "node.json").write_text("{}")
    (tmp_path / "state.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    damaged = dr.check_database(directory)
    assert damaged.status == dr.FAIL and "cloudbox restore" in damaged.fix


@pytest.mark.slow
def test_doctor_command_on_a_serving_node_and_a_taken_port(new_cloud: Cloud):
    new_cloud.init()
    new_cloud.start()
    proc = run_cli("doctor", "--data-dir", str(new_cloud.data_dir), "--json", "--min-free-gb", "0", check=False)
    found = {f["check"]: f for f in json.loads(proc.stdout)}
    assert found["api port"]["status"] == "ok" and "held by this node" in found["api port"]["message"]
    assert found["database"]["status"] == "ok"
    assert found["etcd"]["message"].startswith("single node")
    assert {"kvm", "qemu", "libvirt", "disk", "time"} <= set(found)
    failed = [f for f in found.values() if f["status"] == "fail"]
    assert proc.returncode == (1 if failed else 0), failed
    new_cloud.stop()

    # A foreign listener on the API port: a failure with what to fix, and exit status 1.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", new_cloud.port))
        busy.listen()
        proc = run_cli("doctor", "--data-dir", str(new_cloud.data_dir), "--min-free-gb", "0", check=False)
    assert proc.returncode == 1
    assert f"FAIL  api port   127.0.0.1:{new_cloud.port} is in use" in proc.stdout
    assert "fix: stop what holds it" in proc.stdout
    assert "problem(s) to fix: " in proc.stdout and "api port" in proc.stdout.splitlines()[-1]

    # Too little disk space is a failure too.
    proc = run_cli("doctor", "--data-dir", str(new_cloud.data_dir), "--min-free-gb", "1000000", check=False)
    assert proc.returncode == 1 and "FAIL  disk" in proc.stdout

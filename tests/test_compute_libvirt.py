"""Real guests: our test guest booted by libvirt's embedded QEMU driver, driven by the real
`openstack` CLI (issue #3's acceptance), plus crash recovery and placement under load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cloud import Cloud, free_port, run_cli, wait_for
from tests.compute_helpers import boot, boot_ten_with_room_for_eight, upload_image, wait_gone, wait_server
from tests.guest_dirs import guest_dir
from tests.test_openstack_cli import openstack


pytestmark = pytest.mark.slow


def real_node(data_dir: Path, *extra: str) -> Cloud:
    """A node with real guests and a real data plane; its external network is its own (bridge and
    range), so that nodes of several tests never meet, nor a cloud running on this machine.

    Its data dir is moved out of pytest's tmp dir, which the guests' user cannot search (see
    tests/guest_dirs.py): ``node.data_dir`` says where it is."""
    data_dir = guest_dir(data_dir, data_dir.parent.name) / data_dir.name
    node = Cloud(data_dir, free_port())
    n = node.port % 200 + 20
    node.init("--set", f"external_bridge=cbx{node.port}", "--set", f"external_cidr=172.25.{n}.0/24",
              *extra, compute="libvirt")
    return node


def external_gateway(node: Cloud) -> str:
    """The host's address on the node's external network."""
    import ipaddress

    settings = json.loads((node.data_dir / "cloudbox.json").read_text())
    return str(next(ipaddress.ip_network(settings["external_cidr"]).hosts()))


def stop_and_clean(node: Cloud) -> None:
    """Stop the node, then remove everything it made on the host (guests, their taps, bridges,
    namespaces, dnsmasq, nft tables): `cloudbox stop` leaves them so that guests and traffic go on."""
    node.stop()
    run_cli("teardown-host-network", "--data-dir", str(node.data_dir))
    # Its QEMU processes: guests a test left running (a stack's server, say: each burns a core of
    # TCG for the rest of the suite), and libvirt's capability probes orphaned by a kill mid-probe.
    from cloudbox.compute.driver.real import short_root

    marks = {f"{node.data_dir}/", f"{short_root(node.data_dir / 'libvirt')}/"}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "qemu-system" in cmdline and any(m in cmdline for m in marks):
                os.kill(int(pid), signal.SIGKILL)


def qemu_pid(server_id: str) -> int | None:
    """The QEMU process that runs this server's domain: what the hypervisor really does."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-system" in cmdline and f"guest=cloudbox-{server_id}".encode() in cmdline:
                return int(pid)
    return None


def qemu_running(server_id: str) -> bool:
    return qemu_pid(server_id) is not None


def assert_confined(server_id: str) -> None:
    """QEMU runs as the unprivileged guest user, in its seccomp sandbox, with no capabilities."""
    pid = qemu_pid(server_id)
    assert pid is not None
    user = subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True, text=True, check=True).stdout
    assert user.strip() == "libvirt-qemu"
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Seccomp"].strip() == "2" and status["NoNewPrivs"].strip() == "1"
    assert int(status["CapEff"], 16) == 0


def guest_user_reads(path: Path) -> bool:
    return subprocess.run(["setpriv", "--reuid=libvirt-qemu", "--regid=libvirt-qemu", "--init-groups", "cat", str(path)],
                          capture_output=True, timeout=30).returncode == 0


def admin_server(cloud: Cloud, server_id: str) -> dict:
    with cloud.client(cloud.token()) as admin:
        return admin.get(f"/compute/v2.1/servers/{server_id}").json()["server"]


def console(cloud: Cloud, server: str) -> str:
    return openstack(cloud, "console", "log", "show", server).stdout


@pytest.fixture(scope="module")
def node(tmp_path_factory, guest_image):
    node = real_node(tmp_path_factory.mktemp("real") / "data")
    node.start(timeout=120)
    yield node
    admin = node.client(node.token())
    for s in admin.get("/compute/v2.1/servers?all_tenants=1").json().get("servers", []):
        admin.delete(f"/compute/v2.1/servers/{s['id']}")
    for s in admin.get("/compute/v2.1/servers?all_tenants=1").json().get("servers", []):
        wait_gone(admin, s["id"])
    stop_and_clean(node)


def test_the_tutorial_with_the_real_cli(node: Cloud, guest_image: Path, tmp_path: Path):
    # Images: upload, list, show, download.
    image = json.loads(openstack(node, "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                                 "--file", str(guest_image), "cirros", "-f", "json").stdout)
    assert image["status"] == "active"
    shown = json.loads(openstack(node, "image", "show", "cirros", "-f", "json").stdout)
    assert shown["size"] == guest_image.stat().st_size
    import hashlib

    data = guest_image.read_bytes()
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    properties = shown.get("properties") or {}
    # openstackclient shows os_hash_value among the properties
    assert shown.get("os_hash_value", properties.get("os_hash_value")) == hashlib.sha512(data).hexdigest()
    openstack(node, "image", "save", "--file", str(tmp_path / "copy.qcow2"), "cirros")
    assert (tmp_path / "copy.qcow2").read_bytes() == data

    # Key pair and a server with user data, exactly as in the tutorial.
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True)
    openstack(node, "keypair", "create", "--public-key", str(tmp_path / "key.pub"), "demo")
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho user-data-says-hello > /tmp/hello\necho USERDATA-MARK\n")
    server = json.loads(openstack(node, "server", "create", "demo-instance1", "--flavor", "m1.tiny", "--image", "cirros",
                                  "--key-name", "demo", "--user-data", str(script), "--wait", "-f", "json").stdout)
    assert server["status"] == "ACTIVE"
    sid = server["id"]
    assert qemu_running(sid)
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(node, "demo-instance1"), 180, "the guest to finish booting")
    log = console(node, "demo-instance1")
    # No --nic and no --config-drive, as in the tutorial: the project's network is made for it
    # ("auto"), and the guest reads its metadata from 169.254.169.254.
    assert "CLOUDBOX-GUEST: metadata source=http" in log
    assert "CLOUDBOX-GUEST: hostname demo-instance1" in log
    assert "CLOUDBOX-GUEST: ssh-key installed 1" in log
    assert "CLOUDBOX-GUEST: user-data ran exit=0" in log and "USERDATA-MARK" in log
    [address] = [a["addr"] for addrs in admin_server(node, sid)["addresses"].values() for a in addrs]
    assert f"CLOUDBOX-GUEST: network eth0 {address}/" in log
    assert_confined(sid)
    assert not guest_user_reads(node.data_dir / "state.db")  # QEMU passes through the data dir, no more
    [cached] = (node.data_dir / "instances" / "_base").iterdir()
    assert (cached.stat().st_uid, cached.stat().st_mode & 0o777) == (0, 0o640)  # shared: read-only to guests

    # Lifecycle, checked against the hypervisor itself.
    openstack(node, "server", "stop", "demo-instance1")
    wait_for(lambda: json.loads(openstack(node, "server", "show", sid, "-f", "json").stdout)["status"] == "SHUTOFF",
             120, "SHUTOFF")
    assert not qemu_running(sid)
    openstack(node, "server", "start", "demo-instance1")
    wait_for(lambda: json.loads(openstack(node, "server", "show", sid, "-f", "json").stdout)["status"] == "ACTIVE",
             120, "ACTIVE after start")
    assert_confined(sid)
    openstack(node, "server", "reboot", "--hard", "--wait", "demo-instance1")
    assert qemu_running(sid)

    hv = json.loads(openstack(node, "hypervisor", "show", node_name(node), "-f", "json").stdout)
    assert hv["hypervisor_type"] == "QEMU"  # TCG here: KVM does not run guests on these machines

    # A snapshot that boots.
    openstack(node, "server", "image", "create", "--name", "snap", "--wait", "demo-instance1")
    snap = json.loads(openstack(node, "image", "show", "snap", "-f", "json").stdout)
    assert snap["status"] == "active" and snap["disk_format"] == "qcow2"
    from_snap = json.loads(openstack(node, "server", "create", "from-snap", "--flavor", "m1.tiny", "--image", "snap",
                                     "--wait", "-f", "json").stdout)
    assert from_snap["status"] == "ACTIVE"
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(node, "from-snap"), 180, "the snapshot's guest to boot")
    assert "CLOUDBOX-GUEST: hostname from-snap" in console(node, "from-snap")

    openstack(node, "server", "delete", "--wait", "demo-instance1", "from-snap")
    assert not qemu_running(sid)
    assert not (node.data_dir / "instances" / sid).exists()

    # The freed address goes to the next server, whose new MAC must still get its DHCP lease.
    again = json.loads(openstack(node, "server", "create", "again", "--flavor", "m1.tiny", "--image", "cirros",
                                 "--wait", "-f", "json").stdout)
    ip = next(iter(again["addresses"].values()))[0] if isinstance(again["addresses"], dict) else str(again["addresses"])
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(node, "again"), 180, "the third guest to boot")
    [address] = [a["addr"] for addrs in admin_server(node, again["id"])["addresses"].values() for a in addrs]
    assert f"CLOUDBOX-GUEST: network eth0 {address}/" in console(node, "again"), ip
    openstack(node, "server", "delete", "--wait", "again")
    assert not (node.data_dir / "instances" / again["id"]).exists()


def node_name(node: Cloud) -> str:
    return json.loads((node.data_dir / "node.json").read_text())["name"]


def test_kill_9_while_servers_boot_loses_nothing(tmp_path: Path, guest_image: Path):
    node = real_node(tmp_path / "data")
    node.start(timeout=120)
    try:
        admin = node.client(node.token())
        image = upload_image(admin, guest_image)
        ids = [boot(admin, image["id"], flavor="42")["id"] for _ in range(4)]
        time.sleep(0.5)  # some are mid-build: claimed, disks half made, domains starting
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait()
        node.start(timeout=120)
        admin = node.client(node.token())
        final = [wait_server(admin, sid, {"ACTIVE", "ERROR"}, timeout=180) for sid in ids]
        assert len(final) == 4
        assert all(s["status"] == "ACTIVE" for s in final), [s.get("fault") for s in final]
        for sid in ids:
            assert qemu_running(sid)
        for sid in ids:
            admin.delete(f"/compute/v2.1/servers/{sid}")
        for sid in ids:
            wait_gone(admin, sid)
        wait_for(lambda: not any(qemu_running(sid) for sid in ids), 60, "no guest left")
        leftovers = [p.name for p in (node.data_dir / "instances").iterdir() if p.name != "_base"]
        assert leftovers == []
    finally:
        stop_and_clean(node)


def test_guests_outlive_cloudbox_and_are_adopted(tmp_path: Path, guest_image: Path):
    node = real_node(tmp_path / "data")
    node.start(timeout=120)
    try:
        admin = node.client(node.token())
        image = upload_image(admin, guest_image)
        keep = boot(admin, image["id"])["id"]
        vanish = boot(admin, image["id"])["id"]
        for sid in (keep, vanish):
            wait_server(admin, sid, {"ACTIVE"})
        node.stop()
        assert qemu_running(keep), "stopping cloudbox must not stop guests"
        kill_guest(vanish)  # behind cloudbox's back, while it is down
        node.start(timeout=120)
        admin = node.client(node.token())
        assert wait_server(admin, keep, {"ACTIVE"})["status"] == "ACTIVE"
        assert_confined(keep)  # adopted as it ran
        gone = wait_server(admin, vanish, {"SHUTOFF", "ERROR"})
        assert gone["status"] in ("SHUTOFF", "ERROR")
        for sid in (keep, vanish):
            admin.delete(f"/compute/v2.1/servers/{sid}")
            wait_gone(admin, sid)
    finally:
        stop_and_clean(node)


def kill_guest(server_id: str) -> None:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if f"guest=cloudbox-{server_id}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def test_a_guest_killed_while_cloudbox_runs_is_seen_at_once(node: Cloud, guest_image: Path):
    admin = node.client(node.token())
    image = upload_image(admin, guest_image)
    sid = boot(admin, image["id"])["id"]
    wait_server(admin, sid, {"ACTIVE"})
    kill_guest(sid)
    # libvirt's lifecycle event reaches cloudbox well before its 30 s reconcile pass would.
    server = wait_server(admin, sid, {"SHUTOFF"}, timeout=15)
    assert server["OS-EXT-STS:vm_state"] == "stopped"
    assert admin.post(f"/compute/v2.1/servers/{sid}/action", json={"os-start": None}).status_code == 202
    wait_server(admin, sid, {"ACTIVE"})
    assert qemu_running(sid)
    admin.delete(f"/compute/v2.1/servers/{sid}")
    wait_gone(admin, sid)


def test_ten_boots_with_room_for_eight(node: Cloud, guest_image: Path):
    admin = node.client(node.token())
    image = upload_image(admin, guest_image, visibility="public")
    final = boot_ten_with_room_for_eight(node, admin, image["id"], timeout=300)
    ids = [s["id"] for s in final]
    active = [s for s in final if s["status"] == "ACTIVE"]
    assert len(active) == 8
    assert all(s["fault"]["message"].startswith("No valid host") for s in final if s["status"] == "ERROR")
    assert sum(qemu_running(s["id"]) for s in final) == 8
    for sid in ids:
        admin.delete(f"/compute/v2.1/servers/{sid}")
    for sid in ids:
        wait_gone(admin, sid, timeout=120)

"""Guests' QEMU runs unprivileged: the pure pieces (domain XML with its backing chain, libvirt's
capabilities, qemu.conf), the host pieces (POSIX ACL grants, sealing the data dir, backing files,
/dev/kvm) checked by acting as the guest user, and a guest started by a root QEMU before this
change that a new driver adopts and restarts unprivileged."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import textwrap
import uuid as uuid_module
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio

from cloudbox.compute import core, disks
from cloudbox.compute.driver import DomainSpec
from cloudbox.compute.driver import confinement as conf
from cloudbox.errors import Unavailable
from tests.guest_dirs import guest_dir

REPO = Path(__file__).resolve().parent.parent
GUEST_USER = conf.DEFAULT_GUEST_USER


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


needs_guest_user = pytest.mark.skipif(
    os.geteuid() != 0 or not _user_exists(GUEST_USER), reason=f"needs root and the user {GUEST_USER}"
)


def spec(directory: str = "/data/instances/u1") -> DomainSpec:
    uuid = "0b0e6a4c-6a39-4d6c-9d57-3f2d7a1f2b10"
    return DomainSpec(
        uuid=uuid, name=core.domain_name(uuid), vcpus=1, memory_mb=64, root_disk=f"{directory}/disk",
        console_log=f"{directory}/console.log", accel="tcg", config_drive=f"{directory}/config.iso",
    )


# --- the domain XML ------------------------------------------------------------------------


def test_backing_chain_is_stated_and_never_relabelled():
    xml = core.render_domain_xml(spec())
    assert conf.disks_without_chain(xml) == ["/data/instances/u1/disk"]
    chained = conf.with_backing_chains(xml, {"/data/instances/u1/disk": [("/data/_base/a", "qcow2"), ("/img/b", "raw")]})
    [disk] = ET.fromstring(chained).findall("devices/disk[@device='disk']")
    first = disk.find("backingStore")
    assert first.get("type") == "file" and first.find("format").get("type") == "qcow2"
    assert first.find("source").get("file") == "/data/_base/a"
    assert first.find("source/seclabel").attrib == {"model": "dac", "relabel": "no"}
    second = first.find("backingStore")
    assert second.find("format").get("type") == "raw" and second.find("source").get("file") == "/img/b"
    end = second.find("backingStore")
    assert end is not None and len(end) == 0 and not end.attrib  # the chain ends: libvirt probes nothing
    assert conf.backing_files(chained) == ["/data/_base/a", "/img/b"]
    assert conf.disks_without_chain(chained) == []
    assert conf.with_backing_chains(chained, {"/data/instances/u1/disk": [("/other", "qcow2")]}) == chained
    assert core.parse_domain_metadata(chained) == core.parse_domain_metadata(xml)


def test_an_image_without_backing_file_says_so():
    xml = conf.with_backing_chains(core.render_domain_xml(spec()), {"/data/instances/u1/disk": []})
    [disk] = ET.fromstring(xml).findall("devices/disk[@device='disk']")
    assert [(child.tag, len(child)) for child in disk if child.tag == "backingStore"] == [("backingStore", 0)]


def test_guest_paths_are_every_file_qemu_opens():
    xml = conf.with_backing_chains(core.render_domain_xml(spec()), {"/data/instances/u1/disk": [("/data/_base/a", "qcow2")]})
    assert set(conf.guest_paths(xml)) == {
        "/data/instances/u1/disk", "/data/_base/a", "/data/instances/u1/config.iso", core.serial_socket(spec().uuid),
    }


CAPABILITIES = """<capabilities><host><uuid>x</uuid>
  <secmodel><model>none</model><doi>0</doi></secmodel>
  <secmodel><model>dac</model><doi>0</doi>
    <baselabel type='kvm'>+{uid}:+{gid}</baselabel><baselabel type='qemu'>+{uid}:+{gid}</baselabel></secmodel>
</host></capabilities>"""


def test_identity_comes_from_libvirts_dac_label():
    uid = os.getuid()
    identity = conf.identity_from_capabilities(CAPABILITIES.format(uid=uid, gid=4242))
    assert identity is not None and (identity.uid, identity.gid) == (uid, 4242) and 4242 in identity.groups
    assert conf.security_models(CAPABILITIES.format(uid=1, gid=1)) == ["none", "dac"]
    without_dac = "<capabilities><host><secmodel><model>none</model></secmodel></host></capabilities>"
    assert conf.identity_from_capabilities(without_dac) is None


@needs_guest_user
def test_embedded_qemu_conf_runs_guests_unprivileged_and_sandboxed():
    identity = conf.guest_identity(GUEST_USER)
    assert identity.uid != 0 and identity.gid != 0
    text = conf.embed_qemu_conf(identity)
    settings = dict(line.split(" = ") for line in text.splitlines() if " = " in line)
    assert settings["user"] == f'"{GUEST_USER}"' and settings["group"] != '"root"'
    assert settings["dynamic_ownership"] == "1" and settings["seccomp_sandbox"] == "1"


def test_root_or_a_missing_user_is_refused():
    with pytest.raises(Unavailable, match="is root"):
        conf.guest_identity("root")
    with pytest.raises(Unavailable, match="does not exist"):
        conf.guest_identity("no-such-user-for-cloudbox")


def test_apparmor_finding_says_what_this_host_has():
    finding = conf.apparmor_finding(embedded=True)
    assert finding.startswith("AppArmor: ")
    if not conf.APPARMOR_ENABLED.exists():
        assert "not in this kernel" in finding


# --- the host: acting as the guest user -------------------------------------------------


def as_guest(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={GUEST_USER}", f"--regid={GUEST_USER}", "--init-groups", *command],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def guest() -> conf.GuestIdentity:
    return conf.guest_identity(GUEST_USER)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A private (0700) data dir with a 0644 state file in it, like `cloudbox init` makes."""
    data = guest_dir(tmp_path, "acl") / "data"
    data.mkdir(mode=0o700)
    (data / "state.db").write_text("secrets")
    (data / "state.db").chmod(0o644)
    (data / "logs").mkdir(mode=0o755)
    (data / "logs" / "node.log").write_text("log")
    (data / "instances" / "u1").mkdir(parents=True)
    (data / "instances" / "u1" / "disk").write_text("disk")
    return data


@needs_guest_user
def test_guest_searches_the_data_dir_and_reads_nothing_else(data_dir: Path, guest: conf.GuestIdentity):
    disk = data_dir / "instances" / "u1" / "disk"
    assert as_guest("cat", str(disk)).returncode != 0
    assert conf.ensure_reachable([disk], guest, [data_dir]) == [data_dir]
    assert conf.ensure_reachable([disk], guest, [data_dir]) == []  # nothing left to do
    assert as_guest("cat", str(disk)).stdout == "disk"
    assert as_guest("ls", str(data_dir)).returncode != 0  # search, not list
    assert as_guest("cat", str(data_dir / "state.db")).stdout == "secrets"  # until the data dir is sealed
    assert set(conf.seal(data_dir, [data_dir / "instances"], guest)) == {"state.db", "logs"}
    assert (data_dir / "state.db").stat().st_mode & 0o777 == 0o640
    assert (data_dir / "logs").stat().st_mode & 0o777 == 0o750
    assert as_guest("cat", str(data_dir / "state.db")).returncode != 0
    assert as_guest("cat", str(data_dir / "logs" / "node.log")).returncode != 0
    assert as_guest("cat", str(disk)).stdout == "disk"
    # Other users gain nothing: "nobody" still cannot pass.
    nobody = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat", str(disk)],
                            capture_output=True, timeout=30)
    assert nobody.returncode != 0


@needs_guest_user
def test_a_data_dir_open_to_others_is_not_sealed(tmp_path: Path, guest: conf.GuestIdentity):
    data = guest_dir(tmp_path, "open") / "data"
    data.mkdir(mode=0o755)
    (data / "readme").write_text("x")
    (data / "readme").chmod(0o644)
    assert conf.seal(data, [], guest) == []
    assert (data / "readme").stat().st_mode & 0o777 == 0o644


@needs_guest_user
def test_directories_above_the_nodes_own_are_never_changed(tmp_path: Path, guest: conf.GuestIdentity):
    outer = guest_dir(tmp_path, "outer", mode=0o700)
    data = outer / "data"
    (data / "instances").mkdir(parents=True)
    before = os.stat(outer).st_mode
    with pytest.raises(Unavailable, match=f"cannot search {outer}, which is outside"):
        conf.ensure_reachable([data / "instances" / "disk"], guest, [data])
    assert os.stat(outer).st_mode == before
    with pytest.raises(OSError):
        os.getxattr(outer, conf.ACL_XATTR)


@needs_guest_user
def test_backing_files_are_readable_not_writable_by_guests(data_dir: Path, guest: conf.GuestIdentity):
    base = data_dir / "instances" / "_base" / "image"
    base.parent.mkdir()
    base.write_text("image")
    base.chmod(0o644)
    conf.ensure_reachable([base], guest, [data_dir])
    conf.make_backing_readable(base, guest, [data_dir])
    st = base.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, guest.gid, 0o640)
    assert as_guest("cat", str(base)).stdout == "image"
    assert as_guest("sh", "-c", f"echo x >> {base}").returncode != 0
    assert base.read_text() == "image"
    # A backing file outside the node's directories is left as it is, and must be readable.
    elsewhere = guest_dir(data_dir, "img") / "image"
    elsewhere.write_text("x")
    elsewhere.chmod(0o600)
    with pytest.raises(Unavailable, match="cannot read the backing file"):
        conf.make_backing_readable(elsewhere, guest, [data_dir])
    elsewhere.chmod(0o644)
    conf.make_backing_readable(elsewhere, guest, [data_dir])
    assert elsewhere.stat().st_mode & 0o777 == 0o644


@needs_guest_user
def test_kvm_device_is_opened_to_its_group_as_udev_does(tmp_path: Path, guest: conf.GuestIdentity):
    import grp

    kvm = grp.getgrnam("kvm").gr_gid
    if kvm not in guest.groups:
        pytest.skip(f"{GUEST_USER} is not in group kvm")
    device = tmp_path / "kvm"  # a stand-in: the real /dev/kvm is the host's
    device.write_text("")
    os.chown(device, 0, 0)
    device.chmod(0o600)
    assert "made group kvm read-write" in conf.ensure_kvm_access(guest, device)
    st = device.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, kvm, 0o660)
    assert "opens for" in conf.ensure_kvm_access(guest, device)


# --- a guest of a root QEMU (before this change), adopted -------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys, trio
    from pathlib import Path
    from cloudbox.compute import core
    from cloudbox.compute.driver import DomainSpec, RUNNING
    from cloudbox.compute.driver import confinement, real
    from cloudbox.compute.driver._libvirt import libvirt

    LEGACY_CONF = 'user = "root"\\ngroup = "root"\\nstdio_handler = "file"\\nremember_owner = 0\\n'

    def legacy_create(root, spec):
        # What cloudbox did before: QEMU as root, the domain XML without its backing chain.
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc" / "qemu.conf").write_text(LEGACY_CONF)
        real.ensure_event_loop()
        conn = libvirt.open(f"qemu:///embed?root={real.short_root(root)}")
        conn.defineXML(core.render_domain_xml(spec)).create()
        return {"state": "running"}

    async def adopt(uri, instances, spec):
        driver = real.LibvirtDriver(uri, Path(instances))
        await driver.open()
        listed = {d.uuid: d.state for d in await driver.list_domains()}
        await driver.stop(spec.uuid, graceful=False)
        await driver.start(spec.uuid)
        xml = await trio.to_thread.run_sync(lambda: driver._lookup(spec.uuid).XMLDesc(0))
        result = {"listed": listed.get(spec.uuid), "state": await driver.get_state(spec.uuid),
                  "backing": json.dumps(confinement.backing_files(xml)),
                  "confinement": driver.confinement}
        await driver.close()
        return result

    async def create(uri, instances, spec):
        driver = real.LibvirtDriver(uri, Path(instances))
        await driver.open()
        await driver.create(spec)
        result = {"state": await driver.get_state(spec.uuid), "confinement": driver.confinement}
        await driver.close()
        return result

    async def destroy(uri, instances, spec):
        driver = real.LibvirtDriver(uri, Path(instances))
        await driver.open()
        await driver.destroy(spec.uuid)
        await driver.close()
        return {}

    action, uri, instances, spec_json = sys.argv[1:]
    spec = DomainSpec(**json.loads(spec_json))
    if action == "legacy":
        print(json.dumps(legacy_create(real.embed_root(uri), spec)))
    else:
        print(json.dumps(trio.run({"adopt": adopt, "create": create, "destroy": destroy}[action], uri, instances, spec)))
    """
)


async def run_child(*args: str) -> dict:
    with trio.fail_after(120):
        result = await trio.run_process(
            [sys.executable, "-c", CHILD, *args], capture_stdout=True, capture_stderr=True, check=False, cwd=REPO
        )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def qemu_user(pidfile: Path) -> str:
    pid = pidfile.read_text().strip()
    return subprocess.run(["ps", "-o", "user=", "-p", pid], capture_output=True, text=True, check=True).stdout.strip()


def seccomp(pidfile: Path) -> str:
    status = Path(f"/proc/{pidfile.read_text().strip()}/status").read_text()
    return next(line.split(":")[1].strip() for line in status.splitlines() if line.startswith("Seccomp:"))


async def guest_files(tmp_path: Path, name: str) -> tuple[Path, dict]:
    """A private data dir with a cached image and one instance's overlay on it; the spec's values."""
    data = guest_dir(tmp_path, name) / "data"
    data.mkdir(mode=0o700)
    instances = data / "instances"
    base = instances / "_base" / "image"
    base.parent.mkdir(parents=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True, timeout=30)
    uuid = str(uuid_module.uuid4())
    (instances / uuid).mkdir()
    await disks.create_overlay(base, "qcow2", instances / uuid / "disk", 0)
    values = {"uuid": uuid, "name": core.domain_name(uuid), "vcpus": 1, "memory_mb": 64,
              "root_disk": str(instances / uuid / "disk"), "console_log": str(instances / uuid / "console.log"),
              "accel": "tcg", "metadata": {"project_id": "p1"}}
    return data, values


@needs_guest_user
async def test_a_guest_of_a_root_qemu_is_adopted_and_restarts_unprivileged(tmp_path: Path):
    data, values = await guest_files(tmp_path, "legacy")
    root, instances = data / "libvirt", data / "instances"
    base = instances / "_base" / "image"
    uri, spec_json = f"qemu:///embed?root={root}", json.dumps(values)
    pidfile = root / "run" / "qemu" / f"{values['name']}.pid"
    try:
        await run_child("legacy", uri, str(instances), spec_json)
        assert qemu_user(pidfile) == "root"
        adopted = await run_child("adopt", uri, str(instances), spec_json)
        assert adopted["listed"] == "running" and adopted["state"] == "running"
        assert qemu_user(pidfile) == GUEST_USER
        assert f"QEMU runs as {GUEST_USER}" in adopted["confinement"]
        # Its definition now states the chain, so the shared image stayed root's and read-only to guests.
        assert json.loads(adopted["backing"]) == [str(base)]
        st = base.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (0, 0o640)
    finally:
        if pidfile.exists():
            await run_child("destroy", uri, str(instances), spec_json)
        from cloudbox.compute.driver.real import short_root

        link = short_root(root)
        if link != root.absolute():
            link.unlink(missing_ok=True)


def _daemon_pids(name: str) -> set[int]:
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


@needs_guest_user
async def test_qemu_system_confines_guests_too(tmp_path: Path):
    """libvirt_uri = qemu:///system: libvirtd's own qemu.conf (Debian's: libvirt-qemu, seccomp on) runs
    the guest; the driver learns whom from libvirt and prepares the same files.  libvirtd and virtlogd
    are started if they are not running, and stopped again at the end if this test started them."""
    running_before = _daemon_pids("libvirtd") | _daemon_pids("virtlogd")
    data, values = await guest_files(tmp_path, "system")
    spec_json, instances = json.dumps(values), str(data / "instances")
    pidfile = Path("/run/libvirt/qemu") / f"{values['name']}.pid"
    try:
        created = await run_child("create", "qemu:///system", instances, spec_json)
        assert created["state"] == "running"
        assert f"QEMU runs as {GUEST_USER}" in created["confinement"]
        assert qemu_user(pidfile) == GUEST_USER and seccomp(pidfile) == "2"
        st = (data / "instances" / "_base" / "image").stat()
        assert (st.st_uid, st.st_mode & 0o777) == (0, 0o640)
    finally:
        await run_child("destroy", "qemu:///system", instances, spec_json)
        for pid in (_daemon_pids("libvirtd") | _daemon_pids("virtlogd")) - running_before:
            os.kill(pid, 15)


def test_the_guest_user_setting_reaches_the_driver(tmp_path: Path):
    from types import SimpleNamespace

    from cloudbox.server import Node
    from cloudbox.settings import SETTINGS

    assert next(s for s in SETTINGS if s.name == "guest_user").default == GUEST_USER
    settings = SimpleNamespace(compute_driver="libvirt", libvirt_uri="", guest_user="someone")
    driver = Node._compute_driver(SimpleNamespace(settings=settings, data_dir=SimpleNamespace(root=tmp_path)))
    assert driver.guest_user == "someone" and driver.uri == f"qemu:///embed?root={tmp_path / 'libvirt'}"

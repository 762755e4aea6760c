"""One contract, two hypervisor drivers: FakeDriver always, LibvirtDriver with real QEMU guests.

The real guests have an empty disk: SeaBIOS starts, prints its banner on the
serial console and waits for a bootable disk, which is all the lifecycle
needs.  libvirt's embedded driver can open only one root per process, so
every real test shares one root; the test that domains outlive their process
uses two child processes on a root of its own.  Real guests' files live in
guest_dir()s, not under pytest's tmp dir (see tests/guest_dirs.py).
If firmware/build/guest.qcow2 exists, one test boots it with a config drive.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import textwrap
import time
import uuid as uuid_module
from pathlib import Path

import pytest
import trio

from cloudbox.compute import core, disks
from cloudbox.compute.driver import PAUSED, RUNNING, SHUTOFF, SUSPENDED, DomainSpec, NicSpec
from cloudbox.compute.driver.fake import FakeDriver, forget_host
from cloudbox.errors import Conflict, NotFound
from tests.cloud import wait_for_async
from tests.guest_dirs import guest_dir

REPO = Path(__file__).resolve().parent.parent

# Not imported here: cloudbox's driver must be the first to import libvirt (it sets libvirt's logging up).
HAVE_LIBVIRT_PYTHON = importlib.util.find_spec("libvirt") is not None

REAL_OK = (
    HAVE_LIBVIRT_PYTHON
    and shutil.which("qemu-system-x86_64") is not None
    and shutil.which("qemu-img") is not None
    and os.geteuid() == 0
)
needs_real = pytest.mark.skipif(not REAL_OK, reason="needs root, libvirt-python, qemu-system-x86_64 and qemu-img")
needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")

TIMEOUT = 30  # seconds for any one state change of a real TCG guest on a busy 2-core machine


class Backend:
    """Makes drivers on one hypervisor "host" and specs for it; remembers what to clean up."""

    def __init__(self, kind: str, uri: str, instances_dir: Path, base_disk: Path | None) -> None:
        self.kind = kind
        self.uri = uri
        self.instances_dir = instances_dir
        self.base_disk = base_disk
        self.created: list[str] = []
        # What the guest prints on its console when it starts (and again after a reset).
        self.console_marker = b"SeaBIOS" if kind == "libvirt" else b"fake guest"

    def new_driver(self):
        if self.kind == "libvirt":
            from cloudbox.compute.driver.real import LibvirtDriver

            return LibvirtDriver(self.uri, self.instances_dir)
        return FakeDriver(self.uri, self.instances_dir)

    async def spec(self, *, metadata: dict[str, str] | None = None, **changes) -> DomainSpec:
        uuid = str(uuid_module.uuid4())
        directory = self.instances_dir / uuid
        directory.mkdir(parents=True)
        disk = directory / "disk"
        if self.base_disk is not None:
            await disks.create_overlay(self.base_disk, "qcow2", disk, 0)
        self.created.append(uuid)
        values = dict(
            uuid=uuid,
            name=core.domain_name(uuid),
            vcpus=1,
            memory_mb=64,
            root_disk=str(disk),
            console_log=str(directory / "console.log"),
            accel="tcg",
            metadata=metadata or {"project_id": "p1"},
        )
        values.update(changes)
        return DomainSpec(**values)


@pytest.fixture(scope="session")
def libvirt_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Short: QEMU's monitor socket path under it must stay below 108 bytes.
    return guest_dir(tmp_path_factory.getbasetemp(), "lv")


@pytest.fixture(scope="session")
def base_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = guest_dir(tmp_path_factory.getbasetemp(), "base") / "empty.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True, timeout=30)
    return path


@pytest.fixture
def guest_tmp(tmp_path: Path) -> Path:
    """This test's directory for real guests' files (the data dir its driver owns)."""
    return guest_dir(tmp_path, "t")


@pytest.fixture(params=["fake", "libvirt"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "fake":
        uri = f"fake://{tmp_path}"
        yield Backend("fake", uri, tmp_path / "instances", None)
        forget_host(uri)
        return
    if not REAL_OK:
        pytest.skip("needs root, libvirt-python, qemu-system-x86_64 and qemu-img")
    root = request.getfixturevalue("libvirt_root")
    instances = request.getfixturevalue("guest_tmp") / "instances"
    yield Backend("libvirt", f"qemu:///embed?root={root}", instances, request.getfixturevalue("base_disk"))


@pytest.fixture
async def driver(backend: Backend):
    driver = backend.new_driver()
    await driver.open()
    yield driver
    with trio.move_on_after(60) as cleanup:
        cleanup.shield = True
        await driver.close()  # no-op if the test closed it
        # A fresh driver cleans up, whatever state the test left its own in.
        cleaner = backend.new_driver()
        await cleaner.open()
        for uuid in backend.created:
            await cleaner.destroy(uuid)
        await cleaner.close()


async def wait_event(driver, uuid: str, state: str, timeout: float = TIMEOUT) -> None:
    with trio.fail_after(timeout):
        async for event_uuid, event_state in driver.events():
            if (event_uuid, event_state) == (uuid, state):
                return


async def wait_console(path: str, marker: bytes, count: int = 1, timeout: float = TIMEOUT) -> bytes:
    """The console log once ``marker`` appears ``count`` times (a file can only be polled)."""

    def seen() -> bytes | None:
        data = Path(path).read_bytes() if Path(path).exists() else b""
        return data if data.count(marker) >= count else None

    return await wait_for_async(seen, timeout, f"{marker!r} {count} time(s) in {path}", every=0.1)


# --- the contract ----------------------------------------------------------------------


async def test_host_info(driver, backend, monkeypatch, tmp_path):
    info = await driver.host_info()
    assert info.hostname and info.vcpus >= 1 and info.memory_mb >= 256 and info.disk_gb >= 0
    assert info.hypervisor_type == "QEMU" and info.hypervisor_version > 1_000_000
    assert info.accel in ("kvm", "tcg") and info.accel_detail
    if backend.kind == "libvirt":
        print(f"\naccel={info.accel}: {info.accel_detail}")
        if not os.path.exists("/dev/kvm"):
            assert info.accel == "tcg"
        # The verdict is cached per process: asking again does not boot another probe.
        from cloudbox.compute.driver import kvm_probe

        def no_probe(*_args: object) -> None:
            raise AssertionError("a second probe")

        monkeypatch.setattr(kvm_probe, "_probe", no_probe)
        monkeypatch.setattr(kvm_probe, "load_host_verdict", no_probe)
        assert (await driver.host_info()).accel == info.accel
        # The embedded driver's version is read from QEMU itself; libvirt says the same (asked in another
        # process: getVersion() makes libvirt learn every QEMU binary, and keep that, in its caller).
        script = ("import libvirt, sys; libvirt.virEventRegisterDefaultImpl(); "
                  "print(libvirt.open('qemu:///embed?root=' + sys.argv[1]).getVersion())")
        said = subprocess.run([sys.executable, "-c", script, str(tmp_path / "lv")], capture_output=True, text=True,
                              timeout=120, check=True).stdout
        assert info.hypervisor_version == int(said)
    else:
        assert info.accel == "tcg"


async def test_create_runs_and_reports(driver, backend):
    spec = await backend.spec(metadata={"project_id": "p1", "flavor": "m1.tiny"})
    started = time.monotonic()
    await driver.create(spec)
    await wait_event(driver, spec.uuid, RUNNING)
    running_after = time.monotonic() - started
    assert await driver.get_state(spec.uuid) == RUNNING
    await wait_console(spec.console_log, backend.console_marker)
    console_after = time.monotonic() - started
    print(f"\n{backend.kind}: running after {running_after:.2f} s, console output after {console_after:.2f} s")
    listed = {d.uuid: d for d in await driver.list_domains()}
    assert listed[spec.uuid].name == spec.name
    assert listed[spec.uuid].state == RUNNING
    assert listed[spec.uuid].metadata == {"project_id": "p1", "flavor": "m1.tiny"}
    with pytest.raises(Conflict):
        await driver.create(spec)  # already running


async def test_stop_and_start(driver, backend):
    spec = await backend.spec()
    await driver.create(spec)
    await wait_event(driver, spec.uuid, RUNNING)
    await driver.stop(spec.uuid, graceful=False)
    await wait_event(driver, spec.uuid, SHUTOFF)
    assert await driver.get_state(spec.uuid) == SHUTOFF
    await driver.stop(spec.uuid)  # already off: nothing to do
    await driver.start(spec.uuid)
    await wait_event(driver, spec.uuid, RUNNING)
    await driver.start(spec.uuid)  # already running: nothing to do
    # A guest sitting in its BIOS ignores the ACPI power button: stop falls back to destroy.
    await driver.stop(spec.uuid, graceful=True, timeout=1)
    await wait_event(driver, spec.uuid, SHUTOFF)
    assert await driver.get_state(spec.uuid) == SHUTOFF
    with pytest.raises(Conflict):
        await driver.pause(spec.uuid)


async def test_reboot(driver, backend):
    spec = await backend.spec()
    await driver.create(spec)
    await wait_event(driver, spec.uuid, RUNNING)
    await wait_console(spec.console_log, backend.console_marker)
    await driver.reboot(spec.uuid, hard=True)
    # A reset restarts the firmware: its banner appears a second time.
    await wait_console(spec.console_log, backend.console_marker, count=2)
    assert await driver.get_state(spec.uuid) == RUNNING
    await driver.reboot(spec.uuid)  # soft: asks the guest; this one ignores it and stays up
    assert await driver.get_state(spec.uuid) == RUNNING
    await driver.stop(spec.uuid, graceful=False)
    await wait_event(driver, spec.uuid, SHUTOFF)
    with pytest.raises(Conflict):
        await driver.reboot(spec.uuid)
    await driver.reboot(spec.uuid, hard=True)  # a hard reboot gets it running from anything
    await wait_event(driver, spec.uuid, RUNNING)


async def test_pause_and_unpause(driver, backend):
    spec = await backend.spec()
    await driver.create(spec)
    await wait_event(driver, spec.uuid, RUNNING)
    await driver.pause(spec.uuid)
    await wait_event(driver, spec.uuid, PAUSED)
    assert await driver.get_state(spec.uuid) == PAUSED
    await driver.pause(spec.uuid)  # no-op
    await driver.unpause(spec.uuid)
    await wait_event(driver, spec.uuid, RUNNING)
    assert await driver.get_state(spec.uuid) == RUNNING


async def test_suspend_and_resume(driver, backend):
    spec = await backend.spec()
    await driver.create(spec)
    await wait_event(driver, spec.uuid, RUNNING)
    started = time.monotonic()
    await driver.suspend(spec.uuid)
    await wait_event(driver, spec.uuid, SUSPENDED)
    suspended_after = time.monotonic() - started
    assert await driver.get_state(spec.uuid) == SUSPENDED
    assert {d.uuid: d.state for d in await driver.list_domains()}[spec.uuid] == SUSPENDED
    with pytest.raises(Conflict):
        await driver.pause(spec.uuid)
    started = time.monotonic()
    await driver.resume(spec.uuid)
    await wait_event(driver, spec.uuid, RUNNING)
    print(f"\n{backend.kind}: suspend {suspended_after:.2f} s, resume {time.monotonic() - started:.2f} s")
    assert await driver.get_state(spec.uuid) == RUNNING
    # Stopping a suspended server drops its saved memory.
    await driver.suspend(spec.uuid)
    await wait_event(driver, spec.uuid, SUSPENDED)
    await driver.stop(spec.uuid)
    await wait_event(driver, spec.uuid, SHUTOFF)
    assert await driver.get_state(spec.uuid) == SHUTOFF


async def test_destroy_removes_the_domain(driver, backend):
    spec = await backend.spec()
    await driver.create(spec)
    await wait_event(driver, spec.uuid, RUNNING)
    await driver.destroy(spec.uuid)
    await wait_event(driver, spec.uuid, SHUTOFF)
    assert await driver.get_state(spec.uuid) is None
    assert spec.uuid not in {d.uuid for d in await driver.list_domains()}
    await driver.destroy(spec.uuid)  # absent: no error
    # A destroyed domain can be created again under the same uuid.
    await driver.create(spec)
    await wait_event(driver, spec.uuid, RUNNING)


async def test_unknown_domain(driver):
    missing = str(uuid_module.uuid4())
    assert await driver.get_state(missing) is None
    for operation in ("start", "stop", "reboot", "pause", "unpause", "suspend", "resume"):
        with pytest.raises(NotFound):
            await getattr(driver, operation)(missing)
    await driver.destroy(missing)


async def test_adoption_by_a_new_driver(driver, backend):
    spec = await backend.spec(metadata={"project_id": "p9", "server_name": "adopted"})
    await driver.create(spec)
    await wait_event(driver, spec.uuid, RUNNING)
    await driver.close()
    again = backend.new_driver()
    await again.open()
    try:
        listed = {d.uuid: d for d in await again.list_domains()}
        assert listed[spec.uuid].state == RUNNING
        assert listed[spec.uuid].metadata == {"project_id": "p9", "server_name": "adopted"}
        await again.pause(spec.uuid)  # the new driver controls it and hears its events
        await wait_event(again, spec.uuid, PAUSED)
    finally:
        await again.close()


# --- real libvirt only ------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys, trio
    from pathlib import Path
    from cloudbox.compute.driver import DomainSpec
    from cloudbox.compute.driver.real import LibvirtDriver

    async def main(action, uri, instances, spec_json):
        driver = LibvirtDriver(uri, Path(instances))
        await driver.open()
        spec = DomainSpec(**json.loads(spec_json))
        if action == "create":
            await driver.create(spec)
            print(json.dumps({"state": await driver.get_state(spec.uuid)}))
        else:
            listed = {d.uuid: [d.state, d.metadata] for d in await driver.list_domains()}
            await driver.destroy(spec.uuid)
            print(json.dumps({"listed": listed.get(spec.uuid), "after": await driver.get_state(spec.uuid)}))
        await driver.close()

    trio.run(main, *sys.argv[1:])
    """
)


async def run_child(*args: str) -> dict:
    with trio.fail_after(90):
        result = await trio.run_process(
            [sys.executable, "-c", CHILD, *args], capture_stdout=True, capture_stderr=True, check=False, cwd=REPO
        )
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


@needs_real
async def test_domains_outlive_their_process(guest_tmp, libvirt_root, base_disk):
    """A guest started by one process keeps running after it exits; the next process adopts it."""
    root = guest_tmp / "a-root-too-long-for-qemu-sockets"  # exercises the short symlink too
    # Re-use the session root's QEMU capabilities cache: probing QEMU afresh costs seconds.
    cache = libvirt_root / "cache" / "qemu"
    if cache.is_dir():
        shutil.copytree(cache, root / "cache" / "qemu")
    uri = f"qemu:///embed?root={root}"
    uuid = str(uuid_module.uuid4())
    instance = guest_tmp / "instances" / uuid
    instance.mkdir(parents=True)
    await disks.create_overlay(base_disk, "qcow2", instance / "disk", 0)
    spec = {
        "uuid": uuid,
        "name": core.domain_name(uuid),
        "vcpus": 1,
        "memory_mb": 64,
        "root_disk": str(instance / "disk"),
        "console_log": str(instance / "console.log"),
        "accel": "tcg",
        "metadata": {"project_id": "p1"},
    }
    try:
        assert (await run_child("create", uri, str(guest_tmp / "instances"), json.dumps(spec)))["state"] == RUNNING
        pid = int((root / "run" / "qemu" / f"{spec['name']}.pid").read_text())
        os.kill(pid, 0)  # QEMU is still there after its parent exited
        adopted = await run_child("adopt", uri, str(guest_tmp / "instances"), json.dumps(spec))
        assert adopted == {"listed": [RUNNING, {"project_id": "p1"}], "after": None}
    finally:
        pidfile = root / "run" / "qemu" / f"{spec['name']}.pid"
        if pidfile.exists():  # the adopting child failed: do not leave QEMU behind
            subprocess.run(["kill", pidfile.read_text().strip()], check=False)
        from cloudbox.compute.driver.real import short_root

        link = short_root(root)
        if link != root.absolute():
            link.unlink()  # the symlink the children used


@needs_real
async def test_probe_disk_is_a_boot_sector():
    from cloudbox.compute.driver.kvm_probe import PROBE_BOOT_CODE, probe_disk

    disk = probe_disk()
    assert len(disk) == 1 << 20 and disk[510:512] == b"\x55\xaa" and disk.startswith(PROBE_BOOT_CODE)


@needs_real
async def test_probe_verdict_runs_a_guest(guest_tmp, libvirt_root, base_disk):
    """A guest under the acceleration the probe chose really runs (its firmware prints)."""
    backend = Backend("libvirt", f"qemu:///embed?root={libvirt_root}", guest_tmp / "instances", base_disk)
    driver = backend.new_driver()
    await driver.open()
    try:
        info = await driver.host_info()
        spec = await backend.spec(accel=info.accel)
        await driver.create(spec)
        await wait_console(spec.console_log, b"SeaBIOS")
        assert await driver.get_state(spec.uuid) == RUNNING
    finally:
        for uuid in backend.created:
            await driver.destroy(uuid)
        await driver.close()


@needs_real
async def test_foreign_domains_are_not_listed(guest_tmp, libvirt_root):
    """Only "cloudbox-" domains are ours: others on the same libvirt are neither listed nor reported."""
    from cloudbox.compute.driver._libvirt import libvirt

    backend = Backend("libvirt", f"qemu:///embed?root={libvirt_root}", guest_tmp / "instances", None)
    driver = backend.new_driver()
    await driver.open()
    foreign = None
    try:
        xml = "<domain type='qemu'><name>someone-else</name><memory unit='MiB'>16</memory><os><type>hvm</type></os></domain>"
        foreign = await trio.to_thread.run_sync(driver._connection().defineXML, xml)
        assert "someone-else" not in {d.name for d in await driver.list_domains()}
    finally:
        if foreign is not None:
            await trio.to_thread.run_sync(foreign.undefine)
        await driver.close()
    with pytest.raises(trio.EndOfChannel):
        driver.events().receive_nowait()  # define/undefine are no state changes: nothing was sent


@needs_real
async def test_nic_on_a_tap(guest_tmp, libvirt_root, base_disk):
    """An <interface type='ethernet'> attaches to a tap made beforehand (as the network side does)."""
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2")
    tap = f"cbxt{os.getpid() % 100000}"
    backend = Backend("libvirt", f"qemu:///embed?root={libvirt_root}", guest_tmp / "instances", base_disk)
    driver = backend.new_driver()
    await driver.open()
    subprocess.run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"], check=True, timeout=10)
    try:
        spec = await backend.spec(nics=(NicSpec(mac="fa:16:3e:12:34:56", tap=tap, mtu=1400),))
        await driver.create(spec)
        await wait_event(driver, spec.uuid, RUNNING)
        # managed='no': libvirt leaves the tap alone (its MTU is the network side's job) and
        # tells the guest the MTU through virtio-net's host_mtu.
        qemu_log = (libvirt_root / "log" / "qemu" / f"{spec.name}.log").read_text()
        assert "host_mtu=1400" in qemu_log.replace('"host_mtu":1400', "host_mtu=1400")
        assert "fa:16:3e:12:34:56" in qemu_log
    finally:
        for uuid in backend.created:
            await driver.destroy(uuid)
        await driver.close()
        subprocess.run(["ip", "link", "del", tap], check=False, timeout=10)


def qemu_status(pidfile: Path) -> dict[str, str]:
    """The QEMU process's user (as ps shows it) and its /proc status fields."""
    pid = pidfile.read_text().strip()
    ps = subprocess.run(["ps", "-o", "user=", "-p", pid], capture_output=True, text=True, check=True)
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {"user": ps.stdout.strip(), **{key: value.strip() for key, value in fields.items()}}


def guest_can(*command: str) -> bool:
    """Whether the guests' user could run ``command`` (e.g. read a file)."""
    run = subprocess.run(["setpriv", "--reuid=libvirt-qemu", "--regid=libvirt-qemu", "--init-groups", *command],
                         capture_output=True, timeout=30)
    return run.returncode == 0


@needs_real
async def test_guest_boots_unprivileged_and_reads_its_config_drive(guest_tmp, libvirt_root, guest_image):
    """A real guest, laid out as the compute service does in a private (0700) data dir: QEMU runs as
    libvirt-qemu in its seccomp sandbox, reaches its own files and nothing else of the node's."""
    data = guest_tmp / "data"
    data.mkdir(mode=0o700)
    (data / "state.db").write_text("the node's secrets")
    (data / "state.db").chmod(0o644)
    base = data / "instances" / "_base" / "image"
    base.parent.mkdir(parents=True)
    shutil.copyfile(guest_image, base)  # the service's image cache (a hard link or a copy)
    backend = Backend("libvirt", f"qemu:///embed?root={libvirt_root}", data / "instances", None)
    driver = backend.new_driver()
    await driver.open()
    try:
        spec = await backend.spec(memory_mb=128)
        disk = Path(spec.root_disk)
        await disks.create_overlay(base, "qcow2", disk, 1)
        meta = core.build_meta_data(
            uuid=spec.uuid,
            name="probe one",
            hostname="cbx-test-guest",
            project_id="p1",
            availability_zone="nova",
            random_seed=os.urandom(64),
        )
        drive = disk.with_name("config.iso")
        await disks.build_config_drive(drive, core.config_drive_files(meta, b"#!/bin/sh\necho hi\n", {}, None))
        spec = DomainSpec(**{**spec.__dict__, "config_drive": str(drive)})
        started = time.monotonic()
        await driver.create(spec)
        console = await wait_console(spec.console_log, b"CLOUDBOX-GUEST: ready", timeout=120)
        print(f"\nguest ready on its console after {time.monotonic() - started:.1f} s")
        text = console.decode(errors="replace")
        assert "CLOUDBOX-GUEST: config-drive" in text, text[-2000:]
        assert "cbx-test-guest" in text, text[-2000:]

        pidfile = libvirt_root / "run" / "qemu" / f"{spec.name}.pid"
        status = qemu_status(pidfile)
        assert status["user"] == "libvirt-qemu"
        assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "1"  # QEMU's -sandbox: a seccomp filter
        assert int(status["CapEff"], 16) == 0
        assert "libvirt-qemu" in driver.confinement and "seccomp sandbox: on" in driver.confinement
        assert "dac" in driver.confinement
        # libvirt learned the capabilities of the one QEMU binary guests use, not of every one installed
        cached = [p.read_text() for p in (libvirt_root / "cache" / "qemu" / "capabilities").glob("*.xml")]
        emulators = [re.search(r"<emulator>(.*?)</emulator>", text)[1] for text in cached]
        assert emulators == ["/usr/bin/qemu-system-x86_64"]
        guest_uid = pwd.getpwnam("libvirt-qemu").pw_uid
        assert disk.stat().st_uid == guest_uid  # libvirt's DAC driver lent it to the guest
        assert drive.stat().st_uid == guest_uid
        st = base.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (0, 0o640)  # the shared image stays root's: read-only
        assert guest_can("cat", str(base)) and not guest_can("sh", "-c", f"echo x >> {base}")
        assert not guest_can("cat", str(data / "state.db"))  # the data dir is searchable, its secrets closed

        await driver.stop(spec.uuid)  # ACPI: the guest powers itself off
        await wait_event(driver, spec.uuid, SHUTOFF)
        assert (disk.stat().st_uid, disk.stat().st_mode & 0o777) == (0, 0o600)  # back to root when it stops
        await driver.start(spec.uuid)
        await wait_console(spec.console_log, b"SeaBIOS", count=2)
        assert qemu_status(pidfile)["user"] == "libvirt-qemu"
    finally:
        for uuid in backend.created:
            await driver.destroy(uuid)
        await driver.close()


# --- disks -------------------------------------------------------------------------------


@needs_qemu_img
async def test_overlay_grows_to_the_flavor(tmp_path, base_disk):
    small = tmp_path / "small.qcow2"
    await disks.create_overlay(base_disk, "qcow2", small, 0)
    info = await disks.image_info(small)
    assert info["virtual-size"] == 64 << 20
    assert info["backing-filename"] == str(base_disk.resolve())
    assert info["backing-filename-format"] == "qcow2"
    big = tmp_path / "big.qcow2"
    await disks.create_overlay(base_disk, "qcow2", big, 2)
    assert (await disks.image_info(big))["virtual-size"] == 2 << 30
    assert not list(tmp_path.glob(".*partial"))


@needs_qemu_img
async def test_snapshot_is_standalone(tmp_path, base_disk):
    overlay = tmp_path / "disk.qcow2"
    await disks.create_overlay(base_disk, "qcow2", overlay, 1)
    snapshot = tmp_path / "snap" / "image.qcow2"
    await disks.snapshot_to_qcow2(overlay, snapshot)
    info = await disks.image_info(snapshot)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert info["virtual-size"] == 1 << 30


@needs_qemu_img
async def test_qemu_img_errors_are_reported(tmp_path):
    with pytest.raises(disks.DiskError, match="qemu-img"):
        await disks.create_overlay(tmp_path / "missing.qcow2", "qcow2", tmp_path / "disk", 1)
    assert not (tmp_path / "disk").exists()


async def test_config_drive_image(tmp_path):
    meta = core.build_meta_data(
        uuid="u-1", name="n", hostname="h", project_id="p", availability_zone="nova", random_seed=b"x" * 16
    )
    files = core.config_drive_files(meta, b"user data", {"links": [], "networks": [], "services": []}, None)
    path = tmp_path / "config.iso"
    await disks.build_config_drive(path, files)
    assert disks.read_config_drive(path) == files
    if shutil.which("isoinfo"):
        described = subprocess.run(["isoinfo", "-d", "-i", str(path)], capture_output=True, text=True, check=True).stdout
        assert "Volume id: config-2" in described
        assert "Rock Ridge" in described and "Joliet" in described
        listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(path)], capture_output=True, text=True, check=True).stdout
        assert "/openstack/latest/meta_data.json" in listing.split()

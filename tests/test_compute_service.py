"""The compute service on a real state engine with the in-memory hypervisor: power actions that
queue behind one another, and a guest build that undoes every host step when a later one fails."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
import trio
import trio.testing

from cloudbox.compute import commands as c
from cloudbox.compute import store
from cloudbox.compute.driver import RUNNING, SHUTOFF, DomainSpec
from cloudbox.compute.driver.fake import FakeDriver, forget_host
from cloudbox.compute.guests import Guests
from cloudbox.compute.service import ComputeService
from cloudbox.errors import Conflict
from cloudbox.nics import NicSpec
from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine

UNLIMITED = {"instances": -1, "cores": -1, "ram": -1}


class GatedStop(FakeDriver):
    """A guest whose ACPI shutdown takes as long as the test wants (``gate``)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()
        self.stopping = trio.Event()
        self.calls: list[str] = []

    async def stop(self, uuid: str, *, graceful: bool = True, timeout: float = 60) -> None:
        self.calls.append("stop")
        self.stopping.set()
        await self.gate.wait()
        await super().stop(uuid)

    async def start(self, uuid: str) -> None:
        self.calls.append("start")
        await super().start(uuid)


def server_row(server_id: str, host: str) -> dict[str, Any]:
    at = "2024-01-01T00:00:00.000000Z"
    return {
        "id": server_id, "name": "s", "project_id": "p", "user_id": "u",
        "flavor": {"id": "42", "name": "m1.nano", "vcpus": 1, "ram": 128, "disk": 1, "ephemeral": 0, "swap": 0,
                   "extra_specs": {}},
        "image_id": "i", "key_name": None, "key_data": None, "user_data": None, "host": host,
        "availability_zone": "nova", "status": "ACTIVE", "vm_state": "active", "task_state": None,
        "power_state": 1, "fault": None, "metadata": {}, "tags": [], "config_drive": False, "hostname": "s",
        "description": None, "locked": False, "server_group_id": None, "networks": "none", "ports": [],
        "security_groups": ["default"], "image_properties": {}, "created_at": at, "updated_at": at,
        "launched_at": at,
    }


async def wait_row(engine: StateEngine, server_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The server's row once a committed change makes ``done`` true (no polling, no sleeps)."""
    reached = trio.Event()
    seen: dict[str, Any] = {}

    def listener(cmd: Any, result: Any) -> None:
        if isinstance(cmd, c.UpdateServer) and cmd.id == server_id and done(result) and not reached.is_set():
            seen.update(result)
            reached.set()

    engine.add_listener(listener)  # before the read: a change between the two is not missed
    current = await engine.read(store.must_server, server_id)
    if done(current):
        return current
    with trio.fail_after(10):
        await reached.wait()
    return seen


@pytest.fixture
async def running(tmp_path: Path):
    """(service, driver, server id): a running service and one ACTIVE server on its host."""
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    driver = GatedStop()
    svc = ComputeService(engine, None, driver, node_id="n1", host="h1", data_dir=tmp_path,  # type: ignore[arg-type]
                         images=None, network=None, dataplane=None, cluster=None)  # type: ignore[arg-type]
    sid = str(uuid.uuid4())
    await driver.create(DomainSpec(uuid=sid, name=f"cloudbox-{sid}", vcpus=1, memory_mb=128, root_disk="disk",
                                   console_log=str(tmp_path / "console.log"), accel="tcg"))
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await engine.propose(c.CreateServers((server_row(sid, "h1"),), UNLIMITED, 1))
        svc._nursery, svc.running = nursery, True  # what run() sets, without a host to report
        yield svc, driver, sid
        nursery.cancel_scope.cancel()
    engine.close()
    forget_host(driver.uri)


async def test_a_start_asked_for_during_a_stop_runs_once_the_stop_is_done(running):
    svc, driver, sid = running
    await svc.power_action(await svc.get(sid), "os-stop")
    await driver.stopping.wait()
    stopping = await svc.get(sid)
    assert (stopping["status"], stopping["task_state"]) == ("ACTIVE", "powering-off")

    await svc.power_action(stopping, "os-start")  # accepted: queued behind the stop
    queued = await svc.get(sid)
    assert (queued["status"], queued["task_state"]) == ("ACTIVE", "powering-on")
    for action in ("os-start", "os-stop", "pause"):  # one action waits at most; others are refused
        with pytest.raises(Conflict):
            await svc.power_action(queued, action)

    driver.gate.set()
    done = await wait_row(svc.engine, sid, lambda row: row["task_state"] is None)
    assert (done["status"], done["vm_state"], done["power_state"]) == ("ACTIVE", "active", 1)
    assert driver.calls == ["stop", "start"]
    assert await driver.get_state(sid) == RUNNING


async def test_a_start_after_the_stop_ended_is_an_ordinary_start(running):
    svc, driver, sid = running
    driver.gate.set()
    await svc.power_action(await svc.get(sid), "os-stop")
    stopped = await wait_row(svc.engine, sid, lambda row: row["task_state"] is None)
    assert stopped["status"] == "SHUTOFF" and await driver.get_state(sid) == SHUTOFF
    with pytest.raises(Conflict):
        await svc.power_action(stopped, "os-stop")  # already off
    await svc.power_action(stopped, "os-start")
    started = await wait_row(svc.engine, sid, lambda row: row["task_state"] is None and row["status"] == "ACTIVE")
    assert started["power_state"] == 1 and driver.calls == ["stop", "start"]


# --- a guest's build undoes its host steps ------------------------------------------------------
class Images:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def image_path(self, image_id: str, ctx: Any) -> tuple[Path, dict[str, Any]]:
        return self.path, {"id": image_id, "disk_format": "qcow2"}


class Ports:
    def __init__(self) -> None:
        self.bound: set[str] = set()

    async def bind(self, port_id: str) -> NicSpec:
        self.bound.add(port_id)
        return NicSpec(mac="fa:16:3e:00:00:01", tap=f"tap{port_id[:11]}")

    async def unbind(self, port_id: str) -> None:
        self.bound.discard(port_id)

    def started(self, port_ids: list[str]) -> None:
        pass


class RefusingPorts(Ports):
    """The second port's bind fails (after the first was bound)."""

    async def bind(self, port_id: str) -> NicSpec:
        if port_id == "port-two":
            raise Conflict("port-two is bound elsewhere")
        return await super().bind(port_id)


@pytest.mark.parametrize("failing_step", ["record", "domain", "port"])
async def test_a_failed_build_leaves_nothing_on_the_host(tmp_path: Path, failing_step: str):
    image = tmp_path / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    driver, ports = FakeDriver(), RefusingPorts() if failing_step == "port" else Ports()

    class Refusing(FakeDriver):
        async def create(self, spec: DomainSpec) -> None:
            raise Conflict("no room")

    if failing_step == "domain":
        driver = Refusing(driver.uri)
    guests = Guests(driver, tmp_path / "instances", "h1", Images(image), ports)  # type: ignore[arg-type]
    server = {**server_row(str(uuid.uuid4()), "h1"), "config_drive": True,
              "ports": [{"port_id": "port-one"}, {"port_id": "port-two"}]}

    async def drive_files() -> dict[str, bytes]:
        return {"openstack/latest/meta_data.json": b"{}"}

    async def record() -> None:
        raise Conflict("the server was deleted meanwhile")

    with pytest.raises(Conflict):  # the step's own error, not a group of them
        await guests.spawn(server, "tcg", drive_files, record)
    assert not guests.instance_dir(server["id"]).exists()
    assert ports.bound == set()
    assert await driver.list_domains() == []
    assert (tmp_path / "instances" / "_base" / "i").exists()  # the image cache is shared: it stays
    forget_host(driver.uri)


async def test_a_build_that_succeeds_keeps_everything(tmp_path: Path):
    image = tmp_path / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    driver, ports = FakeDriver(), Ports()
    guests = Guests(driver, tmp_path / "instances", "h1", Images(image), ports)  # type: ignore[arg-type]
    server = {**server_row(str(uuid.uuid4()), "h1"), "ports": [{"port_id": "port-one"}]}
    recorded: list[bool] = []

    async def record() -> None:
        recorded.append(True)

    async def no_drive() -> dict[str, bytes]:
        raise AssertionError("no config drive was asked for")

    steps = await guests.spawn(server, "tcg", no_drive, record)
    assert set(steps) == {"image", "disk", "config_drive", "port", "domain", "record"} and recorded
    assert (guests.instance_dir(server["id"]) / "disk").exists() and ports.bound == {"port-one"}
    assert await driver.get_state(server["id"]) == RUNNING
    forget_host(driver.uri)


async def test_a_builds_ports_are_bound_while_its_disks_are_made(tmp_path: Path):
    image = tmp_path / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    driver = FakeDriver()
    drive_asked, bound_first = trio.Event(), []

    class SlowPorts(Ports):
        async def bind(self, port_id: str) -> NicSpec:
            await drive_asked.wait()  # bound only once the config drive is under way
            return await super().bind(port_id)

    ports = SlowPorts()
    guests = Guests(driver, tmp_path / "instances", "h1", Images(image), ports)  # type: ignore[arg-type]
    server = {**server_row(str(uuid.uuid4()), "h1"), "config_drive": True, "ports": [{"port_id": "port-one"}]}

    async def drive_files() -> dict[str, bytes]:
        drive_asked.set()
        await trio.testing.wait_all_tasks_blocked()  # the bind, waiting meanwhile, goes first
        bound_first.append(ports.bound == {"port-one"})
        return {"openstack/latest/meta_data.json": b"{}"}

    async def record() -> None:
        pass

    with trio.fail_after(30):  # one step after the other would wait here for ever
        await guests.spawn(server, "tcg", drive_files, record)
    assert bound_first == [True] and await driver.get_state(server["id"]) == RUNNING
    forget_host(driver.uri)


async def test_a_periodic_reconcile_waits_for_the_operations_under_way():
    from types import SimpleNamespace

    from cloudbox.compute.reconcile import Reconciler

    building = trio.Lock()
    reconciler = Reconciler(SimpleNamespace(_locks={"s1": trio.Lock(), "s2": building}))  # type: ignore[arg-type]
    waited = trio.Event()

    async def wait() -> None:
        await reconciler._after_operations()
        waited.set()

    async with trio.open_nursery() as nursery:
        await building.acquire()  # a build holds its server's lock
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        assert not waited.is_set()
        building.release()
        with trio.fail_after(10):
            await waited.wait()


# --- a snapshot cut short by a stop or a crash -----------------------------------------------------
class Owner:
    project_id, user_id = "p", "u"
    is_cloud_admin = is_cloud_reader = False

    def can_write_project(self, project_id: str) -> bool:
        return project_id == "p"

    def can_read_project(self, project_id: str) -> bool:
        return project_id == "p"


async def test_the_first_pass_deletes_the_image_of_a_snapshot_the_last_run_left_unfinished(tmp_path: Path):
    from cloudbox.image.core import ListOptions
    from cloudbox.image.service import ImageService

    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    images = ImageService(engine, None, tmp_path / "images", "n1")
    driver = FakeDriver()
    svc = ComputeService(engine, None, driver, node_id="n1", host="h1", data_dir=tmp_path,  # type: ignore[arg-type]
                         images=images, network=None, dataplane=None, cluster=None)  # type: ignore[arg-type]
    (tmp_path / "instances").mkdir()
    sid, other = str(uuid.uuid4()), str(uuid.uuid4())
    for server_id in (sid, other):
        await driver.create(DomainSpec(uuid=server_id, name=f"cloudbox-{server_id}", vcpus=1, memory_mb=128,
                                       root_disk="disk", console_log=str(tmp_path / "console.log"), accel="tcg"))
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        snapshotting = {**server_row(sid, "h1"), "task_state": "image_snapshot"}
        await engine.propose(c.CreateServers((snapshotting, server_row(other, "h1")), UNLIMITED, 2))
        body = {"name": "snap", "disk_format": "qcow2", "container_format": "bare", "image_type": "snapshot"}
        unfinished = await images.create(Owner(), {**body, "instance_uuid": sid})
        of_another = await images.create(Owner(), {**body, "instance_uuid": other})  # no snapshot of it ran
        svc._nursery = nursery
        await svc.reconciler.reconcile()
        left = {i["id"] for i in await images.list(None, ListOptions(), None, 10)}
        assert left == {of_another["id"]} and unfinished["id"] not in left
        assert (await svc.get(sid))["task_state"] is None
        nursery.cancel_scope.cancel()
    engine.close()
    forget_host(driver.uri)


async def test_a_reset_to_error_holds_while_a_faulted_error_follows_the_guest(tmp_path: Path):
    """Nova keeps an admin's os-resetState to error; an ERROR with a fault (a vanished guest that
    came back) follows the guest as before."""
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    driver = FakeDriver()
    svc = ComputeService(engine, None, driver, node_id="n1", host="h1", data_dir=tmp_path,  # type: ignore[arg-type]
                         images=None, network=None, dataplane=None, cluster=None)  # type: ignore[arg-type]
    (tmp_path / "instances").mkdir()
    reset, faulted = str(uuid.uuid4()), str(uuid.uuid4())
    for server_id in (reset, faulted):
        await driver.create(DomainSpec(uuid=server_id, name=f"cloudbox-{server_id}", vcpus=1, memory_mb=128,
                                       root_disk="disk", console_log=str(tmp_path / "console.log"), accel="tcg"))
        await driver.start(server_id)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        error = {"status": "ERROR", "vm_state": "error", "power_state": 0}
        rows = ({**server_row(reset, "h1"), **error},
                {**server_row(faulted, "h1"), **error, "fault": {"code": 500, "message": "gone", "created": "x"}})
        await engine.propose(c.CreateServers(rows, UNLIMITED, 2))
        svc._nursery = nursery
        await svc.reconciler.reconcile()
        assert (await svc.get(reset))["status"] == "ERROR"
        assert (await svc.get(faulted))["status"] == "ACTIVE"
        await svc.reset_state(await svc.get(reset), "active")
        assert (await svc.get(reset))["status"] == "ACTIVE"
        nursery.cancel_scope.cancel()
    engine.close()
    forget_host(driver.uri)

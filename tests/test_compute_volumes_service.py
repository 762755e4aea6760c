"""The compute side of volumes in process, on a real state engine with the in-memory hypervisor
and a small in-memory volume service (the calls compute makes, DESIGN.md "Attaching"): what is
undone when a step fails (an attach whose hot-plug fails, a detach whose guest keeps the disk),
and a volume that grew reaching the guest's disk."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from cloudbox.compute import commands as c
from cloudbox.compute import commands_volumes as v
from cloudbox.compute.apply_volumes import bdms_of
from cloudbox.compute.driver import DomainSpec, VolumeDisk
from cloudbox.compute.driver.fake import FakeDriver, forget_host
from cloudbox.compute.driver.volume_disk import disk_xml
from cloudbox.compute.service import ComputeService
from cloudbox.errors import BadRequest, CloudboxError, Conflict, NotFound, Unavailable
from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine
from tests.cloud import wait_for_async
from tests.test_compute_service import UNLIMITED, Owner, server_row


class FakeAttach:
    """The volume service's attach flow: statuses as core_attach's table says, calls recorded."""

    def __init__(self, volumes: "FakeVolumes") -> None:
        self.volumes = volumes
        self.attachments: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    async def reserve(self, ctx: Any, volume_id: str, server_id: str) -> dict[str, Any]:
        self.calls.append("reserve")
        volume = self.volumes.rows[volume_id]
        if volume["status"] != "available":
            raise BadRequest(f"Invalid volume: {volume_id} is {volume['status']}")
        attachment = {"id": str(uuid.uuid4()), "volume_id": volume_id, "server_id": server_id}
        self.attachments[attachment["id"]] = attachment
        volume["status"] = "reserved"
        return attachment

    async def connect(self, ctx: Any, attachment_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("connect")
        volume_id = self.attachments[attachment_id]["volume_id"]
        self.volumes.rows[volume_id]["status"] = "attaching"
        info = {"driver_volume_type": "local", "serial": volume_id, "data": {
            "device_path": f"/v/volume-{volume_id}", "disk_type": "file", "format": "raw", "access_mode": "rw"}}
        return {**self.attachments[attachment_id], "connection_info": info}

    async def complete(self, ctx: Any, attachment_id: str) -> dict[str, Any]:
        self.calls.append("complete")
        self.volumes.rows[self.attachments[attachment_id]["volume_id"]]["status"] = "in-use"
        return self.attachments[attachment_id]

    async def detach(self, ctx: Any, attachment_id: str) -> list[dict[str, Any]]:
        self.calls.append("detach")
        attachment = self.attachments.pop(attachment_id, None)
        if attachment is None:
            raise NotFound(f"attachment {attachment_id}")
        self.volumes.rows[attachment["volume_id"]]["status"] = "available"
        return []

    async def list(self, ctx: Any, filters: dict[str, str], marker: Any, limit: int, all_projects: bool) -> list:
        return [a for a in self.attachments.values() if a["server_id"] == filters.get("instance_uuid")]

    async def legacy(self, ctx: Any, volume_id: str, name: str, args: Any) -> Any:
        self.calls.append(name)
        self.volumes.rows[volume_id]["status"] = {"os-begin_detaching": "detaching",
                                                  "os-roll_detaching": "in-use"}[name]


class FakeVolumes:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.attach = FakeAttach(self)

    def make(self, size: int = 1) -> str:
        vid = str(uuid.uuid4())
        self.rows[vid] = {"id": vid, "status": "available", "size": size, "multiattach": False, "project_id": "p"}
        return vid

    async def get(self, ctx: Any, volume_id: str) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        if volume_id not in self.rows or not ctx.can_read_project("p"):
            raise NotFound(f"Volume {volume_id} could not be found.")
        return dict(self.rows[volume_id])

    async def delete(self, ctx: Any, volume_id: str) -> None:
        del self.rows[volume_id]


class FailingPlug(FakeDriver):
    async def attach_disk(self, uuid: str, disk: VolumeDisk) -> None:
        await super().attach_disk(uuid, disk)
        raise CloudboxError("QEMU refused the device")  # after plugging: the undo must unplug it


@pytest.fixture
async def service(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    driver = FailingPlug()
    svc = ComputeService(engine, None, driver, node_id="n1", host="h1", data_dir=tmp_path,  # type: ignore[arg-type]
                         images=None, network=None, dataplane=None, cluster=None)  # type: ignore[arg-type]
    svc.volume_service = volumes = FakeVolumes()
    sid = str(uuid.uuid4())
    await driver.create(DomainSpec(uuid=sid, name=f"cloudbox-{sid}", vcpus=1, memory_mb=128, root_disk="disk",
                                   console_log=str(tmp_path / "console.log"), accel="tcg"))
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await engine.propose(c.CreateServers((server_row(sid, "h1"),), UNLIMITED, 1))
        svc._nursery, svc.running = nursery, True
        yield svc, driver, volumes, sid
        nursery.cancel_scope.cancel()
    engine.close()
    forget_host(driver.uri)


async def test_an_attach_whose_hot_plug_fails_is_undone(service):
    svc, driver, volumes, sid = service
    vid = volumes.make()
    with pytest.raises(CloudboxError, match="QEMU refused"):
        await svc.volumes.attach(Owner(), await svc.get(sid), vid)
    assert volumes.attach.calls == ["reserve", "connect", "detach"]
    assert volumes.rows[vid]["status"] == "available" and volumes.attach.attachments == {}
    assert await svc.engine.read(bdms_of, sid) == [] and await driver.volume_disks(sid) == {}


async def test_a_guest_that_keeps_the_disk_leaves_the_volume_attached(service):
    svc, driver, volumes, sid = service
    driver.attach_disk = FakeDriver.attach_disk.__get__(driver)  # plugging works here
    vid = volumes.make()
    bdm = await svc.volumes.attach(Owner(), await svc.get(sid), vid)
    assert bdm["status"] == "attached" and volumes.rows[vid]["status"] == "in-use"
    assert await driver.volume_disks(sid) == {vid: "vdb"}
    assert [d.volume_id for d in await svc.volumes.disks_of(sid)] == [vid]  # what a redefinition carries

    driver.stuck_disks.add(vid)
    await svc.volumes.detach(Owner(), await svc.get(sid), vid)
    assert volumes.rows[vid]["status"] == "detaching"
    await wait_for_async(lambda: "os-roll_detaching" in volumes.attach.calls, 10, "the detach to roll back")
    [row] = await svc.engine.read(bdms_of, sid)
    assert row["status"] == "attached" and volumes.rows[vid]["status"] == "in-use"
    assert await driver.volume_disks(sid) == {vid: "vdb"}

    driver.stuck_disks.clear()
    await svc.volumes.detach(Owner(), await svc.get(sid), vid)

    async def detached() -> bool:
        return not await svc.engine.read(bdms_of, sid)

    await wait_for_async(detached, 10, "the mapping to go")
    assert volumes.rows[vid]["status"] == "available" and await driver.volume_disks(sid) == {}


async def test_a_volume_that_grew_resizes_the_guests_disk(service):
    svc, driver, volumes, sid = service
    driver.attach_disk = FakeDriver.attach_disk.__get__(driver)
    vid = volumes.make()
    await svc.volumes.attach(Owner(), await svc.get(sid), vid)
    volumes.rows[vid]["size"] = 3
    await svc.volumes.extended(sid, vid)
    await wait_for_async(lambda: driver.disk_size(sid, vid), 10, "the guest's disk to grow")
    assert driver.disk_size(sid, vid) == 3 << 30
    with pytest.raises(NotFound):
        await svc.volumes.extended(sid, volumes.make())  # not attached to it


async def test_a_multiattach_volume_is_a_shareable_disk(service):
    svc, driver, volumes, sid = service
    driver.attach_disk = FakeDriver.attach_disk.__get__(driver)
    vid = volumes.make()
    volumes.rows[vid]["multiattach"] = True
    bdm = await svc.volumes.attach(Owner(), await svc.get(sid), vid)
    assert bdm["connection_info"]["data"]["multiattach"] is True  # kept for every later definition
    [disk] = await svc.volumes.disks_of(sid)
    assert "<shareable" in disk_xml(disk)


async def test_refusals_reserve_nothing(service):
    svc, driver, volumes, sid = service
    vid = volumes.make()
    volumes.rows[vid]["status"] = "in-use"
    with pytest.raises(BadRequest, match="must be 'available'"):
        await svc.volumes.attach(Owner(), await svc.get(sid), vid)
    await svc.update(sid, {"vm_state": "suspended", "status": "SUSPENDED"})
    with pytest.raises(CloudboxError, match="vm_state suspended"):
        await svc.volumes.attach(Owner(), await svc.get(sid), volumes.make())
    svc.volume_service = None
    with pytest.raises(Unavailable):
        await svc.volumes.attach(Owner(), await svc.get(sid), vid)
    assert volumes.attach.calls == [] and await svc.engine.read(bdms_of, sid) == []


async def test_recovery_after_a_crash_undoes_attaches_and_finishes_detaches(service):
    """What a kill -9 mid-attach or mid-detach leaves (a mapping attaching or detaching, a disk in
    the definition with no mapping) is put right at start, and a second pass changes nothing."""
    svc, driver, volumes, sid = service
    driver.attach_disk = FakeDriver.attach_disk.__get__(driver)
    kept, leaving = volumes.make(), volumes.make()
    for vid in (kept, leaving):
        await svc.volumes.attach(Owner(), await svc.get(sid), vid)
    # an attach cut short after the plug, before it was recorded attached
    cut = volumes.make()
    attachment = await volumes.attach.reserve(None, cut, sid)
    row = {**(await svc.engine.read(bdms_of, sid))[0], "id": str(uuid.uuid4()), "volume_id": cut,
           "attachment_id": attachment["id"], "device_name": "/dev/vdd", "status": "attaching"}
    await svc.engine.propose(v.CreateBlockDevices((row,)))
    await driver.attach_disk(sid, VolumeDisk(cut, "vdd", {"driver_volume_type": "local", "data": {
        "device_path": "/v/cut", "format": "raw"}}))
    # a detach accepted, the process killed before the guest let go
    [leaving_row] = [b for b in await svc.engine.read(bdms_of, sid) if b["volume_id"] == leaving]
    await svc.engine.propose(v.UpdateBlockDevice(leaving_row["id"], {"status": "detaching"}))
    # an attach cut short between its reserve and its mapping
    lost = volumes.make()
    await volumes.attach.reserve(None, lost, sid)
    # a disk in the definition that no mapping wants
    stray = str(uuid.uuid4())
    await driver.attach_disk(sid, VolumeDisk(stray, "vdz", {"driver_volume_type": "local", "data": {
        "device_path": "/v/stray", "format": "raw"}}))

    await svc.volumes.recover()

    async def settled() -> bool:
        rows = await svc.engine.read(bdms_of, sid)
        return [(b["volume_id"], b["status"]) for b in rows] == [(kept, "attached")]

    await wait_for_async(settled, 10, "the mappings to be put right")
    assert await driver.volume_disks(sid) == {kept: "vdb"}
    assert {vid: volumes.rows[vid]["status"] for vid in (kept, leaving, cut, lost)} == {
        kept: "in-use", leaving: "available", cut: "available", lost: "available"}
    calls = list(volumes.attach.calls)
    await svc.volumes.recover()
    assert volumes.attach.calls == calls and await driver.volume_disks(sid) == {kept: "vdb"}


async def test_mapping_commands_refuse_cleanly_and_replay(service, tmp_path: Path):
    """The block device mapping commands: a refusal changes nothing, and the log of attaches,
    updates, detaches and refusals replays into an empty database to the same tables."""
    from cloudbox.state.engine import replay
    from tests.test_durability import _live_log_and_hashes

    svc, driver, volumes, sid = service
    driver.attach_disk = FakeDriver.attach_disk.__get__(driver)
    vid = volumes.make()
    bdm = await svc.volumes.attach(Owner(), await svc.get(sid), vid)
    before = _live_log_and_hashes(tmp_path / "state.db")[1]
    twice = {**bdm, "id": str(uuid.uuid4())}
    same_device = {**bdm, "id": str(uuid.uuid4()), "volume_id": volumes.make()}
    for cmd, error in ((v.CreateBlockDevices((twice,)), BadRequest),
                       (v.CreateBlockDevices((same_device,)), Conflict),
                       (v.CreateBlockDevices(({**same_device, "device_name": "/dev/vdc",
                                               "server_id": str(uuid.uuid4())},)), NotFound),
                       (v.CreateBlockDevices(({**same_device, "device_name": "/dev/vdc"},), ("stopped",)), Conflict),
                       (v.UpdateBlockDevice(bdm["id"], {"status": "detaching"}, ("detaching",)), Conflict),
                       (v.UpdateBlockDevice(str(uuid.uuid4()), {"status": "attached"}), NotFound)):
        with pytest.raises(error):
            await svc.engine.propose(cmd)
    assert _live_log_and_hashes(tmp_path / "state.db")[1] == before
    await svc.volumes.set_delete_on_termination(await svc.get(sid), vid, True)
    await svc.volumes.detach(Owner(), await svc.get(sid), vid)

    async def detached() -> bool:
        return not await svc.engine.read(bdms_of, sid)

    await wait_for_async(detached, 10, "the mapping to go")
    entries, live = _live_log_and_hashes(tmp_path / "state.db")
    assert any('"type":"compute.bdm.' in e for e in entries)
    assert replay(entries, tmp_path / "replayed.db", STORES) == live

"""The attach, QoS, upload and backend commands in-process: apply's refusals change nothing, and
the log replays into an empty database to the same tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine, replay
from cloudbox.volume import commands as c
from cloudbox.volume import core, store, store_attach
from tests.test_durability import _live_log_and_hashes, refused_without_change
from tests.test_volume_worker import AT, row

DEFAULTS = core.quota_defaults(10, 1000, 10)


def attachment(attachment_id: str, volume_id: str, **fields: Any) -> dict[str, Any]:
    base = {"id": attachment_id, "volume_id": volume_id, "project_id": "p1", "instance_uuid": f"server-{attachment_id}",
            "attached_host": None, "mountpoint": None, "attach_mode": "rw", "attach_status": "reserved",
            "connector": {}, "connection_info": {}, "created_at": AT, "updated_at": AT, "attach_time": None}
    return {**base, **fields}


async def test_attach_commands_refuse_cleanly_and_replay(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)

    def status(volume_id: str) -> str:
        return engine.read_sync(store.get_volume, volume_id)["status"]

    async def refused(cmd: Any, fragment: str) -> None:
        await refused_without_change(engine, tmp_path / "state.db", cmd, fragment)

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            await engine.propose(c.CreateVolume(row("v1", status="available"), DEFAULTS))
            await engine.propose(c.ReserveAttachment(attachment("a1", "v1"), False))
            assert status("v1") == "reserved"
            await refused(c.ReserveAttachment(attachment("a2", "v1"), False), "not multiattach")
            await refused(c.CompleteAttachment("a1", AT), "no connector")
            await refused(c.DeleteVolume("v1", False, False, AT), "detach it first")
            info = {"driver_volume_type": "local", "data": {"device_path": "/x"}}
            await engine.propose(c.UpdateAttachment("a1", {"host": "host-1"}, info, "/dev/vdb", "host-1", AT))
            assert status("v1") == "attaching"
            await engine.propose(c.CompleteAttachment("a1", AT))
            assert status("v1") == "in-use"
            await refused(c.BeginVolumeUpload("v1", "img-1", "raw", False, AT), "force")
            await engine.propose(c.BeginVolumeUpload("v1", "img-1", "raw", True, AT))
            assert status("v1") == "uploading"
            await refused(c.ReserveAttachment(attachment("a3", "v1"), False), "uploading")
            await engine.propose(c.FinishVolumeUpload("v1", "", AT))
            assert status("v1") == "in-use"
            # Detached while a forced upload runs: the upload's end gives it the status that is true.
            await engine.propose(c.CreateVolume(row("v2", status="available"), DEFAULTS))
            await engine.propose(c.ReserveAttachment(attachment("b1", "v2", attach_time=AT), True))
            await engine.propose(c.BeginVolumeUpload("v2", "img-2", "raw", True, AT))
            await engine.propose(c.DeleteAttachments("v2", ("b1",), AT))
            assert status("v2") == "uploading"
            await engine.propose(c.FinishVolumeUpload("v2", "", AT))
            assert status("v2") == "available"
            await engine.propose(c.Transition("v1", ("in-use",), "detaching", AT, {}))
            await engine.propose(c.SettleVolume("v1", ("detaching",), AT))  # os-roll_detaching
            assert status("v1") == "in-use"
            await refused(c.DeleteAttachments("v1", ("a1", "nope"), AT), "nope")
            assert status("v1") == "in-use"
            await engine.propose(c.DeleteAttachments("v1", ("a1",), AT))
            assert status("v1") == "available"
            await engine.propose(c.LegacyReserve("v1", AT))
            assert status("v1") == "attaching"
            await engine.propose(c.ReserveAttachment(attachment("a4", "v1", attach_time=AT), True))  # os-attach
            assert status("v1") == "in-use"

            qos = {"id": "q1", "name": "gold", "consumer": "front-end", "specs": {"read_iops_sec": "100"},
                   "created_at": AT, "updated_at": AT}
            await engine.propose(c.CreateQos(qos))
            await refused(c.CreateQos({**qos, "id": "q2"}), "already exists")
            await engine.propose(c.AssociateQos("q1", core.DEFAULT_TYPE_ID, True))
            await refused(c.DeleteQos("q1", False), "still associated")
            await engine.propose(c.UpdateQos("q1", {"write_iops_sec": "5"}, ("read_iops_sec",), "both", AT))
            found = engine.read_sync(store_attach.qos_of_type, core.DEFAULT_TYPE_ID)
            assert found["specs"] == {"write_iops_sec": "5"} and found["consumer"] == "both"
            await engine.propose(c.DeleteQos("q1", True))
            assert engine.read_sync(store.get_type, core.DEFAULT_TYPE_ID)["qos_specs_id"] is None
            await engine.propose(c.RegisterBackend({"host": "host-1", "node_id": "n1", "driver": "dir",
                                                    "availability_zone": "nova", "registered_at": AT}))
            nursery.cancel_scope.cancel()
    finally:
        engine.close()
    entries, live = _live_log_and_hashes(tmp_path / "state.db")
    assert any('"type":"volume.attachment.complete"' in e for e in entries)
    assert replay(entries, tmp_path / "replayed.db", STORES) == live

"""Extend of an in-use volume (Cinder 3.42+) in-process with the dir driver: the status machine
(in-use → extending → in-use with the new size, the attachment kept, the raw file grown without
qemu-img; one attached over NBD to another node's guest too), and the refusals that change
nothing (below 3.42, a multiattach volume attached twice); the log replays to the same tables.  Then over the
API with compute's in-memory hypervisor: 3.41 refused, 3.42 extends, and compute records Nova's
extend_volume instance action with its compute_extend_volume event (what Tempest waits on)."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from cloudbox.errors import BadRequest
from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine, replay
from cloudbox.volume import commands as c
from cloudbox.volume import commands_attach as ca
from cloudbox.volume import core, store, store_attach
from cloudbox.volume.driver import GB
from cloudbox.volume.driver.dir import DirDriver
from cloudbox.volume.service import VolumeService
from tests.cloud import GaveUp, wait_for
from tests.test_compute_volumes import S, attach, image, server_of  # noqa: F401 (fixture)
from tests.test_durability import _live_log_and_hashes
from tests.test_image_api import Tenant, admin, alpha  # noqa: F401 (fixtures)
from tests.test_volume_api import V as VOLUMES, create, fault, volume_file, wait_volume
from tests.test_volume_worker import AT, SETTINGS, row


def attachment(volume_id: str, aid: str, **fields: Any) -> dict[str, Any]:
    base = {"id": aid, "volume_id": volume_id, "project_id": "p1", "instance_uuid": None, "attached_host": "host-1",
            "mountpoint": "/dev/vdb", "attach_mode": "rw", "attach_status": "attached", "connector": {},
            "connection_info": {"driver_volume_type": "local", "data": {}}, "created_at": AT, "updated_at": AT,
            "attach_time": AT}
    return {**base, **fields}


async def test_in_use_extend_status_machine_and_refusals(tmp_path: Path) -> None:
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    driver = DirDriver(tmp_path / "store")
    driver.check()
    defaults = core.quota_defaults(10, 1000, 10)

    def volume(vid: str) -> dict[str, Any]:
        return engine.read_sync(store.get_volume, vid)

    async def refused(cmd: c.ExtendVolume, *fragments: str) -> None:
        before = volume(cmd.id)
        with pytest.raises(BadRequest) as caught:
            await engine.propose(cmd)
        for fragment in fragments:
            assert fragment in str(caught.value), str(caught.value)
        assert volume(cmd.id) == before

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            for vid in ("local", "remote", "shared"):
                await engine.propose(c.CreateVolume(row(vid, status="available", multiattach=vid == "shared"),
                                                    defaults))
                await trio.to_thread.run_sync(driver.create_blank, vid, 1)
            await engine.propose(ca.ReserveAttachment(attachment("local", "a-local"), True))
            await engine.propose(ca.ReserveAttachment(attachment(
                "remote", "a-remote", attached_host="host-2",
                connection_info={"driver_volume_type": "nbd", "data": {"host": "10.0.0.2"}}), True))
            await engine.propose(ca.ReserveAttachment(attachment("shared", "a-1"), True))
            await engine.propose(ca.ReserveAttachment(attachment("shared", "a-2", mountpoint="/dev/vdc"), True))
            assert {volume(v)["status"] for v in ("local", "remote", "shared")} == {"in-use"}

            # Below 3.42 (attached False, as older log entries replay): refused as before.
            await refused(c.ExtendVolume("local", 2, defaults, AT), "is in-use", "only an available volume")
            await refused(c.ExtendVolume("shared", 2, defaults, AT, True), "attached 2 times")
            await refused(c.ExtendVolume("local", 1, defaults, AT, True), "greater than")

            await engine.propose(c.ExtendVolume("local", 2, defaults, AT, True))
            # Over NBD to another node's guest: a kind of its own (schema 2: older nodes refuse it),
            # what the service proposes for such a volume; the export is made again at the new size.
            await refused(c.ExtendVolume("remote", 2, defaults, AT, True), "another node", "NBD")
            await engine.propose(c.ExtendRemoteVolume("remote", 2, defaults, AT, True))
            growing = volume("local")
            assert (growing["status"], growing["size"], growing["pending_size"]) == ("extending", 1, 2)

            svc = VolumeService(engine, SETTINGS, driver, node_id="node-1", host="host-1")
            await nursery.start(svc.run)
            with trio.fail_after(30):
                while "extending" in (volume("local")["status"], volume("remote")["status"]):
                    await trio.sleep(0.05)
            grown = volume("local")
            assert (grown["status"], grown["size"], grown["pending_size"]) == ("in-use", 2, None)
            assert (volume("remote")["status"], volume("remote")["size"]) == ("in-use", 2)
            assert [a["id"] for a in engine.read_sync(store_attach.attachments_of, "local")] == ["a-local"]
            assert (driver.volumes / "volume-local.raw").stat().st_size == 2 * GB
            assert driver.virtual_size("local") == 2 * GB

            # Detached once, the multiattach volume extends while attached once.
            await engine.propose(ca.DeleteAttachments("shared", ("a-2",), AT))
            assert volume("shared")["status"] == "in-use"
            await engine.propose(c.ExtendVolume("shared", 3, defaults, AT, True))
            with trio.fail_after(30):
                while volume("shared")["status"] == "extending":
                    await trio.sleep(0.05)
            assert (volume("shared")["status"], volume("shared")["size"]) == ("in-use", 3)
            assert driver.virtual_size("shared") == 3 * GB
            nursery.cancel_scope.cancel()
    finally:
        engine.close()
    entries, live = _live_log_and_hashes(tmp_path / "state.db")
    assert replay(entries, tmp_path / "replayed.db", STORES) == live


# --- over the API, with compute (in-memory hypervisor) ------------------------------------------


@pytest.mark.slow
def test_extend_of_an_attached_volume_over_the_api(cloud: Any, admin: Any, alpha: Tenant, image: dict[str, Any]):
    sid = server_of(alpha, image)
    vid = create(alpha.member, size=1)["id"]
    wait_volume(alpha.member, vid, {"available"})
    assert attach(alpha.member, sid, vid).status_code == 200
    action = f"{VOLUMES}/volumes/{vid}/action"
    at = {"OpenStack-API-Version": "volume 3.41"}
    fault(alpha.member.post(action, json={"os-extend": {"new_size": 2}}, headers=at), 400, "only an available volume")
    shown = alpha.member.get(f"{VOLUMES}/volumes/{vid}").json()["volume"]
    assert (shown["status"], shown["size"]) == ("in-use", 1)

    r = alpha.member.post(action, json={"os-extend": {"new_size": 2}}, headers={"OpenStack-API-Version": "volume 3.42"})
    assert r.status_code == 202, r.text
    grown = wait_volume(alpha.member, vid, {"in-use", "error_extending"})
    assert (grown["status"], grown["size"]) == ("in-use", 2)
    assert [a["server_id"] for a in grown["attachments"]] == [sid]
    assert volume_file(cloud, vid).stat().st_size == 2 << 30

    # Compute resized the guest's disk and recorded Nova's instance action for it.
    def extended() -> dict[str, Any] | None:
        actions = admin.get(f"{S}/{sid}/os-instance-actions").json()["instanceActions"]
        found = next((a for a in actions if a["action"] == "extend_volume"), None)
        if found is None:
            return None
        shown = admin.get(f"{S}/{sid}/os-instance-actions/{found['request_id']}").json()["instanceAction"]
        events = [e for e in shown["events"] if e["event"] == "compute_extend_volume" and e["finish_time"]]
        return events[0] if events else None

    event = wait_for(extended, 60, "the compute_extend_volume event to finish", every=0.2)
    assert event["result"] == "Success"


def _qmp(path: Path, *commands: dict[str, Any]) -> list[dict[str, Any]]:
    """Answers of QEMU's QMP socket to ``commands`` (after the capabilities handshake)."""
    answers = []
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        reader = sock.makefile("r")
        reader.readline()  # the greeting
        for cmd in ({"execute": "qmp_capabilities"}, *commands):
            sock.sendall(json.dumps(cmd).encode() + b"\n")
            while "return" not in (answer := json.loads(reader.readline())) and "error" not in answer:
                pass  # events
            answers.append(answer)
    return answers[1:]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_dir_extend_attached_leaves_a_held_image_to_qemu(tmp_path: Path, fmt: str) -> None:
    """A running QEMU holds the volume: extend_attached grows a raw file by truncate, leaves a qcow2
    image (locked) alone without failing, and QEMU's block resize (what compute's blockResize does)
    then gives both the new size."""
    driver = DirDriver(tmp_path / "store", fmt)
    driver.check()
    vid = str(uuid.uuid4())
    driver.create_blank(vid, 1)
    qmp = tmp_path / "qmp.sock"
    qemu = subprocess.Popen(["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "32", "-display", "none", "-S",
                             "-qmp", f"unix:{qmp},server=on,wait=off",
                             "-drive", f"file={driver.path(vid)},if=virtio,format={fmt},id=vol"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def size() -> int:
        out = subprocess.run(["qemu-img", "info", "-U", "--output=json", "-f", fmt, str(driver.path(vid))],
                             capture_output=True, text=True, check=True).stdout
        return int(json.loads(out)["virtual-size"])

    try:
        def locked() -> bool:
            if qemu.poll() is not None:
                raise GaveUp(f"qemu exited: {qemu.stderr.read().decode() if qemu.stderr else ''}")
            inode = f":{driver.path(vid).stat().st_ino} "
            return qmp.exists() and any(inode in line for line in Path("/proc/locks").read_text().splitlines())

        wait_for(locked, 30, "QEMU to hold the volume's file")
        driver.extend_attached(vid, 2)
        assert size() == (2 * GB if fmt == "raw" else GB)
        (answer,) = _qmp(qmp, {"execute": "block_resize", "arguments": {"device": "vol", "size": 2 * GB}})
        assert answer == {"return": {}}, answer
        assert size() == 2 * GB
    finally:
        qemu.kill()
        qemu.wait()

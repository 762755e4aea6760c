"""The image store across a crash: kill -9 during an upload, orphans, the reconciler, and log replay."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Iterator

import httpx

from cloudbox.services import STORES
from cloudbox.state.engine import replay
from tests.cloud import Cloud, wait_for
from tests.test_durability import _live_log_and_hashes

V = "/image/v2"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTETS = {"Content-Type": "application/octet-stream"}


def test_crash_during_upload_leaves_no_half_image_and_the_log_replays(new_cloud: Cloud, tmp_path: Path):
    new_cloud.init()
    new_cloud.start()
    store = new_cloud.data_dir / "images"
    admin = new_cloud.client(new_cloud.token())

    # A workload touching every image command.
    guest = tmp_path / "guest.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(guest), "8M"], check=True, capture_output=True)
    data = guest.read_bytes()
    kept = admin.post(V + "/images", json={"name": "kept", "disk_format": "qcow2", "container_format": "bare",
                                           "tags": ["a"], "color": "red"}).json()
    assert admin.put(f"{V}/images/{kept['id']}/file", content=data, headers=OCTETS).status_code == 204
    ops = [{"op": "replace", "path": "/color", "value": "blue"}, {"op": "add", "path": "/min_disk", "value": 1}]
    assert admin.patch(f"{V}/images/{kept['id']}", json=ops, headers=PATCH).status_code == 200
    assert admin.put(f"{V}/images/{kept['id']}/tags/b").status_code == 204
    assert admin.delete(f"{V}/images/{kept['id']}/tags/a").status_code == 204
    assert admin.post(f"{V}/images/{kept['id']}/members", json={"member": "some-project"}).status_code == 200
    assert admin.put(f"{V}/images/{kept['id']}/members/some-project", json={"status": "accepted"}).status_code == 200
    assert admin.post(f"{V}/images/{kept['id']}/actions/deactivate").status_code == 204
    assert admin.post(f"{V}/images/{kept['id']}/actions/reactivate").status_code == 204
    gone = admin.post(V + "/images", json={"name": "gone", "disk_format": "raw", "container_format": "bare"}).json()
    assert admin.put(f"{V}/images/{gone['id']}/file", content=data, headers=OCTETS).status_code == 400  # qcow2 as raw
    assert admin.delete(f"{V}/images/{gone['id']}").status_code == 204

    # An upload that is killed halfway: the client sends a part, then holds the upload open until
    # the node is killed.
    slow = admin.post(V + "/images", json={"name": "slow", "disk_format": "raw", "container_format": "bare"}).json()
    killed = threading.Event()

    def body() -> Iterator[bytes]:
        yield b"\1" * (4 << 20)
        killed.wait(60)
        yield b"\1" * (1 << 20)

    def send() -> None:
        with new_cloud.client(new_cloud.token()) as client:
            try:
                client.put(f"{V}/images/{slow['id']}/file", content=body(), headers=OCTETS)
            except httpx.HTTPError:
                pass  # the server died

    sender = threading.Thread(target=send)
    sender.start()
    try:
        wait_for(lambda: [f for f in os.listdir(store) if f.startswith(".tmp-")], 20, "the upload to start writing")
        assert admin.get(f"{V}/images/{slow['id']}").json()["status"] == "saving"
        admin.close()
        new_cloud.stop(signal.SIGKILL)
    finally:
        killed.set()
        sender.join()

    # While the node is down, litter the store: a file of no image, and an old temp file.
    orphan = store / str(uuid.uuid4())
    orphan.write_bytes(b"left behind")
    (store / f".tmp-{uuid.uuid4()}-{uuid.uuid4().hex}").write_bytes(b"half")

    new_cloud.start()
    with new_cloud.client(new_cloud.token()) as admin:
        assert sorted(os.listdir(store)) == [kept["id"]]
        interrupted = admin.get(f"{V}/images/{slow['id']}").json()
        assert interrupted["status"] == "queued" and interrupted["size"] is None
        r = admin.get(f"{V}/images/{kept['id']}/file")
        assert r.status_code == 200 and hashlib.sha512(r.content).hexdigest() == hashlib.sha512(data).hexdigest()
        # The interrupted image takes a new upload.
        assert admin.put(f"{V}/images/{slow['id']}/file", content=b"\1" * 4096, headers=OCTETS).status_code == 204

    entries, live = _live_log_and_hashes(new_cloud.data_dir / "state.db")
    assert {"images", "image_tags", "image_members"} <= set(live)
    assert sum('"image.' in e for e in entries) >= 15
    assert replay(entries, tmp_path / "replayed.db", STORES) == live

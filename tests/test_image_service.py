"""The image service's methods for other services (compute), on a real state engine without HTTP."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from cloudbox.errors import BadRequest, Conflict, NotFound
from cloudbox.image import core
from cloudbox.image.service import ImageService
from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine


@dataclass(frozen=True)
class Caller:
    """The parts of an AuthContext the image service reads: a member of one project."""

    project_id: str | None
    is_cloud_admin: bool = False
    is_cloud_reader: bool = False

    def can_read_project(self, project_id: str) -> bool:
        return self.is_cloud_reader or project_id == self.project_id

    def can_write_project(self, project_id: str) -> bool:
        return self.is_cloud_admin or project_id == self.project_id


def qcow2(path: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(path), "8M"], check=True, capture_output=True)
    return path


@pytest.fixture
async def service(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    images = ImageService(engine, None, tmp_path / "images", "node-1")
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await nursery.start(images.run)
        yield images
        nursery.cancel_scope.cancel()
    engine.close()


async def test_snapshot_file_becomes_an_active_private_image(service: ImageService, tmp_path: Path):
    owner, stranger = Caller("p1"), Caller("p2")
    source = qcow2(tmp_path / "snapshot.qcow2")
    data = source.read_bytes()
    image = await service.create_image_from_file(owner, "snap", source, "qcow2", {"image_type": "snapshot"})
    assert image["status"] == "active" and image["visibility"] == "private" and image["owner"] == "p1"
    assert image["properties"] == {"image_type": "snapshot"}
    assert image["size"] == len(data) and image["virtual_size"] == 8 << 20
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert not source.exists()  # moved into the store

    path, shown = await service.image_path(image["id"], owner)
    assert path == tmp_path / "images" / image["id"] and path.read_bytes() == data
    assert shown["id"] == image["id"]
    with pytest.raises(NotFound):
        await service.image_path(image["id"], stranger)
    assert (await service.image_path(image["id"], Caller(None, is_cloud_reader=True)))[0] == path


async def test_a_bad_snapshot_leaves_no_image(service: ImageService, tmp_path: Path):
    owner = Caller("p1")
    bad = tmp_path / "bad.qcow2"
    bad.write_bytes(b"not an image" * 1000)
    with pytest.raises(BadRequest):
        await service.create_image_from_file(owner, "bad", bad, "qcow2", {})
    assert await service.list(owner, core.ListOptions(), None, 10) == []
    assert list((tmp_path / "images").iterdir()) == []


async def test_image_path_needs_an_active_image_and_reconcile_is_idempotent(service: ImageService, tmp_path: Path):
    owner = Caller("p1")
    queued = await service.create(owner, {"name": "q", "disk_format": "qcow2", "container_format": "bare"})
    with pytest.raises(Conflict):
        await service.image_path(queued["id"], owner)
    (tmp_path / "images" / "stray").write_bytes(b"x")
    assert await service.reconcile() == {"removed": 1, "reset": 0}
    assert await service.reconcile() == {"removed": 0, "reset": 0}


async def test_peer_data_is_the_image_and_its_open_file(service: ImageService, tmp_path: Path):
    owner = Caller("p1")
    data = qcow2(tmp_path / "disk.qcow2").read_bytes()
    image = await service.create_image_from_file(owner, "copied", tmp_path / "disk.qcow2", "qcow2", {})
    shown, file = await service.peer_data(image["id"])
    with file:
        assert shown["id"] == image["id"] and shown["size"] == len(data) and file.read() == data
    queued = await service.create(owner, {"name": "q", "disk_format": "qcow2", "container_format": "bare"})
    with pytest.raises(NotFound, match="no data of image"):
        await service.peer_data(queued["id"])


def test_the_services_build_no_http_responses():
    # Services return data; the routes (api*.py) render it.  No web framework in a service module.
    import ast

    root = Path(__file__).resolve().parents[1] / "cloudbox"
    for path in [root / "image" / "service.py", *sorted((root / "identity").glob("service*.py"))]:
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
        web = {m for m in imported if m.split(".")[0] in ("quart", "quart_trio", "werkzeug", "hypercorn")
               or m.startswith("cloudbox.api")}
        assert not web, f"{path.relative_to(root)} imports {sorted(web)}"

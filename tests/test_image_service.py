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
    user_id: str = "u1"

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


async def chunks(data: bytes):
    yield data


@pytest.fixture
async def stopped(tmp_path: Path):
    """The image service of a node that is not running it (as after a crash): nothing runs imports."""
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        yield ImageService(engine, None, tmp_path / "images", "node-1")
        nursery.cancel_scope.cancel()
    engine.close()


async def test_a_node_that_restarts_keeps_staged_data_and_fails_imports_it_no_longer_runs(stopped: ImageService,
                                                                                          tmp_path: Path):
    owner = Caller("p1")
    body = {"disk_format": "raw", "container_format": "bare"}
    staged = await stopped.create(owner, {"name": "staged", **body})
    importing = await stopped.create(owner, {"name": "importing", **body})
    for image in (staged, importing):
        await stopped.imports.stage(owner, image["id"], chunks(b"x" * 4096))
    temps = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert len(temps) == 2 and all(name.startswith(".tmp-") for name in temps)
    await stopped.imports.start(owner, importing["id"], {"method": {"name": "glance-direct"}}, "req-1")
    assert (await stopped.get(owner, importing["id"]))["status"] == "importing"  # no nursery: nobody runs it

    assert await stopped.reconcile() == {"removed": 0, "reset": 1}
    assert (await stopped.get(owner, staged["id"]))["status"] == "uploading"  # its data waits for its import
    failed = await stopped.get(owner, importing["id"])
    assert failed["status"] == "queued" and failed["properties"]["os_glance_failed_import"] == "local"
    [task] = await stopped.imports.image_tasks(owner, importing["id"])
    assert task["status"] == "failure" and "stopped" in task["message"] and task["request_id"] == "req-1"
    assert [p.name for p in (tmp_path / "images").iterdir()] == [n for n in temps if staged["id"] in n]  # its own
    assert await stopped.reconcile() == {"removed": 0, "reset": 0}

    # A stage whose data is gone is no stage: the image is queued again.
    [kept] = [n for n in temps if staged["id"] in n]
    (tmp_path / "images" / kept).unlink()
    assert await stopped.reconcile() == {"removed": 0, "reset": 1}
    again = await stopped.get(owner, staged["id"])
    assert again["status"] == "queued" and "os_glance_stage_host" not in again["properties"]


async def test_an_import_runs_where_the_data_is_staged(service: ImageService, tmp_path: Path):
    owner = Caller("p1")
    image = await service.create(owner, {"name": "i", "disk_format": "qcow2", "container_format": "bare"})
    data = qcow2(tmp_path / "disk.qcow2").read_bytes()
    await service.imports.stage(owner, image["id"], chunks(data))
    await service.imports.start(owner, image["id"], {"method": {"name": "glance-direct"}}, "req-2")
    with trio.fail_after(30):
        # The image turns active when FinishImport commits; the task leaves `running` just after.
        while (await service.get(owner, image["id"]))["status"] != "active" or service.imports.running:
            await trio.sleep(0.01)
    assert [p.name for p in (tmp_path / "images").iterdir()] == [image["id"]]
    assert (tmp_path / "images" / image["id"]).read_bytes() == data


def test_the_services_build_no_http_responses():
    # Services return data; the routes (api*.py) render it.  No web framework in a service module.
    import ast

    root = Path(__file__).resolve().parents[1] / "cloudbox"
    for path in [*sorted((root / "image").glob("service*.py")), *sorted((root / "identity").glob("service*.py"))]:
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
        web = {m for m in imported if m.split(".")[0] in ("quart", "quart_trio", "werkzeug", "hypercorn")
               or m.startswith("cloudbox.api")}
        assert not web, f"{path.relative_to(root)} imports {sorted(web)}"

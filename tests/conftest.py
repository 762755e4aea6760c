from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.cloud import Cloud, free_port
from tests.identity_helpers import Ident, Team


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory):
    """One running single-node cloud shared by the tests that only add their own resources."""
    node = Cloud(tmp_path_factory.mktemp("cloud") / "data", free_port())
    node.init()
    node.start()
    yield node
    node.stop()


@pytest.fixture
def new_cloud(tmp_path: Path):
    """A fresh, not yet started cloud of a test's own (call .init() and .start())."""
    node = Cloud(tmp_path / "data", free_port())
    yield node
    node.stop()


@pytest.fixture(scope="session")
def guest_image() -> Path:
    """Our test guest, built once (firmware/build-guest.sh caches the build itself)."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([str(root / "firmware" / "build-guest.sh")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    image = root / "firmware" / "build" / "guest.qcow2"
    assert image.exists()
    return image


@pytest.fixture(scope="module")
def ident(cloud: Cloud) -> Iterator[Ident]:
    """The admin's view of the shared cloud (identity tests), one per test module."""
    ident = Ident(cloud)
    yield ident
    ident.admin.close()
    ident.anon.close()


@pytest.fixture(scope="module")
def team(ident: Ident) -> Iterator[Team]:
    """A project with a reader and a member, one per test module."""
    team = Team(ident)
    yield team
    team.reader_client.close()
    team.member_client.close()

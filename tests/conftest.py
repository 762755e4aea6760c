from __future__ import annotations

from pathlib import Path

import pytest

from tests.cloud import Cloud, free_port


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

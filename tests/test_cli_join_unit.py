"""`cloudbox join` on a node installed from the .deb under systemd is served by cloudbox.service,
as `cloudbox init` is (issue 19).  Served by a background process instead, the node stayed on the
old code after `apt install` of a newer package: postinst's try-restart skips an inactive unit.
(The systemd side itself runs in packaging/test-deb.sh and test-rolling-upgrade.sh.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloudbox import cli
from cloudbox.cluster import joining


@dataclass
class Joined:
    name: str = "node2"
    node_id: str = "n2"
    voter: bool = True
    revision: int = 7
    url: str = "https://10.0.0.2:8443"
    undone: bool = False

    def undo(self, directory: object) -> None:
        self.undone = True


@pytest.fixture
def joined(monkeypatch: pytest.MonkeyPatch) -> Joined:
    result = Joined()
    monkeypatch.setattr(joining, "join", lambda *args, **kwargs: result)
    return result


def served_by(monkeypatch: pytest.MonkeyPatch, unit_started: bool) -> list[str]:
    ways: list[str] = []
    monkeypatch.setattr(cli, "_start_unit", lambda directory: ways.append("unit") or unit_started)
    monkeypatch.setattr(cli, "_serve_background", lambda directory: ways.append("background"))
    return ways


def run_join(tmp_path: Path, *extra: str) -> str:
    result = CliRunner().invoke(cli.cli, ["join", "cbx1.token", "--data-dir", str(tmp_path / "data"),
                                          "--advertise", "10.0.0.2", *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_join_under_the_packages_systemd_starts_the_unit_not_a_background_process(tmp_path, monkeypatch, joined):
    ways = served_by(monkeypatch, unit_started=True)
    out = run_join(tmp_path)
    assert ways == ["unit"]
    assert "started cloudbox.service" in out and "API: https://10.0.0.2:8443" in out


def test_join_without_the_unit_serves_in_the_background(tmp_path, monkeypatch, joined):
    ways = served_by(monkeypatch, unit_started=False)
    out = run_join(tmp_path)
    assert ways == ["unit", "background"]
    assert "cloudbox.service" not in out and not joined.undone


def test_join_no_serve_starts_nothing(tmp_path, monkeypatch, joined):
    ways = served_by(monkeypatch, unit_started=True)
    assert "Start it with" in run_join(tmp_path, "--no-serve")
    assert ways == []

"""Rules of the code base that a test can hold: append-only migrations, command kinds recorded with
their schema, documented settings."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cloudbox.services import STORES
from cloudbox.settings import SETTINGS
from cloudbox.state.migrations import migration_hash

ROOT = Path(__file__).resolve().parents[1]


def test_landed_migrations_are_unchanged_and_recorded():
    lock = [
        line.split() for line in (ROOT / "tests" / "migrations.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    landed = {(service, int(version)): digest for service, version, digest in lock}
    current = {
        (store.service, i): migration_hash(sql)
        for store in STORES
        for i, sql in enumerate(store.migrations, 1)
    }
    for key, digest in landed.items():
        assert key in current, f"migration {key} was removed; migrations are append-only"
        assert current[key] == digest, f"migration {key} was edited after it landed; add a new one instead"
    unrecorded = sorted(set(current) - set(landed))
    assert not unrecorded, f"record new migrations in tests/migrations.lock: {unrecorded}"


def test_command_kinds_are_recorded_with_the_schema_that_brought_them():
    """A node of an older release stops at a kind it does not know (cloudbox.state.commands), so a
    kind a release adds must be proposed only once every node speaks that release's schema: its
    ``since`` is that schema, and it never changes once recorded here."""
    from cloudbox.state.commands import COMMAND_SCHEMA

    lock = dict(line.split() for line in (ROOT / "tests" / "commands.lock").read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    # In a fresh interpreter: other tests register kinds of their own.
    listing = subprocess.run([sys.executable, "-c", "import json; from cloudbox.services import STORES; "
                              "from cloudbox.state.commands import REGISTRY; "
                              "print(json.dumps({k: str(c.SINCE) for k, c in REGISTRY.items()}))"],
                             capture_output=True, text=True, check=True, cwd=ROOT)
    current = json.loads(listing.stdout)
    gone = sorted(set(lock) - set(current))
    assert not gone, f"command kinds in the log must stay decodable; these went: {gone}"
    changed = sorted(kind for kind in lock if lock[kind] != current[kind])
    assert not changed, f"a recorded kind's since never changes: {changed}"
    new = sorted(set(current) - set(lock))
    assert not new, (f"record new command kinds in tests/commands.lock: {new}; a kind older releases do not know "
                     f"is declared @command(name, since=N) with N a schema no landed release spoke "
                     f"(COMMAND_SCHEMA is {COMMAND_SCHEMA}: bump it if the last release already spoke it)")
    assert max(int(v) for v in current.values()) == COMMAND_SCHEMA


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    table = re.findall(r"^\| `(\w+)` \|", readme, flags=re.M)
    for setting in SETTINGS:
        assert setting.name in table, f"setting {setting.name} is missing from README.md's settings table"
        assert setting.scope in ("node", "cluster")
    assert set(table) == {s.name for s in SETTINGS}, "README.md documents a setting that does not exist"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^(\./packaging/test\.sh)\s", readme, flags=re.M)
    assert command, "README.md lost its test command"
    assert command.group(1) in ci


def test_catalog_lists_exactly_the_mounted_apis(tmp_path):
    from cloudbox.node import DataDir
    from cloudbox.server import Node
    from cloudbox.services import CATALOG
    from tests.cloud import free_port, run_cli

    data = tmp_path / "data"
    run_cli("init", "--data-dir", str(data), "--listen", f"127.0.0.1:{free_port()}", "--advertise", "127.0.0.1",
            "--no-user-config")
    directory = DataDir(data)
    from cloudbox.settings import Settings

    node = Node(directory, Settings.load(data))
    mounted = {(s.catalog[0], s.catalog[1], s.prefix) for s in node.specs if s.catalog}
    assert mounted == set(CATALOG)


def test_clock_formats_and_parses_round_trip():
    from cloudbox import clock

    assert clock.iso(0) == "1970-01-01T00:00:00Z"
    assert clock.iso(1.5, micro=True) == "1970-01-01T00:00:01.500000Z"
    assert clock.parse_iso("1970-01-01T00:00:01.500000Z") == 1.5
    assert clock.parse_iso("1970-01-01T00:01:00") == 60.0  # no zone: UTC
    assert clock.parse_iso("1970-01-01T01:00:00+01:00") == 0.0
    with pytest.raises(ValueError):
        clock.parse_iso("yesterday")


PURE_FORBIDDEN = ("trio", "sqlite3", "sqlite_utils", "libvirt", "pyroute2", "quart", "hypercorn", "httpx")


def test_no_core_module_imports_io_libraries():
    """core.py is pure logic (ARCHITECTURE.md): tested synchronously, without root or a database."""
    cores = sorted((ROOT / "cloudbox").glob("*/core.py"))
    assert len(cores) >= 4
    for path in cores:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top not in PURE_FORBIDDEN, f"{path.relative_to(ROOT)} imports {name}"

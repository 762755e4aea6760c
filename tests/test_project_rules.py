"""Rules of the code base that a test can hold: append-only migrations, documented settings."""

from __future__ import annotations

import re
from pathlib import Path

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

"""Every store brings its commands with it: in a fresh interpreter that imports only the list of
stores, every command type decodes, has exactly one apply function, and a log replays."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloudbox.services import STORES
from cloudbox.errors import InternalError
from cloudbox.state.commands import REGISTRY, decode

ROOT = Path(__file__).resolve().parents[1]

# Run in a new interpreter, so that no other test's imports can register a command for us.
FRESH_CHECK = r"""
import dataclasses, json, sys
from cloudbox.services import STORES
from cloudbox.state.commands import REGISTRY, decode, encode

def sample(type_text):
    t = type_text.replace(" ", "")
    if t.endswith("|None") or t.startswith("Optional"):
        return None
    for prefix, value in (("str", "x"), ("int", 1), ("float", 1.5), ("bool", True), ("dict", {}),
                          ("tuple", ()), ("list", [])):
        if t.startswith(prefix):
            return value
    return None

report = {"stores": {}, "orphans": sorted(REGISTRY)}
for store in STORES:
    kinds = store.command_types()
    decoded = 0
    for kind in kinds:
        cmd = kind(**{f.name: sample(str(f.type)) for f in dataclasses.fields(kind)})
        assert decode(encode(cmd)) == cmd, kind.TYPE
        decoded += 1
    report["stores"][store.service] = {
        "types": sorted(k.TYPE for k in kinds),
        "handled": sorted(k.TYPE for k in store.handlers),
        "decoded": decoded,
    }
    report["orphans"] = [t for t in report["orphans"] if t not in {k.TYPE for k in kinds}]
print(json.dumps(report))
"""

FRESH_REPLAY = r"""
import json, sys
from cloudbox.services import STORES
from cloudbox.state.engine import replay
entries = json.loads(open(sys.argv[1]).read())
print(json.dumps(replay(entries, sys.argv[2], STORES)))
"""


def _fresh(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_every_command_of_every_store_decodes_in_a_fresh_interpreter():
    report = _fresh(FRESH_CHECK)
    assert set(report["stores"]) == {"identity", "compute", "image", "network", "cluster", "volume", "object",
                                    "orchestration"}
    for service, seen in report["stores"].items():
        assert seen["types"], f"{service} registers no command"
        assert seen["decoded"] == len(seen["types"])
        # every type registered by the service's commands module is applied by its store, and only those
        assert seen["handled"] == seen["types"], service
        assert all(t.startswith(service + ".") for t in seen["types"]), service
    assert report["orphans"] == []  # no command type outside the stores' commands modules


def replay_in_fresh_interpreter(entries: list[str], tmp_path: Path) -> dict[str, str]:
    """Table hashes of ``entries`` replayed by an interpreter that imported only the list of stores."""
    log_file = tmp_path / "log.json"
    log_file.write_text(json.dumps(entries))
    return _fresh(FRESH_REPLAY, str(log_file), str(tmp_path / "fresh-replay.db"))


def test_an_undecodable_command_is_an_internal_error_not_a_bad_request():
    with pytest.raises(InternalError) as caught:
        decode('{"type": "nobody.thing.do", "args": {}}')
    assert caught.value.status == 500
    assert "nobody.thing.do" not in REGISTRY


def test_a_store_refuses_a_command_it_has_no_apply_for():
    identity, network = STORES[0], STORES[3]
    stray = network.command_types()[0]
    with pytest.raises(InternalError) as caught:
        identity.apply(None, stray(**{f.name: None for f in dataclasses.fields(stray)}))
    assert caught.value.status == 500 and "identity" in caught.value.message

"""What a node does not load until it needs it (issue 14: idle memory): each test runs a fresh
interpreter, since this one has loaded everything the other tests use."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloudbox import nbd_tls, pki
from cloudbox.state import commands

ROOT = Path(__file__).resolve().parents[1]
OPENSSL_BINDING = "cryptography.hazmat.bindings.openssl.binding"


def fresh(script: str) -> list[str]:
    """The words ``script`` prints, run by a fresh interpreter from this tree."""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


def node_with_ca(root: Path) -> pki.KeyPair:
    ca = pki.create_ca("test", dt.datetime.now(dt.timezone.utc))
    (root / "pki").mkdir(parents=True)
    (root / "pki" / "ca.pem").write_bytes(ca.cert_pem)
    (root / "pki" / "ca.key").write_bytes(ca.key_pem)
    (root / "node.json").write_text(json.dumps({"id": "node-b", "name": "node-b"}))
    return ca


def test_the_nbd_client_certificate_is_written_by_a_child_process(tmp_path: Path) -> None:
    ca = node_with_ca(tmp_path)
    script = ("import sys\nfrom pathlib import Path\nfrom cloudbox import nbd_tls\n"
              f"print(nbd_tls.guest_client_dir(Path({str(tmp_path)!r}), None))\n"
              f"print({OPENSSL_BINDING!r} in sys.modules)\n"
              f"nbd_tls.write_client_dir(Path({str(tmp_path)!r}), 'node-b')\n"  # what the child did, here
              f"print({OPENSSL_BINDING!r} in sys.modules)\n")
    assert fresh(script) == [str(nbd_tls.client_dir(tmp_path)), "False", "True"]
    out = nbd_tls.client_dir(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["ca-cert.pem", "client-cert.pem", "client-key.pem"]
    assert (out / "ca-cert.pem").read_bytes() == ca.cert_pem
    assert nbd_tls._signed_by((out / "client-cert.pem").read_bytes(), ca.cert_pem)
    assert (out.stat().st_mode & 0o777, (out / "client-key.pem").stat().st_mode & 0o777) == (0o700, 0o600)


def test_a_failing_child_says_why(tmp_path: Path) -> None:
    node_with_ca(tmp_path)
    (tmp_path / "pki" / "ca.pem").unlink()  # the key without its certificate
    with pytest.raises(OSError, match="NBD client certificate.*ca.pem"):
        nbd_tls.guest_client_dir(tmp_path, None)
    assert not (nbd_tls.client_dir(tmp_path) / "client-key.pem").exists()


def test_the_node_imports_no_yaml_mime_or_x509_until_it_needs_them() -> None:
    script = ("import sys\nimport cloudbox.server\n"
              "print('yaml' in sys.modules, 'email.mime' in sys.modules, 'cryptography.x509' in sys.modules)\n"
              "from cloudbox.orchestration import hot\n"
              "print(hot.load_document('heat_template_version: 2016-04-08\\nx: [1, 2]'))\n"
              "print('yaml' in sys.modules)\n")
    assert fresh(script) == ["False", "False", "False", "{'heat_template_version':", "'2016-04-08',", "'x':", "[1,",
                             "2]}", "True"]


def test_routes_compile_their_url_builders_at_the_first_build() -> None:
    from quart.routing import QuartRule
    from werkzeug.routing import Map

    from cloudbox.api.app import LazyBuilderRule

    def adapter(cls: type) -> Any:
        return Map([cls("/v/<name>/items/<int:n>", endpoint="item", methods=["GET"]),
                    cls("/plain", endpoint="plain")]).bind("cloud")

    ours, werkzeugs = adapter(LazyBuilderRule), adapter(QuartRule)
    rule = next(r for r in ours.map.iter_rules() if r.endpoint == "item")
    compiled = {"_build": "<werkzeug routing>", "_build_unknown": "<werkzeug routing>"}
    assert {slot: getattr(rule, slot).__code__.co_filename for slot in compiled} != compiled
    for endpoint, values, options in (("item", {"name": "a b/c", "n": 3}, {}), ("item", {"name": "x", "n": 4, "q": "1"}, {}),
                                      ("item", {"name": "x", "n": 4, "q": "1"}, {"append_unknown": False}),
                                      ("item", {"name": "x", "n": 5}, {"force_external": True}), ("plain", {}, {})):
        assert ours.build(endpoint, values, **options) == werkzeugs.build(endpoint, values, **options)
    assert {slot: getattr(rule, slot).__code__.co_filename for slot in compiled} == compiled
    assert ours.match("/v/x/items/7") == werkzeugs.match("/v/x/items/7") == ("item", {"name": "x", "n": 7})


def test_the_network_driver_imports_unittest_mock_without_the_unittest_package() -> None:
    script = ("import sys\nimport cloudbox.network.driver.real\n"
              "print('unittest.mock' in sys.modules, 'unittest.main' in sys.modules)\n"
              "import unittest\n"  # the package's own names still import (its __init__ runs then)
              "print(unittest.TestCase.__name__, unittest.mock.Mock.__name__, 'unittest.main' in sys.modules)\n")
    assert fresh(script) == ["True", "False", "TestCase", "Mock", "True"]


def test_command_classes_share_their_generated_methods() -> None:
    """Command classes get only __init__ of their own; what else dataclass(frozen=True) gives them
    comes from Command, with the same answers as a class dataclass made itself."""
    script = ("import cloudbox.server\nfrom cloudbox.state.commands import REGISTRY\n"
              "own = {'__eq__', '__hash__', '__repr__', '__setattr__', '__delattr__'}\n"
              "print(len(REGISTRY) > 150, sorted({n for c in REGISTRY.values() for n in own & c.__dict__.keys()}))\n")
    assert fresh(script) == ["True", "[]"]

    @commands.command("test.memory.shared")
    class Shared(commands.Command):
        name: str
        tags: tuple[str, ...] = ()
        size: int | None = None

    @dataclasses.dataclass(frozen=True)
    class Stock:
        name: str
        tags: tuple[str, ...] = ()
        size: int | None = None

    @commands.command("test.memory.shared.sub")
    class Sub(Shared):
        extra: int = 0

    try:
        for args in ({"name": "a"}, {"name": "b", "tags": ("x", "y"), "size": 3}):
            ours, stock = Shared(**args), Stock(**args)
            assert repr(ours).replace("Shared", "Stock", 1) == repr(stock)
            assert hash(ours) == hash(stock)
            assert ours == Shared(**args) and ours != Shared(**{**args, "size": 4}) and ours != Sub(**args)
            assert ours != stock and ours.__eq__(stock) is NotImplemented
            for attempt in (lambda: setattr(ours, "name", "z"), lambda: setattr(ours, "other", 1),
                            lambda: delattr(ours, "name")):
                with pytest.raises(dataclasses.FrozenInstanceError):
                    attempt()
            assert commands.decode(commands.encode(ours)) == ours
        assert repr(Sub("a", extra=2)).endswith("Sub(name='a', tags=(), size=None, extra=2)")
        assert len({Shared("a"), Shared("a"), Shared("b")}) == 2
    finally:
        del commands.REGISTRY["test.memory.shared"], commands.REGISTRY["test.memory.shared.sub"]


def test_re2_is_imported_at_the_first_pattern() -> None:
    script = ("import sys\nimport cloudbox.server\nfrom cloudbox.compute import core\n"
              "from cloudbox.orchestration.hot import patterns\n"
              "print('re2' in sys.modules)\n"
              "print(core.regex_matcher('^web-[0-9]+', 'name')('web-12'), core.regex_matcher('x', 'name')('web'))\n"
              "print('re2' in sys.modules, patterns.matcher('[a-z]+')('abc'), patterns.matcher('(a+)+')('aab'))\n")
    assert fresh(script) == ["False", "True", "False", "True", "True", "False"]

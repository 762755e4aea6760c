"""tempest.conf claims Cinder in every run while features.CINDER_FOR_ALL is on (it is), and with it
off only where asked (a run of the volume service, or --cinder); the volume flags say what the
volume API serves."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import pytest

from tests.tempest import features, runner


class _Answer:
    def json(self) -> dict[str, Any]:
        return {"extensions": [{"alias": "router"}]}


class _Client:
    def get(self, path: str) -> _Answer:
        return _Answer()


class _Node:
    password, auth_url, ca = "pw", "https://127.0.0.1:1/identity/v3", "/ca.pem"

    def token(self) -> str:
        return "t"

    def client(self, token: str) -> _Client:
        return _Client()


REFS = {"image_ref": "i", "image_ref_alt": "j", "flavor_ref": "f", "flavor_ref_alt": "g", "public_network_id": "n",
        "public_network_name": "public"}


def conf(cinder: bool) -> configparser.ConfigParser:
    parsed = configparser.ConfigParser()
    parsed.read_string(features.render(node=_Node(), refs=REFS, log_dir=Path("/tmp"), cinder=cinder))
    return parsed


def test_cinder_is_claimed_only_when_asked(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(features, "CINDER_FOR_ALL", False)
    assert conf(False)["service_available"]["cinder"] == "false"
    on = conf(True)
    assert on["service_available"]["cinder"] == "true"
    assert on["volume"]["catalog_type"] == "block-storage" and on["volume"]["max_microversion"] == "3.71"
    assert on["volume-feature-enabled"]["manage_volume"] == "false"
    assert on["volume-feature-enabled"]["snapshot"] == "true"
    monkeypatch.setattr(features, "CINDER_FOR_ALL", True)  # the one-line switch, on in the repository
    assert conf(False)["service_available"]["cinder"] == "true"


def test_the_volume_selection_names_tempests_volume_tests():
    assert runner.SELECTIONS["volume"] == r"^tempest\.api\.volume\."
    assert "volume" not in runner.SELECTIONS["all"]

"""The KVM probe's verdict kept for the host's boot (compute/driver/kvm_probe.py): a later node
start on the same host skips the probe (which costs 40 s where starting a KVM guest blocks), unless
something the verdict depends on changed; a verdict from a failure to start the probe is not kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudbox.compute.driver import kvm_probe


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "run" / "kvm-probe.json"
    monkeypatch.setattr(kvm_probe, "HOST_CACHE", path)
    monkeypatch.setattr(kvm_probe, "_probe_result", None)
    return path


def test_a_kept_verdict_is_used_while_the_host_is_the_same(fresh: Path):
    assert kvm_probe.load_host_verdict() is None
    kvm_probe.keep_host_verdict(("tcg", "a KVM probe guest printed nothing in 10 s"))
    accel, detail = kvm_probe.load_host_verdict()  # type: ignore[misc]
    assert accel == "tcg" and detail.startswith("a KVM probe guest printed nothing in 10 s (found by an earlier")
    # What it depends on changes (a reboot, a new QEMU, KVM's nested parameter): probe again.
    kept = json.loads(fresh.read_text())
    for change in ({"boot_id": "another-boot"}, {"qemu": ["/usr/bin/qemu-system-x86_64", 1, 2]},
                   {"kvm_params": {"/sys/module/kvm_intel/parameters/nested": "Y"}}):
        fresh.write_text(json.dumps({**kept, "key": {**kept["key"], **change}}))
        assert kvm_probe.load_host_verdict() is None, change
    for junk in ("", "{", json.dumps({"key": kept["key"], "accel": "hvf", "detail": "x"}), "[]"):
        fresh.write_text(junk)
        assert kvm_probe.load_host_verdict() is None, junk


def test_only_the_probe_guests_own_verdicts_last(fresh: Path):
    kvm_probe.remember(("tcg", "a KVM guest could not start: permission denied"))
    assert not fresh.exists()  # a failure to start the probe may be passing: the next start probes again
    kvm_probe._probe_result = None  # noqa: SLF001 (a new process)
    kvm_probe.remember(("tcg", "the KVM probe did not finish in 40 s: starting a KVM guest blocks"), lasting=True)
    assert kvm_probe.load_host_verdict()[0] == "tcg"  # type: ignore[index]


def test_a_node_start_uses_the_kept_verdict_without_probing(fresh: Path, monkeypatch: pytest.MonkeyPatch):
    kvm_probe.keep_host_verdict(("kvm", "a KVM probe guest ran real-mode and protected-mode code in 0.4 s"))

    def no_probe(*_args: object) -> None:
        raise AssertionError("probed although the host's verdict was kept")

    monkeypatch.setattr(kvm_probe, "_probe", no_probe)
    accel, detail = kvm_probe.cached_probe_kvm(None, fresh.parent, None)  # type: ignore[arg-type]
    assert accel == "kvm" and "earlier probe in this boot" in detail


def test_an_unwritable_place_only_means_probing_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(kvm_probe, "HOST_CACHE", blocker / "kvm-probe.json")  # its parent is a file
    kvm_probe.keep_host_verdict(("tcg", "x"))
    assert kvm_probe.load_host_verdict() is None

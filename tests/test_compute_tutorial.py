"""The README's `openstack server stop demo-instance1; openstack server start demo-instance1`, typed
as one line against a real guest: the start is accepted while the guest still powers off (ACPI,
then acpid in the guest), waits for the stop, and the guest boots again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cloud import Cloud, wait_for
from tests.test_compute_libvirt import console, qemu_running, real_node, stop_and_clean
from tests.test_openstack_cli import openstack

pytestmark = pytest.mark.slow


@pytest.fixture
def node(tmp_path: Path, guest_image: Path):
    node = real_node(tmp_path / "data")
    node.start(timeout=120)
    yield node
    stop_and_clean(node)


def show(node: Cloud, server: str) -> dict:
    return json.loads(openstack(node, "server", "show", server, "-f", "json").stdout)


def test_stop_then_start_on_one_line_as_the_readme_types_it(node: Cloud, guest_image: Path):
    openstack(node, "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
              "--file", str(guest_image), "cirros")
    server = json.loads(openstack(node, "server", "create", "demo-instance1", "--flavor", "m1.tiny", "--image",
                                  "cirros", "--wait", "-f", "json").stdout)
    sid = server["id"]
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(node, "demo-instance1"), 180, "the guest to boot")

    started = time.monotonic()
    stop = openstack(node, "server", "stop", "demo-instance1")
    start = openstack(node, "server", "start", "demo-instance1")  # the stop is still powering off
    assert (stop.returncode, start.returncode) == (0, 0), start.stderr
    wait_for(lambda: (s := show(node, sid))["status"] == "ACTIVE" and s["OS-EXT-STS:task_state"] is None,
             180, "ACTIVE again")
    took = time.monotonic() - started
    assert qemu_running(sid)
    # The guest really went down (its shutdown line) and came up again (a second boot).
    wait_for(lambda: console(node, "demo-instance1").count("CLOUDBOX-GUEST: ready") == 2, 180, "the second boot")
    log = console(node, "demo-instance1")
    assert "CLOUDBOX-GUEST: shutdown" in log
    # The start came while the guest was still powering off: it was queued, not refused.
    assert "power action queued" in node.log_path.read_text()
    print(f"stop; start took {took:.1f} s until ACTIVE")
    openstack(node, "server", "delete", "--wait", "demo-instance1")

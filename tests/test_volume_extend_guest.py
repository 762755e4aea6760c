"""Extend of an attached volume in a real guest (libvirt's embedded QEMU, TCG; dir driver, raw):
`openstack volume set --size 2` at 3.42 on the volume a running guest holds. The volume goes
in-use → extending → in-use at 2 GB with its attachment kept, the file is 2 GB, and the guest
itself reports the new size (`disk-resized vdb:<bytes>` on its console: the kernel saw the
capacity change QEMU's block resize signalled). Below 3.42 the same request is a 400."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cloud import Cloud, wait_for
from tests.test_compute_libvirt import console
from tests.test_compute_volumes_libvirt import node, show  # noqa: F401 (a real node, this module's own)
from tests.test_openstack_cli import openstack
from tests.test_volume_api import V, fault, volume_file

pytestmark = pytest.mark.slow
GB = 1 << 30


def volume(node: Cloud, vid: str) -> dict:
    with node.client(node.token()) as admin:
        return admin.get(f"{V}/volumes/{vid}").json()["volume"]


def test_an_attached_volume_extended_and_the_guest_sees_its_size(node: Cloud, guest_image: Path):
    openstack(node, "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
              "--file", str(guest_image), "cirros")
    server = show(node, "server", "create", "test", "--flavor", "m1.tiny", "--image", "cirros", "--wait")
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(node, "test"), 300, "the guest to finish booting")
    vol1 = show(node, "volume", "create", "vol1", "--size", "1")
    wait_for(lambda: volume(node, vol1["id"])["status"] == "available", 60, "vol1 to be available")
    openstack(node, "server", "add", "volume", "test", "vol1")
    wait_for(lambda: f"disk-added vdb:{GB}" in console(node, "test"), 180, "the guest to see vdb")

    # Below 3.42: refused, nothing changes.
    with node.client(node.token()) as admin:
        action = f"{V}/volumes/{vol1['id']}/action"
        fault(admin.post(action, json={"os-extend": {"new_size": 2}}, headers={"OpenStack-API-Version": "volume 3.41"}),
              400, "in-use")
    assert (volume(node, vol1["id"])["status"], volume(node, vol1["id"])["size"]) == ("in-use", 1)

    openstack(node, "--os-volume-api-version", "3.42", "volume", "set", "--size", "2", "vol1")
    wait_for(lambda: volume(node, vol1["id"])["size"] == 2, 120, "vol1 to be 2 GB")
    grown = volume(node, vol1["id"])
    assert grown["status"] == "in-use", grown
    assert [a["server_id"] for a in grown["attachments"]] == [server["id"]]
    assert volume_file(node, vol1["id"]).stat().st_size == 2 * GB
    wait_for(lambda: f"disk-resized vdb:{2 * GB}" in console(node, "test"), 180, "the guest to see 2 GB on vdb")

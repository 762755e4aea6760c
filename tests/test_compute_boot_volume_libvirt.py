"""Boot from volume with real guests (libvirt's embedded QEMU, TCG) and the real openstack CLI:
our test guest boots from a volume made from its image, its root disk in the live domain XML is
that volume (no image disk); deleted with delete_on_termination false, the volume stays and boots
a second server."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cloud import Cloud, wait_for
from tests.compute_helpers import upload_image
from tests.test_compute_libvirt import console, node, qemu_pid  # noqa: F401 (node: a fixture)
from tests.test_openstack_cli import openstack

pytestmark = pytest.mark.slow
BOOT_WAIT = 300  # seconds: TCG guests on a loaded 2-core host boot slowly


def live_xml(node: Cloud, server_id: str) -> ET.Element:
    """The running domain's live XML, as libvirt keeps it in its status file (the node's embedded
    libvirt is private to its process; the status file is what it wrote for this running guest)."""
    found = [p for p in (node.data_dir / "libvirt").rglob(f"cloudbox-{server_id}.xml")
             if "<domstatus" in p.read_text(errors="replace")]
    assert found, "no live status XML for the domain"
    domain = ET.fromstring(found[0].read_text()).find("domain")
    assert domain is not None
    return domain


def show(node: Cloud, *args: str) -> dict:
    return json.loads(openstack(node, *args, "-f", "json").stdout)


def test_boot_from_a_volume_made_from_an_image_and_again(node: Cloud, guest_image: Path):
    with node.client(node.token()) as admin:
        upload_image(admin, guest_image, name="bfv-guest", visibility="public")
    # The CLI, verbatim: a 1 GB root volume made from the image (delete_on_termination false).
    server = show(node, "server", "create", "--flavor", "m1.tiny", "--boot-from-volume", "1", "--image",
                  "bfv-guest", "--wait", "bfv-one")
    assert server["status"] == "ACTIVE"
    sid = server["id"]
    shown = show(node, "server", "show", sid)
    assert shown["image"] == "N/A (booted from volume)"
    [volume_id] = [v["id"] for v in shown["volumes_attached"]]
    volume = show(node, "volume", "show", volume_id)
    assert volume["status"] == "in-use" and volume["size"] == 1 and str(volume["bootable"]).lower() == "true"
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(node, "bfv-one"), BOOT_WAIT,
             lambda: f"the guest to boot from its volume; its console ends: {console(node, 'bfv-one')[-1500:]}")

    # The root disk is the volume: vda, its serial the volume id, its source the volume's file.
    path = node.data_dir / "volumes" / f"volume-{volume_id}.raw"
    disks = live_xml(node, sid).findall("devices/disk")
    roots = [d for d in disks if d.find("target").get("dev") == "vda"]  # type: ignore[union-attr]
    assert len(roots) == 1 and roots[0].findtext("serial") == volume_id
    assert roots[0].find("source").get("file") == str(path)  # type: ignore[union-attr]
    assert roots[0].find("boot").get("order") == "1"  # type: ignore[union-attr]
    assert not (node.data_dir / "instances" / sid / "disk").exists()
    pid = qemu_pid(sid)
    assert pid is not None and str(path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()

    # Deleted with delete_on_termination false: the volume stays, available, and boots again.
    openstack(node, "server", "delete", "--wait", "bfv-one")
    wait_for(lambda: show(node, "volume", "show", volume_id)["status"] == "available", 60, "the volume to be free")
    again = show(node, "server", "create", "--flavor", "m1.tiny", "--volume", volume_id, "--wait", "bfv-two")
    assert again["status"] == "ACTIVE"
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(node, "bfv-two"), BOOT_WAIT,
             lambda: f"the volume to boot again; its console ends: {console(node, 'bfv-two')[-1500:]}")
    root = [d for d in live_xml(node, again["id"]).findall("devices/disk")
            if d.findtext("serial") == volume_id]
    assert [d.find("target").get("dev") for d in root] == ["vda"]  # type: ignore[union-attr]
    openstack(node, "server", "delete", "--wait", "bfv-two")
    wait_for(lambda: show(node, "volume", "show", volume_id)["status"] == "available", 60, "the volume to be free")

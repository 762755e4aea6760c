"""Issue 15, acceptance 5: in a two-node cluster (tests/cluster_net.py, each node a real `cloudbox
serve` with libvirt's embedded QEMU in its own network namespace), a volume kept on one node is
attached through the compute API to a guest on the other, over the volume node's NBD export
with TLS from the cluster CA: the guest's live definition names the nbd source, the guest reads
what is in the volume node's file and its write lands there. The export follows the attachment
(it survives a kill -9 of the volume node's cloudbox, an orphan export is removed, a dead export
daemon is started again and the guest's QEMU reconnects, detach and server delete stop it). The
volume extended in use grows in the guest (the export made again at the new size)."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import pytest

from cloudbox import nbd_tls
from cloudbox.volume.export import ExportDaemon, ExportSpec
from tests.cloud import wait_for
from tests.cluster_net import Node, Underlay
from tests.compute_helpers import LATEST
from tests.guest_dirs import guest_dir
from tests.test_volume_nbd_guest import USER_DATA

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces, libvirt and bridges need root"),
]
V = "/volume/v3"
LIBVIRT = ("--set", "compute_driver=libvirt")  # the data plane stays fake: the guest has no NIC


@pytest.fixture
def two(tmp_path: Path):
    net = Underlay(2, guest_dir(tmp_path, "nbd-nodes"))  # where QEMU's user may search (tests/guest_dirs.py)
    net.up()
    nodes = [net.node(1), net.node(2)]
    try:
        one, other = nodes
        one.init(*LIBVIRT)
        one.serve()
        joined = other.join(one.cluster_add("node2"), *LIBVIRT)
        assert joined.returncode == 0, joined.stderr
        other.password = one.password
        yield nodes
    finally:
        for node in nodes:
            if node.pid():
                node.cli("stop", "--data-dir", str(node.data_dir), check=False)
        net.down()


def volume(node: Node, volume_id: str) -> dict[str, Any] | None:
    with node.admin() as c:
        r = c.get(f"{V}/volumes/{volume_id}")
        return None if r.status_code == 404 else r.json()["volume"]


def wait_volume(node: Node, volume_id: str, status: str, timeout: float = 120) -> dict[str, Any]:
    return wait_for(lambda: (lambda v: v if v and v["status"] == status else None)(volume(node, volume_id)),
                    timeout, f"volume {volume_id} to be {status}")


def console(node: Node, server_id: str) -> str:
    with node.admin(timeout=60) as c:
        return c.post(f"/compute/v2.1/servers/{server_id}/action", json={"os-getConsoleOutput": {}}).json()["output"]


def daemon_of(node: Node) -> ExportDaemon:
    """The volume node's export daemon, reached from here through its QMP socket."""
    return ExportDaemon(node.data_dir / "nbd-exports", nbd_tls.server_dir(node.data_dir), node.ip)


def live_xml(node: Node, server_id: str) -> str:
    """The running domain's definition as libvirt keeps it (its status file has hot-plugged disks)."""
    return (node.data_dir / "libvirt" / "run" / "qemu" / f"cloudbox-{server_id}.xml").read_text()


def test_a_guest_on_one_node_uses_a_volume_kept_on_the_other(two: list[Node], guest_image: Path):
    one, _ = two
    with one.admin(timeout=120) as c:
        image = c.post("/image/v2/images", json={"name": "guest", "disk_format": "qcow2", "container_format": "bare",
                                                  "visibility": "public"}).json()
        r = c.put(f"/image/v2/images/{image['id']}/file", content=guest_image.read_bytes(),
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        r = c.post("/compute/v2.1/servers", headers=LATEST, json={"server": {
            "name": "nbd-guest", "flavorRef": "42", "imageRef": image["id"], "networks": "none", "config_drive": True,
            "user_data": base64.b64encode(USER_DATA.encode()).decode()}})
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]

    def active() -> dict[str, Any] | None:
        server = one.admin().get(f"/compute/v2.1/servers/{sid}", headers=LATEST).json()["server"]
        assert server["status"] != "ERROR", server.get("fault")
        return server if server["status"] == "ACTIVE" else None

    server = wait_for(active, 300, "the server to be ACTIVE")
    guest_node = next(n for n in two if n.name == server["OS-EXT-SRV-ATTR:host"])
    keeper = next(n for n in two if n is not guest_node)  # the volume is made by the other node
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(one, sid), 300, "the guest to be ready")

    with keeper.admin() as c:
        r = c.post(f"{V}/volumes", json={"volume": {"size": 1, "name": "far"}})
        assert r.status_code == 202, r.text
        vid = r.json()["volume"]["id"]
    made = wait_volume(keeper, vid, "available")
    assert made["os-vol-host-attr:host"].startswith(keeper.name + "@")
    data = keeper.data_dir / "volumes" / f"volume-{vid}.raw"
    with data.open("r+b") as f:
        f.write(b"MARKER-ON-THE-KEEPER\n")

    # Attached through the guest's node's compute API: hot-plugged over NBD with TLS.
    with guest_node.admin() as c:
        r = c.post(f"/compute/v2.1/servers/{sid}/os-volume_attachments", headers=LATEST,
                   json={"volumeAttachment": {"volumeId": vid}})
        assert r.status_code == 200, r.text
    wait_volume(one, vid, "in-use")
    with one.admin() as c:
        [attachment] = c.get(f"{V}/attachments", params={"volume_id": vid},
                             headers={"OpenStack-API-Version": "volume 3.44"}).json()["attachments"]
        shown = c.get(f"{V}/attachments/{attachment['id']}", headers={"OpenStack-API-Version": "volume 3.44"})
        info = shown.json()["attachment"]["connection_info"]
    assert info["driver_volume_type"] == "nbd", info
    assert (info["data"]["host"], info["data"]["port"], info["data"]["export_name"], info["data"]["tls"]) == \
        (keeper.ip, 10809, f"volume-{vid}", True)
    xml = live_xml(guest_node, sid)
    assert f"name='volume-{vid}'" in xml and "protocol='nbd'" in xml and "tls='yes'" in xml, xml
    assert f"<host name='{keeper.ip}' port='10809'/>" in xml, xml
    assert daemon_of(keeper).exports() == {vid}
    assert not (guest_node.data_dir / "nbd-exports" / "qsd.pid").exists()  # the guest's node exports nothing

    # The guest read the keeper's marker through NBD and its write is in the keeper's file.
    seen = wait_for(lambda: (lambda log: log if "NBDTEST wrote" in log else None)(console(one, sid)), 300,
                    "the guest to write to the volume")
    assert "NBDTEST read MARKER-ON-THE-KEEPER" in seen and "NBDTEST wrote 0" in seen, seen[-2000:]
    with data.open("rb") as f:
        f.seek(4096)
        assert f.read(23) == b"NBDTEST-FROM-THE-GUEST\n"

    # kill -9 of the keeper's cloudbox: the export (its own process) serves on; at start the
    # worker adopts it and removes an export of no attachment.
    pid = daemon_of(keeper).pid()
    keeper.kill9()
    assert daemon_of(keeper).exports() == {vid} and daemon_of(keeper).pid() == pid
    keeper.serve()
    with keeper.admin() as c:
        r = c.post(f"{V}/volumes", json={"volume": {"size": 1, "name": "orphan"}})
        orphan = r.json()["volume"]["id"]
    wait_volume(keeper, orphan, "available")
    daemon_of(keeper).add(ExportSpec(orphan, str(keeper.data_dir / "volumes" / f"volume-{orphan}.raw"), "raw",
                                     False, False))
    wait_for(lambda: daemon_of(keeper).exports() == {vid}, 30, "the orphan export to be removed")
    assert daemon_of(keeper).pid() == pid

    # The export daemon dies (the keeper's cloudbox runs on): its worker starts it again with the
    # export under the same name and TLS, and the guest's QEMU reconnects to it.
    daemon_of(keeper).stop()
    wait_for(lambda: daemon_of(keeper).exports() == {vid}, 30, "the export to come back")
    assert daemon_of(keeper).pid() not in (None, pid)

    # Extended in use (3.42): the keeper grows the file and makes the export again at the new
    # size; the guest's node grows the disk once its client reconnected, and the guest sees it.
    with keeper.admin() as c:
        r = c.post(f"{V}/volumes/{vid}/action", json={"os-extend": {"new_size": 2}},
                   headers={"OpenStack-API-Version": "volume 3.42"})
        assert r.status_code == 202, r.text
    wait_for(lambda: (lambda v: v if v and v["status"] == "in-use" and v["size"] == 2 else None)(volume(one, vid)),
             60, "the volume to be in-use at 2 GB")
    assert data.stat().st_size == 2 << 30
    def resize_story() -> str:
        log = (guest_node.data_dir / "logs" / "cloudbox.log").read_text(errors="replace").splitlines()
        said = [line[:400] + (line[-1500:] if "Traceback" in line else "") for line in log
                if re.search(r"resize|extend|NBD|nbd|Traceback|rror", line)]
        return "the guest to see 2 GB on vdb; the guest's node said:\n" + "\n".join(said[-15:])

    wait_for(lambda: f"disk-resized vdb:{2 << 30}" in console(one, sid), 120, resize_story)
    assert "error_policy='stop'" in live_xml(guest_node, sid)
    with guest_node.admin() as c:
        assert c.get(f"/compute/v2.1/servers/{sid}", headers=LATEST).json()["server"]["status"] == "ACTIVE"

    # Detach: the disk leaves the guest and the export stops.
    with guest_node.admin() as c:
        r = c.delete(f"/compute/v2.1/servers/{sid}/os-volume_attachments/{vid}")
        assert r.status_code == 202, r.text
    wait_volume(one, vid, "available")
    wait_for(lambda: daemon_of(keeper).exports() == set(), 30, "the export to stop")
    assert f"volume-{vid}" not in live_xml(guest_node, sid)

    # Attached again, then the server is deleted: the volume is detached and the export goes.
    with one.admin() as c:
        r = c.post(f"/compute/v2.1/servers/{sid}/os-volume_attachments", headers=LATEST,
                   json={"volumeAttachment": {"volumeId": vid}})
        assert r.status_code == 200, r.text
    wait_volume(one, vid, "in-use")
    assert daemon_of(keeper).exports() == {vid}
    with one.admin() as c:
        assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
    wait_volume(one, vid, "available", timeout=180)
    wait_for(lambda: daemon_of(keeper).exports() == set(), 30, "the export to stop with the server")

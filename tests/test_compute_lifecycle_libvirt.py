"""Nova's lifecycle actions on real guests (libvirt's embedded QEMU driver, our test guest): what
the guest itself sees after rescue, unrescue, resize and revert/confirm, shelve and unshelve."""

from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path

import pytest

from tests.cloud import Cloud, wait_for
from tests.compute_helpers import LATEST, boot, upload_image, wait_gone, wait_server
from tests.test_compute_libvirt import qemu_pid, real_node, stop_and_clean

pytestmark = pytest.mark.slow

# Runs at every boot: the guest says which disks it has and how much memory.
USER_DATA = "#!/bin/sh\necho \"DISKS $(ls /sys/block | grep vd | tr '\\n' ' ')\"\n" \
            "echo \"MEMKB $(sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo)\"\n" \
            "echo \"VDASIZE $(cat /sys/block/vda/size)\"\n"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    node = real_node(tmp_path_factory.mktemp("lifecycle") / "data")
    node.start(timeout=120)
    yield node
    admin = node.client(node.token())
    for s in admin.get("/compute/v2.1/servers?all_tenants=1").json().get("servers", []):
        admin.delete(f"/compute/v2.1/servers/{s['id']}")
    for s in admin.get("/compute/v2.1/servers?all_tenants=1").json().get("servers", []):
        wait_gone(admin, s["id"])
    stop_and_clean(node)


def console(admin, sid: str) -> str:
    r = admin.post(f"/compute/v2.1/servers/{sid}/action", json={"os-getConsoleOutput": {}})
    return r.json()["output"].replace("\r", "")


def boots(admin, sid: str) -> list[dict[str, str]]:
    """What the guest said at each boot that finished (its DISKS, MEMKB and VDASIZE lines)."""
    out, current = [], {}
    for line in console(admin, sid).splitlines():
        m = re.match(r"user-data: (DISKS|MEMKB|VDASIZE) ?(.*)", line)
        if m:
            current[m.group(1)] = m.group(2).strip()
        elif "CLOUDBOX-GUEST: ready" in line and current:
            out.append(current)
            current = {}
    return out


def next_boot(admin, sid: str, seen: int) -> dict[str, str]:
    """Wait for boot number ``seen + 1`` to finish; what the guest said then."""
    wait_for(lambda: len(boots(admin, sid)) > seen, 240, f"boot {seen + 1} of the guest")
    return boots(admin, sid)[seen]


def act(admin, sid: str, body: dict) -> int:
    return admin.post(f"/compute/v2.1/servers/{sid}/action", json=body, headers=LATEST).status_code


def test_rescue_resize_shelve_a_real_guest(node: Cloud, guest_image: Path):
    admin = node.client(node.token())
    image = upload_image(admin, guest_image, visibility="public")
    flavors = []
    for ram, disk in ((256, 1), (384, 2)):
        flavors.append(admin.post("/compute/v2.1/flavors", json={"flavor": {
            "name": f"lc-{ram}-{uuid.uuid4().hex[:4]}", "ram": ram, "vcpus": 1, "disk": disk}}).json()["flavor"]["id"])
    sid = boot(admin, image["id"], flavor=flavors[0], user_data=base64.b64encode(USER_DATA.encode()).decode())["id"]
    wait_server(admin, sid, {"ACTIVE"}, timeout=180)
    first = next_boot(admin, sid, 0)
    assert first["DISKS"] == "vda"

    # Rescue: the guest boots the rescue disk and sees its own disk second.
    r = admin.post(f"/compute/v2.1/servers/{sid}/action", json={"rescue": None})
    assert r.status_code == 200 and r.json()["adminPass"]
    wait_server(admin, sid, {"RESCUE"}, timeout=180)
    pid = qemu_pid(sid)
    assert pid is not None and b"disk.rescue" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert next_boot(admin, sid, 1)["DISKS"] == "vda vdb"
    assert act(admin, sid, {"unrescue": None}) == 202
    wait_server(admin, sid, {"ACTIVE"}, timeout=180)
    assert b"disk.rescue" not in Path(f"/proc/{qemu_pid(sid)}/cmdline").read_bytes()
    assert next_boot(admin, sid, 2)["DISKS"] == "vda"
    assert not (node.data_dir / "instances" / sid / "disk.rescue").exists()

    # Resize to more memory and a bigger disk; revert; resize again and confirm.
    assert act(admin, sid, {"resize": {"flavorRef": flavors[1]}}) == 202
    wait_server(admin, sid, {"VERIFY_RESIZE"}, timeout=180)
    bigger = next_boot(admin, sid, 3)
    assert int(bigger["MEMKB"]) > int(first["MEMKB"]) + 100_000
    assert int(bigger["VDASIZE"]) == 2 * 2**30 // 512
    assert act(admin, sid, {"revertResize": None}) == 202
    wait_server(admin, sid, {"ACTIVE"}, timeout=180)
    reverted = next_boot(admin, sid, 4)
    assert (reverted["MEMKB"], reverted["VDASIZE"]) == (first["MEMKB"], first["VDASIZE"])
    assert act(admin, sid, {"resize": {"flavorRef": flavors[1]}}) == 202
    wait_server(admin, sid, {"VERIFY_RESIZE"}, timeout=180)
    assert act(admin, sid, {"confirmResize": None}) == 204
    server = wait_server(admin, sid, {"ACTIVE"}, timeout=180)
    assert server["flavor"]["ram"] == 384
    assert next_boot(admin, sid, 5)["MEMKB"] == bigger["MEMKB"]
    assert not (node.data_dir / "instances" / sid / "disk.resize-orig").exists()

    # Shelve: the guest and its files leave the host; unshelve boots it again from the shelved image.
    assert act(admin, sid, {"shelve": None}) == 202
    wait_server(admin, sid, {"SHELVED_OFFLOADED"}, timeout=240)
    assert qemu_pid(sid) is None and not (node.data_dir / "instances" / sid).exists()
    [shelved] = admin.get(f"/image/v2/images?name={server['name']}-shelved").json()["images"]
    assert act(admin, sid, {"unshelve": None}) == 202
    wait_server(admin, sid, {"ACTIVE"}, timeout=240)
    assert qemu_pid(sid) is not None
    again = next_boot(admin, sid, 0)  # a new console log: the first boot on this host
    assert again["DISKS"] == "vda" and again["VDASIZE"] == bigger["VDASIZE"]
    wait_for(lambda: admin.get(f"/image/v2/images/{shelved['id']}").status_code == 404, 60,
             "the shelved image to be deleted")

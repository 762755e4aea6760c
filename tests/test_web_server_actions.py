"""The servers screen's actions in a real browser (fake compute driver): pause and unpause, suspend
and resume, snapshot, attach and detach a volume, a floating IP, rebuild and delete, each checked
through the API, and the row following each change by itself."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from selenium.webdriver.support.ui import Select

from tests.browser import browser, click, find, go, sign_in, wait_css, wait_until  # noqa: F401
from tests.cloud import Cloud, wait_for
from tests.compute_helpers import LATEST, boot, make_qcow2, new_project_user, upload_image, wait_server


@pytest.fixture(scope="module")
def image(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> dict:
    with cloud.client(cloud.token()) as admin:
        return upload_image(admin, make_qcow2(tmp_path_factory.mktemp("img") / "disk.qcow2", "16M"),
                            name=f"act-{uuid.uuid4().hex[:6]}", visibility="public")


def status_of(driver, sid: str) -> str | None:
    badges = find(driver, f"#server-list tr[data-id='{sid}'] .server-status .badge")
    return badges[0].get_attribute("data-status") if badges else None


def more(driver, sid: str, action: str) -> None:
    click(driver, f"#server-list tr[data-id='{sid}'] button[data-action=more]")
    click(driver, f"dialog[open] button[data-action={action}]")


def settled(driver, sid: str, status: str) -> None:
    """The row shows ``status`` with no task left (its buttons are those of that status)."""
    wait_until(driver, lambda d: status_of(d, sid) == status
               and not find(d, f"#server-list tr[data-id='{sid}'] .server-status small"),
               f"the row to show {status}", timeout=60)


def test_every_server_action_from_the_screen(cloud: Cloud, image: dict, browser, tmp_path: Path):
    with cloud.client(cloud.token()) as admin:
        project_id, user, token = new_project_user(cloud, admin)
        project = admin.get(f"/identity/v3/projects/{project_id}").json()["project"]["name"]
    c = cloud.client(token)
    name = f"acts-{uuid.uuid4().hex[:4]}"
    sid = boot(c, image["id"], name=name)["id"]
    wait_server(c, sid, {"ACTIVE"})
    volume = c.post("/volume/v3/volumes", json={"volume": {"name": "disk-2", "size": 1}}).json()["volume"]
    wait_for(lambda: c.get(f"/volume/v3/volumes/{volume['id']}").json()["volume"]["status"] == "available", 60,
             "the volume")

    sign_in(browser, cloud, user, "pw", project)
    go(browser, "servers")
    settled(browser, sid, "ACTIVE")

    for action, status, undo in (("pause", "PAUSED", "unpause"), ("suspend", "SUSPENDED", "resume")):
        more(browser, sid, action)
        settled(browser, sid, status)
        assert c.get(f"/compute/v2.1/servers/{sid}").json()["server"]["status"] == status
        click(browser, f"#server-list tr[data-id='{sid}'] button[data-action={undo}]")
        settled(browser, sid, "ACTIVE")

    more(browser, sid, "snapshot")
    click(browser, "dialog[open] button[type=submit]")
    wait_for(lambda: [i for i in c.get("/image/v2/images").json()["images"] if i["name"] == f"{name}-snapshot"], 60,
             "the snapshot image")

    more(browser, sid, "attach-volume")
    Select(wait_css(browser, "dialog[open] select[name=volume]")).select_by_value(volume["id"])
    click(browser, "dialog[open] button[type=submit]")
    wait_for(lambda: c.get(f"/volume/v3/volumes/{volume['id']}").json()["volume"]["status"] == "in-use", 60,
             "the volume to be attached")
    more(browser, sid, "detach-volume")
    Select(wait_css(browser, "dialog[open] select[name=volume]")).select_by_value(volume["id"])
    click(browser, "dialog[open] button[type=submit]")
    wait_for(lambda: c.get(f"/volume/v3/volumes/{volume['id']}").json()["volume"]["status"] == "available", 60,
             "the volume to be detached")

    more(browser, sid, "add-floating-ip")
    click(browser, "dialog[open] button[type=submit]")
    port = c.get(f"/network/v2.0/ports?device_id={sid}").json()["ports"][0]
    fips = wait_for(lambda: [f for f in c.get("/network/v2.0/floatingips").json()["floatingips"]
                             if f["port_id"] == port["id"]], 30, "a floating IP on the server's port")
    wait_until(browser, lambda d: fips[0]["floating_ip_address"] in wait_css(d, f"#server-list tr[data-id='{sid}']").text,
               "the row to show the floating IP")

    more(browser, sid, "rebuild")
    click(browser, "dialog[open] button[type=submit]")
    wait_for(lambda: any(a["action"] == "rebuild" for a in c.get(
        f"/compute/v2.1/servers/{sid}/os-instance-actions", headers=LATEST).json()["instanceActions"]), 30, "the rebuild")
    wait_server(c, sid, {"ACTIVE"})
    settled(browser, sid, "ACTIVE")

    more(browser, sid, "delete")
    click(browser, "dialog[open] button[data-action=delete]")  # the confirmation
    wait_until(browser, lambda d: not find(d, f"#server-list tr[data-id='{sid}']"), "the row to go", timeout=60)
    wait_for(lambda: c.get(f"/compute/v2.1/servers/{sid}").status_code == 404, 60, "the server to be deleted")
    c.close()

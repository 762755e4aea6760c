"""Issue 17's first acceptance in a real browser against a node with real guests: sign in, launch a
server from the form, watch it reach ACTIVE without reloading, read its console log, open its
console, stop it and see the status change."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.browser import browser, click, fill, find, go, sign_in, wait_css, wait_text, wait_until  # noqa: F401
from tests.cloud import Cloud
from tests.compute_helpers import LATEST, new_project_user, upload_image
# A node with real guests (libvirt's embedded QEMU), cleaned up after the module.
from tests.test_compute_libvirt import node  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


def row_status(driver, server_id: str) -> str | None:
    badges = find(driver, f"#server-list tr[data-id='{server_id}'] .server-status .badge")
    return badges[0].get_attribute("data-status") if badges else None


def test_launch_from_the_form_watch_it_go_active_and_stop_it(node: Cloud, guest_image: Path, browser):
    from selenium.webdriver.support.ui import Select

    with node.client(node.token()) as admin:
        image = upload_image(admin, guest_image, name=f"guest-{uuid.uuid4().hex[:6]}", visibility="public")
        flavor = admin.post("/compute/v2.1/flavors", json={"flavor": {
            "name": f"web-{uuid.uuid4().hex[:6]}", "ram": 256, "vcpus": 1, "disk": 1}}).json()["flavor"]
        project_id, user, token = new_project_user(node, admin)
        project = admin.get(f"/identity/v3/projects/{project_id}").json()["project"]["name"]

    sign_in(browser, node, user, "pw", project)
    go(browser, "servers")
    wait_text(browser, "#server-list", "No servers yet")
    # A mark on the page: if anything reloaded it, the mark is gone.
    browser.execute_script("window.__notReloaded = true")
    # The live stream is up: the list follows its events (it polls only while the stream is down).
    wait_text(browser, "header .live", "Live")

    click(browser, "main .screen-head button.primary")
    wait_css(browser, "#launch-form")
    fill(browser, "#launch-form input[name=name]", "from-the-form")
    Select(wait_css(browser, "#launch-form select[name=image]")).select_by_value(image["id"])
    Select(wait_css(browser, "#launch-form select[name=flavor]")).select_by_value(flavor["id"])
    click(browser, "#launch-form button[type=submit]")
    wait_until(browser, lambda d: not find(d, "dialog[open]"), "the launch dialog to close")

    with node.client(token) as c:
        servers = c.get("/compute/v2.1/servers").json()["servers"]
    assert [s["name"] for s in servers] == ["from-the-form"]
    sid = servers[0]["id"]
    wait_css(browser, f"#server-list tr[data-id='{sid}']")
    seen = set()

    def active(d):
        status = row_status(d, sid)
        seen.add(status)
        if status == "ERROR":
            raise AssertionError(f"the server went to ERROR: {c_fault(node, token, sid)}")
        return status == "ACTIVE"

    wait_until(browser, active, "the server's row to show ACTIVE", timeout=240)
    assert wait_css(browser, "header .live").text == "Live"
    assert browser.execute_script("return window.__notReloaded === true"), "the page was reloaded"
    assert "BUILD" in seen or None in seen  # the row showed the server before it was ACTIVE

    # The console log: the guest says it is ready.
    click(browser, f"#server-list tr[data-id='{sid}'] button[data-action=more]")
    click(browser, "dialog[open] button[data-action=console-log]")

    def guest_ready(d):
        text = wait_css(d, "#console-log").text
        if "CLOUDBOX-GUEST: ready" in text:
            return True
        click(d, "dialog[open] button[data-action=refresh]")
        return False

    wait_until(browser, guest_ready, "the guest's ready line in its console log", timeout=180)
    click(browser, "dialog[open] .dialog-head button")
    wait_until(browser, lambda d: not find(d, "dialog[open]"), "the console log to close")

    # The console: the URL of POST /servers/{id}/remote-consoles opens in a new tab (when the
    # console API is served; its own tests show what the page behind the URL does).
    with node.client(token) as c:
        r = c.post(f"/compute/v2.1/servers/{sid}/remote-consoles", headers=LATEST,
                   json={"remote_console": {"protocol": "vnc", "type": "novnc"}})
    if r.status_code == 200:
        tabs = set(browser.window_handles)
        click(browser, f"#server-list tr[data-id='{sid}'] button[data-action=console]")
        wait_until(browser, lambda d: len(d.window_handles) > len(tabs) or find(d, "#console-link"), "the console to open")
        if find(browser, "#console-link"):
            assert "/ui/console/vnc.html" in wait_css(browser, "#console-link").get_attribute("href")
        else:
            new = (set(browser.window_handles) - tabs).pop()
            main = browser.current_window_handle
            browser.switch_to.window(new)
            wait_until(browser, lambda d: "/ui/console/vnc.html" in d.current_url, "the noVNC page's URL")
            browser.close()
            browser.switch_to.window(main)

    # Stop: the row changes to SHUTOFF by itself.
    click(browser, f"#server-list tr[data-id='{sid}'] button[data-action=stop]")
    wait_until(browser, lambda d: row_status(d, sid) == "SHUTOFF", "the server's row to show SHUTOFF", timeout=120)
    wait_until(browser, lambda d: find(d, f"#server-list tr[data-id='{sid}'] button[data-action=start]"),
               "the row to offer Start")
    assert browser.execute_script("return window.__notReloaded === true"), "the page was reloaded"
    with node.client(token) as c:
        assert c.get(f"/compute/v2.1/servers/{sid}").json()["server"]["status"] == "SHUTOFF"


def c_fault(node: Cloud, token: str, sid: str) -> object:
    with node.client(token) as c:
        return c.get(f"/compute/v2.1/servers/{sid}").json()["server"].get("fault")

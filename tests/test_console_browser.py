"""The noVNC page in headless Chromium (tests/browser.py, web-core's harness): the URL the
compute API answers opens the guest's screen, and the canvas draws it; the same URL again is
refused and the page says so."""

from __future__ import annotations

import pytest

from tests.browser import browser  # noqa: F401  (the fixture)
from tests.cloud import Cloud, wait_for
from tests.test_console_api import remote_console
from tests.test_console_guest import guest, node  # noqa: F401  (the fixtures: a node, a booted guest)

pytestmark = pytest.mark.slow

LIT_PIXELS = """
const canvas = document.querySelector('#screen canvas');
if (!canvas || !canvas.width) return 0;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let lit = 0;
for (let i = 0; i < data.length; i += 4) if (data[i] || data[i + 1] || data[i + 2]) lit++;
return lit;
"""


def test_the_novnc_page_draws_the_guest_screen(node: Cloud, guest: dict, browser):  # noqa: F811
    with node.client(node.token()) as admin:
        r = remote_console(admin, guest["id"])
        assert r.status_code == 200, r.text
        url = r.json()["remote_console"]["url"]
    browser.get(url)
    wait_for(lambda: browser.execute_script(LIT_PIXELS) > 100, 60, "the noVNC canvas to draw the guest's screen")
    assert browser.execute_script("return document.getElementById('status').textContent") == "Connected"
    browser.get(url)  # the token was spent: the page says the link is no good
    wait_for(lambda: "could not be reached" in browser.execute_script(
        "return document.getElementById('status').textContent"), 30, "the page to say the console was refused")


TERMINAL_TEXT = """
const buffer = window.cloudboxConsole && window.cloudboxConsole.buffer.active;
if (!buffer) return "";
const lines = [];
for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
return lines.join("\\n");
"""


def test_the_serial_page_is_a_terminal_on_the_guest(node: Cloud, guest: dict, browser):  # noqa: F811
    from urllib.parse import parse_qs, urlsplit

    from selenium.webdriver.common.by import By

    with node.client(node.token()) as admin:
        r = remote_console(admin, guest["id"], "serial", "serial")
        assert r.status_code == 200, r.text
    [token] = parse_qs(urlsplit(r.json()["remote_console"]["url"]).query)["token"]
    browser.get(f"{node.url}/ui/console/serial.html?token={token}")
    wait_for(lambda: browser.execute_script("return document.getElementById('status').textContent") == "Connected",
             30, "the serial page to connect")
    browser.find_element(By.CSS_SELECTOR, "#screen textarea").send_keys("\necho XTERM-$((6*7))\n")
    wait_for(lambda: "XTERM-42" in browser.execute_script(TERMINAL_TEXT), 30,
             lambda: f"the guest's answer in the terminal: {browser.execute_script(TERMINAL_TEXT)[-500:]!r}")
    # And it is drawn: the row showing it has a height (xterm.js styles its rows with <style>
    # elements, which the page's policy lets through), and nothing was refused.
    assert browser.execute_script("""
        const row = [...document.querySelectorAll('.xterm-rows > div')].find(r => r.textContent.includes('XTERM-42'));
        return row ? row.getBoundingClientRect().height : 0;""") > 5
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused, refused

"""The noVNC page in headless Chromium (tests/browser.py, web-core's harness): the URL the
compute API answers opens the guest's screen, and the canvas draws it; the same URL again is
refused and the page says so."""

from __future__ import annotations

import pytest

pytest.importorskip("tests.browser", reason="the browser harness (tests/browser.py) is not there yet")

from tests.browser import browser  # noqa: E402,F401  (the fixture)
from tests.cloud import Cloud, wait_for  # noqa: E402
from tests.test_console_api import remote_console  # noqa: E402
from tests.test_console_guest import guest, node  # noqa: E402,F401  (the fixtures: a node, a booted guest)

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

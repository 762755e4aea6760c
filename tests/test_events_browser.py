"""web/js/events.js in Chromium (tests/browser.py): the page's module reads the node's stream over
HTTP/2 with the session's token in a header, and a change made through the API arrives in the page."""

from __future__ import annotations

import uuid
from typing import Any

from tests.browser import browser, session_token, sign_in, wait_until  # noqa: F401 - ``browser`` is a fixture
from tests.cloud import Cloud

START = """
const token = arguments[0];
const done = arguments[arguments.length - 1];
import("/ui/js/events.js").then((m) => {
  window.testEvents = [];
  window.testStates = [];
  window.testStream = m.connect(token, (e) => testEvents.push(e), (s) => testStates.push(s));
  window.testStream.on({ service: "compute", type: "keypair" }, (e) => testEvents.push({ filtered: e.id }));
  done(true);
}, (err) => done(String(err)));
"""


def test_the_module_follows_the_stream_in_chromium(browser: Any, cloud: Cloud) -> None:
    sign_in(browser, cloud, "admin", cloud.password, "admin")
    token = session_token(browser)
    assert browser.execute_async_script(START, token) is True
    wait_until(browser, lambda d: "open" in d.execute_script("return window.testStates"), "the stream to open")
    name = f"events-browser-{uuid.uuid4().hex[:6]}"
    with cloud.client(token) as client:
        r = client.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": name}})
        assert r.status_code == 200, r.text
    wait_until(browser, lambda d: d.execute_script(
        "return testEvents.some((e) => e.filtered === arguments[0])", name), "the key pair's change in the page")
    # The page's connection to the node is HTTP/2 (ALPN), which the stream shares with every other call.
    protocols = browser.execute_script(
        "return performance.getEntriesByType('resource').filter((r) => r.name.includes('/ui/js/'))"
        ".map((r) => r.nextHopProtocol)")
    assert "h2" in protocols and set(protocols) <= {"h2", ""}, protocols
    browser.execute_script("testStream.close()")
    assert browser.execute_script("return testStates[testStates.length - 1]") == "closed"

"""The dashboard's shell in a real browser (Chromium headless): its files served as ES modules under
a Content-Security-Policy of its own origin, sign-in and sign-out, the API's own error messages,
themes, and the "session expired" screen when the token is revoked or runs out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException

from tests.browser import browser, click, find, go, session_token, sign_in, wait_css, wait_text, wait_until  # noqa: F401
from tests.cloud import Cloud

WEB = Path(__file__).resolve().parents[1] / "web"


def test_the_ui_files_are_served_as_modules_under_a_csp_of_self(cloud: Cloud):
    with cloud.client() as c:
        page = c.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert '<script type="module" src="/ui/js/app.js">' in page.text
        for path in ["js/app.js", "js/api.js", "js/ui.js", "js/screens/index.js",
                     *(f"js/screens/{p.name}" for p in sorted((WEB / "js" / "screens").glob("*.js")))]:
            r = c.get(f"/ui/{path}")
            assert r.status_code == 200, path
            assert r.headers["content-type"] == "text/javascript; charset=utf-8", path
            assert r.headers["content-security-policy"] == csp
            assert r.headers["x-content-type-options"] == "nosniff"
        assert c.get("/ui/style.css").headers["content-type"] == "text/css; charset=utf-8"
        # Gzipped for a client that takes it (httpx decodes it): the same bytes, a weak validator.
        plain = c.get("/ui/js/app.js", headers={"Accept-Encoding": "identity"})
        zipped = c.get("/ui/js/app.js", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in plain.headers and zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == plain.content == (WEB / "js" / "app.js").read_bytes()
        assert int(zipped.headers["content-length"]) < len(plain.content) / 2
        assert zipped.headers["etag"] == "W/" + plain.headers["etag"] and zipped.headers["vary"] == "Accept-Encoding"
        again = c.get("/ui/js/app.js", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]})
        assert again.status_code == 304
        assert c.get("/ui/js/nothing-here.js").status_code == 404
        assert c.get("/ui/../cloudbox/api/app.py").status_code == 404


def test_sign_in_shows_usage_and_sign_out_revokes_the_token(cloud: Cloud, browser):
    sign_in(browser, cloud, "admin", cloud.password, "admin")
    # The overview: bars of usage against the quotas from compute's limits.
    wait_text(browser, "#quota-bars .bar", "Servers")
    servers_bar = wait_text(browser, "#quota-bars .bar", "Servers")
    with cloud.client(cloud.token()) as admin:
        limits = admin.get("/compute/v2.1/limits").json()["limits"]["absolute"]
    assert servers_bar.get_attribute("data-limit") == str(limits["maxTotalInstances"])
    assert servers_bar.find_element("css selector", "meter") is not None
    wait_text(browser, "#quota-bars .bar", "Floating IPs")
    assert wait_css(browser, "#who").text.startswith("admin")

    # The theme toggle overrides the system's choice and is kept across a reload.
    before = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    click(browser, ".theme-toggle")
    wait_until(browser, lambda d: d.execute_script("return document.documentElement.dataset.theme") in ("dark", "light"),
               "the theme to be set")
    assert browser.execute_script("return getComputedStyle(document.body).backgroundColor") != before
    theme = browser.execute_script("return document.documentElement.dataset.theme")
    browser.refresh()
    wait_css(browser, "#signout")  # the token kept in sessionStorage: still signed in after a reload
    assert browser.execute_script("return document.documentElement.dataset.theme") == theme

    token = session_token(browser)
    with cloud.client(token) as c:
        assert c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).status_code == 200
    click(browser, "#signout")
    wait_css(browser, "#signin")
    wait_text(browser, ".notice", "signed out")
    with cloud.client(cloud.token()) as admin:
        wait_until(browser, lambda d: admin.get("/identity/v3/auth/tokens",
                                                headers={"X-Subject-Token": token}).status_code == 404,
                   "the token to be revoked")
    assert session_token(browser) is None


def test_a_refused_sign_in_shows_keystones_own_message(cloud: Cloud, browser):
    with cloud.client() as c:
        r = c.post("/identity/v3/auth/tokens", json={"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": "admin", "domain": {"name": "Default"}, "password": "wrong"}}}}})
    assert r.status_code == 401
    message = r.json()["error"]["message"]
    browser.get(cloud.url + "/")
    wait_css(browser, "#signin input[name=user]").send_keys("admin")
    wait_css(browser, "#signin input[name=password]").send_keys("wrong")
    click(browser, "#signin button[type=submit]")
    assert wait_text(browser, "#signin .error", message).text == message
    assert not find(browser, "#session-expired")


def test_a_revoked_token_brings_back_the_sign_in_screen(cloud: Cloud, browser):
    sign_in(browser, cloud, "admin", cloud.password, "admin")
    go(browser, "servers")
    token = session_token(browser)
    with cloud.client(cloud.token()) as admin:
        assert admin.delete("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).status_code == 204
    # The live stream may end at once (the token is gone); if not, the next call the page makes
    # answers 401. Either way the page says the session ended, and offers sign-in.
    for link in find(browser, "#nav a[data-screen=images]"):
        try:
            link.click()
        except StaleElementReferenceException:
            pass  # the expired screen replaced the shell already
    wait_text(browser, "#session-expired", "sign in again", timeout=15)
    wait_css(browser, "#signin input[name=password]")
    assert not find(browser, "#signout") and session_token(browser) is None
    # Signing in again works from that screen.
    wait_css(browser, "#signin input[name=password]").send_keys(cloud.password)
    click(browser, "#signin button[type=submit]")
    wait_css(browser, "#signout")


def test_an_expired_token_brings_back_the_sign_in_screen_by_itself(new_cloud: Cloud, browser):
    new_cloud.init("--set", "token_expiration=12")
    new_cloud.start()
    sign_in(browser, new_cloud, "admin", new_cloud.password, "admin")
    assert session_token(browser)
    # Nothing is clicked: the shell watches the token's expires_at.
    wait_text(browser, "#session-expired", "Your session expired", timeout=40)
    assert re.search(r"sign in again", wait_css(browser, "#session-expired").text)
    assert not find(browser, "#signout")


@pytest.mark.parametrize("width", [390])
def test_readable_on_a_phone(cloud: Cloud, browser, width: int):
    browser.set_window_size(width, 844)
    sign_in(browser, cloud, "admin", cloud.password, "admin")
    # The navigation folds behind a Menu button; the page does not scroll sideways.
    nav = browser.find_element("css selector", "#nav")
    assert not nav.is_displayed()
    click(browser, ".menu-toggle")
    wait_css(browser, "#nav a[data-screen=servers]").click()
    wait_css(browser, "main .screen[data-screen=servers] h1")
    assert not nav.is_displayed()
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_keyboard_only_sign_in_dialogs_close_with_escape(cloud: Cloud, browser):
    from selenium.webdriver.common.keys import Keys

    browser.get(cloud.url + "/")
    user = wait_css(browser, "#signin input[name=user]")
    assert browser.switch_to.active_element == user  # the form takes the focus
    user.send_keys("admin", Keys.TAB)
    browser.switch_to.active_element.send_keys(cloud.password, Keys.TAB)
    browser.switch_to.active_element.send_keys(Keys.TAB)  # the domain keeps "Default"
    active = browser.switch_to.active_element
    active.clear()
    active.send_keys("admin", Keys.ENTER)
    wait_css(browser, "#signout")
    go(browser, "keypairs")
    opener = wait_css(browser, "main .screen-head button.primary")
    opener.send_keys(Keys.ENTER)
    wait_css(browser, "dialog[open]")
    assert browser.switch_to.active_element.get_attribute("name") == "name"  # focus moved into the dialog
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_until(browser, lambda d: not find(d, "dialog[open]"), "Escape to close the dialog")
    assert browser.switch_to.active_element == opener  # and the focus is back where it was

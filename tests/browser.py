"""The dashboard in a real browser: Debian's ``chromium`` driven by ``chromium-driver`` through
Selenium, headless, trusting the test node's own CA by ignoring certificate errors. The browser runs
in a network namespace of its own (tests/browser_netns.py): Chromium drops requests in flight when
the host's interfaces change, which guests' taps and test nodes' bridges do all the time.

Use in a test module::

    from tests.browser import browser, sign_in, wait_text  # noqa: F401 - ``browser`` is a fixture

``sign_in`` fills the sign-in form as a person would; ``wait_text`` waits for an element to show a
text. Both wait on conditions (Selenium's explicit waits), never for fixed times.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import pytest

from tests.browser_netns import Namespace
from tests.cloud import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TIMEOUT = 30.0


def _driver(download_dir: Path, namespace: Namespace) -> Any:
    """Chromium and chromedriver inside ``namespace``; Selenium reaches chromedriver through a
    forwarder, and every page the test opens has its port forwarded in (see ``driver.get``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    class NamespacedService(Service):
        def is_connectable(self) -> bool:  # chromedriver listens inside the namespace
            sock = namespace.socket_inside()
            sock.settimeout(1)
            try:
                sock.connect(("127.0.0.1", self.port))
                return True
            except OSError:
                return False
            finally:
                sock.close()

    wrapper = download_dir.parent / "chromedriver-in-namespace"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(namespace.run_inside([CHROMEDRIVER])) + ' "$@"\n')
    wrapper.chmod(0o755)
    port = free_port()
    namespace.forward_out(port)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors",
                "--window-size=1280,900", "--disable-gpu", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--password-store=basic"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=NamespacedService(executable_path=str(wrapper), port=port))
    open_page = driver.get

    def get(url: str) -> None:
        namespace.forward_in(urlsplit(url).port or 443)
        open_page(url)

    driver.get = get
    return driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium of the test's own (a clean profile: no token, no theme kept)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists() and not shutil.which(Path(path).name):
            pytest.fail(f"{path} is missing: apt-get install {package} (packaging/test.sh installs it)")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    namespace = Namespace()
    try:
        driver = _driver(downloads, namespace)
    except BaseException:
        namespace.close()
        raise
    driver.set_script_timeout(TIMEOUT)
    # Headless Chromium saves downloads only when told where (blob: links, e.g. a private key).
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.download_dir = downloads
    try:
        yield driver
    finally:
        print_console(driver)  # pytest shows it only when the test failed
        driver.quit()
        namespace.close()


def print_console(driver: Any) -> None:
    """The browser's console (shown under a failed test: a module that did not load, an error)."""
    try:
        for entry in driver.get_log("browser"):
            print(f"browser console: {entry.get('level')} {entry.get('message')}")
        print(f"browser at {driver.current_url}")
    except Exception as exc:  # noqa: BLE001 - only diagnostics
        print(f"browser console not readable: {exc!r}")


def wait_until(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Wait until ``condition(driver)`` is truthy; return it. Fails naming ``what``."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        # A live update may replace an element between finding and reading it: look again.
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        print_console(driver)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None


def find(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def wait_css(driver: Any, css: str, timeout: float = TIMEOUT) -> Any:
    """The first displayed element matching ``css``, once there is one."""
    def shown(d: Any) -> Any:
        return next((e for e in find(d, css) if e.is_displayed()), None)

    return wait_until(driver, shown, f"an element {css!r}", timeout)


def wait_text(driver: Any, css: str, text: str, timeout: float = TIMEOUT) -> Any:
    """The first element matching ``css`` whose text contains ``text``, once there is one."""
    seen: list[str] = []

    def showing(d: Any) -> Any:
        seen[:] = []
        for element in find(d, css):
            try:
                content = element.text
            except Exception:  # noqa: BLE001 - replaced while we read it (a live update)
                continue
            seen.append(content)
            if text in content:
                return element
        return None

    try:
        return wait_until(driver, showing, f"{text!r} in {css!r}", timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it showed {seen[:5]!r}") from None


def click(driver: Any, css: str, timeout: float = TIMEOUT) -> Any:
    """Click the first displayed, enabled element matching ``css`` (found again if a live update
    replaced it meanwhile)."""
    def clicked(d: Any) -> Any:
        element = next((e for e in find(d, css) if e.is_displayed() and e.is_enabled()), None)
        if element is not None:
            element.click()
        return element

    return wait_until(driver, clicked, f"{css!r} to be clickable", timeout)


def fill(driver: Any, css: str, value: str, timeout: float = TIMEOUT) -> Any:
    """Type ``value`` into the first displayed field matching ``css`` (cleared first; typed again
    into the new field if a live update replaced it meanwhile)."""
    def filled(d: Any) -> Any:
        element = next((e for e in find(d, css) if e.is_displayed()), None)
        if element is not None:
            element.clear()
            element.send_keys(value)
        return element

    return wait_until(driver, filled, f"{css!r} to take {value!r}", timeout)


def sign_in(driver: Any, cloud: Any, user: str, password: str, project: str | None = None,
            domain: str = "Default") -> None:
    """Open the node's page and sign in through the form; returns when the shell shows."""
    driver.get(cloud.url + "/")
    fill(driver, "#signin input[name=user]", user)
    fill(driver, "#signin input[name=password]", password)
    fill(driver, "#signin input[name=domain]", domain)
    fill(driver, "#signin input[name=project]", project or "")
    click(driver, "#signin button[type=submit]")

    def shell_or_error(d: Any) -> Any:
        if find(d, "#signout"):
            return True
        errors = [e.text for e in find(d, "#signin .error") if e.text]
        if errors:
            raise AssertionError(f"sign-in refused: {errors[0]}")
        return False

    wait_until(driver, shell_or_error, f"the dashboard after signing in as {user}")


def go(driver: Any, screen: str) -> None:
    """Open a screen from the navigation, as a person would (no reload)."""
    click(driver, f"#nav a[data-screen={screen}]")
    wait_css(driver, f"main .screen[data-screen={screen}] h1")


def session_token(driver: Any) -> str:
    return driver.execute_script("return sessionStorage.getItem('cloudbox-token')")


def row(driver: Any, list_css: str, item_id: str) -> Any:
    return wait_css(driver, f"{list_css} tr[data-id='{item_id}']")

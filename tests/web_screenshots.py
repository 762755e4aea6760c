"""Screenshots of the dashboard's main screens (for the README), from a fresh node with the fake
compute driver and a few things in it, in Chromium headless through tests/browser.py.

    .venv/bin/python -m tests.web_screenshots web/screenshots
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.browser import _driver, go, sign_in, wait_css
from tests.browser_netns import Namespace
from tests.cloud import Cloud, free_port
from tests.compute_helpers import boot, make_qcow2, upload_image

SCREENS = {"light": ("overview", "servers", "images", "volumes", "keypairs", "networks", "topology"),
           "dark": ("overview", "servers")}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        node = Cloud(Path(tmp) / "data", free_port())
        node.init()
        node.start()
        driver = None
        namespace = Namespace()
        try:
            with node.client(node.token()) as admin:
                image = upload_image(admin, make_qcow2(Path(tmp) / "debian.qcow2", "16M"), name="debian-12",
                                     visibility="public")
                for name in ("web-1", "web-2", "db-1"):
                    boot(admin, image["id"], name=name)
                admin.post("/volume/v3/volumes", json={"volume": {"name": "db-data", "size": 1}})
            (Path(tmp) / "downloads").mkdir()
            driver = _driver(Path(tmp) / "downloads", namespace)
            for theme, screens in SCREENS.items():
                driver.get(node.url + "/")
                driver.execute_script("localStorage.setItem('cloudbox-theme', arguments[0])", theme)
                sign_in(driver, node, "admin", node.password, "admin")
                for screen in screens:
                    if not driver.find_elements("css selector", f"#nav a[data-screen={screen}]"):
                        continue
                    go(driver, screen)
                    wait_css(driver, f"main .screen[data-screen={screen}] table, main .screen[data-screen={screen}] .bars, "
                                     f"main .screen[data-screen={screen}] svg, main .screen[data-screen={screen}] .empty")
                    driver.save_screenshot(str(out / f"{screen}-{theme}.png"))
                wait_css(driver, "#signout").click()
        finally:
            if driver is not None:
                driver.quit()
            namespace.close()
            node.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "web/screenshots"))

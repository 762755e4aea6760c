"""The stacks screen in a real browser (fake drivers): the devenv example template chosen as a file, its
parameters drawn from POST /validate (the hidden one a password field, the allowed values a select),
launched, seen reaching CREATE_COMPLETE without a reload, its outputs, resources and events shown, an
update previewed, Heat's own message for a bad template, and the stack deleted from the screen. And the
UI's static files gzipped for a client that takes it."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser import browser, click, fill, find, go, sign_in, wait_css, wait_text, wait_until  # noqa: F401
from tests.cloud import Cloud
from tests.test_web_more import new_member

DEVENV = Path(__file__).resolve().parents[2] / "shared" / "examples" / "devenv.yaml"  # ../shared beside the clone
WEB = Path(__file__).resolve().parents[1] / "web"


def click_text(driver, css: str, text: str) -> None:
    """Click the displayed button under ``css`` whose label is ``text``."""
    def clicked(d):
        button = next((b for b in d.find_elements(By.CSS_SELECTOR, f"{css} button")
                       if b.is_displayed() and b.is_enabled() and b.text.strip() == text), None)
        if button is not None:
            button.click()
        return button

    wait_until(driver, clicked, f"the button {text!r} in {css!r}")


def test_a_stack_launched_from_a_template_file_completes_live_and_is_deleted(cloud: Cloud, browser, tmp_path: Path):
    project, user = new_member(cloud)
    suffix = uuid.uuid4().hex[:6]
    token = cloud.token(user, "pw", project["name"])
    with cloud.client(token) as c:  # what the template names: an image, a network, a key pair
        image = c.post("/image/v2/images", json={"name": "Fedora23", "disk_format": "raw",
                                                 "container_format": "bare"}).json()
        assert c.put(f"/image/v2/images/{image['id']}/file", content=b"\0" * 65536,
                     headers={"Content-Type": "application/octet-stream"}).status_code == 204
        network = c.post("/network/v2.0/networks", json={"network": {"name": f"priv-{suffix}"}}).json()["network"]
        assert c.post("/network/v2.0/subnets", json={"subnet": {"network_id": network["id"], "cidr": "10.71.0.0/24",
                                                                "ip_version": 4}}).status_code == 201
        assert c.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": f"key-{suffix}"}}).status_code in (200, 201)

    sign_in(browser, cloud, user, "pw", project["name"])
    go(browser, "stacks")
    wait_text(browser, "#stack-list", "No stacks yet")
    wait_css(browser, ".live.on")
    browser.execute_script("window.__sameDocument = true")
    click_text(browser, ".screen-head", "Launch stack")

    # A template Heat refuses: its own message, and no parameters drawn.
    fill(browser, "#stack-launch textarea[name=template]", "heat_template_version: 2016-04-08\nresources: [1]\n")
    click(browser, "#stack-launch button[data-action=read-parameters]")
    error = wait_until(browser, lambda d: next((e.text for e in find(d, "#stack-launch .template-error") if e.text), None),
                       "Heat's message for a bad template")
    with cloud.client(token) as c:
        heat = c.post(f"/orchestration/v1/{project['id']}/validate",
                      json={"template": "heat_template_version: 2016-04-08\nresources: [1]\n"})
    assert heat.status_code == 400 and error == heat.json()["error"]["message"], (error, heat.text)

    # The file chooser puts the example's text in and its parameters are drawn, one field each.
    wait_css(browser, "#stack-launch input[type=file]").send_keys(str(DEVENV))
    wait_until(browser, lambda d: "ssh_key_name" in d.find_element(By.CSS_SELECTOR, "#stack-launch textarea[name=template]")
               .get_attribute("value"), "the file's text in the template field")
    password = wait_css(browser, "#stack-launch [data-param=root_password]")
    assert password.get_attribute("type") == "password" and password.get_attribute("value") == ""
    flavor = Select(wait_css(browser, "#stack-launch select[data-param=flavor_name]"))
    assert [o.text for o in flavor.options] == ["m1.small", "m1.medium"]
    assert flavor.first_selected_option.text == "m1.small"
    assert wait_css(browser, "#stack-launch [data-param=private_network]").get_attribute("value") == "private"
    assert error not in browser.find_element(By.CSS_SELECTOR, "#stack-launch").text  # the old error is gone

    fill(browser, "#stack-launch input[name=stack_name]", f"dev-{suffix}")
    fill(browser, "#stack-launch [data-param=ssh_key_name]", f"key-{suffix}")
    fill(browser, "#stack-launch [data-param=private_network]", f"priv-{suffix}")
    fill(browser, "#stack-launch [data-param=root_password]", "s3cret-pw")
    click(browser, "dialog[open] button[data-action=preview]")
    wait_text(browser, "#stack-launch .stack-preview", "OS::Nova::Server")
    click(browser, "dialog[open] button[data-action=launch]")

    with cloud.client(token) as c:
        stack = wait_until(browser, lambda d: next(iter(c.get(f"/orchestration/v1/{project['id']}/stacks",
                                                              params={"name": f"dev-{suffix}"}).json()["stacks"]), None),
                           "the stack through the API")
    # The row and the open stack follow it to CREATE_COMPLETE without a reload.
    wait_until(browser, lambda d: [b.get_attribute("data-status") for b in
                                   find(d, f"#stack-list tr[data-id='{stack['id']}'] .badge")] == ["CREATE_COMPLETE"],
               "the row to show CREATE_COMPLETE", timeout=120)
    wait_text(browser, f"#stack-detail[data-stack-id='{stack['id']}'] .stack-status", "CREATE_COMPLETE", timeout=60)
    with cloud.client(token) as c:
        shown = c.get(f"/orchestration/v1/{project['id']}/stacks/dev-{suffix}/{stack['id']}").json()["stack"]
        resources = c.get(f"/orchestration/v1/{project['id']}/stacks/dev-{suffix}/{stack['id']}/resources").json()
        server_id = next(r["physical_resource_id"] for r in resources["resources"] if r["resource_name"] == "server")
        server = c.get(f"/compute/v2.1/servers/{server_id}").json()["server"]
    assert shown["parameters"]["root_password"] == "******" and shown["parameters"]["flavor_name"] == "m1.small"
    assert server["key_name"] == f"key-{suffix}" and list(server["addresses"]) == [f"priv-{suffix}"]
    ip = next(o["output_value"] for o in shown["outputs"] if o["output_key"] == "server_private_ip")
    assert ip.startswith("10.71.0.")
    wait_text(browser, "#stack-outputs tr[data-id=server_private_ip]", ip)
    for name in ("server", "security_group"):
        wait_text(browser, f"#stack-resources tr[data-id={name}]", "CREATE_COMPLETE")
    wait_text(browser, "#stack-events", "Stack CREATE completed successfully")

    # An update's dry run: the flavor changes the server (nothing is run).
    click_text(browser, "#stack-detail", "Preview update…")
    Select(wait_css(browser, "#stack-update select[data-param=flavor_name]")).select_by_visible_text("m1.medium")
    click(browser, "dialog[open] button[data-action=preview-update]")
    wait_text(browser, "#stack-update [data-change=unchanged]", "security_group")
    plan = browser.find_element(By.CSS_SELECTOR, "#stack-update .stack-plan").text
    assert "server" in wait_text(browser, "#stack-update [data-change=updated], #stack-update [data-change=replaced]",
                                 "server").text, plan
    click(browser, "dialog[open] button[data-action=cancel]")
    with cloud.client(token) as c:
        again = c.get(f"/orchestration/v1/{project['id']}/stacks/dev-{suffix}/{stack['id']}").json()["stack"]
    assert again["stack_status"] == "CREATE_COMPLETE" and again["parameters"]["flavor_name"] == "m1.small"

    click(browser, f"#stack-list tr[data-id='{stack['id']}'] button[data-action=delete]")
    click(browser, "dialog[open] button[data-action=delete]")
    wait_until(browser, lambda d: not find(d, f"#stack-list tr[data-id='{stack['id']}']"), "the row to go", timeout=120)
    wait_until(browser, lambda d: not find(d, "#stack-detail"), "the open stack to close")
    with cloud.client(token) as c:
        assert c.get(f"/orchestration/v1/{project['id']}/stacks").json()["stacks"] == []
        assert c.get(f"/compute/v2.1/servers/{server['id']}").status_code == 404
    assert browser.execute_script("return window.__sameDocument") is True  # never reloaded


def test_the_ui_files_are_gzipped_for_a_client_that_takes_it(cloud: Cloud):
    with cloud.client() as c:
        for name in ("js/screens/stacks.js", "style.css", "index.html"):
            url = "/" if name == "index.html" else f"/ui/{name}"
            raw = (WEB / name).read_bytes()
            with c.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
                body = b"".join(r.iter_raw())
            assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip", (name, r.headers)
            assert "accept-encoding" in r.headers["Vary"].lower()
            assert gzip.decompress(body) == raw and len(body) < len(raw)
            again = c.get(url, headers={"Accept-Encoding": "gzip"})  # from the cache: the same bytes
            assert again.content == raw
            with c.stream("GET", url, headers={"Accept-Encoding": "identity"}) as r:
                plain = b"".join(r.iter_raw())
            assert r.status_code == 200 and "Content-Encoding" not in r.headers and plain == raw
            assert "accept-encoding" in r.headers["Vary"].lower()


async def test_the_gzip_cache_is_bounded_and_skips_big_files(tmp_path: Path, monkeypatch) -> None:
    """In-process: copies are made on the first request (none at start), the cache keeps at most its
    bound (the least recently asked for dropped), a file over the size bound (1 MiB; lowered here) goes
    plain, a changed file is compressed again."""
    import os
    import random
    from collections import OrderedDict

    from cloudbox.api import app as app_module
    from cloudbox.errors import Unauthorized

    rng = random.Random(17)
    files = {name: " ".join(f"{rng.getrandbits(32):x}" for _ in range(4000)).encode() for name in ("a.js", "b.js", "c.js")}
    files["big.js"] = b"x" * 40_001  # over the bound set below (quart's test client stalls on 1 MiB bodies)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    packed = {name: len(gzip.compress(files[name], 6)) for name in ("a.js", "b.js", "c.js")}
    monkeypatch.setattr(app_module, "WEB_DIR_CANDIDATES", (tmp_path,))
    monkeypatch.setattr(app_module, "_gzipped", OrderedDict())
    assert app_module._GZIP_MAX_FILE == 1 << 20
    monkeypatch.setattr(app_module, "_GZIP_MAX_FILE", 40_000)
    monkeypatch.setattr(app_module, "_GZIP_CACHE_BYTES", packed["a.js"] + packed["b.js"] + 10)

    async def authenticate(token: str):
        raise Unauthorized()

    client = app_module.create_app([], authenticate=authenticate, max_body_bytes=1 << 20, max_limit=100).test_client()
    cached = lambda: [p.name for p in app_module._gzipped]  # noqa: E731
    assert cached() == []

    async def get(name: str):
        r = await client.get(f"/ui/{name}", headers={"Accept-Encoding": "gzip, deflate"})
        assert r.status_code == 200 and "accept-encoding" in r.headers["Vary"].lower()
        return r.headers.get("Content-Encoding"), await r.get_data()

    for name in ("a.js", "b.js", "c.js"):
        encoding, body = await get(name)
        assert encoding == "gzip" and gzip.decompress(body) == files[name]
    assert cached() == ["b.js", "c.js"]  # a.js, the oldest, dropped to stay within the bound
    await get("b.js")
    await get("a.js")
    assert cached() == ["b.js", "a.js"]  # c.js was the least recently asked for
    assert sum(len(body) for _, body in app_module._gzipped.values()) <= app_module._GZIP_CACHE_BYTES

    encoding, body = await get("big.js")
    assert encoding is None and body == files["big.js"] and "big.js" not in cached()

    changed = b"export const changed = true;\n" * 50
    (tmp_path / "b.js").write_bytes(changed)
    later = os.stat(tmp_path / "b.js").st_mtime + 5
    os.utime(tmp_path / "b.js", (later, later))
    encoding, body = await get("b.js")
    assert encoding == "gzip" and gzip.decompress(body) == changed

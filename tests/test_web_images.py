"""Images in a real browser: an upload from the browser with a visible progress bar (XMLHttpRequest's
upload progress on Glance's PUT /file), properties and sharing with another project."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from tests.browser import browser, click, fill, find, go, sign_in, wait_css, wait_text, wait_until  # noqa: F401
from tests.cloud import Cloud
from tests.compute_helpers import new_project_user


def test_upload_an_image_with_visible_progress_then_share_it(cloud: Cloud, browser, tmp_path: Path):
    from selenium.webdriver.support.ui import Select

    data = os.urandom(24 * 1024 * 1024)
    path = tmp_path / "upload.raw"
    path.write_bytes(data)
    with cloud.client(cloud.token()) as admin:
        project_id, user, token = new_project_user(cloud, admin)
        other_project, _, other_token = new_project_user(cloud, admin)
        project = admin.get(f"/identity/v3/projects/{project_id}").json()["project"]["name"]

    sign_in(browser, cloud, user, "pw", project)
    go(browser, "images")
    click(browser, "main .screen-head button.primary")
    wait_css(browser, "dialog[open] input[type=file]").send_keys(str(path))
    name = f"from-browser-{uuid.uuid4().hex[:6]}"
    fill(browser, "dialog[open] input[name=name]", name)
    Select(wait_css(browser, "dialog[open] select[name=disk_format]")).select_by_value("raw")
    fill(browser, "dialog[open] textarea[name=properties]", "os_distro=debian\nweb_test=yes")
    # Count what the progress bar showed while the bytes went out (a MutationObserver sees each step).
    browser.execute_script("""
      window.__progress = [];
      new MutationObserver(() => {
        const bar = document.querySelector('#uploads progress');
        if (bar && window.__progress[window.__progress.length - 1] !== bar.value) window.__progress.push(bar.value);
      }).observe(document.getElementById('uploads'), {subtree: true, childList: true, attributes: true, characterData: true});
    """)
    click(browser, "dialog[open] button[type=submit]")
    bar = wait_css(browser, "#uploads .progress.done", timeout=60)
    assert "uploaded 24.0 MiB" in bar.text
    steps = browser.execute_script("return window.__progress")
    assert steps[-1] == 100 and any(0 < v < 100 for v in steps), steps  # it showed the way, then 100%
    assert int(bar.get_attribute("data-updates")) >= 2

    with cloud.client(token) as c:
        images = [i for i in c.get("/image/v2/images").json()["images"] if i["name"] == name]
        assert len(images) == 1
        image = images[0]
        assert image["status"] == "active" and image["size"] == len(data)
        assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
        assert image["os_distro"] == "debian" and image["web_test"] == "yes"
        assert c.get(f"/image/v2/images/{image['id']}/file").content == data
    row_css = f"#image-list tr[data-id='{image['id']}']"
    wait_text(browser, row_css, "active")

    # Properties: change one, drop one.
    click(browser, f"{row_css} button[data-action=properties]")
    fill(browser, "dialog[open] textarea[name=properties]", "os_distro=alpine")
    click(browser, "dialog[open] button[type=submit]")
    wait_until(browser, lambda d: not find(d, "dialog[open]"), "the properties dialog to close")
    with cloud.client(token) as c:
        image = c.get(f"/image/v2/images/{image['id']}").json()
    assert image["os_distro"] == "alpine" and "web_test" not in image

    # Sharing: the image becomes shared and the other project a member of it.
    click(browser, f"{row_css} button[data-action=share]")
    fill(browser, "dialog[open] input[name=member]", other_project)
    click(browser, "dialog[open] button[type=submit]")
    wait_text(browser, "#image-members", other_project)
    with cloud.client(other_token) as c:
        members = c.get(f"/image/v2/images/{image['id']}/members/{other_project}").json()
    assert members["status"] == "pending"
    # A refused share shows Glance's own message.
    fill(browser, "dialog[open] input[name=member]", other_project)
    click(browser, "dialog[open] button[type=submit]")
    error = wait_css(browser, "dialog[open] form .error")
    with cloud.client(token) as c:
        again = c.post(f"/image/v2/images/{image['id']}/members", json={"member": other_project})
    assert again.status_code == 409 and error.text == again.json()["error"]["message"]

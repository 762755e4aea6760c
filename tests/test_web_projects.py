"""The project screens in a real browser against a node with the fake compute driver: what a member
of one project sees of another (nothing) and of the admin screens (nothing), the project switcher,
the launch form's quota check before sending, and a key pair made in the browser."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from selenium.webdriver.support.ui import Select

from tests.browser import browser, click, fill, find, go, session_token, sign_in, wait_css, wait_text, wait_until  # noqa: F401
from tests.cloud import Cloud
from tests.compute_helpers import boot, make_qcow2, upload_image, wait_server

WEB = Path(__file__).resolve().parents[1] / "web"


@pytest.fixture(scope="module")
def image(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> dict:
    with cloud.client(cloud.token()) as admin:
        return upload_image(admin, make_qcow2(tmp_path_factory.mktemp("img") / "disk.qcow2", "16M"),
                            name=f"web-{uuid.uuid4().hex[:6]}", visibility="public")


def two_projects_user(cloud: Cloud) -> tuple[dict, dict, str, str]:
    """Projects A and B, a user who is a member of both, and one who is a member of B only."""
    suffix = uuid.uuid4().hex[:8]
    with cloud.client(cloud.token()) as admin:
        a = admin.post("/identity/v3/projects", json={"project": {"name": f"a-{suffix}"}}).json()["project"]
        b = admin.post("/identity/v3/projects", json={"project": {"name": f"b-{suffix}"}}).json()["project"]
        both = admin.post("/identity/v3/users", json={"user": {"name": f"both-{suffix}", "password": "pw"}}).json()["user"]
        only_b = admin.post("/identity/v3/users", json={"user": {"name": f"onlyb-{suffix}", "password": "pw"}}).json()["user"]
        member = next(r["id"] for r in admin.get("/identity/v3/roles").json()["roles"] if r["name"] == "member")
        for project, user in ((a, both), (b, both), (b, only_b)):
            assert admin.put(f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{member}").status_code == 204
    return a, b, both["name"], only_b["name"]


def test_a_member_of_b_sees_none_of_as_servers_and_no_admin_screens(cloud: Cloud, image: dict, browser):
    a, b, user_ab, user_b = two_projects_user(cloud)
    with cloud.client(cloud.token(user_ab, "pw", project=a["name"])) as in_a:
        name_a = f"only-in-a-{uuid.uuid4().hex[:4]}"
        server_a = boot(in_a, image["id"], name=name_a)
        wait_server(in_a, server_a["id"], {"ACTIVE"})

    sign_in(browser, cloud, user_b, "pw", b["name"])
    assert not find(browser, "#nav [data-group=admin]")
    assert not find(browser, "#nav a[data-screen^=admin]") and not find(browser, "#nav a[data-screen=cluster]")
    go(browser, "servers")
    wait_text(browser, "#server-list", "No servers yet")
    assert name_a not in browser.find_element("css selector", "main").text
    # Asking for A's server by its id in the address shows nothing of it either.
    browser.execute_script("location.hash = arguments[0]", f"#/servers?id={server_a['id']}")
    wait_text(browser, "#server-list", "No servers yet")
    assert not find(browser, "dialog[open]")
    # The admin screens' addresses fall back to a project screen.
    browser.execute_script("location.hash = '#/admin_identity'")
    wait_css(browser, "main .screen[data-screen=overview] h1")

    # The admin sees the admin group (when the admin screens are there).
    click(browser, "#signout")
    sign_in(browser, cloud, "admin", cloud.password, "admin")
    admin_screens = [p for p in ("admin_identity", "admin_compute", "cluster") if (WEB / "js" / "screens" / f"{p}.js").exists()]
    if admin_screens:
        wait_css(browser, "#nav [data-group=admin]")


def test_the_project_switcher_rescopes_the_token(cloud: Cloud, image: dict, browser):
    a, b, user_ab, _ = two_projects_user(cloud)
    names = {}
    for project in (a, b):
        with cloud.client(cloud.token(user_ab, "pw", project=project["name"])) as c:
            names[project["id"]] = f"in-{project['name']}"
            boot(c, image["id"], name=names[project["id"]])

    sign_in(browser, cloud, user_ab, "pw", a["name"])
    go(browser, "servers")
    wait_text(browser, "#server-list", names[a["id"]])
    first_token = session_token(browser)
    options = {o.get_attribute("value") for o in find(browser, "#project-switcher option")}
    assert {a["id"], b["id"]} <= options

    Select(wait_css(browser, "#project-switcher")).select_by_value(b["id"])
    wait_until(browser, lambda d: session_token(d) not in (None, first_token), "a token for project B")
    wait_text(browser, "#server-list", names[b["id"]])
    assert names[a["id"]] not in browser.find_element("css selector", "#server-list").text
    with cloud.client(cloud.token()) as admin:
        body = admin.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": session_token(browser)}).json()
        assert body["token"]["project"]["id"] == b["id"]
        # The token of A it replaced is revoked.
        wait_until(browser, lambda d: admin.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": first_token})
                   .status_code == 404, "the old token to be revoked")


def test_the_launch_form_says_what_does_not_fit_the_quota_before_sending(cloud: Cloud, image: dict, browser):
    a, _, user_ab, _ = two_projects_user(cloud)
    with cloud.client(cloud.token()) as admin:
        r = admin.put(f"/compute/v2.1/os-quota-sets/{a['id']}", json={"quota_set": {"instances": 2, "cores": 20, "ram": -1}})
        assert r.status_code == 200, r.text
    sign_in(browser, cloud, user_ab, "pw", a["name"])
    go(browser, "servers")
    click(browser, "main .screen-head button.primary")
    form = wait_css(browser, "#launch-form")
    fill(browser, "#launch-form input[name=name]", "many")
    Select(wait_css(browser, "#launch-form select[name=image]")).select_by_value(image["id"])
    fill(browser, "#launch-form input[name=count]", "3")
    problem = wait_text(browser, "#launch-quota li", "3 servers asked, 2 left")
    assert "quota of 2" in problem.text
    submit = form.find_element("css selector", "button[type=submit]")
    assert not submit.is_enabled()
    fill(browser, "#launch-form input[name=count]", "2")
    wait_until(browser, lambda d: submit.is_enabled() and not find(d, "#launch-quota li"), "the launch to fit")
    submit.click()
    wait_until(browser, lambda d: len(find(d, "#server-list tr[data-id]")) == 2, "the two servers in the list")
    wait_until(browser, lambda d: len(find(d, "#server-list .badge[data-status=ACTIVE]")) == 2, "both ACTIVE", timeout=60)
    with cloud.client(cloud.token(user_ab, "pw", project=a["name"])) as c:
        servers = c.get("/compute/v2.1/servers").json()["servers"]
    assert sorted(s["name"] for s in servers)[0].startswith("many")
    assert len(servers) == 2


def test_a_key_pair_generated_in_the_browser_is_offered_once_and_matches(cloud: Cloud, browser, tmp_path: Path):
    _, b, _, user_b = two_projects_user(cloud)
    sign_in(browser, cloud, user_b, "pw", b["name"])
    go(browser, "keypairs")
    click(browser, "main .screen-head button.primary")
    fill(browser, "dialog[open] input[name=name]", "made-here")
    click(browser, "dialog[open] button[type=submit]")
    link = wait_css(browser, "#private-key-download")
    assert link.get_attribute("download") == "made-here.pem"
    link.click()
    saved = browser.download_dir / "made-here.pem"
    wait_until(browser, lambda d: saved.exists() and "END" in saved.read_text(), "the private key's download")
    private = saved.read_text()
    assert "PRIVATE KEY" in private
    with cloud.client(cloud.token(user_b, "pw", project=b["name"])) as c:
        stored = c.get("/compute/v2.1/os-keypairs/made-here").json()["keypair"]
    assert "private_key" not in stored
    key_file = tmp_path / "made-here.pem"
    key_file.write_text(private)
    key_file.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(key_file)], capture_output=True, text=True, check=True).stdout
    assert derived.split()[:2] == stored["public_key"].split()[:2]
    # Closing the dialog drops the key: it is not shown again.
    click(browser, "dialog[open] .actions button")
    wait_until(browser, lambda d: not find(d, "dialog[open]"), "the dialog to close")
    wait_text(browser, "main table", "made-here")
    assert "PRIVATE KEY" not in browser.page_source


def test_volumes_snapshots_and_backups_from_the_browser(cloud: Cloud, browser):
    _, b, _, user_b = two_projects_user(cloud)
    sign_in(browser, cloud, user_b, "pw", b["name"])
    go(browser, "volumes")
    wait_text(browser, "#volume-list", "No volumes yet")
    click(browser, "main .screen-head button.primary")
    fill(browser, "dialog[open] input[name=name]", "data-1")
    fill(browser, "dialog[open] input[name=size]", "1")
    click(browser, "dialog[open] button[type=submit]")
    with cloud.client(cloud.token(user_b, "pw", project=b["name"])) as c:
        volumes = wait_until(browser, lambda d: c.get("/volume/v3/volumes").json()["volumes"], "the volume")
        assert [v["name"] for v in volumes] == ["data-1"]
        vid = volumes[0]["id"]
        # The row turns "available" by itself (live events, or polling without them).
        wait_until(browser, lambda d: find(d, f"#volume-list tr[data-id='{vid}'] .badge[data-status=available]"),
                   "the volume to show available", timeout=60)
        row = f"#volume-list tr[data-id='{vid}']"
        click(browser, f"{row} .buttons button:nth-child(2)")  # Snapshot…
        click(browser, "dialog[open] button[type=submit]")
        wait_text(browser, "#snapshot-list", "data-1-snap")
        snapshots = c.get("/volume/v3/snapshots").json()["snapshots"]
        assert [s["volume_id"] for s in snapshots] == [vid]
        # A refused change shows Cinder's own message: shrinking is not extending.
        click(browser, f"{row} .buttons button:nth-child(1)")  # Extend…
        size = wait_css(browser, "dialog[open] input[name=size]")
        browser.execute_script("arguments[0].min = 0", size)
        fill(browser, "dialog[open] input[name=size]", "1")
        click(browser, "dialog[open] button[type=submit]")
        error = wait_css(browser, "dialog[open] form .error")
        r = c.post(f"/volume/v3/volumes/{vid}/action", json={"os-extend": {"new_size": 1}})
        assert r.status_code == 400
        assert error.text == next(iter(r.json().values()))["message"]  # Cinder's {"badRequest": {...}} or {"error": {...}}


def test_a_sign_in_without_a_project_takes_the_users_first_project(cloud: Cloud, browser):
    a, b, user_ab, _ = two_projects_user(cloud)
    sign_in(browser, cloud, user_ab, "pw", None)
    token = session_token(browser)
    with cloud.client(cloud.token()) as admin, cloud.client(token) as user:
        scoped = admin.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).json()["token"]
        mine = user.get("/identity/v3/auth/projects").json()["projects"]
    assert scoped["project"]["id"] == mine[0]["id"] and {p["id"] for p in mine} == {a["id"], b["id"]}
    selected = Select(wait_css(browser, "#project-switcher")).first_selected_option
    assert selected.get_attribute("value") == scoped["project"]["id"]
    wait_text(browser, "main", f"Project {scoped['project']['name']}")

"""The network, container and admin screens in a real browser (Chromium headless) against a node with
the fake drivers: a network, subnet and router made through the forms and seen in the topology picture
(and the picture following changes made elsewhere, live), a container's upload and public toggle, the
admin screens absent for a member, and an administrator's cluster view, quotas and flavors."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.browser import browser, click, fill, find, go, session_token, sign_in, wait_css, wait_text, wait_until  # noqa: F401
from tests.cloud import Cloud


def present(driver: Any, css: str, what: str | None = None) -> Any:
    """The first element matching ``css`` once there is one (SVG shapes: present, not 'displayed')."""
    return wait_until(driver, lambda d: next(iter(find(d, css)), None), what or f"an element {css!r}")


def absent(driver: Any, css: str, what: str | None = None) -> None:
    wait_until(driver, lambda d: not find(d, css), what or f"no element {css!r}")


def choose(driver: Any, css: str, text: str) -> None:
    """Pick the option of a <select> whose label is ``text`` (again if a live redraw replaced it meanwhile)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import Select

    def picked(d: Any) -> bool:
        try:
            select = Select(wait_css(d, css))
            select.select_by_visible_text(text)
            return select.first_selected_option.text == text
        except (StaleElementReferenceException, NoSuchElementException):
            return False

    wait_until(driver, picked, f"{text!r} chosen in {css!r}")


def new_member(cloud: Cloud) -> tuple[dict, str]:
    """A project and a user who is only a member of it (password "pw")."""
    suffix = uuid.uuid4().hex[:8]
    with cloud.client(cloud.token()) as admin:
        project = admin.post("/identity/v3/projects", json={"project": {"name": f"wm-{suffix}"}}).json()["project"]
        user = admin.post("/identity/v3/users", json={"user": {"name": f"wm-{suffix}", "password": "pw"}}).json()["user"]
        member = next(r["id"] for r in admin.get("/identity/v3/roles").json()["roles"] if r["name"] == "member")
        assert admin.put(f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{member}").status_code == 204
    return project, user["name"]


def by_name(client: httpx.Client, collection: str, name: str) -> dict:
    rows = client.get(f"/network/v2.0/{collection}", params={"name": name}).json()[collection]
    assert len(rows) == 1, rows
    return rows[0]


def test_a_network_subnet_and_router_made_in_the_browser_show_in_the_topology(cloud: Cloud, browser):
    project, user = new_member(cloud)
    suffix = uuid.uuid4().hex[:6]
    sign_in(browser, cloud, user, "pw", project["name"])
    token = session_token(browser)

    go(browser, "networks")
    fill(browser, "#network-create input[name=name]", f"net-{suffix}")
    fill(browser, "#network-create input[name=cidr]", "10.61.0.0/24")
    click(browser, "#network-create button[type=submit]")
    wait_text(browser, "main .screen[data-screen=networks] table", "10.61.0.0/24")
    with cloud.client(token) as c:
        network = by_name(c, "networks", f"net-{suffix}")
        subnet = c.get("/network/v2.0/subnets", params={"network_id": network["id"]}).json()["subnets"]
        assert [s["cidr"] for s in subnet] == ["10.61.0.0/24"]
        assert network["project_id"] == project["id"]
        public = next(n for n in c.get("/network/v2.0/networks").json()["networks"] if n["router:external"])

    go(browser, "routers")
    fill(browser, "#router-create input[name=name]", f"rt-{suffix}")
    choose(browser, "#router-create select[name=gateway]", public["name"])
    click(browser, "#router-create button[type=submit]")
    with cloud.client(token) as c:
        router = wait_until(browser, lambda d: next(iter(c.get("/network/v2.0/routers", params={"name": f"rt-{suffix}"})
                                                         .json()["routers"]), None), "the router")
        assert router["external_gateway_info"]["network_id"] == public["id"]
    row = f"tr[data-id='{router['id']}']"
    wait_text(browser, row, public["name"])
    choose(browser, f"{row} select[name=subnet]", f"net-{suffix}: 10.61.0.0/24")
    click(browser, f"{row} button[data-action=add-interface]")
    wait_text(browser, row, "10.61.0.1")
    with cloud.client(token) as c:
        ports = c.get("/network/v2.0/ports", params={"device_id": router["id"],
                                                     "device_owner": "network:router_interface"}).json()["ports"]
        assert [p["network_id"] for p in ports] == [network["id"]]

    go(browser, "topology")
    present(browser, f"svg.topology g[data-kind=network][data-network-id='{network['id']}']")
    present(browser, f"svg.topology g[data-kind=external][data-network-id='{public['id']}']")
    present(browser, f"svg.topology g[data-kind=router][data-router-id='{router['id']}']")
    link = present(browser, f"svg.topology g[data-link=router][data-router-id='{router['id']}'][data-network-id='{network['id']}']")
    assert link.get_attribute("data-port-id") == ports[0]["id"]
    present(browser, f"svg.topology g[data-link=gateway][data-router-id='{router['id']}'][data-network-id='{public['id']}']")
    assert f"net-{suffix}" in present(browser, "svg.topology").text


def test_the_topology_follows_changes_made_elsewhere_without_a_reload(cloud: Cloud, browser):
    project, user = new_member(cloud)
    sign_in(browser, cloud, user, "pw", project["name"])
    token = session_token(browser)
    go(browser, "topology")
    present(browser, "svg.topology g[data-kind=external]")  # the external network: the project has nothing yet
    assert not find(browser, "svg.topology g[data-kind=network], svg.topology g[data-kind=router]")
    wait_css(browser, ".live.on")  # the event stream is connected
    browser.execute_script("window.__sameDocument = true")

    with cloud.client(token) as c:  # the CLI's calls, not the page's
        network = c.post("/network/v2.0/networks", json={"network": {"name": "elsewhere"}}).json()["network"]
        subnet = c.post("/network/v2.0/subnets", json={"subnet": {
            "network_id": network["id"], "cidr": "10.62.0.0/24", "ip_version": 4}}).json()["subnet"]
        router = c.post("/network/v2.0/routers", json={"router": {"name": "elsewhere-rt"}}).json()["router"]
        present(browser, f"svg.topology g[data-kind=network][data-network-id='{network['id']}']")
        present(browser, f"svg.topology g[data-kind=router][data-router-id='{router['id']}']")
        r = c.put(f"/network/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]})
        assert r.status_code == 200, r.text
        link = f"svg.topology g[data-link=router][data-router-id='{router['id']}'][data-network-id='{network['id']}']"
        present(browser, link)
        r = c.put(f"/network/v2.0/routers/{router['id']}/remove_router_interface", json={"subnet_id": subnet["id"]})
        assert r.status_code == 200, r.text
        absent(browser, link)
        assert c.delete(f"/network/v2.0/routers/{router['id']}").status_code == 204
        absent(browser, f"svg.topology g[data-router-id='{router['id']}']")
    assert browser.execute_script("return window.__sameDocument") is True  # never reloaded


def test_a_container_upload_shows_progress_and_the_public_toggle_opens_it_to_anyone(cloud: Cloud, browser, tmp_path: Path):
    project, user = new_member(cloud)
    sign_in(browser, cloud, user, "pw", project["name"])
    token = session_token(browser)
    name = f"box-{uuid.uuid4().hex[:6]}"
    payload = tmp_path / "hello.txt"
    payload.write_bytes(b"hello from the browser\n" * 200000)  # 4.4 MiB: progress as it goes, then done

    go(browser, "containers")
    fill(browser, "#container-create input[name=name]", name)
    click(browser, "#container-create button[type=submit]")
    click(browser, f"a[data-container='{name}']")
    wait_css(browser, f"#container-objects form[data-container='{name}'] input[type=file]").send_keys(str(payload))
    click(browser, f"#container-objects form[data-container='{name}'] button[type=submit]")
    done = wait_css(browser, "#uploads .progress.done")
    assert int(done.get_attribute("data-updates")) >= 2  # the browser's progress events, then the end
    wait_text(browser, "#container-objects table", "hello.txt")
    account = f"/object-store/v1/AUTH_{project['id']}"
    with cloud.client(token) as c:
        assert c.get(f"{account}/{name}/hello.txt").content == payload.read_bytes()
    with cloud.client() as anonymous:
        assert anonymous.get(f"{account}/{name}/hello.txt").status_code == 401

    click(browser, "#container-objects button[data-action=toggle-public]")
    wait_css(browser, "#container-objects [data-public=true]")
    with cloud.client(token) as c:
        assert c.head(f"{account}/{name}").headers["X-Container-Read"] == ".r:*,.rlistings"
    with cloud.client() as anonymous:
        assert anonymous.get(f"{account}/{name}/hello.txt").content == payload.read_bytes()
    click(browser, "#container-objects button[data-action=toggle-public]")
    wait_css(browser, "#container-objects [data-public=false]")
    with cloud.client() as anonymous:
        assert anonymous.get(f"{account}/{name}/hello.txt").status_code == 401


def test_a_member_has_no_admin_screens_and_the_admin_apis_refuse_the_member(cloud: Cloud, browser):
    project, user = new_member(cloud)
    sign_in(browser, cloud, user, "pw", project["name"])
    wait_css(browser, "#nav a[data-screen=topology]")  # the project's network screens are there
    for screen in ("admin_identity", "admin_compute", "cluster"):
        assert not find(browser, f"#nav a[data-screen={screen}]")
        browser.execute_script("location.hash = arguments[0]", f"#/{screen}")
        wait_css(browser, "main .screen[data-screen=overview] h1")
        assert not find(browser, f"main .screen[data-screen={screen}]")
    with cloud.client(session_token(browser)) as member:  # nor would the APIs have answered
        assert member.get("/cloudbox/v1/nodes").status_code == 403
        assert member.get("/identity/v3/users").status_code == 403
        assert member.get("/compute/v2.1/os-hypervisors/detail").status_code == 403


def test_an_admin_sees_the_cluster_view_with_this_node(cloud: Cloud, browser):
    with cloud.client() as c:
        node = c.get("/cloudbox/v1/health").json()["node"]
    with cloud.client(cloud.token()) as admin:
        nodes = admin.get("/cloudbox/v1/nodes").json()["nodes"]
    me = next(n for n in nodes if n["name"] == node)
    sign_in(browser, cloud, "admin", cloud.password, "admin")
    go(browser, "cluster")
    card = wait_text(browser, f"#cluster-nodes article[data-node-id='{me['id']}']", f"{node} (this node)")
    assert "UP" in card.text and me["role"] in card.text and me["address"] in card.text
    guests = card.find_element("css selector", "[data-guests]").text
    assert guests == str(me["capacity"].get("servers", 0))
    vcpus = card.find_element("css selector", ".bar")
    assert vcpus.get_attribute("data-limit") == str(me["capacity"]["vcpus"])
    wait_text(browser, "#cluster-nodes .cluster-summary", f"served by {node}")


def test_an_admin_sets_a_projects_quota_and_makes_a_private_flavor_for_it(cloud: Cloud, browser):
    project, _ = new_member(cloud)
    sign_in(browser, cloud, "admin", cloud.password, "admin")
    go(browser, "admin_compute")
    flavor = f"fl-{uuid.uuid4().hex[:6]}"
    fill(browser, "#flavor-create input[name=name]", flavor)
    click(browser, "#flavor-create input[name=public]")  # private
    click(browser, "#flavor-create button[type=submit]")
    with cloud.client(cloud.token()) as admin:
        made = wait_until(browser, lambda d: next((f for f in admin.get("/compute/v2.1/flavors/detail?is_public=None")
                                                   .json()["flavors"] if f["name"] == flavor), None), "the flavor")
        assert made["os-flavor-access:is_public"] is False
    row = f"tr[data-id='{made['id']}']"
    choose(browser, f"{row} select", project["name"])
    click(browser, f"{row} button:not(.danger)")
    wait_css(browser, f"{row} li[data-project-id='{project['id']}']")
    with cloud.client(cloud.token()) as admin:
        access = admin.get(f"/compute/v2.1/flavors/{made['id']}/os-flavor-access").json()["flavor_access"]
        assert access == [{"flavor_id": made["id"], "tenant_id": project["id"]}]

    click(browser, "button[data-tab=quotas]")
    choose(browser, "#quota-project", project["name"])
    field = wait_css(browser, "[data-service=compute] input[name=instances]")
    field.clear()
    field.send_keys("7")
    click(browser, "button[data-action=save-compute]")
    wait_css(browser, "[data-service=compute] [data-quota=instances] .bar[data-limit='7']")
    with cloud.client(cloud.token()) as admin:
        assert admin.get(f"/compute/v2.1/os-quota-sets/{project['id']}").json()["quota_set"]["instances"] == 7


def test_a_floating_ip_allocated_and_mapped_to_a_server_and_a_security_group_rule_made_in_the_browser(
        cloud: Cloud, browser, tmp_path: Path):
    from tests.compute_helpers import boot, make_qcow2, upload_image, wait_server

    project, user = new_member(cloud)
    token = cloud.token(user, "pw", project=project["name"])
    with cloud.client(token) as c:  # a network behind a router to the external one, and a server on it
        public = next(n for n in c.get("/network/v2.0/networks").json()["networks"] if n["router:external"])
        network = c.post("/network/v2.0/networks", json={"network": {"name": "fip-net"}}).json()["network"]
        subnet = c.post("/network/v2.0/subnets", json={"subnet": {
            "network_id": network["id"], "cidr": "10.63.0.0/24", "ip_version": 4}}).json()["subnet"]
        router = c.post("/network/v2.0/routers", json={"router": {
            "name": "fip-rt", "external_gateway_info": {"network_id": public["id"]}}}).json()["router"]
        assert c.put(f"/network/v2.0/routers/{router['id']}/add_router_interface",
                     json={"subnet_id": subnet["id"]}).status_code == 200
        image = upload_image(c, make_qcow2(tmp_path / "disk.qcow2", "16M"))
        server = boot(c, image["id"], name="fip-server", networks=[{"uuid": network["id"]}])
        wait_server(c, server["id"], {"ACTIVE"})
        port = c.get("/network/v2.0/ports", params={"device_id": server["id"]}).json()["ports"][0]
    address = port["fixed_ips"][0]["ip_address"]

    sign_in(browser, cloud, user, "pw", project["name"])
    go(browser, "topology")  # the server, its port on the network
    present(browser, f"svg.topology g[data-kind=server][data-server-id='{server['id']}']")
    present(browser, f"svg.topology g[data-link=server][data-server-id='{server['id']}'][data-port-id='{port['id']}']"
                     f"[data-network-id='{network['id']}']")

    go(browser, "floating_ips")
    click(browser, "main .screen[data-screen=floating_ips] button.primary")  # Allocate IP (from the only pool)
    with cloud.client(token) as c:
        fip = wait_until(browser, lambda d: next(iter(c.get("/network/v2.0/floatingips").json()["floatingips"]), None),
                         "the floating IP")
    row = f"tr[data-id='{fip['id']}']"
    choose(browser, f"{row} select", f"fip-server: {address} (fip-net)")
    click(browser, f"{row} button")
    wait_css(browser, f"{row} [data-port-id='{port['id']}']")
    with cloud.client(token) as c:
        mapped = c.get(f"/network/v2.0/floatingips/{fip['id']}").json()["floatingip"]
        assert (mapped["port_id"], mapped["fixed_ip_address"]) == (port["id"], address)

    go(browser, "security_groups")
    fill(browser, "#security-group-create input[name=name]", "web-ssh")
    click(browser, "#security-group-create button[type=submit]")
    with cloud.client(token) as c:
        group = wait_until(browser, lambda d: next(iter(c.get("/network/v2.0/security-groups", params={"name": "web-ssh"})
                                                        .json()["security_groups"]), None), "the security group")
    card = f"article[data-security-group-id='{group['id']}']"
    click(browser, f"{card} summary")
    fill(browser, f"{card} input[name=port_min]", "22")
    fill(browser, f"{card} input[name=remote_ip]", "192.0.2.0/24")
    click(browser, f"{card} form button[type=submit]")
    wait_text(browser, f"{card} table", "192.0.2.0/24")
    with cloud.client(token) as c:
        rules = [r for r in c.get(f"/network/v2.0/security-groups/{group['id']}").json()["security_group"]["security_group_rules"]
                 if r["direction"] == "ingress"]
        assert [(r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"]) for r in rules] == [
            ("tcp", 22, 22, "192.0.2.0/24")]


def test_an_admin_makes_a_project_a_user_and_grants_a_role_and_the_user_signs_in_with_it(cloud: Cloud, browser):
    suffix = uuid.uuid4().hex[:6]
    sign_in(browser, cloud, "admin", cloud.password, "admin")
    go(browser, "admin_identity")
    fill(browser, "#project-create input[name=name]", f"ip-{suffix}")
    click(browser, "#project-create button[type=submit]")
    wait_text(browser, "[data-tab=projects] table", f"ip-{suffix}")

    click(browser, "button[data-tab=users]")
    fill(browser, "#user-create input[name=name]", f"iu-{suffix}")
    fill(browser, "#user-create input[name=password]", "secret-pw")
    click(browser, "#user-create button[type=submit]")
    wait_text(browser, "[data-tab=users] table", f"iu-{suffix}")

    click(browser, "button[data-tab=roles]")
    choose(browser, "#role-grant select[name=actor]", f"user iu-{suffix}")
    choose(browser, "#role-grant select[name=project]", f"ip-{suffix}")
    choose(browser, "#role-grant select[name=role]", "member")
    click(browser, "#role-grant button[type=submit]")
    wait_text(browser, "[data-tab=roles] table", f"iu-{suffix}")
    token = cloud.token(f"iu-{suffix}", "secret-pw", project=f"ip-{suffix}")  # 201: the grant took
    with cloud.client(token) as c:
        roles = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["roles"]
        assert [r["name"] for r in roles if r["name"] in ("member", "admin")] == ["member"]


def test_these_screens_do_not_scroll_sideways_on_a_phone(cloud: Cloud, browser):
    sign_in(browser, cloud, "admin", cloud.password, "admin")
    browser.set_window_size(390, 844)
    for screen in ("networks", "routers", "floating_ips", "security_groups", "topology", "containers",
                   "admin_identity", "admin_compute", "cluster"):
        browser.execute_script("location.hash = arguments[0]", f"#/{screen}")
        wait_css(browser, f"main .screen[data-screen={screen}] h1")
        wait_until(browser, lambda d: not find(d, "main .region[aria-busy=true]"), f"{screen} to be drawn")
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"), screen


def test_many_servers_are_drawn_as_one_box_per_set_of_networks(new_cloud: Cloud, browser, tmp_path: Path):
    from tests.compute_helpers import LATEST, make_qcow2, upload_image

    # A cloud of its own: 30 servers would take the session cloud's vCPUs from the tests after it.
    cloud = new_cloud
    cloud.init()
    cloud.start()
    project, user = new_member(cloud)
    with cloud.client(cloud.token()) as admin:
        assert admin.put(f"/compute/v2.1/os-quota-sets/{project['id']}", json={"quota_set": {
            "instances": 40, "cores": 40, "ram": -1}}).status_code == 200
    token = cloud.token(user, "pw", project=project["name"])
    with cloud.client(token) as c:
        network = c.post("/network/v2.0/networks", json={"network": {"name": "many"}}).json()["network"]
        assert c.post("/network/v2.0/subnets", json={"subnet": {
            "network_id": network["id"], "cidr": "10.64.0.0/24", "ip_version": 4}}).status_code == 201
        image = upload_image(c, make_qcow2(tmp_path / "disk.qcow2", "16M"))
        r = c.post("/compute/v2.1/servers", headers=LATEST, json={"server": {
            "name": "many", "imageRef": image["id"], "flavorRef": "42", "networks": [{"uuid": network["id"]}],
            "min_count": 30, "max_count": 30}})
        assert r.status_code == 202, r.text
        wait_until(browser, lambda d: sum(s["status"] == "ACTIVE" for s in c.get("/compute/v2.1/servers/detail")
                                          .json()["servers"]) == 30, "30 servers ACTIVE", timeout=120)

    sign_in(browser, cloud, user, "pw", project["name"])
    go(browser, "topology")
    group = wait_text(browser, "svg.topology g[data-kind=servers]", "30 servers")
    assert "ACTIVE 30" in group.text
    assert not find(browser, "svg.topology g[data-kind=server]")
    present(browser, f"svg.topology g[data-link=servers][data-network-id='{network['id']}']")

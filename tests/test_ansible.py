"""Ansible's openstack.cloud collection against a real node (issue 13, acceptance 3): one playbook
(tests/ansible/site.yml) makes a project, a user, a key pair from a .pub file, a network, a subnet, a
router with its gateway and an interface, security groups and rules, an image from a file, a server
that really boots and a floating IP; run twice, the second run changes nothing. Then
tests/ansible/cleanup.yml removes it all, and its second run changes nothing either.

Ansible lives in a virtualenv of its own (packaging/test.sh makes it), with the openstacksdk its
modules run with: the collection Ansible bundles (openstack.cloud 2.5.0) reads
``openstack.version``, which openstacksdk removed in 4.15, so that venv pins 4.14."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from tests.cloud import ROOT, Cloud, wait_for
from tests.compute_helpers import wait_gone
from tests.test_compute_libvirt import real_node, stop_and_clean

pytestmark = pytest.mark.slow

ANSIBLE_VENV = Path(os.environ.get("CLOUDBOX_ANSIBLE_VENV", ROOT / ".ansible-venv"))
PLAYBOOKS = Path(__file__).resolve().parent / "ansible"
DEMO_PASSWORD = "ansible-secret-1"


@pytest.fixture
def node(tmp_path: Path, guest_image: Path) -> Iterator[Cloud]:
    node = real_node(tmp_path / "data")
    node.start(timeout=120)
    yield node
    # Guests outlive their node: a test that failed half-way leaves none behind.
    with node.client(node.token()) as admin:
        servers = admin.get("/compute/v2.1/servers?all_tenants=1").json().get("servers", [])
        for server in servers:
            admin.delete(f"/compute/v2.1/servers/{server['id']}")
        for server in servers:
            wait_gone(admin, server["id"], timeout=120)
    stop_and_clean(node)


class Playbooks:
    """Runs tests/ansible's playbooks against ``node`` (admin, and the project's user once it exists);
    a run answers the JSON callback's report, whatever its exit status."""

    def __init__(self, node: Cloud, workdir: Path, image: Path, public_key: Path) -> None:
        playbook = ANSIBLE_VENV / "bin" / "ansible-playbook"
        assert playbook.exists(), f"{playbook} is missing: packaging/test.sh installs Ansible there"
        self.command = str(playbook)
        admin = yaml.safe_load((node.data_dir / "clouds.yaml").read_text())["clouds"]["cloudbox"]
        demo = {**admin, "auth": {**admin["auth"], "username": "ansible-alice", "password": DEMO_PASSWORD,
                                  "project_name": "ansible-demo"}}
        clouds = workdir / "clouds.yaml"
        clouds.write_text(yaml.safe_dump({"clouds": {"cbx-admin": admin, "cbx-demo": demo}}))
        self.variables = workdir / "vars.json"
        self.variables.write_text(json.dumps({
            "admin_cloud": "cbx-admin", "demo_cloud": "cbx-demo", "demo_password": DEMO_PASSWORD,
            "image_file": str(image), "public_key_file": str(public_key),
            "ansible_python_interpreter": str(ANSIBLE_VENV / "bin" / "python")}))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ANSIBLE_"))}
        self.env.update({
            "OS_CLIENT_CONFIG_FILE": str(clouds), "ANSIBLE_HOME": str(workdir / "ansible-home"),
            "ANSIBLE_REMOTE_TMP": str(workdir / "ansible-tmp"),
            "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_COLLECTIONS_PATH": str(workdir / "no-collections"),  # only those the package bundles
        })

    def run(self, name: str, *options: str) -> dict[str, Any]:
        started = time.monotonic()
        proc = subprocess.run([self.command, "-i", "localhost,", "-c", "local", "-e", f"@{self.variables}", *options,
                               str(PLAYBOOKS / name)], capture_output=True, text=True, timeout=900, env=self.env)
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"ansible-playbook {name} ({proc.returncode}) wrote no JSON report:\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}") from None
        report["returncode"] = proc.returncode
        print(f"ansible-playbook {' '.join((*options, name))}: {stats(report)} in {time.monotonic() - started:.0f} s")
        return report


def stats(report: dict[str, Any]) -> dict[str, int]:
    return report["stats"]["localhost"]


def tasks_that(report: dict[str, Any], what: str) -> list[str]:
    """Names of the tasks whose result is ``what`` (changed or failed), with the failure's message."""
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get("localhost", {})
            results = result.get("results") or [result]  # a loop's items
            if any(r.get(what) for r in results):
                failed = next((r for r in results if r.get("failed")), {}) if what == "failed" else {}
                message = " ".join(str(failed[k])[-800:] for k in ("msg", "module_stderr") if failed.get(k))
                found.append(f"{task['task']['name']}{': ' + message if message else ''}")
    return found


def assert_changed_and_clean(report: dict[str, Any]) -> None:
    assert stats(report)["failures"] == 0 and report["returncode"] == 0, tasks_that(report, "failed")
    assert stats(report)["changed"] > 0


def assert_nothing_changed(report: dict[str, Any]) -> None:
    assert stats(report)["failures"] == 0 and report["returncode"] == 0, tasks_that(report, "failed")
    assert stats(report)["changed"] == 0, f"changed on the second run: {tasks_that(report, 'changed')}"


def one(client: httpx.Client, path: str, key: str) -> dict[str, Any]:
    r = client.get(path, headers={"OpenStack-API-Version": "compute latest"})
    assert r.status_code == 200, r.text
    found = r.json()[key]
    assert len(found) == 1, found
    return found[0]


def console_log(client: httpx.Client, server_id: str) -> str:
    r = client.post(f"/compute/v2.1/servers/{server_id}/action", json={"os-getConsoleOutput": {}})
    assert r.status_code == 200, r.text
    return r.json()["output"]


def check_made(node: Cloud, image: Path, public_key: Path) -> None:
    """What site.yml made is really there, as the API shows it to the project's user."""
    token = node.token("ansible-alice", DEMO_PASSWORD, project="ansible-demo")
    with node.client(token) as demo, node.client(node.token()) as admin:
        project = one(admin, "/identity/v3/projects?name=ansible-demo", "projects")
        user = one(admin, "/identity/v3/users?name=ansible-alice", "users")
        assert user["default_project_id"] == project["id"] and user["email"] == "alice@example.org"
        assert (project["description"], project.get("cost_center")) == ("Made by Ansible", "4711")
        assert one(demo, "/compute/v2.1/os-keypairs", "keypairs")["keypair"]["public_key"] == public_key.read_text()

        network = one(demo, "/network/v2.0/networks?name=demo-net", "networks")
        subnet = one(demo, "/network/v2.0/subnets?name=demo-subnet", "subnets")
        assert (subnet["network_id"], subnet["cidr"], subnet["gateway_ip"]) == (network["id"], "10.77.0.0/24",
                                                                                 "10.77.0.1")
        assert subnet["allocation_pools"] == [{"start": "10.77.0.10", "end": "10.77.0.200"}]
        public = one(demo, "/network/v2.0/networks?name=public", "networks")
        router = one(demo, "/network/v2.0/routers?name=demo-router", "routers")
        assert router["external_gateway_info"]["network_id"] == public["id"]
        interface = one(demo, f"/network/v2.0/ports?device_id={router['id']}&device_owner=network:router_interface",
                        "ports")
        assert [ip["subnet_id"] for ip in interface["fixed_ips"]] == [subnet["id"]]

        ssh = one(demo, "/network/v2.0/security-groups?name=demo-ssh", "security_groups")
        web = one(demo, "/network/v2.0/security-groups?name=demo-web", "security_groups")
        ingress = lambda group: sorted((r["protocol"], r["port_range_min"], r["port_range_max"],  # noqa: E731
                                        r["remote_ip_prefix"] or r["remote_group_id"])
                                       for r in group["security_group_rules"] if r["direction"] == "ingress")
        assert ingress(ssh) == [("icmp", None, None, "0.0.0.0/0"), ("tcp", 22, 22, "0.0.0.0/0"),
                                ("udp", 5000, 5100, ssh["id"])]
        assert ingress(web) == [("tcp", 80, 80, "0.0.0.0/0")]

        glance_image = one(demo, "/image/v2/images?name=demo-image", "images")
        assert (glance_image["status"], glance_image["size"]) == ("active", image.stat().st_size)
        assert (glance_image["tags"], glance_image["os_distro"]) == (["ansible"], "cloudbox-guest")
        assert (glance_image["visibility"], glance_image["min_ram"], glance_image["min_disk"]) == ("private", 64, 1)

        server = one(demo, "/compute/v2.1/servers/detail?name=demo-vm", "servers")
        assert (server["status"], server["key_name"], server["image"]["id"]) == ("ACTIVE", "demo-key",
                                                                                 glance_image["id"])
        assert {g["name"] for g in server["security_groups"]} == {"demo-ssh", "demo-web"}
        assert (server["metadata"], server["description"], server["tags"]) == ({"role": "web"}, "Booted by Ansible",
                                                                               ["ansible"])
        floating = one(demo, "/network/v2.0/floatingips", "floatingips")
        port = one(demo, f"/network/v2.0/ports?device_id={server['id']}", "ports")
        assert (floating["floating_network_id"], floating["port_id"]) == (public["id"], port["id"])
        addresses = server["addresses"]["demo-net"]
        assert {(a["addr"], a["OS-EXT-IPS:type"]) for a in addresses} == {
            (port["fixed_ips"][0]["ip_address"], "fixed"), (floating["floating_ip_address"], "floating")}
        # A real guest: it booted to its init.
        wait_for(lambda: "CLOUDBOX-GUEST: ready" in console_log(demo, server["id"]), 180, "the guest to boot")


def check_removed(node: Cloud) -> None:
    """Nothing site.yml made is left (the administrator looks across projects)."""
    with node.client(node.token()) as admin:
        for path, key in [("/identity/v3/projects?name=ansible-demo", "projects"),
                          ("/identity/v3/users?name=ansible-alice", "users"),
                          ("/compute/v2.1/servers?all_tenants=1&name=demo-vm", "servers"),
                          ("/image/v2/images?name=demo-image", "images"),
                          ("/network/v2.0/networks?name=demo-net", "networks"),
                          ("/network/v2.0/subnets?name=demo-subnet", "subnets"),
                          ("/network/v2.0/routers?name=demo-router", "routers"),
                          ("/network/v2.0/security-groups?name=demo-ssh", "security_groups"),
                          ("/network/v2.0/security-groups?name=demo-web", "security_groups")]:
            r = admin.get(path)
            assert r.status_code == 200 and r.json()[key] == [], (path, r.text)
        public = one(admin, "/network/v2.0/networks?name=public", "networks")
        assert admin.get(f"/network/v2.0/floatingips?floating_network_id={public['id']}").json()["floatingips"] == []


def test_playbook_is_idempotent_and_its_cleanup_too(node: Cloud, guest_image: Path, tmp_path: Path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@ansible", "-f", str(key)], check=True)
    public_key = key.with_suffix(".pub")
    assert public_key.read_text().endswith("\n")  # stored as sent, newline and all
    playbooks = Playbooks(node, tmp_path, guest_image, public_key)

    assert_changed_and_clean(playbooks.run("site.yml"))
    check_made(node, guest_image, public_key)
    assert_nothing_changed(playbooks.run("site.yml"))
    check_made(node, guest_image, public_key)

    # The project's resources first, twice, while its user can log in: every module's state=absent
    # runs again and finds nothing to do.
    assert_changed_and_clean(playbooks.run("cleanup.yml", "--skip-tags", "identity"))
    again = playbooks.run("cleanup.yml", "--skip-tags", "identity")
    assert_nothing_changed(again)
    assert stats(again)["skipped"] == 0
    # Then the user and the project; once they are gone the project's play is skipped.
    assert_changed_and_clean(playbooks.run("cleanup.yml"))
    check_removed(node)
    assert_nothing_changed(playbooks.run("cleanup.yml"))

"""The orchestration service (Heat) as a new user meets it: the training material's template
(../shared/examples/devenv.yaml, verbatim) through the real `openstack stack` CLI
(python-heatclient), the book's raw POST /stacks (new_server_stack.json) with `requests`,
an update with its plan read first, and a delete that leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from cloudbox.services import STORES
from cloudbox.state.engine import replay
from tests.cloud import Cloud, wait_for
from tests.test_durability import _live_log_and_hashes
from tests.test_openstack_cli import member_env, openstack

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "examples"


@pytest.fixture
def user_env(new_cloud: Cloud) -> dict[str, str]:
    """A project with a member user, and the CLI's environment as that user."""
    new_cloud.init()
    new_cloud.start()
    return member_env(new_cloud, "heat")


def cli(cloud: Cloud, env: dict[str, str], *args: str) -> Any:
    out = openstack(cloud, *args, "-f", "json", env=env).stdout
    # --wait prints the events it saw before the JSON: the document starts at a line's "{" or "[".
    lines = out.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line[:1] in ("{", "[")), len(lines))
    text = "".join(lines[start:])
    return json.loads(text) if text.strip() else None


def refused(cloud: Cloud, env: dict[str, str], *args: str) -> str:
    proc = openstack(cloud, *args, env=env, check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def prepare(cloud: Cloud, env: dict[str, str], tmp_path: Path, image: str) -> None:
    """What the examples assume exists: an image, a key pair named demo, a network named private."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 65536)
    cli(cloud, env, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", str(disk),
        image)
    openstack(cloud, "keypair", "create", "--private-key", str(tmp_path / "demo.pem"), "demo", env=env)
    cli(cloud, env, "network", "create", "private")
    cli(cloud, env, "subnet", "create", "--network", "private", "--subnet-range", "10.0.0.0/24", "private-subnet")


def server_addresses(server: dict[str, Any]) -> list[str]:
    addresses = server["addresses"]
    if isinstance(addresses, str):  # older clients print "private=10.0.0.5"
        return [a.split("=", 1)[-1] for a in addresses.replace(";", ",").split(",")]
    return [a for ips in addresses.values() for a in ips]


def flavor_of(server: dict[str, Any]) -> str:
    flavor = server["flavor"]
    if isinstance(flavor, dict):
        return str(flavor.get("original_name") or flavor.get("name"))
    return str(flavor).split(" ", 1)[0]


def user_ports(cloud: Cloud, env: dict[str, str]) -> list[str]:
    """The project's ports that are not the cloud's own (DHCP, router interfaces)."""
    return sorted(p["ID"] for p in cli(cloud, env, "port", "list", "--long")
                  if not str(p.get("Device Owner") or "").startswith("network:"))


def project_leftovers(cloud: Cloud, env: dict[str, str]) -> dict[str, list[str]]:
    """What exists in the project besides what prepare() made."""
    return {
        "servers": [s["Name"] for s in cli(cloud, env, "server", "list")],
        "ports": user_ports(cloud, env),
        "security groups": [g["Name"] for g in cli(cloud, env, "security", "group", "list") if g["Name"] != "default"],
        "stacks": [s["Stack Name"] for s in cli(cloud, env, "stack", "list")],
    }


def test_devenv_template_verbatim_with_the_openstack_cli(new_cloud: Cloud, user_env: dict[str, str],
                                                         tmp_path: Path):
    cloud, env = new_cloud, user_env
    prepare(cloud, env, tmp_path, "Fedora23")
    template = str(EXAMPLES / "devenv.yaml")

    # Refused before anything is made: a flavor outside allowed_values, a 3-character password.
    error = refused(cloud, env, "stack", "create", "-t", template, "--parameter", "ssh_key_name=demo",
                    "--parameter", "flavor_name=m1.tiny", "devenv")
    assert "flavor_name must be one of m1.small or m1.medium" in error
    error = refused(cloud, env, "stack", "create", "-t", template, "--parameter", "ssh_key_name=demo",
                    "--parameter", "root_password=abc", "devenv")
    assert "root_password" in error and "Password MUST be between 1 - 25 characters" in error
    assert cli(cloud, env, "stack", "list") == []
    assert cli(cloud, env, "server", "list") == []

    # The slide's command, verbatim.
    created = cli(cloud, env, "stack", "create", "-t", template, "--parameter", "ssh_key_name=demo", "--wait",
                  "devenv")
    assert created["stack_name"] == "devenv" and created["stack_status"] == "CREATE_COMPLETE", created
    server = cli(cloud, env, "server", "show", "devenv")
    assert server["key_name"] == "demo" and flavor_of(server) == "m1.small"
    output = cli(cloud, env, "stack", "output", "show", "devenv", "server_private_ip")
    assert output["output_value"] in server_addresses(server) and output["output_value"].startswith("10.0.0.")
    shown = cli(cloud, env, "stack", "show", "devenv")
    assert shown["parameters"]["root_password"] == "******"  # hidden
    assert shown["parameters"]["flavor_name"] == "m1.small"
    resources = {r["resource_name"]: r for r in cli(cloud, env, "stack", "resource", "list", "devenv")}
    assert set(resources) == {"server", "security_group"}
    assert resources["server"]["physical_resource_id"] == server["id"]
    assert all(r["resource_status"] == "CREATE_COMPLETE" for r in resources.values())
    group = cli(cloud, env, "security", "group", "show", "devenv")
    assert [(r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"])
            for r in group["rules"] if r["direction"] == "ingress"] == [("tcp", 22, 22, "0.0.0.0/0")]
    events = cli(cloud, env, "stack", "event", "list", "devenv")
    assert [e["resource_status"] for e in events if e["resource_name"] == "devenv"] == \
        ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    assert cli(cloud, env, "stack", "template", "show", "devenv")["parameters"]["flavor_name"]["default"] == \
        "m1.small"

    # The update's plan first (--dry-run): the flavor changes in place, and the group's rules.
    changed = yaml.safe_load((EXAMPLES / "devenv.yaml").read_text())
    changed["resources"]["security_group"]["properties"]["rules"].append(
        {"remote_ip_prefix": "0.0.0.0/0", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80})
    new_template = tmp_path / "devenv-web.yaml"
    new_template.write_text(yaml.safe_dump(changed))
    update = ("stack", "update", "-t", str(new_template), "--parameter", "ssh_key_name=demo",
              "--parameter", "flavor_name=m1.medium")
    plan = cli(cloud, env, *update, "--dry-run", "devenv")
    updated = {r["resource_name"]: r for r in plan["updated"]}
    assert set(updated) == {"server", "security_group"} and plan["replaced"] == [] and plan["added"] == []
    assert plan["deleted"] == [] and plan["unchanged"] == []
    assert {c["property"]: (c["old"], c["new"]) for c in updated["server"]["changes"]} == \
        {"flavor": ("m1.small", "m1.medium")}
    assert [c["property"] for c in updated["security_group"]["changes"]] == ["rules"]
    assert flavor_of(cli(cloud, env, "server", "show", "devenv")) == "m1.small"  # a plan changes nothing

    result = cli(cloud, env, *update, "--wait", "devenv")
    assert result["stack_status"] == "UPDATE_COMPLETE", result
    server_after = cli(cloud, env, "server", "show", "devenv")
    assert server_after["id"] == server["id"] and flavor_of(server_after) == "m1.medium"
    group = cli(cloud, env, "security", "group", "show", "devenv")
    assert sorted(r["port_range_min"] for r in group["rules"] if r["direction"] == "ingress") == [22, 80]

    # Delete: nothing the stack made remains.
    openstack(cloud, "stack", "delete", "--yes", "--wait", "devenv", env=env)
    assert project_leftovers(cloud, env) == {"servers": [], "ports": [], "security groups": [], "stacks": []}
    assert refused(cloud, env, "stack", "show", "devenv")


def heat_url(cloud: Cloud, env: dict[str, str]) -> tuple[str, str]:
    token = cli(cloud, env, "token", "issue")
    return f"{cloud.url}/orchestration/v1/{token['project_id']}", token["id"]


def test_new_server_stack_json_as_a_plain_post(new_cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    cloud, env = new_cloud, user_env
    prepare(cloud, env, tmp_path, "cirros")
    url, token = heat_url(cloud, env)
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    body = json.loads((EXAMPLES / "new_server_stack.json").read_text())
    answer = requests.post(f"{url}/stacks", data=json.dumps(body), headers=headers, verify=cloud.ca, timeout=30)
    assert answer.status_code == 201, answer.text
    link = answer.json()["stack"]["links"][0]["href"]
    shown = requests.get(link, headers=headers, verify=cloud.ca, timeout=30)
    assert shown.status_code == 200 and shown.json()["stack"]["stack_name"] == "new_server"

    def complete() -> dict[str, Any] | None:
        stack = requests.get(link, headers=headers, verify=cloud.ca, timeout=30).json()["stack"]
        assert stack["stack_status"] != "CREATE_FAILED", stack
        return stack if stack["stack_status"] == "CREATE_COMPLETE" else None

    wait_for(complete, 60, "new_server to be CREATE_COMPLETE", every=0.5)
    resources = {r["resource_name"]: r for r in requests.get(link + "/resources", headers=headers, verify=cloud.ca,
                                                              timeout=30).json()["resources"]}
    port = cli(cloud, env, "port", "show", resources["new_server_port"]["physical_resource_id"])
    assert port["device_id"] == resources["new_server"]["physical_resource_id"]
    # By name: 302 to NAME/ID, as python-heatclient expects.
    found = requests.get(f"{url}/stacks/new_server", headers=headers, verify=cloud.ca, timeout=30,
                         allow_redirects=False)
    assert found.status_code == 302 and found.headers["Location"] == link
    # The same name again is a conflict; a bad template is a 400 naming where; neither makes anything.
    again = requests.post(f"{url}/stacks", json=body, headers=headers, verify=cloud.ca, timeout=30)
    assert again.status_code == 409, again.text
    bad = {**body, "stack_name": "broken"}
    bad["template"] = {**body["template"], "resources": {**body["template"]["resources"], "extra": {
        "type": "OS::Nova::Server", "properties": {"flavor": "m1.small", "image": "cirros",
                                                  "networks": [{"port": {"get_resource": "nowhere"}}]}}}}
    answer = requests.post(f"{url}/stacks", json=bad, headers=headers, verify=cloud.ca, timeout=30)
    assert answer.status_code == 400 and "nowhere" in answer.json()["error"]["message"], answer.text
    assert [s["stack_name"] for s in requests.get(f"{url}/stacks", headers=headers, verify=cloud.ca,
                                                  timeout=30).json()["stacks"]] == ["new_server"]
    deleted = requests.delete(link, headers=headers, verify=cloud.ca, timeout=30)
    assert deleted.status_code == 204
    wait_for(lambda: requests.get(link, headers=headers, verify=cloud.ca, timeout=30).status_code == 404, 60,
             "new_server to be deleted", every=0.5)
    assert cli(cloud, env, "server", "list") == [] and user_ports(cloud, env) == []


def test_kill_9_halfway_through_a_create_then_it_completes_or_rolls_back(new_cloud: Cloud, user_env: dict[str, str],
                                                                         tmp_path: Path):
    cloud, env = new_cloud, user_env
    prepare(cloud, env, tmp_path, "cirros")
    # Four ports and four servers, and a wait condition after them that holds the create open
    # until the test signals it: the kill lands while the stack is surely in progress.
    template: dict[str, Any] = {"heat_template_version": "2018-08-31", "resources": {
        "handle": {"type": "OS::Heat::WaitConditionHandle"},
        "ready": {"type": "OS::Heat::WaitCondition", "depends_on": [f"server{i}" for i in range(4)],
                  "properties": {"handle": {"get_resource": "handle"}, "timeout": 600}}},
        "outputs": {"url": {"value": {"get_attr": ["handle", "endpoint"]}}}}
    for i in range(4):
        template["resources"][f"port{i}"] = {"type": "OS::Neutron::Port", "properties": {"network": "private"}}
        template["resources"][f"server{i}"] = {"type": "OS::Nova::Server", "properties": {
            "name": f"vm{i}", "flavor": "m1.tiny", "image": "cirros",
            "networks": [{"port": {"get_resource": f"port{i}"}}]}}
    path = tmp_path / "four.yaml"
    path.write_text(yaml.safe_dump(template))
    url, token = heat_url(cloud, env)
    headers = {"X-Auth-Token": token}
    cli(cloud, env, "stack", "create", "-t", str(path), "--enable-rollback", "four")

    def started() -> bool:
        events = requests.get(f"{url}/stacks/four/events", headers=headers, verify=cloud.ca, timeout=30).json()
        return any(e["resource_status"] == "CREATE_IN_PROGRESS" and e["resource_name"].startswith("server")
                   for e in events["events"])

    wait_for(started, 60, "the first server to be asked for", every=0.05)
    assert cloud.proc is not None
    cloud.proc.kill()  # kill -9, halfway
    cloud.proc.wait()
    cloud.proc = None
    cloud.start()

    # After the restart the create goes on: it completes, or (rollback enabled) rolls back whole.
    # The fake hypervisor keeps its guests in the process's memory, so a server that was ACTIVE
    # when the node died comes back as ERROR ("the guest disappeared"): then the create fails and
    # the rollback must leave nothing. With real libvirt the guests outlive the process.
    def settled() -> str | None:
        stack = cli(cloud, env, "stack", "show", "four")
        if stack["stack_status"] == "ROLLBACK_COMPLETE":
            return "rolled back"
        assert stack["stack_status"] in ("CREATE_IN_PROGRESS", "CREATE_FAILED", "ROLLBACK_IN_PROGRESS"), stack
        states = {r["resource_name"]: r["resource_status"] for r in cli(cloud, env, "stack", "resource", "list",
                                                                         "four")}
        return "waiting" if states.get("ready") == "CREATE_IN_PROGRESS" else None

    outcome = wait_for(settled, 180, lambda: f"four to go on after the restart: "
                       f"{cli(cloud, env, 'stack', 'resource', 'list', 'four')}", every=0.5)
    assert "resuming stack" in cloud.log_path.read_text()
    if outcome == "waiting":
        outputs = {o["output_key"]: o["output_value"] for o in cli(cloud, env, "stack", "show", "four")["outputs"]}
        # the handle's URL is on the metadata address (for guests); the API serves the same path
        signal = outputs["url"].replace("http://169.254.169.254", cloud.url, 1)
        assert requests.post(signal, json={"status": "SUCCESS"}, verify=cloud.ca,
                             timeout=30).status_code == 200
        wait_for(lambda: cli(cloud, env, "stack", "show", "four")["stack_status"] == "CREATE_COMPLETE", 60,
                 "four to complete", every=0.5)
        servers = cli(cloud, env, "server", "list")
        assert sorted(s["Name"] for s in servers) == ["vm0", "vm1", "vm2", "vm3"]  # none twice, none orphaned
        resources = {r["resource_name"]: r for r in cli(cloud, env, "stack", "resource", "list", "four")}
        assert {resources[f"server{i}"]["physical_resource_id"] for i in range(4)} == {s["ID"] for s in servers}
        assert user_ports(cloud, env) == sorted(resources[f"port{i}"]["physical_resource_id"] for i in range(4))
    else:
        assert cli(cloud, env, "stack", "resource", "list", "four") == []
        assert cli(cloud, env, "server", "list") == [] and user_ports(cloud, env) == []  # nothing orphaned
    openstack(cloud, "stack", "delete", "--yes", "--wait", "four", env=env)
    assert cli(cloud, env, "server", "list") == [] and user_ports(cloud, env) == []


def test_bad_input_is_refused_and_makes_nothing(new_cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    cloud, env = new_cloud, user_env
    url, token = heat_url(cloud, env)
    headers = {"X-Auth-Token": token}

    def post(template: Any, **extra: Any) -> requests.Response:
        return requests.post(f"{url}/stacks", json={"stack_name": "s1", "template": template, **extra},
                             headers=headers, verify=cloud.ca, timeout=30)

    cases = [
        ("heat_template_version: 2016-04-08\nresources: [", "template"),
        ({"heat_template_version": "2016-04-08", "resources": {"a": {"type": "OS::No::Such"}}}, "OS::No::Such"),
        ({"heat_template_version": "2016-04-08", "parameters": {"p": {"type": "string"}},
          "resources": {"a": {"type": "OS::Heat::RandomString"}}}, "p"),
        ({"heat_template_version": "2016-04-08", "resources": {
            "a": {"type": "OS::Heat::None", "depends_on": ["b"]},
            "b": {"type": "OS::Heat::None", "depends_on": ["a"]}}}, "ircular"),
        ({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}}, "AWSTemplateFormatVersion"),
        ({"heat_template_version": "2016-04-08", "resources": {"r": {"type": "OS::Heat::RandomString"}},
          "outputs": {"o": {"value": {"get_attr": ["r", "colour"]}}}}, "The Referenced Attribute (r colour)"),
    ]
    for template, named in cases:
        answer = post(template)
        assert answer.status_code == 400, (template, answer.text)
        assert named in answer.json()["error"]["message"], (named, answer.text)
    assert requests.get(f"{url}/stacks", headers=headers, verify=cloud.ca, timeout=30).json() == {"stacks": []}
    random = post({"heat_template_version": "2016-04-08", "resources": {"r": {"type": "OS::Heat::RandomString",
                                                                              "properties": {"length": 12}}},
                   "outputs": {"v": {"value": {"get_attr": ["r", "value"]}}}})
    assert random.status_code == 201, random.text
    link = random.json()["stack"]["links"][0]["href"]
    stack = wait_for(lambda: (lambda s: s if s["stack_status"] == "CREATE_COMPLETE" else None)(
        requests.get(link, headers=headers, verify=cloud.ca, timeout=30).json()["stack"]), 30, "s1 complete")
    assert len(stack["outputs"][0]["output_value"]) == 12
    # A member of another project cannot see it, by id or by its URL.
    openstack(cloud, "project", "create", "other")
    openstack(cloud, "user", "create", "--password", "pw-other-1", "stranger")
    openstack(cloud, "role", "add", "--project", "other", "--user", "stranger", "member")
    stranger = cloud.token("stranger", "pw-other-1", "other")
    other_url = url.rsplit("/", 1)[0] + "/" + cli(cloud, cloud.openstack_env(), "project", "show", "other")["id"]
    seen = requests.get(f"{other_url}/stacks/{stack['id']}", headers={"X-Auth-Token": stranger}, verify=cloud.ca,
                        timeout=30, allow_redirects=False)
    assert seen.status_code == 404, seen.text
    assert requests.get(link, headers={"X-Auth-Token": stranger}, verify=cloud.ca, timeout=30).status_code == 404
    # The orchestration commands replay to the same database (what replication rests on).
    entries, live = _live_log_and_hashes(cloud.data_dir / "state.db")
    assert any('"type":"orchestration.resource.state"' in e for e in entries)
    assert replay(entries, tmp_path / "replayed.db", STORES) == live
    assert requests.delete(link, headers=headers, verify=cloud.ca, timeout=30).status_code == 204
    wait_for(lambda: requests.get(link, headers=headers, verify=cloud.ca, timeout=30).status_code == 404, 30,
             "s1 to be deleted", every=0.2)

"""The real python-openstackclient against a real cloudbox over HTTPS (issue #2's acceptance)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.cloud import Cloud

OPENSTACK = shutil.which("openstack", path=str(Path(sys.executable).parent)) or shutil.which("openstack")


def openstack(cloud: Cloud, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    assert OPENSTACK, "python-openstackclient is a test dependency; it must be installed"
    proc = subprocess.run([OPENSTACK, *args], capture_output=True, text=True, timeout=120,
                          env=env or cloud.openstack_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"openstack {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def member_env(cloud: Cloud, prefix: str) -> dict[str, str]:
    """A new project with a member user, and the CLI's environment as that user."""
    project, user, password = f"{prefix}-{uuid.uuid4().hex[:6]}", f"user-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    openstack(cloud, "project", "create", project)
    openstack(cloud, "user", "create", "--password", password, user)
    openstack(cloud, "role", "add", "--project", project, "--user", user, "member")
    return cloud.openstack_env(OS_USERNAME=user, OS_PASSWORD=password, OS_PROJECT_NAME=project)


def test_openstack_cli_walkthrough(new_cloud: Cloud):
    new_cloud.init()
    new_cloud.start()
    # openstack --os-cloud cloudbox, with the clouds.yaml that init wrote.
    env = {k: v for k, v in new_cloud.openstack_env().items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(new_cloud.data_dir / "clouds.yaml")
    token = json.loads(openstack(new_cloud, "--os-cloud", "cloudbox", "token", "issue", "-f", "json", env=env).stdout)
    assert token["id"] and token["project_id"] and token["user_id"]

    catalog = json.loads(openstack(new_cloud, "catalog", "list", "-f", "json").stdout)
    types = {entry["Type"] for entry in catalog}
    assert "identity" in types
    identity = next(e for e in catalog if e["Type"] == "identity")
    assert new_cloud.auth_url in json.dumps(identity["Endpoints"])

    project = json.loads(openstack(new_cloud, "project", "create", "demo", "-f", "json").stdout)
    assert project["name"] == "demo" and project["domain_id"] == "default"
    user = json.loads(openstack(new_cloud, "user", "create", "--project", "demo", "--password", "secret",
                                "alice", "-f", "json").stdout)
    assert user["name"] == "alice" and user["default_project_id"] == project["id"]
    openstack(new_cloud, "role", "add", "--project", "demo", "--user", "alice", "member")
    assignments = json.loads(openstack(new_cloud, "role", "assignment", "list", "--project", "demo",
                                       "--names", "-f", "json").stdout)
    assert [(a["Role"], a["User"]) for a in assignments] == [("member", "alice@Default")]

    alice = new_cloud.openstack_env(OS_USERNAME="alice", OS_PASSWORD="secret", OS_PROJECT_NAME="demo")
    alice_token = json.loads(openstack(new_cloud, "token", "issue", "-f", "json", env=alice).stdout)
    assert alice_token["project_id"] == project["id"]
    assert alice_token["user_id"] == user["id"]

    refused = openstack(new_cloud, "user", "list", env=alice, check=False)
    assert refused.returncode != 0
    assert "403" in refused.stderr or "Forbidden" in refused.stderr

    wrong = openstack(new_cloud, "token", "issue", env={**alice, "OS_PASSWORD": "wrong"}, check=False)
    assert wrong.returncode != 0 and "401" in wrong.stderr

    users = json.loads(openstack(new_cloud, "user", "list", "-f", "json").stdout)
    assert {u["Name"] for u in users} == {"admin", "alice"}


@pytest.mark.parametrize("resource", ["domain", "group", "region", "service"])
def test_openstack_cli_lists_and_shows(cloud: Cloud, resource: str):
    listed = json.loads(openstack(cloud, resource, "list", "-f", "json").stdout)
    assert isinstance(listed, list)
    if resource == "domain":
        assert "Default" in {d["Name"] for d in listed}
        shown = json.loads(openstack(cloud, "domain", "show", "Default", "-f", "json").stdout)
        assert shown["id"] == "default"
    if resource == "service":
        assert "identity" in {s["Type"] for s in listed}

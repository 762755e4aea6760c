"""The real `openstack` CLI (openstacksdk underneath) against the volume service, as a new user
of a new project would type the commands of OpenStack's tutorials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cloud import Cloud, wait_for
from tests.test_openstack_cli import member_env, openstack


@pytest.fixture
def user_env(new_cloud: Cloud) -> dict[str, str]:
    """A project with a member user, and the CLI's environment as that user."""
    new_cloud.init()
    new_cloud.start()
    return member_env(new_cloud, "vol")


def cli(cloud: Cloud, env: dict[str, str], *args: str) -> Any:
    out = openstack(cloud, *args, "-f", "json", env=env).stdout
    return json.loads(out) if out.strip() else None


def wait_status(cloud: Cloud, env: dict[str, str], kind: str, name: str, status: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        shown = cli(cloud, env, *kind.split(), "show", name)
        assert shown["status"] not in ("error", "error_extending"), shown
        return shown if shown["status"] == status else None

    return wait_for(done, 90, f"{kind} {name} to be {status}", every=0.5)


def test_openstack_volume_commands_as_a_new_user(new_cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    cloud, env = new_cloud, user_env
    guest = Path(__file__).resolve().parents[1] / "firmware" / "build" / "guest.qcow2"
    if not guest.exists():
        import subprocess

        guest = tmp_path / "guest.qcow2"
        subprocess.run(["qemu-img", "create", "-f", "qcow2", str(guest), "64M"], check=True, capture_output=True)
    cli(cloud, env, "image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--file", str(guest),
        "cirros")

    # The tutorial's two commands, verbatim.
    vol1 = cli(cloud, env, "volume", "create", "vol1", "--size", "1")
    assert vol1["name"] == "vol1" and vol1["size"] == 1
    vol2 = cli(cloud, env, "volume", "create", "vol2", "--image", "cirros", "--size", "1")
    assert vol2["name"] == "vol2"
    shown1 = wait_status(cloud, env, "volume", "vol1", "available")
    shown2 = wait_status(cloud, env, "volume", "vol2", "available")
    assert shown1["bootable"] is False and shown2["bootable"] is True  # the SDK reads Cinder's "false"/"true"
    assert shown2["volume_image_metadata"]["image_name"] == "cirros"

    listed = {v["Name"]: v for v in cli(cloud, env, "volume", "list")}
    assert set(listed) == {"vol1", "vol2"} and listed["vol1"]["Status"] == "available"
    assert listed["vol1"]["Size"] == 1

    openstack(cloud, "volume", "set", "--name", "data1", "--description", "my data", "--property", "use=data",
              "vol1", env=env)
    shown = cli(cloud, env, "volume", "show", "data1")
    assert shown["description"] == "my data" and shown["properties"] == {"use": "data"}
    openstack(cloud, "volume", "set", "--size", "2", "data1", env=env)
    wait_for(lambda: cli(cloud, env, "volume", "show", "data1")["size"] == 2, 60, "data1 to grow", every=0.5)
    wait_status(cloud, env, "volume", "data1", "available")

    snapshot = cli(cloud, env, "volume", "snapshot", "create", "--volume", "data1", "snap1")
    assert snapshot["name"] == "snap1"
    wait_status(cloud, env, "volume snapshot", "snap1", "available")
    assert [s["Name"] for s in cli(cloud, env, "volume", "snapshot", "list")] == ["snap1"]
    from_snap = cli(cloud, env, "volume", "create", "--snapshot", "snap1", "--size", "2", "vol3")
    assert from_snap["snapshot_id"] == snapshot["id"]
    wait_status(cloud, env, "volume", "vol3", "available")

    # Deleting a volume with snapshots is refused, and changes nothing.
    refused = openstack(cloud, "volume", "delete", "data1", env=env, check=False)
    assert refused.returncode != 0 and "snapshots" in refused.stderr
    openstack(cloud, "volume", "snapshot", "delete", "snap1", env=env)
    wait_for(lambda: cli(cloud, env, "volume", "snapshot", "list") == [], 60, "snap1 to go", every=0.5)
    openstack(cloud, "volume", "delete", "data1", "vol2", "vol3", env=env)
    wait_for(lambda: cli(cloud, env, "volume", "list") == [], 60, "the volumes to go", every=0.5)

    # A member may not make types; the admin may, and the member then uses it.
    refused = openstack(cloud, "volume", "type", "create", "fast", env=env, check=False)
    assert refused.returncode != 0
    kind = cli(cloud, cloud.openstack_env(), "volume", "type", "create", "--property", "tier=fast", "fast")
    assert kind["name"] == "fast" and kind["properties"] == {"tier": "fast"}
    assert "fast" in [t["Name"] for t in cli(cloud, env, "volume", "type", "list")]
    typed = cli(cloud, env, "volume", "create", "--type", "fast", "--size", "1", "vol4")
    assert typed["type"] == "fast"
    wait_status(cloud, env, "volume", "vol4", "available")

    # Flags, retype to a private type the project was given, an admin's reset by id, delete --purge.
    admin = cloud.openstack_env()
    openstack(cloud, "volume", "set", "--bootable", "--read-only", "vol4", env=env)
    assert cli(cloud, env, "volume", "show", "vol4")["bootable"] is True
    cli(cloud, admin, "volume", "type", "create", "--private", "gold")
    openstack(cloud, "volume", "set", "--type", "gold", "--migration-policy", "never", "vol4", env=env, check=False)
    assert cli(cloud, env, "volume", "show", "vol4")["type"] == "fast"  # gold is not the project's yet
    openstack(cloud, "volume", "type", "set", "--project", env["OS_PROJECT_NAME"], "gold", env=admin)
    openstack(cloud, "volume", "set", "--type", "gold", "--migration-policy", "never", "vol4", env=env)
    assert cli(cloud, env, "volume", "show", "vol4")["type"] == "gold"
    openstack(cloud, "volume", "set", "--state", "error", typed["id"], env=admin)
    assert cli(cloud, admin, "volume", "show", typed["id"])["status"] == "error"
    openstack(cloud, "volume", "delete", "--purge", "vol4", env=env)
    wait_for(lambda: cli(cloud, env, "volume", "list") == [], 60, "vol4 to go", every=0.5)

    openstack(cloud, "quota", "set", "--volumes", "3", "--gigabytes", "5", env["OS_PROJECT_NAME"], env=admin)
    quota = cli(cloud, admin, "quota", "show", "--volume", env["OS_PROJECT_NAME"])
    quota = {q["Resource"]: q["Limit"] for q in quota} if isinstance(quota, list) else quota
    assert quota["volumes"] == 3 and quota["gigabytes"] == 5

"""`openstack volume backup create/list/show/restore/delete` verbatim (the real CLI, openstacksdk
underneath), as a member of a new project types them."""

from __future__ import annotations

import os

from tests.cloud import Cloud, wait_for
from tests.test_openstack_cli import openstack
from tests.test_volume_api import volume_file
from tests.test_volume_cli import cli, user_env, wait_status  # noqa: F401 (fixture)


def test_openstack_volume_backup_commands(new_cloud: Cloud, user_env: dict[str, str]):
    cloud, env = new_cloud, user_env
    vol = cli(cloud, env, "volume", "create", "--size", "1", "vol1")
    wait_status(cloud, env, "volume", "vol1", "available")
    data = os.urandom(1 << 20)
    with open(volume_file(cloud, vol["id"]), "r+b") as f:
        f.write(data)
    made = cli(cloud, env, "volume", "backup", "create", "--name", "b1", "vol1")
    assert made["name"] == "b1"
    full = wait_status(cloud, env, "volume backup", "b1", "available")
    assert (full["container"], full["volume_id"], full["is_incremental"]) == ("volumebackups", vol["id"], False)
    wait_status(cloud, env, "volume", "vol1", "available")
    cli(cloud, env, "volume", "backup", "create", "--incremental", "--name", "b2", "vol1")
    assert wait_status(cloud, env, "volume backup", "b2", "available")["is_incremental"] is True
    listed = cli(cloud, env, "volume", "backup", "list")
    assert sorted(b["Name"] for b in listed) == ["b1", "b2"]
    # An existing volume needs --force; a new name makes a new volume.
    cli(cloud, env, "volume", "create", "--size", "1", "vol2")
    wait_status(cloud, env, "volume", "vol2", "available")
    refused = openstack(cloud, "volume", "backup", "restore", "b1", "vol2", env=env, check=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
    cli(cloud, env, "volume", "backup", "restore", "--force", "b1", "vol2")
    vol2 = wait_status(cloud, env, "volume", "vol2", "available")
    restored = cli(cloud, env, "volume", "backup", "restore", "b2", "vol3")
    assert restored["volume_name"] == "vol3"
    vol3 = wait_status(cloud, env, "volume", "vol3", "available")
    for target in (vol2, vol3):
        with open(volume_file(cloud, target["id"]), "rb") as f:
            assert f.read(len(data)) == data
    refused = openstack(cloud, "volume", "backup", "delete", "b1", env=env, check=False)
    assert refused.returncode != 0  # b2 depends on it
    openstack(cloud, "volume", "backup", "delete", "b2", env=env)

    def names() -> list[str]:
        return sorted(b["Name"] for b in cli(cloud, env, "volume", "backup", "list"))

    wait_for(lambda: names() == ["b1"] or None, 60, "b2 to go", every=0.5)
    openstack(cloud, "volume", "backup", "delete", "b1", env=env)
    wait_for(lambda: names() == [] or None, 60, "b1 to go", every=0.5)

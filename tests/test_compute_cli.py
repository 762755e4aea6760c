"""The real openstack CLI (openstacksdk underneath) against the compute API, at the microversion it
negotiates and at the oldest and newest we serve: what it sends to create flavors, key pairs,
server groups, aggregates and servers must pass our schemas, which refuse unknown fields."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.cloud import Cloud
from tests.compute_helpers import make_qcow2, upload_image
from tests.test_openstack_cli import openstack


@pytest.fixture(scope="module")
def cirros(cloud: Cloud, tmp_path_factory) -> str:
    admin = cloud.client(cloud.token())
    name = f"cirros-{uuid.uuid4().hex[:6]}"
    upload_image(admin, make_qcow2(tmp_path_factory.mktemp("cli") / "disk.qcow2"), name=name, visibility="public")
    return name


@pytest.mark.parametrize("version", [None, "2.1", "2.latest"])
def test_cli_creates_compute_resources(cloud: Cloud, cirros: str, tmp_path, version: str | None):
    n = uuid.uuid4().hex[:6]
    pinned = ("--os-compute-api-version", version) if version else ()

    def cli(*args: str) -> dict:
        out = openstack(cloud, *pinned, *args, "-f", "json").stdout
        return json.loads(out) if out.strip() else {}

    flavor = cli("flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1", "--rxtx-factor", "2",
                 "--private", "--id", f"f{n}", f"flavor-{n}")
    assert flavor["id"] == f"f{n}" and flavor["rxtx_factor"] == 2.0
    key = tmp_path / "id.pub"
    key.write_text(cloud.client(cloud.token()).post(
        "/compute/v2.1/os-keypairs", json={"keypair": {"name": f"gen-{n}"}}).json()["keypair"]["public_key"])
    assert cli("keypair", "create", "--public-key", str(key), f"key-{n}")["name"] == f"key-{n}"
    group = cli("server", "group", "create", "--policy", "anti-affinity", f"group-{n}")
    assert group["name"] == f"group-{n}"
    assert cli("aggregate", "create", f"agg-{n}")["name"] == f"agg-{n}"
    cli("security", "group", "create", f"sg-{n}")  # the CLI sends the group's id as its name
    server = cli("server", "create", "--flavor", "m1.nano", "--image", cirros, "--key-name", f"key-{n}",
                 "--security-group", f"sg-{n}", "--property", "role=web", "--hint", f"group={group['id']}",
                 "--config-drive", "true", "--wait", f"server-{n}")
    assert server["status"] == "ACTIVE" and server["key_name"] == f"key-{n}"
    # The README's tutorial, as typed: the start is accepted while the stop may still run.
    openstack(cloud, *pinned, "server", "stop", server["id"])
    openstack(cloud, *pinned, "server", "start", server["id"])
    snapshot = cli("server", "image", "create", "--name", f"snap-{n}", "--wait", server["id"])
    assert snapshot["status"] == "active"
    openstack(cloud, "image", "delete", snapshot["id"])
    openstack(cloud, *pinned, "server", "delete", "--wait", server["id"])
    openstack(cloud, "aggregate", "delete", f"agg-{n}")
    openstack(cloud, "server", "group", "delete", group["id"])
    openstack(cloud, "keypair", "delete", f"key-{n}")
    openstack(cloud, "security", "group", "delete", f"sg-{n}")
    openstack(cloud, "flavor", "delete", f"f{n}")

"""The real `openstack image ...` commands (python-openstackclient over openstacksdk) against a real node."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tests.cloud import Cloud
from tests.test_openstack_cli import openstack


def as_json(cloud: Cloud, *args: str) -> Any:
    return json.loads(openstack(cloud, *args, "-f", "json").stdout)


def test_openstack_image_walkthrough(cloud: Cloud, tmp_path: Path):
    raw = tmp_path / "guest.raw"
    raw.write_bytes(os.urandom(3 << 20) + b"\0" * (29 << 20))
    guest = tmp_path / "guest.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(guest)], check=True)
    data = guest.read_bytes()
    name = f"cirros-{uuid.uuid4().hex[:8]}"

    created = as_json(cloud, "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                      "--file", str(guest), name)
    assert created["status"] == "active" and created["name"] == name
    assert created["size"] == len(data)

    assert name in {i["Name"] for i in as_json(cloud, "image", "list")}
    shown = as_json(cloud, "image", "show", name)
    properties = shown.get("properties") or {}
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown.get("os_hash_value", properties.get("os_hash_value")) == hashlib.sha512(data).hexdigest()
    assert shown["virtual_size"] == 32 << 20
    assert shown["disk_format"] == "qcow2" and shown["container_format"] == "bare"

    out = tmp_path / "out"
    openstack(cloud, "image", "save", "--file", str(out), name)
    assert out.read_bytes() == data

    openstack(cloud, "image", "set", "--property", "foo=bar", "--tag", "golden", "--min-ram", "128", name)
    shown = as_json(cloud, "image", "show", name)
    assert (shown.get("properties") or {}).get("foo", shown.get("foo")) == "bar"
    assert shown["tags"] == ["golden"] and shown["min_ram"] == 128
    openstack(cloud, "image", "unset", "--property", "foo", name)
    with cloud.client(cloud.token()) as admin:
        assert "foo" not in admin.get(f"/image/v2/images/{created['id']}").json()

        openstack(cloud, "image", "set", "--protected", name)
        refused = openstack(cloud, "image", "delete", name, check=False)
        assert refused.returncode != 0 and "protected" in refused.stderr
        openstack(cloud, "image", "set", "--unprotected", name)
        openstack(cloud, "image", "delete", name)
        assert admin.get(f"/image/v2/images/{created['id']}").status_code == 404
    assert created["id"] not in os.listdir(cloud.data_dir / "images")


def test_openstack_image_metadef_commands(cloud: Cloud):
    """The CLI's metadef commands (openstacksdk's metadef resources) against our /metadefs."""
    name = f"OS::Cli::Test{uuid.uuid4().hex[:8]}"
    created = as_json(cloud, "image", "metadef", "namespace", "create", "--public", "--display-name", "CLI test",
                      "--description", "made by the CLI", name)
    assert created["namespace"] == name and created["visibility"] == "public"
    assert name in {n["namespace"] for n in as_json(cloud, "image", "metadef", "namespace", "list")}
    types = {t["Name"] for t in as_json(cloud, "image", "metadef", "resource", "type", "list")}
    assert "OS::Glance::Image" in types
    openstack(cloud, "image", "metadef", "resource", "type", "association", "create", name, "OS::Glance::Image")
    associations = as_json(cloud, "image", "metadef", "resource", "type", "association", "list", name)
    assert [a["Name"] for a in associations] == ["OS::Glance::Image"]
    openstack(cloud, "image", "metadef", "property", "create", "--name", "colour", "--type", "string", "--title",
              "Colour", "--schema", json.dumps({"enum": ["red", "blue"]}), name)
    shown = as_json(cloud, "image", "metadef", "property", "show", name, "colour")
    assert shown["title"] == "Colour" and shown["enum"] == ["red", "blue"]
    openstack(cloud, "image", "metadef", "object", "create", "--namespace", name, "Paint")
    assert [o["name"] for o in as_json(cloud, "image", "metadef", "object", "list", name)] == ["Paint"]
    openstack(cloud, "image", "metadef", "namespace", "set", "--private", name)
    assert as_json(cloud, "image", "metadef", "namespace", "show", name)["visibility"] == "private"
    openstack(cloud, "image", "metadef", "namespace", "delete", name)
    gone = openstack(cloud, "image", "metadef", "namespace", "show", name, check=False)
    assert gone.returncode != 0


def test_openstack_image_stage_and_import(cloud: Cloud, tmp_path: Path):
    """The CLI's interoperable import: import info, stage, import --wait, and the task it made."""
    info = as_json(cloud, "image", "import", "info")
    assert "glance-direct" in str(info) and "copy-image" in str(info)
    data = tmp_path / "disk.raw"
    data.write_bytes(os.urandom(1 << 20))
    name = f"staged-{uuid.uuid4().hex[:8]}"
    # Made over HTTP: the CLI's image create reads data from stdin when stdin is not a terminal.
    with cloud.client(cloud.token()) as admin:
        r = admin.post("/image/v2/images", json={"name": name, "disk_format": "raw", "container_format": "bare"})
        assert r.status_code == 201, r.text
        created = r.json()
    openstack(cloud, "image", "stage", "--file", str(data), name)
    assert as_json(cloud, "image", "show", name)["status"] == "uploading"
    openstack(cloud, "image", "import", "--method", "glance-direct", "--wait", name)
    shown = as_json(cloud, "image", "show", name)
    assert shown["status"] == "active" and shown["checksum"] == hashlib.md5(data.read_bytes()).hexdigest()
    tasks = as_json(cloud, "image", "task", "list")
    assert any(t["Type"] == "api_image_import" and t["Status"] == "success" for t in tasks)
    refused = openstack(cloud, "image", "import", "--method", "web-download", "--uri", "http://example.com/x",
                        created["id"], check=False)
    assert refused.returncode != 0
    openstack(cloud, "image", "delete", name)

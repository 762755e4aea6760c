"""The real `openstack` CLI against the parts of the volume service that attaching builds on:
QoS specs (`volume qos ...`), `volume service list`, and `image create --volume`."""

from __future__ import annotations

from typing import Any

from tests.cloud import Cloud, wait_for
from tests.test_openstack_cli import openstack
from tests.test_volume_cli import cli, user_env, wait_status  # noqa: F401 (fixture)


def test_qos_service_list_and_image_from_volume(new_cloud: Cloud, user_env: dict[str, str]):
    cloud, env, admin = new_cloud, user_env, new_cloud.openstack_env()

    qos = cli(cloud, admin, "volume", "qos", "create", "--consumer", "front-end", "--property", "read_iops_sec=100",
              "--property", "total_bytes_sec=1048576", "limited")
    print("qos create:", qos)
    assert qos["name"] == "limited" and qos["consumer"] == "front-end"
    assert qos["properties"] == {"read_iops_sec": "100", "total_bytes_sec": "1048576"}
    refused = openstack(cloud, "volume", "qos", "create", "--consumer", "middle", "bad", env=admin, check=False)
    assert refused.returncode != 0
    refused = openstack(cloud, "volume", "qos", "create", "mine", env=env, check=False)
    assert refused.returncode != 0  # admins only
    cli(cloud, admin, "volume", "type", "create", "slow")
    openstack(cloud, "volume", "qos", "associate", "limited", "slow", env=admin)
    openstack(cloud, "volume", "qos", "set", "--property", "write_iops_sec=50", "limited", env=admin)
    openstack(cloud, "volume", "qos", "unset", "--property", "total_bytes_sec", "limited", env=admin)
    shown = cli(cloud, admin, "volume", "qos", "show", "limited")
    print("qos show:", shown)
    assert shown["properties"] == {"read_iops_sec": "100", "write_iops_sec": "50"}
    assert shown["associations"] in (["slow"], "slow")
    listed = cli(cloud, admin, "volume", "qos", "list")
    assert [q["Name"] for q in listed] == ["limited"]
    refused = openstack(cloud, "volume", "qos", "delete", "limited", env=admin, check=False)
    assert refused.returncode != 0  # still associated
    openstack(cloud, "volume", "qos", "disassociate", "--volume-type", "slow", "limited", env=admin)
    openstack(cloud, "volume", "qos", "delete", "limited", env=admin)
    assert cli(cloud, admin, "volume", "qos", "list") == []

    services = cli(cloud, admin, "volume", "service", "list")
    print("volume service list:", services)
    binaries = {s["Binary"]: s for s in services}
    assert set(binaries) == {"cinder-scheduler", "cinder-volume"}
    assert binaries["cinder-volume"]["State"] == "up" and binaries["cinder-volume"]["Status"] == "enabled"

    cli(cloud, env, "volume", "create", "vol1", "--size", "1")
    wait_status(cloud, env, "volume", "vol1", "available")
    image = cli(cloud, env, "image", "create", "--volume", "vol1", "img")
    print("image create --volume:", image)
    assert image["image_name"] == "img" and image["status"] == "uploading"

    def active() -> dict[str, Any] | None:
        shown = cli(cloud, env, "image", "show", "img")
        return shown if shown["status"] == "active" else None

    made = wait_for(active, 90, "img to be active", every=0.5)
    assert made["disk_format"] == "raw" and made["size"] == 1 << 30
    wait_status(cloud, env, "volume", "vol1", "available")


def test_volume_attachment_commands(new_cloud: Cloud):
    """`openstack volume attachment ...` (3.27+) on an attachment reserved over HTTP (the CLI's
    `attachment create` looks the server up in compute, which this test has none of)."""
    import uuid

    cloud = new_cloud
    cloud.init()
    cloud.start()
    admin = {**cloud.openstack_env(), "OS_VOLUME_API_VERSION": "3.44"}
    volume = cli(cloud, admin, "volume", "create", "--size", "1", "attached")
    wait_status(cloud, admin, "volume", "attached", "available")
    server = str(uuid.uuid4())
    with cloud.client(cloud.token()) as client:
        r = client.post("/volume/v3/attachments", json={"attachment": {"volume_uuid": volume["id"],
                                                                       "instance_uuid": server}},
                        headers={"OpenStack-API-Version": "volume 3.44"})
        assert r.status_code == 200, r.text
        aid = r.json()["attachment"]["id"]
        host = client.get(f"/volume/v3/volumes/{volume['id']}").json()["volume"]["os-vol-host-attr:host"]
    listed = cli(cloud, admin, "volume", "attachment", "list")
    print("volume attachment list:", listed)
    assert [(a["ID"], a["Status"]) for a in listed] == [(aid, "reserved")]
    updated = cli(cloud, admin, "volume", "attachment", "set", "--host", host.split("@")[0], "--initiator", "iqn.x",
                  "--mountpoint", "/dev/vdb", aid)
    print("volume attachment set:", updated)
    openstack(cloud, "volume", "attachment", "complete", aid, env=admin)
    shown = cli(cloud, admin, "volume", "attachment", "show", aid)
    print("volume attachment show:", shown)
    assert updated["Status"] == "attaching" and updated["Properties"]["data"]["disk_type"] == "file"
    assert shown["Status"] == "attached" and shown["Instance ID"] == server and shown["Attached At"]
    assert shown["Properties"]["driver_volume_type"] == "local"
    assert cli(cloud, admin, "volume", "show", "attached")["status"] == "in-use"
    refused = openstack(cloud, "volume", "delete", "attached", env=admin, check=False)
    assert refused.returncode != 0
    openstack(cloud, "volume", "attachment", "delete", aid, env=admin)
    assert cli(cloud, admin, "volume", "show", "attached")["status"] == "available"

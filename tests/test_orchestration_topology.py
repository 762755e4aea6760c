"""A whole small topology from one template, as its user (fake drivers): network, subnet, router
on the external network with an interface, security group, port, key pair, server, floating IP,
volume and its attachment, random string; outputs read across them; a floating IP moved and the
volume detached, the router's interface removed outside the stack are found by `stack check` and
put back by `stack update --existing`; delete leaves nothing. And
a template cannot do what its user could not: a member's OS::Nova::Flavor fails as the compute
API refuses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.cloud import Cloud, wait_for
from tests.test_openstack_cli import openstack
from tests.test_orchestration_cli import cli, refused, user_env, user_ports  # noqa: F401 (the fixture)

TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2018-08-31",
    "parameters": {"image": {"type": "string", "default": "cirros",
                             "constraints": [{"custom_constraint": "glance.image"}]}},
    "resources": {
        "net": {"type": "OS::Neutron::Net", "properties": {"name": "app-net"}},
        "subnet": {"type": "OS::Neutron::Subnet", "properties": {
            "network": {"get_resource": "net"}, "cidr": "192.168.50.0/24", "dns_nameservers": ["192.0.2.53"]}},
        "router": {"type": "OS::Neutron::Router", "properties": {"external_gateway_info": {"network": "public"}}},
        "plug": {"type": "OS::Neutron::RouterInterface", "properties": {
            "router": {"get_resource": "router"}, "subnet": {"get_resource": "subnet"}}},
        "web": {"type": "OS::Neutron::SecurityGroup", "properties": {"rules": [
            {"protocol": "tcp", "port_range_min": 80, "port_range_max": 80}]}},
        "port": {"type": "OS::Neutron::Port", "properties": {
            "network": {"get_resource": "net"}, "security_groups": [{"get_resource": "web"}],
            "fixed_ips": [{"subnet": {"get_resource": "subnet"}}]}},
        "key": {"type": "OS::Nova::KeyPair", "properties": {"name": "app-key", "save_private_key": True}},
        "secret": {"type": "OS::Heat::RandomString", "properties": {"length": 16}},
        "server": {"type": "OS::Nova::Server", "properties": {
            "flavor": "m1.tiny", "image": {"get_param": "image"}, "key_name": {"get_resource": "key"},
            "networks": [{"port": {"get_resource": "port"}}], "metadata": {"role": "web"},
            "user_data": {"str_replace": {"template": "#!/bin/sh\necho $S\n",
                                          "params": {"$S": {"get_attr": ["secret", "value"]}}}}}},
        "fip": {"type": "OS::Neutron::FloatingIP", "depends_on": "plug", "properties": {
            "floating_network": "public", "port_id": {"get_resource": "port"}}},
        "data": {"type": "OS::Cinder::Volume", "properties": {"size": 1, "name": "app-data"}},
        "attach": {"type": "OS::Cinder::VolumeAttachment", "properties": {
            "instance_uuid": {"get_resource": "server"}, "volume_id": {"get_resource": "data"}}},
    },
    "outputs": {
        "ip": {"value": {"get_attr": ["server", "first_address"]}},
        "floating": {"value": {"get_attr": ["fip", "floating_ip_address"]}},
        "cidr": {"value": {"get_attr": ["subnet", "cidr"]}},
        "key": {"value": {"get_attr": ["key", "private_key"]}},
    },
}


def test_a_topology_from_one_template(new_cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    cloud, env = new_cloud, user_env
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 65536)
    cli(cloud, env, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", str(disk),
        "cirros")
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(TEMPLATE))
    # A name the caller cannot see is refused by its constraint before anything is made.
    error = refused(cloud, env, "stack", "create", "-t", str(path), "--parameter", "image=nope", "app")
    assert "The Image (nope) could not be found" in error
    created = cli(cloud, env, "stack", "create", "-t", str(path), "--wait", "app")
    assert created["stack_status"] == "CREATE_COMPLETE", created
    outputs = {o["output_key"]: o["output_value"] for o in cli(cloud, env, "stack", "show", "app")["outputs"]}
    assert outputs["ip"].startswith("192.168.50.") and outputs["cidr"] == "192.168.50.0/24"
    assert outputs["floating"] and outputs["key"].startswith("-----BEGIN")
    resources = {r["resource_name"]: r["physical_resource_id"] for r in cli(cloud, env, "stack", "resource", "list",
                                                                            "app")}
    server = cli(cloud, env, "server", "show", resources["server"])
    assert server["key_name"] == "app-key" and server["properties"] == {"role": "web"}
    volume = cli(cloud, env, "volume", "show", "app-data")
    assert volume["status"] == "in-use" and volume["attachments"][0]["server_id"] == resources["server"]
    port = cli(cloud, env, "port", "show", resources["port"])
    assert port["security_group_ids"] == [resources["web"]]
    fip = cli(cloud, env, "floating", "ip", "show", resources["fip"])
    assert fip["port_id"] == resources["port"]
    drift_of_links(cloud, env, resources)

    openstack(cloud, "stack", "delete", "--yes", "--wait", "app", env=env)
    assert cli(cloud, env, "server", "list") == [] and cli(cloud, env, "volume", "list") == []
    assert cli(cloud, env, "floating", "ip", "list") == [] and cli(cloud, env, "router", "list") == []
    assert [n["Name"] for n in cli(cloud, env, "network", "list") if n["Name"] == "app-net"] == []
    assert cli(cloud, env, "keypair", "list") == [] and user_ports(cloud, env) == []


def checked(cloud: Cloud, env: dict[str, str]) -> dict[str, Any]:
    """`openstack stack check --wait app` (it waits on the check's own events), then the stack and its
    resources by name."""
    openstack(cloud, "stack", "check", "--wait", "app", env=env, check=False)  # exits 1 on CHECK_FAILED
    stack = cli(cloud, env, "stack", "show", "app")
    rows = {r["resource_name"]: r for r in cli(cloud, env, "stack", "resource", "list", "app")}
    return {"stack": stack, "resources": rows}


def drift_of_links(cloud: Cloud, env: dict[str, str], resources: dict[str, str]) -> None:
    """Links changed outside the stack: its floating IP moved to another port or taken off, its volume
    detached, its router interface removed. `stack check` reports each from the cloud's database;
    `stack update --existing` puts them back."""
    assert checked(cloud, env)["stack"]["stack_status"] == "CHECK_COMPLETE"
    other = cli(cloud, env, "port", "create", "--network", "app-net", "elsewhere")["id"]
    openstack(cloud, "floating", "ip", "set", "--port", other, resources["fip"], env=env)
    openstack(cloud, "server", "remove", "volume", resources["server"], resources["data"], env=env)
    wait_for(lambda: cli(cloud, env, "volume", "show", "app-data")["status"] == "available", 60,
             "the volume to be detached", every=0.3)
    found = checked(cloud, env)
    assert found["stack"]["stack_status"] == "CHECK_FAILED", found["stack"]
    rows = found["resources"]
    assert rows["fip"]["resource_status"] == "CHECK_FAILED"
    assert rows["attach"]["resource_status"] == "CHECK_FAILED"
    reasons = {name: cli(cloud, env, "stack", "resource", "show", "app", name)["resource_status_reason"]
               for name in ("fip", "attach")}
    assert f"port_id is '{other}' in the cloud, '{resources['port']}' in the stack" in reasons["fip"], reasons
    assert "no longer exists (removed outside the stack)" in reasons["attach"], reasons
    assert {n for n, r in rows.items() if r["resource_status"] == "CHECK_FAILED"} == {"fip", "attach"}, rows

    updated = cli(cloud, env, "stack", "update", "--existing", "--wait", "app")
    assert updated["stack_status"] == "UPDATE_COMPLETE", updated
    assert cli(cloud, env, "floating", "ip", "show", resources["fip"])["port_id"] == resources["port"]
    volume = cli(cloud, env, "volume", "show", "app-data")
    assert volume["status"] == "in-use" and volume["attachments"][0]["server_id"] == resources["server"]
    assert checked(cloud, env)["stack"]["stack_status"] == "CHECK_COMPLETE"
    openstack(cloud, "port", "delete", other, env=env)

    # The floating IP taken off its port, then the router's interface removed.
    openstack(cloud, "floating", "ip", "unset", "--port", resources["fip"], env=env)
    openstack(cloud, "router", "remove", "subnet", resources["router"], resources["subnet"], env=env)
    found = checked(cloud, env)
    failed = {n for n, r in found["resources"].items() if r["resource_status"] == "CHECK_FAILED"}
    assert found["stack"]["stack_status"] == "CHECK_FAILED" and failed == {"fip", "plug"}, found
    assert "port_id is None in the cloud" in cli(cloud, env, "stack", "resource", "show", "app", "fip")[
        "resource_status_reason"]
    assert cli(cloud, env, "stack", "update", "--existing", "--wait", "app")["stack_status"] == "UPDATE_COMPLETE"
    assert cli(cloud, env, "floating", "ip", "show", resources["fip"])["port_id"] == resources["port"]
    interfaces = cli(cloud, env, "port", "list", "--router", resources["router"], "--long")
    assert any(resources["subnet"] in str(p["Fixed IP Addresses"]) for p in interfaces), interfaces
    assert checked(cloud, env)["stack"]["stack_status"] == "CHECK_COMPLETE"


def test_a_template_cannot_do_what_its_user_could_not(new_cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    cloud, env = new_cloud, user_env
    path = tmp_path / "flavor.yaml"
    path.write_text(yaml.safe_dump({"heat_template_version": "2018-08-31", "resources": {
        "f": {"type": "OS::Nova::Flavor", "properties": {"ram": 512, "vcpus": 1, "name": "mine"}}}}))
    assert "CREATE_FAILED" in refused(cloud, env, "stack", "create", "-t", str(path), "--wait", "flav")
    shown = cli(cloud, env, "stack", "show", "flav")
    assert shown["stack_status"] == "CREATE_FAILED" and "Forbidden" in shown["stack_status_reason"], shown
    assert "mine" not in [f["Name"] for f in cli(cloud, cloud.openstack_env(), "flavor", "list", "--all")]
    # The cloud's admin may (the same template, as admin).
    admin = cloud.openstack_env()
    assert cli(cloud, admin, "stack", "create", "-t", str(path), "--wait", "flav")["stack_status"] == \
        "CREATE_COMPLETE"
    assert "mine" in [f["Name"] for f in cli(cloud, admin, "flavor", "list", "--all")]

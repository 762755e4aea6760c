"""compute.core: domain XML, metadata round trip, lifecycle table, config-drive layout (no root, no libvirt)."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET

import pytest

from cloudbox.compute import core
from cloudbox.compute.driver import DomainSpec
from cloudbox.nics import NicSpec
from cloudbox.errors import Conflict

UUID = "0b0e6a4c-6a39-4d6c-9d57-3f2d7a1f2b10"


def make_spec(**changes) -> DomainSpec:
    values = dict(
        uuid=UUID,
        name=core.domain_name(UUID),
        vcpus=2,
        memory_mb=256,
        root_disk="/var/lib/cloudbox/instances/x/disk",
        console_log="/var/lib/cloudbox/instances/x/console.log",
        accel="tcg",
        nics=(NicSpec(mac="fa:16:3e:00:00:01", tap="tap0b0e6a4c-6a", mtu=1450), NicSpec(mac="fa:16:3e:00:00:02", tap="tapsecond")),
        config_drive="/var/lib/cloudbox/instances/x/config.iso",
        metadata={"project_id": "p1", "flavor": "m1.tiny", "odd <&> value": "a'b\"c"},
    )
    values.update(changes)
    return DomainSpec(**values)


def parse(spec: DomainSpec, **kwargs) -> ET.Element:
    return ET.fromstring(core.render_domain_xml(spec, **kwargs))


def test_domain_basics():
    root = parse(make_spec())
    assert root.tag == "domain" and root.get("type") == "qemu"
    assert root.findtext("name") == f"cloudbox-{UUID}"
    assert root.findtext("uuid") == UUID
    assert root.find("memory").get("unit") == "MiB" and root.findtext("memory") == "256"
    assert root.findtext("vcpu") == "2"
    os_type = root.find("os/type")
    assert os_type.text == "hvm" and os_type.get("machine") == "pc" and os_type.get("arch") == "x86_64"
    assert root.find("os/bios").get("useserial") == "yes"
    assert root.find("cpu") is None  # TCG: QEMU's default model, no host-passthrough
    assert root.findtext("on_poweroff") == "destroy"
    assert root.findtext("on_reboot") == "restart"
    assert root.findtext("on_crash") == "destroy"
    assert root.find("features/acpi") is not None
    entries = {e.get("name"): e.text for e in root.findall("sysinfo/system/entry")}
    assert entries["product"] == "OpenStack Compute" and entries["serial"] == UUID


def test_kvm_gets_host_passthrough():
    root = parse(make_spec(accel="kvm"))
    assert root.get("type") == "kvm"
    assert root.find("cpu").get("mode") == "host-passthrough"


def test_disks():
    root = parse(make_spec())
    disks = root.findall("devices/disk")
    assert [d.get("device") for d in disks] == ["disk", "cdrom"]
    main, cdrom = disks
    assert main.find("driver").get("type") == "qcow2"
    assert main.find("source").get("file").endswith("/disk")
    assert main.find("target").get("bus") == "virtio" and main.find("target").get("dev") == "vda"
    assert cdrom.find("readonly") is not None
    assert cdrom.find("driver").get("type") == "raw"
    assert cdrom.find("source").get("file").endswith("config.iso")
    assert cdrom.find("target").get("bus") == "ide"
    q35 = parse(make_spec(), machine="q35")
    assert q35.find("os/type").get("machine") == "q35"
    assert q35.find("devices/disk[@device='cdrom']/target").get("bus") == "sata"


def test_no_config_drive_no_cdrom():
    root = parse(make_spec(config_drive=None))
    assert [d.get("device") for d in root.findall("devices/disk")] == ["disk"]


def test_nics():
    interfaces = parse(make_spec()).findall("devices/interface")
    assert len(interfaces) == 2
    first = interfaces[0]
    assert first.get("type") == "ethernet"
    assert first.find("mac").get("address") == "fa:16:3e:00:00:01"
    target = first.find("target")
    assert target.get("dev") == "tap0b0e6a4c-6a" and target.get("managed") == "no"
    assert first.find("model").get("type") == "virtio"
    assert first.find("mtu").get("size") == "1450"
    assert interfaces[1].find("mtu").get("size") == "1500"


def test_console_is_a_socket_logged_to_the_file():
    root = parse(make_spec())
    serial = root.find("devices/serial")
    assert serial.get("type") == "unix"
    socket = serial.find("source").get("path")
    assert serial.find("source").get("mode") == "bind" and socket == core.serial_socket(make_spec().uuid)
    assert len(socket) < 108  # a unix socket's path
    assert serial.find("log").get("file") == "/var/lib/cloudbox/instances/x/console.log"
    assert serial.find("log").get("append") == "on"
    console = root.find("devices/console")
    assert console.get("type") == "unix" and console.find("target").get("type") == "serial"
    assert console.find("source").get("path") == socket
    # VNC on a socket libvirt names, never a TCP port.
    [graphics] = root.findall("devices/graphics")
    assert graphics.get("type") == "vnc" and graphics.get("port") is None and graphics.get("listen") is None
    assert [listen.get("type") for listen in graphics.findall("listen")] == ["socket"]


def test_console_sockets_come_from_the_live_xml():
    live = """<domain><devices>
      <serial type='unix'><source mode='bind' path='/run/s.sock'/><target port='0'/></serial>
      <graphics type='vnc' socket='/lib/qemu/domain-1-x/vnc.sock'><listen type='socket' socket='/lib/qemu/domain-1-x/vnc.sock'/></graphics>
    </devices></domain>"""
    assert core.console_sockets(live) == {"vnc": "/lib/qemu/domain-1-x/vnc.sock", "serial": "/run/s.sock"}
    old = "<domain><devices><serial type='file'><source path='/c.log'/></serial></devices></domain>"
    assert core.console_sockets(old) == {}


def test_metadata_round_trip():
    spec = make_spec()
    xml = core.render_domain_xml(spec)
    assert core.METADATA_NS in xml
    assert core.parse_domain_metadata(xml) == spec.metadata
    # The metadata element alone (as virDomainGetMetadata returns it) parses too.
    element = ET.fromstring(xml).find(f"metadata/{{{core.METADATA_NS}}}domain")
    assert core.parse_domain_metadata(ET.tostring(element, encoding="unicode")) == spec.metadata
    assert core.parse_domain_metadata("<domain type='qemu'><name>other</name></domain>") == {}


def test_bad_specs_refused():
    with pytest.raises(ValueError):
        core.render_domain_xml(make_spec(accel="hvf"))
    with pytest.raises(ValueError):
        core.render_domain_xml(make_spec(memory_mb=1))
    with pytest.raises(ValueError):
        core.render_domain_xml(make_spec(), machine="virt")


def test_names_are_escaped():
    spec = make_spec(root_disk="/tmp/a'b&c/disk")
    assert parse(spec).find("devices/disk/source").get("file") == "/tmp/a'b&c/disk"


# --- lifecycle ------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation, state, expected",
    [
        ("start", "shutoff", "running"),
        ("start", "running", None),
        ("start", "suspended", "running"),
        ("stop", "running", "shutoff"),
        ("stop", "shutoff", None),
        ("stop", "suspended", "shutoff"),
        ("reboot", "running", "running"),
        ("hard_reboot", "running", "running"),
        ("hard_reboot", "shutoff", "running"),
        ("pause", "running", "paused"),
        ("pause", "paused", None),
        ("unpause", "paused", "running"),
        ("suspend", "paused", "suspended"),
        ("resume", "suspended", "running"),
        ("resume", "running", None),
    ],
)
def test_plan_lifecycle(operation, state, expected):
    assert core.plan_lifecycle(operation, state) == expected


@pytest.mark.parametrize(
    "operation, state",
    [("reboot", "shutoff"), ("reboot", "paused"), ("pause", "shutoff"), ("unpause", "shutoff"), ("suspend", "shutoff"), ("resume", "shutoff")],
)
def test_plan_lifecycle_refuses(operation, state):
    with pytest.raises(Conflict):
        core.plan_lifecycle(operation, state)


def test_lifecycle_table_covers_every_state():
    states = {"running", "paused", "shutoff", "suspended", "crashed"}
    for operation, row in core.LIFECYCLE.items():
        assert set(row) <= states, operation
        assert set(row.values()) <= states, operation
    assert set(core.LIFECYCLE["hard_reboot"]) == states  # Nova's "get it running from anything"


# --- config drive -----------------------------------------------------------------

SEED = bytes(range(256)) * 2


def meta_data() -> dict:
    return core.build_meta_data(
        uuid=UUID,
        name="web 1",
        hostname="web-1",
        project_id="p1",
        availability_zone="nova",
        random_seed=SEED,
        meta={"role": "web"},
        keys=[{"name": "mykey", "type": "ssh", "data": "ssh-ed25519 AAAAC3 me@host"}],
        admin_pass="s3cret",
    )


NETWORK_DATA = {
    "links": [{"id": "tap1", "vif_id": "port-1", "type": "ovs", "mtu": 1450, "ethernet_mac_address": "fa:16:3e:00:00:01"}],
    "networks": [
        {
            "id": "network0",
            "link": "tap1",
            "type": "ipv4",
            "ip_address": "10.0.0.5",
            "netmask": "255.255.255.0",
            "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}],
            "network_id": "net-1",
            "services": [{"type": "dns", "address": "10.0.0.2"}],
        }
    ],
    "services": [{"type": "dns", "address": "10.0.0.2"}],
}


def test_meta_data_keys():
    data = meta_data()
    assert data["uuid"] == UUID
    assert data["name"] == "web 1" and data["hostname"] == "web-1"
    assert data["launch_index"] == 0 and data["availability_zone"] == "nova" and data["project_id"] == "p1"
    assert data["public_keys"] == {"mykey": "ssh-ed25519 AAAAC3 me@host"}
    assert data["keys"] == [{"name": "mykey", "type": "ssh", "data": "ssh-ed25519 AAAAC3 me@host"}]
    assert data["meta"] == {"role": "web"}
    assert base64.b64decode(data["random_seed"]) == SEED
    assert data["devices"] == [] and data["dedicated_cpus"] == []
    assert not [key for key in data if "-" in key]  # Nova's rule: no dashes in top-level keys
    json.dumps(data)


def test_config_drive_layout():
    files = core.config_drive_files(meta_data(), b"#cloud-config\n", NETWORK_DATA, {"vendor": 1})
    for version in ("latest", *core.OPENSTACK_VERSIONS):
        assert f"openstack/{version}/meta_data.json" in files
        assert files[f"openstack/{version}/user_data"] == b"#cloud-config\n"
    assert "openstack/2012-08-10/vendor_data.json" not in files
    assert "openstack/2013-04-04/vendor_data.json" not in files
    assert json.loads(files["openstack/2013-10-17/vendor_data.json"]) == {"vendor": 1}
    assert "openstack/2013-10-17/network_data.json" not in files
    assert json.loads(files["openstack/2015-10-15/network_data.json"]) == NETWORK_DATA
    assert json.loads(files["openstack/latest/network_data.json"]) == NETWORK_DATA
    assert "openstack/2016-06-30/vendor_data2.json" not in files
    assert json.loads(files["openstack/2016-10-06/vendor_data2.json"]) == {}
    assert json.loads(files["openstack/latest/vendor_data2.json"]) == {}
    for required in ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27", "2020-10-14"):
        assert required in core.OPENSTACK_VERSIONS
    assert not any(path.startswith("ec2/") for path in files)


def test_meta_data_per_version():
    files = core.config_drive_files(meta_data(), None, NETWORK_DATA, None)
    folsom = json.loads(files["openstack/2012-08-10/meta_data.json"])
    grizzly = json.loads(files["openstack/2013-04-04/meta_data.json"])
    liberty = json.loads(files["openstack/2015-10-15/meta_data.json"])
    newton = json.loads(files["openstack/2016-06-30/meta_data.json"])
    latest = json.loads(files["openstack/latest/meta_data.json"])
    assert "random_seed" not in folsom and "random_seed" in grizzly
    assert "project_id" not in grizzly and liberty["project_id"] == "p1"
    assert "devices" not in liberty and newton["devices"] == []
    assert "dedicated_cpus" not in newton and "dedicated_cpus" in latest
    assert folsom["uuid"] == latest["uuid"] == UUID
    assert latest == meta_data()
    assert json.loads(files["openstack/latest/vendor_data.json"]) == {}


def test_no_user_data_no_file():
    files = core.config_drive_files(meta_data(), None, {}, None)
    assert not any(path.endswith("user_data") for path in files)


def test_ec2_tree():
    data = meta_data()
    ec2 = core.build_ec2_meta_data(data, instance_id="i-00000001", instance_type="m1.tiny", local_ipv4="10.0.0.5")
    files = core.config_drive_files(data, b"hi", NETWORK_DATA, None, ec2_meta_data=ec2)
    latest = json.loads(files["ec2/latest/meta-data.json"])
    assert latest == json.loads(files["ec2/2009-04-04/meta-data.json"])
    assert latest["instance-id"] == "i-00000001" and latest["local-ipv4"] == "10.0.0.5"
    assert latest["hostname"] == "web-1" and latest["placement"] == {"availability-zone": "nova"}
    assert latest["public-keys"] == {"0": {"openssh-key": "ssh-ed25519 AAAAC3 me@host"}}
    assert files["ec2/latest/user-data"] == b"hi"

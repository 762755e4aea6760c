"""Issue #4's acceptance with real guests and real packets: tenant networks, routers, floating
IPs, security groups, anti-spoofing and the metadata service, driven by the real `openstack` CLI.

The guests are our test guest (firmware/): it reads its metadata from 169.254.169.254 when it has
no config drive, runs its user data as a script and prints what the script prints on the console
as ``user-data: ...``.  Every check a guest makes is printed as a ``CHECK <what> <result>`` line.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cloud import Cloud, wait_for
from tests.compute_helpers import LATEST, new_project_user, wait_gone, wait_server
from tests.test_compute_libvirt import console, external_gateway, real_node, stop_and_clean
from tests.test_openstack_cli import openstack

pytestmark = pytest.mark.slow

SERVE = """#!/bin/sh
mkdir -p /www && echo "hello-from-$(hostname)" > /www/index.html && httpd -p 8080 -h /www && echo "CHECK serving"
"""

# (Debian's busybox wget crashes on -T: timeouts come from `timeout`.)
# Ping sizes tell the phases apart at the external host (IPv4 length = payload + 28).
PROBE = """#!/bin/sh
A={peer}; EXT={ext}
try() {{ n=$1; shift; i=0; while [ $i -lt $n ]; do "$@" >/dev/null 2>&1 && return 0; i=$((i+1)); sleep 1; done; return 1; }}
if try 60 timeout 5 wget -q -O /tmp/a http://$A:8080/; then echo "CHECK peer-http $(cat /tmp/a)"; else echo "CHECK peer-http failed"; fi
if try 30 ping -c 1 -W 2 $EXT; then echo "CHECK external-ping ok"; else echo "CHECK external-ping failed"; fi
if try 5 ping -c 1 -W 1 {mgmt}; then echo "CHECK management-ping answered"; else echo "CHECK management-ping dropped"; fi
ip addr add {spoofed}/24 dev eth0
i=0; while [ $i -lt 10 ]; do ping -c 1 -W 1 -s 111 -I {spoofed} $EXT >/dev/null 2>&1; ping -c 1 -W 1 -s 222 $EXT >/dev/null 2>&1; i=$((i+1)); done
ip addr del {spoofed}/24 dev eth0
MAC=$(cat /sys/class/net/eth0/address)
ip link set eth0 address 02:00:00:00:00:99
i=0; while [ $i -lt 5 ]; do ping -c 1 -W 1 -s 333 $EXT >/dev/null 2>&1; i=$((i+1)); done
ip link set eth0 address $MAC
if try 30 ping -c 1 -W 2 -s 444 $EXT; then echo "CHECK after-spoof ok"; else echo "CHECK after-spoof failed"; fi
echo "CHECK done"
"""

ISOLATION = """#!/bin/sh
# Ping an address for a while; print whether it ever answered.
i=0; got=no
while [ $i -lt {tries} ]; do if ping -c 1 -W 1 {target} >/dev/null 2>&1; then got=yes; break; fi; i=$((i+1)); sleep 1; done
echo "CHECK ping-{target} $got"
"""


def checks(log: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"user-data: CHECK (\S+) ?(.*)", log)}


def wait_booted(cloud: Cloud, server: str, timeout: float = 400) -> str:
    """The console once the guest ran its user data (or booted without any)."""
    wait_for(lambda: "CLOUDBOX-GUEST: ready" in console(cloud, server), timeout, f"{server} to boot")
    return console(cloud, server)


def tcp_banner(address: str, port: int, timeout: float = 3) -> bytes | None:
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            if port != 22:  # dropbear speaks first; httpd answers a request
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = sock.recv(2000)
            while port != 22 and len(data) < 2000:
                more = sock.recv(2000)
                if not more:
                    break
                data += more
            return data
    except OSError:
        return None


def management_address() -> str:
    """The host's own address on the LAN its default route leaves by (a lookup: nothing is sent)."""
    out = subprocess.run(["ip", "-4", "route", "get", "192.0.2.200"], capture_output=True, text=True, check=True).stdout
    return out.split(" src ")[1].split()[0]


def host_links(node: Cloud) -> list[str]:
    """The host's links that this node made (cloudbox marks them with an ifalias naming the node)."""
    node_id = json.loads((node.data_dir / "node.json").read_text())["id"]
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if f"cloudbox:{node_id}:" in line)


def namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def processes_mentioning(text: str) -> int:
    count = 0
    for pid in Path("/proc").iterdir():
        if pid.name.isdigit():
            try:
                if text.encode() in (pid / "cmdline").read_bytes():
                    count += 1
            except OSError:
                pass
    return count


@pytest.fixture(scope="module")
def node(tmp_path_factory, guest_image):
    node = real_node(tmp_path_factory.mktemp("net") / "data")
    node.start(timeout=120)
    openstack(node, "image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--public",
              "--file", str(guest_image), "cirros")
    yield node
    admin = node.client(node.token())
    servers = admin.get("/compute/v2.1/servers?all_tenants=1").json().get("servers", [])
    for s in servers:
        admin.delete(f"/compute/v2.1/servers/{s['id']}")
    for s in servers:
        wait_gone(admin, s["id"], timeout=120)
    stop_and_clean(node)


@pytest.fixture()
def counters(node: Cloud):
    """A table of ours counting echo requests that reach the host from the external bridge, by size."""
    settings = json.loads((node.data_dir / "cloudbox.json").read_text())
    table = f"cbtest_{node.port}"
    sizes = {"spoofed-ip": 139, "genuine": 250, "spoofed-mac": 361, "after": 472}
    rules = "".join(f'    iifname "{settings["external_bridge"]}" icmp type echo-request ip length {n} counter\n'
                    for n in sizes.values())
    ruleset = f"table ip {table} {{\n  chain input {{\n    type filter hook input priority -10; policy accept;\n{rules}  }}\n}}\n"
    subprocess.run(["nft", "-f", "-"], input=ruleset, text=True, check=True)

    def read() -> dict[str, int]:
        listed = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True, check=True).stdout
        found = {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"ip length (\d+) counter packets (\d+)", listed)}
        return {name: found.get(n, 0) for name, n in sizes.items()}

    yield read
    subprocess.run(["nft", "delete", "table", "ip", table], check=False)


def test_the_networking_tutorial_with_real_guests(node: Cloud, counters, tmp_path: Path):
    admin = node.client(node.token())
    _project, user, _token = new_project_user(node, admin)
    project_name = admin.get(f"/identity/v3/projects/{_project}").json()["project"]["name"]
    env = node.openstack_env(OS_USERNAME=user, OS_PASSWORD="pw", OS_PROJECT_NAME=project_name)

    def cli(*args: str) -> Any:
        """Run the CLI as the project's user; its JSON output, or None for commands that print nothing."""
        if args[-1] == "--no-json":
            openstack(node, *args[:-1], env=env)
            return None
        return json.loads(openstack(node, *args, "-f", "json", env=env).stdout)

    net = cli("network", "create", "net1")
    subnet = cli("subnet", "create", "--network", "net1", "--subnet-range", "192.168.0.0/24", "sub1")
    assert subnet["gateway_ip"] == "192.168.0.1"
    cli("router", "create", "r1")
    cli("router", "set", "--external-gateway", "public", "r1", "--no-json")
    cli("router", "add", "subnet", "r1", "sub1", "--no-json")
    cli("port", "create", "--network", "net1", "--fixed-ip", "subnet=sub1,ip-address=192.168.0.11", "pb")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True)
    cli("keypair", "create", "--public-key", str(tmp_path / "key.pub"), "demo")
    (tmp_path / "serve.sh").write_text(SERVE)
    ext = external_gateway(node)
    (tmp_path / "probe.sh").write_text(PROBE.format(peer="192.168.0.10", ext=ext, spoofed="192.168.0.99",
                                                    mgmt=management_address()))

    a = cli("server", "create", "--flavor", "m1.nano", "--image", "cirros", "--key-name", "demo",
            "--nic", f"net-id={net['id']},v4-fixed-ip=192.168.0.10", "--user-data", str(tmp_path / "serve.sh"), "srv-a")
    b = cli("server", "create", "--flavor", "m1.nano", "--image", "cirros", "--nic", "port-id=pb",
            "--user-data", str(tmp_path / "probe.sh"), "srv-b")
    for server in (a, b):
        wait_server(admin, server["id"], {"ACTIVE"}, timeout=180)

    # Metadata from 169.254.169.254 (no config drive): hostname, key, user data.
    log_a = wait_booted(node, a["id"])
    assert "CLOUDBOX-GUEST: network eth0 192.168.0.10/24" in log_a
    assert "CLOUDBOX-GUEST: metadata source=http" in log_a
    assert "CLOUDBOX-GUEST: hostname srv-a" in log_a
    assert "CLOUDBOX-GUEST: ssh-key installed 1" in log_a
    assert checks(log_a).get("serving") == ""
    log_b = wait_booted(node, b["id"])
    assert "CLOUDBOX-GUEST: network eth0 192.168.0.11/24" in log_b
    result = checks(log_b)
    assert result.get("done") == "", log_b[-3000:]
    # Two guests on one network reach each other; a guest reaches the external network via its router.
    assert result["peer-http"] == "hello-from-srv-a"
    assert result["external-ping"] == "ok"
    # ...but not the host's own address on its LAN (management_cidrs: auto).
    assert result["management-ping"] == "dropped"
    # A guest that spoofs its address (or MAC) is dropped; its genuine packets pass.
    seen = counters()
    assert seen["genuine"] >= 5 and seen["after"] >= 1, seen
    assert seen["spoofed-ip"] == 0 and seen["spoofed-mac"] == 0, seen
    assert result["after-spoof"] == "ok"

    # The host reaches a guest through its floating IP, where a security group rule lets it.
    fip = cli("floating", "ip", "create", "public")["floating_ip_address"]
    cli("server", "add", "floating", "ip", "srv-a", fip, "--no-json")
    addresses = cli("server", "show", "srv-a")["addresses"]
    assert fip in json.dumps(addresses)
    cli("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "default")
    wait_for(lambda: (tcp_banner(fip, 22) or b"").startswith(b"SSH-2.0-dropbear"), 60, "ssh through the floating IP")
    # srv-a serves 8080 (srv-b fetched it): no rule allows it from outside the group, so it is dropped...
    assert tcp_banner(fip, 8080) is None
    # ...until a rule opens it.
    cli("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "8080", "default")
    wait_for(lambda: b"hello-from-srv-a" in (tcp_banner(fip, 8080) or b""), 60, "port 8080 after the rule")

    # Restart cloudbox while traffic flows: not one bridge, namespace or dnsmasq more, no traffic lost.
    cli("security", "group", "rule", "create", "--protocol", "icmp", "default")
    wait_for(lambda: subprocess.run(["ping", "-c", "1", "-W", "1", fip], capture_output=True).returncode == 0,
             60, "ping through the floating IP")
    router = cli("router", "show", "r1")
    before = (host_links(node), namespaces(), processes_mentioning(net["id"]))
    pinger = subprocess.Popen(["ping", "-i", "0.1", "-w", "30", "-W", "1", fip], stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    node.stop()
    time.sleep(2)
    node.start(timeout=120)
    out, _ = pinger.communicate(timeout=60)
    sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", out).groups())
    assert sent > 200 and received >= sent * 0.98, out[-500:]
    after = (host_links(node), namespaces(), processes_mentioning(net["id"]))
    assert before[0] == after[0] and any(link.startswith("brq") for link in after[0])
    mine = {f"qdhcp-{net['id']}", f"qrouter-{router['id']}"}
    assert mine <= set(before[1].split()) and mine <= set(after[1].split()) and before[2] == after[2] == 1

    # Deleting everything leaves nothing of it on the host.
    cli("server", "delete", "--wait", "srv-a", "srv-b", "--no-json")
    cli("floating", "ip", "delete", fip, "--no-json")
    cli("router", "remove", "subnet", "r1", "sub1", "--no-json")
    cli("router", "delete", "r1", "--no-json")
    cli("port", "delete", "pb", "--no-json")
    cli("subnet", "delete", "sub1", "--no-json")
    cli("network", "delete", "net1", "--no-json")

    def nothing_left() -> bool:
        ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
        return (not any(net["id"][:11] in link for link in host_links(node)) and router["id"] not in namespaces()
                and net["id"] not in namespaces() and processes_mentioning(net["id"]) == 0
                and router["id"][:11] not in ruleset and fip not in ruleset)

    wait_for(nothing_left, 60, "the host to drop the deleted network, router and floating IP")
    assert not [link for link in host_links(node) if link.startswith("tap")]


def test_two_projects_with_the_same_range(node: Cloud):
    """Both use 192.168.0.0/24 at once; neither reaches the other; metadata goes to the right guest."""
    admin = node.client(node.token())
    image = admin.get("/image/v2/images?name=cirros").json()["images"][0]["id"]
    made = []
    for label in ("one", "two"):
        _project, _user, token = new_project_user(node, admin)
        client = node.client(token)
        net = client.post("/network/v2.0/networks", json={"network": {"name": f"net-{label}"}}).json()["network"]
        r = client.post("/network/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "ip_version": 4, "cidr": "192.168.0.0/24", "name": f"sub-{label}"}})
        assert r.status_code == 201, r.text
        made.append((label, client, net))
    (_, one, net_one), (_, two, net_two) = made

    def boot(client: Any, net: dict, name: str, ip: str, user_data: str) -> str:
        import base64

        body = {"server": {"name": name, "imageRef": image, "flavorRef": "42",
                           "networks": [{"uuid": net["id"], "fixed_ip": ip}],
                           "user_data": base64.b64encode(user_data.encode()).decode()}}
        r = client.post("/compute/v2.1/servers", json=body, headers=LATEST)
        assert r.status_code == 202, r.text
        return r.json()["server"]["id"]

    suffix = uuid.uuid4().hex[:6]
    # Project one's guest tries .20 for a minute: .20 lives only in project two's network.
    x = boot(one, net_one, f"x-{suffix}", "192.168.0.10", ISOLATION.format(target="192.168.0.20", tries=60))
    y = boot(two, net_two, f"y-{suffix}", "192.168.0.10", ISOLATION.format(target="192.168.0.20", tries=90))
    z = boot(two, net_two, f"z-{suffix}", "192.168.0.20", SERVE)
    for sid, client in ((x, one), (y, two), (z, two)):
        wait_server(client, sid, {"ACTIVE"}, timeout=180)
    log_x, log_y = wait_booted(node, x), wait_booted(node, y)
    # Same address, different networks: each guest got its own metadata.
    assert f"CLOUDBOX-GUEST: hostname x-{suffix}" in log_x and f"CLOUDBOX-GUEST: hostname y-{suffix}" in log_y
    assert checks(log_y)["ping-192.168.0.20"] == "yes"  # .20 is up and reachable in its own network
    assert checks(log_x)["ping-192.168.0.20"] == "no"  # ...and not from the other project's
    # Neither project sees the other's network.
    assert two.get(f"/network/v2.0/networks/{net_one['id']}").status_code == 404
    assert one.get(f"/network/v2.0/ports?network_id={net_two['id']}").json()["ports"] == []
    for sid, client in ((x, one), (y, two), (z, two)):
        client.delete(f"/compute/v2.1/servers/{sid}")
    for sid, client in ((x, one), (y, two), (z, two)):
        wait_gone(client, sid, timeout=120)

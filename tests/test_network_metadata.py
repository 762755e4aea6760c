"""The metadata service: Nova's paths over the config drive's files, and real
listeners inside network namespaces answering a "guest" namespace (root)."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from cloudbox.compute.core import (
    EC2_VERSIONS,
    OPENSTACK_VERSIONS,
    build_ec2_meta_data,
    build_meta_data,
    config_drive_files,
)
from cloudbox.network.metadata import respond
from cloudbox.network.metadata_server import MetadataListeners, request_path
from cloudbox.network.netns import in_fresh_thread, setns
from tests.cloud import wait_for_async

ROOT = Path(__file__).resolve().parents[1]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHQ4b2VjY2xvdWRib3h0ZXN0a2V5 demo@cloudbox"
USER_DATA = b"#!/bin/sh\necho hello from user data\n"


def drive(user_data: bytes | None = USER_DATA, *, keys: bool = True) -> dict[str, bytes]:
    meta = build_meta_data(
        uuid="6a4f3b9e-1111-4c2d-9e0f-0123456789ab",
        name="demo",
        hostname="demo-instance1",
        project_id="p-0001",
        availability_zone="nova",
        random_seed=b"\x01" * 32,
        meta={"role": "web"},
        keys=[{"name": "mykey", "type": "ssh", "data": KEY}] if keys else None,
    )
    ec2 = build_ec2_meta_data(meta, instance_id="i-00000001", instance_type="m1.tiny",
                              local_ipv4="10.0.0.5", security_groups=["default", "web"])
    network = {"links": [], "networks": [], "services": []}
    return config_drive_files(meta, user_data, network, {"vendor": True}, ec2_meta_data=ec2)


def text(files: dict[str, bytes], path: str) -> str:
    status, content_type, body = respond(files, path)
    assert status == 200, (path, status)
    assert content_type == "text/plain", (path, content_type)
    return body.decode()


def status_of(files: dict[str, bytes], path: str) -> int:
    return respond(files, path)[0]


# --- pure: the layout ------------------------------------------------------------------


def test_root_lists_the_ec2_versions_then_latest():
    assert text(drive(), "/").splitlines() == [*EC2_VERSIONS, "latest"]
    assert text(drive(), "/ec2") == text(drive(), "/")  # Nova takes /ec2/... as /...


def test_openstack_lists_its_versions_with_or_without_slash():
    files = drive()
    assert text(files, "/openstack").splitlines() == [*OPENSTACK_VERSIONS, "latest"]
    assert text(files, "/openstack/") == text(files, "/openstack")
    assert not text(files, "/openstack").endswith("\n")  # Nova's listings have no final newline


def test_each_openstack_version_lists_the_files_it_has():
    files = drive()
    folsom, grizzly, havana, liberty = OPENSTACK_VERSIONS[:4]
    assert text(files, f"/openstack/{folsom}").splitlines() == ["meta_data.json", "user_data"]
    assert text(files, f"/openstack/{havana}/").splitlines() == ["meta_data.json", "user_data", "vendor_data.json"]
    assert text(files, f"/openstack/{liberty}").splitlines() == [
        "meta_data.json", "user_data", "vendor_data.json", "network_data.json"]
    assert text(files, "/openstack/latest").splitlines() == [
        "meta_data.json", "user_data", "vendor_data.json", "network_data.json", "vendor_data2.json"]
    # no user data: not listed, and 404
    bare = drive(user_data=None)
    assert "user_data" not in text(bare, "/openstack/latest").splitlines()
    assert status_of(bare, "/openstack/latest/user_data") == 404


def test_openstack_files_are_the_drives_bytes():
    files = drive()
    for version in (*OPENSTACK_VERSIONS, "latest"):
        status, content_type, body = respond(files, f"/openstack/{version}/meta_data.json")
        assert (status, content_type) == (200, "application/json")
        assert body == files[f"openstack/{version}/meta_data.json"]
    assert json.loads(respond(files, "/openstack/latest/meta_data.json")[2])["public_keys"] == {"mykey": KEY}
    assert respond(files, "/openstack/latest/user_data") == (200, "text/plain", USER_DATA)  # Nova: text/plain
    assert respond(files, "/openstack/latest/vendor_data.json")[1:] == ("application/json", b'{"vendor": true}')
    assert respond(files, "/openstack/latest/network_data.json")[1] == "application/json"
    assert respond(files, "/openstack/latest/vendor_data2.json")[0] == 200
    # what a version did not have yet, an unknown version, a made-up file, a deeper path
    assert status_of(files, f"/openstack/{OPENSTACK_VERSIONS[0]}/vendor_data.json") == 404
    assert status_of(files, "/openstack/2001-01-01/meta_data.json") == 404
    assert status_of(files, "/openstack/2001-01-01") == 404
    assert status_of(files, "/openstack/latest/password2") == 404
    assert status_of(files, "/openstack/latest/meta_data.json/uuid") == 404
    assert status_of(files, "/openstack/content") == 404


def test_ec2_tree_walks_the_ec2_json():
    files = drive()
    for version in (*EC2_VERSIONS, "latest"):
        assert text(files, f"/{version}").splitlines() == ["meta-data/", "user-data"]
        assert text(files, f"/{version}/") == text(files, f"/{version}")
    listing = text(files, "/2009-04-04/meta-data/").splitlines()
    assert listing == sorted(listing)
    for key in ("ami-id", "instance-id", "local-ipv4", "security-groups", "instance-type", "hostname"):
        assert key in listing
    for sub in ("placement/", "block-device-mapping/", "public-keys/"):
        assert sub in listing
    assert text(files, "/latest/meta-data/instance-id") == "i-00000001"
    assert text(files, "/latest/meta-data/ami-launch-index") == "0"
    assert text(files, "/latest/meta-data/placement/") == "availability-zone"
    assert text(files, "/latest/meta-data/placement/availability-zone") == "nova"
    assert text(files, "/latest/meta-data/security-groups") == "default\nweb"
    assert text(files, "/latest/meta-data/block-device-mapping/").splitlines() == ["ami", "root"]
    # EC2's quirk: "<index>=<key name>", no trailing slash, then a normal dict below
    assert text(files, "/latest/meta-data/public-keys/") == "0=mykey"
    assert text(files, "/latest/meta-data/public-keys/0/") == "openssh-key"
    assert text(files, "/latest/meta-data/public-keys/0/openssh-key") == KEY
    assert text(files, "/ec2/latest/meta-data/hostname") == "demo-instance1"
    assert respond(files, "/2009-04-04/user-data") == (200, "text/plain", USER_DATA)
    assert status_of(files, "/latest/meta-data/nothing-here") == 404
    assert status_of(files, "/latest/meta-data/instance-id/deeper") == 404
    assert status_of(files, "/1.0/meta-data/") == 404  # not on the drive: unknown here
    assert status_of(files, "/latest/other") == 404
    bare = drive(user_data=None, keys=False)
    assert text(bare, "/latest").splitlines() == ["meta-data/"]
    assert status_of(bare, "/latest/user-data") == 404
    assert "public-keys/" not in text(bare, "/latest/meta-data/").splitlines()


def test_paths_are_normalised_like_novas():
    files = drive()
    body = files["openstack/latest/meta_data.json"]
    for path in ("//openstack//latest/./meta_data.json", "/openstack/latest/../latest/meta_data.json",
                 "/openstack/latest/meta_data.json/", "/openstack/latest/meta_data.json?x=1",
                 "openstack/latest/meta_data.json", "/../../openstack/latest/meta_data.json"):
        assert respond(files, path)[2] == body, path
    assert respond(files, "") == respond(files, "/")


def test_cloud_init_readers_get_the_whole_tree():
    """Walk the tree the way cloud-init's OpenStack and EC2 readers do."""
    files = drive()

    def fetch(path: str) -> bytes:
        status, _, body = respond(files, path)
        if status != 200:
            raise LookupError(path)
        return body

    # OpenStack: newest version it knows that /openstack lists, then its files
    known = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
             "2017-02-22", "2018-08-27")
    available = fetch("/openstack").decode().splitlines()
    version = next(v for v in reversed(known) if v in available)
    meta = json.loads(fetch(f"/openstack/{version}/meta_data.json"))
    assert meta["uuid"] and meta["hostname"] == "demo-instance1"
    assert fetch(f"/openstack/{version}/user_data") == USER_DATA
    for name in ("vendor_data.json", "vendor_data2.json", "network_data.json"):
        json.loads(fetch(f"/openstack/{version}/{name}"))

    # EC2: children end in "/", "i=name" leaves mean "i/openssh-key", other leaves are values
    def materialise(url: str) -> dict[str, Any]:
        tree: dict[str, Any] = {}
        for line in fetch(url).decode().splitlines():
            if line.endswith("/"):
                tree[line[:-1]] = materialise(url + line)
            elif "=" in line:
                index, name = line.split("=", 1)
                tree[name] = fetch(f"{url}{index}/openssh-key").decode()
            else:
                value = fetch(url + line).decode()
                tree[line] = value.splitlines() if "\n" in value else value
        return tree

    ec2 = materialise("/latest/meta-data/")
    assert ec2["instance-id"] == "i-00000001"
    assert ec2["placement"] == {"availability-zone": "nova"}
    assert ec2["public-keys"] == {"mykey": KEY}
    assert ec2["security-groups"] == ["default", "web"]


def test_firmware_guest_is_served():
    """firmware/guest/init fetches these; each must answer as the guest expects."""
    init = (ROOT / "firmware" / "guest" / "init").read_text()
    base = re.search(r"^META_URL=http://169\.254\.169\.254(/\S+)$", init, re.M)
    assert base, "the guest's metadata URL moved"
    fetched = set(re.findall(r'"\$META_URL/([\w.]+)"', init))
    assert fetched == {"meta_data.json", "user_data"}
    files = drive()
    meta = json.loads(respond(files, f"{base.group(1)}/meta_data.json")[2])
    assert meta["uuid"] and meta["hostname"] and meta["public_keys"]
    assert respond(files, f"{base.group(1)}/user_data")[2] == USER_DATA
    # the guest takes a 404 on user_data as "none"
    assert respond(drive(user_data=None), f"{base.group(1)}/user_data")[0] == 404


def test_request_targets():
    assert request_path(b"/openstack/latest/meta_data.json?x=1") == "/openstack/latest/meta_data.json"
    assert request_path(b"http://169.254.169.254/latest/meta-data/") == "/latest/meta-data/"
    assert request_path(b"/a%20b") == "/a b"
    assert request_path(b"*") is None
    assert request_path(b"/%ff") is None


# --- real: listeners inside namespaces ---------------------------------------------------


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


class Lab:
    """qdhcp-test… (the DHCP side) and a guest namespace joined by a veth pair."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 10000}{secrets.token_hex(2)}"
        self.dhcp = f"qdhcp-test{tag}"
        self.guest = f"cbguest{tag}"
        self.network_id = f"net-{tag}"
        self.dhcp_ip, self.guest_ip = "10.213.7.2", "10.213.7.5"
        self.made: list[str] = []

    def build(self) -> None:
        tag = self.guest[len("cbguest"):]
        for namespace in (self.dhcp, self.guest):
            ip("netns", "add", namespace)
            self.made.append(namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", self.dhcp, "link", "add", f"md{tag}a", "type", "veth", "peer", "name", f"md{tag}b",
           "netns", self.guest)
        ip("-n", self.dhcp, "addr", "add", f"{self.dhcp_ip}/24", "dev", f"md{tag}a")
        ip("-n", self.dhcp, "link", "set", f"md{tag}a", "up")
        ip("-n", self.guest, "addr", "add", f"{self.guest_ip}/24", "dev", f"md{tag}b")
        ip("-n", self.guest, "link", "set", f"md{tag}b", "up")
        # what dnsmasq's option 121 does for a real guest
        ip("-n", self.guest, "route", "add", "169.254.169.254/32", "via", self.dhcp_ip)
        self.veth = f"md{tag}a"

    def add_metadata_address(self) -> None:
        ip("-n", self.dhcp, "addr", "add", "169.254.169.254/32", "dev", self.veth)

    def remove(self) -> None:
        for namespace in self.made:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


@pytest.fixture
def lab():
    lab = Lab()
    try:
        lab.build()
        yield lab
    finally:
        lab.remove()
    assert not {lab.dhcp, lab.guest} & namespaces()


class Recorder:
    """The caller's answer: this guest's files, 404 for any other address."""

    def __init__(self, network_id: str, guest_ip: str) -> None:
        self.network_id, self.guest_ip = network_id, guest_ip
        self.calls: list[tuple[str, str, str]] = []
        self.files = drive()

    async def __call__(self, network_id: str, source_ip: str, path: str) -> tuple[int, str, bytes]:
        self.calls.append((network_id, source_ip, path))
        if (network_id, source_ip) != (self.network_id, self.guest_ip):
            return 404, "text/plain", b"404 Not Found"
        return respond(self.files, path)


async def guest_fetch(lab: Lab, url: str) -> tuple[int, bytes]:
    """HTTP GET from inside the guest namespace, with a real client (urllib)."""
    script = (
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen(sys.argv[1], timeout=5)\n"
        "    code, body = r.status, r.read()\n"
        "except urllib.error.HTTPError as e:\n"
        "    code, body = e.code, e.read()\n"
        "sys.stdout.write(str(code) + '\\n'); sys.stdout.flush(); sys.stdout.buffer.write(body)\n"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "no_proxy": "*"}
    with trio.fail_after(20):
        proc = await trio.run_process(["ip", "netns", "exec", lab.guest, sys.executable, "-c", script, url],
                                      capture_stdout=True, capture_stderr=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    head, _, body = proc.stdout.partition(b"\n")
    return int(head), body


def guest_socket(namespace: str) -> trio.socket.SocketType:
    """A TCP socket living in ``namespace`` (created there, used from here)."""

    def make() -> socket.socket:
        fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
        try:
            setns(fd)
        finally:
            os.close(fd)
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    return trio.socket.from_stdlib_socket(in_fresh_thread(make))


async def raw_exchange(lab: Lab, request: bytes, *, read_only_after: float = 0) -> bytes:
    sock = guest_socket(lab.guest)
    with trio.fail_after(10):
        await sock.connect(("169.254.169.254", 80))
        stream = trio.SocketStream(sock)
        async with stream:
            await stream.send_all(request)
            if read_only_after:
                await trio.sleep(read_only_after)
            answer = b""
            while chunk := await stream.receive_some(65536):
                answer += chunk
    return answer


async def test_listener_in_a_namespace_answers_the_guest(lab: Lab):
    recorder = Recorder(lab.network_id, lab.guest_ip)
    listeners = MetadataListeners(recorder, connection_timeout=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(listeners.run)
        await listeners.sync({lab.dhcp: lab.network_id})
        # the address is not there yet: the listener waits for it
        await trio.sleep(0.2)
        assert listeners.listeners()[lab.dhcp].state == "binding"
        lab.add_metadata_address()
        with trio.fail_after(10):
            await listeners.wait_listening(lab.dhcp)
        status = listeners.listeners()[lab.dhcp]
        assert (status.network_id, status.state) == (lab.network_id, "listening")
        # binding left no trio worker thread inside the namespace
        host = os.readlink("/proc/thread-self/ns/net")
        assert await trio.to_thread.run_sync(os.readlink, "/proc/thread-self/ns/net") == host

        code, body = await guest_fetch(lab, "http://169.254.169.254/openstack/latest/meta_data.json")
        assert code == 200
        assert json.loads(body)["uuid"] == "6a4f3b9e-1111-4c2d-9e0f-0123456789ab"
        assert recorder.calls[-1] == (lab.network_id, lab.guest_ip, "/openstack/latest/meta_data.json")
        code, body = await guest_fetch(lab, "http://169.254.169.254/openstack/latest/user_data")
        assert (code, body) == (200, USER_DATA)
        code, body = await guest_fetch(lab, "http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key")
        assert (code, body.decode()) == (200, KEY)
        code, _ = await guest_fetch(lab, "http://169.254.169.254/openstack/2001-01-01/meta_data.json")
        assert code == 404

        # HEAD: the headers of GET, no body
        answer = await raw_exchange(lab, b"HEAD /openstack/latest/user_data HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert f"content-length: {len(USER_DATA)}".encode() in answer.lower()
        assert answer.endswith(b"\r\n\r\n")
        # only GET and HEAD
        answer = await raw_exchange(lab, b"POST /openstack/latest/password HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Length: 3\r\n\r\nabc")
        assert answer.startswith(b"HTTP/1.1 405 ") and b"allow: get, head" in answer.lower()
        # bad input gets a 4xx and the listener goes on
        answer = await raw_exchange(lab, b"GARBAGE\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")
        answer = await raw_exchange(lab, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 431 ")
        answer = await raw_exchange(lab, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                                         + b"a" * 70000)
        assert answer.startswith(b"HTTP/1.1 413 ")
        # a client that never finishes its request is cut off at the deadline
        with trio.fail_after(5):
            answer = await raw_exchange(lab, b"GET /openstack HTTP/1.1\r\nHost")
        assert answer == b""
        code, _ = await guest_fetch(lab, "http://169.254.169.254/")
        assert code == 200

        # idempotent: the same wish changes nothing
        await listeners.sync({lab.dhcp: lab.network_id})
        assert listeners.listeners()[lab.dhcp].state == "listening"

        # no longer wanted: closed when sync returns
        await listeners.sync({})
        assert listeners.listeners() == {}
        sock = guest_socket(lab.guest)
        with sock, pytest.raises(OSError), trio.fail_after(5):
            await sock.connect(("169.254.169.254", 80))
        nursery.cancel_scope.cancel()


async def test_another_address_gets_404(lab: Lab):
    """An address that is no port of the network gets nothing (the caller's answer decides)."""
    recorder = Recorder(lab.network_id, "10.213.7.99")  # the guest is not this port
    listeners = MetadataListeners(recorder)
    lab.add_metadata_address()
    async with trio.open_nursery() as nursery:
        await nursery.start(listeners.run)
        await listeners.sync({lab.dhcp: lab.network_id})
        with trio.fail_after(10):
            await listeners.wait_listening(lab.dhcp)
        code, body = await guest_fetch(lab, "http://169.254.169.254/openstack/latest/meta_data.json")
        assert code == 404 and b"uuid" not in body
        assert recorder.calls == [(lab.network_id, lab.guest_ip, "/openstack/latest/meta_data.json")]
        nursery.cancel_scope.cancel()


async def test_a_vanished_namespace_drops_its_listener(lab: Lab):
    recorder = Recorder(lab.network_id, lab.guest_ip)
    listeners = MetadataListeners(recorder, namespace_check_interval=0.1)
    lab.add_metadata_address()
    async with trio.open_nursery() as nursery:
        await nursery.start(listeners.run)
        # never there: dropped at once
        await listeners.sync({"qdhcp-missing-ns": "x"})
        await wait_for_async(lambda: not listeners.listeners(), 5, "the missing namespace's listener to go", every=0.02)
        with pytest.raises(ValueError):
            await listeners.sync({"../etc": "x"})

        await listeners.sync({lab.dhcp: lab.network_id})
        with trio.fail_after(10):
            await listeners.wait_listening(lab.dhcp)
        subprocess.run(["ip", "netns", "del", lab.dhcp], check=True)
        await wait_for_async(lambda: not listeners.listeners(), 5, "the vanished namespace's listener to go", every=0.02)
        # the socket is closed, so the kernel lets the namespace and its veth go
        await wait_for_async(lambda: "md" + lab.guest[len("cbguest"):] + "b" not in subprocess.run(
            ["ip", "-n", lab.guest, "-br", "link"], capture_output=True, text=True).stdout, 5,
            "the namespace's veth to go")
        nursery.cancel_scope.cancel()


async def test_the_firmware_guests_own_wget_and_json_reader(lab: Lab, guest_image: Path, caplog):
    """Our test guest's busybox fetches what guest/init fetches, as guest/init does."""
    busybox = ROOT / "firmware" / "build" / "work" / "initramfs" / "bin" / "busybox"
    json_awk = ROOT / "firmware" / "guest" / "json.awk"
    assert busybox.exists(), "build-guest.sh keeps the unpacked initramfs in build/work"
    recorder = Recorder(lab.network_id, lab.guest_ip)
    listeners = MetadataListeners(recorder)
    lab.add_metadata_address()
    caplog.set_level("INFO", logger="cloudbox.network.metadata_server")

    async def wget(url: str) -> subprocess.CompletedProcess[bytes]:
        with trio.fail_after(20):
            return await trio.run_process(
                ["ip", "netns", "exec", lab.guest, str(busybox), "timeout", "10", str(busybox), "wget", "-q",
                 "-O", "-", url], capture_stdout=True, capture_stderr=True, check=False)

    async with trio.open_nursery() as nursery:
        await nursery.start(listeners.run)
        await listeners.sync({lab.dhcp: lab.network_id})
        with trio.fail_after(10):
            await listeners.wait_listening(lab.dhcp)
        meta = await wget("http://169.254.169.254/openstack/latest/meta_data.json")
        assert meta.returncode == 0, meta.stderr
        flat = subprocess.run([str(busybox), "awk", "-f", str(json_awk)], input=meta.stdout,
                              capture_output=True, check=True).stdout.decode()
        assert "uuid\t6a4f3b9e-1111-4c2d-9e0f-0123456789ab" in flat.splitlines()
        assert f"public_keys.mykey\t{KEY}" in flat.splitlines()
        user_data = await wget("http://169.254.169.254/openstack/latest/user_data")
        assert (user_data.returncode, user_data.stdout) == (0, USER_DATA)
        recorder.files = drive(user_data=None)
        missing = await wget("http://169.254.169.254/openstack/latest/user_data")
        assert missing.returncode != 0 and b"404" in missing.stderr  # guest/init: "none"
        nursery.cancel_scope.cancel()

    # one structured line per request, without any body
    lines = [r for r in caplog.records if r.getMessage() == "metadata request"]
    assert [(r.network_id, r.source_ip, r.path, r.status) for r in lines] == [  # type: ignore[attr-defined]
        (lab.network_id, lab.guest_ip, "/openstack/latest/meta_data.json", 200),
        (lab.network_id, lab.guest_ip, "/openstack/latest/user_data", 200),
        (lab.network_id, lab.guest_ip, "/openstack/latest/user_data", 404),
    ]
    assert not any(USER_DATA.decode().strip() in str(r.__dict__) for r in caplog.records)

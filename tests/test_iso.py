"""The installer ISO.

The answer file's rules and its pinned-URL fetch run in seconds, in every run of the suite.  The
ISO itself is built with packaging/build-iso.sh and installed unattended in QEMU (TCG) by
packaging/test-iso.sh, which takes tens of minutes: that test runs only with CLOUDBOX_ISO_TEST=1
(root, and apt for the build tools or a warm cache).
"""

from __future__ import annotations

import hashlib
import os
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "firmware" / "installer"))

from cbinstall import answers as ans  # noqa: E402
from cbinstall import install  # noqa: E402


GOOD = """
disk = "/dev/vda"
hostname = "Node1.lab"
root_password = "long enough"
[network]
interface = "52:54:00:12:34:56"
mode = "static"
address = "192.0.2.10/24"
gateway = "192.0.2.1"
dns = ["192.0.2.53"]
[cloud]
mode = "join"
token = "abcdefgh12345678"
"""


def test_example_answer_file_is_valid():
    a = ans.parse((REPO / "firmware/installer/answer.example.toml").read_text())
    assert (a.disk, a.network.mode, a.cloud, a.reboot) == ("auto", "dhcp", "new", True)


def test_a_full_answer_file_gives_the_node_its_files():
    a = ans.parse(GOOD)
    assert a.hostname == "node1.lab"
    net = install.network_file(a.network, "52:54:00:12:34:56")
    assert "MACAddress=52:54:00:12:34:56" in net
    assert "Address=192.0.2.10/24" in net and "Gateway=192.0.2.1" in net and "DNS=192.0.2.53" in net
    assert "DHCP" not in net
    assert install.firstboot_file(a) == 'mode = "join"\ntoken = "abcdefgh12345678"\nadvertise = ""\n'


@pytest.mark.parametrize("change,error", [
    (('disk = "/dev/vda"', 'disk = "vda"'), "disk:"),
    (('hostname = "Node1.lab"', 'hostname = "node_1"'), "hostname:"),
    (('root_password = "long enough"', 'root_password = "short"'), "at least 8"),
    (('root_password = "long enough"', ''), "root_password"),
    (('address = "192.0.2.10/24"', 'address = "192.0.2.10"'), "prefix"),
    (('address = "192.0.2.10/24"', 'address = "nonsense"'), "network.address"),
    (('gateway = "192.0.2.1"', 'gateway = "198.51.100.1"'), "not in 192.0.2.0/24"),
    (('dns = ["192.0.2.53"]', 'dns = ["dns.example"]'), "network.dns"),
    (('mode = "static"', 'mode = "manual"'), "network.mode"),
    (('token = "abcdefgh12345678"', ''), "token"),
    (('mode = "join"', 'mode = "split"'), "cloud:"),
    (('[cloud]', 'colour = "blue"\n[cloud]'), "unknown keys"),
    (('hostname', 'hostname = = "x"\n#'), "not valid TOML"),
])
def test_bad_answers_are_refused_with_the_key(change, error):
    with pytest.raises(ans.AnswerError, match=error):
        ans.parse(GOOD.replace(*change, 1))


TWO_LINKS = """
hostname = "node2"
root_password = "long enough"
[network]
interface = "auto"
mode = "dhcp"
[[network.extra]]
interface = "52:54:00:C1:00:02"
mode = "static"
address = "10.99.0.2/24"
[cloud]
mode = "join"
token = "abcdefgh12345678"
advertise = "10.99.0.2"
"""


def test_a_second_interface_gets_its_own_static_network_file(tmp_path, monkeypatch):
    a = ans.parse(TWO_LINKS)
    assert a.network.mode == "dhcp" and len(a.extra_networks) == 1
    link = a.extra_networks[0]
    assert (link.interface, link.mode, link.address) == ("52:54:00:C1:00:02", "static", "10.99.0.2/24")
    assert install.network_file(link, "52:54:00:c1:00:02").splitlines()[1:] == [
        "[Match]", "MACAddress=52:54:00:c1:00:02", "", "[Network]", "Address=10.99.0.2/24"]
    # configure() writes one networkd file per interface, the first one's name unchanged.
    monkeypatch.setattr(install, "TARGET", tmp_path)
    monkeypatch.setattr(install, "run", lambda *cmd, input=None: "uuid-1" if cmd[0] == "blkid" else "")
    for sub in ("etc/default", "tmp", "etc/systemd/system/multi-user.target.wants"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "etc/default/grub").write_text('GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n')
    links = [{"name": "ens3", "mac": "52:54:00:12:34:56"}, {"name": "ens4", "mac": "52:54:00:c1:00:02"}]
    said: list[str] = []
    install.configure(a, "/dev/vda", "/dev/vda2", "/dev/vda3", links, said.append)
    files = sorted(p.name for p in (tmp_path / "etc/systemd/network").iterdir())
    assert files == ["20-cloudbox.network", "21-cloudbox-1.network"]
    assert "DHCP=ipv4" in (tmp_path / "etc/systemd/network/20-cloudbox.network").read_text()
    assert "Address=10.99.0.2/24" in (tmp_path / "etc/systemd/network/21-cloudbox-1.network").read_text()
    assert "ens4 (52:54:00:c1:00:02) static 10.99.0.2/24" in said[0]


@pytest.mark.parametrize("change,error", [
    (('interface = "52:54:00:C1:00:02"', 'interface = "auto"'), r"network.extra\[0\].interface: a name or a MAC"),
    (('address = "10.99.0.2/24"', 'address = "10.99.0.2"'), r"network.extra\[0\].address: give the prefix"),
    (('mode = "static"\naddress', 'mode = "bridge"\naddress'), r"network.extra\[0\].mode"),
    (('address = "10.99.0.2/24"', 'address = "10.99.0.2/24"\ncolour = "red"'), r"unknown keys: network.extra\[0\].colour"),
    (('interface = "auto"', 'interface = "52:54:00:c1:00:02"'), "configured twice"),
    (('[[network.extra]]\ninterface = "52:54:00:C1:00:02"\nmode = "static"\naddress = "10.99.0.2/24"\n', 'extra = "ens4"\n'),
     "network.extra: tables"),
])
def test_bad_extra_interfaces_are_refused_with_the_key(change, error):
    with pytest.raises(ans.AnswerError, match=error):
        ans.parse(TWO_LINKS.replace(*change, 1))


def test_kernel_command_line_parameters():
    args = ans.cmdline_args("boot=live quiet cloudbox.install cloudbox.answer=https://a.example/x.toml "
                            "cloudbox.answer-fingerprint=AB:cd")
    assert args == {"install": "", "answer": "https://a.example/x.toml", "answer-fingerprint": "AB:cd"}


@pytest.fixture
def https_answer_server(tmp_path: Path):
    """An https server on 127.0.0.1 with a self-signed certificate; counts the requests it got."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=answers"],
                   check=True, capture_output=True)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            requests.append(self.path)
            body = GOOD.encode() if self.path == "/answer.toml" else b"no"
            self.send_response(200 if self.path == "/answer.toml" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", hashlib.sha256(der).hexdigest(), requests
    server.shutdown()
    server.server_close()


def test_answer_url_with_the_pinned_certificate(https_answer_server):
    base, fingerprint, requests = https_answer_server
    colons = ":".join(fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()
    assert ans.parse(ans.fetch_pinned(f"{base}/answer.toml", colons)).token == "abcdefgh12345678"
    assert requests == ["/answer.toml"]
    with pytest.raises(ans.AnswerError, match="404"):
        ans.fetch_pinned(f"{base}/missing.toml", fingerprint)


def test_answer_url_with_another_certificate_sends_nothing(https_answer_server):
    base, fingerprint, requests = https_answer_server
    with pytest.raises(ans.AnswerError, match="not the pinned"):
        ans.fetch_pinned(f"{base}/answer.toml", "0" * 64)
    assert requests == []
    with pytest.raises(ans.AnswerError, match="https://"):
        ans.fetch_pinned(base.replace("https", "http") + "/answer.toml", fingerprint)
    with pytest.raises(ans.AnswerError, match="64 hex"):
        ans.fetch_pinned(f"{base}/answer.toml", "abc")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CLOUDBOX_ISO_TEST") != "1",
                    reason="the installer ISO (tens of minutes under TCG): set CLOUDBOX_ISO_TEST=1")
@pytest.mark.skipif(os.geteuid() != 0, reason="builds a root file system and boots QEMU: needs root")
def test_iso_builds_installs_unattended_and_serves():
    started = time.monotonic()
    build = subprocess.run([str(REPO / "packaging/build-iso.sh")], capture_output=True, text=True, timeout=3600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    iso = build.stdout.strip().splitlines()[-1].split()[0]
    run = subprocess.run([str(REPO / "packaging/test-iso.sh"), "--iso", iso, "install"],
                         capture_output=True, text=True, timeout=3 * 3600)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-5000:]
    assert "unattended: answers from /dev/" in out
    assert '"id": "v3' in out or '"id":"v3' in out
    assert "ok: unattended install and first boot" in out
    print(out[-2500:])
    print(f"built and installed in {time.monotonic() - started:.0f} s")


def run_test_iso(action: str, timeout: float) -> str:
    """``packaging/test-iso.sh --firmware uefi ACTION`` on the newest ISO built; its output once it passed."""
    isos = sorted((REPO / "packaging/build").glob("cloudbox-*-amd64.iso"), key=lambda p: p.stat().st_mtime)
    if not isos:
        pytest.skip("no ISO: packaging/build-iso.sh (or the test above) makes one")
    run = subprocess.run([str(REPO / "packaging/test-iso.sh"), "--iso", str(isos[-1]), "--firmware", "uefi", action],
                         capture_output=True, text=True, timeout=timeout)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-5000:]
    return out


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CLOUDBOX_ISO_TEST") != "1",
                    reason="two installs from the ISO (tens of minutes under TCG): set CLOUDBOX_ISO_TEST=1")
@pytest.mark.skipif(os.geteuid() != 0, reason="boots QEMU and writes disk images: needs root")
def test_iso_second_vm_joins_the_first_with_the_answer_files_token():
    out = run_test_iso("cluster", timeout=4 * 3600)
    assert "joining the cloud with the installer's token" in out
    assert "both nodes up, seen from each" in out
    assert "ok: two nodes from one ISO" in out
    print(out[-4000:])


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CLOUDBOX_ISO_TEST") != "1",
                    reason="two boots of the ISO under TCG (minutes): set CLOUDBOX_ISO_TEST=1")
@pytest.mark.skipif(os.geteuid() != 0, reason="boots QEMU: needs root")
def test_iso_live_system_fetches_its_answers_from_a_pinned_url():
    out = run_test_iso("answer-url", timeout=2 * 3600)
    assert "unattended: answers from https://10.0.2.100:8443/answer.toml" in out
    assert "right pin: the answer file was fetched (1 request)" in out
    assert "wrong pin: refused before any request reached the server" in out

"""The installer's answers: one TOML file, from the ISO, a labelled drive or a pinned URL.

The same dataclass is filled by the interactive screens (cbinstall.ui), so both paths check
their input with the same rules.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import ssl
import subprocess
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

# A FAT label is at most 11 characters; the drive may also be ISO 9660 or ext4 with this label.
ANSWER_LABEL = "CLOUDBOX-AI"
ANSWER_NAME = "answer.toml"
LIVE_MEDIUM = Path("/run/live/medium")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


class AnswerError(ValueError):
    """An answer that cannot be used; the message says which key and why."""


@dataclass
class Network:
    interface: str = "auto"          # "auto" (the first Ethernet with a link), a name or a MAC
    mode: str = "dhcp"               # "dhcp" or "static"
    address: str = ""                # static: 192.0.2.10/24
    gateway: str = ""
    dns: list[str] = field(default_factory=list)

    def check(self, key: str = "network") -> None:
        if self.interface != "auto" and not (MAC_RE.match(self.interface.lower())
                                             or re.match(r"^[A-Za-z0-9_.:-]{1,15}$", self.interface)):
            raise AnswerError(f"{key}.interface: 'auto', a name or a MAC address, not {self.interface!r}")
        if self.mode not in ("dhcp", "static"):
            raise AnswerError(f"{key}.mode: 'dhcp' or 'static', not {self.mode!r}")
        if self.mode == "static":
            try:
                iface = ipaddress.ip_interface(self.address)
            except ValueError:
                raise AnswerError(f"{key}.address: an address with its prefix (192.0.2.10/24), not {self.address!r}") from None
            if iface.network.prefixlen == iface.max_prefixlen and iface.version == 4:
                raise AnswerError(f"{key}.address: give the prefix length too (/24)")
            if self.gateway:
                gw = _ip(f"{key}.gateway", self.gateway)
                if gw not in iface.network:
                    raise AnswerError(f"{key}.gateway: {self.gateway} is not in {iface.network}")
        for dns in self.dns:
            _ip(f"{key}.dns", dns)


NETWORK_KEYS = {"interface", "mode", "address", "gateway", "dns"}


def _network(table: object, key: str) -> Network:
    if not isinstance(table, dict):
        raise AnswerError(f"{key}: a table")
    bad = set(table) - NETWORK_KEYS - ({"extra"} if key == "network" else set())
    if bad:
        raise AnswerError(f"unknown keys: {', '.join(sorted(f'{key}.{k}' for k in bad))}")
    dns = table.get("dns", [])
    if not isinstance(dns, list):
        raise AnswerError(f"{key}.dns: a list of addresses")
    return Network(interface=str(table.get("interface", "auto")), mode=str(table.get("mode", "dhcp")),
                   address=str(table.get("address", "")), gateway=str(table.get("gateway", "")),
                   dns=[str(d) for d in dns])


@dataclass
class Answers:
    disk: str = "auto"               # "auto" (the largest disk that is not the medium) or a path
    hostname: str = "cloudbox"
    root_password: str = ""
    root_password_hash: str = ""     # crypt(3) hash, instead of root_password
    ssh_keys: list[str] = field(default_factory=list)
    network: Network = field(default_factory=Network)
    # More interfaces ([[network.extra]], answer file only): a cluster link, a storage network.
    extra_networks: list[Network] = field(default_factory=list)
    cloud: str = "new"               # "new" or "join"
    token: str = ""                  # join: from `cloudbox cluster add` on a node of the cloud
    advertise: str = ""              # the node's address for clients [default: its first address]
    reboot: bool = True

    def check(self) -> Answers:
        """Raise AnswerError for the first answer that is missing or malformed."""
        if self.disk != "auto" and not self.disk.startswith("/dev/"):
            raise AnswerError(f"disk: 'auto' or a device path under /dev, not {self.disk!r}")
        if not HOSTNAME_RE.match(self.hostname):
            raise AnswerError(f"hostname: letters, digits and '-' in dot-separated labels, not {self.hostname!r}")
        if not self.root_password and not self.root_password_hash:
            raise AnswerError("root_password (or root_password_hash) is required")
        if self.root_password and len(self.root_password) < 8:
            raise AnswerError("root_password: at least 8 characters")
        if self.root_password_hash and not self.root_password_hash.startswith("$"):
            raise AnswerError("root_password_hash: a crypt(3) hash such as $6$... or $y$...")
        for key in self.ssh_keys:
            if not re.match(r"^(ssh-|ecdsa-|sk-)\S+ \S+", key):
                raise AnswerError(f"ssh_keys: not an OpenSSH public key: {key[:30]!r}")
        self.network.check()
        seen = {self.network.interface.lower()}
        for i, extra in enumerate(self.extra_networks):
            key = f"network.extra[{i}]"
            if extra.interface == "auto":
                raise AnswerError(f"{key}.interface: a name or a MAC address ('auto' is the first interface's)")
            extra.check(key)
            if extra.interface.lower() in seen:
                raise AnswerError(f"{key}.interface: {extra.interface} is configured twice")
            seen.add(extra.interface.lower())
        if self.cloud not in ("new", "join"):
            raise AnswerError(f"cloud: 'new' or 'join', not {self.cloud!r}")
        if self.cloud == "join" and not re.match(r"^\S{8,}$", self.token):
            raise AnswerError("token: joining a cloud needs the token of `cloudbox cluster add`")
        if self.advertise:
            _ip("advertise", self.advertise)
        return self


def _ip(key: str, value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise AnswerError(f"{key}: an IP address, not {value!r}") from None


KNOWN = {"disk", "hostname", "root_password", "root_password_hash", "ssh_keys", "reboot", "network", "cloud"}


def parse(text: str) -> Answers:
    """Answers from the TOML text of an answer file (see answer.example.toml)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AnswerError(f"not valid TOML: {exc}") from None
    unknown = set(data) - KNOWN
    if unknown:
        raise AnswerError(f"unknown keys: {', '.join(sorted(unknown))}")
    cloud = data.get("cloud", {})
    if not isinstance(cloud, dict):
        raise AnswerError("[cloud] is a table")
    net = _network(data.get("network", {}), "network")
    extra = data.get("network", {}).get("extra", [])
    if not isinstance(extra, list):
        raise AnswerError("network.extra: tables, written [[network.extra]]")
    extra_networks = [_network(t, f"network.extra[{i}]") for i, t in enumerate(extra)]
    bad = {f"cloud.{k}" for k in set(cloud) - {"mode", "token", "advertise"}}
    if bad:
        raise AnswerError(f"unknown keys: {', '.join(sorted(bad))}")
    try:
        answers = Answers(
            disk=str(data.get("disk", "auto")),
            hostname=str(data.get("hostname", "cloudbox")).lower(),
            root_password=str(data.get("root_password", "")),
            root_password_hash=str(data.get("root_password_hash", "")),
            ssh_keys=[str(k) for k in data.get("ssh_keys", [])],
            reboot=bool(data.get("reboot", True)),
            network=net, extra_networks=extra_networks,
            cloud=str(cloud.get("mode", "new")), token=str(cloud.get("token", "")),
            advertise=str(cloud.get("advertise", "")),
        )
    except TypeError as exc:
        raise AnswerError(f"a list was expected: {exc}") from None
    return answers.check()


def fetch_pinned(url: str, fingerprint: str, timeout: float = 20.0) -> str:
    """GET an https URL whose server certificate has this SHA-256 fingerprint (no CA needed).

    The pin replaces the CA check, as Proxmox's automated installer does: the certificate is
    compared before anything is sent, so a wrong server never sees the request.
    """
    want = fingerprint.lower().replace(":", "").removeprefix("sha256")
    if not re.fullmatch(r"[0-9a-f]{64}", want):
        raise AnswerError("cloudbox.answer-fingerprint: the certificate's SHA-256, 64 hex digits")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise AnswerError(f"cloudbox.answer: an https:// URL, not {url!r}")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=parts.hostname) as tls:
            der = tls.getpeercert(binary_form=True) or b""
            got = hashlib.sha256(der).hexdigest()
            if got != want:
                raise AnswerError(f"the answer server's certificate is sha256 {got}, not the pinned {want}")
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            tls.sendall(f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: cloudbox-installer\r\n\r\n".encode())
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    first = head.split(b"\r\n", 1)[0]
    status = first.split()
    if len(status) < 2 or status[1] != b"200":
        raise AnswerError(f"the answer URL answered {first.decode(errors='replace')!r}")
    return body.decode()


LIVE_DHCP = Path("/run/systemd/network/90-cloudbox-installer.network")


def live_dhcp(timeout: int = 90) -> None:
    """DHCP on every Ethernet link of the live system (in /run: never copied to the node)."""
    LIVE_DHCP.parent.mkdir(parents=True, exist_ok=True)
    LIVE_DHCP.write_text("[Match]\nType=ether\n\n[Network]\nDHCP=yes\n")
    subprocess.run(["systemctl", "restart", "systemd-networkd.service"], check=False)
    subprocess.run(["/lib/systemd/systemd-networkd-wait-online", "--any", "--ipv4", f"--timeout={timeout}"], check=False)


def cmdline_args(cmdline: str) -> dict[str, str]:
    """cloudbox.* parameters of the kernel command line."""
    args = {}
    for word in cmdline.split():
        key, _, value = word.partition("=")
        if key.startswith("cloudbox."):
            args[key.removeprefix("cloudbox.")] = value
    return args


def find_answer_file(args: dict[str, str]) -> tuple[str, str] | None:
    """(where, text) of the answer file, or None for the interactive installer.

    In this order: a URL on the kernel command line (cloudbox.answer=, pinned by
    cloudbox.answer-fingerprint=), /answer.toml on the ISO, answer.toml on a drive labelled
    CLOUDBOX-AI.
    """
    if args.get("answer"):
        url = args["answer"]
        live_dhcp()
        return url, fetch_pinned(url, args.get("answer-fingerprint", ""))
    on_iso = LIVE_MEDIUM / ANSWER_NAME
    if on_iso.is_file():
        return str(on_iso), on_iso.read_text()
    dev = subprocess.run(["blkid", "-L", ANSWER_LABEL], capture_output=True, text=True, check=False).stdout.strip()
    if dev:
        mnt = Path("/run/cloudbox-answer")
        mnt.mkdir(exist_ok=True)
        subprocess.run(["mount", "-o", "ro", dev, str(mnt)], check=True)
        try:
            file = mnt / ANSWER_NAME
            if not file.is_file():
                raise AnswerError(f"{dev} is labelled {ANSWER_LABEL} but has no {ANSWER_NAME}")
            return f"{dev}:/{ANSWER_NAME}", file.read_text()
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    return None

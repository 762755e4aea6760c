"""The interactive installer: whiptail screens on a text console (keyboard only)."""
from __future__ import annotations

import os
import subprocess

from . import install
from .answers import Answers, AnswerError, Network

TITLE = "cloudbox installer"


class Back(Exception):
    """The user chose Cancel: go back to the previous screen."""


def _whiptail(*args: str) -> str:
    # whiptail draws on the terminal and writes the choice to the fd given by --output-fd.
    read, write = os.pipe()
    proc = subprocess.Popen(["whiptail", "--title", TITLE, "--output-fd", str(write), *args], pass_fds=(write,))
    os.close(write)
    with os.fdopen(read) as out:
        value = out.read()
    if proc.wait() != 0:
        raise Back
    return value.strip()


def message(text: str) -> None:
    _whiptail("--msgbox", text, "16", "74")


def yes_no(text: str) -> bool:
    try:
        _whiptail("--defaultno", "--yesno", text, "18", "74")
        return True
    except Back:
        return False


def menu(text: str, items: list[tuple[str, str]], default: str = "") -> str:
    flat = [x for item in items for x in item]
    extra = ["--default-item", default] if default else []
    return _whiptail(*extra, "--menu", text, "20", "74", str(min(len(items), 10)), *flat)


def ask(text: str, default: str = "", secret: bool = False) -> str:
    return _whiptail("--passwordbox" if secret else "--inputbox", text, "10", "74", default)


def collect() -> Answers:
    """Ask every question; Cancel goes back one screen."""
    a = Answers(root_password="placeholder")  # checks of later screens pass until asked
    steps = [_disk, _network, _hostname, _password, _cloud, _confirm]
    i = 0
    while i < len(steps):
        try:
            steps[i](a)
            i += 1
        except Back:
            i = max(0, i - 1)
        except AnswerError as exc:
            message(f"Please correct this:\n\n{exc}")
    return a


def _disk(a: Answers) -> None:
    found = install.disks()
    if not found:
        message("No disk was found to install to. Attach a disk and restart the installer.")
        raise Back
    items = [(d["name"], f"{int(d['size']) / 2**30:8.1f} GiB  {d['model']}") for d in found]
    a.disk = menu("Install to which disk? EVERYTHING ON IT WILL BE ERASED.", items, a.disk if a.disk != "auto" else "")


def _network(a: Answers) -> None:
    links = install.interfaces()
    if not links:
        raise AnswerError("no Ethernet interface found: the node needs one")
    items = [(i["name"], f"{i['mac']}  link {i['link']}") for i in links]
    name = menu("The node's network interface (its API and web UI listen there):", items)
    mode = menu("Address of this interface:", [("dhcp", "from a DHCP server"), ("static", "typed in now")])
    net = Network(interface=name, mode=mode)
    if mode == "static":
        net.address = ask("Address with prefix length, e.g. 192.168.1.20/24:", a.network.address)
        net.gateway = ask("Gateway (empty for none):", a.network.gateway)
        dns = ask("DNS servers, separated by spaces (empty for none):", " ".join(a.network.dns))
        net.dns = dns.split()
    a.network = net
    a.check()


def _hostname(a: Answers) -> None:
    a.hostname = ask("Host name of this node (e.g. node1 or node1.lab.example):", a.hostname).lower()
    a.check()


def _password(a: Answers) -> None:
    while True:
        first = ask("Root password (at least 8 characters):", secret=True)
        second = ask("Root password again:", secret=True)
        if first != second:
            message("The two passwords differ. Please type them again.")
            continue
        a.root_password = first
        try:
            a.check()
            return
        except AnswerError as exc:
            message(str(exc))


def _cloud(a: Answers) -> None:
    a.cloud = menu("This node:", [
        ("new", "creates a new cloud (it becomes its first node)"),
        ("join", "joins a cloud (a token from `cloudbox cluster add` on one of its nodes)"),
    ], a.cloud)
    if a.cloud == "join":
        a.token = ask("Join token (from `cloudbox cluster add NAME` on a node of the cloud):", a.token)
    a.check()


def _confirm(a: Answers) -> None:
    net = a.network
    addr = "DHCP" if net.mode == "dhcp" else f"{net.address} gw {net.gateway or '-'} dns {' '.join(net.dns) or '-'}"
    text = (f"Disk:      {a.disk}  (ERASED)\nInterface: {net.interface}, {addr}\nHost name: {a.hostname}\n"
            f"Cloud:     {'a new cloud' if a.cloud == 'new' else 'join with a token'}\n\nInstall now?")
    if not yes_no(text):
        raise Back

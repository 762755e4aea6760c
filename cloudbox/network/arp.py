"""Gratuitous ARP: telling a segment at once where an address now answers.

When a router or DHCP server starts on another node (its node went down) or a
floating IP is added, switches and bridges on the way still send its MAC to where
they last saw it, until the moved port sends a frame of its own.  An address
that was just put on a link is announced with one gratuitous ARP request and
one gratuitous ARP reply (sender and target address both the announced one):
hosts that hold it in their ARP cache refresh it, and every bridge on the
segment learns the port.  IPv6 addresses are not announced here.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Iterable

from cloudbox.network import netns

log = logging.getLogger("cloudbox.network")

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
REQUEST, REPLY = 1, 2


def frame(mac: str, ip: str, op: int) -> bytes:
    """An Ethernet broadcast frame of a gratuitous ARP ``op`` (REQUEST or REPLY) for ``ip`` at ``mac``."""
    hw = bytes.fromhex(mac.replace(":", ""))
    if len(hw) != 6:
        raise ValueError(f"not a MAC address: {mac}")
    address = ipaddress.IPv4Address(ip).packed
    target_hw = b"\x00" * 6 if op == REQUEST else BROADCAST
    arp = (b"\x00\x01" b"\x08\x00" b"\x06\x04" + op.to_bytes(2, "big")
           + hw + address + target_hw + address)
    return BROADCAST + hw + ETH_P_ARP.to_bytes(2, "big") + arp


def announce(namespace: str, interface: str, mac: str, addresses: Iterable[str]) -> None:
    """Send the gratuitous ARPs for the IPv4 ``addresses`` (with or without prefix) on
    ``interface`` in ``namespace``."""
    ips = [ip for ip in (a.split("/")[0] for a in addresses) if ipaddress.ip_address(ip).version == 4]
    if not ips:
        return
    sock = netns.packet_socket(namespace)
    try:
        sock.bind((interface, 0))
        for ip in ips:
            for op in (REQUEST, REPLY):
                sock.send(frame(mac, ip, op))
    finally:
        sock.close()
    log.info("addresses announced", extra={"namespace": namespace, "interface": interface, "addresses": ips})

"""The per-node NAT network: one bridge, DHCP by dnsmasq, masquerade by nftables.

Until the Neutron-compatible network service lands, every server gets one
port here.  The hand-off is the PortBinder interface: the compute service asks
for a tap device for a (server, MAC, IP) and gets a NicSpec back; it never
touches bridges, dnsmasq or nftables itself, so the network service can take
over binding without changing compute.

Rules: the database (the servers' ``ports``) says which ports exist; ``sync``
makes the host match (bridge, nft table, dnsmasq host entries, taps) and
removes taps it owns that no port needs.  Running it twice changes nothing.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import trio

from cloudbox.compute.driver import NicSpec

log = logging.getLogger("cloudbox.network.nat")
NETWORK_NAME = "cloudbox-nat"
RUN_DIR = Path("/run/cloudbox/dnsmasq")


@dataclass(frozen=True)
class Port:
    server_id: str
    mac: str
    ip: str

    @property
    def tap(self) -> str:
        return "tap" + self.server_id.replace("-", "")[:11]


def gateway(cidr: str) -> str:
    return str(next(ipaddress.ip_network(cidr).hosts()))


def allocate_ip(cidr: str, taken: set[str]) -> str | None:
    """Lowest free address after the gateway (deterministic: apply may call it)."""
    hosts = ipaddress.ip_network(cidr).hosts()
    next(hosts)  # the gateway
    for addr in hosts:
        if str(addr) not in taken:
            return str(addr)
    return None


def render_dhcp_hosts(ports: list[Port]) -> str:
    return "".join(f"{p.mac},{p.ip},{p.tap}\n" for p in sorted(ports, key=lambda p: p.ip))


def render_nft(table: str, bridge: str, cidr: str) -> str:
    """Masquerade out; guests may not reach this host (but for DHCP) nor, through it, each other.

    Guests of different projects share this network, so it isolates every guest: the bridge
    ports are isolated (no guest-to-guest frames) and routed guest-to-guest traffic is dropped.
    """
    return (
        f"table ip {table} {{\n"
        f"  chain postrouting {{\n"
        f"    type nat hook postrouting priority srcnat; policy accept;\n"
        f"    ip saddr {cidr} ip daddr != {cidr} masquerade\n"
        f"  }}\n"
        f"  chain input {{\n"
        f"    type filter hook input priority filter; policy accept;\n"
        f"    iifname \"{bridge}\" udp dport 67 accept\n"
        f"    iifname \"{bridge}\" ct state established,related accept\n"
        f"    iifname \"{bridge}\" drop\n"
        f"  }}\n"
        f"  chain forward {{\n"
        f"    type filter hook forward priority filter; policy accept;\n"
        f"    iifname \"{bridge}\" oifname \"{bridge}\" drop\n"
        f"  }}\n"
        f"}}\n"
    )


def network_data(port: Port, cidr: str) -> dict:
    """OpenStack's network_data.json for a port on this network."""
    net = ipaddress.ip_network(cidr)
    return {
        "links": [{"id": port.tap, "type": "phy", "ethernet_mac_address": port.mac, "mtu": 1500,
                   "vif_id": port.server_id}],
        "networks": [{
            "id": "network0", "type": "ipv4", "link": port.tap, "ip_address": port.ip,
            "netmask": str(net.netmask), "network_id": NETWORK_NAME,
            "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": gateway(cidr)}],
            "services": [],
        }],
        "services": [],
    }


class PortBinder(Protocol):
    async def sync(self, ports: list[Port]) -> None: ...
    async def bind(self, port: Port) -> NicSpec: ...
    async def unbind(self, port: Port) -> None: ...


class NatNetwork:
    """The real binder: pyroute2 for links, nft for rules, dnsmasq for DHCP."""

    def __init__(self, bridge: str, cidr: str) -> None:
        self.bridge = bridge
        self.cidr = cidr
        self.table = "cloudbox_" + bridge.replace("-", "_")
        self.ports: dict[str, Port] = {}
        self._lock = trio.Lock()
        self._base_ready = False

    # dnsmasq drops to user nobody before it reads its hosts file (again on every SIGHUP), and
    # the data dir is private to root: its files live under /run, readable by all (MACs and IPs
    # of this node's ports, nothing secret).
    @property
    def run_dir(self) -> Path:
        return RUN_DIR / self.bridge

    @property
    def hosts_file(self) -> Path:
        return self.run_dir / "dhcp-hosts"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "dnsmasq.pid"

    async def sync(self, ports: list[Port]) -> None:
        async with self._lock:
            self.ports = {p.tap: p for p in ports}
            await trio.to_thread.run_sync(self._sync_host, None)

    async def bind(self, port: Port) -> NicSpec:
        async with self._lock:
            self.ports[port.tap] = port
            await trio.to_thread.run_sync(self._sync_host, port.tap)
        return NicSpec(mac=port.mac, tap=port.tap)

    async def unbind(self, port: Port) -> None:
        async with self._lock:
            self.ports.pop(port.tap, None)
            await trio.to_thread.run_sync(self._sync_host, port.tap)

    # --- host side, in a worker thread ---------------------------------------------
    def _sync_host(self, only: str | None) -> None:
        """Make the host match ``self.ports``: all of it, or (``only``) one tap once the base is made.

        The full pass (at start, and on every reconcile) also makes the bridge, its address and
        the nft table, and removes orphan taps; a bind or unbind then touches just its own tap.
        """
        from pyroute2 import IPRoute

        full = only is None or not self._base_ready
        with IPRoute() as ipr:
            bridge_index = self._ensure_base(ipr) if full else ipr.link_lookup(ifname=self.bridge)[0]
            for tap in (set(self.ports) if full else {only} & set(self.ports)):
                if not ipr.link_lookup(ifname=tap):
                    ipr.link("add", ifname=tap, kind="tuntap", mode="tap")
                index = ipr.link_lookup(ifname=tap)[0]
                ipr.link("set", index=index, master=bridge_index, state="up")
                ipr.brport("set", index=index, isolated=1)  # no frames to other guests' ports
            if full:
                stale = {
                    link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                    if link.get_attr("IFLA_MASTER") == bridge_index
                    and (link.get_attr("IFLA_IFNAME") or "").startswith("tap")
                } - set(self.ports)
            else:
                stale = {only} - set(self.ports)
            for tap in stale:
                if ipr.link_lookup(ifname=tap):
                    ipr.link("del", ifname=tap)
                    log.info("tap removed", extra={"tap": tap})
        content = render_dhcp_hosts(list(self.ports.values()))
        changed = not self.hosts_file.exists() or self.hosts_file.read_text() != content
        if changed:
            tmp = self.hosts_file.with_suffix(".tmp")
            tmp.write_text(content)
            tmp.chmod(0o644)
            os.replace(tmp, self.hosts_file)
        pid = self._dnsmasq_pid()
        if pid is None:
            self._start_dnsmasq()
        elif changed:
            os.kill(pid, signal.SIGHUP)  # re-reads the hosts file
        self._release_stale_leases()

    def _release_stale_leases(self) -> None:
        """Free leases no port holds: dnsmasq will not give an address still leased to an old MAC."""
        wanted = {(p.mac, p.ip) for p in self.ports.values()}
        try:
            lines = (self.run_dir / "leases").read_text().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            fields = line.split()
            if len(fields) >= 3 and (fields[1], fields[2]) not in wanted:
                subprocess.run(["dhcp_release", self.bridge, fields[2], fields[1]],
                               capture_output=True, timeout=10)
                log.info("stale DHCP lease released", extra={"ip": fields[2], "mac": fields[1]})

    def _ensure_base(self, ipr: Any) -> int:
        """The bridge with its gateway address, forwarding, and the nft table; returns the bridge index."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.run_dir, self.run_dir.parent, self.run_dir.parent.parent):
            directory.chmod(0o755)
        net = ipaddress.ip_network(self.cidr)
        if not ipr.link_lookup(ifname=self.bridge):
            ipr.link("add", ifname=self.bridge, kind="bridge")
            log.info("bridge created", extra={"bridge": self.bridge})
        bridge_index = ipr.link_lookup(ifname=self.bridge)[0]
        addrs = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=bridge_index)}
        if gateway(self.cidr) not in addrs:
            ipr.addr("add", index=bridge_index, address=gateway(self.cidr), prefixlen=net.prefixlen)
        ipr.link("set", index=bridge_index, state="up")
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        ruleset = render_nft(self.table, self.bridge, self.cidr)
        # Declaring the table first makes the delete succeed on a first run; the file is one transaction.
        subprocess.run(["nft", "-f", "-"], input=f"table ip {self.table}\ndelete table ip {self.table}\n{ruleset}",
                       text=True, check=True, capture_output=True, timeout=30)
        self._base_ready = True
        return bridge_index

    def _dnsmasq_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"dnsmasq" in cmdline and self.bridge.encode() in cmdline else None

    def _start_dnsmasq(self) -> None:
        hosts = list(ipaddress.ip_network(self.cidr).hosts())
        subprocess.run(
            [
                "dnsmasq", f"--interface={self.bridge}", "--bind-interfaces", "--except-interface=lo",
                "--port=0", f"--pid-file={self.pid_file}", f"--dhcp-hostsfile={self.hosts_file}",
                f"--dhcp-range={hosts[1]},static,{ipaddress.ip_network(self.cidr).netmask},12h",
                f"--dhcp-leasefile={self.run_dir / 'leases'}", f"--dhcp-option=option:router,{gateway(self.cidr)}",
                "--dhcp-authoritative", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
            ],
            check=True, capture_output=True, timeout=30,
        )
        log.info("dnsmasq started", extra={"bridge": self.bridge})

    def teardown(self) -> None:
        """Remove everything this network made on the host (tests, node removal)."""
        from pyroute2 import IPRoute

        pid = self._dnsmasq_pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
        subprocess.run(["nft", "delete", "table", "ip", self.table], capture_output=True, timeout=30)
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=self.bridge)
            if found:
                for link in ipr.get_links():
                    name = link.get_attr("IFLA_IFNAME") or ""
                    if link.get_attr("IFLA_MASTER") == found[0] and name.startswith("tap"):
                        ipr.link("del", index=link["index"])
                ipr.link("del", index=found[0])
        for path in (self.hosts_file, self.pid_file, self.run_dir / "leases"):
            path.unlink(missing_ok=True)
        if self.run_dir.exists():
            self.run_dir.rmdir()


class FakeBinder:
    """In-memory binder for unit tests of the compute service."""

    def __init__(self) -> None:
        self.ports: dict[str, Port] = {}

    async def sync(self, ports: list[Port]) -> None:
        self.ports = {p.tap: p for p in ports}

    async def bind(self, port: Port) -> NicSpec:
        self.ports[port.tap] = port
        return NicSpec(mac=port.mac, tap=port.tap)

    async def unbind(self, port: Port) -> None:
        self.ports.pop(port.tap, None)

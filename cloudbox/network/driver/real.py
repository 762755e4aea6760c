"""The Linux network driver: bridges, taps, namespaces (pyroute2), nft, dnsmasq.

One pass (``apply``) in a worker thread, in this order, so that no tap ever
carries traffic without its rules:

1. sysctls (bridged traffic through the inet hooks), taps no longer wanted removed;
2. the host nft tables replaced in one transaction (rules name ports, not indexes,
   so they may precede the links they name), then the conntrack entries of flows the
   new rules no longer allow deleted (``flows``, ``conntrack``);
3. bridges, the external bridge, VXLAN links with their FDB entries, taps, DHCP
   namespaces with dnsmasq, router namespaces with their legs, routes and NAT
   (each adopted when present);
4. what this node made that the plan no longer wants: links, namespaces, dnsmasq.

A failure on one object is collected and the pass goes on with the others; the
pass then raises one ``NetworkDriverError`` naming them all.  Creating an object
in several steps registers an undo per step (``Revert``), so a half-made
namespace or veth never lingers.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import trio
from cloudbox.network.netlink import IPRoute, NetlinkError, netns

from cloudbox.errors import Conflict, NotFound
from cloudbox.network import arp, conntrack, flows
from cloudbox.network import netns as namespaces
from cloudbox.network import render
from cloudbox.network.driver import NetworkDriverError, alias, nic_spec
from cloudbox.network.hostplan import (FLOOD_MAC, DhcpPlan, ExternalPlan, HostNetworks, HostPlan, NetworkPlan, PortPlan,
                                       RouterPlan, RouterPort, VxlanPlan)
from cloudbox.nics import NicSpec
from cloudbox.revert import Revert

log = logging.getLogger("cloudbox.network.driver")
RUN_DIR = Path("/run/cloudbox/network")
NAMESPACE_PREFIXES = ("qdhcp-", "qrouter-")
RTPROT_STATIC = 4
ROUTE_METRIC = 100  # of the routes cloudbox puts in a router namespace (the kernel's connected ones have 0)
# dnsmasq drops to user nobody before reading its files (again on SIGHUP), so they live
# under /run, readable by all (MACs and IPs of this node's ports, nothing secret).


def _run(args: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(args, input=stdin, text=True, capture_output=True, timeout=60)
    if done.returncode != 0:
        raise NetworkDriverError(f"{' '.join(args[:4])} failed: {done.stderr.strip()[:2000]}")
    return done.stdout


def _write_if_changed(path: Path, content: str) -> bool:
    try:
        if path.read_text() == content:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_suffix(".tmp")
    tmp.write_text(content)
    tmp.chmod(0o644)
    os.replace(tmp, path)
    return True


def _sysctl(path: str, value: str) -> None:
    file = Path("/proc/sys") / path
    try:
        if file.read_text().strip() != value:
            file.write_text(value + "\n")
    except FileNotFoundError:
        pass  # e.g. no IPv6 on this interface


def _tap_mac(guest_mac: str) -> str:
    # The host side of a tap must not share the guest's MAC (the bridge would take
    # frames to the guest as its own); fe: as libvirt does.
    return "fe" + guest_mac[2:]


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name)


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def _is_bridge(link: Any) -> bool:
    return _kind(link) == "bridge"


def _vxlan_matches(link: Any, vxlan: VxlanPlan) -> bool:
    """Whether an existing link is this tunnel (a changed VNI, address or port needs a new link)."""
    if _kind(link) != "vxlan":
        return False
    data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    local = data.get_attr("IFLA_VXLAN_LOCAL6" if ":" in vxlan.local else "IFLA_VXLAN_LOCAL")
    return (data.get_attr("IFLA_VXLAN_ID") == vxlan.vni and local == vxlan.local
            and data.get_attr("IFLA_VXLAN_PORT") == vxlan.port and not data.get_attr("IFLA_VXLAN_LEARNING"))


class _Links:
    """A snapshot of the links of one namespace, by name."""

    def __init__(self, ipr: Any, names: Iterable[str] | None = None) -> None:
        """Every link, or only those ``names`` that exist (a bind looks at its own links only)."""
        self.ipr = ipr
        self.by_name: dict[str, Any] = {}
        self.complete = False  # every link of the namespace is in by_name
        if names is None:
            self.refresh()
            return
        for name in names:
            try:
                self.load(name)
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    raise

    def refresh(self) -> None:
        self.by_name = {_attr(link, "IFLA_IFNAME"): link for link in self.ipr.get_links()}
        self.complete = True

    def load(self, name: str) -> None:
        """Re-read one link (after making it): a full dump per new tap would cost O(n^2)."""
        self.by_name[name] = self.ipr.link("get", ifname=name)[0]

    def index(self, name: str) -> int | None:
        link = self.by_name.get(name)
        return link["index"] if link is not None else None

    def alias(self, name: str) -> str:
        link = self.by_name.get(name)
        return (_attr(link, "IFLA_IFALIAS") or "") if link is not None else ""

    def ensure(self, name: str, *, mtu: int | None = None, master: int | None = None, mac: str | None = None,
               up: bool = True, ifalias: str | None = None) -> int:
        """Set what differs on an existing link; returns its index."""
        link = self.by_name[name]
        changes: dict[str, Any] = {}
        if mtu is not None and _attr(link, "IFLA_MTU") != mtu:
            changes["mtu"] = mtu
        if master is not None and _attr(link, "IFLA_MASTER") != master:
            changes["master"] = master
        if mac is not None and (_attr(link, "IFLA_ADDRESS") or "").lower() != mac.lower():
            changes["address"] = mac
        if ifalias is not None and _attr(link, "IFLA_IFALIAS") != ifalias:
            changes["ifalias"] = ifalias
        is_up = bool(link["flags"] & 1)
        if is_up != up:
            changes["state"] = "up" if up else "down"
        if changes:
            self.ipr.link("set", index=link["index"], **changes)
        return link["index"]


def _sync_addresses(ipr: Any, index: int, wanted: tuple[str, ...], remove_extra: bool = True) -> list[str]:
    """Addresses (with prefix) on one link: add the missing, drop the others (not IPv6 link-local).
    Returns the addresses added."""
    have = {}
    added = []
    for msg in ipr.get_addr(index=index):
        have[f"{_attr(msg, 'IFA_ADDRESS')}/{msg['prefixlen']}"] = msg
    for addr in wanted:
        if addr not in have:
            ip, prefix = addr.split("/")
            ipr.addr("add", index=index, address=ip, prefixlen=int(prefix))
            added.append(addr)
    if remove_extra:
        for addr, msg in have.items():
            if addr not in wanted and not addr.startswith("fe80:"):
                ip, prefix = addr.split("/")
                ipr.addr("del", index=index, address=ip, prefixlen=int(prefix))
    return added


def _announce(namespace: str, interface: str, mac: str, added: list[str]) -> None:
    """Gratuitous ARP for addresses just put on a link (a moved router or DHCP server, a new
    floating IP); a failure is logged, the link works regardless once its port sends a frame."""
    try:
        arp.announce(namespace, interface, mac, added)
    except OSError as exc:
        log.warning("network: announcing %s on %s in %s failed: %s", added, interface, namespace, exc)


def _hosts_changed_only(old: NetworkPlan, new: NetworkPlan) -> bool:
    """Whether two plans of a network differ in their DHCP hosts at most (dnsmasq re-reads those)."""
    if old.dhcp is None or new.dhcp is None:
        return old == new
    return dataclasses.replace(old, dhcp=dataclasses.replace(old.dhcp, hosts=new.dhcp.hosts)) == new


def _host_networks() -> HostNetworks:
    """Every address of the host namespace, and the subnets of the links cloudbox did not make
    (no ``cloudbox:`` ifalias, of any node: tests run several on one machine), loopback aside."""
    addresses: set[str] = set()
    subnets: set[str] = set()
    made: dict[int, bool] = {}
    with IPRoute() as ipr:

        def made_by_cloudbox(index: int) -> bool:
            # Only the links holding an address are looked at: a dump of every link (each
            # guest's tap among them) would cost ~0.2 ms a link, at every pass.
            if index not in made:
                try:
                    link = ipr.link("get", index=index)[0]
                except NetlinkError as exc:
                    if exc.code != errno.ENODEV:
                        raise
                    made[index] = True  # gone since the addresses were read: nothing of it to guard
                else:
                    made[index] = ((_attr(link, "IFLA_IFALIAS") or "").startswith("cloudbox:")
                                   or _attr(link, "IFLA_IFNAME") == "lo")
            return made[index]

        for msg in ipr.get_addr():
            address = _attr(msg, "IFA_LOCAL") or _attr(msg, "IFA_ADDRESS")  # LOCAL: ours on a point-to-point link
            if not address:
                continue
            addresses.add(address)
            interface = ipaddress.ip_interface(f"{address}/{msg['prefixlen']}")
            if not interface.ip.is_link_local and not made_by_cloudbox(msg["index"]):
                subnets.add(str(interface.network))
    return HostNetworks(tuple(sorted(addresses)), tuple(sorted(subnets)))


class LinuxNetworkDriver:
    def __init__(self, node_id: str, run_dir: Path = RUN_DIR) -> None:
        self.node_id = node_id
        self.mark = f"cloudbox:{node_id}:"
        self.run_dir = run_dir / node_id
        self._lock = trio.Lock()
        self._plan: HostPlan | None = None
        self._checked: HostPlan | None = None  # the plan whose rules established flows were last checked with
        self._namespaces_set_up: set[str] = set()  # sysctls done in this process's life

    # --- the contract ------------------------------------------------------------
    async def apply(self, plan: HostPlan) -> None:
        async with self._lock:
            await trio.to_thread.run_sync(self._apply, plan)

    async def ensure_port(self, port: PortPlan) -> NicSpec:
        async with self._lock:
            if self._plan is None or self._plan.port(port.id) != port:
                raise Conflict(f"port {port.id} is not in the network plan whose rules are in force")
            await trio.to_thread.run_sync(self._ensure_one_tap, port)
        return nic_spec(port)

    async def bind_ports(self, plan: HostPlan, port_ids: tuple[str, ...]) -> dict[str, NicSpec]:
        """Bind these ports with ``plan`` (read after they were placed here): the host's ruleset
        in one transaction (their chains, their groups' set elements), their networks' bridges
        and DHCP entries where those changed, and their taps; nothing else of the host is looked
        at (the data plane's next pass does the rest)."""
        ports = [plan.port(port_id) for port_id in port_ids]
        missing = [port_id for port_id, port in zip(port_ids, ports) if port is None]
        if missing:
            raise NotFound(f"ports {', '.join(missing)} are not in the network plan")
        async with self._lock:
            await trio.to_thread.run_sync(self._bind_ports, plan, ports)
        return {port.id: nic_spec(port) for port in ports if port is not None}

    async def remove_port(self, tap: str) -> None:
        async with self._lock:
            await trio.to_thread.run_sync(self._remove_tap, tap)

    async def teardown_all(self) -> None:
        await self.apply(HostPlan(node_id=self.node_id, host=""))
        shutil.rmtree(self.run_dir, ignore_errors=True)

    async def host_networks(self) -> HostNetworks:
        return await trio.to_thread.run_sync(_host_networks)

    # --- one pass ------------------------------------------------------------------
    def _apply(self, plan: HostPlan) -> None:
        started = time.monotonic()
        errors: list[str] = []

        def attempt(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
            try:
                fn(*args, **kwargs)
                return True
            except Exception as exc:  # noqa: BLE001 - one broken object must not stop the pass
                log.warning("network: %s failed: %s", what, exc, exc_info=True)
                errors.append(f"{what}: {exc}")
                return False

        self.run_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.run_dir, self.run_dir.parent, self.run_dir.parent.parent):
            directory.chmod(0o755)
        attempt("sysctls", self._host_sysctls, plan)
        with IPRoute() as ipr:
            links = _Links(ipr)
            wanted_taps = {p.tap for p in plan.ports}
            for name in list(links.by_name):
                if self._is_ours(links.alias(name), "tap") and name not in wanted_taps:
                    attempt(f"remove tap {name}", ipr.link, "del", index=links.index(name))
                    links.by_name.pop(name, None)
            self._set_rules(self._plan, plan, attempt)
            if plan.external is not None:
                attempt(f"external bridge {plan.external.bridge}", self._ensure_external, links, plan.external, plan)
            for network in plan.networks:
                if not network.external:
                    if attempt(f"bridge {network.bridge}", self._ensure_bridge, links, network) and network.vxlan:
                        attempt(f"VXLAN {network.vxlan.name}", self._ensure_vxlan, links, network, network.vxlan)
            for port in plan.ports:
                attempt(f"tap {port.tap}", self._ensure_tap, links, port)
            existing_ns = set(namespaces.listnetns())
            for network in plan.networks:
                if network.dhcp is not None:
                    attempt(f"DHCP of {network.id}", self._ensure_dhcp, links, network, network.dhcp, existing_ns)
            for router in plan.routers:
                attempt(f"router {router.id}", self._ensure_router, links, router, existing_ns)
            attempt("orphans", self._remove_orphans, links, plan)
        log.debug("network pass applied", extra={"ms": round((time.monotonic() - started) * 1000, 1)})
        if errors:
            raise NetworkDriverError("; ".join(errors))

    def _bind_ports(self, plan: HostPlan, ports: list[PortPlan]) -> None:
        marks = [("", time.perf_counter())]  # (step, when it ended): logged as each step's ms

        def step(name: str) -> None:
            marks.append((name, time.perf_counter()))

        before = self._plan
        # Flows are not checked here: adding ports' rules cuts none, and what else changed in the
        # rules since the last pass is cut by the pass those changes woke (it checks against
        # ``_checked``, the last plan flows were checked with).
        self._set_rules(before, plan, lambda what, fn, *args: fn(*args), check_flows=False)
        step("rules")
        with IPRoute() as ipr:
            links = _Links(ipr, {name for port in ports for name in (port.tap, port.bridge)})
            step("links")
            for network_id in sorted({port.network_id for port in ports}):
                network = next((n for n in plan.networks if n.id == network_id), None)
                known = next((n for n in before.networks if n.id == network_id), None) if before else None
                if network is None:
                    continue
                if known is not None and network.bridge in links.by_name and _hosts_changed_only(known, network):
                    if network.dhcp is not None and known.dhcp != network.dhcp:
                        self._update_dhcp_hosts(network, network.dhcp)
                    continue
                if not links.complete:
                    links.refresh()  # the network's bridge, tunnel or DHCP needs work: see every link
                if not network.external:
                    self._ensure_bridge(links, network)
                    if network.vxlan:
                        self._ensure_vxlan(links, network, network.vxlan)
                if network.dhcp is not None:
                    self._ensure_dhcp(links, network, network.dhcp, set(namespaces.listnetns()))
            step("networks")
            for port in ports:
                self._ensure_tap(links, port)
            step("taps")
        log.info("ports bound on the host", extra={"ports": len(ports), "steps_ms": {
            name: round((end - begin) * 1000, 1) for (_, begin), (name, end) in zip(marks, marks[1:])}})

    def _set_rules(self, before: HostPlan | None, plan: HostPlan, attempt: Callable[..., Any],
                   check_flows: bool = True) -> None:
        """The host's nft tables of ``plan`` (one transaction); established flows its rules no longer
        allow are cut (with ``check_flows``)."""
        if attempt("host nft tables", _run, ["nft", "-f", "-"], render.render_host(plan)) is False:
            return
        # ensure_port hands out taps of this plan only: their rules are in force.
        self._plan = plan
        if not check_flows:
            return
        recheck = flows.ports_to_recheck(self._checked if self._checked is not None else before, plan)
        if not recheck or attempt("conntrack entries", conntrack.cut, plan, recheck):
            self._checked = plan

    def _is_ours(self, ifalias: str, kind: str | None = None) -> bool:
        if not ifalias.startswith(self.mark):
            return False
        return kind is None or ifalias[len(self.mark):].split(":", 1)[0] == kind

    def _host_sysctls(self, plan: HostPlan) -> None:
        if not Path("/proc/sys/net/bridge").exists():
            subprocess.run(["modprobe", "br_netfilter"], capture_output=True, timeout=30)
        # Bridged IPv4/IPv6 must pass the inet hooks: the security groups live there.
        _sysctl("net/bridge/bridge-nf-call-iptables", "1")
        _sysctl("net/bridge/bridge-nf-call-ip6tables", "1")
        if plan.external is not None and plan.external.masquerade_cidrs:
            _sysctl("net/ipv4/ip_forward", "1")

    # --- bridges and taps ----------------------------------------------------------
    def _make_bridge(self, links: _Links, name: str, kind: str, object_id: str) -> None:
        if name not in links.by_name:
            links.ipr.link("add", ifname=name, kind="bridge")
            links.ipr.link("set", ifname=name, ifalias=alias(self.node_id, kind, object_id))
            links.load(name)
            log.info("bridge created", extra={"bridge": name})

    def _ensure_bridge(self, links: _Links, network: NetworkPlan) -> None:
        self._make_bridge(links, network.bridge, "bridge", network.id)
        # No host address on a tenant bridge, not even IPv6 link-local: tenants cannot reach the host.
        _sysctl(f"net/ipv6/conf/{network.bridge}/disable_ipv6", "1")
        links.ensure(network.bridge, mtu=network.mtu)

    def _ensure_vxlan(self, links: _Links, network: NetworkPlan, vxlan: VxlanPlan) -> None:
        """The network's tunnel to the other nodes: a port of its bridge, with a static FDB."""
        if vxlan.name in links.by_name and not _vxlan_matches(links.by_name[vxlan.name], vxlan):
            if not self._is_ours(links.alias(vxlan.name)):
                raise NetworkDriverError(f"link {vxlan.name} exists and is not cloudbox's")
            links.ipr.link("del", index=links.index(vxlan.name))
            del links.by_name[vxlan.name]
        if vxlan.name not in links.by_name:
            local = {"vxlan_local6" if ":" in vxlan.local else "vxlan_local": vxlan.local}
            links.ipr.link("add", ifname=vxlan.name, kind="vxlan", vxlan_id=vxlan.vni, vxlan_port=vxlan.port,
                           vxlan_learning=0, mtu=network.mtu, **local)
            links.load(vxlan.name)
            log.info("vxlan link created", extra={"link": vxlan.name, "vni": vxlan.vni})
        _sysctl(f"net/ipv6/conf/{vxlan.name}/disable_ipv6", "1")
        index = links.ensure(vxlan.name, mtu=network.mtu, master=links.index(network.bridge),
                             ifalias=alias(self.node_id, "vxlan", network.id))
        wanted = {(FLOOD_MAC, dst) for dst in vxlan.flood} | {(mac.lower(), dst) for mac, dst in vxlan.macs}
        have = set()
        for entry in links.ipr.fdb("dump", ifindex=index):
            dst = entry.get_attr("NDA_DST")
            if entry["ifindex"] == index and dst:  # the tunnel's own entries (the bridge's have no dst)
                have.add(((entry.get_attr("NDA_LLADDR") or "").lower(), dst))
        for mac, dst in sorted(have - wanted):
            links.ipr.fdb("del", ifindex=index, lladdr=mac, dst=dst)
        for mac, dst in sorted(wanted - have):
            links.ipr.fdb("append", ifindex=index, lladdr=mac, dst=dst)  # append: several dsts per all-zero MAC

    def _ensure_external(self, links: _Links, ext: ExternalPlan, plan: HostPlan) -> None:
        self._make_bridge(links, ext.bridge, "external", ext.bridge)
        mtu = min((n.mtu for n in plan.networks if n.external), default=None)
        index = links.ensure(ext.bridge, mtu=mtu)
        if ext.interface:
            if ext.interface not in links.by_name:
                raise NetworkDriverError(f"external interface {ext.interface} does not exist")
            links.ensure(ext.interface, master=index)
        # Addresses we did not put there stay, unless the bridge is ours.
        _sync_addresses(links.ipr, index, ext.host_addresses, remove_extra=self._is_ours(links.alias(ext.bridge)))

    def _ensure_tap(self, links: _Links, port: PortPlan) -> None:
        """Create (or adopt: a tap made earlier, or a test's veth named like it) and plug a port's tap."""
        if port.tap not in links.by_name:
            links.ipr.link("add", ifname=port.tap, kind="tuntap", mode="tap")
            links.load(port.tap)
            log.info("tap created", extra={"tap": port.tap, "port": port.id})
        bridge = links.index(port.bridge)
        if bridge is None:
            raise NetworkDriverError(f"bridge {port.bridge} of port {port.id} is missing")
        _sysctl(f"net/ipv6/conf/{port.tap}/disable_ipv6", "1")
        links.ensure(port.tap, mtu=port.mtu, master=bridge, mac=_tap_mac(port.mac), up=port.admin_state_up,
                     ifalias=alias(self.node_id, "tap", port.id))

    def _ensure_one_tap(self, port: PortPlan) -> None:
        with IPRoute() as ipr:
            self._ensure_tap(_Links(ipr), port)

    def _remove_tap(self, tap: str) -> None:
        with IPRoute() as ipr:
            links = _Links(ipr, {tap})  # that link alone: a dump of every link costs ~0.2 ms a link
            if tap in links.by_name and self._is_ours(links.alias(tap), "tap"):
                ipr.link("del", index=links.index(tap))
                log.info("tap removed", extra={"tap": tap})

    # --- namespaces and veths ------------------------------------------------------
    def _ensure_namespace(self, name: str, existing: set[str], kind: str, object_id: str, revert: Revert) -> None:
        if name not in existing:
            namespaces.create(name)
            revert.add(lambda: netns.remove(name))
            existing.add(name)
            log.info("namespace created", extra={"namespace": name})
        with namespaces.iproute(name) as ns:
            # The namespace's mark: orphan removal deletes only namespaces whose lo carries it.
            _Links(ns).ensure("lo", ifalias=alias(self.node_id, kind, object_id))

    def _ensure_veth(self, links: _Links, ns: Any, namespace: str, host_end: str, ns_end: str, *,
                     bridge: str, mac: str, mtu: int, kind: str, object_id: str, revert: Revert) -> int:
        """A veth with ``ns_end`` in the namespace and ``host_end`` on ``bridge``; returns the ns end's index."""
        ns_links = _Links(ns)
        if host_end in links.by_name and ns_end not in ns_links.by_name:
            links.ipr.link("del", index=links.index(host_end))  # half a pair: make it again
            del links.by_name[host_end]
        if ns_end in ns_links.by_name and host_end not in links.by_name:
            ns.link("del", index=ns_links.index(ns_end))
            del ns_links.by_name[ns_end]
        if host_end not in links.by_name:
            # The peer is made directly in the namespace, so names never meet on the host.
            links.ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": ns_end, "net_ns_fd": namespace})
            revert.add(lambda: links.ipr.link("del", ifname=host_end))
            links.load(host_end)
            ns_links.load(ns_end)
        bridge_index = links.index(bridge)
        if bridge_index is None:
            raise NetworkDriverError(f"bridge {bridge} is missing")
        _sysctl(f"net/ipv6/conf/{host_end}/disable_ipv6", "1")
        links.ensure(host_end, mtu=mtu, master=bridge_index, ifalias=alias(self.node_id, kind, object_id))
        return ns_links.ensure(ns_end, mtu=mtu, mac=mac)

    # --- DHCP --------------------------------------------------------------------------
    def _ensure_dhcp(self, links: _Links, network: NetworkPlan, dhcp: DhcpPlan, existing: set[str]) -> None:
        with Revert() as revert:
            self._ensure_namespace(dhcp.namespace, existing, "dhcp", network.id, revert)
            with namespaces.iproute(dhcp.namespace) as ns:
                index = self._ensure_veth(links, ns, dhcp.namespace, dhcp.host_end, dhcp.interface,
                                          bridge=network.bridge, mac=dhcp.mac, mtu=network.mtu,
                                          kind="dhcp", object_id=network.id, revert=revert)
                added = _sync_addresses(ns, index, dhcp.addresses)
            revert.success()
        _announce(dhcp.namespace, dhcp.interface, dhcp.mac, added)
        self._ensure_dnsmasq(network, dhcp)

    def _dhcp_dir(self, network_id: str) -> Path:
        return self.run_dir / "dhcp" / network_id

    def _dnsmasq_pids(self, directory: Path) -> list[int]:
        """Live dnsmasq processes of one DHCP directory, found by command line (a pid file may lag or lie)."""
        wanted = f"dnsmasq\0--conf-file={directory / 'dnsmasq.conf'}\0".encode()
        pids = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        if f.read() == wanted:
                            pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def _stop_dnsmasq(self, directory: Path) -> None:
        pids = self._dnsmasq_pids(directory)
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            time.sleep(0.01)
            pids = self._dnsmasq_pids(directory)  # a zombie's cmdline is empty: it counts as gone
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    def _ensure_dnsmasq(self, network: NetworkPlan, dhcp: DhcpPlan) -> None:
        directory = self._dhcp_dir(network.id)
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        directory.parent.chmod(0o755)
        config_changed = _write_if_changed(directory / "dnsmasq.conf",
                                           render.dnsmasq_config(network.id, dhcp, network.mtu, str(directory)))
        hosts_changed = _write_if_changed(directory / "hosts", render.dnsmasq_hosts(dhcp))
        hosts_changed |= _write_if_changed(directory / "opts", render.dnsmasq_opts(dhcp))
        pids = self._dnsmasq_pids(directory)
        if len(pids) > 1 or (pids and config_changed):
            self._stop_dnsmasq(directory)
            pids = []
        if not pids:
            # dnsmasq forks into the background, staying in the namespace; a cloudbox restart leaves it be.
            _run(["ip", "netns", "exec", dhcp.namespace, "dnsmasq", f"--conf-file={directory / 'dnsmasq.conf'}"])
            log.info("dnsmasq started", extra={"network": network.id})
        elif hosts_changed:
            os.kill(pids[0], signal.SIGHUP)  # re-reads the hosts and options files
        self._release_stale_leases(directory, dhcp)

    def _update_dhcp_hosts(self, network: NetworkPlan, dhcp: DhcpPlan) -> None:
        """A running dnsmasq re-reads its hosts and options files (a bind's new entries); the
        process found through the pid it wrote, checked against its command line."""
        directory = self._dhcp_dir(network.id)
        changed = _write_if_changed(directory / "hosts", render.dnsmasq_hosts(dhcp))
        changed |= _write_if_changed(directory / "opts", render.dnsmasq_opts(dhcp))
        if not changed:
            return
        wanted = f"dnsmasq\0--conf-file={directory / 'dnsmasq.conf'}\0".encode()
        try:
            pid = int((directory / "dnsmasq.pid").read_text().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                running = f.read() == wanted
        except (OSError, ValueError):
            running = False
        if running:
            os.kill(pid, signal.SIGHUP)
        else:
            self._ensure_dnsmasq(network, dhcp)  # not running (or no pid file): the full way

    def _release_stale_leases(self, directory: Path, dhcp: DhcpPlan) -> None:
        """Free leases no port holds: dnsmasq will not give an address still leased to an old MAC."""
        wanted = {(h.mac.lower(), h.ip) for h in dhcp.hosts}
        try:
            lines = (directory / "leases").read_text().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            fields = line.split()
            if len(fields) >= 3 and (fields[1].lower(), fields[2]) not in wanted:
                subprocess.run(["ip", "netns", "exec", dhcp.namespace, "dhcp_release", dhcp.interface,
                                fields[2], fields[1]], capture_output=True, timeout=10)
                log.info("stale DHCP lease released", extra={"ip": fields[2], "mac": fields[1]})

    # --- routers -----------------------------------------------------------------------
    def _ensure_router(self, links: _Links, router: RouterPlan, existing: set[str]) -> None:
        legs: list[tuple[RouterPort, str]] = [(leg, "router-interface") for leg in router.interfaces]
        if router.gateway is not None:
            legs.append((router.gateway, "router-gateway"))
        announce: list[tuple[RouterPort, list[str]]] = []
        with Revert() as revert:
            self._ensure_namespace(router.namespace, existing, "router", router.id, revert)
            if router.namespace not in self._namespaces_set_up:
                _run(["ip", "netns", "exec", router.namespace, "sysctl", "-qw",
                      "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
                self._namespaces_set_up.add(router.namespace)
            with namespaces.iproute(router.namespace) as ns:
                wanted = {leg.ns_name for leg, _ in legs}
                for name, link in _Links(ns).by_name.items():
                    if name.startswith(("qr-", "qg-")) and name not in wanted:
                        ns.link("del", index=link["index"])  # takes its host end along
                for leg, kind in legs:
                    index = self._ensure_veth(links, ns, router.namespace, leg.host_end, leg.ns_name,
                                              bridge=leg.bridge, mac=leg.mac, mtu=leg.mtu,
                                              kind=kind, object_id=leg.port_id, revert=revert)
                    addresses = leg.addresses
                    if leg is router.gateway:  # floating IPs answer ARP on the gateway leg
                        addresses += tuple(f"{f.floating}/32" for f in router.floating_ips)
                    announce.append((leg, _sync_addresses(ns, index, addresses)))
                self._sync_routes(ns, router)
            revert.success()
        _run(["ip", "netns", "exec", router.namespace, "nft", "-f", "-"], render.render_router(router))
        for leg, added in announce:  # once the NAT rules of its floating IPs are in force
            _announce(router.namespace, leg.ns_name, leg.mac, added)

    def _sync_routes(self, ns: Any, router: RouterPlan) -> None:
        """The default route via the external gateway and the router's static routes; nothing else
        static.  They carry metric ROUTE_METRIC, so a route whose destination is a connected subnet
        (Neutron takes one) stands beside the kernel's connected route instead of replacing it."""
        wanted: dict[str, str] = {}
        if router.gateway is not None and router.default_gateway:
            wanted["0.0.0.0/0"] = router.default_gateway
        for destination, nexthop in router.routes:
            wanted[str(ipaddress.ip_network(destination, strict=False))] = nexthop
        have: dict[str, str] = {}
        for family in (2, 10):
            for route in ns.get_routes(family=family, table=254):
                if route["proto"] != RTPROT_STATIC:
                    continue
                dst = f"{_attr(route, 'RTA_DST') or ('0.0.0.0' if family == 2 else '::')}/{route['dst_len']}"
                gateway, metric = _attr(route, "RTA_GATEWAY") or "", _attr(route, "RTA_PRIORITY") or 0
                if dst in have or wanted.get(dst) != gateway or metric != ROUTE_METRIC:
                    ns.route("del", dst=dst, family=family, proto=RTPROT_STATIC, table=254, priority=metric)
                else:
                    have[dst] = gateway
        for dst, gateway in wanted.items():
            if dst not in have:
                ns.route("replace", dst=dst, gateway=gateway, proto=RTPROT_STATIC, table=254, priority=ROUTE_METRIC)

    # --- orphans -------------------------------------------------------------------------
    def _remove_orphans(self, links: _Links, plan: HostPlan) -> None:
        wanted_namespaces = {n.dhcp.namespace for n in plan.networks if n.dhcp is not None}
        wanted_namespaces |= {r.namespace for r in plan.routers}
        for name in namespaces.listnetns():
            if name.startswith(NAMESPACE_PREFIXES) and name not in wanted_namespaces:
                self._remove_namespace(name)
        for name in namespaces.remove_broken(NAMESPACE_PREFIXES):
            log.info("a broken namespace file removed", extra={"namespace": name})
        wanted_dhcp = {n.id for n in plan.networks if n.dhcp is not None}
        dhcp_root = self.run_dir / "dhcp"
        if dhcp_root.exists():
            for directory in dhcp_root.iterdir():
                if directory.name not in wanted_dhcp:
                    self._stop_dnsmasq(directory)
                    shutil.rmtree(directory, ignore_errors=True)
        wanted_links = {n.bridge for n in plan.networks} | {p.tap for p in plan.ports}
        wanted_links |= {n.vxlan.name for n in plan.networks if n.vxlan is not None}
        wanted_links |= {n.dhcp.host_end for n in plan.networks if n.dhcp is not None}
        wanted_links |= {leg.host_end for r in plan.routers for leg in (*r.interfaces, *([r.gateway] if r.gateway else []))}
        if plan.external is not None:
            wanted_links.add(plan.external.bridge)
        links.refresh()
        # Ports first, bridges last: a bridge goes once nothing of ours hangs on it.
        for name in sorted(links.by_name, key=lambda n: _is_bridge(links.by_name[n])):
            if name not in wanted_links and self._is_ours(links.alias(name)):
                try:
                    links.ipr.link("del", index=links.index(name))
                    log.info("link removed", extra={"link": name})
                except Exception as exc:  # noqa: BLE001 - gone already (a veth's peer went with its ns)
                    log.debug("link %s: %s", name, exc)
        self._namespaces_set_up &= wanted_namespaces

    def _remove_namespace(self, name: str) -> None:
        """Remove one of our namespaces: its dnsmasq, its veths (synchronously, unlike the netns), itself."""
        try:
            with namespaces.iproute(name) as ns:
                lo = ns.link_lookup(ifname="lo")
                mark = _attr(ns.get_links(lo[0])[0], "IFLA_IFALIAS") or "" if lo else ""
                if not self._is_ours(mark):
                    return
                if name.startswith("qdhcp-"):
                    self._stop_dnsmasq(self._dhcp_dir(name[len("qdhcp-"):]))
                for link in ns.get_links():
                    if _attr(link, "IFLA_IFNAME") != "lo":
                        ns.link("del", index=link["index"])
        except FileNotFoundError:
            return
        netns.remove(name)
        log.info("namespace removed", extra={"namespace": name})


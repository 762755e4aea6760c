"""The host's conntrack table over netlink (pyroute2): read its entries as ``flows.Flow`` and
delete the ones a plan no longer allows.

Blocking; the driver calls it from its worker thread.  Why netlink and not ``conntrack -D``
(conntrack-tools) or an nft flush: the verdict needs every entry's zone and original tuple
(``flows.to_cut`` decides per entry), a delete must take exactly one entry (it names the entry's
tuple, zone and id: a delete without a tuple would flush the whole table), and pyroute2 is
already how the driver talks to the kernel, so no new package is needed.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Iterable

from cloudbox.network.flows import Flow, to_cut
from cloudbox.network.hostplan import HostPlan
from cloudbox.network.netlink import NFCTAttrTuple, NFCTSocket, NetlinkError

log = logging.getLogger("cloudbox.network.conntrack")


def cut(plan: HostPlan, ports: set[str]) -> list[Flow]:
    """Delete the tracked flows of ``ports`` that ``plan``'s rules no longer allow; returns them."""
    dump = NFCTSocket(nfgen_family=socket.AF_UNSPEC)  # both families in one dump
    try:
        doomed = to_cut(plan, entries(dump), ports)
    finally:
        dump.close()
    for version in (4, 6):  # a delete names its family (AF_UNSPEC is refused)
        mine = [flow for flow in doomed if flow.version == version]
        if mine:
            ct = NFCTSocket(nfgen_family=socket.AF_INET if version == 4 else socket.AF_INET6)
            try:
                for flow in mine:
                    _delete(ct, flow)
            finally:
                ct.close()
    if doomed:
        log.info("conntrack entries no rule allows any more removed", extra={"flows": len(doomed)})
    return doomed


def entries(ct: Any) -> Iterable[Flow]:
    for msg in ct.dump():
        flow = _flow(msg)
        if flow is not None:
            yield flow


def _flow(msg: Any) -> Flow | None:
    family = msg["nfgen_family"]
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    orig = msg.get_attr("CTA_TUPLE_ORIG")
    ip, proto = orig.get_attr("CTA_TUPLE_IP"), orig.get_attr("CTA_TUPLE_PROTO")
    if ip is None or proto is None:
        return None
    v = "V4" if family == socket.AF_INET else "V6"
    icmp = "ICMP" if family == socket.AF_INET else "ICMPV6"
    return Flow(
        zone=msg.get_attr("CTA_ZONE") or 0, version=4 if family == socket.AF_INET else 6,
        protocol=proto.get_attr("CTA_PROTO_NUM"), source=ip.get_attr(f"CTA_IP_{v}_SRC"),
        destination=ip.get_attr(f"CTA_IP_{v}_DST"), sport=proto.get_attr("CTA_PROTO_SRC_PORT"),
        dport=proto.get_attr("CTA_PROTO_DST_PORT"), icmp_type=proto.get_attr(f"CTA_PROTO_{icmp}_TYPE"),
        icmp_code=proto.get_attr(f"CTA_PROTO_{icmp}_CODE"), icmp_id=proto.get_attr(f"CTA_PROTO_{icmp}_ID"),
        id=msg.get_attr("CTA_ID"),
    )


def _delete(ct: Any, flow: Flow) -> None:
    tuple_orig = NFCTAttrTuple(
        family=socket.AF_INET if flow.version == 4 else socket.AF_INET6, saddr=flow.source, daddr=flow.destination,
        proto=flow.protocol, sport=flow.sport, dport=flow.dport, icmp_id=flow.icmp_id, icmp_type=flow.icmp_type,
        icmp_code=flow.icmp_code)
    try:
        ct.entry("del", tuple_orig=tuple_orig, zone=flow.zone or None, id=flow.id)
    except NetlinkError as exc:  # gone already (it ended, or timed out) is fine
        if exc.code != 2:
            raise

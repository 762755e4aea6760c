"""Types that compute and network share: the NIC the network side hands compute for a guest.

Network makes the tap (plugged into the right bridge, filtered) and describes it with a
``NicSpec``; compute attaches it to the guest as it is.  Neither service owns this module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NicSpec:
    """One guest NIC: a host tap device made by the network side, attached as-is."""

    mac: str
    tap: str
    mtu: int = 1500

"""Per-vif traffic counters from the guest's point of view, and rates between two readings.

Pure. The kernel counts a link from the host's side (``LinkStats``). For a tun/tap that is
the mirror of the guest: what the host *received* on ``vnet3`` is what the guest *sent*.
A macvtap is different: its netdev stands in for the guest on the lower device, so its rx
is already what the guest receives. libvirt's ``domifstat`` and virt-top report the guest's
side too, so vifscope's exporter and ``top`` do the same (the ``status --json`` ``observed.stats``
stay the raw host view).
"""

from __future__ import annotations

from dataclasses import dataclass

from vifscope.model import LinkStats, ObservedLink

# IFLA_INFO_KIND -> whether the host counters are the guest's mirrored (rx <-> tx).
# Anything QEMU plugs that is not a macvtap is a tap (tun kind, or veth/other for
# type='ethernet' odd setups): mirrored is the right default.
HOST_VIEW_MIRRORED: dict[str | None, bool] = {
    "tun": True,
    "macvtap": False,
    "macvlan": False,
}


@dataclass(frozen=True)
class GuestCounters:
    """IFLA_STATS64 of a vif's host link, seen from the guest: rx = what the guest received."""

    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def guest_counters(link: ObservedLink | None) -> GuestCounters | None:
    """The guest's view of ``link.stats``; None when the link or its counters are absent."""
    if link is None or link.stats is None:
        return None
    s: LinkStats = link.stats
    if HOST_VIEW_MIRRORED.get(link.kind, True):
        return GuestCounters(
            s.tx_bytes, s.tx_packets, s.tx_errors, s.tx_dropped, s.rx_bytes, s.rx_packets, s.rx_errors, s.rx_dropped
        )
    return GuestCounters(
        s.rx_bytes, s.rx_packets, s.rx_errors, s.rx_dropped, s.tx_bytes, s.tx_packets, s.tx_errors, s.tx_dropped
    )


@dataclass(frozen=True)
class GuestRates:
    """Per-second rates between two readings of the same link (guest's view)."""

    rx_bps: float  # bits per second
    tx_bps: float
    rx_pps: float
    tx_pps: float
    drops_ps: float  # rx + tx dropped per second
    errors_ps: float  # rx + tx errors per second


def rates(before: GuestCounters, after: GuestCounters, seconds: float) -> GuestRates | None:
    """Rates over ``seconds``; None when a counter went backwards (the link was recreated)."""
    if seconds <= 0:
        return None
    delta = {f: getattr(after, f) - getattr(before, f) for f in FIELDS}
    if any(v < 0 for v in delta.values()):
        return None
    return GuestRates(
        rx_bps=delta["rx_bytes"] * 8 / seconds,
        tx_bps=delta["tx_bytes"] * 8 / seconds,
        rx_pps=delta["rx_packets"] / seconds,
        tx_pps=delta["tx_packets"] / seconds,
        drops_ps=(delta["rx_dropped"] + delta["tx_dropped"]) / seconds,
        errors_ps=(delta["rx_errors"] + delta["tx_errors"]) / seconds,
    )

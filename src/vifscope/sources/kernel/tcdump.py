"""Qdiscs and the neighbour table from rtnetlink dumps (what ``tc -j qdisc show`` and
``ip -j neigh show`` list), for doctor's facts.

Why not the commands: each is a process (~25 ms here) and, for qdiscs, 5,000 taps' worth of
JSON to print and decode. The dumps carry the same messages the commands read
(linux/rtnetlink.h: tcmsg + TCA_KIND; ndmsg + NDA_DST / NDA_LLADDR). A test holds each reader
to the command's answer on real qdiscs and neighbours.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from vifscope.model import NeighEntry, Qdisc
from vifscope.sources.cmd import CommandError
from vifscope.sources.kernel.rtnl import (
    ADDR_LEN,
    NDMSG,
    RTM_GETNEIGH,
    RTM_GETQDISC,
    RTM_NEWNEIGH,
    RTM_NEWQDISC,
    TCMSG,
    WHAT,
    consistent_dump,
    cstr,
    iter_bodies,
    link_namer,
    pick,
)

TCA_KIND = 1
NDA_DST, NDA_LLADDR = 1, 2
TC_H_ROOT = 0xFFFFFFFF
INGRESS_KINDS = frozenset({"ingress", "clsact"})
# NUD_* bits (linux/neighbour.h) in the order iproute2 prints them.
NUD_STATES = (
    (0x01, "INCOMPLETE"),
    (0x02, "REACHABLE"),
    (0x04, "STALE"),
    (0x08, "DELAY"),
    (0x10, "PROBE"),
    (0x20, "FAILED"),
    (0x40, "NOARP"),
    (0x80, "PERMANENT"),
)
# What ``ip neigh show`` lists by default: any state but NOARP-only (the multicast and
# broadcast entries) and NONE, plus entries a controller learnt (iproute2's print_neigh).
SHOWN_STATES = 0xFF & ~0x40
NTF_PROXY, NTF_EXT_LEARNED = 0x08, 0x10
_KIND = frozenset({TCA_KIND})
_NEIGH = frozenset({NDA_DST, NDA_LLADDR})
_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def parse_qdisc_dump(datagrams: list[bytes], name_of: Callable[[int], str]) -> tuple[Qdisc, ...]:
    """Every qdisc of every link; ``handle`` spelled as tc prints a qdisc's ("8001:")."""
    out: list[Qdisc] = []
    for buf, (_family, index, handle, parent, _info), start, end in iter_bodies(datagrams, RTM_NEWQDISC, TCMSG):
        span = pick(buf, start, end, _KIND).get(TCA_KIND)
        if span is None:
            continue
        kind = cstr(buf[span[0] : span[1]])
        out.append(Qdisc(name_of(index), kind, f"{handle >> 16:x}:", parent == TC_H_ROOT, kind in INGRESS_KINDS))
    return tuple(out)


def _state(nud: int) -> str:
    return next((name for bit, name in NUD_STATES if nud & bit), "NONE")


def parse_neigh_dump(datagrams: list[bytes], name_of: Callable[[int], str]) -> tuple[NeighEntry, ...]:
    """IPv4 / IPv6 neighbours with their link-layer address, as ``ip neigh show`` lists them."""
    out: list[NeighEntry] = []
    for buf, (family, index, state, flags, _type), start, end in iter_bodies(datagrams, RTM_NEWNEIGH, NDMSG):
        if not (state & SHOWN_STATES or flags & (NTF_PROXY | NTF_EXT_LEARNED)):
            continue
        spans = pick(buf, start, end, _NEIGH) if family in _FAMILIES else {}
        if NDA_DST not in spans:
            continue
        dst = spans[NDA_DST]
        if dst[1] - dst[0] != ADDR_LEN[family]:
            continue  # malformed: not an address of its family
        ll = spans.get(NDA_LLADDR)
        mac = buf[ll[0] : ll[1]].hex(":") if ll and ll[1] > ll[0] else None
        out.append(NeighEntry(name_of(index), socket.inet_ntop(family, buf[dst[0] : dst[1]]), mac, _state(state)))
    return tuple(out)


def fact_dump(mtype: int, timeout: float) -> list[bytes]:
    """A consistent dump for doctor's fact readers, which report failure as CommandError."""
    try:
        return consistent_dump(mtype, timeout)
    except OSError as exc:  # RtnlError included
        raise CommandError(f"rtnetlink {WHAT[mtype]} dump failed: {exc}") from exc


def read_qdiscs(timeout: float = 10.0) -> tuple[Qdisc, ...]:
    """Raises CommandError (like the other fact readers) when the kernel cannot be asked."""
    return parse_qdisc_dump(fact_dump(RTM_GETQDISC, timeout), link_namer())


def read_neighbors(timeout: float = 10.0) -> tuple[NeighEntry, ...]:
    """Raises CommandError (like the other fact readers) when the kernel cannot be asked."""
    return parse_neigh_dump(fact_dump(RTM_GETNEIGH, timeout), link_namer())

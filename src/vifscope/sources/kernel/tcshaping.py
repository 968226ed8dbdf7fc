"""What tc enforces, over rtnetlink: root htb qdiscs and their classes (a guest's inbound cap
on a tap, as libvirt's ``<bandwidth><inbound>`` builds it) and police actions on ingress
filters (its ``<outbound>`` cap). What ``tc qdisc/class/filter show`` print, without a process
per device.

The kernel dumps qdiscs of every link at once but classes and filters only per device
(net/sched: tc_dump_tclass / tc_dump_tfilter need ``tcm_ifindex``), so: one qdisc dump, then,
on the same socket, a class dump per device with a root htb and a filter dump per device with
an ingress or clsact qdisc. A host with no shaping costs the one qdisc dump.

Layouts (linux/pkt_sched.h, linux/pkt_cls.h, linux/tc_act/tc_police.h): ``struct tc_htb_opt``
(rate and ceil ``tc_ratespec``s, buffer and cbuffer in scheduler ticks), ``struct tc_htb_glob``
(``defcls``), ``struct tc_police`` (burst in ticks, mtu, rate). A tick is 64 ns
(PSCHED_SHIFT 6: /proc/net/psched's second field); bursts are converted back to bytes as tc
prints them: rate x time.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vifscope.model import Qdisc
from vifscope.model.qos import HtbClass, HtbRoot, PoliceFilter, Redirect, RootQdisc, TcShaping
from vifscope.sources.cmd import CommandError
from vifscope.sources.kernel.rtnl import (
    RTM_GETQDISC,
    RTM_GETTCLASS,
    RTM_GETTFILTER,
    RTM_NEWQDISC,
    RTM_NEWTCLASS,
    RTM_NEWTFILTER,
    TCMSG,
    WHAT,
    consistent_dump,
    cstr,
    dump_each,
    iter_attrs,
    iter_bodies,
    link_namer,
)
from vifscope.sources.kernel.tcdump import INGRESS_KINDS, TC_H_ROOT

TCA_KIND, TCA_OPTIONS = 1, 2
TCA_HTB_PARMS, TCA_HTB_INIT, TCA_HTB_RATE64, TCA_HTB_CEIL64 = 1, 2, 6, 7
TCA_U32_POLICE, TCA_U32_ACT = 6, 7
TCA_MATCHALL_ACT = 2
TCA_ACT_KIND, TCA_ACT_OPTIONS = 1, 2
TCA_POLICE_TBF, TCA_POLICE_RATE64 = 1, 8
HTB_OPT = struct.Struct("=8xI8xIII")  # rate.rate, ceil.rate, buffer, cbuffer (struct tc_htb_opt, 44 bytes)
HTB_OPT_SIZE = 44
HTB_GLOB = struct.Struct("=III")  # version, rate2quantum, defcls (struct tc_htb_glob)
POLICE = struct.Struct("=IiIII8xI")  # index, action, limit, burst, mtu, rate.rate (struct tc_police)
POLICE_SIZE = 56
TCA_MIRRED_PARMS = 2
MIRRED = struct.Struct("=IIiiiiI")  # struct tc_mirred: tc_gen (index, capab, action, refcnt, bindcnt), eaction, ifindex
TCA_EGRESS_REDIR = 1
TICKS_PER_SECOND = 15_625_000  # 1 s / 64 ns
# ffff:fff2, what `tc filter show dev X ingress` asks for (an ingress qdisc's filters, or a clsact's
# ingress side; u32 shares its hash tables per qdisc, so a clsact's dump may list egress u32
# filters too: libvirt uses an ingress qdisc, where there is one side only).
TC_H_INGRESS_FILTERS = 0xFFFFFFF2
# How a police action treats packets over the rate (TC_ACT_*), as tc names it.
ACTIONS = {-1: "continue", 0: "pass", 1: "reclassify", 2: "drop", 3: "pipe"}
# Where each classifier keeps a legacy police attribute / its action list.
_POLICE_ATTRS: dict[str, tuple[int | None, int]] = {
    "u32": (TCA_U32_POLICE, TCA_U32_ACT),
    "matchall": (None, TCA_MATCHALL_ACT),
}


def handle_text(handle: int) -> str:
    """A class id as tc prints it ("1:1"; a qdisc's own handle "1:")."""
    major, minor = handle >> 16, handle & 0xFFFF
    return f"{major:x}:{minor:x}" if minor else f"{major:x}:"


def burst_bytes(ticks: int, rate: int) -> int:
    """Scheduler ticks at ``rate`` bytes/s back to bytes (iproute2's tc_calc_xmitsize)."""
    return round(ticks * rate / TICKS_PER_SECOND)


def _attrs(payload: bytes) -> dict[int, bytes]:
    return dict(iter_attrs(payload, 0, len(payload)))


def _u64(payload: bytes | None, fallback: int) -> int:
    return int.from_bytes(payload[:8], "little") if payload is not None and len(payload) >= 8 else fallback


@dataclass(frozen=True)
class _Tc:
    """One tc message: its device index, handle, parent, info (filters: prio << 16 | protocol),
    kind and options."""

    index: int
    handle: int
    parent: int
    info: int
    kind: str
    options: dict[int, bytes]


def _messages(datagrams: list[bytes], mtype: int) -> Iterator[_Tc]:
    for buf, (_family, index, handle, parent, info), start, end in iter_bodies(datagrams, mtype, TCMSG):
        top = dict(iter_attrs(buf, start, end))
        if TCA_KIND in top:
            yield _Tc(index, handle, parent, info, cstr(top[TCA_KIND]), _attrs(top.get(TCA_OPTIONS, b"")))


def parse_qdiscs(
    datagrams: list[bytes], name_of: Callable[[int], str]
) -> tuple[list[Qdisc], list[HtbRoot], dict[str, int]]:
    """Qdiscs, root htb qdiscs with their default class, and each link's index by name."""
    qdiscs, roots, index = [], [], {}
    for m in _messages(datagrams, RTM_NEWQDISC):
        dev = name_of(m.index)
        index[dev] = m.index
        qdiscs.append(
            Qdisc(dev, m.kind, handle_text(m.handle & 0xFFFF0000), m.parent == TC_H_ROOT, m.kind in INGRESS_KINDS)
        )
        glob = m.options.get(TCA_HTB_INIT)
        if m.kind == "htb" and m.parent == TC_H_ROOT and glob is not None and len(glob) >= HTB_GLOB.size:
            roots.append(HtbRoot(dev, handle_text(m.handle & 0xFFFF0000), HTB_GLOB.unpack_from(glob)[2]))
    return qdiscs, roots, index


def parse_classes(datagrams: list[bytes], name_of: Callable[[int], str]) -> list[HtbClass]:
    out = []
    for m in _messages(datagrams, RTM_NEWTCLASS):
        parms = m.options.get(TCA_HTB_PARMS)
        if m.kind != "htb" or parms is None or len(parms) < HTB_OPT_SIZE:
            continue
        rate32, ceil32, buffer, cbuffer = HTB_OPT.unpack_from(parms)
        rate = _u64(m.options.get(TCA_HTB_RATE64), rate32)
        ceil = _u64(m.options.get(TCA_HTB_CEIL64), ceil32)
        parent = "root" if m.parent == TC_H_ROOT else handle_text(m.parent)
        out.append(
            HtbClass(
                name_of(m.index),
                handle_text(m.handle),
                parent,
                rate,
                ceil,
                burst_bytes(buffer, rate),
                burst_bytes(cbuffer, ceil),
            )
        )
    return out


def _police(dev: str, kind: str, prio: int, attrs: dict[int, bytes]) -> PoliceFilter | None:
    tbf = attrs.get(TCA_POLICE_TBF)
    if tbf is None or len(tbf) < POLICE_SIZE:
        return None
    _index, action, _limit, burst, mtu, rate32 = POLICE.unpack_from(tbf)
    rate = _u64(attrs.get(TCA_POLICE_RATE64), rate32)
    return PoliceFilter(dev, kind, prio, rate, burst_bytes(burst, rate), mtu, ACTIONS.get(action, str(action)))


def _actions(actions: bytes, kind: str) -> Iterator[dict[int, bytes]]:
    """The options of every ``kind`` action in a TCA_*_ACT list (one nest per action, by order)."""
    for _order, nest in iter_attrs(actions, 0, len(actions)):
        act = _attrs(nest)
        if cstr(act.get(TCA_ACT_KIND, b"")) == kind:
            yield _attrs(act.get(TCA_ACT_OPTIONS, b""))


def parse_redirects(datagrams: list[bytes], name_of: Callable[[int], str]) -> list[Redirect]:
    """Every ``mirred egress redirect`` action of a u32 or matchall filter in a filter dump."""
    out = []
    for m in _messages(datagrams, RTM_NEWTFILTER):
        _legacy, act = _POLICE_ATTRS.get(m.kind, (None, -1))
        for attrs in _actions(m.options.get(act, b""), "mirred"):
            parms = attrs.get(TCA_MIRRED_PARMS)
            if parms is not None and len(parms) >= MIRRED.size:
                fields = MIRRED.unpack_from(parms)
                if fields[5] == TCA_EGRESS_REDIR:
                    out.append(Redirect(name_of(m.index), m.info >> 16, name_of(fields[6])))
    return out


def parse_police_filters(datagrams: list[bytes], name_of: Callable[[int], str]) -> list[PoliceFilter]:
    """Every police action of a u32 or matchall filter in a filter dump."""
    out = []
    for m in _messages(datagrams, RTM_NEWTFILTER):
        legacy, act = _POLICE_ATTRS.get(m.kind, (None, -1))
        found = [_attrs(m.options[legacy])] if legacy is not None and legacy in m.options else []
        found.extend(_actions(m.options.get(act, b""), "police"))
        for attrs in found:
            police = _police(name_of(m.index), m.kind, m.info >> 16, attrs)
            if police is not None:
                out.append(police)
    return out


def _request(index: int, parent: int = 0) -> bytes:
    return TCMSG.pack(0, index, 0, parent, 0)


def read_tc_shaping(only: frozenset[str] | None = None, timeout: float = 10.0) -> TcShaping:
    """htb classes and ingress police filters of the links that have them (of ``only`` those,
    when given). Raises CommandError when the kernel cannot be asked."""
    return read_tc(only, timeout)[1]


def read_tc(only: frozenset[str] | None = None, timeout: float = 10.0) -> tuple[tuple[Qdisc, ...], TcShaping]:
    """Every link's qdiscs (what ``tcdump.read_qdiscs`` gives, for doctor) and the shaping.
    A device an ingress filter of ``only`` redirects to (an ifb) gets its classes read too:
    what shapes that traffic is there."""
    name_of = link_namer()
    try:
        qdiscs, roots, index = parse_qdiscs(consistent_dump(RTM_GETQDISC, timeout), name_of)
        wanted = {q.dev for q in qdiscs if only is None or q.dev in only}
        filter_devs = sorted({q.dev for q in qdiscs if q.ingress and q.dev in wanted})
        filter_dumps = _dump(RTM_GETTFILTER, filter_devs, index, timeout, TC_H_INGRESS_FILTERS)
        wanted |= {r.target for d in filter_dumps for r in parse_redirects(d, name_of)}
        class_devs = sorted(r.dev for r in roots if r.dev in wanted)
        class_dumps = _dump(RTM_GETTCLASS, class_devs, index, timeout)
    except OSError as exc:  # RtnlError included
        raise CommandError(f"rtnetlink {WHAT[RTM_GETTCLASS]} dump failed: {exc}") from exc
    return tuple(qdiscs), assemble(qdiscs, roots, class_dumps, filter_dumps, name_of)


def _dump(kind: int, devs: list[str], index: dict[str, int], timeout: float, parent: int = 0) -> list[list[bytes]]:
    """One dump per device, on one socket (none: no socket opened)."""
    return dump_each([(kind, _request(index[d], parent)) for d in devs], timeout) if devs else []


def assemble(
    qdiscs: list[Qdisc],
    roots: list[HtbRoot],
    class_dumps: list[list[bytes]],
    filter_dumps: list[list[bytes]],
    name_of: Callable[[int], str],
) -> TcShaping:
    """The TcShaping of a qdisc dump's results and the per-device class and filter dumps."""
    classes = [c for d in class_dumps for c in parse_classes(d, name_of)]
    police = [p for d in filter_dumps for p in parse_police_filters(d, name_of)]
    redirects = [r for d in filter_dumps for r in parse_redirects(d, name_of)]
    root_kinds = tuple(RootQdisc(q.dev, q.kind) for q in qdiscs if q.root)
    return TcShaping(root_kinds, tuple(roots), tuple(classes), tuple(police), tuple(redirects))

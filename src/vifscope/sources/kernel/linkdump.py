"""RTM_NEWLINK messages of a link dump -> ObservedLink, the fields ``ip -j -s -d`` would show.

Same values as ``netlink.parse_link`` reads from iproute2's JSON (a test compares the two on
real links): IFLA_* numbers and names as in linux/if_link.h and iproute2's tables. Only the
attributes vifscope reads are located (``rtnl.pick``), by offset, without copying the rest.
"""

from __future__ import annotations

import ipaddress
import struct

from vifscope.model import LinkStats, ObservedLink
from vifscope.sources.kernel.rtnl import IFINFOMSG, RTM_NEWLINK, U32, iter_bodies, pick

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_QDISC = 1, 3, 4, 5, 6
IFLA_MASTER, IFLA_TXQLEN, IFLA_OPERSTATE, IFLA_LINKINFO = 10, 13, 16, 18
IFLA_STATS64, IFLA_PROMISCUITY, IFLA_LINK_NETNSID = 23, 30, 37
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
IFLA_BR_FORWARD_DELAY, IFLA_BR_STP_STATE = 1, 5
IFLA_MACVLAN_MODE = 1
IFLA_BRPORT_STATE, IFLA_BRPORT_ISOLATED = 1, 33
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
STATS64_HEAD = struct.Struct("=8Q")  # rx/tx packets, rx/tx bytes, rx/tx errors, rx/tx dropped

TOP = frozenset({
    IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_QDISC, IFLA_MASTER, IFLA_TXQLEN,
    IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_STATS64, IFLA_PROMISCUITY, IFLA_LINK_NETNSID,
})  # fmt: skip
INFO = frozenset({IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA})
BRIDGE = frozenset({IFLA_BR_FORWARD_DELAY, IFLA_BR_STP_STATE})
MACVLAN = frozenset({IFLA_MACVLAN_MODE})
BRPORT = frozenset({IFLA_BRPORT_STATE, IFLA_BRPORT_ISOLATED})

OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")
MACVLAN_MODES = {1: "private", 2: "vepa", 4: "bridge", 8: "passthru", 16: "source"}
PORT_STATES = ("disabled", "listening", "learning", "forwarding", "blocking")
# ARPHRD types whose "hardware address" is an IP address (iproute2's ll_addr_n2a prints it so).
IP_ADDR_TYPES = frozenset({768, 769, 776, 778, 823})  # TUNNEL, TUNNEL6, SIT, IPGRE, IP6GRE

Span = tuple[int, int]


class _Msg:
    """One RTM_NEWLINK: its buffer, ifinfomsg fields and where its attributes are."""

    __slots__ = ("arphrd", "attrs", "buf", "flags", "index", "name")

    def __init__(self, buf: bytes, index: int, arphrd: int, flags: int, attrs: dict[int, Span]) -> None:
        self.buf, self.index, self.arphrd, self.flags, self.attrs = buf, index, arphrd, flags, attrs
        self.name = self.text(attrs[IFLA_IFNAME])

    def text(self, span: Span) -> str:
        return self.buf[span[0] : span[1]].split(b"\0", 1)[0].decode(errors="replace")

    def u32(self, span: Span | None) -> int | None:
        return U32.unpack_from(self.buf, span[0])[0] if span and span[1] - span[0] >= 4 else None

    def u8(self, span: Span | None) -> int | None:
        return self.buf[span[0]] if span and span[1] > span[0] else None

    def nested(self, span: Span | None, wanted: frozenset[int]) -> dict[int, Span]:
        return pick(self.buf, span[0], span[1], wanted) if span else {}


def _mac(m: _Msg, span: Span) -> str:
    payload = m.buf[span[0] : span[1]]
    if m.arphrd in IP_ADDR_TYPES and len(payload) in (4, 16):
        return str(ipaddress.ip_address(payload))
    return payload.hex(":")


def _stats(m: _Msg) -> LinkStats | None:
    span = m.attrs.get(IFLA_STATS64)
    if span is None or span[1] - span[0] < STATS64_HEAD.size:
        return None
    rxp, txp, rxb, txb, rxe, txe, rxd, txd = STATS64_HEAD.unpack_from(m.buf, span[0])
    return LinkStats(rxb, rxp, rxe, rxd, txb, txp, txe, txd)


def _lower(m: _Msg, names: dict[int, str]) -> str | None:
    """IFLA_LINK by name, unless it points into another namespace (IFLA_LINK_NETNSID)."""
    iflink = m.u32(m.attrs.get(IFLA_LINK))
    if not iflink or IFLA_LINK_NETNSID in m.attrs:
        return None
    return names.get(iflink, f"if{iflink}")


def _kind_fields(m: _Msg, ports: bool) -> dict[str, object]:
    """What IFLA_LINKINFO says: kind, slave kind, and the per-kind fields ObservedLink keeps."""
    info = m.nested(m.attrs.get(IFLA_LINKINFO), INFO)
    kind = m.text(info[IFLA_INFO_KIND]) if IFLA_INFO_KIND in info else None
    slave_kind = m.text(info[IFLA_INFO_SLAVE_KIND]) if IFLA_INFO_SLAVE_KIND in info else None
    out: dict[str, object] = {"kind": kind, "slave_kind": slave_kind}
    if kind == "bridge":
        data = m.nested(info.get(IFLA_INFO_DATA), BRIDGE)
        out["stp_state"] = m.u32(data.get(IFLA_BR_STP_STATE))
        out["forward_delay"] = m.u32(data.get(IFLA_BR_FORWARD_DELAY))
    elif kind in ("macvtap", "macvlan"):
        mode = m.u32(m.nested(info.get(IFLA_INFO_DATA), MACVLAN).get(IFLA_MACVLAN_MODE))
        out["macvtap_mode"] = MACVLAN_MODES.get(mode, str(mode)) if mode is not None else None
    if slave_kind == "bridge" and ports:
        slave = m.nested(info.get(IFLA_INFO_SLAVE_DATA), BRPORT)
        port, isolated = m.u8(slave.get(IFLA_BRPORT_STATE)), m.u8(slave.get(IFLA_BRPORT_ISOLATED))
        out["port_state"] = PORT_STATES[port] if port is not None and port < len(PORT_STATES) else None
        out["isolated"] = bool(isolated) if isolated is not None else None
    return out


def to_link(m: _Msg, names: dict[int, str], ports: bool = True) -> ObservedLink:
    a = m.attrs
    oper = m.u8(a.get(IFLA_OPERSTATE))
    master = m.u32(a.get(IFLA_MASTER))
    return ObservedLink(
        name=m.name,
        ifindex=m.index,
        admin_up=bool(m.flags & IFF_UP),
        oper_state=OPERSTATES[oper] if oper is not None and oper < len(OPERSTATES) else "unknown",
        carrier=bool(m.flags & IFF_LOWER_UP),
        mtu=m.u32(a.get(IFLA_MTU)),
        mac=_mac(m, a[IFLA_ADDRESS]) if IFLA_ADDRESS in a else None,
        master=names.get(master) if master else None,
        lower=_lower(m, names),
        txqlen=m.u32(a.get(IFLA_TXQLEN)),
        qdisc=m.text(a[IFLA_QDISC]) if IFLA_QDISC in a else None,
        promiscuity=m.u32(a.get(IFLA_PROMISCUITY)),
        stats=_stats(m),
        **_kind_fields(m, ports),  # type: ignore[arg-type]
    )


def messages(datagrams: list[bytes]) -> list[_Msg]:
    """Every named RTM_NEWLINK of the dump, attributes located but not decoded (pure)."""
    out: list[_Msg] = []
    for buf, (_family, arphrd, index, flags, _change), start, end in iter_bodies(datagrams, RTM_NEWLINK, IFINFOMSG):
        attrs = pick(buf, start, end, TOP)
        if IFLA_IFNAME in attrs:
            out.append(_Msg(buf, index, arphrd, flags, attrs))
    return out


def parse_dump(datagrams: list[bytes], *, ports: bool = True) -> tuple[ObservedLink, ...]:
    """All links of one dump, in kernel (ifindex) order, as ObservedLink (pure).

    ``ports=False`` leaves a bridge port's ``port_state`` and ``isolated`` unread (None): only
    doctor's checks use them, and their ~40 nested attributes are a fifth of the parse.
    """
    msgs = messages(datagrams)
    names = {m.index: m.name for m in msgs}
    return tuple(to_link(m, names, ports) for m in msgs)

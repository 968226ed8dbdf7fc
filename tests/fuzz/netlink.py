"""rtnetlink dumps encoded from the golden cases' iproute2 JSON, as fuzz seeds for the raw
readers (linkdump.parse_dump, tcdump.parse_qdisc_dump / parse_neigh_dump): the same links,
qdiscs and neighbours the JSON readers are fuzzed with, in the kernel's byte layout."""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from vifscope.sources.kernel import linkdump as ld
from vifscope.sources.kernel import rtnl, tcdump

DONE = rtnl.NLMSG_HDR.pack(20, rtnl.NLMSG_DONE, 2, 1, 0) + b"\0" * 4
FLAG_BITS = {"UP": ld.IFF_UP, "LOWER_UP": ld.IFF_LOWER_UP, "BROADCAST": 0x2, "MULTICAST": 0x1000}
U32 = struct.Struct("=I")


def attr(kind: int, payload: bytes) -> bytes:
    body = struct.pack("=HH", 4 + len(payload), kind) + payload
    return body + b"\0" * (rtnl.align(len(body)) - len(body))


def message(mtype: int, body: bytes) -> bytes:
    return rtnl.NLMSG_HDR.pack(16 + len(body), mtype, 2, 1, 0) + body


def _u32(kind: int, value: Any) -> bytes:
    return attr(kind, U32.pack(value & 0xFFFFFFFF)) if isinstance(value, int) else b""


def _linkinfo(info: Mapping[str, Any]) -> bytes:
    parts = b""
    if info.get("info_kind"):
        parts += attr(ld.IFLA_INFO_KIND, str(info["info_kind"]).encode() + b"\0")
        data = info.get("info_data") or {}
        fields = (ld.IFLA_BR_STP_STATE, "stp_state"), (ld.IFLA_BR_FORWARD_DELAY, "forward_delay")
        nested = b"".join(_u32(k, data.get(n)) for k, n in fields)
        modes = {v: k for k, v in ld.MACVLAN_MODES.items()}
        nested += _u32(ld.IFLA_MACVLAN_MODE, modes.get(data.get("mode", "")))
        parts += attr(ld.IFLA_INFO_DATA, nested)
    if info.get("info_slave_kind"):
        parts += attr(ld.IFLA_INFO_SLAVE_KIND, str(info["info_slave_kind"]).encode() + b"\0")
        slave = info.get("info_slave_data") or {}
        state = ld.PORT_STATES.index(slave["state"]) if slave.get("state") in ld.PORT_STATES else 3
        isolated = bytes([int(bool(slave.get("isolated")))])
        parts += attr(ld.IFLA_INFO_SLAVE_DATA, attr(ld.IFLA_BRPORT_STATE, bytes([state])) + attr(33, isolated))
    return attr(ld.IFLA_LINKINFO, parts) if parts else b""


def _link(raw: Mapping[str, Any], index_of: Mapping[str, int]) -> bytes:
    flags = sum(FLAG_BITS.get(f, 0) for f in raw.get("flags") or ())
    body = rtnl.IFINFOMSG.pack(0, 1, int(raw.get("ifindex", 0)), flags, 0)
    body += attr(ld.IFLA_IFNAME, str(raw["ifname"]).encode() + b"\0")
    if raw.get("address"):
        body += attr(ld.IFLA_ADDRESS, bytes.fromhex(str(raw["address"]).replace(":", "")))
    body += _u32(ld.IFLA_MTU, raw.get("mtu")) + _u32(ld.IFLA_TXQLEN, raw.get("txqlen"))
    body += _u32(ld.IFLA_PROMISCUITY, raw.get("promiscuity"))
    body += _u32(ld.IFLA_MASTER, index_of.get(raw.get("master", "")))
    body += _u32(ld.IFLA_LINK, raw.get("link_index") or index_of.get(raw.get("link", "")))
    if raw.get("qdisc"):
        body += attr(ld.IFLA_QDISC, str(raw["qdisc"]).encode() + b"\0")
    oper = str(raw.get("operstate", "unknown")).lower()
    body += attr(ld.IFLA_OPERSTATE, bytes([ld.OPERSTATES.index(oper) if oper in ld.OPERSTATES else 0]))
    stats = raw.get("stats64") or {}
    if stats:
        rx, tx = stats.get("rx", {}), stats.get("tx", {})
        order = ("packets", "bytes", "errors", "dropped")
        body += attr(ld.IFLA_STATS64, b"".join(struct.pack("=QQ", d[k], t[k]) for k in order for d, t in [(rx, tx)]))
    return message(rtnl.RTM_NEWLINK, body + _linkinfo(raw.get("linkinfo") or {}))


def link_dump(links: Sequence[Mapping[str, Any]]) -> list[bytes]:
    index_of = {str(r["ifname"]): int(r.get("ifindex", 0)) for r in links if r.get("ifname")}
    return [b"".join(_link(r, index_of) for r in links if r.get("ifname")), DONE]


def qdisc_dump(qdiscs: Sequence[Mapping[str, Any]], index_of: Mapping[str, int]) -> list[bytes]:
    msgs = b""
    for q in qdiscs:
        handle = int(str(q.get("handle", "0:")).rstrip(":") or "0", 16) << 16
        parent = tcdump.TC_H_ROOT if q.get("root") else 0xFFFFFFF1
        body = rtnl.TCMSG.pack(0, index_of.get(q.get("dev", ""), 0), handle, parent, 1)
        msgs += message(rtnl.RTM_NEWQDISC, body + attr(tcdump.TCA_KIND, str(q["kind"]).encode() + b"\0"))
    return [msgs, DONE]


def neigh_dump(neighbours: Sequence[Mapping[str, Any]], index_of: Mapping[str, int]) -> list[bytes]:
    msgs = b""
    states = {name: bit for bit, name in tcdump.NUD_STATES}
    for n in neighbours:
        family = socket.AF_INET6 if ":" in str(n["dst"]) else socket.AF_INET
        state = sum(states.get(s, 0) for s in n.get("state") or ())
        body = rtnl.NDMSG.pack(family, index_of.get(n.get("dev", ""), 0), state, 0, 1)
        body += attr(tcdump.NDA_DST, socket.inet_pton(family, str(n["dst"])))
        if n.get("lladdr"):
            body += attr(tcdump.NDA_LLADDR, bytes.fromhex(str(n["lladdr"]).replace(":", "")))
        msgs += message(rtnl.RTM_NEWNEIGH, body)
    return [msgs, DONE]

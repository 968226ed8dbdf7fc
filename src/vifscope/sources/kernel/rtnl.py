"""rtnetlink without iproute2 or pyroute2: the message layout, and one dump of links,
addresses, neighbours or qdiscs (what ``ip link``, ``ip addr``, ``ip neigh``, ``tc qdisc`` read).

Why: the link dump is on every answer's critical path. At 5,000 links ``ip -j -s -d link
show`` costs ~0.09 s in ``ip`` plus ~0.16 s of JSON decoding and conversion here; reading
the same netlink messages directly costs a fraction (bench/scale.py). The layout is the
kernel's ABI (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h): a 16-byte nlmsghdr,
a fixed header per kind (ifinfomsg, ifaddrmsg, ndmsg, tcmsg), then 4-byte aligned rtattrs,
some of them nested.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator

NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
RTATTR = struct.Struct("=HH")  # len, type
U32 = struct.Struct("=I")
NLA_TYPE_MASK = 0x3FFF  # strip NLA_F_NESTED / NLA_F_NET_BYTEORDER

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_DUMP_INTR = 0x10  # the table changed during the dump: it may be inconsistent
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
SO_RCVBUFFORCE = 33


class RtnlError(OSError):
    """The kernel refused the request, or the socket failed."""


def align(n: int) -> int:
    return (n + 3) & ~3


def iter_attrs(buf: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each rtattr in buf[start:end]; stops at a malformed one."""
    pos = start
    while pos + 4 <= end:
        length, kind = RTATTR.unpack_from(buf, pos)
        if length < 4 or pos + length > end:
            return
        yield kind & NLA_TYPE_MASK, buf[pos + 4 : pos + length]
        pos += (length + 3) & ~3


def pick(buf: bytes, start: int, end: int, wanted: frozenset[int]) -> dict[int, tuple[int, int]]:
    """(start, end) of the payload of each wanted rtattr in buf[start:end].

    A tight loop without slicing: a link message carries ~50 attributes and a bridge port's
    slave data ~40 more, of which we want a handful. Stops once all wanted ones are found.
    """
    out: dict[int, tuple[int, int]] = {}
    unpack, pos, need = RTATTR.unpack_from, start, len(wanted)
    while pos + 4 <= end:
        length, kind = unpack(buf, pos)
        if length < 4 or pos + length > end:
            break
        kind &= NLA_TYPE_MASK
        if kind in wanted:
            out[kind] = (pos + 4, pos + length)
            if len(out) == need:
                break
        pos += (length + 3) & ~3
    return out


ADDR_LEN: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 16}  # bytes of an address attribute


def link_namer() -> Callable[[int], str]:
    """ifindex -> link name, one SIOCGIFNAME per link asked about ("ifN" once it is gone).
    Not if_nameindex(): glibc builds it from a full link dump, 25 ms at 5,000 links."""
    names: dict[int, str] = {}

    def name(index: int) -> str:
        if index not in names:
            try:
                names[index] = socket.if_indextoname(index)
            except OSError:
                names[index] = f"if{index}"
        return names[index]

    return name


def cstr(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace")


def iter_messages(buf: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(type, flags, start, length) of every netlink message in one datagram."""
    pos = 0
    while pos + NLMSG_HDR.size <= len(buf):
        length, mtype, flags, _seq, _pid = NLMSG_HDR.unpack_from(buf, pos)
        if length < NLMSG_HDR.size or pos + length > len(buf):
            return
        yield mtype, flags, pos, length
        pos += align(length)


def iter_bodies(
    datagrams: list[bytes], mtype: int, header: struct.Struct
) -> Iterator[tuple[bytes, tuple[int, ...], int, int]]:
    """(datagram, the fixed header's fields, where its attributes start, where they end) of
    every well-formed ``mtype`` message of a dump."""
    for buf in datagrams:
        for kind, _flags, start, length in iter_messages(buf):
            body = start + NLMSG_HDR.size
            if kind == mtype and body + header.size <= start + length:
                yield buf, header.unpack_from(buf, body), body + header.size, start + length


IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
TCMSG = struct.Struct("=BxxxiIII")  # family, pad, ifindex, handle, parent, info
NDMSG = struct.Struct("=BxxxiHBB")  # family, pad, ifindex, state, flags, type
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
RTM_NEWQDISC, RTM_GETQDISC = 36, 38
RTM_NEWTCLASS, RTM_GETTCLASS = 40, 42
RTM_NEWTFILTER, RTM_GETTFILTER = 44, 46

# The (all-zero, AF_UNSPEC) fixed header a dump request of each kind carries.
_REQUEST_BODY: dict[int, bytes] = {
    RTM_GETLINK: IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0),
    RTM_GETADDR: IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0),
    RTM_GETNEIGH: NDMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0),
    RTM_GETQDISC: TCMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0),
}


WHAT: dict[int, str] = {
    RTM_GETLINK: "link", RTM_GETADDR: "address", RTM_GETNEIGH: "neighbour", RTM_GETQDISC: "qdisc",
    RTM_GETTCLASS: "tc class", RTM_GETTFILTER: "tc filter",
}  # fmt: skip


def _request(seq: int, mtype: int = RTM_GETLINK) -> bytes:
    """A dump request for every object of ``mtype`` (links, addresses, neighbours, qdiscs)."""
    body = _REQUEST_BODY[mtype]
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), mtype, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def _error_of(buf: bytes, start: int) -> int:
    """The (positive) errno of an NLMSG_ERROR message; 0 is an ACK."""
    code: int = struct.unpack_from("=i", buf, start + NLMSG_HDR.size)[0]
    return -code


def _socket(timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    sock.settimeout(timeout)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((0, 0))
    return sock


def dump(mtype: int, timeout: float = 10.0) -> tuple[list[bytes], bool]:
    """Every datagram of one ``mtype`` dump of the current namespace (``RTM_GETLINK`` links,
    ``RTM_GETADDR`` addresses), and whether the kernel flagged it as interrupted (it changed
    meanwhile).

    Raises RtnlError. The datagrams are returned whole; ``linkdump`` / ``addrdump`` parse them.
    """
    with _socket(timeout) as sock:
        seq = os.getpid() & 0xFFFF or 1
        sock.send(_request(seq, mtype))
        return _receive(sock, WHAT[mtype])


def dump_each(requests: list[tuple[int, bytes]], timeout: float = 10.0) -> list[list[bytes]]:
    """One dump per (message type, fixed header) request, one after the other on one socket
    (the kernel runs one dump per socket at a time). For what the kernel only dumps per
    device: tc classes and filters (``tcm_ifindex`` / ``tcm_parent`` in the header).
    Raises RtnlError."""
    out: list[list[bytes]] = []
    with _socket(timeout) as sock:
        for seq, (mtype, body) in enumerate(requests, start=1):
            size = NLMSG_HDR.size + len(body)
            sock.send(NLMSG_HDR.pack(size, mtype, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
            out.append(_receive(sock, WHAT[mtype])[0])
    return out


def consistent_dump(mtype: int, timeout: float = 10.0) -> list[bytes]:
    """``dump``, taken again (up to three times in all) while the kernel flags it as
    interrupted -- the table changed while it ran -- then used as is, as iproute2 does."""
    for _attempt in range(3):
        datagrams, interrupted = dump(mtype, timeout)
        if not interrupted:
            break
    return datagrams


def _receive(sock: socket.socket, what: str) -> tuple[list[bytes], bool]:
    chunks: list[bytes] = []
    interrupted = False
    while True:
        try:
            data = sock.recv(1 << 18)
        except TimeoutError as exc:
            raise RtnlError(errno.ETIMEDOUT, f"the kernel did not finish the {what} dump in time") from exc
        for mtype, flags, start, _length in iter_messages(data):
            interrupted |= bool(flags & NLM_F_DUMP_INTR)
            if mtype == NLMSG_DONE:
                chunks.append(data)
                return chunks, interrupted
            if mtype == NLMSG_ERROR and (code := _error_of(data, start)):
                raise RtnlError(code, f"{what} dump refused: {os.strerror(code)}")
        chunks.append(data)

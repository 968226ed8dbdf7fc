"""Kernel link events: a raw rtnetlink socket subscribed to RTMGRP_LINK, parsed here.

Why a raw socket: iproute2 6.1's ``ip -j monitor link`` ignores ``-j`` and prints text, so
it cannot be parsed reliably across versions. pyroute2 0.9's ``IPRoute().bind()`` measured
~280 us of CPU per event against ~40 us here, and lost events (ENOBUFS) in a 10,000-event
burst that this socket took whole (bench/netlink_monitor.py). An RTM_NEWLINK/RTM_DELLINK
message is a fixed 16-byte nlmsghdr, a 16-byte ifinfomsg and 4-byte aligned attributes:
we read the few we need (name, master, operstate, kind) and let a link dump give the
full picture. ``parse_messages`` is pure; ``LinkMonitor`` owns the socket.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
import time
from collections.abc import Callable

from vifscope.sources.kernel.rtnl import IFINFOMSG, NLMSG_HDR, RTM_DELLINK, RTM_NEWLINK, cstr, iter_attrs, iter_messages
from vifscope.watch.backoff import Backoff
from vifscope.watch.events import LinkBatch, LinkEvent, LinksOverrun, SourceDown, WatchEvent

RTMGRP_LINK = 0x1
IFLA_IFNAME = 3
IFLA_MASTER = 10
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
# RFC 2863 operstates as the kernel numbers them (IF_OPER_*).
OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")
ACTIONS = {RTM_NEWLINK: "new", RTM_DELLINK: "del"}


def _kind(payload: bytes) -> str | None:
    for kind, value in iter_attrs(payload, 0, len(payload)):
        if kind == IFLA_INFO_KIND:
            return cstr(value)
    return None


def parse_link_message(buf: bytes, pos: int, length: int, mtype: int) -> LinkEvent | None:
    """One RTM_NEWLINK / RTM_DELLINK message starting at ``pos``; None when truncated."""
    body = pos + NLMSG_HDR.size
    if body + IFINFOMSG.size > pos + length:
        return None
    family, _type, index, flags, _change = IFINFOMSG.unpack_from(buf, body)
    name, master, oper, kind = "", None, None, None
    for atype, payload in iter_attrs(buf, body + IFINFOMSG.size, pos + length):
        if atype == IFLA_IFNAME:
            name = cstr(payload)
        elif atype == IFLA_MASTER and len(payload) >= 4:
            master = struct.unpack_from("=I", payload)[0] or None
        elif atype == IFLA_OPERSTATE and payload:
            oper = OPERSTATES[payload[0]] if payload[0] < len(OPERSTATES) else str(payload[0])
        elif atype == IFLA_LINKINFO:
            kind = _kind(payload)
    return LinkEvent(
        action=ACTIONS[mtype],
        ifindex=index,
        name=name,
        master_ifindex=master,
        admin_up=bool(flags & IFF_UP),
        carrier=bool(flags & IFF_LOWER_UP),
        oper_state=oper,
        kind=kind,
        bridge_port_msg=family == socket.AF_BRIDGE,
    )


def parse_messages(buf: bytes) -> list[LinkEvent]:
    """Every link event in one datagram (the kernel may batch several messages)."""
    events: list[LinkEvent] = []
    for mtype, _flags, pos, length in iter_messages(buf):
        if mtype in ACTIONS:
            event = parse_link_message(buf, pos, length, mtype)
            if event is not None:
                events.append(event)
    return events


class LinkMonitor:
    """A socket bound to RTMGRP_LINK in the current network namespace.

    ``read()`` blocks until the kernel sends something and returns the events, or a
    LinksOverrun when the receive buffer overflowed (ENOBUFS: events were lost, so the
    caller must re-dump every link).
    """

    RCVBUF = 8 << 20  # a bridge with thousands of ports deleted at once sends one message per port

    def __init__(self, rcvbuf: int = RCVBUF) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        try:
            # SO_RCVBUFFORCE (root) ignores net.core.rmem_max; fall back to the capped one.
            self._sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)
        except OSError:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._sock.bind((0, RTMGRP_LINK))

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[LinkEvent] | LinksOverrun:
        try:
            data = self._sock.recv(1 << 20)
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                return LinksOverrun("netlink receive buffer overflowed (ENOBUFS)")
            raise
        return parse_messages(data)

    def close(self) -> None:
        self._sock.close()


class LinkWatch:
    """A daemon thread reading a LinkMonitor and posting LinkBatch / LinksOverrun events.

    If the socket fails (it should not: it is the kernel), the thread reports netlink down,
    reopens it with back-off, and asks for a full re-dump once it is back.
    """

    def __init__(self, post: Callable[[WatchEvent], None], rcvbuf: int = LinkMonitor.RCVBUF) -> None:
        self._post = post
        self._rcvbuf = rcvbuf
        self._monitor = LinkMonitor(rcvbuf)  # opened here so a failure is the caller's to report
        self._overruns = 0
        self._thread = threading.Thread(target=self._run, name="vifscope-netlink", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        backoff = Backoff(initial=0.5, maximum=30.0)
        while True:
            try:
                got = self._monitor.read()
            except OSError as exc:
                self._post(SourceDown("netlink", f"netlink monitor socket failed: {exc}"))
                self._monitor = self._reopen(backoff)
                self._post(LinksOverrun("netlink monitor socket reopened", self._overruns))
                continue
            if isinstance(got, LinksOverrun):
                self._overruns += 1
                self._post(LinksOverrun(got.reason, self._overruns))
            elif got:
                self._post(LinkBatch(tuple(got)))

    def _reopen(self, backoff: Backoff) -> LinkMonitor:
        while True:
            time.sleep(backoff.next_delay())
            try:
                return LinkMonitor(self._rcvbuf)
            except OSError:
                continue  # still failing: the next, longer delay retries

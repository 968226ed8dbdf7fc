"""rtnetlink framing on crafted messages: what the kernel sends, byte for byte (linux/netlink.h)."""

from __future__ import annotations

import socket
import struct

import pytest

from vifscope.sources.kernel import rtnl
from vifscope.sources.kernel.linkdump import parse_dump


def attr(kind: int, payload: bytes) -> bytes:
    body = struct.pack("=HH", 4 + len(payload), kind) + payload
    return body + b"\0" * (rtnl.align(len(body)) - len(body))


def newlink(index: int, name: str, *attrs: bytes, flags: int = 0x1 | 0x10000, mflags: int = 2) -> bytes:
    body = rtnl.IFINFOMSG.pack(0, 1, index, flags, 0) + attr(3, name.encode() + b"\0") + b"".join(attrs)
    return rtnl.NLMSG_HDR.pack(16 + len(body), rtnl.RTM_NEWLINK, mflags, 1, 0) + body


def test_pick_finds_wanted_attributes_and_stops_at_a_malformed_one() -> None:
    buf = attr(1, b"ab") + attr(7, b"xyz1") + struct.pack("=HH", 200, 9) + b"junk"
    spans = rtnl.pick(buf, 0, len(buf), frozenset({1, 7, 9}))
    assert {k: buf[s:e] for k, (s, e) in spans.items()} == {1: b"ab", 7: b"xyz1"}


def test_nested_flag_is_masked() -> None:
    buf = struct.pack("=HH", 8, 18 | 0x8000) + b"\1\2\3\4"
    assert rtnl.pick(buf, 0, len(buf), frozenset({18})) == {18: (4, 8)}


def test_a_dump_resolves_master_and_lower_by_name_and_decodes_linkinfo() -> None:
    kind = attr(18, attr(1, b"macvtap\0") + attr(2, attr(1, struct.pack("=I", 4))))
    msgs = (
        newlink(2, "br0", attr(18, attr(1, b"bridge\0") + attr(2, attr(5, struct.pack("=I", 1))))),
        newlink(3, "eth9", attr(10, struct.pack("=I", 2)), attr(4, struct.pack("=I", 1500))),
        newlink(4, "macvtap0", attr(5, struct.pack("=I", 3)), kind, attr(1, bytes.fromhex("525400aabbcc"))),
    )
    done = rtnl.NLMSG_HDR.pack(20, rtnl.NLMSG_DONE, 2, 1, 0) + b"\0" * 4
    links = {link.name: link for link in parse_dump([b"".join(msgs), done])}
    assert links["eth9"].master == "br0" and links["eth9"].mtu == 1500
    assert (links["br0"].kind, links["br0"].stp_state) == ("bridge", 1)
    mvt = links["macvtap0"]
    assert (mvt.lower, mvt.macvtap_mode, mvt.mac) == ("eth9", "bridge", "52:54:00:aa:bb:cc")
    assert mvt.stats is None and mvt.oper_state == "unknown"


def test_error_message_raises_with_the_errno() -> None:
    a, b = socket.socketpair()
    with a, b:
        err = rtnl.NLMSG_HDR.pack(36, rtnl.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -1) + b"\0" * 16
        a.send(err)
        with pytest.raises(rtnl.RtnlError, match="qdisc dump refused: Operation not permitted"):
            rtnl._receive(b, "qdisc")


def test_interrupted_dump_is_reported() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        a.send(newlink(1, "lo", mflags=2 | rtnl.NLM_F_DUMP_INTR))
        a.send(rtnl.NLMSG_HDR.pack(20, rtnl.NLMSG_DONE, 2, 1, 0) + b"\0" * 4)
        chunks, interrupted = rtnl._receive(b, "link")
    assert interrupted and [link.name for link in parse_dump(chunks)] == ["lo"]


def test_an_interrupted_dump_is_taken_again(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([([b"first"], True), ([b"second"], False), ([b"third"], False)])
    monkeypatch.setattr(rtnl, "dump", lambda mtype, timeout: next(answers))
    assert rtnl.consistent_dump(rtnl.RTM_GETNEIGH) == [b"second"]
    always = iter([([b"x"], True)] * 3 + [([b"never"], False)])
    monkeypatch.setattr(rtnl, "dump", lambda mtype, timeout: next(always))
    assert rtnl.consistent_dump(rtnl.RTM_GETQDISC) == [b"x"]  # three tries, then used as is

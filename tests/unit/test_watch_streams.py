"""Wire formats the watcher parses itself: OVSDB JSON-RPC stream, rtnetlink link messages."""

from __future__ import annotations

import socket
import struct

from vifscope.watch.nlmon import (
    IFLA_IFNAME,
    IFLA_LINKINFO,
    IFLA_MASTER,
    IFLA_OPERSTATE,
    RTM_DELLINK,
    RTM_NEWLINK,
    parse_messages,
)
from vifscope.watch.ovsmon import MONITOR_REQUEST, replies_for, split_json_stream

# --- OVSDB ----------------------------------------------------------------------------------


def test_stream_split_at_object_boundaries_and_partial_tail() -> None:
    text = '{"id":"echo","method":"echo","params":[]}{"method":"update","params":[null,{}],"id":null}{"id":'
    messages, rest = split_json_stream(text)
    assert [m.get("method") for m in messages] == ["echo", "update"]
    assert rest == '{"id":'
    more, rest = split_json_stream(rest + '"vifscope-monitor","result":{},"error":null}\n')
    assert more == [{"id": "vifscope-monitor", "result": {}, "error": None}] and rest == ""


def test_echo_is_answered_and_updates_are_changes() -> None:
    changed, reply = replies_for({"id": "echo", "method": "echo", "params": ["x"]})
    assert (changed, reply) == (False, {"id": "echo", "result": ["x"], "error": None})
    assert replies_for({"id": None, "method": "update", "params": [None, {}]}) == (True, None)
    # The monitor reply (initial contents) means "connected": read OVSDB now.
    assert replies_for({"id": MONITOR_REQUEST["id"], "result": {}, "error": None}) == (True, None)
    assert replies_for({"id": 7, "result": {}}) == (False, None)


# --- rtnetlink --------------------------------------------------------------------------------


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _link_msg(mtype: int, index: int, flags: int, attrs: bytes, family: int = socket.AF_UNSPEC) -> bytes:
    body = struct.pack("=BxHiII", family, 1, index, flags, 0xFFFFFFFF) + attrs
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body


def test_link_messages_batched_in_one_datagram() -> None:
    linkinfo = _attr(IFLA_LINKINFO | 0x8000, _attr(1, b"tun\0"))  # nested flag set, as the kernel does
    new = _link_msg(
        RTM_NEWLINK,
        42,
        0x1 | 0x10000,
        _attr(IFLA_IFNAME, b"vnet3\0") + _attr(IFLA_MASTER, struct.pack("=I", 7)) + _attr(IFLA_OPERSTATE, b"\x06")
        + linkinfo,
    )  # fmt: skip
    gone = _link_msg(RTM_DELLINK, 7, 0, _attr(IFLA_IFNAME, b"br0\0"))
    port = _link_msg(RTM_NEWLINK, 42, 0x1, _attr(IFLA_IFNAME, b"vnet3\0"), family=socket.AF_BRIDGE)
    other = struct.pack("=IHHII", 20, 20, 0, 0, 0) + b"\0" * 4  # RTM_NEWADDR: not ours
    events = parse_messages(new + other + gone + port)
    assert [(e.action, e.name, e.ifindex) for e in events] == [
        ("new", "vnet3", 42),
        ("del", "br0", 7),
        ("new", "vnet3", 42),
    ]
    first = events[0]
    assert (first.master_ifindex, first.admin_up, first.carrier, first.oper_state, first.kind) == (
        7,
        True,
        True,
        "up",
        "tun",
    )
    assert events[1].master_ifindex is None and not events[1].admin_up
    assert events[2].bridge_port_msg and not events[0].bridge_port_msg


def test_truncated_or_garbage_input_is_not_a_crash() -> None:
    msg = _link_msg(RTM_NEWLINK, 3, 1, _attr(IFLA_IFNAME, b"vnet0\0"))
    assert parse_messages(msg[:-3]) == []  # length field says more than there is
    assert parse_messages(b"\xff" * 7) == []
    bad_attr = _link_msg(RTM_NEWLINK, 3, 1, struct.pack("=HH", 200, IFLA_IFNAME) + b"vnet")
    [event] = parse_messages(bad_attr)
    assert (event.name, event.ifindex) == ("", 3)  # the header is still worth a re-dump

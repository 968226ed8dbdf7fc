"""The packet collector's frame decoding: the same keys and counts as flows.bpf.c."""

from __future__ import annotations

import socket
import struct

from vifscope.model.flows import FlowDirection
from vifscope.report.flows import summary_line
from vifscope.sources.flows.decode import Formatter, counts, raw_key
from vifscope.sources.flows.packet import sample_filter

A, B = bytes.fromhex("525400000001"), bytes.fromhex("525400000002")


def eth(proto: int, body: bytes) -> bytes:
    return B + A + struct.pack("!H", proto) + body


def ipv4(proto: int, l4: bytes, frag: int = 0) -> bytes:
    src, dst = socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")
    return eth(0x0800, struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, frag, 64, proto, 0, src, dst) + l4)


def tcp(sport: int, dport: int, payload: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, 0, 0, 0, 0) + b"x" * payload


def record(frame: bytes, length: int, gso: int = 0) -> tuple[object, ...]:
    got = raw_key(frame)
    assert got is not None
    key, hdr = got
    r = Formatter().record(3, FlowDirection.OUT, key, list(counts(length, hdr, gso)))
    return (r.eth_proto, r.proto, r.src_mac, r.dst_mac, r.src, r.dst, r.sport, r.dport, r.bytes, r.packets, r.payload)


def test_tcp_over_ipv4_and_a_gso_packet_counted_in_segments() -> None:
    frame = ipv4(6, tcp(43210, 5201, 100))
    assert record(frame, len(frame)) == (
        0x0800, 6, A.hex(":"), B.hex(":"), "10.0.0.1", "10.0.0.2", 43210, 5201, 154, 1, 100,
    )  # fmt: skip
    # A 10,054-byte GSO packet of 1,448-byte segments: 7 segments, the 54 header bytes 7 times.
    big = record(frame[:160], 54 + 10000, gso=1448)
    assert big[-3:] == (54 + 10000 + 6 * 54, 7, 10000)


def test_udp_icmp_fragments_ipv6_and_arp() -> None:
    udp = ipv4(17, struct.pack("!HHHH", 53, 40000, 8, 0))
    assert record(udp, len(udp))[6:] == (53, 40000, 42, 1, 0)
    ping = ipv4(1, struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"p" * 100)
    assert record(ping, len(ping))[6:] == (8, 0, 142, 1, 100)
    frag = ipv4(17, b"y" * 30, frag=185)  # a later fragment: no ports, payload after the IP header
    assert record(frag, len(frag))[6:] == (0, 0, 64, 1, 30)
    v6 = eth(0x86DD, struct.pack("!IHBB", 6 << 28, 8, 17, 64) + socket.inet_pton(socket.AF_INET6, "fe80::1")
             + socket.inet_pton(socket.AF_INET6, "ff02::1") + struct.pack("!HHHH", 546, 547, 8, 0))  # fmt: skip
    assert record(v6, len(v6))[:8] == (0x86DD, 17, A.hex(":"), B.hex(":"), "fe80::1", "ff02::1", 546, 547)
    arp = eth(0x0806, b"\0" * 28)
    assert record(arp, 60)[4:] == (None, None, 0, 0, 60, 1, 0)
    assert raw_key(b"short") is None


def test_sample_filter_is_ld_rand_mod_n() -> None:
    assert sample_filter(1) == struct.pack("=HBBI", 0x06, 0, 0, 160)  # accept every frame's headers
    ins = [struct.unpack_from("=HBBI", sample_filter(16), i * 8) for i in range(5)]
    assert ins[0] == (0x20, 0, 0, 0xFFFFF038)  # ld rand (SKF_AD_OFF + SKF_AD_RANDOM)
    assert ins[1] == (0x94, 0, 0, 16) and ins[2] == (0x15, 0, 1, 0)  # mod #16; jeq #0
    assert ins[3][3] == 160 and ins[4][3] == 0  # ret #snaplen / ret #0


def test_summary_names_the_collector_and_its_losses() -> None:
    counters = {"entries": 3, "max_entries": 100, "evicted": 0, "failed": 0}
    doc = {"vifs": [], "seconds": 5.0, "counters": counters, "program": "packet 1:8", "read_ms": 0.1,
           "collector": "packet", "sample_rate": 8, "fallback_reason": "EPERM"}  # fmt: skip
    line = summary_line(doc)
    assert "collector packet (sampling 1:8, counts estimated ×8) (fallback: BPF unavailable)" in line
    doc["counters"] = {**counters, "failed": 12}
    assert "12 samples dropped (counts low: raise --sample)" in summary_line(doc)
    bpf = {**doc, "collector": "bpf", "program": "prebuilt", "counters": counters}
    assert "program prebuilt" in summary_line(bpf)

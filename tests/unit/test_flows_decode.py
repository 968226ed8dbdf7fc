"""The packet collector's frame decoding: the same keys and counts as flows.bpf.c."""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import subprocess
import sys

import pytest

from vifscope.cli.main import main
from vifscope.model.flows import FlowDirection
from vifscope.report.flows import summary_line
from vifscope.sources.flows import packet
from vifscope.sources.flows.decode import Formatter, counts, raw_key
from vifscope.sources.flows.libbpf import BpfUnavailable
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
    counters = {"entries": 3, "max_entries": 100, "evicted": 0, "failed": 0, "dropped": 0}
    doc = {"vifs": [], "seconds": 5.0, "counters": counters, "program": "packet 1:8", "read_ms": 0.1,
           "collector": "packet", "sample_rate": 8, "fallback_reason": "EPERM"}  # fmt: skip
    line = summary_line(doc)
    assert "collector packet (sampling 1:8, counts estimated ×8) (fallback: BPF unavailable)" in line
    doc["counters"] = {**counters, "dropped": 12}
    assert "12 samples dropped (socket buffer full: counts low, raise --sample)" in summary_line(doc)
    assert "not recorded" not in summary_line(doc)  # dropped samples are not failed flows
    doc["counters"] = {**counters, "failed": 2}
    assert ", 0 evicted, 2 not recorded;" in summary_line(doc) and "dropped" not in summary_line(doc)
    bpf = {**doc, "collector": "bpf", "program": "prebuilt", "counters": counters}
    assert "program prebuilt" in summary_line(bpf)


@pytest.mark.parametrize(
    ("code", "hint"), [(errno.EMFILE, "ulimit -n"), (errno.EAFNOSUPPORT, "CONFIG_PACKET"), (errno.EPERM, "root")]
)
def test_any_socket_error_is_packet_unavailable_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, code: int, hint: str
) -> None:
    def refuse() -> socket.socket:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(packet, "_new_socket", refuse)
    with pytest.raises(BpfUnavailable) as got:
        packet.open_tap_socket(7, 1)
    assert got.value.code == code and errno.errorcode[code] in got.value.reason and hint in got.value.hint


def test_out_of_fds_is_exit_3_not_a_crash(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """More taps than ``ulimit -n``: flows says so (exit 3), no "error: OSError" (exit 4)."""

    def refuse() -> socket.socket:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(packet, "_new_socket", refuse)
    argv = ["-c", "test:///default", "flows", "--json", "--interval", "0.01", "--collector", "packet"]
    assert main(argv) == 3
    err = next(e for e in json.loads(capsys.readouterr().out)["source_errors"] if e["source"] == "bpf")
    assert "EMFILE" in err["error"] and "ulimit -n" in err["hint"]


def test_soft_nofile_limit_raised_to_the_hard_one() -> None:
    code = "import resource; from vifscope.sources.flows.packet import raise_nofile; L = resource.RLIMIT_NOFILE\n"
    code += "soft, hard = resource.getrlimit(L); resource.setrlimit(L, (64, hard)); raise_nofile()\n"
    code += "print(resource.getrlimit(L) == (hard, hard))"
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "True", ran.stderr


def test_a_batch_read_before_its_tap_was_detached_is_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader took a batch for tap 5, then detach(5) and read(prune=True) ran: counting
    the batch must not bring tap 5's flows back (phantom entries of an unwatched tap)."""
    held: list[socket.socket] = []

    def pair(_ifindex: int, _n: int) -> socket.socket:  # AF_PACKET needs CAP_NET_RAW: any socket will do
        a, b = socket.socketpair()
        held.append(b)
        return a

    monkeypatch.setattr(packet, "open_tap_socket", pair)
    got = raw_key(ipv4(6, tcp(40000, 80, 100)))
    assert got is not None
    with packet.PacketCollector(max_flows=8, sample=4) as col:
        col.attach(5)
        col.attach(6)
        batch = [((i, False, got[0]), counts(154, got[1], 0)) for i in (5, 6)]
        col.detach(5)
        with col.lock:
            col._count(batch)
        assert {flow[0] for flow in col.flows} == {6}
        assert col.frames == 4 and col.flows[(6, False, got[0])][:2] == [154 * 4, 4]  # ×N, like the flows
    for s in held:
        s.close()

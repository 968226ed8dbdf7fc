"""A captured frame's flow key and counts, the way flows.bpf.c makes them (the packet
collector's half of the contract: both collectors' FlowRecords mean the same).

Per frame only raw bytes are sliced (``raw_key``: ~1 µs); addresses and MACs are formatted once
per flow when the table is read (``Formatter``): the reader thread keeps up with more frames.
"""

from __future__ import annotations

import socket

from vifscope.model.flows import FlowDirection, FlowRecord

# (eth_proto, proto, src_mac, dst_mac, src, dst, ports): raw bytes as in the frame, ports the
# L4 header's first 4 bytes (TCP/UDP) or 2 (ICMP: type, code), b"" when there are none.
RawKey = tuple[bytes, int, bytes, bytes, bytes, bytes, bytes]
ETH_HLEN = 14
IPV4, IPV6 = b"\x08\x00", b"\x86\xdd"
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58


def _l4(proto: int, frame: bytes, off: int) -> tuple[bytes, int]:
    """(ports, L4 header length); (b"", 0) when not parsed (as the BPF program's read_l4)."""
    if proto == TCP and len(frame) >= off + 14:
        return frame[off : off + 4], (frame[off + 12] >> 4) * 4
    if proto == UDP and len(frame) >= off + 4:
        return frame[off : off + 4], 8
    if proto in (ICMP, ICMPV6) and len(frame) >= off + 4:
        return frame[off : off + 2], 8
    return b"", 0


def raw_key(frame: bytes) -> tuple[RawKey, int] | None:
    """The frame's key and its L2+L3+L4 header bytes (0 when the IP header is cut or not IP).
    None: no Ethernet header (nothing the BPF program would count either)."""
    if len(frame) < ETH_HLEN:
        return None
    et = frame[12:14]
    macs = frame[6:12], frame[0:6]
    if et == IPV4 and len(frame) >= ETH_HLEN + 20:
        proto, off = frame[23], ETH_HLEN + (frame[14] & 0xF) * 4
        src, dst = frame[26:30], frame[30:34]
        if (frame[20] & 0x1F) or frame[21]:  # a later fragment: no L4 header
            return (et, proto, *macs, src, dst, b""), off
        ports, l4 = _l4(proto, frame, off)
        return (et, proto, *macs, src, dst, ports), off + l4
    if et == IPV6 and len(frame) >= ETH_HLEN + 40:
        proto = frame[ETH_HLEN + 6]  # extension headers are not walked (as in the BPF program)
        ports, l4 = _l4(proto, frame, ETH_HLEN + 40)
        return (et, proto, *macs, frame[22:38], frame[38:54], ports), ETH_HLEN + 40 + l4
    return (et, 0, *macs, b"", b"", b""), 0


def counts(length: int, hdr: int, gso_size: int) -> tuple[int, int, int]:
    """(bytes, packets, payload) of a frame of ``length`` (a GSO packet of ``gso_size`` segments
    counted as its segments, headers once per segment): flows.bpf.c's definitions."""
    if not hdr or hdr >= length:
        return length, 1, 0
    payload = length - hdr
    packets = -(-payload // gso_size) if gso_size else 1  # the kernel's gso_segs: DIV_ROUND_UP
    return length + (packets - 1) * hdr, packets, payload


class Formatter:
    """RawKeys into FlowRecords; each distinct MAC and address formatted once."""

    def __init__(self) -> None:
        self.cache: dict[bytes, str] = {}

    def mac(self, raw: bytes) -> str:
        got = self.cache.get(raw)
        if got is None:
            got = self.cache[raw] = raw.hex(":")
        return got

    def addr(self, raw: bytes) -> str | None:
        if not raw:
            return None
        got = self.cache.get(raw)
        if got is None:
            family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
            got = self.cache[raw] = socket.inet_ntop(family, raw)
        return got

    def record(self, ifindex: int, direction: FlowDirection, key: RawKey, row: list[int]) -> FlowRecord:
        et, proto, smac, dmac, src, dst, ports = key
        if len(ports) == 4:
            sport, dport = int.from_bytes(ports[:2], "big"), int.from_bytes(ports[2:], "big")
        else:
            sport, dport = (ports[0], ports[1]) if ports else (0, 0)
        return FlowRecord(
            ifindex, direction, int.from_bytes(et, "big"), proto, self.mac(smac), self.mac(dmac), self.addr(src),
            self.addr(dst), sport, dport, row[0], row[1], row[2],
        )  # fmt: skip

"""A captured frame's flow key and counts, the way flows.bpf.c makes them (the packet
collector's half of the contract: both collectors' FlowRecords mean the same)."""

from __future__ import annotations

import socket
import struct

from vifscope.model.flows import FlowDirection

# (ifindex, direction, eth_proto, proto, src_mac, dst_mac, src, dst, sport, dport): FlowRecord's
# leading fields, in its order.
Key = tuple[int, FlowDirection, int, int, str, str, str | None, str | None, int, int]
ETH_HLEN = 14
IPV4 = struct.Struct("!BBHHHBBH4s4s")
IPV6_LEN = 40
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58


def _l4(proto: int, frame: bytes, off: int) -> tuple[int, int, int]:
    """(sport, dport, header length) at ``off``; ICMP: (type, code, 8); (0, 0, 0) unparsed."""
    if proto == TCP and len(frame) >= off + 14:
        sport, dport = struct.unpack_from("!HH", frame, off)
        return sport, dport, (frame[off + 12] >> 4) * 4
    if proto in (UDP, ICMP, ICMPV6) and len(frame) >= off + 4:
        if proto == UDP:
            sport, dport = struct.unpack_from("!HH", frame, off)
            return sport, dport, 8
        return frame[off], frame[off + 1], 8
    return 0, 0, 0


def _ip(eth_proto: int, frame: bytes) -> tuple[int, str | None, str | None, int, int, int]:
    """(proto, src, dst, sport, dport, L2+L3+L4 header bytes; 0 when the IP header is cut)."""
    if eth_proto == 0x0800 and len(frame) >= ETH_HLEN + IPV4.size:
        vihl, _tos, _len, _id, frag, _ttl, proto, _sum, src, dst = IPV4.unpack_from(frame, ETH_HLEN)
        off = ETH_HLEN + (vihl & 0xF) * 4
        s, d = socket.inet_ntop(socket.AF_INET, src), socket.inet_ntop(socket.AF_INET, dst)
        if frag & 0x1FFF:  # a later fragment: no L4 header
            return proto, s, d, 0, 0, off
        sport, dport, l4 = _l4(proto, frame, off)
        return proto, s, d, sport, dport, off + l4
    if eth_proto == 0x86DD and len(frame) >= ETH_HLEN + IPV6_LEN:
        proto = frame[ETH_HLEN + 6]  # extension headers are not walked (as in the BPF program)
        s = socket.inet_ntop(socket.AF_INET6, frame[ETH_HLEN + 8 : ETH_HLEN + 24])
        d = socket.inet_ntop(socket.AF_INET6, frame[ETH_HLEN + 24 : ETH_HLEN + 40])
        off = ETH_HLEN + IPV6_LEN
        sport, dport, l4 = _l4(proto, frame, off)
        return proto, s, d, sport, dport, off + l4
    return 0, None, None, 0, 0, 0


def frame_key(
    ifindex: int, direction: FlowDirection, frame: bytes, length: int, gso_size: int
) -> tuple[Key, tuple[int, int, int]] | None:
    """The key and (bytes, packets, payload) of one frame of ``length`` bytes whose first bytes
    are ``frame``; ``gso_size``: its GSO segment size (0: not a GSO packet). None: no Ethernet
    header (nothing the BPF program would count either)."""
    if len(frame) < ETH_HLEN:
        return None
    eth_proto = int.from_bytes(frame[12:14], "big")
    proto, src, dst, sport, dport, hdr = _ip(eth_proto, frame)
    if src is None:
        proto = 0  # non-IP: the BPF program keys proto 0 as well
    nbytes, packets, payload = length, 1, 0
    if hdr and hdr < length:
        payload = length - hdr
        if gso_size:
            packets = -(-payload // gso_size)  # the kernel's gso_segs: DIV_ROUND_UP
            nbytes += (packets - 1) * hdr
    key: Key = (
        ifindex, direction, eth_proto, proto, frame[6:12].hex(":"), frame[0:6].hex(":"), src, dst, sport, dport,
    )  # fmt: skip
    return key, (nbytes, packets, payload)

"""Flow records joined to the binding: per vif (by its tap's ifindex) the talkers grouped by
peer, port or protocol, peers named after the vif they belong to (here or on the fleet:
vifscope.bind.peers), top N by bytes and the rest
summed as ``other``. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from vifscope.bind.peers import PeerNames
from vifscope.model import VifBinding
from vifscope.model.fleetvif import FleetPeerVif
from vifscope.model.flows import FlowDirection, FlowGrouping, FlowRecord, Talker, VifFlows

IP_PROTOS = {0: "ipv6-hop", 1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6", 132: "sctp"}
ETH_PROTOS = {0x0806: "arp", 0x8035: "rarp", 0x88CC: "lldp", 0x8100: "vlan", 0x88A8: "qinq"}
PORTED = {6, 17, 132}
# Link kinds whose transmit path carries what the guest sends: the guest writes a macvtap's
# character device, and the kernel transmits that on the macvtap netdev (tap.c: dev_queue_xmit),
# where a tap's netdev *receives* what the guest writes.
GUEST_SENDS_ON_EGRESS = frozenset({"macvtap"})
_TURNED = {FlowDirection.OUT: FlowDirection.IN, FlowDirection.IN: FlowDirection.OUT}


def proto_name(rec: FlowRecord) -> str:
    if rec.src is None:
        return ETH_PROTOS.get(rec.eth_proto, f"eth-0x{rec.eth_proto:04x}")
    return IP_PROTOS.get(rec.proto, f"ip-{rec.proto}")


def talker_key(rec: FlowRecord, by: FlowGrouping) -> str:
    """The row a record is summed into, seen from the guest: the peer is the other end."""
    if by is FlowGrouping.PROTO:
        return proto_name(rec)
    if by is FlowGrouping.PORT:
        port = f"/{min(rec.sport, rec.dport)}" if rec.proto in PORTED and rec.src is not None else ""
        return proto_name(rec) + port
    out = rec.direction is FlowDirection.OUT
    peer = rec.dst if out else rec.src
    if by is FlowGrouping.FLOW and peer is not None:
        mine, theirs = (rec.sport, rec.dport) if out else (rec.dport, rec.sport)
        if rec.proto not in PORTED:  # ICMP: the ports are type/code, different each way
            return f"{proto_name(rec)} > {peer}"
        return f"{proto_name(rec)} :{mine} > {_bracket(peer)}:{theirs}"
    return peer if peer is not None else (rec.dst_mac if out else rec.src_mac)


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def record_id(r: FlowRecord) -> tuple[object, ...]:
    """A map entry's key: the same flow in two reads."""
    return (r.ifindex, r.direction, r.eth_proto, r.proto, r.src_mac, r.dst_mac, r.src, r.dst, r.sport, r.dport)


def since(prev: Mapping[tuple[object, ...], FlowRecord], cur: Iterable[FlowRecord]) -> list[FlowRecord]:
    """What each flow moved between two reads of the (cumulative) map. A flow whose count went
    down was evicted and re-created in between: its new count is all it moved."""
    moved: list[FlowRecord] = []
    for r in cur:
        p = prev.get(record_id(r))
        if p is None or r.bytes < p.bytes:
            moved.append(r)
        elif r.bytes > p.bytes:
            moved.append(
                replace(r, bytes=r.bytes - p.bytes, packets=r.packets - p.packets, payload=r.payload - p.payload)
            )
    return moved


def _add(t: Talker, rec: FlowRecord) -> Talker:
    if rec.direction is FlowDirection.OUT:
        return replace(
            t, out_bytes=t.out_bytes + rec.bytes, out_packets=t.out_packets + rec.packets,
            out_payload=t.out_payload + rec.payload, flows=t.flows + 1,
        )  # fmt: skip
    return replace(
        t, in_bytes=t.in_bytes + rec.bytes, in_packets=t.in_packets + rec.packets,
        in_payload=t.in_payload + rec.payload, flows=t.flows + 1,
    )  # fmt: skip


def _sum(key: str, rows: Iterable[Talker]) -> Talker:
    total = Talker(key)
    for r in rows:
        total = Talker(
            key, None, total.out_bytes + r.out_bytes, total.out_packets + r.out_packets,
            total.out_payload + r.out_payload, total.in_bytes + r.in_bytes, total.in_packets + r.in_packets,
            total.in_payload + r.in_payload, total.flows + r.flows,
        )  # fmt: skip
    return total


def talkers(records: Iterable[FlowRecord], by: FlowGrouping, names: PeerNames) -> list[Talker]:
    """One vif's records grouped, largest first (ties by key, so the order is stable)."""
    rows: dict[str, Talker] = {}
    for rec in records:
        key = talker_key(rec, by)
        row = rows.get(key)
        if row is None:
            row = _named(Talker(key), rec, names) if by in (FlowGrouping.PEER, FlowGrouping.FLOW) else Talker(key)
        rows[key] = _add(row, rec)
    return sorted(rows.values(), key=lambda t: (-t.bytes, t.key))


def _named(t: Talker, rec: FlowRecord, names: PeerNames) -> Talker:
    out = rec.direction is FlowDirection.OUT
    found = names.lookup(rec.dst if out else rec.src, rec.dst_mac if out else rec.src_mac)
    if len(found) == 1:
        return replace(t, peer=found[0].label, peer_name=found[0])
    return replace(t, peer_candidates=found)


def vif_flows(
    bindings: Iterable[VifBinding],
    records: Iterable[FlowRecord],
    by: FlowGrouping,
    top: int,
    fleet: Iterable[FleetPeerVif] = (),
) -> tuple[VifFlows, ...]:
    """Per vif with a tap (in ``bindings``' order): its top ``top`` talkers and ``other``.
    Peers are named from every binding, then from the ``fleet``'s vifs (other hosts')."""
    every = tuple(bindings)
    names = PeerNames.of(every, fleet)
    per_if: dict[int, list[FlowRecord]] = {}
    for rec in records:
        per_if.setdefault(rec.ifindex, []).append(rec)
    result: list[VifFlows] = []
    for b in every:
        if b.link is None:
            continue
        recs = per_if.get(b.link.ifindex, ())
        if b.link.kind in GUEST_SENDS_ON_EGRESS:
            recs = [replace(r, direction=_TURNED[r.direction]) for r in recs]
        rows = talkers(recs, by, names)
        rest = _sum("other", rows[top:]) if rows[top:] else None
        total = _sum("total", rows)
        result.append(
            VifFlows(b.vif.domain, b.vif.mac, b.link.name, b.link.ifindex, tuple(rows[:top]), rest,
                     total.out_bytes, total.in_bytes)
        )  # fmt: skip
    return tuple(result)

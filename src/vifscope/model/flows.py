"""Flows: what the kernel counted per tap (``FlowRecord``, one key of the BPF map) and what
``vifscope flows`` shows per vif (``VifFlows``: top talkers). Pure data.

Direction is the guest's: OUT is what the guest sent (the tap's ingress), IN what it received
(the tap's egress). ``bytes`` are L2 frame bytes (Ethernet header included, no FCS, headers
counted once per GSO segment), ``packets`` are segments (a GSO packet's gso_segs), ``payload``
is what follows the TCP/UDP/ICMP header — what iperf3 and similar tools count.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# From this fill an LRU flow map is evicting (new flows push old ones out): doctor's
# flows.map_full threshold, and where the map scan stops counting and starts naming owners.
MAP_FULL = 0.9


class FlowDirection(StrEnum):
    """The guest's direction. Collectors record a tap's view (its ingress: the guest sent it);
    a macvtap sees the opposite (the guest's frames leave through its transmit path), which
    ``bind.flows`` turns around, knowing the link's kind."""

    OUT = "out"  # the guest sent it: a tap's ingress, a macvtap's egress
    IN = "in"  # the guest received it: a tap's egress, a macvtap's ingress


class FlowGrouping(StrEnum):
    PEER = "peer"  # the other end's address (its MAC for non-IP frames)
    PORT = "port"  # protocol + the lower of the two ports (the service side, usually)
    PROTO = "proto"  # protocol only
    FLOW = "flow"  # one connection: protocol, the guest's port, the peer's address and port


@dataclass(frozen=True, slots=True)  # slots: 50,000 are built a read; ~40 % faster to construct
class FlowRecord:
    """One entry of the kernel's flow map: a direction of one 5-tuple (plus MACs) on one tap."""

    ifindex: int
    direction: FlowDirection
    eth_proto: int  # EtherType (0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP...)
    proto: int  # IP protocol number; 0 for non-IP frames
    src_mac: str
    dst_mac: str
    src: str | None  # None for non-IP frames
    dst: str | None
    sport: int  # ICMP: type
    dport: int  # ICMP: code
    bytes: int
    packets: int
    payload: int


@dataclass(frozen=True)
class FlowCounters:
    """The program's own counters since the map was created, and the map's fill."""

    packets: int = 0  # packets the program saw
    inserted: int = 0  # flows it created
    failed: int = 0  # flows it could not record (map update failed): their packets are lost
    entries: int = 0  # flows in the map now
    max_entries: int = 0
    deleted: int = 0  # flows the collector removed (of taps it detached from)
    dropped: int = 0  # packet collector: samples the kernel dropped (socket buffer full): counts low

    @property
    def evicted(self) -> int:
        """Flows the LRU pushed out to make room: their counts are lost (map too small)."""
        return max(0, self.inserted - self.entries - self.deleted)


@dataclass(frozen=True)
class FlowSample:
    """One read of the flow map after ``seconds`` of collection."""

    records: tuple[FlowRecord, ...]
    counters: FlowCounters
    seconds: float
    read_ms: float  # the map read (batch lookup + decode)
    program: str  # which object was loaded: "built" (compiled here) or "prebuilt" (shipped)
    collector: str = "bpf"  # "bpf" (the tc program) or "packet" (the AF_PACKET sampling fallback)
    sample_rate: int = 1  # packet: 1 frame in N was counted, ×N (N > 1: estimates)


@dataclass(frozen=True)
class PeerName:
    """Whose vif a peer is: a domain on this host (``host`` None) or on another fleet host."""

    domain: str
    mac: str | None = None  # the peer vif's MAC
    host: str | None = None  # the fleet inventory's name of its host; None: this host

    @property
    def label(self) -> str:
        """``db1`` on this host, ``kvm-b2/db1`` on another."""
        return self.domain if self.host is None else f"{self.host}/{self.domain}"


@dataclass(frozen=True)
class Talker:
    """One row of a vif's top list: one peer / port / protocol, both directions summed."""

    key: str  # the peer's address, "tcp/5201", "tcp", or "tcp :43210 > 10.0.0.2:5201"
    peer: str | None = None  # the peer vif's domain here, or "host/domain" on the fleet (PeerName.label)
    out_bytes: int = 0
    out_packets: int = 0
    out_payload: int = 0
    in_bytes: int = 0
    in_packets: int = 0
    in_payload: int = 0
    flows: int = 0  # map entries summed into this row
    peer_name: PeerName | None = None  # whose vif ``peer`` is (host, domain, MAC)
    # Several fleet vifs claim the peer's address (or MAC): named none of them, listed here.
    peer_candidates: tuple[PeerName, ...] = ()

    @property
    def bytes(self) -> int:
        return self.out_bytes + self.in_bytes


@dataclass(frozen=True)
class VifFlows:
    """A vif's talkers over the interval: the top N by bytes, and the rest summed as ``other``."""

    domain: str
    mac: str | None
    tap: str
    ifindex: int
    talkers: tuple[Talker, ...]
    other: Talker | None  # key "other": every row past the top N
    out_bytes: int = 0
    in_bytes: int = 0


@dataclass(frozen=True)
class FlowSupport:
    """Can ``vifscope flows`` run here (doctor's flows.unavailable)? Read by loading the program
    (nothing is attached) and from the kernel's TCX support."""

    available: bool
    reason: str = ""  # why not, one line (empty when available)
    hint: str = ""
    program: str | None = None  # "built" / "prebuilt" when an object was found
    tcx: bool | None = None  # the kernel has TCX (CONFIG_NET_XGRESS, else its version); None: unknown
    conntrack_acct: bool | None = None  # net.netfilter.nf_conntrack_acct; None: no conntrack here
    packet: bool | None = None  # an AF_PACKET socket opens (the sampling fallback can run); None: not probed
    maps: tuple[FlowMapFill, ...] | None = None  # live flow maps at MAP_FULL or fuller; None: not readable


@dataclass(frozen=True)
class FlowMapFill:
    """A running collector's flow map as another process sees it (doctor's flows.map_full):
    the BPF map by id, how full, and the process holding it."""

    map_id: int
    entries: int
    max_entries: int
    pid: int  # the process holding it (a map no process holds is being freed: not listed)
    argv: tuple[str, ...] = ()  # that process's command line

    @property
    def fill(self) -> float:
        return self.entries / self.max_entries if self.max_entries else 0.0

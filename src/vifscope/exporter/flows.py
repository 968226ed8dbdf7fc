"""``exporter --flows``: the flow program kept attached to every running vif's tap, its map read
each scrape, per vif the top N peers (by bytes since attach) and the rest summed as ``other``.

Cardinality is bounded: at most N + 1 peers per vif and direction, whatever the guests do.
Counters are cumulative from the moment the tap was attached; a peer that falls out of the top
N moves into ``other`` (so ``other`` may step up, and the peer's series stops), and an entry the
LRU evicted restarts from zero (a counter reset, which rate() handles).

Taps are found by the scrape's own binding: a new running vif is attached at the next scrape
(within the scrape's time budget: each TCX attach waits for the kernel, ~10–30 ms, so 1,000 new
taps take several scrapes); a vif whose tap went is detached. Nothing is pinned: when the
exporter exits, however it exits, the kernel drops every link.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from vifscope.bind.flows import vif_flows
from vifscope.exporter.exposition import Family, Row
from vifscope.model import SourceError, VifBinding
from vifscope.model.flows import FlowCounters, FlowGrouping, VifFlows
from vifscope.sources.flows.collector import FlowCollector
from vifscope.sources.flows.libbpf import BpfUnavailable

FLOW_LABELS = ("domain", "mac", "target", "direction", "peer", "peer_domain")
BPF_SOURCE = "bpf"


@dataclass(frozen=True)
class FlowView:
    """One scrape's flows: per vif its top peers, the map's counters, taps attached / waiting."""

    vifs: tuple[VifFlows, ...] = ()
    counters: FlowCounters = field(default_factory=FlowCounters)
    attached: int = 0
    pending: int = 0


def running_taps(bindings: Iterable[VifBinding]) -> dict[int, VifBinding]:
    """The taps the flow program belongs on, by ifindex: those of running vifs (watch, the
    exporter and serve all follow the same set)."""
    return {b.link.ifindex: b for b in bindings if b.link is not None and b.vif.domain_state.has_taps}


class FlowTracker:
    """Owns the FlowCollector (created on first use, so a host without BPF only reports it)."""

    def __init__(
        self, top: int = 5, max_flows: int = 65536, make: Callable[[int], FlowCollector] = FlowCollector
    ) -> None:
        self.top = top
        self.max_flows = max_flows
        self._make = make
        self.collector: FlowCollector | None = None
        self.error: SourceError | None = None

    def ensure(self) -> FlowCollector | None:
        """The collector, loaded on first use; None (and ``error`` set) when BPF cannot be."""
        if self.collector is None and self.error is None:
            try:
                self.collector = self._make(self.max_flows)
            except BpfUnavailable as exc:
                self.error = SourceError(BPF_SOURCE, exc.reason, exc.hint)
        return self.collector

    def update(self, bindings: Sequence[VifBinding], budget: float) -> tuple[FlowView | None, SourceError | None]:
        """Attach new taps (until ``budget`` seconds are spent), detach gone ones, read."""
        col = self.ensure()
        if col is None:
            return None, self.error
        running, errors = self.sync(col, bindings, budget)
        sample = col.read(prune=True)
        attached = [b for i, b in running.items() if i in col.links]
        view = FlowView(
            vif_flows(attached, sample.records, FlowGrouping.PEER, self.top),
            sample.counters,
            len(col.links),
            len(running) - len(attached),
        )
        err = SourceError(BPF_SOURCE, f"attach failed: {errors[0]}", "") if errors else None
        return view, err

    @staticmethod
    def sync(
        col: FlowCollector, bindings: Iterable[VifBinding], budget: float
    ) -> tuple[dict[int, VifBinding], list[str]]:
        """Follow the bindings: the running vifs' taps attached (within ``budget`` seconds), the
        rest detached. (Running vifs by ifindex, the reasons of the attaches that failed.)"""
        running = running_taps(bindings)
        return running, [exc.reason for exc in col.sync(set(running), budget)]

    def close(self) -> None:
        if self.collector is not None:
            self.collector.close()
            self.collector = None


def flow_families(view: FlowView | None) -> Iterator[Family]:
    if view is None:
        return
    byte_rows: list[Row] = []
    packet_rows: list[Row] = []
    for v in view.vifs:
        for t in (*v.talkers, *((v.other,) if v.other else ())):
            for direction, nbytes, packets in (("out", t.out_bytes, t.out_packets), ("in", t.in_bytes, t.in_packets)):
                if nbytes or packets:
                    labels = (v.domain, v.mac or "", v.tap, direction, t.key, t.peer or "")
                    byte_rows.append((labels, float(nbytes)))
                    packet_rows.append((labels, float(packets)))
    c = view.counters
    yield Family(
        "vifscope_vif_flow_bytes_total", "counter",
        "L2 bytes a vif exchanged with a peer since its tap was attached (direction: the guest's; top N peers, "
        "the rest as peer=\"other\").", FLOW_LABELS, tuple(byte_rows),
    )  # fmt: skip
    yield Family(
        "vifscope_vif_flow_packets_total", "counter", "Packets (GSO segments) a vif exchanged with a peer.",
        FLOW_LABELS, tuple(packet_rows),
    )  # fmt: skip
    yield Family("vifscope_flow_map_entries", "gauge", "Flows in the BPF flow map.", (), (((), float(c.entries)),))
    yield Family(
        "vifscope_flow_map_capacity", "gauge", "Size of the BPF flow map (LRU).", (), (((), float(c.max_entries)),)
    )
    yield Family(
        "vifscope_flow_map_evicted_total", "counter",
        "Flows the LRU pushed out for room (their counts were lost: the map is too small).", (),
        (((), float(c.evicted)),),
    )  # fmt: skip
    yield Family(
        "vifscope_flow_map_failed_total", "counter", "Flows the program could not record (map update failed).",
        (), (((), float(c.failed)),),
    )  # fmt: skip
    yield Family(
        "vifscope_flow_taps", "gauge", "Running vifs' taps with the flow program attached, and waiting for it.",
        ("state",), ((("attached",), float(view.attached)), (("pending",), float(view.pending))),
    )  # fmt: skip

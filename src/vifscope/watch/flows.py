"""``watch --flows``: the flow program follows the watch's own binding — attached to a running
vif's tap as soon as a netlink or libvirt event puts the tap in the table, detached when it
leaves — and every ``interval`` seconds one ``flows`` event per vif that moved traffic, with its
top peers over that interval (the map is cumulative; each report is the delta since the last).

Nothing is pinned: when watch exits, however it exits, the kernel drops the links.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vifscope.bind.flows import record_id, since, vif_flows
from vifscope.exporter.flows import running_taps
from vifscope.model import SourceError, VifBinding
from vifscope.model.flows import FlowGrouping, FlowRecord
from vifscope.report.flows import talker_dict
from vifscope.sources.flows.collector import FlowCollector
from vifscope.sources.flows.libbpf import BpfUnavailable

ATTACH_BUDGET = 2.0  # seconds of attaching per table update; the rest at the next one


class FlowWatch:
    def __init__(self, interval: float, top: int = 5, max_flows: int = 65536) -> None:
        self.interval = interval
        self.top = top
        self.max_flows = max_flows
        self.collector: FlowCollector | None = None
        self.prev: dict[tuple[object, ...], FlowRecord] = {}
        self.last = 0.0

    def start(self, now: float) -> SourceError | None:
        """Load the program; its error when it cannot be (watch goes on without flows)."""
        try:
            self.collector = FlowCollector(self.max_flows)
        except BpfUnavailable as exc:
            return SourceError("bpf", exc.reason, exc.hint)
        self.last = now
        return None

    def sync(self, bindings: Iterable[VifBinding]) -> SourceError | None:
        """Follow the table: the running vifs' taps attached, the rest detached."""
        if self.collector is None:
            return None
        failed = self.collector.sync(set(running_taps(bindings)), ATTACH_BUDGET)
        return SourceError("bpf", failed[0].reason, failed[0].hint) if failed else None

    def report(self, bindings: Iterable[VifBinding], now: float, shown: set[int]) -> list[dict[str, Any]]:
        """One ``flows`` event per attached vif (of the ``shown`` ifindexes: watch -d) that moved
        traffic since the last report. Peers are named from every binding."""
        if self.collector is None:
            return []
        sample = self.collector.read(prune=True)
        moved = since(self.prev, sample.records)
        self.prev = {record_id(r): r for r in sample.records}
        seconds, self.last = now - self.last, now
        docs: list[dict[str, Any]] = []
        for v in vif_flows(tuple(bindings), moved, FlowGrouping.PEER, self.top):
            if v.ifindex not in self.collector.links or v.ifindex not in shown or not (v.out_bytes or v.in_bytes):
                continue
            talkers = [*v.talkers, *((v.other,) if v.other else ())]
            docs.append({
                "event": "flows", "domain": v.domain, "mac": v.mac, "target": v.tap, "seconds": round(seconds, 3),
                "out_bytes": v.out_bytes, "in_bytes": v.in_bytes, "talkers": [talker_dict(t, seconds) for t in talkers],
            })  # fmt: skip
        return docs

    def close(self) -> None:
        if self.collector is not None:
            self.collector.close()
            self.collector = None


def flows_text(d: dict[str, Any]) -> str:
    """``flows web1 52:54:.. vnet3 over 60 s: out 1.2 MiB, in 80 KiB; 10.0.0.5 (db) 1.1 MiB, ...``."""
    from vifscope.report.flows import human_size

    def peer(t: dict[str, Any]) -> str:
        name = f" ({t['peer']})" if t["peer"] else ""
        return f"{t['key']}{name} {human_size(t['out']['bytes'] + t['in']['bytes'])}"

    peers = ", ".join(peer(t) for t in d["talkers"])
    head = f"flows {d['domain']} {d['mac'] or '-'} {d['target']} over {d['seconds']:.0f} s"
    return f"{head}: out {human_size(d['out_bytes'])}, in {human_size(d['in_bytes'])}; {peers}"

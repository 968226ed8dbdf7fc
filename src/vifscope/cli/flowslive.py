"""``vifscope flows --live``: the per-vif tables redrawn every interval, each showing what moved
since the previous read (the map is cumulative; nothing is cleared in the kernel)."""

from __future__ import annotations

import time
from dataclasses import replace

from vifscope.bind.flows import record_id, since, vif_flows
from vifscope.model import VifBinding
from vifscope.model.fleetvif import FleetPeerVif
from vifscope.model.flows import FlowGrouping, FlowRecord
from vifscope.report import flows as report
from vifscope.sources.flows.choose import Collector


def run_live(
    col: Collector,
    every: tuple[VifBinding, ...],
    attached: tuple[VifBinding, ...],
    by: FlowGrouping,
    top: int,
    interval: float,
    fleet: tuple[FleetPeerVif, ...] = (),
    fallback: str = "",
) -> int:
    """Until Ctrl-C (exit 0); the collector's context manager detaches on the way out."""
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    from vifscope.cli.common import make_console

    mine = {b.link.ifindex for b in attached if b.link is not None}
    prev: dict[tuple[object, ...], FlowRecord] = {}
    last = time.monotonic()
    try:
        with Live(console=make_console(), auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                sample = col.read()
                now = time.monotonic()
                moved = replace(sample, records=tuple(since(prev, sample.records)), seconds=now - last)
                prev, last = {record_id(r): r for r in sample.records}, now
                shown = [v for v in vif_flows(every, moved.records, by, top, fleet) if v.ifindex in mine]
                doc = report.flows_report(shown, moved, by.value, top, (), fallback)
                tables = [report.vif_table(v, by.value) for v in doc["vifs"]]
                live.update(Group(*tables, Text(report.summary_line(doc))), refresh=True)
    except KeyboardInterrupt:
        return 0

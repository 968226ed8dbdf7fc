"""``vifscope top``: live per-vif traffic (bit/s, packet/s, drops, errors) next to the verdict.

Each refresh takes a bounded snapshot (``DeadlineSnapshotter``: a stuck libvirtd blanks the
verdicts, it does not freeze the screen), binds it, and divides counter deltas by the time
between the two link dumps. ``--once`` takes two samples one interval apart and prints the
rates once (``--json`` for scripts). Pure parts (rows, sorting, the JSON document) are
separate from the terminal loop so they are testable without a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from vifscope.bind.join import bind
from vifscope.model import VifBinding
from vifscope.report import documents as report
from vifscope.report.tables import STATUS_STYLE, make_console
from vifscope.report.vifstats import GuestCounters, GuestRates, guest_counters, rates
from vifscope.sources.deadline import DeadlineSnapshotter, TimedSnapshot
from vifscope.top.keys import Keys

VifKey = tuple[str, int, str | None]


@dataclass(frozen=True)
class VifRow:
    """One vif in one refresh: verdict, cumulative counters and rates since the previous sample."""

    binding: VifBinding
    counters: GuestCounters | None
    rates: GuestRates | None


def _key(b: VifBinding) -> VifKey:
    # The target is part of the key: a restarted domain gets a new tap with fresh counters.
    return (b.vif.domain_uuid, b.vif.index, b.vif.target)


def sample_rows(
    prev: Sequence[VifBinding], prev_at: float | None, cur: Sequence[VifBinding], cur_at: float | None
) -> tuple[VifRow, ...]:
    """Rows for ``cur``; rates where the same link was read in both samples."""
    before = {_key(b): guest_counters(b.link) for b in prev}
    seconds = (cur_at - prev_at) if cur_at is not None and prev_at is not None else 0.0
    rows = []
    for b in cur:
        now, then = guest_counters(b.link), before.get(_key(b))
        rate = rates(then, now, seconds) if now is not None and then is not None else None
        rows.append(VifRow(b, now, rate))
    return tuple(rows)


def _rate(attr: str) -> Callable[[VifRow], tuple[float, str, int]]:
    def key(r: VifRow) -> tuple[float, str, int]:
        value = getattr(r.rates, attr) if r.rates else -1.0
        return (-value, r.binding.vif.domain, r.binding.vif.index)

    return key


def _total(*fields: str) -> Callable[[VifRow], tuple[float, str, int]]:
    def key(r: VifRow) -> tuple[float, str, int]:
        value = sum(getattr(r.counters, f) for f in fields) if r.counters else -1
        return (-float(value), r.binding.vif.domain, r.binding.vif.index)

    return key


# --sort keys: rates and counters sort busiest first; domain and status alphabetically.
SORTS: dict[str, Callable[[VifRow], Any]] = {
    "rx": _rate("rx_bps"),
    "tx": _rate("tx_bps"),
    "rxpps": _rate("rx_pps"),
    "txpps": _rate("tx_pps"),
    "drops": _total("rx_dropped", "tx_dropped"),
    "errors": _total("rx_errors", "tx_errors"),
    "domain": lambda r: (r.binding.vif.domain, r.binding.vif.index),
    "status": lambda r: (r.binding.status.value, r.binding.vif.domain, r.binding.vif.index),
}


def sort_rows(rows: Sequence[VifRow], by: str, reverse: bool = False) -> list[VifRow]:
    return sorted(rows, key=SORTS[by], reverse=reverse)


def row_dict(r: VifRow) -> dict[str, Any]:
    """One vif of ``top --json``: identity and verdict as in ``status --json``, plus traffic."""
    b, c, rt = r.binding, r.counters, r.rates
    base = report.binding_dict(b)
    doc = {k: base[k] for k in ("domain", "domain_uuid", "index", "type", "mac", "target", "bridge", "status")}
    for attr in ("rx_bps", "tx_bps", "rx_pps", "tx_pps", "drops_ps", "errors_ps"):
        doc[attr] = round(getattr(rt, attr), 3) if rt else None
    for attr in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_dropped", "tx_dropped"):
        doc[attr] = getattr(c, attr) if c else None
    doc["rx_errors"], doc["tx_errors"] = (c.rx_errors, c.tx_errors) if c else (None, None)
    return doc


def top_report(sample: TimedSnapshot, rows: Sequence[VifRow], seconds: float, sort: str) -> dict[str, Any]:
    snap = sample.snapshot
    return {
        "host": snap.host,
        "uri": snap.uri,
        "taken_at": snap.taken_at.isoformat(),
        "interval": round(seconds, 3),
        "sort": sort,
        "summary": dict(report.counts(r.binding for r in rows)),
        "vifs": [row_dict(r) for r in rows],
        "source_errors": report.errors_list(snap.errors),
    }


def human_bits(value: float | None) -> str:
    """SI bit rate, as network people write it: 950 b/s, 12.3 kb/s, 1.05 Gb/s."""
    if value is None:
        return "-"
    for unit, scale in (("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} b/s"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _faults(total: int | None, per_second: float | None) -> Text:
    if total is None:
        return Text("-", style="dim")
    grow = f" +{per_second:.1f}/s" if per_second else ""
    return Text(f"{total}{grow}", style="bold red" if per_second else ("yellow" if total else ""))


def top_table(rows: Sequence[VifRow]) -> Table:
    table = Table(header_style="bold", pad_edge=False, expand=False)
    for col in ("DOMAIN", "#", "TARGET", "STATUS", "RX bit/s", "TX bit/s", "RX pkt/s", "TX pkt/s", "DROPS", "ERRORS"):
        table.add_column(col, justify="right" if "/s" in col or col in ("#", "DROPS", "ERRORS") else "left")
    for r in rows:
        b, c, rt = r.binding, r.counters, r.rates
        drops = c.rx_dropped + c.tx_dropped if c else None
        errors = c.rx_errors + c.tx_errors if c else None
        table.add_row(
            b.vif.domain,
            str(b.vif.index),
            b.vif.target or "-",
            Text(b.status.value, style=STATUS_STYLE.get(b.status.value, "")),
            human_bits(rt.rx_bps if rt else None),
            human_bits(rt.tx_bps if rt else None),
            _num(rt.rx_pps if rt else None),
            _num(rt.tx_pps if rt else None),
            _faults(drops, rt.drops_ps if rt else None),
            _faults(errors, rt.errors_ps if rt else None),
            style="dim" if b.status.value == "inactive" else None,
        )
    return table


def _view(doc: dict[str, Any], rows: Sequence[VifRow], sort: str, reverse: bool, live: bool) -> Group:
    order = "ascending" if reverse else "default"
    keys = "  keys: s sort, r reverse, q quit" if live else ""
    head = Text(f"{doc['host']}  {doc['taken_at'][11:19]}  sort {sort} ({order}){keys}", style="bold")
    parts: list[Any] = [head, top_table(rows)]
    parts.append(Text(report.summary_line([r.binding for r in rows]), style=""))
    parts.extend(Text(f"warning: {e['source']}: {e['error']}", style="yellow") for e in doc["source_errors"])
    return Group(*parts)


class TopSession:
    """The sampling state of one ``top`` run: the previous sample and the user's choices."""

    def __init__(self, args: argparse.Namespace, snapper: DeadlineSnapshotter) -> None:
        self.args, self.snapper = args, snapper
        self.sort, self.reverse = args.sort, args.reverse
        self.prev = snapper.take()
        self.prev_bindings = bind(self.prev.snapshot)
        self.last: tuple[TimedSnapshot, tuple[VifRow, ...], float] | None = None

    def step(self) -> None:
        """Take the next sample; rates are over the time between this and the previous link dump."""
        cur = self.snapper.take()
        bindings = bind(cur.snapshot)
        rows = sample_rows(self.prev_bindings, self.prev.links_at, bindings, cur.links_at)
        seconds = (cur.links_at or 0.0) - (self.prev.links_at or 0.0)
        self.prev, self.prev_bindings = cur, bindings
        shown = {id(b) for b in report.select(bindings, self.args.domain or (), self.args.problems)}
        self.last = (cur, tuple(r for r in rows if id(r.binding) in shown), seconds)

    def report(self) -> tuple[dict[str, Any], list[VifRow]]:
        """The last sample as the JSON document and its rows in display order."""
        assert self.last is not None, "step() first"
        cur, rows, seconds = self.last
        ordered = sort_rows(rows, self.sort, self.reverse)
        return top_report(cur, ordered, seconds, self.sort), ordered

    def key(self, key: str) -> None:
        if key == "s":
            names = list(SORTS)
            self.sort = names[(names.index(self.sort) + 1) % len(names)]
        elif key == "r":
            self.reverse = not self.reverse


def run_once(session: TopSession) -> int:
    time.sleep(session.args.interval)
    session.step()
    doc, rows = session.report()
    code = report.exit_code(session.prev.snapshot, [r.binding for r in rows])
    if session.args.json:
        sys.stdout.write(json.dumps(doc, indent=2 if sys.stdout.isatty() else None) + "\n")
    else:
        make_console().print(_view(doc, rows, session.sort, session.reverse, live=False))
    return code


def run_live(session: TopSession, console: Console) -> int:
    """Refresh every interval; a key press re-sorts the last sample at once (no new sample:
    rates over a fraction of a second would be noise)."""
    try:
        with Keys() as keys, Live(console=console, auto_refresh=False, screen=False) as live:
            next_at = time.monotonic() + session.args.interval
            while True:
                key = keys.read(max(0.0, next_at - time.monotonic()))
                if key == "q":
                    return report.EXIT_OK
                if key is None:
                    session.step()
                    next_at = time.monotonic() + session.args.interval
                else:
                    session.key(key)
                if session.last is not None:
                    doc, rows = session.report()
                    live.update(_view(doc, rows, session.sort, session.reverse, keys.interactive), refresh=True)
    except KeyboardInterrupt:  # Ctrl-C is how a user leaves top: a normal exit
        return report.EXIT_OK

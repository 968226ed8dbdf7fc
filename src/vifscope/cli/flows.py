"""``vifscope flows [DOMAIN]``: per vif, who it talked to over an interval — a BPF program on
each running vif's tap (TCX links, detached on exit however the process ends), its flow map
read once at the end and joined to the binding (peers named after their domains)."""

from __future__ import annotations

import argparse
import errno
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vifscope.bind.flows import vif_flows
from vifscope.bind.join import bind
from vifscope.cli.common import make_console, show
from vifscope.cli.flowsfleet import FleetPeers, add_fleet_options, fleet_peers
from vifscope.model import HostSnapshot, SourceError, VifBinding
from vifscope.model.flows import FlowGrouping
from vifscope.report import flows as report
from vifscope.report.documents import EXIT_OK, EXIT_SOURCE, EXIT_USAGE
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.snapshot import take_snapshot

if TYPE_CHECKING:
    from rich.console import Console

    from vifscope.sources.flows.choose import Collector
    from vifscope.sources.flows.libbpf import BpfUnavailable


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "flows",
        help="per vif, its top talkers over an interval (a BPF program on each tap)",
        epilog="exit codes: 0 ok, 2 usage, 3 no collector (neither BPF nor AF_PACKET) or libvirt / netlink "
        "unavailable. Direction is the guest's: out = what the guest sent. bytes are L2 frames (headers once per "
        "segment), payload_bytes what "
        "follows the TCP/UDP/ICMP header.",
    )
    common(p)
    p.add_argument("domain", nargs="?", metavar="DOMAIN", help="only this domain's vifs (name or UUID)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="talkers per vif (default 10; the rest: other)")
    p.add_argument("--by", choices=[g.value for g in FlowGrouping], default="peer", help="group by (default peer)")
    p.add_argument("--interval", type=float, default=5.0, metavar="S", help="seconds to collect (default 5)")
    p.add_argument("--max-flows", type=int, default=65536, metavar="N", help="flow map size (LRU; default 65536)")
    p.add_argument(
        "--collector", choices=["auto", "bpf", "packet"], default="auto",
        help="bpf: the tc program (exact); packet: AF_PACKET sampling (estimates at --sample > 1); "
        "auto (default): bpf, else packet",
    )  # fmt: skip
    p.add_argument(
        "--sample", type=int, default=1, metavar="N", help="packet collector: count 1 frame in N, ×N (default 1)"
    )
    p.add_argument("--live", action="store_true", help="refresh every interval until Ctrl-C, like top")
    add_fleet_options(p)
    p.set_defaults(func=cmd_flows)


def _scope(snap: HostSnapshot, domain: str | None) -> tuple[tuple[VifBinding, ...], tuple[VifBinding, ...]]:
    """(every binding, for naming peers; the running vifs with a tap that flows attaches to)."""
    every = bind(snap)
    mine = tuple(
        b
        for b in every
        if b.link is not None
        and b.vif.domain_state.has_taps
        and (domain is None or domain in (b.vif.domain, b.vif.domain_uuid))
    )
    return every, mine


def _attach(col: Collector, vifs: tuple[VifBinding, ...]) -> tuple[tuple[VifBinding, ...], list[SourceError]]:
    """Attach to each tap; a tap gone since the snapshot is skipped with a note, not fatal."""
    from vifscope.sources.flows.libbpf import BpfUnavailable

    kept: list[VifBinding] = []
    errors: list[SourceError] = []
    for b in vifs:
        assert b.link is not None  # _scope kept only vifs with a link
        try:
            col.attach(b.link.ifindex)
        except BpfUnavailable as exc:
            if exc.code != errno.ENODEV:
                raise
            errors.append(SourceError("bpf", f"{b.link.name}: gone before attach ({exc.reason})"))
            continue
        kept.append(b)
    return tuple(kept), errors


def cmd_flows(args: argparse.Namespace) -> int:
    if args.top < 1 or args.interval <= 0 or args.max_flows < 1 or args.sample < 1:
        msg = "error: --top, --interval, --max-flows and --sample must be positive"
        make_console(stderr=True).print(msg, highlight=False)
        return EXIT_USAGE
    snap = take_snapshot(resolve_uri(args.connect))
    every, mine = _scope(snap, args.domain)
    if args.domain and not mine and not args.json:
        make_console(stderr=True).print(f"note: no running vif with a tap for domain {args.domain}", markup=False)
    if snap.failed("libvirt") or snap.failed("netlink"):
        doc = report.unavailable_report("libvirt or netlink unreadable: no vifs to attach to", "", snap.errors)
        return show(doc, EXIT_SOURCE, args.json, lambda _c: None)  # show prints the source's own error
    fleet = fleet_peers(args)  # before attaching: the interval is not stretched by slow agents
    if isinstance(fleet, int):
        return fleet
    from vifscope.sources.flows.choose import open_attached
    from vifscope.sources.flows.libbpf import BpfUnavailable

    done: list[tuple[tuple[VifBinding, ...], list[SourceError]]] = []
    try:
        col, why = open_attached(args.collector, args.max_flows, args.sample, lambda c: done.append(_attach(c, mine)))
    except BpfUnavailable as exc:
        return _unavailable(args, exc, snap.errors)
    try:
        attached, notes = done[-1]
        return _collect(args, col, every, attached, fleet, [*snap.errors, *fleet[1], *notes], why)
    finally:
        col.close()


def _unavailable(args: argparse.Namespace, exc: BpfUnavailable, errors: tuple[SourceError, ...]) -> int:
    """No collector could run: one line and a hint (exit 3)."""
    from rich.markup import escape

    if args.json:
        return show(report.unavailable_report(exc.reason, exc.hint, errors), EXIT_SOURCE, True, print)
    err = make_console(stderr=True)
    err.print(f"[bold red]error:[/] {escape(exc.reason)}", highlight=False)
    err.print(f"  hint: {exc.hint}", highlight=False, markup=False)
    return EXIT_SOURCE


def _collect(
    args: argparse.Namespace,
    col: Collector,
    every: tuple[VifBinding, ...],
    attached: tuple[VifBinding, ...],
    fleet: FleetPeers,
    errors: list[SourceError],
    why: str,
) -> int:
    by = FlowGrouping(args.by)
    if why:  # auto fell back: say which collector counts, and why not the exact one
        note = f"flows: BPF unavailable ({why}); fallback: packet sampling 1:{args.sample} active"
        make_console(stderr=True).print(note, highlight=False, markup=False)
    live = args.live and not args.json
    # On stderr even with --json: a script (or a test) starts its traffic once this is printed.
    span = f"every {args.interval:g} s until Ctrl-C" if live else f"for {args.interval:g} s"
    make_console(stderr=True).print(f"flows: collecting on {len(attached)} taps {span}", highlight=False)
    if live:
        from vifscope.cli.flowslive import run_live

        return run_live(col, every, attached, by, args.top, args.interval, fleet[0], why)
    time.sleep(args.interval)
    sample = col.read()
    # Peers are named from every binding, not only the attached ones: with a DOMAIN given, the
    # other domains' vifs still name their addresses and MACs.
    vifs = vif_flows(every, sample.records, by, args.top, fleet[0])
    shown = [v for v in vifs if v.ifindex in col.links]
    doc = report.flows_report(shown, sample, by.value, args.top, errors, why)

    def human(console: Console) -> None:
        for v in doc["vifs"]:
            console.print(report.vif_table(v, by.value))
        console.print(report.summary_line(doc), highlight=False)

    return show(doc, EXIT_OK, args.json, human)

"""``vifscope status``: one binding verdict for every vif (the main job)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vifscope.bind.join import bind
from vifscope.cli.common import make_console, show, vif_filters
from vifscope.model import HostSnapshot, VifBinding
from vifscope.report import documents as report
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.snapshot import take_snapshot

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    st = sub.add_parser("status", help="binding verdict for every vif")
    common(st)
    vif_filters(st)
    st.add_argument("--wide", action="store_true", help="every guest address with its source (ADDRESSES column)")
    st.add_argument(
        "--agent",
        action="store_true",
        help="also ask each running guest's QEMU agent for its addresses (opens a read-write libvirt connection)",
    )
    st.set_defaults(func=cmd_status)


def selected_bindings(args: argparse.Namespace) -> tuple[HostSnapshot, tuple[VifBinding, ...], tuple[VifBinding, ...]]:
    """A fresh snapshot, the verdicts of the ``-d`` domains, and of those the ones ``--problems``
    keeps (status, graph). The summary speaks of the first: what the filter hid counts too."""
    snap = take_snapshot(resolve_uri(args.connect), agent=getattr(args, "agent", False))
    scope = report.select(bind(snap), args.domain or ())
    return snap, scope, report.select(scope, (), args.problems)


def cmd_status(args: argparse.Namespace) -> int:
    snap, scope, bindings = selected_bindings(args)
    doc = report.status_report(snap, bindings)
    code = report.exit_code(snap, bindings)
    if args.domain and not bindings and not snap.failed("libvirt"):
        known = {v.domain for v in snap.vifs}
        unknown = [d for d in args.domain if d not in known]
        if unknown and not args.json:
            make_console(stderr=True).print(f"note: no vifs for domain(s): {', '.join(unknown)}", highlight=False)

    def human(console: Console) -> None:
        from vifscope.report.tables import vif_table

        if doc["vifs"]:
            console.print(vif_table(doc["vifs"], wide=args.wide))
        console.print(report.status_summary(scope, args.problems), highlight=False)
        if args.wide:  # the "verbose" view: say which address sources were not asked, and why
            for note in doc["notes"]:
                console.print(f"[dim]note: {note}[/]", highlight=False)

    return show(doc, code, args.json, human)

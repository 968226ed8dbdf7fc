"""``vifscope status``: one binding verdict for every vif (the main job)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from vifscope.bind.join import bind
from vifscope.cli.output import emit_json, fatal_source, make_console
from vifscope.report import documents as report
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.snapshot import take_snapshot


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    st = sub.add_parser("status", help="binding verdict for every vif")
    common(st)
    st.add_argument("-d", "--domain", action="append", metavar="NAME", help="only this domain (repeatable)")
    st.add_argument("--problems", action="store_true", help="only vifs that are not bound/inactive")
    st.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    snap = take_snapshot(resolve_uri(args.connect))
    bindings = report.select(bind(snap), args.domain or (), args.problems)
    doc = report.status_report(snap, bindings)
    code = report.exit_code(snap, bindings)
    if args.domain and not bindings and not snap.failed("libvirt"):
        known = {v.domain for v in snap.vifs}
        unknown = [d for d in args.domain if d not in known]
        if unknown and not args.json:
            make_console(stderr=True).print(f"note: no vifs for domain(s): {', '.join(unknown)}", highlight=False)
    if args.json:
        emit_json(doc)
        return code
    from vifscope.report.tables import print_errors, vif_table

    console, err = make_console(), make_console(stderr=True)
    if fatal_source(err, doc):
        return code
    print_errors(err, doc["source_errors"])
    if doc["vifs"]:
        console.print(vif_table(doc["vifs"]))
    console.print(report.summary_line(bindings), highlight=False)
    return code

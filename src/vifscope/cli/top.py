"""``vifscope top``: arguments, then the live view of vifscope.top.app."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from vifscope.cli.common import vif_filters
from vifscope.report import documents as report
from vifscope.report.tables import make_console
from vifscope.sources.deadline import DeadlineSnapshotter
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.libvirt.declared import DEFAULT_MAX_AGE
from vifscope.top.app import SORTS, TopSession, run_live, run_once


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("top", help="live per-vif traffic: bit/s, packet/s, drops, errors, verdict")
    common(p)
    p.add_argument("--sort", choices=list(SORTS), default="rx", help="column to sort by (default rx: busiest first)")
    p.add_argument("--reverse", action="store_true", help="reverse the sort order")
    p.add_argument("-i", "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    p.add_argument("--once", action="store_true", help="two samples one interval apart, print once, exit")
    vif_filters(p)
    p.add_argument("--timeout", type=float, default=2.0, help="deadline per source in seconds (default 2)")
    p.set_defaults(func=run_top)


def run_top(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        make_console(stderr=True).print("error: --interval must be > 0\n  hint: e.g. --interval 1")
        return report.EXIT_USAGE
    # A refresh a second: domain XML is kept between refreshes and re-read on libvirt's events.
    snapshotter = DeadlineSnapshotter(resolve_uri(args.connect), args.timeout, declared_max_age=DEFAULT_MAX_AGE)
    session = TopSession(args, snapshotter)
    if args.once or args.json:
        return run_once(session)
    return run_live(session, make_console())

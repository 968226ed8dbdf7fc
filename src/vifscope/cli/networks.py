"""``vifscope networks``: libvirt networks, their bridges, DHCP and leases."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from vifscope.cli.output import emit_json, fatal_source, make_console
from vifscope.report import documents as report
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.snapshot import take_snapshot


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    nets = sub.add_parser("networks", help="libvirt networks, their bridges and DHCP")
    common(nets)
    nets.set_defaults(func=cmd_networks)


def cmd_networks(args: argparse.Namespace) -> int:
    snap = take_snapshot(resolve_uri(args.connect))
    doc = report.networks_report(snap)
    code = report.networks_exit_code(snap)
    if args.json:
        emit_json(doc)
        return code
    from vifscope.report.tables import network_table, print_errors

    console, err = make_console(), make_console(stderr=True)
    if fatal_source(err, doc):
        return code
    print_errors(err, doc["source_errors"])
    console.print(network_table(doc["networks"]))
    console.print(f"{len(doc['networks'])} networks", highlight=False)
    return code

"""``vifscope networks``: libvirt networks, their bridges, DHCP and leases."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vifscope.cli.common import show
from vifscope.report import documents as report
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.snapshot import take_snapshot

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    nets = sub.add_parser("networks", help="libvirt networks, their bridges and DHCP")
    common(nets)
    nets.set_defaults(func=cmd_networks)


def cmd_networks(args: argparse.Namespace) -> int:
    snap = take_snapshot(resolve_uri(args.connect))
    doc = report.networks_report(snap)
    code = report.networks_exit_code(snap)

    def human(console: Console) -> None:
        from vifscope.report.tables import network_table

        console.print(network_table(doc["networks"]))
        count = len(doc["networks"])
        console.print(f"{count} network{'' if count == 1 else 's'}", highlight=False)

    return show(doc, code, args.json, human)

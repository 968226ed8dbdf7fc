"""``vifscope graph --format mermaid|dot|json``: the topology the web page draws, for docs and
tickets (the renderers are in vifscope.report.graph).

Exit codes like ``status``: 0 every running vif bound, 1 problems, 3 a needed source failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from vifscope.cli.common import vif_filters
from vifscope.cli.status import selected_bindings
from vifscope.report import documents as report
from vifscope.report.graph import RENDERERS, graph_document
from vifscope.report.tables import make_console
from vifscope.report.topology import build_topology


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("graph", help="the host's virtual network as a graph: mermaid, Graphviz dot or JSON")
    common(p)
    p.add_argument("--format", choices=("mermaid", "dot", "json"), default="mermaid", help="default mermaid")
    vif_filters(p)
    p.set_defaults(func=run_graph)


def run_graph(args: argparse.Namespace) -> int:
    snap, _, bindings = selected_bindings(args)
    code = report.exit_code(snap, bindings)
    topo = build_topology(snap, bindings, all_networks=not (args.domain or args.problems))
    if args.json or args.format == "json":
        sys.stdout.write(json.dumps(graph_document(snap, bindings, topo), ensure_ascii=False) + "\n")
        return code
    err = make_console(stderr=True)
    for e in snap.errors:
        err.print(f"[bold red]error:[/] {e.error}" if e.source in report.REQUIRED_SOURCES else f"warning: {e.error}")
        if e.hint:
            err.print(f"  hint: {e.hint}", highlight=False)
    if code == report.EXIT_SOURCE and any(snap.failed(s) for s in report.REQUIRED_SOURCES):
        return code
    sys.stdout.write(RENDERERS[args.format](topo))
    return code

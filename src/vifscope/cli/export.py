"""``vifscope export``: the host's bridges, networks and guest NICs as a ``vifscope apply`` file
(YAML; ``--json`` for JSON). ``--names-from FILE``: only the objects FILE names (what apply's
checkpoint holds). Guests' NICs of the types apply manages (network, bridge, OVS) are
exported for every guest. Round trip: applying the export plans no change.

Exit codes: 0 written, 2 usage / invalid FILE, 3 libvirt, the kernel or OVSDB is unavailable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import yaml

from vifscope.actions.declare.export import export_doc
from vifscope.actions.declare.vifs import read_host
from vifscope.cli.apply import Usage, read_file
from vifscope.cli.common import emit_json, make_console
from vifscope.report.documents import EXIT_OK, EXIT_SOURCE, EXIT_USAGE
from vifscope.sources.hoststate import StateUnavailable
from vifscope.sources.libvirt.conn import resolve_uri


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "export",
        help="write the host's bridges, libvirt networks and guest NICs as a 'vifscope apply' file",
        epilog="exit codes: 0 ok, 2 usage, 3 a source is unavailable",
    )
    common(p)
    p.add_argument("--names-from", metavar="FILE", help="only the objects this apply file names")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    err = make_console(stderr=True)
    try:
        names = read_file(args.names_from) if args.names_from else None
        uri = resolve_uri(args.connect)
        state = read_host(uri, names.domain_names) if names else read_host(uri, all_guests=True)
        doc, skipped = export_doc(state, names)
    except (Usage, StateUnavailable) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        err.print(f"  hint: {exc.hint}", highlight=False)
        return EXIT_USAGE if isinstance(exc, Usage) else EXIT_SOURCE
    if args.json:
        emit_json(doc)
    else:
        sys.stdout.write("# vifscope export: apply with 'vifscope apply FILE' (objects not listed are never touched)\n")
        for why in skipped:
            sys.stdout.write(f"# not exported: {why}\n")
        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None) if doc else "{}\n")
    return EXIT_OK

"""``vifscope`` command line. Thin: parse args, take a snapshot, hand it to the report layer.

Exit codes: 0 ok, 1 problems found, 2 usage error, 3 a needed source is unavailable.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from vifscope import __version__
from vifscope.bind.join import bind
from vifscope.report import documents as report
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.snapshot import take_snapshot

if TYPE_CHECKING:
    from rich.console import Console


def make_console(*, stderr: bool = False) -> Console:
    # rich is imported only when something is printed for a human: --json never needs it
    # (its import is ~35 ms of a status that must answer in well under a second).
    from vifscope.report.tables import make_console as make

    return make(stderr=stderr)


def _emit_json(doc: dict[str, Any]) -> None:
    """Indented for a terminal; compact when piped. (indent forces json's pure-Python
    encoder: 1.3 s for 5,000 vifs against ~0.1 s for the C one.)"""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(doc, indent=indent, ensure_ascii=False))
    sys.stdout.write("\n")


def _fatal_source(console: Console, doc: dict[str, Any]) -> bool:
    """Print the one-line error for a required source that failed; True if one did."""
    for err in doc["source_errors"]:
        if err["source"] in report.REQUIRED_SOURCES:
            console.print(f"[bold red]error:[/] {err['error']}", highlight=False)
            if err.get("hint"):
                console.print(f"  hint: {err['hint']}", highlight=False)
            return True
    return False


def cmd_status(args: argparse.Namespace) -> int:
    snap = take_snapshot(resolve_uri(args.connect))
    scope = report.select(bind(snap), args.domain or ())
    bindings = report.select(scope, (), args.problems)
    doc = report.status_report(snap, bindings)
    code = report.exit_code(snap, bindings)
    if args.domain and not bindings and not snap.failed("libvirt"):
        known = {v.domain for v in snap.vifs}
        unknown = [d for d in args.domain if d not in known]
        if unknown and not args.json:
            make_console(stderr=True).print(f"note: no vifs for domain(s): {', '.join(unknown)}", highlight=False)
    if args.json:
        _emit_json(doc)
        return code
    from vifscope.report.tables import print_errors, vif_table

    console, err = make_console(), make_console(stderr=True)
    if _fatal_source(err, doc):
        return code
    print_errors(err, doc["source_errors"])
    if doc["vifs"]:
        console.print(vif_table(doc["vifs"]))
    console.print(report.status_summary(scope, args.problems), highlight=False)
    return code


def cmd_networks(args: argparse.Namespace) -> int:
    snap = take_snapshot(resolve_uri(args.connect))
    doc = report.networks_report(snap)
    code = report.networks_exit_code(snap)
    if args.json:
        _emit_json(doc)
        return code
    from vifscope.report.tables import network_table, print_errors

    console, err = make_console(), make_console(stderr=True)
    if _fatal_source(err, doc):
        return code
    print_errors(err, doc["source_errors"])
    console.print(network_table(doc["networks"]))
    console.print(f"{len(doc['networks'])} networks", highlight=False)
    return code


# command name -> the front-end module that registers it with add_parser(subparsers, common).
# Only the module of the command being run is imported (all of them for --help or a typo):
# `status` must not pay for importing the exporter, the web server or the checks.
SUBCOMMAND_MODULES: dict[str, str] = {
    "lab": "vifscope.cli.lab",
    "exporter": "vifscope.cli.exporter",
    "top": "vifscope.top.app",
    "watch": "vifscope.cli.watch",
    "doctor": "vifscope.cli.doctor",
    "graph": "vifscope.cli.graph",
    "serve": "vifscope.cli.serve",
}
_GLOBAL_WITH_VALUE = ("-c", "--connect")


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand word of argv (skipping global options), or None."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _GLOBAL_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vifscope",
        description="Is every VM NIC plugged where libvirt says? Joins domain XML with kernel links and OVSDB.",
        epilog="exit codes: 0 ok, 1 problems found, 2 usage error, 3 a needed source is unavailable",
    )
    parser.add_argument("-V", "--version", action="version", version=f"vifscope {__version__}")
    parser.add_argument(
        "-c",
        "--connect",
        metavar="URI",
        default=None,
        help="libvirt URI (default: $LIBVIRT_DEFAULT_URI or qemu:///system)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    st = sub.add_parser("status", help="binding verdict for every vif")
    _common(st)
    st.add_argument("-d", "--domain", action="append", metavar="NAME", help="only this domain (repeatable)")
    st.add_argument("--problems", action="store_true", help="only vifs that are not bound/inactive")
    st.set_defaults(func=cmd_status)
    nets = sub.add_parser("networks", help="libvirt networks, their bridges and DHCP")
    _common(nets)
    nets.set_defaults(func=cmd_networks)
    wanted = _command_in(sys.argv[1:] if argv is None else argv)
    lazy = wanted in SUBCOMMAND_MODULES or wanted in ("status", "networks")
    for command, module in SUBCOMMAND_MODULES.items():
        if not lazy or command == wanted:
            importlib.import_module(module).add_parser(sub, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        # Inside the guard: a broken subcommand module is a one-line error, not a traceback.
        args = build_parser(argv).parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except KeyboardInterrupt:
        make_console(stderr=True).print("interrupted")
        return 130
    except Exception as exc:  # last resort: one line, not a traceback (VIFSCOPE_DEBUG=1 shows it)
        if os.environ.get("VIFSCOPE_DEBUG"):
            raise
        make_console(stderr=True).print(
            f"[bold red]error:[/] {type(exc).__name__}: {exc}\n  hint: rerun with VIFSCOPE_DEBUG=1 for a traceback",
            highlight=False,
        )
        return report.EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

"""``vifscope`` command line: the parser and the dispatch. Each command is one module of
vifscope.cli with ``add_parser(subparsers, common)``; this one only finds and runs it.

Exit codes: 0 ok, 1 problems found, 2 usage error, 3 a needed source is unavailable.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from vifscope import __version__
from vifscope.cli.common import make_console
from vifscope.report.documents import EXIT_INTERNAL

# command name -> the front-end module that registers it with add_parser(subparsers, common).
# Only the module of the command being run is imported (all of them for --help or a typo):
# `status` must not pay for importing the exporter, the web server or the checks.
SUBCOMMAND_MODULES: dict[str, str] = {
    "status": "vifscope.cli.status",
    "networks": "vifscope.cli.networks",
    "lab": "vifscope.cli.lab",
    "exporter": "vifscope.cli.exporter",
    "top": "vifscope.cli.top",
    "watch": "vifscope.cli.watch",
    "doctor": "vifscope.cli.doctor",
    "graph": "vifscope.cli.graph",
    "serve": "vifscope.cli.serve",
    "mac": "vifscope.cli.mac",
    "check-xml": "vifscope.cli.checkxml",
    "attach": "vifscope.cli.attach",
    "detach": "vifscope.cli.detach",
    "fleet": "vifscope.cli.fleet",
    "qos": "vifscope.cli.qos",
    "apply": "vifscope.cli.apply",
    "export": "vifscope.cli.export",
    "flows": "vifscope.cli.flows",
}
_GLOBAL_WITH_VALUE = ("-c", "--connect")
_CONNECT_HELP = "libvirt URI (default: $LIBVIRT_DEFAULT_URI or qemu:///system)"


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
    """Options every command takes after its name too (``vifscope status -c URI --json``, as
    virt-install and kubectl users type them). SUPPRESS: given only before the command, the
    global value stands; given after it, it wins."""
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    p.add_argument("-c", "--connect", metavar="URI", default=argparse.SUPPRESS, help=_CONNECT_HELP)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vifscope",
        description="Is every VM NIC plugged where libvirt says? Joins domain XML with kernel links and OVSDB.",
        epilog="exit codes: 0 ok, 1 problems found, 2 usage error, 3 a needed source is unavailable",
    )
    parser.add_argument("-V", "--version", action="version", version=f"vifscope {__version__}")
    parser.add_argument("-c", "--connect", metavar="URI", default=None, help=_CONNECT_HELP)
    parser.add_argument("--json", action="store_true", help="machine-readable output (before or after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = _command_in(sys.argv[1:] if argv is None else argv)
    for command, module in SUBCOMMAND_MODULES.items():
        if wanted not in SUBCOMMAND_MODULES or command == wanted:
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
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

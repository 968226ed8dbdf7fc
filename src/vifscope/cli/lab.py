"""``vifscope lab up|down``: argument parsing and progress display for the demo lab."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from vifscope.lab.host import LabError
from vifscope.lab.image import GuestImageError
from vifscope.lab.topology import LabSpec

DEFAULT_PREFIX = "vs-"


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    lab = sub.add_parser("lab", help="build / remove a demo host of real TCG guests (root)")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    for action, text in (("up", "build the lab (idempotent)"), ("down", "remove exactly the lab's objects")):
        p = lab_sub.add_parser(action, help=text)
        common(p)
        p.add_argument("--prefix", default=DEFAULT_PREFIX, help="name prefix of every lab object (must start with vs-)")
        p.add_argument("--net", default="10.77", help="first two octets of the lab's subnets (default 10.77)")
        p.add_argument("-v", "--verbose", action="store_true", help="print every command run")
        if action == "up":
            p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for guests to boot (0: don't)")
    lab.set_defaults(func=run_lab)


def run_lab(args: argparse.Namespace) -> int:
    from vifscope.lab.lab import lab_down, lab_up

    if not args.prefix.startswith("vs-"):
        Console(stderr=True).print("error: --prefix must start with 'vs-'")
        return 2
    spec = LabSpec(prefix=args.prefix, net=args.net)
    err = Console(stderr=True)
    try:
        with err.status(f"lab {args.lab_command}...") as status:

            def log(line: str) -> None:
                if args.verbose:
                    err.print(line, style="dim", highlight=False, markup=False)
                status.update(f"lab {args.lab_command}: {line[:100]}")

            if args.lab_command == "up":
                inv = lab_up(spec, log, wait=args.wait)
                doc: dict[str, Any] = {"domains": sorted(d for d in inv.domains if d.startswith(spec.prefix))}
            else:
                lab_down(spec, log)
                doc = {"removed": True}
    except (LabError, GuestImageError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        err.print("  hint: the lab needs root, libvirt, qemu-system-x86 and openvswitch (make setup)")
        return 3
    if args.json:
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
    else:
        err.print(f"lab {args.lab_command}: done", highlight=False)
    return 0

"""``vifscope fleet``: many hosts' agents (``vifscope serve``) in one view.

``fleet status`` and ``fleet doctor`` ask every agent of the inventory at once (at most
``--concurrency`` in flight, each with ``--timeout`` seconds for all its answers) and merge
the answers with a HOST column; a host that does not answer is one line in ``host_errors``.

The inventory: ``--inventory FILE`` (YAML) or ``--db URL`` (the store's hosts table, kept with
``vifscope fleet hosts``), exactly one of the two.

Exit codes: 0 all well; 1 a problem on some host, or a host that did not answer; 2 usage
(a bad inventory, neither or both of --inventory and --db); 3 no host answered, or the
store holding the inventory is unavailable.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vifscope.cli.common import emit_json, make_console
from vifscope.cli.fleet_ask import ask, read_or_say

if TYPE_CHECKING:
    from rich.console import Console


# The hub's HTTP client (httpx, httpcore: ~0.3 s of imports) is imported by the commands that
# use it, not when `vifscope --help` builds every command's parser.

# Seconds per host. doctor's answer needs the agent's deep snapshot (sysctls, leases, filters):
# slower to take the first time than status's.
DEFAULT_TIMEOUT = {"status": 5.0, "doctor": 10.0, "sync": 10.0}
DEFAULT_CONCURRENCY = 32


def _positive(kind: type[float] | type[int]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("fleet", help="every host's vifs in one view, from each host's vifscope serve")
    fleet = p.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND", required=True)
    st = fleet.add_parser("status", help="every host's vifs with a HOST column")
    dr = fleet.add_parser("doctor", help="every host's findings plus the fleet checks (MAC/IP on two hosts...)")
    sy = fleet.add_parser("sync", help="every host's vifs, addresses and finding counts into the store, with history")
    for name, q in (("status", st), ("doctor", dr), ("sync", sy)):
        common(q)
        if name == "sync":  # --db is the store written to; without --inventory, its hosts table
            q.add_argument(
                "--inventory", type=Path, metavar="FILE", help="YAML: hosts: [{name, url}] (default: --db's)"
            )
        else:
            which = q.add_mutually_exclusive_group(required=True)
            which.add_argument("--inventory", type=Path, metavar="FILE", help="YAML: hosts: [{name, url}]")
            which.add_argument("--db", metavar="URL", help="or the hosts table of this store (vifscope fleet hosts)")
        wait = DEFAULT_TIMEOUT[name]
        q.add_argument(
            "--timeout", type=_positive(float), default=wait, metavar="S", help=f"per host (default {wait:g})"
        )
        q.add_argument(
            "--concurrency",
            type=_positive(int),
            default=DEFAULT_CONCURRENCY,
            metavar="N",
            help="hosts in flight (default 32)",
        )
    st.add_argument("--problems", action="store_true", help="only vifs that are not bound/inactive")
    st.set_defaults(func=cmd_fleet_status)
    from vifscope.cli.fleet_sync import add_sync_options

    add_sync_options(sy, _positive(float))
    dr.set_defaults(func=cmd_fleet_doctor)
    from vifscope.cli.fleet_hosts import add_hosts_parser

    add_hosts_parser(fleet, common)


def _show(doc: dict[str, Any], code: int, as_json: bool, human: Callable[[Console], None]) -> int:
    if as_json:
        emit_json(doc)
        return code
    from vifscope.fleet.tables import print_host_errors

    print_host_errors(make_console(stderr=True), doc["host_errors"])
    human(make_console())
    return code


def cmd_fleet_status(args: argparse.Namespace) -> int:
    _, inv, code = read_or_say(args.inventory, args.db)
    if inv is None:
        return code
    from vifscope.fleet.merge import STATUS_PATHS, status_document, status_exit

    answers = ask(inv, STATUS_PATHS, args.timeout, args.concurrency)
    doc = status_document(answers, args.problems)

    def human(console: Console) -> None:
        from vifscope.fleet.tables import fleet_vif_table, hosts_table, status_line

        if doc["vifs"]:
            console.print(fleet_vif_table(doc["vifs"]))
        console.print(hosts_table(doc["hosts"]))
        console.print(status_line(doc), highlight=False)

    return _show(doc, status_exit(answers), args.json, human)


def cmd_fleet_doctor(args: argparse.Namespace) -> int:
    _, inv, code = read_or_say(args.inventory, args.db)
    if inv is None:
        return code
    from vifscope.fleet.checks import fleet_findings
    from vifscope.fleet.merge import DOCTOR_PATHS, doctor_document, doctor_exit

    answers = ask(inv, DOCTOR_PATHS, args.timeout, args.concurrency)
    doc = doctor_document(answers, fleet_findings(answers))

    def human(console: Console) -> None:
        from vifscope.fleet.tables import print_doctor

        print_doctor(console, doc)

    return _show(doc, doctor_exit(answers, doc), args.json, human)

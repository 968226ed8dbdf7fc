"""``vifscope fleet``: many hosts' agents (``vifscope serve``) in one view.

``fleet status`` and ``fleet doctor`` ask every agent of the inventory at once (at most
``--concurrency`` in flight, each with ``--timeout`` seconds for all its answers) and merge
the answers with a HOST column; a host that does not answer is one line in ``host_errors``.

Exit codes: 0 all well; 1 a problem on some host, or a host that did not answer; 2 usage
(a bad inventory); 3 no host answered.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vifscope.cli.common import emit_json, make_console
from vifscope.fleet.inventory import Inventory, InventoryError, load_inventory
from vifscope.report.documents import EXIT_USAGE

if TYPE_CHECKING:
    from rich.console import Console

    from vifscope.fleet.model import HostAnswer

# The hub's HTTP client (httpx, httpcore: ~0.3 s of imports) is imported by the commands that
# use it, not when `vifscope --help` builds every command's parser.

# Seconds per host. doctor's answer needs the agent's deep snapshot (sysctls, leases, filters):
# slower to take the first time than status's.
DEFAULT_TIMEOUT = {"status": 5.0, "doctor": 10.0}
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
    for name, q in (("status", st), ("doctor", dr)):
        common(q)
        q.add_argument("--inventory", type=Path, required=True, metavar="FILE", help="YAML: hosts: [{name, url}]")
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
    dr.set_defaults(func=cmd_fleet_doctor)


def ask(inv: Inventory, paths: Sequence[str], timeout: float, limit: int) -> list[HostAnswer]:
    """Every host's answer in inventory order. A token file that cannot be read is that host's
    error (the rest of the fleet is still asked)."""
    from vifscope.fleet.merge import OPTIONAL_PATHS, host_answer
    from vifscope.serve.config import ServeConfigError, load_token
    from vifscope.sources.agents import AgentReply, AgentTarget, fetch_all

    targets: list[AgentTarget] = []
    early: dict[str, AgentReply] = {}
    for h in inv.hosts:
        try:
            token = load_token(h.token_file) if h.token_file else None
        except ServeConfigError as exc:
            early[h.name] = AgentReply(h.name, (), f"token: {exc}", 0.0)
            continue
        targets.append(AgentTarget(h.name, h.url, token, h.ca_file))
    replies = {
        r.name: r for r in fetch_all(targets, paths, timeout=timeout, limit=limit, optional=OPTIONAL_PATHS)
    } | early
    return [host_answer(h, replies[h.name]) for h in inv.hosts]


def _inventory(args: argparse.Namespace) -> Inventory | None:
    try:
        return load_inventory(args.inventory)
    except InventoryError as exc:
        from rich.text import Text

        err = make_console(stderr=True)
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))  # Text: YAML's "[...]" is not markup
        if exc.hint:
            err.print(Text(f"  hint: {exc.hint}"))
        return None


def _show(doc: dict[str, Any], code: int, as_json: bool, human: Callable[[Console], None]) -> int:
    if as_json:
        emit_json(doc)
        return code
    from vifscope.fleet.tables import print_host_errors

    print_host_errors(make_console(stderr=True), doc["host_errors"])
    human(make_console())
    return code


def cmd_fleet_status(args: argparse.Namespace) -> int:
    inv = _inventory(args)
    if inv is None:
        return EXIT_USAGE
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
    inv = _inventory(args)
    if inv is None:
        return EXIT_USAGE
    from vifscope.fleet.checks import fleet_findings
    from vifscope.fleet.merge import DOCTOR_PATHS, doctor_document, doctor_exit

    answers = ask(inv, DOCTOR_PATHS, args.timeout, args.concurrency)
    doc = doctor_document(answers, fleet_findings(answers))

    def human(console: Console) -> None:
        from vifscope.fleet.tables import print_doctor

        print_doctor(console, doc)

    return _show(doc, doctor_exit(answers, doc), args.json, human)

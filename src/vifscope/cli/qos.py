"""``vifscope qos [show]``: per vif, the declared ``<bandwidth>`` against what tc or OVSDB
enforces, each direction with a verdict."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vifscope.bind.qos import judge
from vifscope.cli.common import show, vif_filters
from vifscope.cli.qosset import add_set_arguments, cmd_qos_set
from vifscope.model import HostSnapshot
from vifscope.model.qos import PROBLEM_VERDICTS, TcShaping, VifQos
from vifscope.report import qos as report
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.qos import ConfigReader, QosSources, read_qos_sources
from vifscope.sources.snapshot import take_snapshot

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    qos = sub.add_parser(
        "qos",
        help="declared <bandwidth> against what the kernel / OVSDB enforces",
        epilog="exit codes (show): 0 all enforced or none, 1 missing / drift / partial / undeclared / unsupported, "
        "3 a source is unavailable; (set): 0 enforced or cleared, 1 refused or rolled back, 2 usage, "
        "3 a source or the audit log is unavailable; (reapply): 0 every tc-backend policy in force, 1 one could "
        "not be re-applied, 3 a source or the audit log is unavailable",
    )
    qos.add_argument(
        "action",
        nargs="?",
        choices=["show", "set", "reapply"],
        default="show",
        help="show (the default), set, or reapply (rebuild tc-backend policies that are not in force)",
    )
    common(qos)
    add_set_arguments(qos)
    vif_filters(qos, problems=False)
    qos.add_argument(
        "--problems", action="store_true", help="only vifs missing / drift / partial / undeclared / unsupported"
    )
    qos.set_defaults(func=cmd_qos)


def judged(args: argparse.Namespace) -> tuple[HostSnapshot, QosSources, tuple[VifQos, ...]]:
    """Every vif (of ``-d``'s domains) judged: the snapshot, the QoS sources, the answers."""
    config = ConfigReader()
    snap = take_snapshot(resolve_uri(args.connect), read_libvirt_fn=config)
    if args.domain:
        wanted = set(args.domain)
        snap = replace(snap, vifs=tuple(v for v in snap.vifs if v.domain in wanted or v.domain_uuid in wanted))
    src = read_qos_sources(snap, config)
    ovs = {q.name: q for q in src.ovs or ()}
    return snap, src, judge(snap, src.tc or TcShaping(), ovs, src.config, config.policies)


def _marks(
    snap: HostSnapshot, redirected: frozenset[str]
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, str] | None]:
    """DSCP entries by (domain, mac), and a source error when nft could not be read."""
    from vifscope.bind.qosdscp import mark_rows
    from vifscope.sources.kernel.nftdscp import NftUnavailable, read_dscp_marks

    try:
        marks = read_dscp_marks()
    except NftUnavailable as exc:
        return mark_rows(snap.vifs, {}, redirected), {
            "source": "nft",
            "error": str(exc),
            "hint": "install nftables (nft)",
        }
    return mark_rows(snap.vifs, marks, redirected), None


def cmd_qos(args: argparse.Namespace) -> int:
    if args.action == "set":
        return cmd_qos_set(args)
    if args.action == "reapply":
        from vifscope.cli.qosreapply import cmd_qos_reapply

        return cmd_qos_reapply(args, judged(args))
    snap, src, vifs = judged(args)
    errors = (*snap.errors, *src.errors)
    code = report.qos_exit_code(snap, vifs, src.errors)
    shown = [q for q in vifs if q.verdict in PROBLEM_VERDICTS] if args.problems else list(vifs)
    doc = report.qos_report(shown, errors)
    marks, mark_error = _marks(snap, frozenset(src.tc.redirect_by_dev) if src.tc else frozenset())
    if mark_error is not None:
        doc["source_errors"].append(mark_error)
        code = max(code, 3)
    for row in doc["vifs"]:
        entry = marks.get((row["domain"], (row["mac"] or "").lower()))
        row["dscp"] = entry
        if entry and entry["verdict"] in ("missing", "drift", "undeclared", "bypassed"):
            code = max(code, 1)

    def human(console: Console) -> None:
        from vifscope.report.qostable import qos_table

        if shown:
            console.print(qos_table(shown))
        console.print(report.qos_summary(vifs), highlight=False)
        for row in doc["vifs"]:
            if row["dscp"]:
                d = row["dscp"]
                got = d["in_force"]["ipv4"] if d["in_force"] else None
                line = f"dscp {row['domain']} {row['target'] or row['mac']}: declared {d['declared']}, in force {got}"
                console.print(f"{line}: {d['verdict']}", highlight=False, markup=False)

    return show(doc, code, args.json, human)

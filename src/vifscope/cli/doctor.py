"""``vifscope doctor``: run the checks over a deep snapshot and print findings grouped by vif
and host object, with evidence and the exact fix. ``--fix`` and ``--probe`` hand over to the
actions layer and the probe (imported lazily: doctor works without them).

Exit codes: 0 no error finding, 1 an error finding, 2 usage, 3 a needed source unavailable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vifscope.bind.join import bind
from vifscope.checks import ALL_CHECKS, CATEGORIES, CHECKS_BY_ID, ConfigError, DoctorConfig, evaluate, load_config
from vifscope.cli.common import vif_filters
from vifscope.model import HostSnapshot
from vifscope.report import documents as report
from vifscope.report.findings import doctor_exit_code, doctor_report, select
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.snapshot import take_snapshot

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("doctor", help="why is a VM's network broken, slow or unsafe: findings with evidence and fixes")
    common(p)
    p.add_argument("target_domain", nargs="?", metavar="DOMAIN", help="only this domain (also the --probe target)")
    vif_filters(p, problems=False)
    p.add_argument("--only", metavar="CATS", help=f"comma-separated categories: {','.join(CATEGORIES)}")
    p.add_argument("--explain", metavar="CHECK_ID", help="print what a check means, why, how to fix it")
    p.add_argument("--list", action="store_true", help="list every check id")
    p.add_argument("--config", type=Path, metavar="PATH", help="thresholds TOML (default /etc/vifscope/vifscope.toml)")
    fix = p.add_argument_group("fixing (the actions layer)")
    fix.add_argument("--fix", action="store_true", help="plan the safe fixes, confirm, apply, verify, roll back")
    fix.add_argument("--dry-run", action="store_true", help="print the fix plan only")
    fix.add_argument("-y", "--yes", action="store_true", help="apply without asking")
    fix.add_argument("--fix-host", action="store_true", help="also fix host sysctls (a file under /etc/sysctl.d/)")
    fix.add_argument("--fix-link-down", action="store_true", help="also set libvirt link state up where it is down")
    fix.add_argument(
        "--audit-log", type=Path, metavar="PATH", help="audit log (default /var/log/vifscope/actions.jsonl)"
    )
    probe = p.add_argument_group("active probe")
    probe.add_argument("--probe", action="store_true", help="probe DOMAIN's reachability hop by hop")
    probe.add_argument("--address", metavar="IP", help="the guest address to probe (default: lease / ARP)")
    p.set_defaults(func=run_doctor)


class UsageError(ValueError):
    """A bad flag combination or value: exit 2 with one line."""


def _categories(only: str | None) -> tuple[str, ...]:
    if not only:
        return CATEGORIES
    cats = tuple(c.strip() for c in only.split(",") if c.strip())
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown or not cats:
        raise UsageError(
            f"--only: unknown category {', '.join(unknown) or '(none)'}; choose from {','.join(CATEGORIES)}"
        )
    return cats


def _normalise(args: argparse.Namespace) -> None:
    """One domain list for filters and --fix; the probe's DOMAIN is the positional or first -d."""
    domains = list(args.domain or [])
    if args.target_domain:
        domains.insert(0, args.target_domain)
    args.domain = domains or None
    args.probe_domain = domains[0] if domains else None
    if args.probe and args.probe_domain is None:
        raise UsageError("--probe needs a DOMAIN: vifscope doctor DOMAIN --probe")


def make_console(*, stderr: bool = False) -> Console:
    # rich only when a human reads the output: --json never imports it (~35 ms at start-up).
    from vifscope.report.tables import make_console as make

    return make(stderr=stderr)


def _snapshot(args: argparse.Namespace) -> HostSnapshot:
    uri = resolve_uri(args.connect)
    if args.json or not sys.stderr.isatty():
        return take_snapshot(uri, deep=True)
    err = make_console(stderr=True)
    with err.status("reading libvirt, links, OVSDB, sysctls, filters..."):
        return take_snapshot(uri, deep=True)


def _usage(message: str, hint: str = "") -> int:
    err = make_console(stderr=True)
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    if hint:
        err.print(f"  hint: {hint}", highlight=False)
    return report.EXIT_USAGE


def _static(args: argparse.Namespace) -> int | None:
    """--explain and --list need no snapshot."""
    if args.explain:
        check = CHECKS_BY_ID.get(args.explain)
        if check is None:
            return _usage(f"unknown check id {args.explain!r}", "vifscope doctor --list shows every id")
        from vifscope.report.doctor_tables import explain

        make_console().print(explain(check))
        return report.EXIT_OK
    if args.list:
        if args.json:
            rows = [
                {"check": c.id, "category": c.category, "severity": c.severity.value, "title": c.title}
                for c in ALL_CHECKS
            ]
            _emit({"checks": rows})
        else:
            from vifscope.report.doctor_tables import checks_table

            make_console().print(checks_table(ALL_CHECKS))
        return report.EXIT_OK
    return None


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2 if sys.stdout.isatty() else None, ensure_ascii=False) + "\n")


def run_doctor(args: argparse.Namespace) -> int:
    static = _static(args)
    if static is not None:
        return static
    try:
        _normalise(args)
        cats = _categories(args.only)
        config: DoctorConfig = load_config(args.config)
    except (UsageError, ConfigError) as exc:
        return _usage(str(exc), "see vifscope doctor --help")
    snap = _snapshot(args)
    bindings = bind(snap)
    if args.probe:
        from vifscope.cli.probe import run_probe  # lazy: the probe is optional for doctor

        return int(run_probe(args, snap, bindings))
    run = select(evaluate(snap, bindings, config, cats), bindings, args.domain or ())
    if args.fix or args.dry_run:
        from vifscope.cli.fix import run_fix  # lazy: the actions layer is optional for doctor

        return int(run_fix(args, snap, bindings, run.findings))
    return _output(args, snap, bindings, run)


def _output(args: argparse.Namespace, snap: HostSnapshot, bindings: Any, run: Any) -> int:
    doc = doctor_report(snap, run, bindings)
    code = doctor_exit_code(snap, bindings, run.findings)
    if args.json:
        _emit(doc)
        return code
    from vifscope.report.doctor_tables import print_doctor
    from vifscope.report.tables import print_errors

    console, err = make_console(), make_console(stderr=True)
    known = {v.domain for v in snap.vifs} | {v.domain_uuid for v in snap.vifs}
    unknown = [d for d in args.domain or () if d not in known]
    if unknown and not snap.failed("libvirt"):
        err.print(f"note: no vifs for domain(s): {', '.join(unknown)}", highlight=False)
    fatal = [e for e in doc["source_errors"] if e["source"] in report.REQUIRED_SOURCES]
    for e in fatal:
        err.print(f"[bold red]error:[/] {e['error']}", highlight=False)
        if e.get("hint"):
            err.print(f"  hint: {e['hint']}", highlight=False)
    print_errors(err, [e for e in doc["source_errors"] if e not in fatal])
    print_doctor(console, doc)
    return code

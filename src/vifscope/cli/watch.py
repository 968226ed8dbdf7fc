"""``vifscope watch [--heal [--dry-run]]``: argument parsing, signals, exit codes. Thin.

Exit codes: 0 stopped by SIGTERM/SIGINT, 2 usage or configuration error, 3 libvirt
unreachable at start (later losses are survived and reported) or the audit log unwritable.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vifscope.cli.common import vif_filters
from vifscope.report import documents as report
from vifscope.report.tables import make_console
from vifscope.sources.libvirt.conn import LibvirtUnavailable, resolve_uri
from vifscope.watch.config import ConfigError, load_config
from vifscope.watch.events import Reload, Stop, WatchEvent
from vifscope.watch.healing import Healer
from vifscope.watch.output import Printer


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "watch",
        help="follow binding verdicts live (libvirt + netlink + OVSDB events); --heal re-applies them",
        description=(
            "Print every vif whose verdict changes, as it happens. With --heal, re-plug broken vifs "
            "(rate-limited, with back-off; never a vif whose libvirt link state is down). "
            "SIGHUP reloads the config file, SIGTERM stops."
        ),
        epilog="exit codes: 0 stopped by SIGTERM/SIGINT, 2 usage or config error, "
        "3 libvirt unreachable at start or audit log not writable",
    )
    common(p)
    p.add_argument("--heal", action="store_true", help="re-apply broken bindings (audit-logged as actor 'heal')")
    p.add_argument("--dry-run", action="store_true", help="with --heal: print what would be run, change nothing")
    vif_filters(p, problems=False)
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="TOML config (default /etc/vifscope/watch.toml if present)",
    )
    p.add_argument("--resync", type=float, default=None, metavar="SECONDS", help="full resync interval (default 60)")
    p.add_argument(
        "--audit-log",
        type=Path,
        default=None,
        metavar="PATH",
        help="audit log (default /var/log/vifscope/actions.jsonl)",
    )
    p.add_argument(
        "--flows",
        type=float,
        default=None,
        metavar="SECONDS",
        help="every SECONDS, a 'flows' event per vif with its top peers over that time (a BPF program on "
        "each running vif's tap, following the table)",
    )
    p.add_argument("--flows-top", type=int, default=5, metavar="N", help="peers per vif with --flows (default 5)")
    p.add_argument(
        "--max-flows", type=int, default=65536, metavar="N", help="flow map size with --flows (LRU; default 65536)"
    )
    p.set_defaults(func=run_watch)


def _fail(message: str, hint: str, code: int) -> int:
    err = make_console(stderr=True)
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    err.print(f"  hint: {hint}", highlight=False)
    return code


def _healer(args: argparse.Namespace) -> Healer | None:
    """The actions-layer healer, or None without --heal. Raises AuditError."""
    if not (args.heal or args.dry_run):
        return None
    from vifscope.actions import DEFAULT_AUDIT_LOG, AuditLog
    from vifscope.watch.heal_actions import ActionsHealer

    audit = AuditLog(args.audit_log or DEFAULT_AUDIT_LOG)
    if not args.dry_run:
        audit.check_writable()  # refuse to heal if heals could not be logged
    return ActionsHealer(audit)


def _qos_audit(args: argparse.Namespace) -> Any:
    """The audit log tc-backend QoS re-applies write (the heals' own)."""
    from vifscope.actions import DEFAULT_AUDIT_LOG, AuditLog

    return AuditLog(args.audit_log or DEFAULT_AUDIT_LOG)


def _signals(post: Callable[[WatchEvent], None]) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda num, _frame: post(Stop(signal.Signals(num).name)))
    signal.signal(signal.SIGHUP, lambda _num, _frame: post(Reload()))


def run_watch(args: argparse.Namespace) -> int:
    from vifscope.actions import AuditError
    from vifscope.watch.daemon import Watch, WatchOptions
    from vifscope.watch.flows import FlowWatch

    try:
        config = load_config(args.config)
        healer = _healer(args)
    except ConfigError as exc:
        return _fail(str(exc), "fix the file (see 'vifscope watch --help' and README)", report.EXIT_USAGE)
    except AuditError as exc:
        return _fail(str(exc), exc.hint, report.EXIT_SOURCE)
    if args.resync is not None:
        if args.resync < 1:
            return _fail("--resync must be at least 1 second", "e.g. --resync 60", report.EXIT_USAGE)
        config = type(config)(resync_interval=args.resync, debounce=config.debounce, heal=config.heal)
    if args.flows is not None and (args.flows < 1 or args.flows_top < 1 or args.max_flows < 1):
        why = "--flows must be at least 1 second, --flows-top and --max-flows at least 1"
        return _fail(why, "e.g. --flows 60", report.EXIT_USAGE)
    options = WatchOptions(
        uri=resolve_uri(args.connect),
        config=config,
        config_path=args.config,
        domains=frozenset(args.domain or ()),
        healer=healer,
        dry_run=args.dry_run,
        qos_audit=_qos_audit(args) if healer is not None else None,
        flows=FlowWatch(args.flows, args.flows_top, args.max_flows) if args.flows is not None else None,
    )
    watch = Watch(options, Printer(args.json))
    _signals(watch.events.put)
    try:
        watch.start()
    except LibvirtUnavailable as exc:
        return _fail(str(exc), exc.hint, report.EXIT_SOURCE)
    return watch.run()

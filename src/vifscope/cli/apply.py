"""``vifscope apply FILE``: make the host's bridges, libvirt networks and guest NICs what FILE declares
(checkpoint → apply → verify → roll back on failure). ``--plan`` (``--check``) only shows the
changes; ``--schema`` prints the file format's JSON Schema.

Exit codes: 0 nothing to change / applied and verified; 1 --plan: changes to make, apply:
refused or rolled back; 2 usage or an invalid file; 3 libvirt, the kernel, OVSDB or the
audit log is unavailable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vifscope.actions.audit import DEFAULT_AUDIT_LOG, AuditError, AuditLog
from vifscope.actions.declare.docs import change_lines, outcome_doc, outcome_lines, plan_doc, plan_lines
from vifscope.actions.declare.load import LoadError, parse_desired, schema_text
from vifscope.actions.declare.macauto import PoolRefused
from vifscope.actions.declare.pending import PendingError
from vifscope.actions.declare.plan import DEFAULT_XML_DIR, plan_changes
from vifscope.actions.declare.run import run_apply
from vifscope.actions.declare.vifs import read_host
from vifscope.cli.apply_confirm import (
    add_confirm_args,
    cmd_commit,
    cmd_rollback,
    cmd_watchdog,
    refuse_if_pending,
    start_pending,
    store_of,
)
from vifscope.cli.apply_macs import for_apply, for_plan
from vifscope.cli.common import emit_json, make_console
from vifscope.model.desired import Desired
from vifscope.report.documents import EXIT_OK, EXIT_PROBLEMS, EXIT_SOURCE, EXIT_USAGE
from vifscope.sources.hoststate import StateUnavailable
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.store.engine import StoreError

DEFAULT_SETTLE = 10.0


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "apply",
        help="make bridges, libvirt networks and guest NICs what a YAML file says (plan, apply, verify, roll back)",
        epilog="exit codes: 0 nothing to change / applied and verified, 1 changes planned (--plan) or "
        "refused / rolled back, 2 usage or invalid file, 3 a source or the audit log is unavailable",
    )
    common(p)
    p.add_argument("file", nargs="?", metavar="FILE", help="the apply file (YAML; - for stdin)")
    p.add_argument("--plan", "--check", dest="plan", action="store_true", help="show the changes, change nothing")
    p.add_argument("--schema", action="store_true", help="print the file format's JSON Schema and exit")
    p.add_argument("--audit-log", type=Path, metavar="PATH", help=f"audit log (default {DEFAULT_AUDIT_LOG})")
    p.add_argument(
        "--settle", type=float, default=DEFAULT_SETTLE, metavar="S", help="how long verification may wait (seconds)"
    )
    p.add_argument("--xml-dir", default=DEFAULT_XML_DIR, metavar="DIR", help="where network XML is written for virsh")
    add_confirm_args(p)
    p.set_defaults(func=cmd_apply)


class Usage(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def read_file(path: str | None) -> Desired:
    """The Desired of FILE (``-``: stdin). Raises Usage with the file's one-line error."""
    if not path:
        raise Usage("apply needs a FILE", "usage: vifscope apply FILE [--plan]; vifscope apply --schema")
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise Usage(f"cannot read {path}: {exc.strerror or exc}", "check the path") from exc
    try:
        return parse_desired(text)
    except LoadError as exc:
        raise Usage(f"{path}: {exc}", "see 'vifscope apply --schema' for the format") from exc


def _local(uri: str) -> None:
    host = urlsplit(uri).hostname
    if host:
        raise Usage(f"apply changes this host's bridges, but {uri} is the libvirt of {host}", "run it on that host")


def _fail(args: argparse.Namespace, code: int, message: str, hint: str) -> int:
    if getattr(args, "json", False):
        emit_json({"error": message, "hint": hint})
    else:
        err = make_console(stderr=True)
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        err.print(f"  hint: {hint}", highlight=False)
    return code


def _print(lines: list[str]) -> None:
    out = make_console()
    for line in lines:
        out.print(line, highlight=False, markup=False)


def _plan(args: argparse.Namespace, desired: Desired, uri: str) -> int:
    desired = for_plan(desired, uri)
    plan = plan_changes(desired, read_host(uri, desired.domain_names), args.xml_dir)
    if args.json:
        emit_json(plan_doc(plan))
    else:
        _print(plan_lines(plan))
    return EXIT_PROBLEMS if (plan.changes or plan.refused) else EXIT_OK


def _apply(args: argparse.Namespace, desired: Desired, uri: str) -> int:
    _local(uri)
    audit_path = Path(args.audit_log) if args.audit_log else DEFAULT_AUDIT_LOG
    audit = AuditLog(audit_path)
    audit.check_writable()
    refuse_if_pending(store_of(args))
    macs = for_apply(desired, uri)
    desired = macs.desired
    read = partial(read_host, domains=desired.domain_names)
    kwargs: dict[str, Any] = {"read": read, "audit": audit, "settle": args.settle, "xml_dir": args.xml_dir}
    if args.json:
        outcome = run_apply(desired, uri, **kwargs)
        doc = outcome_doc(outcome, str(audit_path))
        if args.confirm_within and outcome.status == "verified":
            doc["confirm_within"] = args.confirm_within
        emit_json(doc)
    else:
        with make_console(stderr=True).status("applying...") as status:
            outcome = run_apply(desired, uri, progress=status.update, **kwargs)
        _print([line for change in outcome.plan.changes for line in change_lines(change)] + outcome_lines(outcome))
        if outcome.status not in ("nothing-to-do", "refused"):
            _print([f"audit log: {audit_path} (run {outcome.run})"])
    if not outcome.ok:
        macs.release()
    if args.confirm_within and outcome.status == "verified":
        start_pending(args, outcome, uri, audit_path, tuple(macs.taken))
        if not args.json:
            _print([f"rolls back in {args.confirm_within:g} s unless 'vifscope apply --commit' (or --rollback now)"])
    return EXIT_OK if outcome.ok else EXIT_PROBLEMS


def cmd_apply(args: argparse.Namespace) -> int:
    if args.schema:
        sys.stdout.write(schema_text())
        return EXIT_OK
    try:
        if args.watchdog or args.commit or args.rollback:
            return _pending_command(args)
        if args.confirm_within is not None and (args.confirm_within <= 0 or args.plan):
            raise Usage(
                "--confirm-within needs S > 0 and an apply (not --plan)", "vifscope apply FILE --confirm-within 60"
            )
        desired = read_file(args.file)
        uri = resolve_uri(args.connect)
        return _plan(args, desired, uri) if args.plan else _apply(args, desired, uri)
    except Usage as exc:
        return _fail(args, EXIT_USAGE, str(exc), exc.hint)
    except StateUnavailable as exc:
        return _fail(args, EXIT_SOURCE, str(exc), exc.hint)
    except AuditError as exc:
        return _fail(args, EXIT_SOURCE, str(exc), exc.hint)
    except PendingError as exc:
        return _fail(args, EXIT_PROBLEMS, str(exc), exc.hint)
    except PoolRefused as exc:
        return _fail(args, EXIT_PROBLEMS, str(exc), "see 'vifscope mac pool list'")
    except StoreError as exc:
        code = EXIT_SOURCE if exc.exit_code == EXIT_SOURCE else EXIT_PROBLEMS
        return _fail(args, code, str(exc), exc.hint or "see 'vifscope mac list'")


def _pending_command(args: argparse.Namespace) -> int:
    if args.file or args.plan or args.confirm_within is not None or (args.commit and args.rollback):
        raise Usage("--commit / --rollback take no FILE and go alone", "vifscope apply --commit")
    if args.watchdog:
        return cmd_watchdog(args)
    return cmd_commit(args) if args.commit else cmd_rollback(args)

"""``vifscope doctor --fix``: plan, show, confirm, apply, verify, report. Thin glue.

The doctor command calls ``run_fix(args, snapshot, bindings, findings)``; ``args`` carries
connect, json, yes, dry_run, fix_host, fix_link_down, audit_log, domain (and optionally
settle, sysctl_dir). Exit codes:

- 0 fixed and verified (nothing left);
- 1 problems remain / declined / dry run with something to do / a step or the verification
  failed and everything was rolled back, the rollback checked on a fresh snapshot;
- 2 usage (remote URI, no terminal to confirm on);
- 3 a needed source is unavailable, or the audit log cannot be written: refused before the
  first change (read-only, full), or it failed mid-run and everything was rolled back;
- 4 the host may be left changed: an undo step failed, or the fresh snapshot after the
  rollback differs from the one taken before apply (the output says what differs).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console

from vifscope.actions.apply import ApplyOutcome, ApplyStatus, apply_plan
from vifscope.actions.audit import DEFAULT_AUDIT_LOG, AuditError, AuditLog
from vifscope.actions.model import Plan
from vifscope.actions.planner import plan_fixes
from vifscope.actions.report import fix_report, plan_table, result_table, skipped_lines, touched_bindings
from vifscope.checks.commands import SYSCTL_DIR
from vifscope.model import Finding, HostSnapshot, VifBinding
from vifscope.report import documents as report
from vifscope.report.tables import make_console

ACTOR = "doctor-fix"
# Seconds between applying and the verifying snapshot: a tool that reverts our change within
# this window (a flap loop) makes verification fail and the change is rolled back.
DEFAULT_SETTLE = 0.5
EXIT_NOT_RESTORED = 4
AUDIT_STATUSES = (ApplyStatus.AUDIT_UNAVAILABLE, ApplyStatus.AUDIT_FAILED)


class FixRefused(Exception):
    """A reason not to change anything: one line, a hint, an exit code."""

    def __init__(self, message: str, hint: str, code: int) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code


def _check_can_fix(snapshot: HostSnapshot) -> None:
    for err in snapshot.errors:
        if err.source in report.REQUIRED_SOURCES:
            raise FixRefused(err.error, err.hint or "fix the source first", report.EXIT_SOURCE)
    host = urlsplit(snapshot.uri).hostname
    if host:
        raise FixRefused(
            f"--fix changes this host's links, but {snapshot.uri} is the libvirt of {host}",
            "run vifscope doctor --fix on that host itself",
            report.EXIT_USAGE,
        )


def _emit(doc: dict[str, Any], snapshot: HostSnapshot) -> None:
    doc["source_errors"] = report.errors_list(snapshot.errors)
    json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _confirm(console: Console, plan: Plan) -> bool:
    if not sys.stdin.isatty():
        raise FixRefused(
            "--fix needs confirmation but stdin is not a terminal",
            "pass --yes to apply without asking, or --dry-run to see the plan",
            report.EXIT_USAGE,
        )
    n = len(plan.actions)
    answer = console.input(f"apply {n} change{'s' * (n != 1)} to this host? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _show_plan(console: Console, plan: Plan) -> None:
    if plan.actions:
        console.print(plan_table(plan))
    for line in skipped_lines(plan):
        console.print(line, highlight=False, markup=False)
    if not plan.actions:
        console.print("nothing vifscope can fix safely" if plan.skipped else "nothing to fix", highlight=False)


def _exit_code(plan: Plan, outcome: ApplyOutcome | None) -> int:
    if outcome is not None and not outcome.host_unchanged and outcome.status is not ApplyStatus.VERIFIED:
        return EXIT_NOT_RESTORED
    if outcome is not None and outcome.status in AUDIT_STATUSES:
        return report.EXIT_SOURCE
    if outcome is None or outcome.status in (ApplyStatus.ROLLED_BACK, ApplyStatus.APPLY_FAILED):
        return report.EXIT_PROBLEMS if (plan.actions or plan.skipped) else report.EXIT_OK
    remaining = any(b.status not in report.HEALTHY for b in touched_bindings(outcome))
    return report.EXIT_PROBLEMS if (plan.skipped or remaining) else report.EXIT_OK


def _summary(outcome: ApplyOutcome) -> str:
    n = len(outcome.results)
    if outcome.status == ApplyStatus.VERIFIED:
        return f"fixed: {n} action{'s' * (n != 1)} applied and verified on a fresh snapshot"
    if outcome.status is ApplyStatus.AUDIT_UNAVAILABLE:
        return "nothing applied: the audit log cannot take this run"
    undone = sum(r.rolled_back for r in outcome.results)
    what = WHAT_FAILED[outcome.status]
    if not outcome.host_unchanged:
        return f"{what}: rolled back {undone} action{'s' * (undone != 1)}, but the host is NOT as before (see above)"
    return f"{what}: rolled back {undone} action{'s' * (undone != 1)}; a fresh snapshot shows the host as before"


WHAT_FAILED = {
    ApplyStatus.APPLY_FAILED: "a step failed",
    ApplyStatus.ROLLED_BACK: "verification failed",
    ApplyStatus.AUDIT_FAILED: "the audit log could not be written",
}


def _apply(args: argparse.Namespace, plan: Plan, audit: AuditLog, err: Console) -> ApplyOutcome:
    settle = float(getattr(args, "settle", DEFAULT_SETTLE))
    if args.json:
        return apply_plan(plan, actor=ACTOR, audit=audit, settle=settle)
    with err.status("applying...") as status:
        return apply_plan(plan, actor=ACTOR, audit=audit, settle=settle, progress=status.update)


def _run(args: argparse.Namespace, plan: Plan, snapshot: HostSnapshot, out: Console, err: Console) -> int:
    audit_path = Path(args.audit_log) if getattr(args, "audit_log", None) else DEFAULT_AUDIT_LOG
    dry = bool(args.dry_run) or not plan.actions
    if not args.json:
        _show_plan(out, plan)
    if dry or (not args.yes and not _confirm(err, plan)):
        result = "dry-run" if args.dry_run else ("nothing-to-do" if not plan.actions else "declined")
        if args.json:
            _emit(fix_report(plan, result, None, None), snapshot)
        elif result == "declined":
            err.print("nothing applied", highlight=False)
        return _exit_code(plan, None)
    audit = AuditLog(audit_path)
    audit.check_writable(len(plan.actions))
    outcome = _apply(args, plan, audit, err)
    if args.json:
        _emit(fix_report(plan, outcome.status.value, outcome, str(audit_path)), snapshot)
        return _exit_code(plan, outcome)
    out.print(result_table(outcome))
    for line in outcome.audit_errors:
        err.print(f"[yellow]warning:[/] {line}", highlight=False)
    out.print(_summary(outcome), highlight=False)
    out.print(f"audit log: {audit_path} (run {outcome.run})", highlight=False)
    return _exit_code(plan, outcome)


def run_fix(
    args: argparse.Namespace,
    snapshot: HostSnapshot,
    bindings: Sequence[VifBinding],
    findings: Sequence[Finding],
) -> int:
    """Entry point for ``doctor --fix``: see the module docstring for args and exit codes."""
    out, err = make_console(), make_console(stderr=True)
    domains = tuple(args.domain or ())
    chosen = report.select(bindings, domains)
    kept = [f for f in findings if not domains or f.domain is None or f.domain in domains]
    try:
        _check_can_fix(snapshot)
        plan = plan_fixes(
            snapshot,
            chosen,
            kept,
            host=bool(args.fix_host),
            link_down=bool(args.fix_link_down),
            sysctl_dir=getattr(args, "sysctl_dir", None) or SYSCTL_DIR,
        )
        return _run(args, plan, snapshot, out, err)
    except (FixRefused, AuditError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        err.print(f"  hint: {exc.hint}", highlight=False)
        return exc.code if isinstance(exc, FixRefused) else report.EXIT_SOURCE

"""Plans and apply outcomes as JSON-ready dicts and rich tables (one shape for every front end).

``doctor --fix --json`` contract (add fields, never rename):
``{"uri", "result", "run", "plan": {"actions": [{"kind", "target", "description", "reason",
"domain", "mac", "commands", "undo", "promises"}], "skipped": [{"reason", "target", "why",
"domain", "mac"}]}, "results": [{"kind", "target", "applied", "error", "verified", "broken",
"rolled_back", "rollback_error", "yielded", "not_restored"}], "after": [{"domain", "index", "mac",
"target", "status", "problems"}], "audit_log", "audit_errors", "restored", "source_errors"}``.
``result`` is dry-run / declined / nothing-to-do / verified / rolled-back / apply-failed /
audit-unavailable / audit-failed; ``restored`` (after a rollback) says whether a fresh look
shows the host as it was before apply (null: no rollback ran). ``after`` is the last look.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from vifscope.actions.apply import ActionResult, ApplyOutcome
from vifscope.actions.model import Action, Plan, Skip
from vifscope.bind.join import bind
from vifscope.model import VifBinding


def action_dict(a: Action) -> dict[str, Any]:
    return {
        "kind": a.kind.value,
        "target": a.target,
        "description": a.description,
        "reason": a.reason,
        "domain": a.domain,
        "mac": a.mac,
        "commands": list(a.commands),
        "undo": list(a.undo_commands),
        "promises": [p.text() for p in a.promises],
    }


def skip_dict(s: Skip) -> dict[str, Any]:
    return {"reason": s.reason, "target": s.target, "why": s.why, "domain": s.domain, "mac": s.mac}


def plan_dict(plan: Plan) -> dict[str, Any]:
    return {"actions": [action_dict(a) for a in plan.actions], "skipped": [skip_dict(s) for s in plan.skipped]}


def result_dict(r: ActionResult) -> dict[str, Any]:
    return {
        "kind": r.action.kind.value,
        "target": r.action.target,
        "applied": r.applied,
        "error": r.error,
        "verified": r.verified,
        "broken": list(r.broken),
        "rolled_back": r.rolled_back,
        "rollback_error": r.rollback_error,
        "yielded": r.yielded,
        "not_restored": list(r.not_restored),
    }


def touched_bindings(outcome: ApplyOutcome) -> tuple[VifBinding, ...]:
    """The fresh verdicts of every vif an action was for (what the user wants to see after)."""
    if outcome.after is None:
        return ()
    wanted = {(r.action.domain, r.action.mac) for r in outcome.results if r.action.domain}
    return tuple(b for b in bind(outcome.after.snapshot) if (b.vif.domain, b.vif.mac) in wanted)


def after_dict(b: VifBinding) -> dict[str, Any]:
    v = b.vif
    return {
        "domain": v.domain,
        "index": v.index,
        "mac": v.mac,
        "target": v.target,
        "status": b.status.value,
        "problems": [p.value for p in b.problems],
    }


def fix_report(plan: Plan, result: str, outcome: ApplyOutcome | None, audit_log: str | None) -> dict[str, Any]:
    return {
        "uri": plan.uri,
        "result": result,
        "run": outcome.run if outcome else None,
        "plan": plan_dict(plan),
        "results": [result_dict(r) for r in outcome.results] if outcome else [],
        "after": [after_dict(b) for b in touched_bindings(outcome)] if outcome else [],
        "audit_log": audit_log,
        "audit_errors": list(outcome.audit_errors) if outcome else [],
        "restored": outcome.restored if outcome else None,
    }


def plan_table(plan: Plan) -> Table:
    table = Table(header_style="bold", pad_edge=False, show_lines=True)
    for col in ("#", "ACTION", "FOR", "WHY", "COMMANDS", "UNDO"):
        # Commands stay on one line each so they can be copied; the prose columns wrap instead.
        table.add_column(col, overflow="fold", no_wrap=col in ("COMMANDS", "UNDO"))
    # Text, not console markup: a name such as "br[x]" shows as it is, and the commands as they run.
    for i, a in enumerate(plan.actions, 1):
        who = f"{a.domain} {a.mac}" if a.domain else a.target
        cells = (a.description, who, a.reason, "\n".join(a.commands), "\n".join(a.undo_commands))
        table.add_row(str(i), *(Text(c) for c in cells))
    return table


def skipped_lines(plan: Plan) -> list[str]:
    return [f"left alone: {s.target} ({s.reason}): {s.why}" for s in plan.skipped]


def result_table(outcome: ApplyOutcome) -> Table:
    table = Table(header_style="bold", pad_edge=False)
    for col in ("ACTION", "TARGET", "RESULT", "DETAIL"):
        table.add_column(col, overflow="fold")
    for r in outcome.results:
        detail = Text(r.error or "; ".join(r.broken + r.not_restored))
        table.add_row(r.action.kind.value, Text(r.action.target), _result_text(r), detail)
    return table


def _result_text(r: ActionResult) -> Text:
    if r.not_restored:
        return Text("not restored", style="bold red")
    if r.rolled_back:
        return Text("rolled back", style="yellow")
    if r.yielded:
        return Text("left to another tool", style="yellow")
    if r.rollback_error:
        return Text("rollback failed", style="bold red")
    if r.error:
        return Text("failed", style="bold red")
    if r.verified:
        return Text("verified", style="green")
    return Text("not applied" if not r.applied else "applied", style="dim")

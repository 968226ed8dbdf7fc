"""What ``vifscope apply`` prints: the plan and the outcome as JSON documents and as lines
for a terminal. Pure."""

from __future__ import annotations

from typing import Any

from vifscope.actions.declare.change import Change, DeclPlan, Step, step_lines
from vifscope.actions.declare.run import Outcome
from vifscope.actions.declare.vifqos import QosSet
from vifscope.actions.model import WriteFile
from vifscope.checks.qos import tune_value


def _step_doc(step: Step) -> dict[str, Any]:
    if isinstance(step, WriteFile):
        return {"write": step.path, "content": step.content}
    if isinstance(step, QosSet):
        req = step.request
        rates = (
            {"clear": True} if req.clear else {"inbound": tune_value(req.inbound), "outbound": tune_value(req.outbound)}
        )
        return {
            "qos_set": {"domain": req.domain, "mac": req.mac, "backend": step.backend, **rates},
            "equivalent": list(step.equivalent()),
            "commands": [c.text() for c in step.commands],
            "argvs": [list(c.argv) for c in step.commands],
        }
    return {"command": step.text(), "argv": list(step.argv)}


def change_doc(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "name": change.name,
        "op": change.op,
        "what": list(change.what),
        "steps": [_step_doc(s) for s in change.steps],
    }


def plan_doc(plan: DeclPlan) -> dict[str, Any]:
    return {
        "uri": plan.uri,
        "changes": [change_doc(c) for c in plan.changes],
        "refused": list(plan.refused),
        "summary": {"changes": len(plan.changes), "steps": sum(len(c.steps) for c in plan.changes)},
    }


def outcome_doc(outcome: Outcome, audit_log: str | None) -> dict[str, Any]:
    doc = plan_doc(outcome.plan)
    doc.update(
        run=outcome.run,
        status=outcome.status,
        error=outcome.error,
        applied=[f"{c.kind} {c.name}" for c in outcome.applied],
        rollback=[change_doc(c) for c in outcome.rollback],
        left=[change_doc(c) for c in outcome.left],
        audit_log=audit_log,
        audit_errors=list(outcome.audit_errors),
    )
    return doc


def change_lines(change: Change) -> list[str]:
    """``+ bridge br-prod (create): …`` then each step, indented; a written file's content under it."""
    sign = {"create": "+", "change": "~", "remove": "-"}.get(change.op, "~")
    lines = [f"{sign} {change.kind} {change.name} ({change.op}): {'; '.join(change.what)}"]
    for step in change.steps:
        lines += [f"    {line}" for line in step_lines(step)]
        if isinstance(step, WriteFile):
            lines += [f"      | {line}" for line in step.content.rstrip().splitlines()]
    return lines


def plan_lines(plan: DeclPlan) -> list[str]:
    lines = [f"refused: {why}" for why in plan.refused]
    for change in plan.changes:
        lines += change_lines(change)
    n = len(plan.changes)
    if not plan.refused:
        lines.append("no change: the host is as the file says" if not n else f"{n} change{'s' * (n != 1)} to apply")
    return lines


def outcome_lines(outcome: Outcome) -> list[str]:
    n = len(outcome.applied)
    if outcome.status == "verified":
        return [f"applied {n} change{'s' * (n != 1)}, verified on a fresh look at the host"]
    if outcome.status == "nothing-to-do":
        return ["no change: the host is as the file says"]
    if outcome.status == "refused":
        return [f"refused: {why}" for why in outcome.plan.refused] + ["nothing applied"]
    lines = [f"failed: {outcome.error}"]
    if outcome.status == "rolled-back":
        lines.append(f"rolled back ({len(outcome.rollback)} change(s)) and verified: the host is as before")
    else:
        lines.append("rollback did not restore everything; still different:")
        for change in outcome.left:
            lines += change_lines(change)
    return lines

"""Apply a Plan as one transaction: run, take a fresh snapshot, verify, roll back on failure.

nmstate's shape. Actions run in plan order; if a step fails, or any promise does not hold
on the fresh snapshot, every applied action is undone in reverse order (best effort: an undo
step that fails is reported, the others still run). Every apply, verification and rollback
goes to the audit log. An interrupt (Ctrl-C) mid-apply rolls back too, then propagates.

A rollback is itself verified: a look is taken just before the first change and another after
the undo, and every undone action's promised subjects must read as before (actions.restore);
``ApplyOutcome.restored`` says whether they do. The audit log is checked before the first
change (writable, room for the run's lines: else nothing is done, AUDIT_UNAVAILABLE), and a
line that cannot be written mid-run undoes everything applied (AUDIT_FAILED): no change is
kept that the log does not record.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from vifscope.actions.audit import AuditError, AuditLog, record
from vifscope.actions.model import Action, Observed, Plan
from vifscope.actions.restore import differences
from vifscope.actions.runner import Runner, StepFailed
from vifscope.sources.snapshot import take_snapshot


class ApplyStatus(StrEnum):
    NOTHING = "nothing-to-do"
    VERIFIED = "verified"  # every action applied and every promise holds on a fresh snapshot
    ROLLED_BACK = "rolled-back"  # applied, but a promise did not hold: everything undone
    APPLY_FAILED = "apply-failed"  # a step failed: what was applied is undone
    AUDIT_UNAVAILABLE = "audit-unavailable"  # the audit log cannot take the run: nothing changed
    AUDIT_FAILED = "audit-failed"  # an audit line failed mid-run: what was applied is undone


@dataclass(frozen=True)
class ActionResult:
    """What happened to one action. ``broken`` lists promises that did not hold, with what was seen."""

    action: Action
    applied: bool = False
    error: str | None = None
    verified: bool | None = None  # None: verification did not run
    broken: tuple[str, ...] = ()
    rolled_back: bool = False
    rollback_error: str | None = None
    yielded: bool = False  # not undone: another tool changed it after apply (never fight it)
    not_restored: tuple[str, ...] = ()  # undone, but a fresh look differs from before apply


@dataclass(frozen=True)
class ApplyOutcome:
    run: str
    status: ApplyStatus
    results: tuple[ActionResult, ...]
    after: Observed | None = None  # the last look: after the rollback if one ran, else verification's
    audit_errors: tuple[str, ...] = ()
    # After a rollback: True when a fresh look shows every undone action's subjects as they
    # were before apply; False when an undo step failed or the look differs. None: no rollback.
    restored: bool | None = None

    @property
    def verified(self) -> bool:
        return self.status is ApplyStatus.VERIFIED

    @property
    def host_unchanged(self) -> bool:
        """Nothing vifscope did is left on the host (nothing applied, or all undone and verified)."""
        return self.status in (ApplyStatus.NOTHING, ApplyStatus.AUDIT_UNAVAILABLE) or self.restored is True


Observe = Callable[[Plan, Runner], Observed]
Progress = Callable[[str], None]


def observe_host(plan: Plan, runner: Runner) -> Observed:
    """The real fresh look: a new snapshot, plus the sysctls the plan promised."""
    return Observed(take_snapshot(plan.uri), tuple((k, runner.read_sysctl(k)) for k in plan.sysctl_keys))


@dataclass
class _Txn:
    """Mutable bookkeeping of one apply (never leaves this module)."""

    plan: Plan
    actor: str
    audit: AuditLog | None
    runner: Runner
    progress: Progress
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    results: list[ActionResult] = field(default_factory=list)
    audit_errors: list[str] = field(default_factory=list)

    def log(self, phase: str, action: Action, result: str, commands: Sequence[str], error: str | None = None) -> None:
        if self.audit is None:
            return
        try:
            self.audit.write(record(self.run, self.actor, phase, action, result, commands, error))
        except AuditError as exc:  # keep going: stopping half-way would be worse than a missing line
            self.audit_errors.append(str(exc))

    def update(self, index: int, **changes: object) -> None:
        self.results[index] = replace(self.results[index], **changes)  # type: ignore[arg-type]

    def outcome(self, status: ApplyStatus, after: Observed | None = None, restored: bool | None = None) -> ApplyOutcome:
        return ApplyOutcome(self.run, status, tuple(self.results), after, tuple(self.audit_errors), restored)


def _apply_one(txn: _Txn, index: int) -> bool:
    """Run one action's steps; on failure stop at the failing step. True when all ran."""
    action = txn.plan.actions[index]
    txn.progress(f"applying: {action.description}")
    ran: list[str] = []
    for step in action.steps:
        ran.append(step.text())
        try:
            txn.runner.run(step)
        except StepFailed as exc:
            # Partially applied (an earlier step ran): its undo is needed too.
            txn.update(index, applied=len(ran) > 1, error=str(exc))
            txn.log("apply", action, "failed", ran, str(exc))
            return False
    txn.update(index, applied=True)
    txn.log("apply", action, "ok", ran)
    return not txn.audit_errors  # applied but not logged: stop here, it is undone


def _verify(txn: _Txn, seen: Observed) -> bool:
    ok = True
    for i, res in enumerate(txn.results):
        broken = tuple(f"{p.text()}: {why}" for p in res.action.promises if (why := p.broken(seen)) is not None)
        txn.update(i, verified=not broken, broken=broken)
        txn.log("verify", res.action, "verified" if not broken else "not-verified", (), "; ".join(broken) or None)
        ok = ok and not broken
    return ok


def _rollback(txn: _Txn, seen: Observed | None = None) -> None:
    """Undo every (even partially) applied action, last first; keep going past failed undo steps.

    After a verification (``seen``), a live link/OVS action whose own promises no longer hold
    is *not* undone: the state is no longer what we set, so another tool changed it since, and
    undoing would clobber that tool's change (never fight another tool).
    """
    for i in reversed(range(len(txn.results))):
        res = txn.results[i]
        if not res.applied:
            continue
        if seen is not None and res.broken and res.action.kind.yields_to_others:
            why = "changed by someone else since it was applied: left as it is"
            txn.update(i, rollback_error=why, yielded=True)
            txn.log("rollback", res.action, "rollback-skipped", (), "; ".join(res.broken) + f" ({why})")
            continue
        txn.progress(f"rolling back: {res.action.description}")
        errors: list[str] = []
        for step in res.action.undo:
            try:
                txn.runner.run(step)
            except StepFailed as exc:
                errors.append(str(exc))
        error = "; ".join(errors) or None
        txn.update(i, rolled_back=not errors, rollback_error=error)
        txn.log(
            "rollback", res.action, "rolled-back" if not errors else "rollback-failed", res.action.undo_commands, error
        )


def _check_rollback(txn: _Txn, before: Observed, observe: Observe) -> tuple[Observed, bool]:
    """A fresh look after the undo: every undone action must read as before apply."""
    txn.progress("checking the rollback on a fresh snapshot")
    after = observe(txn.plan, txn.runner)
    ok = True
    for i, res in enumerate(txn.results):
        if not res.applied or res.yielded:
            continue
        diff = differences(res.action, before, after)
        txn.update(i, not_restored=diff)
        ok = ok and res.rolled_back and not diff
    return after, ok


def apply_plan(
    plan: Plan,
    *,
    actor: str,
    audit: AuditLog | None,
    runner: Runner | None = None,
    observe: Observe = observe_host,
    settle: float = 0.0,
    progress: Progress | None = None,
) -> ApplyOutcome:
    """Apply ``plan``; verify on a fresh observation ``settle`` seconds later; roll back on failure.

    ``settle`` > 0 also catches another tool that reverts the change right after it was made.
    """
    txn = _Txn(plan, actor, audit, runner or Runner(), progress or (lambda _line: None))
    if not plan.actions:
        return txn.outcome(ApplyStatus.NOTHING)
    if audit is not None:
        try:
            audit.check_writable(len(plan.actions))
        except AuditError as exc:
            txn.audit_errors.append(str(exc))
            return txn.outcome(ApplyStatus.AUDIT_UNAVAILABLE)
    txn.results = [ActionResult(a) for a in plan.actions]
    before = observe(plan, txn.runner)
    seen: Observed | None = None
    verified = False
    try:
        applied_all = all(_apply_one(txn, i) for i in range(len(plan.actions)))
        if applied_all:
            time.sleep(max(0.0, settle))
            txn.progress("verifying on a fresh snapshot")
            seen = observe(plan, txn.runner)
            verified = _verify(txn, seen)
    except BaseException:
        _rollback(txn)  # interrupted (or a bug) half-way: leave the host as it was
        raise
    if verified and not txn.audit_errors:
        return txn.outcome(ApplyStatus.VERIFIED, seen)
    if txn.audit_errors:
        status = ApplyStatus.AUDIT_FAILED
    else:
        status = ApplyStatus.ROLLED_BACK if applied_all else ApplyStatus.APPLY_FAILED
    _rollback(txn, seen)
    after, restored = _check_rollback(txn, before, observe)
    return txn.outcome(status, after, restored)

"""``vifscope apply FILE``: checkpoint → apply in order → fresh look → verify (with retries
while things settle) → on failure roll back to the checkpoint and verify that too.

The checkpoint is the host's state of every object the file names. Rollback is not a list
of undo steps: it is the checkpoint read back as a file (``restore_target``) and planned
against the host as it is after the failure, so it restores what was there whatever
partly happened. Verified means planning again finds nothing left to do. Every change,
verification and rollback is a line of the shared audit log (actor ``apply``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vifscope.actions.audit import AuditError, AuditLog, AuditRecord
from vifscope.actions.declare.change import Change, DeclPlan, Step, step_lines
from vifscope.actions.declare.export import restore_target
from vifscope.actions.declare.plan import DEFAULT_XML_DIR, plan_changes
from vifscope.actions.declare.vifqos import QosSet, run_qos
from vifscope.actions.runner import Runner, StepFailed
from vifscope.model.desired import Desired, HostState

ACTOR = "apply"
RETRY_EVERY_S = 0.5

ReadState = Callable[[str], HostState]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Outcome:
    """``status``: nothing-to-do, refused, verified, rolled-back (the host is as before),
    rollback-failed (it is not: ``left`` says what differs)."""

    run: str
    status: str
    plan: DeclPlan
    applied: tuple[Change, ...] = ()
    error: str | None = None
    left: tuple[Change, ...] = ()  # what still differs after verify (or after rollback)
    rollback: tuple[Change, ...] = ()
    audit_errors: tuple[str, ...] = ()
    checkpoint: Desired | None = None  # what rollback applies (--confirm-within keeps it)

    @property
    def ok(self) -> bool:
        return self.status in ("nothing-to-do", "verified")


@dataclass
class _Txn:
    audit: AuditLog | None
    runner: Runner
    progress: Progress
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    audit_errors: list[str] = field(default_factory=list)

    def log(self, phase: str, change: Change, result: str, commands: Sequence[str], error: str | None = None) -> None:
        if self.audit is None:
            return
        rec = AuditRecord(
            ts=datetime.now(UTC).isoformat(timespec="milliseconds"),
            run=self.run,
            actor=ACTOR,
            phase=phase,
            action=f"{change.kind}-{change.op}",
            target=change.name,
            commands=tuple(commands),
            result=result,
            reason="; ".join(change.what),
            error=error,
        )
        try:
            self.audit.write(rec)
        except AuditError as exc:  # keep going: stopping half-way would be worse than a missing line
            self.audit_errors.append(str(exc))

    def run_step(self, step: Step) -> None:
        """A QoS step goes through ``qos set``'s own path (its own verify and rollback)."""
        if isinstance(step, QosSet):
            run_qos(step, self.audit)
        else:
            self.runner.run(step)

    def carry_out(self, change: Change, phase: str) -> str | None:
        """Run a change's steps, stopping at the first failure (its error, or None)."""
        self.progress(f"{phase}: {change.kind} {change.name}")
        ran: list[str] = []
        for step in change.steps:
            ran.extend(step_lines(step))
            try:
                self.run_step(step)
            except StepFailed as exc:
                self.log(phase, change, "failed" if phase == "apply" else "rollback-failed", ran, str(exc))
                return str(exc)
        self.log(phase, change, "ok" if phase == "apply" else "rolled-back", ran)
        return None


def converge_check(
    desired: Desired, uri: str, read: ReadState, budget: float, xml_dir: str
) -> tuple[HostState, tuple[Change, ...]]:
    """Look again until planning finds nothing left (or ``budget`` s passed): links and
    dnsmasq take a moment after libvirt answers."""
    deadline = time.monotonic() + budget
    while True:
        state = read(uri)
        plan = plan_changes(desired, state, xml_dir)
        # a refusal now (a plugged NIC whose verdict is not bound) is a promise not kept
        left = plan.changes + tuple(Change("check", "", "refused", (why,), ()) for why in plan.refused)
        if not left or time.monotonic() >= deadline:
            return state, left
        time.sleep(RETRY_EVERY_S)


def _rollback(
    txn: _Txn, target: Desired, uri: str, read: ReadState, settle: float, xml_dir: str
) -> tuple[tuple[Change, ...], tuple[Change, ...]]:
    """Apply the checkpoint (twice at most: a step that failed once may pass once the rest
    is back); the rollback changes run and what still differs afterwards."""
    ran: list[Change] = []
    for _attempt in range(2):
        plan = plan_changes(target, read(uri), xml_dir)
        for change in plan.changes:
            txn.carry_out(change, "rollback")
            ran.append(change)
        _state, left = converge_check(target, uri, read, settle, xml_dir)
        if not left:
            return tuple(ran), ()
    return tuple(ran), left


def run_apply(
    desired: Desired,
    uri: str,
    *,
    read: ReadState,
    audit: AuditLog | None,
    runner: Runner | None = None,
    settle: float = 10.0,
    xml_dir: str = DEFAULT_XML_DIR,
    progress: Progress | None = None,
) -> Outcome:
    """Apply ``desired`` as one transaction (see the module docstring)."""
    txn = _Txn(audit, runner or Runner(), progress or (lambda _line: None))
    before = read(uri)
    plan = plan_changes(desired, before, xml_dir)
    if plan.refused:
        return Outcome(txn.run, "refused", plan, error="; ".join(plan.refused))
    if not plan.changes:
        return Outcome(txn.run, "nothing-to-do", plan)
    target = restore_target(before.only(desired), desired)
    applied: list[Change] = []
    try:
        error = _apply_and_verify(txn, plan, applied, lambda: converge_check(desired, uri, read, settle, xml_dir)[1])
    except BaseException:
        _rollback(txn, target, uri, read, settle, xml_dir)  # interrupted half-way: put the host back
        raise
    if error is None:
        return Outcome(
            txn.run, "verified", plan, tuple(applied), audit_errors=tuple(txn.audit_errors), checkpoint=target
        )
    rolled, still = _rollback(txn, target, uri, read, settle, xml_dir)
    status = "rolled-back" if not still else "rollback-failed"
    return Outcome(txn.run, status, plan, tuple(applied), error, still, rolled, tuple(txn.audit_errors))


def run_rollback(
    target: Desired,
    uri: str,
    *,
    run: str,
    read: ReadState,
    audit: AuditLog | None,
    runner: Runner | None = None,
    settle: float = 10.0,
    xml_dir: str = DEFAULT_XML_DIR,
) -> Outcome:
    """Put back a checkpoint kept from an earlier apply (``run``: its audit run id), e.g. a
    ``--confirm-within`` that was not committed in time. Status rolled-back or rollback-failed."""
    txn = _Txn(audit, runner or Runner(), lambda _line: None, run=run)
    plan = plan_changes(target, read(uri), xml_dir)
    rolled, still = _rollback(txn, target, uri, read, settle, xml_dir)
    status = "rolled-back" if not still else "rollback-failed"
    return Outcome(run, status, plan, (), "not confirmed: rolled back", still, rolled, tuple(txn.audit_errors))


def _apply_and_verify(
    txn: _Txn, plan: DeclPlan, applied: list[Change], verify: Callable[[], tuple[Change, ...]]
) -> str | None:
    """Run the plan's changes in order (each appended to ``applied`` as it starts), then
    ``verify``; None when everything holds, else why not."""
    for change in plan.changes:
        applied.append(change)
        if (error := txn.carry_out(change, "apply")) is not None:
            return error
    txn.progress("verifying on a fresh look at the host")
    left = verify()
    for change in left:
        txn.log("verify", change, "not-verified", (), "still to do: " + "; ".join(change.what))
    if left:
        return "not verified: " + "; ".join(f"{c.kind} {c.name}: {', '.join(c.what)}" for c in left)
    for change in plan.changes:
        txn.log("verify", change, "verified", ())
    return None

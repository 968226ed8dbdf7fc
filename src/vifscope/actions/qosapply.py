"""Carry out ``qos set``: plan → apply → fresh read → the verdict must be ``enforced`` (or
``none`` after ``--clear``) → else roll back to the previous policy and verify that too.
Every phase is a line of the shared audit log (actions/audit.py: same file and fields as
``doctor --fix``; actor ``qos``; action ``qos-tc`` or ``qos-libvirt``).

Both backends run commands (actions/runner.py: the argv shown is the argv run): ``tc`` / ``ip``
and ``virsh metadata`` for the tc backend, ``virsh domiftune`` for libvirt's.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vifscope.actions.audit import AuditError, AuditLog, AuditRecord
from vifscope.actions.runner import Runner, StepFailed
from vifscope.model import Command
from vifscope.model.qos import DirectionQos, QosVerdict

V = QosVerdict
ACTOR = "qos"


@dataclass(frozen=True)
class Judged:
    """A fresh read's answer for the vif."""

    inbound: DirectionQos
    outbound: DirectionQos
    verdict: QosVerdict


@dataclass(frozen=True)
class SetOutcome:
    """``status``: enforced / cleared / rolled-back / rollback-failed / failed."""

    status: str
    run: str
    commands: tuple[str, ...]
    judged: Judged | None
    error: str | None = None
    rollback_commands: tuple[str, ...] = ()
    audit_errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("enforced", "cleared")


@dataclass(frozen=True)
class Attempt:
    """One direction of change: the commands, and the verdicts a fresh read must then give."""

    commands: tuple[Command, ...]
    verify: Callable[[], Judged]
    accept: frozenset[QosVerdict]


@dataclass
class _Log:
    audit: AuditLog
    action: str
    domain: str
    mac: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    errors: list[str] = field(default_factory=list)

    def __call__(self, phase: str, result: str, commands: Sequence[str], error: str | None = None) -> None:
        rec = AuditRecord(
            ts=datetime.now(UTC).isoformat(timespec="milliseconds"), run=self.run, actor=ACTOR, phase=phase,
            action=self.action, target=self.domain, commands=tuple(commands), result=result,
            domain=self.domain, mac=self.mac, reason="vifscope qos set", error=error,
        )  # fmt: skip
        try:
            self.audit.write(rec)
        except AuditError as exc:  # keep going: stopping half-way would be worse than a missing line
            self.errors.append(str(exc))


def _run(runner: Runner, commands: Sequence[Command]) -> tuple[list[str], str | None]:
    """Run in order, stopping at the first failure: (the commands that ran, its error)."""
    ran: list[str] = []
    for cmd in commands:
        ran.append(shlex.join(cmd.argv))
        try:
            runner.command(cmd.argv)
        except StepFailed as exc:
            return ran, str(exc)
    return ran, None


def _check(attempt: Attempt) -> tuple[Judged | None, str | None]:
    try:
        judged = attempt.verify()
    except RuntimeError as exc:  # a source went away: not verified
        return None, str(exc)
    if judged.verdict in attempt.accept:
        return judged, None
    return judged, f"verdict {judged.verdict.value} after apply (inbound {judged.inbound.verdict.value}, " \
        f"outbound {judged.outbound.verdict.value})"  # fmt: skip


def carry_out(apply: Attempt, rollback: Callable[[], Attempt], log: _Log, runner: Runner | None = None) -> SetOutcome:
    """Apply, verify, and on failure build the rollback from a fresh read, run and verify it."""
    runner = runner or Runner()
    ran, error = _run(runner, apply.commands)
    log("apply", "failed" if error else "ok", ran, error)
    judged = None
    if error is None:
        judged, error = _check(apply)
        log("verify", "not-verified" if error else "verified", (), error)
        if error is None:
            status = "cleared" if judged is not None and judged.verdict is V.NONE else "enforced"
            return SetOutcome(status, log.run, tuple(ran), judged, audit_errors=tuple(log.errors))
    back = rollback()
    undo, why = _run(runner, back.commands)
    if why is None:
        judged, why = _check(back)
    log("rollback", "rollback-failed" if why else "rolled-back", undo, why)
    status = "rollback-failed" if why else "rolled-back"
    return SetOutcome(status, log.run, tuple(ran), judged, error, tuple(undo), tuple(log.errors))


def new_log(audit: AuditLog, action: str, domain: str, mac: str) -> _Log:
    return _Log(audit, action, domain, mac)

"""The actions layer: pure plan -> apply -> fresh snapshot -> verify -> roll back on failure.

Used by ``doctor --fix`` (vifscope.cli.fix) and ``watch --heal`` (``plan_fixes`` + ``apply_plan``
with actor "heal"). Every applied action and rollback is a line in the audit log.
``vifplan`` / ``vifapply``: ``vifscope attach`` / ``detach`` (hot-plug a NIC, verify, roll back),
writing the same audit log with actor "attach" / "detach".
"""

from vifscope.actions.apply import ActionResult, ApplyOutcome, ApplyStatus, apply_plan, observe_host
from vifscope.actions.audit import DEFAULT_AUDIT_LOG, AuditError, AuditLog, AuditRecord, read_records
from vifscope.actions.model import Action, ActionKind, Observed, Plan, Skip
from vifscope.actions.planner import plan_fixes
from vifscope.actions.runner import Runner, StepFailed

__all__ = [
    "DEFAULT_AUDIT_LOG",
    "Action",
    "ActionKind",
    "ActionResult",
    "ApplyOutcome",
    "ApplyStatus",
    "AuditError",
    "AuditLog",
    "AuditRecord",
    "Observed",
    "Plan",
    "Runner",
    "Skip",
    "StepFailed",
    "apply_plan",
    "observe_host",
    "plan_fixes",
    "read_records",
]

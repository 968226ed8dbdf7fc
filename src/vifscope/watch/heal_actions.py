"""The Healer ``watch --heal`` uses: the actions layer (plan → apply → verify → roll back).

``plan_fixes`` plans every safe fix for the batch; heal keeps only the actions that
re-apply a binding (plug the tap into its declared bridge, rewrite OVS external_ids,
bring the tap up) — starting networks or raising bridges is left to ``doctor --fix``, a
person's decision. The batch is applied as one transaction (one fresh snapshot to
verify, however many vifs a recreated bridge cut off); if it does not verify, each vif is
retried alone so one stubborn vif cannot hold back the others. Every action, verification
and rollback is a line in the audit log with actor "heal".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from vifscope.actions import (
    Action,
    ActionKind,
    ApplyOutcome,
    ApplyStatus,
    AuditLog,
    Observed,
    Plan,
    Runner,
    apply_plan,
    plan_fixes,
)
from vifscope.model import HostSnapshot, VifBinding
from vifscope.watch.healing import HealResult
from vifscope.watch.live import links_or_error, ovs_or_error

HEAL_KINDS = frozenset({ActionKind.ATTACH, ActionKind.OVS_EXTERNAL_IDS, ActionKind.TAP_UP})
RESULT_OF: dict[ApplyStatus, str] = {
    ApplyStatus.VERIFIED: "ok",
    ApplyStatus.ROLLED_BACK: "rolled-back",
    ApplyStatus.APPLY_FAILED: "failed",
    ApplyStatus.NOTHING: "nothing",
    ApplyStatus.AUDIT_UNAVAILABLE: "refused",  # the audit log cannot take it: nothing was changed
    ApplyStatus.AUDIT_FAILED: "failed",
}


def kernel_observer(snap: HostSnapshot) -> Callable[[Plan, Runner], Observed]:
    """Verification for heal actions: a fresh link dump and OVSDB read on top of ``snap``.

    Every heal promise (a port's master, a link up, an OVS port and its ids) is a kernel or
    OVSDB fact, so re-reading every domain's XML from libvirtd (what a full snapshot does)
    adds nothing but time: measured here it took up to ~2 s while libvirtd was busy
    starting other domains, and a verification that slow lets a flapping tool slip in.
    """

    def observe(plan: Plan, runner: Runner) -> Observed:
        links, link_error = links_or_error()
        ovs, ovs_error = ovs_or_error()
        errors = tuple(e for e in (*snap.errors, link_error, ovs_error) if e is not None)
        fresh = dataclasses.replace(
            snap,
            links=links or (),
            ovs_ports=ovs.ports if ovs else (),
            ovs_bridges=ovs.bridges if ovs else (),
            ovs_available=ovs is not None,
            errors=errors,
        )
        return Observed(fresh)

    return observe


def _owner(b: VifBinding) -> tuple[str, str | None]:
    return (b.vif.domain, b.vif.mac)


def heal_plan(snap: HostSnapshot, bindings: Sequence[VifBinding]) -> Plan:
    """The actions layer's plan for these vifs, narrowed to re-applying bindings."""
    plan = plan_fixes(snap, bindings)  # link_down=False: a link set down in libvirt is left alone
    return dataclasses.replace(plan, actions=tuple(a for a in plan.actions if a.kind in HEAL_KINDS))


def _actions_of(plan: Plan, b: VifBinding) -> tuple[Action, ...]:
    return tuple(a for a in plan.actions if (a.domain, a.mac) == _owner(b))


def _why_nothing(plan: Plan, b: VifBinding) -> str:
    whys = [s.why for s in plan.skipped if (s.domain, s.mac) == _owner(b)]
    return "; ".join(whys) or "no heal action applies to " + ", ".join(p.value for p in b.problems)


def _outcome_error(outcome: ApplyOutcome, actions: tuple[Action, ...]) -> str | None:
    mine = [r for r in outcome.results if r.action in actions]
    errors = [r.error for r in mine if r.error] + [b for r in mine for b in r.broken]
    errors += [d for r in mine for d in r.not_restored] + list(outcome.audit_errors)
    return "; ".join(errors) or None


class ActionsHealer:
    """Heals through vifscope.actions; writes the audit log as actor "heal"."""

    def __init__(self, audit: AuditLog, settle: float = 0.0) -> None:
        self.audit = audit
        self.settle = settle

    def heal(self, snap: HostSnapshot, bindings: Sequence[VifBinding], *, dry_run: bool) -> list[HealResult]:
        plan = heal_plan(snap, bindings)
        if dry_run or not plan.actions:
            return [self._unapplied(plan, b, "dry-run" if dry_run else "nothing") for b in bindings]
        outcome = apply_plan(plan, actor="heal", audit=self.audit, settle=self.settle, observe=kernel_observer(snap))
        if outcome.status not in (ApplyStatus.ROLLED_BACK, ApplyStatus.APPLY_FAILED) or len(bindings) == 1:
            return [self._result(plan, outcome, b) for b in bindings]
        # One vif spoiled the batch (it was all rolled back): give each its own transaction.
        return [r for b in bindings for r in self.heal(snap, (b,), dry_run=False)]

    @staticmethod
    def _unapplied(plan: Plan, b: VifBinding, result: str) -> HealResult:
        actions = _actions_of(plan, b)
        if not actions:
            return HealResult(b, "nothing", (), _why_nothing(plan, b))
        return HealResult(b, result, tuple(c for a in actions for c in a.commands))

    @staticmethod
    def _result(plan: Plan, outcome: ApplyOutcome, b: VifBinding) -> HealResult:
        actions = _actions_of(plan, b)
        if not actions:
            return HealResult(b, "nothing", (), _why_nothing(plan, b))
        commands = tuple(c for a in actions for c in a.commands)
        result = RESULT_OF[outcome.status] if outcome.host_unchanged or outcome.verified else "rollback-failed"
        return HealResult(b, result, commands, _outcome_error(outcome, actions))

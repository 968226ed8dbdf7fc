"""Changes to one vif through the API: fix, heal, libvirt link state.

Plans come from the actions layer (pure: ``plan_fixes``, watch's ``heal_plan``, and a
one-action plan for ``virsh domif-setlink``); ``VifActions.run`` applies one (plan → apply →
fresh snapshot → verify → roll back on failure) and writes the shared audit log with actor
"api". One change at a time: two requests never interleave their steps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vifscope.actions import ActionKind, ApplyStatus, AuditError, AuditLog, Plan, apply_plan, plan_fixes
from vifscope.actions.model import Action, VifLinkState
from vifscope.actions.report import fix_report
from vifscope.checks.commands import virsh
from vifscope.model import HostSnapshot, VifBinding
from vifscope.report import documents as report
from vifscope.watch.heal_actions import heal_plan

ACTOR = "api"
MAC_PATTERN = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"
FAILED = (ApplyStatus.ROLLED_BACK, ApplyStatus.APPLY_FAILED, ApplyStatus.AUDIT_FAILED)


class ActionRefused(Exception):
    """Why nothing was changed: an HTTP status, one line, a hint."""

    def __init__(self, status: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.hint = hint


def find_vif(snap: HostSnapshot, bindings: tuple[VifBinding, ...], domain: str, mac: str) -> VifBinding:
    """The one vif of ``domain`` (name or UUID) with ``mac``; 404 / 409 / 503 otherwise."""
    mine = report.select(bindings, (domain,))
    if not mine:
        if snap.failed("libvirt"):
            raise ActionRefused(503, "libvirt is unavailable: cannot look the domain up", "is libvirtd running?")
        raise ActionRefused(404, f"no domain {domain!r} with interfaces", "GET /api/v1/vifs lists every vif")
    hits = [b for b in mine if (b.vif.mac or "").lower() == mac.lower()]
    if not hits:
        macs = ", ".join(b.vif.mac or "-" for b in mine)
        raise ActionRefused(404, f"domain {domain} has no interface with MAC {mac}", f"its MACs: {macs}")
    if len(hits) > 1:
        raise ActionRefused(409, f"domain {domain} has {len(hits)} interfaces with MAC {mac}", "fix the duplicate MAC")
    return hits[0]


def require_local(snap: HostSnapshot) -> None:
    """fix and heal run ip / ovs-vsctl here: only for this host's libvirt, with its sources up."""
    host = urlsplit(snap.uri).hostname
    if host:
        raise ActionRefused(409, f"{snap.uri} is the libvirt of {host}: this server changes only its own host")
    for err in snap.errors:
        if err.source in report.REQUIRED_SOURCES:
            raise ActionRefused(503, err.error, err.hint)


def fix_plan(snap: HostSnapshot, b: VifBinding, *, link_down: bool = False) -> Plan:
    """What ``doctor --fix`` would do for this vif."""
    return plan_fixes(snap, (b,), link_down=link_down)


def heal_only_plan(snap: HostSnapshot, b: VifBinding) -> Plan:
    """What ``watch --heal`` would do: only re-apply the binding (plug, OVS ids, tap up)."""
    return heal_plan(snap, (b,))


def link_plan(snap: HostSnapshot, b: VifBinding, state: str) -> Plan:
    """``virsh domif-setlink DOMAIN MAC STATE`` as a one-action plan (empty when already so)."""
    v = b.vif
    if not v.domain_state.has_taps:
        raise ActionRefused(409, f"domain {v.domain} is {v.domain_state.value}", "start it first (virsh start)")
    if v.link_state == state:
        return Plan(snap.uri)
    kind = ActionKind.LINK_STATE_UP if state == "up" else ActionKind.LINK_STATE_DOWN
    other = "up" if state == "down" else "down"
    action = Action(
        kind=kind,
        target=f"{v.domain}/{v.mac}",
        description=f"set libvirt link state of {v.domain} {v.mac} {state}",
        steps=(virsh(snap.uri, "domif-setlink", v.domain, v.mac or "", state),),
        undo=(virsh(snap.uri, "domif-setlink", v.domain, v.mac or "", other),),
        promises=(VifLinkState(v.domain, v.mac or "", state),),
        reason=f"api:link-{state}",
        domain=v.domain,
        mac=v.mac,
    )
    return Plan(snap.uri, actions=(action,))


@dataclass(frozen=True)
class Outcome:
    status: int  # HTTP: 200 done / nothing to do / dry run, 409 rolled back or failed (``restored`` says how it ended)
    doc: dict[str, Any]


class VifActions:
    """Applies plans, one at a time, audit-logged."""

    def __init__(self, audit_log: Path, settle: float = 0.5) -> None:
        self.audit_log = audit_log
        self.settle = settle
        self._lock = threading.Lock()

    def run(self, plan: Plan, snap: HostSnapshot, *, dry_run: bool) -> Outcome:
        """Blocking: call from a worker thread."""
        if dry_run or not plan.actions:
            result = "dry-run" if dry_run else "nothing-to-do"
            return Outcome(200, self._doc(fix_report(plan, result, None, None), snap))
        audit = AuditLog(self.audit_log)
        try:
            audit.check_writable(len(plan.actions))
        except AuditError as exc:
            raise ActionRefused(503, str(exc), exc.hint) from exc
        with self._lock:
            outcome = apply_plan(plan, actor=ACTOR, audit=audit, settle=self.settle)
        if outcome.status is ApplyStatus.AUDIT_UNAVAILABLE:  # filled up since the check above
            raise ActionRefused(503, "; ".join(outcome.audit_errors), "free disk space for the audit log")
        doc = fix_report(plan, outcome.status.value, outcome, str(self.audit_log))
        return Outcome(409 if outcome.status in FAILED else 200, self._doc(doc, snap))

    @staticmethod
    def _doc(doc: dict[str, Any], snap: HostSnapshot) -> dict[str, Any]:
        doc["source_errors"] = report.errors_list(snap.errors)
        return doc

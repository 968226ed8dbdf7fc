"""One heal pass of the engine: choose (policy), look again, heal, look again.

Before healing, the vifs' domains are re-read (their live XML: a ``<link state='down'/>``
set with ``domif-setlink`` raises no libvirt event) and the links re-dumped, so a heal
never acts on a stale picture. Heals pause while libvirt is down: without it the link
state cannot be checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vifscope.watch.healing import HealResult, Plan, vif_fields
from vifscope.watch.state import touches_links

if TYPE_CHECKING:
    from vifscope.model import VifBinding
    from vifscope.watch.daemon import Watch


def heal_doc(r: HealResult) -> dict[str, Any]:
    return {
        "event": "heal",
        **vif_fields(r.binding),
        "result": r.result,
        "commands": list(r.commands),
        "error": r.error,
    }


def _plan(w: Watch) -> Plan:
    candidates = [b for b in w.table.bindings.values() if w.shown(b.vif.domain, b.vif.domain_uuid)]
    plan = w.scheduler.due(candidates, w.clock())
    for notice in plan.notices:
        w.printer.event(notice)
    return plan


def _look_again(w: Watch, batch: tuple[VifBinding, ...], cause: str) -> None:
    targets = frozenset(b.vif.target for b in batch if b.vif.target)
    w.refresh_links(touches_links(targets), cause)
    if any(b.expect.attach == "ovs-bridge" for b in batch):
        w.refresh_ovs(cause)


def heal_pass(w: Watch) -> None:
    if w.opt.healer is None or not w.up.get("libvirt"):
        return  # reconnect resyncs and asks for a heal pass again
    plan = _plan(w)
    if plan.heal_now:
        for uuid in {b.vif.domain_uuid for b in plan.heal_now}:
            w.read_domain(uuid, "heal-check")
        _look_again(w, plan.heal_now, "heal-check")
        plan = _plan(w)
    if plan.heal_now:
        results = w.opt.healer.heal(w.table.snap, plan.heal_now, dry_run=w.opt.dry_run)
        w.scheduler.healed(results, w.clock())
        for r in results:
            w.printer.event(heal_doc(r))
        _look_again(w, plan.heal_now, "heal")
        plan = _plan(w)
    w.timers.heal = plan.wake

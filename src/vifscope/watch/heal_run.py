"""One heal pass of the engine: choose (policy), look again, heal, look again.

Before healing, the vifs' domains are re-read (their live XML: a ``<link state='down'/>``
set with ``domif-setlink`` raises no libvirt event) and the links re-dumped, so a heal
never acts on a stale picture. Heals pause while libvirt is down: without it the link
state cannot be checked.

A pass is up to three stages; each plans on the vif table as it is when the stage starts and
returns its effects plus the stage that follows once the engine has applied them:
CHECK (something is due: look again) → HEAL (still due: heal, look again) → SETTLE. The last
stage that runs sets the next wake-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vifscope.model import VifBinding
from vifscope.watch.effects import Arm, Effect, Emit, Heal, ReadDomain, RefreshLinks, RefreshOvs, Scope
from vifscope.watch.healing import HealResult, HealScheduler, vif_fields
from vifscope.watch.state import TouchesLinks, VifTable


class Stage(StrEnum):
    CHECK = "heal-check"
    HEAL = "heal"
    SETTLE = "settle"


@dataclass(frozen=True)
class HealView:
    """What a stage plans from: the table now, the ``-d`` scope, the clock, libvirt's state."""

    table: VifTable
    scope: Scope
    now: float
    libvirt_up: bool


@dataclass(frozen=True)
class HealStep:
    effects: tuple[Effect, ...]
    then: Stage | None  # the next stage, once ``effects`` are applied; None: the pass is over


def heal_doc(r: HealResult) -> dict[str, Any]:
    return {
        "event": "heal",
        **vif_fields(r.binding),
        "result": r.result,
        "commands": list(r.commands),
        "error": r.error,
    }


def look_again(batch: tuple[VifBinding, ...], cause: str) -> tuple[Effect, ...]:
    """Re-read what these vifs' heal depends on: the links, and OVSDB if any is an OVS port."""
    targets = frozenset(b.vif.target for b in batch if b.vif.target)
    ovs: tuple[Effect, ...] = (RefreshOvs(cause),) if any(b.expect.attach == "ovs-bridge" for b in batch) else ()
    return (RefreshLinks(TouchesLinks(targets), cause), *ovs)


def _check(batch: tuple[VifBinding, ...]) -> tuple[Effect, ...]:
    domains = dict.fromkeys(b.vif.domain_uuid for b in batch)  # each once, in table order
    return (*(ReadDomain(uuid, Stage.CHECK.value) for uuid in domains), *look_again(batch, Stage.CHECK.value))


def _heal(batch: tuple[VifBinding, ...]) -> tuple[Effect, ...]:
    return (Heal(batch), *look_again(batch, Stage.HEAL.value))


# What a stage does with the vifs still due, and the stage after it.
WORK = {Stage.CHECK: (_check, Stage.HEAL), Stage.HEAL: (_heal, Stage.SETTLE)}


def heal_step(stage: Stage, view: HealView, scheduler: HealScheduler) -> HealStep:
    """One stage of a heal pass. ``scheduler`` remembers what it decided and announced."""
    if stage in WORK and not view.libvirt_up:
        # Also at HEAL: the check's own domain read may have just found libvirt gone (hung).
        return HealStep((), None)  # reconnect resyncs and asks for a heal pass again
    plan = scheduler.due([b for b in view.table.bindings.values() if view.scope.shows(b)], view.now)
    notices = tuple(Emit(n) for n in plan.notices)
    if not plan.heal_now or stage not in WORK:
        return HealStep((*notices, Arm("heal", plan.wake)), None)
    work, then = WORK[stage]
    return HealStep((*notices, *work(plan.heal_now)), then)


def healed(scheduler: HealScheduler, results: Iterable[HealResult], now: float) -> list[Effect]:
    """After the healer ran: count the attempts, and one heal line per vif."""
    results = list(results)
    scheduler.healed(results, now)
    return [Emit(heal_doc(r)) for r in results]

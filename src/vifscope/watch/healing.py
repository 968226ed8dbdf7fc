"""Which broken vifs to heal now, which later, and what to tell the user. Pure.

``HealScheduler.due(bindings, now)`` applies the policy (watch.policy) to every broken
vif and returns the ones to heal now plus the announcements (rate-limited, not healable),
each made once per broken episode so a long outage does not flood the output. The
healing itself is a ``Healer`` (watch.heal_actions wraps the actions layer).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vifscope.model import HostSnapshot, VifBinding, VifStatus
from vifscope.watch.policy import Decision, HealHistory, HealPolicy, Verdict, decide
from vifscope.watch.state import VifKey, vif_key

HEALTHY = (VifStatus.BOUND, VifStatus.INACTIVE, VifStatus.UNVERIFIED)


@dataclass(frozen=True)
class HealResult:
    """What happened to one vif's heal: ``result`` is ok / failed / rolled-back / dry-run / nothing,
    refused (the audit log cannot take it: nothing changed) or rollback-failed (the host may be
    left changed: ``error`` says what differs from before)."""

    binding: VifBinding
    result: str
    commands: tuple[str, ...] = ()
    error: str | None = None


class Healer(Protocol):
    """Plans, applies, verifies (and rolls back) the fixes for some vifs; audit-logs them."""

    def heal(self, snap: HostSnapshot, bindings: Sequence[VifBinding], *, dry_run: bool) -> list[HealResult]: ...


def vif_fields(b: VifBinding) -> dict[str, Any]:
    v = b.vif
    return {
        "domain": v.domain,
        "domain_uuid": v.domain_uuid,
        "mac": v.mac,
        "target": v.target,
        "status": b.status.value,
    }


@dataclass(frozen=True)
class Plan:
    """One scheduling pass: heal these now, say these, wake again at ``wake`` (or never)."""

    heal_now: tuple[VifBinding, ...]
    notices: tuple[dict[str, Any], ...]
    wake: float | None


@dataclass
class HealScheduler:
    policy: HealPolicy
    history: HealHistory = field(default_factory=HealHistory)
    _announced: dict[VifKey, tuple[Verdict, str]] = field(default_factory=dict)
    _unfixable: dict[VifKey, str] = field(default_factory=dict)  # the healer found nothing to do

    def due(self, bindings: Iterable[VifBinding], now: float) -> Plan:
        heal_now: list[VifBinding] = []
        notices: list[dict[str, Any]] = []
        wake: float | None = None
        broken_keys: set[VifKey] = set()
        for b in bindings:
            key = vif_key(b.vif)
            if b.status in HEALTHY:
                continue
            broken_keys.add(key)
            d = self._decide(key, b, now)
            if d.verdict is Verdict.HEAL:
                heal_now.append(b)
                continue
            if d.verdict in (Verdict.WAIT, Verdict.LIMITED):
                wake = d.at if wake is None else min(wake, d.at)
            notice = self._announce(key, b, d, now)
            if notice is not None:
                notices.append(notice)
        self._forget_healthy(broken_keys)
        return Plan(tuple(heal_now), tuple(notices), wake)

    def _decide(self, key: VifKey, b: VifBinding, now: float) -> Decision:
        if key in self._unfixable:  # until it is healthy again: asking again would spin
            return Decision(Verdict.SKIP, self._unfixable[key])
        return decide(b, self.policy, self.history, now)

    def _announce(self, key: VifKey, b: VifBinding, d: Decision, now: float) -> dict[str, Any] | None:
        """A notice for LIMITED / SKIP decisions, once per (vif, verdict, reason)."""
        if d.verdict is Verdict.WAIT or self._announced.get(key) == (d.verdict, d.reason):
            return None
        self._announced[key] = (d.verdict, d.reason)
        if d.verdict is Verdict.LIMITED:
            return {"event": "heal-limited", **vif_fields(b), "reason": d.reason, "for_s": max(0.0, d.at - now)}
        return {"event": "heal-skipped", **vif_fields(b), "reason": d.reason}

    def _forget_healthy(self, broken: set[VifKey]) -> None:
        for key in [k for k in self._announced if k not in broken]:
            del self._announced[key]
        for key in [k for k in self.history.broken_since if k not in broken]:
            self.history.seen_healthy(key)
        for key in [k for k in self._unfixable if k not in broken]:
            del self._unfixable[key]

    def healed(self, results: Iterable[HealResult], now: float) -> None:
        """Count every attempt (a failed one too: retrying a failing fix is fighting as well)."""
        for r in results:
            key = vif_key(r.binding.vif)
            if r.result == "nothing":
                self._unfixable[key] = r.error or "nothing to do"
                self._announced[key] = (Verdict.SKIP, self._unfixable[key])  # the heal line said it
                continue
            self.history.record(key, now)
            self.history.seen_healthy(key)

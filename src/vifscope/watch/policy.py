"""Heal policy: which broken vifs ``watch --heal`` may touch, when, and how often. Pure.

Never fight another tool: every heal of a vif is remembered; the next one must wait an
exponentially growing back-off, and after ``max_heals`` heals inside ``window`` seconds the
vif is left alone until the window has passed (a flap loop is reported, not fed). Time is
passed in (monotonic seconds) so tests drive the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from vifscope.model import Problem, VifBinding, VifStatus
from vifscope.watch.state import VifKey, vif_key

# Faults a heal cannot repair: the thing to plug into is missing, or someone decided so.
BLOCKING: dict[Problem, str] = {
    Problem.LINK_STATE_DOWN: "libvirt <link state='down'/> is set: the link is down on purpose",
    Problem.NO_TARGET: "no tap in the live XML to plug",
    Problem.LINK_MISSING: "the tap does not exist",
    Problem.BRIDGE_MISSING: "the declared bridge does not exist (yet)",
    Problem.NETWORK_MISSING: "the libvirt network does not exist",
    Problem.NETWORK_INACTIVE: "the libvirt network is not active",
    Problem.SOURCE_UNAVAILABLE: "a source is down: the verdict is not trustworthy",
}

# What a heal re-applies (watch.heal_actions keeps the matching action kinds: attach,
# OVS external_ids, tap up). A vif with none of these has nothing for heal to do.
HEALABLE = frozenset({Problem.DETACHED, Problem.MISBOUND, Problem.OVS_ATTACHED_MAC_MISMATCH, Problem.TAP_DOWN})


@dataclass(frozen=True)
class HealPolicy:
    """What ``[heal]`` in the config file says (defaults are the documented ones)."""

    verdicts: frozenset[VifStatus] = frozenset({VifStatus.DETACHED, VifStatus.MISBOUND, VifStatus.DOWN})
    grace: float = 0.2  # seconds a vif must stay broken first: lets libvirt finish its own plugging
    max_heals: int = 5  # per vif inside window
    window: float = 300.0
    backoff_initial: float = 1.0  # wait before the 2nd heal inside window; doubles after each
    backoff_max: float = 120.0
    domains: frozenset[str] = frozenset()  # only these domains (name or UUID); empty: all


class Verdict(StrEnum):
    HEAL = "heal"  # go ahead now
    WAIT = "wait"  # allowed at ``at`` (grace or back-off)
    LIMITED = "rate-limited"  # too many heals: left alone until ``at``
    SKIP = "skip"  # never (by policy or because a heal cannot fix it)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    at: float = 0.0


@dataclass
class HealHistory:
    """Heal times per vif (monotonic seconds) and when each vif was first seen broken."""

    heals: dict[VifKey, list[float]] = field(default_factory=dict)
    broken_since: dict[VifKey, float] = field(default_factory=dict)

    def record(self, key: VifKey, now: float) -> None:
        self.heals.setdefault(key, []).append(now)

    def recent(self, key: VifKey, now: float, window: float) -> list[float]:
        times = [t for t in self.heals.get(key, ()) if now - t < window]
        self.heals[key] = times
        return times

    def seen_broken(self, key: VifKey, now: float) -> float:
        return self.broken_since.setdefault(key, now)

    def seen_healthy(self, key: VifKey) -> None:
        self.broken_since.pop(key, None)


def _excluded(b: VifBinding, policy: HealPolicy) -> str | None:
    if b.status not in policy.verdicts:
        return f"verdict {b.status.value} is not in heal.verdicts"
    if policy.domains and not {b.vif.domain, b.vif.domain_uuid} & policy.domains:
        return "domain is not in heal.domains"
    if b.vif.link_state == "down":
        return BLOCKING[Problem.LINK_STATE_DOWN]
    for problem in b.problems:
        if problem in BLOCKING:
            return BLOCKING[problem]
    if not HEALABLE.intersection(b.problems):
        return f"nothing a heal re-applies ({', '.join(p.value for p in b.problems)}): see 'vifscope doctor'"
    return None


def decide(b: VifBinding, policy: HealPolicy, history: HealHistory, now: float) -> Decision:
    """Whether to heal one broken vif now, later, or not at all."""
    why_not = _excluded(b, policy)
    if why_not is not None:
        return Decision(Verdict.SKIP, why_not)
    key = vif_key(b.vif)
    since = history.seen_broken(key, now)
    times = history.recent(key, now, policy.window)
    if len(times) >= policy.max_heals:
        until = times[0] + policy.window
        return Decision(
            Verdict.LIMITED,
            f"healed {len(times)} times in {policy.window:.0f} s: another tool may be undoing it",
            until,
        )
    due = since + policy.grace
    if times:
        delay = min(policy.backoff_initial * 2 ** (len(times) - 1), policy.backoff_max)
        due = max(due, times[-1] + delay)
    if due > now:
        return Decision(Verdict.WAIT, "back-off" if times else "grace", due)
    return Decision(Verdict.HEAL)

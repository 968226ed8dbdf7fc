"""Metrics of the actions audit log: heals and every action of doctor --fix, watch --heal, attach and detach."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from vifscope.exporter.exposition import Family
from vifscope.sources.audit_log import ActionCount


def action_families(actions: Sequence[ActionCount]) -> Iterator[Family]:
    heals = tuple(((a.result,), float(a.count)) for a in actions if (a.actor, a.phase) == ("heal", "apply"))
    yield Family(
        "vifscope_heals_total",
        "counter",
        "Heal actions 'vifscope watch --heal' applied (audit log), by result.",
        ("result",),
        heals,
    )
    yield Family(
        "vifscope_actions_total",
        "counter",
        "Audit log lines: every action, verification and rollback (doctor --fix, watch --heal, attach, detach).",
        ("actor", "phase", "result"),
        tuple(((a.actor, a.phase, a.result), float(a.count)) for a in actions),
    )

"""Findings: what a check concluded about a vif, a bridge, a network or the host.

Pure data. A check (vifscope.checks) returns Findings; doctor prints them, the exporter
counts them, actions turn some of them into fixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vifscope.model.command import Fix

# One piece of evidence: the value a check saw (kept scalar so JSON and labels stay simple).
Evidence = str | int | float | bool | None


class Severity(StrEnum):
    """error: traffic is broken or unsafe now; warning: it will be, or is degraded; info: advice."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One conclusion of one check. ``check`` is a stable id such as ``vif.detached``.

    ``evidence`` holds (name, value) pairs in the order they matter; ``fix`` is the exact
    commands (argv) and the note (an XML change, a placeholder) that resolve it (None when
    there is nothing safe to suggest).
    """

    check: str
    severity: Severity
    category: str  # binding | network | host | security | performance
    message: str
    domain: str | None = None
    mac: str | None = None
    target: str | None = None
    evidence: tuple[tuple[str, Evidence], ...] = ()
    fix: Fix | None = None
    subject: str | None = None  # bridge / network / host object when not a vif

    def evidence_dict(self) -> dict[str, Evidence]:
        return dict(self.evidence)

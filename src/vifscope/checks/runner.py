"""The registry of every check (a table keyed by id) and the runner. Pure and deterministic."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from vifscope.checks import (
    addresses,
    backends,
    binding,
    bridges,
    flows,
    hostdev,
    networks,
    performance,
    qos,
    qosfloor,
    qosowned,
    qospolice,
    security,
)
from vifscope.checks.base import CATEGORIES, Check, CheckContext
from vifscope.checks.config import DoctorConfig
from vifscope.checks.isolation import IsolationSummary, summarize
from vifscope.model import Finding, HostSnapshot, Severity, VifBinding

ALL_CHECKS: tuple[Check, ...] = (
    *binding.CHECKS,
    *backends.CHECKS,
    *bridges.CHECKS,
    *addresses.CHECKS,
    *networks.CHECKS,
    *hostdev.CHECKS,
    *security.CHECKS,
    *performance.CHECKS,
    *qos.CHECKS,
    *qospolice.CHECKS,
    *qosowned.CHECKS,
    *qosfloor.CHECKS,
    *flows.CHECKS,
)
CHECKS_BY_ID: Mapping[str, Check] = MappingProxyType({c.id: c for c in ALL_CHECKS})  # read-only table
_SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class CheckRun:
    """Findings, the checks that could not be evaluated (id, reason), and the isolation summary."""

    findings: tuple[Finding, ...]
    skipped: tuple[tuple[str, str], ...]
    isolation: tuple[IsolationSummary, ...]


def order(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Errors first, then by vif (domain, target), then host objects, then check id."""
    return tuple(
        sorted(
            findings,
            key=lambda f: (
                _SEVERITY_RANK[f.severity],
                f.domain is None,
                f.domain or "",
                f.target or "",
                f.subject or "",
                f.check,
                f.message,
            ),
        )
    )


def evaluate(
    snapshot: HostSnapshot,
    bindings: Sequence[VifBinding],
    config: DoctorConfig | None = None,
    categories: Iterable[str] = CATEGORIES,
) -> CheckRun:
    """Run every check of the given categories; a check whose facts are missing is skipped."""
    ctx = CheckContext(snapshot, tuple(bindings), config or DoctorConfig())
    wanted = set(categories)
    findings: list[Finding] = []
    skipped: list[tuple[str, str]] = []
    for check in ALL_CHECKS:
        if check.category not in wanted:
            continue
        reason = "skipped in the config (doctor.skip)" if check.id in ctx.config.skip else check.skip_reason(ctx)
        if reason is not None:
            skipped.append((check.id, reason))
            continue
        findings.extend(check.run(ctx))
    isolation = summarize(ctx) if "security" in wanted else ()
    return CheckRun(order(findings), tuple(skipped), isolation)


def run_checks(
    snapshot: HostSnapshot, bindings: Sequence[VifBinding], config: DoctorConfig | None = None
) -> tuple[Finding, ...]:
    """Every finding for a snapshot and its bindings (the entry point other front ends call)."""
    return evaluate(snapshot, bindings, config).findings

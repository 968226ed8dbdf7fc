"""The report layer for doctor: findings, skipped checks and isolation summaries as JSON-ready
dicts (the ``doctor --json`` contract), the ``--domain`` filter, and doctor's exit code.

Contract (issue 3; fields are added, never renamed):
``{"findings": [{"check", "severity", "category", "domain", "mac", "target", "message",
"evidence": {...}, "fix", "fix_argv", "fix_chain", "fix_note", "subject", "title", "caused_by"}],
"source_errors": [...], "summary", "root_causes", "skipped", "isolation", "notes", "host", "uri",
"taken_at"}``

``caused_by`` names the root finding this one follows from (``{"check", "domain", "mac",
"subject"}``, see checks/causes.py) or is null; ``root_causes`` counts the findings that follow
from no other: fix those first, the rest usually clear with them.

``fix`` is one paste-safe shell line (every word quoted as needed, the note after ``#``);
``fix_argv`` the same commands as argv lists (run them in order; ``fix_chain`` "&&" stops at
the first failure, ";" does not), ``fix_note`` the part that is not a command. No fix: null,
[], null, null.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from vifscope.checks import CHECKS_BY_ID, CheckRun, IsolationSummary
from vifscope.checks.causes import root_causes
from vifscope.model import Finding, Fix, HostSnapshot, Problem, Severity, VifBinding
from vifscope.report import documents as report


def finding_dict(f: Finding, caused_by: Finding | None = None) -> dict[str, Any]:
    check = CHECKS_BY_ID.get(f.check)
    return {
        "check": f.check,
        "severity": f.severity.value,
        "category": f.category,
        "domain": f.domain,
        "mac": f.mac,
        "target": f.target,
        "subject": f.subject,
        "title": check.title if check else None,
        "message": f.message,
        "evidence": f.evidence_dict(),
        **fix_fields(f.fix),
        "caused_by": None if caused_by is None else cause_ref(caused_by),
    }


def cause_ref(root: Finding) -> dict[str, Any]:
    return {"check": root.check, "domain": root.domain, "mac": root.mac, "subject": root.subject}


def fix_fields(fix: Fix | None) -> dict[str, Any]:
    """A fix in the JSON documents (doctor --json, the API): the line and its structure."""
    if fix is None:
        return {"fix": None, "fix_argv": [], "fix_chain": None, "fix_note": None}
    return {
        "fix": fix.text(),
        "fix_argv": [list(argv) for argv in fix.argvs],
        "fix_chain": fix.chain.value if fix.commands else None,
        "fix_note": fix.note or None,
    }


def isolation_dict(s: IsolationSummary) -> dict[str, Any]:
    return {
        "domain": s.domain,
        "index": s.index,
        "mac": s.mac,
        "target": s.target,
        "layers": {layer.name: {"level": layer.level.value, "detail": layer.detail} for layer in s.layers},
    }


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    c = Counter(f.severity.value for f in findings)
    return {s.value: c[s.value] for s in Severity}


def doctor_report(snap: HostSnapshot, run: CheckRun, bindings: Sequence[VifBinding]) -> dict[str, Any]:
    """The whole ``vifscope doctor --json`` document."""
    causes = root_causes(run.findings, bindings)
    found = run.findings
    return {
        "host": snap.host,
        "uri": snap.uri,
        "taken_at": snap.taken_at.isoformat(),
        "summary": severity_counts(found),
        "root_causes": len(found) - len(causes),
        "findings": [finding_dict(f, found[causes[i]] if i in causes else None) for i, f in enumerate(found)],
        "skipped": [{"check": cid, "reason": why} for cid, why in run.skipped],
        "isolation": [isolation_dict(s) for s in run.isolation],
        "notes": list(snap.facts.notes) if snap.facts else [],
        "source_errors": report.errors_list(snap.errors),
    }


def relevant_subjects(bindings: Iterable[VifBinding]) -> set[str]:
    """Bridges, networks and lower devices the given vifs depend on."""
    out: set[str] = set()
    for b in bindings:
        exp = b.expect
        out.update(x for x in (exp.bridge, exp.lower, b.vif.network, b.actual_bridge) if x)
        if exp.network is not None:
            out.add(exp.network.name)
            out.update(x for x in (exp.network.bridge,) if x)
    return out


def select(run: CheckRun, bindings: Sequence[VifBinding], domains: Sequence[str]) -> CheckRun:
    """``--domain``: that domain's findings, plus host-level ones about what it depends on."""
    if not domains:
        return run
    wanted = set(domains)
    mine = [b for b in bindings if b.vif.domain in wanted or b.vif.domain_uuid in wanted]
    names = {b.vif.domain for b in mine} | wanted
    subjects = relevant_subjects(mine)

    def keep(f: Finding) -> bool:
        if f.domain is not None:
            return f.domain in names
        return f.subject in subjects or f.category == "host"

    return CheckRun(
        tuple(f for f in run.findings if keep(f)),
        run.skipped,
        tuple(s for s in run.isolation if s.domain in names),
    )


def doctor_exit_code(snap: HostSnapshot, bindings: Sequence[VifBinding], findings: Sequence[Finding]) -> int:
    """3: a source the answer needs failed (libvirt, the link dump, OVSDB for an OVS vif);
    1: an error-severity finding; else 0."""
    if any(snap.failed(s) for s in report.REQUIRED_SOURCES):
        return report.EXIT_SOURCE
    if any(Problem.SOURCE_UNAVAILABLE in b.problems for b in bindings):
        return report.EXIT_SOURCE
    if any(f.severity is Severity.ERROR for f in findings):
        return report.EXIT_PROBLEMS
    return report.EXIT_OK

"""The hosts' answers → one fleet document (``fleet status --json``, ``fleet doctor --json``)
and its exit code.

``{"hosts": [...], "vifs": [each agent's vif objects plus "host"], "host_errors": [{"host",
"error"}], "summary": {...}}``; doctor's has ``findings`` instead of ``vifs``, each finding as
the agent sent it plus ``host`` and ``hosts`` (the fleet's own: ``host`` null, ``hosts`` the
hosts involved, ``fleet.host_unreachable`` naming its one host in both).

Exit codes: 3 when no host answered (nothing to judge); 1 when a host did not answer, a
host's required source failed, or (status) a vif has a fault / (doctor) an error-severity
finding; 0 otherwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from vifscope.fleet.checks import TITLES, FleetFinding
from vifscope.fleet.inventory import FleetHost
from vifscope.fleet.model import HostAnswer, ShapeError, parse_findings, parse_info, parse_vifs
from vifscope.model import Severity
from vifscope.report.documents import EXIT_OK, EXIT_PROBLEMS, EXIT_SOURCE, REQUIRED_SOURCES
from vifscope.report.findings import fix_fields
from vifscope.sources.agents import AgentReply

HOST_PATH, VIFS_PATH, FINDINGS_PATH = "api/v1/host", "api/v1/vifs", "api/v1/findings"
STATUS_PATHS = (HOST_PATH, VIFS_PATH)
DOCTOR_PATHS = (HOST_PATH, VIFS_PATH, FINDINGS_PATH)
OPTIONAL_PATHS = (HOST_PATH,)  # agents before the fleet work have no /api/v1/host: still merged
HEALTHY = ("bound", "inactive")
SOURCE_UNAVAILABLE = "source_unavailable"


def host_answer(host: FleetHost, reply: AgentReply) -> HostAnswer:
    if reply.error is not None:
        return HostAnswer(host, reply.error, reply.seconds)
    try:
        info = parse_info(reply.answer(HOST_PATH)) if reply.answer(HOST_PATH) is not None else None
        vifs, errors = parse_vifs(host.name, reply.answer(VIFS_PATH))
        found = parse_findings(reply.answer(FINDINGS_PATH)) if reply.answer(FINDINGS_PATH) is not None else ()
    except ShapeError as exc:
        return HostAnswer(host, f"unexpected answer: {exc}", reply.seconds)
    return HostAnswer(host, None, reply.seconds, info, vifs, errors, found)


def _failed_sources(a: HostAnswer) -> list[str]:
    return [str(e.get("source")) for e in a.source_errors if e.get("source") in REQUIRED_SOURCES]


def host_entry(a: HostAnswer) -> dict[str, Any]:
    info = a.info
    return {
        "name": a.name,
        "url": a.host.url,
        "labels": dict(a.host.labels),
        "answered": a.error is None,
        "host_id": info.host_id if info else None,
        "version": info.version if info else None,
        "libvirt_version": info.libvirt_version if info else None,
        "status": info.status if info else _status_without_info(a),
        "vifs": len(a.vifs),
        "summary": dict(Counter(v.status for v in a.vifs)),
        "source_errors": [dict(e) for e in a.source_errors],
        "seconds": a.seconds,
    }


def _status_without_info(a: HostAnswer) -> str:
    if a.error is not None:
        return "unreachable"
    return "degraded" if _failed_sources(a) else "ok"  # an older agent: judged by its vifs answer


def host_errors(answers: Sequence[HostAnswer]) -> list[dict[str, str]]:
    return [{"host": a.name, "error": a.error} for a in answers if a.error is not None]


def is_fault(vif: Mapping[str, Any], status: str) -> bool:
    """As ``status``'s exit code: unverified by interface type is no fault; for want of a source it is."""
    if status == "unverified":
        return SOURCE_UNAVAILABLE in (vif.get("problems") or ())
    return status not in HEALTHY


def status_document(answers: Sequence[HostAnswer], problems: bool = False) -> dict[str, Any]:
    vifs = [v for a in answers for v in a.vifs if not problems or v.status not in HEALTHY]
    return {
        "hosts": [host_entry(a) for a in answers],
        "vifs": [{**v.raw, "host": v.host} for v in vifs],
        "host_errors": host_errors(answers),
        "summary": {
            "hosts": len(answers),
            "answered": sum(a.error is None for a in answers),
            "vifs": dict(Counter(v.status for a in answers for v in a.vifs)),
        },
    }


def _base_exit(answers: Sequence[HostAnswer]) -> int | None:
    if all(a.error is not None for a in answers):
        return EXIT_SOURCE
    if any(a.error is not None or _failed_sources(a) for a in answers):
        return EXIT_PROBLEMS
    return None


def status_exit(answers: Sequence[HostAnswer]) -> int:
    base = _base_exit(answers)
    if base is not None:
        return base
    faulty = any(is_fault(v.raw, v.status) for a in answers for v in a.vifs)
    return EXIT_PROBLEMS if faulty else EXIT_OK


def fleet_finding_dict(ff: FleetFinding) -> dict[str, Any]:
    f = ff.finding
    return {
        "check": f.check,
        "severity": f.severity.value,
        "category": f.category,
        "domain": f.domain,
        "mac": f.mac,
        "target": f.target,
        "subject": f.subject,
        "title": TITLES.get(f.check),
        "message": f.message,
        "evidence": f.evidence_dict(),
        **fix_fields(f.fix),
        "host": ff.hosts[0] if f.check == "fleet.host_unreachable" else None,
        "hosts": list(ff.hosts),
    }


def doctor_document(answers: Sequence[HostAnswer], fleet: Sequence[FleetFinding]) -> dict[str, Any]:
    found = [{**f, "host": a.name, "hosts": [a.name]} for a in answers for f in a.findings]
    found += [fleet_finding_dict(ff) for ff in fleet]
    return {
        "hosts": [host_entry(a) for a in answers],
        "findings": found,
        "host_errors": host_errors(answers),
        "summary": {s.value: sum(f["severity"] == s.value for f in found) for s in Severity},
    }


def doctor_exit(answers: Sequence[HostAnswer], doc: Mapping[str, Any]) -> int:
    base = _base_exit(answers)
    if base is not None:
        return base
    return EXIT_PROBLEMS if any(f["severity"] == Severity.ERROR.value for f in doc["findings"]) else EXIT_OK

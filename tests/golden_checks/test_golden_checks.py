"""Golden cases for the doctor checks: real-shaped raw inputs -> the real parsers -> a deep
HostSnapshot -> bind() -> evaluate() -> findings compared with a hand-written expected.json.

Every finding of a case is compared (check, severity, domain, subject; evidence as a subset
where given): a wrong finding from any check fails the case. A case may name check ids it
ignores in case.json ``ignore`` ({id: why}); none should need to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.golden_checks.loader import KEYS, Case, expected_findings, load_case
from vifscope.bind.join import bind
from vifscope.checks import CHECKS_BY_ID, DoctorConfig, evaluate
from vifscope.model import Finding, Severity
from vifscope.report.findings import doctor_exit_code, doctor_report

CASES_DIR = Path(__file__).resolve().parent / "cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())
CASE_KEYS = {
    "description",
    "taken_at",
    "exit_code",
    "base",
    "patch",
    "skipped",
    "config",
    "source_errors",
    "ignore",
}
# Cases whose hand-worked expectation a check does not meet: a check bug for the lead to decide
# on (checks are not changed from here). strict: the day the check is fixed the xfail must go.
CHECK_BUGS: dict[str, str] = {}  # case -> why vifscope is wrong there (xfail strict), until the check is fixed


def _findings_param(path: Path) -> Any:
    bug = CHECK_BUGS.get(path.name)
    marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
    return pytest.param(path, marks=marks, id=path.name)


@pytest.fixture(params=CASES, ids=[p.name for p in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    path: Path = request.param
    return load_case(path)


def _config(case: Case) -> DoctorConfig:
    return DoctorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in case.meta.get("config", {}).items()})


def _run(case: Case) -> Any:
    return evaluate(case.snap, bind(case.snap), _config(case))


def _key(f: Finding) -> dict[str, Any]:
    return {"check": f.check, "severity": f.severity.value, "domain": f.domain, "subject": f.subject}


def _sort(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda d: json.dumps(d, sort_keys=True))


def test_there_are_golden_check_cases() -> None:
    assert len(CASES) >= 20


def test_check_bugs_name_cases() -> None:
    assert set(CHECK_BUGS) <= {p.name for p in CASES}


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_case_layout(path: Path) -> None:
    meta = json.loads((path / "case.json").read_text())
    assert meta.keys() <= CASE_KEYS, f"unknown case.json key(s) {sorted(meta.keys() - CASE_KEYS)}"
    assert meta.get("description") and meta.get("taken_at") and isinstance(meta.get("exit_code"), int)
    for check, why in meta.get("ignore", {}).items():
        assert check in CHECKS_BY_ID and isinstance(why, str) and why, f"ignore needs a known id and a why: {check}"
    for check in meta.get("skipped", []):
        assert check in CHECKS_BY_ID, f"unknown check id {check} in skipped"
    for exp in expected_findings(path):
        assert set(KEYS) <= exp.keys() <= {*KEYS, "evidence"}, exp
        assert exp["check"] in CHECKS_BY_ID, exp
        assert exp["check"] not in meta.get("ignore", {}), f"{exp['check']} is both ignored and expected"
        assert exp["severity"] in {s.value for s in Severity}


@pytest.mark.parametrize("path", [_findings_param(p) for p in CASES])
def test_findings(path: Path) -> None:
    case = load_case(path)
    ignored = case.meta.get("ignore", {})
    got = [f for f in _run(case).findings if f.check not in ignored]
    assert _sort([_key(f) for f in got]) == _sort([{k: e[k] for k in KEYS} for e in case.expected]), case.meta[
        "description"
    ]
    for exp in case.expected:
        if "evidence" not in exp:
            continue
        same = [f for f in got if _key(f) == {k: exp[k] for k in KEYS}]
        assert any(exp["evidence"].items() <= f.evidence_dict().items() for f in same), (exp, same)


def test_skipped(case: Case) -> None:
    """No "skipped" key: every check was evaluated."""
    assert sorted(cid for cid, _ in _run(case).skipped) == sorted(case.meta.get("skipped", []))


def test_exit_code(case: Case) -> None:
    run = _run(case)
    assert doctor_exit_code(case.snap, bind(case.snap), run.findings) == case.meta["exit_code"]


def test_json_contract(case: Case) -> None:
    doc = doctor_report(case.snap, _run(case), bind(case.snap))
    assert {"findings", "source_errors", "summary", "skipped", "isolation"} <= doc.keys()
    for f in doc["findings"]:
        assert {"check", "severity", "category", "domain", "mac", "target", "message", "evidence", "fix"} <= f.keys()
        assert f["severity"] in ("error", "warning", "info")
        assert isinstance(f["evidence"], dict) and isinstance(f["message"], str) and f["message"]
    assert json.loads(json.dumps(doc)) == doc

"""Golden cases for the doctor checks: real-shaped raw inputs -> the real parsers -> a deep
HostSnapshot -> bind() -> evaluate() -> findings compared with a hand-written expected.json.

case.json ``checks`` (optional) limits the comparison to those check ids (the case is about
them; others may fire too); without it every finding of the case is compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.golden_checks.loader import Case, load_case
from vifscope.bind.join import bind
from vifscope.checks import CHECKS_BY_ID, DoctorConfig, evaluate
from vifscope.model import Finding, Severity
from vifscope.report.findings import doctor_exit_code, doctor_report

CASES_DIR = Path(__file__).resolve().parent / "cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())
KEYS = ("check", "severity", "domain", "subject")


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


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_case_layout(path: Path) -> None:
    meta = json.loads((path / "case.json").read_text())
    assert meta.get("description") and meta.get("taken_at") and isinstance(meta.get("exit_code"), int)
    for check in meta.get("checks", []):
        assert check in CHECKS_BY_ID, f"unknown check id {check} in case.json"
    for exp in json.loads((path / "expected.json").read_text()):
        assert set(KEYS) <= exp.keys(), exp
        assert exp["check"] in CHECKS_BY_ID, exp
        assert exp["severity"] in {s.value for s in Severity}


def test_findings(case: Case) -> None:
    focus = case.meta.get("checks")
    got = [f for f in _run(case).findings if focus is None or f.check in focus]
    assert _sort([_key(f) for f in got]) == _sort([{k: e[k] for k in KEYS} for e in case.expected]), case.meta[
        "description"
    ]
    for exp in case.expected:
        if "evidence" not in exp:
            continue
        same = [f for f in got if _key(f) == {k: exp[k] for k in KEYS}]
        assert any(exp["evidence"].items() <= f.evidence_dict().items() for f in same), (exp, same)


def test_skipped(case: Case) -> None:
    if "skipped" in case.meta:
        assert sorted(cid for cid, _ in _run(case).skipped) == sorted(case.meta["skipped"])


def test_exit_code(case: Case) -> None:
    run = _run(case)
    assert doctor_exit_code(case.snap, bind(case.snap), run.findings) == case.meta["exit_code"]


def test_json_contract(case: Case) -> None:
    doc = doctor_report(case.snap, _run(case))
    assert {"findings", "source_errors", "summary", "skipped", "isolation"} <= doc.keys()
    for f in doc["findings"]:
        assert {"check", "severity", "category", "domain", "mac", "target", "message", "evidence", "fix"} <= f.keys()
        assert f["severity"] in ("error", "warning", "info")
        assert isinstance(f["evidence"], dict) and isinstance(f["message"], str) and f["message"]
    assert json.loads(json.dumps(doc)) == doc

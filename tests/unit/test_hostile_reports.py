"""Hostile names (hostile.py: every golden-checks case renamed three ways) through every report
and the audit log: each stays valid in its format, and each name reads back exactly.

- status JSON: every vif's domain, target and source read back as the snapshot has them;
- exposition: parsed back with prometheus_client's parser, the label values are the names;
- mermaid: one statement per line, and each node label, its entity codes decoded, is a name;
- DOT: Graphviz renders a sample, and the SVG's texts hold the names;
- audit log: every action doctor --fix would plan, written and read back, keeps its names.

The same names on real kernel objects and libvirt's test driver: tests/integration/test_hostile_names.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fuzz.pipeline import every_report
from tests.unit.hostile import HostileCase, hostile_cases
from vifscope.actions import AuditLog, plan_fixes, read_records
from vifscope.actions.audit import record
from vifscope.actions.model import Action
from vifscope.bind.join import bind
from vifscope.checks import evaluate
from vifscope.exporter.collector import Scrape, render
from vifscope.report.documents import status_report
from vifscope.report.graph import render_dot, render_mermaid
from vifscope.report.topology import build_topology

MERMAID_LABEL = re.compile(r'^  n\d+\W+"([^"]*)"')
MERMAID_CODE = re.compile(r"#(\d+);")
CASES = hostile_cases()


def _ids(case: HostileCase) -> str:
    return case.name


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_every_report_stays_valid_and_keeps_the_names(case: HostileCase) -> None:
    snap = case.snap
    every_report(snap)  # valid JSON, tables, mermaid lines, exposition (asserts inside)
    bindings = bind(snap)
    doc = json.loads(json.dumps(status_report(snap, bindings), ensure_ascii=False))
    assert [(v["domain"], v["target"], v["source"]) for v in doc["vifs"]] == [
        (b.vif.domain, b.vif.target, b.vif.source) for b in bindings
    ]
    text = render(Scrape(snapshot=snap, bindings=bindings)).decode()
    bound = [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == "vifscope_vif_bound"]
    assert sorted((s.labels["domain"], s.labels["target"]) for s in bound) == sorted(
        (b.vif.domain, b.vif.target or "") for b in bindings
    )
    topo = build_topology(snap, bindings)
    labels = [
        MERMAID_CODE.sub(lambda c: chr(int(c.group(1))), m.group(1))
        for line in render_mermaid(topo).splitlines()
        if (m := MERMAID_LABEL.match(line))
    ]
    for domain in {b.vif.domain for b in bindings}:
        assert any(label.startswith(f"{domain} (") for label in labels), (domain, labels)


def test_the_names_reach_every_argv_position() -> None:
    """The pool is used, not just defined: across the cases every hostile name shows up."""
    shown = {new for case in CASES for new in case.names.values()}
    assert {"web 1 $(touch x)", "-d;id", "--live", "vt;id", "a$(id)`b`;'\"c-d", "net $(id) 'q\""} <= shown


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is installed by make setup-test")
def test_graphviz_renders_hostile_names_as_text() -> None:
    for case in CASES[::7]:
        bindings = bind(case.snap)
        dot = render_dot(build_topology(case.snap, bindings))
        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60, check=True)
        texts = {t.text or "" for t in ElementTree.fromstring(svg.stdout).iter("{http://www.w3.org/2000/svg}text")}
        for domain in {b.vif.domain for b in bindings}:
            assert any(t.startswith(f"{domain} (") for t in texts), (case.name, domain, texts)


def _actions(case: HostileCase) -> tuple[Action, ...]:
    bindings = bind(case.snap)
    findings = evaluate(case.snap, bindings, case.config).findings
    return plan_fixes(case.snap, bindings, findings, host=True, link_down=True, sysctl_dir="/x").actions


def test_the_audit_log_keeps_every_name_intact(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "actions.jsonl")
    written = []
    for case in CASES:
        for action in _actions(case):
            rec = record("r", "doctor-fix", "apply", action, "ok", action.commands, "error: " + action.target)
            log.write(rec)
            written.append(rec)
    assert len(written) > 50
    assert read_records(log.path) == tuple(written)
    assert len(log.path.read_text().splitlines()) == len(written)  # one line each: no name broke a line

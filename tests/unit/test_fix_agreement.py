"""One fix, one rendering: the same finding shows the same command line in doctor's table,
``doctor --json``, the API's findings document, and ``doctor --fix --dry-run`` (whose plan runs
that very argv), over hostile names. Before, doctor formatted strings and --fix built argv:
for a tap "vt;id" on a bridge "br$(id)" the two disagreed, and only --fix's line was safe."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from tests.unit.hostile import HostileCase, hostile_cases
from vifscope.actions import ActionKind, plan_fixes
from vifscope.actions.model import Action, SetSysctl, WriteFile
from vifscope.actions.report import fix_report, plan_table
from vifscope.bind.join import bind
from vifscope.checks import evaluate
from vifscope.checks.commands import sysctl_file, sysctl_persist
from vifscope.model import Command, Finding
from vifscope.report.doctor_tables import findings_tables
from vifscope.report.findings import doctor_report
from vifscope.serve.routes import findings_doc
from vifscope.serve.schema import FindingsDoc
from vifscope.serve.state import View

# The plan action that carries out each check's fix (vif actions: the same vif; network: the same name).
ACTION_OF = {
    "vif.detached": ActionKind.ATTACH,
    "vif.misbound": ActionKind.ATTACH,
    "vif.tap_down": ActionKind.TAP_UP,
    "bridge.down": ActionKind.BRIDGE_UP,
    "ovs.attached_mac_mismatch": ActionKind.OVS_EXTERNAL_IDS,
    "vif.link_state_down": ActionKind.LINK_STATE_UP,
    "network.inactive": ActionKind.NETWORK_START,
}


def _run(case: HostileCase) -> tuple[tuple[Finding, ...], dict[str, Any]]:
    bindings = bind(case.snap)
    run = evaluate(case.snap, bindings, case.config)
    return run.findings, doctor_report(case.snap, run, bindings)


def _table(findings: list[dict[str, Any]]) -> str:
    out = Console(file=io.StringIO(), width=2000, record=True)
    for table in findings_tables(findings):
        out.print(table)
    return out.export_text()


def _same_object(f: Finding, a: Action) -> bool:
    if f.domain is not None:
        return (f.domain, f.mac) == (a.domain, a.mac)
    return f.subject == a.target


def _matches(findings: tuple[Finding, ...], a: Action) -> Iterator[Finding]:
    if a.kind is ActionKind.SYSCTL:
        return (f for f in findings if f.check == a.reason)
    return (f for f in findings if ACTION_OF.get(f.check) is a.kind and _same_object(f, a))


def test_table_json_and_api_show_the_same_line() -> None:
    lines: dict[str, dict[str, Any]] = {}  # one finding per distinct line: the table is slow to draw
    for case in hostile_cases():
        findings, doc = _run(case)
        api = json.loads(bytes(findings_doc(View(case.snap, bind(case.snap), 0.0, doctor=case.config), ()).body))
        FindingsDoc.model_validate(api)
        assert api["findings"] == json.loads(json.dumps(doc["findings"]))
        for f, d in zip(findings, doc["findings"], strict=True):
            if f.fix is not None:
                assert d["fix"] == f.fix.text() and d["fix_argv"] == [list(a) for a in f.fix.argvs]
                lines.setdefault(d["fix"], d)
    table = _table(list(lines.values()))
    assert all(line in table for line in lines)
    assert len(lines) > 100


def test_fix_dry_run_plans_the_commands_doctor_prints() -> None:
    kinds: set[ActionKind] = set()
    for case in hostile_cases():
        findings, _ = _run(case)
        plan = plan_fixes(case.snap, bind(case.snap), findings, host=True, link_down=True)
        planned = fix_report(plan, "dry-run", None, None)["plan"]["actions"]
        table = io.StringIO()
        Console(file=table, width=5000).print(plan_table(plan))
        for a, shown in zip(plan.actions, planned, strict=True):
            fixes = [f.fix for f in _matches(findings, a) if f.fix is not None]
            assert fixes, (case.name, a.kind, a.target)
            runs = [s.text() for s in a.steps if not isinstance(s, WriteFile)]  # a WriteFile shows on two lines
            assert runs and all(line in shown["commands"] and line in table.getvalue() for line in runs)
            if a.kind is ActionKind.SYSCTL:
                _sysctl_agrees(a, [c for fix in fixes for c in fix.commands])
            else:
                assert any(fix.commands == a.steps for fix in fixes), (case.name, a.kind, a.steps, fixes)
                assert any([c.text() for c in fix.commands] == shown["commands"] for fix in fixes)
            kinds.add(a.kind)
    assert kinds == {*ACTION_OF.values(), ActionKind.SYSCTL}


def _sysctl_agrees(a: Action, commands: list[Command]) -> None:
    """--fix-host writes the file itself (to undo it): the same sysctl -w, the same path and line."""
    (write, set_now) = a.steps
    assert isinstance(write, WriteFile) and isinstance(set_now, SetSysctl)
    assert set_now.command in commands
    assert sysctl_persist(set_now.key, set_now.value) in commands
    assert write.path == sysctl_file(set_now.key)
    assert f"\n{set_now.key} = {set_now.value}\n" in write.content

"""contrib/prometheus/alerts.yml and contrib/grafana/*.json against the real exporter output,
checked and evaluated by Prometheus' own ``promtool`` (Debian package ``prometheus``).

``promtool test rules`` runs the shipped rules over synthetic series on Prometheus' rule
engine: each alert must fire after its ``for:`` and not before, and stay quiet for inactive
or unverifiable vifs. (Test files are written as JSON, which is YAML.)
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_exporter import lab_like, parse, scrape_of
from vifscope.exporter.collector import render
from vifscope.exporter.flows import FlowView
from vifscope.model import Finding, Severity
from vifscope.sources.audit_log import ActionCount

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"
DASHBOARDS = sorted((ROOT / "contrib" / "grafana").glob("*.json"))
METRIC = re.compile(r"\bvifscope_[a-z_]+\b")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, check=False)


def exported_names() -> set[str]:
    """Every sample name the exporter can produce (a scrape with counters, findings and heals)."""
    scrape = scrape_of(
        lab_like(),
        findings=(Finding("mac.duplicate", Severity.ERROR, "binding", "m"),),
        actions=(ActionCount("heal", "apply", "ok", 1),),
        sources=(("libvirt", True),),
        source_seconds=(("libvirt", 0.1),),
        checks_age=1.0,
        checks_seconds=0.5,
        checks_failures=0,
        flows=FlowView(),
    )
    return set(parse(render(scrape)))


def test_alert_rules_pass_promtool_check() -> None:
    proc = promtool("check", "rules", str(ALERTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 10 rules found" in proc.stdout


def test_alert_rules_use_only_exported_metrics() -> None:
    used = set(METRIC.findall(ALERTS.read_text()))
    assert {"vifscope_vif_status", "vifscope_source_up", "vifscope_findings", "vifscope_heals_total"} <= used
    assert used <= exported_names(), used - exported_names()


VIF = {
    "instance": "h1",
    "job": "vifscope",
    "domain": "web1",
    "domain_uuid": "u1",
    "index": "0",
    "mac": "52:54:00:00:00:01",
    "target": "vnet0",
    "type": "bridge",
    "bridge": "br0",
}


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def status_series(labels: dict[str, str], timeline: dict[str, str]) -> list[dict[str, str]]:
    """One-hot vifscope_vif_status over every status; ``timeline`` gives the 1-values per status."""
    statuses = ("inactive", "missing", "detached", "misbound", "down", "bound", "unverified")
    return [series("vifscope_vif_status", {**labels, "status": s}, timeline.get(s, "0x12")) for s in statuses]


def run_rule_tests(tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    spec = {"rule_files": [str(ALERTS)], "evaluation_interval": "15s", "tests": tests}
    path = tmp_path / "alerts_test.json"
    path.write_text(json.dumps(spec, indent=1))
    proc = promtool("test", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_vif_not_bound_fires_after_one_minute_with_the_verdict(tmp_path: Path) -> None:
    # web1 detached from t=30s (misbound from 1m30s: still one alert); off and sriov never fire.
    off = {**VIF, "domain": "off", "domain_uuid": "u2", "target": ""}
    sriov = {**VIF, "domain": "sriov", "domain_uuid": "u3", "target": "", "type": "hostdev", "bridge": ""}
    input_series = [
        *status_series(VIF, {"bound": "1 1 0x10", "detached": "0 0 1 1 1 1 0x6", "misbound": "0x5 1x7"}),
        *status_series(off, {"inactive": "1x12"}),
        *status_series(sriov, {"unverified": "1x12"}),
    ]
    description = (
        "web1 interface #0 (bridge, mac 52:54:00:00:00:01, target vnet0, declared bridge br0) on h1 is misbound "
        "for more than 1 minute: the guest is cut off on that interface. Run `vifscope status -d web1` for the "
        "reason and `vifscope doctor --fix` to re-plug it."
    )
    firing = {
        "exp_labels": {**VIF, "severity": "critical"},
        "exp_annotations": {
            "summary": "web1 vif 52:54:00:00:00:01 (vnet0) is not plugged where libvirt says",
            "description": description,
        },
    }
    test = {
        "interval": "15s",
        "input_series": input_series,
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "VifNotBound", "exp_alerts": []},  # pending only
            {"eval_time": "1m45s", "alertname": "VifNotBound", "exp_alerts": [firing]},
        ],
    }
    run_rule_tests(tmp_path, [test])


def test_host_level_alerts(tmp_path: Path) -> None:
    h = {"instance": "h1", "job": "vifscope"}
    test = {
        "interval": "1m",
        "input_series": [
            series("vifscope_source_up", {**h, "source": "libvirt"}, "1 0x20"),
            series("vifscope_source_up", {**h, "source": "netlink"}, "1x20"),
            series("vifscope_findings", {**h, "check": "mac.duplicate", "severity": "error"}, "0 2x20"),
            series("vifscope_findings", {**h, "check": "conntrack.near_full", "severity": "warning"}, "0 1x20"),
            series("vifscope_vif_rx_drops_total", VIF, "0+1200x20"),  # 20 drops/s
            series("vifscope_vif_tx_drops_total", VIF, "0x20"),
            series("vifscope_heals_total", {**h, "result": "ok"}, "0 0 10x20"),
            series("up", h, "1 0x20"),
            series(
                "vifscope_checks_age_seconds",
                h,
                "30 90 150 210 270 330 390 450 510 570 630 690 750 810 870 930 990 1050 1110 1170 1230",
            ),  # runs stopped at 0m: age grows by 60 s a minute
            series("vifscope_checks_failures_total", h, "0 0 1 1 1x17"),
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "VifscopeSourceDown", "exp_alerts": []},
            {"eval_time": "4m", "alertname": "VifscopeSourceDown", "exp_alerts": [SOURCE_DOWN]},
            {"eval_time": "4m", "alertname": "VifDuplicateMac", "exp_alerts": [DUPLICATE_MAC]},
            {"eval_time": "4m", "alertname": "ConntrackNearFull", "exp_alerts": []},
            {"eval_time": "7m", "alertname": "ConntrackNearFull", "exp_alerts": [CONNTRACK]},
            {"eval_time": "16m", "alertname": "VifDroppingPackets", "exp_alerts": [DROPPING]},
            {"eval_time": "3m", "alertname": "VifHealsFlapping", "exp_alerts": [FLAPPING]},
            {"eval_time": "7m", "alertname": "VifscopeExporterDown", "exp_alerts": [EXPORTER_DOWN]},
            {"eval_time": "16m", "alertname": "VifscopeChecksStale", "exp_alerts": []},
            {"eval_time": "20m", "alertname": "VifscopeChecksStale", "exp_alerts": [CHECKS_STALE]},
            {"eval_time": "1m", "alertname": "VifscopeChecksFailing", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "VifscopeChecksFailing", "exp_alerts": [CHECKS_FAILING]},
        ],
    }
    run_rule_tests(tmp_path, [test])


def _alert(labels: dict[str, str], severity: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "exp_labels": {**labels, "severity": severity},
        "exp_annotations": {"summary": summary, "description": description},
    }


H1 = {"instance": "h1"}
SOURCE_DOWN = _alert(
    {**H1, "job": "vifscope", "source": "libvirt"},
    "warning",
    "vifscope on h1 cannot read libvirt",
    "The libvirt source has failed or timed out for 2 minutes on h1: vif verdicts that need it are missing or "
    "unverified. `vifscope status` prints the error and a hint.",
)
DUPLICATE_MAC = _alert(
    H1,
    "critical",
    "duplicate vif MAC addresses on h1",
    "2 duplicate-MAC finding(s) on h1. Run `vifscope doctor --only binding` (check mac.duplicate) to see which "
    "domains share a MAC, then give one of them a new <mac address=>.",
)
CONNTRACK = _alert(
    H1,
    "warning",
    "conntrack table on h1 is nearly full",
    "nf_conntrack_count is above conntrack_full_pct (80 % by default) of nf_conntrack_max on h1; when it is full "
    "the kernel drops new flows "
    '("nf_conntrack: table full, dropping packet"). Raise net.netfilter.nf_conntrack_max or find the flood '
    "(`conntrack -C`, `conntrack -L`). `vifscope doctor --explain conntrack.near_full`.",
)
DROPPING = _alert(
    VIF,
    "warning",
    "web1 vif vnet0 drops 20 packets/s",
    "Check `vifscope top --sort drops` and `vifscope doctor -d web1 --only performance`.",
)
FLAPPING = _alert(
    H1,
    "warning",
    "vifscope healed 10 vif bindings in 15 minutes on h1",
    "Bindings keep breaking. The audit log (/var/log/vifscope/actions.jsonl) lists every heal.",
)
EXPORTER_DOWN = _alert(
    {**H1, "job": "vifscope"},
    "warning",
    "vifscope exporter on h1 is not answering",
    "Prometheus has not scraped the vifscope exporter on h1 for 5 minutes.",
)


CHECKS_STALE = _alert(
    {**H1, "job": "vifscope"},
    "warning",
    "vifscope's doctor findings on h1 are 20m 30s old",
    "The exporter on h1 serves findings from a check run that old: runs fail (vifscope_checks_failures_total) or "
    "hang. The exporter's log has the error; `vifscope doctor` shows what a run finds now.",
)
CHECKS_FAILING = _alert(
    {**H1, "job": "vifscope"},
    "warning",
    "vifscope's doctor check runs are failing on h1",
    "1 check run(s) failed in 15 minutes on h1; vifscope_findings keeps the last good run. Run `vifscope doctor` "
    "there to see the error.",
)


def _exprs(doc: Any) -> list[str]:
    """Every PromQL string in a dashboard: panel targets and query variables."""
    found: list[str] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_exprs(value))
    elif isinstance(doc, list):
        for item in doc:
            found.extend(_exprs(item))
    return found


@pytest.fixture(params=DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(request.param.read_text())
    return doc


def test_dashboard_shape(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    queries = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(queries) >= 10
    assert all(p.get("targets") for p in queries), "every panel queries something"


def test_dashboard_references_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    used = {m for e in _exprs(dashboard) for m in METRIC.findall(e)}
    names = exported_names()
    assert len(used) >= 12
    assert used <= names, f"dashboard uses metrics the exporter does not produce: {sorted(used - names)}"


def test_dashboard_queries_are_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses each query as a recording rule (Grafana variables substituted first)."""
    subst = {"$__rate_interval": "1m", "$instance": ".*", "$domain": ".*"}
    rules = []
    for n, expr in enumerate(_exprs(dashboard)):
        if expr.startswith("label_values("):  # Grafana's variable syntax, not PromQL: check its selector
            expr = expr[len("label_values(") : expr.rindex(",")]
        for var, value in subst.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{n}", "expr": expr})
    path = tmp_path / "dash_rules.json"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = promtool("check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


FLOW_MAP_FULL = _alert(
    {**H1, "job": "vifscope"},
    "warning",
    "the flow map of vifscope on h1 is full",
    "50 flows were evicted from or could not enter the BPF flow map (h1) in 10 minutes: their bytes are lost. "
    "Restart the exporter with a larger --max-flows (the map holds vifscope_flow_map_capacity entries).",
)


def test_flow_map_full(tmp_path: Path) -> None:
    """Quiet while nothing is evicted; fires 10 minutes into a steady 5 evictions a minute."""
    h = {"instance": "h1", "job": "vifscope"}
    test = {
        "interval": "1m",
        "input_series": [
            series("vifscope_flow_map_evicted_total", h, "0x10 0+5x30"),
            series("vifscope_flow_map_failed_total", h, "0x40"),
        ],
        "alert_rule_test": [
            {"eval_time": "9m", "alertname": "VifscopeFlowMapFull", "exp_alerts": []},
            {"eval_time": "15m", "alertname": "VifscopeFlowMapFull", "exp_alerts": []},  # pending
            {"eval_time": "30m", "alertname": "VifscopeFlowMapFull", "exp_alerts": [FLOW_MAP_FULL]},
        ],
    }
    run_rule_tests(tmp_path, [test])

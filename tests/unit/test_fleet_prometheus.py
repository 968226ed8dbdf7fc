"""contrib/prometheus/ for a fleet: the scrape and federation configs pass ``promtool check
config``, and the fleet alerts fire on Prometheus' own rule engine (``promtool test rules``)
for exactly the cross-host cases they name: a MAC on running guests of two hosts, an agent
down, a host with cut-off guests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_exporter_rules import METRIC, exported_names, promtool, series, status_series

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"
FLEET_ALERTS = CONTRIB / "fleet-alerts.yml"


@pytest.mark.parametrize("name", ["fleet-scrape.yml", "federation.yml"])
def test_configs_pass_promtool_check_config(name: str) -> None:
    proc = promtool("check", "config", str(CONTRIB / name))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {CONTRIB / name} is valid prometheus config file syntax" in proc.stdout


def test_fleet_rules_pass_promtool_and_use_exported_metrics() -> None:
    proc = promtool("check", "rules", str(FLEET_ALERTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 4 rules found" in proc.stdout
    used = set(METRIC.findall(FLEET_ALERTS.read_text()))
    assert "vifscope_vif_status" in used
    assert used <= exported_names(), used - exported_names()


def test_federation_pulls_every_vifscope_series_with_honor_labels() -> None:
    job = yaml.safe_load((CONTRIB / "federation.yml").read_text())["scrape_configs"][0]
    assert job["honor_labels"] is True and job["metrics_path"] == "/federate"
    assert '{__name__=~"vifscope_.*"}' in job["params"]["match[]"]


def test_scrape_relabel_takes_host_from_the_target_only_without_a_host_label() -> None:
    """The relabel rule's regex (RE2 and Python agree on this subset), applied as Prometheus
    does: source labels joined with ';', the regex anchored at both ends."""
    job = yaml.safe_load((CONTRIB / "fleet-scrape.yml").read_text())["scrape_configs"][0]
    (rule,) = job["relabel_configs"]
    assert rule["source_labels"] == ["host", "__address__"] and rule["target_label"] == "host"
    regex = re.compile(rule["regex"])

    def host(labels: dict[str, str]) -> str:
        m = regex.fullmatch(";".join(labels.get(k, "") for k in rule["source_labels"]))
        return m.expand(rule["replacement"].replace("$1", r"\1")) if m else labels.get("host", "")

    assert host({"__address__": "kvm-b1.example.net:8777"}) == "kvm-b1.example.net"
    assert host({"__address__": "10.0.0.13"}) == "10.0.0.13"
    assert host({"host": "kvm-a1", "__address__": "10.0.0.11:8777"}) == "kvm-a1"
    statics = [g.get("labels", {}) for g in job["static_configs"]]
    assert {"kvm-a1", "kvm-a2"} <= {g.get("host") for g in statics}


def vif(host: str, domain: str, mac: str, index: str = "0") -> dict[str, str]:
    return {
        "host": host,
        "instance": f"{host}:8777",
        "job": "vifscope",
        "domain": domain,
        "domain_uuid": f"u-{host}-{domain}",
        "index": index,
        "mac": mac,
        "target": f"vnet{index}",
        "type": "bridge",
        "bridge": "br0",
    }


MAC = "52:54:00:aa:00:01"


def run(tmp_path: Path, test: dict[str, Any]) -> None:
    spec = {"rule_files": [str(FLEET_ALERTS)], "evaluation_interval": "1m", "tests": [test]}
    path = tmp_path / "fleet_alerts_test.json"
    path.write_text(json.dumps(spec, indent=1))
    proc = promtool("test", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def dup_alert(hosts: str, count: int) -> dict[str, Any]:
    description = (
        f"Running guests on {hosts} have vifs with MAC {MAC}: on one L2 segment the switches' tables flap "
        "between them and both guests lose traffic. `vifscope fleet doctor` names the domains."
    )
    return {
        "exp_labels": {"mac": MAC, "severity": "critical"},
        "exp_annotations": {
            "summary": f"MAC {MAC} is used by running guests on {count} hosts",
            "description": description,
        },
    }


def test_mac_on_running_guests_of_two_hosts_fires(tmp_path: Path) -> None:
    # web on kvm-a1 runs all along; its copy on kvm-a2 is defined (inactive) and starts at 3m.
    # kvm-a3 has the MAC twice on one host (alerts.yml's case) and a shut-off copy: never counted.
    # Another MAC on two hosts, but one of them shut off all along: never fires.
    other = "52:54:00:aa:00:02"
    timeline_started = {"inactive": "1 1 1 0x10", "bound": "0 0 0 1x10"}
    input_series = [
        *status_series(vif("kvm-a1", "web", MAC), {"bound": "1x13"}),
        *status_series(vif("kvm-a2", "web", MAC), timeline_started),
        *status_series(vif("kvm-a3", "db", other), {"bound": "1x13"}),
        *status_series(vif("kvm-a3", "db2", other), {"bound": "1x13"}),
        *status_series(vif("kvm-a4", "db", other), {"inactive": "1x13"}),
    ]
    test = {
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "FleetMacDuplicate", "exp_alerts": []},  # pending since 3m
            {"eval_time": "5m", "alertname": "FleetMacDuplicate", "exp_alerts": [dup_alert("kvm-a1 kvm-a2", 2)]},
            {"eval_time": "10m", "alertname": "FleetMacDuplicate", "exp_alerts": [dup_alert("kvm-a1 kvm-a2", 2)]},
        ],
    }
    run(tmp_path, test)


def test_agent_down_and_host_with_cut_off_guests(tmp_path: Path) -> None:
    a1, a2 = vif("kvm-a1", "web", MAC), vif("kvm-a2", "db", "52:54:00:aa:00:03")
    up = {k: a1[k] for k in ("host", "instance", "job")}
    up2 = {k: a2[k] for k in ("host", "instance", "job")}
    test = {
        "interval": "1m",
        "input_series": [
            series("up", up, "1 0x10"),
            series("up", up2, "1x10"),
            *status_series(a1, {"bound": "1x10"}),
            *status_series(a2, {"bound": "1 0x9", "detached": "0 1x9"}),
            *status_series({**a2, "domain": "db2", "domain_uuid": "u2", "index": "1"}, {"misbound": "0 1x9"}),
        ],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "FleetAgentDown", "exp_alerts": []},
            {
                "eval_time": "6m",
                "alertname": "FleetAgentDown",
                "exp_alerts": [
                    {
                        "exp_labels": {**up, "severity": "warning"},
                        "exp_annotations": {
                            "summary": "vifscope agent on kvm-a1 is not answering",
                            "description": "Prometheus has not scraped the vifscope agent on kvm-a1 (kvm-a1:8777) "
                            "for 5 minutes: its guests' vifs are not watched.",
                        },
                    }
                ],
            },
            {"eval_time": "6m", "alertname": "FleetAgentsMostlyDown", "exp_alerts": []},  # 1 of 2
            {"eval_time": "5m", "alertname": "FleetHostVifsNotBound", "exp_alerts": []},
            {
                "eval_time": "6m",
                "alertname": "FleetHostVifsNotBound",
                "exp_alerts": [
                    {
                        "exp_labels": {"host": "kvm-a2", "severity": "critical"},
                        "exp_annotations": {
                            "summary": "2 vif(s) on kvm-a2 not plugged where libvirt says",
                            "description": "2 vif(s) of running guests on kvm-a2 have been missing, detached, "
                            "misbound or down for 5 minutes. `vifscope fleet status --problems` lists them.",
                        },
                    }
                ],
            },
        ],
    }
    run(tmp_path, test)

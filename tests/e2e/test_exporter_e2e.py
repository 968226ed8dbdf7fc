"""The exporter on the real lab, scraped by a real Prometheus server (Debian's ``prometheus``)
started here on loopback with the shipped contrib/prometheus/alerts.yml.

A query returns one series per lab vif; the counters Prometheus stores are the tap's kernel
counters; detaching a tap makes the VifNotBound alert go pending, and re-plugging clears it.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ping, sh, wait_for
from vifscope.actions.audit import AuditLog, AuditRecord
from vifscope.lab.lab import break_guest
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"
Target = Callable[..., str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@dataclass
class Prom:
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        doc = get_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
        assert doc["status"] == "success", doc
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def alerts(self, name: str) -> list[dict[str, Any]]:
        doc = get_json(f"{self.url}/api/v1/alerts")
        return [a for a in doc["data"]["alerts"] if a["labels"]["alertname"] == name]


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def exporter(lab: LabSpec, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``vifscope exporter`` on a free loopback port; yields (metrics URL, its audit log path)."""
    audit = tmp_path_factory.mktemp("vs-e-audit") / "actions.jsonl"
    cmd = [sys.executable, "-m", "vifscope", "exporter", "--json", "--listen", "127.0.0.1:0", "--audit-log", str(audit),
           "--checks-interval", "1"]  # findings within a scrape or two of a change  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        event = json.loads(proc.stdout.readline())
        yield event["url"], audit
    finally:
        _stop(proc)
    assert proc.returncode == 0, "SIGTERM must stop the exporter cleanly"


@pytest.fixture(scope="module")
def prom(exporter: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    """A real Prometheus, loopback only, scraping the exporter every 2 s with the shipped rules."""
    home = tmp_path_factory.mktemp("vs-e-prometheus")
    target = urllib.parse.urlparse(exporter[0]).netloc
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "vifscope", "static_configs": [{"targets": [target]}]}],
    }
    (home / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    cmd = [
        "prometheus",
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with (home / "prometheus.log").open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _ready(url), 30), (home / "prometheus.log").read_text()[-2000:]
        p = Prom(url)
        assert wait_for(lambda: bool(p.query('up{job="vifscope"} == 1')), 30), "Prometheus never scraped vifscope"
        yield p
    finally:
        _stop(proc)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def lab_series(prom: Prom, lab: LabSpec, metric: str) -> dict[tuple[str, str], dict[str, Any]]:
    found = prom.query(f'{metric}{{domain=~"{lab.prefix}.*"}}')
    return {(s["metric"]["domain"], s["metric"]["index"]): s for s in found}


def test_prometheus_has_one_series_per_lab_vif(lab: LabSpec, prom: Prom, target: Target) -> None:
    break_guest(lab.guest("broken"))  # re-apply the lab's deliberate fault (see test_status_e2e)
    broken = f'vifscope_vif_status{{domain="{lab.name("broken")}",status="detached"}} == 1'
    assert wait_for(lambda: bool(prom.query(broken)), 20)
    bound = lab_series(prom, lab, "vifscope_vif_bound")
    expected = {(g.name, str(i)) for g in lab.guests() for i, _ in enumerate(g.nics)}
    assert set(bound) == expected
    value = {k: s["value"][1] for k, s in bound.items()}
    for short in ("web1", "db1", "ovs1", "mac1"):
        assert value[(lab.name(short), "0")] == "1", short
    assert value[(lab.name("broken"), "0")] == "0" and value[(lab.name("off"), "0")] == "0"
    web = bound[(lab.name("web1"), "0")]["metric"]
    assert web["target"] == target("web1") and web["bridge"] == lab.bridge and web["type"] == "bridge"
    assert web["mac"] == lab.guest("web1").nics[0].mac
    db = bound[(lab.name("db1"), "0")]["metric"]
    assert (db["type"], db["bridge"]) == ("network", lab.network_bridge)
    assert "target" not in bound[(lab.name("off"), "0")]["metric"]  # Prometheus drops empty labels
    status = prom.query(f'vifscope_vif_status{{domain="{lab.name("broken")}"}} == 1')
    assert [s["metric"]["status"] for s in status] == ["detached"]
    up = {s["metric"]["source"]: s["value"][1] for s in prom.query("vifscope_source_up")}
    assert up["libvirt"] == "1" and up["netlink"] == "1" and up["ovs"] == "1"


def _sysfs(dev: str, counter: str) -> int:
    return int(Path(f"/sys/class/net/{dev}/statistics/{counter}").read_text())


def test_counters_in_prometheus_are_the_taps_kernel_counters(lab: LabSpec, prom: Prom, target: Target) -> None:
    tap = target("web1")
    expr = f'vifscope_vif_rx_packets_total{{domain="{lab.name("web1")}"}}'
    before = _sysfs(tap, "tx_packets")  # host tx on the tap = packets the guest received
    assert ping(lab.netns, f"{lab.subnet(1)}.11", count=5)
    after = _sysfs(tap, "tx_packets")
    assert after - before >= 5

    def stored() -> float:
        found = prom.query(expr)
        return float(found[0]["value"][1]) if found else -1.0

    assert wait_for(lambda: stored() >= before + 5, 15), (stored(), before, after)
    assert stored() <= _sysfs(tap, "tx_packets")
    rate = prom.query(f'rate(vifscope_vif_rx_bytes_total{{domain="{lab.name("web1")}"}}[20s])')
    assert rate and float(rate[0]["value"][1]) > 0


def test_vif_not_bound_alert_goes_pending_when_a_tap_is_detached(lab: LabSpec, prom: Prom, target: Target) -> None:
    tap, web = target("web1"), lab.name("web1")

    def web_alert() -> list[dict[str, Any]]:
        return [a for a in prom.alerts("VifNotBound") if a["labels"]["domain"] == web]

    assert web_alert() == []
    # The lab's deliberately detached guest is already alerting (pending, or firing after 1 m).
    assert any(a["labels"]["domain"] == lab.name("broken") for a in prom.alerts("VifNotBound"))
    sh("ip", "link", "set", tap, "nomaster")
    try:
        assert wait_for(lambda: bool(web_alert()), 20), "VifNotBound did not show up for the detached tap"
        alert = web_alert()[0]
        assert alert["state"] == "pending"  # for: 1m in the shipped rules
        assert (alert["labels"]["target"], alert["labels"]["bridge"]) == (tap, lab.bridge)
        assert alert["labels"]["severity"] == "critical"
        assert "detached" in alert["annotations"]["description"]
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)
    assert wait_for(lambda: web_alert() == [], 20), "the alert must clear once the tap is re-plugged"


def test_heals_from_the_audit_log_reach_prometheus(lab: LabSpec, prom: Prom, exporter: tuple[str, Path]) -> None:
    """A heal recorded by the actions layer's audit writer shows up as vifscope_heals_total."""
    log = AuditLog(exporter[1])

    def rec(actor: str, phase: str, result: str) -> AuditRecord:
        return AuditRecord("2026-01-01T00:00:00+00:00", "r1", actor, phase, "attach", "vnet0", ("ip",), result)

    for r in (rec("heal", "apply", "ok"), rec("heal", "verify", "verified"), rec("doctor-fix", "apply", "ok")):
        log.write(r)

    def value(expr: str) -> float:
        found = prom.query(expr)
        return float(found[0]["value"][1]) if found else 0.0

    assert wait_for(lambda: value('vifscope_heals_total{result="ok"}') == 1.0, 15)
    assert value('vifscope_actions_total{actor="heal",phase="verify",result="verified"}') == 1.0
    assert value('vifscope_actions_total{actor="doctor-fix",phase="apply",result="ok"}') == 1.0


def test_doctor_findings_and_the_duplicate_mac_alert(lab: LabSpec, prom: Prom, tmp_path: Path) -> None:
    """A shut-off domain defined with web1's MAC: doctor's mac.duplicate shows up as
    vifscope_findings in Prometheus and the VifDuplicateMac alert goes pending."""
    detached = 'vifscope_findings{check="vif.detached",severity="error"} >= 1'
    assert wait_for(lambda: bool(prom.query(detached)), 15), "the lab's broken guest is a vif.detached finding"
    assert prom.alerts("VifDuplicateMac") == []
    name, mac = lab.name("dup"), lab.guest("web1").nics[0].mac
    xml = tmp_path / "dup.xml"
    xml.write_text(
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><os><type>hvm</type></os>"
        f"<devices><interface type='bridge'><mac address='{mac}'/><source bridge='{lab.bridge}'/>"
        "<model type='virtio'/></interface></devices></domain>"
    )
    sh("virsh", "-c", "qemu:///system", "define", str(xml))
    try:
        dup = 'vifscope_findings{check="mac.duplicate"} > 0'
        assert wait_for(lambda: bool(prom.query(dup)), 20), "mac.duplicate never reached Prometheus"
        # One of the two is shut off: a warning per vif, not an error.
        assert {(s["metric"]["severity"], s["value"][1]) for s in prom.query(dup)} == {("warning", "2")}
        assert wait_for(lambda: bool(prom.alerts("VifDuplicateMac")), 20)
        assert prom.alerts("VifDuplicateMac")[0]["state"] == "pending"
    finally:
        sh("virsh", "-c", "qemu:///system", "undefine", name, check=False)
    assert wait_for(lambda: prom.alerts("VifDuplicateMac") == [], 20)

"""contrib/prometheus/ on a real Prometheus (Debian's, started by the test on a free loopback
port with its own data directory, stopped afterwards): it scrapes three real agents
(``vifscope serve`` on libvirt test-driver node files) with the shipped fleet-scrape.yml
(targets swapped for the agents'), and a second Prometheus federates it with the shipped
federation.yml. Both answer the fleet alert's query with exactly the MAC two hosts' running
guests share; the alert itself is pending (its ``for:`` is minutes) on both."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.fleet_agents import Guest, agents

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"
SHARED = "52:54:00:5b:00:99"
HOSTS = {
    "p1": [Guest("vs-s-pweb1", ("52:54:00:5b:00:01", SHARED))],
    "p2": [Guest("vs-s-pweb2", (SHARED,))],
    # A shut-off copy of the MAC (a migration target's definition) and a MAC of its own.
    "p3": [Guest("vs-s-poff3", (SHARED,), False), Guest("vs-s-pweb3", ("52:54:00:5b:00:03",))],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@contextmanager
def prometheus(config: dict[str, Any]) -> Iterator[str]:
    """A Prometheus with ``config`` (1 s scrapes and rule evaluations) and fleet-alerts.yml."""
    top = Path(tempfile.mkdtemp(prefix="vs-s-prom-"))
    shutil.copy(CONTRIB / "fleet-alerts.yml", top / "fleet-alerts.yml")
    config = {**config, "global": {"scrape_interval": "1s", "evaluation_interval": "1s"}}
    config["rule_files"] = ["fleet-alerts.yml"]
    (top / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    cmd = ["prometheus", f"--config.file={top / 'prometheus.yml'}", f"--storage.tsdb.path={top / 'data'}"]
    cmd += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    log = (top / "log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/-/ready", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (top / "log").read_text()
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(top)


def query_until(base: str, expr: str, want: int, wait_s: float = 90) -> list[dict[str, Any]]:
    """The query's result once it has ``want`` series (scrapes and federation take a few
    rounds); the last result when it never does, for the assertion to show."""
    deadline = time.monotonic() + wait_s
    while True:
        result: list[dict[str, Any]] = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))[
            "data"
        ]["result"]
        if len(result) >= want or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def rule(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((CONTRIB / "fleet-alerts.yml").read_text())
    found: dict[str, Any] = next(r for g in doc["groups"] for r in g["rules"] if r.get("alert") == name)
    return found


def scrape_config(targets: dict[str, str]) -> dict[str, Any]:
    """fleet-scrape.yml with its example hosts swapped for the agents (p3 without a host label:
    the relabel rule names it after its address)."""
    doc = yaml.safe_load((CONTRIB / "fleet-scrape.yml").read_text())
    (job,) = doc["scrape_configs"]
    labelled = [{"targets": [targets[h]], "labels": {"host": h, "segment": "s1"}} for h in ("p1", "p2")]
    job["static_configs"] = [*labelled, {"targets": [targets["p3"]], "labels": {"segment": "s1"}}]
    return {"scrape_configs": [job]}


def federation_config(site: str) -> dict[str, Any]:
    doc = yaml.safe_load((CONTRIB / "federation.yml").read_text())
    (job,) = doc["scrape_configs"]
    job["static_configs"] = [{"targets": [site], "labels": {"site": "dc1"}}]
    return {"scrape_configs": [job]}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(site Prometheus URL, p3's host label)."""
    work = tmp_path_factory.mktemp("fleetprom")
    with agents(work, HOSTS) as running:
        targets = {n: urllib.parse.urlsplit(a.url).netloc for n, a in running.items()}
        with prometheus(scrape_config(targets)) as base:
            yield base, targets["p3"].rsplit(":", 1)[0]


def test_every_agent_is_scraped_with_its_host_label(site: tuple[str, str]) -> None:
    base, p3 = site
    up = query_until(base, 'up{job="vifscope"} == 1', 3)
    assert sorted(r["metric"]["host"] for r in up) == sorted(["p1", "p2", p3])


def test_the_duplicate_mac_query_names_exactly_the_shared_mac(site: tuple[str, str]) -> None:
    base, _ = site
    dup = rule("FleetMacDuplicate")
    result = query_until(base, dup["expr"], 1)
    assert [(r["metric"], r["value"][1]) for r in result] == [({"mac": SHARED}, "2")]
    alerts = query_until(base, 'ALERTS{alertname="FleetMacDuplicate"}', 1, wait_s=30)
    assert [(a["metric"]["mac"], a["metric"]["alertstate"]) for a in alerts] == [(SHARED, "pending")]


def test_a_central_prometheus_federating_the_site_sees_the_same(site: tuple[str, str]) -> None:
    base, p3 = site
    with prometheus(federation_config(urllib.parse.urlsplit(base).netloc)) as central:
        up = query_until(central, 'up{job="vifscope"}', 3)
        # honor_labels: the site's job/instance/host labels, not the federation job's own
        assert sorted(r["metric"]["host"] for r in up) == sorted(["p1", "p2", p3])
        result = query_until(central, rule("FleetMacDuplicate")["expr"], 1)
        assert [(r["metric"], r["value"][1]) for r in result] == [({"mac": SHARED}, "2")]
        series = query_until(central, "count by (site) (vifscope_vif_bound)", 1)
        assert series == [{"metric": {"site": "dc1"}, "value": series[0]["value"]}]
        # every vif has a series, the shut-off one too: the naive count by (mac) would say 3 hosts
        assert series[0]["value"][1] == "5"

"""``vifscope serve --fleet INVENTORY``: the hub's API over real agents (``vifscope serve``
processes on test-driver node files): the fleet document with each host's counts, a host's
topology through the hub (with the inventory's read token), the errors for a hung host and
an unknown one, no 500s under schemathesis, and the page in headless Chromium."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.fleet_agents import Agent, Guest, agent, closed_port_url, hub_server

pytestmark = pytest.mark.integration

SHARED_MAC = "52:54:00:f3:00:99"
EVIL = "<img src=x onerror=alert(1)>"  # a host name the page must show as text
TOKEN = "vs-f3-read-0123456789abcdef"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Agent]]]:
    work = tmp_path_factory.mktemp("fleet-hub")
    token = work / "read-token"
    token.write_text(TOKEN + "\n")
    os.chmod(token, 0o600)
    with (
        agent(work, "a1", [Guest("vs-f3-web1", ("52:54:00:f3:00:01", SHARED_MAC))]) as a1,
        agent(work, "a2", [Guest("vs-f3-web2", (SHARED_MAC,))], "--read-token-file", str(token)) as a2,
        agent(work, "hung", [Guest("vs-f3-hung", ("52:54:00:f3:00:05",))]) as hung,
    ):
        os.kill(hung.proc.pid, signal.SIGSTOP)
        hosts = [
            {"name": "a1", "url": a1.url, "labels": {"segment": "s1"}},
            {"name": EVIL, "url": a2.url, "token_file": str(token), "labels": {"segment": "s1"}},
            {"name": "hung", "url": hung.url},
            {"name": "down", "url": closed_port_url()},
        ]
        inv = work / "inventory.yaml"
        inv.write_text(json.dumps({"hosts": hosts}))
        with hub_server(work, inv) as url:
            yield url, {"a1": a1, "a2": a2, "hung": hung}


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_fleet_document_counts_each_hosts_vifs_and_findings(fleet: tuple[str, dict[str, Agent]]) -> None:
    url, _ = fleet
    status, doc = get(url + "api/v1/fleet")
    assert status == 200
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert [h["name"] for h in doc["hosts"]] == ["a1", EVIL, "hung", "down"]
    assert (hosts["a1"]["summary"], hosts[EVIL]["summary"]) == ({"missing": 2}, {"missing": 1})
    assert {n: h["status"] for n, h in hosts.items()} == {
        "a1": "ok",
        EVIL: "ok",
        "hung": "unreachable",
        "down": "unreachable",
    }
    assert sorted(e["host"] for e in doc["host_errors"]) == ["down", "hung"]
    dup = [f for f in doc["findings"] if f["check"] == "fleet.mac_duplicate"]
    assert [(f["mac"], sorted(f["hosts"])) for f in dup] == [(SHARED_MAC, sorted(["a1", EVIL]))]
    for name in ("a1", EVIL):  # each host's findings by severity: its own plus the fleet's naming it
        mine = [f for f in doc["findings"] if name in f["hosts"]]
        want = {s: sum(f["severity"] == s for f in mine) for s in ("error", "warning", "info")}
        assert hosts[name]["findings"] == {s: n for s, n in want.items() if n}
    assert hosts["a1"]["findings"]["error"] >= 1  # the shared MAC is an error in segment s1
    assert hosts["hung"]["findings"] == {"error": 1}  # fleet.host_unreachable
    assert doc["summary"]["hosts"] == 4 and doc["summary"]["answered"] == 2
    assert {v["host"] for v in doc["vifs"]} == {"a1", EVIL}


def test_a_hosts_topology_comes_through_the_hub_with_its_token(fleet: tuple[str, dict[str, Agent]]) -> None:
    url, agents = fleet
    status, _ = get(agents["a2"].url + "api/v1/topology")
    assert status == 401  # the browser could not read it from the agent itself
    name = urllib.request.quote(EVIL, safe="")
    status, topo = get(f"{url}api/v1/fleet/hosts/{name}/topology")
    assert status == 200
    domains = {n["label"] for n in topo["nodes"] if n["kind"] == "domain"}
    assert domains == {"vs-f3-web2"}
    status, topo = get(url + "api/v1/fleet/hosts/a1/topology")
    assert {n["label"] for n in topo["nodes"] if n["kind"] == "domain"} == {"vs-f3-web1"}


def test_an_unknown_or_silent_host_is_a_clear_error(fleet: tuple[str, dict[str, Agent]]) -> None:
    url, _ = fleet
    status, doc = get(url + "api/v1/fleet/hosts/nosuch/topology")
    assert status == 404 and "no host 'nosuch'" in doc["error"] and doc["hint"]
    status, doc = get(url + "api/v1/fleet/hosts/hung/topology")
    assert status == 502 and doc["error"] == "host hung: no answer within 3 s", doc
    status, doc = get(url + "api/v1/fleet/hosts/down/topology")
    assert status == 502 and doc["error"].startswith("host down: ") and doc["hint"]


def test_the_page_is_served_and_the_info_says_hub(fleet: tuple[str, dict[str, Agent]]) -> None:
    url, _ = fleet
    assert get(url + "api/v1/info")[1]["fleet"] is True
    with urllib.request.urlopen(url + "fleet", timeout=30) as resp:
        page = resp.read().decode()
    assert resp.status == 200 and "/static/fleet.js" in page
    js = (Path(__file__).resolve().parents[2] / "src/vifscope/serve/static/fleet.js").read_text()
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js  # data only ever as text


def test_a_server_that_is_not_a_hub_says_so(fleet: tuple[str, dict[str, Agent]]) -> None:
    _, agents = fleet
    status, doc = get(agents["a1"].url + "api/v1/fleet")
    assert status == 404 and doc["error"] == "this server is not a fleet hub" and "--fleet" in doc["hint"]
    assert get(agents["a1"].url + "api/v1/info")[1]["fleet"] is False


def test_schemathesis_finds_no_500s_on_the_hub(fleet: tuple[str, dict[str, Agent]], tmp_path: Path) -> None:
    """Over answering agents only: schemathesis counts any 5xx as a server error, and a silent
    host's topology is rightly a (documented) 502, checked above."""
    _, agents = fleet
    inv = tmp_path / "inventory.yaml"
    inv.write_text(json.dumps({"hosts": [{"name": "a1", "url": agents["a1"].url}]}))
    with hub_server(tmp_path, inv) as url:
        cmd = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}openapi.json", "--no-color"]
        cmd += ["--include-path-regex", "^/api/v1/fleet", "--phases", "examples,coverage,fuzzing"]
        cmd += ["-n", "10", "--request-timeout", "30"]  # stateful: the fleet routes have no OpenAPI links
        cmd += ["--generation-deterministic", "--exclude-checks", "negative_data_rejection"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=500, check=False)
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout and "ST101" not in run.stdout


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    flags = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run")
    for flag in (*flags, "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _cells(driver: WebDriver) -> dict[str, list[str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#hosts tbody tr")
    return {str(r.get_attribute("data-host")): [c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows}


def test_the_page_lists_the_hosts_as_text_and_clicks_through_to_a_topology(
    fleet: tuple[str, dict[str, Agent]], browser: WebDriver, tmp_path: Path
) -> None:
    url, _ = fleet
    browser.get(url + "fleet")
    wait = WebDriverWait(browser, 60, poll_frequency=0.2)
    wait.until(lambda d: len(_cells(d)) == 4)
    cells = _cells(browser)
    assert cells["a1"][:3] == ["a1", "ok", "2 missing"] and cells[EVIL][:3] == [EVIL, "ok", "1 missing"]
    assert cells["hung"][1] == "unreachable" and cells["down"][1] == "unreachable"
    assert "error" in cells["a1"][3]  # the shared MAC
    assert browser.find_elements(By.CSS_SELECTOR, "img:not(header img)") == []  # the name stayed text
    browser.find_element(By.CSS_SELECTOR, "#hosts tbody tr:nth-child(2)").click()
    wait.until(lambda d: d.find_element(By.ID, "graph").get_attribute("data-host") == EVIL)
    labels = {e.text for e in browser.find_elements(By.CSS_SELECTOR, '#graph g.node[data-kind="domain"] text')}
    assert labels == {"vs-f3-web2"}
    assert browser.find_element(By.ID, "graph-title").text == EVIL
    browser.save_screenshot(str(tmp_path / "fleet.png"))
    browser.find_element(By.CSS_SELECTOR, "#hosts tbody tr:nth-child(3)").click()
    wait.until(lambda d: "no answer within 3 s" in d.find_element(By.ID, "graph-title").text)
    assert browser.find_elements(By.CSS_SELECTOR, "#graph g.node") == []
